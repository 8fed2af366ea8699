"""Loading the compiled event kernels (deliver, take) and calling them through the XLA FFI.

The extension modules ``dendrax._events_cpu`` and ``dendrax._events_cuda`` export
PyCapsules of typed XLA FFI handlers, registered with JAX lazily, the first time a
delivery is traced (as the Hines kernels are, see ``dendrax.solver._native``), so
importing dendrax never touches a device and never fails because an extension is
missing.
"""

from __future__ import annotations

import jax

from ..extensions import Extensions

DELIVER = "dendrax_events_deliver"
TAKE = "dendrax_events_take"
# platform name used by jax.ffi.register_ffi_target -> extension module
_EXTENSIONS = Extensions({"cpu": "dendrax._events_cpu", "CUDA": "dendrax._events_cuda"})
unavailable_reason = _EXTENSIONS.unavailable_reason  # None when the platform's kernel is registered
available = _EXTENSIONS.available


def deliver(buffer, fired, ptr, target, delay, weight, step):
    """One native delivery. Operands carry the same number k >= 0 of leading batch
    axes (each of size 1, broadcast, or the batch size; the buffer's are the
    result's): buffer [*b, D, 2, P], fired [*b, S], ptr [*b, S+1], target, delay,
    weight [*b, C], step [*b]. The result may reuse the buffer's memory."""
    out = jax.ShapeDtypeStruct(buffer.shape, buffer.dtype)
    # vmap never reaches this call: dendrax.events.deliver batches it itself
    # (jax.custom_batching.custom_vmap), adding explicit leading axes.
    return jax.ffi.ffi_call(DELIVER, out, input_output_aliases={0: 0})(
        buffer, fired, ptr, target, delay, weight, step)


def take(buffer, step):
    """Native read-and-zero of ring row step % D: buffer [*b, D, 2, P], step [*b]
    (leading axes as for ``deliver``). Returns (buffer with the row zeroed, which
    may reuse the buffer's memory; the row, [*b, 2, P])."""
    out = jax.ShapeDtypeStruct(buffer.shape, buffer.dtype)
    row = jax.ShapeDtypeStruct((*buffer.shape[:-3], 2, buffer.shape[-1]), buffer.dtype)
    return tuple(jax.ffi.ffi_call(TAKE, (out, row), input_output_aliases={0: 0})(buffer, step))


__all__ = ["available", "unavailable_reason", "deliver", "take"]
