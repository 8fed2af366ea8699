"""NEURON-side helpers for tests: build in NEURON the cell dendrax builds.

Import this module only after ``pytest.importorskip("neuron")``.

* :func:`neuron_from_swc` reads an SWC file with NEURON's Import3d and returns its
  sections in dendrax's section order (Import3d's ``swc.sections`` order).
* :func:`neuron_from_morphology` builds a :class:`dendrax.morphology.Morphology` in
  NEURON with ``pt3dadd`` and ``connect``, with the given nseg.
* :func:`pt3d`, :func:`parent_info`, :func:`segment_geometry` read back what NEURON has.

Every call builds new, uniquely named sections (inside a fresh Python cell object),
so several cells can coexist in one process.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
from neuron import h

h.load_file("stdlib.hoc")
h.load_file("import3d.hoc")

_TYPENAME = {1: "soma", 2: "axon", 3: "dend", 4: "apic"}
_counter = itertools.count()


class _Cell:
    """Holder for the sections Import3d creates (it needs a Python object)."""

    def __init__(self, tag: str):
        self.tag = tag

    def __repr__(self) -> str:
        return self.tag


def _type_name(t: float) -> str:
    t = int(t)
    if t in _TYPENAME:
        return _TYPENAME[t]
    return f"minus_{-t}" if t < 0 else f"dend_{t}"


def neuron_from_swc(path, *, nseg: int | None = None, Ra: float | None = None,
                    cm: float | None = None) -> list:
    """Read ``path`` with NEURON's Import3d; return the h.Sections in dendrax's order.

    The cell is instantiated inside a Python object
    (``Import3d_GUI(swc, False).instantiate(cell)``), so the sections are
    ``<cell>.soma[0]``, ``<cell>.dend[3]`` ... and several cells can coexist.
    """
    swc = h.Import3d_SWC_read()
    swc.quiet = 1
    swc.input(str(Path(path)))
    gui = h.Import3d_GUI(swc, False)
    cell = _Cell(f"swc{next(_counter)}")
    gui.instantiate(cell)
    out = []
    for k in range(int(swc.sections.count())):
        s = swc.sections.object(k)
        if s.is_subsidiary:
            continue
        out.append(getattr(cell, _type_name(s.type))[int(s.nameindex)])
    _set(out, nseg, Ra, cm)
    return out


def neuron_from_morphology(morph, nseg=1, *, Ra: float | None = None,
                           cm: float | None = None) -> list:
    """Build ``morph`` in NEURON: one h.Section per section (same order), pt3d from
    ``Section.points``, ``child.connect(parent(parent_x), 0)``, and ``nseg`` (an int or
    one int per section)."""
    tag = next(_counter)
    secs = [h.Section(name=f"m{tag}_{i}_{s.region}") for i, s in enumerate(morph.sections)]
    for sec, s in zip(secs, morph.sections):
        for x, y, z, d in s.points.tolist():
            h.pt3dadd(x, y, z, d, sec=sec)
    for sec, s in zip(secs, morph.sections):
        if s.parent >= 0:
            sec.connect(secs[s.parent](s.parent_x), 0)
    _set(secs, nseg, Ra, cm)
    return secs


def _set(secs, nseg, Ra, cm) -> None:
    if nseg is not None:
        ns = np.broadcast_to(np.asarray(nseg, dtype=int), (len(secs),))
        for sec, n in zip(secs, ns.tolist()):
            sec.nseg = int(n)
    for sec in secs:
        if Ra is not None:
            sec.Ra = Ra
        if cm is not None:
            sec.cm = cm


def pt3d(sec) -> np.ndarray:
    """[P, 4] x, y, z, diam of a section's pt3d points."""
    n = int(sec.n3d())
    return np.array([[sec.x3d(i), sec.y3d(i), sec.z3d(i), sec.diam3d(i)] for i in range(n)],
                    dtype=np.float64).reshape(n, 4)


def parent_info(secs) -> tuple[np.ndarray, np.ndarray]:
    """(parent index [S], parent_x [S]) of sections, by position in ``secs``."""
    index = {s: i for i, s in enumerate(secs)}
    parents, xs = [], []
    for s in secs:
        ps = s.parentseg()
        if ps is None:
            parents.append(-1)
            xs.append(1.0)
        else:
            parents.append(index[ps.sec])
            xs.append(ps.x)
    return np.array(parents), np.array(xs)


def segment_geometry(secs) -> dict[str, np.ndarray]:
    """Per segment of each section (in order, sections in order): section index,
    centre x, area (um2), ri (MOhm) and diam (um), plus ri at each section's x=1 end."""
    sec_i, x, area, ri, diam = [], [], [], [], []
    ri_end = []
    for i, s in enumerate(secs):
        for seg in s:
            sec_i.append(i)
            x.append(seg.x)
            area.append(seg.area())
            ri.append(seg.ri())
            diam.append(seg.diam)
        ri_end.append(s(1.0).ri())
    return {"section": np.array(sec_i), "x": np.array(x), "area": np.array(area),
            "ri": np.array(ri), "ri_end": np.array(ri_end), "diam": np.array(diam)}


def d_lambda_nseg(secs, d_lambda=0.1, freq=100.0) -> np.ndarray:
    """nseg from NEURON's own d_lambda rule (the CellBuilder's ``geom_nseg``:
    ``nseg = int((L/(d_lambda*lambda_f(freq)) + .999)/2)*2 + 1``), applied in NEURON."""
    out = []
    for s in secs:
        lam = h.lambda_f(freq, sec=s)
        out.append(int((s.L / (d_lambda * lam) + 0.999) / 2) * 2 + 1)
    return np.array(out)
