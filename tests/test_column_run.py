"""Point-neuron columns run: Signals' shapes, units and proxies (exactly the documented
linear maps), JSON round trip, readouts and their errors, the emitter families."""

import json

import jax
import numpy as np
import pytest

import dendrax.column as dc
from dendrax.column.readouts import bursts

ALL_PROXY = ["SPK", "Vm", "MUA-proxy", "source-proxy", "LFP-proxy", "CSD-proxy", "EEG-proxy",
             "MEG-proxy", "EMM"]


@pytest.fixture(scope="module")
def run():
    cfg = (dc.configuration().runtime(seed=2, duration_ms=100.0, dt_ms=0.5)
           .column("A", ["L2/3", "L4", "L5"], 30).column("B", ["L2/3", "L5"], 20)
           .cell_types({"E": 0.8, "I": 0.2}).connectivity(inter_column=0.5)
           .drive(mean={"E": 6.0, "I": 3.0})
           .probes(ALL_PROXY, name="all", electrodes=6))
    model = dc.construct(cfg)
    return model, model.simulate()


def test_signals_shapes_units(run):
    model, sig = run
    n_t, n = 200, 50
    assert np.allclose(sig.t, 0.5 * np.arange(1, 201))
    for name in ("V_m", "spikes", "I_syn", "source"):
        assert sig[name].shape == (n_t, n), name
    assert sig.LFP.shape == (n_t, 12) and sig.CSD.shape == (n_t, 8)
    assert sig.EEG.shape == (n_t, 2) and sig.MEG.shape == (n_t, 2) and sig.EMM.shape == (n_t, 2)
    assert sig.MUA.shape == (n_t, 5)
    assert sig.units == {"t": "ms", "V_m": "mV", "spikes": "1", "I_syn": "mV/ms",
                         "source": "proxy", "LFP": "proxy", "CSD": "proxy", "EEG": "proxy",
                         "MEG": "proxy", "EMM": "proxy", "MUA": "proxy"}
    assert set(np.unique(sig.spikes)) <= {0.0, 1.0} and sig.spikes.sum() > 10
    assert sig.meta["probe"] == "all" and sig.meta["rows"]["LFP"][0].startswith("A:z=")
    assert "Signals(" in repr(sig) and sig.present[0] == "V_m"
    assert np.any(sig.I_syn > 0) and np.any(sig.I_syn < 0)  # excitatory and inhibitory input


def test_proxies_are_the_documented_maps(run):
    model, sig = run
    g, B = model.geometry, model.basis_spec
    W = B["LFP-proxy"].matrix
    # the documented map: exp(-|z_j - z_e| / 100 um) over the neurons of the electrode's
    # column, rows normalised
    ref = np.exp(-np.abs(g.positions[None, :, 2] - g.electrodes[:, None, 2]) / 100.0)
    ref *= g.electrode_column[:, None] == g.column[None, :]
    np.testing.assert_allclose(W, ref / ref.sum(axis=1, keepdims=True), rtol=1e-12)
    assert np.allclose(W.sum(axis=1), 1.0)
    # EEG-proxy cos(theta) / d^2 and MEG-proxy sin(theta) / d^2 of each column's dipole
    # (at its electrodes' x, y and middle depth) seen from each sensor: EEG sensors 10 mm
    # above the columns (from their depth_um), MEG sensors also 10 mm to the side
    centres = np.array([[*g.electrodes[g.electrode_column == c][0, :2],
                         np.mean(g.electrodes[g.electrode_column == c, 2][[0, -1]])]
                        for c in range(2)])
    depth = {c.name: c.depth_um for c in model.cfg.columns}
    for c, name in enumerate(g.column_names):
        top = [*centres[c, :2], depth[name]]
        np.testing.assert_allclose(g.eeg_sensors[c], np.add(top, [0.0, 0.0, 1e4]))
        np.testing.assert_allclose(g.meg_sensors[c], np.add(top, [1e4, 0.0, 1e4]))
    for key, sensors, lead in (("EEG-proxy", g.eeg_sensors, lambda r, d: r[..., 2] / d),
                               ("MEG-proxy", g.meg_sensors,
                                lambda r, d: np.hypot(r[..., 0], r[..., 1]) / d)):
        r = sensors[:, None, :] - centres[None, :, :]
        d = np.linalg.norm(r, axis=2)
        np.testing.assert_allclose(B[key].matrix, lead(r, d) / d ** 2, rtol=1e-12)
    assert np.allclose(sig.LFP, sig.V_m @ W.T)
    h = g.electrodes[0, 2] - g.electrodes[1, 2]
    L = sig.LFP
    for r, e in enumerate(g.csd_electrodes):
        assert np.allclose(sig.CSD[:, r], -(L[:, e - 1] - 2 * L[:, e] + L[:, e + 1]) / h ** 2)
    assert np.allclose(sig.source, -sig.I_syn)
    dip = sig.source @ B["dipole-proxy"].matrix.T
    a = g.column == 0
    zmid = 0.5 * (g.electrodes[:6, 2].max() + g.electrodes[:6, 2].min())
    assert np.allclose(dip[:, 0], sig.source[:, a] @ (g.positions[a, 2] - zmid))
    assert np.allclose(sig.EEG, dip @ B["EEG-proxy"].matrix.T)
    assert np.allclose(sig.MEG, dip @ B["MEG-proxy"].matrix.T)
    assert np.allclose(sig.EMM[:, 1], np.abs(sig.source[:, ~a]).mean(axis=1))
    top = (g.column == 0) & (g.layer == "L2/3")
    assert np.allclose(sig.MUA[:, 0], sig.spikes[:, top].mean(axis=1) * 2000.0)


def test_json_round_trip(run, tmp_path):
    _, sig = run
    path = sig.save_json(tmp_path / "s.json")
    back = dc.load_signals(path)
    for name in ("t", *sig.present):
        assert np.array_equal(np.asarray(back[name]), np.asarray(sig[name])), name
    assert back.units == sig.units and back.meta == sig.meta
    assert json.loads(path.read_text())["units"]["LFP"] == "proxy"
    assert dc.Signals.from_dict(sig.to_dict()).present == sig.present
    with pytest.raises(ValueError, match="missing"):
        dc.Signals.from_dict({"t": []})
    bad = sig.to_dict()
    bad["V_m"] = bad["V_m"][:-3]
    with pytest.raises(ValueError, match=r"V_m has shape \(\d+, \d+\); expected \[\d+ times"):
        dc.Signals.from_dict(bad)
    bad = {**sig.to_dict(), "t": sig.to_dict()["t"][::-1]}
    with pytest.raises(ValueError, match="t must be increasing"):
        dc.Signals.from_dict(bad)
    (tmp_path / "junk.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"junk.json: not a Signals JSON file"):
        dc.load_signals(tmp_path / "junk.json")
    with pytest.raises(KeyError, match="unknown signal"):
        sig["ECoG"]


def test_readouts(run):
    model, sig = run
    g = model.geometry
    specs = [dc.readout_spec(m, m) for m in dc.METRICS]
    specs.append(dc.readout_spec("rate_E_A", "spike_rate_hz", column="A", cell_type="E",
                                 t_start_ms=50.0))
    specs.append(dc.readout_spec("csd_B", "mean_CSD", column="B"))
    out = model.compute_readout(sig, specs)
    assert isinstance(out, dc.ReadoutResult) and out.specs == tuple(specs)
    r = out.results
    assert np.isclose(r["spike_rate_hz"], sig.spikes.sum() / 50 / 0.1)
    assert np.isclose(r["max_spike_rate_hz"], sig.spikes.sum(axis=0).max() / 0.1)
    assert np.isclose(r["mean_V_m"], sig.V_m.mean())
    assert np.isclose(r["mean_source"], sig.source.mean())
    assert np.isclose(r["mean_LFP"], sig.LFP.mean()) and np.isclose(r["mean_CSD"], sig.CSD.mean())
    sel = g.select(column="A", cell_type="E")
    assert np.isclose(r["rate_E_A"], sig.spikes[100:, sel].sum() / sel.sum() / 0.05)
    assert np.isclose(r["csd_B"], sig.CSD[:, 4:].mean())
    assert np.isclose(r["burst_frequency_hz"], bursts(np.asarray(sig.spikes), 0.5) / 50 / 0.1)
    d = out.to_dict()
    assert d["units"]["spike_rate_hz"] == "Hz" and d["units"]["mean_V_m"] == "mV"
    assert d["units"]["mean_LFP"] == "proxy" and d["specs"][0]["metric"] == "spike_rate_hz"
    assert out["mean_V_m"] == r["mean_V_m"]
    with pytest.raises(ValueError, match="unknown layer 'L6'"):
        model.compute_readout(sig, dc.readout_spec("x", "mean_V_m", layer="L6"))
    with pytest.raises(ValueError, match="outside the run"):
        model.compute_readout(sig, dc.readout_spec("x", "mean_V_m", t_start_ms=200.0))
    with pytest.raises(ValueError, match=r"window edge 50.03 ms is not on the step grid"):
        model.compute_readout(sig, dc.readout_spec("x", "mean_V_m", t_start_ms=50.03))
    for bad in ({"t_stop_ms": float("inf")}, {"t_start_ms": "abc"}):
        with pytest.raises(ValueError, match=r"must be a finite time in ms"):
            dc.readout_spec("x", "mean_V_m", **bad)
    with pytest.raises(ValueError, match="repeat"):
        model.compute_readout(sig, [dc.readout_spec("x", "mean_V_m")] * 2)
    no_v = dc.Signals(sig.t, units={}, meta=sig.meta, spikes=sig.spikes)
    with pytest.raises(ValueError, match="add the probe mode 'Vm'"):
        model.compute_readout(no_v, dc.readout_spec("x", "mean_V_m"))


def test_bursts_counted():
    raster = np.zeros((100, 2))
    raster[[10, 13, 16, 60, 62], 0] = 1     # two bursts (3 and 2 spikes), dt 1 ms
    raster[[10, 40], 1] = 1                 # none
    assert bursts(raster, 1.0) == 2


def test_simulate_entry_points_agree(run):
    model, sig = run
    spec = dc.simulation(duration_ms=100.0, dt_ms=0.5, seed=2)
    a = dc.simulate(model, spec)
    b = model.simulate(100.0, 0.5, 2)
    assert np.array_equal(a.spikes, sig.spikes) and np.array_equal(b.V_m, sig.V_m)
    c = model.simulate(seed=5)  # another noise draw
    assert not np.array_equal(c.V_m, sig.V_m)


@pytest.mark.parametrize("family, preset", [("lif", "brunel_potjans"), ("adex", "nest_default")])
def test_other_families(family, preset):
    cfg = (dc.configuration().runtime(duration_ms=60.0, dt_ms=0.5)
           .column("A", ["L2/3", "L5"], 20).set_emitter(family, preset)
           .probes(["SPK", "Vm", "source-proxy", "EMM"]))
    model = dc.construct(cfg)
    sig = model.simulate()
    assert sig.units["I_syn"] == "pA" and sig.units["EMM"] == "proxy"
    assert np.all(np.isfinite(sig.V_m)) and sig.spikes.sum() > 0
    assert model.compute_readout(sig, dc.readout_spec("r", "spike_rate_hz"))["r"] > 0


# NEST's "no bound" defaults (V_min = -DBL_MAX) lowered to float32 are -inf, not an overflow
@pytest.mark.filterwarnings("error::RuntimeWarning")
def test_float32_and_plasticity():
    cfg = (dc.configuration().runtime(dtype="float32", duration_ms=50.0, dt_ms=0.5)
           .column("A", ["L4"], 20).connectivity(plasticity=True).probes(["SPK", "Vm"]))
    model = dc.construct(cfg)
    assert any(b.synapse == "stdp_synapse" for b in model.network.wiring.blocks)
    sig = model.simulate()
    assert sig.V_m.dtype == np.float32 and jax.config.jax_enable_x64
    with jax.enable_x64(False):
        with pytest.raises(ValueError, match="64-bit mode is off"):
            dc.construct(cfg.runtime(dtype="float64")).simulate()


def test_a_run_at_another_dt_is_checked_as_construct_checks(run):
    """Audit: model.simulate(dt_ms=...) skipped the checks construct makes for the
    configuration's dt (a delay shorter than the step ran silently)."""
    model, _ = run
    with pytest.raises(ValueError, match=r"delay_ms = 1.5 is shorter than dt_ms = 2.0"):
        model.simulate(duration_ms=100.0, dt_ms=2.0)
    with pytest.raises(ValueError, match=r"noise_dt_ms \(1.0\) must be a whole multiple of "
                                         r"dt_ms \(0.4\)"):
        model.simulate(duration_ms=100.0, dt_ms=0.4)
    # the run's duration is what must be whole steps, not the configuration's (review: 9
    # ms at 0.75 ms was refused as 100 ms is not whole steps of 0.75)
    cfg = (dc.configuration().runtime(seed=2, duration_ms=100.0, dt_ms=0.5)
           .column("A", ["L2/3", "L5"], 10).drive(noise_dt_ms=1.5))
    assert dc.construct(cfg).simulate(duration_ms=9.0, dt_ms=0.75).t.size == 12
