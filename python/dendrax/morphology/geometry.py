"""Differentiable segment geometry: areas and axial integrals as a pure JAX function.

:func:`frustum_table` walks the morphology once (numpy, static) and records every frustum
piece NEURON integrates over (see :mod:`dendrax.morphology.segmentation`): which node
receives its area and its axial integral, its length, and how the diameters at its two
ends interpolate the pt3d diameters. :func:`geometry_jax` then evaluates, with
``jax.numpy`` only,

    area[i]           = pi/2 * sum over pieces of node i of (d1 + d2) * sqrt(l^2 + ((d2 - d1)/2)^2)
    axial_integral[i] = sum over pieces on the path from node i to its parent of l / (d1 d2)

for given point diameters and per-section length scales, so ``jax.grad`` flows to both.
With the morphology's own diameters and scale 1 it reproduces :func:`compartments`'
``area`` and ``axial_integral``.

Scaling a section's length by ``s`` scales every pt3d arc position, hence every piece
length, by ``s`` (the segment boundaries move with it; the interpolation weights do not
change).
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from .morphology import Morphology
from .segmentation import PI, node_layout, piece_nodes, pt3d, section_pieces

ZERO_LENGTH_DIAM = 500.0  # um: NEURON's seg.diam in a section of zero length

__all__ = ["FrustumTable", "concatenate_tables", "frustum_table", "geometry_jax", "mean_diameters"]


@jax.tree_util.register_pytree_node_class
@dataclass(frozen=True, eq=False)
class FrustumTable:
    """Static description of the K frustum pieces of a (morphology, nseg).

    Attributes (numpy arrays, K pieces):
        area_node: int32 [K] node receiving the piece's area.
        axial_node: int32 [K] node receiving the piece's axial integral (n_nodes for a
            piece on the way to a dropped x = 1 junction: discarded).
        section: int32 [K] section of the piece (indexes the length scales).
        length: float64 [K] piece length (um) at scale 1.
        a1, b1: int32 [K] global point indices (into ``Morphology.point_diameters``);
            f1: float64 [K] weight: diameter at the start = (1 - f1) D[a1] + f1 D[b1].
        a2, b2, f2: the same for the diameter at the end of the piece.
        n_nodes, n_sections, n_points: sizes (static).
    """

    area_node: np.ndarray
    axial_node: np.ndarray
    section: np.ndarray
    length: np.ndarray
    a1: np.ndarray
    b1: np.ndarray
    f1: np.ndarray
    a2: np.ndarray
    b2: np.ndarray
    f2: np.ndarray
    n_nodes: int
    n_sections: int
    n_points: int

    _ARRAYS = ("area_node", "axial_node", "section", "length", "a1", "b1", "f1", "a2", "b2",
               "f2")

    def tree_flatten(self):
        return (tuple(getattr(self, k) for k in self._ARRAYS),
                (self.n_nodes, self.n_sections, self.n_points))

    @classmethod
    def tree_unflatten(cls, aux, children):
        return cls(*children, *aux)


def frustum_table(morph: Morphology, nseg=1, ends=()) -> FrustumTable:
    """Build the static frustum table of ``morph`` at ``nseg`` (int or int [S]); node
    numbering is that of :func:`compartments` (morph, nseg, ends)."""
    lay = node_layout(morph, nseg, ends)
    N = int(lay.parent.shape[0])
    offsets = morph.point_offsets
    cols: dict[str, list[np.ndarray]] = {k: [] for k in FrustumTable._ARRAYS}
    for i, sec in enumerate(morph.sections):
        arc, _ = pt3d(sec.points)
        pcs = section_pieces(arc, int(lay.nseg[i]))
        a_node, r_node = piece_nodes(lay, i, pcs)
        off = int(offsets[i])
        cols["area_node"].append(a_node)
        cols["axial_node"].append(np.where(r_node < 0, N, r_node))
        cols["section"].append(np.full(a_node.shape, i))
        cols["length"].append(pcs.x2 - pcs.x1)
        for k in ("a1", "b1", "a2", "b2"):
            cols[k].append(getattr(pcs, k) + off)
        cols["f1"].append(pcs.f1)
        cols["f2"].append(pcs.f2)
    arrays = {}
    for k, v in cols.items():
        arr = np.concatenate(v)
        if k in ("length", "f1", "f2"):
            arr = arr.astype(np.float64)
        else:
            arr = arr.astype(np.int32)
        arr.setflags(write=False)
        arrays[k] = arr
    return FrustumTable(**arrays, n_nodes=N, n_sections=morph.n_sections,
                        n_points=int(offsets[-1]))


def concatenate_tables(tables) -> FrustumTable:
    """One table for several cells side by side: nodes, sections and points of table k
    follow those of tables 0..k-1 (a forest), so one ``geometry_jax`` call serves them all."""
    tables = list(tables)
    node_off = np.cumsum([0] + [t.n_nodes for t in tables])
    sec_off = np.cumsum([0] + [t.n_sections for t in tables])
    pt_off = np.cumsum([0] + [t.n_points for t in tables])
    n_total = int(node_off[-1])
    cols = {k: [] for k in FrustumTable._ARRAYS}
    for t, nodes, secs, pts in zip(tables, node_off, sec_off, pt_off):
        cols["area_node"].append(t.area_node + nodes)
        cols["axial_node"].append(np.where(t.axial_node >= t.n_nodes, n_total, t.axial_node + nodes))
        cols["section"].append(t.section + secs)
        for k in ("a1", "b1", "a2", "b2"):
            cols[k].append(getattr(t, k) + pts)
        for k in ("length", "f1", "f2"):
            cols[k].append(getattr(t, k))
    arrays = {k: np.concatenate(v + [np.zeros(0)]).astype(np.float64 if k in ("length", "f1", "f2")
                                                          else np.int32)
              for k, v in cols.items()}
    return FrustumTable(**arrays, n_nodes=n_total, n_sections=int(sec_off[-1]),
                        n_points=int(pt_off[-1]))


def _frusta(table: FrustumTable, point_diameters, section_length_scale):
    """(start diameter, end diameter, length) of every frustum piece, um: [n_pieces] each."""
    D = jnp.asarray(point_diameters)
    dtype = jnp.result_type(D.dtype, jnp.float32)
    D = D.astype(dtype)
    scale = jnp.broadcast_to(jnp.asarray(section_length_scale, dtype=dtype),
                             (table.n_sections,))
    f1 = jnp.asarray(table.f1, dtype=dtype)
    f2 = jnp.asarray(table.f2, dtype=dtype)
    y1 = (1.0 - f1) * D[table.a1] + f1 * D[table.b1]
    y2 = (1.0 - f2) * D[table.a2] + f2 * D[table.b2]
    return y1, y2, scale[table.section] * jnp.asarray(table.length, dtype=dtype)


def geometry_jax(table: FrustumTable, point_diameters, section_length_scale=1.0):
    """Segment areas and axial integrals as a differentiable JAX function.

    Args:
        table: from :func:`frustum_table` (a pytree; can be passed through ``jax.jit``).
        point_diameters: [n_points] diameters (um) of all pt3d points, concatenated in
            section order (``Morphology.point_diameters``).
        section_length_scale: scalar or [n_sections] factor multiplying each section's
            length (1 = the morphology's lengths).

    Returns:
        (area [N] um2, axial_integral [N] 1/um), as :func:`compartments` returns them.
    """
    y1, y2, length = _frusta(table, point_diameters, section_length_scale)
    length = jnp.maximum(length, 1e-15)  # NEURON's guard for zero-length pieces
    half = 0.5 * (y2 - y1)
    area_terms = (y2 + y1) * jnp.sqrt(length * length + half * half)
    axial_terms = length / (y1 * y2)
    area = jax.ops.segment_sum(area_terms, table.area_node,
                               num_segments=table.n_nodes) * (0.5 * PI)
    axial = jax.ops.segment_sum(axial_terms, table.axial_node,
                                num_segments=table.n_nodes + 1)[: table.n_nodes]
    return area, axial


def mean_diameters(table: FrustumTable, point_diameters, section_length_scale=1.0):
    """Each node's segment diameter as NEURON's ``seg.diam``: the mean of the diameter
    along the segment (its frusta weighted by length), differentiable in the point
    diameters and lengths.

    Args:
        table, point_diameters, section_length_scale: as :func:`geometry_jax`.

    Returns:
        diam [N] um (0 at the zero-area nodes, which hold no membrane; 500 in a segment of
        zero length, as NEURON gives there).
    """
    y1, y2, length = _frusta(table, point_diameters, section_length_scale)
    total = jax.ops.segment_sum(length, table.area_node, num_segments=table.n_nodes)
    weighted = jax.ops.segment_sum(0.5 * (y1 + y2) * length, table.area_node,
                                   num_segments=table.n_nodes)
    pieces = jax.ops.segment_sum(jnp.ones_like(length), table.area_node,
                                 num_segments=table.n_nodes)
    empty = jnp.where(pieces > 0, ZERO_LENGTH_DIAM, 0.0)
    return jnp.where(total > 0, weighted / jnp.where(total > 0, total, 1.0), empty)
