"""The morphology data model: a tree of unbranched sections, each a list of 3-D points.

A :class:`Morphology` is what a reader (``read_swc``) or :meth:`Morphology.from_sections`
produces and what :mod:`dendrax.morphology.segmentation` turns into compartments. It is
exactly the data NEURON keeps for a cell after ``Import3d`` (or ``pt3dadd`` +
``connect``): per section its pt3d list, its parent section and the attachment point
``parent_x`` on the parent (``child.connect(parent(parent_x), 0)``).

Units are NEURON's: coordinates and diameters in um.

NEURON stores pt3d coordinates and diameters as 32-bit floats. Every section built by
this package holds float64 arrays whose values are float32-representable, i.e. exactly
the numbers NEURON holds; a :class:`Section` built by hand may hold any float64 values
within float32's range (|value| <= 3.4028235e38 um, a diameter not rounding to 0), and
the geometry functions round them to float32 as NEURON's ``pt3dadd`` would.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

__all__ = ["Section", "Morphology", "MorphologyError", "REGIONS", "region_of_type", "pt3d_arc",
           "pt3d_float32", "F32_MAX", "F32_TINY", "LENGTH_RTOL"]

#: The largest float32 (um): NEURON stores pt3d coordinates and diameters as float32.
F32_MAX = float(np.finfo(np.float32).max)
#: The smallest positive float32 (um): a diameter below about half of it rounds to 0.
F32_TINY = float(np.finfo(np.float32).smallest_subnormal)
#: How far (relative) ``Morphology.from_sections`` lets float32 coordinates change a
#: requested section length before it refuses the section.
LENGTH_RTOL = 1e-3
_COLUMNS = ("x", "y", "z", "diameter")
MIN_LENGTH = 1e-9  # um: NEURON's shortest L (its section_length())


class MorphologyError(ValueError):
    """An invalid morphology: a malformed file (with its line number) or bad input."""


#: SWC type code -> region name, as NEURON's Import3d names sections (dend = basal).
REGIONS = {1: "soma", 2: "axon", 3: "dend", 4: "apic"}


def region_of_type(type_code: int) -> str:
    """Region name of an SWC type code: soma/axon/dend/apic, else ``custom<code>``."""
    return REGIONS.get(int(type_code), f"custom{int(type_code)}")


def _fraction(value, name: str) -> float:
    """value as a float in [0, 1]; a ValueError naming ``name`` for anything else (text,
    booleans, NaN)."""
    if isinstance(value, (bool, np.bool_, str, bytes)) or not isinstance(
            value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
    x = float(value)
    if not 0.0 <= x <= 1.0:  # False for NaN too
        raise ValueError(f"{name} must be in [0, 1], got {x}")
    return x


@dataclass(frozen=True, eq=False)
class Section:
    """One unbranched section.

    Attributes:
        points: float64 [P, 4], P >= 2: x, y, z, diameter (um) of the pt3d points, in
            order from the 0 end to the 1 end (read-only array); finite, within
            float32's range (|value| <= 3.4028235e38 um, consecutive points within that
            of each other), diameters positive as float32 (>= 1.4e-45 um), else a
            ValueError naming the point and the field.
        parent: index of the parent section in ``Morphology.sections``; -1 for a root.
        parent_x: where the section's 0 end attaches on its parent, in [0, 1]
            (NEURON's ``child.connect(parent(parent_x), 0)``); ignored for a root.
        region: "soma", "axon", "dend" (basal), "apic" or "custom<typecode>".
    """

    points: np.ndarray
    parent: int = -1
    parent_x: float = 1.0
    region: str = "dend"

    def __post_init__(self) -> None:
        pts = np.array(self.points, dtype=np.float64, copy=True)
        if pts.ndim != 2 or pts.shape[1] != 4:
            raise ValueError(f"Section.points must have shape [P, 4], got {pts.shape}")
        if pts.shape[0] < 2:
            raise ValueError(f"Section.points needs at least 2 points, got {pts.shape[0]}")
        if not np.all(np.isfinite(pts)):
            row, col = (int(v) for v in np.argwhere(~np.isfinite(pts))[0])
            raise ValueError(f"Section.points[{row}] ({_COLUMNS[col]}) = {pts[row, col]:g} um "
                             "is not finite")
        if np.any(pts[:, 3] <= 0):
            row = int(np.argmax(pts[:, 3] <= 0))
            raise ValueError(f"Section.points[{row}] (diameter) = {pts[row, 3]:g} um is not "
                             "positive")
        _check_float32_points(pts)
        pts.setflags(write=False)
        object.__setattr__(self, "points", pts)
        if isinstance(self.parent, (bool, np.bool_)) or not isinstance(self.parent,
                                                                      (int, np.integer)):
            raise ValueError(f"Section.parent must be an int (-1 for a root), got "
                             f"{self.parent!r}")
        object.__setattr__(self, "parent", int(self.parent))
        object.__setattr__(self, "parent_x", _fraction(self.parent_x, "Section.parent_x"))
        if not isinstance(self.region, str) or not self.region:
            raise ValueError(f"Section.region must be a non-empty string such as 'dend', got "
                             f"{self.region!r}")

    @property
    def n_points(self) -> int:
        return int(self.points.shape[0])

    @property
    def xyz(self) -> np.ndarray:
        """[P, 3] coordinates (um)."""
        return self.points[:, :3]

    @property
    def diameters(self) -> np.ndarray:
        """[P] diameters (um)."""
        return self.points[:, 3]

    @property
    def arc(self) -> np.ndarray:
        """[P] arc length (um) of each point from the first one, computed as NEURON does
        (float32 coordinates, float32 differences, float64 accumulation)."""
        return pt3d_arc(self.points)

    @property
    def length(self) -> float:
        """Arc length of the section (um): NEURON's ``L`` for a section with pt3d, which is
        at least 1e-9 um (a section whose points all coincide has L = 1e-9, as NEURON's)."""
        return max(float(self.arc[-1]), MIN_LENGTH)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Section):
            return NotImplemented
        return (self.parent == other.parent and self.parent_x == other.parent_x
                and self.region == other.region
                and np.array_equal(self.points, other.points))

    def __hash__(self) -> int:
        return hash((self.points.tobytes(), self.parent, self.parent_x, self.region))

    def __repr__(self) -> str:
        return (f"Section(n_points={self.n_points}, parent={self.parent}, "
                f"parent_x={self.parent_x}, region={self.region!r}, length={self.length:.6g})")


def _quiet_float32(values: np.ndarray) -> np.ndarray:
    """values as float32, an overflow giving inf without a RuntimeWarning."""
    with np.errstate(over="ignore"):
        return np.asarray(values, dtype=np.float64).astype(np.float32)


def _check_float32_points(pts: np.ndarray) -> None:
    """A ValueError naming the point and field where pt3d points [P, 4] (um) leave
    float32's range as NEURON stores and subtracts them: a value beyond +-F32_MAX, a
    diameter that rounds to 0, or a step between consecutive points that overflows."""
    f = _quiet_float32(pts)
    bad = np.argwhere(~np.isfinite(f))
    if bad.size:
        row, col = (int(v) for v in bad[0])
        raise ValueError(f"Section.points[{row}] ({_COLUMNS[col]}) = {pts[row, col]:g} um is "
                         "beyond float32, as NEURON stores 3-D points: coordinates and "
                         f"diameters must lie within +-{F32_MAX:.8g} um")
    zero = np.flatnonzero(f[:, 3] <= 0)
    if zero.size:
        row = int(zero[0])
        raise ValueError(f"Section.points[{row}] has a non-positive diameter as float32 "
                         f"(NEURON's storage): {pts[row, 3]:g} um rounds to 0; give at least "
                         f"{F32_TINY:.2g} um")
    with np.errstate(over="ignore"):
        steps = f[1:, :3] - f[:-1, :3]
    bad = np.argwhere(~np.isfinite(steps))
    if bad.size:
        row, col = (int(v) for v in bad[0])
        raise ValueError(f"Section.points[{row + 1}] ({_COLUMNS[col]}): the step from the previous "
                         "point overflows float32, in which NEURON subtracts 3-D points: "
                         f"consecutive points must lie within {F32_MAX:.8g} um of each other")


def pt3d_float32(values, name: str, *, positive: bool = False) -> np.ndarray:
    """``values`` (um, a scalar or an array) as NEURON stores a pt3d coordinate or
    diameter: rounded to float32, returned as float64 of the same shape.

    Raises:
        ValueError: naming ``name`` (and the first offending entry), for a value
            beyond float32 (|value| > 3.4028235e38 um), or, with ``positive``, one that
            is not positive once rounded (a diameter under ~7e-46 um rounds to 0).
    """
    arr = np.asarray(values, dtype=np.float64)
    f = _quiet_float32(arr)
    for bad, problem in ((~np.isfinite(f), f"is beyond float32, as NEURON stores 3-D points: "
                                           f"give at most {F32_MAX:.8g} um in magnitude"),
                         (positive & (f <= 0), f"is not positive as float32, as NEURON stores "
                                               f"3-D diameters: give at least {F32_TINY:.2g} um")):
        if np.any(bad):
            first = tuple(int(i) for i in np.argwhere(bad)[0])
            where = f"[{', '.join(map(str, first))}]" if first else ""
            raise ValueError(f"{name}{where} = {float(arr[first]):g} um {problem}")
    return f.astype(np.float64)


def pt3d_arc(points: np.ndarray) -> np.ndarray:
    """Arc length [P] (um) along pt3d points [P, >=3], bit-for-bit as NEURON computes it.

    NEURON stores x, y, z as float32, subtracts consecutive points in float32 and
    accumulates the Euclidean distances in float64.
    """
    p = np.asarray(points)
    xyz = p[:, :3].astype(np.float32)
    step = (xyz[1:] - xyz[:-1]).astype(np.float64)
    dist = np.sqrt(step[:, 0] * step[:, 0] + step[:, 1] * step[:, 1] + step[:, 2] * step[:, 2])
    arc = np.zeros(p.shape[0])
    acc = 0.0
    for i, d in enumerate(dist.tolist(), start=1):  # sequential, as NEURON
        acc = acc + d
        arc[i] = acc
    return arc


@dataclass(frozen=True, eq=False)
class Morphology:
    """A cell: sections in an order where every parent comes before its children.

    Attributes:
        sections: tuple of :class:`Section`.
        name: free text (a reader sets the file's stem).
    """

    sections: tuple[Section, ...]
    name: str = ""
    _cache: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        secs = tuple(self.sections)
        if not secs:
            raise ValueError("a Morphology needs at least one section")
        for i, s in enumerate(secs):
            if not isinstance(s, Section):
                raise TypeError(f"section {i}: expected a Section, got {type(s).__name__}")
            if s.parent >= i or s.parent < -1:
                raise ValueError(f"section {i}: parent {s.parent} must be -1 or an "
                                 f"earlier section (< {i})")
        object.__setattr__(self, "sections", secs)
        object.__setattr__(self, "name", str(self.name))

    # ------------------------------------------------------------------ helpers
    @property
    def n_sections(self) -> int:
        return len(self.sections)

    @property
    def parents(self) -> np.ndarray:
        """int64 [S] parent section of each section (-1 for roots)."""
        return np.array([s.parent for s in self.sections], dtype=np.int64)

    @property
    def parent_xs(self) -> np.ndarray:
        """float64 [S] attachment point on the parent of each section."""
        return np.array([s.parent_x for s in self.sections], dtype=np.float64)

    @property
    def roots(self) -> list[int]:
        """Indices of the root sections (one per tree)."""
        return [i for i, s in enumerate(self.sections) if s.parent < 0]

    @property
    def lengths(self) -> np.ndarray:
        """float64 [S] arc length of each section (um), NEURON's ``L``."""
        if "lengths" not in self._cache:
            self._cache["lengths"] = np.array([s.length for s in self.sections])
        return self._cache["lengths"]

    @property
    def n_points(self) -> np.ndarray:
        """int64 [S] number of pt3d points per section."""
        return np.array([s.n_points for s in self.sections], dtype=np.int64)

    @property
    def point_offsets(self) -> np.ndarray:
        """int64 [S + 1]: the points of section s are rows offsets[s]:offsets[s+1] of
        :attr:`all_points`."""
        return np.concatenate([[0], np.cumsum(self.n_points)]).astype(np.int64)

    @property
    def all_points(self) -> np.ndarray:
        """float64 [sum P, 4] the points of all sections, concatenated in section order."""
        return np.concatenate([s.points for s in self.sections], axis=0)

    @property
    def point_diameters(self) -> np.ndarray:
        """float64 [sum P] all diameters (um), concatenated in section order, rounded to
        float32 as NEURON's pt3d holds them: a Cell's diameters where not set, the input
        of :func:`dendrax.morphology.geometry_jax`."""
        return pt3d_float32(self.all_points[:, 3], "diam")

    def children(self, i: int) -> list[int]:
        """Indices of the sections whose parent is section ``i``."""
        return [j for j, s in enumerate(self.sections) if s.parent == i]

    def regions(self) -> dict[str, list[int]]:
        """Region name -> indices of its sections, in order of first appearance."""
        out: dict[str, list[int]] = {}
        for i, s in enumerate(self.sections):
            out.setdefault(s.region, []).append(i)
        return out

    def __len__(self) -> int:
        return len(self.sections)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Morphology):
            return NotImplemented
        return self.name == other.name and self.sections == other.sections

    def __hash__(self) -> int:
        return hash((self.name, self.sections))

    def __repr__(self) -> str:
        regs = ", ".join(f"{k}: {len(v)}" for k, v in self.regions().items())
        return f"Morphology(name={self.name!r}, n_sections={self.n_sections}, {regs})"

    # ------------------------------------------------------------------ builders
    @classmethod
    def from_sections(cls, sections: Sequence[Mapping[str, Any]], name: str = "") -> "Morphology":
        """Build a cell of straight (possibly tapering) cylinders laid out in 3-D.

        Args:
            sections: one dict per section, parents before children, with keys
                ``length`` (um, > 0), ``diam`` (um, > 0; a constant diameter) or
                ``diams`` (a list of >= 2 diameters at equally spaced points along the
                section, for a taper), ``parent`` (index of an earlier section, or -1 for
                a root; default -1), ``parent_x`` (default 1.0) and ``region``
                (default "dend").
            name: the morphology's name.

        The first point of a child is placed at its attachment point on the parent;
        roots start at (0, 100 k, 0) for the k-th root and run along +x; each child runs
        in a direction turned from its parent's, so that branches do not overlap.
        Coordinates and diameters are rounded to float32, as NEURON stores pt3d, and a
        section's length is the one NEURON computes from those points (``pt3dadd``
        them to NEURON and its ``L`` is the same number). Float32 resolves about 1e-7
        times the distance from the origin, so a length is kept to ~1e-7 relative near
        the origin, but a short section far out changes: 0.5 um at the end of a 20 mm
        axon becomes 0.4997 um, as it does in NEURON from the same points (a NEURON
        section given ``L`` and placed by ``define_shape`` instead keeps its ``L`` until
        its points change). A section whose length would change by more than
        ``LENGTH_RTOL`` (1e-3) relative is refused (this can happen to a section shorter
        than ~4 um 20 mm from the origin, where float32 resolves 0.002 um), and so is
        one whose length would collapse to 0.

        Raises:
            ValueError: naming the section and the problem (non-positive or non-finite
                length or diameter, bad parent index, parent_x outside [0, 1], a
                coordinate or diameter beyond float32, a length float32 coordinates
                cannot hold to ``LENGTH_RTOL``, ...).
        """
        if isinstance(sections, Mapping):
            raise ValueError("from_sections expects a list of dicts, one per section")
        specs = list(sections)
        if not specs:
            raise ValueError("from_sections: no sections given")
        built: list[Section] = []
        directions: list[np.ndarray] = []
        n_roots = 0
        known = {"length", "diam", "diams", "parent", "parent_x", "region"}
        for i, spec in enumerate(specs):
            where = f"section {i}"
            if not isinstance(spec, Mapping):
                raise ValueError(f"{where}: expected a dict, got {type(spec).__name__}")
            unknown = set(spec) - known
            if unknown:
                raise ValueError(f"{where}: unknown keys {sorted(unknown)}; "
                                 f"allowed: {sorted(known)}")
            if "length" not in spec:
                raise ValueError(f"{where}: missing 'length'")
            length = _positive_number(spec["length"], f"{where}: length")
            if ("diam" in spec) == ("diams" in spec):
                raise ValueError(f"{where}: give exactly one of 'diam' or 'diams'")
            if "diam" in spec:
                d = _positive_number(spec["diam"], f"{where}: diam")
                diams = np.array([d, d])
            else:
                raw = spec["diams"]
                if isinstance(raw, (str, bytes)) or not isinstance(raw, Iterable):
                    raise ValueError(f"{where}: 'diams' must be a list of numbers")
                raw = list(raw)
                if len(raw) < 2:
                    raise ValueError(f"{where}: 'diams' needs at least 2 values, got {len(raw)}")
                diams = np.array([_positive_number(v, f"{where}: diams[{k}]")
                                  for k, v in enumerate(raw)])
            parent = spec.get("parent", -1)
            if isinstance(parent, bool) or not isinstance(parent, (int, np.integer)):
                raise ValueError(f"{where}: parent must be an int, got {parent!r}")
            parent = int(parent)
            if parent < -1 or parent >= i:
                raise ValueError(f"{where}: parent {parent} must be -1 (a root) or the "
                                 f"index of an earlier section (0..{i - 1})")
            px = _fraction(spec.get("parent_x", 1.0), f"{where}: parent_x")
            region = spec.get("region", "dend")
            if not isinstance(region, str) or not region:
                raise ValueError(f"{where}: region must be a non-empty string")

            if parent < 0:
                start = np.array([0.0, 100.0 * n_roots, 0.0])
                direction = np.array([1.0, 0.0, 0.0])
                n_roots += 1
            else:
                start = _point_at(built[parent], px)
                k = sum(1 for s in built if s.parent == parent)
                direction = _turn(directions[parent], k)
            frac = np.linspace(0.0, 1.0, diams.size)
            xyz = start[None, :] + (length * frac)[:, None] * direction[None, :]
            try:
                pts = np.column_stack([pt3d_float32(xyz, f"{where}: coordinates"),
                                       pt3d_float32(diams, f"{where}: diameters", positive=True)])
                section = Section(pts, parent, px if parent >= 0 else 1.0, region)
            except ValueError as err:
                raise ValueError(f"{where}: {err}" if not str(err).startswith(where)
                                 else str(err)) from None
            _check_kept_length(section, length, where)
            built.append(section)
            directions.append(direction)
        return cls(tuple(built), name=name)


def _positive_number(v: Any, what: str) -> float:
    if isinstance(v, (bool, np.bool_, str, bytes)):  # float() would read "20" as 20
        raise ValueError(f"{what} must be a number, got {v!r}")
    try:
        x = float(v)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a number, got {v!r}") from None
    if not math.isfinite(x):
        raise ValueError(f"{what} must be finite, got {x}")
    if x <= 0:
        raise ValueError(f"{what} must be positive, got {x}")
    return x


def _check_kept_length(section: Section, length: float, where: str) -> None:
    """A ValueError if the float32 points of a section built for ``length`` (um) give a
    length more than ``LENGTH_RTOL`` (relative) away from it."""
    got = float(section.arc[-1])  # (not L, which is at least 1e-9)
    if abs(got - length) <= LENGTH_RTOL * length:
        return
    far = float(np.max(np.abs(section.xyz)))
    step = float(np.spacing(np.float32(far)))
    raise ValueError(f"{where}: length {length:g} um becomes {got:g} um with float32 "
                     f"coordinates, as NEURON stores 3-D points (the section lies {far:g} um "
                     f"from the origin, where float32 resolves {step:.2g} um); from_sections "
                     f"keeps lengths to {LENGTH_RTOL:g} relative: give a length of at least "
                     f"~{2 * step / LENGTH_RTOL:.2g} um there, or attach the section nearer "
                     "the origin")


def _point_at(sec: Section, x: float) -> np.ndarray:
    """xyz at fraction x of the arc length of a section (linear between points)."""
    arc = sec.arc
    s = x * arc[-1]
    return np.array([np.interp(s, arc, sec.points[:, k]) for k in range(3)])


def _turn(parent_dir: np.ndarray, k: int) -> np.ndarray:
    """Direction of the k-th child of a section running along parent_dir."""
    angle = (k // 2 + 1) * (np.pi / 6) * (1 if k % 2 == 0 else -1)
    c, s = math.cos(angle), math.sin(angle)
    x, y, z = parent_dir
    d = np.array([c * x - s * y, s * x + c * y, z])
    return d / np.linalg.norm(d)
