"""Morphology data model, SWC reader, reader dispatch and compartments (no NEURON needed).

The comparisons against NEURON are in test_geometry_neuron.py.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dendrax as dx
from dendrax.morphology import (Compartments, Morphology, MorphologyError, Section,
                                compartments, known_formats, node_index, nseg_d_lambda,
                                nseg_max_length, read_morphology, read_swc)
from dendrax.morphology.morphology import pt3d_arc
from swc_cases import SOMA_CASES, write_swc

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "morphologies"


# --------------------------------------------------------------------------- data model
def test_section_validates_points():
    with pytest.raises(ValueError, match=r"\[P, 4\]"):
        Section(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="at least 2"):
        Section(np.array([[0, 0, 0, 1.0]]))
    with pytest.raises(ValueError, match=r"Section.points\[1\] \(x\) = nan um is not finite"):
        Section(np.array([[0, 0, 0, 1.0], [np.nan, 0, 0, 1]]))
    with pytest.raises(ValueError, match=r"Section.points\[1\] \(diameter\) = 0 um is not positive"):
        Section(np.array([[0, 0, 0, 1.0], [1, 0, 0, 0]]))
    with pytest.raises(ValueError, match="parent_x"):
        Section(np.array([[0, 0, 0, 1.0], [1, 0, 0, 1]]), parent=0, parent_x=1.5)


@pytest.mark.parametrize("row, message", [
    ([1e39, 0, 0, 1.0], r"Section.points\[1\] \(x\) = 1e\+39 um is beyond float32.*"
                        r"within \+-3.4028235e\+38 um"),
    ([0, -4e38, 0, 1.0], r"Section.points\[1\] \(y\) = -4e\+38 um is beyond float32"),
    ([0, 0, 0, 1e39], r"Section.points\[1\] \(diameter\) = 1e\+39 um is beyond float32"),
    ([1, 0, 0, 1e-50], r"Section.points\[1\] has a non-positive diameter as float32.*"
                       r"1e-50 um rounds to 0; give at least 1.4e-45 um"),
    ([3e38, 0, 0, 1.0], r"Section.points\[1\] \(x\): the step from the previous point "
                        r"overflows float32.*within 3.4028235e\+38 um of each other"),
])
def test_section_refuses_values_beyond_float32(row, message):
    """NEURON stores pt3d as float32: a value it cannot hold made lengths inf and areas
    NaN (found only when simulating); refused, naming the point, field and range."""
    first = [-3e38, 0, 0, 1.0] if "step" in message else [0, 0, 0, 1.0]
    with pytest.raises(ValueError, match=message):
        Section(np.array([first, row]))
    edge = np.finfo(np.float32).max
    assert np.isfinite(Section(np.array([[edge, 0, 0, 1.0], [edge, 1, 0, edge]])).length)


def test_section_is_immutable():
    s = Section(np.array([[0, 0, 0, 1.0], [3, 4, 0, 1]]), region="axon")
    with pytest.raises(ValueError):
        s.points[0, 0] = 5.0
    with pytest.raises(AttributeError):
        s.parent = 3  # type: ignore[misc]
    assert s.length == 5.0
    assert s == Section(np.array([[0, 0, 0, 1.0], [3, 4, 0, 1]]), region="axon")
    assert hash(s) == hash(Section(np.array([[0, 0, 0, 1.0], [3, 4, 0, 1]]), region="axon"))


@pytest.mark.parametrize("kwargs, message", [
    ({"parent": 0.7}, "parent must be an int"), ({"parent": "0"}, "parent must be an int"),
    ({"parent": True}, "parent must be an int"),
    ({"parent_x": True}, "parent_x must be a number in"),
    ({"parent_x": "0.5"}, "parent_x must be a number in"),
    ({"parent_x": float("nan")}, r"parent_x must be in \[0, 1\], got nan"),
    ({"region": ""}, "region must be a non-empty string"),
    ({"region": None}, "region must be a non-empty string"),
    ({"region": 3}, "region must be a non-empty string"),
    ({"points": [[0, 0, 0, 1.0], [3, 4, 0, -1]]}, r"points\[1\] \(diameter\) = -1 um is not "
                                                   "positive"),
])
def test_section_refuses_what_it_would_coerce(kwargs, message):
    # (these were taken as int(), float(), str(): parent 0.7 became 0, region None "None")
    points = kwargs.pop("points", [[0, 0, 0, 1.0], [3, 4, 0, 1]])
    with pytest.raises(ValueError, match=message):
        Section(np.array(points), **{"parent": 0, **kwargs})


def test_morphology_requires_parents_first():
    a = Section(np.array([[0, 0, 0, 1.0], [1, 0, 0, 1]]))
    b = Section(np.array([[1, 0, 0, 1.0], [2, 0, 0, 1]]), parent=1)
    with pytest.raises(ValueError, match="section 1: parent 1"):
        Morphology((a, b))
    with pytest.raises(ValueError, match="at least one section"):
        Morphology(())


def test_from_sections_builds_cylinders():
    m = Morphology.from_sections([
        dict(length=20.0, diam=10.0, region="soma"),
        dict(length=200.0, diam=2.0, parent=0, parent_x=1.0, region="dend"),
        dict(length=100.0, diams=[3.0, 2.0, 1.0], parent=0, parent_x=0.5, region="apic"),
        dict(length=50.0, diam=1.0, parent=1, parent_x=0.25),
        dict(length=30.0, diam=5.0),  # a second root
    ], name="toy")
    assert m.n_sections == 5 and m.name == "toy"
    np.testing.assert_allclose(m.lengths, [20, 200, 100, 50, 30], rtol=1e-6)
    assert m.regions() == {"soma": [0], "dend": [1, 3], "apic": [2]} | {"dend": [1, 3, 4]}
    assert m.roots == [0, 4]
    assert m.children(0) == [1, 2]
    assert list(m.parents) == [-1, 0, 0, 1, -1]
    np.testing.assert_array_equal(m.sections[2].diameters, [3.0, 2.0, 1.0])
    # a child starts at its attachment point
    np.testing.assert_allclose(m.sections[2].xyz[0], [10.0, 0, 0], atol=1e-5)
    np.testing.assert_allclose(m.sections[3].xyz[0], m.sections[1].xyz[0]
                               + 0.25 * (m.sections[1].xyz[-1] - m.sections[1].xyz[0]), atol=1e-4)
    # points are float32 values, as NEURON stores pt3d
    pts = m.all_points
    np.testing.assert_array_equal(pts, pts.astype(np.float32).astype(np.float64))
    assert m.point_offsets.tolist() == [0, 2, 4, 7, 9, 11]
    assert m.point_diameters.shape == (11,)


@pytest.mark.parametrize("spec, message", [
    (dict(length=0.0, diam=1.0), r"section 0: length must be positive"),
    (dict(length=-5.0, diam=1.0), r"section 0: length must be positive"),
    (dict(length=float("nan"), diam=1.0), r"section 0: length must be finite"),
    (dict(length=float("inf"), diam=1.0), r"section 0: length must be finite"),
    (dict(length=10.0, diam=0.0), r"section 0: diam must be positive"),
    (dict(length=10.0, diam=-1.0), r"section 0: diam must be positive"),
    (dict(length=10.0, diam="thick"), r"section 0: diam must be a number"),
    (dict(length=10.0, diams=[1.0, 0.0]), r"section 0: diams\[1\] must be positive"),
    (dict(length=10.0, diams=[1.0]), r"section 0: 'diams' needs at least 2"),
    (dict(length=10.0), r"section 0: give exactly one of 'diam' or 'diams'"),
    (dict(length=10.0, diam=1.0, diams=[1, 2]), r"give exactly one"),
    (dict(diam=1.0), r"section 0: missing 'length'"),
    (dict(length=10.0, diam=1.0, parent=0), r"section 0: parent 0 must be -1"),
    (dict(length=10.0, diam=1.0, parent=1.5), r"section 0: parent must be an int"),
    (dict(length=10.0, diam=1.0, colour="red"), r"section 0: unknown keys \['colour'\]"),
])
def test_from_sections_rejects_bad_input(spec, message):
    with pytest.raises(ValueError, match=message):
        Morphology.from_sections([spec])


def test_from_sections_rejects_bad_child():
    base = dict(length=10.0, diam=1.0)
    with pytest.raises(ValueError, match=r"section 1: parent 5 must be -1"):
        Morphology.from_sections([base, dict(base, parent=5)])
    with pytest.raises(ValueError, match=r"section 1: parent -2 must be -1"):
        Morphology.from_sections([base, dict(base, parent=-2)])
    with pytest.raises(ValueError, match=r"section 1: parent_x must be in \[0, 1\]"):
        Morphology.from_sections([base, dict(base, parent=0, parent_x=1.2)])
    with pytest.raises(ValueError, match=r"section 1: region"):
        Morphology.from_sections([base, dict(base, parent=0, region="")])
    with pytest.raises(ValueError, match="no sections"):
        Morphology.from_sections([])


def test_from_sections_refuses_lengths_float32_cannot_hold():
    """Far from the origin float32 coordinates (NEURON's pt3d) change a short section's
    length: kept (as NEURON computes it from the same points) within LENGTH_RTOL,
    refused beyond (0.0005 um became 0.00098 um, 0.01 um 0.0098 um, without a word)."""
    from dendrax.morphology.morphology import LENGTH_RTOL

    base = [dict(length=20.0, diam=20.0, region="soma"),
            dict(length=20000.0, diam=1.0, parent=0, region="axon")]
    m = Morphology.from_sections(base + [dict(length=0.5, diam=1.0, parent=1)])
    assert m.lengths[2] == pt3d_arc(m.sections[2].points)[-1]
    assert 0 < abs(m.lengths[2] - 0.5) <= LENGTH_RTOL * 0.5
    for length in (0.01, 0.0005, 1e-9):
        with pytest.raises(ValueError, match=rf"section 2: length {length:g} um becomes "
                                             r"\S+ um with float32 coordinates.*keeps lengths "
                                             r"to 0.001 relative: give a length of at least"):
            Morphology.from_sections(base + [dict(length=length, diam=1.0, parent=1)])
    near = Morphology.from_sections([base[0], dict(length=0.01, diam=1.0, parent=0)])
    assert abs(near.lengths[1] - 0.01) <= LENGTH_RTOL * 0.01
    with pytest.raises(ValueError, match=r"section 0: diameters\[1\] = 1e-50 um is not "
                                         r"positive as float32.*at least 1.4e-45 um"):
        Morphology.from_sections([dict(length=10.0, diams=[1.0, 1e-50])])
    with pytest.raises(ValueError, match=r"section 1: coordinates\[1, 0\] = \S+ um is "
                                         r"beyond float32.*at most 3.4028235e\+38 um"):
        Morphology.from_sections([dict(length=10.0, diam=1.0),
                                  dict(length=1e39, diam=1.0, parent=0)])


def test_pt3d_arc_uses_float32_differences():
    pts = np.array([[0.1, 0.2, 0.3, 1.0], [1.1, 0.2, 0.3, 1.0], [1.1, 2.7, 0.3, 1.0]])
    f = pts[:, :3].astype(np.float32)
    d1 = float(np.float32(f[1, 0] - f[0, 0]))
    d2 = float(np.float32(f[2, 1] - f[1, 1]))
    np.testing.assert_array_equal(pt3d_arc(pts), [0.0, d1, d1 + d2])


# --------------------------------------------------------------------------- SWC reader
def test_single_point_soma_is_a_sphere(tmp_path):
    m = read_swc(write_swc(tmp_path, "one", SOMA_CASES["one_point"]))
    soma = m.sections[0]
    assert soma.region == "soma" and soma.parent == -1
    np.testing.assert_array_equal(soma.points, [[-5, 0, 0, 10], [0, 0, 0, 10], [5, 0, 0, 10]])
    # a multi-sample branch is "wired": starts at its own first sample, at soma(0.5)
    assert m.sections[1].parent == 0 and m.sections[1].parent_x == 0.5
    np.testing.assert_array_equal(m.sections[1].points[0], [5, 0, 0, 2])
    # a single-sample branch runs from the soma centre (diameter of its own sample)
    axon = m.sections[m.regions()["axon"][0]]
    np.testing.assert_array_equal(axon.points, [[0, 0, 0, 1], [0, -5, 0, 1]])
    assert axon.parent_x == 0.5
    # children of an ordinary branch point copy the parent sample (with its diameter)
    np.testing.assert_array_equal(m.sections[2].points[0], [15, 0, 0, 2])
    assert m.sections[2].parent == 1 and m.sections[2].parent_x == 1.0
    assert m.name == "one"


def test_neuromorpho_three_point_soma(tmp_path):
    m = read_swc(write_swc(tmp_path, "three", SOMA_CASES["three_point"]))
    assert [s.region for s in m.sections] == ["soma", "dend", "apic"]
    # the 3 samples become a sphere around sample 1 (drawn along x)
    np.testing.assert_array_equal(m.sections[0].points,
                                  [[4, 10, 0, 12], [10, 10, 0, 12], [16, 10, 0, 12]])
    assert all(s.parent == 0 and s.parent_x == 0.5 for s in m.sections[1:])


def test_three_soma_points_that_are_not_neuromorpho(tmp_path):
    m = read_swc(write_swc(tmp_path, "three_bad", SOMA_CASES["three_point_unequal"]))
    assert [s.region for s in m.sections] == ["soma", "soma", "dend"]
    assert (m.sections[1].parent, m.sections[1].parent_x) == (0, 0.0)
    assert (m.sections[2].parent, m.sections[2].parent_x) == (0, 0.0)


def test_soma_chain(tmp_path):
    m = read_swc(write_swc(tmp_path, "chain", SOMA_CASES["soma_chain"]))
    assert m.sections[0].n_points == 5 and m.sections[0].region == "soma"
    att = [(s.parent, s.parent_x) for s in m.sections[1:]]
    # first sample of the soma -> 0; last -> 1; interior -> 0.5
    assert att == [(0, 0.0), (0, 1.0), (0, 0.5)]
    # a dendrite from the first soma sample starts at it, with its own diameter
    np.testing.assert_array_equal(m.sections[1].points[0], [0, 0, 0, 2])
    # a dendrite from an interior soma sample is wired (no copy of the soma sample)
    np.testing.assert_array_equal(m.sections[3].points[0, :3], [-2, 4, 0])
    assert m.sections[3].points[0, 3] == np.float32(1.6)


def test_two_trees(tmp_path):
    m = read_swc(write_swc(tmp_path, "two", SOMA_CASES["two_trees"]))
    # NEURON 9 attaches every later root to the first root section at 0.5
    assert m.roots == [0]
    assert (m.sections[2].parent, m.sections[2].parent_x) == (0, 0.5)
    np.testing.assert_array_equal(m.sections[2].points[0], [100, 0, 0, 4])


def test_custom_types_and_zero_length_pieces(tmp_path):
    m = read_swc(write_swc(tmp_path, "custom", SOMA_CASES["custom_types"]))
    assert [s.region for s in m.sections] == ["soma", "custom7", "dend", "custom0"]
    assert m.sections[2].n_points == 4  # duplicate sample kept inside a section
    # NEURON's Import3d names type 7's sections dend_7[k]: that name selects them too
    cell = dx.Cell(m)
    assert cell.sections("dend_7") == cell.sections("custom7") == [1]
    assert cell.sections("dend_0") == [3]
    with pytest.raises(ValueError, match="no sections in region 'dend_5'"):
        cell.sections("dend_5")
    # names that could mean several regions are refused, not read as one of them
    # ("dendrites" was the basal dend alone: apical sections silently left out)
    for name in ("dendrite", "dendrites"):
        with pytest.raises(ValueError, match=r"not a region: 'dend' selects the basal .* "
                                             r"where=\['dend', 'apic'\] for both"):
            cell.insert("pas", where=name)
    with pytest.raises(ValueError, match=r"where='all' is not a region: where=None"):
        cell.sections("all")
    # a region of the cell by its own name is that region, whatever the aliases say
    own = dx.Cell.from_sections([{"length": 10.0, "diam": 10.0, "region": "soma"},
                                 {"length": 50.0, "diam": 1.0, "parent": 0, "region": "all"},
                                 {"length": 50.0, "diam": 1.0, "parent": 0, "region": "dend_7"}])
    assert own.sections("all") == [1] and own.sections("dend_7") == [2]
    assert own.location_name(own.section(2)(0.5)) == "dend_7(0.5)"


def test_lines_end_at_newlines_only(tmp_path):
    """A form feed (or another of str.splitlines' separators) inside a comment is part of
    the comment, and errors name the file's own line numbers."""
    m = read_swc(write_swc(tmp_path, "ff", "# exported\x0c 2 3 5 0 0 1 1\r\n1 1 0 0 0 5 -1\n"))
    assert m.n_sections == 1
    bad = write_swc(tmp_path, "ff2", "# header\x0cmore\x0bheader\n1 1 0 0 0 5 -1\n2 3 5 0 0 0 1\n")
    with pytest.raises(MorphologyError, match=r"line 3: radius must be positive"):
        read_swc(bad)


def test_comments_blank_lines_and_unsorted_ids(tmp_path):
    text = "# header\n\n   \n1 1 0 0 0 5 -1  # the soma\n3 3 20 0 0 1 2\n2 3 10 0 0 1 1\n"
    m = read_swc(write_swc(tmp_path, "unsorted", text))
    assert m.n_sections == 2
    np.testing.assert_array_equal(m.sections[1].points[:, 0], [10, 20])


def test_shared_section_counts():
    if not SHARED.is_dir():
        pytest.skip(f"shared morphologies not found at {SHARED}")
    counts = {"ball_and_stick.swc": 2, "C010398B-P2.CNG.swc": 78, "n120_ca1.swc": 156,
              "NMO_49821_ca1_pyramidal.swc": 220}
    for name, n in counts.items():
        assert read_swc(SHARED / name).n_sections == n


MALFORMED = [
    ("missing_parent", "1 1 0 0 0 5 -1\n2 3 5 0 0 1 1\n3 3 9 0 0 1 7\n", 3,
     "parent id 7 of sample 3 does not exist"),
    ("cycle", "1 1 0 0 0 5 -1\n2 3 5 0 0 1 3\n3 3 9 0 0 1 2\n", 3, "cycle"),
    ("self_parent", "1 1 0 0 0 5 -1\n2 3 5 0 0 1 2\n", 2, "cycle"),
    ("parent_after", "1 1 0 0 0 5 -1\n2 3 5 0 0 1 3\n3 3 9 0 0 1 1\n", 2, "not smaller"),
    ("duplicate_id", "1 1 0 0 0 5 -1\n2 3 5 0 0 1 1\n2 3 9 0 0 1 1\n", 3,
     "duplicate id 2 .first defined on line 2"),
    ("zero_radius", "1 1 0 0 0 5 -1\n2 3 5 0 0 0 1\n", 2, "radius must be positive"),
    ("negative_radius", "1 1 0 0 0 5 -1\n\n2 3 5 0 0 -1 1\n", 3, "radius must be positive"),
    ("non_numeric", "1 1 0 0 0 5 -1\n2 3 5 zero 0 1 1\n", 2, r"field 4 \(y\) is not a number"),
    ("nan", "1 1 0 0 0 5 -1\n2 3 5 nan 0 1 1\n", 2, r"field 4 \(y\) is not finite"),
    ("beyond_float32", "1 1 0 0 0 5 -1\n2 3 5 0 1e39 1 1\n", 2,
     r"field 5 \(z\) 1e39 is beyond float32"),
    ("diameter_beyond_float32", "1 1 0 0 0 5 -1\n2 3 5 0 0 2e38 1\n", 2,
     r"field 6 \(radius\) 2e38 is beyond float32"),
    ("radius_underflows_float32", "1 1 0 0 0 5 -1\n2 3 5 0 0 1e-50 1\n", 2,
     "radius 1e-50 underflows float32"),
    ("non_integer_id", "1 1 0 0 0 5 -1\n2.5 3 5 0 0 1 1\n", 2, r"field 1 \(id\) is not an integer"),
    # a single-point soma far out: its cylinder x -+ d/2 rounds to x in float32 (L = 0)
    ("soma_length_rounds_to_0", "1 1 3.4e38 0 0 6 -1\n2 3 6 0 0 1 1\n", 1,
     "a single-point soma of diameter 12 um at x = 3.4e.38 um has zero length in float32"),
    # what Python's float() reads but C's strtod (NEURON's reader) does not
    ("underscore_digits", "1 1 0 0 0 5 -1\n2 3 1_0 0 0 1 1\n", 2,
     r"field 3 \(x\) is not a decimal number.*'1_0'"),
    ("non_ascii_digits", "1 1 0 0 0 5 -1\n2 3 \u0665 0 0 1 1\n", 2,
     r"field 3 \(x\) is not a decimal number"),
    ("id_beyond_exact_integers", "1 1 0 0 0 5 -1\n9007199254740993 3 5 0 0 1 1\n", 2,
     r"field 1 \(id\) 9007199254740993 is too large to count exactly"),
    ("too_few_columns", "1 1 0 0 0 5 -1\n2 3 5 0 0 1\n", 2, "expected 7 fields"),
    ("too_many_columns", "# c\n1 1 0 0 0 5 -1 0\n", 2, "expected 7 fields"),
    ("empty", "", 1, "empty file"),
    ("only_comments", "# nothing\n# here\n", 2, "empty file"),
]


@pytest.mark.parametrize("name, text, line, reason", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_swc(tmp_path, name, text, line, reason):
    path = write_swc(tmp_path, name, text)
    with pytest.raises(MorphologyError, match=rf"line {line}: .*{reason}"):
        read_swc(path)
    assert issubclass(MorphologyError, ValueError)


# --------------------------------------------------------------------------- dispatch
def test_read_morphology_dispatch(tmp_path):
    path = write_swc(tmp_path, "cell", SOMA_CASES["one_point"])
    assert "swc" in known_formats()
    assert read_morphology(path) == read_swc(path)
    upper = tmp_path / "CELL.SWC"
    upper.write_text(SOMA_CASES["one_point"])
    assert read_morphology(upper).n_sections == 6
    other = tmp_path / "cell.txt"
    other.write_text(SOMA_CASES["one_point"])
    assert read_morphology(other, format="swc").n_sections == 6
    with pytest.raises(MorphologyError, match=r"unknown morphology format 'txt'.*known formats: .*swc"):
        read_morphology(other)
    with pytest.raises(MorphologyError, match=r"unknown morphology format 'asc'.*swc"):
        read_morphology(path, format="asc")
    nosuffix = tmp_path / "cell"
    nosuffix.write_text(SOMA_CASES["one_point"])
    with pytest.raises(MorphologyError, match="no file suffix.*swc"):
        read_morphology(nosuffix)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_morphology(tmp_path / "missing.swc")


def test_read_morphology_bad_plugin(tmp_path, monkeypatch):
    from dendrax import plugins
    from dendrax.morphology import readers

    fake = plugins.Plugin("bad", readers.GROUP, "somepkg.mod:reader", "somepkg")
    table = dict(plugins.providers(readers.GROUP), bad=(fake,))
    monkeypatch.setattr(readers.plugins, "providers", lambda group: table)
    monkeypatch.setattr(readers.plugins, "load", lambda group, name: (lambda path: "nope"))
    path = tmp_path / "cell.bad"
    path.write_text("whatever")
    with pytest.raises(TypeError, match=r"reader 'bad' \(somepkg.mod:reader from package "
                                        r"'somepkg'\) returned str"):
        read_morphology(path)

    def broken(group, name):
        raise plugins.PluginError("plugin 'bad' from package 'somepkg' failed to load: boom")

    monkeypatch.setattr(readers.plugins, "load", broken)
    with pytest.raises(MorphologyError, match="failed to load: boom"):
        read_morphology(path)


# --------------------------------------------------------------------------- compartments
def _toy() -> Morphology:
    return Morphology.from_sections([
        dict(length=20.0, diam=20.0, region="soma"),
        dict(length=200.0, diams=[3.0, 2.0, 1.5, 1.0], parent=0, parent_x=1.0),
        dict(length=150.0, diam=1.0, parent=0, parent_x=0.0, region="axon"),
        dict(length=80.0, diam=1.0, parent=1, parent_x=0.5),
        dict(length=60.0, diam=0.8, parent=1, parent_x=1.0),
        dict(length=60.0, diam=0.8, parent=1, parent_x=1.0),
        dict(length=40.0, diam=0.5, parent=2, parent_x=0.0),
    ])


def test_compartment_tree_structure():
    m = _toy()
    nseg = np.array([1, 4, 3, 2, 1, 1, 1])
    c = compartments(m, nseg)
    assert isinstance(c, Compartments)
    assert c.parent.dtype == np.int32 and c.section.dtype == np.int32
    assert np.all(c.parent < np.arange(c.n_nodes))
    assert c.n_nodes == nseg.sum() + 3  # root x=0 node, soma x=1 node, dend x=1 node
    junctions = np.flatnonzero(c.is_junction)
    assert [(c.section[j], c.x[j]) for j in junctions] == [(0, 0.0), (0, 1.0), (1, 1.0)]
    assert np.all(c.area[junctions] == 0)
    assert np.all(c.area[~c.is_junction] > 0)
    # the axon at soma(0) and the axon's child at axon(0) both join the root's x=0 node
    assert c.attach_node[2] == c.attach_node[6] == junctions[0]
    # dend 3 at dend1(0.5) with nseg 4 joins segment int(4*0.5) = 2
    assert c.attach_node[3] == c.first_centre[1] + 2
    assert c.attach_node[4] == c.attach_node[5] == c.end_node[1]
    np.testing.assert_allclose(c.x[c.first_centre[1]:c.first_centre[1] + 4],
                               [0.125, 0.375, 0.625, 0.875])
    with pytest.raises(ValueError):
        c.area[0] = 1.0


def test_node_index():
    m = _toy()
    c = compartments(m, [1, 4, 3, 2, 1, 1, 1])
    fc = c.first_centre
    assert node_index(c, 1, 0.3) == fc[1] + 1
    assert node_index(c, 1, 0.5) == fc[1] + 2     # a boundary belongs to the segment above
    assert node_index(c, 1, 0.25) == fc[1] + 1
    assert node_index(c, 1, 1.0) == c.end_node[1]
    assert node_index(c, 3, 1.0) == fc[3] + 1     # dropped leaf junction -> last centre
    assert node_index(c, 3, 0.0) == fc[1] + 2     # sec(0) is the parent's node
    assert node_index(c, 0, 0.0) == c.attach_node[0]
    assert node_index(c, 2, 0.0) == c.attach_node[0]
    single = compartments(Morphology.from_sections([dict(length=10.0, diam=1.0)]), 3)
    assert single.n_nodes == 3 and not single.is_junction.any()
    assert node_index(single, 0, 0.0) == 0 and node_index(single, 0, 1.0) == 2
    with pytest.raises(ValueError):
        node_index(c, 0, 1.5)
    with pytest.raises(IndexError):
        node_index(c, 7, 0.5)


def test_nseg_arguments():
    m = _toy()
    with pytest.raises(ValueError, match="one int per section"):
        compartments(m, [1, 2])
    with pytest.raises(ValueError, match="between 1 and 32767"):
        compartments(m, 0)
    with pytest.raises(ValueError, match="integers"):
        compartments(m, 1.5)
    n = nseg_max_length(m, 30.0)
    np.testing.assert_array_equal(n, np.ceil(m.lengths / 30.0 - 1e-9))
    assert np.all(nseg_max_length(m, 30.0, odd=True) % 2 == 1)
    with pytest.raises(ValueError):
        nseg_max_length(m, 0.0)
    dl = nseg_d_lambda(m)
    assert dl.dtype == np.int64 and np.all(dl % 2 == 1) and np.all(dl >= 1)
    assert np.all(nseg_d_lambda(m, d_lambda=0.01) >= dl)
    # rules asked for more segments than nseg allows: named (were OverflowError, or
    # "nseg ... got -9.22e18" where the count wrapped)
    with pytest.raises(ValueError, match=r"the d_lambda rule gives section 0 .* more than "
                                         r"32767 segments \(d_lambda = 1e-300"):
        nseg_d_lambda(m, d_lambda=1e-300)
    with pytest.raises(ValueError, match=r"max_length = 1e-300 um gives section \d+ .* more "
                                         r"than 32767 segments"):
        nseg_max_length(m, 1e-300)
    with pytest.raises(ValueError, match=r"section 0: length must be a number, got '20'"):
        Morphology.from_sections([dict(length="20", diam=2.0)])


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(d_lambda=0.0), ValueError, r"d_lambda must be a finite number > 0, got 0.0"),
    (dict(d_lambda=-0.1), ValueError, r"d_lambda must be a finite number > 0, got -0.1"),
    (dict(d_lambda=float("nan")), ValueError, r"d_lambda must be a finite number > 0, got nan"),
    (dict(d_lambda="0.1"), TypeError, r"d_lambda must be a finite number > 0, got '0.1'"),
    (dict(d_lambda=[0.1]), TypeError, r"d_lambda must be .* \(one number\)"),
    (dict(freq=0.0), ValueError, r"freq must be a finite number > 0 \(Hz\), got 0.0"),
    (dict(freq=-100.0), ValueError, r"freq must be a finite number > 0 \(Hz\), got -100.0"),
    (dict(freq=float("inf")), ValueError, r"freq must be a finite number > 0 \(Hz\), got inf"),
    (dict(freq=None), TypeError, r"freq must be a finite number > 0 \(Hz\), got None"),
    (dict(Ra=0.0), ValueError, r"Ra must be finite and > 0 ohm cm, got 0.0"),
    (dict(Ra=-35.4), ValueError, r"Ra must be finite and > 0 ohm cm, got -35.4"),
    (dict(Ra=[35.4] * 6 + [np.nan]), ValueError, r"Ra must be finite and > 0 ohm cm, got nan"),
    (dict(Ra=[35.4, 35.4]), ValueError, r"Ra must be one number or one per section \(7\), "
                                        r"got shape \(2,\)"),
    (dict(Ra=True), TypeError, r"Ra must be finite and > 0 ohm cm, got True"),
    (dict(cm=-1.0), ValueError, r"cm must be finite and >= 0 uF/cm2, got -1.0"),
    (dict(cm=1 + 2j), TypeError, r"cm must be finite and >= 0 uF/cm2, got \(1\+2j\)"),
    (dict(round_up=1.5), ValueError, r"round_up must be a number in \[0, 1\], got 1.5"),
])
def test_nseg_d_lambda_refuses_bad_arguments(kwargs, error, message):
    """Were a ZeroDivisionError, 'math domain error', nseg 1 (freq = 0, Ra = 0) or a
    negative nseg (d_lambda < 0)."""
    with pytest.raises(error, match=message):
        nseg_d_lambda(_toy(), **kwargs)


def test_nseg_d_lambda_takes_a_morphology():
    with pytest.raises(TypeError, match="nseg_d_lambda takes a Morphology, got str"):
        nseg_d_lambda("cell.swc")


_bad_numbers = st.one_of(st.floats(max_value=0.0), st.just(float("inf")), st.just(float("nan")))


@settings(max_examples=60, deadline=None)
@given(d_lambda=st.floats(0.01, 1.0), freq=st.floats(0.1, 1e4), Ra=st.floats(1.0, 1e3),
       cm=st.floats(0.0, 10.0), bad=st.sampled_from(["d_lambda", "freq", "Ra", "cm"]),
       value=_bad_numbers)
def test_nseg_d_lambda_properties(d_lambda, freq, Ra, cm, bad, value):
    """Valid arguments: odd nseg >= 1 per section, the same for Ra and cm given per
    section, never fewer for a smaller d_lambda; an invalid one (non-positive for
    d_lambda, freq and Ra, negative for cm, non-finite) is a ValueError naming it."""
    m = _toy()
    args = dict(d_lambda=d_lambda, freq=freq, Ra=Ra, cm=cm)
    n = nseg_d_lambda(m, **args)
    assert n.dtype == np.int64 and n.shape == (m.n_sections,)
    assert np.all(n >= 1) and np.all(n % 2 == 1)
    per_section = dict(args, Ra=np.full(m.n_sections, Ra), cm=np.full(m.n_sections, cm))
    np.testing.assert_array_equal(nseg_d_lambda(m, **per_section), n)
    assert np.all(nseg_d_lambda(m, **dict(args, d_lambda=d_lambda / 2)) >= n)
    if bad == "cm" and value == 0.0:  # cm = 0 is NEURON's: lambda_f = 1e10 um, one segment
        assert np.all(nseg_d_lambda(m, **dict(args, cm=value)) == 1)
        return
    with pytest.raises(ValueError, match=rf"^{bad} must be "):
        nseg_d_lambda(m, **dict(args, **{bad: value}))


def test_a_byte_order_mark_is_not_part_of_the_first_id(tmp_path):
    path = write_swc(tmp_path, "bom", "\ufeff1 1 0 0 0 5 -1\n2 3 5 0 0 1 1\n")
    assert read_swc(path).n_sections == 2


def test_cylinder_geometry_closed_form():
    L, d, n = 200.0, 2.0, 5
    m = Morphology.from_sections([dict(length=L, diam=d)])
    c = compartments(m, n)
    np.testing.assert_allclose(c.area, np.pi * d * L / n, rtol=1e-12)
    ri = c.ri(100.0)
    # first node: half a segment to the 0 end; others: a whole segment
    expected = 4e-2 * 100.0 / np.pi * (L / n) / d ** 2
    np.testing.assert_allclose(ri[1:], expected, rtol=1e-12)
    np.testing.assert_allclose(ri[0], expected / 2, rtol=1e-12)


@st.composite
def tree_specs(draw, min_size=1, max_size=8):
    n = draw(st.integers(min_size, max_size))
    specs = []
    for i in range(n):
        spec = dict(length=draw(st.floats(1.0, 500.0)), region="dend")
        if draw(st.booleans()):
            spec["diam"] = draw(st.floats(0.2, 20.0))
        else:
            spec["diams"] = draw(st.lists(st.floats(0.2, 20.0), min_size=2, max_size=6))
        if i > 0:
            spec["parent"] = draw(st.integers(0, i - 1))
            spec["parent_x"] = draw(st.sampled_from([0.0, 0.3, 0.5, 1.0, 1.0]))
        specs.append(spec)
    return specs


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(specs=tree_specs(), nseg=st.lists(st.integers(1, 9), min_size=8, max_size=8))
def test_tree_properties(specs, nseg):
    m = Morphology.from_sections(specs)
    ns = np.array(nseg[: m.n_sections])
    c = compartments(m, ns)
    assert np.all(c.parent < np.arange(c.n_nodes))
    assert np.sum(c.parent < 0) == len(m.roots)
    assert np.all(c.area >= 0) and np.all(c.axial_integral >= 0)
    assert np.all(c.area[~c.is_junction] > 0)
    # every kept junction has a child node attached somewhere
    for j in np.flatnonzero(c.is_junction):
        assert np.any(c.parent == j)
    # total area does not depend on nseg when no section tapers
    # (for tapering sections it does, slightly: NEURON integrates frusta per segment)
    ref = compartments(m, 1)
    if all("diam" in s for s in specs):
        np.testing.assert_allclose(c.total_area(), ref.total_area(), rtol=1e-10)
    # per section, the axial integrals along the section add up to the closed form
    # sum l / (d1 d2) over its pt3d intervals, whenever its x = 1 node is kept
    for s, sec in enumerate(m.sections):
        if c.end_node[s] < 0:
            continue
        nodes = list(range(c.first_centre[s], c.first_centre[s] + c.nseg[s])) + [c.end_node[s]]
        arc = sec.arc
        d = sec.diameters
        exact = np.sum(np.diff(arc) / (d[:-1] * d[1:]))
        np.testing.assert_allclose(c.axial_integral[nodes].sum(), exact, rtol=1e-9)


@settings(max_examples=30, deadline=None)
@given(L=st.floats(1.0, 1000.0), d=st.floats(0.1, 30.0), n1=st.integers(1, 30),
       n2=st.integers(1, 30))
def test_cylinder_area_independent_of_nseg(L, d, n1, n2):
    m = Morphology.from_sections([dict(length=L, diam=d), dict(length=L / 2, diam=d / 2, parent=0)])
    a1 = compartments(m, n1).total_area()
    a2 = compartments(m, [n2, n1]).total_area()
    np.testing.assert_allclose(a1, a2, rtol=1e-10)
    np.testing.assert_allclose(a1, np.pi * np.sum(m.lengths * [d, d / 2]), rtol=1e-6)


def test_sphere_soma_area(tmp_path):
    m = read_swc(write_swc(tmp_path, "one", SOMA_CASES["one_point"]))
    c = compartments(m, 1)
    soma_node = c.first_centre[0]
    assert math.isclose(c.area[soma_node], np.pi * 10.0 ** 2, rel_tol=1e-12)
