"""Loading the compiled Hines kernels and calling them through the XLA FFI.

The extension modules ``dendrax._hines_cpu`` and ``dendrax._hines_cuda`` export
PyCapsules of typed XLA FFI handlers. They are registered with JAX lazily, the
first time a solve is traced, so importing dendrax never touches a device and
never fails because an extension is missing.
"""

from __future__ import annotations

import jax

from .._ffi import Extensions

# platform name used by jax.ffi.register_ffi_target -> extension module
_EXTENSIONS = Extensions({"cpu": "dendrax._hines_cpu", "CUDA": "dendrax._hines_cuda"})
unavailable_reason = _EXTENSIONS.unavailable_reason  # None when the platform's kernel is registered
available = _EXTENSIONS.available


def _call(target: str, n_out: int, *operands):
    """One FFI call; results have the shape and dtype of the last operand."""
    rhs = operands[-1]
    out = jax.ShapeDtypeStruct(rhs.shape, rhs.dtype)
    return jax.ffi.ffi_call(target, (out,) * n_out, vmap_method="expand_dims")(*operands)


def factor_solve(parent, lower, diag, upper, rhs):
    """Native solve of [N, T] systems. Returns (x, dinv = 1 / eliminated diagonal)."""
    return _call("dendrax_hines_factor_solve", 2, parent, lower, diag, upper, rhs)


def substitute(parent, lower, upper, dinv, rhs):
    """Native solve reusing the dinv of factor_solve (lower and upper swapped: the
    transposed system). Returns x."""
    (x,) = _call("dendrax_hines_substitute", 1, parent, lower, upper, dinv, rhs)
    return x


__all__ = ["available", "unavailable_reason", "factor_solve", "substitute"]
