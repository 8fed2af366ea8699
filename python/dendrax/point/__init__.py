"""Point neurons and stimulation devices, NEST's grid-based models as small classes.

``dendrax.Network.population(name, n, **params)`` creates them by name: a model registered
in the entry-point group ``dendrax.point_neurons`` (NEST's names: "iaf_psc_alpha", ...;
plugins add their own) or a generator ("poisson_generator", "spike_generator",
"dc_generator", "noise_generator"). See ``PointNeuron`` for the model contract and docs/point_neurons.md.
"""

from __future__ import annotations

from .base import PointNeuron, check_point_model
from .generators import (GENERATORS, DCGenerator, Generator, NoiseGenerator, PoissonGenerator,
                         SpikeGenerator)

GROUP = "dendrax.point_neurons"

__all__ = ["DCGenerator", "Generator", "NoiseGenerator", "PointNeuron", "PoissonGenerator",
           "SpikeGenerator",
           "StaticSynapse", "model"]


class StaticSynapse:
    """NEST's ``static_synapse``: a spike adds ``weight`` to its target's input (pA for
    current-based models, nS for conductance-based ones; the sign picks the excitatory or
    the inhibitory receptor) ``delay`` ms after it was sent (delay >= dt)."""

    name = "static"
    params: dict = {}
    units = {"weight": "pA or nS", "delay": "ms"}
    ranges: dict = {}
    states: dict = {}


def model(name):
    """A point-neuron model or generator by name (or a ``PointNeuron`` subclass or instance,
    to try one before packaging it), instantiated."""
    from .. import plugins

    if isinstance(name, PointNeuron):
        check_point_model(name)
        return name
    if isinstance(name, type) and issubclass(name, PointNeuron):
        check_point_model(name())
        return name()
    if not isinstance(name, str):
        raise TypeError(f"a point-neuron model is a registered name or a PointNeuron subclass, "
                        f"got {name!r}")
    if name in GENERATORS:
        return GENERATORS[name]()
    try:
        obj = plugins.load(GROUP, name)
    except plugins.PluginError as err:
        raise ValueError(f"{err}; generators: {sorted(GENERATORS)}") from None
    if not (isinstance(obj, type) and issubclass(obj, PointNeuron)):
        raise plugins.PluginError(f"{GROUP} plugin {name!r} is not a PointNeuron subclass")
    check_point_model(obj())
    return obj()
