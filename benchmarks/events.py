"""Benchmark of event delivery (``dendrax.events.deliver``): per-step time of the
native kernel vs the pure-JAX twin vs a plain XLA ``segment_sum`` over all
connections, at the scale of the Brunel (2000) network.

Default problem: S = P = 12,500 neurons, fan-out 1,250 (C = 15.6 M connections,
sorted by source), float32 weights of both signs (4 excitatory : 1 inhibitory
sources), delays uniform in [1, D) steps with a ring of D = 16 rows (dt 0.1 ms),
and 0.4 % of the sources firing per step (37 Hz x 0.1 ms: ~46 spikes per step).

Each method runs the loop a simulation runs: a ``lax.scan`` over steps (jitted),
carrying the ring buffer; each step delivers the step's spikes into it, then reads
and zeroes row ``step % D``: with ``events.take`` (native, in place) or, marked
"+xla" (and for jax and segment_sum), with a slice and an update of the ring, for
which XLA copies the whole ring every step. Reported: the median over repeats of
the scan's wall time per step; "none" is the loop without any delivery (the floor).

    python benchmarks/events.py                        # the default problem
    python benchmarks/events.py --sources 2000 --fan-out 100 --steps 50 --repeats 3
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from dendrax import events


def make_network(n: int, fan_out: int, ring: int, seed: int = 0):
    """CSR connectivity: each of n sources projects to fan_out random targets."""
    rng = np.random.default_rng(seed)
    c = n * fan_out
    # already sorted by source: source s owns connections [s * fan_out, (s + 1) * fan_out)
    ptr = (np.arange(n + 1, dtype=np.int64) * fan_out).astype(np.int32)
    target = rng.integers(0, n, c, dtype=np.int32)
    delay = rng.integers(1, ring, c, dtype=np.int32) if ring > 1 else np.zeros(c, np.int32)
    n_exc = int(0.8 * n)
    sign = np.where(np.arange(n) < n_exc, 1.0, -5.0).astype(np.float32)
    weight = (np.repeat(sign, fan_out) * rng.uniform(0.05, 0.15, c)).astype(np.float32)
    return ptr, target, delay, weight


def make_spikes(steps: int, n: int, rate: float, seed: int = 1):
    rng = np.random.default_rng(seed)
    return rng.random((steps, n)) < rate


def segment_sum_step(ring: int, n: int):
    """The plain XLA formulation: every connection contributes (0 unless its source
    fired), summed by destination slot with segment_sum over all C connections. The
    source of each connection is precomputed (conn[0])."""

    def step(buffer, fired, t, conn):
        src, target, delay, weight = conn
        contrib = jnp.where(fired[src], weight, 0)
        channel = jnp.where(weight >= 0, 0, 1)
        slot = (((t + delay) % ring) * 2 + channel) * n + target
        add = jax.ops.segment_sum(contrib, slot, num_segments=ring * 2 * n)
        return buffer + add.reshape(buffer.shape)

    return step


def make_loop(method: str, ring: int, n: int):
    """The jitted loop of one method: a lax.scan over steps carrying the ring; the
    connectivity is an argument (not a constant folded into the program)."""
    name, _, read = method.partition("+")
    if name == "segment_sum":
        deliver = segment_sum_step(ring, n)
    elif name == "none":
        def deliver(buffer, fired, t, conn):
            return buffer
    else:
        def deliver(buffer, fired, t, conn):
            return events.deliver(buffer, fired, *conn, t, backend=name)

    # reading the input due now: events.take (native: in place) by default; with
    # "+xla", a slice and an update of the carried ring (XLA copies the ring then)
    if read == "xla" or (name in ("jax", "segment_sum") and read != "take"):
        def take(buffer, t):
            row = t % ring
            return buffer.at[row].set(0), buffer[row]
    else:
        def take(buffer, t):
            return events.take(buffer, t, backend="native")

    @jax.jit
    def loop(buffer, t0, spikes, conn):
        def body(buffer, xs):
            t, fired = xs
            buffer, current = take(deliver(buffer, fired, t, conn), t)
            return buffer, current[0] + current[1]

        ts = t0 + jnp.arange(spikes.shape[0], dtype=jnp.int32)
        buffer, currents = lax.scan(body, buffer, (ts, spikes))
        return buffer, jnp.sum(currents)

    return loop


def time_method(method, conn, spikes, check_steps, ring, n, repeats):
    """(seconds per step, sum of all input read over the first check_steps steps)."""
    loop = make_loop(method, ring, n)
    ptr, target, delay, weight = conn
    if method.startswith("segment_sum"):
        conn = (np.repeat(np.arange(ptr.size - 1, dtype=np.int32), np.diff(ptr)), target, delay, weight)
    conn = tuple(map(jnp.asarray, conn))
    buffer = jnp.zeros((ring, 2, n), jnp.float32)
    out = loop(buffer, jnp.int32(0), jnp.asarray(spikes[:check_steps]), conn)
    check = float(jax.block_until_ready(out)[1])
    spikes = jnp.asarray(spikes)
    jax.block_until_ready(loop(buffer, jnp.int32(0), spikes, conn))  # compile, warm up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(loop(buffer, jnp.int32(0), spikes, conn))
        times.append(time.perf_counter() - t0)
    return statistics.median(times) / spikes.shape[0], check


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sources", type=int, default=12_500, help="S = P (neurons)")
    ap.add_argument("--fan-out", type=int, default=1_250)
    ap.add_argument("--ring", type=int, default=16, help="D, ring rows")
    ap.add_argument("--rate", type=float, default=0.0037, help="fraction of sources firing per step")
    ap.add_argument("--steps", type=int, default=200, help="steps per timed scan (native, none)")
    ap.add_argument("--slow-steps", type=int, default=10, help="steps per timed scan (jax, segment_sum)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--methods", default="none,none+xla,native,native+xla,jax,segment_sum",
                    help="none: the loop without delivery; +xla: read the ring with a slice and "
                         "an update instead of events.take")
    args = ap.parse_args(argv)

    n, ring = args.sources, args.ring
    conn = make_network(n, args.fan_out, ring)
    c = conn[1].size
    methods = args.methods.split(",")
    if not events.native_available("cpu"):
        print(f"native kernels: skipped ({events.native_unavailable_reason('cpu')})")
        methods = [m for m in methods if m in ("jax", "segment_sum", "none+xla")]
    steps = max(args.steps, args.slow_steps)
    spikes = make_spikes(steps, n, args.rate)
    print(f"event delivery: S = P = {n}, fan-out {args.fan_out}, C = {c:,} connections, "
          f"D = {ring}, {spikes.sum(1).mean():.1f} spikes/step, float32")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}; jax {jax.__version__}, "
          f"devices {[d.platform for d in jax.devices()]}")
    results = {}
    for m in methods:
        k = args.slow_steps if m in ("jax", "segment_sum") else args.steps
        per_step, check = time_method(m, conn, spikes[:k], args.slow_steps, ring, n, args.repeats)
        results[m] = per_step
        print(f"  {m:12s} {per_step * 1e6:12.1f} us/step   ({k} steps x {args.repeats} repeats; "
              f"input summed over {args.slow_steps} steps: {check:.7g})", flush=True)
    if "native" in results:
        for m in ("jax", "segment_sum"):
            if m in results:
                print(f"  native (with take) is {results[m] / results['native']:.0f}x faster than {m}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
