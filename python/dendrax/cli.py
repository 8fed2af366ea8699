"""The ``dendrax`` command line: ``info``, ``plugins``, ``simulate`` and ``fit``.

``dendrax simulate`` with no arguments runs the bundled branched neuron and
writes traces (CSV, .npz) and a PNG. Every option can also come from a TOML
file (``--config run.toml``) with the same names (dashes or underscores);
command-line options win. Bad arguments give a one-line error and exit 2.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import numpy as np

LOCATION = re.compile(r"^\s*(?P<sec>[A-Za-z_]+(\[\d+\])?|\d+)\s*(\(\s*(?P<x>[0-9.eE+-]+)\s*\))?\s*$")


class UsageError(ValueError):
    """A bad command-line or config value."""


def parse_location(cell, text: str):
    """'soma(0.5)', '12(0.3)' (section index), 'apic[2](1)' (k-th section of a region)."""
    m = LOCATION.match(text)
    if not m:
        raise UsageError(f"bad location {text!r}; use e.g. soma(0.5), 12(0.3) or apic[2](1)")
    sec, x = m.group("sec"), float(m.group("x") or 0.5)
    if sec.isdigit():
        return cell.section(int(sec))(x)
    region, _, k = sec.partition("[")
    secs = cell.sections(region)
    k = int(k.rstrip("]") or 0)
    if k >= len(secs):
        raise UsageError(f"{region} has {len(secs)} sections, no [{k}]")
    return cell.section(secs[k])(x)


def _split_where(text: str):
    value, _, where = text.partition("@")
    return value.strip(), (where.strip() or None)


def _where(cell, where):
    if where is None:
        return None
    if "(" in where:
        return parse_location(cell, where)
    return int(where) if where.isdigit() else where


def _build_cell(opts):
    from . import models
    from .cell import Cell
    from .morphology import read_morphology

    nseg = opts.nseg
    if nseg not in (None, "d_lambda"):
        try:
            nseg = int(nseg)
        except ValueError:
            raise UsageError(f"--nseg must be an integer or 'd_lambda', got {nseg!r}") from None
    if opts.swc is None:
        # user recordings replace the bundled cell's own
        cell = models.branched_neuron(nseg=nseg or "d_lambda", record=not opts.record)
        default = True
    else:
        morph = read_morphology(opts.swc)
        cell = Cell(morph, nseg=nseg or 1, Ra=opts.Ra if opts.Ra is not None else 35.4,
                    cm=opts.cm if opts.cm is not None else 1.0)
        default = False
    if default and opts.Ra is not None:
        cell.set("Ra", opts.Ra)
    if default and opts.cm is not None:
        cell.set("cm", opts.cm)
    for spec in opts.mechanism or (["hh"] if not default else []):
        name, where = _split_where(spec)
        cell.insert(name, where=_where(cell, where))
    for spec in opts.set or []:
        assignment, where = _split_where(spec)
        name, eq, value = assignment.partition("=")
        if not eq:
            raise UsageError(f"--set takes name=value[@where], got {spec!r}")
        try:
            cell.set(name.strip(), float(value), where=_where(cell, where))
        except ValueError as err:
            raise UsageError(str(err)) from None
    for spec in opts.iclamp or ([] if default else ["0.5,5,80@soma(0.5)"]):
        values, where = _split_where(spec)
        try:
            amp, delay, dur = (float(v) for v in values.split(","))
        except ValueError:
            raise UsageError(f"--iclamp takes amp,delay,dur[@location], got {spec!r}") from None
        cell.iclamp(parse_location(cell, where or "soma(0.5)"), delay=delay, dur=dur, amp=amp)
    if opts.record:
        for spec in opts.record:
            name, where = _split_where(spec)
            cell.record(name, parse_location(cell, where or "soma(0.5)"))
    elif not default:
        cell.record("v", cell.soma(0.5) if "soma" in cell.regions() else cell.section(0)(0.5))
    return cell


def _simulate(opts) -> int:
    from .simulation import simulate

    cell = _build_cell(opts)
    n_user = len(cell.recordings)
    user_labels = cell.recordings
    # peak v for the morphology plot: record every segment centre too
    comps = cell.compartments
    segment_nodes = cell.nodes()
    for node in segment_nodes:
        cell.record("v", cell.section(int(comps.section[node]))(float(comps.x[node])))
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
    v_soma = user[0]
    spikes = int(np.sum((v_soma[1:] >= 0) & (v_soma[:-1] < 0)))
    print(f"simulated {cell.n_nodes} nodes for {opts.t_stop:g} ms (dt {opts.dt:g} ms): "
          f"{spikes} spikes in the first recording; wrote {', '.join(map(str, written))}")
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
    s = sub.add_parser("simulate", help="simulate a cell and write traces and a plot")
    s.add_argument("swc", nargs="?", help="morphology file (default: the bundled branched neuron)")
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


def _merge_config(opts):
    values = dict(SIMULATE_DEFAULTS)
    if opts.config:
        try:
            import tomllib
        except ImportError:  # Python < 3.11
            import tomli as tomllib
        try:
            with open(opts.config, "rb") as f:
                cfg = tomllib.load(f)
        except OSError as err:
            raise UsageError(f"cannot read config {opts.config}: {err.strerror}") from None
        except tomllib.TOMLDecodeError as err:
            raise UsageError(f"config {opts.config} is not valid TOML: {err}") from None
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
    if values["nseg"] is not None:
        values["nseg"] = str(values["nseg"])
    return argparse.Namespace(**values)


def main(argv=None) -> int:
    opts = _parser().parse_args(argv)
    try:
        if opts.command == "info":
            return _info(opts)
        if opts.command == "plugins":
            return _plugins(opts)
        if opts.command == "fit":
            from .training.config import run as fit_config

            return fit_config(opts.config, out=opts.out, quiet=opts.quiet)
        return _simulate(_merge_config(opts))
    except (ValueError, OSError, KeyError, IndexError) as err:
        msg = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"dendrax: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
