"""Graded synapses: the current is a smooth function of the presynaptic voltage.

Jaxley's two graded synapse kinetics, in NEURON's point-process units (uS, nA,
mV, ms). Neither has a threshold, so gradients flow through the presynaptic
voltage as well as through every parameter.
"""

from __future__ import annotations

import jax.numpy as jnp

from .base import NONNEGATIVE, POSITIVE, GradedSynapse


class IonotropicSynapse(GradedSynapse):
    """Jaxley's IonotropicSynapse (Abbott and Marder 1998): an open fraction s relaxing to
    s_bar = 1 / (1 + exp((v_th - v_pre) / delta)) with time constant (1 - s_bar) / k_minus;
    current gS s (v - e_syn)."""

    name = "IonotropicSynapse"
    params = {"gS": 1e-4, "e_syn": 0.0, "k_minus": 0.025, "v_th": -35.0, "delta": 10.0}
    units = {"gS": "uS", "e_syn": "mV", "k_minus": "1/ms", "v_th": "mV", "delta": "mV"}
    ranges = {"gS": NONNEGATIVE, "k_minus": POSITIVE, "delta": POSITIVE}
    states = {"s": 0.2}

    def rates(self, v_pre, params, env):
        s_bar = 1.0 / (1.0 + jnp.exp((params["v_th"] - v_pre) / params["delta"]))
        return {"s": (s_bar, (1.0 - s_bar) / params["k_minus"])}

    def steady_state(self, v_pre, params, env):
        # Jaxley starts every synapse at s = 0.2 (its default state)
        return {"s": jnp.full(jnp.shape(v_pre), 0.2, dtype=jnp.result_type(v_pre))}

    def current(self, v, v_pre, states, params):
        return params["gS"] * states["s"] * (v - params["e_syn"])


class TanhRateSynapse(GradedSynapse):
    """Jaxley's TanhRateSynapse: an input current gS tanh(slope (v_pre - x_offset)) (nA, inward
    positive, so it depolarises the postsynaptic cell for gS > 0); no states."""

    name = "TanhRateSynapse"
    params = {"gS": 1e-4, "x_offset": -70.0, "slope": 1.0}
    units = {"gS": "nA", "x_offset": "mV", "slope": "1/mV"}

    def current(self, v, v_pre, states, params):
        return -params["gS"] * jnp.tanh((v_pre - params["x_offset"]) * params["slope"])


class GapJunction(GradedSynapse):
    """One half of an electrical synapse (NEURON's half-gap point process, ``i = g (v -
    vgap)``): a current g (v - v_pre) (nA, outward positive) through a conductance g (uS)
    between this site and the presynaptic one. ``Network.gap_junction(a, b, g=...)``
    places both halves; as NEURON's gap junctions it is implicit in the site's own
    voltage and takes the other side's voltage at the start of each step."""

    name = "GapJunction"
    params = {"g": 1e-3}
    units = {"g": "uS"}
    ranges = {"g": NONNEGATIVE}

    def current(self, v, v_pre, states, params):
        return params["g"] * (v - v_pre)
