"""NEST's ``izhikevich`` (conventions: ``dendrax.point.models``)."""

from __future__ import annotations

import sys

import jax.numpy as jnp

from ...ranges import FLAG
from ..base import PointNeuron
from .common import NoRecordInternals, flag, is_spike, state, zeros


class Izhikevich(NoRecordInternals, PointNeuron):
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
        v = state(params, "V_m")
        return {"V_m": v, "U_m": state(params, "U_m") + zeros(v), "I_stim": zeros(v)}

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
        consistent = flag(p["consistent_integration"])
        v = jnp.where(consistent, v_c, v_i)
        u = jnp.where(consistent, u_c, u_i)
        v = jnp.where(v < p["V_min"], p["V_min"], v)
        spike = self.spike(v - p["V_th"])
        fired = is_spike(spike)
        v = jnp.where(fired, p["c"], v)
        u = jnp.where(fired, u + p["d"], u)
        return {"V_m": v, "U_m": u, "I_stim": inputs["current"] * 1.0}, spike
