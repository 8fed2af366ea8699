"""The compiled model: the static structure one jitted simulation is built for.

A ``Model`` holds what fixes the shapes of a simulation (the node forest, where
each mechanism sits, where stimuli, synapses, spike sources and recordings are)
as numpy arrays and mechanism objects. Values that may change without a
recompile (conductances, cm, Ra, geometry, stimulus amplitudes, synaptic
weights and delays) live in the params pytree instead. Two models with the same
structure compare equal, so they share compiled code.
"""

from __future__ import annotations

import functools
import types
from dataclasses import dataclass, field
from functools import cached_property

import jax
import numpy as np

from .mechanisms.base import Channel, GradedSynapse, IonPool, Synapse


def _empty():
    return np.zeros(0, np.int32)


def _bytes(a):
    return None if a is None else (a.dtype.str, a.tobytes())


def _frozen(v, stack: tuple = ()):
    """A hashable image of a setting's value (numbers, text, arrays, containers of them,
    functions by their code and what they close over, objects by their attributes);
    floats by their bits (a NaN setting equals itself). ``stack``: the ids of what ``v``
    sits in (an object met again inside itself is marked, not followed)."""
    if id(v) in stack:
        return ("cycle", stack.index(id(v)))
    if len(stack) > 8:  # too deep to be a setting
        return ("object", id(v))
    inner = stack + (id(v),)
    if isinstance(v, float):
        return ("float", v.hex())
    if isinstance(v, dict):
        return tuple(sorted(((str(k), _frozen(x, inner)) for k, x in v.items()),
                            key=lambda kv: kv[0]))
    if isinstance(v, (list, tuple, set, frozenset)):
        items = [_frozen(x, inner) for x in v]
        return ("set", tuple(sorted(items, key=repr))) if isinstance(v, (set, frozenset)) \
            else (type(v).__name__, tuple(items))
    if isinstance(v, jax.core.Tracer):  # left on the mechanism by a trace (in a container)
        return None
    if isinstance(v, types.FunctionType):  # by its code and what it closes over
        cells = []
        for c in v.__closure__ or ():
            try:
                cells.append(_frozen(c.cell_contents, inner))
            except ValueError:  # an empty cell
                cells.append(None)
        return ("function", v.__code__, _frozen(v.__defaults__, inner),
                _frozen(v.__kwdefaults__, inner), tuple(cells))
    if isinstance(v, types.MethodType):
        return ("method", _frozen(v.__func__, inner), _frozen(v.__self__, inner))
    if isinstance(v, functools.partial):
        return ("partial", _frozen(v.func, inner), _frozen(v.args, inner),
                _frozen(v.keywords, inner))
    if callable(v) and getattr(v, "__wrapped__", None) is not None:  # jax.jit, custom_jvp,
        return ("wrapped", type(v), _frozen(v.__wrapped__, inner))   # functools.wraps
    if isinstance(v, np.ndarray) or isinstance(v, (jax.Array, np.generic)):
        a = np.asarray(v)
        return ("array", a.shape, a.dtype.str, a.tobytes())
    if hasattr(v, "__dict__") and type(v).__eq__ is object.__eq__ \
            and not isinstance(v, (type, types.ModuleType)):  # an object of settings (or a
        return (type(v), _frozen(vars(v), inner))            # callable one): by them
    try:
        hash(v)
        return v
    except TypeError:
        return ("object", id(v))


def mechanism_key(mech) -> tuple:
    """What identifies a mechanism's code for compiling: its class and every setting of
    it, its instance's attributes and its classes' (a plugin's ``__init__`` arguments,
    an NMODL class's ``newton_iterations``, changed after a run: each compiles anew, never
    running another setting's code). The class's methods are its code; a function kept
    by the instance is a setting by its code and the values it closes over (a rate law
    given to ``__init__``: another one compiles anew; one lambda made in ``__init__`` is
    the same setting in every instance)."""
    settings = {}
    for cls in reversed(type(mech).__mro__):
        if cls is object:
            continue
        settings.update((k, v) for k, v in vars(cls).items() if not k.startswith("__")
                        and not callable(v) and not isinstance(
                            v, (property, staticmethod, classmethod, jax.core.Tracer)))
    own = vars(mech) if hasattr(mech, "__dict__") else {}
    settings.update((k, v) for k, v in own.items() if not isinstance(v, jax.core.Tracer))
    return (type(mech), tuple((k, _frozen(v, (id(mech),)))
                              for k, v in sorted(settings.items())))


def differing_settings(a, b) -> list[str]:
    """The names of the settings in which two mechanisms of one class differ (for a
    message: ``mechanism_key`` tells whether they do)."""
    ka, kb = dict(mechanism_key(a)[1]), dict(mechanism_key(b)[1])
    return sorted(k for k in ka.keys() | kb.keys() if ka.get(k) != kb.get(k))


@dataclass(frozen=True, eq=False)
class Placement:
    """A mechanism and the nodes it sits on (None: every node)."""

    mech: Channel | IonPool | Synapse | GradedSynapse
    nodes: np.ndarray | None  # int32 [n]
    settings: tuple = field(init=False, repr=False)  # mechanism_key(mech) when placed

    def __post_init__(self):
        object.__setattr__(self, "settings", mechanism_key(self.mech))

    def key(self):
        return (self.settings, _bytes(self.nodes))


@dataclass(frozen=True, eq=False)
class EventInputs:
    """How the synapses of one event-driven placement receive spikes.

    Synapse ``j`` of the placement is fed either by a spike source of the network
    (``conn_local``/``conn_source``: detected spikes through the ring buffer, delayed
    by the synapse's ``delay`` parameter) or by a spike train given up front
    (``train_local``: ``Cell.synapse(spike_times=...)`` and artificial sources).
    """

    conn_local: np.ndarray = field(default_factory=_empty)  # int32 [c] synapse index
    conn_source: np.ndarray = field(default_factory=_empty)  # int32 [c] source index
    train_local: np.ndarray = field(default_factory=_empty)  # int32 [r] synapse index
    # the most spikes of one train that can reach its synapse in one step (set for dt by
    # ``delays.sized``): NET_RECEIVE runs once per spike, as NEURON's, up to this many
    max_arrivals: int = 1

    def key(self):
        return (_bytes(self.conn_local), _bytes(self.conn_source), _bytes(self.train_local),
                self.max_arrivals)


@dataclass(frozen=True, eq=False)
class GradedPlacement:
    """Graded synapses of one kind: postsynaptic nodes and presynaptic voltage slots."""

    mech: GradedSynapse
    nodes: np.ndarray  # int32 [n] postsynaptic nodes
    pre: np.ndarray  # int32 [n] index into Model.graded_pre_nodes
    settings: tuple = field(init=False, repr=False)  # mechanism_key(mech) when placed

    def __post_init__(self):
        object.__setattr__(self, "settings", mechanism_key(self.mech))

    def key(self):
        return (self.settings, _bytes(self.nodes), _bytes(self.pre))


@dataclass(frozen=True, eq=False)
class Recording:
    """One recorded quantity.

    Attributes:
        name: as the user wrote it ("v", "hh.m", "ina", "Exp2Syn.g", ...).
        node: the solver node it is at.
        source: (array, placement, key) it is read from: ("v", 0, ""), ("channels", j,
            state), ("channel_currents", j, ion key), ("ions", 0, ion), ("ion_values", 0,
            "e<ion>" | "<ion>i" | "<ion>o"), ("i_cap", 0, ""),
            ("i_membrane", 0, ""), ("synapses" | "graded", j, state), ("synapse_currents" |
            "graded_currents", j, "i" | "g"), ("iclamp" | "waveform" | "vclamp", 0, "").
        local: index into that array.
        reduce: None (a trace) or "max", "min", "mean" (a statistic over the run).
    """

    name: str
    node: int
    source: tuple
    local: int
    reduce: str | None = None


@dataclass(frozen=True, eq=False)
class PointPlacement:
    """A population of point neurons: its model and its neurons start .. start + size - 1
    (numbered over all populations; ``population``: its index among them)."""

    model: object
    start: int
    size: int
    population: int
    settings: tuple = field(init=False, repr=False)  # mechanism_key(model) when placed

    def __post_init__(self):
        object.__setattr__(self, "settings", mechanism_key(self.model))

    def key(self):
        return (self.settings, self.start, self.size, self.population)


@dataclass(frozen=True, eq=False)
class PlasticPlacement:
    """Plastic connections of one kind onto point neurons (``dendrax.point.plasticity``):
    their ring sources and target point neurons [C], in params order."""

    mech: object
    source: np.ndarray
    target: np.ndarray
    settings: tuple = field(init=False, repr=False)  # mechanism_key(mech) when placed

    def __post_init__(self):
        object.__setattr__(self, "settings", mechanism_key(self.mech))

    def key(self):
        return (self.settings, _bytes(self.source), _bytes(self.target))


@dataclass(frozen=True, eq=False)
class StaticInputs:
    """Static connections onto point neurons (NEST's static_synapse), by source kind; each
    ``*_conn`` indexes params["synapses"]["static"] (weight, delay), targets are point
    neurons (numbered over all populations).

    ring: sources in the spike ring (cells' spike sources, point neurons, spike
    generators); poisson: poisson_generator connections (an independent train each);
    dc, noise: dc_generator and noise_generator connections (currents).
    csr_*: the ring connections sorted by source (event-driven delivery; the compiled loop
    gets them as inputs from ``Layout.static_csr``).
    """

    ring_conn: np.ndarray
    ring_source: np.ndarray
    ring_target: np.ndarray
    poisson_conn: np.ndarray
    poisson_gen: np.ndarray
    poisson_target: np.ndarray
    dc_conn: np.ndarray
    dc_gen: np.ndarray
    dc_target: np.ndarray
    noise_conn: np.ndarray = field(default_factory=_empty)
    noise_gen: np.ndarray = field(default_factory=_empty)
    noise_target: np.ndarray = field(default_factory=_empty)
    csr_order: np.ndarray | None = None
    csr_ptr: np.ndarray | None = None
    csr_target: np.ndarray | None = None
    weight: np.ndarray | None = None
    delay: np.ndarray | None = None

    @cached_property
    def _digest(self):
        import hashlib

        h = hashlib.sha1()
        for k in ("ring_conn", "ring_source", "ring_target", "poisson_conn", "poisson_gen",
                  "poisson_target", "dc_conn", "dc_gen", "dc_target", "noise_conn", "noise_gen",
                  "noise_target"):
            a = getattr(self, k)
            h.update(a.dtype.str.encode() + str(a.shape).encode() + a.tobytes())
        return h.hexdigest()

    def key(self):
        return self._digest  # millions of connections: hashed once, not per call


@dataclass(frozen=True, eq=False)
class Model:
    """Static structure of a cell or a network of cells for the time loop.

    Attributes:
        parent: int32 [N], the node forest (parent[i] < i, -1 for the root of each cell).
        channels: density mechanisms in insertion order (ion pools included), each
            placed on its nodes across all cells.
        synapses: event-driven point processes (NET_RECEIVE) with their nodes.
        inputs: one ``EventInputs`` per entry of ``synapses``.
        graded: graded synapses (current a function of pre- and postsynaptic v).
        graded_pre_nodes: int32 [P], nodes whose voltage graded synapses read.
        ions: ions some mechanism uses, in a fixed order.
        dynamic_ions: ions whose inside concentration a pool changes (Nernst reversal).
        iclamp_nodes: int32 [K], nodes of step current clamps.
        waveform_nodes: int32 [W], nodes of waveform current clamps.
        vclamp_nodes: int32 [M], nodes of voltage clamps.
        source_nodes: int32 [S], nodes whose voltage is watched for spikes.
        source_threshold: float64 [S], their thresholds (mV).
        ring_size: steps of spike history kept (1 + the longest delay in steps).
        history_size: steps of presynaptic voltage kept for delayed graded synapses.
        spike_records: int32 [Q], sources whose spike times are recorded.
        recordings: what is recorded, in order.
        points: point-neuron populations (generators have none).
        n_points: point neurons and generators over all populations (ring sources
            S + k for the k-th, S = len(source_nodes)).
        static: static connections onto point neurons, or None.
        plastic: plastic connections onto point neurons, per kind.
        inbuf_size: steps of future input the plastic connections' buffer holds.
        spike_generators: int32 [G] the point numbers of spike_generator members.
    """

    parent: np.ndarray
    channels: tuple[Placement, ...] = ()
    synapses: tuple[Placement, ...] = ()
    inputs: tuple[EventInputs, ...] = ()
    graded: tuple[GradedPlacement, ...] = ()
    graded_pre_nodes: np.ndarray = field(default_factory=_empty)
    ions: tuple[str, ...] = ()
    dynamic_ions: tuple[str, ...] = ()
    iclamp_nodes: np.ndarray = field(default_factory=_empty)
    waveform_nodes: np.ndarray = field(default_factory=_empty)
    vclamp_nodes: np.ndarray = field(default_factory=_empty)
    source_nodes: np.ndarray = field(default_factory=_empty)
    source_threshold: np.ndarray = field(default_factory=lambda: np.zeros(0))
    ring_size: int = 1
    history_size: int = 1
    spike_records: np.ndarray = field(default_factory=_empty)
    recordings: tuple[Recording, ...] = ()
    points: tuple[PointPlacement, ...] = ()
    plastic: tuple[PlasticPlacement, ...] = ()
    inbuf_size: int = 1
    n_points: int = 0
    static: StaticInputs | None = None
    spike_generators: np.ndarray = field(default_factory=_empty)

    @property
    def n_nodes(self) -> int:
        return int(self.parent.shape[0])

    @property
    def events(self) -> bool:
        """Whether static connections from spike sources are delivered event by event
        (``dendrax.events``) into point neurons' input buffer (not with surrogates, whose
        spikes carry gradients through the ring instead)."""
        return (self.static is not None and self.static.ring_conn.size > 0
                and not self.surrogate)

    @property
    def surrogate(self) -> bool:
        """Whether some population's spikes carry surrogate gradients."""
        return any(getattr(p.model, "surrogate", None) is not None for p in self.points)

    @property
    def n_sources(self) -> int:
        """Spike sources in the ring: the cells' watched nodes, then every point neuron."""
        return int(self.source_nodes.shape[0]) + self.n_points

    @cached_property
    def multi_points(self) -> np.ndarray:
        """int32 [M]: the point neurons (numbered over all populations) whose model can fire
        more than once in one step (``PointNeuron.spike_count``); their spikes beyond the
        first travel beside the spike ring's bits, as counts."""
        ranges = [np.arange(p.start, p.start + p.size) for p in self.points
                  if getattr(p.model, "spike_count", None) is not None]
        return np.concatenate(ranges).astype(np.int32) if ranges else _empty()

    @cached_property
    def spike_counters(self) -> np.ndarray:
        """bool [n_points]: the point neurons whose input is the number of spikes reaching
        them, not their weights (``weight_unit`` "1": NEST's parrot_neuron)."""
        out = np.zeros(self.n_points, bool)
        for p in self.points:
            out[p.start:p.start + p.size] = getattr(p.model, "weight_unit", None) == "1"
        return out

    @cached_property
    def multi_slot(self) -> np.ndarray:
        """int32 [n_sources]: each ring source's index in ``multi_points``, or -1."""
        slot = np.full(self.n_sources, -1, np.int32)
        slot[int(self.source_nodes.shape[0]) + self.multi_points] = np.arange(
            self.multi_points.size, dtype=np.int32)
        return slot

    @property
    def records_counts(self) -> bool:
        """Whether a recorded spike source can fire more than once per step: the raster then
        holds counts (int32), else flags (bool)."""
        return bool(self.multi_points.size) and bool(np.any(
            self.multi_slot[np.asarray(self.spike_records)] >= 0))

    def _key(self):
        return (
            _bytes(self.parent),
            tuple(p.key() for p in self.channels),
            tuple(p.key() for p in self.synapses),
            tuple(i.key() for i in self.inputs),
            tuple(g.key() for g in self.graded),
            _bytes(self.graded_pre_nodes),
            self.ions,
            self.dynamic_ions,
            _bytes(self.iclamp_nodes),
            _bytes(self.waveform_nodes),
            _bytes(self.vclamp_nodes),
            _bytes(self.source_nodes),
            _bytes(self.source_threshold),
            self.ring_size,
            self.history_size,
            _bytes(self.spike_records),
            tuple((r.name, r.node, r.source, r.local, r.reduce) for r in self.recordings),
            tuple(p.key() for p in self.points),
            tuple(p.key() for p in self.plastic),
            self.inbuf_size,
            self.n_points,
            None if self.static is None else self.static.key(),
            _bytes(self.spike_generators),
        )

    def settings_changed(self) -> bool:
        """Whether a mechanism's settings changed since it was placed (a class attribute set
        after lowering): the model is then lowered anew."""
        placed = [*self.channels, *self.synapses, *self.graded, *self.points, *self.plastic]
        return any(p.settings != mechanism_key(p.model if isinstance(p, PointPlacement)
                                               else p.mech) for p in placed)

    def __hash__(self):
        return hash(self._key())

    def __eq__(self, other):
        return isinstance(other, Model) and self._key() == other._key()
