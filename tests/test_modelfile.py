"""Saving and loading a built model (dendrax.modelfile): a versioned JSON file that rebuilds
the model exactly. The reference is the original model itself: the loaded one must lower to
the same params leaf for leaf and simulate to the same traces and spikes bit for bit."""

from __future__ import annotations

import dataclasses
import json
import os

import jax
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import dendrax as dx
from dendrax import modelfile, plugins
from dendrax.lowering import lower
from dendrax.mechanisms import Channel
from dendrax.models import l5pc_like
from dendrax.morphology import read_swc
from dendrax.network import Block, Wiring
from dendrax.plugins import Plugin

save, load = modelfile.save, modelfile.load
ModelFileError = modelfile.ModelFileError


# --------------------------------------------------------------------------- helpers
def assert_same_params(a, b):
    """lower(a).params == lower(b).params: same tree, every leaf of the same dtype, shape
    and bits."""
    la, ta = jax.tree_util.tree_flatten(lower(a).params)
    lb, tb = jax.tree_util.tree_flatten(lower(b).params)
    assert ta == tb
    for x, y in zip(la, lb):
        x, y = np.asarray(x), np.asarray(y)
        assert x.dtype == y.dtype and x.shape == y.shape
        assert np.array_equal(x.view(np.uint8), y.view(np.uint8))


def assert_same_run(a, b, t_stop, **kw):
    ra, rb = dx.simulate(a, t_stop, **kw), dx.simulate(b, t_stop, **kw)
    assert ra.labels == rb.labels
    assert np.all(np.isfinite(np.asarray(ra.traces)))
    assert np.array_equal(np.asarray(ra.t), np.asarray(rb.t))
    assert np.array_equal(np.asarray(ra.traces), np.asarray(rb.traces))
    assert np.array_equal(np.asarray(ra.raster), np.asarray(rb.raster))
    assert len(ra.spikes) == len(rb.spikes)
    assert all(np.array_equal(x, y) for x, y in zip(ra.spikes, rb.spikes))
    return ra


def round_trip(target, tmp_path, name="model.dendrax.json"):
    """Save, load, and check that saving the loaded model gives the same bytes."""
    path = tmp_path / name
    save(target, path)
    loaded = load(path)
    assert type(loaded) is type(target)
    again = tmp_path / ("again." + name)
    save(loaded, again)
    assert again.read_bytes() == path.read_bytes()
    return loaded, path


def ball_and_stick():
    """HH ball-and-stick with values set by region, every kind of stimulus, recordings of v,
    a gate and a synapse state, and spike recording."""
    cell = dx.Cell.ball_and_stick(nseg=[1, 7], Ra=100.0, dend_length=180.0, dend_diam=1.5)
    cell.insert("hh").insert("pas", where="dend")
    cell.set("hh.gnabar", 0.15, where="soma").set("hh.gkbar", 0.03, where="dend")
    cell.set("cm", 1.3, where="dend").set("Ra", 120.0, where="dend").set("ena", 55.0)
    cell.set("pas.g", np.linspace(1e-4, 3e-4, len(cell.nodes("dend"))), where="dend")
    cell.set("pas.e", -70.0, where="dend")
    cell.set("diam", [1.7, 1.1], where="dend")  # one per 3-D point: a taper
    cell.set("L", 170.0, where="dend")
    cell.iclamp(cell.soma(0.5), delay=2.0, dur=6.0, amp=0.3)
    cell.stimulate(cell.section(1)(0.5), t=[0.0, 4.0, 9.0, 20.0], i=[0.0, 0.05, -0.02, 0.0])
    cell.vclamp(cell.section(1)(0.9), amp=[-70.0, -50.0], dur=[1.0, 1.5], rs=2.0)
    cell.synapse("Exp2Syn", cell.section(1)(0.3), spike_times=[1.0, 4.5, 9.0], weight=0.004,
                 tau2=3.0, delay=0.5)
    cell.record("v").record("v", cell.section(1)(0.5)).record("hh.m", cell.section(1)(0.3))
    cell.record("Exp2Syn.B", cell.section(1)(0.3))
    cell.record_spikes()
    return cell


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
    assert (doc["format"], doc["version"], doc["kind"]) == ("dendrax-model", 1, "cell")
    assert doc["dendrax"] == dx.__version__
    assert {(m["name"], m["package"]) for m in doc["mechanisms"]} == {
        ("hh", "dendrax"), ("pas", "dendrax"), ("Exp2Syn", "dendrax")}


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


def small_network():
    cell = dx.Cell.ball_and_stick(nseg=[1, 3], dend_length=150.0)
    cell.insert("hh")
    net = dx.Network.replicate(cell, 4)
    net.cell(1).set("hh.gnabar", 0.14)
    passive = dx.Cell.from_sections([{"length": 15.0, "diam": 15.0, "region": "soma"}])
    passive.insert("pas").set("pas.g", 2e-4)
    net.add(passive)
    net.cell(0).iclamp(net.cell(0).soma(), delay=1.0, dur=3.0, amp=0.6)
    net.connect(net.cell(0).soma(), net.cell(1).section(1)(0.5), "Exp2Syn", weight=0.02,
                delay=1.5, tau2=2.0)
    poisson = net.poisson_source(300.0, jax.random.PRNGKey(3), stop=20.0)
    net.connect(poisson, net.cell(2).soma(), "Exp2Syn", weight=0.03, delay=0.5)
    train = net.spike_source([2.0, 7.5, 7.6])
    net.connect(train, net.cell(3).soma(), "Exp2Syn", weight=0.05)
    net.fully_connect([0, 1], [2, 3], "Exp2Syn", weight=[0.01, 0.02, 0.005, 0.0], delay=2.0,
                      threshold=-20.0)
    net.connect(net.cell(1).soma(), net.cell(3).section(1)(0.9), "IonotropicSynapse", gS=0.004,
                delay=0.0)
    net.connect(net.cell(0).soma(), net.cell(4).soma(), "IonotropicSynapse", gS=0.002, delay=0.3)
    net.record_spikes()
    net.record_spikes([0], threshold=-30.0, loc=dx.Location(1, 0.5))
    for i in range(5):
        net.record("v", net.cell(i).soma())
    net.record("IonotropicSynapse.s", net.cell(3).section(1)(0.9))
    net.record("Exp2Syn.g", net.cell(2).soma())
    net.record("v", [net.cell(1).section(1)(0.1), net.cell(1).section(1)(0.9)], reduce="max")
    net.cell(2).record("hh.n", net.cell(2).soma())  # a recording held by the cell
    return net


def test_network_round_trip(tmp_path):
    net = small_network()
    loaded, path = round_trip(net, tmp_path, "net.dendrax.json")
    assert len(loaded) == 5 and loaded.n_connections == net.n_connections
    doc = json.loads(path.read_text())
    assert doc["kind"] == "network" and len(doc["morphologies"]) == 2  # replicas share one
    assert len({id(c.morphology) for c in loaded.cells}) == 2
    w, v = net.wiring, loaded.wiring
    assert [b.synapse for b in v.blocks] == [b.synapse for b in w.blocks]
    assert all(np.array_equal(x, y) for x, y in zip(v.sources, w.sources))
    assert v.spike_records == w.spike_records and v.recordings == w.recordings
    assert_same_params(net, loaded)
    res = assert_same_run(net, loaded, 20.0)
    assert sum(len(s) for s in res.spikes) >= 2


def test_example_plugin_package_is_recorded_and_found(tmp_path):
    if not os.environ.get("CI"):
        pytest.importorskip("dendrax_example_plugin")
    cell = dx.Cell.ball_and_stick(nseg=[1, 3])
    cell.insert("pas")
    cell.synapse("ExpSynDemo", cell.section(1)(0.8), spike_times=[2.0, 6.0], weight=0.01)
    cell.record("v")
    loaded, path = round_trip(cell, tmp_path)
    entry = next(m for m in json.loads(path.read_text())["mechanisms"] if m["name"] == "ExpSynDemo")
    assert entry["package"] == "dendrax-example-plugin"
    assert_same_run(cell, loaded, 8.0)


@pytest.fixture
def fake_entry_points(monkeypatch, tmp_path):
    """Replace the installed entry points with ones defined here (as tests/test_plugins.py)."""
    monkeypatch.syspath_prepend(str(tmp_path))

    def install(entries, modules):
        for name, source in modules.items():
            (tmp_path / f"{name}.py").write_text(source)
        monkeypatch.setattr(plugins, "_entry_points",
                            lambda group: iter([e for e in entries if e.group == group]))
        plugins.clear_cache()

    yield install
    plugins.clear_cache()


LEAK = """
from dendrax.mechanisms import Channel
class K(Channel):
    name = "kx"
    params = {"g": %s}
    def current(self, v, states, params, env):
        return {"": params["g"] * (v + 70.0)}
"""


def test_a_name_two_packages_provide_loads_from_the_saving_package(fake_entry_points, tmp_path):
    a = Plugin("kx", "dendrax.channels", "mf_mod_a:K", "pkg-a")
    b = Plugin("kx", "dendrax.channels", "mf_mod_b:K", "pkg-b")
    hh = Plugin("hh", "dendrax.channels", "dendrax.mechanisms.hh:HH", "dendrax")
    modules = {"mf_mod_a": LEAK % "1e-4", "mf_mod_b": LEAK % "2e-4"}
    fake_entry_points([a, b, hh], modules)
    cell = dx.Cell.ball_and_stick().insert("pkg-b:kx").insert("hh")
    path = tmp_path / "kx.json"
    save(cell, path)
    loaded = load(path)
    assert type(loaded.mechanisms["kx"]).__module__ == "mf_mod_b"  # pkg-b's, not pkg-a's
    assert float(loaded.get("kx.g")[0]) == 2e-4
    fake_entry_points([a, hh], modules)  # pkg-b gone, one other provider: used, with a warning
    with pytest.warns(UserWarning, match="'kx'.*'pkg-b'.*'pkg-a'"):
        assert type(load(path).mechanisms["kx"]).__module__ == "mf_mod_a"
    fake_entry_points([hh], modules)  # no provider at all
    with pytest.raises(ModelFileError, match="'kx'.*'pkg-b'.*not registered"):
        load(path)


# --------------------------------------------------------------------------- exactness
finite = st.floats(allow_nan=False, allow_infinity=False)
positive = st.floats(min_value=0.0, exclude_min=True, max_value=1e300, allow_infinity=False)


@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_any_float_round_trips_exactly(data):
    """Random per-node cm and gnabar, ion values and waveform samples (subnormals, -0.0,
    huge and tiny numbers) come back with the same bits, in the cell and its lowering."""
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
        "morphology", "nseg", "compartments", "frustums", "revision", "values", "mechanisms",
        "mechanism_nodes", "stimuli", "_recordings", "spike_records"}
    assert [f.name for f in dataclasses.fields(Wiring)] == [
        "blocks", "sources", "spike_records", "recordings"]
    assert [f.name for f in dataclasses.fields(Block)] == [
        "synapse", "mech", "graded", "pre_cell", "pre_section", "pre_x", "pre_source",
        "threshold", "post_cell", "post_section", "post_x", "values"]
    assert set(vars(dx.Network())) == {"_cells", "wiring", "_revision"}


# --------------------------------------------------------------------------- refusals
@pytest.fixture
def saved(tmp_path):
    """(path, parsed document) of a saved ball-and-stick; ``write(doc)`` writes an edit."""
    path = tmp_path / "cell.dendrax.json"
    save(ball_and_stick(), path)

    def write(doc):
        path.write_text(json.dumps(doc))
        return path

    return path, json.loads(path.read_text()), write


def test_refuses_a_file_that_is_not_json(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text("soma 20 20\n")
    with pytest.raises(ValueError, match=f"{path.name}: not a dendrax model file: not valid JSON"):
        load(path)
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ModelFileError, match="not UTF-8"):
        load(path)
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "missing.json")


def test_refuses_wrong_format(saved):
    _, doc, write = saved
    doc["format"] = "something-else"
    with pytest.raises(ValueError, match="not a dendrax model file.*'something-else'.*"
                                         "'dendrax-model'"):
        load(write(doc))
    with pytest.raises(ValueError, match="not a dendrax model file"):
        load(write([1, 2, 3]))


def test_refuses_a_newer_version(saved):
    path, doc, write = saved
    doc["version"] = 2
    with pytest.raises(ValueError, match=f"{path.name}: version: the file has format version 2.*"
                                         "upgrade dendrax"):
        load(write(doc))
    doc["version"] = "1"
    with pytest.raises(ValueError, match="positive integer format version"):
        load(write(doc))


def test_refuses_an_unregistered_mechanism_naming_it_and_its_package(saved):
    path, _, _ = saved
    path.write_text(path.read_text().replace('"hh"', '"hh_gone"'))
    with pytest.raises(ValueError, match="mechanism 'hh_gone' \\(provided by package 'dendrax'.*"
                                         "not registered"):
        load(path)


def test_refuses_nan_and_infinity(tmp_path, saved):
    cell = ball_and_stick()
    cell.values["cm"][2] = np.nan
    with pytest.raises(ValueError, match=r"cells\[0\]\.values\.cm\[2\]: nan is not a finite"):
        save(cell, tmp_path / "nan.json")
    assert not (tmp_path / "nan.json").exists()
    cell = ball_and_stick()
    cell.stimuli.iclamp[0] = (0, 2.0, np.inf, 0.3)
    with pytest.raises(ValueError, match=r"stimuli\.iclamp\[0\]\.dur: inf"):
        save(cell, tmp_path / "inf.json")
    path, _, _ = saved
    text = path.read_text()
    path.write_text(text.replace('"amp": 0.3', '"amp": NaN', 1))
    with pytest.raises(ValueError, match="NaN is not allowed"):
        load(path)
    path.write_text(text.replace('"amp": 0.3', '"amp": 1e999', 1))
    with pytest.raises(ValueError, match=r"iclamp\[0\]\.amp: expected a finite number"):
        load(path)


def test_refuses_missing_keys_and_wrong_lengths(saved):
    path, doc, write = saved
    c = doc["cells"][0]
    del c["values"]["cm"]
    with pytest.raises(ValueError, match=f"{path.name}: cells\\[0\\]\\.values: missing key 'cm'"):
        load(write(doc))
    c["values"]["cm"] = [1.0] * 8  # one short
    with pytest.raises(ValueError, match=r"cells\[0\]\.values\.cm: expected 9 entries \(one per "
                                         r"node\), got 8"):
        load(write(doc))
    c["values"]["cm"] = [1.0] * 9
    c["channels"][0]["params"]["gnabar"] = [0.12] * 3
    with pytest.raises(ValueError, match=r"channels\[0\]\.params\.gnabar: expected 9 entries"):
        load(write(doc))
    c["channels"][0]["params"]["gnabar"] = [0.12] * 9
    c["stimuli"]["iclamp"][0]["node"] = 99
    with pytest.raises(ValueError, match=r"iclamp\[0\]\.node: 99 is out of range"):
        load(write(doc))
    c["stimuli"]["iclamp"][0]["node"] = 0
    c["nseg"] = [1, 6]
    with pytest.raises(ValueError, match=r"cells\[0\]\.nodes\.section: expected 8 entries"):
        load(write(doc))
    c["nseg"] = [1, 7]
    c["surprise"] = 1
    with pytest.raises(ValueError, match=r"cells\[0\]: unknown keys \['surprise'\]"):
        load(write(doc))
    del c["surprise"]
    doc["morphologies"][0]["sections"][1]["points"][0] = [1.0, 2.0, 3.0]
    with pytest.raises(ValueError, match=r"sections\[1\]\.points\[0\]: expected 4 entries"):
        load(write(doc))


def test_refuses_bad_network_wiring(tmp_path):
    path = tmp_path / "net.json"
    save(small_network(), path)
    doc = json.loads(path.read_text())
    doc["wiring"]["blocks"][0]["post_x"].append(0.5)
    path.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match=r"wiring\.blocks\[0\]\.post_x: expected 1 entries "
                                         r"\(one per connection\), got 2"):
        load(path)
    doc = json.loads(modelfile.dumps(small_network()))
    doc["wiring"]["blocks"][1]["pre_source"] = [7]
    path.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match=r"blocks\[1\]\.pre_source: unknown spike source 7"):
        load(path)


def test_refuses_to_save_what_it_cannot_load(tmp_path):
    class Leak(Channel):  # inserted as a class, not a registered plugin
        name = "leak_here"
        params = {"g": 1e-4}

        def current(self, v, states, params, env):
            return {"": params["g"] * (v + 65.0)}

    cell = dx.Cell.ball_and_stick().insert(Leak)
    with pytest.raises(ValueError, match="cannot save mechanism 'leak_here'.*not a registered "
                                         "plugin.*'dendrax.channels'"):
        save(cell, tmp_path / "leak.json")
    with pytest.raises(TypeError, match="Cell or a dendrax.Network"):
        save("cell", tmp_path / "x.json")
