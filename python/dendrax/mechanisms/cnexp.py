"""Exponential Euler (NEURON's cnexp) for gates given by opening and closing rates,
with a hand-written derivative that reuses the forward's values.

A gate x with opening rate alpha(v), closing rate beta(v) (1/ms) and temperature
factor q (per node or scalar, independent of v) has s = alpha + beta,

    x_inf = alpha / s,   tau = 1 / (q s),   E = exp(-dt / tau),
    x'    = x_inf + (x - x_inf) E.

``exp_euler`` returns x' with exactly these operations, so its values are the same,
bit for bit, as ``Mechanism.advance`` on ``rates`` built by ``kinetics``. Its JVP is

    dx' = A dv + E dx,
    A   = (1 - E) (dalpha - x_inf ds) q tau  -  (x - x_inf) E dt q ds,   ds = dalpha + dbeta,

(1/s = q tau and d(1/tau) = q ds), where dalpha, dbeta are d/dv of the rates from one
forward-mode pass that shares the rates' exponentials: no divide and no exponential
beyond those the forward needs. Tangents through the parameters, the environment
(e.g. celsius) or dt go through plain autodiff of the same formula.

Assumes what the mechanism API says: the rates work node by node (a node's rates
depend on that node's v only), so d rates / dv is the diagonal one JVP with a tangent of
ones gives.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax.custom_derivatives import SymbolicZero


def kinetics(alpha, beta, q=1.0):
    """(steady state, time constant in ms) of a gate with rates alpha, beta (1/ms) and
    temperature factor q: (alpha / s, 1 / (q s)), s = alpha + beta."""
    s = alpha + beta
    return alpha / s, 1.0 / (q * s)


def exp_euler(alpha_beta, v, states, params, env, dt):
    """The states one step dt later by exponential Euler from ``alpha_beta``.

    Args:
        alpha_beta: ``(v, params, env) -> {state: (alpha, beta, q)}`` (rates in 1/ms,
            [n] each; q the temperature factor, scalar or [n], not a function of v),
            node by node (a ``Mechanism.alpha_beta``).
        v: [n] membrane potential, mV (the new one: gates follow v at t + dt).
        states: {name: [n]}; those ``alpha_beta`` leaves out are returned unchanged.
        params, env: what ``alpha_beta`` reads (the mechanism's params and environment).
        dt: the step, ms.

    Returns:
        {name: [n]} the new states; values identical to
        ``x_inf + (x - x_inf) * exp(-dt / tau)`` with (x_inf, tau) = ``kinetics(...)``.
    """
    return _exp_euler(alpha_beta, v, dict(states), params, env, dt)


def _plain(alpha_beta, v, states, params, env, dt):
    new = dict(states)
    for k, (a, b, q) in alpha_beta(v, params, env).items():
        inf, tau = kinetics(a, b, q)
        new[k] = inf + (states[k] - inf) * jnp.exp(-dt / tau)
    return new


@partial(jax.custom_jvp, nondiff_argnums=(0,))
def _exp_euler(alpha_beta, v, states, params, env, dt):
    return _plain(alpha_beta, v, states, params, env, dt)


def symbolic_zero(t) -> bool:
    """Whether a tangent is JAX's symbolic zero (a custom_jvp rule with symbolic_zeros)."""
    return isinstance(t, SymbolicZero)


def _instantiate(t, like):
    if not symbolic_zero(t):
        return t
    if not jnp.issubdtype(jnp.result_type(like), jnp.inexact):  # env["secondorder"], ...
        return np.zeros(np.shape(like), jax.dtypes.float0)
    return jnp.zeros_like(like)


def coefficients(alpha_beta, v, states, params, env, dt):
    """The new states and their derivatives in v and in the old states, node by node.

    Args as ``exp_euler``. Returns (new, slope, decay), dicts over the gates
    ``alpha_beta`` gives: new {name: [n]} (``exp_euler``'s values, bit for bit),
    slope = d new / d v and decay = d new / d x (= exp(-dt / tau)), [n] each.
    """
    rate, drate = jax.jvp(lambda u: alpha_beta(u, params, env), (v,), (jnp.ones_like(v),))
    new, slope, decay = {}, {}, {}
    for k, (a, b, q) in rate.items():
        x = states[k]
        inf, tau = kinetics(a, b, q)
        e = jnp.exp(-dt / tau)
        new[k] = inf + (x - inf) * e
        da, db, _ = drate[k]
        ds = da + db
        slope[k] = (1.0 - e) * (da - inf * ds) * (q * tau) - (x - inf) * e * (dt * q) * ds
        decay[k] = e
    return new, slope, decay


@partial(_exp_euler.defjvp, symbolic_zeros=True)
def _exp_euler_jvp(alpha_beta, primals, tangents):
    v, states, params, env, dt = primals
    dv, dstates, dparams, denv, ddt = tangents
    new = dict(states)
    dnew = {k: _instantiate(dstates[k], x) for k, x in states.items()}
    if not symbolic_zero(dv):  # the rates and their d/dv in one pass (shared exponentials)
        gates, slope, decay = coefficients(alpha_beta, v, states, params, env, dt)
        new.update(gates)
        for k in gates:
            t = slope[k] * dv
            dnew[k] = t if symbolic_zero(dstates[k]) else t + decay[k] * dstates[k]
    else:
        for k, (a, b, q) in alpha_beta(v, params, env).items():
            x = states[k]
            inf, tau = kinetics(a, b, q)
            e = jnp.exp(-dt / tau)
            new[k] = inf + (x - inf) * e
            dnew[k] = jnp.zeros_like(x) if symbolic_zero(dstates[k]) else e * dstates[k]
    extras = jax.tree_util.tree_leaves((dparams, denv, ddt), is_leaf=symbolic_zero)
    if not all(symbolic_zero(t) for t in extras):
        # through what the rates read besides v (a parameter, celsius, ...) and dt:
        # plain autodiff, v and the states held
        def through(p, en, step):
            return _plain(alpha_beta, v, states, p, en, step)

        fill = jax.tree_util.tree_map(_instantiate, (dparams, denv, ddt), (params, env, dt),
                                      is_leaf=symbolic_zero)
        _, extra = jax.jvp(through, (params, env, dt), fill)
        dnew = {k: dnew[k] + extra[k] for k in dnew}
    return new, dnew
