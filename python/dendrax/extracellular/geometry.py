"""Where a cell's compartments are in space: LFPy's segment geometry.

Each segment (compartment) of a section is a straight line from its start to its end
point, and the two points lie on the section's 3-D polyline at arc positions
``j L / nseg`` and ``(j + 1) L / nseg`` (linear interpolation of the pt3d points by
arc length, as NEURON's ``arc3d`` measures it). This is how LFPy's
``Cell._collect_geometry`` builds ``x, y, z [n_seg, 2]`` from NEURON (LFPy rounds the
normalised boundaries ``j / nseg`` to 6 decimals first; here they are exact, a
difference below 5e-7 of the section length). The diameter of a segment is NEURON's
``seg.diam``: the mean of the linearly interpolated pt3d diameter over the segment.

NEURON's zero-area nodes at section ends (``has_area`` False) have zero length at the
section end. Their membrane current is that of the point processes placed there (NEURON's
``i_membrane_`` at those nodes; zero without one), which the fields take as a point source
at the node, its distance clamped at the radius of the segment the node ends.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..morphology.morphology import pt3d_arc
from ..morphology.segmentation import section_pieces


class SegmentGeometry(NamedTuple):
    """Segments of one or several cells, one row per solver node (or cell node).

    Attributes:
        start: float64 [N, 3] start point of each segment (um).
        end: float64 [N, 3] end point (um).
        diam: float64 [N] NEURON's ``seg.diam`` (um); for a zero-area end node, that of
            the segment it ends.
        has_area: bool [N] False for NEURON's zero-area nodes at section ends.
    """

    start: np.ndarray
    end: np.ndarray
    diam: np.ndarray
    has_area: np.ndarray

    @property
    def mid(self) -> np.ndarray:
        """[N, 3] segment midpoints (um), where the point-source method and the dipole
        moment put each segment's current."""
        return 0.5 * (self.start + self.end)

    @property
    def length(self) -> np.ndarray:
        """[N] segment lengths (um): straight-line distance from start to end."""
        return np.linalg.norm(self.end - self.start, axis=1)

    def take(self, index) -> "SegmentGeometry":
        return SegmentGeometry(*(np.asarray(a)[index] for a in self))


def segment_geometry(cell) -> SegmentGeometry:
    """The segment geometry of ``cell`` (a ``dendrax.Cell``) in its own node numbering
    (``cell.compartments``), in the morphology's coordinates (um).

    Diameters follow ``cell.set("diam", ...)`` (the cell's current pt3d diameters);
    positions come from the morphology's 3-D points.
    """
    comps = cell.compartments
    morph = cell.morphology
    n = comps.n_nodes
    start, end = np.zeros((n, 3)), np.zeros((n, 3))
    diam = np.zeros(n)
    offsets = morph.point_offsets
    diam_all = np.asarray(cell.values["diam"], float)
    for s, sec in enumerate(morph.sections):
        arc = pt3d_arc(sec.points)
        xyz = sec.points[:, :3].astype(np.float32).astype(np.float64)  # NEURON's x3d
        d = np.abs(diam_all[offsets[s]:offsets[s + 1]].astype(np.float32).astype(np.float64))
        nseg = int(comps.nseg[s])
        length = float(arc[-1])
        bounds = np.arange(nseg + 1) * (length / nseg)
        if length == 0.0:
            pts = np.repeat(xyz[:1], nseg + 1, axis=0)
        else:
            pts = np.stack([np.interp(bounds, arc, xyz[:, k]) for k in range(3)], axis=1)
        first = int(comps.first_centre[s])
        start[first:first + nseg], end[first:first + nseg] = pts[:-1], pts[1:]
        diam[first:first + nseg] = _segment_diameters(arc, d, nseg)
        node = int(comps.end_node[s])
        if node >= 0:  # the x = 1 node: a point at the section's end
            start[node] = end[node] = pts[-1]
            diam[node] = diam[first + nseg - 1]
    for s in morph.roots:  # x = 0 nodes of root sections
        node = _root_junction(comps, s)
        if node >= 0:
            first = int(comps.first_centre[s])
            start[node] = end[node] = start[first]
            diam[node] = diam[first]
    return SegmentGeometry(start, end, diam, ~np.asarray(comps.is_junction, bool))


def _root_junction(comps, s: int) -> int:
    node = int(comps.attach_node[s])
    return node if node >= 0 and comps.is_junction[node] else -1


def _segment_diameters(arc: np.ndarray, diam: np.ndarray, nseg: int) -> np.ndarray:
    """NEURON's ``seg.diam`` [nseg]: the mean of the piecewise-linear pt3d diameter over
    each segment (integrated over the same pieces NEURON walks for areas)."""
    pcs = section_pieces(arc, nseg)
    y1 = (1.0 - pcs.f1) * diam[pcs.a1] + pcs.f1 * diam[pcs.b1]
    y2 = (1.0 - pcs.f2) * diam[pcs.a2] + pcs.f2 * diam[pcs.b2]
    integral = np.bincount(pcs.seg, weights=0.5 * (y1 + y2) * (pcs.x2 - pcs.x1), minlength=nseg)
    ds = float(arc[-1]) / nseg
    return integral / ds if ds > 0 else np.asarray(diam[:1].repeat(nseg))


def rotation_matrix(rotation) -> np.ndarray:
    """A rotation as a [3, 3] matrix: None (identity), a [3, 3] rotation matrix (checked:
    orthonormal, determinant +1), or angles (rx, ry, rz) in radians applied about the x,
    then y, then z axis (LFPy's ``Cell.set_rotation(x, y, z)``)."""
    if rotation is None:
        return np.eye(3)
    r = np.asarray(rotation, float)
    if r.shape == (3,):
        if not np.all(np.isfinite(r)):
            raise ValueError(f"rotation angles must be finite (radians), got {r}")
        cx, cy, cz = np.cos(r)
        sx, sy, sz = np.sin(r)
        rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
        ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
        rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
        return rz @ ry @ rx
    if r.shape == (3, 3):
        if not (np.all(np.isfinite(r)) and np.allclose(r @ r.T, np.eye(3), atol=1e-9)
                and np.linalg.det(r) > 0):
            raise ValueError("a rotation matrix must be orthonormal with determinant +1, got "
                             f"{r.tolist()}")
        return r
    raise ValueError(f"rotation must be None, 3 angles (rx, ry, rz radians) or a [3, 3] "
                     f"rotation matrix, got shape {r.shape}")


def soma_centre(cell, geom: SegmentGeometry | None = None) -> np.ndarray:
    """[3] the cell's centre as LFPy's ``Cell.somapos``: the mean of the soma segments'
    midpoints (the root section's segments when the cell has no "soma" region), um."""
    geom = segment_geometry(cell) if geom is None else geom
    comps = cell.compartments
    secs = [i for i, s in enumerate(cell.morphology.sections) if s.region == "soma"] or \
        cell.morphology.roots[:1]
    nodes = np.flatnonzero(np.isin(comps.section, secs) & ~np.asarray(comps.is_junction))
    return geom.mid[nodes].mean(axis=0)


def placed_geometry(cell, position=None, rotation=None) -> SegmentGeometry:
    """``cell``'s segment geometry placed in space (um): rotated about its soma centre
    (``soma_centre``) by ``rotation`` (see ``rotation_matrix``), then moved so that the
    soma centre sits at ``position`` [3] (LFPy's ``set_rotation`` then ``set_pos``).
    ``position`` None: the soma centre stays where the morphology has it."""
    geom = segment_geometry(cell)
    if position is None and rotation is None:
        return geom
    centre = soma_centre(cell, geom)
    target = centre if position is None else check_position(position)
    rot = rotation_matrix(rotation)
    move = lambda p: (p - centre) @ rot.T + target  # noqa: E731
    return geom._replace(start=move(geom.start), end=move(geom.end))


def check_position(position) -> np.ndarray:
    p = np.asarray(position, float)
    if p.shape != (3,) or not np.all(np.isfinite(p)):
        raise ValueError(f"a position is 3 finite coordinates x, y, z (um), got {position!r}")
    return p
