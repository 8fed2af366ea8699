"""A conductance-based LIF with AMPA, NMDA (Mg block) and GABA_A receptors, brainpy-style
(``LIF_AMPA_NMDA``; conventions: ``dendrax.point.models``)."""

from __future__ import annotations


import jax.numpy as jnp

from ...ranges import NONNEGATIVE, POSITIVE
from ..base import PointNeuron
from ..propagators import psc_exp_p21, refractory_steps
from .iaf_cond import beta_peak_factor
from .common import NoRecordInternals, exp_euler, is_spike, state, when, zeros


def mg_block(v, mg=1.0, gamma=0.062, k=3.57):
    r"""The fraction of NMDA receptor channels not blocked by extracellular Mg2+ at membrane
    potential v (mV) (Jahr & Stevens 1990, J Neurosci 10:3178):

    .. math:: B(V) = 1 / (1 + [Mg^{2+}]\, e^{-\gamma V} / K)

    with [Mg2+] = ``mg`` (mM), gamma = 0.062 /mV and K = 3.57 mM (their fit). B = 1 without Mg;
    with 1 mM it is 0.5 at V = ln([Mg]/K)/gamma = -20.5 mV and 0.044 at -70 mV.
    """
    return 1.0 / (1.0 + mg * jnp.exp(-gamma * v) / k)


class LifAmpaNmda(NoRecordInternals, PointNeuron):
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
    peak w) and ``NMDA_ratio`` w c to x_NMDA, c = ``beta_peak_factor(tau_rise_NMDA,
    tau_decay_NMDA)`` (NEST's beta normalisation, written smooth through equal taus), so
    that g_NMDA(t) = NMDA_ratio w c (e^{-t/tau_decay} - e^{-t/tau_rise}) / (1/tau_rise -
    1/tau_decay) peaks at NMDA_ratio w (before the block; the alpha function when the taus
    are equal, with values and gradients continuous through equality); an inhibitory one
    (w < 0) adds |w| to g_GABA_A.

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
        v = state(params, "V_m")
        z = zeros(v)
        return {"V_m": v, "g_AMPA": state(params, "g_AMPA") + z,
                "x_NMDA": state(params, "x_NMDA") + z, "g_NMDA": state(params, "g_NMDA") + z,
                "g_GABA_A": state(params, "g_GABA_A") + z, "refractory": z}

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
        x = x * jnp.exp(-h / tau_d) + p["NMDA_ratio"] * w_ex * beta_peak_factor(tau_r, tau_d)

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
        v = jnp.where(refr, p["V_reset"], exp_euler(v, f, slope, h))
        r = jnp.where(refr, r - 1, r)

        # 3. threshold, reset, refractoriness
        spike = when(self.spike(v - p["V_th"]), ~refr)
        fired = is_spike(spike)
        r = jnp.where(fired, refractory_steps(p["t_ref"], dt), r)
        v = jnp.where(fired, p["V_reset"], v)
        return ({"V_m": v, "g_AMPA": g_a, "x_NMDA": x, "g_NMDA": g_n, "g_GABA_A": g_g,
                 "refractory": r}, spike)
