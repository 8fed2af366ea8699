"""Event delivery in pure JAX: the always-available twins of the native kernels.

A masked scatter-add over all C connections (O(C) per call, where the native
kernels are O(S + spikes x fan-out)), with the same semantics: connection c of
source s (ptr[s] <= c < ptr[s+1]) adds weight[c] to
``buffer[(step + delay[c]) % D, 0 if weight[c] >= 0 else 1, target[c]]`` when
fired[s]; connections whose target is outside [0, P) or whose delay is outside
[0, D) are skipped, as in csrc/events_kernel.h. For a (traced) ptr that is not
monotone the two may differ; neither reads out of bounds.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax


def sources(ptr, n_connections: int):
    """The source of each connection, [C] int32: s with ptr[s] <= c < ptr[s+1]
    (for a monotone ptr; clamped to [0, S) otherwise)."""
    s = ptr.shape[0] - 1
    if n_connections == 0 or s <= 0:
        return jnp.zeros((n_connections,), jnp.int32)
    # number of k in 1..S-1 with ptr[k] <= c (associative_scan: 3-4x faster than
    # jnp.cumsum on XLA's CPU backend)
    marks = jnp.zeros((n_connections,), jnp.int32).at[ptr[1:s]].add(1, mode="drop")
    return jnp.clip(lax.associative_scan(jnp.add, marks), 0, s - 1)


def _slots(buffer_shape, fired, ptr, target, delay, weight, step):
    """The flat index into buffer [D, 2, P] of every connection, D * 2 * P (out of
    bounds, dropped by the scatter) where the connection delivers nothing."""
    d, _, p = buffer_shape
    c = target.shape[0]
    on = (fired[sources(ptr, c)] if fired.shape[0] else jnp.zeros((c,), bool))
    on = on & (target >= 0) & (target < p) & (delay >= 0) & (delay < d)
    row = (jnp.remainder(step, d) + jnp.clip(delay, 0, d - 1)) % d
    channel = jnp.where(weight >= 0, 0, 1)
    # int32 indices (int64 where D * 2 * P does not fit)
    itype = jnp.int32 if d * 2 * p < 2**31 - 1 else jnp.int64
    flat = (row.astype(itype) * 2 + channel) * p + target
    return jnp.where(on, flat, d * 2 * p)


def deliver(buffer, fired, ptr, target, delay, weight, step):
    """buffer [D, 2, P] + the connections of the fired sources (see module doc)."""
    return deliver_values(buffer, fired, ptr, target, delay, weight, weight, step)


def deliver_values(buffer, fired, ptr, target, delay, weight, values, step):
    """buffer + ``values`` [C] where ``deliver`` would add the weights (their channels by
    the weights' signs): the tangent of ``deliver`` in weight, for tangents ``values``."""
    if target.shape[0] == 0 or buffer.size == 0:
        return buffer
    idx = _slots(buffer.shape, fired, ptr, target, delay, weight, step)
    flat = buffer.reshape(-1).at[idx].add(values.astype(buffer.dtype), mode="drop")
    return flat.reshape(buffer.shape)


def take(buffer, step):
    """(buffer with row step % D zeroed, that row [2, P])."""
    row = jnp.remainder(step, buffer.shape[0])
    current = lax.dynamic_index_in_dim(buffer, row, keepdims=False)
    return lax.dynamic_update_index_in_dim(buffer, jnp.zeros_like(current), row, 0), current


def _batched(fn, *args):
    """fn for operands with k >= 0 leading batch axes (k = buffer.ndim - 3), as the
    native kernels take them: each of size 1 (shared) or the buffer's size."""
    buffer = args[0]
    if buffer.ndim == 3:
        return fn(*args)
    n = buffer.shape[0]
    if n == 1:  # every operand has size 1 here
        return jax.tree.map(lambda a: a[None], _batched(fn, *(a[0] for a in args)))
    axes = tuple(0 if a.shape[0] == n else None for a in args)
    args = tuple(a if ax == 0 else a[0] for a, ax in zip(args, axes))
    return jax.vmap(lambda *a: _batched(fn, *a), in_axes=axes)(*args)


def deliver_batched(buffer, fired, ptr, target, delay, weight, step):
    return _batched(deliver, buffer, fired, ptr, target, delay, weight, step)


def take_batched(buffer, step):
    return _batched(take, buffer, step)
