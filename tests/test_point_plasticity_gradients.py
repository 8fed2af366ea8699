"""Gradients through plastic connections onto point neurons at the weight bounds:
stdp_synapse with a weight clipped at Wmax (or at 0, or set beyond Wmax) and mu < 1 gave
NaN from jax.grad (jnp.power(0, mu < 1) has an infinite slope, 0 * inf inside jnp.where)
where the objective is smooth; now reverse mode agrees with central differences."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import dendrax as dx
from dendrax.point.plasticity import bounded_power

DT, T = 0.1, 60.0
KEYS = ("lambda", "weight", "alpha", "tau_plus")


def _stdp_net(mu, w0, wmax, lam, alpha):
    """A parrot relaying pre spikes at 3..35 ms onto two iaf_psc_alpha made to spike at
    10.5, 22.5 and 40.5 ms by a strong input; one stdp_synapse connection to each."""
    net = dx.Network()
    sg = net.population("spike_generator", 1, spike_times=[3.0, 8.0, 9.0, 20.0, 21.0, 35.0])
    par = net.population("parrot_neuron", 1)
    drv = net.population("spike_generator", 1, spike_times=[10.0, 22.0, 40.0])
    post = net.population("iaf_psc_alpha", 2, name="post")
    net.connect(sg, par, weight=1.0, delay=0.1)
    net.connect(drv, post, weight=3000.0, delay=0.5)
    net.connect(par, post, "stdp_synapse", weight=w0, Wmax=wmax, delay=1.0,
                **{"lambda": lam}, mu_plus=mu, mu_minus=mu, alpha=alpha)
    net.record("V_m", post)
    net.record("weight", "stdp_synapse")
    return net


@pytest.mark.parametrize("mu, w0, wmax, lam, alpha, bound", [
    (0.5, 100.0, 100.0, 0.1, 1.0, "Wmax"),    # the audit's case: starts at Wmax
    (0.4, 50.0, 100.0, 0.9, 0.0, "Wmax"),     # reaches Wmax (Guetig et al.'s mu = 0.4)
    (0.0, 5.0, 100.0, 0.9, 5.0, "0"),         # additive STDP depressed to 0
    (0.5, 150.0, 100.0, 0.1, 1.0, "beyond"),  # set beyond Wmax: NEST's pow is NaN, clipped
])
def test_stdp_gradients_at_the_weight_bounds_match_finite_differences(mu, w0, wmax, lam,
                                                                      alpha, bound):
    net = _stdp_net(mu, w0, wmax, lam, alpha)
    base = net.params
    weights = np.asarray(dx.simulate(net, T, DT).traces[2:])
    at = {"Wmax": weights == wmax, "0": weights == 0.0, "beyond": weights > wmax}[bound]
    assert np.any(at), (weights.min(), weights.max())  # the bound is reached (or passed)

    keys = [k for k in KEYS if k != "alpha" or alpha > 0]  # alpha >= 0: no difference at 0

    def mean_v(theta):
        p = jax.tree_util.tree_map(lambda a: a, base)
        syn = dict(p["synapses"]["stdp_synapse"])
        for i, k in enumerate(keys):
            syn[k] = syn[k] * 0 + theta[i]
        p["synapses"]["stdp_synapse"] = syn
        return jnp.mean(jnp.stack(dx.simulate(net, T, DT, params=p).traces[:2]))

    theta = np.array([{"lambda": lam, "weight": w0, "alpha": alpha, "tau_plus": 20.0}[k]
                      for k in keys])
    grad = np.asarray(jax.grad(mean_v)(jnp.asarray(theta)))
    assert np.all(np.isfinite(grad)), grad
    for i, k in enumerate(keys):
        h = 1e-6 * max(1.0, abs(theta[i]))
        up, down = theta.copy(), theta.copy()
        up[i] += h
        down[i] -= h
        fd = (float(mean_v(jnp.asarray(up))) - float(mean_v(jnp.asarray(down)))) / (2 * h)
        assert grad[i] == pytest.approx(fd, rel=1e-5, abs=1e-9), (k, grad[i], fd)


def test_bounded_power_values_and_slopes():
    base = jnp.array([0.0, 0.0, 0.0, 0.25, 1.0, -0.5, -0.5])
    mu = jnp.array([0.4, 0.0, 1.0, 0.5, 0.7, 1.0, 0.5])
    got = np.asarray(bounded_power(base, mu))
    # NEST's std::pow where it is real; a non-real power (NaN in NEST) is 0, which clips the
    # update it enters at the same bound as NEST's NaN does
    want = np.power(np.asarray(base)[:6], np.asarray(mu)[:6])
    assert np.array_equal(got[:6], want) and got[6] == 0.0
    d_base, d_mu = jax.jacfwd(lambda b, m: bounded_power(b, m), argnums=(0, 1))(base, mu)
    d_base, d_mu = np.diag(np.asarray(d_base)), np.diag(np.asarray(d_mu))
    assert np.all(np.isfinite(d_base)) and np.all(np.isfinite(d_mu))
    # smooth where base > 0; at 0 the slope mu base^(mu - 1) where finite (mu >= 1), else 0
    assert d_base[3] == pytest.approx(0.5 * 0.25 ** -0.5) and d_base[4] == pytest.approx(0.7)
    assert d_mu[3] == pytest.approx(0.25 ** 0.5 * np.log(0.25))
    assert list(d_base[:3]) == [0.0, 0.0, 1.0] and d_base[5] == 1.0 and d_base[6] == 0.0
    assert list(d_mu[[0, 1, 2, 5, 6]]) == [0.0] * 5
    # reverse mode through the clipping selects of the STDP update: no 0 * inf = NaN
    clipped = jax.grad(lambda b: jnp.where(b > 0, bounded_power(b, 0.4), 1.0))(0.0)
    assert float(clipped) == 0.0
