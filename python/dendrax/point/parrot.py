"""NEST's ``parrot_neuron``: repeats the spikes it receives."""

from __future__ import annotations

import jax.numpy as jnp

from .base import PointNeuron


class ParrotNeuron(PointNeuron):
    """NEST's ``parrot_neuron``: it spikes at the end of every step in which spikes reach it
    over connections of nonzero weight; so a spike sent at t with delay d comes out at
    t + d. Spikes arriving in one step leave as one (NEST repeats them with their
    multiplicity): a train relayed by a parrot keeps its times where its spikes are at
    least dt apart, and loses spikes where they are not (a Poisson train of rate r: a
    fraction ~ r dt / 2). Used to give spike trains of generators to plastic synapses
    (NEST's devices connect by static synapses only). No states to record."""

    name = "parrot_neuron"
    weight_unit = "1"
    params = {}
    states = ("count",)

    @property
    def recordables(self):
        return ()

    def initial(self, params, dt):
        return {"count": jnp.zeros(())}

    def update(self, states, params, inputs, dt):
        got = (inputs["ex"] != 0) | (inputs["in"] != 0)
        return {"count": states["count"] + jnp.sum(got)}, got
