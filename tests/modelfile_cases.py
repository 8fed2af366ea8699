"""What the model-file tests (tests/test_modelfile_*.py) share: the checks that a loaded
model is the saved one (same params bit for bit, same run), a save-load round trip, a
current file rewritten as version 3 wrote it, and a ball-and-stick with every kind of
stimulus and recording."""

from __future__ import annotations

import jax
import numpy as np

import dendrax as dx
from dendrax import modelfile
from dendrax.lowering import lower


save, load = modelfile.save, modelfile.load


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


DT = 0.1  # point neurons need delays >= dt
