"""NWB export (dendrax.nwb.write_nwb) read back with pynwb itself: icephys series for the
membrane potential, TimeSeries for other quantities, the units table for spikes, the
run's settings, and the file passing pynwb's schema validator."""

from __future__ import annotations

import json
import subprocess
import sys

import jax
import numpy as np
import pytest

pynwb = pytest.importorskip("pynwb")

import dendrax as dx  # noqa: E402
from dendrax.nwb import read_nwb, write_nwb  # noqa: E402
from pynwb.base import TimeSeries  # noqa: E402
from pynwb.icephys import (CurrentClampSeries, CurrentClampStimulusSeries,  # noqa: E402
                           VoltageClampSeries)

DT = 0.025


def hh_cell():
    cell = dx.Cell.ball_and_stick(nseg=[1, 5])
    cell.insert("hh")
    return cell


@pytest.fixture(scope="module")
def cell_run():
    cell = hh_cell()
    cell.iclamp(cell.soma(0.5), delay=2.0, dur=20.0, amp=0.3)
    cell.record("v", cell.soma(0.5)).record("v", cell.section(1)(0.7))
    cell.record("hh.m", cell.soma(0.5))
    cell.record_spikes()
    return cell, dx.simulate(cell, 30.0, dt=DT)


def label_of(series):
    d = json.loads(series.comments)["dendrax"]
    return d["quantity"], dx.Location(d["section"], d["x"], d["cell"])


def name_of(target, loc):
    if hasattr(target, "location_name"):
        return target.location_name(loc)
    return None


def test_cell_traces_and_spikes_read_back_with_pynwb(cell_run, tmp_path):
    cell, res = cell_run
    path = write_nwb(res, tmp_path / "cell.nwb", target=cell, experimenter=["Doe, Jane"])
    assert path == tmp_path / "cell.nwb" and path.is_file()
    v_labels = [lab for lab in res.labels if lab[0] == "v"]
    with pynwb.NWBHDF5IO(str(path), mode="r") as io:
        nwb = io.read()
        assert nwb.session_description == "dendrax simulation"
        assert nwb.session_start_time.tzinfo is not None
        assert list(nwb.experimenter) == ["Doe, Jane"]
        # membrane potential: one CurrentClampSeries per recording, in volts via conversion
        series = {label_of(s): s for s in nwb.acquisition.values()}
        assert sorted(series) == sorted(v_labels)
        for label, s in series.items():
            assert isinstance(s, CurrentClampSeries)
            assert s.unit == "volts"
            data = np.asarray(s.data[:])
            assert data.dtype == np.float64
            volts = np.asarray(res[label], np.float64) * 1e-3
            np.testing.assert_array_equal(data * s.conversion, volts)
            assert s.rate == pytest.approx(1e3 / DT, rel=1e-12)
            assert s.starting_time == 0.0
            assert s.electrode.device.name == "dendrax simulation"
            if name_of(cell, label[1]) is not None:
                assert s.electrode.location == cell.location_name(label[1])
                assert cell.location_name(label[1]) in s.description
        # each recorded site has its own electrode
        assert len(nwb.icephys_electrodes) == len(v_labels)
        # the gate: a TimeSeries in processing["dendrax"], as recorded (dimensionless)
        gates = list(nwb.processing["dendrax"].data_interfaces.values())
        assert len(gates) == 1 and type(gates[0]) is TimeSeries
        m = gates[0]
        assert label_of(m) == ("hh.m", cell.soma(0.5))
        np.testing.assert_array_equal(np.asarray(m.data[:]) * m.conversion,
                                      np.asarray(res["hh.m", cell.soma(0.5)]))
        assert "hh" in m.description and "m" in m.description
        if hasattr(res, "units"):
            assert m.unit == "1" and m.conversion == 1.0
        m_trace = np.asarray(m.data[:])
        assert np.all((m_trace >= 0) & (m_trace <= 1))
        # spikes: the units table, in seconds, with the cell and site
        units = nwb.units
        assert len(units) == 1
        times = np.asarray(units["spike_times"][0])
        expected = res.spikes[0] / 1000
        assert times.size >= 2
        np.testing.assert_array_equal(times, expected)
        assert int(units["cell"][0]) == 0
        if hasattr(cell, "location_name"):
            assert units["location"][0] == cell.location_name(cell.soma(0.5))
        # independent of the raster: each spike is an upward 10 mV crossing of the soma v
        # read back from the file (NEURON's NetCon.record: v above at the step's start)
        soma = next(s for lab, s in series.items() if lab[1] == cell.soma(0.5))
        v = np.asarray(soma.data[:])
        k = np.rint(times * soma.rate).astype(int)
        assert np.all(v[k] > 10.0) and np.all(v[k - 1] <= 10.0)
        crossings = np.flatnonzero((v[1:-1] > 10.0) & (v[:-2] <= 10.0)) + 1
        np.testing.assert_array_equal(crossings, k)
        # settings: JSON in notes, readable summary in data_collection
        settings = json.loads(nwb.notes.split("dendrax settings (JSON): ", 1)[1])
        assert settings["dendrax"] == dx.__version__
        if getattr(res, "meta", None):
            assert settings["dt"] == pytest.approx(DT)
            assert settings["t_stop"] == pytest.approx(30.0)
        assert dx.__version__ in nwb.data_collection


def test_read_nwb_gives_the_recordings_back(cell_run, tmp_path):
    cell, res = cell_run
    out = read_nwb(write_nwb(res, str(tmp_path / "cell.nwb"), target=cell))
    assert sorted(out["traces"]) == sorted(res.labels)
    for label in res.labels:
        data, unit = out["traces"][label]
        np.testing.assert_array_equal(data, np.asarray(res[label]))
        assert unit == ("mV" if label[0] == "v" else unit)
    np.testing.assert_allclose(out["t"], np.asarray(res.t), rtol=0, atol=1e-9)
    assert len(out["spikes"]) == 1 and out["spike_cells"] == [0]
    np.testing.assert_allclose(out["spikes"][0], res.spikes[0], rtol=1e-14)
    assert out["meta"]["dendrax"] == dx.__version__


def test_network_writes_one_unit_per_recorded_cell(tmp_path):
    net = dx.Network.replicate(hh_cell(), 3)
    c = [net.cell(i) for i in range(3)]
    c[0].iclamp(c[0].soma(0.5), delay=1.0, dur=20.0, amp=0.3)
    net.connect(c[0].soma(0.5), c[1].section(1)(0.5), "Exp2Syn", weight=0.05, delay=1.0)
    net.connect(c[1].soma(0.5), c[2].section(1)(0.5), "Exp2Syn", weight=0.05, delay=1.0)
    net.record_spikes([0, 2])
    net.record("v", c[1].soma(0.5))
    res = dx.simulate(net, 30.0, dt=DT)
    assert len(res.spikes[0]) > 0
    path = write_nwb(res, tmp_path / "net.nwb", target=net, session_description="3 HH cells")
    with pynwb.NWBHDF5IO(str(path), mode="r") as io:
        nwb = io.read()
        assert nwb.session_description == "3 HH cells"
        units = nwb.units
        assert len(units) == 2
        assert [int(units["cell"][i]) for i in range(2)] == [0, 2]
        for i in range(2):
            np.testing.assert_array_equal(np.asarray(units["spike_times"][i]),
                                          res.spikes[i] / 1000)
        if hasattr(net, "location_name"):
            assert [units["location"][i] for i in range(2)] == ["cell[0].soma(0.5)",
                                                                "cell[2].soma(0.5)"]
        else:
            assert all(units["location"][i].startswith(f"cell[{k}].")
                       for i, k in enumerate([0, 2]))
        (s,) = nwb.acquisition.values()
        assert isinstance(s, CurrentClampSeries)
        assert label_of(s) == ("v", c[1].soma(0.5))
        np.testing.assert_array_equal(np.asarray(s.data[:]) * s.conversion,
                                      np.asarray(res["v", c[1].soma(0.5)]) * 1e-3)
        assert "cell[1]" in s.electrode.location


def test_spikes_only_and_silent_sources(tmp_path):
    cell = hh_cell()
    cell.record_spikes()  # no stimulus: no spikes
    res = dx.simulate(cell, 5.0, dt=DT)
    path = write_nwb(res, tmp_path / "silent.nwb", target=cell)
    with pynwb.NWBHDF5IO(str(path), mode="r") as io:
        nwb = io.read()
        assert len(nwb.acquisition) == 0 and "dendrax" not in nwb.processing
        assert len(nwb.units) == 1
        assert np.asarray(nwb.units["spike_times"][0]).size == 0


def test_voltage_clamp_current_is_a_voltage_clamp_series(tmp_path):
    cell = hh_cell()
    cell.vclamp(cell.soma(0.5), amp=[-65.0, -20.0, -65.0], dur=[2.0, 5.0, 5.0])
    cell.record("vclamp.i", cell.soma(0.5))
    cell.record("v", cell.soma(0.5))
    res = dx.simulate(cell, 10.0, dt=DT)
    path = write_nwb(res, tmp_path / "vc.nwb", target=cell)
    with pynwb.NWBHDF5IO(str(path), mode="r") as io:
        nwb = io.read()
        kinds = {label_of(s)[0]: s for s in nwb.acquisition.values()}
        vc = kinds["vclamp.i"]
        assert isinstance(vc, VoltageClampSeries) and vc.unit == "amperes"
        assert vc.conversion == 1e-9
        np.testing.assert_array_equal(np.asarray(vc.data[:]),
                                      np.asarray(res["vclamp.i", cell.soma(0.5)]))
        assert vc.electrode is kinds["v"].electrode  # the clamp's site, one electrode
        assert len(nwb.icephys_electrodes) == 1


def test_clamp_stimulus_synapse_and_ion_current_every_k_steps(tmp_path):
    cell = hh_cell()
    cell.iclamp(cell.soma(0.5), delay=1.0, dur=5.0, amp=0.2)
    cell.synapse("Exp2Syn", cell.section(1)(0.5), spike_times=[2.0], weight=0.01)
    cell.record("iclamp.i", cell.soma(0.5)).record("Exp2Syn.g", cell.section(1)(0.5))
    cell.record("ina", cell.soma(0.5))
    res = dx.simulate(cell.record("v", cell.soma(0.5)), 10.0, dt=DT, record_every=4)
    units = dict(zip((name for name, _ in res.labels), res.units))
    path = write_nwb(res, tmp_path / "k.nwb", target=cell)
    with pynwb.NWBHDF5IO(str(path), mode="r") as io:
        nwb = io.read()
        (stim,) = nwb.stimulus.values()
        assert isinstance(stim, CurrentClampStimulusSeries)
        assert label_of(stim) == ("iclamp.i", cell.soma(0.5))
        assert stim.unit == "amperes" and stim.conversion == 1e-9
        i = np.asarray(stim.data[:])
        np.testing.assert_array_equal(i, np.asarray(res["iclamp.i", cell.soma(0.5)]))
        t = np.arange(i.size) * 4 * DT  # the step: 0.2 nA from 1 to 6 ms
        np.testing.assert_allclose(i[(t > 1.05) & (t < 5.95)], 0.2, rtol=1e-12)
        (v,) = nwb.acquisition.values()
        for s in (stim, v):
            assert s.rate == pytest.approx(1e3 / (4 * DT), rel=1e-12)
        assert stim.electrode is v.electrode
        rows = nwb.intracellular_recordings
        assert len(rows) == 1  # the response paired with its stimulus
        other = {label_of(s)[0]: s for s in nwb.processing["dendrax"].data_interfaces.values()}
        g = other["Exp2Syn.g"]
        assert units["Exp2Syn.g"] == "uS" and g.unit == "siemens" and g.conversion == 1e-6
        assert g.rate == v.rate
        assert np.asarray(g.data[:]).max() > 0
        ina = other["ina"]
        assert ina.unit == units["ina"] == "mA/cm2" and ina.conversion == 1.0
        np.testing.assert_array_equal(np.asarray(ina.data[:]),
                                      np.asarray(res["ina", cell.soma(0.5)]))


def test_statistics_without_traces_go_to_a_table(tmp_path):
    cell = hh_cell()
    cell.iclamp(cell.soma(0.5), delay=1.0, dur=10.0, amp=0.3)
    cell.record("v", [cell.soma(0.5), cell.section(1)(0.9)], reduce="max")
    cell.record("hh.h", cell.soma(0.5), reduce="min")
    cell.record("v", cell.soma(0.5))
    res = dx.simulate(cell, 15.0, dt=DT)
    path = write_nwb(res, tmp_path / "stats.nwb", target=cell)
    with pynwb.NWBHDF5IO(str(path), mode="r") as io:
        nwb = io.read()
        (v,) = nwb.acquisition.values()
        soma_v = np.asarray(v.data[:])
        table = nwb.processing["dendrax"]["statistics"].to_dataframe()
        assert list(table["quantity"]) == ["v", "v", "hh.h"]
        assert list(table["statistic"]) == ["max", "max", "min"]
        assert list(table["unit"]) == ["mV", "mV", "1"]
        assert list(table["cell"]) == [-1, -1, -1]
        # the soma's max from the table equals the max of the soma trace in the file
        assert table["value"].iloc[0] == soma_v.max()
        assert table["location"].iloc[1] == cell.location_name(cell.section(1)(0.9))
    out = read_nwb(path)
    assert out["stats"]["v", cell.soma(0.5), "max"] == (soma_v.max(), "mV")
    assert set(out["stats"]) == {(n, loc, k) for n, loc, k in res.stat_labels}


def test_sparser_recordings_and_units_without_result_units(tmp_path):
    # a Result recorded every 4 steps of 0.025 ms, built directly (units inferred)
    t = np.arange(11) * (4 * DT)
    traces = np.vstack([np.linspace(-65.0, -60.0, 11), np.linspace(0.0, 1.0, 11)])
    labels = [("v", dx.Location(0, 0.5)), ("i_membrane", dx.Location(1, 0.25))]
    res = dx.Result(t, traces, labels)
    if hasattr(res, "units"):
        res.units = ("mV", "nA")
    path = write_nwb(res, tmp_path / "k.nwb")  # no target: locations named sec<k>(x)
    with pynwb.NWBHDF5IO(str(path), mode="r") as io:
        nwb = io.read()
        (v,) = nwb.acquisition.values()
        assert v.rate == pytest.approx(1e3 / (4 * DT), rel=1e-12)
        assert v.electrode.location == "sec0(0.5)"
        (i,) = nwb.processing["dendrax"].data_interfaces.values()
        assert i.rate == v.rate
        assert i.unit == "amperes" and i.conversion == 1e-9
        np.testing.assert_array_equal(np.asarray(i.data[:]), traces[1])
        assert "sec1(0.25)" in i.description
        assert nwb.units is None


def test_a_float32_runs_times_are_written_as_a_rate(tmp_path):
    """A float32 run's times are k dt rounded to float32 (7.6e-7 ms off at 30 ms): evenly
    spaced to their own rounding, so starting_time and rate, as a float64 run's (they were
    1201 explicit float32-rounded timestamps)."""
    t = (np.arange(1201) * DT).astype(np.float32)
    res = dx.Result(t, np.full((1, t.size), -65.0, np.float32), [("v", dx.Location(0, 0.5))])
    with pynwb.NWBHDF5IO(str(write_nwb(res, tmp_path / "f.nwb")), mode="r") as io:
        (v,) = io.read().acquisition.values()
        assert v.timestamps is None and v.rate == pytest.approx(1e3 / DT, rel=1e-12)
    # float64 times with that much scatter are not evenly spaced: timestamps
    res = dx.Result(t.astype(np.float64) + np.where(np.arange(t.size) == 600, 2e-6, 0.0),
                    np.full((1, t.size), -65.0), [("v", dx.Location(0, 0.5))])
    with pynwb.NWBHDF5IO(str(write_nwb(res, tmp_path / "g.nwb")), mode="r") as io:
        (v,) = io.read().acquisition.values()
        assert v.rate is None


def test_uneven_times_are_written_as_timestamps(tmp_path):
    t = np.array([0.0, 0.1, 0.3, 0.35])
    res = dx.Result(t, np.array([[-65.0, -64.0, -63.0, -62.0]]), [("v", dx.Location(0, 0.5))])
    with pynwb.NWBHDF5IO(str(write_nwb(res, tmp_path / "u.nwb")), mode="r") as io:
        (v,) = io.read().acquisition.values()
        assert v.rate is None
        np.testing.assert_allclose(np.asarray(v.timestamps[:]), t / 1000, rtol=1e-15)


def test_the_file_passes_the_nwb_validator(cell_run, tmp_path):
    try:
        from pynwb import validate
    except ImportError:
        pytest.skip("this pynwb has no validate")
    cell, res = cell_run
    path = write_nwb(res, tmp_path / "valid.nwb", target=cell)
    try:
        errors = validate(path=str(path))
    except TypeError:  # pynwb < 3: validate(paths=[...]) -> (errors, status)
        errors = validate(paths=[str(path)])
    if isinstance(errors, tuple):
        errors = errors[0]
    assert list(errors) == []


def test_bad_inputs(cell_run, tmp_path):
    cell, res = cell_run
    with pytest.raises(TypeError, match="Result"):
        write_nwb({"t": res.t}, tmp_path / "x.nwb")
    with pytest.raises(TypeError, match="Cell or dendrax.Network"):
        write_nwb(res, tmp_path / "x.nwb", target="cell")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        write_nwb(res, tmp_path / "no" / "such" / "x.nwb")
    with pytest.raises(ValueError, match="folder"):
        write_nwb(res, tmp_path)
    empty = dx.Result(np.arange(3) * DT, np.zeros((0, 3)), [])
    with pytest.raises(ValueError, match="no recordings and no spike sources"):
        write_nwb(empty, tmp_path / "x.nwb")
    # a vmapped batch (was: "the truth value of an array ... is ambiguous")
    batch = jax.tree_util.tree_map(lambda a: np.stack([a, a]), res)
    with pytest.raises(ValueError, match="write_nwb writes one run; this Result holds a batch"):
        write_nwb(batch, tmp_path / "x.nwb")
    other = dx.Cell.from_sections([{"length": 20.0, "diam": 20.0, "parent": -1, "region": "soma"}])
    with pytest.raises(ValueError, match="target"):
        write_nwb(res, tmp_path / "x.nwb", target=other)
    # a cell whose sections' numbers fit the labels, with other regions: the sites were
    # named from it ("axon(0.5)" for a recording in the dendrite)
    lookalike = cell.copy()
    lookalike.set("L", 10.0)  # values may differ: the same description
    write_nwb(res, tmp_path / "x.nwb", target=lookalike)
    a = dx.Cell.ball_and_stick(nseg=[1, 3])
    a.record("v", a.section(1)(0.5))
    ran = dx.simulate(a, 1.0, DT)
    b = dx.Cell.from_sections([{"length": 20.0, "diam": 20.0, "region": "soma"},
                               {"length": 100.0, "diam": 1.0, "parent": 0, "parent_x": 1.0,
                                "region": "axon"}], nseg=[1, 3])
    b.record("v", b.section(1)(0.5))
    with pytest.raises(ValueError, match=r"is not the model this Result came from"):
        write_nwb(ran, tmp_path / "x.nwb", target=b)
    with pytest.raises(TypeError, match="NWBFile field"):
        write_nwb(res, tmp_path / "x.nwb", target=cell, no_such_field=1)
    with pytest.raises(FileNotFoundError):
        read_nwb(tmp_path / "missing.nwb")
    (tmp_path / "text.nwb").write_text("not hdf5")
    with pytest.raises(ValueError, match=r"text.nwb is not an NWB file \(NWB files are HDF5"):
        read_nwb(tmp_path / "text.nwb")
    # HDF5 but not NWB: pynwb's TypeError ("Missing NWB version"), without the path
    import h5py
    with h5py.File(tmp_path / "plain.h5", "w") as f:
        f["x"] = np.zeros(3)
    with pytest.raises(ValueError, match=r"plain.h5 could not be read as an NWB file"):
        read_nwb(tmp_path / "plain.h5")


def test_results_whose_times_and_traces_do_not_line_up_are_refused(cell_run, tmp_path):
    """A Result built by hand: an extra trace row was dropped, a missing one an
    IndexError, times cut short or decreasing or NaN were written, a NaN dt failed in
    round() ("cannot convert float NaN to integer")."""
    _, res = cell_run
    t, traces, labels = np.asarray(res.t), np.asarray(res.traces), list(res.labels)
    shape = r"the Result's traces have shape \(\d+, \d+\): write_nwb needs one row per recording"
    order = r"the Result's t must be finite times in increasing order"
    for bad_t, bad_traces, match in ((t, np.vstack([traces, traces[:1]]), shape),
                                     (t, traces[:0], shape),
                                     (t[:-5], traces, shape),
                                     (t[::-1], traces, order),
                                     (np.where(np.arange(t.size) == 3, np.nan, t), traces, order)):
        with pytest.raises(ValueError, match=match):
            write_nwb(dx.Result(bad_t, bad_traces, labels), tmp_path / "x.nwb")
    bad = dx.Result(t, traces, labels)
    bad.meta = {**(res.meta or {}), "dt": float("nan")}
    with pytest.raises(ValueError, match=r"meta\['dt'\] must be a finite step > 0 \(ms\), got nan"):
        write_nwb(bad, tmp_path / "x.nwb")



def _foreign(path, *, units=False, comments="no comment", notes=None):
    """An NWB file written by pynwb alone (not by write_nwb)."""
    from datetime import datetime, timezone

    nwb = pynwb.NWBFile(session_description="other tool", identifier="x", notes=notes,
                        session_start_time=datetime(2026, 1, 1, tzinfo=timezone.utc))
    nwb.add_acquisition(TimeSeries(name="v", data=np.zeros(5), unit="mV", rate=1e3,
                                   comments=comments))
    if units:
        nwb.add_unit(spike_times=[0.1, 0.2])
    with pynwb.NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)
    return path


@pytest.mark.parametrize("kwargs, match", [
    ({}, "holds no dendrax recordings"),
    ({"units": True}, "units table has no 'cell' column"),
    ({"comments": json.dumps({"dendrax": {"quantity": "v"}})},
     r"series 'v' has a dendrax label without \['cell', 'section', 'unit', 'x'\]"),
    ({"notes": "dendrax settings (JSON): {not json"}, "run settings in its notes are not valid JSON"),
    # a label whose location is no location (it came back as Location('soma', 'mid'))
    ({"comments": json.dumps({"dendrax": {"quantity": "v", "unit": "mV", "section": "soma",
                                          "x": "mid", "cell": None}})},
     r"series 'v' has a dendrax label with a bad location"),
])
def test_files_not_written_by_dendrax_are_refused_by_name(tmp_path, kwargs, match):
    path = _foreign(tmp_path / "other.nwb", **kwargs)
    with pytest.raises(ValueError, match=match):
        read_nwb(path)

def test_pynwb_is_optional(monkeypatch, cell_run, tmp_path):
    code = ("import jax; jax.config.update('jax_enable_x64', True); import sys, dendrax, "
            "dendrax.nwb; assert 'pynwb' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)
    monkeypatch.setitem(sys.modules, "pynwb", None)  # as if not installed
    cell, res = cell_run
    with pytest.raises(ImportError, match=r"pip install 'dendrax\[nwb\]'"):
        write_nwb(res, tmp_path / "x.nwb", target=cell)


def test_point_neuron_and_plastic_weight_recordings_round_trip(tmp_path):
    """Point neurons' traces, statistics and spikes, and plastic weights, written with or
    without the network, read back under their own labels with the same values."""
    import jax

    jax.config.update("jax_enable_x64", True)
    net = dx.Network()
    p = net.population("iaf_psc_alpha", 2, I_e=[400.0, 420.0])
    g = net.population("poisson_generator", 1, rate=200.0)
    q = net.population("parrot_neuron", 1)
    net.connect(g, q, weight=1.0)
    net.connect(q, p, "stdp_synapse", weight=50.0, Wmax=100.0)
    net.record("V_m", p)
    net.record("weight", "stdp_synapse")
    net.record("V_m", p, reduce="max")
    net.record_spikes(p)
    res = dx.simulate(net, 50.0, 0.1, key=1)
    assert any(len(s) for s in res.spikes)
    for target in (net, None):
        path = tmp_path / f"points_{target is None}.nwb"
        write_nwb(res, path, target=target)
        back = read_nwb(path)
        assert list(back["traces"]) == list(res.labels)
        for k, label in enumerate(res.labels):
            values, unit = back["traces"][label]
            np.testing.assert_array_equal(values, np.asarray(res.traces[k]))
            assert unit == res.units[k]
        assert list(back["stats"]) == list(res.stat_labels)
        for label, stat in zip(res.stat_labels, np.asarray(res.stats)):
            assert back["stats"][label] == (float(stat), "mV")
        for a, b in zip(back["spikes"], res.spikes):
            np.testing.assert_allclose(a, b, rtol=1e-15)


def test_units_of_a_network_with_cells_and_point_neurons_name_their_sources(tmp_path):
    net = dx.Network()
    c = net.add(hh_cell())
    c.iclamp(c.soma(0.5), delay=1.0, dur=10.0, amp=0.3)
    pop = net.population("iaf_psc_alpha", 2, name="readout", I_e=[400.0, 0.0])
    net.record_spikes([0]).record_spikes(pop)
    res = dx.simulate(net, 20.0, DT)
    path = write_nwb(res, str(tmp_path / "mixed.nwb"), target=net)
    with pynwb.NWBHDF5IO(str(path), "r") as io:
        units = io.read().units
        assert list(units["location"][:]) == ["cell[0].soma(0.5)", "readout[0]", "readout[1]"]
        assert list(units["cell"][:]) == [0, 1, 2]
        assert "then point neurons C + k" in units["cell"].description
    # without the network the point neurons are not called cells (they were "cell[1]", ...)
    path = write_nwb(res, str(tmp_path / "bare.nwb"))
    with pynwb.NWBHDF5IO(str(path), "r") as io:
        assert list(io.read().units["location"][:]) == ["neuron[0]", "neuron[1]", "neuron[2]"]


def test_read_nwb_applies_a_rewritten_series_conversion(cell_run, tmp_path):
    """A series rewritten by another tool with other storage (int16 and a conversion): read
    back in its label's unit through NWB's data * conversion + offset."""
    import datetime

    label = {"dendrax": {"quantity": "v", "section": 0, "x": 0.5, "cell": None, "unit": "mV"}}
    nwb = pynwb.NWBFile(session_description="rewritten", identifier="x",
                        session_start_time=datetime.datetime.now().astimezone())
    device = nwb.create_device(name="amp")
    electrode = nwb.create_icephys_electrode(name="e", device=device, description="soma")
    nwb.add_acquisition(CurrentClampSeries(
        name="v", data=np.arange(-3, 7, dtype=np.int16), electrode=electrode, conversion=2e-4,
        offset=-0.07, rate=40000.0, comments=json.dumps(label)))
    with pynwb.NWBHDF5IO(str(tmp_path / "r.nwb"), "w") as io:
        io.write(nwb)
    (trace, unit), = read_nwb(tmp_path / "r.nwb")["traces"].values()
    assert unit == "mV"
    np.testing.assert_allclose(trace, (np.arange(-3, 7) * 2e-4 - 0.07) * 1e3, rtol=1e-14)
