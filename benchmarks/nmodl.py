"""NMODL import: the Hay channels imported from .mod files against the hand-written ones.

The L5PC-like model of ``benchmarks/single_cell.py`` (``dendrax.models.l5pc_like``: the
Hay et al. 2011 channels and densities by region, Ih growing with distance, the apical
Ca hot zone; a 0.5 nA soma step from 5 to 85 ms, celsius 34, v_init -80 mV, float64,
100 ms at dt 0.025 ms, v recorded at 10 sites) is built twice on each shared morphology
and nseg:

* hand-written: dendrax's own Hay channels (``dendrax.mechanisms.hay``);
* imported: the same cell with every Hay channel and the calcium pool the classes
  ``dendrax.nmodl.load`` makes from ``tests/nmodl/*.mod`` (pas stays dendrax's). The
  built-in names are shadowed while ``l5pc_like`` builds the cell (its
  ``cell.insert(name)`` then finds the imported class), so both cells have the same
  compartments, parameters and recordings; only the mechanisms' code differs.

Reported: the forward run (``dendrax.simulation.run`` under ``jax.jit``, as single_cell.py
times it) of both, compile time and median of --repeats runs, the two interleaved (hand,
imported, hand, ...) so that a change of load on a shared machine hits both alike; the
ratio imported / hand-written (target <= 1.10); their agreement (mean and max |dV| over
the sites and all time points); and the import time of each .mod file: parse (NEURON's
NMODL parser and dendrax's analysis, ``describe``), codegen (``codegen.generate``) and
exec (compiling the generated Python into a class).

    python benchmarks/nmodl.py                                   # both cells, nseg 1 and 4
    python benchmarks/nmodl.py --cells n120_ca1.swc --nseg 1 --repeats 3
    python benchmarks/nmodl.py --markdown docs/benchmarks.md     # rewrite "## NMODL import"
    python benchmarks/nmodl.py --json run.json                   # keep the raw results
    python benchmarks/nmodl.py --from-json run.json --markdown docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _models as M  # noqa: E402
import _runner as R  # noqa: E402

TITLE = "NMODL import"
TARGET_RATIO = 1.10
CELLS = ["n120_ca1.swc", "NMO_49821_ca1_pyramidal.swc"]
MOD_DIR = M.REPO / "tests" / "nmodl"


def parse(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cells", nargs="+", default=None,
                   help="SWC names in ../shared/morphologies or paths (default: "
                        + ", ".join(CELLS) + ")")
    p.add_argument("--nseg", nargs="+", type=int, default=[1, 4])
    p.add_argument("--t-stop", type=float, default=100.0, help="ms")
    p.add_argument("--dt", type=float, default=0.025, help="ms")
    p.add_argument("--repeats", type=int, default=7,
                   help="timed calls of each model after the first (interleaved)")
    p.add_argument("--mod-dir", default=str(MOD_DIR),
                   help="folder of the Hay .mod files (default tests/nmodl)")
    p.add_argument("--markdown", metavar="PATH",
                   help="write the results as section '## NMODL import' of PATH")
    p.add_argument("--json", metavar="PATH", help="also write the raw results as JSON")
    p.add_argument("--from-json", metavar="PATH",
                   help="render the tables of a saved --json run instead of running")
    return p.parse_args(argv)


def log(*a):
    print(*a, flush=True)


# --- importing ---------------------------------------------------------------------------

def import_files(mod_dir: Path):
    """Each .mod file of ``mod_dir`` through dendrax.nmodl's stages, timed: {name: class}
    and one row per file. Importing NEURON (``neuron_s``) and its NMODL framework
    (``framework_s``), once per process before the first file, are timed apart."""
    from dendrax import nmodl
    from dendrax.nmodl.codegen import generate
    from dendrax.nmodl.describe import describe, read

    t0 = time.perf_counter()
    import neuron  # noqa: F401
    t1 = time.perf_counter()
    import neuron.nmodl  # noqa: F401
    neuron_s, framework_s = t1 - t0, time.perf_counter() - t1
    classes, rows = {}, []
    for i, path in enumerate(sorted(mod_dir.glob("*.mod"))):
        text, source = read(path)
        t0 = time.perf_counter()
        d = describe(text, source)
        t1 = time.perf_counter()
        code = generate(d)
        t2 = time.perf_counter()
        module = nmodl.exec_source(code, f"dendrax_bench_nmodl._{i}_{path.stem}")
        t3 = time.perf_counter()
        cls = next(v for v in module.__dict__.values()
                   if isinstance(v, type) and getattr(v, "name", None) == d.name
                   and v.__module__ == module.__name__)
        classes[cls.name] = cls
        rows.append({"file": path.name, "mechanism": cls.name, "kind": cls.__mro__[1].__name__,
                     "lines": len(text.splitlines()), "generated_lines": len(code.splitlines()),
                     "parse_ms": (t1 - t0) * 1e3, "codegen_ms": (t2 - t1) * 1e3,
                     "exec_ms": (t3 - t2) * 1e3, "total_ms": (t3 - t0) * 1e3})
    # and nmodl.load as users call it (all stages), timed over the same files
    t0 = time.perf_counter()
    for path in sorted(mod_dir.glob("*.mod")):
        nmodl.load(path, register=False)
    load_ms = (time.perf_counter() - t0) * 1e3 / max(len(rows), 1)
    return classes, {"neuron_s": neuron_s, "framework_s": framework_s, "files": rows,
                     "load_ms_mean": load_ms}


@contextlib.contextmanager
def shadowed(classes: dict):
    """While active, ``cell.insert(name)`` (dendrax.mechanisms.registry.channel) finds the
    given classes under their names instead of the installed plugins of those names."""
    from dendrax.mechanisms import registry
    from dendrax.mechanisms.base import Channel, IonPool
    from dendrax.mechanisms.validation import check_mechanism

    original = registry.channel

    def channel(name):
        cls = classes.get(name.rpartition(":")[2])
        if cls is None:
            return original(name)
        return check_mechanism(cls, IonPool if issubclass(cls, IonPool) else Channel)

    registry.channel = channel
    try:
        yield
    finally:
        registry.channel = original


# --- one cell ----------------------------------------------------------------------------

def same_model(a, b, names) -> None:
    """The two cells differ only in the classes of ``names``: same parameter values."""
    pa, pb = a.params, b.params
    assert set(pa["channels"]) == set(pb["channels"]), (set(pa["channels"]), set(pb["channels"]))
    for m in pa["channels"]:
        assert set(pa["channels"][m]) == set(pb["channels"][m]), m
        for k, x in pa["channels"][m].items():
            np.testing.assert_array_equal(np.asarray(x), np.asarray(pb["channels"][m][k]),
                                          err_msg=f"{m}.{k}")
    for m in names:
        if m in a.mechanisms:
            assert type(a.mechanisms[m]) is not type(b.mechanisms[m])


def run_cell(jax, path, nseg, classes, args):
    row = {"cell": path.name, "nseg": nseg}
    hand, _ = M.dendrax_l5pc_cell(path, nseg)
    with shadowed(classes):
        imported, _ = M.dendrax_l5pc_cell(path, nseg)
    same_model(hand, imported, set(classes))
    row["imported_mechanisms"] = sorted(m for m in imported.mechanisms
                                        if type(imported.mechanisms[m]).__module__
                                        .startswith("dendrax_bench_nmodl"))
    n_steps = int(round(args.t_stop / args.dt))
    row.update(n_comp=M.n_segments(hand), n_nodes=hand.n_nodes, n_steps=n_steps)
    fwd, params, traces, times, compile_s = {}, {}, {}, {}, {}
    for key, cell in (("hand", hand), ("imported", imported)):
        fwd[key] = jax.jit(M.dendrax_forward(cell, args.t_stop, args.dt, v_init=M.HAY_V_INIT,
                                             celsius=M.HAY_CELSIUS))
        params[key] = cell.params
        t0 = time.perf_counter()
        traces[key] = np.asarray(fwd[key](params[key]).block_until_ready()).T
        compile_s[key] = time.perf_counter() - t0
        times[key] = []
    for _ in range(max(1, args.repeats)):  # interleaved: load changes hit both alike
        for key in ("hand", "imported"):
            t0 = time.perf_counter()
            fwd[key](params[key]).block_until_ready()
            times[key].append(time.perf_counter() - t0)
    for key in ("hand", "imported"):
        run_s = statistics.median(times[key])
        row[key] = {"compile_s": max(compile_s[key] - run_s, 0.0), "run_s": run_s,
                    "ns": run_s / (row["n_comp"] * n_steps) * 1e9, "times": times[key]}
    row["ratio"] = row["imported"]["run_s"] / row["hand"]["run_s"]
    row["pair_ratio"] = statistics.median(i / h for h, i in zip(times["hand"], times["imported"]))
    dv = np.abs(traces["imported"] - traces["hand"])
    row["mean_dv"], row["max_dv"] = float(dv.mean()), float(dv.max())
    row["spikes_soma"] = int(((traces["hand"][0][1:] >= 0) & (traces["hand"][0][:-1] < 0)).sum())
    log(f"  {row['n_comp']} compartments ({row['n_nodes']} nodes); hand-written: compile "
        f"{row['hand']['compile_s']:.2f} s, run {row['hand']['run_s']:.3f} s; imported: compile "
        f"{row['imported']['compile_s']:.2f} s, run {row['imported']['run_s']:.3f} s; "
        f"imported / hand {row['ratio']:.3f} (median of pairs {row['pair_ratio']:.3f}); "
        f"mean |dV| {row['mean_dv']:.1e} mV, max {row['max_dv']:.1e} mV; "
        f"{row['spikes_soma']} soma spikes")
    del fwd, hand, imported
    gc.collect()
    return row


# --- output ------------------------------------------------------------------------------

SPEED_HEADERS = ["cell", "nseg", "compartments (dendrax nodes)", "hand-written compile s",
                 "imported compile s", "hand-written s", "imported s", "imported / hand-written",
                 "median of paired ratios", "mean abs dV mV", "max abs dV mV", "soma spikes"]
IMPORT_HEADERS = ["file", "mechanism", "kind", "NMODL lines", "generated lines", "parse ms",
                  "codegen ms", "exec ms", "total ms"]


def speed_rows(rows):
    out = []
    for r in rows:
        if "error" in r:
            out.append([r["cell"], r["nseg"], r["error"]] + [""] * 9)
            continue
        h, i = r["hand"], r["imported"]
        out.append([r["cell"], r["nseg"], f"{r['n_comp']} ({r['n_nodes']})",
                    R.fmt(h["compile_s"], ".2f"), R.fmt(i["compile_s"], ".2f"),
                    R.fmt(h["run_s"], ".3f"), R.fmt(i["run_s"], ".3f"), R.fmt(r["ratio"], ".3f"),
                    R.fmt(r["pair_ratio"], ".3f"), R.fmt(r["mean_dv"], ".1e"),
                    R.fmt(r["max_dv"], ".1e"), r["spikes_soma"]])
    return out


def import_rows(imp):
    rows = [[f["file"], f["mechanism"], f["kind"], f["lines"], f["generated_lines"],
             R.fmt(f["parse_ms"], ".1f"), R.fmt(f["codegen_ms"], ".1f"),
             R.fmt(f["exec_ms"], ".1f"), R.fmt(f["total_ms"], ".1f")] for f in imp["files"]]
    if imp["files"]:
        tot = {k: sum(f[k] for f in imp["files"]) for k in ("parse_ms", "codegen_ms", "exec_ms",
                                                             "total_ms")}
        rows.append([f"all {len(imp['files'])}", "", "", sum(f["lines"] for f in imp["files"]),
                     sum(f["generated_lines"] for f in imp["files"]),
                     R.fmt(tot["parse_ms"], ".1f"), R.fmt(tot["codegen_ms"], ".1f"),
                     R.fmt(tot["exec_ms"], ".1f"), R.fmt(tot["total_ms"], ".1f")])
    return rows


def tables(results, args) -> list[str]:
    rows, imp = results["rows"], results["import"]
    out = [f"Speed (s: median time of one {args.t_stop:g} ms simulation after compile; "
           "*imported / hand-written* < 1: the imported channels faster):", "",
           R.markdown_table(SPEED_HEADERS, speed_rows(rows)), "",
           "Import time per .mod file (`tests/nmodl`, ms; once per process before the first "
           f"file, not included: importing NEURON {imp['neuron_s'] * 1e3:.0f} ms and its NMODL "
           f"framework `neuron.nmodl` {imp['framework_s'] * 1e3:.0f} ms; "
           f"`dendrax.nmodl.load` of a file, all stages: {imp['load_ms_mean']:.1f} ms on "
           "average):", "", R.markdown_table(IMPORT_HEADERS, import_rows(imp))]
    return out


def targets(results) -> list[str]:
    ok = [r for r in results["rows"] if "error" not in r]
    if not ok:
        return ["- (no rows: target not evaluated)"]
    worst = max(ok, key=lambda r: r["ratio"])
    pairs = max(ok, key=lambda r: r["pair_ratio"])
    met = ("**met**" if max(worst["ratio"], pairs["pair_ratio"]) <= TARGET_RATIO
           else "**not met**")
    return [f"- imported channel set as fast as the hand-written one (imported / hand-written "
            f"<= {TARGET_RATIO:.2f}): worst ratio of medians {worst['ratio']:.3f} "
            f"({worst['cell']}, nseg {worst['nseg']}), worst median of paired ratios "
            f"{pairs['pair_ratio']:.3f} ({pairs['cell']}, nseg {pairs['nseg']}), {met}",
            f"- agreement: mean abs dV <= {max(r['mean_dv'] for r in ok):.1e} mV, max abs dV <= "
            f"{max(r['max_dv'] for r in ok):.1e} mV over all rows"]


def markdown(results, args, machine, notes) -> str:
    body = [
        "Written by `benchmarks/nmodl.py`. The L5PC-like model of *Single cell* "
        "(`dendrax.models.l5pc_like`: the Hay et al. 2011 channels and densities; a 0.5 nA "
        f"soma step from 5 to 85 ms, celsius 34, v_init -80 mV, float64, {args.t_stop:g} ms "
        f"at dt {args.dt:g} ms, v at 10 sites) built twice per cell and nseg: with dendrax's "
        "hand-written Hay channels (`dendrax.mechanisms.hay`), and with the classes "
        "`dendrax.nmodl.load` makes from `tests/nmodl/*.mod` (the 11 channels and "
        "CaDynamics_E2; pas stays dendrax's).",
        "",
        *machine,
        "",
        *tables(results, args),
        "",
        "Targets:",
        "",
        *targets(results),
        "",
        "How it is measured:",
        "",
        "- The imported cell is built by the same `l5pc_like` while the Hay names are "
        "shadowed by the imported classes (`cell.insert(name)` finds them), and checked to "
        "have the same parameter values as the hand-written one: the two runs differ only "
        "in the mechanisms' code.",
        "- Forward run: `dendrax.simulation.run` under `jax.jit` with the params pytree as "
        "argument (as *Single cell*). *compile* = first call minus the median steady call; "
        f"*s* = median of {args.repeats} calls after the first, the two models' calls "
        "interleaved (hand-written, imported, hand-written, ...) so that a change of load "
        "on the shared machine affects both; *median of paired ratios* = the median of "
        "imported / hand-written over those consecutive pairs.",
        "- Agreement: mean and max abs difference of the two runs' voltages over the 10 "
        "sites and all time points (both compute NEURON's cnexp step; the generated code "
        "takes the exponential's rate by forward-mode autodiff, the hand-written one in "
        "closed form, so they differ by round-off).",
        "- Import: per file, *parse* = `describe` (NEURON's NMODL parser, `neuron.nmodl`, "
        "and dendrax's analysis and checks), *codegen* = `codegen.generate` (the Python "
        "source), *exec* = compiling and executing that source into the class; importing "
        "NEURON and `neuron.nmodl` themselves is a one-time cost per process, given apart. "
        "A generated class is compiled by XLA with the model, like a hand-written one (the "
        "*compile* columns).",
        *[f"- {n}" for n in notes],
        "",
        M.ATTRIBUTION,
    ]
    return "\n".join(body)


def report(results, args, machine, notes):
    log("\n" + "\n".join(tables(results, args)) + "\n")
    for line in targets(results):
        log(line)
    if args.markdown:
        R.write_section(args.markdown, TITLE, markdown(results, args, machine, notes))
        log(f"wrote section '## {TITLE}' of {args.markdown}")


def main(argv=None) -> int:
    argv, args = R.start(argv, parse, report)
    if args is None:
        return 0
    import importlib.util

    if importlib.util.find_spec("neuron") is None:
        log("NMODL import: skipped (NEURON's NMODL framework, neuron >= 9, is not installed: "
            "pip install 'dendrax[nmodl]')")
        return 0
    if (why := M.l5pc_unavailable()) is not None:
        log(f"NMODL import: skipped (the L5PC-like model does not build: {why})")
        return 0
    mod_dir = Path(args.mod_dir)
    if not any(mod_dir.glob("*.mod")):
        log(f"NMODL import: skipped (no .mod files in {mod_dir})")
        return 0
    jax = R.setup_jax()
    paths, msg = M.resolve_cells(args.cells or CELLS)
    notes = []
    if msg:
        log(msg)
        notes.append(msg)
    if not paths:
        log("nothing to run")
        return 0
    try:
        classes, imp = import_files(mod_dir)
    except ImportError as err:
        log(f"NMODL import: skipped (NEURON's NMODL framework, neuron >= 9, is not installed: "
            f"pip install 'dendrax[nmodl]'): {err}")
        return 0
    for f in imp["files"]:
        log(f"  import {f['file']}: parse {f['parse_ms']:.1f} ms, codegen {f['codegen_ms']:.1f} "
            f"ms, exec {f['exec_ms']:.1f} ms")
    rows = []
    for path in paths:
        for nseg in args.nseg:
            log(f"L5PC-like {path.name} nseg={nseg}")
            rows.append(run_cell(jax, path, nseg, classes, args))
    return R.finish(__file__, argv, args, notes, {"rows": rows, "import": imp}, report)


if __name__ == "__main__":
    sys.exit(main())
