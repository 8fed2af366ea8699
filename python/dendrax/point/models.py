"""Point-neuron models: NEST's iaf_psc_alpha, iaf_psc_exp, iaf_psc_delta, iaf_cond_exp,
iaf_cond_alpha, iaf_cond_beta, aeif_cond_exp, izhikevich and hh_psc_alpha with NEST's names,
defaults, units and order of operations, brainpy-style LIF, ExpIF and ALIF, and a
conductance-based LIF with AMPA, NMDA (Mg block) and GABA_A receptors (LIF_AMPA_NMDA).

Our own code, written from the models' equations and from the order of operations in NEST's
C++ (nest-simulator, models/<name>.cpp, NEST 3.10), which each class cites. What the NEST
models share:

* One update per step of size h = dt, in NEST's order; a spike is emitted at the end of the
  step (time t + h) and the membrane is reset in the same step, so a supra-threshold value
  is never seen.
* The refractory count is NEST's: t_ref rounded to tics (1 us) and then up to whole steps
  (``propagators.refractory_steps``); the state "refractory" counts the steps left.
* Inputs (see ``PointNeuron.update``): "ex" / "in" are the summed positive / negative weights
  of the spikes NEST reads in this step (its ring-buffer slot of the step), "current" the
  current (pA) of current generators read in this step; NEST applies it from the *next*
  step on (it is stored in the state "I_stim", NEST's y0 / I_stim / i_0), while I_e acts at
  once.
* A spike sent at time t_s over a connection with delay d is read in the step
  k = round(t_s/dt) + round(d/dt) - 1 (from k dt to (k+1) dt), so its effect shows first in
  the state at (k+1) dt = t_s + d; a dc_generator with start t0 is read from step
  round(t0/dt) + round(d/dt) - 1 on and so moves the membrane from the step after.

The exact-integration models (iaf_psc_*) agree with NEST to ~1e-13 mV; the GSL models
(iaf_cond_exp, iaf_cond_alpha, iaf_cond_beta, aeif_cond_exp, hh_psc_alpha) reproduce NEST's
adaptive RKF45 run step for step (``propagators.rkf45_evolve``) and agree to ~1e-9 or better;
izhikevich is NEST's explicit scheme and agrees to rounding. tests/test_point_models.py and
tests/test_point_models_cond.py state and assert the tolerances (iaf_cond_beta with
tau_rise and tau_decay within ~1e-9 ms of each other: ~1e-6, NEST's normalisation being
ill-conditioned there). The brainpy-style models and LIF_AMPA_NMDA are checked against
closed forms (tests/test_point_models.py, tests/test_point_lif_receptors.py).

Thresholds go through ``PointNeuron.spike`` (a bool, or with a population's surrogate a 0/1
float carrying the surrogate gradient); resets are not differentiated through. The GSL
models integrate with ``lax.while_loop`` (adaptive sub-steps), which JAX can differentiate
in forward mode only.

Not expressible in this API (and so not modelled): iaf_psc_exp's stochastic threshold
(rho, delta) and its second current port (receptor 1, filtered current input); NEST's
ignore_and_spike mode; aeif_cond_exp can fire more than once in one step when t_ref = 0 (the
update's flag says it fired; its state "n_spikes" says how often).
"""

from __future__ import annotations

import math
import sys
from typing import Mapping

import jax.numpy as jnp

from ..mechanisms.base import FLAG, NONNEGATIVE, POSITIVE, Range
from .base import Array, PointNeuron
from .propagators import psc_alpha_p31_p32, psc_exp_p21, refractory_steps, rkf45_evolve

_E = math.e  # numerics::e


def _zeros(x):
    return jnp.zeros_like(jnp.asarray(x, dtype=jnp.result_type(float)))


def _state(params: Mapping[str, Array], name: str):
    return jnp.asarray(params[name], dtype=jnp.result_type(float)) * 1.0


def _flag(x):
    return jnp.asarray(x) != 0


def _is(spike):
    """The bool behind a spike from ``PointNeuron.spike`` (bool, or 0/1 float with a
    surrogate): for the model's own logic (resets), which is not differentiated through."""
    return spike if spike.dtype == jnp.bool_ else spike != 0


def _when(spike, mask):
    """spike and mask (mask: bool, not differentiated), keeping the spike's type."""
    return spike & mask if spike.dtype == jnp.bool_ else spike * mask.astype(spike.dtype)


class _NoRecordInternals:
    """Models whose states include internals NEST does not record (counters, buffers)."""

    record: tuple[str, ...] = ()

    @property
    def recordables(self) -> tuple[str, ...]:
        return self.record


# -------------------------------------------------------------------------------------------
# current-based leaky integrate-and-fire, exact integration
# -------------------------------------------------------------------------------------------


class IafPscAlpha(_NoRecordInternals, PointNeuron):
    r"""NEST's ``iaf_psc_alpha``: leaky integrate-and-fire with alpha-shaped synaptic currents,
    integrated exactly (Rotter & Diesmann 1999, Biol Cybern 81:381; NEST models/iaf_psc_alpha.cpp).

    .. math::
        C_m dV/dt = -(V - E_L)\,C_m/\tau_m + I_{syn,ex} + I_{syn,in} + I_e + I_{stim}

        I_{syn,X}(t) = \sum_k w_k\, (t - t_k)/\tau_{syn,X}\, e^{1 - (t - t_k)/\tau_{syn,X}}

    (a spike of weight w pA gives a current peaking at w pA after tau_syn). Per step, in NEST's
    order: V advances by the exact propagator unless refractory (else the count drops by one),
    is clipped at V_min; the currents advance and this step's spikes are added to dI
    (w e / tau_syn); V >= V_th: spike, V = V_reset, refractory for t_ref (in NEST steps);
    the current read this step becomes I_stim for the next.

    Units: mV, ms, pF, pA; weights pA. States: V_m, I_syn_ex, I_syn_in (recorded as NEST's),
    dI_syn_ex, dI_syn_in (pA/ms), I_stim (pA), refractory (steps left).
    """

    name = "iaf_psc_alpha"
    params = {"C_m": 250.0, "E_L": -70.0, "I_e": 0.0, "V_m": -70.0, "V_min": -math.inf,
              "V_reset": -70.0, "V_th": -55.0, "t_ref": 2.0, "tau_m": 10.0,
              "tau_syn_ex": 2.0, "tau_syn_in": 2.0}
    units = {"C_m": "pF", "E_L": "mV", "I_e": "pA", "V_m": "mV", "V_min": "mV", "V_reset": "mV",
             "V_th": "mV", "t_ref": "ms", "tau_m": "ms", "tau_syn_ex": "ms", "tau_syn_in": "ms",
             "I_syn_ex": "pA", "I_syn_in": "pA", "dI_syn_ex": "pA/ms", "dI_syn_in": "pA/ms",
             "I_stim": "pA", "refractory": "steps"}
    ranges = {"C_m": POSITIVE, "tau_m": POSITIVE, "tau_syn_ex": POSITIVE, "tau_syn_in": POSITIVE,
              "t_ref": NONNEGATIVE}
    states = ("V_m", "I_syn_ex", "I_syn_in", "dI_syn_ex", "dI_syn_in", "I_stim", "refractory")
    record = ("V_m", "I_syn_ex", "I_syn_in")

    def initial(self, params, dt):
        v = _state(params, "V_m")
        z = _zeros(v)
        return {"V_m": v, "I_syn_ex": z, "I_syn_in": z, "dI_syn_ex": z, "dI_syn_in": z,
                "I_stim": z, "refractory": z}

    def update(self, states, params, inputs, dt):
        h = dt
        p = params
        e_l = p["E_L"]
        tau_m, c_m = p["tau_m"], p["C_m"]
        tau_ex, tau_in = p["tau_syn_ex"], p["tau_syn_in"]
        # NEST's pre_run_hook (iaf_psc_alpha.cpp)
        p11_ex = jnp.exp(-h / tau_ex)
        p11_in = jnp.exp(-h / tau_in)
        expm1_tau_m = jnp.expm1(-h / tau_m)
        p30 = -tau_m / c_m * jnp.expm1(-h / tau_m)
        p21_ex = h * p11_ex
        p21_in = h * p11_in
        p31_ex, p32_ex = psc_alpha_p31_p32(tau_ex, tau_m, c_m, h)
        p31_in, p32_in = psc_alpha_p31_p32(tau_in, tau_m, c_m, h)
        epsc0 = 1.0 * _E / tau_ex
        ipsc0 = 1.0 * _E / tau_in
        counts = refractory_steps(p["t_ref"], dt)
        lower = p["V_min"] - e_l
        theta = p["V_th"] - e_l
        v_reset = p["V_reset"] - e_l

        y3 = states["V_m"] - e_l
        y0 = states["I_stim"]
        di_ex, i_ex = states["dI_syn_ex"], states["I_syn_ex"]
        di_in, i_in = states["dI_syn_in"], states["I_syn_in"]
        r = states["refractory"]

        free = r == 0
        y3_new = (p30 * (y0 + p["I_e"]) + p31_ex * di_ex + p32_ex * i_ex + p31_in * di_in
                  + p32_in * i_in + expm1_tau_m * y3 + y3)
        y3_new = jnp.where(y3_new < lower, lower, y3_new)
        y3 = jnp.where(free, y3_new, y3)
        r = jnp.where(free, r, r - 1)

        i_ex = p21_ex * di_ex + p11_ex * i_ex
        di_ex = di_ex * p11_ex + epsc0 * inputs["ex"]
        i_in = p21_in * di_in + p11_in * i_in
        di_in = di_in * p11_in + ipsc0 * inputs["in"]

        spike = self.spike(y3 - theta)
        fired = _is(spike)
        r = jnp.where(fired, counts, r)
        y3 = jnp.where(fired, v_reset, y3)
        return ({"V_m": y3 + e_l, "I_syn_ex": i_ex, "I_syn_in": i_in, "dI_syn_ex": di_ex,
                 "dI_syn_in": di_in, "I_stim": inputs["current"] * 1.0, "refractory": r}, spike)


class IafPscExp(_NoRecordInternals, PointNeuron):
    r"""NEST's ``iaf_psc_exp``: leaky integrate-and-fire with exponential synaptic currents,
    integrated exactly (Rotter & Diesmann 1999; Tsodyks et al. 1998; NEST models/iaf_psc_exp.cpp).

    .. math::
        C_m dV/dt = -(V - E_L)\,C_m/\tau_m + I_{syn,ex} + I_{syn,in} + I_e + I_{stim}

        dI_{syn,X}/dt = -I_{syn,X}/\tau_{syn,X} + \sum_k w_k \delta(t - t_k)

    Per step: V advances by the exact propagators (P22 = e^{-h/tau_m}, P21 from
    ``propagators.psc_exp_p21``, P20 = tau_m/C_m (1 - P22)) unless refractory; the currents
    decay and this step's weights are added; V >= V_th: spike and reset; I_stim := current.

    Units: mV, ms, pF, pA; weights pA. The escape-noise threshold (NEST's rho, delta > 0)
    and the filtered current port (receptor 1) are not modelled (deterministic threshold,
    NEST's default delta = 0).
    """

    name = "iaf_psc_exp"
    params = {"C_m": 250.0, "E_L": -70.0, "I_e": 0.0, "V_m": -70.0, "V_reset": -70.0,
              "V_th": -55.0, "t_ref": 2.0, "tau_m": 10.0, "tau_syn_ex": 2.0, "tau_syn_in": 2.0}
    units = {"C_m": "pF", "E_L": "mV", "I_e": "pA", "V_m": "mV", "V_reset": "mV", "V_th": "mV",
             "t_ref": "ms", "tau_m": "ms", "tau_syn_ex": "ms", "tau_syn_in": "ms",
             "I_syn_ex": "pA", "I_syn_in": "pA", "I_stim": "pA", "refractory": "steps"}
    ranges = {"C_m": POSITIVE, "tau_m": POSITIVE, "tau_syn_ex": POSITIVE, "tau_syn_in": POSITIVE,
              "t_ref": NONNEGATIVE}
    states = ("V_m", "I_syn_ex", "I_syn_in", "I_stim", "refractory")
    record = ("V_m", "I_syn_ex", "I_syn_in")

    def initial(self, params, dt):
        v = _state(params, "V_m")
        z = _zeros(v)
        return {"V_m": v, "I_syn_ex": z, "I_syn_in": z, "I_stim": z, "refractory": z}

    def update(self, states, params, inputs, dt):
        h = dt
        p = params
        e_l = p["E_L"]
        tau_m, c_m = p["tau_m"], p["C_m"]
        p11_ex = jnp.exp(-h / p["tau_syn_ex"])
        p11_in = jnp.exp(-h / p["tau_syn_in"])
        p22 = jnp.exp(-h / tau_m)
        p21_ex = psc_exp_p21(p["tau_syn_ex"], tau_m, c_m, h)
        p21_in = psc_exp_p21(p["tau_syn_in"], tau_m, c_m, h)
        p20 = tau_m / c_m * (1.0 - p22)
        counts = refractory_steps(p["t_ref"], dt)

        v = states["V_m"] - e_l
        i_ex, i_in = states["I_syn_ex"], states["I_syn_in"]
        r = states["refractory"]
        free = r == 0
        v = jnp.where(free, v * p22 + i_ex * p21_ex + i_in * p21_in
                      + (p["I_e"] + states["I_stim"]) * p20, v)
        r = jnp.where(free, r, r - 1)
        i_ex = i_ex * p11_ex + inputs["ex"]
        i_in = i_in * p11_in + inputs["in"]
        spike = self.spike(v - (p["V_th"] - e_l))
        fired = _is(spike)
        r = jnp.where(fired, counts, r)
        v = jnp.where(fired, p["V_reset"] - e_l, v)
        return ({"V_m": v + e_l, "I_syn_ex": i_ex, "I_syn_in": i_in,
                 "I_stim": inputs["current"] * 1.0, "refractory": r}, spike)


class IafPscDelta(_NoRecordInternals, PointNeuron):
    r"""NEST's ``iaf_psc_delta``: leaky integrate-and-fire whose input spikes make the membrane
    jump by their weight (mV), integrated exactly (NEST models/iaf_psc_delta.cpp).

    .. math::
        dV/dt = -(V - E_L)/\tau_m + (I_e + I_{stim})/C_m + \sum_k w_k \delta(t - t_k)

    Per step: unless refractory, V = P30 (I_stim + I_e) + P33 V + (sum of this step's weights),
    with P33 = e^{-h/tau_m}, P30 = tau_m/C_m (1 - P33); spikes read while refractory are
    dropped (``refractory_input`` = 0, NEST's default) or, with ``refractory_input`` = 1,
    summed with the weight e^{-r h/tau_m} (r: steps left) and added when the neuron leaves
    refractoriness; V is clipped at V_min; V >= V_th: spike and reset; I_stim := current.

    Units: mV, ms, pF, pA; weights mV. ``refractory_input`` is a flag (0 or 1).
    """

    name = "iaf_psc_delta"
    weight_unit = "mV"
    params = {"C_m": 250.0, "E_L": -70.0, "I_e": 0.0, "V_m": -70.0, "V_min": -sys.float_info.max,
              "V_reset": -70.0, "V_th": -55.0, "refractory_input": 0.0, "t_ref": 2.0,
              "tau_m": 10.0}
    units = {"C_m": "pF", "E_L": "mV", "I_e": "pA", "V_m": "mV", "V_min": "mV", "V_reset": "mV",
             "V_th": "mV", "refractory_input": "1", "t_ref": "ms", "tau_m": "ms", "I_stim": "pA",
             "refractory": "steps", "refractory_buffer": "mV"}
    ranges = {"C_m": POSITIVE, "tau_m": POSITIVE, "t_ref": NONNEGATIVE,
              "refractory_input": FLAG}
    states = ("V_m", "I_stim", "refractory", "refractory_buffer")
    record = ("V_m",)

    def initial(self, params, dt):
        v = _state(params, "V_m")
        z = _zeros(v)
        return {"V_m": v, "I_stim": z, "refractory": z, "refractory_buffer": z}

    def update(self, states, params, inputs, dt):
        h = dt
        p = params
        e_l = p["E_L"]
        p33 = jnp.exp(-h / p["tau_m"])
        p30 = 1 / p["C_m"] * (1 - p33) * p["tau_m"]
        counts = refractory_steps(p["t_ref"], dt)
        with_refr = _flag(p["refractory_input"])
        w = inputs["ex"] + inputs["in"]

        y3 = states["V_m"] - e_l
        r = states["refractory"]
        buf = states["refractory_buffer"]
        free = r == 0
        y3_free = p30 * (states["I_stim"] + p["I_e"]) + p33 * y3 + w
        use_buf = with_refr & (buf != 0.0)
        y3_free = jnp.where(use_buf, y3_free + buf, y3_free)
        lower = p["V_min"] - e_l
        y3_free = jnp.where(y3_free < lower, lower, y3_free)
        y3 = jnp.where(free, y3_free, y3)
        buf_refr = jnp.where(with_refr, buf + w * jnp.exp(-r * h / p["tau_m"]), buf)
        buf = jnp.where(free, jnp.where(use_buf, 0.0, buf), buf_refr)
        r = jnp.where(free, r, r - 1)
        spike = self.spike(y3 - (p["V_th"] - e_l))
        fired = _is(spike)
        r = jnp.where(fired, counts, r)
        y3 = jnp.where(fired, p["V_reset"] - e_l, y3)
        return ({"V_m": y3 + e_l, "I_stim": inputs["current"] * 1.0, "refractory": r,
                 "refractory_buffer": buf}, spike)


# -------------------------------------------------------------------------------------------
# GSL-integrated models (adaptive RKF45 inside each step)
# -------------------------------------------------------------------------------------------


class IafCondExp(_NoRecordInternals, PointNeuron):
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
        v = _state(params, "V_m")
        z = _zeros(v)
        return {"V_m": v, "g_ex": _state(params, "g_ex") + z, "g_in": _state(params, "g_in") + z,
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
            a_dydt=0.0)
        g_ex = g_ex + inputs["ex"]
        g_in = g_in - inputs["in"]
        v = jnp.where(refr, p["V_reset"], v)
        spike = _when(self.spike(v - p["V_th"]), ~refr)
        fired = _is(spike)
        r = jnp.where(refr, r - 1, jnp.where(fired, refractory_steps(p["t_ref"], dt), r))
        v = jnp.where(fired, p["V_reset"], v)
        return ({"V_m": v, "g_ex": g_ex, "g_in": g_in, "I_stim": inputs["current"] * 1.0,
                 "refractory": r, "h_int": h_int}, spike)


def beta_normalization(tau_rise, tau_decay):
    r"""The jump of dg/dt per unit weight that makes a dual-exponential conductance peak at
    1 nS per nS of weight (NEST's ``beta_normalization_factor``, libnestutil; Rotter &
    Diesmann 1999; Roth & van Rossum 2010).

    For dx/dt = -x/tau_decay, dg/dt = x - g/tau_rise and x(0) = c, g(0) = 0:
    g(t) = c / (1/tau_rise - 1/tau_decay) (e^{-t/tau_decay} - e^{-t/tau_rise}), with its
    peak at t* = tau_decay tau_rise ln(tau_decay/tau_rise) / (tau_decay - tau_rise), so
    c = (1/tau_rise - 1/tau_decay) / (e^{-t*/tau_decay} - e^{-t*/tau_rise}). Where the taus
    are equal (|tau_decay - tau_rise| or the peak difference below machine epsilon, as NEST
    tests it) the alpha function's e / tau_decay.
    """
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
    return jnp.where(alpha, _E / tau_decay, (1.0 / tau_rise - 1.0 / tau_decay) / peak_safe)


class _IafCondDual(_NoRecordInternals, PointNeuron):
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
        v = _state(params, "V_m")
        z = _zeros(v)
        return {"V_m": v, "dg_ex": _state(params, "dg_ex") + z, "g_ex": _state(params, "g_ex") + z,
                "dg_in": _state(params, "dg_in") + z, "g_in": _state(params, "g_in") + z,
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
                                   a_dydt=0.0)
        new = dict(zip(names, y))
        v = jnp.where(refr, p["V_reset"], new["V_m"])
        spike = _when(self.spike(v - p["V_th"]), ~refr)
        fired = _is(spike)
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
        return tau_ex, tau_ex, tau_in, tau_in, 1.0 * _E / tau_ex, 1.0 * _E / tau_in


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


class AeifCondExp(_NoRecordInternals, PointNeuron):
    r"""NEST's ``aeif_cond_exp``: adaptive exponential integrate-and-fire with exponentially
    decaying synaptic conductances (Brette & Gerstner 2005, J Neurophysiol 94:3637;
    NEST models/aeif_cond_exp.cpp).

    .. math::
        C_m dV/dt = -g_L (V - E_L) + g_L \Delta_T e^{(V - V_{th})/\Delta_T}
                    - g_{ex} (V - E_{ex}) - g_{in} (V - E_{in}) - w + I_e + I_{stim}

        \tau_w dw/dt = a (V - E_L) - w, \qquad dg_X/dt = -g_X/\tau_{syn,X}

    with V on the right-hand side clamped to min(V, V_peak) and, while refractory, V_reset with
    dV/dt = 0; the exponential term is 0 when Delta_T = 0. Per step, as NEST: GSL's adaptive
    RKF45 (error control on the derivative: D0 = tol |h dy/dt| + tol, tol = gsl_error_tol)
    integrates over the step; after *each* accepted sub-step, a refractory neuron is held at
    V_reset, and V >= V_peak (V_th when Delta_T = 0) fires: V = V_reset, w += b, refractory
    for t_ref steps (the count is set one higher as it drops once at the end of the step;
    0 when t_ref = 0, so the neuron can fire again within the step). Then the count drops,
    this step's weights are added to the conductances, I_stim := current.

    Units: mV, ms, pF, pA, nS; weights nS; a in nS, b in pA. The state "h_int" is the
    integrator's step (ms). With t_ref = 0 (the default) the neuron can fire more than once in
    a step, as NEST's (which sends one spike event each time): the returned spike flag says it
    fired at least once, the state "n_spikes" how often.
    """

    name = "aeif_cond_exp"
    weight_unit = "nS"
    params = {"C_m": 281.0, "Delta_T": 2.0, "E_L": -70.6, "E_ex": 0.0, "E_in": -85.0,
              "I_e": 0.0, "V_m": -70.6, "V_peak": 0.0, "V_reset": -60.0, "V_th": -50.4,
              "a": 4.0, "b": 80.5, "g_L": 30.0, "g_ex": 0.0, "g_in": 0.0, "gsl_error_tol": 1e-6,
              "t_ref": 0.0, "tau_syn_ex": 0.2, "tau_syn_in": 2.0, "tau_w": 144.0, "w": 0.0}
    units = {"C_m": "pF", "Delta_T": "mV", "E_L": "mV", "E_ex": "mV", "E_in": "mV", "I_e": "pA",
             "V_m": "mV", "V_peak": "mV", "V_reset": "mV", "V_th": "mV", "a": "nS", "b": "pA",
             "g_L": "nS", "g_ex": "nS", "g_in": "nS", "gsl_error_tol": "1", "t_ref": "ms",
             "tau_syn_ex": "ms", "tau_syn_in": "ms", "tau_w": "ms", "w": "pA", "I_stim": "pA",
             "refractory": "steps", "h_int": "ms", "n_spikes": "1"}
    ranges = {"C_m": POSITIVE, "Delta_T": NONNEGATIVE, "g_L": NONNEGATIVE,
              "gsl_error_tol": POSITIVE, "t_ref": NONNEGATIVE, "tau_syn_ex": POSITIVE,
              "tau_syn_in": POSITIVE, "tau_w": POSITIVE, "g_ex": NONNEGATIVE,
              "g_in": NONNEGATIVE}
    states = ("V_m", "g_ex", "g_in", "w", "I_stim", "refractory", "h_int", "n_spikes")
    record = ("V_m", "g_ex", "g_in", "w")

    def initial(self, params, dt):
        v = _state(params, "V_m")
        z = _zeros(v)
        return {"V_m": v, "g_ex": _state(params, "g_ex") + z, "g_in": _state(params, "g_in") + z,
                "w": _state(params, "w") + z, "I_stim": z, "refractory": z, "h_int": z + dt,
                "n_spikes": z}

    def update(self, states, params, inputs, dt):
        p = params
        i_stim = states["I_stim"]
        delta_t = p["Delta_T"]
        has_exp = delta_t != 0.0
        dt_safe = jnp.where(has_exp, delta_t, 1.0)
        v_peak = jnp.where(delta_t > 0.0, p["V_peak"], p["V_th"])
        counts = refractory_steps(p["t_ref"], dt)
        tol = p["gsl_error_tol"]

        def f(y, aux):
            v, g_ex, g_in, w = y
            refr = aux[0] > 0
            vc = jnp.where(refr, p["V_reset"], jnp.minimum(v, p["V_peak"]))
            i_syn_exc = g_ex * (vc - p["E_ex"])
            i_syn_inh = g_in * (vc - p["E_in"])
            i_spike = jnp.where(has_exp,
                                p["g_L"] * dt_safe * jnp.exp((vc - p["V_th"]) / dt_safe), 0.0)
            dv = jnp.where(refr, 0.0, (-p["g_L"] * (vc - p["E_L"]) + i_spike - i_syn_exc
                                       - i_syn_inh - w + p["I_e"] + i_stim) / p["C_m"])
            return (dv, -g_ex / p["tau_syn_ex"], -g_in / p["tau_syn_in"],
                    (p["a"] * (vc - p["E_L"]) - w) / p["tau_w"])

        def after(y, aux, accepted):
            v, g_ex, g_in, w = y
            r, fired = aux
            refr = accepted & (r > 0)
            v = jnp.where(refr, p["V_reset"], v)
            spike = accepted & ~(r > 0) & (v >= v_peak)
            v = jnp.where(spike, p["V_reset"], v)
            w = jnp.where(spike, w + p["b"], w)
            r = jnp.where(spike, jnp.where(counts > 0, counts + 1, 0.0), r)
            return (v, g_ex, g_in, w), (r, fired + jnp.where(spike, 1.0, 0.0))

        y = (states["V_m"], states["g_ex"], states["g_in"], states["w"])
        aux = (states["refractory"], _zeros(states["V_m"]))
        (v, g_ex, g_in, w), h_int, (r, fired) = rkf45_evolve(
            None, y, states["h_int"], dt, eps_abs=tol, eps_rel=tol, a_y=0.0, a_dydt=1.0,
            aux=aux, f_aux=f, after_substep=after)
        r = jnp.where(r > 0, r - 1, r)
        return ({"V_m": v, "g_ex": g_ex + inputs["ex"], "g_in": g_in - inputs["in"], "w": w,
                 "I_stim": inputs["current"] * 1.0, "refractory": r, "h_int": h_int,
                 "n_spikes": fired}, self.spike(fired - 0.5))


def _hh_rates(v):
    """hh_psc_alpha's rate functions (1/ms), as NEST writes them (V in mV)."""
    alpha_n = (0.01 * (v + 55.0)) / (1.0 - jnp.exp(-(v + 55.0) / 10.0))
    beta_n = 0.125 * jnp.exp(-(v + 65.0) / 80.0)
    alpha_m = (0.1 * (v + 40.0)) / (1.0 - jnp.exp(-(v + 40.0) / 10.0))
    beta_m = 4.0 * jnp.exp(-(v + 65.0) / 18.0)
    alpha_h = 0.07 * jnp.exp(-(v + 65.0) / 20.0)
    beta_h = 1.0 / (1.0 + jnp.exp(-(v + 35.0) / 10.0))
    return alpha_m, beta_m, alpha_h, beta_h, alpha_n, beta_n


def _hh_rest(v=-65.0):
    am = (0.1 * (v + 40.0)) / (1.0 - math.exp(-(v + 40.0) / 10.0))
    bm = 4.0 * math.exp(-(v + 65.0) / 18.0)
    ah = 0.07 * math.exp(-(v + 65.0) / 20.0)
    bh = 1.0 / (1.0 + math.exp(-(v + 35.0) / 10.0))
    an = (0.01 * (v + 55.0)) / (1.0 - math.exp(-(v + 55.0) / 10.0))
    bn = 0.125 * math.exp(-(v + 65.0) / 80.0)
    return am / (am + bm), ah / (ah + bh), an / (an + bn)


_M0, _H0, _N0 = _hh_rest()


class HhPscAlpha(_NoRecordInternals, PointNeuron):
    r"""NEST's ``hh_psc_alpha``: Hodgkin-Huxley point neuron (squid axon rates, Hodgkin &
    Huxley 1952, as in Gerstner & Kistler 2002) with alpha-shaped synaptic currents
    (NEST models/hh_psc_alpha.cpp).

    .. math::
        C_m dV/dt = -g_{Na} m^3 h (V - E_{Na}) - g_K n^4 (V - E_K) - g_L (V - E_L)
                    + I_{syn,ex} + I_{syn,in} + I_e + I_{stim}

        dx/dt = \alpha_x(V) (1 - x) - \beta_x(V) x, \quad x \in \{m, h, n\}

        dI_{syn,X}/dt = dI_X - I_{syn,X}/\tau_{syn,X}, \quad ddI_X/dt = -dI_X/\tau_{syn,X}

    Per step, as NEST: GSL's adaptive RKF45 (absolute error 1e-3, relative 0, step size carried
    over) integrates over the step; this step's weights are added to dI (w e / tau_syn; the
    inhibitory weights are negative); if refractory the count drops, else a spike is emitted
    when V >= 0 mV and V fell during the step (V_old > V: the peak has passed), which starts
    t_ref of refractoriness (spike detection only; the dynamics are not clamped);
    I_stim := current.

    Units: mV, ms, pF, pA, nS; weights pA. Initial gating values are NEST's: the steady state
    at -65 mV (also when V_m is set otherwise, as in NEST).
    """

    name = "hh_psc_alpha"
    params = {"Act_m": _M0, "Act_n": _N0, "C_m": 100.0, "E_K": -77.0, "E_L": -54.402,
              "E_Na": 50.0, "I_e": 0.0, "Inact_h": _H0, "V_m": -65.0, "g_K": 3600.0,
              "g_L": 30.0, "g_Na": 12000.0, "t_ref": 2.0, "tau_syn_ex": 0.2, "tau_syn_in": 2.0}
    units = {"Act_m": "1", "Act_n": "1", "C_m": "pF", "E_K": "mV", "E_L": "mV", "E_Na": "mV",
             "I_e": "pA", "Inact_h": "1", "V_m": "mV", "g_K": "nS", "g_L": "nS", "g_Na": "nS",
             "t_ref": "ms", "tau_syn_ex": "ms", "tau_syn_in": "ms", "I_syn_ex": "pA",
             "I_syn_in": "pA", "dI_syn_ex": "pA/ms", "dI_syn_in": "pA/ms", "I_stim": "pA",
             "refractory": "steps", "h_int": "ms"}
    ranges = {"C_m": POSITIVE, "g_K": NONNEGATIVE, "g_L": NONNEGATIVE, "g_Na": NONNEGATIVE,
              "t_ref": NONNEGATIVE, "tau_syn_ex": POSITIVE, "tau_syn_in": POSITIVE,
              "Act_m": Range(0.0, 1.0), "Act_n": Range(0.0, 1.0), "Inact_h": Range(0.0, 1.0)}
    states = ("V_m", "Act_m", "Inact_h", "Act_n", "dI_syn_ex", "I_syn_ex", "dI_syn_in",
              "I_syn_in", "I_stim", "refractory", "h_int")
    record = ("V_m", "Act_m", "Inact_h", "Act_n", "I_syn_ex", "I_syn_in")
    eps_abs, eps_rel = 1e-3, 0.0

    def initial(self, params, dt):
        v = _state(params, "V_m")
        z = _zeros(v)
        return {"V_m": v, "Act_m": _state(params, "Act_m") + z,
                "Inact_h": _state(params, "Inact_h") + z, "Act_n": _state(params, "Act_n") + z,
                "dI_syn_ex": z, "I_syn_ex": z, "dI_syn_in": z, "I_syn_in": z, "I_stim": z,
                "refractory": z, "h_int": z + dt}

    def update(self, states, params, inputs, dt):
        p = params
        i_stim = states["I_stim"]
        tau_ex, tau_in = p["tau_syn_ex"], p["tau_syn_in"]

        def f(y):
            v, m, hh, n, di_ex, i_ex, di_in, i_in = y
            alpha_m, beta_m, alpha_h, beta_h, alpha_n, beta_n = _hh_rates(v)
            i_na = p["g_Na"] * m * m * m * hh * (v - p["E_Na"])
            i_k = p["g_K"] * n * n * n * n * (v - p["E_K"])
            i_l = p["g_L"] * (v - p["E_L"])
            dv = (-(i_na + i_k + i_l) + i_stim + p["I_e"] + i_ex + i_in) / p["C_m"]
            return (dv, alpha_m * (1 - m) - beta_m * m, alpha_h * (1 - hh) - beta_h * hh,
                    alpha_n * (1 - n) - beta_n * n, -di_ex / tau_ex, di_ex - (i_ex / tau_ex),
                    -di_in / tau_in, di_in - (i_in / tau_in))

        names = ("V_m", "Act_m", "Inact_h", "Act_n", "dI_syn_ex", "I_syn_ex", "dI_syn_in",
                 "I_syn_in")
        u_old = states["V_m"]
        y, h_int, _ = rkf45_evolve(f, tuple(states[k] for k in names), states["h_int"], dt,
                                   eps_abs=self.eps_abs, eps_rel=self.eps_rel, a_y=1.0,
                                   a_dydt=0.0)
        new = dict(zip(names, y))
        new["dI_syn_ex"] = new["dI_syn_ex"] + inputs["ex"] * (1.0 * _E / tau_ex)
        new["dI_syn_in"] = new["dI_syn_in"] + inputs["in"] * (1.0 * _E / tau_in)
        r = states["refractory"]
        refr = r > 0
        v = new["V_m"]
        spike = _when(self.spike(v), ~refr & (u_old > v))
        new["refractory"] = jnp.where(refr, r - 1,
                                      jnp.where(_is(spike), refractory_steps(p["t_ref"], dt), r))
        new["I_stim"] = inputs["current"] * 1.0
        new["h_int"] = h_int
        return new, spike


# -------------------------------------------------------------------------------------------
# izhikevich
# -------------------------------------------------------------------------------------------


class Izhikevich(_NoRecordInternals, PointNeuron):
    r"""NEST's ``izhikevich`` (Izhikevich 2003, IEEE Trans Neural Netw 14:1569;
    NEST models/izhikevich.cpp).

    .. math::
        dV/dt = 0.04 V^2 + 5 V + 140 - U + I_e + I_{stim}, \qquad dU/dt = a (b V - U)

        V \ge V_{th}: \; V = c, \; U = U + d

    integrated by NEST's forward Euler: with ``consistent_integration`` = 1 (NEST's default)
    V += h (0.04 V^2 + 5 V + 140 - U + I + I_e) + (this step's weights), U += h a (b V - U),
    both from the old values; with 0, Izhikevich's published scheme (two half steps of V with
    the weights scaled by h/2 each, then U from the new V). V is clipped at V_min; I_stim :=
    current (read this step, used from the next).

    Units: V, U, c, d and V_th in mV, time in ms, a in 1/ms, b in 1/ms (as NEST labels them,
    the equation is dimensionless in these units); I_e and currents in pA enter dV/dt as
    mV/ms; weights in mV. ``consistent_integration`` is a flag (0 or 1).
    """

    name = "izhikevich"
    weight_unit = "mV"
    params = {"I_e": 0.0, "U_m": -13.0, "V_m": -65.0, "V_min": -sys.float_info.max, "V_th": 30.0,
              "a": 0.02, "b": 0.2, "c": -65.0, "consistent_integration": 1.0, "d": 8.0}
    units = {"I_e": "pA", "U_m": "mV", "V_m": "mV", "V_min": "mV", "V_th": "mV", "a": "1/ms",
             "b": "1/ms", "c": "mV", "consistent_integration": "1", "d": "mV", "I_stim": "pA"}
    ranges = {"consistent_integration": FLAG}
    states = ("V_m", "U_m", "I_stim")
    record = ("V_m", "U_m")

    def initial(self, params, dt):
        v = _state(params, "V_m")
        return {"V_m": v, "U_m": _state(params, "U_m") + _zeros(v), "I_stim": _zeros(v)}

    def update(self, states, params, inputs, dt):
        h = dt
        p = params
        v, u, i = states["V_m"], states["U_m"], states["I_stim"]
        i_syn = inputs["ex"] + inputs["in"]
        # consistent_integration = true
        v_c = v + (h * (0.04 * v * v + 5.0 * v + 140.0 - u + i + p["I_e"]) + i_syn)
        u_c = u + h * p["a"] * (p["b"] * v - u)
        # consistent_integration = false (Izhikevich's published scheme)
        v_i = v + h * 0.5 * (0.04 * v * v + 5.0 * v + 140.0 - u + i + p["I_e"] + i_syn)
        v_i = v_i + h * 0.5 * (0.04 * v_i * v_i + 5.0 * v_i + 140.0 - u + i + p["I_e"] + i_syn)
        u_i = u + h * p["a"] * (p["b"] * v_i - u)
        consistent = _flag(p["consistent_integration"])
        v = jnp.where(consistent, v_c, v_i)
        u = jnp.where(consistent, u_c, u_i)
        v = jnp.where(v < p["V_min"], p["V_min"], v)
        spike = self.spike(v - p["V_th"])
        fired = _is(spike)
        v = jnp.where(fired, p["c"], v)
        u = jnp.where(fired, u + p["d"], u)
        return {"V_m": v, "U_m": u, "I_stim": inputs["current"] * 1.0}, spike


# -------------------------------------------------------------------------------------------
# brainpy-style models (brainpy.state: LIF, ExpIF, ALIF)
# -------------------------------------------------------------------------------------------

_BRAINPY_NOTE = """
    Scheme (as brainpy.state): the spike of a step is V >= threshold at its end; the reset is
    applied at the *start* of the next step (so the recorded V of a spiking step is above
    threshold): soft (``soft_reset`` = 1, brainpy's default) V -= V_th - V_reset, hard (0)
    V = V_reset. The step is exponential Euler, y += h phi1(h A) f(y) with A = df/dy and
    phi1(z) = (e^z - 1)/z (exact for the linear models under a constant current). The current
    read this step (``inputs["current"]``, pA) acts in this step (brainpy's current inputs);
    spike weights (mV) are added to V after the step (brainpy's delta inputs).
"""


def _exp_euler(y, f, a, h):
    """y + h phi1(h a) f, with phi1(z) = expm1(z)/z (1 at z = 0)."""
    z = h * a
    small = z == 0.0
    phi1 = jnp.where(small, 1.0, jnp.expm1(z) / jnp.where(small, 1.0, z))
    return y + h * phi1 * f


def _reset(v, fired, p):
    soft = _flag(p["soft_reset"])
    return jnp.where(fired, jnp.where(soft, v - (p["V_th"] - p["V_reset"]), p["V_reset"]), v)


class LIF(_NoRecordInternals, PointNeuron):
    __doc__ = r"""Leaky integrate-and-fire in brainpy.state's form (``brainpy.state.LIF``):

    .. math::
        \tau dV/dt = -(V - V_{rest}) + R (I + I_e), \qquad V \ge V_{th}: \text{spike, reset}

    Exact for a current constant over the step: V += (V_rest + R I - V)(1 - e^{-h/tau}).
    For a constant current and hard reset the inter-spike interval is h ceil(T/h) with
    T = tau ln((R I + V_rest - V_reset)/(R I + V_rest - V_th)) (the closed-form LIF period).

    Units: mV, ms; R in GOhm (so R I is in mV for I in pA), currents pA, weights mV.
    Defaults are brainpy.state's (tau = 5 ms, V_th = 1 mV, V_reset = V_rest = 0, R = 1).
    """ + _BRAINPY_NOTE

    name = "LIF"
    weight_unit = "mV"
    params = {"V_rest": 0.0, "V_reset": 0.0, "V_th": 1.0, "tau": 5.0, "R": 1.0, "I_e": 0.0,
              "V_m": 0.0, "soft_reset": 1.0}
    units = {"V_rest": "mV", "V_reset": "mV", "V_th": "mV", "tau": "ms", "R": "GOhm",
             "I_e": "pA", "V_m": "mV", "soft_reset": "1"}
    ranges = {"tau": POSITIVE, "R": NONNEGATIVE, "soft_reset": FLAG}
    states = ("V_m",)
    record = ("V_m",)

    def initial(self, params, dt):
        return {"V_m": _state(params, "V_m")}

    def update(self, states, params, inputs, dt):
        p = params
        v = states["V_m"]
        v = _reset(v, v >= p["V_th"], p)
        v_inf = p["V_rest"] + p["R"] * (inputs["current"] + p["I_e"])
        v = _exp_euler(v, (v_inf - v) / p["tau"], -1.0 / p["tau"], dt)
        v = v + inputs["ex"] + inputs["in"]
        return {"V_m": v}, self.spike(v - p["V_th"])


class ExpIF(_NoRecordInternals, PointNeuron):
    __doc__ = r"""Exponential integrate-and-fire in brainpy.state's form (``brainpy.state.ExpIF``;
    Fourcaud-Trocme et al. 2003, J Neurosci 23:11628):

    .. math::
        \tau dV/dt = -(V - V_{rest}) + \Delta_T e^{(V - V_T)/\Delta_T} + R (I + I_e),
        \qquad V \ge V_{th}: \text{spike, reset}

    Exponential Euler linearises at the step's start: A = (e^{(V - V_T)/Delta_T} - 1)/tau.
    Two guards depart from brainpy.state, which overflows to nan at dt = 0.1 ms with its own
    defaults (h A reaches ~50 just below V_th): the exponential term is evaluated at
    min(V, V_th) (as NEST's aeif models clamp at V_peak), and the integrated V is capped at
    V_th (the spike; the soft reset then lands on V_reset instead of carrying the
    linearisation's overshoot). Below threshold the step is brainpy.state's.

    Units: mV, ms; R in GOhm (R I in mV for I in pA), currents pA, weights mV. Defaults are
    brainpy.state's (tau = 10 ms, V_rest = -65, V_reset = -68, V_th = -30, V_T = -59.9,
    delta_T = 3.48 mV, R = 1).
    """ + _BRAINPY_NOTE

    name = "ExpIF"
    weight_unit = "mV"
    params = {"V_rest": -65.0, "V_reset": -68.0, "V_th": -30.0, "V_T": -59.9, "delta_T": 3.48,
              "tau": 10.0, "R": 1.0, "I_e": 0.0, "V_m": -65.0, "soft_reset": 1.0}
    units = {"V_rest": "mV", "V_reset": "mV", "V_th": "mV", "V_T": "mV", "delta_T": "mV",
             "tau": "ms", "R": "GOhm", "I_e": "pA", "V_m": "mV", "soft_reset": "1"}
    ranges = {"tau": POSITIVE, "delta_T": POSITIVE, "R": NONNEGATIVE,
              "soft_reset": FLAG}
    states = ("V_m",)
    record = ("V_m",)

    def initial(self, params, dt):
        return {"V_m": _state(params, "V_m")}

    def update(self, states, params, inputs, dt):
        p = params
        v = states["V_m"]
        v = _reset(v, v >= p["V_th"], p)
        below = v < p["V_th"]
        ex = jnp.exp((jnp.minimum(v, p["V_th"]) - p["V_T"]) / p["delta_T"])
        f = (-(v - p["V_rest"]) + p["delta_T"] * ex
             + p["R"] * (inputs["current"] + p["I_e"])) / p["tau"]
        v = _exp_euler(v, f, (jnp.where(below, ex, 0.0) - 1.0) / p["tau"], dt)
        v = jnp.minimum(v, p["V_th"])  # the upswing is cut at the (numerical) threshold
        v = v + inputs["ex"] + inputs["in"]
        return {"V_m": v}, self.spike(v - p["V_th"])


class ALIF(_NoRecordInternals, PointNeuron):
    __doc__ = r"""Adaptive-threshold leaky integrate-and-fire in brainpy.state's form
    (``brainpy.state.ALIF``; e.g. Bellec et al. 2018):

    .. math::
        \tau dV/dt = -(V - V_{rest}) + R (I + I_e), \qquad \tau_a da/dt = -a

        V \ge V_{th} + \beta a: \text{spike; at the next step's start: reset, } a \mathrel{+}= 1

    Both equations are linear, so exponential Euler is exact: a *= e^{-h/tau_a}. The soft
    reset subtracts V_th - V_reset (the base threshold), as brainpy.state.

    Units: mV, ms; a dimensionless, beta in mV; R in GOhm; currents pA; weights mV. Defaults
    are brainpy.state's (tau = 5 ms, tau_a = 100 ms, V_th = 1 mV, V_reset = V_rest = 0,
    beta = 0.1 mV, R = 1).
    """ + _BRAINPY_NOTE

    name = "ALIF"
    weight_unit = "mV"
    params = {"V_rest": 0.0, "V_reset": 0.0, "V_th": 1.0, "tau": 5.0, "tau_a": 100.0,
              "beta": 0.1, "R": 1.0, "I_e": 0.0, "V_m": 0.0, "a": 0.0, "soft_reset": 1.0}
    units = {"V_rest": "mV", "V_reset": "mV", "V_th": "mV", "tau": "ms", "tau_a": "ms",
             "beta": "mV", "R": "GOhm", "I_e": "pA", "V_m": "mV", "a": "1", "soft_reset": "1"}
    ranges = {"tau": POSITIVE, "tau_a": POSITIVE, "R": NONNEGATIVE, "a": NONNEGATIVE,
              "soft_reset": FLAG}
    states = ("V_m", "a")
    record = ("V_m", "a")

    def initial(self, params, dt):
        v = _state(params, "V_m")
        return {"V_m": v, "a": _state(params, "a") + _zeros(v)}

    def update(self, states, params, inputs, dt):
        p = params
        v, a = states["V_m"], states["a"]
        fired = v >= p["V_th"] + p["beta"] * a
        v = _reset(v, fired, p)
        a = a + jnp.where(fired, 1.0, 0.0)
        v_inf = p["V_rest"] + p["R"] * (inputs["current"] + p["I_e"])
        v = _exp_euler(v, (v_inf - v) / p["tau"], -1.0 / p["tau"], dt)
        a = _exp_euler(a, -a / p["tau_a"], -1.0 / p["tau_a"], dt)
        v = v + inputs["ex"] + inputs["in"]
        return {"V_m": v, "a": a}, self.spike(v - (p["V_th"] + p["beta"] * a))


# -------------------------------------------------------------------------------------------
# conductance-based LIF with AMPA, NMDA (Mg block) and GABA_A receptors (brainpy-style)
# -------------------------------------------------------------------------------------------


def mg_block(v, mg=1.0, gamma=0.062, k=3.57):
    r"""The fraction of NMDA receptor channels not blocked by extracellular Mg2+ at membrane
    potential v (mV) (Jahr & Stevens 1990, J Neurosci 10:3178):

    .. math:: B(V) = 1 / (1 + [Mg^{2+}]\, e^{-\gamma V} / K)

    with [Mg2+] = ``mg`` (mM), gamma = 0.062 /mV and K = 3.57 mM (their fit). B = 1 without Mg;
    with 1 mM it is 0.5 at V = ln([Mg]/K)/gamma = -20.5 mV and 0.044 at -70 mV.
    """
    return 1.0 / (1.0 + mg * jnp.exp(-gamma * v) / k)


class LifAmpaNmda(_NoRecordInternals, PointNeuron):
    r"""Leaky integrate-and-fire with AMPA, NMDA and GABA_A receptor conductances, in the form
    of the cortical network models of Brunel & Wang 2001 (J Comput Neurosci 11:63) and Wang
    2002 (Neuron 36:955), the receptors as brainpy's synapse models (``AMPA``, ``NMDA`` with
    ``MgBlock``, ``GABAa``) with the NMDA gating dual-exponential (linear, not saturating):

    .. math::
        C_m dV/dt = -g_L (V - E_L) - g_{AMPA} (V - E_{AMPA})
                    - g_{NMDA} B(V) (V - E_{NMDA}) - g_{GABA_A} (V - E_{GABA_A}) + I_e + I

        dg_{AMPA}/dt = -g_{AMPA}/\tau_{AMPA}, \qquad dg_{GABA_A}/dt = -g_{GABA_A}/\tau_{GABA_A}

        dx_{NMDA}/dt = -x_{NMDA}/\tau_{decay,NMDA}, \qquad
        dg_{NMDA}/dt = x_{NMDA} - g_{NMDA}/\tau_{rise,NMDA}

        B(V) = 1 / (1 + [Mg] e^{-\gamma_{Mg} V} / K_{Mg})  \quad (``mg_block``)

    An excitatory spike (weight w > 0, nS) adds w to g_AMPA (an exponential conductance of
    peak w) and ``NMDA_ratio`` w c to x_NMDA, c = ``beta_normalization(tau_rise_NMDA,
    tau_decay_NMDA)``, so that g_NMDA(t) = NMDA_ratio w c (e^{-t/tau_decay} - e^{-t/tau_rise})
    / (1/tau_rise - 1/tau_decay) peaks at NMDA_ratio w (before the block; the alpha function
    when the taus are equal); an inhibitory one (w < 0) adds |w| to g_GABA_A.

    Per step, from t to t + h:

    1. the receptors: the conductances advance exactly over the step (g e^{-h/tau}; the NMDA
       pair with its 2x2 propagator, g_NMDA e^{-h/tau_rise} + x_NMDA P with
       P = (e^{-h/tau_decay} - e^{-h/tau_rise}) / (1/tau_rise - 1/tau_decay)), then this
       step's weights are added: a spike read in the step acts within it (as brainpy, whose
       synapses update before the neuron), so the state at t + h holds the jump;
    2. the membrane, unless refractory: one exponential (Rosenbrock-)Euler step
       V += h phi1(h A) f(V), phi1(z) = (e^z - 1)/z, with f the right-hand side above and
       A = df/dV at the step's start (including the block's slope, dB/dV = gamma B (1 - B)),
       the conductances of 1. and the current read in this step (``inputs["current"]``, pA:
       it acts in this step, as in the brainpy-style LIF models) held over the step. Exact
       for constant conductances without Mg (the closed-form relaxation to
       V_inf = sum g E / sum g with time constant C_m / sum g), second order in h for
       constant conductances with the block (exponential Rosenbrock-Euler; Hochbruck,
       Ostermann & Schweitzer 2009, SIAM J Numer Anal 47:786), first order for conductances
       that change within the step (they are held at their end-of-step values, as brainpy's
       order does; ~0.01 mV at h = 0.1 ms after a 5 nS input, halving with h);
       while refractory V = V_reset and the count drops;
    3. the threshold (``PointNeuron.spike``): V >= V_th (not refractory): spike at t + h,
       V = V_reset at once and refractory for t_ref (NEST's step count) -- the reset and
       refractoriness of NEST's conductance-based LIF models (iaf_cond_exp), not the deferred
       soft reset of the brainpy-style LIF, so V never shows above threshold and is held at
       V_reset as in Brunel & Wang 2001.

    Defaults: the membrane of Brunel & Wang 2001's pyramidal cells (C_m = 0.5 nF, g_L = 25 nS,
    E_L = -70, V_th = -50, V_reset = -55 mV, t_ref = 2 ms); AMPA tau 2 ms, E 0 mV; NMDA rise
    2 ms, decay 100 ms, E 0 mV, [Mg] 1 mM, Jahr & Stevens' gamma = 0.062 /mV and K = 3.57 mM;
    GABA_A tau 10 ms, E -80 mV; NMDA_ratio (peak NMDA / peak AMPA conductance per weight,
    unblocked) 1. Mg = 0 removes the block (B = 1, an ohmic NMDA conductance).

    Units: mV, ms, pF, pA, nS, mM; gamma_Mg in 1/mV; x_NMDA in nS/ms; weights nS.
    Recordables: V_m, g_AMPA, g_NMDA (unblocked; the current is g_NMDA B(V) (V - E_NMDA)),
    g_GABA_A. Everything is differentiable in reverse mode (no adaptive loop); the threshold
    through the population's surrogate, the reset not.
    """

    name = "LIF_AMPA_NMDA"
    weight_unit = "nS"
    params = {"C_m": 500.0, "g_L": 25.0, "E_L": -70.0, "V_th": -50.0, "V_reset": -55.0,
              "t_ref": 2.0, "I_e": 0.0, "V_m": -70.0,
              "tau_AMPA": 2.0, "E_AMPA": 0.0,
              "tau_rise_NMDA": 2.0, "tau_decay_NMDA": 100.0, "E_NMDA": 0.0, "NMDA_ratio": 1.0,
              "Mg": 1.0, "gamma_Mg": 0.062, "K_Mg": 3.57,
              "tau_GABA_A": 10.0, "E_GABA_A": -80.0,
              "g_AMPA": 0.0, "x_NMDA": 0.0, "g_NMDA": 0.0, "g_GABA_A": 0.0}
    units = {"C_m": "pF", "g_L": "nS", "E_L": "mV", "V_th": "mV", "V_reset": "mV", "t_ref": "ms",
             "I_e": "pA", "V_m": "mV", "tau_AMPA": "ms", "E_AMPA": "mV", "tau_rise_NMDA": "ms",
             "tau_decay_NMDA": "ms", "E_NMDA": "mV", "NMDA_ratio": "1", "Mg": "mM",
             "gamma_Mg": "1/mV", "K_Mg": "mM", "tau_GABA_A": "ms", "E_GABA_A": "mV",
             "g_AMPA": "nS", "x_NMDA": "nS/ms", "g_NMDA": "nS", "g_GABA_A": "nS",
             "refractory": "steps"}
    ranges = {"C_m": POSITIVE, "g_L": NONNEGATIVE, "t_ref": NONNEGATIVE, "tau_AMPA": POSITIVE,
              "tau_rise_NMDA": POSITIVE, "tau_decay_NMDA": POSITIVE, "NMDA_ratio": NONNEGATIVE,
              "Mg": NONNEGATIVE, "K_Mg": POSITIVE, "tau_GABA_A": POSITIVE,
              "g_AMPA": NONNEGATIVE, "g_NMDA": NONNEGATIVE, "g_GABA_A": NONNEGATIVE,
              "x_NMDA": NONNEGATIVE}
    states = ("V_m", "g_AMPA", "x_NMDA", "g_NMDA", "g_GABA_A", "refractory")
    record = ("V_m", "g_AMPA", "g_NMDA", "g_GABA_A")

    def initial(self, params, dt):
        v = _state(params, "V_m")
        z = _zeros(v)
        return {"V_m": v, "g_AMPA": _state(params, "g_AMPA") + z,
                "x_NMDA": _state(params, "x_NMDA") + z, "g_NMDA": _state(params, "g_NMDA") + z,
                "g_GABA_A": _state(params, "g_GABA_A") + z, "refractory": z}

    def update(self, states, params, inputs, dt):
        h = dt
        p = params
        tau_r, tau_d = p["tau_rise_NMDA"], p["tau_decay_NMDA"]
        # 1. receptors: exact over the step, then this step's spikes
        w_ex, w_in = inputs["ex"], -inputs["in"]
        g_a = states["g_AMPA"] * jnp.exp(-h / p["tau_AMPA"]) + w_ex
        g_g = states["g_GABA_A"] * jnp.exp(-h / p["tau_GABA_A"]) + w_in
        x = states["x_NMDA"]
        g_n = states["g_NMDA"] * jnp.exp(-h / tau_r) + x * psc_exp_p21(tau_r, tau_d, 1.0, h)
        x = x * jnp.exp(-h / tau_d) + p["NMDA_ratio"] * w_ex * beta_normalization(tau_r, tau_d)

        # 2. membrane: exponential Rosenbrock-Euler with the conductances of this step
        v = states["V_m"]
        b = mg_block(v, p["Mg"], p["gamma_Mg"], p["K_Mg"])
        drive_n = v - p["E_NMDA"]
        f = (-p["g_L"] * (v - p["E_L"]) - g_a * (v - p["E_AMPA"]) - g_n * b * drive_n
             - g_g * (v - p["E_GABA_A"]) + p["I_e"] + inputs["current"]) / p["C_m"]
        slope = -(p["g_L"] + g_a + g_g
                  + g_n * (b + p["gamma_Mg"] * b * (1.0 - b) * drive_n)) / p["C_m"]
        r = states["refractory"]
        refr = r > 0
        v = jnp.where(refr, p["V_reset"], _exp_euler(v, f, slope, h))
        r = jnp.where(refr, r - 1, r)

        # 3. threshold, reset, refractoriness
        spike = _when(self.spike(v - p["V_th"]), ~refr)
        fired = _is(spike)
        r = jnp.where(fired, refractory_steps(p["t_ref"], dt), r)
        v = jnp.where(fired, p["V_reset"], v)
        return ({"V_m": v, "g_AMPA": g_a, "x_NMDA": x, "g_NMDA": g_n, "g_GABA_A": g_g,
                 "refractory": r}, spike)


MODELS: dict[str, type[PointNeuron]] = {
    cls.name: cls for cls in (IafPscAlpha, IafPscExp, IafPscDelta, IafCondExp, IafCondAlpha,
                              IafCondBeta, AeifCondExp, HhPscAlpha, Izhikevich, LIF, ExpIF, ALIF,
                              LifAmpaNmda)}

__all__ = ["IafPscAlpha", "IafPscExp", "IafPscDelta", "IafCondExp", "IafCondAlpha", "IafCondBeta",
           "AeifCondExp", "HhPscAlpha", "Izhikevich", "LIF", "ExpIF", "ALIF", "LifAmpaNmda",
           "MODELS", "beta_normalization", "mg_block"]
