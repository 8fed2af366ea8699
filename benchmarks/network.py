"""Network simulation speed, accuracy and gradients: dendrax vs NEURON vs Jaxley.

Two networks, each described once (``NetBench``: cells, connections as arrays,
current clamps) and built in every simulator from the same numbers:

* "ball-and-stick": 100 HH ball-and-stick cells (NEURON-style: soma L = diam = 20 um,
  dendrite L = 200 um, diam = 1 um; nseg 1 and 5, so 6 compartments per cell, 600 in
  all; Ra 100 ohm cm, cm 1 uF/cm2, hh in both sections), sparse random connectivity
  (p = 0.1, no self-connections, fixed seed: ~1,000 connections, one Exp2Syn + one
  NetCon each). Cells 0-79 are excitatory (Exp2Syn tau1 0.2, tau2 3 ms, e 0 mV, on the
  dendrite at x = 0.5), cells 80-99 inhibitory (tau1 0.5, tau2 8 ms, e -80 mV, on the
  soma); delays uniform in 1-5 ms; weights uniform in 0.5-1.5 x the mean; cells 0-9
  get a current step (0.15-0.25 nA from 5 ms on). Spike threshold 10 mV at soma(0.5).
* "SWC": 10 copies each of two reconstructions from ../shared/morphologies
  (default C010398B-P2.CNG.swc and n120_ca1.swc, nseg 1, HH everywhere), each cell
  receiving 5 Exp2Syn connections from random other cells at random dendritic sites
  (skipped with a reason when the folder is absent).

Simulators:

* dendrax: ``dendrax.simulation.run`` (what ``dx.simulate`` runs) under ``jax.jit``,
  params pytree as the argument; the soma voltage of every cell and its spikes
  (``net.record_spikes``) are recorded.
* NEURON (same cells through ``neuron_from_morphology`` / Import3d, one ``h.Exp2Syn`` +
  ``h.NetCon`` per connection, the same recordings), timed three ways: as users run it
  (``h.continuerun``, hh rate tables on, the default), as experts do
  (``h.cvode.cache_efficient(1)`` + ``ParallelContext.psolve``, tables on), and with the
  exact rates dendrax computes (``h.usetable_hh = 0``, cache_efficient, psolve): this
  last run is the accuracy reference (spike counts, mean |dV| of the soma voltages).
* Jaxley (ball-and-stick network only): it has no event-driven synapses, so the same
  connectivity is run with graded synapses in both: Jaxley's ``IonotropicSynapse``
  against dendrax's ``"IonotropicSynapse"`` (same kinetics), at the same sites, with
  the same conductances and no delay (Jaxley has none); the ball-and-stick is built
  from ``jx.Compartment`` / ``jx.Branch`` / ``jx.Cell`` with the same geometry.

Reported per network: compile time (first call minus a steady call), time after
compile (median of --repeats), ns per compartment-step, spikes, ratios; in fresh
subprocesses (as ``gradients.py``): forward and ``value_and_grad`` of the mean somatic
voltage w.r.t. every synaptic weight (``params["synapses"]["Exp2Syn"]["weight"]``;
graded: the ``gS`` of every synapse, dendrax and Jaxley), with and without
checkpointing, and the process's peak memory; and the time to build 100,000
connections (``net.sparse_connect`` and ``net.fully_connect``) and lower them.

    python benchmarks/network.py                                  # everything, 1 s
    python benchmarks/network.py --t-stop 100 --repeats 1         # a quicker look
    python benchmarks/network.py --markdown docs/benchmarks.md    # rewrite "## Networks"
    python benchmarks/network.py --json run.json                  # keep the raw results
    python benchmarks/network.py --from-json run.json --markdown docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import gc
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _models as M  # noqa: E402
import _runner as R  # noqa: E402
from _network_models import (  # noqa: E402
    BS_NSEG, G_EXC, SEED, SWC_IN, SWC_W, W_EXC, W_INH, ball_and_stick_net, bench_dendrax,
    bench_jaxley, bench_neuron, dendrax_loop, dendrax_net, jaxley_net, swc_net)

TITLE = "Networks"
TARGET_NEURON, TARGET_JAXLEY, TARGET_GRAD = 3.0, 2.0, 3.0
TARGET_COMPILE, TARGET_BUILD = 5.0, 1.0
SWC_CELLS = ["C010398B-P2.CNG.swc", "n120_ca1.swc"]
GRAD_MODES = ("fwd", "grad", "grad_ckpt")


def parse(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--networks", nargs="+", choices=["ball-and-stick", "swc"],
                   default=["ball-and-stick", "swc"])
    p.add_argument("--n-cells", type=int, default=100, help="ball-and-stick network size")
    p.add_argument("--p", type=float, default=0.1, help="ball-and-stick connection probability")
    p.add_argument("--swc-cells", nargs="+", default=SWC_CELLS,
                   help="SWC names in ../shared/morphologies or paths")
    p.add_argument("--swc-copies", type=int, default=10, help="copies of each SWC cell")
    p.add_argument("--swc-nseg", type=int, default=1)
    p.add_argument("--t-stop", type=float, default=1000.0, help="ms")
    p.add_argument("--dt", type=float, default=0.025, help="ms")
    p.add_argument("--repeats", type=int, default=3, help="timed calls after the first")
    p.add_argument("--build-connections", type=int, default=100_000,
                   help="connections in the build-time test (0: skip it)")
    p.add_argument("--build-cells", type=int, default=1000,
                   help="ball-and-stick cells of the build-time test")
    p.add_argument("--grad-t-stop", type=float, default=200.0,
                   help="ms simulated in the gradient/memory cases (plain reverse mode keeps "
                        "every step's state: ~1 s of Jaxley's would need ~16 GB)")
    p.add_argument("--grad-modes", nargs="*", choices=GRAD_MODES, default=list(GRAD_MODES),
                   help="gradient/memory cases (none: skip them)")
    p.add_argument("--grad-sims", nargs="+", choices=["dendrax", "jaxley"],
                   default=["dendrax", "jaxley"], help="simulators of the gradient cases")
    p.add_argument("--checkpoint", type=int, default=None,
                   help="checkpoint steps of grad_ckpt (default round(sqrt(n_steps)))")
    p.add_argument("--skip-jaxley", action="store_true")
    p.add_argument("--skip-neuron", action="store_true")
    p.add_argument("--in-process", action="store_true",
                   help="run the gradient cases in this process (memory not comparable)")
    p.add_argument("--timeout", type=float, default=1800.0, help="seconds per gradient case")
    p.add_argument("--markdown", metavar="PATH",
                   help="write the results as section '## Networks' of PATH")
    p.add_argument("--json", metavar="PATH", help="also write the raw results as JSON")
    p.add_argument("--from-json", metavar="PATH",
                   help="render the tables of a saved --json run instead of running")
    p.add_argument("--case", help=argparse.SUPPRESS)  # internal: one gradient case, as JSON
    return p.parse_args(argv)


def log(*a):
    print(*a, flush=True)


# --- one network, every simulator ------------------------------------------------------------

def spike_match(a, b) -> dict:
    """Cells whose spike counts differ, and the largest time difference where they agree."""
    diff = [i for i, (x, y) in enumerate(zip(a, b)) if x.size != y.size]
    same = [np.abs(x - y).max() for x, y in zip(a, b) if x.size == y.size and x.size]
    return {"cells_differ": len(diff), "max_dt_ms": float(max(same, default=0.0))}


def run_network(jax, spec, args, have_neuron, have_jaxley, skip):
    n_steps = int(round(spec.t_stop / spec.dt))
    row = {"network": spec.name, "n_cells": spec.n_cells, "n_conn": spec.n_connections,
           "n_steps": n_steps}
    log(f"{spec.name}: {spec.n_cells} cells, {spec.n_connections} connections, "
        f"{spec.t_stop:g} ms")
    d = bench_dendrax(jax, spec, "Exp2Syn", args.repeats)
    row.update(n_comp=d["n_comp"], n_nodes=d["n_nodes"])
    d["ns"] = d["run_s"] / (d["n_comp"] * n_steps) * 1e9
    rate = d["n_spikes"] / spec.n_cells / (spec.t_stop * 1e-3)
    log(f"  dendrax Exp2Syn: {d['n_comp']} compartments, build {d['build_s']:.2f} s, compile "
        f"{d['compile_s']:.2f} s, run {d['run_s']:.3f} s ({d['ns']:.1f} ns/compartment-step), "
        f"{d['n_spikes']} spikes ({rate:.1f} Hz per cell)")
    row["dendrax"] = d
    if have_neuron:
        n = bench_neuron(spec, args.repeats)
        for mode in ("user", "expert", "exact"):
            m = n[mode]
            m["ns"] = m["run_s"] / (d["n_comp"] * n_steps) * 1e9
            m["ratio"] = m["run_s"] / d["run_s"]
        n["match"] = spike_match(d["spikes"], n["spikes"])
        d["dv"] = M.mean_abs_dv(d["traces"], n["traces"])
        log(f"  NEURON: build {n['build_s']:.2f} s; " + "; ".join(
            f"{mode} {n[mode]['run_s']:.3f} s ({n[mode]['ns']:.1f} ns, x{n[mode]['ratio']:.2f}, "
            f"{n[mode]['n_spikes']} spikes)" for mode in ("user", "expert", "exact")))
        log(f"  dendrax vs NEURON exact: {n['match']['cells_differ']} cells with different "
            f"spike counts, max spike-time difference {n['match']['max_dt_ms']:.3g} ms, mean "
            f"|dV| {d['dv']:.2e} mV")
        row["neuron"] = n
    else:
        row["neuron"] = skip["neuron"]
    if spec.name != "ball-and-stick":
        row["graded"] = "n/a (the SWC network is compared with NEURON only)"
    elif have_jaxley:
        g = bench_dendrax(jax, spec, "IonotropicSynapse", args.repeats)
        g["ns"] = g["run_s"] / (g["n_comp"] * n_steps) * 1e9
        j = bench_jaxley(jax, spec, args.repeats)
        j["ns"] = j["run_s"] / (j["n_comp"] * j["n_steps"]) * 1e9
        j["ratio"] = j["run_s"] / g["run_s"]
        j["dv"] = M.mean_abs_dv(j["traces"], g["traces"])
        log(f"  dendrax IonotropicSynapse: compile {g['compile_s']:.2f} s, run {g['run_s']:.3f} s "
            f"({g['ns']:.1f} ns), {g['n_spikes']} spikes")
        log(f"  Jaxley IonotropicSynapse: build {j['build_s']:.2f} s, compile "
            f"{j['compile_s']:.2f} s, run {j['run_s']:.3f} s ({j['ns']:.1f} ns), Jaxley/dendrax "
            f"{j['ratio']:.2f}, {j['n_spikes']} spikes, mean |dV| vs dendrax {j['dv']:.2f} mV")
        row["graded"] = {"dendrax": g, "jaxley": j}
    else:
        row["graded"] = skip["jaxley"]
    gc.collect()
    return row


# --- build time of many connections ---------------------------------------------------------

def bench_build(n_conn, n_cells=1000):
    """Seconds to add ~n_conn connections among n_cells cells with sparse_connect /
    fully_connect and lower the network."""
    import dendrax as dx

    cell = dx.Cell.ball_and_stick(nseg=BS_NSEG, Ra=M.RA, cm=M.CM)
    cell.insert("hh")
    out = {}
    t0 = time.perf_counter()
    dx.Network.replicate(cell, n_cells)
    out["replicate_s"] = time.perf_counter() - t0
    p = n_conn / (n_cells * n_cells)
    n_pre = int(math.ceil(math.sqrt(n_conn)))
    n_post = int(math.ceil(n_conn / n_pre))
    for how in ("sparse_connect", "fully_connect"):
        runs = []
        for _ in range(2):  # the first call includes JAX's compile of the random draw
            net = dx.Network.replicate(cell, n_cells)
            net.record_spikes(cells=[0])
            t0 = time.perf_counter()
            if how == "sparse_connect":
                net.sparse_connect(range(n_cells), range(n_cells), "Exp2Syn", p=p, key=SEED,
                                   weight=0.001, delay=1.0, post_loc=cell.section(1)(0.5))
            else:
                net.fully_connect(range(n_pre), range(n_post), "Exp2Syn", weight=0.001,
                                  delay=1.0, post_loc=cell.section(1)(0.5))
            t1 = time.perf_counter()
            dx.lower(net)
            t2 = time.perf_counter()
            runs.append((t1 - t0, t2 - t1))
            n = net.n_connections
            del net
            gc.collect()
        (c0, l0), (c1, l1) = runs
        out[how] = {"n_conn": n, "connect_s": c0, "lower_s": l0, "total_s": c0 + l0,
                    "connect2_s": c1, "lower2_s": l1, "total2_s": c1 + l1}
        log(f"  {how}: {n} connections among {n_cells} cells: connect {c0:.3f} s + lower "
            f"{l0:.3f} s = {c0 + l0:.3f} s (again: {c1:.3f} + {l1:.3f} = {c1 + l1:.3f} s)")
    return out


# --- gradient / memory cases (each in its own process) -----------------------------------------

def make_spec(case):
    if case["network"] == "ball-and-stick":
        return ball_and_stick_net(case["n_cells"], case["p"], case["t_stop"], case["dt"])
    return swc_net([Path(p) for p in case["paths"]], case["copies"], case["nseg"],
                   case["t_stop"], case["dt"])


def run_case(case) -> dict:
    jax = R.setup_jax()
    import jax.numpy as jnp

    spec = make_spec(case)
    t0 = time.perf_counter()
    ckpt = case["checkpoint"] if case["mode"] == "grad_ckpt" else None
    if case["sim"] == "dendrax":
        net = dendrax_net(spec, case["synapse"])
        loop, params = dendrax_loop(net, spec.t_stop, spec.dt, checkpoint=ckpt)
        syn = case["synapse"]
        key = "weight" if syn == "Exp2Syn" else "gS"
        arg = jnp.asarray(params["synapses"][syn][key])

        def loss(w):
            p = {**params, "synapses": {**params["synapses"],
                                        syn: {**params["synapses"][syn], key: w}}}
            return loop(p)[0].mean()

        n_comp = sum(M.n_segments(c) for c in net.cells)
    else:
        import jaxley as jx

        net, n_comp = jaxley_net(spec)
        lengths = None
        if ckpt:
            n_t = int(spec.t_stop // spec.dt + 1)
            lengths = [ckpt, math.ceil(n_t / ckpt)]
        arg = net.get_parameters()

        def loss(p):
            return jx.integrate(net, params=p, t_max=spec.t_stop, delta_t=spec.dt,
                                checkpoint_lengths=lengths).mean()

    build_s = time.perf_counter() - t0
    fn = loss if case["mode"] == "fwd" else jax.value_and_grad(loss)
    t0 = time.perf_counter()
    compiled = jax.jit(fn).lower(arg).compile()
    compile_s = time.perf_counter() - t0
    gc.collect()
    # (ru_maxrss would include the parent's memory at fork time: VmHWM is this image's own)
    hwm0, before = R.rss_kib()["VmHWM"], R.rss_kib()["VmRSS"]
    reset = R.reset_peak_rss()
    t0 = time.perf_counter()
    out = jax.block_until_ready(compiled(arg))
    first_s = time.perf_counter() - t0
    peak = R.rss_kib()["VmHWM"]
    value = float(np.asarray(out[0] if case["mode"] != "fwd" else out))
    del out
    times = []
    for _ in range(max(1, case["repeats"])):
        t0 = time.perf_counter()
        jax.block_until_ready(compiled(arg))
        times.append(time.perf_counter() - t0)
    return {**case, "n_comp": n_comp, "build_s": build_s, "compile_s": compile_s,
            "first_s": first_s, "run_s": float(np.median(times)), "value": value,
            "max_rss_mib": max(hwm0, R.rss_kib()["VmHWM"]) / 1024,
            "run_mib": (peak - before) / 1024 if reset else None}


def run_case_subprocess(case, timeout) -> dict:
    return R.run_case_subprocess(__file__, case, timeout)


def grad_cases(args, specs, have_jaxley):
    n_steps = int(round(args.grad_t_stop / args.dt))
    k = args.checkpoint or max(1, round(math.sqrt(n_steps)))
    base = {"t_stop": args.grad_t_stop, "dt": args.dt, "repeats": args.repeats, "checkpoint": k,
            "n_cells": args.n_cells, "p": args.p, "copies": args.swc_copies,
            "nseg": args.swc_nseg}
    out = []
    for name, spec in specs.items():
        paths = [p for p in dict.fromkeys(spec.kinds)] if name == "SWC" else []
        runs = [("dendrax", "Exp2Syn")]
        if name == "ball-and-stick":
            runs += [("dendrax", "IonotropicSynapse")]
            if have_jaxley:
                runs += [("jaxley", "IonotropicSynapse")]
        for sim, syn in runs:
            if sim not in args.grad_sims:
                continue
            for mode in args.grad_modes:
                out.append({**base, "network": name, "paths": paths, "sim": sim,
                            "synapse": syn, "mode": mode})
    return out


# --- output ----------------------------------------------------------------------------------

ok = lambda good: "**met**" if good else "**not met**"  # noqa: E731

SIM_HEADERS = ["network", "simulator", "synapses", "compartments", "build s", "compile s",
               "run s", "ns/comp-step", "spikes", "x dendrax (> 1: dendrax faster)", "check"]


def sim_rows(rows):
    out = []
    for r in rows:
        d, n, gr = r["dendrax"], r["neuron"], r["graded"]
        net = f"{r['network']} ({r['n_cells']} cells, {r['n_conn']} conn.)"
        check = (f"vs NEURON exact: {n['match']['cells_differ']} cells differ in spike count, "
                 f"max spike-time diff {n['match']['max_dt_ms']:.2g} ms, mean abs dV "
                 f"{d['dv']:.1e} mV" if isinstance(n, dict) else "")
        out.append([net, "dendrax", "Exp2Syn", f"{r['n_comp']} ({r['n_nodes']})",
                    R.fmt(d["build_s"], ".2f"), R.fmt(d["compile_s"], ".2f"),
                    R.fmt(d["run_s"], ".3f"), R.fmt(d["ns"], ".1f"), d["n_spikes"], "1", check])
        if isinstance(n, dict):
            for mode, label in (("user", "NEURON continuerun, tables on (user)"),
                                ("expert", "NEURON cache_efficient + psolve, tables on (expert)"),
                                ("exact", "NEURON cache_efficient + psolve, usetable_hh 0")):
                m = n[mode]
                out.append([net, label, "Exp2Syn", r["n_comp"],
                            R.fmt(n["build_s"], ".2f"), "-", R.fmt(m["run_s"], ".3f"),
                            R.fmt(m["ns"], ".1f"), m["n_spikes"], R.fmt(m["ratio"], ".2f"), ""])
        else:
            out.append([net, "NEURON", "Exp2Syn", n] + [""] * 7)
        if isinstance(gr, dict):
            g, j = gr["dendrax"], gr["jaxley"]
            out.append([net, "dendrax", "IonotropicSynapse", f"{g['n_comp']} ({g['n_nodes']})",
                        R.fmt(g["build_s"], ".2f"), R.fmt(g["compile_s"], ".2f"),
                        R.fmt(g["run_s"], ".3f"), R.fmt(g["ns"], ".1f"), g["n_spikes"], "1", ""])
            out.append([net, "Jaxley", "IonotropicSynapse", j["n_comp"],
                        R.fmt(j["build_s"], ".2f"), R.fmt(j["compile_s"], ".2f"),
                        R.fmt(j["run_s"], ".3f"), R.fmt(j["ns"], ".1f"), j["n_spikes"],
                        R.fmt(j["ratio"], ".2f"),
                        f"mean abs dV vs dendrax {j['dv']:.2g} mV"])
        elif gr:
            out.append([net, "Jaxley", "IonotropicSynapse", gr] + [""] * 7)
    return out


GRAD_HEADERS = ["network", "simulator", "synapses", "gradient w.r.t.", "forward s", "grad s",
                "grad/fwd", "grad ckpt s", "grad ckpt/fwd", "grad compile s", "forward MiB",
                "grad MiB", "grad ckpt MiB"]


def _t(r):
    if r is None:
        return "-"
    return r["error"] if "error" in r else f"{r['run_s']:.3f}"


def _ratio(a, b):
    if a is None or b is None or "error" in a or "error" in b:
        return None
    return a["run_s"] / b["run_s"]


def _mem(r):
    if r is None or "error" in r:
        return "-"
    inc = r.get("run_mib")
    return f"{r['max_rss_mib']:.0f}" + (f" (+{inc:.0f})" if inc is not None else "")


def group_grads(results):
    rows = {}
    for r in results:
        rows.setdefault((r["network"], r["sim"], r["synapse"]), {})[r["mode"]] = r
    return rows


def grad_rows(grads):
    out = []
    for (net, sim, syn), m in group_grads(grads).items():
        f, g, c = m.get("fwd"), m.get("grad"), m.get("grad_ckpt")
        wrt = ("every Exp2Syn weight" if syn == "Exp2Syn" else "every synapse's gS")
        out.append([net, sim, syn, wrt, _t(f), _t(g), R.fmt(_ratio(g, f), ".2f"), _t(c),
                    R.fmt(_ratio(c, f), ".2f"),
                    R.fmt((g or c or {}).get("compile_s"), ".1f"), _mem(f), _mem(g), _mem(c)])
    return out


BUILD_HEADERS = ["builder", "connections", "connect s", "dendrax.lower s", "total s",
                 "again: connect s", "again: lower s", "again: total s"]


def build_rows(build):
    return [[f"`net.{k}`", v["n_conn"]] + [R.fmt(v[x], ".3f") for x in (
        "connect_s", "lower_s", "total_s", "connect2_s", "lower2_s", "total2_s")]
            for k, v in build.items() if isinstance(v, dict)]


def targets(rows, grads, build) -> list[str]:
    lines = []
    bs = next((r for r in rows if r["network"] == "ball-and-stick"), None)
    for r in rows:
        n, tag = r["neuron"], f"{r['network']} network"
        if isinstance(n, dict):
            best = min(("user", "expert", "exact"), key=lambda m: n[m]["run_s"])
            lines.append(
                f"- >= {TARGET_NEURON:g}x faster than NEURON per compartment-step ({tag}): "
                f"{n['expert']['ratio']:.2f}x vs NEURON expert (cache_efficient + psolve), "
                f"{n['user']['ratio']:.2f}x vs continuerun, {n['exact']['ratio']:.2f}x vs exact "
                f"rates; against the fastest NEURON run ({best}) "
                f"{ok(n[best]['ratio'] >= TARGET_NEURON)}")
        gr = r["graded"]
        if isinstance(gr, dict):
            j = gr["jaxley"]
            lines.append(f"- >= {TARGET_JAXLEY:g}x faster than Jaxley per compartment-step "
                         f"({tag}, graded synapses): {j['ratio']:.2f}x "
                         f"{ok(j['ratio'] >= TARGET_JAXLEY)}")
    if bs is not None:
        c = bs["dendrax"]["compile_s"]
        lines.append(f"- compile < {TARGET_COMPILE:g} s for the {bs['n_cells']}-cell network: "
                     f"{c:.2f} s {ok(c < TARGET_COMPILE)}")
    for (net, sim, syn), m in group_grads(grads).items():
        if sim != "dendrax":
            continue
        parts = []
        for mode, label in (("grad", "grad"), ("grad_ckpt", "checkpointed grad")):
            x = _ratio(m.get(mode), m.get("fwd"))
            if x is not None:
                parts.append(f"{label} {x:.2f}x {ok(x <= TARGET_GRAD)}")
        lines.append(f"- gradient <= {TARGET_GRAD:g}x forward ({net}, {syn}): "
                     + (", ".join(parts) or "not measured"))
    for how, v in (build or {}).items():
        if isinstance(v, dict):
            lines.append(f"- {v['n_conn']} connections built (`{how}` + `dx.lower`) in < "
                         f"{TARGET_BUILD:g} s: {v['total_s']:.3f} s {ok(v['total_s'] < TARGET_BUILD)} "
                         f"(a second time in the same process: {v['total2_s']:.3f} s "
                         f"{ok(v['total2_s'] < TARGET_BUILD)})")
    return lines


def markdown(res, args, machine, notes, k) -> str:
    rows, grads, build = res["rows"], res["grads"], res["build"]
    body = [
        "Written by `benchmarks/network.py`. Float64, "
        f"{args.t_stop:g} ms at dt {args.dt:g} ms, celsius 6.3, v_init -65 mV; the soma "
        "voltage of every cell and its spikes (threshold 10 mV) recorded.",
        "",
        "- *ball-and-stick*: 100 HH ball-and-stick cells (soma L = diam = 20 um, dendrite "
        "L = 200 um, diam = 1 um, nseg 1 and 5: 6 compartments per cell; Ra 100 ohm cm, cm 1 "
        "uF/cm2, hh in both sections), each ordered pair connected with p = "
        f"{args.p:g} (no self-connections, numpy seed {SEED}): one Exp2Syn + one NetCon per "
        "connection, from the pre soma(0.5) (threshold 10 mV). Cells 0-79 excitatory (tau1 "
        "0.2, tau2 3 ms, e 0 mV, on dend(0.5), mean weight "
        f"{W_EXC * 1e3:g} nS), 80-99 inhibitory (tau1 0.5, tau2 8 ms, e -80 mV, on the soma, "
        f"mean weight {W_INH * 1e3:g} nS); weights uniform in 0.5-1.5 x the mean, delays "
        "uniform in 1-5 ms; cells 0-9 get a 0.15-0.25 nA step from 5 ms to the end.",
        f"- *SWC*: {args.swc_copies} copies each of "
        + " and ".join(f"`{Path(c).name}`" for c in args.swc_cells)
        + f" (nseg {args.swc_nseg}, HH everywhere), each cell receiving {SWC_IN} Exp2Syn "
        "connections (tau1 0.2, tau2 3 ms, e 0 mV) from random other cells' somas at random "
        f"dendritic sites, mean weight {SWC_W * 1e3:g} nS, delays 1-5 ms; 4 cells get a "
        "0.4-0.6 nA step. (With HH in every section these cells keep firing at tens of Hz "
        "once excited, whatever the weight: this network measures throughput on real "
        "morphologies, not moderate activity.)",
        "",
        *machine,
        "",
        "Simulation (time after compile, median of "
        f"{args.repeats} runs; *x dendrax* = simulator's time / dendrax's time with the same "
        "synapses):",
        "",
        R.markdown_table(SIM_HEADERS, sim_rows(rows)),
        "",
    ]
    if grads:
        body += [f"Gradient of the mean somatic voltage (all cells, all time points) over "
                 f"{args.grad_t_stop:g} ms (the same networks, shorter: plain reverse mode keeps "
                 "every step's state), each case in a fresh process:", "", R.markdown_table(GRAD_HEADERS, grad_rows(grads)), ""]
    if build:
        body += [f"Building the connections ({build['n_cells']} ball-and-stick cells; "
                 f"`Network.replicate` of them: {build['replicate_s']:.3f} s, not included; "
                 "*again*: the same on a new network in the same process, after the first "
                 "call's one-off costs such as JAX compiling the random draw):",
                 "", R.markdown_table(BUILD_HEADERS, build_rows(build)), ""]
    body += [
        "Targets (2 cores):",
        "",
        *targets(rows, grads, build),
        "",
        "How it is measured:",
        "",
        "- dendrax: `dendrax.simulation.run` (what `dx.simulate` runs) under `jax.jit` with "
        "the params pytree as argument; *build* = building the `dx.Network` (connections "
        "through `net.connect_matrix`; the SWC network's per-site connections through "
        "`net.connect`) plus `dx.lower`; *compile* = first call minus the median steady call. "
        "Compartments are NEURON's segments (in parentheses dendrax's solver nodes). "
        "ns/comp-step = time / (compartments x steps). In the SWC network synapses and "
        "IClamps sit at 101 of 3470 nodes, and the step adds their currents there after "
        "the membrane's pass over all nodes (`dendrax.step.POINTS_APART`; 2.02 -> 1.75 s "
        "against adding them to the membrane's currents everywhere, which splits the loop "
        "XLA fuses for the currents and the right-hand side); in the ball-and-stick "
        "network they sit at 188 of 700 nodes and go in with the membrane's currents. "
        "The SWC network's HH is computed at its 2340 segment nodes only, not at its 1130 "
        "zero-area junction nodes (`dendrax.lowering.SEGMENTS_ONLY_JUNCTIONS`; measured "
        "over 200 ms on 2 cores of an AMD EPYC: 0.41 -> 0.34 s).",
        "- NEURON: the same cells (`neuron_from_morphology` for the ball-and-stick, Import3d "
        "for the SWC cells), one `h.Exp2Syn` and one `h.NetCon` per connection, the same "
        "recordings (soma `Vector.record`, `NetCon.record` of the spikes); *user*: "
        "`h.finitialize` + `h.continuerun`, hh's rate tables on (NEURON's default); "
        "*expert*: `h.cvode.cache_efficient(1)` + `ParallelContext.psolve`, tables on; *exact*: "
        "as expert with `h.usetable_hh = 0`, the same maths as dendrax, so its spikes and "
        "voltages are the reference of the *check* column. *build* = creating the cells, "
        "synapses and NetCons from Python.",
        "- Jaxley has no event-driven synapses, so it runs the ball-and-stick network with "
        "graded synapses, like with like: Jaxley's `IonotropicSynapse` against dendrax's "
        "`\"IonotropicSynapse\"` (the same kinetics), same pre/post cells and sites, gS per "
        f"connection uniform in 0.5-1.5 x {G_EXC * 1e3:g} nS (e_syn 0 / -80 mV as above), no "
        "delay (Jaxley has none); the cell is `jx.Cell([soma, dend])` of `jx.Branch`es with "
        "the same lengths, radii and compartments, `jaxley.channels.HH`, `jx.step_current` "
        "into the same cells, `jx.integrate` under `jax.jit` with every gS trainable (the "
        "argument, as dendrax's params). Its spikes are detected from the soma voltage; "
        "its *mean abs dV* against dendrax's graded run measures model differences "
        "(Jaxley's branch-point compartments), not round-off.",
        "- Gradient: *forward* = the jitted loss; *grad* = jitted `jax.value_and_grad` w.r.t. "
        "`params['synapses']['Exp2Syn']['weight']` (graded: `...['IonotropicSynapse']['gS']`; "
        "Jaxley: `IonotropicSynapse_gS` of every edge); *grad ckpt*: dendrax `checkpoint="
        f"{k}` (~sqrt(n_steps)), Jaxley `checkpoint_lengths=[{k}, ceil(n_steps/{k})]`. "
        "*MiB* = the process's peak resident set over its life (VmHWM), in parentheses "
        "the run increment (VmHWM during one run, reset just before it, minus the RSS "
        "before it).",
        "- The machine is shared with other jobs (see the load average): timings move by "
        "tens of percent from run to run.",
        *[f"- {n}" for n in notes],
        "",
        M.ATTRIBUTION,
    ]
    return "\n".join(body)


def main(argv=None) -> int:
    argv, args = R.start(argv, parse, report, run_case)
    if args is None:
        return 0
    jax = R.setup_jax()
    notes = []
    have_neuron = not args.skip_neuron and M.neuron_h() is not None
    have_jaxley = not args.skip_jaxley and R.optional("jaxley") is not None
    skip = {"neuron": "skipped (--skip-neuron)" if args.skip_neuron else R.SKIPPED,
            "jaxley": "skipped (--skip-jaxley)" if args.skip_jaxley else R.SKIPPED}
    for name, have, flag in (("NEURON", have_neuron, args.skip_neuron),
                             ("Jaxley", have_jaxley, args.skip_jaxley)):
        if flag:
            log(f"{name}: skipped (--skip-{name.lower()})")
        elif not have:
            log(f"{name}: {R.SKIPPED}")
            notes.append(f"{name}: {R.SKIPPED}")

    specs = {}
    if "ball-and-stick" in args.networks:
        specs["ball-and-stick"] = ball_and_stick_net(args.n_cells, args.p, args.t_stop, args.dt)
    if "swc" in args.networks:
        paths, msg = M.resolve_cells(args.swc_cells)
        if msg:
            log(f"SWC network: {msg}")
            notes.append(f"SWC network {msg}")
        else:
            specs["SWC"] = swc_net(paths, args.swc_copies, args.swc_nseg, args.t_stop, args.dt)

    rows = [run_network(jax, spec, args, have_neuron, have_jaxley, skip)
            for spec in specs.values()]
    build = {}
    if args.build_connections:
        log(f"building {args.build_connections} connections")
        build = {"n_cells": args.build_cells,
                 **bench_build(args.build_connections, args.build_cells)}
    grads = []
    for i, case in enumerate(grid := grad_cases(args, specs, have_jaxley)):
        t0 = time.perf_counter()
        r = run_case(case) if args.in_process else run_case_subprocess(case, args.timeout)
        grads.append(r)
        what = f"{r['network']} {r['sim']} {r['synapse']} {r['mode']}"
        if "error" in r:
            log(f"[{i + 1}/{len(grid)}] {what}: {r['error']}")
        else:
            log(f"[{i + 1}/{len(grid)}] {what}: {r['run_s']:.3f} s (compile {r['compile_s']:.1f} "
                f"s), peak {_mem(r)} MiB [{time.perf_counter() - t0:.0f} s]")
    strip = lambda v: ({k: strip(x) for k, x in v.items() if k not in ("traces", "spikes")}  # noqa: E731
                       if isinstance(v, dict) else v)
    res = {"rows": [strip(r) for r in rows], "grads": grads, "build": build}
    return R.finish(__file__, argv, args, notes, res, report)


def report(res, args, machine, notes):
    k = res["grads"][0]["checkpoint"] if res["grads"] else 0
    log("\n" + R.markdown_table(SIM_HEADERS, sim_rows(res["rows"])) + "\n")
    if res["grads"]:
        log(R.markdown_table(GRAD_HEADERS, grad_rows(res["grads"])) + "\n")
    if res["build"]:
        log(R.markdown_table(BUILD_HEADERS, build_rows(res["build"])) + "\n")
    for line in targets(res["rows"], res["grads"], res["build"]):
        log(line)
    if args.markdown:
        R.write_section(args.markdown, TITLE, markdown(res, args, machine, notes, k))
        log(f"wrote section '## {TITLE}' of {args.markdown}")


if __name__ == "__main__":
    sys.exit(main())
