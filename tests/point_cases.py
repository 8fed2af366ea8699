"""A point model for tests of point populations in networks (test_point_network.py,
test_point_refusals.py): it counts the weights it receives."""

import jax.numpy as jnp

from dendrax.point import PointNeuron

DT = 0.1


class Counter(PointNeuron):
    """A test model: V_m adds the weights it receives (no leak); it spikes (and resets to 0)
    when V_m >= V_th; ``I`` integrates the current input."""

    name = "test_counter"
    params = {"V_th": 1e9}
    units = {"V_m": "mV", "I": "pA"}
    states = ("V_m", "I")

    def initial(self, p, dt):
        return {"V_m": jnp.zeros_like(p["V_th"]), "I": jnp.zeros_like(p["V_th"])}

    def update(self, s, p, inp, dt):
        v = s["V_m"] + inp["ex"] + inp["in"]
        spiked = v >= p["V_th"]
        return {"V_m": jnp.where(spiked, 0.0, v), "I": s["I"] + inp["current"]}, spiked
