"""Loading the compiled Hines kernels and calling them through the XLA FFI.

The extension modules ``dendrax._hines_cpu`` and ``dendrax._hines_cuda`` export
PyCapsules of typed XLA FFI handlers. They are registered with JAX lazily, the
first time a solve is traced, so importing dendrax never touches a device and
never fails because an extension is missing.
"""

from __future__ import annotations

import importlib
import threading

import jax

# platform name used by jax.ffi.register_ffi_target -> extension module
_MODULES = {"cpu": "dendrax._hines_cpu", "CUDA": "dendrax._hines_cuda"}
_lock = threading.Lock()
_status: dict[str, str | None] = {}  # platform -> None if registered, else why not


def _register(platform: str) -> str | None:
    if platform == "CUDA":
        try:
            jax.devices("cuda")
        except RuntimeError as err:
            return f"JAX has no CUDA backend here ({err})"
    try:
        module = importlib.import_module(_MODULES[platform])
    except ImportError as err:
        return f"extension {_MODULES[platform]} not importable ({err})"
    try:
        for name, capsule in module.registrations().items():
            jax.ffi.register_ffi_target(name, capsule, platform=platform)
    except Exception as err:  # noqa: BLE001 - any failure means "not available"
        return f"registering the {platform} handlers failed ({type(err).__name__}: {err})"
    return None


def unavailable_reason(platform: str) -> str | None:
    """None when the native kernel for ``platform`` ("cpu" or "CUDA") is registered."""
    with _lock:
        if platform not in _status:
            _status[platform] = _register(platform)
        return _status[platform]


def available(platform: str) -> bool:
    return unavailable_reason(platform) is None


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
