"""The Hines solve in pure JAX: the always-available fallback backend.

Same algorithm and operation order as the native kernel (csrc/hines_kernel.h),
so both agree to round-off. Node axis first, systems along axis 1: [N, T].
"""

from __future__ import annotations

import jax.numpy as jnp
from jax import lax


def _eliminate(parent, lower, upper, dred, rhs, *, update_diag: bool):
    n = parent.shape[0]

    def body(k, carry):
        d, r = carry
        i = n - 1 - k
        p = parent[i]
        has_parent = p >= 0
        pc = jnp.maximum(p, 0)
        f = jnp.where(has_parent, upper[i] / d[i], 0.0)
        if update_diag:
            d = d.at[pc].add(-f * lower[i])
        r = r.at[pc].add(-f * r[i])
        return d, r

    return lax.fori_loop(0, n, body, (dred, rhs))


def _back_substitute(parent, lower, dred, r):
    def body(i, x):
        p = parent[i]
        coupled = jnp.where(p >= 0, lower[i] * x[jnp.maximum(p, 0)], 0.0)
        return x.at[i].set((x[i] - coupled) / dred[i])

    return lax.fori_loop(0, parent.shape[0], body, r)


def _poison(parent, x):
    """NaN for a traced parent array that breaks parent[i] < i (no out-of-bounds reads happen)."""
    idx = jnp.arange(parent.shape[0], dtype=parent.dtype)
    ok = jnp.all((parent >= -1) & (parent < idx))
    return jnp.where(ok, x, jnp.nan)


def factor_solve(parent, lower, diag, upper, rhs):
    dred, r = _eliminate(parent, lower, upper, diag, rhs, update_diag=True)
    x = _back_substitute(parent, lower, dred, r)
    return _poison(parent, x), dred


def substitute(parent, lower, upper, dred, rhs):
    _, r = _eliminate(parent, lower, upper, dred, rhs, update_diag=False)
    return _poison(parent, _back_substitute(parent, lower, dred, r))
