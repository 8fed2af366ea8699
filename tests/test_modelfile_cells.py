"""Saving and loading a built cell (dendrax.modelfile): a versioned JSON file that rebuilds
the model exactly. The reference is the original model itself: the loaded one must lower to
the same params leaf for leaf and simulate to the same traces and spikes bit for bit. Here:
cells of every kind round trip, any float comes back with its bits, the format covers
every piece of model state, and the geometry is the file's points (version 3 files too).
Networks: tests/test_modelfile_networks.py; refusals, packages and NMODL hashes:
tests/test_modelfile_checks.py."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import dendrax as dx
from dendrax import modelfile
from dendrax.models import l5pc_like
from dendrax.morphology import read_swc
from dendrax.wiring import Block, PopulationSpec, Wiring
from dendrax.point.plasticity import PLASTIC
from dendrax.point.surrogate import Surrogate
from modelfile_cases import (as_version_3, assert_same_params, assert_same_run, ball_and_stick,
                             round_trip)


save, load = modelfile.save, modelfile.load
ModelFileError = modelfile.ModelFileError


# A small SWC made here: a three-point (NeuroMorpho) soma, an axon, a branching basal
# dendrite, an apical trunk reaching the Hay hot zone (685-885 um) with a tuft, and a
# custom type 7 piece.
SWC = """\
# id type x y z radius parent
1 1 0 0 0 8 -1
2 1 0 -8 0 8 1
3 1 0 8 0 8 1
4 2 0 -8 0 0.6 1
5 2 0 -60 0 0.5 4
6 2 0 -250 0 0.4 5
7 3 -8 0 0 1.0 1
8 3 -60 -20 0 0.8 7
9 3 -120 -40 5 0.6 8
10 3 -50 40 0 0.5 8
11 4 0 8 0 1.6 1
12 4 0 250 0 1.4 11
13 4 0 560 3 1.1 12
14 4 2 760 0 0.9 13
15 4 40 900 0 0.6 14
16 4 -40 920 10 0.6 14
17 7 20 -3 0 0.7 1
18 7 80 -3 2 0.5 17
"""


# a one-point soma (a sphere as NEURON's Import3d makes it: a 3-point cylinder)
SWC_POINT_SOMA = """\
1 1 0 0 0 9 -1
2 3 9 0 0 1.2 1
3 3 80 10 0 1.0 2
4 3 120 40 0 0.8 3
5 3 130 -20 0 0.7 3
6 4 0 9 0 1.5 1
7 4 0 200 0 1.2 6
"""


def swc_file(tmp_path, text=SWC, name="neuron.swc"):
    path = tmp_path / name
    path.write_text(text)
    return path


# --------------------------------------------------------------------------- round trips
def test_ball_and_stick_round_trip(tmp_path):
    cell = ball_and_stick()
    loaded, path = round_trip(cell, tmp_path, "cell.dendrax.json")
    assert loaded is not cell and loaded.morphology == cell.morphology
    assert loaded.recordings == cell.recordings and loaded.spike_records == cell.spike_records
    assert list(loaded.mechanisms) == ["hh", "pas"]
    for name in ("cm", "Ra", "L", "diam", "ena", "hh.gnabar", "pas.g"):
        np.testing.assert_array_equal(loaded.get(name), cell.get(name))
    assert_same_params(cell, loaded)
    res = assert_same_run(cell, loaded, 20.0)
    assert len(res.spikes[0]) >= 1  # a run that does something

    doc = json.loads(path.read_text())
    assert (doc["format"], doc["version"], doc["kind"]) == ("dendrax-model", 4, "cell")
    assert doc["dendrax"] == dx.__version__
    assert {(m["name"], m["package"]) for m in doc["mechanisms"]} == {
        ("hh", "dendrax"), ("pas", "dendrax"), ("Exp2Syn", "dendrax")}


def test_point_processes_at_section_ends_round_trip(tmp_path):
    """The zero-area end nodes a cell keeps for point processes at a terminal x = 1 or the
    root's x = 0 are numbered in the file; the loaded cell keeps the same ones."""
    cell = ball_and_stick()
    n = cell.n_nodes
    cell.iclamp(cell.section(1)(1.0), delay=1.0, dur=2.0, amp=0.2)
    cell.synapse("Exp2Syn", cell.soma(0.0), spike_times=[3.0], weight=0.002)
    cell.record("v", cell.section(1)(1.0)).record("i_membrane", cell.soma(0.0))
    assert cell.n_nodes == n + 2
    loaded, _ = round_trip(cell, tmp_path)
    assert loaded.n_nodes == cell.n_nodes and loaded.ends == cell.ends
    np.testing.assert_array_equal(loaded.compartments.parent, cell.compartments.parent)
    assert_same_params(cell, loaded)
    assert_same_run(cell, loaded, 8.0)


def test_saving_twice_gives_identical_bytes(tmp_path):
    cell = ball_and_stick()
    save(cell, tmp_path / "a.json")
    save(cell, str(tmp_path / "b.json"))  # str and Path both work
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()
    assert modelfile.dumps(ball_and_stick()) == (tmp_path / "a.json").read_text()


def test_loaded_model_is_independent_and_editable(tmp_path):
    cell = ball_and_stick()
    loaded, _ = round_trip(cell, tmp_path)
    loaded.set("hh.gnabar", 0.2).iclamp(loaded.soma(), delay=1.0, dur=1.0, amp=0.1)
    assert float(cell.get("hh.gnabar")[0]) == 0.15 and len(cell.stimuli.iclamp) == 1
    dx.simulate(loaded, 2.0)


def test_reductions_and_currents_round_trip(tmp_path):
    cell = ball_and_stick()
    cell.record("v", cell.segments("dend"), reduce="max")
    cell.record("hh.ina", cell.soma()).record("i_membrane", cell.section(1)(0.5))
    cell.record("iclamp.i", cell.soma()).record("v", cell.soma(), reduce="mean")
    loaded, path = round_trip(cell, tmp_path)
    assert loaded.recorded == cell.recorded
    assert_same_run(cell, loaded, 12.0)


@pytest.mark.parametrize("text", [SWC, SWC_POINT_SOMA], ids=["three_point_soma", "point_soma"])
def test_swc_cell_round_trip(tmp_path, text):
    morph = read_swc(swc_file(tmp_path, text))
    cell = dx.Cell(morph, nseg="d_lambda", Ra=150.0)
    cell.insert("hh")
    if "custom7" in cell.regions():
        cell.insert("pas", where="custom7").set("hh.gkbar", 0.05, where="custom7")
    cell.set("cm", 0.9, where="dend")
    cell.iclamp(cell.soma(), delay=1.0, dur=8.0, amp=0.6)
    cell.record("v").record("v", cell.section(len(morph.sections) - 1)(1.0)).record_spikes()
    loaded, _ = round_trip(cell, tmp_path)
    assert loaded.morphology == morph and loaded.morphology.name == "neuron"
    assert np.array_equal(loaded.nseg, cell.nseg)
    assert_same_params(cell, loaded)
    assert_same_run(cell, loaded, 10.0)


def test_l5pc_like_round_trip(tmp_path):
    """The Hay channel set with its CaDynamics_E2 pool (dynamic calcium) and
    distance-dependent apical densities."""
    cell = l5pc_like(read_swc(swc_file(tmp_path)))
    cell.iclamp(cell.soma(), delay=2.0, dur=20.0, amp=1.0)
    cell.record("v").record("CaDynamics_E2.cai", cell.soma())
    cell.record("v", cell.section(cell.sections("apic")[-1])(0.5))
    cell.record_spikes()
    loaded, path = round_trip(cell, tmp_path, "l5pc.dendrax.json")
    kinds = {m["name"]: m["kind"] for m in json.loads(path.read_text())["mechanisms"]}
    assert kinds["CaDynamics_E2"] == "ion_pool" and kinds["NaTs2_t"] == "channel"
    assert list(loaded.mechanisms) == list(cell.mechanisms)
    assert_same_params(cell, loaded)
    res = assert_same_run(cell, loaded, 25.0, v_init=-80.0, celsius=34.0)
    assert len(res.spikes[0]) >= 1


# --------------------------------------------------------------------------- exactness
finite = st.floats(allow_nan=False, allow_infinity=False)
# a strictly positive parameter is a normal number (XLA flushes subnormals to 0: refused)
positive = st.floats(min_value=float(np.finfo(np.float64).tiny), max_value=1e300)


@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_any_float_round_trips_exactly(data):
    """Random per-node cm and gnabar, ion values and waveform samples (subnormals where a
    parameter may be 0, -0.0, huge and tiny numbers) come back with the same bits, in the cell and its lowering."""
    cell = dx.Cell.ball_and_stick(nseg=[2, 5])
    cell.insert("hh")
    n = len(cell.nodes())
    cell.set("cm", data.draw(st.lists(positive, min_size=n, max_size=n)))
    cell.set("hh.gnabar", data.draw(st.lists(st.floats(0.0, 1e6), min_size=n, max_size=n)))
    cell.set("ena", data.draw(st.lists(finite, min_size=n, max_size=n)))
    k = data.draw(st.integers(1, 6))
    cell.stimulate(cell.soma(), t=sorted(data.draw(st.lists(finite, min_size=k, max_size=k))),
                   i=data.draw(st.lists(finite, min_size=k, max_size=k)))
    loaded = modelfile.loads(modelfile.dumps(cell))
    for name in ("cm", "hh.gnabar", "ena"):
        assert np.array_equal(loaded.get(name).view(np.int64), cell.get(name).view(np.int64))
    (_, t0, i0), (_, t1, i1) = cell.stimuli.waveform[0], loaded.stimuli.waveform[0]
    assert np.array_equal(t0.view(np.int64), t1.view(np.int64))
    assert np.array_equal(i0.view(np.int64), i1.view(np.int64))
    assert_same_params(cell, loaded)


def test_the_format_covers_every_piece_of_model_state():
    """If a Cell, a Wiring or a Block gains state, the file format must learn it too."""
    assert set(vars(dx.Cell.ball_and_stick())) == {
        "morphology", "_nseg", "compartments", "frustums", "revision", "values", "mechanisms",
        "mechanism_nodes", "stimuli", "_recordings", "spike_records",
        "field_records",  # extracellular readouts: save refuses them by name (not in the format)
        "ends"}  # the kept end nodes: read back from "nodes"
    assert [f.name for f in dataclasses.fields(Wiring)] == [
        "blocks", "sources", "spike_records", "recordings", "populations",
        "point_spike_records", "point_recordings",
        "fields", "placements"]  # extracellular readouts, cell positions: refused by save
    assert [f.name for f in dataclasses.fields(Block)] == [
        "synapse", "mech", "graded", "pre_cell", "pre_section", "pre_x", "pre_source",
        "threshold", "post_cell", "post_section", "post_x", "values", "pre_neuron",
        "post_neuron"]
    # offset is not written: populations recreated in order get it back
    assert [f.name for f in dataclasses.fields(PopulationSpec)] == [
        "name", "model", "size", "offset", "values", "spike_times"]
    assert set(vars(dx.Network())) == {"_cells", "wiring", "_revision"}
    # a population's model instance holds no state but its surrogate ("surrogate" in the
    # file); plastic kinds are saved by name, with every parameter, weight and delay
    net = dx.Network()
    assert vars(net.population("iaf_psc_alpha", 1).model) == {}
    assert vars(net.population("iaf_psc_alpha", 1, surrogate="arctan").model) == {
        "surrogate": Surrogate("arctan", 1.0)}
    assert Surrogate._fields == ("name", "slope")
    assert sorted(PLASTIC) == ["stdp_synapse", "tsodyks2_synapse"]
    assert all(vars(kind()) == {} for kind in PLASTIC.values())


# --------------------------------------------------------------------------- geometry
def test_loads_version_3_files():
    """A version 3 file (every L and diam written, no nmodl_sha256) still loads, its values
    taking precedence over the points as they did; version 4's null is refused in it."""
    cell = ball_and_stick()
    text = modelfile.dumps(cell)
    doc = as_version_3(json.loads(text), cell)
    loaded = modelfile.loads(json.dumps(doc))
    assert modelfile.dumps(loaded) == text  # rewritten as the current version
    assert_same_params(cell, loaded)
    doc["morphologies"][0]["sections"][0]["points"][0][3] = 25.0  # a soma diameter: 20 -> 25
    np.testing.assert_array_equal(modelfile.loads(json.dumps(doc)).get("diam"), cell.get("diam"))
    doc["cells"][0]["values"]["L"][0] = None
    with pytest.raises(ModelFileError, match=r"cells\[0\]\.values\.L: expected an array of "
                                             r"numbers"):
        modelfile.loads(json.dumps(doc))


def test_edited_points_are_the_geometry_unless_L_or_diam_was_set():
    """values.L and values.diam repeated the points' geometry and took precedence: an edit of
    the points in the file was silently ignored. null now stands for the morphology's own
    value, so edited points are the geometry (as NEURON's pt3d, diameters rounded to
    float32 as a Cell's), and an explicit Cell.set of L or diam stays (as sec.L = ...
    after pt3dadd)."""
    def build(morph=None):
        cell = (dx.Cell.ball_and_stick(nseg=[1, 5]) if morph is None
                else dx.Cell(morph, nseg=[1, 5]))
        cell.insert("hh").iclamp(cell.soma(0.5), delay=0.5, dur=1.0, amp=0.3)
        cell.record("v", cell.section(1)(1.0))
        return cell

    cell = build()
    doc = json.loads(modelfile.dumps(cell))
    assert doc["cells"][0]["values"]["L"] == [None, None]
    assert doc["cells"][0]["values"]["diam"] == [None] * 4
    points = doc["morphologies"][0]["sections"][1]["points"]
    points[1][0] = points[0][0] + 2000.0  # the dendrite about ten times as long
    points[0][3] = points[1][3] = 0.7  # and thinner: as float32 (NEURON's pt3d) holds it
    loaded = modelfile.loads(json.dumps(doc))
    assert loaded.get("L")[1] == loaded.morphology.lengths[1] > 2000.0
    np.testing.assert_array_equal(loaded.get("diam"), [20.0, 20.0, *[np.float32(0.7)] * 2])
    assert_same_run(build(loaded.morphology), loaded, 3.0)  # as a cell built from those points
    morph = dx.Morphology.from_sections([  # a diameter float32 does not hold, unset: null
        {"length": 10.0, "diam": 0.7}, {"parent": 0, "length": 100.0, "diam": 0.3}])
    doc = json.loads(modelfile.dumps(dx.Cell(morph).record("v", dx.Location(1, 0.5))))
    assert doc["cells"][0]["values"]["diam"] == [None] * 4

    cell.set("L", 170.0, where="dend").set("diam", [1.7, 1.1], where="dend")
    doc = json.loads(modelfile.dumps(cell))
    set_L, set_diam = cell.get("L")[1], cell.get("diam")[2:].tolist()  # as Cell.set keeps them
    assert doc["cells"][0]["values"]["L"] == [None, set_L]
    assert doc["cells"][0]["values"]["diam"] == [None, None, *set_diam]
    doc["morphologies"][0]["sections"][1]["points"][1][0] += 2000.0
    doc["morphologies"][0]["sections"][0]["points"][0][3] = 25.0
    loaded = modelfile.loads(json.dumps(doc))
    np.testing.assert_array_equal(loaded.get("L"), [20.0, set_L])  # set: kept
    np.testing.assert_array_equal(loaded.get("diam"), [25.0, 20.0, *set_diam])
    doc["cells"][0]["values"]["L"][1] = "long"
    with pytest.raises(ModelFileError, match=r"cells\[0\]\.values\.L\[1\]: expected a finite "
                                             r"number, got 'long'"):
        modelfile.loads(json.dumps(doc))
