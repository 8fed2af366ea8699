"""A tiny standalone driver for point-neuron models (tests only, not part of the package).

``run`` advances a population of n neurons of one model for n_steps steps with
``jax.lax.scan`` over ``model.update`` and returns every state over time and the spikes.
Inputs are per step ([n_steps, n] or [n_steps] broadcast over neurons): ``ex`` / ``inn`` the
summed positive / negative weights read in each step, ``current`` the current (pA) read in
each step.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def full_params(model, params, n):
    """Defaults overridden by ``params`` (scalars or [n]), each as a float array [n]."""
    out = {}
    for k, default in model.params.items():
        v = params.get(k, default) if params else default
        out[k] = jnp.broadcast_to(jnp.asarray(v, dtype=jnp.result_type(float)), (n,))
    unknown = set(params or {}) - set(model.params)
    if unknown:
        raise KeyError(f"{model.name} has no parameter(s) {sorted(unknown)}")
    return out


def _inputs(x, n_steps, n):
    if x is None:
        return jnp.zeros((n_steps, n))
    x = jnp.asarray(x, dtype=jnp.result_type(float))
    if x.ndim == 1:
        x = x[:, None]
    return jnp.broadcast_to(x, (n_steps, n))


_CACHE: dict = {}


def _compiled(model, dt):
    """One jitted scan per (model class, surrogate, dt), reused across calls."""
    key = (type(model), getattr(model, "surrogate", None), dt)
    if key not in _CACHE:
        @jax.jit
        def go(p, s0, xs):
            def step(s, x):
                s, spk = model.update(s, p, x, dt)
                return s, (s, spk)

            _, (traj, spikes) = jax.lax.scan(step, s0, xs)
            return traj, spikes

        _CACHE[key] = go
    return _CACHE[key]


def run(model, params, n, n_steps, dt, ex=None, inn=None, current=None):
    """-> (states: name -> [n_steps + 1, n] (row 0 is the initial state, row k the state at
    k dt), spikes: [n_steps, n] bool (row k: spike at the end of step k, time (k + 1) dt))."""
    if isinstance(model, type):
        model = model()
    p = full_params(model, params, n)
    s0 = model.initial(p, dt)
    xs = {"ex": _inputs(ex, n_steps, n), "in": _inputs(inn, n_steps, n),
          "current": _inputs(current, n_steps, n)}

    traj, spikes = _compiled(model, float(dt))(p, s0, xs)
    states = {k: np.concatenate([np.asarray(s0[k])[None], np.asarray(traj[k])], axis=0)
              for k in s0}
    return states, np.asarray(spikes, dtype=bool)
