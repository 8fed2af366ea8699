"""NEST's current-based integrate-and-fire models with exact integration: iaf_psc_alpha,
iaf_psc_exp, iaf_psc_delta (conventions: ``dendrax.point.models``)."""

from __future__ import annotations

import math
import sys

import jax.numpy as jnp

from ...ranges import FLAG, NONNEGATIVE, POSITIVE
from ..base import PointNeuron
from ..propagators import psc_alpha_p31_p32, psc_exp_p21, refractory_steps
from .common import E, NoRecordInternals, flag, is_spike, state, zeros


class IafPscAlpha(NoRecordInternals, PointNeuron):
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
        v = state(params, "V_m")
        z = zeros(v)
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
        epsc0 = 1.0 * E / tau_ex
        ipsc0 = 1.0 * E / tau_in
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
        fired = is_spike(spike)
        r = jnp.where(fired, counts, r)
        y3 = jnp.where(fired, v_reset, y3)
        return ({"V_m": y3 + e_l, "I_syn_ex": i_ex, "I_syn_in": i_in, "dI_syn_ex": di_ex,
                 "dI_syn_in": di_in, "I_stim": inputs["current"] * 1.0, "refractory": r}, spike)


class IafPscExp(NoRecordInternals, PointNeuron):
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
        v = state(params, "V_m")
        z = zeros(v)
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
        fired = is_spike(spike)
        r = jnp.where(fired, counts, r)
        v = jnp.where(fired, p["V_reset"] - e_l, v)
        return ({"V_m": v + e_l, "I_syn_ex": i_ex, "I_syn_in": i_in,
                 "I_stim": inputs["current"] * 1.0, "refractory": r}, spike)


class IafPscDelta(NoRecordInternals, PointNeuron):
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
        v = state(params, "V_m")
        z = zeros(v)
        return {"V_m": v, "I_stim": z, "refractory": z, "refractory_buffer": z}

    def update(self, states, params, inputs, dt):
        h = dt
        p = params
        e_l = p["E_L"]
        p33 = jnp.exp(-h / p["tau_m"])
        p30 = 1 / p["C_m"] * (1 - p33) * p["tau_m"]
        counts = refractory_steps(p["t_ref"], dt)
        with_refr = flag(p["refractory_input"])
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
        fired = is_spike(spike)
        r = jnp.where(fired, counts, r)
        y3 = jnp.where(fired, p["V_reset"] - e_l, y3)
        return ({"V_m": y3 + e_l, "I_stim": inputs["current"] * 1.0, "refractory": r,
                 "refractory_buffer": buf}, spike)
