"""What a model file must be to load (dendrax.modelfile): a file that is not one, of a newer
version, with missing keys, wrong lengths, non-finite or out-of-range values, or points
beyond float32, is refused naming the file and the place; what a file cannot hold is
refused when saving. A mechanism or point model is loaded from the package that saved it
(a plugin package, one of two providing a name), and one from NMODL text only from the
same text (its SHA-256)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

import dendrax as dx
from dendrax import modelfile, plugins
from dendrax.mechanisms import Channel
from dendrax.plugins import Plugin
from modelfile_cases import DT, as_version_3, assert_same_run, ball_and_stick, round_trip


save, load = modelfile.save, modelfile.load
ModelFileError = modelfile.ModelFileError


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


# --------------------------------------------------------------------------- packages
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


# --------------------------------------------------------------------------- NMODL
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


def test_a_parameter_now_read_as_assigned_is_left_out_of_an_older_file(tmp_path):
    """A file saved while dendrax took an NMODL PARAMETER that BREAKPOINT sets (Migliore's
    cal2.mod ggk) as a parameter holds its values: they are left out with a warning (a
    review found such a file refused), and the model runs as saved."""
    pytest.importorskip("neuron.nmodl", reason="NEURON's NMODL framework (dendrax[nmodl])")
    from dendrax import nmodl
    from dendrax.nmodl import registry

    text = """
NEURON { SUFFIX leak_gm NONSPECIFIC_CURRENT i RANGE g, gm }
PARAMETER { g = 1e-4 (S/cm2) gm (S/cm2) }
ASSIGNED { v (mV) i (mA/cm2) }
BREAKPOINT { gm = g  i = gm*(v + 70) }
"""
    path = tmp_path / "gm.dendrax.json"
    try:
        mech = nmodl.load(text)
        assert mech.overwritten == ("gm",) and "gm" not in mech.params
        cell = dx.Cell.ball_and_stick(nseg=[1, 3]).insert("leak_gm")
        cell.record("v", cell.soma(0.5)).iclamp(cell.soma(), delay=0.5, dur=1.0, amp=0.1)
        save(cell, path)
        data = json.loads(path.read_text())
        params = data["cells"][0]["channels"][0]["params"]
        params["gm"] = [0.5] * len(params["g"])  # as an older dendrax saved it
        path.write_text(json.dumps(data))
        with pytest.warns(UserWarning, match=r"\['gm'\] of leak_gm left out: its BREAKPOINT "
                                             r"sets them"):
            again = load(path)
        assert_same_run(cell, again, 2.0)
    finally:
        registry.unregister()
