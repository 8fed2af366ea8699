"""What the Python generated from NMODL calls: NEURON's integration methods in JAX.

Generated mechanisms keep a block's variables in a dict ``x`` (name -> array over the
compartments) and ``l`` for a block's LOCALs; every function here is traced once under
``jit`` (no Python runs per time step) and is differentiable.

Methods, as NEURON's NMODL translator (nocmodl) generates them:

- ``cnexp``: for ``s' = f(s)`` linear in s, f(s) = a + b s, the exact exponential update
  s + (1 - exp(b dt)) (-a/b - s) (a = f(0), b = df/ds; plain Euler where b = 0);
- ``derivimplicit``: backward Euler, s(t+dt) = s(t) + dt f(s(t+dt)), solved by Newton's
  method (NEURON's uses a finite-difference Jacobian and stops at a relative change of
  1e-6; this one uses the exact Jacobian for a fixed number of iterations, so it lands on
  the same root to round-off once converged);
- ``sparse``: the same implicit step for a KINETIC scheme, with each CONSERVE equation
  replacing the equation of one state; a scheme of first-order reactions takes one Newton
  iteration with its rates at the step's starting states, as NEURON's (whose matrix holds
  rates fixed); non-linear ones iterate and clamp negative states to 0 after each
  iteration, as NEURON's;
- ``euler``: forward Euler;
- ``runge``: the classical 4th-order Runge-Kutta step (scopmath's ``runge``).

Under Crank-Nicolson (NEURON's ``secondorder`` 2, ``env["secondorder"]``) derivimplicit,
sparse and runge take nocmodl's midpoint form: their step over dt / 2 (implicit for
derivimplicit and sparse), then the states move on by dt / 2 times their derivatives
(runge: the last stage's); cnexp and euler are unchanged, as in NEURON.

Units: dt in ms, derivatives in (state unit)/ms.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

STEADY_DT = 1e9  # ms: NEURON's step for SOLVE ... STEADYSTATE sparse
# ms: NEURON's step for SOLVE ... STEADYSTATE derivimplicit (_ss_derivimplicit_thread):
# next to nothing, so the states stay close to where INITIAL put them
STEADY_DT_DERIVIMPLICIT = 1e-9


def like(ref, value):
    """``value`` broadcast to the shape (and float dtype) of ``ref``."""
    if ref is None:
        return jnp.asarray(value)
    ref = jnp.asarray(ref)
    return jnp.zeros(ref.shape, jnp.result_type(ref, float)) + value


def truth(condition):
    """A comparison's or logical operator's value as NMODL's (C's): 1.0 or 0.0."""
    return jnp.where(condition, 1.0, 0.0)


def fork(x: dict, l: dict):
    """Copies of the variable dicts for one branch of an IF."""
    return dict(x), dict(l)


def join(cond, base: tuple, then: tuple, other: tuple) -> None:
    """After an IF: every variable either branch changed becomes ``where(cond, then, other)``
    in ``base`` (both branches are computed, as in any traced JAX code)."""
    for b, t, o in zip(base, then, other):
        for k in set(t) | set(o):
            a, c = t.get(k, b.get(k, 0.0)), o.get(k, b.get(k, 0.0))
            b[k] = a if a is c else jnp.where(cond, a, c)


def exp(x):
    """NEURON's exp in .mod files (nocmodl's ``#define exp hoc_Exp``): exp(x), but 0 below
    x = -700 and exp(700) above x = 700 (NEURON warns there), so its derivative is 0 there,
    never inf: an IF computes both branches, and a guard such as ``if (x > 700) {y = 0}
    else {y = 1/(1 + exp(x))}`` cannot turn a gradient into NaN (0 * inf in the branch it
    does not take). In float32 exp(700) is inf, as is exp past ~88.7."""
    x = jnp.asarray(x, jnp.result_type(x, float))
    info = jnp.finfo(x.dtype)
    top = min(700.0, float(np.nextafter(np.log(info.max), 0, dtype=info.dtype)))
    y = jnp.exp(jnp.clip(x, -700.0, top))
    big = np.exp(np.asarray(700.0, info.dtype)) if top == 700.0 else np.inf
    return jnp.where(x < -700.0, 0.0, jnp.where(x > top, big, y))


def exprelr(x):
    """NEURON's exprelr: x / (exp(x) - 1), 1 at x = 0."""
    small = jnp.abs(x) < 1e-5
    safe = jnp.where(small, 1.0, x)
    return jnp.where(small, 1.0 - x / 2.0, safe / jnp.expm1(safe))


def cnexp(f, s, dt):
    """One cnexp step of s' = f(s), f linear in s (see the module docstring)."""
    s = jnp.asarray(s)
    _, b = jax.jvp(f, (s,), (jnp.ones_like(s),))
    a = f(jnp.zeros_like(s))
    zero = b == 0
    bs = jnp.where(zero, 1.0, b)
    return jnp.where(zero, s + dt * a, s + (1.0 - jnp.exp(dt * bs)) * (-a / bs - s))


def euler(deriv, x: dict, names, dt) -> None:
    """Forward Euler: all states advance by dt times their derivatives at the old states;
    what else the block sets (an assigned conductance) keeps its value there, as NEURON's."""
    d = deriv(x)
    for k in names:
        x[k] = x[k] + dt * d[k]


def runge(deriv, x: dict, names, dt, secondorder: int = 0) -> None:
    """NEURON's runge (scopmath's classical 4th-order Runge-Kutta, at the step's v), in
    place in ``x``, summed in its order; the block runs once more at the new states, as
    NEURON's, so what else it sets (an assigned conductance) is computed there. Under
    Crank-Nicolson (``secondorder`` 2) as nocmodl's: the step over dt / 2, then the states
    move on by dt / 2 times the last stage's derivatives."""
    if secondorder:
        dt = 0.5 * dt
    y0 = {k: x[k] for k in names}
    d = deriv(x)
    total = {k: y0[k] + (0.5 * dt * d[k]) / 3.0 for k in names}
    x.update({k: y0[k] + 0.5 * dt * d[k] for k in names})
    d = deriv(x)
    total = {k: total[k] + (dt * d[k]) / 3.0 for k in names}
    x.update({k: y0[k] + (dt * d[k]) / 2.0 for k in names})
    d = deriv(x)
    total = {k: total[k] + (dt * d[k]) / 3.0 for k in names}
    x.update({k: y0[k] + dt * d[k] for k in names})
    d = deriv(x)
    x.update({k: total[k] + (dt / 6.0) * d[k] for k in names})
    if secondorder:
        x.update({k: x[k] + dt * d[k] for k in names})
    deriv(x)


def _newton(residual, values, iterations: int, clamp: bool):
    """``iterations`` Newton steps on residual(values) = 0 (exact Jacobian by forward-mode
    autodiff, one column per unknown; compartments are independent, so the systems are
    solved batched).

    Where the last of several steps still moved a value by more than NEURON's convergence
    criterion (1e-6, relative to the value or to 1e-6 where it is smaller), Newton has not
    converged in these iterations (a stiff step far from its root, or no root): that
    compartment's values are NaN, never a finite state that solves nothing (NEURON
    iterates up to 50 times, then stops with "not converged")."""
    k = len(values)
    previous = None
    for _ in range(iterations):
        previous = values
        f = residual(values)
        cols = []
        for j in range(k):
            tangent = [jnp.ones_like(v) if i == j else jnp.zeros_like(v)
                       for i, v in enumerate(values)]
            cols.append(jax.jvp(lambda *vs: tuple(residual(list(vs))), tuple(values),
                                tuple(tangent))[1])
        shape = jnp.broadcast_shapes(*[jnp.shape(v) for v in values],
                                     *[jnp.shape(y) for y in f])
        fv = jnp.stack([jnp.broadcast_to(y, shape) for y in f], -1)
        jac = jnp.stack([jnp.stack([jnp.broadcast_to(c, shape) for c in col], -1)
                         for col in cols], -1)  # [..., equation, unknown]
        if k == 1:
            delta = [-fv[..., 0] / jac[..., 0, 0]]
        else:
            sol = jnp.linalg.solve(jac, -fv[..., None])[..., 0]
            delta = [sol[..., i] for i in range(k)]
        values = [v + dv for v, dv in zip(values, delta)]
        if clamp:
            values = [jnp.maximum(v, 0.0) for v in values]
    if iterations < 2:  # one step: a linear system, solved exactly
        return values
    # the last step's change (after clamping: a state held at 0 has converged)
    moved = [jnp.abs(v - p) > 1e-6 * jnp.maximum(jnp.abs(v), 1e-6)
             for v, p in zip(values, previous)]
    stuck = jnp.any(jnp.stack([jnp.broadcast_to(m, shape) for m in moved]), axis=0)
    return [jnp.where(stuck, jnp.nan, v) for v in values]


def implicit(deriv, x: dict, names, dt, iterations: int, secondorder: int = 0) -> None:
    """derivimplicit: backward Euler for the states ``names`` of a DERIVATIVE block
    (``deriv(vars) -> {state: derivative}``, which may also set assigned variables), in
    place in ``x``; the block runs once more at the new states, as NEURON's. Under
    Crank-Nicolson (``secondorder`` 2) as nocmodl's: backward Euler over dt / 2, then the
    states move on by dt / 2 times their derivatives there (the implicit midpoint rule)."""
    if secondorder:
        dt = 0.5 * dt
    old = [jnp.asarray(x[k]) for k in names]

    def residual(values):
        y = dict(x)
        y.update(zip(names, values))
        d = deriv(y)
        return [d[k] - (v - o) / dt for k, v, o in zip(names, values, old)]

    values = _newton(residual, old, iterations, clamp=False)
    x.update(zip(names, values))
    d = deriv(x)
    if secondorder:
        x.update({k: x[k] + dt * d[k] for k in names})


def _scheme_residual(scheme, x: dict, names, dt, linear: bool):
    """The implicit step's residual in the states ``names``: a linear scheme's rates (and
    << fluxes) at the states in ``x`` (the step's start, as nocmodl's one iteration, whose
    matrix holds them fixed), a non-linear one's at the values solved for."""
    old = [jnp.asarray(x[k]) for k in names]

    def residual(values):
        y = dict(x)
        s = dict(x)
        s.update(zip(names, values))
        if not linear:
            y = s
        d, cons = scheme(y, s)
        return [cons[k] if k in cons else d[k] - (v - o) / dt
                for k, v, o in zip(names, values, old)]

    return residual, old


def _finish(scheme, x: dict, names, values) -> None:
    """The solved states into ``x``, and the block's assigned variables as NEURON leaves
    them: computed at the solution (its solver evaluates the block once more there, to
    find that the step has converged)."""
    x.update(zip(names, values))
    scheme(x)


def kinetic(scheme, x: dict, names, dt, iterations: int, linear: bool,
            secondorder: int = 0) -> None:
    """sparse: the implicit step of a KINETIC scheme (``scheme(vars, reactants) ->
    ({state: derivative}, {state: conservation residual})``), in place in ``x``. Under
    Crank-Nicolson (``secondorder`` 2) as nocmodl's: the implicit step over dt / 2, then
    on by as much again (NEURON's sparse leaves the derivatives as the step's difference
    quotient, which its secondorder update adds times dt / 2)."""
    if secondorder:
        dt = 0.5 * dt
    residual, old = _scheme_residual(scheme, x, names, dt, linear)
    values = _newton(residual, old, 1 if linear else iterations, clamp=not linear)
    if secondorder:
        values = [2.0 * v - o for v, o in zip(values, old)]
    _finish(scheme, x, names, values)


def kinetic_steady(scheme, x: dict, names, iterations: int, linear: bool) -> None:
    """SOLVE ... STEADYSTATE sparse: implicit steps of STEADY_DT from the current states,
    iterated (negative states clamped to 0), as NEURON's."""
    residual, old = _scheme_residual(scheme, x, names, STEADY_DT, linear)
    values = _newton(residual, old, 3 if linear else iterations, clamp=True)
    _finish(scheme, x, names, values)


def implicit_steady(deriv, x: dict, names, iterations: int) -> None:
    """SOLVE ... STEADYSTATE derivimplicit: a backward Euler step of
    STEADY_DT_DERIVIMPLICIT (1e-9 ms), as NEURON's: not the steady state, but (next to) the
    states INITIAL set."""
    implicit(deriv, x, names, STEADY_DT_DERIVIMPLICIT, iterations)


def net_send(x: dict, when, flag, slots: int) -> None:
    """NEURON's ``net_send(delay, flag)`` from NET_RECEIVE: a self-event at ``when`` (ms:
    the event's t + delay) with ``flag``, put in the first free one of the synapse's
    ``slots`` (states ``net_send_t<k>``, +inf when free, and ``net_send_flag<k>``), which
    the simulation delivers to NET_RECEIVE in time order with the other events; where no
    slot is free, ``net_send_lost`` counts it (the run warns)."""
    taken = jnp.zeros(jnp.shape(x["net_send_lost"]), bool)
    for k in range(slots):
        t_k, f_k = f"net_send_t{k}", f"net_send_flag{k}"
        put = jnp.isinf(x[t_k]) & ~taken
        x[t_k] = jnp.where(put, when, x[t_k])
        x[f_k] = jnp.where(put, flag, x[f_k])
        taken = taken | put
    x["net_send_lost"] = x["net_send_lost"] + jnp.where(taken, 0.0, 1.0)
