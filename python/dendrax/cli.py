"""The ``dendrax`` command line: ``info``, ``plugins``, ``simulate`` and ``fit``.

``dendrax simulate`` with no arguments runs the bundled branched neuron and
writes traces (CSV, .npz) and a PNG. Every option can also come from a TOML
file (``--config run.toml``) with the same names (dashes or underscores);
command-line options win. ``dendrax simulate net.toml`` with ``[[cell]]`` and
``[[connection]]`` tables simulates a network and writes its spikes too.
Models are built by ``dendrax.spec`` (shared with ``dendrax fit``). Bad
arguments give a one-line error and exit 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from .spec import CellSpec, NetworkSpec, SpecError, is_network, load_toml, parse_location

__all__ = ["UsageError", "main", "parse_location"]

# a bad argument or config value: one line on stderr and exit status 2
UsageError = SpecError


def _simulate(opts) -> int:
    from .simulation import simulate

    cell = CellSpec.from_options(opts).build()
    n_user = len(cell.recordings)
    user_labels = cell.recordings
    # peak v for the morphology plot: record every segment centre too
    comps = cell.compartments
    segment_nodes = cell.nodes()
    for node in segment_nodes:
        cell.record("v", cell.section(int(comps.section[node]))(float(comps.x[node])))
    cell.record_spikes(cell.soma(0.5))  # NEURON's NetCon.record at the soma, 10 mV
    n_steps = int(round(opts.t_stop / opts.dt))
    res = simulate(cell, opts.t_stop, opts.dt, v_init=opts.v_init, celsius=opts.celsius,
                   method=opts.method, progress=not opts.quiet and n_steps * len(segment_nodes) > 2e5)
    traces = np.asarray(res.traces)
    user = traces[:n_user]
    peak = np.full(cell.n_nodes, np.nan)
    peak[segment_nodes] = traces[n_user:].max(axis=1)
    out = Path(opts.out)
    out.mkdir(parents=True, exist_ok=True)
    labels = [f"{name}@{loc.section}({loc.x:g})" for name, loc in user_labels]
    np.savez(out / "traces.npz", t=res.t, traces=user, labels=np.asarray(labels))
    header = ",".join(["t_ms"] + labels)
    np.savetxt(out / "traces.csv", np.column_stack([res.t, user.T]), delimiter=",",
               header=header, comments="")
    written = [out / "traces.csv", out / "traces.npz"]
    if not opts.no_plot:
        from .plotting import plot_run
        from .simulation import Result

        plot_run(cell, Result(res.t, user, user_labels), np.nan_to_num(peak, nan=np.nanmin(peak)),
                 out / "voltage.png", title=f"dendrax: {opts.swc or 'default branched neuron'}")
        written.append(out / "voltage.png")
    spikes = res.spikes[0]
    print(f"simulated {cell.n_nodes} nodes for {opts.t_stop:g} ms (dt {opts.dt:g} ms): "
          f"{spikes.size} spikes at the soma (v > 10 mV, {res.rates()[0]:.1f} Hz); wrote "
          f"{', '.join(map(str, written))}")
    return 0


def _plugins(opts) -> int:
    from .mechanisms import available

    for group, names in available().items():
        print(f"{group}:")
        for name, package in names.items():
            print(f"  {name:16s} {package}")
    return 0


def _info(opts) -> int:
    from .info import report

    print(report())
    return 0


SIMULATE_DEFAULTS = {"swc": None, "nseg": None, "Ra": None, "cm": None, "mechanism": None,
                     "set": None, "iclamp": None, "record": None, "t_stop": 100.0, "dt": 0.025,
                     "v_init": -65.0, "celsius": 6.3, "method": "backward_euler",
                     "out": "dendrax_out", "no_plot": False, "quiet": False}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dendrax", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help="versions and available solver backends")
    sub.add_parser("plugins", help="registered channels, synapses and morphology readers")
    f = sub.add_parser("fit", help="fit parameters to traces, from a TOML config (docs/training.md)")
    f.add_argument("config", help="TOML file: [cell], [stimulus], [[param]], [target], [optimizer]")
    f.add_argument("--out", help="output folder (default: the config's out, else dendrax_fit)")
    f.add_argument("--quiet", action="store_true", help="no progress bar")
    s = sub.add_parser("simulate", help="simulate a cell or a network and write traces and a plot")
    s.add_argument("swc", nargs="?", help="morphology file (default: the bundled branched neuron), "
                   "or a .toml config: options as --config, or a network ([[cell]] tables)")
    s.add_argument("--config", help="TOML file with any of these options")
    s.add_argument("--nseg", help="segments per section: an integer or d_lambda")
    s.add_argument("--Ra", type=float, help="axial resistivity, ohm cm")
    s.add_argument("--cm", type=float, help="membrane capacitance, uF/cm2")
    s.add_argument("--mechanism", "-m", action="append", help="NAME[@where], repeatable (default hh)")
    s.add_argument("--set", action="append", help="NAME=VALUE[@where], e.g. hh.gnabar=0.15@axon")
    s.add_argument("--iclamp", action="append", help="AMP,DELAY,DUR[@location] in nA, ms, ms")
    s.add_argument("--record", action="append", help="NAME[@location], e.g. v@soma(0.5), hh.m@3(0.5)")
    s.add_argument("--t-stop", dest="t_stop", type=float, help="ms (default 100)")
    s.add_argument("--dt", type=float, help="ms (default 0.025)")
    s.add_argument("--v-init", dest="v_init", type=float, help="mV (default -65)")
    s.add_argument("--celsius", type=float, help="degC (default 6.3)")
    s.add_argument("--method", choices=["backward_euler", "crank_nicolson"])
    s.add_argument("--out", help="output folder (default dendrax_out)")
    s.add_argument("--no-plot", dest="no_plot", action="store_true", default=None)
    s.add_argument("--quiet", action="store_true", default=None, help="no progress bar")
    return p


CELL_OPTIONS = ("nseg", "Ra", "cm", "mechanism", "set", "iclamp", "record")


def _merge_config(opts):
    """The options of ``dendrax simulate``: defaults, then the TOML config, then the command
    line. A network config (``[[cell]]`` tables) gives ``(options, NetworkSpec)``, any other
    ``(options, None)``. ``dendrax simulate run.toml`` reads run.toml as the config."""
    values = dict(SIMULATE_DEFAULTS)
    if opts.swc is not None and str(opts.swc).endswith(".toml"):
        if opts.config:
            raise UsageError(f"two configs: {opts.swc} and --config {opts.config}")
        opts.config, opts.swc = opts.swc, None
    network = None
    if opts.config:
        cfg = load_toml(opts.config)
        if is_network(cfg):
            given = [k for k in CELL_OPTIONS + ("swc",) if getattr(opts, k, None) is not None]
            if given:
                raise UsageError(f"options {given} do not apply to a network config: set them "
                                 f"in its [[cell]] tables")
            network = NetworkSpec.from_dict(cfg)
            values.update(network.simulation)
            if network.out is not None:
                values["out"] = network.out
            cfg = {}
        for key, value in cfg.items():
            k = key.replace("-", "_")
            if k not in values:
                raise UsageError(f"unknown config key {key!r}; known: {sorted(values)}")
            if k in ("mechanism", "set", "iclamp", "record") and isinstance(value, str):
                value = [value]
            values[k] = value
    for k in values:
        v = getattr(opts, k, None)
        if v is not None:
            values[k] = v
    for k in ("t_stop", "dt"):
        if not (isinstance(values[k], (int, float)) and values[k] > 0):
            raise UsageError(f"{k} must be a positive number, got {values[k]!r}")
    return argparse.Namespace(**values), network


def _simulate_network(opts, spec, source) -> int:
    from .simulation import simulate

    net = spec.build()
    n_steps = int(round(opts.t_stop / opts.dt))
    n_nodes = sum(int(getattr(net.cell(i), "n_nodes", 1)) for i in range(len(net)))
    res = simulate(net, opts.t_stop, opts.dt, v_init=opts.v_init, celsius=opts.celsius,
                   method=opts.method, progress=not opts.quiet and n_steps * n_nodes > 2e5)
    t = np.asarray(res.t)
    traces = np.asarray(res.traces).reshape(len(res.labels), len(t))
    labels = [f"{name}@cell {loc.cell} {loc.section}({loc.x:g})" for name, loc in res.labels]
    cells = list(getattr(res, "spike_cells", []) or [])
    times = [np.asarray(s, float).ravel() for s in (getattr(res, "spikes", []) or [])]
    out = Path(opts.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = sorted((float(s), int(c)) for c, ts in zip(cells, times) for s in ts)
    with open(out / "spikes.csv", "w") as f:
        f.write("cell,t_ms\n")
        f.writelines(f"{c},{s:.10g}\n" for s, c in rows)
    np.savez(out / "traces.npz", t=t, traces=traces, labels=np.asarray(labels, dtype=str),
             spike_cells=np.asarray([c for _, c in rows], int),
             spike_times=np.asarray([s for s, _ in rows], float))
    np.savetxt(out / "traces.csv", np.column_stack([t, traces.T]), delimiter=",",
               header=",".join(["t_ms"] + labels), comments="")
    written = [out / "spikes.csv", out / "traces.csv", out / "traces.npz"]
    if not opts.no_plot:
        from .plotting import plot_network

        plot_network(t, traces, labels, cells, times, out / "network.png", n_cells=len(net),
                     title=f"dendrax: {Path(source).name}")
        written.append(out / "network.png")
    print(f"simulated {len(net)} cells for {opts.t_stop:g} ms (dt {opts.dt:g} ms): {len(rows)} "
          f"spikes from {sum(1 for ts in times if ts.size)} of {len(cells)} recorded cells; "
          f"wrote {', '.join(map(str, written))}")
    return 0


def main(argv=None) -> int:
    import jax

    jax.config.update("jax_enable_x64", True)  # the command owns its process: NEURON's float64
    opts = _parser().parse_args(argv)
    try:
        if opts.command == "info":
            return _info(opts)
        if opts.command == "plugins":
            return _plugins(opts)
        if opts.command == "fit":
            from .training.config import run as fit_config

            return fit_config(opts.config, out=opts.out, quiet=opts.quiet)
        options, network = _merge_config(opts)
        if network is not None:
            return _simulate_network(options, network, opts.config)
        return _simulate(options)
    except (ValueError, OSError, KeyError, IndexError) as err:
        msg = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"dendrax: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
