"""Where everything of a lowered description sits (``dendrax.lower(x).layout``): the
offsets of its cells, sections and points in the concatenated forest, the solver's node
order, its recordings' labels and units, and where a parameter or a location lives in the
params pytree (``Layout.slots``, ``Layout.node``)."""

from __future__ import annotations

import difflib
import hashlib
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from . import morphology as morph_lib
from .locations import CellView, Location, SectionRef


@dataclass(frozen=True)
class ParamSlots:
    """Entries of one params leaf: ``params[path[0]][path[1]]...[index]``.

    Attributes:
        path: keys into the params pytree, e.g. ("channels", "hh", "gnabar") or ("cable", "cm").
        index: int [k] entries of that leaf.
        section: int [k] section of each entry (numbered over the whole network).
        node: int [k] compartment of each entry in the forest's own numbering (-1 for
            per-section and per-point leaves).
        cell: int [k] cell of each entry.
        region: str [k] region of each entry's section.
        kind: what one entry is: "node", "section", "point" or "synapse".
    """

    path: tuple
    index: np.ndarray
    section: np.ndarray
    node: np.ndarray
    cell: np.ndarray
    region: np.ndarray
    kind: str


@dataclass(frozen=True, eq=False)
class SynapseGroup:
    """The synapses of one kind over the network, in params order."""

    mech: object
    cell: np.ndarray  # int [n] postsynaptic cell
    node: np.ndarray  # int [n] postsynaptic forest node (own numbering)
    graded: bool


@dataclass(frozen=True, eq=False)
class Layout:
    """Where everything of a lowered description sits.

    Attributes:
        cells: the cell descriptions.
        node_offset, section_offset, point_offset: int [n_cells + 1]: cell c owns forest
            nodes node_offset[c]:node_offset[c+1] (its own numbering shifted), and so on.
        order: int [N]: order[k] is the forest node at solver index k; rank is its inverse.
        frustums: the forest's ``FrustumTable`` (differentiable geometry).
        lengths: float [n_sections] section lengths at scale 1 (um).
        section_of: int [N] global section of each solver node.
        regions: str [n_sections] region of each section.
        channels: per channel name, the solver nodes it sits on (None: all), where its
            parameters are.
        segments_only: per channel inserted everywhere that the model computes at its
            segment nodes only (``dendrax.lowering.SEGMENTS_ONLY_JUNCTIONS``), those solver
            nodes; its parameters stay per node.
        synapses: per synapse name, a ``SynapseGroup``.
        labels: (name, Location) of every recording, in order (traces and statistics).
        units: the unit of each recording ("mV", "nA", ...).
        spike_cells: int [Q] cell of each recorded spike source.
        trains: per event placement, the spike trains of its train-fed synapses.
        waveforms: (t, i) of each waveform clamp.
        max_delay, max_graded_delay: the longest delays (ms) built in.
        network: whether the description is a network (labels carry cell indices).
        populations: the point populations (``PopulationSpec``), in order.
        plastic: the plastic synapse kinds onto point neurons, in loop order.
        static_csr: the ring-fed static connections sorted by source, as device arrays
            {"ptr", "target", "conn": index into params["synapses"]["static"]} (inputs of the
            compiled loop, not constants in it).
        spike_shift: int [Q]: steps from a recorded spike's raster row to its time (1 for
            point neurons, which spike at the end of their update step).
        max_static_delay: the longest delay (ms) of a connection onto point neurons.
    """

    cells: tuple
    node_offset: np.ndarray
    section_offset: np.ndarray
    point_offset: np.ndarray
    order: np.ndarray
    rank: np.ndarray
    frustums: morph_lib.FrustumTable
    lengths: np.ndarray
    section_of: np.ndarray
    regions: np.ndarray
    channels: dict
    synapses: dict
    labels: tuple
    units: tuple
    spike_cells: np.ndarray
    trains: tuple
    waveforms: tuple
    max_delay: float
    max_graded_delay: float
    network: bool
    populations: tuple = ()
    plastic: tuple = ()
    static_csr: dict | None = None
    spike_shift: np.ndarray = None
    max_static_delay: float = 0.0
    fields: tuple = ()  # extracellular readouts' tables (dendrax.extracellular.fields)
    segments_only: dict = field(default_factory=dict)

    @cached_property
    def fingerprint(self) -> str:
        """A short hash of what names the recorded sites (sections' regions, nodes per
        cell, recordings): two descriptions with the same one label results alike."""
        h = hashlib.sha1()
        for part in ("\0".join(map(str, self.regions)), np.asarray(self.node_offset).tobytes(),
                     repr(self.labels), repr(self.units), repr(self.spike_cells.tolist())):
            h.update(part if isinstance(part, bytes) else part.encode())
        return h.hexdigest()[:16]

    @property
    def n_nodes(self) -> int:
        return int(self.order.shape[0])

    def cell_of(self, loc: Location) -> int:
        if loc.cell is None:
            if len(self.cells) != 1:
                raise ValueError(f"{loc} does not say which cell it is on: use "
                                 "net.cell(i).soma(...) or net.cell(i).section(k)(x)")
            return 0
        if not 0 <= loc.cell < len(self.cells):
            raise IndexError(f"cell {loc.cell} out of range: the network has {len(self.cells)} cells")
        return int(loc.cell)

    def forest_node(self, loc: Location) -> int:
        """The forest node (own numbering) of a location."""
        c = self.cell_of(loc)
        return int(self.node_offset[c]) + self.cells[c].node(loc)

    def node(self, loc: Location) -> int:
        """The solver index of a location (what ``Model`` arrays and v [N] are indexed by)."""
        return int(self.rank[self.forest_node(loc)])

    # --- selections for parameters ---------------------------------------
    def _select(self, where):
        """(forest node mask [N], section mask [n_sections]) of ``where``."""
        nodes = np.zeros(self.n_nodes, bool)
        secs = np.zeros(self.regions.shape[0], bool)
        items = where if isinstance(where, (list, tuple)) and not isinstance(where, Location) \
            else [where]
        for w in items:
            cells = range(len(self.cells))
            if isinstance(w, (Location, SectionRef)) and (w.cell is not None or len(self.cells) == 1):
                cells = [self.cell_of(Location(0, 0.0, w.cell))]
            elif isinstance(w, CellView):
                cells, w = [w.index], None  # a network's cell view: the whole cell
            elif isinstance(w, (Location, SectionRef)) or (
                    self.network and isinstance(w, (int, np.integer))):
                raise ValueError(f"{w!r} does not say which cell it is on: use net.cell(i)...")
            found = False
            for c in cells:
                cell = self.cells[c]
                try:
                    s = np.asarray(cell.sections(w), int)
                except ValueError:
                    if len(cells) == 1:
                        raise
                    continue
                found = True
                secs[self.section_offset[c] + s] = True
                nodes[self.node_offset[c] + cell.nodes(w)] = True
            if not found:
                raise ValueError(f"no cell of the network has {w!r}")
        return nodes, secs

    def slots(self, name: str, where=None) -> ParamSlots:
        """Where parameter ``name`` at ``where`` lives in the params pytree.

        Args:
            name: "cm", "Ra", "diam", "L", an ion parameter ("ena", ...), "<mech>.<param>"
                (e.g. "hh.gnabar") or "<synapse>.<param>" (e.g. "Exp2Syn.weight").
            where: None (everywhere), a region name, a section or location (of a cell in a
                network: ``net.cell(i).soma(0.5)``), a network's cell (``net.cell(i)``), or a
                list of these.
        """
        nodes_sel, secs_sel = self._select(where)
        sec_cell = np.repeat(np.arange(len(self.cells)), np.diff(self.section_offset))
        if name in ("Ra", "L"):
            s = np.flatnonzero(secs_sel)
            return ParamSlots(("cable", name), s, s, np.full(s.shape, -1), sec_cell[s],
                              self.regions[s], "section")
        if name == "diam":
            s = np.flatnonzero(secs_sel)
            pt_off = self._section_points()
            idx = np.concatenate([np.arange(pt_off[k], pt_off[k + 1]) for k in s] or [np.zeros(0, int)])
            sec_of = np.repeat(s, pt_off[s + 1] - pt_off[s])
            return ParamSlots(("cable", "diam"), idx, sec_of, np.full(idx.shape, -1),
                              sec_cell[sec_of], self.regions[sec_of], "point")
        node_cell = np.repeat(np.arange(len(self.cells)), np.diff(self.node_offset))
        is_segment = np.concatenate([~c.compartments.is_junction for c in self.cells])
        mech, _, param = name.partition(".")
        ion_params = self.cells[0].values["ions"]
        if name == "cm" or name in ion_params:
            path = ("cable", "cm") if name == "cm" else ("ions", name)
            forest = np.flatnonzero(nodes_sel & is_segment)
            idx = self.rank[forest]
            o = np.argsort(idx)
            forest, idx = forest[o], idx[o]
            sec = self.section_of[idx]
            return ParamSlots(path, idx, sec, forest, node_cell[forest], self.regions[sec], "node")
        if mech in self.synapses:
            group = self.synapses[mech]
            keys = set(group.mech.params) | ({"delay"} if group.graded else {"weight", "delay"})
            if param not in keys:
                raise ValueError(f"{mech} has no parameter {param!r}; its parameters: {sorted(keys)}")
            keep = np.flatnonzero(nodes_sel[group.node])
            if keep.size == 0:
                raise ValueError(f"no {mech} synapse at {where!r}")
            forest = group.node[keep]
            sec = self.section_of[self.rank[forest]]
            return ParamSlots(("synapses", mech, param), keep, sec, forest, group.cell[keep],
                              self.regions[sec], "synapse")
        if mech not in self.channels:
            known = ["cm", "Ra", "diam", "L", *ion_params,
                     *(f"{m}.{p}" for c in self.cells for m in c.values["mechs"]
                       for p in c.values["mechs"][m]),
                     *(f"{s}.{p}" for s, g in self.synapses.items() for p in g.mech.params)]
            near = difflib.get_close_matches(name, sorted(set(known)), n=3)
            raise ValueError(f"unknown parameter {name!r}" + (f"; did you mean {near}?" if near
                             else f"; known: {sorted(set(known))}") +
                             ("" if "." not in name else f" (is {mech!r} inserted?)"))
        table = next(c.values["mechs"][mech] for c in self.cells if mech in c.values["mechs"])
        if param not in table:
            near = difflib.get_close_matches(param, list(table), n=3)
            raise ValueError(f"{mech} has no parameter {param!r}; its parameters: {sorted(table)}"
                             + (f" (did you mean {near}?)" if near else ""))
        mask = np.concatenate([c.mechanism_nodes.get(mech, np.zeros(c.n_nodes, bool))
                               for c in self.cells])
        forest = np.flatnonzero(nodes_sel & mask)
        if forest.size == 0:
            raise ValueError(f"{mech} is not inserted in {where!r}")
        ranks = self.rank[forest]
        solver = self.channels[mech]
        idx = ranks if solver is None else np.searchsorted(solver, ranks)
        o = np.argsort(idx)
        forest, idx = forest[o], idx[o]
        sec = self.section_of[ranks[o]]
        return ParamSlots(("channels", mech, param), idx, sec, forest, node_cell[forest],
                          self.regions[sec], "node")

    def _section_points(self) -> np.ndarray:
        """Global point offsets of every section: [n_sections + 1]."""
        out = [np.zeros(1, int)]
        for c, cell in enumerate(self.cells):
            out.append(cell.morphology.point_offsets[1:] + self.point_offset[c])
        return np.concatenate(out)
