"""NEST's conductance-based integrate-and-fire models, integrated by RKF45 as NEST's GSL
solver: iaf_cond_exp, iaf_cond_alpha, iaf_cond_beta (conventions: ``dendrax.point.models``)."""

from __future__ import annotations


import jax
import jax.numpy as jnp

from ...ranges import NONNEGATIVE, POSITIVE
from ..base import PointNeuron
from ..propagators import SERIES_BELOW, with_derivatives_of, refractory_steps, rkf45_evolve
from .common import E, NoRecordInternals, is_spike, state, when, zeros


class IafCondExp(NoRecordInternals, PointNeuron):
    r"""NEST's ``iaf_cond_exp``: leaky integrate-and-fire with exponentially decaying synaptic
    conductances (Meffin et al. 2004; NEST models/iaf_cond_exp.cpp).

    .. math::
        C_m dV/dt = -g_L (V - E_L) - g_{ex} (V - E_{ex}) - g_{in} (V - E_{in}) + I_e + I_{stim}

        dg_X/dt = -g_X/\tau_{syn,X}, \quad g_X \mathrel{+}= |w| \text{ per spike}

    with V on the right-hand side clamped to min(V, V_th) and, while refractory, held at
    V_reset with dV/dt = 0. Per step, as NEST: the ODEs are integrated over the step with
    GSL's adaptive RKF45 (absolute error 1e-3, relative 0, the step size carried over,
    ``propagators.rkf45_evolve``); this step's weights are added to the conductances
    (inhibitory weights are negative, their magnitude is added to g_in); if refractory the
    count drops and V = V_reset, else V >= V_th: spike, reset, refractory; I_stim := current.

    Units: mV, ms, pF, pA, nS; weights nS. The state "h_int" is the integrator's step (ms).
    """

    name = "iaf_cond_exp"
    weight_unit = "nS"
    params = {"C_m": 250.0, "E_L": -70.0, "E_ex": 0.0, "E_in": -85.0, "I_e": 0.0, "V_m": -70.0,
              "V_reset": -60.0, "V_th": -55.0, "g_L": 16.6667, "g_ex": 0.0, "g_in": 0.0,
              "t_ref": 2.0, "tau_syn_ex": 0.2, "tau_syn_in": 2.0}
    units = {"C_m": "pF", "E_L": "mV", "E_ex": "mV", "E_in": "mV", "I_e": "pA", "V_m": "mV",
             "V_reset": "mV", "V_th": "mV", "g_L": "nS", "g_ex": "nS", "g_in": "nS",
             "t_ref": "ms", "tau_syn_ex": "ms", "tau_syn_in": "ms", "I_stim": "pA",
             "refractory": "steps", "h_int": "ms"}
    ranges = {"C_m": POSITIVE, "g_L": NONNEGATIVE, "tau_syn_ex": POSITIVE,
              "tau_syn_in": POSITIVE, "t_ref": NONNEGATIVE, "g_ex": NONNEGATIVE,
              "g_in": NONNEGATIVE}
    states = ("V_m", "g_ex", "g_in", "I_stim", "refractory", "h_int")
    record = ("V_m", "g_ex", "g_in")
    eps_abs, eps_rel = 1e-3, 0.0  # gsl_odeiv_control_y_new( 1e-3, 0.0 )

    def initial(self, params, dt):
        v = state(params, "V_m")
        z = zeros(v)
        return {"V_m": v, "g_ex": state(params, "g_ex") + z, "g_in": state(params, "g_in") + z,
                "I_stim": z, "refractory": z, "h_int": z + dt}

    def update(self, states, params, inputs, dt):
        p = params
        r = states["refractory"]
        refr = r > 0
        i_stim = states["I_stim"]

        def f(y):
            v, g_ex, g_in = y
            vc = jnp.where(refr, p["V_reset"], jnp.minimum(v, p["V_th"]))
            i_syn_exc = g_ex * (vc - p["E_ex"])
            i_syn_inh = g_in * (vc - p["E_in"])
            i_l = p["g_L"] * (vc - p["E_L"])
            dv = jnp.where(refr, 0.0, (-i_l + i_stim + p["I_e"] - i_syn_exc - i_syn_inh) / p["C_m"])
            return (dv, -g_ex / p["tau_syn_ex"], -g_in / p["tau_syn_in"])

        y = (states["V_m"], states["g_ex"], states["g_in"])
        (v, g_ex, g_in), h_int, _ = rkf45_evolve(
            f, y, states["h_int"], dt, eps_abs=self.eps_abs, eps_rel=self.eps_rel, a_y=1.0,
            a_dydt=0.0, model=self.name)
        g_ex = g_ex + inputs["ex"]
        g_in = g_in - inputs["in"]
        v = jnp.where(refr, p["V_reset"], v)
        spike = when(self.spike(v - p["V_th"]), ~refr)
        fired = is_spike(spike)
        r = jnp.where(refr, r - 1, jnp.where(fired, refractory_steps(p["t_ref"], dt), r))
        v = jnp.where(fired, p["V_reset"], v)
        return ({"V_m": v, "g_ex": g_ex, "g_in": g_in, "I_stim": inputs["current"] * 1.0,
                 "refractory": r, "h_int": h_int}, spike)


def beta_normalization(tau_rise, tau_decay):
    r"""The jump of dg/dt per unit weight that makes a dual-exponential conductance peak at
    1 nS per nS of weight (1/ms; taus in ms): NEST's ``beta_normalization_factor``
    (libnestutil; Rotter & Diesmann 1999; Roth & van Rossum 2010), its values to rounding,
    differentiated as ``beta_peak_factor`` (the same function, smooth through equal taus).

    For dx/dt = -x/tau_decay, dg/dt = x - g/tau_rise and x(0) = c, g(0) = 0:
    g(t) = c / (1/tau_rise - 1/tau_decay) (e^{-t/tau_decay} - e^{-t/tau_rise}), with its
    peak at t* = tau_decay tau_rise ln(tau_decay/tau_rise) / (tau_decay - tau_rise), so
    c = (1/tau_rise - 1/tau_decay) / (e^{-t*/tau_decay} - e^{-t*/tau_rise}). Where the taus
    are equal (|tau_decay - tau_rise| or the peak difference below machine epsilon, as NEST
    tests it) the alpha function's e / tau_decay. NEST's branches are not differentiable
    through equality (the alpha branch ignores tau_rise, the regular one cancels
    catastrophically next to it), hence the derivatives of ``beta_peak_factor``.
    """
    return with_derivatives_of(_nest_beta_normalization(tau_rise, tau_decay),
                                beta_peak_factor(tau_rise, tau_decay))


def _nest_beta_normalization(tau_rise, tau_decay):
    """NEST's ``beta_normalization_factor`` (1/ms), as NEST evaluates it (its branches and
    rounding; ``beta_normalization`` documents it), made finite where a branch is not taken."""
    f = jnp.result_type(float)
    tau_rise, tau_decay = jnp.asarray(tau_rise, f), jnp.asarray(tau_decay, f)
    eps = jnp.finfo(f).eps
    diff = tau_decay - tau_rise
    distinct = jnp.abs(diff) > eps
    diff_safe = jnp.where(distinct, diff, 1.0)
    ratio_safe = jnp.where(distinct, tau_decay / tau_rise, 2.0)
    t_peak = tau_decay * tau_rise * jnp.log(ratio_safe) / diff_safe
    peak = jnp.where(distinct, jnp.exp(-t_peak / tau_decay) - jnp.exp(-t_peak / tau_rise), 0.0)
    alpha = jnp.abs(peak) < eps
    peak_safe = jnp.where(alpha, 1.0, peak)
    return jnp.where(alpha, E / tau_decay, (1.0 / tau_rise - 1.0 / tau_decay) / peak_safe)


# Taylor coefficients of L(v) = log1p(v) / v: 1 - v/2 + v^2/3 - ..., to v^19 (error below
# 0.1^20 / 21 where it is used, |v| < SERIES_BELOW = 0.1)
_LOG1P_RATIO = [(-1.0) ** k / (k + 1.0) for k in range(20)]


def beta_peak_factor(tau_rise, tau_decay):
    r"""The normalisation of ``beta_normalization`` (1/ms; taus in ms), written so that its
    values and derivatives are smooth through tau_rise = tau_decay and accurate near it.

    With u = tau_decay / tau_rise the peak time is t* = tau_decay ln(u) / (u - 1) and
    e^{-t*/tau_rise} = e^{-t*/tau_decay} / u, so the peak of
    (e^{-t/tau_decay} - e^{-t/tau_rise}) / (1/tau_rise - 1/tau_decay) is
    tau_rise e^{-L}, L = ln(u) / (u - 1), and

    .. math:: c = e^{L} / \tau_{rise},

    with L = log1p(v) / v, v = u - 1 = (tau_decay - tau_rise) / tau_rise, by its Taylor
    series for |v| < 0.1 (L = 1 at v = 0: the alpha function's e / tau, and
    dc/dtau_rise = dc/dtau_decay = -e / (2 tau^2) at equal taus), ln(u) / v elsewhere.
    Agrees with NEST's closed form to a few ulp where that is accurate (taus well apart).
    An infinite tau (a conductance held constant) takes NEST's value (0 for both infinite:
    no jump), not differentiated.
    """
    f = jnp.result_type(float)
    tau_rise, tau_decay = jnp.asarray(tau_rise, f), jnp.asarray(tau_decay, f)
    finite = jnp.isfinite(tau_rise) & jnp.isfinite(tau_decay)
    held = jax.lax.stop_gradient(_nest_beta_normalization(tau_rise, tau_decay))
    tau_rise, tau_decay = jnp.where(finite, tau_rise, 1.0), jnp.where(finite, tau_decay, 1.0)
    v = (tau_decay - tau_rise) / tau_rise
    near = jnp.abs(v) < SERIES_BELOW
    v_near = jnp.where(near, v, 0.0)
    series = jnp.zeros_like(v_near)
    for c in reversed(_LOG1P_RATIO):
        series = series * v_near + c
    closed = jnp.log(jnp.where(near, 2.0, tau_decay / tau_rise)) / jnp.where(near, 1.0, v)
    return jnp.where(finite, jnp.exp(jnp.where(near, series, closed)) / tau_rise, held)


class _IafCondDual(NoRecordInternals, PointNeuron):
    """NEST's iaf_cond_alpha / iaf_cond_beta: the same update, the taus and the jump per
    weight differ (``_taus``)."""

    weight_unit = "nS"
    states = ("V_m", "dg_ex", "g_ex", "dg_in", "g_in", "I_stim", "refractory", "h_int",
              "t_ref_remaining")
    record = ("V_m", "g_ex", "g_in", "t_ref_remaining")
    eps_abs, eps_rel = 1e-3, 0.0  # gsl_odeiv_control_y_new( 1e-3, 0.0 )
    _common_units = {"C_m": "pF", "E_L": "mV", "E_ex": "mV", "E_in": "mV", "I_e": "pA",
                     "V_m": "mV", "V_reset": "mV", "V_th": "mV", "g_L": "nS", "g_ex": "nS",
                     "g_in": "nS", "dg_ex": "nS/ms", "dg_in": "nS/ms", "t_ref": "ms",
                     "I_stim": "pA", "refractory": "steps", "h_int": "ms",
                     "t_ref_remaining": "ms"}
    _common_ranges = {"C_m": POSITIVE, "g_L": NONNEGATIVE, "t_ref": NONNEGATIVE,
                      "g_ex": NONNEGATIVE, "g_in": NONNEGATIVE}

    def _taus(self, p):
        """-> (tau_rise_ex, tau_decay_ex, tau_rise_in, tau_decay_in, jump_ex, jump_in)."""
        raise NotImplementedError

    def initial(self, params, dt):
        v = state(params, "V_m")
        z = zeros(v)
        return {"V_m": v, "dg_ex": state(params, "dg_ex") + z, "g_ex": state(params, "g_ex") + z,
                "dg_in": state(params, "dg_in") + z, "g_in": state(params, "g_in") + z,
                "I_stim": z, "refractory": z, "h_int": z + dt, "t_ref_remaining": z}

    def update(self, states, params, inputs, dt):
        p = params
        r = states["refractory"]
        refr = r > 0
        i_stim = states["I_stim"]
        rise_ex, decay_ex, rise_in, decay_in, jump_ex, jump_in = self._taus(p)

        def f(y):  # NEST's iaf_cond_{alpha,beta}_dynamics, in its order of operations
            v, dg_ex, g_ex, dg_in, g_in = y
            vc = jnp.where(refr, p["V_reset"], jnp.minimum(v, p["V_th"]))
            i_syn_exc = g_ex * (vc - p["E_ex"])
            i_syn_inh = g_in * (vc - p["E_in"])
            i_leak = p["g_L"] * (vc - p["E_L"])
            dv = jnp.where(refr, 0.0,
                           (-i_leak - i_syn_exc - i_syn_inh + i_stim + p["I_e"]) / p["C_m"])
            return (dv, -dg_ex / decay_ex, dg_ex - (g_ex / rise_ex),
                    -dg_in / decay_in, dg_in - (g_in / rise_in))

        names = ("V_m", "dg_ex", "g_ex", "dg_in", "g_in")
        y, h_int, _ = rkf45_evolve(f, tuple(states[k] for k in names), states["h_int"], dt,
                                   eps_abs=self.eps_abs, eps_rel=self.eps_rel, a_y=1.0,
                                   a_dydt=0.0, model=self.name)
        new = dict(zip(names, y))
        v = jnp.where(refr, p["V_reset"], new["V_m"])
        spike = when(self.spike(v - p["V_th"]), ~refr)
        fired = is_spike(spike)
        r = jnp.where(refr, r - 1, jnp.where(fired, refractory_steps(p["t_ref"], dt), r))
        new["V_m"] = jnp.where(fired, p["V_reset"], v)
        new["dg_ex"] = new["dg_ex"] + inputs["ex"] * jump_ex
        new["dg_in"] = new["dg_in"] + (-inputs["in"]) * jump_in
        new["I_stim"] = inputs["current"] * 1.0
        new["refractory"] = r
        new["h_int"] = h_int
        new["t_ref_remaining"] = dt * r  # NEST's get_r_(): resolution (ms) * steps left
        return new, spike


class IafCondAlpha(_IafCondDual):
    r"""NEST's ``iaf_cond_alpha``: leaky integrate-and-fire with alpha-shaped synaptic
    conductances (Meffin et al. 2004, J Comput Neurosci 16:159; Bernander et al. 1991, PNAS
    88:11569; Kuhn & Rotter 2004, J Neurosci 24:2345; NEST models/iaf_cond_alpha.cpp).

    .. math::
        C_m dV/dt = -g_L (V - E_L) - g_{ex} (V - E_{ex}) - g_{in} (V - E_{in}) + I_e + I_{stim}

        d\,dg_X/dt = -dg_X/\tau_{syn,X}, \qquad dg_X/dt = dg_X - g_X/\tau_{syn,X}

    so that a spike of weight w (nS) adds w e/tau_syn to dg_X and the conductance follows
    g_X(t) = |w| (t/\tau_{syn,X}) e^{1 - t/\tau_{syn,X}}, peaking at |w| nS after tau_syn.
    V on the right-hand side is clamped to min(V, V_th) and, while refractory, held at
    V_reset with dV/dt = 0. Per step, as NEST: the five ODEs are integrated over the step
    with GSL's adaptive RKF45 (absolute error 1e-3, relative 0, the step size carried over,
    ``propagators.rkf45_evolve``); if refractory the count drops and V = V_reset, else
    V >= V_th: spike, V = V_reset, refractory for t_ref (NEST's steps); then this step's
    weights are added to dg_ex / dg_in (inhibitory weights are negative, their magnitude
    is added); I_stim := current (acts from the next step).

    Units: mV, ms, pF, pA, nS; weights nS; dg_ex / dg_in in nS/ms. Recordables as NEST's:
    V_m, g_ex, g_in, t_ref_remaining (ms, the refractory steps left times dt). The state
    "h_int" is the integrator's step (ms).
    """

    name = "iaf_cond_alpha"
    params = {"C_m": 250.0, "E_L": -70.0, "E_ex": 0.0, "E_in": -85.0, "I_e": 0.0, "V_m": -70.0,
              "V_reset": -60.0, "V_th": -55.0, "dg_ex": 0.0, "dg_in": 0.0, "g_L": 16.6667,
              "g_ex": 0.0, "g_in": 0.0, "t_ref": 2.0, "tau_syn_ex": 0.2, "tau_syn_in": 2.0}
    units = {**_IafCondDual._common_units, "tau_syn_ex": "ms", "tau_syn_in": "ms"}
    ranges = {**_IafCondDual._common_ranges, "tau_syn_ex": POSITIVE, "tau_syn_in": POSITIVE}

    def _taus(self, p):
        tau_ex, tau_in = p["tau_syn_ex"], p["tau_syn_in"]
        # pre_run_hook: PSConInit = 1.0 * numerics::e / tau_syn
        return tau_ex, tau_ex, tau_in, tau_in, 1.0 * E / tau_ex, 1.0 * E / tau_in


class IafCondBeta(_IafCondDual):
    r"""NEST's ``iaf_cond_beta``: leaky integrate-and-fire with dual-exponential ("beta")
    synaptic conductances (Meffin et al. 2004; Bernander et al. 1991; Kuhn & Rotter 2004;
    Rotter & Diesmann 1999, Biol Cybern 81:381; Roth & van Rossum 2010, in De Schutter (ed.),
    Computational Modeling Methods for Neuroscientists, ch. 6; NEST models/iaf_cond_beta.cpp).

    .. math::
        C_m dV/dt = -g_L (V - E_L) - g_{ex} (V - E_{ex}) - g_{in} (V - E_{in}) + I_e + I_{stim}

        d\,dg_X/dt = -dg_X/\tau_{decay,X}, \qquad dg_X/dt = dg_X - g_X/\tau_{rise,X}

    A spike of weight w (nS) adds |w| c to dg_X, with c = ``beta_normalization(tau_rise,
    tau_decay)`` (NEST's), so that
    g_X(t) = |w| c (e^{-t/\tau_{decay}} - e^{-t/\tau_{rise}}) / (1/\tau_{rise} - 1/\tau_{decay})
    peaks at |w| nS; with tau_rise = tau_decay (NEST's defaults) it is iaf_cond_alpha's alpha
    function. Clamping, refractoriness, the RKF45 integration and the order of operations
    are iaf_cond_alpha's.

    Units: mV, ms, pF, pA, nS; weights nS; dg_ex / dg_in in nS/ms. Recordables as NEST's:
    V_m, g_ex, g_in, t_ref_remaining (ms). The state "h_int" is the integrator's step (ms).
    For taus a hair apart (|tau_decay - tau_rise| ~ 1e-9 ms) NEST's normalisation divides
    two nearly cancelling differences: an ulp of exp / log moves it by ~1e-7 relative, and
    the result follows NEST's to ~1e-6 instead of rounding.
    """

    name = "iaf_cond_beta"
    params = {"C_m": 250.0, "E_L": -70.0, "E_ex": 0.0, "E_in": -85.0, "I_e": 0.0, "V_m": -70.0,
              "V_reset": -60.0, "V_th": -55.0, "dg_ex": 0.0, "dg_in": 0.0, "g_L": 16.6667,
              "g_ex": 0.0, "g_in": 0.0, "t_ref": 2.0, "tau_decay_ex": 0.2, "tau_decay_in": 2.0,
              "tau_rise_ex": 0.2, "tau_rise_in": 2.0}
    units = {**_IafCondDual._common_units, "tau_decay_ex": "ms", "tau_decay_in": "ms",
             "tau_rise_ex": "ms", "tau_rise_in": "ms"}
    ranges = {**_IafCondDual._common_ranges, "tau_decay_ex": POSITIVE,
              "tau_decay_in": POSITIVE, "tau_rise_ex": POSITIVE, "tau_rise_in": POSITIVE}

    def _taus(self, p):
        return (p["tau_rise_ex"], p["tau_decay_ex"], p["tau_rise_in"], p["tau_decay_in"],
                beta_normalization(p["tau_rise_ex"], p["tau_decay_ex"]),
                beta_normalization(p["tau_rise_in"], p["tau_decay_in"]))
