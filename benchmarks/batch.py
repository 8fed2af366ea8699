"""Batches of one cell: dendrax's ``simulate_batch`` vs Jaxley's vmap vs NEURON, per cell.

B parameter sets (gNa scaled 0.5 ... 1.5 over the batch) of the *Single cell* HH model
(HH everywhere, the 0.5 nA soma step, v at 10 sites, float64, dt 0.025 ms) run as

* dendrax: ``dendrax.training.simulate_batch(cell, {"channels": {"hh": {"gnabar": [B, n]}}},
  ...)`` on one device (what ``jax.vmap`` of ``dx.simulate`` runs);
* Jaxley: ``jax.vmap`` of ``jx.integrate`` over the same gNa scales, under ``jax.jit``;
* NEURON: B copies of the cell in one process (each its own gNa), simulated together by
  ``ParallelContext.psolve`` with ``cache_efficient`` (as NEURON's experts run many cells).

Each batch size is a fresh process (its own compile and peak memory). Reported: time after
compile (median of --repeats), ns per compartment-step per cell (time / (B x compartments
x steps)), the batch's speed-up per cell over B = 1, and process peak memory. Target of
issue 13: <= 8 ns per compartment-step per cell on 2 cores at B = 100.

    python benchmarks/batch.py                                  # B = 1, 10, 100; 880 compartments
    python benchmarks/batch.py --batch 1 10 --t-stop 20 --repeats 2
    python benchmarks/batch.py --markdown docs/benchmarks.md        # rewrite "## Batches"
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _models as M  # noqa: E402
import _runner as R  # noqa: E402

TITLE = "Batches"
TARGET_NS = 8.0
SIMULATORS = ("dendrax", "jaxley", "neuron")


def parse(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cell", default="NMO_49821_ca1_pyramidal.swc")
    p.add_argument("--nseg", type=int, default=4)
    p.add_argument("--batch", type=int, nargs="*", default=[1, 10, 100])
    p.add_argument("--t-stop", type=float, default=100.0)
    p.add_argument("--dt", type=float, default=0.025)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--simulators", nargs="*", default=list(SIMULATORS), choices=SIMULATORS)
    p.add_argument("--timeout", type=float, default=3600.0)
    p.add_argument("--markdown", help="rewrite the '## Batches' section of this file")
    p.add_argument("--json", help="save the raw results")
    p.add_argument("--from-json", help="re-render a saved run")
    p.add_argument("--case", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def scales(batch):
    return np.linspace(0.5, 1.5, batch)


def dendrax_case(jax, case):
    import jax.numpy as jnp
    from dendrax.training import simulate_batch

    cell, _ = M.dendrax_hh_cell(Path(case["path"]), case["nseg"])
    g = jnp.asarray(cell.params["channels"]["hh"]["gnabar"])
    batch = {"channels": {"hh": {"gnabar": g[None] * jnp.asarray(scales(case["batch"]))[:, None]}}}
    run = lambda: simulate_batch(cell, batch, case["t_stop"], case["dt"], devices=1,  # noqa: E731
                                 v_init=M.V_INIT, celsius=M.CELSIUS).block_until_ready()
    return run, M.n_segments(cell)


def jaxley_case(jax, case):
    import jax.numpy as jnp
    import jaxley as jx

    path = Path(case["path"])
    dcell, sites = M.dendrax_hh_cell(path, case["nseg"])
    xyz = [M.site_xyz(dcell.morphology, s) for s in sites]
    cell, n_comp, idx = M.jaxley_hh(path, case["nseg"], xyz, trainable=False)
    M.jaxley_stimulate(cell, idx, case["t_stop"], case["dt"])
    cell.make_trainable("HH_gNa", verbose=False)  # one value per cell, scaled over the batch
    params = cell.get_parameters()
    g = jnp.asarray(params[0]["HH_gNa"])
    batch = [{"HH_gNa": g[None] * jnp.asarray(scales(case["batch"]))[:, None]}]
    fn = jax.jit(jax.vmap(lambda p: jx.integrate(cell, params=p, t_max=case["t_stop"],
                                                 delta_t=case["dt"])))
    return lambda: fn(batch).block_until_ready(), n_comp


def neuron_case(case):
    from neuron import h

    path = Path(case["path"])
    dcell, sites = M.dendrax_hh_cell(path, case["nseg"])
    models = []
    for s in scales(case["batch"]):
        m = M.neuron_hh(path, case["nseg"], sites, case["t_stop"], case["dt"])
        for sec in m.secs:
            for seg in sec:
                seg.gnabar_hh = seg.gnabar_hh * float(s)
        models.append(m)
    recs = [h.Vector().record(m.secs[loc.section](loc.x)._ref_v) for m in models
            for loc in m.sites]
    h.load_file("stdrun.hoc")
    h.usetable_hh = 1
    h.cvode.cache_efficient(1)
    h.secondorder, h.celsius, h.dt = 0, M.CELSIUS, case["dt"]
    pc = M.parallel_context()

    def run():
        h.finitialize(M.V_INIT)
        pc.psolve(case["t_stop"])

    run.keep = (models, recs)
    return run, M.n_segments(dcell)


def run_case(case) -> dict:
    if case["sim"] == "neuron":
        fn, n_comp = neuron_case(case)
    else:
        jax = R.setup_jax()
        fn, n_comp = (dendrax_case if case["sim"] == "dendrax" else jaxley_case)(jax, case)
    _, first, steady = R.timed(fn, case["repeats"])
    steps = int(round(case["t_stop"] / case["dt"]))
    return {**case, "n_comp": n_comp, "first_s": first, "run_s": steady,
            "ns": steady / (case["batch"] * n_comp * steps) * 1e9,
            "max_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


HEADERS = ["simulator", "batch", "compartments", "first call s", "s", "ns/comp-step/cell",
           "per-cell speed-up over batch 1", "peak MiB"]


def table_rows(results):
    one = {r["sim"]: r["ns"] for r in results if "ns" in r and r["batch"] == 1}
    rows = []
    for r in results:
        if "error" in r:
            rows.append([r["sim"], r["batch"], "-", "-", r["error"], "-", "-", "-"])
            continue
        rows.append([r["sim"], r["batch"], r["n_comp"], R.fmt(r["first_s"], ".2f"),
                     R.fmt(r["run_s"], ".3f"), R.fmt(r["ns"], ".1f"),
                     R.fmt(one[r["sim"]] / r["ns"] if r["sim"] in one else None, ".1f"),
                     R.fmt(r["max_rss_mib"], ".0f")])
    return rows


def targets(results) -> list[str]:
    out = []
    by = {(r["sim"], r["batch"]): r for r in results if "ns" in r}
    for (sim, b), r in sorted(by.items()):
        if sim != "dendrax" or b == 1:
            continue
        peers = ", ".join(f"{s} {by[(s, b)]['ns']:.1f} ns ({by[(s, b)]['ns'] / r['ns']:.1f}x)"
                          for s in SIMULATORS if s != "dendrax" and (s, b) in by)
        met = "**met**" if r["ns"] <= TARGET_NS else "**not met**"
        out.append(f"- batch {b}: dendrax {r['ns']:.1f} ns per compartment-step per cell "
                   f"(target <= {TARGET_NS:g}: {met})" + (f"; {peers}" if peers else ""))
    return out


def markdown(results, args, machine, notes) -> str:
    lines = [
        "Written by `benchmarks/batch.py`. The *Single cell* HH model on "
        f"`{args.cell}` (nseg {args.nseg}), {args.t_stop:g} ms at dt {args.dt:g} ms, float64, "
        "B parameter sets (gNa x 0.5 ... 1.5): dendrax `simulate_batch` (one device), Jaxley "
        "`jax.vmap` of `jx.integrate`, NEURON B cells in one process (`cache_efficient` + "
        "`psolve`, hh tables on as users run it). Each row a fresh process.", "",
        *machine, *[f"- note: {n}" for n in notes], "",
        R.markdown_table(HEADERS, table_rows(results)), "", *targets(results), "", WHY]
    return "\n".join(lines)


WHY = ("- Why batches get only a little cheaper per cell on a CPU: one cell of hundreds of "
       "compartments already fills the SIMD lanes (the kernels vectorise over nodes), and the "
       "step is bound by its kernels, not by per-step overhead. Where the batch of 100's step "
       "goes (XLA's profile of one run on this VM, ns per compartment-step per cell, two "
       "threads): the HH gate kernel 3.2, the Hines solve 2.0, XLA's loops that assemble the "
       "right-hand side 1.1 and the diagonal 0.8 (XLA splits each over both threads; each "
       "recomputes the conductances from the gates, since XLA:CPU fuses no sibling outputs). "
       "The gate kernel (six float64 exponentials and six divisions per node; 4.8 ns per node "
       "on one core) runs its rates and its gate steps as two loops per block of 256 nodes "
       "(as one loop it ran at the latency of its chain exponential -> quotient -> exponential: "
       "6.1 ns), and its exponential's polynomial has degree 11 (a Chebyshev fit; degree 13 "
       "before: 5.3 ns). The solve is a chain of dependent divisions per cell; each cell's "
       "solve runs on its own and in cache (interleaving cells node by node pays only on trees "
       "of up to ~680 nodes, whose data fits in L2), with the tree's flags computed once per "
       "call so that no cell first copies its diagonal and right-hand side (2.45 ns before). "
       "Both kernels split a batch's cells over XLA's CPU threads, which the FFI lends them "
       "(with threads started for each call the batch of 100 took 11.1 ns per "
       "compartment-step). Merging the two assembly loops into one pass or into the solve "
       "would save most of their ~1.9 ns.")


def report(results, args, machine, notes):
    log("\n" + R.markdown_table(HEADERS, table_rows(results)) + "\n")
    for line in targets(results):
        log(line)
    if args.markdown:
        R.write_section(args.markdown, TITLE, markdown(results, args, machine, notes))
        log(f"wrote section '## {TITLE}' of {args.markdown}")


def main(argv=None) -> int:
    argv, args = R.start(argv, parse, report, run_case)
    if args is None:
        return 0
    paths, msg = M.resolve_cells([args.cell])
    notes = [msg] if msg else []
    if not paths:
        log(msg or "nothing to run")
        return 0
    sims = [s for s in args.simulators
            if (s == "dendrax" or R.optional("jaxley" if s == "jaxley" else "neuron") is not None)]
    notes += [f"{s}: {R.SKIPPED}" for s in args.simulators if s not in sims]
    results = []
    for b in args.batch:
        for sim in sims:
            case = {"sim": sim, "path": str(paths[0]), "nseg": args.nseg, "batch": b,
                    "t_stop": args.t_stop, "dt": args.dt, "repeats": args.repeats}
            t0 = time.perf_counter()
            r = R.run_case_subprocess(__file__, case, args.timeout)
            log(f"{sim} batch {b}: " + (r["error"] if "error" in r else
                                        f"{r['run_s']:.3f} s, {r['ns']:.1f} ns/comp-step/cell")
                + f" ({time.perf_counter() - t0:.0f} s)")
            results.append(r)
    return R.finish(__file__, argv, args, notes, results, report)


if __name__ == "__main__":
    sys.exit(main())
