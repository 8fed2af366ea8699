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
import os
import sys
from pathlib import Path

import numpy as np

from .modelfile import save as dx_save
from .spec import (CellSpec, NetworkSpec, SpecError, default_site, did_you_mean, is_network,
                   load_toml, parse_location)

__all__ = ["UsageError", "main", "parse_location"]

# a bad argument or config value: one line on stderr and exit status 2
UsageError = SpecError


def _simulate(opts, model=None) -> int:
    from .result import Result
    from .stdrun import simulate

    out = Path(opts.out)
    out.mkdir(parents=True, exist_ok=True)
    saved = []
    if model is None:
        spec = CellSpec.from_options(opts)
        cell = spec.build()
        dx_save(cell, out / "model.dendrax.json")  # the built model, to rerun or share
        saved, records = [out / "model.dendrax.json"], spec.record
    else:  # a saved model: its own recordings, and any --record (then saved again)
        cell, records = model, None
        for text in opts.record or []:
            name, _, where = text.partition("@")
            cell.record(name, parse_location(cell, where or default_site(cell)))
        if opts.record:
            dx_save(cell, out / "model.dendrax.json")
            saved = [out / "model.dendrax.json"]
    # columns named as the user wrote them (v@apic[3](1)); a saved model's by NEURON's names
    site = default_site(cell)
    names = [text if "@" in text else f"{text}@{site}" for text in records] \
        if records else [f"{n}@{cell.location_name(loc)}" for n, loc in cell.recordings]
    # peak v at every segment for the morphology plot: a statistic, no trace kept
    segments = cell.segments()
    if not opts.no_plot:
        cell.record("v", segments, reduce="max")
    cell.record_spikes(parse_location(cell, site))
    n_steps = int(round(opts.t_stop / opts.dt))
    res = simulate(cell, opts.t_stop, opts.dt, v_init=opts.v_init, celsius=opts.celsius,
                   method=opts.method, progress=not opts.quiet and n_steps * cell.n_nodes > 2e6)
    source = opts.swc or opts.model_file or "default branched neuron"
    spikes = res.spikes[-1]  # the soma's (site's), recorded last (a saved model may have its own)
    written = saved + _write_traces(out, res, names, {**res.meta, "morphology": str(source),
                                                     "options": _options_json(opts)},
                                    soma_spikes=spikes)
    if opts.nwb:
        written.append(_write_nwb(out, res, cell, source))
    if not opts.no_plot:
        from .plotting import plot_run

        peak = np.full(cell.n_nodes, np.nan)
        # the last statistics: those recorded above (a saved model may have its own first)
        peak[[cell.node(loc) for loc in segments]] = np.asarray(res.stats)[-len(segments):]
        plot_run(cell, Result(res.t, res.traces, res.labels, units=res.units, meta=res.meta),
                 out / "voltage.png", peak=peak, title=f"dendrax: {Path(str(source)).name}")
        written.append(out / "voltage.png")
    where = "the soma" if site == "soma(0.5)" else cell.location_name(parse_location(cell, site))
    print(f"simulated {cell.n_nodes} nodes for {res.meta['t_stop']:g} ms (dt {opts.dt:g} ms): "
          f"{spikes.size} spike{'' if spikes.size == 1 else 's'} at {where} (v > 10 mV, "
          f"{res.rates()[-1]:.1f} Hz); wrote "
          f"{', '.join(map(str, written))}")
    return 0


def _options_json(opts) -> str:
    import json

    return json.dumps({k: v for k, v in sorted(vars(opts).items())
                       if k not in ("quiet", "no_plot", "out")})


def _write_traces(out: Path, res, names, meta, soma_spikes=None) -> list:
    """traces.csv (a column per trace, named with its unit) and traces.npz (t, traces,
    labels, units and the run's settings; a network's spike_cells and spike_times, or a
    cell's soma spikes as spike_times)."""
    import json

    t = np.asarray(res.t)
    traces = np.asarray(res.traces).reshape(len(names), t.size)
    header = ",".join(["t (ms)"] + [f"{n} ({u})" for n, u in zip(names, res.units)])
    np.savetxt(out / "traces.csv", np.column_stack([t, traces.T]), delimiter=",", header=header,
               comments="")
    extra = {}
    if soma_spikes is not None:
        extra = {"spike_times": np.asarray(soma_spikes, float)}
    elif res.spike_cells:
        rows = sorted((float(s), c) for c, ts in zip(res.spike_cells, res.spikes) for s in ts)
        extra = {"spike_cells": np.asarray([c for _, c in rows], int),
                 "spike_times": np.asarray([s for s, _ in rows], float)}
    np.savez(out / "traces.npz", t=t, traces=traces, labels=np.asarray(names, dtype=str),
             units=np.asarray(res.units, dtype=str), meta=json.dumps(meta), **extra)
    return [out / "traces.csv", out / "traces.npz"]


def _write_nwb(out: Path, res, target, source) -> Path:
    from .nwb import write_nwb

    return write_nwb(res, out / "run.nwb", target=target,
                     session_description=f"dendrax simulate: {source}")

def _plugins(opts) -> int:
    from .mechanisms import available

    from .point import GENERATORS
    from .point.plasticity import PLASTIC

    for group, names in available().items():
        print(f"{group}:")
        for name, package in names.items():
            print(f"  {name:16s} {package}")
    # built in, not plugins: what net.population and net.connect also take by name
    print("built in (net.population): " + ", ".join(sorted(GENERATORS)))
    print("built in (net.connect between point neurons): static, " + ", ".join(sorted(PLASTIC)))
    return 0


def _info(opts) -> int:
    from .info import report

    print(report())
    return 0


SIMULATE_DEFAULTS = {"swc": None, "nseg": None, "Ra": None, "cm": None, "mechanism": None,
                     "set": None, "iclamp": None, "record": None, "t_stop": 100.0, "dt": 0.025,
                     "v_init": -65.0, "celsius": 6.3, "method": "backward_euler",
                     "out": "dendrax_out", "no_plot": False, "nwb": False, "quiet": False}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dendrax", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    from .nmodl.cli import add_parser as add_nmodl

    add_nmodl(sub)
    sub.add_parser("info", help="versions and available solver backends")
    sub.add_parser("plugins", help="registered channels, synapses and morphology readers")
    f = sub.add_parser("fit", help="fit parameters to traces, from a TOML config (docs/training.md)")
    f.add_argument("config", help="TOML file: [cell], [stimulus], [[param]], [target], [optimizer]")
    f.add_argument("--out", help="output folder (default: the config's out, else dendrax_fit)")
    f.add_argument("--quiet", action="store_true", help="no progress bar")
    col = sub.add_parser("column", help="run a cortical column from a TOML config (docs/columns.md)")
    col.add_argument("config", help="TOML file: [runtime], [[column]], [emitter], [probes], ...")
    col.add_argument("--out", help="output folder (default: the config's out, else column_out)")
    col.add_argument("--quiet", action="store_true", help="print nothing")
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
    s.add_argument("--nwb", action="store_true", default=None,
                   help="also write run.nwb (Neurodata Without Borders; needs pynwb)")
    s.add_argument("--quiet", action="store_true", default=None, help="no progress bar")
    return p


CELL_OPTIONS = ("nseg", "Ra", "cm", "mechanism", "set", "iclamp", "record")


def _merge_config(opts):
    """The options of ``dendrax simulate``: defaults, then the TOML config, then the command
    line. A network config (``[[cell]]`` tables) gives ``(options, NetworkSpec)``, any other
    ``(options, None)``. ``dendrax simulate run.toml`` reads run.toml as the config."""
    values = dict(SIMULATE_DEFAULTS)
    model_file = None
    if opts.swc is not None and str(opts.swc).endswith(".json"):  # a saved model (dx.save)
        model_file, opts.swc = opts.swc, None
        given = [k for k in CELL_OPTIONS if k != "record" and getattr(opts, k, None) is not None]
        if given:
            raise UsageError(f"options {given} do not apply to a saved model ({model_file}): its "
                             "values are in the file; change them in Python and save again")
    if opts.swc is not None and str(opts.swc).endswith(".toml"):
        if opts.config:
            raise UsageError(f"two configs: {opts.swc} and --config {opts.config}")
        opts.config, opts.swc = opts.swc, None
    network = None
    if opts.config:
        cfg = load_toml(opts.config)
        if is_network(cfg) and model_file is not None:
            raise UsageError(f"two models: the saved model {model_file} and the network config "
                             f"{opts.config}: give one")
        if model_file is not None:
            given = [k for k in cfg if k.replace("-", "_") in CELL_OPTIONS + ("swc",)
                     and k != "record"]
            if given:
                raise UsageError(f"config keys {given} of {opts.config} do not apply to a saved "
                                 f"model ({model_file}): its values are in the file; change "
                                 "them in Python and save again")
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
                raise UsageError(f"unknown config key {key!r}; known: {sorted(values)}"
                                 + did_you_mean([key], values))
            if k in ("mechanism", "set", "iclamp", "record") and isinstance(value, str):
                value = [value]
            values[k] = value
    for k in values:
        v = getattr(opts, k, None)
        if v is not None:
            values[k] = v
    for k in ("no_plot", "nwb", "quiet"):
        if not isinstance(values.get(k, False), bool):
            raise UsageError(f"{k} must be true or false, got {values[k]!r}")
    for k in ("out", "swc"):
        if values.get(k) is not None and not isinstance(values[k], (str, os.PathLike)):
            raise UsageError(f"{k} must be a path (a string), got {values[k]!r}")
    for k in ("t_stop", "dt"):
        v = values[k]
        if not (isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v < float("inf")):
            raise UsageError(f"{k} must be a finite positive number, got {v!r}")
    return argparse.Namespace(**values, model_file=model_file), network


def _simulate_network(opts, spec, source) -> int:
    from .stdrun import simulate

    out = Path(opts.out)
    out.mkdir(parents=True, exist_ok=True)
    net, saved = (spec.build(), [out / "model.dendrax.json"]) if spec is not None else (source, [])
    if saved:
        dx_save(net, saved[0])  # the built model, to rerun or share
    source = opts.model_file or source
    n_steps = int(round(opts.t_stop / opts.dt))
    n_nodes = sum(int(getattr(net.cell(i), "n_nodes", 1)) for i in range(len(net)))
    res = simulate(net, opts.t_stop, opts.dt, v_init=opts.v_init, celsius=opts.celsius,
                   method=opts.method, progress=not opts.quiet and n_steps * n_nodes > 2e6)
    names = [f"{name}@{net.location_name(loc)}" for name, loc in res.labels]
    rows = sorted((float(s), c) for c, ts in zip(res.spike_cells, res.spikes) for s in ts)
    with open(out / "spikes.csv", "w") as f:
        f.write("cell,t (ms)\n")
        f.writelines(f"{c},{s:.10g}\n" for s, c in rows)
    written = [*saved, out / "spikes.csv", *_write_traces(out, res, names,
                                                  {**res.meta, "network": str(source)})]
    if opts.nwb:
        written.append(_write_nwb(out, res, net, source))
    if not opts.no_plot:
        from .plotting import plot_network

        plot_network(res.t, res.traces, [n.replace("@", " ") for n in names], res.spike_cells,
                     res.spikes, out / "network.png", units=res.units,
                     n_cells=len(net) + sum(len(p) for p in net.populations),
                     title=f"dendrax: {Path(source).name}")
        written.append(out / "network.png")
    what = f"{len(net)} cells" + (f" and {sum(len(p) for p in net.populations)} point neurons"
                                  if net.populations else "")
    print(f"simulated {what} for {res.meta['t_stop']:g} ms (dt {opts.dt:g} ms): {len(rows)} "
          f"spikes from {sum(1 for ts in res.spikes if ts.size)} of {len(res.spike_cells)} "
          f"recorded neurons; wrote {', '.join(map(str, written))}")
    return 0


def _warning_line(message, category, filename, lineno, line=None) -> str:
    kind = "warning" if category in (UserWarning, RuntimeWarning) else category.__name__
    return f"dendrax: {kind}: {message}\n"


def main(argv=None) -> int:
    import jax

    jax.config.update("jax_enable_x64", True)  # the command owns its process: NEURON's float64
    if argv is None:  # run as the command: a warning is one line, not Python's file and source
        import warnings

        warnings.formatwarning = _warning_line
    opts = _parser().parse_args(argv)
    try:
        if opts.command == "info":
            return _info(opts)
        if opts.command == "plugins":
            return _plugins(opts)
        if opts.command == "nmodl":
            from .nmodl.cli import run as nmodl_run

            return nmodl_run(opts)
        if opts.command == "fit":
            from .training.config import run as fit_config

            return fit_config(opts.config, out=opts.out, quiet=opts.quiet)
        if opts.command == "column":
            from .column.cli import run as column_run

            return column_run(opts.config, out=opts.out, quiet=opts.quiet)
        options, network = _merge_config(opts)
        if network is not None:
            return _simulate_network(options, network, opts.config)
        if options.model_file is not None:
            from .modelfile import load

            model = load(options.model_file)
            if hasattr(model, "wiring") and model.wiring is not None:
                if options.record:
                    raise UsageError(f"--record does not apply to a saved network "
                                     f"({options.model_file}): record in Python "
                                     "(net.record(...)) and save again")
                return _simulate_network(options, None, model)
            return _simulate(options, model)
        return _simulate(options)
    except (ValueError, OSError, KeyError, IndexError, ImportError) as err:
        msg = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"dendrax: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
