"""NEURON's compartmentalisation of a morphology: nseg rules and the node tree.

NEURON divides each section into ``nseg`` equal segments (in arc length). Its node
tree has one node at each segment centre, x = (j + 0.5)/nseg, plus a zero-area node at
each section's x = 1 end and one at the x = 0 end of each root section. A child
attached at ``parent(x)`` joins

* for 0 < x < 1: the centre node of parent segment ``min(int(nseg * x), nseg - 1)``
  (so at a segment boundary x = j/nseg, the segment above it, j),
* for x = 1: the parent's x = 1 node,
* for x = 0: whatever node the parent's own 0 end joins (the root's x = 0 node for a
  root parent).

Segment areas and axial resistances come from the pt3d points, integrating the
piecewise-linear diameter over the frusta between the points and the half-segment
boundaries, exactly as NEURON does (its ``nrn_area_ri``): the area of a segment is the
lateral area of its frusta (including the annulus of a step in diameter between two
points at the same place), and ``seg.ri()`` is the resistance between a segment's
centre and its parent node (half of this segment plus half of the previous one, or of
the parent section's attachment node for the first segment).

:func:`compartments` keeps a zero-area junction node only where some section attaches
to it, or at a section end given in ``ends`` (where a point process injects current:
NEURON puts it on that end node, which then has a voltage of its own); a zero-area leaf
node nothing is placed on has its neighbour's voltage, so dropping it changes no
voltage. The nodes are ordered so that parents come first (``parent[i] < i``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..quantities import is_number
from .morphology import Morphology

__all__ = ["Compartments", "compartments", "node_index", "dropped_end", "nseg_d_lambda",
           "nseg_max_length", "resolve_nseg", "refuse_zero_length", "renumbering",
           "path_distances", "section_pieces", "Pieces", "PI"]

PI = 3.14159265358979323846  # NEURON's PI
_RI_FACTOR = 4.0 * 0.01 / PI  # ri [MOhm] = Ra [ohm cm] * _RI_FACTOR * integral [1/um]


# --------------------------------------------------------------------------- nseg rules
def pt3d(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(arc [P], diam [P]) of a section's points as NEURON holds them (float32 storage,
    float32 differences, float64 arc accumulation)."""
    from .morphology import pt3d_arc
    diam = np.abs(np.asarray(points)[:, 3].astype(np.float32).astype(np.float64))
    return pt3d_arc(points), diam


def _lambda_f(arc: np.ndarray, diam: np.ndarray, freq: float, Ra: float, cm: float) -> float:
    """NEURON stdlib's ``lambda_f(freq)`` (um) from the pt3d points of one section."""
    if cm == 0:
        return 1e10
    lam = 0.0
    x1, d1 = float(arc[0]), float(diam[0])
    for x2, d2 in zip(arc[1:].tolist(), diam[1:].tolist()):
        lam += (x2 - x1) / math.sqrt(d1 + d2)
        x1, d1 = x2, d2
    lam *= math.sqrt(2) * 1e-5 * math.sqrt(4 * PI * freq * Ra * cm)
    L = float(arc[-1])
    return L / lam if lam != 0 else math.inf


def _real(value, name: str, valid: str) -> np.ndarray:
    """value as a float64 array; a TypeError naming ``name`` and its valid range
    ``valid`` for anything but real numbers (text, booleans, None, complex)."""
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError):  # a ragged list
        arr = np.asarray(None, dtype=object)
    if arr.dtype.kind not in "iuf":
        raise TypeError(f"{name} must be {valid}, got {value!r}")
    return arr.astype(np.float64)


def _rule_number(value, name: str, valid: str, low: float, *, low_ok: bool = False,
                 high: float = math.inf) -> float:
    """One real number in (low, high] (``low_ok``: [low, high]); a TypeError or
    ValueError naming ``name`` and its valid range ``valid`` otherwise."""
    arr = _real(value, name, valid)
    if arr.ndim:
        raise TypeError(f"{name} must be {valid} (one number), got {value!r}")
    x = float(arr)
    if not (math.isfinite(x) and (x >= low if low_ok else x > low) and x <= high):
        raise ValueError(f"{name} must be {valid}, got {x!r}")
    return x


def _per_section(value, name: str, valid: str, n: int, *, zero_ok: bool) -> np.ndarray:
    """float64 [n] from one number or one per section, each finite and > 0 (``zero_ok``:
    >= 0); a TypeError or ValueError naming ``name`` and ``valid`` otherwise."""
    arr = _real(value, name, valid)
    if arr.shape not in ((), (n,)):
        raise ValueError(f"{name} must be one number or one per section ({n}), got shape "
                         f"{arr.shape}")
    bad = ~np.isfinite(arr) | ((arr < 0) if zero_ok else (arr <= 0))
    if np.any(bad):
        first = float(arr[np.argwhere(bad)[0][0]] if arr.ndim else arr)
        raise ValueError(f"{name} must be {valid}, got {first!r}")
    return np.broadcast_to(arr, (n,))


def nseg_d_lambda(morph: Morphology, d_lambda: float = 0.1, freq: float = 100.0,
                  Ra: float = 35.4, cm: float = 1.0, *, round_up: float = 0.999) -> np.ndarray:
    """nseg per section by NEURON's d_lambda rule.

    ``nseg = int((L / (d_lambda * lambda_f(freq)) + round_up) / 2) * 2 + 1``, the
    CellBuilder's ``geom_nseg`` (``round_up = 0.999``; the NEURON book's fixnseg.hoc
    uses 0.9), with ``lambda_f`` the AC length constant at ``freq`` (Hz) computed from
    all the 3-D points as NEURON's stdlib does.

    Args:
        morph: the morphology.
        d_lambda: the longest segment allowed, as a fraction of ``lambda_f`` (finite,
            > 0).
        freq: frequency (Hz, finite, > 0) of the AC length constant.
        Ra: axial resistivity (ohm cm, finite, > 0): one number or one per section.
        cm: specific capacitance (uF/cm2, finite, >= 0): one number or one per section.
            cm = 0 makes ``lambda_f`` 1e10 um, as NEURON's (so nseg 1).
        round_up: added before rounding down to the odd number (in [0, 1]).

    Returns:
        int64 [S] odd nseg >= 1.

    Raises:
        TypeError: ``morph`` not a Morphology, or an argument that is not a real number.
        ValueError: an argument outside its range, naming it (NEURON refuses Ra = 0;
            its ``lambda_f`` divides by zero for freq = 0, ``geom_nseg`` for
            d_lambda = 0); or a section the rule gives more than 32767 segments.
    """
    if not isinstance(morph, Morphology):
        raise TypeError(f"nseg_d_lambda takes a Morphology, got {type(morph).__name__}")
    d_lambda = _rule_number(d_lambda, "d_lambda", "a finite number > 0", 0.0)
    freq = _rule_number(freq, "freq", "a finite number > 0 (Hz)", 0.0)
    round_up = _rule_number(round_up, "round_up", "a number in [0, 1]", 0.0, low_ok=True,
                            high=1.0)
    n = morph.n_sections
    ras = _per_section(Ra, "Ra", "finite and > 0 ohm cm", n, zero_ok=False)
    cms = _per_section(cm, "cm", "finite and >= 0 uF/cm2", n, zero_ok=True)
    out = np.empty(n, dtype=np.int64)
    for i, sec in enumerate(morph.sections):
        arc, diam = pt3d(sec.points)
        lam = _lambda_f(arc, diam, float(freq), float(ras[i]), float(cms[i]))
        L = float(arc[-1])
        ratio = L / (d_lambda * lam) if lam not in (0.0, math.inf) else 0.0
        if not ratio < 2 * 32767:  # beyond any nseg (an inf or nan would not convert)
            raise ValueError(f"the d_lambda rule gives section {i} ({sec.region}, L = {L:g} "
                             f"um) more than 32767 segments (d_lambda = {d_lambda:g}, freq = "
                             f"{freq:g} Hz): check d_lambda, freq, Ra, cm and the geometry")
        out[i] = int((ratio + round_up) / 2) * 2 + 1
    return out


def nseg_max_length(morph: Morphology, max_length: float, *, odd: bool = False) -> np.ndarray:
    """The smallest nseg per section such that no segment is longer than ``max_length``
    (um); with ``odd=True`` rounded up to an odd number (so that x = 0.5 is a centre).

    Returns:
        int64 [S] nseg >= 1.
    """
    max_length = _rule_number(max_length, "max_length", "a finite number > 0 (um)", 0.0)
    n = np.maximum(1, np.ceil(morph.lengths / max_length - 1e-9))
    if np.any(n > 32767):  # beyond any nseg (and int64 would wrap an overflow)
        i = int(np.argmax(n))
        raise ValueError(f"max_length = {max_length:g} um gives section {i} (L = "
                         f"{morph.lengths[i]:g} um) more than 32767 segments")
    n = n.astype(np.int64)
    if odd:
        n = n + (n % 2 == 0)
    return n


def _nseg_array(morph: Morphology, nseg) -> np.ndarray:
    arr = np.asarray(nseg)
    if arr.dtype.kind not in "iuf" or not np.all(np.isfinite(arr)) \
            or not np.all(np.equal(np.mod(arr, 1), 0)):
        raise ValueError(f"nseg must be integers, got {nseg!r}")
    if arr.ndim == 0:
        arr = np.full(morph.n_sections, arr)
    if arr.shape != (morph.n_sections,):
        raise ValueError(f"nseg must be an int or one int per section "
                         f"({morph.n_sections}), got shape {arr.shape}")
    arr = arr.astype(np.int64)
    if np.any(arr < 1) or np.any(arr > 32767):
        raise ValueError("nseg must be between 1 and 32767")
    return arr


# --------------------------------------------------------------------------- pieces
@dataclass(frozen=True)
class Pieces:
    """The frusta NEURON integrates over for one section, in its order.

    Piece k spans arc positions x1[k]..x2[k] (um) of segment ``seg[k]``, half
    ``half[k]`` (0: from the segment's start to its centre, 1: from the centre to its
    end). The diameter at its start is ``(1 - f1) * d[a1] + f1 * d[b1]`` and at its end
    ``(1 - f2) * d[a2] + f2 * d[b2]``, with d the section's pt3d diameters.
    """

    seg: np.ndarray
    half: np.ndarray
    x1: np.ndarray
    x2: np.ndarray
    a1: np.ndarray
    b1: np.ndarray
    f1: np.ndarray
    a2: np.ndarray
    b2: np.ndarray
    f2: np.ndarray


def section_pieces(arc: np.ndarray, nseg: int) -> Pieces:
    """Split a section (pt3d arc positions [P], um) into NEURON's integration pieces.

    The pieces are bounded by the pt3d points and the segment half boundaries, walked in
    the same order and with the same floating-point positions as NEURON, so that sums
    over them reproduce NEURON's ``area()`` and ``ri()``.
    """
    arc = [float(a) for a in arc]
    npt = len(arc)
    ds = arc[-1] / float(nseg)
    rows = []
    j = 0
    x1 = arc[0]
    y1 = (0, 0, 0.0)
    for inode in range(nseg):
        si = float(inode) * ds
        for ihalf in (0, 1):
            sip = si + ds / 2.0
            while True:
                jp = j + 1
                xj, xjp = arc[j], arc[jp]
                if xjp > sip or jp == npt - 1:
                    frac = 1.0 if abs(xjp - xj) < 1e-10 else (sip - xj) / (xjp - xj)
                    x2, y2, jnext = sip, (j, jp, frac), j
                else:
                    x2, y2, jnext = xjp, (jp, jp, 0.0), jp
                rows.append((inode, ihalf, x1, x2) + y1 + y2)
                x1, y1 = x2, y2
                if j == jnext:
                    break
                j = jnext
            si = sip
    cols = list(zip(*rows))
    ints = lambda c: np.array(c, dtype=np.int64)  # noqa: E731
    flts = lambda c: np.array(c, dtype=np.float64)  # noqa: E731
    return Pieces(seg=ints(cols[0]), half=ints(cols[1]), x1=flts(cols[2]), x2=flts(cols[3]),
                  a1=ints(cols[4]), b1=ints(cols[5]), f1=flts(cols[6]),
                  a2=ints(cols[7]), b2=ints(cols[8]), f2=flts(cols[9]))


def _piece_terms(delta, y1, y2):
    """(area term, axial term) of pieces, with NEURON's guards for zero lengths."""
    delta = np.where(delta < 1e-15, 1e-15, delta)
    temp = y2 * y1 / delta
    temp = np.where(temp == 0, 1e-15, temp)
    axial = 1.0 / temp
    half = 0.5 * (y2 - y1)
    area = (y2 + y1) * np.sqrt(delta * delta + half * half)
    return area, axial


# --------------------------------------------------------------------------- the tree
@dataclass(frozen=True, eq=False)
class Compartments:
    """The node tree NEURON solves for a morphology at given nseg (N nodes, S sections).

    Attributes:
        parent: int32 [N] parent node, parent[i] < i; -1 for a root.
        section: int32 [N] the section owning each node.
        x: float64 [N] position in its section: (j + 0.5)/nseg for segment centres,
            0.0 or 1.0 for junction nodes.
        is_junction: bool [N] NEURON's zero-area nodes at section ends.
        area: float64 [N] membrane area (um2), NEURON's ``seg.area()`` (0 at junctions).
        axial_integral: float64 [N] (1/um) integral of ds / d(s)^2 along the path from
            node i to parent[i] (inside node i's section), so that
            ``ri_i [MOhm] = 4e-2 * Ra / pi * axial_integral[i]`` is NEURON's
            ``seg.ri()``. For a root that is a segment centre it is the half segment
            from the centre to the section's 0 end (NEURON's ``ri()`` there); 0 for a
            root junction. A root's x = 0 node kept only for a point process (``ends``)
            hangs off the first centre as a leaf (the same circuit; the segment stays the
            root): the half segment is then the leaf's, and the centre's is 0.
        nseg: int32 [S] segments per section.
        first_centre: int32 [S] node of the first segment centre of each section; the
            centres of section s are nodes first_centre[s] + j, j < nseg[s].
        end_node: int32 [S] the x = 1 junction node of each section, -1 if dropped.
        attach_node: int32 [S] the node each section's 0 end joins (the parent's node at
            parent_x; for a root, its x = 0 junction node, -1 if dropped).
    """

    parent: np.ndarray
    section: np.ndarray
    x: np.ndarray
    is_junction: np.ndarray
    area: np.ndarray
    axial_integral: np.ndarray
    nseg: np.ndarray
    first_centre: np.ndarray
    end_node: np.ndarray
    attach_node: np.ndarray

    def __post_init__(self) -> None:
        for name in self.__dataclass_fields__:
            arr = np.array(getattr(self, name), copy=True)
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)

    @property
    def n_nodes(self) -> int:
        return int(self.parent.shape[0])

    @property
    def n_sections(self) -> int:
        return int(self.nseg.shape[0])

    def ri(self, Ra=35.4) -> np.ndarray:
        """float64 [N] axial resistance (MOhm) from each node to its parent, NEURON's
        ``seg.ri()``, for Ra (ohm cm; a scalar or one value per section)."""
        ra = np.broadcast_to(np.asarray(Ra, dtype=np.float64), (self.n_sections,))
        return ra[self.section] * _RI_FACTOR * self.axial_integral

    def total_area(self) -> float:
        return float(self.area.sum())

    def __repr__(self) -> str:
        return (f"Compartments(n_nodes={self.n_nodes}, n_sections={self.n_sections}, "
                f"n_junctions={int(self.is_junction.sum())})")


@dataclass(frozen=True)
class _Layout:
    """Node numbering shared by :func:`compartments` and the frustum table."""

    nseg: np.ndarray
    parent: np.ndarray
    section: np.ndarray
    x: np.ndarray
    is_junction: np.ndarray
    first_centre: np.ndarray
    end_node: np.ndarray
    attach_node: np.ndarray
    root_node: np.ndarray  # x = 0 junction of each root section (-1 if dropped / not root)
    root_leaf: np.ndarray  # x = 0 node of a root kept for a point process only (-1: none)


def _end_masks(morph: Morphology, ends) -> tuple[np.ndarray, np.ndarray]:
    """(keep the x = 1 node [S], keep the root's x = 0 node [S]) of the section ends
    ``ends``: (section, x) pairs with x = 1, or x = 0 on a root section."""
    S = morph.n_sections
    end, root = np.zeros(S, dtype=bool), np.zeros(S, dtype=bool)
    for section, x in ends:
        s, x = int(section), float(x)
        if not 0 <= s < S:
            raise IndexError(f"section {section} out of range (0..{S - 1})")
        if x == 1.0:
            end[s] = True
        elif x == 0.0 and morph.sections[s].parent < 0:
            root[s] = True
        else:
            raise ValueError(f"({section}, {x:g}) is not a section end with a node of its own: "
                             "give x = 1, or x = 0 of a root section")
    return end, root


def node_layout(morph: Morphology, nseg, ends=()) -> _Layout:
    ns = _nseg_array(morph, nseg)
    S = morph.n_sections
    secs = morph.sections
    # which junctions something attaches to; "attach" as (kind, section, j)
    attach: list[tuple[str, int, int]] = []
    for i, s in enumerate(secs):
        if s.parent < 0:
            attach.append(("root", i, 0))
            continue
        p, x = s.parent, s.parent_x
        if x == 1.0:
            attach.append(("end", p, 0))
        elif x == 0.0:
            attach.append(attach[p])
        else:
            attach.append(("centre", p, min(int(float(ns[p]) * x), int(ns[p]) - 1)))
    needed_end, kept_root = _end_masks(morph, ends)
    needed_root = np.zeros(S, dtype=bool)
    for i, s in enumerate(secs):
        if s.parent < 0:
            continue
        kind, p, _ = attach[i]
        if kind == "end":
            needed_end[p] = True
        elif kind == "root":
            needed_root[p] = True
    # a root's x = 0 node that only a point process needs hangs off the first centre as a
    # leaf (the same circuit; the thick soma stays the root of the elimination)
    leaf_root = kept_root & ~needed_root

    parent, section, xs, junction = [], [], [], []
    first_centre = np.zeros(S, dtype=np.int64)
    end_node = np.full(S, -1, dtype=np.int64)
    root_node = np.full(S, -1, dtype=np.int64)
    root_leaf = np.full(S, -1, dtype=np.int64)
    attach_node = np.full(S, -1, dtype=np.int64)

    def node_of(a):
        kind, p, j = a
        if kind == "root":
            return int(root_node[p])
        if kind == "end":
            return int(end_node[p])
        return int(first_centre[p] + j)

    for i, s in enumerate(secs):
        n = int(ns[i])
        if s.parent < 0:
            if needed_root[i]:
                root_node[i] = len(parent)
                parent.append(-1)
                section.append(i)
                xs.append(0.0)
                junction.append(True)
            attach_node[i] = root_node[i]
        else:
            attach_node[i] = node_of(attach[i])
        first_centre[i] = len(parent)
        for j in range(n):
            parent.append(int(attach_node[i]) if j == 0 else len(parent) - 1)
            section.append(i)
            xs.append((j + 0.5) / n)
            junction.append(False)
        if needed_end[i]:
            end_node[i] = len(parent)
            parent.append(len(parent) - 1)
            section.append(i)
            xs.append(1.0)
            junction.append(True)
        if leaf_root[i]:
            root_leaf[i] = attach_node[i] = len(parent)
            parent.append(int(first_centre[i]))
            section.append(i)
            xs.append(0.0)
            junction.append(True)
    return _Layout(nseg=ns, parent=np.array(parent, dtype=np.int64),
                   section=np.array(section, dtype=np.int64), x=np.array(xs),
                   is_junction=np.array(junction, dtype=bool), first_centre=first_centre,
                   end_node=end_node, attach_node=attach_node, root_node=root_node,
                   root_leaf=root_leaf)


def piece_nodes(lay: _Layout, sec: int, pieces: Pieces) -> tuple[np.ndarray, np.ndarray]:
    """(area node, axial node) of each piece of section ``sec``; -1 where the axial
    contribution belongs to a dropped x = 1 junction."""
    n = int(lay.nseg[sec])
    fc = int(lay.first_centre[sec])
    area_node = fc + pieces.seg
    nxt = pieces.seg + pieces.half  # the left half belongs to this centre, right to next
    axial_node = np.where(nxt < n, fc + nxt, int(lay.end_node[sec]))
    leaf = int(lay.root_leaf[sec])  # a root's x = 0 leaf: the first half is its path
    return area_node, np.where((nxt == 0) & (leaf >= 0), leaf, axial_node)


def compartments(morph: Morphology, nseg=1, ends=()) -> Compartments:
    """NEURON's node tree for ``morph`` with ``nseg`` segments per section.

    Args:
        morph: the morphology.
        nseg: an int for every section, or an int array [S] (see
            :func:`nseg_d_lambda`, :func:`nseg_max_length`).
        ends: section ends whose zero-area node is kept although no section attaches
            there, as (section, x) pairs: x = 1, or x = 0 of a root section (where a
            point process sits; see :func:`dropped_end`). Its axial resistance to the
            last (first) segment centre is the half segment's, as NEURON's.

    Returns:
        :class:`Compartments` with areas and axial integrals equal to NEURON's
        ``seg.area()`` and ``seg.ri()`` (for the cell built from the same pt3d).
    """
    lay = node_layout(morph, nseg, ends)
    N = lay.parent.shape[0]
    area = np.zeros(N)
    axial = np.zeros(N + 1)  # last slot collects the halves of dropped end nodes
    for i, sec in enumerate(morph.sections):
        arc, diam = pt3d(sec.points)
        pcs = section_pieces(arc, int(lay.nseg[i]))
        y1 = (1.0 - pcs.f1) * diam[pcs.a1] + pcs.f1 * diam[pcs.b1]
        y2 = (1.0 - pcs.f2) * diam[pcs.a2] + pcs.f2 * diam[pcs.b2]
        a_term, r_term = _piece_terms(pcs.x2 - pcs.x1, y1, y2)
        a_node, r_node = piece_nodes(lay, i, pcs)
        r_node = np.where(r_node < 0, N, r_node)
        n = int(lay.nseg[i])
        fc = int(lay.first_centre[i])
        area[fc:fc + n] = np.bincount(a_node - fc, weights=a_term, minlength=n) * 0.5 * PI
        # halves in order, then pairs: NEURON sums each half separately
        axial += np.bincount(r_node, weights=r_term, minlength=N + 1)
    return Compartments(parent=lay.parent.astype(np.int32), section=lay.section.astype(np.int32),
                        x=lay.x, is_junction=lay.is_junction, area=area,
                        axial_integral=axial[:N], nseg=lay.nseg.astype(np.int32),
                        first_centre=lay.first_centre.astype(np.int32),
                        end_node=lay.end_node.astype(np.int32),
                        attach_node=lay.attach_node.astype(np.int32))


def node_index(comps: Compartments, section: int, x: float) -> int:
    """The node NEURON uses for location ``section(x)``.

    0 < x < 1: the centre of segment ``min(int(nseg * x), nseg - 1)``. x = 1: the
    section's x = 1 junction node, or its last segment centre if that junction was
    dropped. x = 0: the node the section's 0 end joins (the parent's node at
    ``parent_x``, as NEURON's ``sec(0)``); for a root, its x = 0 junction, or its first
    segment centre if that junction was dropped. (A dropped zero-area leaf node has the
    voltage of its neighbouring centre while nothing injects current there, so these
    choices are exact for v; a point process at a dropped end needs the node kept:
    :func:`dropped_end`, ``compartments(..., ends=)``.)
    """
    s = int(section)
    if not 0 <= s < comps.n_sections:
        raise IndexError(f"section {section} out of range (0..{comps.n_sections - 1})")
    x = float(x)
    if not 0.0 <= x <= 1.0:
        raise ValueError(f"x must be in [0, 1], got {x}")
    n = int(comps.nseg[s])
    fc = int(comps.first_centre[s])
    if x == 1.0:
        e = int(comps.end_node[s])
        return e if e >= 0 else fc + n - 1
    if x == 0.0:
        a = int(comps.attach_node[s])
        return a if a >= 0 else fc
    return fc + min(int(float(n) * x), n - 1)


def dropped_end(comps: Compartments, section: int, x: float) -> bool:
    """Whether ``section(x)`` is a section end whose zero-area node ``comps`` dropped: x = 1
    of a section without an x = 1 node (nothing attaches there), or x = 0 of a root
    section without an x = 0 node. NEURON has a node there; a point process placed
    there injects into it, so it must be kept (``compartments(..., ends=)``)."""
    s, x = int(section), float(x)
    node_index(comps, s, x)  # checks the section and x
    if x == 1.0:
        return int(comps.end_node[s]) < 0
    return x == 0.0 and int(comps.attach_node[s]) < 0


# --------------------------------------------------------------------------- a cell's segmentation

def refuse_zero_length(morphology) -> None:
    """A ValueError for a section whose points all coincide (an SWC branch whose samples
    repeat its parent's point): NEURON keeps it with L = 1e-9 um, but its axial resistance
    (~1e-15 MOhm) leaves only round-off in the voltages around it (a passive cell of six
    sections with one such, at rest, moved by 30 mV in 4 steps of 0.025 ms in NEURON)."""
    for i, sec in enumerate(morphology.sections):
        if sec.arc[-1] == 0.0:
            x, y, z = (float(c) for c in sec.points[0, :3])
            raise ValueError(
                f"section {i} ({sec.region}, at ({x:g}, {y:g}, {z:g}) um) has zero length: "
                "all its points coincide. NEURON gives it L = 1e-9 um, whose axial "
                "resistance leaves its voltages to round-off; remove those points from the "
                "morphology, or move them apart")


def resolve_nseg(morphology, nseg, max_length, d_lambda, freq, Ra, cm) -> np.ndarray:
    """int [sections] nseg from Cell's arguments; a ValueError for values or combinations
    that do not make one (never a silently truncated or ignored setting)."""
    n_sec = len(morphology.sections)
    for name, value in (("d_lambda", d_lambda), ("freq", freq)):
        if value is not None and not (is_number(value) and np.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    if max_length is not None:
        if nseg is not None:
            raise ValueError("give nseg or max_length, not both")
        nseg = nseg_max_length(morphology, max_length)
    if (d_lambda is not None or freq is not None) and not (isinstance(nseg, str)):
        raise ValueError("d_lambda and freq set the segmentation with nseg='d_lambda'; "
                         f"got nseg={nseg!r}")
    if isinstance(nseg, str):
        if nseg != "d_lambda":
            raise ValueError(f"nseg must be an int, a list of ints or 'd_lambda', got {nseg!r}")
        return nseg_d_lambda(morphology, d_lambda=0.1 if d_lambda is None else d_lambda,
                             freq=100.0 if freq is None else freq, Ra=Ra, cm=cm)
    arr = np.asarray(1 if nseg is None else nseg)
    if arr.dtype.kind not in "iuf" or not np.all(np.isfinite(arr)) or np.any(arr % 1):
        raise ValueError(f"nseg must be whole numbers of segments, got {nseg!r}")
    if arr.ndim > 1 or (arr.ndim == 1 and arr.size != n_sec):
        raise ValueError(f"nseg has {arr.size} values for {n_sec} sections: give one int, or "
                         "one per section")
    if np.any(arr < 1):
        raise ValueError(f"nseg must be >= 1 in every section, got {arr.min():g}")
    return np.broadcast_to(arr, (n_sec,)).astype(int)


def renumbering(old, new) -> tuple[np.ndarray, np.ndarray]:
    """(source [N_new]: each new node's node in ``old``, added [N_new]: whether it is new)
    between two node trees of one morphology and nseg, ``new`` with more kept section
    ends; a kept end's source is the segment centre whose voltage it had."""
    index = {(int(s), float(x)): i for i, (s, x) in enumerate(zip(old.section, old.x))}
    added = np.array([(int(s), float(x)) not in index for s, x in zip(new.section, new.x)])
    source = np.array([index.get((int(s), float(x)), -1) if not a else
                       node_index(old, int(s), float(x))
                       for s, x, a in zip(new.section, new.x, added)], dtype=int)
    return source, added


def path_distances(morph: Morphology, comps: Compartments, soma) -> np.ndarray:
    """Path length (um) along the tree from ``soma`` (a location: ``.section``, ``.x``)
    to every node of ``comps``, as NEURON's ``h.distance(soma, seg)``, which measures
    from the node of the segment holding ``soma`` (for soma(0.5) with an even nseg, not
    x = 0.5 itself) and a branch point at the centre of the parent segment it joins
    (``Cell.distance``). float64 [N]."""
    L = morph.lengths
    n_sec = len(morph.sections)
    parent = [sec.parent for sec in morph.sections]
    # where each section's 0 end sits on its parent: the joined node's x
    nseg = comps.nseg

    def centre(section, x):
        """x of the node NEURON measures at for section(x): its segment's centre (the
        section's ends are nodes of their own)."""
        if 0.0 < x < 1.0:
            n = int(nseg[section])
            return (min(int(n * x), n - 1) + 0.5) / n
        return x

    joint = np.array([centre(sec.parent, sec.parent_x) if sec.parent >= 0 else sec.parent_x
                      for sec in morph.sections])
    lineage = []  # sections from the root down to each section
    for i in range(n_sec):
        lineage.append((lineage[parent[i]] if parent[i] >= 0 else []) + [i])
    out = np.empty(len(comps.parent))
    for k, (sec, x) in enumerate(zip(comps.section, comps.x)):
        a, b = lineage[soma.section], lineage[int(sec)]
        depth = 0
        while depth < min(len(a), len(b)) and a[depth] == b[depth]:
            depth += 1
        common = a[depth - 1]

        def down(path, x_end):
            """Path length from the common section to (path[-1], x_end) and the exit x on it."""
            if len(path) == depth:
                return 0.0, x_end
            rest = path[depth:]
            total = x_end * L[rest[-1]]
            for s, t in zip(rest[:-1], rest[1:]):
                total += joint[t] * L[s]
            return total, joint[rest[0]]

        da, xa = down(a, centre(soma.section, soma.x))
        db, xb = down(b, float(x))
        out[k] = da + db + abs(xa - xb) * L[common]
    return out
