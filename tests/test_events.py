"""Tests of ``dendrax.events``: event delivery through a CSR connectivity.

``deliver`` is compared with a plain numpy loop over the documented semantics, the
native kernel with its pure-JAX twin, on random CSR connectivities (empty sources,
repeated targets, both weight signs, every delay), random spike sets and steps
(negative, past 2^31 / D); gradients with central finite differences and with the
twin's own autodiff; the typical loop (``lax.scan`` over steps: deliver into the
carried ring, then ``take`` row step % D); vmap with shared connectivity; refusals
of bad input, and bad traced input that must neither crash nor reach out of bounds.
"""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jax import lax

import dendrax.events as events
from dendrax.events import _reference

NATIVE = events.native_available("cpu")
needs_native = pytest.mark.skipif(
    not NATIVE, reason=f"native CPU kernel unavailable: {events.native_unavailable_reason('cpu')}")
BACKENDS = ["jax", pytest.param("native", marks=needs_native)]
ALL = ("native", "jax") if NATIVE else ("jax",)

PROPS = settings(max_examples=30, deadline=None,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
FEW = settings(PROPS, max_examples=12)
RTOL = {np.float64: 1e-12, np.float32: 1e-5}


# --- the documented semantics, written plainly --------------------------------------

def dense_deliver(buffer, fired, ptr, target, delay, weight, step):
    out = np.array(buffer, dtype=np.float64 if buffer.dtype == np.float64 else np.float32)
    d = out.shape[0]
    for s in range(len(fired)):
        if fired[s]:
            for c in range(ptr[s], ptr[s + 1]):
                row = (int(step) + int(delay[c])) % d
                out[row, 0 if weight[c] >= 0 else 1, target[c]] += weight[c]
    return out


# --- random networks --------------------------------------------------------------

# few distinct shapes, so that compiled functions are reused
SHAPES = [(1, 1, 1, 1), (3, 5, 4, 0), (4, 7, 5, 30), (6, 3, 9, 40), (2, 12, 3, 55)]  # (D, S, P, C)


@st.composite
def networks(draw, integer_weights=None, dtype=None):
    """(buffer, fired, ptr, target, delay, weight, step), numpy, sorted by source."""
    d, s, p, c = draw(st.sampled_from(SHAPES))
    seed = draw(st.integers(0, 2**32 - 1))
    dtype = dtype or draw(st.sampled_from([np.float64, np.float32]))
    integer = draw(st.booleans()) if integer_weights is None else integer_weights
    rng = np.random.default_rng(seed)
    hub = draw(st.booleans())  # all connections from a few sources (and empty ones)
    source = rng.integers(0, max(1, min(s, 2)) if hub else s, c)
    order, ptr = events.csr(source, s)
    target = rng.integers(0, p, c)[order]
    delay = rng.integers(0, d, c)[order]
    if integer:
        weight = rng.integers(-4, 5, c).astype(dtype)
    else:
        weight = (rng.choice([-1, 1], c) * rng.uniform(0.1, 2.0, c)).astype(dtype)
    fired = rng.random(s) < draw(st.sampled_from([0.0, 0.3, 1.0]))
    buffer = (rng.integers(-3, 4, (d, 2, p)) if integer else rng.normal(size=(d, 2, p))).astype(dtype)
    step = draw(st.sampled_from([0, 1, 7, -1, -13, 2**31 - 1, -2**31, 123456789]))
    return buffer, fired, ptr, target.astype(np.int32), delay.astype(np.int32), weight, step


def assert_close(actual, expected, exact):
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape and actual.dtype == expected.dtype
    if exact:
        np.testing.assert_array_equal(actual, expected)
    else:
        scale = max(1.0, float(np.max(np.abs(expected), initial=0)))
        np.testing.assert_allclose(actual, expected, rtol=0, atol=RTOL[expected.dtype.type] * scale * 10)


# --- values -------------------------------------------------------------------------

@given(net=networks())
@PROPS
def test_deliver_matches_dense_loop(net):
    expected = dense_deliver(*net)
    exact = bool(np.all(net[5] == np.round(net[5])))
    for backend in ALL:
        assert_close(events.deliver(*net, backend=backend), expected, exact)


@given(net=networks())
@PROPS
def test_native_matches_twin_under_jit(net):
    buffer, fired, ptr, target, delay, weight, step = net
    f = jax.jit(lambda *a, backend: events.deliver(*a, backend=backend), static_argnames="backend")
    outs = [f(buffer, fired, ptr, target, delay, weight, jnp.int32(step), backend=b) for b in ALL]
    exact = bool(np.all(weight == np.round(weight)))
    for out in outs[1:]:
        assert_close(out, outs[0], exact)
    assert_close(outs[0], dense_deliver(*net), exact)


def test_float64_sums_agree_to_last_bits_and_integer_sums_exactly():
    """Many connections into few targets: the order of additions may differ
    between backends (documented), the result only in the last bits."""
    rng = np.random.default_rng(3)
    s, p, d, c = 50, 3, 4, 5000
    order, ptr = events.csr(rng.integers(0, s, c), s)
    target, delay = rng.integers(0, p, c)[order], rng.integers(0, d, c)[order]
    fired = rng.random(s) < 0.7
    for weight, exact in [(rng.normal(size=c)[order], False), (rng.integers(-9, 10, c)[order] * 1.0, True)]:
        ref = dense_deliver(np.zeros((d, 2, p)), fired, ptr, target, delay, weight, 5)
        for b in ALL:
            out = np.asarray(events.deliver(np.zeros((d, 2, p)), fired, ptr, target, delay, weight, 5, backend=b))
            if exact:
                np.testing.assert_array_equal(out, ref)
            else:
                np.testing.assert_allclose(out, ref, rtol=1e-12, atol=1e-12 * np.abs(ref).max())


def test_channels_split_by_sign():
    buf = np.zeros((3, 2, 2))
    ptr = np.array([0, 3])
    out = np.asarray(events.deliver(buf, np.array([True]), ptr, np.array([0, 1, 1]), np.array([0, 2, 2]),
                                    np.array([0.5, -0.25, 0.0]), 1))
    expected = np.zeros((3, 2, 2))
    expected[1, 0, 0] = 0.5      # step 1 + delay 0
    expected[0, 1, 1] = -0.25    # (1 + 2) % 3 = 0, inhibitory
    expected[0, 0, 1] = 0.0      # a zero weight counts as excitatory
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("backend", BACKENDS)
def test_float32_and_integer_fired(backend):
    buf = np.zeros((2, 2, 3), np.float32)
    out = events.deliver(buf, np.array([0, 2], np.int8), np.array([0, 1, 2]), np.array([2, 0]),
                         np.array([1, 0]), np.array([1.5, -2.0], np.float32), 0, backend=backend)
    assert out.dtype == jnp.float32
    expected = np.zeros((2, 2, 3), np.float32)
    expected[0, 1, 0] = -2.0
    np.testing.assert_array_equal(np.asarray(out), expected)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shape", [(2, 0, 3, 0), (2, 3, 0, 0), (2, 3, 4, 0)])  # (D, S, P, C)
def test_empty(backend, shape):
    d, s, p, c = shape
    buf = np.ones((d, 2, p))
    out = events.deliver(buf, np.ones(s, bool), np.r_[0, np.full(s, c)][: s + 1] if s else [0],
                         np.zeros(c, np.int32), np.zeros(c, np.int32), np.ones(c), 3, backend=backend)
    np.testing.assert_array_equal(np.asarray(out), buf)


# --- take ---------------------------------------------------------------------------

@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_take_reads_and_zeroes_the_row(backend, dtype):
    buf = np.arange(4 * 2 * 3, dtype=dtype).reshape(4, 2, 3)
    for step in (0, 5, -1, 2**31 - 1, -2**31):
        out, row = events.take(buf, step, backend=backend)
        r = step % 4
        np.testing.assert_array_equal(np.asarray(row), buf[r])
        expected = buf.copy()
        expected[r] = 0
        np.testing.assert_array_equal(np.asarray(out), expected)
        assert out.dtype == row.dtype == dtype


@pytest.mark.parametrize("backend", BACKENDS)
def test_take_gradient(backend):
    buf = np.random.default_rng(0).normal(size=(3, 2, 4))
    wb, wr = np.random.default_rng(1).normal(size=(2, 3, 2, 4))
    wr = wr[0]

    def loss(b, take):
        out, row = take(b)
        return jnp.sum(jnp.sin(out) * wb) + jnp.sum(row ** 3 * wr)

    g = jax.grad(loss)(buf, lambda b: events.take(b, 4, backend=backend))
    g_ref = jax.grad(loss)(jnp.asarray(buf), lambda b: _reference.take(b, jnp.int32(4)))
    np.testing.assert_allclose(np.asarray(g), np.asarray(g_ref), rtol=1e-13)


# --- the typical loop -------------------------------------------------------------------

def make_net(seed=0, s=20, p=15, d=5, c=300, dtype=np.float64):
    rng = np.random.default_rng(seed)
    order, ptr = events.csr(rng.integers(0, s, c), s)
    target, delay = rng.integers(0, p, c)[order], rng.integers(1, d, c)[order]
    weight = (rng.choice([-1, 1], c) * rng.uniform(0.1, 1.0, c))[order].astype(dtype)
    return ptr, target.astype(np.int32), delay.astype(np.int32), weight


def run_loop(weight, spikes, net, d, p, backend, take=True, remat=False):
    """Each step: deliver the step's spikes into the carried ring, then read and
    zero row step % D. Returns the rows read, [T, 2, P]. ``remat``: the step
    rematerialised in reverse mode, as dendrax's time loop has it."""
    ptr, target, delay, _ = net

    def body(buffer, xs):
        t, fired = xs
        buffer = events.deliver(buffer, fired, ptr, target, delay, weight, t, backend=backend)
        if take:
            return events.take(buffer, t, backend=backend)
        row = t % d
        return buffer.at[row].set(0), buffer[row]

    steps = jnp.arange(spikes.shape[0], dtype=jnp.int32)
    _, rows = lax.scan(jax.checkpoint(body) if remat else body,
                       jnp.zeros((d, 2, p), weight.dtype), (steps, spikes))
    return rows


def numpy_loop(weight, spikes, net, d, p):
    ptr, target, delay, _ = net
    buffer, rows = np.zeros((d, 2, p)), []
    for t, fired in enumerate(spikes):
        buffer = dense_deliver(buffer, fired, ptr, target, delay, weight, t)
        rows.append(buffer[t % d].copy())
        buffer[t % d] = 0
    return np.stack(rows)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("take", [True, False])
def test_scan_loop_matches_numpy(backend, take):
    d, p = 5, 15
    net = make_net(d=d, p=p)
    spikes = np.random.default_rng(1).random((40, 20)) < 0.2
    rows = jax.jit(lambda w, sp: run_loop(w, sp, net, d, p, backend, take))(net[3], spikes)
    np.testing.assert_allclose(np.asarray(rows), numpy_loop(net[3], spikes, net, d, p), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_scan_loop_gradient_matches_twin_autodiff(backend):
    d, p = 5, 15
    net = make_net(d=d, p=p)
    spikes = np.random.default_rng(2).random((30, 20)) < 0.3
    probe = np.random.default_rng(3).normal(size=(30, 2, p))

    def loss(w):
        return jnp.sum(jnp.tanh(run_loop(w, spikes, net, d, p, backend)) * probe)

    def loss_twin(w):  # plain JAX autodiff through the twin, no custom VJP
        ptr, target, delay, _ = net

        def body(buffer, xs):
            t, fired = xs
            buffer = _reference.deliver(buffer, jnp.asarray(fired), jnp.asarray(ptr, jnp.int32),
                                        jnp.asarray(target), jnp.asarray(delay), w, t)
            return _reference.take(buffer, t)

        _, rows = lax.scan(body, jnp.zeros((d, 2, p)), (jnp.arange(30, dtype=jnp.int32), spikes))
        return jnp.sum(jnp.tanh(rows) * probe)

    g = jax.jit(jax.grad(loss))(net[3])
    g_twin = jax.jit(jax.grad(loss_twin))(jnp.asarray(net[3]))
    np.testing.assert_allclose(np.asarray(g), np.asarray(g_twin), rtol=1e-12, atol=1e-14)
    assert np.count_nonzero(np.asarray(g)) > 0


def test_scan_loop_gradient_keeps_no_per_step_connection_residuals():
    """Reverse mode through T steps of the rematerialised step (dendrax's time loop)
    saves the spikes per step, not [T, C] arrays (the connections' ring slots, which
    the weights' transposed tangent reads, are computed again)."""
    d, p, t = 5, 15, 17
    net = make_net(d=d, p=p, c=301)
    spikes = np.zeros((t, 20), bool)
    jaxpr = str(jax.make_jaxpr(jax.grad(lambda w: jnp.sum(
        run_loop(w, spikes, net, d, p, "auto", remat=True))))(net[3]))
    assert f"[{t},301]" not in jaxpr.replace(" ", "")


@pytest.mark.parametrize("backend", BACKENDS)
def test_forward_mode_equals_reverse_mode(backend):
    """Forward mode (jvp, jacfwd; jacrev(jacfwd) for second derivatives) through the
    kernels: the Jacobian in the weights equals reverse mode's (it was refused: the
    kernels had a reverse rule only)."""
    d, p = 5, 15
    net = make_net(d=d, p=p, c=40)
    spikes = np.random.default_rng(4).random((12, 20)) < 0.4
    probe = np.random.default_rng(5).normal(size=(12, 2, p))

    def loss(w):
        return jnp.sum(jnp.tanh(run_loop(w, spikes, net, d, p, backend, remat=True)) * probe)

    w = jnp.asarray(net[3])
    np.testing.assert_allclose(jax.jacfwd(loss)(w), jax.grad(loss)(w), rtol=1e-12, atol=1e-14)
    hess = jax.jacrev(jax.jacfwd(loss))(w)
    np.testing.assert_allclose(hess, hess.T, rtol=1e-10, atol=1e-12)
    assert np.count_nonzero(np.asarray(jax.grad(loss)(w))) > 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_take_in_scan_copies_no_buffer(backend):
    """The point of take: inside a scan the ring is updated in place (native)."""
    if backend == "jax":
        pytest.skip("XLA copies the ring when a read and an in-place update of it are separate ops")
    d, p = 16, 1000
    net = make_net(d=d, p=p)
    spikes = np.zeros((8, 20), bool)
    hlo = jax.jit(lambda w, sp: run_loop(w, sp, net, d, p, backend)).lower(net[3], spikes).compile().as_text()
    body = [l for l in hlo.splitlines() if f"f64[{d},2,{p}]" in l and " copy(" in l]
    assert len(body) <= 1, body  # at most the copy of the initial buffer, outside the loop


# --- gradients -------------------------------------------------------------------------

@given(net=networks(integer_weights=False, dtype=np.float64))
@FEW
def test_gradient_matches_finite_differences_and_twin(net):
    buffer, fired, ptr, target, delay, weight, step = net
    probe = np.random.default_rng(0).normal(size=buffer.shape)

    def loss(b, w, fn):
        return jnp.sum(jnp.sin(fn(b, w)) * probe)

    twin = lambda b, w: _reference.deliver(b, jnp.asarray(fired), jnp.asarray(ptr, jnp.int32),  # noqa: E731
                                           jnp.asarray(target), jnp.asarray(delay), w, jnp.int32(step))
    g_twin = jax.grad(loss, argnums=(0, 1))(jnp.asarray(buffer), jnp.asarray(weight), twin)
    for backend in ALL:
        fn = lambda b, w: events.deliver(b, fired, ptr, target, delay, w, step, backend=backend)  # noqa: E731
        g = jax.grad(loss, argnums=(0, 1))(buffer, weight, fn)
        for a, b in zip(g, g_twin):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-12, atol=1e-15)
        # central differences in every weight (|w| >= 0.1: the sign does not flip)
        eps = 1e-6
        for c in range(min(len(weight), 8)):
            e = np.zeros_like(weight)
            e[c] = eps
            fd = (loss(buffer, weight + e, fn) - loss(buffer, weight - e, fn)) / (2 * eps)
            np.testing.assert_allclose(float(g[1][c]), float(fd), rtol=1e-6, atol=1e-8)


def test_weight_gradient_formula():
    """d weight[c] = fired[src(c)] * g[(step + delay[c]) % D, sign(c), target[c]]."""
    rng = np.random.default_rng(5)
    d, s, p, c = 4, 6, 5, 25
    order, ptr = events.csr(rng.integers(0, s, c), s)
    target, delay = rng.integers(0, p, c)[order], rng.integers(0, d, c)[order]
    weight = rng.normal(size=c)
    fired = rng.random(s) < 0.5
    g = rng.normal(size=(d, 2, p))
    src = np.repeat(np.arange(s), np.diff(ptr))
    expected = fired[src] * g[(9 + delay) % d, (weight < 0).astype(int), target]
    for b in ALL:
        _, vjp = jax.vjp(lambda buf, w: events.deliver(buf, fired, ptr, target, delay, w, 9, backend=b),
                         np.zeros((d, 2, p)), weight)
        gbuf, gw = vjp(jnp.asarray(g))
        np.testing.assert_array_equal(np.asarray(gw), expected)
        np.testing.assert_array_equal(np.asarray(gbuf), g)


# --- vmap ---------------------------------------------------------------------------------

@pytest.mark.parametrize("backend", BACKENDS)
def test_vmap_shared_connectivity(backend):
    d, s, p = 4, 20, 15
    ptr, target, delay, weight = make_net(s=s, p=p, d=d)
    rng = np.random.default_rng(4)
    bufs = rng.normal(size=(3, d, 2, p))
    fired = rng.random((3, s)) < 0.4
    steps = np.array([0, 5, -2], np.int32)
    weights = rng.normal(size=(3, weight.size))
    deliver = lambda b, f, w, t: events.deliver(b, f, ptr, target, delay, w, t, backend=backend)  # noqa: E731
    cases = {
        "buffer+fired": ((0, 0, None, None), (bufs, fired, weight, 7)),
        "fired only": ((None, 0, None, None), (bufs[0], fired, weight, 7)),
        "buffer only": ((0, None, None, None), (bufs, fired[0], weight, 7)),
        "step only": ((None, None, None, 0), (bufs[0], fired[0], weight, steps)),
        "all": ((0, 0, 0, 0), (bufs, fired, weights, steps)),
    }
    for name, (axes, args) in cases.items():
        out = jax.jit(jax.vmap(deliver, in_axes=axes))(*args)
        for i in range(3):
            one = [a[i] if ax == 0 else a for a, ax in zip(args, axes)]
            np.testing.assert_allclose(np.asarray(out[i]), dense_deliver(one[0], one[1], ptr, target, delay, one[2], one[3]),
                                       rtol=1e-12, atol=1e-12, err_msg=name)


@needs_native
def test_vmap_is_one_native_call_without_copies_of_the_connectivity():
    d, s, p = 4, 20, 15
    ptr, target, delay, weight = make_net(s=s, p=p, d=d)
    f = jax.vmap(lambda b, fi: events.deliver(b, fi, ptr, target, delay, weight, 3, backend="native"))
    text = jax.jit(f).lower(np.zeros((6, d, 2, p)), np.zeros((6, s), bool)).as_text()
    calls = re.findall(r"custom_call @dendrax_events_deliver\(.*?\} : \((.*?)\) ->", text)
    assert len(calls) == 1, calls
    assert f"tensor<6x{s}xi1>" in calls[0] and f"tensor<1x{weight.size}xf64>" in calls[0], calls[0]


@pytest.mark.parametrize("backend", BACKENDS)
def test_nested_vmap_and_grad_of_vmap(backend):
    d, s, p = 3, 20, 15
    ptr, target, delay, weight = make_net(s=s, p=p, d=d)
    rng = np.random.default_rng(6)
    fired = rng.random((2, 3, s)) < 0.4
    bufs = rng.normal(size=(2, 3, d, 2, p))

    def one(b, f, w):
        return events.deliver(b, f, ptr, target, delay, w, 4, backend=backend)

    out = jax.vmap(jax.vmap(one, (0, 0, None)), (0, 0, None))(bufs, fired, weight)
    for i in range(2):
        for j in range(3):
            np.testing.assert_allclose(np.asarray(out[i, j]),
                                       dense_deliver(bufs[i, j], fired[i, j], ptr, target, delay, weight, 4),
                                       rtol=1e-12, atol=1e-12)
    # per-trial gradients (vmap of grad) and grad of a batched loss agree with a loop
    loss = lambda w, f: jnp.sum(jnp.sin(one(bufs[0, 0], f, w)))  # noqa: E731
    per_trial = jax.vmap(jax.grad(loss), (None, 0))(weight, fired[0])
    for j in range(3):
        np.testing.assert_allclose(np.asarray(per_trial[j]), np.asarray(jax.grad(loss)(weight, fired[0, j])), rtol=1e-13)
    total = jax.grad(lambda w: jnp.sum(jax.vmap(lambda f: loss(w, f))(fired[0])))(weight)
    np.testing.assert_allclose(np.asarray(total), np.asarray(per_trial.sum(0)), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("backend", BACKENDS)
def test_vmap_take(backend):
    bufs = np.random.default_rng(7).normal(size=(3, 4, 2, 5))
    steps = np.array([1, 2, 7], np.int32)
    out, rows = jax.vmap(lambda b, t: events.take(b, t, backend=backend))(bufs, steps)
    out2, rows2 = jax.vmap(lambda t: events.take(bufs[0], t, backend=backend))(steps)
    for i in range(3):
        r = steps[i] % 4
        np.testing.assert_array_equal(np.asarray(rows[i]), bufs[i, r])
        np.testing.assert_array_equal(np.asarray(rows2[i]), bufs[0, r])
        e = bufs[i].copy()
        e[r] = 0
        np.testing.assert_array_equal(np.asarray(out[i]), e)


# --- csr --------------------------------------------------------------------------------

@given(seed=st.integers(0, 2**32 - 1), s=st.sampled_from([1, 3, 10]), c=st.sampled_from([0, 1, 40]))
@FEW
def test_csr(seed, s, c):
    source = np.random.default_rng(seed).integers(0, s, c)
    order, ptr = events.csr(source, s)
    assert order.dtype == ptr.dtype == np.int32 and ptr.shape == (s + 1,)
    np.testing.assert_array_equal(order, np.argsort(source, kind="stable"))
    for k in range(s):
        np.testing.assert_array_equal(source[order[ptr[k]:ptr[k + 1]]], k)
    o2, p2 = jax.jit(lambda x: events.csr(x, s))(source)
    np.testing.assert_array_equal(np.asarray(o2), order)
    np.testing.assert_array_equal(np.asarray(p2), ptr)


def test_csr_refusals():
    with pytest.raises(ValueError, match=r"source\[1\] = 3 is outside \[0, 3\)"):
        events.csr([0, 3], 3)
    with pytest.raises(ValueError, match="1-D integer"):
        events.csr([0.5], 3)
    with pytest.raises(ValueError, match="n_sources must be >= 0"):
        events.csr([], -1)


# --- refusals ------------------------------------------------------------------------------

def good():
    return dict(buffer=np.zeros((3, 2, 4)), fired=np.array([True, False]), ptr=np.array([0, 2, 3]),
                target=np.array([0, 3, 1]), delay=np.array([0, 2, 1]), weight=np.array([1.0, -1.0, 0.5]),
                step=0)


BAD = [
    (dict(buffer=np.zeros((3, 4))), r"buffer has shape \(3, 4\), expected \(D, 2, P\)"),
    (dict(buffer=np.zeros((3, 3, 4))), r"expected \(D, 2, P\)"),
    (dict(buffer=np.zeros((0, 2, 4))), r"D >= 1"),
    (dict(buffer=np.zeros((3, 2, 4), np.int32)), "buffer must be float32 or float64"),
    (dict(weight=np.array([1, -1, 0.5], np.float32)), r"weight must have the dtype of buffer \(float64\)"),
    (dict(weight=np.ones((3, 1))), r"weight has shape \(3, 1\), expected \(C,\)"),
    (dict(weight=np.array([1.0, np.nan, 0.5])), "non-finite"),
    (dict(fired=np.array([1.0, 0.0])), "fired must be a bool"),
    (dict(fired=np.array([[True, False]])), r"fired has shape \(1, 2\)"),
    (dict(ptr=np.array([0, 3])), r"ptr has shape \(2,\), expected \(3,\) = \(S \+ 1,\)"),
    (dict(ptr=np.array([0.0, 2, 3])), "ptr must be an integer array"),
    (dict(ptr=np.array([1, 2, 3])), r"ptr must start at 0 and end at C = 3"),
    (dict(ptr=np.array([0, 2, 4])), r"ptr must start at 0 and end at C = 3"),
    (dict(ptr=np.array([0, 4, 3])), r"non-decreasing.*ptr\[1\] = 4 > ptr\[2\] = 3"),
    (dict(target=np.array([0, 4, 1])), r"target\[1\] = 4 is outside \[0, 4\)"),
    (dict(target=np.array([0, -1, 1])), r"target\[1\] = -1 is outside"),
    (dict(target=np.array([0, 1])), r"target has shape \(2,\), expected \(3,\)"),
    (dict(delay=np.array([0, 3, 1])), r"delay\[1\] = 3 is outside \[0, 3\).*steps from now"),
    (dict(delay=np.array([0, -1, 1])), r"delay\[1\] = -1"),
    (dict(step=1.5), "step must be an integer scalar"),
    (dict(step=np.array([1, 2])), "step must be an integer scalar"),
    (dict(step=2**31), "does not fit in int32"),
]


@pytest.mark.parametrize("change,message", BAD, ids=[m[:30] for _, m in BAD])
@pytest.mark.parametrize("backend", BACKENDS)
def test_bad_inputs_raise_value_error(change, message, backend):
    args = {**good(), **change}
    with pytest.raises(ValueError, match=message):
        events.deliver(**args, backend=backend)


def test_good_inputs_pass():
    for b in ALL:
        events.deliver(**good(), backend=b)


def test_unknown_backend_and_bad_take():
    with pytest.raises(ValueError, match="unknown backend 'cuda'"):
        events.deliver(**good(), backend="cuda")
    with pytest.raises(ValueError, match="unknown backend"):
        events.take(np.zeros((3, 2, 4)), 0, backend="x")
    with pytest.raises(ValueError, match=r"take: buffer has shape \(3, 4\)"):
        events.take(np.zeros((3, 4)), 0)
    with pytest.raises(ValueError, match="take: step must be an integer"):
        events.take(np.zeros((3, 2, 4)), 0.0)


def test_bad_closed_over_inputs_raise_inside_jit():
    args = {**good(), "target": np.array([0, 9, 1])}
    with pytest.raises(ValueError, match=r"target\[1\] = 9"):
        jax.jit(lambda b: events.deliver(b, args["fired"], args["ptr"], args["target"], args["delay"],
                                         args["weight"], 0))(args["buffer"])


@pytest.mark.parametrize("backend", BACKENDS)
def test_traced_bad_targets_and_delays_are_skipped(backend):
    """Bad values that arrive traced (unchecked) are skipped by both backends alike."""
    args = good()
    f = jax.jit(lambda ptr, target, delay: events.deliver(args["buffer"], np.array([True, True]), ptr, target,
                                                          delay, args["weight"], 0, backend=backend))
    out = np.asarray(f(args["ptr"], np.array([0, 99, -5]), np.array([0, 2, 1])))
    expected = np.zeros((3, 2, 4))
    expected[0, 0, 0] = 1.0  # the only valid connection
    np.testing.assert_array_equal(out, expected)
    out = np.asarray(f(args["ptr"], np.array([0, 3, 1]), np.array([7, -1, 1])))
    expected = np.zeros((3, 2, 4))
    expected[1, 0, 1] = 0.5
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("backend", BACKENDS)
def test_traced_bad_ptr_never_crashes(backend):
    args = good()
    f = jax.jit(lambda ptr: events.deliver(args["buffer"], np.array([True, True]), ptr, args["target"],
                                           args["delay"], args["weight"], 0, backend=backend))
    for ptr in ([0, 3, 2], [-100, 50, 2**31 - 1], [5, -7, 3], [2**31 - 1, -2**31, 0]):
        out = np.asarray(f(np.array(ptr, np.int32)))
        assert out.shape == (3, 2, 4) and np.all(np.isfinite(out))
    # ptr clamped to [0, C]: source 0 owns all three connections, source 1 none
    out = np.asarray(f(np.array([-100, 50, 3], np.int32)))
    np.testing.assert_array_equal(out, dense_deliver(args["buffer"], [True, True], [0, 3, 3], args["target"],
                                                     args["delay"], args["weight"], 0))


def test_native_backend_unavailable_is_a_value_error(monkeypatch):
    from dendrax.events import _native

    monkeypatch.setattr(_native, "unavailable_reason", lambda platform: "not built here")
    with pytest.raises(ValueError, match="native backend is unavailable: not built here"):
        events.deliver(**good(), backend="native")


# --- the benchmark script ------------------------------------------------------------------

def test_benchmark_script_runs(capsys):
    """benchmarks/events.py on a tiny network: every method reads the same input."""
    import importlib.util
    import pathlib

    path = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "events.py"
    spec = importlib.util.spec_from_file_location("bench_events", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.main(["--sources", "60", "--fan-out", "7", "--ring", "4", "--rate", "0.2",
                     "--steps", "4", "--slow-steps", "3", "--repeats", "1"]) == 0
    out = capsys.readouterr().out
    sums = [float(x) for x in re.findall(r"input summed over 3 steps: (\S+)\)", out)]
    assert len(sums) == (6 if NATIVE else 3), out
    assert sums[0] == 0 and (not NATIVE or sums[1] == 0), out  # the loops without delivery
    deliveries = sums[2:] if NATIVE else sums[1:]
    assert deliveries[0] != 0 and np.allclose(deliveries, deliveries[0], rtol=1e-5), out
