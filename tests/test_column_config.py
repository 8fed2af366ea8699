"""dendrax.column's configuration: immutable and chainable, every bad value refused with an
error naming the problem and the valid choices (no simulation here: fast)."""

import dataclasses

import numpy as np
import pytest

import dendrax
import dendrax.column as dc
from dendrax.column import config as C
from dendrax.column import emitters as E
from dendrax.column import geometry as G


def base():
    return dc.configuration().column("A", ["L2/3", "L4", "L5"], 30)


def test_importable_from_dendrax_and_names():
    assert dendrax.column is dc
    for name in dc.__all__:
        assert hasattr(dc, name), name
    assert dc.Configuration() == dc.configuration()


def test_immutable_and_chainable():
    a = dc.configuration()
    b = a.runtime(seed=3, dtype="float32", duration_ms=50.0, dt_ms=0.25)
    c = b.column("A", ["L4"], 10).column("B", {"L2/3": 0.25, "L5": 0.75}, 8)
    d = c.cell_types({"E": 6, "I": 2}).connectivity(p_EE=0.2).connectivity(w_IE=3.0)
    assert a.seed == 0 and a.columns == () and b.seed == 3 and b.dtype == "float32"
    assert [col.name for col in c.columns] == ["A", "B"] and b.columns == ()
    v = d.connectivity_values()
    assert v["p_EE"] == 0.2 and v["w_IE"] == 3.0 and v["p_II"] == 0.1  # merged, defaults
    assert c.connectivity_kwargs == {}
    e = d.set_emitter("lif")
    assert e.preset == "nest_default" and d.family == "izhikevich"
    f = e.probes("SPK", name="x", electrodes=5)
    assert f.probe.modes == ("SPK",) and f.probe.name == "x" and e.probe.modes == ("SPK", "Vm")
    assert dc.configuration().drive(mean=2.0).drive_values()["mean"] == {"E": 2.0, "I": 2.0}
    assert d.layers == ("L4", "L2/3", "L5")
    with pytest.raises(dataclasses.FrozenInstanceError):
        d.seed = 1  # frozen


@pytest.mark.parametrize("make, needle", [
    (lambda: dc.configuration().column("A", {"L2/3": 0.5, "L4": 0.4}, 10), "must sum to 1"),
    (lambda: dc.configuration().cell_types({"E": 0.7, "I": 0.2}), "must sum to 1"),
    (lambda: dc.configuration().cell_types({"E": 0.8, "X": 0.2}), "unknown cell types ['X']"),
    (lambda: dc.configuration().set_emitter("hodgkin"), "choose one of ['izhikevich'"),
    (lambda: dc.configuration().set_emitter("izhikevich", "resonator"), "'tonic_spiking'"),
    (lambda: dc.configuration().set_emitter("lif", "tonic_spiking"), "'nest_default'"),
    (lambda: dc.configuration().probes(["LFP-proxy", "ECoG"]), "unknown probe modes ['ECoG']"),
    (lambda: dc.configuration().probes([]), "at least one mode"),
    (lambda: dc.configuration().probes(None), "probes takes a list of modes"),
    (lambda: dc.configuration().column("A", {"L4": 1.0}, 10, center_um=5.0), "center_um is (x, y)"),
    (lambda: C.from_dict({"connectivity": 5}), "[connectivity] must be a table"),
    (lambda: C.from_dict({"drive": [1]}), "[drive] must be a table"),
    (lambda: C.from_dict({"column": 3}), "columns are tables"),
    (lambda: dc.configuration().probes("SPK", electrodes=2), "electrodes"),
    (lambda: dc.configuration().connectivity(p_XY=0.1), "unknown connectivity keywords"),
    (lambda: dc.configuration().connectivity(p=1.5), "p must lie in"),
    (lambda: dc.configuration().connectivity(layer_pairs={"L4": 2.0}), "'pre->post'"),
    (lambda: dc.configuration().connectivity(plasticity="yes"), "True or False"),
    (lambda: dc.configuration().drive(amplitude=1.0), "unknown drive keywords"),
    (lambda: dc.configuration().runtime(duration_ms=-5.0), "duration_ms must be a number > 0"),
    (lambda: dc.configuration().runtime(duration_ms=1.0, dt_ms=0.3), "whole multiple"),
    (lambda: dc.configuration().runtime(dtype="float16"), "unknown dtype"),
    (lambda: dc.configuration().runtime(seed=-1), "seed"),
    (lambda: base().column("A", ["L4"], 5), "exists already"),
    (lambda: dc.configuration().column("A", ["L4"], 0), "n must be an integer >= 1"),
    # a raw TypeError before ('int' object is not iterable); a seed no run can take
    (lambda: dc.configuration().column("A", 5, 10), "layers must be a layer name, a list"),
    (lambda: dc.configuration().column("A", None, 10), "layers must be a layer name, a list"),
    (lambda: dc.configuration().runtime(seed=2 ** 64), "seed must be an integer in [0, 4294967296)"),
    (lambda: dc.simulation(dt_ms=float("nan")), "dt_ms must be a finite number > 0"),
    (lambda: dc.readout_spec("r", "spike_rate_hz", t_start_ms=None), "t_start_ms must be a "
                                                                     "finite time"),
    (lambda: dc.configuration().column("A", ["L4", "L4"], 4), "repeat"),
    (lambda: dc.simulation(duration_ms=-1.0), "duration_ms"),
    (lambda: dc.readout_spec("r", "gamma_power"), "unknown metric 'gamma_power'"),
    (lambda: dc.readout_spec("r", "spike_rate_hz", cell_type="P"), "unknown cell type"),
    (lambda: dc.objective("o", "spike_rate_hz", float("nan")), "finite"),
    # a probe: a nested mode was a TypeError (unhashable list); numbers given as text were
    # taken (TOML's duration_ms = "20"), as a bool was (True: 1)
    (lambda: dc.configuration().probes([["SPK"]]), "probes takes a list of modes"),
    (lambda: dc.configuration().runtime(duration_ms="20"), "duration_ms must be a number > 0 "
                                                           "(ms), got '20'"),
    (lambda: dc.configuration().connectivity(p="0.1"), "p must be a number, got '0.1'"),
    (lambda: dc.configuration().connectivity(p=b"0.1"), "p must be a number, got b'0.1'"),
    (lambda: dc.configuration().connectivity(p=True), "p must be a number, got True"),
    (lambda: dc.configuration().drive(mean="5"), "must be a number, got '5'"),
    (lambda: dc.configuration().cell_types({"E": "0.8", "I": 0.2}), "must be a number, got '0.8'"),
    (lambda: dc.objective("o", "spike_rate_hz", "5"), "target and weight must be numbers"),
    # a TypeError ('int' object is not iterable) before
    (lambda: dc.fit(base(), dc.objective("o", "spike_rate_hz", 5.0), params=5),
     "fit params are names of"),
])
def test_bad_values_refused(make, needle):
    with pytest.raises(ValueError, match=None) as err:
        make()
    assert needle in str(err.value), str(err.value)


@pytest.mark.parametrize("cfg, needle", [
    (dc.configuration(), "no column"),
    (base().connectivity(layer_pairs={"L9->L4": 2.0}), "unknown layer 'L9'; layers: ['L2/3'"),
    (base().cell_types({"E": 20, "I": 5}), "n = 30"),
    (base().probes(["SPK", "LFP"]), "physical extracellular"),
    (base().probes(["SPK", "EEG", "MEG"]), "EEG-proxy"),
    (base().set_emitter("multicompartment").probes(["LFP", "LFP-proxy"]),
     "physical signal or its proxy"),
    (base().set_emitter("multicompartment").probes(["SPK", "EMM"]), "point-neuron emitters"),
    (base().runtime(dt_ms=2.0, duration_ms=10.0).connectivity(delay_ms=1.0), "shorter than dt_ms"),
    # the factor at fault is named (it said "layer factor ... inter_layer")
    (base().column("B", ["L4"], 10).connectivity(p=0.5, inter_column=5.0),
     "connection probability EE times inter_column exceeds 1 (max 2.5); lower p_EE or "
     "inter_column"),
    (base().connectivity(p=0.5, inter_layer=3.0), "times its layer factor exceeds 1 (max 1.5); "
                                                  "lower p_EE or the layer_pairs / inter_layer"),
])
def test_whole_configuration_checks(cfg, needle):
    with pytest.raises(ValueError) as err:
        dc.construct(cfg)
    assert needle in str(err.value), str(err.value)


def test_layer_counts_of_one_neuron_each():
    """Whole numbers summing to n are counts, even all ones (as fractions they would sum
    to n, not 1)."""
    cfg = dc.configuration().column("A", {"L4": 1, "L5": 1}, 2)
    assert cfg.columns[0].layers == (("L4", 0.5), ("L5", 0.5))


@pytest.mark.parametrize("layers, n, types, expected", [
    (["L2/3", "L5"], 2, {"E": 1, "I": 1}, (1, 1)),  # docs/columns.md's detailed example
    (["L2/3", "L4", "L5", "L6"], 8, {"E": 4, "I": 4}, (4, 4)),
    (["L2/3", "L4", "L5", "L6"], 4, {"E": 0.8, "I": 0.2}, (3, 1)),
    (["L2/3", "L4", "L5", "L6"], 80, {"E": 0.8, "I": 0.2}, (64, 16)),
    (["L2/3", "L4", "L5"], 9, {"E": 6, "I": 3}, (6, 3)),
])
def test_cell_type_counts_are_the_columns(layers, n, types, expected):
    """Audit: types were split layer by layer, each rounded on its own ({"E": 1, "I": 1}
    on 2 layers of 1 gave 2 E and no I). The column's counts hold exactly, each layer
    keeps its size, and the types spread over the layers in proportion."""
    cfg = dc.configuration().runtime(duration_ms=1.0, dt_ms=0.5).column("A", layers, n)
    g = G.build(cfg.cell_types(types).validate())
    assert ((g.cell_type == "E").sum(), (g.cell_type == "I").sum()) == expected
    sizes = [int((g.layer == name).sum()) for name in layers]
    assert sizes == G.split(n, [1.0] * len(layers)).tolist()  # each layer keeps its size
    for name in layers:  # E spread in proportion: each layer within one of its share
        share = expected[0] * sizes[layers.index(name)] / n
        assert abs(((g.layer == name) & (g.cell_type == "E")).sum() - share) < 1.0


def test_construct_refuses_other_objects():
    with pytest.raises(TypeError, match="Configuration"):
        dc.construct({"columns": []})
    with pytest.raises(TypeError, match="Model"):
        dc.simulate("model")


def test_from_dict_round_trip_and_errors():
    cfg = (base().cell_types({"E": 0.75, "I": 0.25})
           .connectivity(p_EI=0.3, layer_pairs={"L4->L5": 2.0})
           .drive(mean={"E": 4.0}).set_emitter("adex", "adapting").probes(["SPK", "EMM"], name="p"))
    assert C.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown configuration sections"):
        C.from_dict({"colum": []})
    with pytest.raises(ValueError, match=r"\[emitter\]: unknown keys"):
        C.from_dict({"emitter": {"family": "lif", "kind": 1}})


def test_emitter_presets():
    assert set(E.IZHIKEVICH) >= {"tonic_spiking", "phasic_spiking", "tonic_bursting", "chattering",
                                 "fast_spiking", "low_threshold", "regular_spiking",
                                 "intrinsically_bursting"}
    assert E.IZHIKEVICH["regular_spiking"] == (0.02, 0.2, -65.0, 8.0)
    assert E.IZHIKEVICH["fast_spiking"] == (0.1, 0.2, -65.0, 2.0)
    rs, fs = (E.point_emitter("izhikevich", "cortical_eig", t) for t in "EI")
    assert rs.params["a"] == 0.02 and fs.params["a"] == 0.1 and rs.params["U_m"] == -13.0
    assert E.point_emitter("lif", "nest_default", "E").model.name == "iaf_psc_exp"
    assert E.point_emitter("adex", "adapting", "I").params["b"] == 150.0
    m = E.recording_model(E.point_emitter("lif", "nest_default", "E").model.__mro__[1])
    assert "I_syn" in m().recordables and "spike" in m().recordables
    morph = E.pyramidal_morphology()
    assert {s.region for s in morph.sections} == {"soma", "axon", "dend", "apic"}
    assert max(s.points[:, 2].max() for s in morph.sections) > 900  # apical tuft along +z


def test_the_recorded_spike_counts_every_spike_of_a_step():
    """The column's "spike" recording (its SPK and MUA signals) counts each spike of an
    aeif_cond_exp that fires several times in one step (t_ref = 0, NEST's default, as the
    adex presets): the spikes the network sends and records (it said 1 for a burst)."""
    import dendrax as dx
    from dendrax.point.models.aeif import AeifCondExp

    net = dx.Network()
    pop = net.population(E.recording_model(AeifCondExp), 2, I_e=[2e4, 1e4], t_ref=0.0)
    net.record("spike", pop).record_spikes(pop)
    res = dx.simulate(net, 30.0, 1.0)
    counts = np.asarray(res.traces).sum(axis=1)
    assert np.array_equal(counts, [s.size for s in res.spikes]), counts
    assert np.asarray(res.traces).max() >= 2.0  # some steps do hold several


def test_numpy_integers_are_integers_and_bursts_count_each_spike():
    """n and seed as numpy integers (refused: 'must be an integer >= 0, got np.int64(3)');
    a step holding 2 spikes (adex, t_ref = 0) is a burst (its interval is 0)."""
    from dendrax.column.readouts import bursts

    cfg = dc.configuration().column("A", ["L4"], np.int64(10)).runtime(seed=np.int64(3))
    assert cfg.columns[0].n == 10 and cfg.seed == 3 and type(cfg.seed) is int
    raster = np.zeros((20, 2))
    raster[5, 0] = 2.0  # two spikes in one step
    raster[[3, 15], 1] = 1.0  # 12 steps apart at dt 1 ms: no burst
    assert bursts(raster, 1.0) == 1


def test_geometry_layers_and_electrodes():
    cfg = (dc.configuration().column("A", {"L2/3": 0.5, "L5": 0.5}, 20, depth_um=1000.0)
           .column("B", ["L4"], 10).cell_types({"E": 0.8, "I": 0.2}).probes("SPK", electrodes=4))
    g = G.build(cfg)
    assert g.n_neurons == 30 and list(g.cell_type[:8]) == ["E"] * 8
    assert g.layer_bounds[("A", "L2/3")] == (500.0, 1000.0)
    up = g.select(column="A", layer="L2/3")
    assert up.sum() == 10 and np.all(g.positions[up, 2] > 500) and np.all(g.positions[up, 2] < 1000)
    assert g.electrodes.shape == (8, 3) and list(g.csd_electrodes) == [1, 2, 5, 6]
    assert np.allclose(g.electrodes[:4, 2], [875, 625, 375, 125])
    with pytest.raises(ValueError, match="unknown layer 'L6'"):
        g.select(layer="L6")
    with pytest.raises(ValueError, match="unknown column"):
        g.select(column="C")
    assert list(G.split(10, [0.33, 0.33, 0.34])) == [3, 3, 4]


def test_signals_files_that_are_not_signals_are_refused_by_name(tmp_path):
    """A binary file raised a bare UnicodeDecodeError."""
    for name, content in (("garbage.json", b"{not json"), ("binary.json", b"\x00\xff")):
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(ValueError, match=rf"{name}: not a Signals JSON file"):
            dc.Signals.load_json(path)


def test_fit_and_readouts_of_the_wrong_kind_are_named():
    """AttributeErrors before ('str' object has no attribute 'family' / 'require')."""
    with pytest.raises(TypeError, match="fit takes a dendrax.column.Configuration, got str"):
        dc.fit("cfg.toml", dc.objective("o", "spike_rate_hz", 5.0), params="p")
    from dendrax.column.readouts import compute_readout
    with pytest.raises(TypeError, match="readouts are made by readout_spec"):
        compute_readout(None, None, 5)
