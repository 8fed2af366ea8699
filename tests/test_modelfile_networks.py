"""Saving and loading a network (dendrax.modelfile): cells and their connections, point
populations and their generators, plastic connections and surrogate gradients round trip
bit for bit (the loaded network lowers to the same params and runs to the same traces and
spikes); files of versions 1 and 2 still load; bad populations, connections and wiring
in a file are refused, naming their place."""

from __future__ import annotations

import dataclasses
import json

import jax
import numpy as np
import pytest

import dendrax as dx
from dendrax import modelfile
from dendrax.point import PointNeuron, StaticSynapse
from dendrax.point.plasticity import PLASTIC, StdpSynapse, Tsodyks2Synapse
from dendrax.point.surrogate import Surrogate
from modelfile_cases import DT, as_version_3, assert_same_params, assert_same_run, round_trip


save, load = modelfile.save, modelfile.load
ModelFileError = modelfile.ModelFileError


# --------------------------------------------------------------------------- networks of cells
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


# --------------------------------------------------------------------------- point neurons
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


# --------------------------------------------------------------------------- plasticity
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
