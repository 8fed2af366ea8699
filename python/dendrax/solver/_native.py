"""Loading the compiled Hines kernels and calling them through the XLA FFI.

The extension modules ``dendrax._hines_cpu`` and ``dendrax._hines_cuda`` export
PyCapsules of typed XLA FFI handlers. They are registered with JAX lazily, the
first time a solve is traced, so importing dendrax never touches a device and
never fails because an extension is missing.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from ..extensions import Extensions

# platform name used by jax.ffi.register_ffi_target -> extension module
_EXTENSIONS = Extensions({"cpu": "dendrax._hines_cpu", "CUDA": "dendrax._hines_cuda"})
unavailable_reason = _EXTENSIONS.unavailable_reason  # None when the platform's kernel is registered
available = _EXTENSIONS.available


def _call(target: str, n_out: int, *operands, platform: str, schedule=None):
    """One FFI call; results have the shape and dtype of the rhs (operand 4).

    With a ``schedule`` (``dendrax.solver.schedule.Schedule`` of the concrete parent
    array), the ``_scheduled`` variant of the target runs (CUDA only: the branch-level
    parallel kernel), with the packed schedule as one more operand and its widest level
    as the attribute ``width``. ``platform`` ("cpu" or "CUDA") picks the layout of a
    ``jax.vmap`` batch (``_batched``)."""
    return _batched(target, n_out, schedule, platform == "cpu")(*operands)


def _raw(target: str, n_out: int, schedule, parent, *floats):
    rhs = floats[-1]
    out = jax.ShapeDtypeStruct(rhs.shape, rhs.dtype)
    if schedule is None:
        return jax.ffi.ffi_call(target, (out,) * n_out, vmap_method="expand_dims")(parent,
                                                                                    *floats)
    call = jax.ffi.ffi_call(target + "_scheduled", (out,) * n_out, vmap_method="expand_dims")
    return call(parent, *floats, schedule.packed, width=np.int64(schedule.width))


def _batched(target: str, n_out: int, schedule, leading: bool):
    """The FFI call on [N, T] systems, batched by ``jax.vmap``.

    ``leading`` (the CPU): the batch stays the leading axis, where vmap puts it; the
    kernel solves the entries of few systems each together, node by node, reading each
    where it lies (hines_cpu.cc), so XLA needs no transposes. Otherwise (the GPU, which
    runs one thread per system of the trailing axis T) a batch of B sharing one tree
    becomes T * B systems side by side (operands not batched are broadcast). A batch of
    different trees (a batched ``parent``) keeps the leading-axis layout everywhere."""

    @jax.custom_batching.custom_vmap
    def call(parent, *floats):
        return _raw(target, n_out, schedule, parent, *floats)

    @call.def_vmap
    def rule(axis_size, in_batched, parent, *floats):
        if leading or in_batched[0]:
            axes = tuple(0 if b else None for b in in_batched)
            return jax.vmap(partial(_raw, target, n_out, schedule), in_axes=axes)(
                parent, *floats), (True,) * n_out
        n, t = floats[-1].shape[-2:] if in_batched[-1] else floats[-1].shape
        wide = [(jnp.moveaxis(a, 0, -1) if b else
                 jnp.broadcast_to(a[..., None], (n, t, axis_size))).reshape(n, t * axis_size)
                for a, b in zip(floats, in_batched[1:])]
        outs = call(parent, *wide)
        return tuple(jnp.moveaxis(x.reshape(n, t, axis_size), -1, 0) for x in outs), \
            (True,) * n_out

    return call


def factor_solve(parent, lower, diag, upper, rhs, *, platform: str, schedule=None):
    """Native solve of [N, T] systems on ``platform`` ("cpu" or "CUDA"). Returns
    (x, dinv = 1 / eliminated diagonal)."""
    return _call("dendrax_hines_factor_solve", 2, parent, lower, diag, upper, rhs,
                 schedule=schedule, platform=platform)


def substitute(parent, lower, upper, dinv, rhs, *, platform: str, schedule=None):
    """Native solve reusing the dinv of factor_solve (lower and upper swapped: the
    transposed system) on ``platform``. Returns x."""
    (x,) = _call("dendrax_hines_substitute", 1, parent, lower, upper, dinv, rhs,
                 schedule=schedule, platform=platform)
    return x


__all__ = ["available", "unavailable_reason", "factor_solve", "substitute"]
