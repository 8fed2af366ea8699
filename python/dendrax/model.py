"""The compiled model: the static structure one jitted simulation is built for.

A ``Model`` holds what fixes the shapes of a simulation (the node tree, where
each mechanism sits, where stimuli and recordings are) as numpy arrays and
mechanism objects. Values that may change without a recompile (conductances,
cm, Ra, geometry, stimulus amplitudes) live in the params pytree instead.
Two models with the same structure compare equal, so they share compiled code.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .mechanisms.base import Channel, IonPool, Synapse


@dataclass(frozen=True, eq=False)
class Placement:
    """A mechanism and the nodes it sits on (None: every node)."""

    mech: Channel | IonPool | Synapse
    nodes: np.ndarray | None  # int32 [n]

    def key(self):
        nodes = None if self.nodes is None else self.nodes.tobytes()
        return (type(self.mech).__module__, type(self.mech).__qualname__, self.mech.name, nodes)


@dataclass(frozen=True, eq=False)
class Recording:
    """One recorded quantity: "v", or "<mech>.<state>" at a node (index local to the mechanism)."""

    name: str
    node: int
    local: int  # index into the mechanism's nodes (== node for "v" and mechanisms on every node)


@dataclass(frozen=True, eq=False)
class Model:
    """Static structure of a cell (or a set of cells) for the time loop.

    Attributes:
        parent: int32 [N], the node tree (parent[i] < i, -1 for roots).
        channels: density mechanisms in insertion order (ion pools included).
        synapses: point processes with their nodes.
        ions: ions some mechanism uses, in a fixed order.
        dynamic_ions: ions whose inside concentration a pool changes (Nernst reversal).
        iclamp_nodes: int32 [K], nodes of step current clamps.
        waveform_nodes: int32 [W], nodes of waveform current clamps.
        vclamp_nodes: int32 [M], nodes of voltage clamps.
        recordings: what is recorded, in order.
    """

    parent: np.ndarray
    channels: tuple[Placement, ...] = ()
    synapses: tuple[Placement, ...] = ()
    ions: tuple[str, ...] = ()
    dynamic_ions: tuple[str, ...] = ()
    iclamp_nodes: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    waveform_nodes: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    vclamp_nodes: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    recordings: tuple[Recording, ...] = ()

    @property
    def n_nodes(self) -> int:
        return int(self.parent.shape[0])

    def _key(self):
        return (
            self.parent.tobytes(),
            tuple(p.key() for p in self.channels),
            tuple(p.key() for p in self.synapses),
            self.ions,
            self.dynamic_ions,
            self.iclamp_nodes.tobytes(),
            self.waveform_nodes.tobytes(),
            self.vclamp_nodes.tobytes(),
            tuple((r.name, r.node, r.local) for r in self.recordings),
        )

    def __hash__(self):
        return hash(self._key())

    def __eq__(self, other):
        return isinstance(other, Model) and self._key() == other._key()
