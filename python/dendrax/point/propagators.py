"""Numerics shared by the point-neuron models: NEST's step counts, its exact-integration
propagators, and the embedded Runge-Kutta-Fehlberg 4(5) evolution NEST's GSL models use.

All functions are pure JAX over arrays [n] (one entry per neuron), our own code written from
the equations:

* ``refractory_steps``: NEST's ``Time( Time::ms( t_ref ) ).get_steps()`` (nestkernel/nest_time.h):
  t_ref is rounded to the nearest tic (1 tic = 1 us, NEST's default ``tics_per_ms`` = 1000),
  then rounded *up* to whole steps.
* ``psc_exp_p21`` / ``psc_alpha_p31_p32``: the propagator elements that couple an exponential
  or alpha-shaped synaptic current into the membrane of a leaky integrator, exact for a step
  h (Rotter & Diesmann 1999, Biol Cybern 81:381), with NEST's guard for tau_m ~ tau_syn
  (libnestutil/iaf_propagator.cpp, IAFPropagatorExp / IAFPropagatorAlpha): the regular
  closed form is used where it is a normal positive number (and, for P31, where
  h > 1e-7 tau_m^2 / |tau_m - tau_syn|), else the singular (tau_m == tau_syn) limit.
* ``rkf45_evolve``: one NEST update step of an ODE model integrated as NEST integrates it with
  GSL's ``gsl_odeiv_evolve_apply`` + ``gsl_odeiv_step_rkf45`` + the standard step-size control
  (GSL ode-initval: evolve.c, rkf45.c, cstd.c), repeated while t < h as NEST's models do,
  with the adaptive step size carried from one NEST step to the next (NEST's
  ``B_.IntegrationStep_``). Same tableau, same error norm, same accept/reject and step-size
  rules, so the result follows NEST's to rounding (~1e-12), not to the solver's tolerance.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from .forward_only import forward_only

Array = Any

TICS_PER_MS = 1000.0  # NEST's default resolution of its clock (tics_per_ms)
MAX_TICS = 2.0 ** 62  # NEST's clock counts tics in an int64: times beyond are its end (+-inf)
NUMERICAL_STABILITY_FACTOR = 1e-7  # libnestutil/iaf_propagator.h


def check_dt(dt: float) -> None:
    """Raise unless dt is a whole number of NEST tics (NEST refuses other resolutions)."""
    tics = dt * TICS_PER_MS
    if abs(tics - round(tics)) > 1e-9 * max(1.0, tics) or round(tics) < 1:
        raise ValueError(f"dt = {dt:g} ms is not a whole number of NEST's tics (1/"
                         f"{TICS_PER_MS:g} ms), which point neurons count their steps in "
                         "(NEST refuses such a resolution): use a multiple of 0.001 ms")


def refractory_steps(t_ref, dt: float):
    """NEST's refractory count: ``Time( Time::ms( t_ref ) ).get_steps()``.

    ``Time::ms`` rounds t_ref to tics as ``(tic_t)( t * TICS_PER_MS + 0.5 )``; ``get_steps``
    rounds tics up to steps as ``( tics + TICS_PER_STEP - 1 ) * ( 1 / TICS_PER_STEP )``
    truncated to an integer. E.g. dt = 0.1: t_ref = 2.0 -> 20 steps, 2.05 -> 21, 2.01 -> 21.
    Returned as a float array (a count, exact in float64) so it can live in the states.
    """
    tics_per_step = jnp.round(jnp.asarray(dt) * TICS_PER_MS)  # dt may be traced (jit)
    tics = jnp.floor(jnp.asarray(t_ref) * TICS_PER_MS + 0.5)
    return jnp.floor((tics + (tics_per_step - 1.0)) * (1.0 / tics_per_step))


def delay_steps(delay, dt):
    """NEST's delay in steps, ``Time::delay_ms_to_steps``: ``ld_round(delay * STEPS_PER_MS)``,
    with STEPS_PER_MS = 1 / (TICS_PER_STEP / TICS_PER_MS) and ld_round rounding halves up
    (dt = 0.1: 0.25 ms -> 3 steps, 0.15 -> 2, 0.05 -> 1). numpy in, numpy out; JAX arrays
    (dt or delay traced) in, an int32 JAX array out."""
    xp = jnp if isinstance(delay, jax.Array) or isinstance(dt, jax.Array) else np
    tics_per_step = xp.round(xp.asarray(dt) * TICS_PER_MS)
    steps_per_ms = 1.0 / (tics_per_step / TICS_PER_MS)
    return counted(xp, xp.floor(xp.asarray(delay) * steps_per_ms + 0.5))


def counted(xp, steps):
    """Whole numbers of steps (floats) as integers without wrapping: int64 on the host
    (where buffers are sized, so that a delay too long for any buffer is named), int32
    clipped to its largest value on the device (a delay that no buffer holds)."""
    if xp is np:
        return np.minimum(steps, 2.0 ** 62).astype(np.int64)
    return jnp.minimum(steps, np.iinfo(np.int32).max).astype(jnp.int32)


def _p32(tau_syn, tau_m, c_m, h):
    """(P32, exp(-h/tau_syn), exp(-h/tau_m), beta, gamma, expm1(h/beta)) as NEST's
    IAFPropagator::evaluate_P32_ (beta, gamma and expm1 made finite where singular)."""
    f = jnp.result_type(float)
    tau_syn, tau_m, c_m = (jnp.asarray(x, dtype=f) for x in (tau_syn, tau_m, c_m))
    d = tau_m - tau_syn
    exp_h_tau_syn = jnp.exp(-h / tau_syn)
    exp_h_tau = jnp.exp(-h / tau_m)
    # NEST's regular value, evaluated as NEST evaluates it (inf * 0 = nan when tau_m == tau_syn)
    # to decide the branch; the value itself is recomputed with a safe divisor so gradients
    # through the branch not taken stay finite.
    raw_beta = tau_syn * tau_m / d
    raw = (raw_beta / c_m) * exp_h_tau_syn * jnp.expm1(h * (d / (tau_syn * tau_m)))
    raw = jax.lax.stop_gradient(raw)
    tiny = jnp.finfo(jnp.result_type(raw)).tiny
    regular = jnp.isfinite(raw) & (raw > 0) & (raw >= tiny)  # std::isnormal(P32) and P32 > 0
    d_safe = jnp.where(regular, d, 1.0)
    beta = tau_syn * tau_m / d_safe
    gamma = beta / c_m
    inv_beta = d_safe / (tau_syn * tau_m)
    expm1_h_tau = jnp.expm1(h * inv_beta)
    p32_regular = gamma * exp_h_tau_syn * expm1_h_tau
    p32_singular = h / c_m * exp_h_tau
    p32 = jnp.where(regular, p32_regular, p32_singular)
    # NEST's value, with the derivatives of the same function written smoothly across
    # tau_m == tau_syn (NEST's singular branch depends on tau_m alone, and its regular one
    # cancels near it): P32 = h / C_m exp(-h/tau_m) g(h delta), delta = 1/tau_syn - 1/tau_m
    # (away from 0 as (exp(-h/tau_m) - exp(-h/tau_syn)) / (C_m delta): a tau_m of 1e-4 ms
    # made the closed form 0 * inf, and the run NaN)
    delta = 1.0 / tau_syn - 1.0 / tau_m
    near, series = _series(h * delta, _G)
    smooth = jnp.where(near, h / c_m * exp_h_tau * series,
                       (exp_h_tau - exp_h_tau_syn) / (c_m * jnp.where(near, 1.0, delta)))
    p32 = with_derivatives_of(p32, smooth)
    return p32, exp_h_tau_syn, exp_h_tau, beta, gamma, expm1_h_tau


# Taylor coefficients of g(x) = (1 - exp(-x)) / x and q(x) = (expm1(x) - x) / x^2 (their
# callers write the products they appear in without cancellation for |x| >= SERIES_BELOW)
_G = [(-1.0) ** k / np.prod(np.arange(1.0, k + 2.0)) for k in range(12)]
_Q = [1.0 / np.prod(np.arange(1.0, k + 3.0)) for k in range(12)]
SERIES_BELOW = 0.1  # |x| below which the series (to x^11: error < 1e-19) is used


def _series(x, coefficients):
    """(|x| < SERIES_BELOW, the series at x there and at 0 elsewhere: finite derivatives)."""
    near = jnp.abs(x) < SERIES_BELOW
    xs = jnp.where(near, x, 0.0)
    series = jnp.zeros_like(xs)
    for c in reversed(coefficients):
        series = series * xs + c
    return near, series


def with_derivatives_of(value, smooth):
    """``value`` (NEST's numbers), differentiated as ``smooth`` (the same function)."""
    return jax.lax.stop_gradient(value) + (smooth - jax.lax.stop_gradient(smooth))


def psc_exp_p21(tau_syn, tau_m, c_m, h):
    """NEST's IAFPropagatorExp(tau_syn, tau_m, c_m).evaluate(h): the membrane's response
    (mV/pA) after h to a unit exponential current (decay tau_syn) present at the start:

        P21 = tau_syn tau_m / ((tau_m - tau_syn) C_m) * (exp(-h/tau_m) - exp(-h/tau_syn))
            = gamma exp(-h/tau_syn) expm1(h / beta),   beta = tau_syn tau_m / (tau_m - tau_syn),

    and h/C_m exp(-h/tau_m) (the tau_m == tau_syn limit) where the regular form is not a normal
    positive number.
    """
    return _p32(tau_syn, tau_m, c_m, h)[0]


def psc_alpha_p31_p32(tau_syn, tau_m, c_m, h):
    """NEST's IAFPropagatorAlpha(tau_syn, tau_m, c_m).evaluate(h) -> (P31, P32).

    For the alpha current written as dI/dt = dI' - I/tau_syn, ddI'/dt = -dI'/tau_syn,
    P32 couples I (as ``psc_exp_p21``) and P31 couples dI' into V:

        P31 = gamma exp(-h/tau_syn) (beta expm1(h/beta) - h)        if h > h_min_regular
            = h^2 / (2 C_m) exp(-h/tau_m)                            otherwise,
        h_min_regular = 1e-7 tau_m^2 / |tau_m - tau_syn|.
    """
    p32, exp_h_tau_syn, exp_h_tau, beta, gamma, expm1_h_tau = _p32(tau_syn, tau_m, c_m, h)
    d = jnp.asarray(tau_m, dtype=jnp.result_type(float)) - tau_syn
    # h > h_min_regular, written without dividing by |d| (equal to NEST's test, and false
    # for d == 0 where h_min_regular is inf)
    h_min_ok = h * jnp.abs(d) > NUMERICAL_STABILITY_FACTOR * tau_m * tau_m
    p31_regular = gamma * exp_h_tau_syn * (beta * expm1_h_tau - h)
    p31_singular = 0.5 * h * h / c_m * exp_h_tau
    # differentiated as h^2 / C_m exp(-h/tau_syn) q(h delta), smooth across tau_m == tau_syn
    f = jnp.result_type(float)
    tau_syn, tau_m, c_m = (jnp.asarray(x, dtype=f) for x in (tau_syn, tau_m, c_m))
    # (away from 0 as (exp(-h/tau_m) - (1 + h delta) exp(-h/tau_syn)) / (C_m delta^2))
    delta = 1.0 / tau_syn - 1.0 / tau_m
    near, series = _series(h * delta, _Q)
    delta_far = jnp.where(near, 1.0, delta)
    smooth = jnp.where(near, h * h / c_m * exp_h_tau_syn * series,
                       (exp_h_tau - (1.0 + h * delta_far) * exp_h_tau_syn)
                       / (c_m * delta_far * delta_far))
    return with_derivatives_of(jnp.where(h_min_ok, p31_regular, p31_singular), smooth), p32


# ---------------------------------------------------------------------------------------------
# GSL's rkf45 with the standard control, as NEST's models call it
# ---------------------------------------------------------------------------------------------

# Runge-Kutta-Fehlberg 4(5) (Fehlberg 1969; Hairer, Norsett & Wanner, Solving ODEs I): the
# stage nodes, the stage weights, the fifth-order solution weights and the differences of the
# fifth- and fourth-order weights (the error estimate), as GSL's rkf45 stepper uses them.
_AH = (1.0 / 4.0, 3.0 / 8.0, 12.0 / 13.0, 1.0, 1.0 / 2.0)
_B3 = (3.0 / 32.0, 9.0 / 32.0)
_B4 = (1932.0 / 2197.0, -7200.0 / 2197.0, 7296.0 / 2197.0)
_B5 = (8341.0 / 4104.0, -32832.0 / 4104.0, 29440.0 / 4104.0, -845.0 / 4104.0)
_B6 = (-6080.0 / 20520.0, 41040.0 / 20520.0, -28352.0 / 20520.0, 9295.0 / 20520.0,
       -5643.0 / 20520.0)
_C1, _C3, _C4, _C5, _C6 = (902880.0 / 7618050.0, 3953664.0 / 7618050.0, 3855735.0 / 7618050.0,
                           -1371249.0 / 7618050.0, 277020.0 / 7618050.0)
_EC1, _EC3, _EC4, _EC5, _EC6 = (1.0 / 360.0, -128.0 / 4275.0, -2197.0 / 75240.0, 1.0 / 50.0,
                                2.0 / 55.0)
_ORDER = 5  # what GSL's rkf45 reports to the step-size control
# substeps one neuron may take within one time step before its states are NaN (a runaway
# or an unreachable tolerance; NEST's models take ~1-10 at dt = 0.1 ms)
MAX_SUBSTEPS = 100_000


def rkf45_step(f: Callable, y, h):
    """One RKF45 step of y' = f(y) (y: tuple of [n] arrays, h: [n]) -> (y_new, y_err, f(y_new)).

    The stage sums are written in GSL's order of operations (rkf45.c), so the rounding is the
    same as NEST's.
    """
    def axpy(*terms):
        return tuple(yi + h * sum_(tuple(c * k[i] for c, k in terms)) for i, yi in enumerate(y))

    def sum_(xs):
        acc = xs[0]
        for x in xs[1:]:
            acc = acc + x
        return acc

    k1 = f(y)
    y2 = tuple(yi + _AH[0] * h * k1[i] for i, yi in enumerate(y))
    k2 = f(y2)
    k3 = f(axpy((_B3[0], k1), (_B3[1], k2)))
    k4 = f(axpy((_B4[0], k1), (_B4[1], k2), (_B4[2], k3)))
    k5 = f(axpy((_B5[0], k1), (_B5[1], k2), (_B5[2], k3), (_B5[3], k4)))
    k6 = f(axpy((_B6[0], k1), (_B6[1], k2), (_B6[2], k3), (_B6[3], k4), (_B6[4], k5)))
    y_new = tuple(yi + h * (_C1 * k1[i] + _C3 * k3[i] + _C4 * k4[i] + _C5 * k5[i] + _C6 * k6[i])
                  for i, yi in enumerate(y))
    y_err = tuple(h * (_EC1 * k1[i] + _EC3 * k3[i] + _EC4 * k4[i] + _EC5 * k5[i] + _EC6 * k6[i])
                  for i in range(len(y)))
    return y_new, y_err, f(y_new)


def rkf45_evolve(f: Callable, y: tuple, h_int, t_end: float, *, eps_abs: float, eps_rel: float,
                 a_y: float, a_dydt: float, aux=None, f_aux: Callable | None = None,
                 after_substep: Callable | None = None, model: str = ""):
    """Advance y over [0, t_end] as NEST's ``while ( t < B_.step_ ) gsl_odeiv_evolve_apply(...)``.

    Each iteration is one attempt of GSL's evolve_apply (per neuron, vectorised):

    * h0 = the carried step size, cut to the rest of the interval if longer (final step);
    * an RKF45 step of size h0, its error estimate yerr and f at the new point yp;
    * GSL's standard control: D0_i = eps_rel (a_y |y_i| + a_dydt |h0 yp_i|) + eps_abs,
      rmax = max(DBL_MIN, max_i |yerr_i| / |D0_i|);
      rmax > 1.1: h = h0 max(0.9 rmax^(-1/5), 0.2), and the step is undone and retried
      (unless the new h would not move t by an ulp);
      rmax < 0.5: h = h0 min(max(0.9 rmax^(-1/6), 1), 5); else h unchanged;
    * an accepted step moves t to t + h0 (t_end exactly on the final step).

    ``aux`` is extra per-neuron state the right-hand side reads (e.g. the refractory count)
    and ``after_substep(y, aux, accepted) -> (y, aux)`` runs after each accepted step (NEST's
    aeif models check V_peak there). ``f_aux(y, aux)`` is the right-hand side when aux is
    given, else ``f(y)``.

    Returns (y, h_int, aux): the carried step size as NEST's ``B_.IntegrationStep_``.
    Implemented with ``lax.while_loop`` (runs until every neuron reached t_end): exact in the
    forward pass, differentiable in forward mode but not in reverse mode, which raises an
    error naming ``model`` (the point model's name) and the alternatives
    (``forward_only``) instead of JAX's about the loop. A neuron whose step would need more
    than ``MAX_SUBSTEPS`` substeps (a runaway, or a tolerance no float reaches) gets NaN
    states rather than hanging the run: its recorded traces are NaN (the run warns of
    them) and it fires no more.
    """
    dtype = h_int.dtype
    t_end_a = jnp.asarray(t_end, dtype)
    t0 = jnp.zeros_like(h_int)
    dbl_min = jnp.finfo(dtype).tiny
    rhs = (lambda yy, aa: f_aux(yy, aa)) if f_aux is not None else (lambda yy, aa: f(yy))

    def cond(carry):
        t, _, _, _, n = carry
        return jnp.any(t < t_end_a) & (n < MAX_SUBSTEPS)

    def body(carry):
        t, h, yy, aa, n = carry
        active = t < t_end_a
        rest = t_end_a - t
        final = h > rest
        h0 = jnp.where(final, rest, h)
        # keep inactive lanes finite and harmless
        h0 = jnp.where(active, h0, jnp.ones_like(h0) * t_end_a)
        y_new, y_err, yp = rkf45_step(lambda z: rhs(z, aa), yy, h0)
        t_after = jnp.where(final, t_end_a, t + h0)
        rmax = jnp.full_like(h0, dbl_min)
        for yi, ei, pi in zip(y_new, y_err, yp):
            d0 = eps_rel * (a_y * jnp.abs(yi) + a_dydt * jnp.abs(h0 * pi)) + eps_abs
            r = jnp.abs(ei) / jnp.abs(d0)
            rmax = jnp.where(r > rmax, r, rmax)  # GSL_MAX_DBL(r, rmax)
        dec = rmax > 1.1
        inc = rmax < 0.5
        r_dec = jnp.maximum(0.9 / jnp.power(rmax, 1.0 / _ORDER), 0.2)
        r_inc = jnp.minimum(jnp.maximum(0.9 / jnp.power(rmax, 1.0 / (_ORDER + 1.0)), 1.0), 5.0)
        h_dec = r_dec * h0
        reject = dec & (jnp.abs(h_dec) < jnp.abs(h0)) & ((t_after + h_dec) != t_after)
        h_next = jnp.where(dec, jnp.where(reject, h_dec, h0), jnp.where(inc, r_inc * h0, h0))
        accept = active & ~reject
        yy_acc = tuple(jnp.where(accept, yn, yo) for yn, yo in zip(y_new, yy))
        if after_substep is not None:
            yy_acc, aa = after_substep(yy_acc, aa, accept)
        t = jnp.where(accept, t_after, t)
        h = jnp.where(active, h_next, h)
        return t, h, yy_acc, aa, n + 1

    t, h_int, y, aux, _ = jax.lax.while_loop(cond, body, (t0, h_int, tuple(y), aux, 0))
    t, h_int, y, aux = forward_only((t, h_int, y, aux), model)
    unfinished = t < t_end_a
    return tuple(jnp.where(unfinished, jnp.nan, yi) for yi in y), h_int, aux


__all__ = ["MAX_SUBSTEPS", "TICS_PER_MS", "refractory_steps", "psc_exp_p21", "psc_alpha_p31_p32", "rkf45_step",
           "rkf45_evolve", "check_dt"]
