"""SWC reader that reproduces NEURON 9's Import3d (``Import3d_SWC_read`` + ``Import3d_GUI``).

``read_swc(path)`` returns the :class:`~dendrax.morphology.Morphology` whose sections,
pt3d points, parents and attachment points are those NEURON builds with::

    swc = h.Import3d_SWC_read(); swc.input(path)
    h.Import3d_GUI(swc, False).instantiate(cell)

in the order of Import3d's section list (``swc.sections``). The rules, found by
reading Import3d's behaviour and checked by experiment against NEURON:

Sections.
    Samples are taken in id order. A section is a maximal run of consecutive samples
    (in id order) in which each sample is the only child of the previous one and has the
    same type. A sample ends a section when it has no child, several children, a child
    that is not the next sample, or a child of another type -- with these exceptions:

    * consecutive soma samples stay in one section (the soma is one section) unless a
      soma sample other than the first has more than one soma child;
    * a non-soma sample whose parent is a soma sample, and the non-soma root sample,
      do not end a section merely because a non-contiguous child hangs on them: that
      child attaches to the 0 end of their section instead (``parent_x = 0``).

Soma.
    * A single-point soma (the root section has one sample) becomes a 3-point cylinder
      along x: (x - d/2, y, z), (x, y, z), (x + d/2, y, z), all with diameter d, so its
      area is that of the sphere, pi d^2.
    * The NeuroMorpho.Org 3-point soma -- exactly 3 soma samples in the file, samples 2
      and 3 both children of sample 1 and childless, all three with the same diameter
      and |p2 - p1| + |p3 - p1| within 1 % of that diameter -- is treated as the single
      point sample 1 (the other two are dropped), hence a sphere as above.
    * Any other soma (a chain or outline of samples) is kept as it is: a section per
      unbranched run of soma samples.

Children.
    * Every non-root section starts with a copy of its parent sample; if the parent
      is a soma sample and the section is not soma, that copy takes the diameter of the
      section's own first sample.
    * A child attaches at ``parent_x = 1`` (the end of its parent section), except:
      at 0.5 to a single-point soma; at 0 when its parent sample is the first sample of
      the root section; at 0.5 when its parent sample is an interior sample of a soma
      section; at 0 in the two "connect to proximal end" cases above.
    * A non-soma section attached to a single-point soma, to an interior soma sample, or
      to a soma sample that has several soma children, is attached "by a wire"
      (``pt3dstyle`` logical connection): its pt3d list omits the copied parent sample
      and starts at its own first sample. A wired section with a single sample of its
      own is dropped (its children reattach to its parent at its ``parent_x``), as is a
      two-point section of zero length.
    * Several trees (several samples with a negative parent id): every root after the
      first is attached to the first root section, as though its parent were the
      first sample of the file (NEURON 9 does this because it indexes with -1).

NEURON's pt3d stores float32; the points returned here are those float32 values, as
``instantiate(cell)`` with a Python cell object stores them. (``instantiate(None)`` goes
through hoc command strings formatted with ``%.8g``, which differs only for coordinates
with more than 8 significant digits; on the shared cells both paths agree bit for bit.)

NEURON itself prints an error and goes on (or fails) for malformed files; this reader
raises :class:`MorphologyError` with the line number and the reason instead. It also
accepts samples listed out of id order (sorting them by id, as Import3d means to; NEURON
9 fails on such files).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..quantities import DECIMAL
from .morphology import Morphology, MorphologyError, Section, region_of_type

__all__ = ["read_swc", "parse_swc", "SwcSamples"]

SOMA = 1


@dataclass(frozen=True)
class SwcSamples:
    """The samples of an SWC file sorted by id (arrays of length N).

    Attributes:
        ids: int64 sample ids. types: int64 type codes. xyz: float64 [N, 3] (um).
        diameter: float64 (um), twice the file's radius. parent: int64 index (not id)
        of the parent sample in these arrays, -1 for roots. line: int64 line numbers.
    """

    ids: np.ndarray
    types: np.ndarray
    xyz: np.ndarray
    diameter: np.ndarray
    parent: np.ndarray
    line: np.ndarray


F32_MAX = float(np.finfo(np.float32).max)
F32_TINY = float(np.finfo(np.float32).smallest_subnormal)


def _fail(path, line: int, reason: str) -> MorphologyError:
    return MorphologyError(f"{path}: line {line}: {reason}")


def parse_swc(path: str | os.PathLike) -> SwcSamples:
    """Read and validate the samples of an SWC file.

    Each data line has exactly 7 fields ``id type x y z radius parent`` (a ``#`` starts
    a comment; blank lines are skipped). id, type and parent must be integers, the
    coordinates and radius finite numbers, the radius positive, ids unique, every
    parent id either negative (a root) or the id of another sample, with no cycle, and
    every parent id smaller than its child's id (NEURON's Import3d requires it).

    Raises:
        MorphologyError: with the line number and the reason.
        FileNotFoundError: the file does not exist.
    """
    path = Path(path)
    with open(path, "r", encoding="utf-8-sig", errors="replace") as f:  # -sig: a BOM is not text
        text = f.read()
    rows: list[tuple[float, ...]] = []
    lines: list[int] = []
    names = ("id", "type", "x", "y", "z", "radius", "parent")
    n_lines = 0
    # lines end at "\n" only (str.splitlines would also break at form feeds and other
    # separators inside a comment, and shift every later line number)
    pieces = text.split("\n")
    if pieces and not pieces[-1]:
        pieces.pop()  # the final line's end
    for lineno, raw in enumerate(pieces, start=1):
        raw = raw.rstrip("\r")
        n_lines = lineno
        content = raw.split("#", 1)[0].strip()
        if not content:
            continue
        fields = content.split()
        if len(fields) != 7:
            raise _fail(path, lineno, f"expected 7 fields (id type x y z radius parent), "
                                      f"got {len(fields)}: {raw.strip()!r}")
        vals = []
        for k, (name, tok) in enumerate(zip(names, fields)):
            try:
                v = float(tok)
            except ValueError:
                raise _fail(path, lineno, f"field {k + 1} ({name}) is not a number: "
                                          f"{tok!r}") from None
            if not math.isfinite(v):
                raise _fail(path, lineno, f"field {k + 1} ({name}) is not finite: {tok!r}")
            if not DECIMAL.match(tok):  # Python's float() also reads "1_0" and other digits
                raise _fail(path, lineno, f"field {k + 1} ({name}) is not a decimal number "
                                          f"(digits 0-9, '.', an exponent): {tok!r}")
            if name in ("id", "type", "parent") and not v.is_integer():
                raise _fail(path, lineno, f"field {k + 1} ({name}) is not an integer: {tok!r}")
            if name in ("id", "type", "parent") and abs(v) >= 2 ** 53:
                raise _fail(path, lineno, f"field {k + 1} ({name}) {tok} is too large to "
                                          "count exactly (|value| < 2**53)")
            vals.append(v)
        if vals[5] <= 0:
            raise _fail(path, lineno, f"radius must be positive, got {fields[5]}")
        for k, v in ((2, vals[2]), (3, vals[3]), (4, vals[4]), (5, 2.0 * vals[5])):
            if abs(v) > F32_MAX:  # NEURON stores points and diameters as float32
                raise _fail(path, lineno, f"field {k + 1} ({names[k]}) {fields[k]} is beyond "
                                          f"float32, as NEURON stores it (|x, y, z, 2 radius| "
                                          f"<= {F32_MAX:.7g} um)")
        if np.float32(2.0 * vals[5]) == 0:
            raise _fail(path, lineno, f"radius {fields[5]} underflows float32, as NEURON stores "
                                      f"diameters (> {F32_TINY:.3g} um)")
        if vals[0] < 0:
            raise _fail(path, lineno, f"id must be non-negative, got {fields[0]}")
        rows.append(tuple(vals))
        lines.append(lineno)
    if not rows:
        raise _fail(path, max(n_lines, 1), "empty file: no sample lines")

    data = np.array(rows, dtype=np.float64)
    # NEURON's Import3d reads coordinates and radii as float32 and applies its rules
    # (equal diameters, zero-length pieces, a single-point soma's cylinder) to those
    data[:, 2:6] = data[:, 2:6].astype(np.float32)
    line = np.array(lines, dtype=np.int64)
    ids = data[:, 0].astype(np.int64)
    pids = data[:, 6].astype(np.int64)

    line_of: dict[int, int] = {}
    for i, sid in enumerate(ids.tolist()):
        if sid in line_of:
            raise _fail(path, int(line[i]), f"duplicate id {sid} (first defined on line "
                                            f"{line_of[sid]})")
        line_of[sid] = int(line[i])
    for i, (sid, pid) in enumerate(zip(ids.tolist(), pids.tolist())):
        if pid >= 0 and pid not in line_of:
            raise _fail(path, int(line[i]), f"parent id {pid} of sample {sid} does not exist")
    _check_cycles(path, ids, pids, line, line_of)
    for i, (sid, pid) in enumerate(zip(ids.tolist(), pids.tolist())):
        if pid >= sid:
            raise _fail(path, int(line[i]), f"parent id {pid} of sample {sid} is not smaller "
                                            "than its id (NEURON's Import3d requires parent "
                                            "ids smaller than ids)")

    order = np.argsort(ids, kind="stable")
    ids, pids, line, data = ids[order], pids[order], line[order], data[order]
    index_of = {sid: i for i, sid in enumerate(ids.tolist())}
    parent = np.array([index_of[p] if p >= 0 else -1 for p in pids.tolist()], dtype=np.int64)
    return SwcSamples(ids=ids, types=data[:, 1].astype(np.int64), xyz=data[:, 2:5].copy(),
                      diameter=data[:, 5] * 2.0, parent=parent, line=line)


def _check_cycles(path, ids, pids, line, line_of) -> None:
    parent_of = {sid: pid for sid, pid in zip(ids.tolist(), pids.tolist())}
    state: dict[int, int] = {}  # 1 = on the current walk, 2 = known to reach a root
    for start in ids.tolist():
        walk = []
        sid = start
        while sid >= 0 and state.get(sid) is None:
            state[sid] = 1
            walk.append(sid)
            sid = parent_of[sid]
        if sid >= 0 and state.get(sid) == 1:  # came back to this walk: a cycle
            cyc = walk[walk.index(sid):]
            raise _fail(path, line_of[cyc[-1]], "cycle in the parent links through ids "
                        + " -> ".join(str(c) for c in cyc + [sid]))
        for w in walk:
            state[w] = 2


# --------------------------------------------------------------------------- sections
@dataclass
class _RawSection:
    first: int          # index of its first own sample
    stop: int           # one past its last own sample
    parent_sample: int  # index of the parent sample (-1: none or an extra root)
    parent_sec: int     # index into the raw section list (-1 for the root section)
    parent_x: float
    wire: bool          # pt3d list omits the copied parent sample
    type: int
    pts: np.ndarray     # [P, 4] raw points: copied parent sample (if any) + own samples


@dataclass
class _Marks:
    ends: np.ndarray           # bool [N]: the sample is the last one of its section
    parent: np.ndarray         # int [N]: parent index (the 3-point soma rewires sample 2)
    proximal: np.ndarray       # bool [N]: attaches to the 0 end of its parent's section
    soma_children: np.ndarray  # int [N]: number of soma children of each soma sample
    single_soma: bool          # the NeuroMorpho 3-point soma rule applies


def _mark_section_ends(s: SwcSamples) -> _Marks:
    """Which samples end a section, and the facts the attachment rules need."""
    n = s.ids.size
    types = s.types
    parent = s.parent.copy()
    n_children = np.zeros(n, dtype=np.int64)
    extra = np.zeros(n, dtype=bool)        # non-contiguous or other-type child
    proximal = np.zeros(n, dtype=bool)     # attaches to the 0 end of its parent's section

    def type_of(i: int) -> int:  # NEURON reads index -1 as index 0
        return int(types[max(i, 0)])

    for i in range(n):
        p = int(parent[i])
        if p < 0:
            continue
        n_children[p] += 1
        if p != i - 1:
            extra[p] = True
            if (p > 1 and types[p] != SOMA and type_of(int(parent[p])) == SOMA) or \
               (p == 0 and types[0] != SOMA):
                proximal[i] = True
                n_children[p], extra[p] = 1, False
        if types[p] != types[i]:
            extra[p] = True

    soma_children = np.zeros(n, dtype=np.int64)
    for i in range(1, n):
        p = int(parent[i])
        if types[i] == SOMA and p >= 0 and types[p] == SOMA:
            soma_children[p] += 1

    single_soma = False
    if int(np.sum(types == SOMA)) == 3 and n >= 3 and parent[1] == 0 and parent[2] == 0 \
            and n_children[1] == 0 and not extra[1] and n_children[2] == 0 and not extra[2] \
            and s.diameter[1] == s.diameter[0] and s.diameter[2] == s.diameter[0]:
        span = sum(math.sqrt(float(np.sum((s.xyz[k] - s.xyz[0]) ** 2))) for k in (1, 2))
        if abs(span / s.diameter[0] - 1.0) < 0.01:
            single_soma = True
            parent[2] = 1  # keep the two outer points in the root section, then drop them

    for i in range(n - 1):
        if types[i] == SOMA and types[i + 1] == SOMA and parent[i + 1] == i:
            if i == 0 or soma_children[i] <= 1:
                n_children[i], extra[i] = 1, False

    ends = (n_children != 1) | extra
    ends[n - 1] = True
    return _Marks(ends, parent, proximal, soma_children, single_soma)


def _raw_sections(s: SwcSamples) -> list[_RawSection]:
    marks = _mark_section_ends(s)
    ends, parent, proximal = marks.ends, marks.parent, marks.proximal
    soma_children = marks.soma_children
    n = s.ids.size
    types = s.types
    point = np.column_stack([s.xyz, s.diameter])
    sec_of = np.zeros(n, dtype=np.int64)
    bounds = []
    start = 0
    for i in range(n):
        sec_of[i] = len(bounds)
        if ends[i]:
            bounds.append((start, i + 1))
            start = i + 1

    out: list[_RawSection] = []
    for k, (first, stop) in enumerate(bounds):
        ptype = int(types[first])
        if k == 0:
            if marks.single_soma:
                stop = 1
            out.append(_RawSection(first, stop, -1, -1, 1.0, False, ptype,
                                   point[first:stop].copy()))
            continue
        ps = int(parent[first])          # may be -1 for a second tree's root
        ps_data = max(ps, 0)             # NEURON reads index -1 as index 0
        psec_i = int(sec_of[ps_data])
        psec = out[psec_i]  # the parent sample comes first, so its section is built
        psec_first = psec.first
        psec_npts = psec.pts.shape[0]
        own = stop - first
        den_con_soma = psec.type == SOMA and ptype != SOMA
        con_soma = psec.type == SOMA
        parent_x, wire = 1.0, False
        handled = False
        if psec_i == 0:
            handled = True
            if den_con_soma and psec_npts == 1:
                parent_x = 0.5
                wire = own > 1
            elif ps == psec_first:
                parent_x = 0.0
                wire = ptype != SOMA and soma_children[ps_data] > 1
            else:
                handled = False
        if not handled and con_soma:
            last = psec_first + psec_npts + (-1 if psec_first == 0 else -2)
            if ps < last:   # an interior sample of a soma section
                parent_x = 0.5
                wire = den_con_soma and own > 1
            elif own > 1 and soma_children[ps_data] > 1 and ptype != SOMA:
                wire = True
        pts = np.concatenate([point[ps_data:ps_data + 1], point[first:stop]], axis=0)
        if psec.type == SOMA and ptype != SOMA:
            pts[0, 3] = pts[1, 3]
        if proximal[first]:
            parent_x = 0.0
        out.append(_RawSection(first, stop, ps, psec_i, parent_x, wire, ptype, pts))
    return out


def _drop_degenerate(raw: list[_RawSection]) -> list[_RawSection]:
    """Remove one-point and zero-length two-point non-root sections (children reattach)."""
    raw = list(raw)
    alive = list(range(len(raw)))  # position -> original index
    for pos in range(len(raw) - 1, -1, -1):
        sec = raw[pos]
        if pos == 0:  # the root section is never dropped
            continue
        n_own = sec.pts.shape[0] - int(sec.wire)
        drop = n_own <= 1
        if not drop and n_own == 2:
            a = sec.pts[int(sec.wire), :3]
            b = sec.pts[int(sec.wire) + 1, :3]
            drop = bool(np.all(a == b))
        if drop:
            me = alive[pos]
            for later in raw[pos + 1:]:
                if later.parent_sec == me:
                    later.parent_sec = sec.parent_sec
                    later.parent_x = sec.parent_x
            del raw[pos]
            del alive[pos]
    # renumber parent_sec from original indices to positions
    where = {orig: pos for pos, orig in enumerate(alive)}
    for sec in raw:
        if sec.parent_sec >= 0:
            sec.parent_sec = where[sec.parent_sec]
    return raw


def _f32(a: np.ndarray) -> np.ndarray:
    return np.asarray(a, dtype=np.float64).astype(np.float32).astype(np.float64)


def sections_from_samples(s: SwcSamples, path="<samples>") -> list[Section]:
    """The sections NEURON's Import3d builds from validated samples (of the file ``path``,
    named in errors)."""
    raw = _drop_degenerate(_raw_sections(s))
    sections = []
    for sec in raw:
        pts = sec.pts[int(sec.wire):]
        if pts.shape[0] == 1:  # single-point (root) section: a cylinder of length d
            x, y, z, d = pts[0]
            pts = np.array([[x - d / 2, y, z, d], [x, y, z, d], [x + d / 2, y, z, d]])
            if not np.any(np.diff(_f32(pts)[:, 0])):  # x -+ d/2 rounds to x: length 0
                raise _fail(path, int(s.line[sec.first]),
                            f"a single-point soma of diameter {d:g} um at x = {x:g} um has "
                            "zero length in float32, as NEURON stores its points (its "
                            "cylinder x -+ d/2 rounds to x): move the cell nearer the origin")
        sections.append(Section(_f32(pts), sec.parent_sec,
                                sec.parent_x if sec.parent_sec >= 0 else 1.0,
                                region_of_type(sec.type)))
    return sections


def read_swc(path: str | os.PathLike) -> Morphology:
    """Read an SWC file as NEURON 9's Import3d does (see the module docstring).

    Args:
        path: the .swc file.

    Returns:
        A :class:`Morphology` named after the file's stem, with one section per
        unbranched piece, in Import3d's order (parents before children).

    Raises:
        MorphologyError: a malformed file, with the line number and the reason.
        FileNotFoundError: no such file.
    """
    samples = parse_swc(path)
    return Morphology(tuple(sections_from_samples(samples, path)), name=Path(path).stem)
