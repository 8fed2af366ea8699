"""A double-exponential conductance synapse, as NEURON's built-in Exp2Syn.

The conductance g = B - A rises with tau1 and decays with tau2 (ms):

    dA/dt = -A / tau1,   dB/dt = -B / tau2,   i = (B - A) (v - e)   (nA, uS, mV)

and a presynaptic spike of weight w (uS) adds w * factor to both A and B, with
factor chosen so that a single spike gives a conductance peaking at w:
tp = tau1 tau2 / (tau2 - tau1) ln(tau2 / tau1), factor = 1 / (exp(-tp/tau2) - exp(-tp/tau1)).
As NEURON, tau1 is kept within [1e-9, 0.9999] * tau2 (tau1 -> tau2 is the alpha
function limit, where the factor's formula degenerates), and the factor is computed at
the start of the run and kept (a run resumed with other taus scales its events by the
factor of the start, as NEURON's Exp2Syn after finitialize).
"""

from __future__ import annotations

import jax.numpy as jnp

from .base import POSITIVE, Synapse


def _tau1(params):
    """tau1 limited as NEURON's Exp2Syn INITIAL does: 1e-9 tau2 <= tau1 <= 0.9999 tau2."""
    tau2 = params["tau2"]
    return jnp.clip(params["tau1"], 1e-9 * tau2, 0.9999 * tau2)


def peak_factor(tau1, tau2):
    """The factor making the peak of B - A equal to the spike's weight."""
    tp = tau1 * tau2 / (tau2 - tau1) * jnp.log(tau2 / tau1)
    return 1.0 / (jnp.exp(-tp / tau2) - jnp.exp(-tp / tau1))


class Exp2Syn(Synapse):
    """Double-exponential synapse (NEURON's Exp2Syn): rise tau1, decay tau2, reversal e."""

    name = "Exp2Syn"
    params = {"tau1": 0.1, "tau2": 10.0, "e": 0.0}
    units = {"tau1": "ms", "tau2": "ms", "e": "mV", "A": "uS", "B": "uS", "factor": "1"}
    ranges = {"tau1": POSITIVE, "tau2": POSITIVE}
    states = {"A": 0.0, "B": 0.0, "factor": 0.0}  # factor: set at the start, then kept

    def steady_state(self, v, params, env):
        zero = jnp.zeros(jnp.shape(v), dtype=jnp.result_type(v))
        return {"A": zero, "B": zero,
                "factor": zero + peak_factor(_tau1(params), params["tau2"])}

    def advance(self, v, states, params, env, dt):
        return {"A": states["A"] * jnp.exp(-dt / _tau1(params)),
                "B": states["B"] * jnp.exp(-dt / params["tau2"]), "factor": states["factor"]}

    def on_spike(self, states, params, weight):
        # weight is 0 in steps without a spike: adding 0 leaves A and B unchanged
        jump = weight * states["factor"]
        return {"A": states["A"] + jump, "B": states["B"] + jump, "factor": states["factor"]}

    def current(self, v, states, params):
        return (states["B"] - states["A"]) * (v - params["e"])
