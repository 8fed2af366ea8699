"""Lowering: a description (a ``Cell`` or a ``Network``) -> what the time loop runs.

``lower(x)`` returns ``Lowered(model, params, layout)``:

* ``model``: the static ``Model`` (node forest, mechanism placements, synapses,
  spike sources, recordings) that a jitted simulation is compiled for;
* ``params``: every value that may change without a recompile, as a pytree with
  one namespace per kind of quantity, so no mechanism name can clobber another::

      {"cable":    {"cm": [N], "Ra": [n_sections], "diam": [n_points], "L": [n_sections]},
       "ions":     {"ena": [N], "nai0": [N], "nao": [N], ...},
       "channels": {"hh": {"gnabar": [n_hh], ...}, ...},
       "synapses": {"Exp2Syn": {"tau1": [n], ..., "weight": [n], "delay": [n]}, ...},
       "stimuli":  {"iclamp": {"delay", "dur", "amp": [K]}, "vclamp": {"amp", "dur": [M, 3], "rs": [M]}}}

* ``layout``: where everything sits: cell, section and point offsets of the
  concatenated forest, the solver's node order, and ``Layout.slots`` / ``Layout.node``
  to map a location or a parameter to its entries.

All cells of a network go into one forest (``parent[i] < i``), numbered in level
order (all nodes of one depth together, over all cells), so one Hines solve per
step eliminates independent branches and cells side by side. Each mechanism is
one placement over all its nodes in all cells: one vectorised update per
mechanism type.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from typing import NamedTuple, Protocol, Sequence, runtime_checkable

import jax
import numpy as np

from . import morphology as morph_lib
from .layout import Layout, SynapseGroup
from .locations import Location
from .mechanisms.base import IonPool
from .mechanisms.introspect import environment_read
from .recordables import mechanism_quantity, synapse_pick, synapse_quantity
from .model import (EventInputs, GradedPlacement, Model, PlasticPlacement, Placement,
                    PointPlacement, Recording, StaticInputs, differing_settings,
                    mechanism_key)
from .names import ion_quantity
from .extracellular.fields import lower_fields
from .wiring import NeuronRef, Wiring

# A mechanism inserted everywhere is computed at every solver node, the zero-area junction
# nodes too (where its current counts 0): it then needs no gather of v and no scatter of its
# currents, ~8 more operations a step, each dispatched on its own by XLA:CPU. In models with
# at least SEGMENTS_ONLY_JUNCTIONS junction nodes it is computed at the segment nodes only,
# which saves more than those operations cost: the SWC network of docs/benchmarks.md (3470
# nodes, 1130 of them junctions; HH everywhere) 0.41 -> 0.34 s, its gradient 2.10 -> 1.91 s;
# on 2 cores, where 34 junctions (an HH cell of 112 nodes) ran 13.6 -> 15.7 ms and ~100
# (325 nodes; two cells' network, 347) about as fast. Its parameters stay per node; its
# states (a Result's final state) are then per segment node.
SEGMENTS_ONLY_JUNCTIONS = 500


class CellLike(Protocol):
    """What lowering reads of a cell (``dendrax.Cell`` is one): its geometry, the values
    set on it, its mechanisms, stimuli and recordings, and where a location is.

    Attributes:
        morphology: its ``Morphology`` (sections, 3-D points).
        compartments: ``morphology.compartments`` at its segmentation (the node tree).
        frustums: ``morphology.frustum_table`` (areas and axial resistances from diam, L).
        n_nodes: the number of its nodes (segment centres and kept junctions).
        values: {"diam": [n_points], "L": [n_sections], "cm": [N], "Ra": [n_sections],
            "ions": {name: [N]}, "mechs": {mechanism: {parameter: [N]}}}.
        mechanisms: name -> mechanism instance, in insertion order.
        mechanism_nodes: name -> bool [N], where each is inserted.
        stimuli: its ``Stimuli`` (clamps, played waveforms, spike trains into synapses).
        spike_records: (section, x, threshold) of its recorded spike sources.
        recorded: (name, Location, reduce) of its recordings, in order.
        field_records: its extracellular recordings (``dendrax.extracellular``).
        ends: (section, x) of the section ends kept as zero-area nodes of their own (where
            a point process sits: a terminal x = 1, the root's x = 0).
    """

    morphology: object
    compartments: object
    frustums: object
    n_nodes: int
    values: dict
    mechanisms: dict
    mechanism_nodes: dict
    stimuli: object
    spike_records: list
    recorded: list
    field_records: list
    ends: tuple

    def node(self, loc: Location) -> int: ...

    def nodes(self, where=None) -> np.ndarray: ...

    def segment_node(self, loc: Location) -> int: ...

    def sections(self, where=None) -> list[int]: ...

    def check_record(self, name: str, loc: Location, *, synapses=None) -> str: ...


@runtime_checkable
class Simulatable(Protocol):
    """What dendrax can lower and simulate: a ``Cell``, a ``Network``, or anything that
    lists its cells and (optionally) the wiring between them.

    Attributes:
        cells: the cells, in order (a cell's index is its position).
        wiring: a ``dendrax.wiring.Wiring`` (connections, spike records, network-level
            recordings, extracellular readouts, cell placements), or None for a lone cell.
        revision: a number that changes whenever the description changes (lowerings
            are cached per revision).
    """

    @property
    def cells(self) -> Sequence[CellLike]: ...

    @property
    def wiring(self) -> Wiring | None: ...

    @property
    def revision(self): ...


class Lowered(NamedTuple):
    """What ``lower`` returns."""

    model: Model
    params: dict
    layout: Layout


# the last lowering of a description, kept on it (a Cell's layout holds the cell itself:
# in a weak-keyed table that reference kept every lowered cell alive for good)
_CACHED = "_dendrax_lowered"


class _Kept(tuple):
    """(key, lowered): pickled and deep-copied as an empty entry, so a copy lowers itself
    and a pickle does not carry the lowering."""

    def __reduce__(self):
        return (_Kept, ((None, None),))


def lower(x: Simulatable) -> Lowered:
    """Lower a ``Cell`` or a ``Network`` (anything ``Simulatable``) to (model, params, layout).

    Cached per description and revision: lowering again after no change is free;
    any change (``insert``, ``set``, a new connection, ...) lowers anew.
    """
    if not isinstance(x, Simulatable):
        raise TypeError(f"cannot simulate {type(x).__name__}: expected a dendrax.Cell, a "
                        "dendrax.Network, or an object with cells, wiring and revision")
    # arrays are made in the current float dtype; id: a copy (copy.copy) carries the
    # attribute along, but not this lowering, whose layout holds the original
    key = (id(x), x.revision, jax.config.jax_enable_x64)
    hit = getattr(x, _CACHED, None)
    if hit is None or hit[0] != key or hit[1][0].settings_changed():
        # concrete arrays even when first lowered inside jit (e.g. cell.params in a loss):
        # the cache outlives the trace, so a traced array kept in it would leak
        with jax.ensure_compile_time_eval():
            hit = _Kept((key, _lower(tuple(x.cells), x.wiring)))
        try:
            setattr(x, _CACHED, hit)
        except AttributeError:  # an object that takes no attributes: lowered every time
            pass
    model, params, layout = hit[1]
    return Lowered(model, _copy_dicts(params), layout)  # the caller may edit its params


def _copy_dicts(tree):
    return {k: _copy_dicts(v) if isinstance(v, dict) else v for k, v in tree.items()}


def _level_order(parent: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nodes sorted by depth in the forest (stable), and the inverse permutation."""
    depth = np.zeros(len(parent), int)
    for i, p in enumerate(parent.tolist()):
        depth[i] = depth[p] + 1 if p >= 0 else 0
    order = np.argsort(depth, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return order, rank


def _put(a):
    """A numpy array on the default device, as a jax Array (no compile, unlike jnp.asarray).

    In float32, NEST's "no bound" defaults (+-DBL_MAX, e.g. V_min) become +-inf, which
    float32 holds with the same meaning; any other value beyond float32's range still
    warns as it overflows."""
    a = np.asarray(a)
    if a.dtype == np.float64 and jax.dtypes.canonicalize_dtype(np.float64) == np.float32:
        a = np.where(np.abs(a) == sys.float_info.max, np.copysign(np.inf, a), a)
    return jax.device_put(a)


def _offsets(sizes) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(np.asarray(list(sizes), int))]).astype(int)


def _lower(cells: tuple, wiring) -> Lowered:
    if not cells and not (wiring is not None and wiring.populations):
        raise ValueError("nothing to simulate: the network has no cells and no populations")
    network = wiring is not None
    node_off = _offsets(c.n_nodes for c in cells)
    sec_off = _offsets(len(c.morphology.sections) for c in cells)
    pt_off = _offsets(c.morphology.point_offsets[-1] for c in cells)
    forest_parent = np.concatenate([np.where(c.compartments.parent >= 0,
                                             c.compartments.parent + node_off[i], -1)
                                    for i, c in enumerate(cells)] + [np.zeros(0, int)])
    order, rank = _level_order(forest_parent)
    parent = forest_parent[order]
    solver_parent = np.where(parent >= 0, rank[np.maximum(parent, 0)], -1).astype(np.int32)
    is_segment = np.concatenate([~c.compartments.is_junction for c in cells] + [np.zeros(0, bool)])
    section = np.concatenate([c.compartments.section + sec_off[i] for i, c in enumerate(cells)]
                             + [np.zeros(0, int)])
    regions = np.array([s.region for c in cells for s in c.morphology.sections], dtype=object)

    def forest(c, node):
        return int(node_off[c]) + int(node)

    def as_solver(nodes):
        return rank[np.asarray(nodes, int)].astype(np.int32)

    # --- channels and ion pools: one placement per mechanism over all cells ---
    placements, channel_nodes, channel_params, segments_only = _channels(cells, is_segment, order)
    mechs = [p.mech for p in placements]
    ions = tuple(sorted({i for m in mechs for i in m.ions}
                        | {m.ion for m in mechs if isinstance(m, IonPool)}))
    dynamic = tuple(sorted({m.ion for m in mechs if isinstance(m, IonPool)}))

    # --- cable and ion values ----------------------------------------------
    cat = lambda key: np.concatenate([np.asarray(c.values[key], float) for c in cells]  # noqa: E731
                                     + [np.zeros(0)])
    cable = {"cm": _put(cat("cm")[order]), "Ra": _put(cat("Ra")),
             "diam": _put(cat("diam")), "L": _put(cat("L"))}
    ion_params = {k: _put(np.concatenate([c.values["ions"][k] for c in cells])[order])
                  for k in (cells[0].values["ions"] if cells else ())}

    # --- stimuli -------------------------------------------------------------
    iclamp = [(forest(c, s[0]), *s[1:]) for c, cell in enumerate(cells) for s in cell.stimuli.iclamp]
    waves = [(forest(c, s[0]), s[1], s[2]) for c, cell in enumerate(cells)
             for s in cell.stimuli.waveform]
    vclamp = [(forest(c, s[0]), *s[1:]) for c, cell in enumerate(cells) for s in cell.stimuli.vclamp]
    ic = np.asarray([s[1:] for s in iclamp], float).reshape(-1, 3)
    stimuli = {"iclamp": {"delay": _put(ic[:, 0]), "dur": _put(ic[:, 1]),
                          "amp": _put(ic[:, 2])},
               "vclamp": {"amp": _put(np.asarray([s[1] for s in vclamp], float).reshape(-1, 3)),
                          "dur": _put(np.asarray([s[2] for s in vclamp], float).reshape(-1, 3)),
                          "rs": _put(np.asarray([s[3] for s in vclamp], float))}}

    # --- synapses and spike sources ------------------------------------------
    populations = tuple(wiring.populations) if network else ()
    gathered = _gather_synapses(cells, wiring, node_off, populations)
    placed = _place_synapses(gathered.groups, rank, is_segment)
    synapse_params = placed.params

    # --- point neurons: one placement per population, static inputs by kind ---------
    points, static_inputs, plastic, population_params, max_static = _lower_points(
        populations, gathered.static, gathered.n_cell_sources)
    if static_inputs is not None:
        synapse_params["static"] = {"weight": _put(static_inputs.weight),
                                    "delay": _put(static_inputs.delay)}
        static_inputs = replace(static_inputs, weight=None, delay=None)
    for name, values in plastic[1].items():
        synapse_params[name] = {k: _put(v) for k, v in values.items()}
    plastic = plastic[0]

    # --- recordings ------------------------------------------------------------
    clamps = {"iclamp": [s[0] for s in iclamp], "waveform": [s[0] for s in waves],
              "vclamp": [s[0] for s in vclamp]}
    recs, labels, units, field_tables = _recordings(
        cells, wiring, node_off, rank, clamps, placed.groups,
        (tuple(placements), tuple(placed.events), tuple(placed.graded)),
        points, plastic, populations)

    src = sorted(gathered.sources.items(), key=lambda kv: kv[1])
    model = Model(
        parent=solver_parent,
        channels=tuple(placements),
        synapses=tuple(placed.events),
        inputs=tuple(placed.inputs),
        graded=tuple(placed.graded),
        graded_pre_nodes=placed.graded_pre_nodes,
        ions=tuple(sorted({*ions, *(i for p in placed.events for i in p.mech.ions)})),
        dynamic_ions=dynamic,
        iclamp_nodes=as_solver([s[0] for s in iclamp]),
        waveform_nodes=as_solver([s[0] for s in waves]),
        vclamp_nodes=as_solver([s[0] for s in vclamp]),
        source_nodes=as_solver([k[0] for k, _ in src]),
        source_threshold=np.asarray([k[1] for k, _ in src], float),
        spike_records=np.asarray(gathered.spike_records, np.int32),
        recordings=tuple(recs),
        points=points,
        plastic=plastic,
        n_points=sum(p.size for p in populations),
        static=static_inputs,
        spike_generators=np.asarray([p.offset + i for p in populations if p.spike_times
                                     for i in range(p.size)], np.int32),
    )
    params = {"cable": cable, "ions": ion_params, "channels": channel_params,
              "synapses": synapse_params, "stimuli": stimuli}
    if populations:
        params["populations"] = population_params
    layout = Layout(
        cells=cells, node_offset=node_off, section_offset=sec_off, point_offset=pt_off,
        order=order, rank=rank, frustums=morph_lib.concatenate_tables([c.frustums for c in cells]),
        lengths=np.concatenate([c.morphology.lengths for c in cells] + [np.zeros(0)]).astype(float),
        section_of=section[order], regions=regions, channels=channel_nodes,
        segments_only=segments_only,
        synapses=placed.groups, labels=tuple(labels), units=tuple(units),
        spike_cells=np.asarray(gathered.spike_cells, int),
        trains=tuple(placed.trains), waveforms=tuple((t, i) for _, t, i in waves),
        max_delay=placed.max_delay, max_graded_delay=placed.max_graded_delay, network=network,
        populations=populations, spike_shift=np.asarray(gathered.spike_shift, int),
        plastic=tuple(pl.mech.name for pl in plastic),
        static_csr=None if static_inputs is None else {
            "ptr": _put(static_inputs.csr_ptr), "target": _put(static_inputs.csr_target),
            "conn": _put(static_inputs.ring_conn[static_inputs.csr_order])},
        max_static_delay=max_static, fields=tuple(field_tables))
    return Lowered(model, params, layout)


class _Gathered(NamedTuple):
    """The synapses of the cells and the wiring, before placement.

    ``groups``: synapse name -> {"mech", "graded", "node" (forest nodes), "cell", "values"
    (param tables), and how each is fed: "train_local"/"trains" (spike trains),
    "conn_local"/"conn_source" (spike sources), "pre" (graded: presynaptic forest nodes)};
    ``static``: the connections onto point neurons (static and plastic); ``sources``:
    (forest node, threshold) -> spike source, numbered in order of first use, with the
    point neurons after them (source ``n_cell_sources + k`` is the k-th point neuron over
    all populations); ``spike_records``/``spike_cells``/``spike_shift``: the recorded spike
    sources, their cells (point neurons after the cells) and their time shifts in steps."""

    groups: dict
    static: dict
    sources: dict
    n_cell_sources: int
    spike_records: list
    spike_cells: list
    spike_shift: list


def _gather_synapses(cells, wiring, node_off, populations) -> _Gathered:
    """Who feeds which synapse: the cells' spike-train-fed synapses, then the network's
    connections, each under its synapse's name (``_Gathered``)."""
    network = wiring is not None

    def forest(c, node):
        return int(node_off[c]) + int(node)

    def sites(cell, sec, x):
        """Forest nodes [n] of the locations (cell [n], section [n], x [n])."""
        first, inverse = _unique_rows(cell, sec, x)
        nodes = np.array([forest(int(cell[i]), cells[int(cell[i])].node(Location(int(sec[i]), float(x[i]))))
                          for i in first], int)
        return nodes[inverse]

    sources: dict[tuple[int, float], int] = {}

    def source(fnode, threshold):
        return sources.setdefault((int(fnode), float(threshold)), len(sources))

    # --- synapses: spike-train-fed (cells), then connections (network) -------
    # per name: lists of forest nodes, cells, param tables, and how each is fed
    groups: dict[str, dict] = {}

    def group(name, mech, graded):
        g = groups.setdefault(name, {"mech": mech, "graded": graded, "node": [], "cell": [],
                                     "values": [], "train_local": [], "trains": [],
                                     "conn_local": [], "conn_source": [], "pre": []})
        if type(g["mech"]) is not type(mech):
            raise ValueError(f"two different synapse kinds are named {name!r}")
        if g["mech"] is not mech and mechanism_key(g["mech"]) != mechanism_key(mech):
            raise ValueError(f"two synapses named {name!r} have different settings "
                             f"({', '.join(differing_settings(g['mech'], mech))} differ): give "
                             "one of them another name")
        return g

    for c, cell in enumerate(cells):
        for name, (mech, items) in cell.stimuli.spikes.items():
            g = group(name, mech, False)
            for node, values, times in items:
                g["train_local"].append(len(g["node"]))
                g["trains"].append(times)
                g["node"].append(forest(c, node))
                g["cell"].append(c)
                g["values"].append({k: np.asarray([v], float) for k, v in values.items()})
    spike_cells = []
    spike_records = []
    for c, cell in enumerate(cells):
        for sec, x, thr in cell.spike_records:
            spike_records.append(source(forest(c, cell.node(Location(sec, x))), thr))
            spike_cells.append(c)
    static = {"source": [], "target": [], "weight": [], "delay": [], "kind": [], "mech": {},
              "values": []}  # onto point neurons
    if network:
        for block in wiring.blocks:
            if block.post_neuron is not None:  # static and plastic connections onto point neurons
                static["kind"].append(np.full(block.size, block.synapse, dtype=object))
                static["mech"][block.synapse] = block.mech
                static["values"].append(block.values)
                static["target"].append(block.post_neuron)
                static["weight"].append(block.values["weight"])
                static["delay"].append(block.values["delay"])
                if block.pre_neuron is not None:
                    static["source"].append(-1 - block.pre_neuron)  # numbered below
                else:
                    pre = sites(block.pre_cell, block.pre_section, block.pre_x)
                    static["source"].append(np.array([source(q, t) for q, t in
                                                      zip(pre, block.threshold)], int))
                continue
            g = group(block.synapse, block.mech, block.graded)
            n = block.size
            post = sites(block.post_cell, block.post_section, block.post_x)
            first = len(g["node"])
            g["node"].extend(post.tolist())
            g["cell"].extend(block.post_cell.tolist())
            g["values"].append({k: np.broadcast_to(np.asarray(v, float), (n,)) for k, v in
                                block.values.items()})
            local = np.arange(first, first + n)
            if block.pre_neuron is not None:  # point neurons drive a cell's synapses
                g["conn_local"].extend(local.tolist())
                g["conn_source"].extend((-1 - block.pre_neuron).tolist())  # numbered below
                continue
            if block.pre_cell is None:  # artificial sources: spike trains
                g["train_local"].extend(local.tolist())
                g["trains"].extend(wiring.sources[s] for s in block.pre_source)
                continue
            pre = sites(block.pre_cell, block.pre_section, block.pre_x)
            if block.graded:
                g["pre"].extend(pre.tolist())
            else:
                thr = np.broadcast_to(np.asarray(block.threshold, float), (n,))
                (keys, inverse) = _unique_rows(pre, thr)
                ids = np.array([source(p, t) for p, t in zip(pre[keys], thr[keys])], int)
                g["conn_local"].extend(local.tolist())
                g["conn_source"].extend(ids[inverse].tolist())
        for c, sec, x, thr in wiring.spike_records:
            spike_records.append(source(forest(c, cells[c].node(Location(sec, x))), thr))
            spike_cells.append(c)
    # point neurons follow the cells' spike sources in the ring: source n_cell_sources + k
    # for the k-th point neuron (numbered over all populations)
    n_cell_sources = len(sources)
    spike_shift = [0] * len(spike_records)
    for g in groups.values():
        g["conn_source"] = [q if q >= 0 else n_cell_sources - 1 - q for q in g["conn_source"]]
    for pop, i in (wiring.point_spike_records if network else ()):
        spike_records.append(n_cell_sources + populations[pop].offset + i)
        spike_cells.append(len(cells) + populations[pop].offset + i)
        spike_shift.append(1)  # a point neuron spikes at the end of its update step
    return _Gathered(groups, static, sources, n_cell_sources, spike_records, spike_cells,
                     spike_shift)


class _Placed(NamedTuple):
    """The synapses as the time loop runs them: ``params`` {name: {param: [n]}}, ``groups``
    {name: SynapseGroup}, the event-driven ``events`` [Placement] with their ``inputs``
    [EventInputs] and spike ``trains``, the ``graded`` [GradedPlacement] with the solver
    nodes whose voltage they read (``graded_pre_nodes``), and the longest delays (ms)."""

    params: dict
    groups: dict
    events: list
    inputs: list
    trains: list
    graded: list
    graded_pre_nodes: np.ndarray
    max_delay: float
    max_graded_delay: float


def _place_synapses(groups: dict, rank: np.ndarray, is_segment: np.ndarray) -> _Placed:
    """One placement per synapse name over all cells (solver order ``rank``); a ValueError
    where one reads an ion or the diameter at a node without membrane."""
    synapse_params, event_placements, inputs, trains = {}, [], [], []
    graded_placements, graded_pre = [], {}
    synapse_groups = {}
    max_delay = max_graded = 0.0
    for name, g in groups.items():
        values = {k: np.concatenate([v[k] for v in g["values"]]) for k in g["values"][0]}
        synapse_params[name] = {k: _put(v) for k, v in values.items()}
        node = np.asarray(g["node"], int)
        synapse_groups[name] = SynapseGroup(g["mech"], np.asarray(g["cell"], int), node, g["graded"])
        if g["graded"]:
            pre = np.asarray([graded_pre.setdefault(int(rank[p]), len(graded_pre)) for p in g["pre"]],
                             np.int32)
            graded_placements.append(GradedPlacement(g["mech"], rank[node].astype(np.int32), pre))
            max_graded = max(max_graded, float(values["delay"].max(initial=0.0)))
            continue
        needs = sorted({*g["mech"].ions} | {"diam"} & environment_read(g["mech"]))
        if needs and not is_segment[node].all():
            raise ValueError(
                f"synapse {name} at a section's end (x = 0 or 1: a node without membrane) "
                f"reads {', '.join(needs)}, which a segment has and that node does not "
                "(NEURON refuses such a point process there too): place it at 0 < x < 1")
        event_placements.append(Placement(g["mech"], rank[node].astype(np.int32)))
        inputs.append(EventInputs(np.asarray(g["conn_local"], np.int32),
                                  np.asarray(g["conn_source"], np.int32),
                                  np.asarray(g["train_local"], np.int32)))
        trains.append(tuple(np.asarray(t, float) for t in g["trains"]))
        if g["conn_local"]:
            max_delay = max(max_delay, float(values["delay"][g["conn_local"]].max()))
    return _Placed(synapse_params, synapse_groups, event_placements, inputs, trains,
                   graded_placements,
                   np.asarray(sorted(graded_pre, key=graded_pre.get), np.int32),
                   max_delay, max_graded)


def _recordings(cells, wiring, node_off, rank, clamps, synapse_groups, placed, points, plastic,
                populations):
    """What is recorded, where the time loop finds it: [Recording], their labels and units,
    and the extracellular readouts' tables. ``placed``: the channel, event-synapse and
    graded-synapse placements; ``clamps``: the forest nodes of each kind of electrode."""
    network = wiring is not None
    placements, event_placements, graded_placements = placed
    channel_index = {p.mech.name: j for j, p in enumerate(placements)}
    event_index = {p.mech.name: j for j, p in enumerate(event_placements)}
    graded_index = {p.mech.name: j for j, p in enumerate(graded_placements)}
    recs, labels, units = [], [], []
    kinds = {name: g.mech for name, g in synapse_groups.items()}

    def forest(c, node):
        return int(node_off[c]) + int(node)

    def recording(c, name, loc, reduce):
        bare, pick = synapse_pick(name)  # "Exp2Syn[1].g": the second Exp2Syn there
        units.append(cells[c].check_record(name, loc, synapses=kinds))
        fnode = forest(c, cells[c].node(loc))
        node = int(rank[fnode])
        mech, _, q = bare.partition(".")
        if not (name in ("v", "i_membrane", "iclamp.i", "vclamp.i") or mech in synapse_groups):
            node = int(rank[forest(c, cells[c].segment_node(loc))])  # a range variable
        local = node
        if name in ("v", "i_cap", "i_membrane"):
            source = (name, 0, "")
        elif ion_quantity(name) is not None:  # ina: a current; ena, nai, nao: the ion's
            source = ("ions", 0, name[1:]) if name[0] == "i" else ("ion_values", 0, name)
        elif name in ("iclamp.i", "vclamp.i"):
            kind = mech if fnode in clamps[mech] else "waveform"
            source, local = (kind, 0, ""), clamps[kind].index(fnode)
        elif mech in synapse_groups:
            group = synapse_groups[mech]
            local = _synapse_at(group.node, fnode, name, pick, f"{loc} of cell {c}")
            kind = "graded" if group.graded else "synapses"
            j = (graded_index if group.graded else event_index)[mech]
            currents = "graded_currents" if group.graded else "synapse_currents"
            found = synapse_quantity(group.mech, q)
            source = ({"states": kind, "currents": currents}.get(found.source, found.source),
                      j, found.key)
        else:
            j = channel_index[mech]
            nodes = placements[j].nodes
            if nodes is not None:
                local = int(np.searchsorted(nodes, node))
            found = mechanism_quantity(placements[j].mech, q)
            source = (found.source, j, found.key)
        recs.append(Recording(name, node, source, local, reduce))
        labels.append((name, loc._replace(cell=c) if network else loc))

    for c, cell in enumerate(cells):
        for name, loc, reduce in cell.recorded:
            recording(c, name, loc, reduce)
    for c, name, loc, reduce in (wiring.recordings if network else ()):
        recording(c, name, loc, reduce)
    point_index = {pl.population: j for j, pl in enumerate(points)}
    plastic_index = {pl.mech.name: j for j, pl in enumerate(plastic)}
    for pop, name, i, reduce in (wiring.point_recordings if network else ()):
        if isinstance(pop, str):  # a plastic connection's state
            mech = plastic[plastic_index[pop]].mech
            recs.append(Recording(name, -1, ("plastic", plastic_index[pop], name), int(i), reduce))
            units.append("ms" if name == "t_last" else mech.units.get(
                name, "pA or nS" if name == "weight" else "1"))
        else:
            spec = populations[pop]
            recs.append(Recording(name, -1, ("points", point_index[pop], name), int(i), reduce))
            units.append(spec.model.units.get(name, ""))
        labels.append((name, NeuronRef(pop, int(i))))

    field_rows, field_tables = lower_fields(
        cells, [c.field_records for c in cells],
        wiring.fields if network else [], wiring.placements if network else {}, node_off, rank)
    for j, (name, rows, unit) in enumerate(field_rows):
        for e, label in enumerate(rows):
            recs.append(Recording(name, -1, ("extracellular", j, ""), e, None))
            labels.append((name, label))
            units.append(unit)
    return recs, labels, units, field_tables


def _channels(cells, is_segment: np.ndarray, order: np.ndarray):
    """Channels and ion pools, one placement per mechanism over all cells (solver order).

    Returns:
        placements: [Placement] (nodes None: every node);
        channel_nodes: name -> the solver nodes it is inserted at, None where at every
            segment (its parameters are then per node, [N]);
        channel_params: name -> {parameter: values at those nodes};
        segments_only: name -> the segment nodes, for each inserted everywhere that the
            model computes there only (``SEGMENTS_ONLY_JUNCTIONS``).
    """
    mechs: dict[str, object] = {}
    for cell in cells:
        for name, m in cell.mechanisms.items():
            other = mechs.setdefault(name, m)
            if type(other) is not type(m):
                raise ValueError(f"two different mechanisms are named {name!r} in this network "
                                 f"({type(other).__qualname__} and {type(m).__qualname__})")
            if other is not m and mechanism_key(other) != mechanism_key(m):
                raise ValueError(f"two cells of this network insert {name!r} with different "
                                 f"settings ({', '.join(differing_settings(other, m))} differ): "
                                 "give one of them another name")
    placements, channel_nodes, channel_params, segments_only = [], {}, {}, {}
    many_junctions = (~is_segment).sum() >= SEGMENTS_ONLY_JUNCTIONS
    for name, m in mechs.items():
        mask = np.concatenate([c.mechanism_nodes.get(name, np.zeros(c.n_nodes, bool)) for c in cells])
        nodes = None if mask[is_segment].all() else np.flatnonzero(mask[order]).astype(np.int32)
        computed = nodes
        if nodes is None and many_junctions:
            computed = segments_only[name] = np.flatnonzero(is_segment[order]).astype(np.int32)
        placements.append(Placement(m, computed))
        channel_nodes[name] = nodes
        table = {}
        for p, default in m.params.items():
            full = np.concatenate([c.values["mechs"][name][p] if name in c.values["mechs"]
                                   else np.full(c.n_nodes, float(default)) for c in cells])[order]
            table[p] = _put(full if nodes is None else full[nodes])
        channel_params[name] = table
    return placements, channel_nodes, channel_params, segments_only


def _synapse_at(nodes, fnode: int, name: str, pick: int | None, where: str) -> int:
    """The entry (in params order) of the synapse a recording ``name`` reads at forest node
    ``fnode``: the only synapse of its kind there, or the ``pick``-th of several (counted
    from 0 in the order they were placed: a cell's own synapses, then the network's in the
    order connected); ``nodes``: the forest node of every synapse of the kind. A ValueError
    where several are there and no pick (a location names them all), none is there, or the
    pick is not."""
    hits = np.flatnonzero(np.asarray(nodes) == fnode)
    mech, _, q = synapse_pick(name)[0].partition(".")
    if not hits.size:
        raise ValueError(f"cannot record {name!r} at {where}: no {mech} synapse there")
    if pick is None and hits.size > 1:
        raise ValueError(
            f"cannot record {name!r} at {where}: {hits.size} {mech} synapses share that node "
            f"(entries {hits.tolist()} of params['synapses'][{mech!r}]) and a location names "
            f"them all; record each on its own as '{mech}[k].{q}', k = 0 .. {hits.size - 1} in "
            f"the order they were placed there (a cell's own synapses first, then "
            f"connections in the order made), e.g. record('{mech}[1].{q}', loc)")
    if pick is not None and pick >= hits.size:
        raise ValueError(f"cannot record {name!r} at {where}: {hits.size} {mech} "
                         f"synapse{'s' if hits.size > 1 else ''} there; pick one of 0 .. "
                         f"{hits.size - 1}")
    return int(hits[pick or 0])


def _lower_points(populations, static, n_cell_sources):
    """(placements of the point-neuron populations, their static inputs (weights and delays
    still attached), params {population: {param: [n]}}, the longest static delay)."""
    from .point import PointNeuron

    points = tuple(PointPlacement(p.model, p.offset, p.size, k) for k, p in enumerate(populations)
                   if isinstance(p.model, PointNeuron))
    params = {p.name: {k: _put(v) for k, v in p.values.items()} for p in populations}
    if not static["target"]:
        return points, None, ((), {}), params, 0.0
    source = np.concatenate(static["source"])
    target = np.concatenate(static["target"]).astype(np.int32)
    weight, delay = np.concatenate(static["weight"]), np.concatenate(static["delay"])
    kinds = np.concatenate(static["kind"])
    ring_source_all = np.where(source < 0, n_cell_sources + (-1 - source), source)
    # plastic kinds: their own placements and params (weights are state of the run)
    plastic, plastic_params = [], {}
    for name, mech in static["mech"].items():
        if name == "static":
            continue
        mine = np.flatnonzero(kinds == name)
        plastic.append(PlasticPlacement(mech, ring_source_all[mine].astype(np.int32),
                                        target[mine]))
        plastic_params[name] = {k: np.concatenate([np.broadcast_to(np.asarray(v[k], float),
                                                                   (np.size(v["weight"]),))
                                                   for v, kd in zip(static["values"], static["kind"])
                                                   if kd.size and kd[0] == name])
                                for k in (*mech.params, "weight", "delay")}
    max_delay = float(delay.max(initial=0.0))
    keep = kinds == "static"
    if not keep.any():
        return points, None, (tuple(plastic), plastic_params), params, max_delay
    source, target, weight, delay = source[keep], target[keep], weight[keep], delay[keep]
    kind = np.full(source.shape, "ring", dtype=object)  # cells, neurons, spike generators
    point = np.where(source < 0, -1 - source, -1)
    for p in populations:
        mine = (point >= p.offset) & (point < p.offset + p.size)
        if p.model.name in ("poisson_generator", "dc_generator", "noise_generator"):
            kind[mine] = p.model.name
    ring = np.flatnonzero(kind == "ring")
    ring_source = np.where(source[ring] < 0, n_cell_sources + point[ring], source[ring])
    pois, dc = np.flatnonzero(kind == "poisson_generator"), np.flatnonzero(kind == "dc_generator")
    noise = np.flatnonzero(kind == "noise_generator")
    i32 = lambda a: np.asarray(a, np.int32)  # noqa: E731
    # the ring-fed connections sorted by source (CSR) for event-driven delivery
    order, ptr = _csr(ring_source, n_cell_sources + sum(p.size for p in populations))
    inputs = StaticInputs(
        ring_conn=i32(ring), ring_source=i32(ring_source), ring_target=target[ring],
        csr_order=i32(order), csr_ptr=i32(ptr), csr_target=target[ring][order],
        poisson_conn=i32(pois), poisson_gen=i32(point[pois]), poisson_target=target[pois],
        dc_conn=i32(dc), dc_gen=i32(point[dc]), dc_target=target[dc], noise_conn=i32(noise),
        noise_gen=i32(point[noise]), noise_target=target[noise], weight=weight, delay=delay)
    return points, inputs, (tuple(plastic), plastic_params), params, max_delay


def _csr(source: np.ndarray, n_sources: int):
    """(order sorting connections by source, row pointer [n_sources + 1])."""
    order = np.argsort(source, kind="stable")
    ptr = np.concatenate([[0], np.cumsum(np.bincount(source, minlength=n_sources))])
    return order, ptr


def _unique_rows(*columns):
    """(first index of each distinct row, row -> its distinct row) over equal-length columns,
    by one 1-D unique of a combined integer code (fast for 10^5 rows)."""
    code = np.zeros(len(columns[0]), np.int64)
    for col in columns:
        values, inv = np.unique(np.asarray(col), return_inverse=True)
        code = code * len(values) + inv.ravel()
    _, first, inverse = np.unique(code, return_index=True, return_inverse=True)
    return first, inverse.ravel()
