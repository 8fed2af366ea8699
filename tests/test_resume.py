"""Resumed runs (``simulate(..., resume=res)``): NEURON's continuerun, NEST's next Simulate.

A run resumed in steps is the run in one piece, to round-off (traces, statistics; spikes
exactly; for cells, networks with spikes in flight, point neurons with Poisson input: XLA
compiles each length as its own program, whose fused operations may round differently,
~1e-11 mV); a parameter
changed between the two runs acts from then on, as in NEURON (compared with continuerun);
a resumed run differentiates like any other; what cannot be resumed is refused.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import dendrax as dx

DT = 0.025


def _cell():
    cell = dx.Cell.ball_and_stick(nseg=[1, 5]).insert("hh")
    cell.iclamp(cell.soma(0.5), delay=5.0, dur=30.0, amp=0.3)
    cell.synapse("Exp2Syn", cell.section(1)(0.7), spike_times=[3.0, 12.0, 21.0], weight=0.004)
    cell.record("v", cell.soma(0.5)).record("hh.m", cell.section(1)(0.5))
    cell.record("Exp2Syn.g", cell.section(1)(0.7))
    cell.record("v", cell.segments(), reduce="max").record("hh.ina", cell.soma(0.5), reduce="mean")
    cell.record_spikes()
    return cell


CELL = _cell()
WHOLE = {k: dx.simulate(CELL, 40.0, DT, celsius=10.0, record_every=k) for k in (1, 4)}


def _joined(parts):
    return np.concatenate([np.asarray(p.traces) for p in parts], axis=1)


def _same(a, b):
    """Equal to round-off (measured <= 2e-11 mV; ~1e-13 for gates and conductances)."""
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-10)


@settings(max_examples=6, deadline=None)
@given(split=st.integers(1, 399), record_every=st.sampled_from([1, 4]),
       chunk=st.sampled_from([None, 120]))
def test_a_run_resumed_in_steps_is_the_run_in_one_piece(split, record_every, chunk):
    whole = WHOLE[record_every]
    t1 = split * record_every * DT  # the samples of the two parts fall on the whole run's
    first = dx.simulate(CELL, t1, DT, celsius=10.0, record_every=record_every)
    second = dx.simulate(CELL, 40.0, resume=first, record_every=record_every, chunk=chunk)
    _same(_joined([first, second]), np.asarray(whole.traces))
    np.testing.assert_array_equal(np.concatenate([first.t, second.t]), np.asarray(whole.t))
    # statistics are over the whole run from t = 0; spikes are each part's
    _same(np.asarray(second.stats), np.asarray(whole.stats))
    np.testing.assert_array_equal(np.concatenate([first.spikes[0], second.spikes[0]]),
                                  whole.spikes[0])
    assert second.meta["t_start"] == pytest.approx(t1) and second.meta["celsius"] == 10.0
    assert second.raster.shape == (whole.raster.shape[0] - round(t1 / DT), 1)
    assert whole.spikes[0].size >= 3  # not vacuous


def test_three_parts_and_rates_of_a_resumed_run():
    a = dx.simulate(CELL, 10.0, DT, celsius=10.0)
    b = dx.simulate(CELL, 25.0, resume=a)
    c = dx.simulate(CELL, 40.0, resume=b)
    _same(_joined([a, b, c]), np.asarray(WHOLE[1].traces))
    whole = WHOLE[1]
    np.testing.assert_array_equal(c.rates(), whole.rates(25.0))
    with pytest.raises(ValueError, match="within the run, 25 to 40 ms"):
        c.rates(10.0)


def test_a_network_resumed_with_spikes_in_flight():
    """Spikes sent before the split arrive after it (delays of 3-6 ms)."""
    cell = dx.Cell.ball_and_stick(nseg=[1, 3]).insert("hh")
    net = dx.Network.replicate(cell, 3)
    net.cell(0).iclamp(net.cell(0).soma(0.5), delay=1.0, dur=30.0, amp=0.4)
    for pre, post, delay in ((0, 1, 3.0), (1, 2, 6.0), (2, 0, 4.5)):
        net.connect(net.cell(pre).soma(0.5), net.cell(post).section(1)(0.5), "Exp2Syn",
                    weight=0.02, delay=delay)
    net.record("v", [net.cell(i).soma(0.5) for i in range(3)])
    net.record_spikes()
    whole = dx.simulate(net, 60.0, DT)
    assert all(s.size for s in whole.spikes)  # every cell fires
    # split 1 ms after cell 0's first spike: its spike is still on its way to cell 1
    split = float(whole.spikes[0][0]) + 1.0
    first = dx.simulate(net, split, DT)
    second = dx.simulate(net, 60.0, resume=first)
    _same(_joined([first, second]), np.asarray(whole.traces))
    for q in range(3):
        np.testing.assert_array_equal(np.concatenate([first.spikes[q], second.spikes[q]]),
                                      whole.spikes[q])


def test_point_neurons_with_poisson_input_resumed_as_nest_simulates_twice():
    net = dx.Network()
    noise = net.population("poisson_generator", 4, rate=8000.0)
    pop = net.population("iaf_psc_alpha", 4)
    net.connect(noise, pop, "static", weight=10.0, delay=1.0, one_to_one=True)
    net.record("V_m", pop)
    net.record_spikes(pop)
    whole = dx.simulate(net, 200.0, 0.1, key=3)
    first = dx.simulate(net, 77.0, 0.1, key=3)
    second = dx.simulate(net, 200.0, resume=first)  # its key goes on
    _same(_joined([first, second]), np.asarray(whole.traces))
    for a, b, w in zip(first.spikes, second.spikes, whole.spikes):
        np.testing.assert_array_equal(np.concatenate([a, b]), w)
    assert sum(s.size for s in whole.spikes) > 10


def test_a_parameter_changed_between_runs_as_neuron_continuerun():
    neuron = pytest.importorskip("neuron")
    h = neuron.h
    h.load_file("stdrun.hoc")
    cell = dx.Cell.ball_and_stick(nseg=[1, 5]).insert("hh")
    cell.iclamp(cell.soma(0.5), delay=2.0, dur=40.0, amp=0.25)
    cell.record("v", cell.soma(0.5)).record("v", cell.section(1)(0.9))
    first = dx.simulate(cell, 15.0, DT)
    params = cell.params
    gnabar = params["channels"]["hh"]["gnabar"]
    params["channels"]["hh"]["gnabar"] = gnabar * 0.6
    params["stimuli"]["iclamp"]["amp"] = jnp.asarray([0.4])
    second = dx.simulate(cell, 40.0, params=params, resume=first)

    from neuron_model import neuron_from_morphology

    soma, dend = neuron_from_morphology(cell.morphology, [1, 5])  # the same 3-D points
    for s in (soma, dend):
        s.insert("hh")
    h.usetable_hh = 0
    stim = h.IClamp(soma(0.5))
    stim.delay, stim.dur, stim.amp = 2.0, 40.0, 0.25
    vs = [h.Vector().record(soma(0.5)._ref_v), h.Vector().record(dend(0.9)._ref_v)]
    h.cvode_active(0)
    h.secondorder, h.dt, h.celsius = 0, DT, 6.3
    h.finitialize(-65.0)
    h.continuerun(15.0)
    for s in (soma, dend):
        for seg in s:
            seg.hh.gnabar *= 0.6
    stim.amp = 0.4
    h.continuerun(40.0)
    ref = np.array([np.array(v) for v in vs])
    out = _joined([first, second])
    assert out.shape == ref.shape
    dv = np.abs(out - ref)
    # dendrax runs NEURON's scheme: round-off only (docs/cells.md: ~1e-10 mV)
    print(f"resumed vs NEURON continuerun: mean {dv.mean():.2g}, max {dv.max():.2g} mV")
    assert dv.mean() < 5e-11 and dv.max() < 1e-9, (dv.mean(), dv.max())  # 7.9e-12, 1.9e-10
    changed = dx.simulate(cell, 40.0, DT, params=params)  # the change matters
    assert np.abs(np.asarray(changed.traces) - out).max() > 1.0


def test_a_synapse_time_constant_changed_between_runs_as_neuron_continuerun():
    """NEURON's Exp2Syn computes its peak factor (and clamps tau1) in INITIAL: a tau1 set
    between continuerun calls decays A from then on, but events keep the factor of the
    start (dendrax recomputed it: 6 mV off). (An imported exp2syn.mod keeps INITIAL's tau1
    instead: docs/nmodl.md.)"""
    neuron = pytest.importorskip("neuron")
    h = neuron.h
    h.load_file("stdrun.hoc")
    from neuron_model import neuron_from_morphology

    def ours(synapse):
        cell = dx.Cell.from_sections([{"length": 20.0, "diam": 20.0, "region": "soma"}])
        cell.insert("pas").synapse(synapse, cell.soma(0.5), spike_times=[2.0, 8.0],
                                   weight=0.01, tau1=0.5, tau2=3.0)
        cell.record("v", cell.soma(0.5))
        first = dx.simulate(cell, 5.0, DT)
        params = cell.params
        name = next(iter(params["synapses"]))
        params["synapses"][name]["tau1"] = jnp.ones_like(params["synapses"][name]["tau1"])
        return cell, _joined([first, dx.simulate(cell, 15.0, params=params, resume=first)])

    cell, out = ours("Exp2Syn")
    (soma,) = neuron_from_morphology(cell.morphology, [1])
    soma.insert("pas")
    syn = h.Exp2Syn(soma(0.5))
    syn.tau1, syn.tau2 = 0.5, 3.0
    con = h.NetCon(None, syn)
    con.weight[0], con.delay = 0.01, 0.0
    events = h.FInitializeHandler(lambda: [con.event(2.0), con.event(8.0)])
    v = h.Vector().record(soma(0.5)._ref_v)
    h.cvode_active(0)
    h.secondorder, h.dt, h.celsius = 0, DT, 6.3
    h.finitialize(-65.0)
    h.continuerun(5.0)
    syn.tau1 = 1.0
    h.continuerun(15.0)
    dv = np.abs(out[0] - np.array(v))
    assert dv.max() < 1e-9, dv.max()  # 7.8e-13
    del events


def test_a_run_with_its_own_params_resumes_with_them():
    """A resumed run takes its values from params: leaving them out after a run with other
    params would silently change the model, so it is refused."""
    params = CELL.params
    params["channels"]["hh"]["gnabar"] = params["channels"]["hh"]["gnabar"] * 0.3
    whole = dx.simulate(CELL, 20.0, DT, params=params, celsius=10.0)
    first = dx.simulate(CELL, 8.0, DT, params=params, celsius=10.0)
    with pytest.raises(ValueError, match="ran with other params than this target's own"):
        dx.simulate(CELL, 20.0, resume=first)
    _same(_joined([first, dx.simulate(CELL, 20.0, params=params, resume=first)]),
          np.asarray(whole.traces))


def test_a_resumed_run_differentiates():
    cell = dx.Cell.ball_and_stick(nseg=[1, 3]).insert("hh")
    cell.iclamp(cell.soma(0.5), delay=1.0, dur=20.0, amp=0.3)
    cell.record("v", cell.soma(0.5))
    first = dx.simulate(cell, 5.0, DT)

    def loss(scale):
        params = cell.params
        params["channels"]["hh"]["gkbar"] = params["channels"]["hh"]["gkbar"] * scale
        res = dx.simulate(cell, 12.0, params=params, resume=first)
        return jnp.mean(res.traces)

    value, grad = jax.jit(jax.value_and_grad(loss))(1.0)
    eps = 1e-5
    fd = (loss(1.0 + eps) - loss(1.0 - eps)) / (2 * eps)
    assert np.isfinite(value) and abs(grad - fd) < 1e-5 * max(abs(fd), 1.0), (grad, fd)
    assert abs(fd) > 1e-3


def test_what_a_resumed_run_keeps_from_its_start():
    """Delays (spikes in flight keep theirs: NEURON's events), SEClamp durations (NEURON's
    tc2, tc3 from INITIAL) and plastic weights (the run's state) cannot change between the
    runs: refused rather than delivering a spike twice, or never."""
    cell = dx.Cell.ball_and_stick(nseg=[1, 3]).insert("hh")
    cell.synapse("Exp2Syn", cell.section(1)(0.5), spike_times=[9.0, 12.0], weight=0.004,
                 delay=0.0)
    cell.vclamp(cell.soma(0.5), amp=[-65.0, -50.0, -65.0], dur=[5.0, 20.0, 100.0], rs=1e9)
    cell.record("v", cell.soma(0.5))
    first = dx.simulate(cell, 10.0, DT)
    later = cell.params
    later["synapses"]["Exp2Syn"]["delay"] = jnp.asarray([3.0])
    with pytest.raises(ValueError, match="keeps the delays of the run it continues"):
        dx.simulate(cell, 20.0, params=later, resume=first)
    later = cell.params
    later["stimuli"]["vclamp"]["dur"] = jnp.asarray([[5.0, 10.0, 100.0]])
    with pytest.raises(ValueError, match="keeps the SEClamp durations"):
        dx.simulate(cell, 20.0, params=later, resume=first)
    later = cell.params  # a weight (of the spike at 12 ms), an amplitude: act from then on
    later["synapses"]["Exp2Syn"]["weight"] = jnp.asarray([0.008])
    later["stimuli"]["vclamp"]["amp"] = jnp.asarray([[-65.0, -40.0, -65.0]])
    changed = np.asarray(dx.simulate(cell, 20.0, params=later, resume=first).traces)
    same = np.asarray(dx.simulate(cell, 20.0, resume=first).traces)
    assert np.isfinite(changed).all() and np.abs(changed - same).max() > 1.0

    net = dx.Network()
    noise = net.population("poisson_generator", 2, rate=500.0)
    relay = net.population("parrot_neuron", 2)
    pop = net.population("iaf_psc_alpha", 2)
    net.connect(noise, relay, "static", weight=1.0, delay=1.0, one_to_one=True)
    net.connect(relay, pop, "stdp_synapse", weight=50.0, delay=1.0)
    net.record_spikes(pop)
    a = dx.simulate(net, 50.0, 0.1)
    learned = net.params
    learned["synapses"]["stdp_synapse"]["weight"] = jnp.full(4, 10.0)
    with pytest.raises(ValueError, match=r"keeps the plastic weights .* set it in "
                                         r"res.state.plastic"):
        dx.simulate(net, 100.0, params=learned, resume=a)
    traced_key = jax.jit(lambda k: dx.simulate(net, 50.0, 0.1, key=k))(jax.random.PRNGKey(3))
    with pytest.raises(ValueError, match="traced key .*: give the same key again"):
        dx.simulate(net, 100.0, resume=traced_key)


def test_the_rates_of_resumed_parts_add_up():
    """A point neuron spikes at the end of its update (a spike at a part's end is that
    part's): its window is (t_start, t_stop], NEST's; a cell's [t_start, t_stop)."""
    net = dx.Network()
    gen = net.population("spike_generator", 1, spike_times=[[20.0, 40.0, 60.0]])
    relay = net.population("parrot_neuron", 1)
    net.connect(gen, relay, "static", weight=1.0, delay=0.1)
    net.record_spikes(relay)
    whole = dx.simulate(net, 80.0, 0.1)
    first = dx.simulate(net, 40.1, 0.1)
    second = dx.simulate(net, 80.0, resume=first)
    np.testing.assert_allclose(whole.spikes[0], [20.1, 40.1, 60.1])
    assert first.spikes[0][-1] == pytest.approx(40.1) and second.spikes[0].size == 1
    counts = first.rates() * 40.1 / 1e3 + second.rates() * (80.0 - 40.1) / 1e3
    np.testing.assert_allclose(counts, [3.0])
    np.testing.assert_allclose(whole.rates(40.1), second.rates())


def test_a_batch_resumes_one_run():
    """simulate_batch goes on from one run's state for every member (its dt by default)."""
    from dendrax.training.batch import simulate_batch

    cell = dx.Cell.ball_and_stick(nseg=[1, 3]).insert("hh")
    cell.iclamp(cell.soma(0.5), delay=1.0, dur=20.0, amp=0.3)
    cell.record("v", cell.soma(0.5))
    first = dx.simulate(cell, 5.0, 0.05)
    n = cell.params["channels"]["hh"]["gnabar"].shape[0]
    gna = jnp.asarray([0.1, 0.12])[:, None] * jnp.ones((1, n))
    out = simulate_batch(cell, {"channels": {"hh": {"gnabar": gna}}}, 10.0, resume=first)
    one = dx.simulate(cell, 10.0, resume=first)
    assert out.shape == (2, 1, 100)
    np.testing.assert_allclose(np.asarray(out[1]), np.asarray(one.traces), rtol=0, atol=1e-10)


def test_what_cannot_be_resumed():
    first = dx.simulate(CELL, 10.0, DT, celsius=10.0)
    with pytest.raises(ValueError, match="v_init does not apply"):
        dx.simulate(CELL, 20.0, v_init=-70.0, resume=first)
    with pytest.raises(ValueError, match=r"keeps the time step .* \(dt = 0.025 ms\)"):
        dx.simulate(CELL, 20.0, 0.05, resume=first)
    with pytest.raises(ValueError, match="ended at 10 ms .*, got t_stop = 10"):
        dx.simulate(CELL, 10.0, resume=first)
    with pytest.raises(ValueError, match="by at least one step"):
        dx.simulate(CELL, 10.0 + DT / 4, resume=first)
    with pytest.raises(ValueError, match="a run of another cell or network"):
        dx.simulate(_cell().record("v", CELL.section(1)(0.1)), 20.0, resume=first)
    with pytest.raises(ValueError, match="the Result of a simulate"):
        dx.simulate(CELL, 20.0, resume=first.traces)
    stateless = dx.Result(first.t, first.traces, first.labels, meta=first.meta)
    with pytest.raises(ValueError, match="got a Result without the final state of a run"):
        dx.simulate(CELL, 20.0, resume=stateless)
    batch = jax.vmap(lambda g: dx.simulate(CELL, 10.0, DT, celsius=10.0, params={
        **CELL.params, "channels": {**CELL.params["channels"], "hh": {
            **CELL.params["channels"]["hh"], "gnabar": CELL.params["channels"]["hh"]["gnabar"] * g}}}))(
        jnp.asarray([0.9, 1.1]))
    with pytest.raises(ValueError, match="ran with other params .* \\(or traced ones\\)"):
        dx.simulate(CELL, 20.0, resume=batch)
    with pytest.raises(ValueError, match="not a batch"):
        dx.simulate(CELL, 20.0, params=CELL.params, resume=batch)
    # celsius and method carry over unless given
    again = dx.simulate(CELL, 20.0, resume=first, celsius=12.0, method="crank_nicolson")
    assert again.meta["celsius"] == 12.0 and again.meta["method"] == "crank_nicolson"
