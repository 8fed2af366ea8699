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
    with pytest.raises(ValueError, match="slope must be > 0"):
        as_surrogate(("sigmoid", -1.0))
    assert as_surrogate(None) is None and as_surrogate("sigmoid") == Surrogate("sigmoid", 1.0)
