"""The passive leak channel, as NEURON's pas."""

from .base import NONNEGATIVE, Channel


class Passive(Channel):
    """A linear leak: i = g (v - e)."""

    name = "pas"
    params = {"g": 0.001, "e": -70.0}
    units = {"g": "S/cm2", "e": "mV"}
    ranges = {"g": NONNEGATIVE}

    def current(self, v, states, params, env):
        return {"": params["g"] * (v - params["e"])}
