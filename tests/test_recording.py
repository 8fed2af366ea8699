"""Recording: many sites as one gathered array, statistics without traces, every k-th
step, runs in pieces streamed to disk, and the refusals. The quantities themselves are
compared with NEURON in test_currents_neuron.py and test_channels_neuron.py."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import dendrax as dx
from dendrax import lowering, simulation, simulator_units, timecourse

T_STOP, DT = 20.0, 0.025


def hh_cell(nseg=4):
    cell = dx.Cell.ball_and_stick(nseg=nseg)
    cell.insert("hh")
    cell.iclamp(cell.soma(0.5), delay=2.0, dur=15.0, amp=0.3)
    cell.synapse("Exp2Syn", cell.section(1)(0.5), spike_times=[3.0, 9.0], weight=0.005)
    return cell


@pytest.fixture(scope="module")
def reference():
    """Full traces of v, hh.m, ina and Exp2Syn.g at every segment / the synapse."""
    cell = hh_cell()
    for name in ("v", "hh.m", "ina"):
        cell.record(name, cell.segments())
    cell.record("Exp2Syn.g", cell.section(1)(0.5))
    cell.record_spikes()
    return cell, dx.simulate(cell, T_STOP, DT)


def test_statistics_equal_the_trace_reductions(reference):
    cell, full = reference
    stats = hh_cell()
    kinds = ("max", "min", "mean")
    for how in kinds:
        for name in ("v", "hh.m", "ina"):
            stats.record(name, stats.segments(), reduce=how)
        stats.record("Exp2Syn.g", stats.section(1)(0.5), reduce=how)
    res = dx.simulate(stats, T_STOP, DT)
    assert np.asarray(res.traces).shape == (0, res.t.shape[0])  # no trace kept
    assert len(res.stats) == len(res.stat_labels) == len(res.stat_units) == 3 * len(full.labels)
    reduce = {"max": np.max, "min": np.min, "mean": np.mean}
    for (name, loc, how), unit, value in zip(res.stat_labels, res.stat_units, np.asarray(res.stats)):
        trace = np.asarray(full[name, loc])
        assert value == pytest.approx(reduce[how](trace), rel=1e-12, abs=1e-15), (name, loc, how)
        assert res[name, loc, how] == value
        assert unit == full.units[full.labels.index((name, loc))]
    assert np.ptp(np.asarray(res.stats)) > 1.0  # not vacuous: the cell fires


def test_record_every_keeps_every_kth_sample(reference):
    cell, full = reference
    for k in (2, 8):
        res = dx.simulate(cell, T_STOP, DT, record_every=k)
        np.testing.assert_allclose(res.t, np.asarray(full.t)[::k])
        np.testing.assert_allclose(res.traces, np.asarray(full.traces)[:, ::k], rtol=0, atol=1e-6)  # round-off: a differently fused loop
        assert [s.tolist() for s in res.spikes] == [s.tolist() for s in full.spikes]
        assert res.meta["record_every"] == k


@pytest.mark.parametrize("chunk", [1, 77, 800])
def test_a_run_in_pieces_equals_one_run(reference, chunk, tmp_path):
    cell, full = reference
    res = dx.simulate(cell, T_STOP, DT, chunk=chunk)
    np.testing.assert_allclose(res.traces, full.traces, rtol=0, atol=1e-6)  # round-off: a differently fused loop
    assert [s.tolist() for s in res.spikes] == [s.tolist() for s in full.spikes]
    assert np.array_equal(np.asarray(res.raster), np.asarray(full.raster))
    path = tmp_path / "run.npy"
    streamed = dx.simulate(cell, T_STOP, DT, chunk=4 * chunk, stream=str(path), record_every=4)
    on_disk = np.load(path)
    assert on_disk.shape == (len(full.t[::4]), len(full.labels))
    np.testing.assert_allclose(on_disk.T, np.asarray(full.traces)[:, ::4], rtol=0, atol=1e-6)  # round-off: a differently fused loop
    assert isinstance(streamed.traces.base, np.memmap) or isinstance(streamed.traces, np.memmap)


def test_a_stream_to_a_used_path_leaves_earlier_results_as_they_were(reference, tmp_path):
    """A streamed Result maps its file: a later run streamed to the same path (another run,
    the run that continues it, a shorter one) writes a new file, and the earlier Result
    keeps its traces (they were overwritten in place; a shorter run made reading them a
    SIGBUS)."""
    cell, full = reference
    path = str(tmp_path / "run.npy")
    first = dx.simulate(cell, T_STOP, DT, stream=path)
    kept = np.array(first.traces)
    later = dx.simulate(cell, T_STOP, DT, stream=path, v_init=-70.0)
    np.testing.assert_array_equal(np.asarray(first.traces), kept)
    assert not np.array_equal(np.asarray(later.traces), kept)
    dx.simulate(cell, 1.0, DT, stream=path)  # shorter
    np.testing.assert_array_equal(np.asarray(first.traces), kept)
    resumed = dx.simulate(cell, T_STOP + 1.0, DT, resume=first, stream=path)
    np.testing.assert_array_equal(np.asarray(first.traces), kept)
    assert np.asarray(resumed.traces).shape[-1] == round(1.0 / DT)
    assert [p.name for p in tmp_path.iterdir()] == ["run.npy"]
    # a link is followed (its target gets the new file), and the file is made as open()
    # makes one (a temporary file's 0600 mode once stayed)
    (tmp_path / "data").mkdir()
    link = tmp_path / "link.npy"
    link.symlink_to(tmp_path / "data" / "real.npy")
    linked = dx.simulate(cell, 1.0, DT, stream=str(link))
    assert link.is_symlink() and (tmp_path / "data" / "real.npy").is_file()
    np.testing.assert_array_equal(np.load(link).T, np.asarray(linked.traces))
    with open(tmp_path / "plain", "wb"):
        pass
    assert (tmp_path / "run.npy").stat().st_mode == (tmp_path / "plain").stat().st_mode


def test_statistics_and_spikes_survive_pieces(reference):
    cell = hh_cell()
    cell.record("v", cell.segments(), reduce="max")
    cell.record("v", cell.soma(0.5), reduce="mean")
    cell.record_spikes()
    one = dx.simulate(cell, T_STOP, DT)
    pieces = dx.simulate(cell, T_STOP, DT, chunk=333)
    np.testing.assert_allclose(pieces.stats, one.stats, rtol=1e-12)
    assert [s.tolist() for s in pieces.spikes] == [s.tolist() for s in one.spikes]
    assert one.spikes[0].size >= 2


def test_network_recordings_in_pieces():
    cell = hh_cell(nseg=2)
    net = dx.Network.replicate(cell, 3)
    net.connect(net.cell(0).soma(0.5), net.cell(1).section(1)(0.5), "Exp2Syn", weight=0.02,
                delay=2.0)
    net.record_spikes()
    net.record("v", [net.cell(i).soma(0.5) for i in range(3)])
    net.record("Exp2Syn[1].i", net.cell(1).section(1)(0.5))
    net.record("v", net.cell(1).segments(), reduce="max")
    one = dx.simulate(net, T_STOP, DT)
    pieces = dx.simulate(net, T_STOP, DT, chunk=250)
    np.testing.assert_allclose(pieces.traces, one.traces, rtol=0, atol=1e-6)  # round-off: a differently fused loop
    np.testing.assert_allclose(pieces.stats, one.stats, rtol=1e-12)
    assert [s.tolist() for s in pieces.spikes] == [s.tolist() for s in one.spikes]
    assert one.units == ("mV", "mV", "mV", "nA")
    assert net.location_name(one.labels[3][1]) == "cell[1].dend(0.5)"


def _n_equations(cell):
    model, params, layout = lowering.lower(cell)
    core = simulator_units.core_params(layout, params, v_init=-65.0, celsius=6.3)
    drv = timecourse.drive(layout, 10, DT)
    jaxpr = jax.make_jaxpr(lambda c: simulation.run(model, c, drv, DT))(core)
    return len(str(jaxpr).splitlines())


def test_program_size_does_not_grow_with_the_number_of_sites():
    """Sites are gathered in one array per quantity: 1 site or every segment, or the same
    sites added one by one, compile the same program (compile time stays flat)."""
    sizes = []
    for n_sites in (1, 40, 400):
        cell = dx.Cell.ball_and_stick(nseg=399)
        cell.insert("hh")
        cell.record("v", cell.segments()[:n_sites])
        cell.record("hh.m", cell.segments()[:n_sites])
        sizes.append(_n_equations(cell))
    one_by_one = dx.Cell.ball_and_stick(nseg=399)
    one_by_one.insert("hh")
    for loc in one_by_one.segments():
        one_by_one.record("v", loc)
    # (a reordering gather may appear: a constant, not a growth)
    assert max(sizes) - min(sizes) <= 4 and _n_equations(one_by_one) <= max(sizes), sizes


@settings(max_examples=15, deadline=None)
@given(k=st.integers(1, 6), pieces=st.integers(1, 7), how=st.sampled_from(["max", "min", "mean"]))
def test_pieces_and_sampling_property(k, pieces, how):
    """Any record_every and any piece size give the samples and statistics of one full run."""
    cell = dx.Cell.ball_and_stick(nseg=2)
    cell.insert("hh")
    cell.iclamp(cell.soma(0.5), delay=0.5, dur=2.0, amp=0.5)
    cell.record("v", cell.segments())
    cell.record("v", cell.segments(), reduce=how)
    n_steps = 12 * k
    full = dx.simulate(cell, n_steps * DT, DT)
    res = dx.simulate(cell, n_steps * DT, DT, record_every=k, chunk=k * pieces)
    np.testing.assert_allclose(res.traces, np.asarray(full.traces)[:, ::k], rtol=0, atol=1e-6)  # round-off: a differently fused loop
    np.testing.assert_allclose(res.stats, full.stats, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kwargs,message", [
    ({"record_every": 7}, "not a multiple of record_every"),
    ({"record_every": 0}, "record_every must be a positive"),
    ({"record_every": 2, "checkpoint": 5}, "must be a multiple of record_every"),
    ({"stream": "run.csv"}, "stream must name a .npy file"),
    ({"chunk": 100, "checkpoint": 10}, "do not combine"),
    ({"chunk": 3, "record_every": 2}, "chunk must be a positive multiple"),
])
def test_refusals(kwargs, message):
    cell = hh_cell(nseg=1)
    cell.record("v")
    with pytest.raises(ValueError, match=message):
        dx.simulate(cell, 10 * DT * 4, DT, **kwargs)


@pytest.mark.parametrize("name,where,message", [
    ("v", None, None),
    (None, "soma", r"what to record is a name such as 'v' or 'hh.m', got None"),
    (3, "soma", r"what to record is a name such as 'v' or 'hh.m', got 3"),
    ("hh.q", "soma", r"hh has no state, current, assigned or solved variable 'q'; record one of "
                     r"\['gk', 'gna', 'h', 'ik', 'il', 'ina', 'm', 'n'\]"),
    ("ica", "soma", "no mechanism there uses ca"),
    ("eca", "soma", "no mechanism there uses ca"),
    ("cao", "soma", "no mechanism there uses ca"),
    ("vclamp.i", "soma", "no vclamp there"),
    ("Exp2Syn.x", "syn", r"Exp2Syn has no state or assigned variable 'x'; record one of \['A', 'B', 'factor', 'g', 'i'\]"),
    ("i_membranes", "soma", "cannot record 'i_membranes'"),
    ("gna_hh", "soma", r"cannot record 'gna_hh' \(NEURON's gna_hh is hh.gna here\)"),
])
def test_what_cannot_be_recorded(name, where, message):
    cell = hh_cell(nseg=1)
    loc = cell.section(1)(0.5) if where == "syn" else cell.soma(0.5)
    if message is None:
        cell.record(name, loc)
        with pytest.raises(ValueError, match="reduce must be one of"):
            cell.record(name, loc, reduce="median")
        return
    with pytest.raises(ValueError, match=message):
        cell.record(name, loc)


def test_location_names():
    cell = dx.Cell.from_sections([
        {"length": 20.0, "diam": 20.0, "parent": -1, "region": "soma"},
        {"length": 100.0, "diam": 1.0, "parent": 0, "region": "apic"},
        {"length": 100.0, "diam": 1.0, "parent": 1, "region": "apic"},
        {"length": 100.0, "diam": 1.0, "parent": 0, "region": "dend"}])
    assert cell.location_name(cell.soma(0.5)) == "soma(0.5)"
    assert cell.location_name(cell.section(2)(1.0)) == "apic[1](1)"
    assert cell.location_name(cell.section(3)(0.25)) == "dend(0.25)"
    from dendrax.spec import parse_location

    for loc in (cell.section(2)(1.0), cell.section(1)(0.3), cell.section(3)(0.25)):
        assert parse_location(cell, cell.location_name(loc)) == loc  # round trip


def test_result_access_refuses_what_was_not_recorded(reference):
    """An index past the traces is an error (JAX would clamp it to the last trace), and a
    rate over a window outside the run is refused (it would be diluted by time without
    spikes)."""
    cell, res = reference
    n = len(res.labels)
    np.testing.assert_array_equal(res[n - 1], res.traces[n - 1])
    np.testing.assert_array_equal(res[-n], res.traces[0])
    for key in (n, -n - 1):
        with pytest.raises(IndexError, match=rf"trace {key} out of range: {n} traces were recorded"):
            res[key]
    for key in (1.5, None, slice(0, 2), ("v",)):
        with pytest.raises(KeyError, match=r"res\[\.\.\.\] takes a trace index"):
            res[key]
    np.testing.assert_array_equal(res[["v", cell.soma(0.125)]], res["v", cell.soma(0.125)])
    assert res.rates(0.0, T_STOP)[0] == res.rates()[0] == len(res.spikes[0]) * 1e3 / T_STOP
    for window in ({"t_start": -90.0}, {"t_stop": 1000.0}, {"t_stop": float("inf")},
                   {"t_start": "a"}):
        with pytest.raises(ValueError, match=rf"{next(iter(window))} must be a time within the "
                                             rf"run, 0 to {T_STOP:g} ms"):
            res.rates(**window)


def test_units_of_synapse_quantities():
    """A synapse's "g" and "i" are uS and nA whether "g" is its state, its assigned value
    (an NMDA synapse's conductance with its Mg block) or the di/dv the step computes;
    another quantity is what ``units`` says, else dimensionless."""
    import jax.numpy as jnp

    from dendrax.mechanisms.base import Synapse

    class StateG(Synapse):  # the docs' single-exponential synapse: a state named g
        name = "state_g"
        params = {"tau": 2.0, "e": 0.0}
        units = {"tau": "ms", "e": "mV"}
        states = {"g": 0.0, "x": 0.0}

        def advance(self, v, states, params, env, dt):
            return {"g": states["g"] * jnp.exp(-dt / params["tau"]), "x": states["x"]}

        def on_spike(self, states, params, weight):
            return {"g": states["g"] + weight, "x": states["x"]}

        def current(self, v, states, params):
            return states["g"] * (v - params["e"])

        def assigned(self, v, states, params):
            return {"y": states["x"]}

    class AssignedG(StateG):  # a conductance given by ``assigned``, no unit declared
        name = "assigned_g"
        states = {"s": 0.0}

        def advance(self, v, states, params, env, dt):
            return {"s": states["s"] * jnp.exp(-dt / params["tau"])}

        def on_spike(self, states, params, weight):
            return {"s": states["s"] + weight}

        def current(self, v, states, params):
            return states["s"] * (v - params["e"])

        def assigned(self, v, states, params):
            return {"g": states["s"]}

    cell = dx.Cell.ball_and_stick(nseg=1)
    cell.insert("hh")
    loc = cell.section(1)(0.5)
    cell.synapse(StateG, loc, spike_times=[1.0])
    cell.synapse(AssignedG, loc, spike_times=[1.0])
    cell.synapse("Exp2Syn", loc, spike_times=[1.0])
    wanted = {"state_g.g": "uS", "state_g.i": "nA", "state_g.x": "1", "state_g.y": "1",
              "assigned_g.g": "uS", "assigned_g.s": "1", "Exp2Syn.g": "uS", "Exp2Syn.i": "nA"}
    assert {name: cell.check_record(name, loc) for name in wanted} == wanted
    for name in wanted:
        cell.record(name, loc)
    res = dx.simulate(cell, 3.0, DT)
    assert list(res.units) == list(wanted.values())


def test_a_networks_traces_come_in_the_documented_groups():
    """Result.labels: each cell's own recordings (cell 0's first), the network's of cells,
    of point neurons, then readouts; each group in the order added (docs/networks.md)."""
    cell = dx.Cell.ball_and_stick(nseg=[1, 3]).insert("hh")
    net = dx.Network.replicate(cell, 2)
    pop = net.population("iaf_psc_alpha", 1, I_e=450.0, name="p")
    probe = dx.Electrodes(np.array([[0.0, 50.0, 0.0]]), sigma=0.3)
    net.record_extracellular(probe)
    net.record("V_m", pop)
    net.record("v", net.cell(1).soma(0.5))
    net.record("v", net.cell(0).section(1)(0.5))
    net.cell(1).record("hh.m", net.cell(1).soma(0.5))
    net.cell(0).record("v", net.cell(0).soma(0.5))
    res = dx.simulate(net, 2.0, 0.025)
    assert [(n, net.location_name(loc)) if n != "lfp" else n for n, loc in res.labels] == [
        ("v", "cell[0].soma(0.5)"), ("hh.m", "cell[1].soma(0.5)"),
        ("v", "cell[1].soma(0.5)"), ("v", "cell[0].dend(0.5)"), ("V_m", "p[0]"), "lfp"]


def test_a_point_neurons_trace_is_found_by_its_neuron():
    """res[name, pop[i]] reads what net.record(name, pop) recorded of neuron i (it raised an
    AttributeError); several neurons, or one not recorded, give a KeyError saying so."""
    from dendrax.wiring import NeuronRef

    net = dx.Network()
    exc = net.population("iaf_psc_alpha", 3, I_e=[300.0, 400.0, 500.0], name="exc")
    net.record("V_m", exc[[0, 2]])
    res = dx.simulate(net, 5.0, 0.1)
    np.testing.assert_array_equal(np.asarray(res["V_m", exc[2]]),
                                  np.asarray(res["V_m", NeuronRef(0, 2)]))
    assert not np.array_equal(np.asarray(res["V_m", exc[2]]), np.asarray(res["V_m", exc[0]]))
    with pytest.raises(KeyError, match="reads one neuron's trace; got 2 neurons"):
        res["V_m", exc[0:2]]
    for missing in (("V_m", exc[1]), ("v", exc[0]), ("V_m", exc[0], "max")):
        with pytest.raises(KeyError, match="was not recorded"):
            res[missing]
