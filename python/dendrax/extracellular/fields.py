"""Extracellular readouts recorded inside a run: what a description asks for, and the
matrices lowering turns it into.

Each readout is a linear map of the membrane currents (``i_membrane``, nA, NEURON's
``i_membrane_``) of every compartment: electrode potentials (an [E x N] matrix, uV per
nA) or current dipole moments ([3 x N], the segment midpoints, nA um per nA). The time
loop applies it to the step's currents (``observe``), so no i_membrane trace is kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

import jax
import jax.numpy as jnp

from .dipole import dipole_matrix
from .electrodes import Electrodes
from .geometry import placed_geometry

UNITS = {"lfp": "uV", "dipole": "nA um"}
AXES = ("x", "y", "z")
RESERVED = ("v", "i_cap", "i_membrane", "ina", "ik", "ica")


@dataclass(frozen=True, eq=False)
class FieldRecord:
    """One extracellular readout asked for.

    Attributes:
        name: its key in the Result (``res[name]``).
        kind: "lfp" (electrode potentials, uV) or "dipole" (current dipole moment, nA um).
        electrodes: the ``Electrodes`` of an "lfp".
        cells: network cell indices it sums over (None: every cell; for a cell's own
            record, that cell).
        per_cell: "dipole" only: one moment per cell (rows 3 k + axis) instead of the sum.
    """

    name: str
    kind: str
    electrodes: Electrodes | None = None
    cells: tuple | None = None
    per_cell: bool = False


class ElectrodeRef(NamedTuple):
    """The label of one row of an extracellular potential: electrode ``index`` of the
    readout (``cell``: the cell it belongs to when recorded on one cell of a network)."""

    index: int
    cell: int | None = None

    def describe(self) -> str:
        return f"electrode[{self.index}]" + ("" if self.cell is None else f" of cell[{self.cell}]")


class DipoleRef(NamedTuple):
    """The label of one row of a current dipole moment: ``axis`` "x", "y" or "z", of cell
    ``cell`` (None: summed over the cells recorded)."""

    axis: str
    cell: int | None = None

    def describe(self) -> str:
        return f"dipole.{self.axis}" + ("" if self.cell is None else f" of cell[{self.cell}]")


def check_name(name, taken) -> str:
    """A readout's name: a non-empty string no other readout of the target uses and that
    is not a membrane quantity's."""
    if not isinstance(name, str) or not name or "." in name or name in RESERVED:
        raise ValueError(f"a readout name must be a non-empty string without '.' that is not "
                         f"one of {RESERVED}, got {name!r}")
    if name in taken:
        raise ValueError(f"a readout named {name!r} is already recorded; pass another name=")
    return name


def check_electrodes(electrodes) -> Electrodes:
    if not isinstance(electrodes, Electrodes):
        raise TypeError(f"expected dendrax.Electrodes(xyz, sigma=, method=), got "
                        f"{type(electrodes).__name__}")
    return electrodes


def lower_fields(cells, own, network_records, placements, node_offset, rank):
    """The readouts of a description as rows over the solver's nodes.

    Args:
        cells: the cells, in order.
        own: per cell, its own ``FieldRecord`` list (``Cell.field_records``).
        network_records: the network's ``FieldRecord`` list (cells None: all).
        placements: {cell index: (position or None, rotation or None)}.
        node_offset: int [C + 1] forest offsets of the cells; rank: forest -> solver index.

    Returns:
        (rows: per readout, (name, [labels], unit); tables: per readout, a dict of numpy
        arrays for ``observe``: {"matrix": [R, N]} or, per-cell dipoles, {"points": [3, N],
        "group": [N] int, "slots": [C]}).
    """
    todo = [(r, (c,)) for c, recs in enumerate(own) for r in recs]
    todo += [(r, tuple(range(len(cells))) if r.cells is None else r.cells) for r in network_records]
    names = [r.name for r, _ in todo]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"two extracellular readouts are named {dup}: give each its own name=")
    if not todo:
        return [], []
    n = int(node_offset[-1])
    geoms, roots = {}, {}

    def geometry(c):
        if c not in geoms:
            pos, rot = placements.get(c, (None, None))
            geoms[c] = placed_geometry(cells[c], pos, rot)
            comps = cells[c].compartments
            roots[c] = int(comps.first_centre[cells[c].morphology.roots[0]])
        return geoms[c]

    def columns(c):
        return rank[int(node_offset[c]) + np.arange(cells[c].n_nodes)]

    rows, tables = [], []
    network = len(own) > 1 or bool(network_records)
    for rec, which in todo:
        single = rec in [r for recs in own for r in recs]
        cell_label = which[0] if single and network else None
        if rec.kind == "lfp":
            m = np.zeros((len(rec.electrodes), n))
            for c in which:
                m[:, columns(c)] += rec.electrodes.matrix(geometry(c), roots=[roots[c]])
            labels = [ElectrodeRef(e, cell_label) for e in range(len(rec.electrodes))]
            tables.append({"matrix": m})
        elif not rec.per_cell:
            m = np.zeros((3, n))
            for c in which:
                m[:, columns(c)] += dipole_matrix(geometry(c))
            labels = [DipoleRef(a, cell_label) for a in AXES]
            tables.append({"matrix": m})
        else:
            points, group = np.zeros((3, n)), np.zeros(n, np.int32)
            for k, c in enumerate(which):
                cols = columns(c)
                points[:, cols] = dipole_matrix(geometry(c))
                group[cols] = k
            labels = [DipoleRef(a, c) for c in which for a in AXES]
            tables.append({"points": points, "group": group, "slots": np.zeros(len(which))})
        rows.append((rec.name, labels, UNITS[rec.kind]))
    return rows, tables


def device_tables(tables, dtype) -> tuple:
    """The tables as JAX arrays of the simulation's float dtype (inputs of the compiled
    loop, not constants in it)."""
    out = []
    for t in tables:
        out.append({k: jnp.asarray(v, jnp.int32 if k == "group" else dtype) for k, v in t.items()})
    return tuple(out)


def observe(tables, i_membrane) -> tuple:
    """Each readout's rows [R] from the step's membrane currents ``i_membrane`` [N] (nA)."""
    out = []
    for t in tables:
        if "matrix" in t:
            out.append(t["matrix"] @ i_membrane)
        else:
            per = jax.ops.segment_sum((t["points"] * i_membrane[None, :]).T, t["group"],
                                      num_segments=t["slots"].shape[0])  # [C, 3]
            out.append(per.reshape(-1))
    return tuple(out)
