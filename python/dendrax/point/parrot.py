"""NEST's ``parrot_neuron``: repeats the spikes it receives."""

from __future__ import annotations

import jax.numpy as jnp

from .base import PointNeuron


class ParrotNeuron(PointNeuron):
    """NEST's ``parrot_neuron``: it spikes at the end of every step in which spikes reach
    it, as often as they reach it (NEST's multiplicity), whatever the connections' weights
    (``weight_unit`` "1": each spike counts once, as NEST's parrot ignores weights); so a
    spike sent at t with delay d comes out at t + d, and k spikes of a poisson_generator in
    one step come out as k. Used to give spike trains of generators to plastic synapses
    (NEST's devices connect by static synapses only). No states to record."""

    name = "parrot_neuron"
    weight_unit = "1"
    params = {}
    states = ("n_spikes",)
    spike_count = "n_spikes"

    @property
    def recordables(self):
        return ()

    def initial(self, params, dt):
        return {"n_spikes": jnp.zeros(())}

    def update(self, states, params, inputs, dt):
        n = inputs["ex"]  # the spikes that reach it (each delivered with weight 1)
        return {"n_spikes": n}, n > 0
