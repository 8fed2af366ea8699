"""Single-cell simulation speed and accuracy: dendrax vs NEURON vs Jaxley on real cells.

For each SWC cell (default: the four in ../shared/morphologies) and each nseg: HH in
every section (Ra 100 ohm cm, cm 1 uF/cm2), a 0.5 nA soma step from 5 to 85 ms,
float64, 100 ms at dt 0.025 ms, v recorded at 10 sites. The same model runs in

* dendrax: ``dendrax.simulation.run`` under ``jax.jit`` (what ``dx.simulate`` runs),
  taking the params pytree as its argument;
* NEURON: the same SWC through Import3d, the same nseg, timed four ways
  (``_models.NeuronModel.run``): "user", as users run it (``h.finitialize`` +
  ``h.continuerun``, NEURON's defaults: hh's rate tables on); "expert", as experts do
  (``h.cvode.cache_efficient(1)`` + ``ParallelContext.psolve``, tables on); "exact"
  (as expert with ``h.usetable_hh = 0``: the exact rates dendrax computes, the
  reference of every mean |dV|); "CoreNEURON" (the same wheel's CoreNEURON in memory,
  ``neuron.coreneuron.enable = True`` + ``psolve``; for the L5PC-like model with the
  library of ``nrnivmodl -coreneuron tests/nmodl``), skipped with the reason when its
  test run fails;
* Jaxley: ``jx.read_swc`` of the same file with ``ncomp = nseg`` (its own reader: the
  number and shape of compartments differ from NEURON's), ``jaxley.channels.HH``, the
  same step current, ``jx.integrate`` under ``jax.jit`` with the HH parameters as
  trainable per-compartment arguments.

Reported per simulator: compartments, compile time (first call minus a steady call),
time after compile (median of --repeats), ns per compartment-step, time ratios (each
NEURON variant / dendrax), mean |dV| against NEURON with exact rates over the 10 sites
and all time points (dendrax, NEURON with its tables, CoreNEURON; Jaxley at its
compartments nearest the sites in 3-D). dendrax also reports value_and_grad / forward for the
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
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _models as M  # noqa: E402
import _runner as R  # noqa: E402

TITLE = "Single cell"
TARGET_NS, TARGET_COMPILE, TARGET_GRAD = 15.0, 3.0, 3.0
TARGET_COMPS = 900
MODES = M.NEURON_MODES  # user, expert, exact, coreneuron
LABEL = {"user": "NEURON user", "expert": "NEURON expert", "exact": "NEURON exact",
         "coreneuron": "CoreNEURON"}


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
    p.add_argument("--skip-coreneuron", action="store_true",
                   help="skip the CoreNEURON runs (the other NEURON variants still run)")
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
    fwd = jax.jit(M.dendrax_forward(cell, args.t_stop, args.dt, v_init=v_init, celsius=celsius))
    params = cell.params
    traces, first, steady = R.timed(lambda: fwd(params).block_until_ready(), args.repeats)
    out = {"compile_s": max(first - steady, 0.0), "run_s": steady,
           "traces": np.asarray(traces).T}
    if not args.no_grad:
        loop = M.dendrax_forward(cell, args.t_stop, args.dt, v_init=v_init, celsius=celsius)

        def loss(sub):
            return loop({**params, "channels": {**params["channels"], **sub}}).mean()

        loss_j = jax.jit(loss)
        vg = jax.jit(jax.value_and_grad(loss))
        sub = {k: params["channels"][k] for k in grad_keys}
        _, _, f_s = R.timed(lambda: loss_j(sub).block_until_ready(), args.repeats)
        _, _, g_s = R.timed(lambda: jax.block_until_ready(vg(sub)), args.repeats)
        out.update(loss_s=f_s, grad_s=g_s, grad_ratio=g_s / f_s)
    return out


def bench_neuron(model, args, coreneuron_why):
    """Every NEURON variant timed; mean |dV| of the tables (user) and of CoreNEURON against
    the exact rates. ``coreneuron_why``: None, or why CoreNEURON is not run."""
    out, traces = {}, {}
    for mode in MODES:
        if mode == "coreneuron" and coreneuron_why is not None:
            out[mode] = coreneuron_why
            continue
        traces[mode], _, steady = R.timed(lambda m=mode: model.run(m), args.repeats)
        out[mode] = {"run_s": steady}
    ref = traces["exact"]
    out["traces"] = ref
    out["dv_tables"] = M.mean_abs_dv(traces["user"], ref)
    # the variants with tables compute the same thing: their spread is round-off
    out["max_dv_user_expert"] = float(np.abs(traces["user"] - traces["expert"]).max())
    if "coreneuron" in traces:
        out["dv_coreneuron"] = M.mean_abs_dv(traces["coreneuron"], ref)
        out["max_dv_user_coreneuron"] = float(np.abs(traces["user"] -
                                                     traces["coreneuron"]).max())
    return out


def bench_jaxley(jax, path, nseg, sites_xyz, args):
    import jaxley as jx

    t0 = time.perf_counter()
    cell, n_comp, idx = M.jaxley_hh(path, nseg, sites_xyz)
    rows = M.jaxley_stimulate(cell, idx, args.t_stop, args.dt)
    build = time.perf_counter() - t0
    params = cell.get_parameters()
    f = jax.jit(lambda p: jx.integrate(cell, params=p, t_max=args.t_stop, delta_t=args.dt))
    traces, first, steady = R.timed(lambda: f(params).block_until_ready(), args.repeats)
    traces = np.asarray(traces)[rows]
    del cell, f
    return {"n_comp": n_comp, "build_s": build, "compile_s": max(first - steady, 0.0),
            "run_s": steady, "traces": traces, "n_steps": traces.shape[1] - 1}


def run_model(jax, kind, path, nseg, args, have_neuron, have_jaxley, hay_neuron, skip,
              coreneuron_why):
    row = {"model": kind, "cell": path.name, "nseg": nseg}
    n_steps = int(round(args.t_stop / args.dt))
    if kind == "HH":
        cell, sites = M.dendrax_hh_cell(path, nseg)
        v_init, celsius, grad_keys = M.V_INIT, M.CELSIUS, ["hh"]
    else:
        cell, sites = M.dendrax_l5pc_cell(path, nseg)
        v_init, celsius = M.HAY_V_INIT, M.HAY_CELSIUS
        grad_keys = M.mechanisms(cell)
    row.update(n_comp=M.n_segments(cell), n_nodes=cell.n_nodes, n_steps=n_steps)
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
        model = (M.neuron_hh(path, nseg, sites, args.t_stop, args.dt) if kind == "HH" else
                 M.neuron_mirror(path, nseg, cell, sites, args.t_stop, args.dt,
                                 v_init=v_init, celsius=celsius))
        alive = model.n_sections_alive()
        n = bench_neuron(model, args, coreneuron_why[kind])
        for mode in MODES:
            if isinstance(n[mode], dict):
                n[mode]["ns"] = n[mode]["run_s"] / (row["n_comp"] * n_steps) * 1e9
                n[mode]["ratio"] = n[mode]["run_s"] / d["run_s"]
        if alive != len(model.secs):
            n["note"] = f"{alive} sections alive in NEURON (expected {len(model.secs)})"
            log(f"  warning: {n['note']}: NEURON's time includes other cells")
        ref = n["traces"]
        d["dv"] = M.mean_abs_dv(d["traces"], ref)
        row["neuron"] = n
        del model
        gc.collect()
        ran = [m for m in MODES if isinstance(n[m], dict)]
        log("  NEURON s: " + ", ".join(f"{m} {n[m]['run_s']:.3f}" for m in ran)
            + "; x dendrax: " + ", ".join(f"{m} {n[m]['ratio']:.2f}" for m in ran))
        if "coreneuron" not in ran:
            log(f"  CoreNEURON: {n['coreneuron']}")
        log(f"  mean |dV| vs NEURON exact: dendrax {d['dv']:.2e} mV, NEURON tables "
            f"{n['dv_tables']:.2e} mV" + (f", CoreNEURON {n['dv_coreneuron']:.2e} mV"
                                          if "dv_coreneuron" in n else "")
            + f" (max |user - expert| {n['max_dv_user_expert']:.1e} mV"
            + (f", max |user - CoreNEURON| {n['max_dv_user_coreneuron']:.1e} mV)"
               if "max_dv_user_coreneuron" in n else ")"))
    else:
        row["neuron"] = skip["neuron"]

    if kind != "HH":
        row["jaxley"] = "n/a (Jaxley has no Hay channels)"
    elif have_jaxley:
        xyz = [M.site_xyz(cell.morphology, s) for s in sites]
        j = bench_jaxley(jax, path, nseg, xyz, args)
        j["ns"] = j["run_s"] / (j["n_comp"] * j["n_steps"]) * 1e9
        j["ratio"] = j["run_s"] / d["run_s"]
        if ref is not None:
            j["dv"] = M.mean_abs_dv(j["traces"], ref)
        row["jaxley"] = j
        log(f"  Jaxley: {j['n_comp']} compartments, compile {j['compile_s']:.2f} s, run "
            f"{j['run_s']:.3f} s ({j['ns']:.1f} ns/compartment-step), Jaxley/dendrax "
            f"{j['ratio']:.2f}" + (f", mean |dV| vs NEURON exact {j['dv']:.2f} mV" if "dv" in j
                                  else ""))
    else:
        row["jaxley"] = skip["jaxley"]
    gc.collect()
    return row


# --- output ----------------------------------------------------------------------------------

SPEED_HEADERS = (["model", "cell", "nseg", "compartments (dendrax nodes)", "dendrax compile s",
                  "dendrax s", "dendrax ns/comp-step", "dendrax grad/fwd"]
                 + [f"{LABEL[m]} s" for m in MODES] + ["CoreNEURON ns/comp-step"]
                 + [f"{LABEL[m]} / dendrax" for m in MODES])
ACCURACY_HEADERS = ["model", "cell", "nseg", "dendrax", "NEURON with tables (user, expert)",
                    "CoreNEURON", "Jaxley"]
JAXLEY_HEADERS = ["cell", "nseg", "Jaxley compartments", "Jaxley compile s", "Jaxley s",
                  "Jaxley ns/comp-step", "Jaxley / dendrax"]


def _mode(n, mode, key, spec):
    if not isinstance(n, dict):
        return ""
    m = n[mode]
    return R.fmt(m[key], spec) if isinstance(m, dict) else "-"


def speed_rows(rows):
    out = []
    for r in rows:
        d, n = r["dendrax"], r["neuron"]
        line = [r["model"], r["cell"], r["nseg"], f"{r['n_comp']} ({r['n_nodes']})",
                R.fmt(d["compile_s"], ".2f"), R.fmt(d["run_s"], ".3f"), R.fmt(d["ns"], ".1f"),
                R.fmt(d.get("grad_ratio"), ".2f")]
        if isinstance(n, dict):
            line += [_mode(n, m, "run_s", ".3f") for m in MODES]
            line += [_mode(n, "coreneuron", "ns", ".1f")]
            line += [_mode(n, m, "ratio", ".2f") for m in MODES]
        else:
            line += [n] + [""] * (2 * len(MODES))
        out.append(line)
    return out


def accuracy_rows(rows):
    out = []
    for r in rows:
        d, n, j = r["dendrax"], r["neuron"], r["jaxley"]
        if not isinstance(n, dict):
            continue
        cn = n["coreneuron"]
        out.append([r["model"], r["cell"], r["nseg"], R.fmt(d.get("dv"), ".1e"),
                    "0 (no tables)" if n["dv_tables"] == 0 else R.fmt(n["dv_tables"], ".2g"),
                    R.fmt(n.get("dv_coreneuron"), ".2g") if isinstance(cn, dict) else "-",
                    R.fmt(j.get("dv"), ".2f") if isinstance(j, dict) else "-"])
    return out


def jaxley_rows(rows):
    out = []
    for r in rows:
        j = r["jaxley"]
        if r["model"] != "HH":
            continue
        if isinstance(j, dict):
            out.append([r["cell"], r["nseg"], j["n_comp"], R.fmt(j["compile_s"], ".2f"),
                        R.fmt(j["run_s"], ".3f"), R.fmt(j["ns"], ".1f"),
                        R.fmt(j["ratio"], ".2f")])
        else:
            out.append([r["cell"], r["nseg"], j] + [""] * 4)
    return out


def tables(rows, t_stop) -> list[str]:
    """The markdown tables of a run (speed; accuracy when NEURON ran; Jaxley when it ran)."""
    out = [f"Speed (s: median time of one {t_stop:g} ms simulation after compile; "
           "*x / dendrax* > 1: dendrax faster):", "", R.markdown_table(SPEED_HEADERS, speed_rows(rows))]
    acc = accuracy_rows(rows)
    if acc:
        out += ["", "Accuracy: mean abs dV (mV) against NEURON with exact rates "
                "(`h.usetable_hh = 0`), over the 10 sites and all time points:", "",
                R.markdown_table(ACCURACY_HEADERS, acc)]
    n = [r["neuron"] for r in rows if isinstance(r["neuron"], dict)]
    if n:
        same = max(x["max_dv_user_expert"] for x in n)
        core = [x["max_dv_user_coreneuron"] for x in n if "max_dv_user_coreneuron" in x]
        out += ["", f"The NEURON variants with tables agree: max abs difference user vs expert "
                f"{same:.1g} mV" + (f", user vs CoreNEURON {max(core):.1g} mV" if core else "")
                + " over all rows."]
    jx = jaxley_rows(rows)
    if any(isinstance(r["jaxley"], dict) for r in rows):
        out += ["", "Jaxley (HH only; its own compartments):", "",
                R.markdown_table(JAXLEY_HEADERS, jx)]
    elif jx:
        out += ["", f"Jaxley: {jx[0][2]}"]
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
    for model in ("HH", "L5PC-like"):
        same = [x for x in rows if x["model"] == model and x["cell"] == r["cell"]
                and x["nseg"] == r["nseg"]]
        n = same[0]["neuron"] if same else None
        if not isinstance(n, dict):
            continue
        vs = ", ".join(f"{n[m]['ratio']:.2f}x vs {LABEL[m]}" for m in ("user", "expert")
                       if isinstance(n[m], dict))
        cn = n["coreneuron"]
        if isinstance(cn, dict):
            lines.append(f"- {model}: faster than CoreNEURON, the CPU speed to beat ({tag}): "
                         f"CoreNEURON / dendrax {cn['ratio']:.2f}, {ok(cn['ratio'] > 1)}; "
                         f"{vs}")
        else:
            lines.append(f"- {model}: faster than CoreNEURON ({tag}): not measured "
                         f"(CoreNEURON {cn}); {vs}")
    lines += every_row(rows)
    return lines


def every_row(rows) -> list[str]:
    """The per-step-overhead goal: faster than NEURON expert, CoreNEURON and Jaxley on every
    row (cell, nseg, model), and >= 2x NEURON as users run it: the smallest ratio of each."""
    def ratio(r, peer):
        if peer == "jaxley":
            j = r.get("jaxley")
            return j["run_s"] / r["dendrax"]["run_s"] if isinstance(j, dict) else None
        n = r.get("neuron")
        x = n.get(peer) if isinstance(n, dict) else None
        return x["ratio"] if isinstance(x, dict) else None

    lines = []
    for peer, label, goal in (("expert", "NEURON expert", 1.0), ("coreneuron", "CoreNEURON", 1.0),
                              ("jaxley", "Jaxley", 1.0), ("user", "NEURON user", 2.0)):
        have = [(ratio(r, peer), r) for r in rows if ratio(r, peer) is not None]
        if not have:
            continue
        low, r = min(have, key=lambda x: x[0])
        verb, met = ("faster than", low > 1.0) if goal == 1.0 else (f">= {goal:g}x", low >= goal)
        lines.append(f"- {verb} {label} on every row ({len(have)} rows): smallest {label} / "
                     f"dendrax {low:.2f} ({r['model']}, {r['cell']}, nseg {r['nseg']}), "
                     f"{'**met**' if met else '**not met**'}")
    return lines


def markdown(rows, args, machine, notes) -> str:
    body = [
        "Written by `benchmarks/single_cell.py`. Per cell and nseg: HH in every section "
        "(Ra 100 ohm cm, cm 1 uF/cm2), a 0.5 nA soma step from 5 to 85 ms, float64, "
        f"{args.t_stop:g} ms at dt {args.dt:g} ms (celsius 6.3, v_init -65 mV), v recorded at "
        "10 sites (soma centre + 9 random points); and the L5PC-like model on the same cells.",
        "",
        *machine,
        "",
        *tables(rows, args.t_stop),
        "",
        "Targets:",
        "",
        *targets(rows),
        "",
        "How it is measured:",
        "",
        "- dendrax: `dendrax.simulation.run` (what `dx.simulate` runs) under `jax.jit` with the "
        "params pytree as argument. *compile* = first call minus the median steady call; "
        f"*s* = median of {args.repeats} calls after the first (every simulator). "
        "*grad/fwd* = `jax.value_and_grad` of the mean recorded voltage w.r.t. all HH "
        "parameters (`params['channels']['hh']`: gnabar, gkbar, gl, el per compartment; "
        "L5PC-like: every channel's parameters) over the same jitted scalar loss without "
        "gradient. dendrax computes the rate functions exactly (no tables).",
        "- Compartments are NEURON's segments (sum of nseg); in parentheses dendrax's solver "
        "nodes, which add zero-area junction nodes where children attach mid-section. "
        "ns/comp-step = time / (compartments x steps).",
        "- NEURON: the same SWC through Import3d, same nseg, fixed step (backward Euler, "
        "`secondorder = 0`), `Vector.record` of v at the sites, no compile step; each run "
        "starts with `h.finitialize`. Four variants of the same model: *user* = as users run "
        "it, NEURON's defaults: `h.finitialize(v_init)` + `h.continuerun(t_stop)` (stdrun's "
        "hoc loop), hh's rate tables on (`usetable_hh = 1`); *expert* = as experts run it: "
        "`h.cvode.cache_efficient(1)` + `ParallelContext.psolve(t_stop)` (the loop in C), "
        "tables on; *exact* = as expert with `h.usetable_hh = 0`, the rates computed exactly "
        "as dendrax does: the reference of every mean abs dV; *CoreNEURON* = the CoreNEURON "
        "of the same NEURON wheel, in memory: as expert with `neuron.coreneuron.enable = "
        "True` (its default settings: 1 thread, `cell_permute` 0); its time includes "
        "copying the model to CoreNEURON and the results back on every run (about 1.5 ms "
        "on the 880-compartment HH cell, measured separately with a one-step run). For the HH "
        "model it uses the wheel's built-in CoreNEURON mechanisms, or (when the L5PC-like "
        "model runs) the library of `nrnivmodl -coreneuron tests/nmodl`, which holds hh "
        "too ($CORENEURONLIB). Before the benchmark a small cell is run in NEURON and in "
        "CoreNEURON in a subprocess; CoreNEURON is reported only when the two agree.",
        "- Accuracy: dendrax agrees with *exact* NEURON to round-off. NEURON's default hh "
        "rate tables (200 entries over -100..100 mV, linearly interpolated) cost the "
        "*NEURON with tables* column: the *user* and *expert* runs give the same voltages "
        "(see the line under the accuracy table). CoreNEURON always uses hh's tables: it "
        "does not take `usetable_hh = 0` from NEURON (checked: its voltages match NEURON's "
        "with tables, not without), so it has no exact-rate run. The L5PC-like model has no "
        "hh and the NMODL of `tests/nmodl` declares no TABLE, so there every NEURON variant "
        "computes exact rates and *user*, *expert* and *exact* differ only in how the loop "
        "is run.",
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
        "compartments up. There dendrax runs its time loop in chunks of a few steps whose "
        "arrays all stay under 512 bytes, the size below which XLA:CPU runs a loop's "
        "operations one after another instead of dispatching each to its thread pool "
        "(`python/dendrax/scan.py`; L5PC-like ball-and-stick, nseg 1: 14.5 -> 5.2 ms). On "
        "a 2-core machine shared with other jobs (see the load average) timings move by tens "
        "of percent from run to run.",
        "- A process's speed can also settle into one of two modes. Measured on 2 cores "
        "(2026-12-02), the L5PC-like forward run on NMO_49821_ca1_pyramidal.swc at nseg 4 "
        "took ~180 ms in some fresh processes and ~290 ms in others (12 of 26). The slow mode "
        "was not steal time, and it came with address-space randomisation off too. It spent "
        "1.5x the CPU time, with more kernel time: XLA:CPU hands the many small "
        "per-mechanism operations of each step between its threads, and there the handoffs "
        "cost more. On one core (`taskset -c 0`) the same run took 236 ms in every process. "
        "HH's step, with fewer independent operations, moved less (42-52 ms). Each row is "
        "one process's median.",
        "- L5PC-like: `dendrax.models.l5pc_like` on the same SWC with the same nseg: the Hay "
        "et al. (2011) channels (NaTa_t, NaTs2_t, Nap_Et2, K_Pst, K_Tst, SKv3_1, SK_E2, "
        "Ca_HVA, Ca_LVAst, Im, Ih, CaDynamics_E2, pas) with their densities by region, Ih "
        "growing with distance and the apical Ca hot zone; celsius 34, v_init -80 mV; the "
        "same soma step. NEURON runs the NMODL files of `tests/nmodl` (built by `nrnivmodl "
        "-coreneuron` with its default optimisation) with every parameter copied segment by "
        "segment from the dendrax cell. *grad/fwd* is w.r.t. every channel's parameters. "
        "Jaxley ships no Hay channels.",
        *[f"- {n}" for n in notes],
        "",
        M.ATTRIBUTION,
    ]
    return "\n".join(body)


def setup_coreneuron(args, kinds, hay_neuron) -> dict:
    """Per model, None when CoreNEURON runs it here (tried once in a subprocess), else why
    not. When the Hay channels are loaded, CoreNEURON needs their library built by
    ``nrnivmodl -coreneuron`` (it holds hh too): $CORENEURONLIB is set to it for both."""
    if args.skip_coreneuron:
        return {k: "skipped (--skip-coreneuron)" for k in ("HH", "L5PC-like")}
    hay = "L5PC-like" in kinds and hay_neuron is None
    if not hay:
        why = M.coreneuron_unavailable()
        return {"HH": why, "L5PC-like": why}
    if "corenrn_lib" in M.HAY:
        before = os.environ.get("CORENEURONLIB")
        os.environ["CORENEURONLIB"] = M.HAY["corenrn_lib"]
        why = M.coreneuron_unavailable(M.HAY["dir"], M.HAY_CHANNELS)
        if why is None:
            return {"HH": None, "L5PC-like": None}
        if before is None:
            del os.environ["CORENEURONLIB"]
        else:
            os.environ["CORENEURONLIB"] = before
    else:
        why = M.HAY["corenrn_why"]
    # HH alone may still run on the wheel's built-in CoreNEURON mechanisms
    return {"HH": M.coreneuron_unavailable(M.HAY["dir"]), "L5PC-like": why}


def main(argv=None) -> int:
    argv, args = R.start(argv, parse, report)
    if args is None:
        return 0
    jax = R.setup_jax()
    paths, msg = M.resolve_cells(args.cells)
    notes = []
    if msg:
        log(msg)
        notes.append(msg)
    if not paths:
        log("nothing to run")
        return 0
    have_neuron = not args.skip_neuron and M.neuron_h() is not None
    have_jaxley = not args.skip_jaxley and R.optional("jaxley") is not None
    if args.skip_neuron:
        log("NEURON: skipped (--skip-neuron)")
    elif not have_neuron:
        log(f"NEURON: {R.SKIPPED}")
        notes.append(f"NEURON: {R.SKIPPED}")
    if args.skip_jaxley:
        log("Jaxley: skipped (--skip-jaxley)")
    elif not have_jaxley:
        log(f"Jaxley: {R.SKIPPED}")
        notes.append(f"Jaxley: {R.SKIPPED}")

    skip = {"neuron": "skipped (--skip-neuron)" if args.skip_neuron else R.SKIPPED,
            "jaxley": "skipped (--skip-jaxley)" if args.skip_jaxley else R.SKIPPED}
    kinds = ["HH"]
    hay_neuron = None
    if args.skip_l5pc:
        log("L5PC-like model: skipped (--skip-l5pc)")
    elif (why := M.l5pc_unavailable()) is not None:
        log(f"L5PC-like model: skipped ({why})")
        notes.append(f"L5PC-like model skipped ({why})")
    else:
        kinds.append("L5PC-like")
        if have_neuron and (why := M.load_hay_neuron()) is not None:
            hay_neuron = why
            log(f"L5PC-like in NEURON: {why}")

    coreneuron_why = setup_coreneuron(args, kinds, hay_neuron) if have_neuron else {}
    for kind, why in coreneuron_why.items():
        if why is not None and kind in kinds:
            log(f"CoreNEURON ({kind}): {why}")
            if not args.skip_coreneuron:
                notes.append(f"CoreNEURON not run for the {kind} model: {why}")

    rows = []
    for kind in kinds:
        for path in paths:
            for nseg in args.nseg:
                log(f"{kind} {path.name} nseg={nseg}")
                rows.append(run_model(jax, kind, path, nseg, args, have_neuron, have_jaxley,
                                      hay_neuron, skip, coreneuron_why))
    strip = lambda v: {k: x for k, x in v.items() if k != "traces"} if isinstance(v, dict) else v  # noqa: E731
    rows = [{k: strip(v) for k, v in r.items()} for r in rows]
    return R.finish(__file__, argv, args, notes, rows, report)


def report(rows, args, machine, notes):
    log("\n" + "\n".join(tables(rows, args.t_stop)) + "\n")
    for line in targets(rows):
        log(line)
    if args.markdown:
        R.write_section(args.markdown, TITLE, markdown(rows, args, machine, notes))
        log(f"wrote section '## {TITLE}' of {args.markdown}")


if __name__ == "__main__":
    sys.exit(main())
