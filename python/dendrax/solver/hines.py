"""``hines_solve``: the tree-structured linear solve behind every time step.

GPU: where the parent array is concrete when the solve is traced (a numpy array, as
lowering produces), it is validated here once and its branch-level schedule
(``schedule.py``) is built on the host and passed to the CUDA kernel, which solves each
tree with many threads and trusts both. A traced parent array (jit with the tree as an
argument, vmap over per-system trees) runs the one-thread-per-system CUDA kernel, which
checks it on the device and fills a system whose parent array breaks
``-1 <= parent[i] < i`` with NaN (no error: that would synchronise the host every call;
the CPU kernel raises). No CUDA handler waits for the device.

Differentiation: a custom JVP whose tangent is one more solve with the same
matrix (through ``lax.custom_linear_solve``), so forward mode works and reverse
mode transposes it into one solve with the transposed system. Both reuse the
diagonal eliminated by the forward solve (kept as its reciprocal).
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.ad_checkpoint import checkpoint_name

from . import _native, _reference
from .schedule import build_schedule

BACKENDS = ("auto", "native", "jax")


def hines_solve(parent, lower, diag, upper, rhs, *, backend: str = "auto"):
    """Solve the tree-structured systems ``A x = rhs`` of a forest.

    Args:
        parent: int array [N]; ``parent[i] < i`` is the node that node i couples
            to, ``-1`` marks a root. An operand, not a compile-time constant.
        lower: [N, *batch]; ``A[i, parent[i]]`` (ignored at roots).
        diag: [N, *batch]; ``A[i, i]``.
        upper: [N, *batch]; ``A[parent[i], i]`` (ignored at roots).
        rhs: [N, *batch]; right-hand sides.
        backend: ``"native"`` (the compiled XLA FFI kernel for the current
            platform), ``"jax"`` (pure JAX), or ``"auto"`` (native where it
            loaded, else jax).

    Returns:
        x: [N, *batch], same dtype (float32 or float64) as the float operands.

    Raises:
        ValueError: naming the problem, for bad shapes, dtypes, an unknown
            backend, non-finite values, or (when concrete) a parent array that
            breaks ``-1 <= parent[i] < i``.
    """
    if backend not in BACKENDS:
        raise ValueError(f"hines_solve: unknown backend {backend!r}; choose one of {BACKENDS}")
    schedule_of = parent  # before _checked: jnp.asarray makes a tracer of it under jit
    parent, floats = _checked(parent, lower, diag, upper, rhs)
    if backend == "native":
        why = _native.unavailable_reason("cpu")
        if why is not None and _native.unavailable_reason("CUDA") is not None:
            raise ValueError(f"hines_solve: the native backend is unavailable: {why}")
    shape = floats[-1].shape
    n = shape[0]
    if n == 0 or floats[-1].size == 0:
        return jnp.zeros(shape, floats[-1].dtype)
    x = _solve(backend, _schedule(backend, schedule_of), parent,
               *(a.reshape(n, -1) for a in floats))
    return x.reshape(shape)


def _schedule(backend, parent):
    """The GPU schedule of a concrete (already validated) parent array, else None."""
    if backend == "jax" or isinstance(parent, jax.core.Tracer) or not _native.available("CUDA"):
        return None
    return build_schedule(np.asarray(parent))


def _checked(parent, lower, diag, upper, rhs):
    names = ("lower", "diag", "upper", "rhs")
    floats = []
    for name, a in zip(names, (lower, diag, upper, rhs)):
        if not isinstance(a, jax.Array):  # the dtype JAX gives it (float64 -> float32 with x64 off)
            a = np.asarray(a)
            a = a.astype(jax.dtypes.canonicalize_dtype(a.dtype), copy=False)
        if not jnp.issubdtype(a.dtype, jnp.floating) or a.dtype not in (jnp.float32, jnp.float64):
            raise ValueError(f"hines_solve: {name} must be float32 or float64, got {a.dtype}")
        floats.append(a)
    dtypes = {a.dtype for a in floats}
    if len(dtypes) > 1:
        raise ValueError("hines_solve: lower, diag, upper and rhs must share one dtype, got "
                         + ", ".join(f"{n}={a.dtype}" for n, a in zip(names, floats)))
    shapes = {a.shape for a in floats}
    if len(shapes) > 1:
        raise ValueError("hines_solve: lower, diag, upper and rhs must share one shape, got "
                         + ", ".join(f"{n}={a.shape}" for n, a in zip(names, floats)))
    shape = floats[0].shape
    if len(shape) == 0:
        raise ValueError("hines_solve: operands need a node axis: shape [N, *batch]")

    parent = parent if isinstance(parent, jax.Array) else np.asarray(parent)
    if not jnp.issubdtype(parent.dtype, jnp.integer):
        raise ValueError(f"hines_solve: parent must be an integer array, got {parent.dtype}")
    if parent.shape != shape[:1]:
        raise ValueError(f"hines_solve: parent has shape {parent.shape}, expected ({shape[0]},) "
                         "to match the node axis of the float operands")
    if not isinstance(parent, jax.core.Tracer):
        p = np.asarray(parent)
        bad = np.flatnonzero((p < -1) | (p >= np.arange(p.size)))
        if bad.size:
            i = int(bad[0])
            raise ValueError(f"hines_solve: parent[{i}] = {int(p[i])} breaks -1 <= parent[i] < i "
                             f"({bad.size} bad entries); number nodes so that parents come first")
    for name, a in zip(names, floats):
        if not isinstance(a, jax.core.Tracer) and not np.all(np.isfinite(np.asarray(a))):
            raise ValueError(f"hines_solve: {name} has non-finite values")
    if isinstance(parent, jax.core.Tracer) and jnp.iinfo(parent.dtype).bits > 31:
        # int32 would wrap a value far out of range into a valid parent (2**40 -> 0): give it
        # one the kernels refuse instead (parent[i] = N breaks parent[i] < i)
        parent = jnp.where((parent >= -1) & (parent < shape[0]), parent, shape[0])
    return jnp.asarray(parent, jnp.int32), [jnp.asarray(a) for a in floats]


# --- backend dispatch ------------------------------------------------------

def _impl(backend: str, platform: str):
    if backend != "jax" and _native.available(platform):
        return _native
    return _reference


def _dispatch(backend: str, schedule, fn: str, *args):
    """fn of the backend of each platform; the CUDA kernel gets the schedule (if any)."""
    cpu, cuda = _impl(backend, "cpu"), _impl(backend, "CUDA")
    if cpu is _reference and cuda is _reference:
        return getattr(_reference, fn)(*args)
    cpu_fn, cuda_fn = getattr(cpu, fn), getattr(cuda, fn)
    if cpu is _native:
        cpu_fn = partial(cpu_fn, platform="cpu")
    if cuda is _native:
        cuda_fn = partial(cuda_fn, schedule=schedule, platform="CUDA")
    return lax.platform_dependent(
        *args,
        cpu=cpu_fn,
        cuda=cuda_fn,
        default=getattr(_reference, fn),
    )


def _matvec(parent, lower, diag, upper, y):
    """A @ y for [N, T] systems (pure JAX)."""
    has = (parent >= 0)[:, None]
    pc = jnp.maximum(parent, 0)
    out = diag * y + jnp.where(has, lower * y[pc], 0.0)
    return out.at[pc].add(jnp.where(has, upper * y, 0.0))


def _solve(backend, schedule, parent, lower, diag, upper, rhs):
    return _factor_solve(backend, schedule, parent, lower, diag, upper, rhs)[0]


@partial(jax.custom_jvp, nondiff_argnums=(0, 1))
def _factor_solve(backend, schedule, parent, lower, diag, upper, rhs):
    """(x, dinv = 1 / eliminated diagonal). Only x has a true derivative: dinv only
    parameterizes the ``solve`` callbacks of ``custom_linear_solve``,
    whose tangents JAX ignores (a solve is the exact inverse of its matvec)."""
    return _dispatch(backend, schedule, "factor_solve", parent, lower, diag, upper, rhs)


@_factor_solve.defjvp
def _factor_solve_jvp(backend, schedule, primals, tangents):
    parent, lower, diag, upper, rhs = primals
    _, dlower, ddiag, dupper, drhs = tangents
    # A call of the custom_jvp function itself, not of the FFI kernel, so that this
    # rule can be differentiated again (Hessians, forward-over-reverse): an FFI call
    # has no derivative of its own.
    x, dinv = _factor_solve(backend, schedule, parent, lower, diag, upper, rhs)
    x, dinv = checkpoint_name(x, "dendrax.solve"), checkpoint_name(dinv, "dendrax.solve")
    # dinv only parameterizes the solves, whose tangents custom_linear_solve ignores:
    # a symbolic zero tangent for it lets JAX skip differentiating the tangent solve
    # where nothing else varies (JAX's rule for that case fails on symbolic zeros,
    # e.g. in the Hessian of a loss that is linear in rhs).
    dinv = lax.stop_gradient(dinv)
    # d(A x) = dA x + A dx  =>  A dx = drhs - dA x
    dx = lax.custom_linear_solve(
        partial(_matvec, parent, lower, diag, upper),
        drhs - _matvec(parent, dlower, ddiag, dupper, x),
        solve=lambda _, b: _dispatch(backend, schedule, "substitute", parent, lower, upper, dinv, b),
        transpose_solve=lambda _, b: _dispatch(backend, schedule, "substitute", parent, upper,
                                               lower, dinv, b),
    )
    return (x, dinv), (dx, jnp.zeros_like(dinv))
