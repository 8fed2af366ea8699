"""``deliver``: event-driven spike propagation through a sparse (CSR) connectivity;
``take``: reading (and zeroing) the input due now from the ring buffer.

Differentiation: a custom VJP. The result is ``buffer`` plus a sum of weights, so
d buffer = g and d weight[c] = fired[src(c)] * g[(step + delay[c]) % D, sign(c),
target[c]] (a gather over all C connections, pure JAX); fired, ptr, target, delay
and step get no gradient (forward mode, ``jax.jvp``, is not defined).
"""

from __future__ import annotations

import functools
from functools import partial

import jax
from jax.custom_derivatives import SymbolicZero
import jax.numpy as jnp
import numpy as np
from jax import lax

from . import _native, _reference

BACKENDS = ("auto", "native", "jax")
_INT32_MAX = np.iinfo(np.int32).max


def deliver(buffer, fired, ptr, target, delay, weight, step, *, backend: str = "auto"):
    """Add the weights of the connections of the sources that fired to an input ring.

    Connection c of source s (``ptr[s] <= c < ptr[s+1]``) adds ``weight[c]`` to
    ``buffer[(step + delay[c]) % D, 0 if weight[c] >= 0 else 1, target[c]]``
    when ``fired[s]``: channel 0 sums excitatory (positive) weights, channel 1
    inhibitory (negative) ones, as NEST splits a neuron's input by the sign of the
    weight.

    Args:
        buffer: float32 or float64 [D, 2, P]; the input ring of D future steps
            (row ``t % D`` holds the input due at step t), two channels, P targets.
        fired: bool [S] (integer arrays are read as ``fired != 0``); which sources
            spiked this step.
        ptr: int [S + 1]; the connections sorted by source (CSR, see ``csr``):
            ``ptr[0] = 0``, non-decreasing, ``ptr[S] = C``.
        target: int [C]; target of each connection, in [0, P).
        delay: int [C]; steps from now, in [0, D).
        weight: [C], the dtype of buffer.
        step: int scalar (may be traced); the current step.
        backend: ``"native"`` (the compiled XLA FFI kernel of the current platform:
            O(S + spikes x fan-out)), ``"jax"`` (the pure-JAX twin, a masked
            scatter-add over all C connections), or ``"auto"`` (native where it
            loaded, else jax).

    Returns:
        The updated buffer, [D, 2, P]. Inside ``jit`` (a ``lax.scan`` carry, say)
        the native kernel writes into the buffer in place.

    Floating-point sums may differ in the last bits between backends (and, with
    CUDA's atomic additions, between runs): the order of the additions into one
    target is not part of the contract. Integer-valued weights give identical
    results.

    Differentiable in buffer and weight (forward and reverse mode; in a scan, rematerialise
    the step, ``jax.checkpoint``, or reverse mode keeps each step's [C] connection slots);
    ``jit`` and ``vmap`` work
    (vmap over any operands: a batch of buffers and spike vectors can share one
    connectivity, which is not copied). Values are checked where they are concrete;
    traced bad data never makes a kernel read or write out of bounds: ptr entries
    are clamped to [0, C], connections with a target outside [0, P) or a delay
    outside [0, D) are skipped (for a ptr that is not monotone the backends may
    disagree).

    Raises:
        ValueError: naming the problem, for bad shapes, dtypes, an unknown or
            unavailable backend, and (when concrete) a ptr that is not a CSR
            row pointer, targets or delays out of range, or non-finite weights.
    """
    if backend not in BACKENDS:
        raise ValueError(f"deliver: unknown backend {backend!r}; choose one of {BACKENDS}")
    args = _checked(buffer, fired, ptr, target, delay, weight, step)
    if backend == "native":
        _require_native("deliver")
    buffer, fired, ptr, target, delay, weight, step = args
    if buffer.size == 0 or weight.shape[0] == 0 or fired.shape[0] == 0:
        return buffer
    return _deliver(backend, *args)


def take(buffer, step, *, backend: str = "auto"):
    """Read and zero ring row ``step % D``: the input due at ``step``.

    Equivalent to ``row = buffer[step % D]; buffer = buffer.at[step % D].set(0)``,
    but one operation: inside a ``lax.scan`` that carries the buffer, XLA copies the
    whole [D, 2, P] buffer every step when a read of it and an in-place update of it
    are separate operations (it cannot order them); the native kernel reads and
    zeroes in place, O(P) per step.

    Args:
        buffer: float32 or float64 [D, 2, P], as for ``deliver``.
        step: int scalar (may be traced).
        backend: as for ``deliver``.

    Returns:
        (buffer with row ``step % D`` zeroed, that row [2, P]: channel 0 the
        excitatory, channel 1 the inhibitory input). Differentiable in buffer
        (forward and reverse mode); jit and vmap work.
    """
    if backend not in BACKENDS:
        raise ValueError(f"take: unknown backend {backend!r}; choose one of {BACKENDS}")
    buffer = _as_array(buffer)
    if buffer.dtype not in (jnp.float32, jnp.float64):
        raise ValueError(f"take: buffer must be float32 or float64, got {buffer.dtype}")
    if buffer.ndim != 3 or buffer.shape[1] != 2 or buffer.shape[0] < 1:
        raise ValueError(f"take: buffer has shape {buffer.shape}, expected (D, 2, P) with D >= 1")
    step = _checked_step("take", step)
    if backend == "native":
        _require_native("take")
    if buffer.size == 0:
        return buffer, jnp.zeros((2, buffer.shape[2]), buffer.dtype)
    return _take(backend, jnp.asarray(buffer), step)


def csr(source, n_sources: int):
    """The CSR order of a connection list.

    Args:
        source: int [C]; the source of each connection, in [0, n_sources).
        n_sources: S.

    Returns:
        (order, ptr): int32 [C], a stable permutation that sorts the connections
        by source, and int32 [S + 1], where the connections of source s are
        ``order[ptr[s]:ptr[s+1]]``. Index the per-connection arrays with order:
        ``deliver(buf, fired, ptr, target[order], delay[order], weight[order], step)``.
        numpy arrays for concrete input, JAX arrays for traced input.
    """
    n_sources = int(n_sources)
    if n_sources < 0:
        raise ValueError(f"csr: n_sources must be >= 0, got {n_sources}")
    if isinstance(source, jax.core.Tracer):
        if source.ndim != 1 or not jnp.issubdtype(source.dtype, jnp.integer):
            raise ValueError(f"csr: source must be a 1-D integer array, got {source.dtype}{list(source.shape)}")
        if source.shape[0] > _INT32_MAX:
            raise ValueError("csr: more than 2^31 - 1 connections")
        order = jnp.argsort(source, stable=True).astype(jnp.int32)
        counts = jnp.zeros((n_sources,), jnp.int32).at[source].add(1, mode="drop")
        return order, jnp.concatenate([jnp.zeros((1,), jnp.int32), jnp.cumsum(counts, dtype=jnp.int32)])
    src = np.asarray(source)
    if src.ndim != 1 or not (np.issubdtype(src.dtype, np.integer) or src.size == 0):
        raise ValueError(f"csr: source must be a 1-D integer array, got {src.dtype}{list(src.shape)}")
    if src.size > _INT32_MAX:
        raise ValueError("csr: more than 2^31 - 1 connections")
    bad = np.flatnonzero((src < 0) | (src >= n_sources))
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"csr: source[{i}] = {int(src[i])} is outside [0, {n_sources}) "
                         f"({bad.size} bad entries)")
    src = src.astype(np.int64, copy=False)
    order = np.argsort(src, kind="stable").astype(np.int32)
    ptr = np.zeros(n_sources + 1, np.int32)
    np.cumsum(np.bincount(src, minlength=n_sources), out=ptr[1:])
    return order, ptr


# --- checks -------------------------------------------------------------------

def _concrete(a) -> bool:
    return not isinstance(a, jax.core.Tracer)


def _as_array(a):
    if isinstance(a, jax.Array):
        return a
    a = np.asarray(a)
    return a.astype(jax.dtypes.canonicalize_dtype(a.dtype), copy=False)


def _int_vector(name, a, length_name, length=None):
    a = _as_array(a)
    if not jnp.issubdtype(a.dtype, jnp.integer) and not (a.size == 0 and _concrete(a)):
        raise ValueError(f"deliver: {name} must be an integer array, got {a.dtype}")
    if a.ndim != 1 or (length is not None and a.shape[0] != length):
        want = f"({length_name},)" if length is None else f"({length},) = ({length_name},)"
        raise ValueError(f"deliver: {name} has shape {a.shape}, expected {want}")
    return a


def _checked(buffer, fired, ptr, target, delay, weight, step):
    buffer, weight = _as_array(buffer), _as_array(weight)
    if buffer.dtype not in (jnp.float32, jnp.float64):
        raise ValueError(f"deliver: buffer must be float32 or float64, got {buffer.dtype}")
    if buffer.ndim != 3 or buffer.shape[1] != 2:
        raise ValueError(f"deliver: buffer has shape {buffer.shape}, expected (D, 2, P): D ring "
                         "rows, 2 channels (excitatory, inhibitory), P targets")
    d, _, p = buffer.shape
    if d < 1:
        raise ValueError("deliver: buffer needs at least one ring row (D >= 1)")
    if weight.dtype != buffer.dtype:
        raise ValueError(f"deliver: weight must have the dtype of buffer ({buffer.dtype}), "
                         f"got {weight.dtype}")
    if weight.ndim != 1:
        raise ValueError(f"deliver: weight has shape {weight.shape}, expected (C,)")
    c = weight.shape[0]
    if c > _INT32_MAX:
        raise ValueError("deliver: more than 2^31 - 1 connections")

    fired = _as_array(fired)
    if fired.dtype != jnp.bool_ and not jnp.issubdtype(fired.dtype, jnp.integer) \
            and not (fired.size == 0 and _concrete(fired)):
        raise ValueError(f"deliver: fired must be a bool (or integer) array, got {fired.dtype}; "
                         "no gradient flows to fired: threshold a float array yourself")
    if fired.ndim != 1:
        raise ValueError(f"deliver: fired has shape {fired.shape}, expected (S,)")
    s = fired.shape[0]
    ptr = _int_vector("ptr", ptr, "S + 1", s + 1)
    target = _int_vector("target", target, "C", c)
    delay = _int_vector("delay", delay, "C", c)

    step = _checked_step("deliver", step)

    if _concrete(ptr):
        pv = np.asarray(ptr).astype(np.int64)
        if pv[0] != 0 or pv[-1] != c:
            raise ValueError(f"deliver: ptr must start at 0 and end at C = {c} (the number of "
                             f"connections), got ptr[0] = {int(pv[0])}, ptr[-1] = {int(pv[-1])}")
        bad = np.flatnonzero(np.diff(pv) < 0)
        if bad.size:
            i = int(bad[0])
            raise ValueError(f"deliver: ptr must be non-decreasing (connections sorted by source, "
                             f"see dendrax.events.csr), got ptr[{i}] = {int(pv[i])} > "
                             f"ptr[{i + 1}] = {int(pv[i + 1])}")
    for name, a, hi in (("target", target, p), ("delay", delay, d)):
        if _concrete(a) and c:
            v = np.asarray(a)
            bad = np.flatnonzero((v < 0) | (v >= hi))
            if bad.size:
                i = int(bad[0])
                what = "P targets" if name == "target" else "D ring rows: delays count steps from now"
                raise ValueError(f"deliver: {name}[{i}] = {int(v[i])} is outside [0, {hi}) "
                                 f"({bad.size} bad entries; the buffer has {what})")
    if _concrete(weight) and c and not np.all(np.isfinite(np.asarray(weight))):
        raise ValueError("deliver: weight has non-finite values")

    fired = fired if fired.dtype == jnp.bool_ else fired != 0
    return (jnp.asarray(buffer), jnp.asarray(fired), jnp.asarray(ptr, jnp.int32),
            jnp.asarray(target, jnp.int32), jnp.asarray(delay, jnp.int32), jnp.asarray(weight),
            step)


def _checked_step(fn, step):
    raw = step if isinstance(step, jax.Array) else np.asarray(step)
    if raw.shape != () or not jnp.issubdtype(raw.dtype, jnp.integer):
        raise ValueError(f"{fn}: step must be an integer scalar, got {raw.dtype}{list(raw.shape)}")
    if _concrete(raw) and not -2**31 <= int(raw) <= _INT32_MAX:
        raise ValueError(f"{fn}: step = {int(raw)} does not fit in int32")
    return jnp.asarray(raw, jnp.int32) if isinstance(raw, jax.Array) else jnp.asarray(raw.astype(np.int32))


def _require_native(fn):
    why = _native.unavailable_reason("cpu")
    if why is not None and _native.unavailable_reason("CUDA") is not None:
        raise ValueError(f"{fn}: the native backend is unavailable: {why}")


# --- backend dispatch ---------------------------------------------------------------

_OPS = {"deliver": (_native.deliver, _reference.deliver_batched),
        "take": (_native.take, _reference.take_batched)}


def _dispatch(backend, op, *args):
    native, reference = _OPS[op]
    impl = {p: native if backend != "jax" and _native.available(p) else reference
            for p in ("cpu", "CUDA")}
    if impl["cpu"] is reference and impl["CUDA"] is reference:
        return reference(*args)
    return lax.platform_dependent(*args, cpu=impl["cpu"], cuda=impl["CUDA"], default=reference)


@functools.cache
def _batched_call(backend: str, op: str):
    """The kernel as a function of operands with k >= 0 leading batch axes, whose
    vmap rule adds one more (size 1 for an operand that is not batched: shared, not
    copied; the buffer, which the result aliases, is broadcast)."""

    @jax.custom_batching.custom_vmap
    def call(*args):
        return _dispatch(backend, op, *args)

    @call.def_vmap
    def _rule(axis_size, in_batched, *args):
        args = [a if b else a[None] for a, b in zip(args, in_batched)]
        if not in_batched[0]:
            args[0] = jnp.broadcast_to(args[0], (axis_size, *args[0].shape[1:]))
        out = call(*args)
        return out, jax.tree.map(lambda _: True, out)

    return call


def _forward(backend, op, *args):
    if backend == "jax":
        return getattr(_reference, op)(*args)
    return _batched_call(backend, op)(*args)


# Derivatives: custom JVPs (so forward mode, jacfwd and jacrev(jacfwd), work too) whose
# tangents are the pure-JAX twin's, linear in the buffer's and the weights' tangents: the
# primal runs the native kernel, reverse mode transposes the twin. The transpose reads the
# connections' ring slots [C]: dendrax's time loop rematerialises its step, so reverse mode
# through T steps keeps the spikes of each step, not [T, C] slots (a jax.checkpoint here as
# well made a point network's gradient 3.7x slower: 1000 neurons, 1e5 connections).
@partial(jax.custom_jvp, nondiff_argnums=(0,))
def _deliver(backend, buffer, fired, ptr, target, delay, weight, step):
    return _forward(backend, "deliver", buffer, fired, ptr, target, delay, weight, step)


def _weight_tangent(zeros, fired, ptr, target, delay, weight, dweight, step):
    return _reference.deliver_values(zeros, fired, ptr, target, delay, weight, dweight, step)


def _deliver_jvp(backend, primals, tangents):
    buffer, fired, ptr, target, delay, weight, step = primals
    dbuffer, dweight = tangents[0], tangents[5]
    out = _deliver(backend, *primals)
    tangent = (jnp.zeros_like(out) if isinstance(dbuffer, SymbolicZero)
               else dbuffer.astype(out.dtype))
    if not isinstance(dweight, SymbolicZero):
        tangent = tangent + _weight_tangent(jnp.zeros_like(out), fired, ptr, target, delay,
                                            weight, dweight.astype(out.dtype), step)
    return out, tangent


_deliver.defjvp(_deliver_jvp, symbolic_zeros=True)


@partial(jax.custom_jvp, nondiff_argnums=(0,))
def _take(backend, buffer, step):
    return _forward(backend, "take", buffer, step)


def _take_jvp(backend, primals, tangents):
    buffer, step = primals
    out = _take(backend, buffer, step)
    return out, _reference.take_batched(tangents[0], step)


_take.defjvp(_take_jvp)
