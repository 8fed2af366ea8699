"""NEST's ``hh_psc_alpha`` (Hodgkin-Huxley point neuron with alpha-shaped currents),
integrated by RKF45 as NEST's GSL solver (conventions: ``dendrax.point.models``)."""

from __future__ import annotations

import math

import jax.numpy as jnp

from ...ranges import NONNEGATIVE, POSITIVE, Range
from ..base import PointNeuron
from ..propagators import refractory_steps, rkf45_evolve
from .common import E, NoRecordInternals, is_spike, state, when, zeros


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


class HhPscAlpha(NoRecordInternals, PointNeuron):
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
        v = state(params, "V_m")
        z = zeros(v)
        return {"V_m": v, "Act_m": state(params, "Act_m") + z,
                "Inact_h": state(params, "Inact_h") + z, "Act_n": state(params, "Act_n") + z,
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
                                   a_dydt=0.0, model=self.name)
        new = dict(zip(names, y))
        new["dI_syn_ex"] = new["dI_syn_ex"] + inputs["ex"] * (1.0 * E / tau_ex)
        new["dI_syn_in"] = new["dI_syn_in"] + inputs["in"] * (1.0 * E / tau_in)
        r = states["refractory"]
        refr = r > 0
        v = new["V_m"]
        spike = when(self.spike(v), ~refr & (u_old > v))
        new["refractory"] = jnp.where(refr, r - 1,
                                      jnp.where(is_spike(spike), refractory_steps(p["t_ref"], dt), r))
        new["I_stim"] = inputs["current"] * 1.0
        new["h_int"] = h_int
        return new, spike
