"""Benchmark of the batched Hines solve: native kernel vs pure-JAX fallback vs
``jax.lax.linalg.tridiagonal_solve`` (LAPACK gtsv), on unbranched cables
(parent[i] = i - 1, where all three solve the same tridiagonal systems), float64.

Reports time per node per system (ns/node) for the forward solve and for the
gradient (``value_and_grad`` of a scalar loss w.r.t. lower, diag, upper and rhs),
and compares the native forward solve with a memory-bandwidth floor.

    python benchmarks/hines.py                       # full grid, prints a markdown table
    python benchmarks/hines.py --sizes 1000 --batches 1000 --repeats 9
    python benchmarks/hines.py --output results.md   # also write the table
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import threading
import time

import jax
import jax.numpy as jnp
import jaxlib
import numpy as np

jax.config.update("jax_enable_x64", True)

import dendrax  # noqa: E402
from dendrax.solver import native_available  # noqa: E402
from _runner import cpu_model  # noqa: E402  (benchmarks/ is on sys.path when run as a script)

METHODS = ("native", "jax", "tridiag")
TITLE = "Hines solve"
INTRO = """Written by `benchmarks/hines.py`: the batched Hines solve (`dendrax.hines_solve`) on
unbranched cables, where it solves the same tridiagonal systems as
`jax.lax.linalg.tridiagonal_solve` (LAPACK gtsv, one call per system): the native
kernel (`backend="native"`), the pure-JAX fallback (`backend="jax"`) and
`tridiagonal_solve`, forward and gradient. The bandwidth floor counts the memory
traffic of the two streaming passes of the solve: the elimination reads lower,
diag, upper, rhs and writes x and the reciprocal pivots (48 B per node), the back
substitution reads lower, pivots and x and writes x (32 B); native/floor below 1
means the rows stayed in cache between the passes. The gradient is the forward
solve, one transposed solve that reuses the pivots (the same passes over memory,
without divisions) and XLA's element-wise products that form the four operand
gradients (and the loss): it cannot drop much below 2.5x the forward solve. The
machine is shared, so the load average is given; medians vary by up to 2x between
runs at such loads (the gradient ratio swings accordingly)."""


# --- machine ----------------------------------------------------------------------

def copy_bandwidth(nbytes: int = 1 << 28, threads: int = 1, repeats: int = 5) -> float:
    """Bytes/s moved by a large numpy copy (read + write counted, as STREAM copy),
    split over `threads` threads (numpy releases the GIL while copying)."""
    src = np.ones(nbytes // 8)
    dst = np.empty_like(src)
    parts = np.array_split(np.arange(src.size), threads)
    bounds = [(int(p[0]), int(p[-1]) + 1) for p in parts]

    def work(lo, hi):
        np.copyto(dst[lo:hi], src[lo:hi])

    best = float("inf")
    for _ in range(repeats):
        ts = [threading.Thread(target=work, args=b) for b in bounds]
        t0 = time.perf_counter()
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        best = min(best, time.perf_counter() - t0)
    return 2 * nbytes / best


# --- problems -------------------------------------------------------------------------

def cable(n: int, b: int, seed: int = 0):
    """A batch of b unbranched cables of n nodes, [N, B] operands (dendrax layout)."""
    rng = np.random.default_rng(seed)
    parent = np.arange(-1, n - 1, dtype=np.int32)
    lower = -rng.uniform(0.5, 1.5, (n, b))
    upper = -rng.uniform(0.5, 1.5, (n, b))
    lower[0] = upper[0] = 0.0
    diag = 1.0 + np.abs(lower) + np.abs(upper)
    diag[:-1] += np.abs(upper[1:])
    diag[:-1] += np.abs(lower[1:])
    rhs = rng.normal(size=(n, b))
    return parent, lower, diag, upper, rhs


def as_tridiagonal(lower, diag, upper, rhs):
    """The same systems for tridiagonal_solve: [B, N] diagonals, [B, N, 1] rhs."""
    dl = lower.T.copy()
    dl[:, 0] = 0.0
    du = np.zeros_like(dl)
    du[:, :-1] = upper.T[:, 1:]
    return dl, diag.T.copy(), du, rhs.T[..., None].copy()


def functions(method: str):
    """(forward, value_and_grad) jitted callables for one method."""
    if method == "tridiag":
        def solve(dl, d, du, b):
            return jax.lax.linalg.tridiagonal_solve(dl, d, du, b)
    else:
        def solve(parent, lower, diag, upper, rhs):
            return dendrax.hines_solve(parent, lower, diag, upper, rhs, backend=method)

    def loss(*args):
        x = solve(*args)
        return 0.5 * jnp.sum(x * x)

    n_args = 4 if method == "tridiag" else 5
    argnums = tuple(range(n_args - 4, n_args))  # the four float operands
    return jax.jit(solve), jax.jit(jax.value_and_grad(loss, argnums=argnums))


def calibrate(fn, args, min_sample: float) -> int:
    """Compiles and warms up; returns how many calls make one sample of ~min_sample s."""
    jax.block_until_ready(fn(*args))
    t0 = time.perf_counter()
    jax.block_until_ready(fn(*args))
    once = time.perf_counter() - t0
    return max(1, int(min_sample / max(once, 1e-7)))


def sample(fn, args, inner: int) -> float:
    """Seconds per call over `inner` back-to-back calls (dispatch included, as in use)."""
    t0 = time.perf_counter()
    for _ in range(inner):
        out = fn(*args)
    jax.block_until_ready(out)
    return (time.perf_counter() - t0) / inner


def measure(cases: dict, repeats: int, min_sample: float) -> dict:
    """Median seconds per call of each case {name: (fn, args)}. The cases take turns
    sample by sample, so that a change of machine load hits all of them alike."""
    inner = {k: calibrate(fn, args, min_sample) for k, (fn, args) in cases.items()}
    samples = {k: [] for k in cases}
    for _ in range(repeats):
        for k, (fn, args) in cases.items():
            samples[k].append(sample(fn, args, inner[k]))
    return {k: statistics.median(v) for k, v in samples.items()}


def tune_malloc(mode: str) -> str:
    """glibc returns freed blocks of several MB to the OS and page-faults them in
    again on the next call (every call of a jitted function allocates its outputs):
    'tuned' keeps freed memory in the process, as tcmalloc/jemalloc would."""
    if mode != "tuned":
        return "glibc malloc defaults"
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        big = 1 << 30
        if libc.mallopt(m_mmap_threshold, big) and libc.mallopt(m_trim_threshold, big):
            return "glibc malloc tuned (mallopt M_MMAP_THRESHOLD = M_TRIM_THRESHOLD = 1 GiB)"
    except OSError:
        pass
    return "malloc defaults (mallopt unavailable)"


# --- main -----------------------------------------------------------------------------

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 10000], help="nodes N")
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 10, 100, 1000], help="systems B")
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    ap.add_argument("--repeats", type=int, default=7, help="samples per measurement (median)")
    ap.add_argument("--min-sample", type=float, default=0.05, help="seconds per sample")
    ap.add_argument("--max-nodes", type=float, default=1e7,
                    help="skip N*B above this (memory and time)")
    ap.add_argument("--max-fallback-nodes", type=float, default=1e7,
                    help="skip the pure-JAX fallback above this N*B")
    ap.add_argument("--bytes-per-node", type=float, default=80.0,
                    help="memory traffic per node of the forward solve for the bandwidth floor")
    ap.add_argument("--no-grad", action="store_true", help="forward solve only")
    ap.add_argument("--malloc", choices=["tuned", "default"], default="tuned",
                    help="tuned: keep freed memory in the process (see tune_malloc)")
    ap.add_argument("--output", help="also write the markdown to this file")
    ap.add_argument("--markdown", metavar="PATH",
                    help=f"write the results as section '## {TITLE}' of PATH (docs/benchmarks.md)")
    args = ap.parse_args(argv)

    if "native" in args.methods and not native_available("cpu"):
        print("the native CPU kernel is not available: dropping it", file=sys.stderr)
        args.methods = [m for m in args.methods if m != "native"]

    malloc = tune_malloc(args.malloc)
    cores = os.cpu_count() or 1
    bw1 = copy_bandwidth(threads=1)
    bwn = copy_bandwidth(threads=cores) if cores > 1 else bw1
    bw = max(bw1, bwn)
    floor_ns = args.bytes_per_node / bw * 1e9

    rows, skipped = [], []
    for n in args.sizes:
        for b in args.batches:
            if n * b > args.max_nodes:
                skipped.append(f"N={n}, B={b}: N*B > --max-nodes={args.max_nodes:g}")
                continue
            parent, lower, diag, upper, rhs = cable(n, b)
            inputs = {
                "native": (parent, lower, diag, upper, rhs),
                "jax": (parent, lower, diag, upper, rhs),
                "tridiag": as_tridiagonal(lower, diag, upper, rhs),
            }
            res = {"N": n, "B": b}
            cases = {}
            for m in args.methods:
                if m == "jax" and n * b > args.max_fallback_nodes:
                    skipped.append(f"N={n}, B={b}: jax fallback (N*B > --max-fallback-nodes)")
                    continue
                dev = tuple(jnp.asarray(a) for a in inputs[m])
                fwd, vg = functions(m)
                cases[m] = (fwd, dev)
                if not args.no_grad:
                    cases[m + "_grad"] = (vg, dev)
            for k, sec in measure(cases, args.repeats, args.min_sample).items():
                res[k] = sec / (n * b) * 1e9
            print(f"N={n:6d} B={b:5d} " + "  ".join(f"{k} {v:.2f}" for k, v in res.items()
                                                      if k not in ("N", "B")) + " ns/node",
                  file=sys.stderr, flush=True)
            rows.append(res)

    md = render(rows, skipped, args, bw1, bwn, floor_ns, cores, argv, malloc)
    print(md)
    if args.markdown:
        from _runner import write_section  # benchmarks/_runner.py

        write_section(args.markdown, TITLE, INTRO + "\n\n" + md)
        print(f"wrote section '## {TITLE}' of {args.markdown}", file=sys.stderr)
    if args.output:
        with open(args.output, "w") as f:
            f.write(md)
    return 0


def fmt(x, digits=2):
    return "—" if x is None else f"{x:.{digits}f}"


def ratio(a, b):
    return None if a is None or b is None else a / b


def render(rows, skipped, args, bw1, bwn, floor_ns, cores, argv, malloc) -> str:
    argv = sys.argv[1:] if argv is None else argv
    cmd = "python benchmarks/hines.py" + ("" if not argv else " " + " ".join(argv))
    lines = [
        f"- machine: {cpu_model()}, {cores} cores; {platform.system()} {platform.release()}",
        f"- jax {jax.__version__}, jaxlib {jaxlib.__version__}, numpy {np.__version__}, "
        f"Python {platform.python_version()}",
        f"- date: {datetime.date.today().isoformat()}; load average while measuring: "
        f"{' '.join(f'{x:.1f}' for x in os.getloadavg())} (1, 5, 15 min)",
        f"- command: `{cmd}`",
        f"- memory bandwidth (numpy copy, read+write): {bw1 / 1e9:.1f} GB/s on 1 thread, "
        f"{bwn / 1e9:.1f} GB/s on {cores}; floor = {args.bytes_per_node:g} B/node / "
        f"{max(bw1, bwn) / 1e9:.1f} GB/s = **{floor_ns:.2f} ns/node**",
        "- float64, unbranched cables (parent[i] = i - 1); times are ns per node per system, "
        "median of jitted calls after compilation; grad = `value_and_grad` of a scalar "
        f"loss w.r.t. lower, diag, upper and rhs; {malloc}; native kernel threads: "
        f"{os.environ.get('DENDRAX_NUM_THREADS', 'all CPUs (DENDRAX_NUM_THREADS unset)')}",
        "",
    ]
    m = args.methods
    head = ["N", "B"] + [f"{k} fwd" for k in m]
    if "native" in m and "jax" in m:
        head.append("jax/native")
    if "native" in m and "tridiag" in m:
        head.append("tridiag/native")
    if "native" in m:
        head.append("native/floor")
    if not args.no_grad:
        head += [f"{k} grad" for k in m]
        head += [f"{k} grad/fwd" for k in m]
    lines += ["| " + " | ".join(head) + " |", "|" + "---:|" * len(head)]
    for r in rows:
        g = r.get
        cells = [str(r["N"]), str(r["B"])] + [fmt(g(k)) for k in m]
        if "native" in m and "jax" in m:
            cells.append(fmt(ratio(g("jax"), g("native")), 1))
        if "native" in m and "tridiag" in m:
            cells.append(fmt(ratio(g("tridiag"), g("native")), 1))
        if "native" in m:
            cells.append(fmt(ratio(g("native"), floor_ns), 2))
        if not args.no_grad:
            cells += [fmt(g(k + "_grad")) for k in m]
            cells += [fmt(ratio(g(k + "_grad"), g(k)), 1) for k in m]
        lines.append("| " + " | ".join(cells) + " |")
    if skipped:
        lines += ["", "Skipped: " + "; ".join(skipped) + "."]
    lines += ["", "Targets:", ""] + [f"- {t}" for t in targets(rows, floor_ns)]
    return "\n".join(lines) + "\n"


def targets(rows, floor_ns) -> list[str]:
    """The performance targets of the native kernel, checked on the measured rows."""
    out = []
    by = {(r["N"], r["B"]): r for r in rows}
    r = by.get((1000, 1000))
    if r and "native" in r:
        q = r["native"] / floor_ns
        out.append(f"native forward within 2x of the bandwidth floor at N=1000, B=1000: "
                   f"{q:.2f}x: **{'met' if q <= 2 else 'missed'}**")
    fast = [(r["N"], r["B"], r["jax"] / r["native"]) for r in rows
            if 10 <= r["B"] <= 100 and "jax" in r and "native" in r]
    if fast:
        worst = min(fast, key=lambda f: f[2])
        ok = all(f[2] >= 2 for f in fast)
        out.append("native forward >= 2x faster than the jax fallback for B in 10..100: "
                   f"smallest speed-up {worst[2]:.1f}x (N={worst[0]}, B={worst[1]}): "
                   f"**{'met' if ok else 'missed'}**")
    grad = [(r["N"], r["B"], r["native_grad"] / r["native"]) for r in rows
            if "native_grad" in r and "native" in r]
    if grad:
        bad = [f for f in grad if f[2] > 3]
        worst = max(grad, key=lambda f: f[2])
        out.append("native gradient <= 3x the forward solve: "
                   + (f"**met** on every row (largest {worst[2]:.1f}x)" if not bad else
                      f"**missed** on {len(bad)} of {len(grad)} rows ("
                      + ", ".join(f"N={n} B={b}: {q:.1f}x" for n, b, q in bad) + ")"))
    return out


if __name__ == "__main__":
    sys.exit(main())
