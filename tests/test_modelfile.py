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
from dendrax.wiring import Block, PopulationSpec, Wiring
from dendrax.plugins import Plugin
from dendrax.point import PointNeuron, StaticSynapse
from dendrax.point.plasticity import PLASTIC, StdpSynapse, Tsodyks2Synapse
from dendrax.point.surrogate import Surrogate

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
    assert ra.stat_labels == rb.stat_labels and ra.spike_cells == rb.spike_cells
    assert np.array_equal(np.asarray(ra.stats), np.asarray(rb.stats))
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


def as_version_3(doc, model):
    """A current file ``doc`` of ``model`` as version 3 wrote it: every L and diam written
    (no null for the morphology's own values), no nmodl_sha256."""
    cells = model.cells if isinstance(model, dx.Network) else [model]
    for c, cell in zip(doc["cells"], cells):
        c["values"]["L"], c["values"]["diam"] = cell.get("L").tolist(), cell.get("diam").tolist()
    for m in doc["mechanisms"]:
        m.pop("nmodl_sha256", None)
    doc["version"] = 3
    return doc


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
    net.record("Exp2Syn[1].g", net.cell(2).soma())  # of the 3 there: the first fully_connect
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


DT = 0.1  # point neurons need delays >= dt


def point_network():
    """A mixed network: an iaf_psc_alpha population driven by a poisson_generator, a
    spike_generator and a dc_generator through static connections (per-connection weights
    and delays), a pairwise-Bernoulli recurrent projection, the population driving an Exp2Syn
    on a detailed cell and the cell driving point neurons; spikes and V_m recorded, with a
    reduction."""
    net = dx.Network()
    cell = dx.Cell.ball_and_stick(nseg=[1, 3])
    cell.insert("hh")
    c = net.add(cell)
    c.iclamp(c.soma(0.5), delay=1.0, dur=1.0, amp=1.0)
    noise = net.population("poisson_generator", 2, rate=[8000.0, 6000.0], stop=[np.inf, 30.0])
    gen = net.population("spike_generator", 2, spike_times=[[1.0, 3.2, 3.3], [2.0]])
    dc = net.population("dc_generator", 1, amplitude=250.0, start=2.0, stop=25.0)
    exc = net.population("iaf_psc_alpha", 6, name="exc", I_e=np.linspace(300.0, 380.0, 6),
                         V_m=-70.0 + np.arange(6.0) * 0.25, tau_syn_ex=[0.5, 1, 2, 0.5, 1, 2])
    net.connect(noise, exc, weight=np.linspace(2.0, 30.0, 12), delay=np.linspace(0.1, 1.2, 12))
    net.connect(gen, exc[::2], weight=[400.0, -200.0, 600.0, 100.0, 350.0, 90.0], delay=0.5)
    net.connect(dc, exc[1:4], weight=[1.0, 0.5, 2.0], delay=0.3)
    net.connect(exc, exc, weight=-40.0, delay=1.5, p=0.4, key=jax.random.PRNGKey(7))
    net.connect(exc[:3], c.section(1)(0.5), "Exp2Syn", weight=[0.01, 0.02, 0.015], delay=2.0,
                tau2=3.0)
    net.connect(c.soma(0.5), exc[[0, 5]], weight=[800.0, 900.0], delay=[0.7, 1.1],
                threshold=-10.0)
    net.record_spikes(exc)
    net.record_spikes()
    net.record("V_m", exc[1:4])
    net.record("I_syn_ex", exc[0])
    net.record("V_m", exc, reduce="max")
    net.record("v", c.soma())
    net.record("Exp2Syn[2].g", c.section(1)(0.5))  # of the 3 there: from exc[2]
    return net


def test_point_network_round_trip(tmp_path):
    net = point_network()
    loaded, path = round_trip(net, tmp_path, "points.dendrax.json")
    w, v = net.wiring, loaded.wiring
    assert [(p.name, p.model.name, p.size, p.offset) for p in v.populations] == \
        [(p.name, p.model.name, p.size, p.offset) for p in w.populations]
    for p, q in zip(w.populations, v.populations):
        assert type(p.model) is type(q.model) and list(p.values) == list(q.values)
        assert all(np.array_equal(p.values[k].view(np.int64), q.values[k].view(np.int64))
                   for k in p.values)
        assert len(p.spike_times) == len(q.spike_times)
        assert all(np.array_equal(a, b) for a, b in zip(p.spike_times, q.spike_times))
    for a, b in zip(w.blocks, v.blocks):
        assert (a.synapse, a.graded, a.size) == (b.synapse, b.graded, b.size)
        for k in ("pre_neuron", "post_neuron", "pre_cell", "post_cell", "threshold"):
            x, y = getattr(a, k), getattr(b, k)
            assert (x is None) == (y is None) and (x is None or np.array_equal(x, y)), k
    assert v.point_spike_records == w.point_spike_records
    assert v.point_recordings == w.point_recordings
    assert loaded.n_connections == net.n_connections
    assert modelfile.dumps(point_network()) == path.read_text()  # the same bytes every time
    doc = json.loads(path.read_text())
    assert doc["version"] == 4
    pops = doc["wiring"]["populations"]
    assert [(p["model"], p["group"], p["package"]) for p in pops] == [
        ("poisson_generator", "generator", "dendrax"), ("spike_generator", "generator", "dendrax"),
        ("dc_generator", "generator", "dendrax"), ("iaf_psc_alpha", "dendrax.point_neurons",
                                                   "dendrax")]
    assert pops[0]["values"]["stop"] == ["inf", 30.0]  # infinity, where a model allows it
    assert pops[1]["spike_times"] == [[1.0, 3.2, 3.3], [2.0]] and pops[3]["spike_times"] is None
    assert all(p["surrogate"] is None for p in pops)
    static = [b for b in doc["wiring"]["blocks"] if b["synapse"] == "static"]
    assert all(b["post_cell"] is None and set(b["values"]) == {"weight", "delay"} for b in static)
    assert "static" not in {m["name"] for m in doc["mechanisms"]}
    assert_same_params(net, loaded)
    res = assert_same_run(net, loaded, 30.0, dt=DT)
    assert sum(len(s) for s in res.spikes[1:]) >= 6  # the point neurons fire
    assert len(res.spikes[0]) >= 1 and np.ptp(np.asarray(res.traces[-2])) > 1.0


def test_a_network_of_point_neurons_only_round_trips(tmp_path):
    net = dx.Network()
    gen = net.population("spike_generator", 1, spike_times=[0.5, 1.5])
    pop = net.population("iaf_psc_exp", 3, name="e", I_e=[0.0, 100.0, 200.0])
    net.connect(gen, pop, weight=1000.0, delay=[0.1, 0.2, 0.3])
    net.record("V_m", pop[2]).record_spikes(pop[1:])
    loaded, path = round_trip(net, tmp_path)
    assert json.loads(path.read_text())["cells"] == [] and len(loaded) == 0
    assert_same_run(net, loaded, 5.0, dt=DT)


def test_loads_version_1_files(tmp_path):
    """A version 1 file (no point populations, no pre_neuron / post_neuron) still loads."""
    net = small_network()
    doc = as_version_3(json.loads(modelfile.dumps(net)), net)
    doc["version"] = 1
    for k in ("populations", "point_spike_records", "point_recordings"):
        assert doc["wiring"].pop(k) == []
    for b in doc["wiring"]["blocks"]:
        assert b.pop("pre_neuron") is None and b.pop("post_neuron") is None
    path = tmp_path / "v1.json"
    path.write_text(json.dumps(doc))
    loaded = load(path)
    assert modelfile.dumps(loaded) == modelfile.dumps(net)  # rewritten as the current version
    assert_same_params(net, loaded)
    assert_same_run(net, loaded, 10.0)
    doc["wiring"]["blocks"][0]["post_neuron"] = None  # version 1 has no such key
    path.write_text(json.dumps(doc))
    with pytest.raises(ModelFileError,
                       match=r"wiring\.blocks\[0\]: unknown keys \['post_neuron'\]"):
        load(path)


class Counter(PointNeuron):
    """A point-neuron model given to Network.population as a class, not registered."""

    name = "test_counter"
    params = {"V_th": 1e9}
    states = ("V_m",)

    def initial(self, p, dt):
        return {"V_m": 0.0 * p["V_th"]}

    def update(self, s, p, inp, dt):
        return {"V_m": s["V_m"] + inp["ex"] + inp["in"]}, s["V_m"] > p["V_th"]


def test_refuses_to_save_an_unregistered_point_model(tmp_path):
    net = dx.Network()
    net.population(Counter, 2)
    with pytest.raises(ModelFileError, match="cannot save point-neuron model 'test_counter' "
                                             ".*not a registered plugin.*'dendrax.point_neurons'"):
        save(net, tmp_path / "counter.json")
    assert not (tmp_path / "counter.json").exists()


def test_refuses_bad_point_populations_and_connections(tmp_path):
    path = tmp_path / "points.json"
    text = modelfile.dumps(point_network())
    pristine = json.loads(text)

    def refused(edit, match, error=ModelFileError):
        doc = json.loads(text)
        edit(doc)
        path.write_text(json.dumps(doc))
        with pytest.raises(error, match=match):
            load(path)

    def pop(doc, k=3):
        return doc["wiring"]["populations"][k]

    def block(doc, k):
        return doc["wiring"]["blocks"][k]

    assert [b["synapse"] for b in pristine["wiring"]["blocks"]] == [
        "static", "static", "static", "static", "Exp2Syn", "static"]
    refused(lambda d: pop(d).update(model="iaf_gone"),
            rf"{path.name}: wiring\.populations\[3\]: point-neuron model 'iaf_gone' \(provided "
            r"by package 'dendrax' when the model was saved\) is not registered")
    refused(lambda d: pop(d, 0).update(model="poisson_gone"),
            r"populations\[0\]\.model: unknown generator 'poisson_gone'")
    refused(lambda d: pop(d).update(group="dendrax.synapses"),
            r"populations\[3\]\.group: expected 'dendrax.point_neurons' or 'generator'")
    refused(lambda d: pop(d, 0).update(group="dendrax.point_neurons"),  # said: install dendrax
            r"populations\[0\]\.group: 'poisson_generator' is one of dendrax's generators: its "
            r"group is 'generator', not 'dendrax.point_neurons'")
    refused(lambda d: pop(d)["values"]["I_e"].pop(),
            r"populations\[3\]\.values\.I_e: expected 6 entries \(one per neuron\), got 5")
    refused(lambda d: pop(d)["values"].pop("tau_m"),
            r"populations\[3\]\.values: missing key 'tau_m'")
    refused(lambda d: pop(d)["values"]["V_th"].__setitem__(0, "inf"),
            r"populations\[3\]: iaf_psc_alpha\.V_th must be finite")
    refused(lambda d: pop(d, 1)["spike_times"].pop(),
            r"populations\[1\]\.spike_times: expected 2 entries \(one list per generator\)")
    refused(lambda d: pop(d, 1)["spike_times"].__setitem__(0, [3.0, 1.0]),
            r"populations\[1\]\.spike_times\[0\]: spike times must be >= 0 and sorted")
    refused(lambda d: pop(d).update(spike_times=[[1.0]] * 6),
            r"populations\[3\]\.spike_times: only a spike_generator has spike times")
    refused(lambda d: pop(d).update(name="exc!"), r"populations\[3\]: .*exc!")
    refused(lambda d: block(d, 0)["post_neuron"].__setitem__(0, 99),
            r"blocks\[0\]\.post_neuron: point neuron 99 does not exist \(the network's "
            r"populations have 11 neurons")
    refused(lambda d: block(d, 0)["post_neuron"].__setitem__(0, 1),
            r"blocks\[0\]\.post_neuron: point neuron 1 \('poisson_generator_0'\[1\]\) is a "
            "poisson_generator, which cannot be a connection's target")
    refused(lambda d: block(d, 0)["pre_neuron"].pop(),
            r"blocks\[0\]\.pre_neuron: expected 12 entries \(one per connection\), got 11")
    refused(lambda d: block(d, 4)["pre_neuron"].__setitem__(0, 0),
            r"blocks\[4\]\.pre_neuron: point neuron 0 .* is a poisson_generator, which drives "
            "point neurons only")
    refused(lambda d: block(d, 0).update(synapse="Exp2Syn"),
            r"blocks\[0\]\.synapse: connections onto point neurons \(post_neuron\) use the "
            r"'static' synapse or a plastic one \['stdp_synapse', 'tsodyks2_synapse'\], got "
            "'Exp2Syn'")
    refused(lambda d: block(d, 0).update(pre_source=[0] * 12),
            r"blocks\[0\]: connections have one kind of presynaptic side.*pre_source and "
            "pre_neuron")
    refused(lambda d: block(d, 5).update(threshold=None), r"blocks\[5\]\.threshold: ")
    refused(lambda d: block(d, 5)["values"].update(tau2=[1.0, 1.0]),
            r"blocks\[5\]\.values: unknown keys \['tau2'\]")
    refused(lambda d: d["wiring"]["point_spike_records"][0].__setitem__(1, 6),
            r"point_spike_records\[0\]\[1\]: 6 is out of range \[0, 6\)")
    refused(lambda d: d["wiring"]["point_recordings"][0].__setitem__(1, "v"),
            r"point_recordings\[0\]\[1\]: iaf_psc_alpha cannot record 'v'")
    refused(lambda d: d["wiring"]["point_recordings"][0].__setitem__(3, "median"),
            r"point_recordings\[0\]\[3\]: unknown reduction 'median'")
    refused(lambda d: d["wiring"]["point_recordings"][0].__setitem__(0, 9),
            r"point_recordings\[0\]\[0\]: 9 is out of range \[0, 4\)")
    refused(lambda d: d["wiring"].pop("populations"), r"wiring: missing key 'populations'")


def plastic_network():
    """spike_generator -> parrot_neuron -> stdp_synapse -> iaf_psc_alpha (per-connection
    weights, delays and parameters), a second spike_generator driving the post neurons hard
    so that they spike (the pairings change the weights), tsodyks2_synapse connections from a
    parrot and from a cell (with a threshold), a population with a sigmoid surrogate gradient
    driven by a poisson_generator; the stdp weights, the tsodyks2 resources (a reduction), V_m
    and spikes recorded."""
    net = dx.Network()
    cell = dx.Cell.ball_and_stick(nseg=[1, 1])
    cell.insert("hh")
    c = net.add(cell)
    c.iclamp(c.soma(0.5), delay=1.0, dur=30.0, amp=0.5)
    pre = net.population("spike_generator", 2, name="pre",
                         spike_times=[[2.0, 12.0, 22.0, 32.0], [5.0, 15.0, 25.0]])
    drive = net.population("spike_generator", 1, name="drive", spike_times=[4.0, 14.0, 24.0, 33.0])
    noise = net.population("poisson_generator", 1, name="noise", rate=5000.0)
    parrot = net.population("parrot_neuron", 2, name="parrot")
    post = net.population("iaf_psc_alpha", 2, name="post")
    trained = net.population("iaf_psc_alpha", 2, name="trained", surrogate="sigmoid",
                             I_e=[360.0, 375.0])
    net.connect(pre, parrot, one_to_one=True, weight=1.0, delay=DT)
    net.connect(drive, post, weight=2000.0, delay=DT)
    net.connect(noise, trained, weight=5.0, delay=0.2)
    net.connect(parrot, post, "stdp_synapse", weight=[40.0, 30.0, 45.0, 35.0],
                delay=[1.0, 1.5, 2.0, 0.5], tau_plus=16.0, alpha=[1.1, 1.0, 0.9, 1.2],
                mu_plus=0.5, tau_minus=25.0)
    net.connect(parrot[0], trained, "tsodyks2_synapse", weight=300.0, delay=0.5, U=0.4, u=0.4,
                tau_fac=20.0)
    net.connect(c.soma(0.5), post[1], "tsodyks2_synapse", weight=200.0, delay=1.2,
                threshold=-10.0, tau_rec=100.0)
    net.record("weight", "stdp_synapse")
    net.record("x", "tsodyks2_synapse", reduce="min")
    net.record("V_m", post).record("V_m", trained[0])
    net.record_spikes(post).record_spikes(parrot).record_spikes(trained)
    return net


def test_plastic_network_round_trip(tmp_path):
    net = plastic_network()
    loaded, path = round_trip(net, tmp_path, "plastic.dendrax.json")
    assert modelfile.dumps(plastic_network()) == path.read_text()  # the same bytes every time
    w, v = net.wiring, loaded.wiring
    assert [b.synapse for b in v.blocks] == [
        "static", "static", "static", "stdp_synapse", "tsodyks2_synapse", "tsodyks2_synapse"]
    for a, b in zip(w.blocks, v.blocks):
        assert type(a.mech) is type(b.mech) and (a.graded, a.size) == (b.graded, b.size)
        for k in ("pre_neuron", "post_neuron", "pre_cell", "pre_section", "pre_x", "threshold"):
            x, y = getattr(a, k), getattr(b, k)
            assert (x is None) == (y is None) and (x is None or np.array_equal(x, y)), k
        assert list(a.values) == list(b.values)  # every parameter, then weight and delay
        assert all(np.array_equal(a.values[k].view(np.int64), b.values[k].view(np.int64))
                   for k in a.values)
    assert isinstance(v.blocks[3].mech, StdpSynapse) and isinstance(v.blocks[5].mech,
                                                                    Tsodyks2Synapse)
    assert v.point_recordings == w.point_recordings
    assert v.point_spike_records == w.point_spike_records
    assert [getattr(p.model, "surrogate", None) for p in v.populations] == \
        [None] * 5 + [Surrogate("sigmoid", 1.0)]
    assert type(v.populations[5].model).surrogate is None  # the population's own instance
    doc = json.loads(path.read_text())
    assert not {"static", *PLASTIC} & {m["name"] for m in doc["mechanisms"]}  # built in
    assert doc["wiring"]["populations"][5]["surrogate"] == {"name": "sigmoid", "slope": 1.0}
    stdp = doc["wiring"]["blocks"][3]
    assert list(stdp["values"]) == [*StdpSynapse.params, "weight", "delay"]
    assert stdp["values"]["alpha"] == [1.1, 1.0, 0.9, 1.2] and stdp["pre_neuron"] == [4, 4, 5, 5]
    assert doc["wiring"]["blocks"][5]["threshold"] == [-10.0]
    assert doc["wiring"]["point_recordings"][0] == ["stdp_synapse", "weight", 0, None]
    assert doc["wiring"]["point_recordings"][6] == ["tsodyks2_synapse", "x", 2, "min"]
    assert_same_params(net, loaded)
    res = assert_same_run(net, loaded, 40.0, dt=DT)
    weights = np.asarray(res.traces[:4])  # the weight traces: the pairings change them
    assert res.labels[:4] == [
        ("weight", dx.network.NeuronRef("stdp_synapse", k)) for k in range(4)]
    assert np.all(np.ptp(weights, axis=1) > 0.1)
    assert all(len(s) >= 3 for s in res.spikes[:4])  # post neurons and parrots spike
    assert np.asarray(res.stats).shape == (3,) and np.all(np.asarray(res.stats) < 1.0)


def test_plastic_recordings_of_some_connections_load(tmp_path):
    """Recordings of some plastic connections (not made by net.record, which records them
    all) load as they are."""
    doc = json.loads(modelfile.dumps(plastic_network()))
    doc["wiring"]["point_recordings"] = [["stdp_synapse", "Kplus", 3, None],
                                         ["stdp_synapse", "weight", 1, "max"]]
    loaded = modelfile.loads(json.dumps(doc))
    assert loaded.wiring.point_recordings == [("stdp_synapse", "Kplus", 3, None),
                                              ("stdp_synapse", "weight", 1, "max")]
    assert json.loads(modelfile.dumps(loaded)) == doc


def test_refuses_bad_plastic_connections_and_surrogates(tmp_path):
    path = tmp_path / "plastic.json"
    text = modelfile.dumps(plastic_network())

    def refused(edit, match, error=ModelFileError):
        doc = json.loads(text)
        edit(doc)
        path.write_text(json.dumps(doc))
        with pytest.raises(error, match=match):
            load(path)

    def block(doc, k=3):
        return doc["wiring"]["blocks"][k]

    def pop(doc, k=5):
        return doc["wiring"]["populations"][k]

    def recording(doc, k=0):
        return doc["wiring"]["point_recordings"][k]

    refused(lambda d: block(d).update(synapse="hebb_synapse"),
            r"blocks\[3\]\.synapse: connections onto point neurons \(post_neuron\) use the "
            r"'static' synapse or a plastic one \['stdp_synapse', 'tsodyks2_synapse'\], got "
            "'hebb_synapse'")
    refused(lambda d: block(d).update(graded=True),
            r"blocks\[3\]\.graded: connections onto point neurons are not graded")
    refused(lambda d: block(d)["values"].update(tau_x=[1.0] * 4),
            r"blocks\[3\]\.values: unknown keys \['tau_x'\]")
    refused(lambda d: block(d)["values"].pop("Wmax"), r"blocks\[3\]\.values: missing key 'Wmax'")
    refused(lambda d: block(d, 4)["values"].update(U=[0.5]),
            r"blocks\[4\]\.values\.U: expected 2 entries \(one per connection\), got 1")
    refused(lambda d: block(d)["values"]["tau_plus"].pop(),
            r"blocks\[3\]\.values\.tau_plus: expected 4 entries \(one per connection\), got 3")
    refused(lambda d: block(d)["values"]["tau_plus"].__setitem__(2, 0.0),
            r"blocks\[3\]\.values\.tau_plus: stdp_synapse\.tau_plus must be > 0 ms, got 0")
    refused(lambda d: block(d, 4)["values"]["U"].__setitem__(0, 1.5),
            r"blocks\[4\]\.values\.U: tsodyks2_synapse\.U must be in \[0, 1\]")
    refused(lambda d: block(d)["pre_neuron"].__setitem__(0, 3),
            r"blocks\[3\]\.pre_neuron: point neuron 3 \('noise'\[0\]\) is a poisson_generator, "
            "which cannot drive stdp_synapse connections")
    refused(lambda d: block(d)["pre_neuron"].__setitem__(0, 0),  # as Network.connect
            r"blocks\[3\]\.pre_neuron: point neuron 0 \('pre'\[0\]\) is a spike_generator, "
            "which cannot drive stdp_synapse connections .* relay it through a parrot_neuron")
    refused(lambda d: block(d, 5).update(threshold=None), r"blocks\[5\]\.threshold: ")
    refused(lambda d: pop(d).update(surrogate={"name": "relu", "slope": 1.0}),
            r"populations\[5\]\.surrogate\.name: unknown surrogate 'relu'; the surrogates are "
            r"\('fast_sigmoid', 'sigmoid'")
    refused(lambda d: pop(d).update(surrogate={"name": "sigmoid", "slope": 0.0}),
            r"populations\[5\]\.surrogate\.slope: a surrogate's slope must be > 0")
    refused(lambda d: pop(d).update(surrogate={"name": "sigmoid"}),
            r"populations\[5\]\.surrogate: missing key 'slope'")
    refused(lambda d: pop(d).update(surrogate="sigmoid"),
            r"populations\[5\]\.surrogate: expected an object, got a string")
    refused(lambda d: pop(d, 2).update(surrogate={"name": "sigmoid", "slope": 1.0}),
            r"populations\[2\]: poisson_generator is a generator: it has no spikes")
    refused(lambda d: pop(d).pop("surrogate"), r"populations\[5\]: missing key 'surrogate'")
    refused(lambda d: recording(d).__setitem__(0, "hebb_synapse"),
            r"point_recordings\[0\]\[0\]: unknown plastic synapse kind 'hebb_synapse'")
    refused(lambda d: recording(d).__setitem__(1, "u"),
            r"point_recordings\[0\]\[1\]: stdp_synapse records \['weight', 'Kplus', 't_last', "
            r"'Kminus', 'w_facilitated'\], not 'u'")
    refused(lambda d: recording(d).__setitem__(2, 4),
            r"point_recordings\[0\]\[2\]: 4 is out of range \[0, 4\)")
    refused(lambda d: recording(d).__setitem__(3, "median"),
            r"point_recordings\[0\]\[3\]: unknown reduction 'median'")
    refused(lambda d: d["wiring"]["blocks"].__delitem__(slice(4, None)),
            r"point_recordings\[4\]\[0\]: the network has no tsodyks2_synapse connections")


def test_refuses_to_save_plastic_blocks_and_surrogates_it_cannot_load(tmp_path):
    net = plastic_network()
    stdp = net.wiring.blocks[3]
    net.wiring.blocks[3] = dataclasses.replace(stdp, mech=StaticSynapse())
    with pytest.raises(ModelFileError, match=r"cannot save wiring\.blocks\[3\]: connections onto "
                                             r"point neurons use the 'static' synapse or a plastic "
                                             r"one .*'stdp_synapse' \(StaticSynapse\)"):
        save(net, tmp_path / "x.json")
    net.wiring.blocks[3] = dataclasses.replace(
        stdp, values={k: v for k, v in stdp.values.items() if k != "Wmax"})
    with pytest.raises(ModelFileError, match=r"cannot save wiring\.blocks\[3\]: its stdp_synapse "
                                             r"connections have values .*expected .*'Wmax'"):
        save(net, tmp_path / "x.json")
    net.wiring.blocks[3] = stdp
    net.wiring.populations[5].model.surrogate = Surrogate("relu")
    with pytest.raises(ModelFileError, match=r"cannot save wiring\.populations\[5\] \('trained'\): "
                                             r"its surrogate .*unknown surrogate 'relu'"):
        save(net, tmp_path / "x.json")
    assert not (tmp_path / "x.json").exists()


def test_loads_version_2_files(tmp_path):
    """A version 2 file (no surrogates, no plastic connections) still loads; what version 3
    adds is refused in it."""
    net = point_network()
    text = modelfile.dumps(net)
    doc = as_version_3(json.loads(text), net)
    doc["version"] = 2
    for p in doc["wiring"]["populations"]:
        assert p.pop("surrogate") is None
    loaded = modelfile.loads(json.dumps(doc))
    assert modelfile.dumps(loaded) == text  # rewritten as the current version
    assert_same_params(net, loaded)

    def refused(doc, match):
        with pytest.raises(ModelFileError, match=match):
            modelfile.loads(json.dumps(doc))

    pops = doc["wiring"]["populations"]
    refused({**doc, "wiring": {**doc["wiring"], "populations": [
        {**pops[0], "surrogate": None}, *pops[1:]]}},
        r"populations\[0\]: unknown keys \['surrogate'\]")
    recs = doc["wiring"]["point_recordings"]
    refused({**doc, "wiring": {**doc["wiring"], "point_recordings": [
        ["stdp_synapse", "weight", 0, None], *recs]}},
        r"point_recordings\[0\]\[0\]: expected an integer, got 'stdp_synapse'")
    plastic_net = plastic_network()
    plastic = as_version_3(json.loads(modelfile.dumps(plastic_net)), plastic_net)
    plastic["version"] = 2
    for p in plastic["wiring"]["populations"]:
        p.pop("surrogate")
    refused(plastic, r"blocks\[3\]\.synapse: connections onto point neurons \(post_neuron\) use "
                     r"the 'static' synapse in a version 2 file \(plastic ones from version 3 "
                     r"on\), got 'stdp_synapse'")


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


DRIFT = """
import jax.numpy as jnp
from dendrax.point import PointNeuron
class Drift(PointNeuron):
    name = "drift"
    params = {"rate": %s}
    states = ("V_m",)
    def initial(self, p, dt):
        return {"V_m": jnp.zeros_like(p["rate"])}
    def update(self, s, p, inp, dt):
        return {"V_m": s["V_m"] + p["rate"] * dt}, s["V_m"] > 1e9
"""


def test_a_point_model_two_packages_provide_loads_from_the_saving_package(fake_entry_points,
                                                                          tmp_path):
    a = Plugin("drift", "dendrax.point_neurons", "mf_drift_a:Drift", "pkg-a")
    b = Plugin("drift", "dendrax.point_neurons", "mf_drift_b:Drift", "pkg-b")
    modules = {"mf_drift_a": DRIFT % "1.0", "mf_drift_b": DRIFT % "2.0"}
    fake_entry_points([a, b], modules)
    net = dx.Network()
    net.record("V_m", net.population("pkg-b:drift", 2, name="d"))
    path = tmp_path / "drift.json"
    save(net, path)
    entry = json.loads(path.read_text())["wiring"]["populations"][0]
    assert (entry["package"], entry["entry_point"]) == ("pkg-b", "mf_drift_b:Drift")
    loaded = load(path)
    assert type(loaded.wiring.populations[0].model).__module__ == "mf_drift_b"
    assert_same_run(net, loaded, 1.0, dt=DT)
    fake_entry_points([a], modules)  # pkg-b gone, one other provider: used, with a warning
    with pytest.warns(UserWarning, match="point-neuron model 'drift'.*'pkg-b'.*'pkg-a'"):
        assert type(load(path).wiring.populations[0].model).__module__ == "mf_drift_a"
    fake_entry_points([], modules)  # no provider at all
    with pytest.raises(ModelFileError, match="point-neuron model 'drift'.*'pkg-b'.*not registered"):
        load(path)


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
    doc["version"] = modelfile.VERSION + 1
    with pytest.raises(ValueError, match=f"{path.name}: version: the file has format version "
                                         f"{modelfile.VERSION + 1}.*upgrade dendrax"):
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
    c["stimuli"]["waveform"][0]["t"][1:3] = [9.0, 4.0]  # as Cell.stimulate
    with pytest.raises(ValueError, match=r"waveform\[0\]\.t: times must not decrease, got "
                                         r"t\[2\] = 4 after t\[1\] = 9 ms"):
        load(write(doc))
    c["stimuli"]["waveform"][0]["t"][1:3] = [4.0, 9.0]
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
    points = doc["morphologies"][0]["sections"][0]["points"]
    doc["morphologies"][0]["sections"][1]["points"][0] = [0.0, 0.0, 0.0, 1.0]
    doc["morphologies"][0]["sections"][0]["points"] = [points[0]] * len(points)
    with pytest.raises(ValueError, match=r"sections\[0\]: the section has zero length"):
        load(write(doc))


def test_refuses_integers_beyond_64_bits(saved):
    """An index too large for int64 (a node's section, a channel's nodes, a spike record's or
    recording's section) is a ModelFileError naming its place (OverflowError and TypeError
    escaped)."""
    path, doc, write = saved
    c = doc["cells"][0]
    c["spike_records"] = [{"section": 0, "x": 0.5, "threshold": 10.0}]
    c["recordings"] = [["v", {"section": 0, "x": 0.5, "cell": None}]]
    edits = [(lambda d, v: d["nodes"]["section"].__setitem__(1, v), r"cells\[0\]\.nodes\.section"),
             (lambda d, v: d["channels"][0]["nodes"].__setitem__(0, v),
              r"cells\[0\]\.channels\[0\]\.nodes"),
             (lambda d, v: d["spike_records"][0].__setitem__("section", v),
              r"cells\[0\]\.spike_records\[0\]\.section"),
             (lambda d, v: d["recordings"][0][1].__setitem__("section", v),
              r"cells\[0\]\.recordings\[0\]\[1\]\.section")]
    for edit, where in edits:
        changed = json.loads(json.dumps(doc))
        edit(changed["cells"][0], 10 ** 20)
        with pytest.raises(ModelFileError, match=f"{path.name}: {where}: (entry )?10+ is out of "
                                                 r"range \(beyond a 64-bit integer\)"):
            load(write(changed))


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


def test_refuses_negative_synapse_spike_times_and_empty_synapse_kinds(saved):
    """What Cell.synapse refuses, a file cannot bring in."""
    path, doc, write = saved
    syn = doc["cells"][0]["stimuli"]["synapses"][0]
    syn["items"][0]["times"] = [-2.5, 6.0]
    with pytest.raises(ModelFileError, match=r"synapses\[0\]\.items\[0\]\.times: spike times "
                                             r"must be >= 0 ms"):
        load(write(doc))
    syn["items"] = []
    with pytest.raises(ModelFileError, match=r"synapses\[0\]\.items: a synapse kind without "
                                             "synapses"):
        load(write(doc))


def test_a_recordings_location_must_be_a_location(saved):
    """A text where the location goes was reported as an unknown reduction."""
    path, doc, write = saved
    rec = doc["cells"][0]["recordings"][0]
    rec[1] = "garbage"
    with pytest.raises(ModelFileError, match=r"recordings\[0\]: the recording's location must "
                                             r"be \{\"section\", \"x\", \"cell\"\} or a list of "
                                             r"them, got 'garbage'"):
        load(write(doc))


def test_values_out_of_range_are_refused_naming_the_file(saved):
    """A value Cell.set refuses (cm <= 0, a negative conductance) loaded and failed only in
    simulate, without the file's name."""
    path, doc, write = saved
    doc["cells"][0]["values"]["cm"][0] = -1.0
    with pytest.raises(ModelFileError, match=rf"{path.name}: cells\[0\]: cm must be > 0 uF/cm2, "
                                             r"got -1"):
        load(write(doc))


def test_an_empty_region_name_is_refused(saved):
    path, doc, write = saved
    doc["morphologies"][0]["sections"][1]["region"] = ""
    with pytest.raises(ModelFileError, match=r"sections\[1\]\.region: region must be a non-empty "
                                             r"string"):
        load(write(doc))


def test_a_cells_recordings_in_a_network_file_are_its_own(tmp_path):
    """A network cell's own recordings (net.cell(i).record) are saved without the cell
    index; files that kept it (earlier versions) load when it is the cell's, and are
    refused when it names another cell."""
    net = dx.Network.replicate(dx.Cell.ball_and_stick(), 2)
    net.cell(1).record("v", net.cell(1).soma())
    doc = json.loads(modelfile.dumps(net))
    assert doc["cells"][1]["recordings"] == [["v", {"section": 0, "x": 0.5, "cell": None}, None]]
    doc["cells"][1]["recordings"][0][1]["cell"] = 1
    loaded = modelfile.loads(json.dumps(doc))
    assert loaded.cells[1].recordings == [("v", dx.Location(0, 0.5))]
    doc["cells"][1]["recordings"][0][1]["cell"] = 0
    with pytest.raises(ModelFileError, match=r"cells\[1\]\.recordings\[0\].*a location of "
                                             r"cell 0 in the recordings of cell 1"):
        modelfile.loads(json.dumps(doc))


# --------------------------------------------------------------------------- geometry, NMODL
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


COORD = r"um is beyond float32, as NEURON stores 3-D points: coordinates and diameters " \
        r"must lie within \+-3\.4028235e\+38 um"


@pytest.mark.parametrize("k, value, match", [
    (0, 1e300, r" \(x\) = 1e\+300 " + COORD),
    (2, -1e39, r" \(z\) = -1e\+39 " + COORD),
    (1, "1e999", r" \(y\) = inf um is not finite"),  # JSON's 1e999 reads as infinity
    (0, 10 ** 400, r" \(x\) = inf um is not finite"),  # an integer too large for a float
    (3, 1e39, r" \(diameter\) = 1e\+39 " + COORD),
    (3, 1e-60, r" has a non-positive diameter as float32 \(NEURON's storage\): 1e-60 um "
               r"rounds to 0; give at least 1\.4e-45 um"),
], ids=["x", "z", "y-1e999", "x-int", "diameter-large", "diameter-tiny"])
def test_refuses_points_beyond_float32(saved, k, value, match):
    """A 3-D point beyond float32 (as NEURON's pt3d holds it) loaded, and the run gave NaN."""
    path, doc, write = saved
    doc["morphologies"][0]["sections"][1]["points"][1][k] = 12345.5 if isinstance(value, str) \
        else value
    path = write(doc)
    path.write_text(path.read_text().replace("12345.5", str(value)))
    with pytest.raises(ModelFileError, match=rf"{path.name}: morphologies\[0\]\.sections\[1\]: "
                                             rf"Section\.points\[1\]{match}"):
        load(path)


def test_a_recorded_nmodl_hash_is_checked(saved):
    """A mechanism entry's nmodl_sha256 must be a SHA-256, and the mechanism found by name
    one generated from that NMODL text."""
    path, doc, write = saved
    k, entry = next((k, m) for k, m in enumerate(doc["mechanisms"]) if m["name"] == "hh")
    entry["nmodl_sha256"] = "0" * 64
    with pytest.raises(ModelFileError, match=rf"mechanisms\[{k}\]\.nmodl_sha256: mechanism 'hh' "
                                             r"was saved from NMODL text with SHA-256 0{64}, "
                                             r"but the 'hh' available here \(package 'dendrax'\) "
                                             r"was not generated from NMODL"):
        load(write(doc))
    entry["nmodl_sha256"] = "xyz"
    with pytest.raises(ModelFileError, match=r"expected a SHA-256 \(64 lowercase hexadecimal "
                                             r"digits\), got 'xyz'"):
        load(write(doc))


LEAK_MOD = """NEURON {{ SUFFIX leak_sha NONSPECIFIC_CURRENT i }}
PARAMETER {{ g = 0.001 (S/cm2) }}
ASSIGNED {{ v (mV) i (mA/cm2) }}
BREAKPOINT {{ i = g * (v + {e}) }}
"""


def test_an_nmodl_mechanism_is_saved_with_its_hash_and_another_mod_file_refused(tmp_path):
    """A mechanism from dendrax.nmodl.load was recorded by SUFFIX only: loading the model
    where another .mod file with that SUFFIX was loaded ran the other one, silently."""
    pytest.importorskip("neuron.nmodl", reason="NEURON's NMODL framework (dendrax[nmodl])")
    from dendrax import nmodl
    from dendrax.nmodl import registry

    saved_text, other_text = LEAK_MOD.format(e=70), LEAK_MOD.format(e=50)
    sha, other = nmodl.sha256(saved_text), nmodl.sha256(other_text)
    path = tmp_path / "leak.dendrax.json"
    try:
        nmodl.load(saved_text)
        cell = dx.Cell.ball_and_stick(nseg=[1, 3]).insert("leak_sha")
        cell.record("v", cell.soma(0.5))
        save(cell, path)
        assert json.loads(path.read_text())["mechanisms"][0]["nmodl_sha256"] == sha
        assert_same_run(cell, load(path), 2.0)  # the same text loaded: the same model

        registry.unregister()
        nmodl.load(other_text)  # the same SUFFIX, another current
        with pytest.raises(ModelFileError, match=(
                rf"{path.name}: mechanisms\[0\]\.nmodl_sha256: mechanism 'leak_sha' was saved "
                rf"from NMODL text with SHA-256 {sha}, but the 'leak_sha' available here "
                rf"\(package 'dendrax-nmodl-loaded', loaded from <text>\) was generated from "
                rf"NMODL text with SHA-256 {other}: a different mechanism with the same name\. "
                r"Load the \.mod file the model was saved with")):
            load(path)

        registry.unregister()
        nmodl.load(saved_text.replace("\n", "\r\n"))  # CRLF line endings: the same text
        assert_same_run(cell, load(path), 2.0)

        registry.unregister()
        nmodl.load(other_text)  # a file written before hashes loads as it did
        old = as_version_3(json.loads(path.read_text()), cell)
        assert list(modelfile.loads(json.dumps(old)).mechanisms) == ["leak_sha"]
        old["mechanisms"][0]["nmodl_sha256"] = sha
        with pytest.raises(ModelFileError, match=r"mechanisms\[0\]: unknown keys "
                                                 r"\['nmodl_sha256'\]"):
            modelfile.loads(json.dumps(old))
    finally:
        registry.unregister()
