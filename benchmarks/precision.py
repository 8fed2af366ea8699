"""float32 against float64 and NEURON: accuracy and speed of dendrax's float32 mode.

The single-cell models of ``single_cell.py`` (HH in every section, or the L5PC-like Hay
model, a 0.5 nA soma step from 5 to 85 ms, 100 ms at dt 0.025 ms, v at 10 sites; the
first site is the soma) run three ways:

* NEURON with exact rates (``h.usetable_hh = 0``, ``cache_efficient`` + ``psolve``): the
  reference;
* dendrax float64 (``jax_enable_x64`` on, the documented opt-in) in this process;
* dendrax float32 (``jax_enable_x64`` off: every array float32, the Hines solve in
  float32) in a fresh process (x64 is process-wide).

Reported per model: mean and max |dV| against NEURON over all sites and time points,
the somatic spike count and the largest spike-time difference (upward crossings of 0 mV,
linearly interpolated), time per run (median of --repeats after the first call) with
the float64 / float32 time ratio, and how far float32's gradient of the mean somatic v
(all time points) w.r.t. every parameter is from float64's: per parameter max |g32 - g64|
/ max |g64| over its entries, the largest and the median over the parameters. Float32 is "sufficient" (a documented claim, checked
in tests/test_precision.py on a small cell) when it keeps every somatic spike and moves
none by more than 0.1 ms and mean |dV| stays below 0.1 mV.

    python benchmarks/precision.py                              # every cell, nseg 1 and 4
    python benchmarks/precision.py --cells n120_ca1.swc --nseg 4 --repeats 3
    python benchmarks/precision.py --markdown docs/benchmarks.md    # rewrite "## float32"
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _models as M  # noqa: E402
import _runner as R  # noqa: E402

TITLE = "float32"
SPIKE_TOL_MS, MEAN_DV_TOL = 0.1, 0.1


def parse(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cells", nargs="*", default=None, help="SWC names in ../shared/morphologies")
    p.add_argument("--nseg", type=int, nargs="*", default=[1, 4])
    p.add_argument("--models", nargs="*", default=["HH", "L5PC-like"], choices=["HH", "L5PC-like"])
    p.add_argument("--t-stop", type=float, default=100.0)
    p.add_argument("--dt", type=float, default=0.025)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--skip-neuron", action="store_true")
    p.add_argument("--markdown", help="rewrite the '## float32' section of this file")
    p.add_argument("--json", help="save the raw results")
    p.add_argument("--from-json", help="re-render a saved run")
    p.add_argument("--case", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def build(kind, path, nseg):
    """(cell, sites, v_init, celsius) of a benchmark model."""
    if kind == "HH":
        cell, sites = M.dendrax_hh_cell(path, nseg)
        return cell, sites, M.V_INIT, M.CELSIUS
    cell, sites = M.dendrax_l5pc_cell(path, nseg)
    return cell, sites, M.HAY_V_INIT, M.HAY_CELSIUS


def run_dendrax(jax, kind, path, nseg, args) -> dict:
    """Traces [site, time] and the steady run time of the jitted loop, in this process's
    precision."""
    cell, _, v_init, celsius = build(kind, path, nseg)
    fwd = jax.jit(M.dendrax_forward(cell, args.t_stop, args.dt, v_init=v_init, celsius=celsius))
    params = cell.params
    traces, _, steady = R.timed(lambda: fwd(params).block_until_ready(), args.repeats)
    traces = np.asarray(traces)
    grad = jax.jit(jax.grad(lambda p: fwd(p)[:, 0].mean()))(params)  # mean somatic v
    names, leaves = zip(*((jax.tree_util.keystr(k), np.asarray(g, np.float64))
                          for k, g in jax.tree_util.tree_flatten_with_path(grad)[0]))
    return {"traces": traces.T.astype(np.float64), "run_s": steady, "dtype": str(traces.dtype),
            "n_comp": M.n_segments(cell), "grad_names": list(names), "grads": list(leaves)}


def run_case(case) -> dict:
    """The float32 run in this (fresh) process; its traces go to case["out"] (npz)."""
    import jax

    jax.config.update("jax_enable_x64", False)
    import warnings

    warnings.simplefilter("ignore")  # the PrecisionWarning float32 runs give
    args = parse(case["argv"])
    out = run_dendrax(jax, case["kind"], Path(case["path"]), case["nseg"], args)
    np.save(case["out"], out.pop("traces"))
    np.savez(case["out"] + ".grads.npz", *out.pop("grads"))
    return {**case, **out}


def spike_times(v, t) -> np.ndarray:
    """Upward crossings of 0 mV (ms), linearly interpolated."""
    up = np.flatnonzero((v[:-1] < 0.0) & (v[1:] >= 0.0))
    return t[up] + (0.0 - v[up]) / (v[up + 1] - v[up]) * (t[up + 1] - t[up])


def compare(a, ref, t) -> dict:
    """Mean and max |dV| (mV) and somatic spikes of traces ``a`` against ``ref``."""
    n = min(a.shape[1], ref.shape[1])
    dv = np.abs(a[:, :n] - ref[:, :n])
    sa, sr = spike_times(a[0, :n], t[:n]), spike_times(ref[0, :n], t[:n])
    shift = float(np.max(np.abs(sa - sr))) if sa.size == sr.size and sa.size else None
    return {"mean_dv": float(dv.mean()), "max_dv": float(dv.max()), "spikes": int(sa.size),
            "ref_spikes": int(sr.size), "max_shift_ms": shift}


def compare_gradients(names, g32, g64) -> dict:
    """Per parameter max |g32 - g64| / max |g64| (parameters whose float64 gradient is not
    all 0): the largest (and which) and the median."""
    rel = {n: float(np.max(np.abs(a - b)) / np.max(np.abs(b)))
           for n, a, b in zip(names, g32, g64) if np.any(b)}
    if not rel:
        return None
    worst = max(rel, key=rel.get)
    return {"max": rel[worst], "worst": worst, "median": float(np.median(list(rel.values())))}


def run_model(jax, kind, path, nseg, args, have_neuron, tmp) -> dict:
    row = {"model": kind, "cell": path.name, "nseg": nseg}
    t = np.arange(int(round(args.t_stop / args.dt)) + 1) * args.dt
    d64 = run_dendrax(jax, kind, path, nseg, args)
    case = {"argv": ["--t-stop", str(args.t_stop), "--dt", str(args.dt), "--repeats",
                     str(args.repeats)], "kind": kind, "path": str(path), "nseg": nseg,
            "out": str(Path(tmp) / f"{kind}_{path.stem}_{nseg}.npy")}
    d32 = R.run_case_subprocess(__file__, case, timeout=1800)
    row.update(n_comp=d64["n_comp"], f64_s=d64["run_s"])
    if "error" in d32:
        row["f32"] = d32["error"]
        return row
    f32 = np.load(case["out"])
    row.update(f32_s=d32["run_s"], speedup=d64["run_s"] / d32["run_s"], f32_dtype=d32["dtype"])
    row["f32_vs_f64"] = compare(f32, d64["traces"], t)
    with np.load(case["out"] + ".grads.npz") as z:
        g32 = [z[f"arr_{i}"] for i in range(len(z.files))]
    row["f32_grad"] = compare_gradients(d64["grad_names"], g32, d64["grads"])
    if have_neuron:
        cell, sites, v_init, celsius = build(kind, path, nseg)
        model = (M.neuron_hh(path, nseg, sites, args.t_stop, args.dt) if kind == "HH" else
                 M.neuron_mirror(path, nseg, cell, sites, args.t_stop, args.dt, v_init=v_init,
                                 celsius=celsius))
        ref = model.run("exact")
        row["f64_vs_neuron"] = compare(d64["traces"], ref, t)
        row["f32_vs_neuron"] = compare(f32, ref, t)
        del model
    log(f"  {row}")
    return row


def sufficient(c) -> bool:
    return (c["spikes"] == c["ref_spikes"] and (c["max_shift_ms"] or 0.0) <= SPIKE_TOL_MS
            and c["mean_dv"] < MEAN_DV_TOL)


HEADERS = ["model", "cell", "nseg", "compartments", "float64 s", "float32 s",
           "float64 / float32", "float64 mean / max abs dV vs NEURON (mV)",
           "float32 mean / max abs dV vs NEURON (mV)", "soma spikes (NEURON, float32)",
           "max spike shift float32 (ms)", "float32 sufficient",
           "float32 gradient off float64 (largest / median)"]


def table_rows(rows):
    out = []
    for r in rows:
        if "f32_s" not in r:
            out.append([r["model"], r["cell"], r["nseg"], r["n_comp"], R.fmt(r["f64_s"], ".3f"),
                        r.get("f32", "-")] + ["-"] * 7)
            continue
        ref = r.get("f32_vs_neuron", r["f32_vs_f64"])
        f64 = r.get("f64_vs_neuron")
        out.append([
            r["model"], r["cell"], r["nseg"], r["n_comp"], R.fmt(r["f64_s"], ".3f"),
            R.fmt(r["f32_s"], ".3f"), R.fmt(r["speedup"], ".2f"),
            "-" if f64 is None else f"{f64['mean_dv']:.1e} / {f64['max_dv']:.1e}",
            f"{ref['mean_dv']:.1e} / {ref['max_dv']:.1e}",
            f"{ref['ref_spikes']}, {ref['spikes']}", R.fmt(ref["max_shift_ms"], ".2e"),
            "yes" if sufficient(ref) else "**no**", grad_cell(r.get("f32_grad"))])
    return out


def grad_cell(g) -> str:
    if g is None:
        return "-"
    return f"{g['max']:.1e} ({g['worst']}) / {g['median']:.1e}"


def markdown(rows, args, machine, notes) -> str:
    lines = [
        "Written by `benchmarks/precision.py`. The *Single cell* models in float64 (`jax_enable_x64` "
        "on, NEURON's precision: README, Precision) and float32 (x64 off, in a fresh process), against "
        "NEURON with exact rates (`usetable_hh = 0`). Spikes: upward crossings of 0 mV at the "
        "soma. *float32 sufficient*: the same somatic spikes, none moved by more than "
        f"{SPIKE_TOL_MS:g} ms, mean |dV| below {MEAN_DV_TOL:g} mV. *float32 gradient*: of "
        "the mean somatic v over the run w.r.t. every parameter (`jax.grad`), per parameter "
        "max |g32 - g64| / max |g64| over its entries; the largest over the parameters (which) "
        "and their median.", "",
        *machine, *[f"- note: {n}" for n in notes], "",
        R.markdown_table(HEADERS, table_rows(rows)), ""]
    ok = [r for r in rows if "f32_s" in r]
    if ok:
        good = [r for r in ok if sufficient(r.get("f32_vs_neuron", r["f32_vs_f64"]))]
        lines.append(f"- float32 sufficient in {len(good)} of {len(ok)} models")
        lines.append(f"- float32 speed-up over float64: {min(r['speedup'] for r in ok):.2f}x to "
                     f"{max(r['speedup'] for r in ok):.2f}x")
        for kind in dict.fromkeys(r["model"] for r in ok):
            g = [r["f32_grad"] for r in ok if r["model"] == kind and r.get("f32_grad")]
            if g:
                lines.append(f"- {kind}: float32 gradients off float64's by at most "
                             f"{max(x['max'] for x in g):.1e} of a parameter's largest entry "
                             f"(medians {min(x['median'] for x in g):.1e} to "
                             f"{max(x['median'] for x in g):.1e})")
    return "\n".join(lines)


def report(rows, args, machine, notes):
    log("\n" + R.markdown_table(HEADERS, table_rows(rows)) + "\n")
    if args.markdown:
        R.write_section(args.markdown, TITLE, markdown(rows, args, machine, notes))
        log(f"wrote section '## {TITLE}' of {args.markdown}")


def main(argv=None) -> int:
    import tempfile

    argv, args = R.start(argv, parse, report, run_case)
    if args is None:
        return 0
    jax = R.setup_jax()
    paths, msg = M.resolve_cells(args.cells)
    notes = [msg] if msg else []
    if not paths:
        log(msg or "nothing to run")
        return 0
    have_neuron = not args.skip_neuron and M.neuron_h() is not None
    models = list(args.models)
    if "L5PC-like" in models:
        why = M.l5pc_unavailable() or (M.load_hay_neuron() if have_neuron else None)
        if why is not None:
            models.remove("L5PC-like")
            notes.append(f"L5PC-like model skipped ({why})")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind in models:
            for path in paths:
                for nseg in args.nseg:
                    log(f"{kind} {path.name} nseg={nseg}")
                    rows.append(run_model(jax, kind, path, nseg, args, have_neuron, tmp))
    return R.finish(__file__, argv, args, notes, rows, report)


if __name__ == "__main__":
    sys.exit(main())
