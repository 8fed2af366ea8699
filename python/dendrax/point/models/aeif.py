"""NEST's ``aeif_cond_exp`` (adaptive exponential integrate-and-fire), integrated by RKF45
as NEST's GSL solver (conventions: ``dendrax.point.models``)."""

from __future__ import annotations


import jax.numpy as jnp

from ...ranges import NONNEGATIVE, POSITIVE
from ..base import PointNeuron
from ..propagators import refractory_steps, rkf45_evolve
from .common import NoRecordInternals, state, zeros


class AeifCondExp(NoRecordInternals, PointNeuron):
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
    fired at least once, the state "n_spikes" how often (``spike_count``), and a network
    delivers and records every one of those spikes, as NEST does.
    """

    name = "aeif_cond_exp"
    weight_unit = "nS"
    spike_count = "n_spikes"
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
        v = state(params, "V_m")
        z = zeros(v)
        return {"V_m": v, "g_ex": state(params, "g_ex") + z, "g_in": state(params, "g_in") + z,
                "w": state(params, "w") + z, "I_stim": z, "refractory": z, "h_int": z + dt,
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
        aux = (states["refractory"], zeros(states["V_m"]))
        (v, g_ex, g_in, w), h_int, (r, fired) = rkf45_evolve(
            None, y, states["h_int"], dt, eps_abs=tol, eps_rel=tol, a_y=0.0, a_dydt=1.0,
            aux=aux, f_aux=f, after_substep=after)
        r = jnp.where(r > 0, r - 1, r)
        # NEST throws NumericalInstability where V_m < -1e3 mV or |w| > 1e6 pA; a run cannot
        # raise here, so it goes NaN from there (simulate warns where a run turns non-finite;
        # it ran on to -1.9e5 mV)
        unstable = (v < -1e3) | (jnp.abs(w) > 1e6)
        v, w = jnp.where(unstable, jnp.nan, v), jnp.where(unstable, jnp.nan, w)
        return ({"V_m": v, "g_ex": g_ex + inputs["ex"], "g_in": g_in - inputs["in"], "w": w,
                 "I_stim": inputs["current"] * 1.0, "refractory": r, "h_int": h_int,
                 "n_spikes": fired}, self.spike(fired - 0.5))
