"""What a network is beyond its cells, as ``dendrax.lower`` reads it: blocks of
connections, artificial spike sources, point populations, what is recorded.

Plain records (arrays, no behaviour): ``dendrax.network.Network`` builds them,
``dendrax.lowering`` and ``dendrax.modelfile`` read and write them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

NETCON_THRESHOLD = 10.0  # mV, NEURON's default NetCon threshold


class Source(NamedTuple):
    """An artificial spike source of a network (``spike_source``, ``poisson_source``):
    its index there, and ``network``, the id of the Network that made it (a source is that
    network's only)."""

    index: int
    network: int | None = None


@dataclass(frozen=True, eq=False)
class Block:
    """Connections made by one call, as arrays of equal length n.

    Attributes:
        synapse: the synapse kind's registered name ("static" onto point neurons); mech: its
            instance; graded: its family.
        pre_cell, pre_section, pre_x: int/float [n] presynaptic sites on cells (None for
            other sources).
        pre_source: int [n] artificial sources (``spike_source``), or None.
        pre_neuron: int [n] point neurons or generators (numbered over all populations in
            order of creation), or None.
        threshold: float [n] spike threshold (mV) of connections from cells.
        post_cell, post_section, post_x: [n] postsynaptic sites on cells (None when the
            targets are point neurons, then post_neuron [n] holds them).
        values: parameter name -> float [n] (synapse parameters, weight, delay).
    """

    synapse: str
    mech: object
    graded: bool
    pre_cell: np.ndarray | None
    pre_section: np.ndarray | None
    pre_x: np.ndarray | None
    pre_source: np.ndarray | None
    threshold: np.ndarray | None
    post_cell: np.ndarray | None
    post_section: np.ndarray | None
    post_x: np.ndarray | None
    values: dict
    pre_neuron: np.ndarray | None = None
    post_neuron: np.ndarray | None = None

    @property
    def size(self) -> int:
        return int((self.post_cell if self.post_neuron is None else self.post_neuron).shape[0])


@dataclass(frozen=True, eq=False)
class PopulationSpec:
    """A population of point neurons or generators, as created.

    Attributes:
        name: its name (params live under params["populations"][name]).
        model: a ``dendrax.point.PointNeuron`` or ``Generator`` instance.
        size: number of neurons.
        offset: the number of point neurons in the populations created before it.
        values: parameter name -> float [size], NEST's units.
        spike_times: spike_generator only: one array of times (ms) per generator.
    """

    name: str
    model: object
    size: int
    offset: int
    values: dict
    spike_times: tuple = ()


class NeuronRef(NamedTuple):
    """One point neuron, as recordings label it: population index and neuron index (or a
    plastic connection: its synapse kind's name and its index among them)."""

    population: int
    index: int


class Neurons(NamedTuple):
    """Some neurons of a point population: its index and theirs within it (int [k]);
    ``owner``: the id of its network's population list (None: not checked)."""

    population: int
    index: np.ndarray
    owner: int | None = None


@dataclass
class Wiring:
    """Everything of a network beyond its cells (what lowering reads)."""

    blocks: list = field(default_factory=list)
    sources: list = field(default_factory=list)  # spike times (ms) of each artificial source
    spike_records: list = field(default_factory=list)  # (cell, section, x, threshold)
    recordings: list = field(default_factory=list)  # (cell, name, Location, reduce)
    populations: list = field(default_factory=list)  # PopulationSpec, in order of creation
    point_spike_records: list = field(default_factory=list)  # (population, neuron)
    point_recordings: list = field(default_factory=list)  # (population, name, neuron, reduce)
    fields: list = field(default_factory=list)  # extracellular readouts (FieldRecord)
    placements: dict = field(default_factory=dict)  # cell -> (position [3] | None, rotation)
