"""Event-driven spike propagation: ``deliver`` adds the weights of the connections
of the sources that fired to a ring of future input, through a CSR connectivity
(built with ``csr``), at a cost that follows spikes x fan-out (native XLA FFI
kernels, pure-JAX fallback)."""

from ._native import available as native_available
from ._native import unavailable_reason as native_unavailable_reason
from .delivery import BACKENDS, csr, deliver, take

__all__ = ["BACKENDS", "csr", "deliver", "take", "native_available", "native_unavailable_reason"]
