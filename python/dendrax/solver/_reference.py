"""The Hines solve in pure JAX: the always-available fallback backend.

Same algorithm and operation order as the native kernel (csrc/hines_kernel.h),
so both agree to round-off. Node axis first, systems along axis 1: [N, T].
``factor_solve`` returns the solution and ``dinv``, the reciprocal of the
eliminated diagonal, which ``substitute`` reuses (lower and upper swapped: the
transposed system).
"""

from __future__ import annotations

import jax.numpy as jnp
from jax import lax


def _eliminate(parent, lower, upper, dinv, rhs, *, factor: bool):
    """Leaves first. With factor=True, dinv enters as the diagonal and leaves as the
    reciprocal of the eliminated diagonal; else it is that reciprocal already."""
    n = parent.shape[0]

    def body(k, carry):
        dv, r = carry
        i = n - 1 - k
        if factor:
            inv = 1 / dv[i]
            dv = dv.at[i].set(inv)
        else:
            inv = dv[i]
        p = parent[i]
        has_parent = p >= 0
        pc = jnp.maximum(p, 0)
        f = upper[i] * inv
        # roots: add exact zeros (whatever lower and upper hold there)
        if factor:
            dv = dv.at[pc].add(jnp.where(has_parent, -(f * lower[i]), 0.0))
        r = r.at[pc].add(jnp.where(has_parent, -(f * r[i]), 0.0))
        return dv, r

    return lax.fori_loop(0, n, body, (dinv, rhs))


def _back_substitute(parent, lower, dinv, r):
    def body(i, x):
        p = parent[i]
        coupled = jnp.where(p >= 0, lower[i] * x[jnp.maximum(p, 0)], 0.0)
        return x.at[i].set((x[i] - coupled) * dinv[i])

    return lax.fori_loop(0, parent.shape[0], body, r)


def _poison(parent, x):
    """NaN for a traced parent array that breaks parent[i] < i (no out-of-bounds reads happen)."""
    idx = jnp.arange(parent.shape[0], dtype=parent.dtype)
    ok = jnp.all((parent >= -1) & (parent < idx))
    return jnp.where(ok, x, jnp.nan)


def factor_solve(parent, lower, diag, upper, rhs):
    dinv, r = _eliminate(parent, lower, upper, diag, rhs, factor=True)
    x = _back_substitute(parent, lower, dinv, r)
    return _poison(parent, x), dinv


def substitute(parent, lower, upper, dinv, rhs):
    _, r = _eliminate(parent, lower, upper, dinv, rhs, factor=False)
    return _poison(parent, _back_substitute(parent, lower, dinv, r))
