"""Surrogate gradients: the forward value is the exact step, the derivative the documented
pseudo-derivative (checked against each formula and by finite differences of the smooth
function it is the derivative of)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dendrax.point.surrogate import NAMES, Surrogate, as_surrogate, spike

X = jnp.linspace(-3.0, 3.0, 61)
SMOOTH = {  # the function whose derivative each surrogate is (up to a constant)
    "fast_sigmoid": lambda x, k: x / (1.0 + k * jnp.abs(x)),
    "sigmoid": lambda x, k: jax.nn.sigmoid(k * x),
    "arctan": lambda x, k: jnp.arctan(np.pi * k * x) / np.pi,
    "triangle": lambda x, k: jnp.where(jnp.abs(x) < 1 / k, k * x - 0.5 * k * k * x * jnp.abs(x),
                                       jnp.sign(x) * 0.5),
    "gaussian": lambda x, k: 0.5 * jax.scipy.special.erf(k * x / np.sqrt(2.0)),
}


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("slope", [0.5, 2.0])
def test_value_is_the_step_and_the_derivative_the_surrogate(name, slope):
    s = Surrogate(name, slope)
    np.testing.assert_array_equal(spike(X, s), (X >= 0).astype(float))
    np.testing.assert_array_equal(spike(X), X >= 0)
    grad = jax.vmap(jax.grad(lambda x: spike(x, s)))(X)
    smooth = jax.vmap(jax.grad(lambda x: SMOOTH[name](x, slope)))(X)
    np.testing.assert_allclose(grad, smooth, rtol=1e-9, atol=1e-12)
    h = 1e-6
    fd = (SMOOTH[name](X + h, slope) - SMOOTH[name](X - h, slope)) / (2 * h)
    mask = np.abs(np.abs(np.asarray(X)) - 1 / slope) > 1e-3  # the triangle's kinks
    np.testing.assert_allclose(np.asarray(grad)[mask], np.asarray(fd)[mask], rtol=1e-5, atol=1e-8)


def test_refusals():
    with pytest.raises(ValueError, match="unknown surrogate 'relu'"):
        as_surrogate("relu")
    with pytest.raises(ValueError, match="slope must be a number > 0"):
        as_surrogate(("sigmoid", -1.0))
    assert as_surrogate(None) is None and as_surrogate("sigmoid") == Surrogate("sigmoid", 1.0)


DT, T_STOP, TAU_HID, TAU_OUT = 0.1, 20.0, 5.0, 10.0


def _network(amp):
    """A dc_generator drives a LIF with a surrogate; its spikes reach a readout LIF."""
    import dendrax as dx

    net = dx.Network()
    inp = net.population("dc_generator", 1, name="inp", amplitude=amp)
    hid = net.population("LIF", 1, name="hid", tau=TAU_HID, V_th=1.0, surrogate="fast_sigmoid")
    out = net.population("LIF", 1, name="out", tau=TAU_OUT, V_th=1e6)
    net.connect(inp, hid, weight=1.0, delay=0.1)
    net.connect(hid, out, weight=0.5, delay=0.1)
    net.record("V_m", hid).record("V_m", out)
    return net


def _twin(w, amp):
    """The same network written out in JAX (brainpy.state's LIF step with a soft reset; the
    dc_generator's current, from its first step, and the hidden spike of a step each reach
    their target one step later, delay 0.1 ms = dt): (V_hid, V_out) [n_steps]."""
    from dendrax.point.models.common import exp_euler

    sur = Surrogate("fast_sigmoid", 1.0)

    def step(c, k):
        vh, vo, sent = c
        vh = jnp.where(vh >= 1.0, vh - 1.0, vh)
        drive = jnp.where(k >= 1, amp * w[0], 0.0)  # the dc_generator's current, 1 step late
        vh = exp_euler(vh, (drive - vh) / TAU_HID, -1.0 / TAU_HID, DT)
        vo = exp_euler(vo, -vo / TAU_OUT, -1.0 / TAU_OUT, DT) + w[1] * sent
        return (vh, vo, spike(vh - 1.0, sur)), (vh, vo)

    return jax.lax.scan(step, (0.0, 0.0, 0.0), jnp.arange(round(T_STOP / DT)))[1]


@pytest.mark.parametrize("amp", [0.95, 1.3])
def test_network_gradient_is_the_surrogate_twins(amp):
    """The gradient through a population's spikes is that of the same network written out
    in JAX with ``spike``, also for a neuron that never fires (amp 0.95: V stays below
    0.94; its surrogate still carries gradient to its input weight, which was once lost:
    0 where the twin gives -7.19)."""
    import dendrax as dx

    net = _network(amp)
    p0 = net.params
    w0 = p0["synapses"]["static"]["weight"]
    traces = np.asarray(dx.simulate(net, T_STOP, DT).traces)
    vh, vo = _twin(w0, amp)
    np.testing.assert_allclose(traces[0, 1:], vh, rtol=0, atol=1e-13)
    np.testing.assert_allclose(traces[1, 1:], vo, rtol=0, atol=1e-13)
    assert (traces[0].max() >= 1.0) == (amp > 1.0)

    def loss(w):
        p = {**p0, "synapses": {**p0["synapses"], "static": {**p0["synapses"]["static"],
                                                             "weight": w}}}
        return jnp.mean((dx.simulate(net, T_STOP, DT, params=p).traces[1] - 0.3) ** 2)

    def twin_loss(w):
        return jnp.mean((jnp.concatenate([jnp.zeros(1), _twin(w, amp)[1]]) - 0.3) ** 2)

    ours, ref = jax.grad(loss)(w0), jax.grad(twin_loss)(w0)
    assert abs(float(ref[0])) > 1.0
    np.testing.assert_allclose(ours, ref, rtol=1e-10, atol=1e-14)
