"""brainpy.state-style LIF, ExpIF and ALIF (conventions: ``dendrax.point.models``)."""

from __future__ import annotations


import jax.numpy as jnp

from ...ranges import FLAG, NONNEGATIVE, POSITIVE
from ..base import PointNeuron
from .common import NoRecordInternals, exp_euler, flag, state, zeros


_BRAINPY_NOTE = """
    Scheme (as brainpy.state): the spike of a step is V >= threshold at its end; the reset is
    applied at the *start* of the next step (so the recorded V of a spiking step is above
    threshold): soft (``soft_reset`` = 1, brainpy's default) V -= V_th - V_reset, hard (0)
    V = V_reset. The step is exponential Euler, y += h phi1(h A) f(y) with A = df/dy and
    phi1(z) = (e^z - 1)/z (exact for the linear models under a constant current). The current
    read this step (``inputs["current"]``, pA) acts in this step (brainpy's current inputs);
    spike weights (mV) are added to V after the step (brainpy's delta inputs).
"""


def reset_after_spike(v, fired, p):
    soft = flag(p["soft_reset"])
    return jnp.where(fired, jnp.where(soft, v - (p["V_th"] - p["V_reset"]), p["V_reset"]), v)


class LIF(NoRecordInternals, PointNeuron):
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
        return {"V_m": state(params, "V_m")}

    def update(self, states, params, inputs, dt):
        p = params
        v = states["V_m"]
        v = reset_after_spike(v, v >= p["V_th"], p)
        v_inf = p["V_rest"] + p["R"] * (inputs["current"] + p["I_e"])
        v = exp_euler(v, (v_inf - v) / p["tau"], -1.0 / p["tau"], dt)
        v = v + inputs["ex"] + inputs["in"]
        return {"V_m": v}, self.spike(v - p["V_th"])


class ExpIF(NoRecordInternals, PointNeuron):
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
        return {"V_m": state(params, "V_m")}

    def update(self, states, params, inputs, dt):
        p = params
        v = states["V_m"]
        v = reset_after_spike(v, v >= p["V_th"], p)
        below = v < p["V_th"]
        ex = jnp.exp((jnp.minimum(v, p["V_th"]) - p["V_T"]) / p["delta_T"])
        f = (-(v - p["V_rest"]) + p["delta_T"] * ex
             + p["R"] * (inputs["current"] + p["I_e"])) / p["tau"]
        v = exp_euler(v, f, (jnp.where(below, ex, 0.0) - 1.0) / p["tau"], dt)
        v = jnp.minimum(v, p["V_th"])  # the upswing is cut at the (numerical) threshold
        v = v + inputs["ex"] + inputs["in"]
        return {"V_m": v}, self.spike(v - p["V_th"])


class ALIF(NoRecordInternals, PointNeuron):
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
        v = state(params, "V_m")
        return {"V_m": v, "a": state(params, "a") + zeros(v)}

    def update(self, states, params, inputs, dt):
        p = params
        v, a = states["V_m"], states["a"]
        fired = v >= p["V_th"] + p["beta"] * a
        v = reset_after_spike(v, fired, p)
        a = a + jnp.where(fired, 1.0, 0.0)
        v_inf = p["V_rest"] + p["R"] * (inputs["current"] + p["I_e"])
        v = exp_euler(v, (v_inf - v) / p["tau"], -1.0 / p["tau"], dt)
        a = exp_euler(a, -a / p["tau_a"], -1.0 / p["tau_a"], dt)
        v = v + inputs["ex"] + inputs["in"]
        return {"V_m": v, "a": a}, self.spike(v - (p["V_th"] + p["beta"] * a))
