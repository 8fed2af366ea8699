"""Exponential Euler from alpha/beta rates (dendrax.mechanisms.cnexp): the same values,
bit for bit, as the (steady state, tau) path, and the same derivatives as autodiff.
(HH's own ``advance`` runs a native kernel on the CPU: tests/test_hh_kernel.py.)"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import dendrax as dx
from dendrax.mechanisms import Channel, base, hay
from dendrax.mechanisms.cnexp import exp_euler
from dendrax.mechanisms.hh import HH

ALPHA_BETA = [HH(), hay.NaTa_t(), hay.NaTs2_t(), hay.Ca_HVA(), hay.Im(), hay.Ih()]


def _via_rates(mech, v, states, params, env, dt):
    """The (steady state, tau) path: what Mechanism.advance computes for a rates() channel."""
    new = dict(states)
    for k, (inf, tau) in mech.rates(v, params, env).items():
        new[k] = inf + (states[k] - inf) * jnp.exp(-dt / tau)
    return new


def _cnexp(mech):
    """``Mechanism.advance`` of an alpha/beta channel: cnexp's exponential Euler."""
    return lambda *a: exp_euler(mech.alpha_beta, *a)


def _inputs(mech, n=64, seed=0):
    rng = np.random.default_rng(seed)
    v = jnp.asarray(np.concatenate([rng.uniform(-100.0, 60.0, n - 3), [-40.0, -55.0, -154.9]]))
    states = {k: jnp.asarray(rng.uniform(0.0, 1.0, n)) for k in mech.states}
    params = {k: jnp.full(n, x) for k, x in mech.params.items()}
    return v, states, params, {"celsius": jnp.asarray(34.0)}, jnp.asarray(0.025)


@pytest.mark.parametrize("mech", ALPHA_BETA, ids=lambda m: m.name)
def test_values_are_bit_for_bit_those_of_the_rates_path(mech):
    assert mech._has_alpha_beta()
    args = _inputs(mech)
    new = jax.jit(_cnexp(mech))(*args)
    old = jax.jit(lambda *a: _via_rates(mech, *a))(*args)
    for k in new:
        np.testing.assert_array_equal(new[k], old[k])


@pytest.mark.parametrize("mech", ALPHA_BETA, ids=lambda m: m.name)
def test_derivatives_equal_autodiff_of_the_rates_path(mech):
    v, states, params, env, dt = _inputs(mech, seed=1)

    def loss(step, v, states, params, celsius, dt):
        out = step(v, states, params, {"celsius": celsius}, dt)
        w = jnp.linspace(0.5, 1.5, v.size)
        return sum(jnp.sum(w * (i + 1) * out[k]) for i, k in enumerate(sorted(out)))

    argnums = (0, 1, 2, 3, 4)
    new = jax.grad(lambda *a: loss(_cnexp(mech), *a), argnums)(
        v, states, params, env["celsius"], dt)
    old = jax.grad(lambda *a: loss(lambda *b: _via_rates(mech, *b), *a), argnums)(
        v, states, params, env["celsius"], dt)
    for a, b in zip(jax.tree_util.tree_leaves(new), jax.tree_util.tree_leaves(old)):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12 * float(np.max(np.abs(b))))
    # forward mode (the custom rule's own direction) agrees too
    tangent = jnp.linspace(-1.0, 1.0, v.size)
    _, jn = jax.jvp(lambda u: _cnexp(mech)(u, states, params, env, dt), (v,), (tangent,))
    _, jo = jax.jvp(lambda u: _via_rates(mech, u, states, params, env, dt), (v,), (tangent,))
    for k in jn:
        np.testing.assert_allclose(jn[k], jo[k], rtol=1e-10, atol=1e-14)


def test_exp_euler_derivative_matches_finite_differences():
    mech = HH()
    v, states, params, env, dt = _inputs(mech, seed=2)

    def f(u):  # node by node: the sum over the gates at each node
        return sum(exp_euler(mech.alpha_beta, u, states, params, env, dt).values())

    g = jax.grad(lambda u: jnp.sum(f(u)))(v)
    h = 1e-5
    fd = (f(v + h) - f(v - h)) / (2 * h)
    # away from v = -40 and -55 mV, where hh.mod's vtrap switches to its linear form
    # within h (the switch's derivative is the old path's too: the test above)
    np.testing.assert_allclose(g[:-3], fd[:-3], rtol=1e-7, atol=1e-10)


def _cell():
    cell = dx.Cell.ball_and_stick(nseg=[1, 5], Ra=100.0, cm=1.0, dend_length=150.0, dend_diam=2.0)
    cell.insert("hh")
    cell.iclamp(cell.soma(0.5), delay=1.0, dur=10.0, amp=0.3)
    cell.record("v", cell.soma(0.5)).record("v", cell.section(1)(0.9))
    return cell


def test_cell_gradients_equal_those_of_the_rates_path(monkeypatch):
    cell = _cell()

    def loss(params, celsius, checkpoint):
        v = dx.simulate(cell, 12.0, 0.025, params=params, celsius=celsius,
                        checkpoint=checkpoint).traces
        return jnp.mean((v + 20.0) ** 2) / 100.0

    def run():
        jax.clear_caches()
        return [(loss(cell.params, 16.3, None), jax.grad(loss, (0, 1))(cell.params, 16.3, c))
                for c in (None, 40)]

    monkeypatch.setattr(HH, "advance", base.Mechanism.advance)  # cnexp, not the native kernel
    new = run()
    via_rates = lambda self, v, s, p, e, dt: _via_rates(self, v, s, p, e, dt)  # noqa: E731
    monkeypatch.setattr(base.Mechanism, "advance", via_rates)
    monkeypatch.setattr(HH, "advance", via_rates)
    old = run()
    jax.clear_caches()
    for (vn, gn), (vo, go) in zip(new, old):
        assert float(vn) == float(vo)  # the forward run is unchanged, bit for bit
        # ~1e-14 of each leaf's largest entry; up to ~2e-10 for the cable's geometry (Ra,
        # L: sums of large terms that cancel, where the old path's own checkpointed and
        # plain gradients differ by ~7e-11)
        for a, b in zip(jax.tree_util.tree_leaves(gn), jax.tree_util.tree_leaves(go)):
            np.testing.assert_allclose(a, b, rtol=1e-10,
                                       atol=1e-9 * float(np.max(np.abs(b), initial=0.0)))


def test_a_rates_only_channel_keeps_working():
    """The alpha/beta form is optional: a plugin with rates() only advances as before."""

    class Gate(Channel):
        name = "gate_rates_only"
        params = {"g": 1e-3}
        states = {"x": 0.0}

        def rates(self, v, params, env):
            return {"x": (jax.nn.sigmoid((v + 40.0) / 5.0), 2.0 + 0.0 * v)}

        def current(self, v, states, params, env):
            return {"": params["g"] * states["x"] * (v + 80.0)}

    mech = Gate()
    assert not mech._has_alpha_beta()
    v, states, params, env, dt = _inputs(mech)
    new = mech.advance(v, states, params, env, dt)
    np.testing.assert_array_equal(new["x"], _via_rates(mech, v, states, params, env, dt)["x"])
    cell = _cell().insert(Gate)

    def loss(params):
        return jnp.mean(dx.simulate(cell, 5.0, 0.025, params=params).traces)

    g = jax.grad(loss)(cell.params)["channels"]["gate_rates_only"]["g"]
    assert np.all(np.isfinite(g)) and np.any(g != 0)
