"""Single-cell simulation speed and accuracy: dendrax vs NEURON vs Jaxley on real cells.

For each SWC cell (default: the four in ../shared/morphologies) and each nseg: HH in
every section (Ra 100 ohm cm, cm 1 uF/cm2), a 0.5 nA soma step from 5 to 85 ms,
float64, 100 ms at dt 0.025 ms, v recorded at 10 sites. The same model runs in

* dendrax: ``dendrax.simulation.run`` under ``jax.jit`` (what ``dx.simulate`` runs),
  taking the params pytree as its argument;
* NEURON: the same SWC through Import3d, the same nseg, ``h.usetable_hh = 0``,
  ``ParallelContext.psolve`` (NEURON's fixed-step loop);
* Jaxley: ``jx.read_swc`` of the same file with ``ncomp = nseg`` (its own reader: the
  number and shape of compartments differ from NEURON's), ``jaxley.channels.HH``, the
  same step current, ``jx.integrate`` under ``jax.jit`` with the HH parameters as
  trainable per-compartment arguments.

Reported per simulator: compartments, compile time (first call minus a steady call),
time after compile (median of --repeats), ns per compartment-step, mean |dV| against
NEURON over the 10 sites and all time points (Jaxley: at its compartments nearest the
sites in 3-D), and time ratios. dendrax also reports value_and_grad / forward for the
gradient w.r.t. all HH parameters. A second model, "L5PC-like" (the Hay et al. 2011
channels and densities, ``dendrax.models.l5pc_like``), runs in dendrax and, when the
NMODL of tests/nmodl compiles, in NEURON with every parameter copied from the dendrax
cell; it is skipped when dendrax's Hay channels do not load.

    python benchmarks/single_cell.py                                  # everything
    python benchmarks/single_cell.py --cells n120_ca1.swc --nseg 4 --repeats 3
    python benchmarks/single_cell.py --markdown docs/benchmarks.md    # rewrite "## Single cell"
    python benchmarks/single_cell.py --json run.json                  # keep the raw results
    python benchmarks/single_cell.py --from-json run.json --markdown docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import gc
import shlex
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

TITLE = "Single cell"
TARGET_NS, TARGET_COMPILE, TARGET_GRAD = 15.0, 3.0, 3.0
TARGET_COMPS = 900


def parse(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cells", nargs="+", default=None,
                   help="SWC names in ../shared/morphologies or paths (default: all four)")
    p.add_argument("--nseg", nargs="+", type=int, default=[1, 4])
    p.add_argument("--t-stop", type=float, default=100.0, help="ms")
    p.add_argument("--dt", type=float, default=0.025, help="ms")
    p.add_argument("--repeats", type=int, default=5, help="timed calls after the first")
    p.add_argument("--skip-jaxley", action="store_true")
    p.add_argument("--skip-neuron", action="store_true")
    p.add_argument("--skip-l5pc", action="store_true", help="skip the L5PC-like model")
    p.add_argument("--no-grad", action="store_true", help="skip dendrax's gradient timing")
    p.add_argument("--markdown", metavar="PATH",
                   help="write the results as section '## Single cell' of PATH")
    p.add_argument("--json", metavar="PATH", help="also write the raw results as JSON")
    p.add_argument("--from-json", metavar="PATH",
                   help="render the tables of a saved --json run instead of running")
    return p.parse_args(argv)


def log(*a):
    print(*a, flush=True)


# --- one model -------------------------------------------------------------------------------

def bench_dendrax(jax, cell, args, *, v_init, celsius, grad_keys):
    """Forward (and value_and_grad w.r.t. params[k] for k in grad_keys) of the jitted loop."""
    fwd = jax.jit(C.dendrax_forward(cell, args.t_stop, args.dt, v_init=v_init, celsius=celsius))
    params = cell.params
    traces, first, steady = C.timed(lambda: fwd(params).block_until_ready(), args.repeats)
    out = {"compile_s": max(first - steady, 0.0), "run_s": steady,
           "traces": np.asarray(traces).T}
    if not args.no_grad:
        loop = C.dendrax_forward(cell, args.t_stop, args.dt, v_init=v_init, celsius=celsius)

        def loss(sub):
            return loop({**params, "channels": {**params["channels"], **sub}}).mean()

        loss_j = jax.jit(loss)
        vg = jax.jit(jax.value_and_grad(loss))
        sub = {k: params["channels"][k] for k in grad_keys}
        _, _, f_s = C.timed(lambda: loss_j(sub).block_until_ready(), args.repeats)
        _, _, g_s = C.timed(lambda: jax.block_until_ready(vg(sub)), args.repeats)
        out.update(loss_s=f_s, grad_s=g_s, grad_ratio=g_s / f_s)
    return out


def bench_neuron(model, args):
    ref, _, steady = C.timed(model.run, args.repeats)
    return {"run_s": steady, "traces": ref}


def bench_jaxley(jax, path, nseg, sites_xyz, args):
    import jaxley as jx

    t0 = time.perf_counter()
    cell, n_comp, idx = C.jaxley_hh(path, nseg, sites_xyz)
    rows = C.jaxley_stimulate(cell, idx, args.t_stop, args.dt)
    build = time.perf_counter() - t0
    params = cell.get_parameters()
    f = jax.jit(lambda p: jx.integrate(cell, params=p, t_max=args.t_stop, delta_t=args.dt))
    traces, first, steady = C.timed(lambda: f(params).block_until_ready(), args.repeats)
    traces = np.asarray(traces)[rows]
    del cell, f
    return {"n_comp": n_comp, "build_s": build, "compile_s": max(first - steady, 0.0),
            "run_s": steady, "traces": traces, "n_steps": traces.shape[1] - 1}


def run_model(jax, kind, path, nseg, args, have_neuron, have_jaxley, hay_neuron, skip):
    row = {"model": kind, "cell": path.name, "nseg": nseg}
    n_steps = int(round(args.t_stop / args.dt))
    if kind == "HH":
        cell, sites = C.dendrax_hh_cell(path, nseg)
        v_init, celsius, grad_keys = C.V_INIT, C.CELSIUS, ["hh"]
    else:
        cell, sites = C.dendrax_l5pc_cell(path, nseg)
        v_init, celsius = C.HAY_V_INIT, C.HAY_CELSIUS
        grad_keys = C.mechanisms(cell)
    row.update(n_comp=C.n_segments(cell), n_nodes=cell.n_nodes, n_steps=n_steps)
    d = bench_dendrax(jax, cell, args, v_init=v_init, celsius=celsius, grad_keys=grad_keys)
    row["dendrax"] = d
    d["ns"] = d["run_s"] / (row["n_comp"] * n_steps) * 1e9
    log(f"  dendrax: {row['n_comp']} compartments, compile {d['compile_s']:.2f} s, "
        f"run {d['run_s']:.3f} s ({d['ns']:.1f} ns/compartment-step)"
        + (f", grad/fwd {d['grad_ratio']:.2f}" if "grad_ratio" in d else ""))

    ref = None
    if kind == "L5PC-like" and hay_neuron is not None:
        row["neuron"] = hay_neuron
    elif have_neuron:
        model = (C.neuron_hh(path, nseg, sites, args.t_stop, args.dt) if kind == "HH" else
                 C.neuron_mirror(path, nseg, cell, sites, args.t_stop, args.dt,
                                 v_init=v_init, celsius=celsius))
        alive = model.n_sections_alive()
        n = bench_neuron(model, args)
        n["ns"] = n["run_s"] / (row["n_comp"] * n_steps) * 1e9
        n["ratio"] = n["run_s"] / d["run_s"]
        if alive != len(model.secs):
            n["note"] = f"{alive} sections alive in NEURON (expected {len(model.secs)})"
            log(f"  warning: {n['note']}: NEURON's time includes other cells")
        ref = n["traces"]
        d["dv"] = C.mean_abs_dv(d["traces"], ref)
        row["neuron"] = n
        del model
        gc.collect()
        log(f"  NEURON: run {n['run_s']:.3f} s ({n['ns']:.1f} ns/compartment-step), "
            f"NEURON/dendrax {n['ratio']:.2f}; dendrax mean |dV| {d['dv']:.2e} mV")
    else:
        row["neuron"] = skip["neuron"]

    if kind != "HH":
        row["jaxley"] = "n/a (Jaxley has no Hay channels)"
    elif have_jaxley:
        xyz = [C.site_xyz(cell.morphology, s) for s in sites]
        j = bench_jaxley(jax, path, nseg, xyz, args)
        j["ns"] = j["run_s"] / (j["n_comp"] * j["n_steps"]) * 1e9
        j["ratio"] = j["run_s"] / d["run_s"]
        if ref is not None:
            j["dv"] = C.mean_abs_dv(j["traces"], ref)
        row["jaxley"] = j
        log(f"  Jaxley: {j['n_comp']} compartments, compile {j['compile_s']:.2f} s, run "
            f"{j['run_s']:.3f} s ({j['ns']:.1f} ns/compartment-step), Jaxley/dendrax "
            f"{j['ratio']:.2f}" + (f", mean |dV| vs NEURON {j['dv']:.2f} mV" if "dv" in j else ""))
    else:
        row["jaxley"] = skip["jaxley"]
    gc.collect()
    return row


# --- output ----------------------------------------------------------------------------------

HEADERS = ["model", "cell", "nseg", "compartments (dendrax nodes)",
           "dendrax compile s", "dendrax s", "dendrax ns/comp-step", "dendrax grad/fwd",
           "dendrax mean abs dV mV", "NEURON s", "NEURON ns/comp-step", "NEURON/dendrax",
           "Jaxley compartments", "Jaxley compile s", "Jaxley s", "Jaxley ns/comp-step",
           "Jaxley/dendrax", "Jaxley mean abs dV mV"]


def table_rows(rows):
    out = []
    for r in rows:
        d, n, j = r["dendrax"], r["neuron"], r["jaxley"]
        line = [r["model"], r["cell"], r["nseg"], f"{r['n_comp']} ({r['n_nodes']})",
                C.fmt(d["compile_s"], ".2f"), C.fmt(d["run_s"], ".3f"), C.fmt(d["ns"], ".1f"),
                C.fmt(d.get("grad_ratio"), ".2f"), C.fmt(d.get("dv"), ".1e")]
        if isinstance(n, dict):
            line += [C.fmt(n["run_s"], ".3f"), C.fmt(n["ns"], ".1f"), C.fmt(n["ratio"], ".2f")]
        else:
            line += [n, "", ""]
        if isinstance(j, dict):
            line += [j["n_comp"], C.fmt(j["compile_s"], ".2f"), C.fmt(j["run_s"], ".3f"),
                     C.fmt(j["ns"], ".1f"), C.fmt(j["ratio"], ".2f"), C.fmt(j.get("dv"), ".2f")]
        else:
            line += [j, "", "", "", "", ""]
        out.append(line)
    return out


def targets(rows) -> list[str]:
    hh = [r for r in rows if r["model"] == "HH"]
    if not hh:
        return ["- (no HH rows: targets not evaluated)"]
    r = min(hh, key=lambda r: abs(r["n_comp"] - TARGET_COMPS))
    d = r["dendrax"]
    tag = f"{r['cell']}, nseg {r['nseg']}, {r['n_comp']} compartments"
    ok = lambda good: "**met**" if good else "**not met**"  # noqa: E731
    lines = [f"- dendrax <= {TARGET_NS:g} ns/compartment-step on the ~{TARGET_COMPS}-compartment "
             f"cell ({tag}): {d['ns']:.1f} ns, {ok(d['ns'] <= TARGET_NS)}",
             f"- compile < {TARGET_COMPILE:g} s ({tag}): {d['compile_s']:.2f} s, "
             f"{ok(d['compile_s'] < TARGET_COMPILE)}; largest over all rows: "
             f"{max(x['dendrax']['compile_s'] for x in rows):.2f} s"]
    if "grad_ratio" in d:
        lines.append(f"- gradient of all HH parameters <= {TARGET_GRAD:g}x forward ({tag}): "
                     f"{d['grad_ratio']:.2f}x, {ok(d['grad_ratio'] <= TARGET_GRAD)}; largest "
                     f"over HH rows: {max(x['dendrax']['grad_ratio'] for x in hh):.2f}x")
    return lines


def markdown(rows, args, machine, notes) -> str:
    body = [
        "Written by `benchmarks/single_cell.py`. Per cell and nseg: HH in every section "
        "(Ra 100 ohm cm, cm 1 uF/cm2), a 0.5 nA soma step from 5 to 85 ms, float64, "
        f"{args.t_stop:g} ms at dt {args.dt:g} ms (celsius 6.3, v_init -65 mV), v recorded at "
        "10 sites (soma centre + 9 random points).",
        "",
        *machine,
        "",
        C.markdown_table(HEADERS, table_rows(rows)),
        "",
        "Targets:",
        "",
        *targets(rows),
        "",
        "How it is measured:",
        "",
        "- dendrax: `dendrax.simulation.run` (what `dx.simulate` runs) under `jax.jit` with the "
        "params pytree as argument. *compile* = first call minus the median steady call; "
        f"*s* = median of {args.repeats} calls after the first. *grad/fwd* = "
        "`jax.value_and_grad` of the mean recorded voltage w.r.t. all HH parameters "
        "(`params['hh']`: gnabar, gkbar, gl, el per compartment; L5PC-like: every channel's "
        "parameters) over the same jitted scalar loss without gradient.",
        "- Compartments are NEURON's segments (sum of nseg); in parentheses dendrax's solver "
        "nodes, which add zero-area junction nodes where children attach mid-section. "
        "ns/comp-step = time / (compartments x steps).",
        "- NEURON: the same SWC through Import3d, same nseg, `h.usetable_hh = 0` (exact rates, "
        "as dendrax), `ParallelContext.psolve` (fixed step, backward Euler); no compile step. "
        "*mean abs dV*: over the 10 sites and all time points against NEURON.",
        "- Jaxley: `jx.read_swc(ncomp=nseg)`, `jaxley.channels.HH`, `jx.step_current`, "
        "`jx.integrate` under `jax.jit` with gNa, gK, gLeak, eLeak trainable per compartment "
        "(passed as the argument, as dendrax's params). Jaxley's SWC reader builds its own "
        "branches and cylinder compartments, so its compartment count, areas and voltages "
        "differ from NEURON's segmentation of the same file: its *mean abs dV* (at the "
        "compartments nearest the sites in 3-D) measures that model difference, not round-off; "
        "its ns/comp-step uses its own compartment count. E.g. on C010398B-P2 (nseg 1) both "
        "fire 7 soma spikes, but Jaxley's reader turns the 3-point soma into two compartments "
        "(526 + 263 um2 against NEURON's 527 um2), its interspike interval is ~2 % longer and "
        "the spikes drift apart by up to 2 ms, hence ~10 mV. Ratios are wall-time ratios "
        "(> 1: dendrax faster).",
        "- On cells of 2-8 compartments the per-step overhead dominates, so ns/comp-step is "
        "large for every simulator; the per-compartment figures mean something from ~100 "
        "compartments up. On a 2-core machine shared with other jobs (see the load average) "
        "timings move by tens of percent from run to run.",
        "- L5PC-like: `dendrax.models.l5pc_like` on the same SWC with the same nseg: the Hay "
        "et al. (2011) channels (NaTa_t, NaTs2_t, Nap_Et2, K_Pst, K_Tst, SKv3_1, SK_E2, "
        "Ca_HVA, Ca_LVAst, Im, Ih, CaDynamics_E2, pas) with their densities by region, Ih "
        "growing with distance and the apical Ca hot zone; celsius 34, v_init -80 mV; the "
        "same soma step. NEURON runs the NMODL files of `tests/nmodl` (built by nrnivmodl "
        "with its default optimisation) with every parameter copied segment by segment from "
        "the dendrax cell. *grad/fwd* is w.r.t. every channel's parameters. Jaxley ships no "
        "Hay channels.",
        *[f"- {n}" for n in notes],
        "",
        C.ATTRIBUTION,
    ]
    return "\n".join(body)


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse(argv)
    if C.replay(args, parse, report):
        return 0
    jax = C.setup_jax()
    paths, msg = C.resolve_cells(args.cells)
    notes = []
    if msg:
        log(msg)
        notes.append(msg)
    if not paths:
        log("nothing to run")
        return 0
    have_neuron = not args.skip_neuron and C.neuron_h() is not None
    have_jaxley = not args.skip_jaxley and C.optional("jaxley") is not None
    if args.skip_neuron:
        log("NEURON: skipped (--skip-neuron)")
    elif not have_neuron:
        log(f"NEURON: {C.SKIPPED}")
        notes.append(f"NEURON: {C.SKIPPED}")
    if args.skip_jaxley:
        log("Jaxley: skipped (--skip-jaxley)")
    elif not have_jaxley:
        log(f"Jaxley: {C.SKIPPED}")
        notes.append(f"Jaxley: {C.SKIPPED}")

    skip = {"neuron": "skipped (--skip-neuron)" if args.skip_neuron else C.SKIPPED,
            "jaxley": "skipped (--skip-jaxley)" if args.skip_jaxley else C.SKIPPED}
    kinds = ["HH"]
    hay_neuron = None
    if args.skip_l5pc:
        log("L5PC-like model: skipped (--skip-l5pc)")
    elif (why := C.l5pc_unavailable()) is not None:
        log(f"L5PC-like model: skipped ({why})")
        notes.append(f"L5PC-like model skipped ({why})")
    else:
        kinds.append("L5PC-like")
        if have_neuron and (why := C.load_hay_neuron()) is not None:
            hay_neuron = why
            log(f"L5PC-like in NEURON: {why}")

    rows = []
    for kind in kinds:
        for path in paths:
            for nseg in args.nseg:
                log(f"{kind} {path.name} nseg={nseg}")
                rows.append(run_model(jax, kind, path, nseg, args, have_neuron, have_jaxley,
                                      hay_neuron, skip))
    machine = C.machine_lines(
        shlex.join(["python", "benchmarks/single_cell.py", *C.shown_args(argv)]))
    strip = lambda v: {k: x for k, x in v.items() if k != "traces"} if isinstance(v, dict) else v  # noqa: E731
    rows = [{k: strip(v) for k, v in r.items()} for r in rows]
    if args.json:
        C.save_run(args.json, argv, machine, notes, rows)
    report(rows, args, machine, notes)
    return 0


def report(rows, args, machine, notes):
    log("\n" + C.markdown_table(HEADERS, table_rows(rows)) + "\n")
    for line in targets(rows):
        log(line)
    if args.markdown:
        C.write_section(args.markdown, TITLE, markdown(rows, args, machine, notes))
        log(f"wrote section '## {TITLE}' of {args.markdown}")


if __name__ == "__main__":
    sys.exit(main())
