"""Solver kernels: the batched Hines tree solve (native XLA FFI kernels, pure-JAX fallback)."""

from .hines import BACKENDS, hines_solve
from ._native import available as native_available
from ._native import unavailable_reason as native_unavailable_reason

__all__ = ["BACKENDS", "hines_solve", "native_available", "native_unavailable_reason"]
