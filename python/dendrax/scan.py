"""How the time loop is scanned, whatever the model: steps unrolled per iteration for
small models, chunks XLA runs sequentially, every k-th sample kept, rematerialised
stretches for checkpointed gradients. A step function ``(state, xs) -> (state, out)``
and its per-step inputs in, ``lax.scan``'s result out."""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
from jax import lax


# A model of at most SMALL nodes and point neurons runs UNROLL steps per iteration of the
# time loop: where a step takes a few microseconds, XLA's per-iteration work (the loop
# test, copies of the carry; in reverse mode also the stacking of what each step keeps)
# is a large part of it. HH ball-and-stick, 100 ms: 2 compartments, 23 -> 18 thunks per
# step, forward ~15% and gradient ~2x faster (37-44 -> 20-21 ms); 32 compartments,
# gradient 47-52 -> 33-39 ms. Compiling takes ~1-1.5 s longer. A cell of hundreds of
# compartments gained nothing measurable (forward or gradient). Not with ``checkpoint``
# (see scan_steps).
SMALL, UNROLL = 64, 4


def unroll_for(size: int) -> int:
    """Steps per iteration of the time loop for a model of ``size`` nodes and point neurons."""
    return UNROLL if size <= SMALL else 1


# XLA:CPU runs the operations of a loop body one after another when every buffer they use
# is at most 512 bytes (its ThunkExecutor's fixed threshold); otherwise it dispatches each
# to its thread pool as its inputs become ready, which costs ~0.2-0.5 us an operation. A
# small model's step has dozens of operations on arrays of a few nodes, but the traces of
# the whole run are one large buffer that every step writes. So a model whose per-step
# arrays are small runs its time loop as a loop over chunks: an inner loop of ``chunk``
# steps writes the chunk's traces into a small buffer, and the outer loop copies them
# into the run's (the same steps, to rounding: XLA compiles the inner loop's step on its
# own and may contract a product and a sum differently, ~1e-12 mV). L5PC-like ball-and-stick (2
# compartments, 13 mechanisms), 100 ms: forward 14.5 -> 5.2 ms, gradient 79 -> 44 ms
# (8 compartments); HH 2.4 -> 1.9 ms. A vmapped batch has large arrays anyway (~4%
# slower chunked). The chunk divides the number of iterations (with ``checkpoint``, the
# steps of a rematerialised stretch), so the step is compiled once; where no divisor
# fits, the loop is unrolled instead (unroll_for).
SEQUENTIAL_BYTES = 512


def chunk_for(n: int, width: int) -> int:
    """Steps per inner loop for n iterations of the time loop whose per-step arrays are at
    most ``width`` bytes each (``simulation.loop_width``): the largest divisor of n (at
    most n / 2) whose chunk fits SEQUENTIAL_BYTES; 1 where none does (no inner loop)."""
    largest = min(SEQUENTIAL_BYTES // max(width, 1), n // 2)
    return next((c for c in range(largest, 1, -1) if n % c == 0), 1)


def every(step, k: int, n_traces: int, dtype):
    """k steps as one scan body: the traces (``n_traces`` of ``dtype``) of the last, the
    spikes of all."""

    def body(state, xs):
        def inner(carry, x):
            state, (rec, fired) = step(carry[0], x)
            return (state, rec), fired

        init = (state, jnp.zeros(n_traces, dtype))
        (state, rec), fired = lax.scan(inner, init, xs)
        return state, (rec, fired)

    return body


def scan_steps(step, checkpoint, state, xs, unroll: int = 1, chunk: int = 1):
    """lax.scan of step over xs (``chunked``); with ``checkpoint``, in rematerialised
    stretches of that many steps (not unrolled: compiling the unrolled, rematerialised
    loops of a many-channel model took 5x longer)."""
    n = jax.tree_util.tree_leaves(xs)[0].shape[0]
    if checkpoint is None or checkpoint >= n:
        return chunked(step, state, xs, unroll, chunk)
    if checkpoint < 1:
        raise ValueError(f"checkpoint must be a positive number of steps, got {checkpoint}")
    n_chunks, rest = divmod(n, checkpoint)

    @jax.checkpoint
    def stretch(carry, piece):
        return chunked(step, carry, piece, 1, chunk)

    state, out = lax.scan(stretch, state, split(xs, n_chunks, checkpoint))
    out = jax.tree_util.tree_map(lambda a: a.reshape(n_chunks * checkpoint, *a.shape[2:]), out)
    if rest:
        tail = jax.tree_util.tree_map(lambda a: a[n_chunks * checkpoint:], xs)
        state, out_tail = lax.scan(step, state, tail)
        out = jax.tree_util.tree_map(lambda a, b: jnp.concatenate([a, b], axis=0), out, out_tail)
    return state, out


def chunked(step, state, xs, unroll: int = 1, chunk: int = 1):
    """lax.scan of step over xs, ``unroll`` steps per iteration, or (``chunk`` > 1, which
    divides the length) as a scan over chunks of a scan of ``chunk`` steps."""
    if chunk <= 1:
        return lax.scan(step, state, xs, unroll=unroll)
    n = jax.tree_util.tree_leaves(xs)[0].shape[0]
    state, out = lax.scan(partial(lax.scan, step), state, split(xs, n // chunk, chunk))
    return state, jax.tree_util.tree_map(lambda a: a.reshape(n, *a.shape[2:]), out)


def split(xs, n_chunks: int, size: int):
    """The first n_chunks * size rows of each leaf of xs as [n_chunks, size, ...]."""
    return jax.tree_util.tree_map(
        lambda a: a[: n_chunks * size].reshape(n_chunks, size, *a.shape[1:]), xs)
