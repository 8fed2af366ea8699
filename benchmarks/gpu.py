"""The GPU path: tests on the CUDA backend, the Hines kernel alone, and single-cell and batch
throughput of dendrax against Jaxley on the same GPU.

Needs a CUDA build of dendrax (``DENDRAX_CUDA=ON pip install --no-build-isolation -e .``) and
a CUDA jaxlib (``pip install "jax[cuda12]"`` or the matching plugin). Steps, each printed:

1. environment: the devices, whether dendrax's CUDA kernel registered (and why not);
2. tests (unless --skip-tests): ``pytest tests/test_hines.py tests/test_cuda_build.py`` with
   ``JAX_PLATFORMS=cuda,cpu`` (the GPU the default device), so every solve runs on the GPU
   kernels;
3. the Hines solve alone on each cell's tree (``model.parent`` from lowering): one system
   [N], a batch [N, B] and a vmapped batch [B, N]; the CUDA kernel (scheduled: the parent
   array is concrete) against the pure-JAX backend on the GPU, and its results against
   the CPU kernel's (bit for bit expected: same arithmetic, no FMA);
4. single cell: HH everywhere, a soma step, float64, ``--t-stop`` ms at ``--dt`` (the model
   of benchmarks/single_cell.py): dendrax's jitted loop and Jaxley's ``jx.integrate`` on the
   GPU, ns per compartment-step and the ratio Jaxley / dendrax;
5. batches: ``jax.vmap`` over B parameter sets (gNa scaled per cell) in both, ns per
   compartment-step per cell and the ratio.

Whether the simulation's solve lowered to the scheduled kernel (parent concrete when the
loop is traced) or to the one-thread-per-system kernel (parent traced) is printed per cell.

    python benchmarks/gpu.py                              # everything, on the GPU
    python benchmarks/gpu.py --cells n120_ca1.swc --nseg 4 --batch 1 100 --repeats 3
    python benchmarks/gpu.py --check-cpu                  # no GPU: the CPU-side pieces run
                                                          # on the CPU (a smoke test)
    python benchmarks/gpu.py --json gpu.json --markdown docs/benchmarks.md   # "## GPU"
    python benchmarks/gpu.py --from-json a.json b.json --markdown docs/benchmarks.md
                                                          # re-render saved runs (no GPU)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _models as M  # noqa: E402
import _runner as R  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
TITLE = "GPU"
DEFAULT_CELLS = ["C010398B-P2.CNG.swc", "n120_ca1.swc", "NMO_49821_ca1_pyramidal.swc"]


def parse(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cells", nargs="+", default=None,
                   help="SWC names in ../shared/morphologies or paths (default: "
                        + ", ".join(DEFAULT_CELLS) + ")")
    p.add_argument("--nseg", nargs="+", type=int, default=[1, 4])
    p.add_argument("--batch", nargs="+", type=int, default=[1, 10, 100, 1000],
                   help="batch sizes of the throughput runs")
    p.add_argument("--t-stop", type=float, default=100.0, help="ms")
    p.add_argument("--dt", type=float, default=0.025, help="ms")
    p.add_argument("--repeats", type=int, default=3, help="timed calls after the first")
    p.add_argument("--solve-batch", type=int, default=1024, help="B of the solver-only runs")
    p.add_argument("--skip-tests", action="store_true")
    p.add_argument("--skip-jaxley", action="store_true")
    p.add_argument("--skip-sim", action="store_true", help="solver-only: no simulations")
    p.add_argument("--check-cpu", action="store_true",
                   help="no GPU: run every step's CPU-side part on the CPU with tiny sizes "
                        "(t-stop 2 ms, batch 2, no tests) to check that the script works")
    p.add_argument("--json", metavar="PATH", help="write the results as JSON")
    p.add_argument("--markdown", metavar="PATH",
                   help=f"rewrite the '## {TITLE}' section of this file")
    p.add_argument("--from-json", nargs="+", metavar="PATH",
                   help="render saved runs (--json) instead of measuring; their cells are "
                        "listed together, each run's machine lines and notes above them")
    p.add_argument("--note", action="append", default=[],
                   help="a line for the section's notes (repeatable), e.g. how the tests went "
                        "when they ran separately")
    args = p.parse_args(argv)
    if args.check_cpu:
        args.t_stop, args.batch, args.repeats, args.solve_batch = 2.0, [2], 1, 8
        args.skip_tests = True
        args.cells = args.cells or ["ball_and_stick.swc"]
        args.nseg = args.nseg if argv and "--nseg" in argv else [1]
    return args


def log(msg=""):
    print(msg, flush=True)


def block(x):
    import jax
    return jax.block_until_ready(x)


# --- 1. environment ----------------------------------------------------------------------

def environment(jax, check_cpu):
    from dendrax.solver import native_unavailable_reason

    platform = "cpu" if check_cpu else "CUDA"
    env = {"devices": [str(d) for d in jax.devices()], "default_backend": jax.default_backend(),
           "device_kind": jax.devices()[0].device_kind,
           "versions": R.versions(),
           "native_cuda": native_unavailable_reason("CUDA") or "registered",
           "native_cpu": native_unavailable_reason("cpu") or "registered"}
    log(f"devices: {env['devices']}")
    log(f"dendrax CUDA kernel: {env['native_cuda']}; CPU kernel: {env['native_cpu']}")
    if not check_cpu and (jax.default_backend() != "gpu" or env["native_cuda"] != "registered"):
        log("no GPU backend with dendrax's CUDA kernel: nothing to measure on a GPU "
            "(--check-cpu runs the CPU-side pieces)")
        return env, False
    env["platform"] = platform
    return env, True


# --- 2. tests ----------------------------------------------------------------------------

def run_tests():
    cmd = [sys.executable, "-m", "pytest", "tests/test_hines.py", "tests/test_cuda_build.py",
           "-q", "-x", "-p", "no:cacheprovider"]
    log(f"$ JAX_PLATFORMS=cuda,cpu {' '.join(cmd[1:])}")
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "JAX_PLATFORMS": "cuda,cpu"})
    tail = (proc.stdout + proc.stderr).strip().splitlines()[-15:]
    for line in tail:
        log("  " + line)
    return {"returncode": proc.returncode, "seconds": time.perf_counter() - t0,
            "tail": tail}


# --- 3. the solve alone ------------------------------------------------------------------

def system(parent, shape, seed=0):
    """Diagonally dominant tree operands of shape `shape` ([N, ...] or [..., N])."""
    rng = np.random.default_rng(seed)
    lo, up = rng.uniform(-1, 1, (2,) + shape)
    d = 2 * (len(parent) + 1) + rng.uniform(0, 1, shape)
    r = rng.normal(size=shape)
    return lo, d, up, r


def time_call(fn, args, repeats):
    block(fn(*args))  # compile
    times = []
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        block(fn(*args))
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def lowered_kernels(fn, *args):
    text = fn.lower(*args).as_text()
    return sorted(set(re.findall(r"custom_call @(dendrax_hines_\w+)", text)))


def bench_solver(jax, parent, args, device):
    import dendrax

    cpu = jax.devices("cpu")[0]
    n, b = parent.size, args.solve_batch
    cases = {"one [N]": ((n,), None), f"batch [N, {b}]": ((n, b), None),
             f"vmap [{b}, N]": ((b, n), 0)}
    out = {}
    for name, (shape, vaxis) in cases.items():
        ops = system(parent, shape)
        row = {}
        for backend in ("native", "jax"):
            def solve(*a, backend=backend):
                return dendrax.hines_solve(parent, *a, backend=backend)
            f = jax.jit(jax.vmap(solve) if vaxis is not None else solve)
            dev_ops = [jax.device_put(o, device) for o in ops]
            row[backend] = time_call(f, dev_ops, args.repeats)
            if backend == "native":
                row["kernels"] = lowered_kernels(f, *dev_ops)
                x = np.asarray(f(*dev_ops))
                x_cpu = np.asarray(f(*[jax.device_put(o, cpu) for o in ops]))
                row["identical_to_cpu"] = bool(np.array_equal(x, x_cpu))
                row["max_diff_cpu"] = float(np.max(np.abs(x - x_cpu)))
        row["jax_over_native"] = row["jax"] / row["native"]
        out[name] = row
        log(f"  {name:>16}: native {row['native'] * 1e6:9.1f} us, jax {row['jax'] * 1e6:9.1f} us "
            f"(x{row['jax_over_native']:.1f}); kernels {row['kernels']}; same bits as CPU: "
            f"{row['identical_to_cpu']} (max diff {row['max_diff_cpu']:.1e})")
    return out


# --- 4, 5. simulations -------------------------------------------------------------------

def dendrax_runs(jax, cell, args, device):
    import jax.numpy as jnp

    loop = M.dendrax_forward(cell, args.t_stop, args.dt)
    params = jax.device_put(cell.params, device)
    hh = params["channels"]["hh"]

    def scaled(s):
        return loop({**params, "channels": {**params["channels"],
                                            "hh": {**hh, "gnabar": hh["gnabar"] * s}}})

    out = {}
    one = jax.jit(lambda: loop(params))
    out["kernels"] = lowered_kernels(one)
    out["single_s"] = time_call(one, (), args.repeats)
    # the same run on the CPU (native kernels there): the GPU's traces should agree to
    # round-off (exp and expm1 differ in their last bits between the two backends)
    cpu = jax.devices("cpu")[0]
    v_gpu = np.asarray(one())
    with jax.default_device(cpu):
        v_cpu = np.asarray(jax.jit(loop)(jax.device_put(cell.params, cpu)))
    out["max_abs_dv_vs_cpu_mV"] = float(np.max(np.abs(v_gpu - v_cpu)))
    out["spikes_gpu_cpu"] = [int(np.sum((v[1:, 0] >= 0) & (v[:-1, 0] < 0))) for v in (v_gpu, v_cpu)]
    for bsz in args.batch:
        s = jax.device_put(jnp.linspace(0.9, 1.1, bsz), device)
        f = jax.jit(jax.vmap(scaled))
        out[f"batch_{bsz}_s"] = time_call(f, (s,), args.repeats)
    return out


def jaxley_runs(jax, path, nseg, sites_xyz, args, device):
    import jax.numpy as jnp
    import jaxley as jx

    cell, n_comp, idx = M.jaxley_hh(path, nseg, sites_xyz)
    M.jaxley_stimulate(cell, idx, args.t_stop, args.dt)
    params = jax.device_put(cell.get_parameters(), device)

    def run(p):
        return jx.integrate(cell, params=p, t_max=args.t_stop, delta_t=args.dt)

    def scaled(s):
        return run([{k: (v * s if k == "HH_gNa" else v) for k, v in d.items()} for d in params])

    out = {"n_comp": n_comp}
    out["single_s"] = time_call(jax.jit(run), (params,), args.repeats)
    for bsz in args.batch:
        s = jax.device_put(jnp.linspace(0.9, 1.1, bsz), device)
        out[f"batch_{bsz}_s"] = time_call(jax.jit(jax.vmap(scaled)), (s,), args.repeats)
    return out


def bench_cell(jax, path, nseg, args, device, have_jaxley):
    from dendrax import lowering

    cell, sites = M.dendrax_hh_cell(path, nseg)
    n_comp, n_steps = M.n_segments(cell), int(round(args.t_stop / args.dt))
    model, _, _ = lowering.lower(cell)
    parent = np.asarray(model.parent)
    row = {"cell": path.name, "nseg": nseg, "n_comp": n_comp, "n_nodes": int(parent.size),
           "n_steps": n_steps}
    from dendrax.solver.schedule import build_schedule
    s = build_schedule(parent)
    row["schedule"] = {"levels": s.n_levels, "branches": s.n_branches, "width": s.width}
    log(f"{path.name} nseg {nseg}: {n_comp} compartments, {parent.size} nodes; schedule: "
        f"{s.n_branches} branches in {s.n_levels} levels, widest {s.width}")
    row["solver"] = bench_solver(jax, parent, args, device)
    if args.skip_sim:
        return row
    d = dendrax_runs(jax, cell, args, device)
    row["dendrax"] = d
    log(f"  dendrax: solve kernels {d['kernels']}; single {d['single_s'] * 1e3:.1f} ms "
        f"({_ns(d['single_s'], row):.1f} ns/compartment-step); GPU vs CPU trace: max |dV| "
        f"{d['max_abs_dv_vs_cpu_mV']:.1e} mV, soma spikes {d['spikes_gpu_cpu']}")
    j = None
    if have_jaxley and not args.skip_jaxley:
        xyz = np.array([M.site_xyz(cell.morphology, loc) for loc in sites])
        try:
            j = jaxley_runs(jax, path, nseg, xyz, args, device)
        except Exception as err:  # noqa: BLE001 - report, keep going
            j = {"error": f"{type(err).__name__}: {err}"}
            log(f"  Jaxley failed: {j['error']}")
        row["jaxley"] = j
    if j and "error" not in j:
        log(f"  Jaxley: {j['n_comp']} compartments, single {j['single_s'] * 1e3:.1f} ms "
            f"({_ns(j['single_s'], row, comps=j['n_comp']):.1f} ns); Jaxley / dendrax "
            f"{j['single_s'] / d['single_s']:.2f}")
    for bsz in args.batch:
        key = f"batch_{bsz}_s"
        line = (f"  batch {bsz:>5}: dendrax {d[key] * 1e3:9.1f} ms "
                f"({_ns(d[key], row, bsz):7.2f} ns/compartment-step/cell)")
        if j and "error" not in j:
            line += (f", Jaxley {j[key] * 1e3:9.1f} ms ({_ns(j[key], row, bsz, j['n_comp']):7.2f}); "
                     f"Jaxley / dendrax {j[key] / d[key]:.2f}")
        log(line)
    return row


# --- the section of docs/benchmarks.md -----------------------------------------------------

def _ns(seconds, row, cells=1, comps=None):
    return seconds / ((comps or row["n_comp"]) * row["n_steps"] * cells) * 1e9


def _batches(row):
    return sorted(int(k.split("_")[1]) for k in row.get("dendrax", {}) if k.startswith("batch_"))


def _jaxley(row):
    j = row.get("jaxley")
    return j if j and "error" not in j else None


def targets(cells) -> list[str]:
    """The issue's GPU goals as met / not met lines."""
    out = []
    solves = [(c, name, r) for c in cells for name, r in c["solver"].items()]
    if solves:
        worst = max(r["max_diff_cpu"] for _, _, r in solves)
        same = all(r["identical_to_cpu"] for _, _, r in solves)
        out.append(f"- the CUDA solve equals the CPU kernel's bit for bit ({len(solves)} "
                   f"cases): largest difference {worst:.1e}, **{'met' if same else 'not met'}**")
    sims = [c for c in cells if "dendrax" in c]
    if sims:
        dv = max(c["dendrax"]["max_abs_dv_vs_cpu_mV"] for c in sims)
        spikes = all(len(set(c["dendrax"]["spikes_gpu_cpu"])) == 1 for c in sims)
        ok = dv < 1e-9 and spikes
        out.append(f"- a simulation on the GPU equals the CPU's to round-off (max |dV| < 1e-9 mV, "
                   f"the same spikes; {len(sims)} cells): largest {dv:.1e} mV, "
                   f"**{'met' if ok else 'not met'}**")
        scheduled = all(k.endswith("_scheduled") for c in sims for k in c["dendrax"]["kernels"])
        out.append("- one cell solved in parallel (the simulation lowers to the branch-level "
                   f"scheduled kernel): **{'met' if scheduled else 'not met'}**")
    ratios = [(j[k] / c["dendrax"][k], c, k) for c in sims if (j := _jaxley(c))
              for k in ["single_s"] + [f"batch_{b}_s" for b in _batches(c)] if k in j]
    if ratios:
        r, c, k = min(ratios, key=lambda t: t[0])
        what = "one cell" if k == "single_s" else f"batch {k.split('_')[1]}"
        out.append(f"- faster than Jaxley on the same GPU, one cell and batches ({len(ratios)} "
                   f"rows): smallest Jaxley / dendrax {r:.2f} ({c['cell']}, nseg {c['nseg']}, "
                   f"{what}), **{'met' if r > 1 else 'not met'}**")
    return out


def markdown(runs) -> str:
    """The '## GPU' section from saved runs (each what --json writes)."""
    cells = [c for run in runs for c in run["cells"]]
    a = runs[0]["args"]
    if any((r["args"]["t_stop"], r["args"]["dt"]) != (a["t_stop"], a["dt"]) for r in runs):
        raise ValueError("these runs have different t_stop or dt: render them one at a time")
    lines = [
        "Written by `benchmarks/gpu.py` on a GPU (a CUDA build of dendrax: docs/install.md). "
        f"The *Single cell* HH model (soma step, float64), {a['t_stop']:g} ms at dt {a['dt']:g} "
        "ms: dendrax's jitted loop and Jaxley's `jx.integrate`, one cell and `jax.vmap` over B "
        "parameter sets (gNa x 0.9 ... 1.1); the median of the calls after the first. The "
        "solve alone: one system [N], a batch [N, B] and a vmapped batch [B, N], the native "
        "kernel against the pure-JAX solve on the same GPU, and its result against the CPU "
        "kernel's.", ""]
    for run in runs:
        lines += run.get("machine", [f"- Versions: {run['env'].get('versions')}"])
        lines += [f"- note: {n}" for n in run.get("notes", [])]
    sim_rows, batch_rows, solve_rows = [], [], []
    for c in cells:
        sched = c["schedule"]
        tree = f"{sched['branches']} / {sched['levels']} / {sched['width']}"
        for name, r in c["solver"].items():
            solve_rows.append([c["cell"], c["nseg"], c["n_nodes"], tree, name,
                               f"{r['native'] * 1e6:.0f}", f"{r['jax'] * 1e6:.0f}",
                               f"{r['jax_over_native']:.1f}",
                               "yes" if r["identical_to_cpu"] else "**no**"])
        d = c.get("dendrax")
        if not d:
            continue
        j = _jaxley(c)
        sim_rows.append([
            c["cell"], c["nseg"], c["n_comp"], ", ".join(d["kernels"]),
            f"{d['single_s'] * 1e3:.1f}", f"{_ns(d['single_s'], c):.0f}",
            f"{j['single_s'] * 1e3:.1f}" if j else "-",
            f"{_ns(j['single_s'], c, comps=j['n_comp']):.0f}" if j else "-",
            f"{j['single_s'] / d['single_s']:.2f}" if j else "-",
            f"{d['max_abs_dv_vs_cpu_mV']:.1e}", ", ".join(map(str, d["spikes_gpu_cpu"]))])
        for b in _batches(c):
            k = f"batch_{b}_s"
            jb = j.get(k) if j else None
            batch_rows.append([
                c["cell"], c["nseg"], c["n_comp"], b, f"{d[k] * 1e3:.1f}",
                f"{_ns(d[k], c, b):.2f}", f"{jb * 1e3:.1f}" if jb else "-",
                f"{_ns(jb, c, b, j['n_comp']):.2f}" if jb else "-",
                f"{jb / d[k]:.2f}" if jb else "-"])
    lines += ["", "One cell:", "", R.markdown_table(
        ["cell", "nseg", "compartments", "solve kernel", "dendrax ms", "ns/comp-step",
         "Jaxley ms", "Jaxley ns/comp-step", "Jaxley / dendrax", "max abs dV vs CPU (mV)",
         "soma spikes (GPU, CPU)"], sim_rows)]
    if batch_rows:
        lines += ["", "Batches:", "", R.markdown_table(
            ["cell", "nseg", "compartments", "batch", "dendrax ms", "ns/comp-step/cell",
             "Jaxley ms", "Jaxley ns/comp-step/cell", "Jaxley / dendrax"], batch_rows)]
    lines += ["", "The solve alone (tree: branches / levels / widest level):", "",
              R.markdown_table(["cell", "nseg", "nodes", "tree", "call", "native us",
                                "pure-JAX us", "pure-JAX / native", "same bits as CPU"],
                               solve_rows),
              "", *targets(cells), "", why(cells)]
    return "\n".join(lines)


def why(cells) -> str:
    """Why one cell is slow on a GPU, with this run's step times."""
    steps = ", ".join(f"{c['dendrax']['single_s'] / c['n_steps'] * 1e6:.0f} us ({c['n_comp']} "
                      "compartments)" for c in cells if "dendrax" in c)
    return ("- Why one cell is slower on the GPU than on two CPU cores (the *Single cell* "
            "section): one cell's time step took " + steps + ". A step is a chain of small "
            "kernels, each waiting for the one before, so its time is launch and memory "
            "latency, not arithmetic; the solve's critical path (the tree's depth in nodes, one "
            "barrier per level of branches) grows with nseg. A batch fills each kernel: the GPU "
            "pays from batches of about a hundred cells. The solve-alone times are single "
            "jitted calls from Python: they include JAX's dispatch, not the solve's cost inside "
            "a simulation's step.")


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse(argv)
    if args.from_json:
        runs = [json.loads(Path(p).read_text()) for p in args.from_json]
        for run in runs:
            run.setdefault("notes", [])
        runs[-1]["notes"] += args.note
        text = markdown(runs)
        log(text)
        if args.markdown:
            R.write_section(args.markdown, TITLE, text)
            log(f"wrote section '## {TITLE}' of {args.markdown}")
        return 0
    jax = R.setup_jax()
    env, ok = environment(jax, args.check_cpu)
    machine = R.machine_lines("python benchmarks/gpu.py " + " ".join(R.shown_args(argv)))
    machine.insert(0, f"- GPU: {env.get('device_kind', '?')} ({env['devices'][0]})")
    results = {"env": env, "args": vars(args), "cells": [], "machine": machine,
               "notes": list(args.note)}
    if not ok:
        return 1
    device = jax.devices("cpu")[0] if args.check_cpu else jax.devices()[0]
    if not args.skip_tests:
        results["tests"] = run_tests()
    paths, msg = M.resolve_cells(args.cells or DEFAULT_CELLS)
    if msg:
        log(msg)
    have_jaxley = R.optional("jaxley") is not None
    if not have_jaxley:
        log("Jaxley not installed: dendrax only")
    with jax.default_device(device):
        for path in paths:
            for nseg in args.nseg:
                results["cells"].append(bench_cell(jax, path, nseg, args, device, have_jaxley))
    if "tests" in results:
        t = results["tests"]
        results["notes"].append(f"tests on the GPU (`JAX_PLATFORMS=cuda,cpu`): "
                                f"{t['tail'][-1] if t['tail'] else '?'}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, default=str))
        log(f"wrote {args.json}")
    if args.markdown:
        R.write_section(args.markdown, TITLE, markdown([results]))
        log(f"wrote section '## {TITLE}' of {args.markdown}")
    return 0 if results.get("tests", {}).get("returncode", 0) == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
