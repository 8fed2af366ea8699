"""dendrax's morphology layer against NEURON (the numerical truth).

* read_swc vs Import3d: section count, pt3d points (bit for bit), parent and parent_x,
  on the shared real cells, on synthetic files for every soma kind and on random trees;
* compartments vs NEURON: every segment's area and ri, ri at x = 1, total area, at
  nseg 1, 3 and by the d_lambda rule (agreement to 4e-15 relative is required; it is in
  fact ~1e-15), every segment's diam (seg.diam), and the node tree itself
  (seg.node_index());
* Morphology.from_sections cells with unequal nseg, built in NEURON from the same pt3d.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("neuron")

from neuron import h  # noqa: E402

from dendrax.morphology import (Morphology, compartments, frustum_table,  # noqa: E402
                                mean_diameters, node_index, nseg_d_lambda, read_swc)
from neuron_model import (d_lambda_nseg, neuron_from_morphology, neuron_from_swc,  # noqa: E402
                          parent_info, pt3d, segment_geometry)
from swc_cases import SOMA_CASES, random_swc, write_swc  # noqa: E402

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "morphologies"
CELLS = ["ball_and_stick.swc", "C010398B-P2.CNG.swc", "n120_ca1.swc",
         "NMO_49821_ca1_pyramidal.swc"]
RTOL = 4e-15  # areas and ri vs NEURON: rounding (measured <= ~1e-15; docs say ~1e-15)
RA = 35.4


def shared(name: str) -> Path:
    path = SHARED / name
    if not path.is_file():
        pytest.skip(f"shared morphology {path} not found (the ../shared/morphologies folder "
                    "beside the repository is optional)")
    return path


def assert_same_sections(secs, morph):
    """NEURON's Import3d sections == ours: count, pt3d bit for bit, parents, L (1e-9 um
    where the points coincide)."""
    assert len(secs) == morph.n_sections
    np.testing.assert_array_equal(morph.lengths, [sec.L for sec in secs])
    parents, xs = parent_info(secs)
    for i, (sec, ours) in enumerate(zip(secs, morph.sections)):
        np.testing.assert_array_equal(pt3d(sec), ours.points, err_msg=f"section {i}")
    np.testing.assert_array_equal(parents, morph.parents)
    np.testing.assert_array_equal(xs, morph.parent_xs)


def centre_nodes(comps):
    return np.concatenate([comps.first_centre[s] + np.arange(comps.nseg[s])
                           for s in range(comps.n_sections)])


def rel(a, b):
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b)) / np.abs(np.asarray(b))))


def assert_same_geometry(secs, comps, Ra=RA):
    """Areas and ri of every segment (and ri at each kept x=1 node) vs NEURON."""
    g = segment_geometry(secs)
    idx = centre_nodes(comps)
    np.testing.assert_array_equal(comps.section[idx], g["section"])
    np.testing.assert_allclose(comps.x[idx], g["x"], rtol=1e-15)
    ri = comps.ri(Ra)
    errors = {"area": rel(comps.area[idx], g["area"]), "ri": rel(ri[idx], g["ri"])}
    kept = comps.end_node >= 0
    if kept.any():
        errors["ri_end"] = rel(ri[comps.end_node[kept]], g["ri_end"][kept])
    errors["total_area"] = abs(comps.total_area() - g["area"].sum()) / g["area"].sum()
    for k, v in errors.items():
        assert v < RTOL, f"{k}: max relative error {v:.3g}"
    return errors


def assert_same_diameters(secs, morph, nseg, comps):
    """Each segment's diam (NEURON's seg.diam: the mean along the segment) vs NEURON."""
    ours = np.asarray(mean_diameters(frustum_table(morph, nseg), morph.point_diameters))
    err = rel(ours[centre_nodes(comps)], segment_geometry(secs)["diam"])
    assert err < RTOL, f"diam: max relative error {err:.3g}"


def assert_same_nodes(secs, comps):
    """Our node tree is NEURON's: map NEURON's nodes (seg.node_index()) to ours through
    node_index(), and check the map is consistent and preserves parents."""
    h.finitialize(-65)
    nrn_to_ours: dict[int, int] = {}
    nrn_parent: dict[int, int] = {}
    for s, sec in enumerate(secs):
        xs = [0.0] + [seg.x for seg in sec] + [1.0]
        nrn = [sec(x).node_index() for x in xs]
        ours = [node_index(comps, s, x) for x in xs]
        for k, (a, b) in enumerate(zip(nrn, ours)):
            dropped = (k == len(xs) - 1 and comps.end_node[s] < 0) or \
                      (k == 0 and sec.parentseg() is None and comps.attach_node[s] < 0)
            if dropped:  # a zero-area leaf we drop maps to the nearest centre
                continue
            assert nrn_to_ours.setdefault(a, b) == b, f"section {s} x={xs[k]}"
            if k > 0:
                nrn_parent[a] = nrn[k - 1]
    assert sorted(nrn_to_ours.values()) == list(range(comps.n_nodes))  # a bijection
    for a, pa in nrn_parent.items():
        # a parent we dropped is the zero-area x=0 node of a root: we have a root there
        assert comps.parent[nrn_to_ours[a]] == nrn_to_ours.get(pa, -1)


# --------------------------------------------------------------------------- real cells
@pytest.fixture(scope="module", params=CELLS)
def cell(request):
    path = shared(request.param)
    secs = neuron_from_swc(path)
    return request.param, secs, read_swc(path)


def test_shared_cell_sections(cell):
    name, secs, morph = cell
    assert_same_sections(secs, morph)


@pytest.mark.parametrize("nseg", [1, 3, "d_lambda"])
def test_shared_cell_geometry(cell, nseg):
    name, secs, morph = cell
    for sec in secs:
        sec.Ra = RA
        sec.cm = 1.0
    if nseg == "d_lambda":
        for sec in secs:
            sec.nseg = 1
        ns = nseg_d_lambda(morph, d_lambda=0.1, freq=100.0, Ra=RA, cm=1.0)
        np.testing.assert_array_equal(ns, d_lambda_nseg(secs, 0.1, 100.0))
    else:
        ns = np.full(morph.n_sections, nseg)
    for sec, n in zip(secs, ns.tolist()):
        sec.nseg = n
    comps = compartments(morph, ns)
    assert_same_geometry(secs, comps)
    assert_same_diameters(secs, morph, ns, comps)
    assert_same_nodes(secs, comps)


# --------------------------------------------------------------------------- synthetic
@pytest.mark.parametrize("case", sorted(SOMA_CASES))
def test_soma_kinds_match_import3d(tmp_path, case):
    path = write_swc(tmp_path, case, SOMA_CASES[case])
    secs = neuron_from_swc(path, nseg=3, Ra=RA)
    morph = read_swc(path)
    assert_same_sections(secs, morph)
    comps = compartments(morph, 3)
    assert_same_geometry(secs, comps)
    assert_same_nodes(secs, comps)


@pytest.mark.parametrize("block", range(4))
def test_random_trees_match_import3d(tmp_path, block):
    for seed in range(block * 25, block * 25 + 25):
        path = write_swc(tmp_path, f"random{seed}", random_swc(seed))
        secs = neuron_from_swc(path, Ra=150.0, cm=2.0)
        morph = read_swc(path)
        try:
            assert_same_sections(secs, morph)
            # the d_lambda rule as NEURON's lambda_f computes it, on every random tree (the
            # real cells of ../shared test it too, where present)
            # (lambda_f divides by zero where a section's points coincide: left out; dendrax
            # gives them one segment)
            some = np.array([s.arc3d(int(s.n3d()) - 1) > 0 for s in secs])
            for d_lambda, freq in [(0.1, 100.0), (0.02, 1000.0)]:
                ours = nseg_d_lambda(morph, d_lambda=d_lambda, freq=freq, Ra=150.0, cm=2.0)
                np.testing.assert_array_equal(
                    ours[some], d_lambda_nseg([s for s, k in zip(secs, some) if k], d_lambda, freq))
            nseg = (np.arange(morph.n_sections) * 7 + seed) % 4 + 1
            for sec, n in zip(secs, nseg.tolist()):
                sec.nseg = n
            comps = compartments(morph, nseg)
            assert_same_geometry(secs, comps, Ra=150.0)
            assert_same_diameters(secs, morph, nseg, comps)
        except AssertionError as err:
            raise AssertionError(f"seed {seed}:\n{path.read_text()}") from err


def test_from_sections_unequal_nseg():
    morph = Morphology.from_sections([
        dict(length=20.0, diam=20.0, region="soma"),
        dict(length=300.0, diams=[4.0, 3.0, 2.5, 1.0], parent=0, parent_x=1.0, region="apic"),
        dict(length=500.0, diam=1.0, parent=0, parent_x=0.0, region="axon"),
        dict(length=120.0, diams=[2.0, 1.0], parent=1, parent_x=0.5),
        dict(length=80.0, diam=0.7, parent=1, parent_x=1.0),
        dict(length=75.0, diam=0.6, parent=1, parent_x=1.0),
        dict(length=60.0, diam=0.5, parent=1, parent_x=0.4),   # a segment boundary at nseg 5
        dict(length=40.0, diam=0.5, parent=2, parent_x=0.0),
        dict(length=33.0, diam=0.4, parent=3, parent_x=0.999),
    ])
    nseg = np.array([1, 5, 9, 3, 1, 2, 4, 1, 7])
    secs = neuron_from_morphology(morph, nseg, Ra=100.0)
    assert_same_sections(secs, morph)
    comps = compartments(morph, nseg)
    errors = assert_same_geometry(secs, comps, Ra=100.0)
    assert errors["area"] < 1e-12 and errors["ri"] < 1e-12
    assert_same_nodes(secs, comps)


def test_d_lambda_matches_neuron_rule():
    path = shared("n120_ca1.swc")
    secs = neuron_from_swc(path, Ra=150.0, cm=2.0)
    morph = read_swc(path)
    for d_lambda, freq in [(0.1, 100.0), (0.05, 500.0), (0.3, 10.0)]:
        ours = nseg_d_lambda(morph, d_lambda=d_lambda, freq=freq, Ra=150.0, cm=2.0)
        np.testing.assert_array_equal(ours, d_lambda_nseg(secs, d_lambda, freq))


@pytest.mark.parametrize("seed", range(3))
def test_random_programmatic_trees(seed):
    """Random from_sections trees (tapers, several roots, attachments at 0, 1, segment
    boundaries and elsewhere) with random nseg and Ra, against NEURON."""
    import random

    for k in range(15):
        rng = random.Random(1000 * seed + k)
        n = rng.randint(1, 12)
        nseg = [rng.randint(1, 10) for _ in range(n)]
        specs = []
        for i in range(n):
            spec = dict(length=rng.uniform(0.5, 400.0), region=rng.choice(["soma", "dend", "axon"]))
            if rng.random() < 0.5:
                spec["diam"] = rng.uniform(0.2, 15.0)
            else:
                spec["diams"] = [rng.uniform(0.2, 15.0) for _ in range(rng.randint(2, 7))]
            if i > 0 and rng.random() < 0.9:
                p = rng.randint(0, i - 1)
                u = rng.random()
                if u < 0.15:
                    x = 0.0
                elif u < 0.4:
                    x = 1.0
                elif u < 0.7 and nseg[p] > 1:
                    x = rng.randint(1, nseg[p] - 1) / nseg[p]  # a segment boundary
                else:
                    x = rng.choice([0.1, 0.29, 1 / 3, 0.57, 2 / 3, 0.7, 0.9])
                spec.update(parent=p, parent_x=x)
            specs.append(spec)
        morph = Morphology.from_sections(specs)
        Ra = rng.uniform(30.0, 300.0)
        secs = neuron_from_morphology(morph, nseg, Ra=Ra)
        comps = compartments(morph, nseg)
        assert_same_sections(secs, morph)
        assert_same_geometry(secs, comps, Ra=Ra)
        assert_same_diameters(secs, morph, nseg, comps)
        assert_same_nodes(secs, comps)


def test_kept_section_ends_match_neuron():
    """Ends kept for point processes (``ends``): every x = 1 node and the root's x = 0
    node, as NEURON has them: each one's ri (its half segment) is NEURON's, the rest of
    the geometry is unchanged, and the differentiable geometry agrees."""
    from dendrax.morphology import frustum_table, geometry_jax

    morph = Morphology.from_sections([
        dict(length=20.0, diam=20.0, region="soma"),
        dict(length=300.0, diams=[4.0, 3.0, 2.5, 1.0], parent=0, parent_x=1.0, region="apic"),
        dict(length=120.0, diams=[2.0, 1.0], parent=1, parent_x=0.5),
        dict(length=80.0, diam=0.7, parent=1, parent_x=1.0),
    ])
    nseg = np.array([3, 5, 3, 1])
    ends = [(s, 1.0) for s in range(4)] + [(0, 0.0)]
    secs = neuron_from_morphology(morph, nseg, Ra=100.0)
    plain, comps = compartments(morph, nseg), compartments(morph, nseg, ends)
    assert comps.n_nodes == sum(n + 1 for n in nseg) + 1 == plain.n_nodes + 3  # NEURON's
    g = segment_geometry(secs)
    ri = comps.ri(100.0)
    assert rel(ri[comps.end_node], g["ri_end"]) < RTOL
    root = node_index(comps, 0, 0.0)
    assert comps.is_junction[root] and comps.parent[root] == comps.first_centre[0]
    assert rel(ri[root], secs[0](0.5 / 3).ri()) < RTOL  # the first half segment
    same = centre_nodes(comps)
    np.testing.assert_array_equal(comps.area[same], plain.area[centre_nodes(plain)])
    later = same[same != comps.first_centre[0]]  # the root centre's half went to the leaf
    np.testing.assert_array_equal(ri[later], plain.ri(100.0)[centre_nodes(plain)][1:])
    area, axial = geometry_jax(frustum_table(morph, nseg, ends), morph.point_diameters)
    np.testing.assert_allclose(area, comps.area, rtol=1e-14)
    np.testing.assert_allclose(axial, comps.axial_integral, rtol=1e-14)
    with pytest.raises(ValueError, match="not a section end"):
        compartments(morph, nseg, [(1, 0.0)])  # a child's 0 end is its parent's node


# --------------------------------------------------------------------------- edits, float32
def _edited_geometry_neuron_and_ours():
    """A tapering cell edited in dendrax (cell.set "diam" and "L") and in NEURON
    (sec.diam =, pt3dchange, sec.L =) on the same pt3d: (NEURON's sections, the cell,
    its area [N] and axial integrals [N] from its edited values)."""
    import dendrax as dx
    from dendrax.morphology import geometry_jax

    morph = Morphology.from_sections([
        dict(length=20.0, diam=20.0, region="soma"),
        dict(length=300.0, diams=[4.0, 3.0, 2.5, 1.0], parent=0, region="apic"),
        dict(length=120.0, diams=[2.0, 1.0], parent=1, parent_x=0.5),
        dict(length=80.0, diam=0.7, parent=1),
    ])
    nseg = np.array([1, 5, 3, 3])
    secs = neuron_from_morphology(morph, nseg, Ra=100.0)
    cell = dx.Cell(morph, nseg=list(nseg), Ra=100.0)
    secs[1].diam = 0.7                       # every 3-D point of the section
    cell.set("diam", 0.7, where=cell.section(1))
    taper = [1.3, 0.9]                       # one value per 3-D point
    for i, d in enumerate(taper):
        h.pt3dchange(i, d, sec=secs[2])
    cell.set("diam", taper, where=cell.section(2))
    secs[3].L = 33.3
    cell.set("L", 33.3, where=cell.section(3))
    area, axial = geometry_jax(cell.frustums, cell.get("diam"), cell.get("L") / morph.lengths)
    return secs, cell, np.asarray(area), np.asarray(axial)


def test_set_diam_and_L_match_neuron():
    """cell.set("diam") stores float32 diameters, as NEURON's sec.diam = d (and
    pt3dchange) store them in the 3-D points: the areas and ri after the edit are
    NEURON's to rounding (were 1.7e-8 apart: set kept the float64 0.7)."""
    secs, cell, area, axial = _edited_geometry_neuron_and_ours()
    np.testing.assert_array_equal(cell.get("diam"),
                                  np.concatenate([pt3d(s)[:, 3] for s in secs]))
    g, idx = segment_geometry(secs), centre_nodes(cell.compartments)
    assert rel(area[idx], g["area"]) < RTOL
    assert rel(100.0 * 4e-2 / np.pi * axial[idx], g["ri"]) < RTOL


def test_from_sections_lengths_are_neurons_from_the_same_points():
    """Far from the origin float32 points shorten a short section; NEURON computes the
    same length from the same points (so from_sections keeps it, within LENGTH_RTOL)."""
    morph = Morphology.from_sections([
        dict(length=20.0, diam=20.0, region="soma"),
        dict(length=20000.0, diam=1.0, parent=0, region="axon"),
        dict(length=0.5, diam=1.0, parent=1),
    ])
    secs = neuron_from_morphology(morph, 1)
    np.testing.assert_array_equal([s.L for s in secs], morph.lengths)
    assert morph.lengths[2] != 0.5 and abs(morph.lengths[2] - 0.5) < 1e-3 * 0.5


def test_d_lambda_argument_edges_follow_neuron():
    """cm = 0 is NEURON's (lambda_f = 1e10 um: one segment); freq = 0 makes NEURON's
    lambda_f divide by zero and NEURON refuses Ra = 0: nseg_d_lambda refuses both by name."""
    morph = Morphology.from_sections([dict(length=20.0, diam=20.0, region="soma"),
                                      dict(length=900.0, diams=[3.0, 1.0], parent=0)])
    secs = neuron_from_morphology(morph, 1, Ra=100.0, cm=0.0)
    np.testing.assert_array_equal(nseg_d_lambda(morph, Ra=100.0, cm=0.0),
                                  d_lambda_nseg(secs))
    assert d_lambda_nseg(secs).tolist() == [1, 1]
    secs[1].cm = 1.0
    with pytest.raises(RuntimeError):
        h.lambda_f(0.0, sec=secs[1])
    with pytest.raises(ValueError, match=r"freq must be a finite number > 0 \(Hz\), got 0.0"):
        nseg_d_lambda(morph, freq=0.0)
    with pytest.raises(ValueError, match="Ra must be > 0"):  # NEURON refuses Ra = 0
        secs[1].Ra = 0.0
    with pytest.raises(ValueError, match=r"Ra must be finite and > 0 ohm cm, got 0.0"):
        nseg_d_lambda(morph, Ra=0.0)
