"""Running networks of cells: weights and delays in params change the run without a
recompile (delays beyond the buffers built resize them), batches of networks (sharded over
host devices too), spike recording and jit, traced delays longer than built, one network
split over devices."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import dendrax as dx
from dendrax.training.batch import simulate_batch
from network_cases import DT, hh_cell
from simulation_cases import loop_compiles


# --- weights and delays in params: no recompile, the expected effect -------------------
@pytest.fixture(scope="module")
def delay_net():
    """Cell 0 fires once; Exp2Syn 0 -> 1 (strong, delay 3 ms built in) makes cell 1 fire;
    IonotropicSynapse 0 -> 2 (delay 1 ms built in)."""
    net = dx.Network([hh_cell(), hh_cell(), hh_cell()])
    c0 = net.cell(0)
    c0.iclamp(c0.soma(0.5), delay=1.0, dur=1.0, amp=0.5)
    net.connect(c0.soma(0.5), net.cell(1).soma(0.5), "Exp2Syn", weight=0.02, delay=3.0)
    net.connect(c0.soma(0.5), net.cell(2).soma(0.5), "IonotropicSynapse", gS=0.005, delay=1.0)
    net.record("v", net.cell(1).soma(0.5)).record("v", net.cell(2).soma(0.5))
    net.record_spikes([0, 1])
    return net


def test_changing_weights_and_delays_does_not_recompile(delay_net):
    net = delay_net
    base = dx.simulate(net, 10.0, DT)
    assert [len(s) for s in base.spikes] == [1, 1]
    with loop_compiles() as compiled:
        p = net.params
        p["synapses"]["Exp2Syn"]["delay"] = jnp.array([1.0])
        early = dx.simulate(net, 10.0, DT, params=p)
        p["synapses"]["Exp2Syn"]["delay"] = jnp.array([2.0])
        mid = dx.simulate(net, 10.0, DT, params=p)
        p["synapses"]["Exp2Syn"]["weight"] = jnp.array([0.0])
        p["synapses"]["IonotropicSynapse"]["gS"] = jnp.array([0.0])
        silent = dx.simulate(net, 10.0, DT, params=p)
        q = net.params
        q["synapses"]["IonotropicSynapse"]["delay"] = jnp.array([0.5])
        graded_early = dx.simulate(net, 10.0, DT, params=q)
    assert not compiled
    # the presynaptic spike is the same; the postsynaptic one moves by the delay change
    for r in (early, mid):
        np.testing.assert_array_equal(r.spikes[0], base.spikes[0])
    t_base, t_mid, t_early = base.spikes[1][0], mid.spikes[1][0], early.spikes[1][0]
    assert round((t_base - t_mid) / DT) == 40 and round((t_mid - t_early) / DT) == 40
    np.testing.assert_allclose([t_base - t_mid, t_mid - t_early], [1.0, 1.0], atol=1e-9)
    # weight 0 and gS 0: the postsynaptic cells behave as lone cells
    lone = hh_cell()
    lone.record("v", lone.soma(0.5))
    rest = np.asarray(dx.simulate(lone, 10.0, DT).traces[0])
    np.testing.assert_allclose(silent.traces[0], rest, rtol=0, atol=1e-12)
    np.testing.assert_allclose(silent.traces[1], rest, rtol=0, atol=1e-12)
    assert len(silent.spikes[1]) == 0
    assert np.max(np.abs(np.asarray(base.traces[1]) - rest)) > 0.1
    # a shorter graded delay changes cell 2's response
    assert np.max(np.abs(np.asarray(graded_early.traces[1]) - np.asarray(base.traces[1]))) > 1e-3


# --- batches of networks ---------------------------------------------------------------
def small_net():
    """Cell 0 (driven) excites cells 1 and 2; cell 1 also excites cell 2 on the dendrite."""
    net = dx.Network([hh_cell((1, 1)), hh_cell((1, 1)), hh_cell((1, 1))])
    net.cell(0).iclamp(net.cell(0).soma(0.5), delay=0.5, dur=1.0, amp=0.5)
    net.fully_connect([0], [1, 2], "Exp2Syn", weight=0.01, delay=0.5)
    net.connect(net.cell(1).soma(0.5), net.cell(2).section(1)(0.5), "Exp2Syn", weight=0.01)
    for i in range(3):
        net.record("v", net.cell(i).soma(0.5))
    return net


def test_simulate_batch_sizes_its_buffers_for_its_longest_concrete_delay():
    """A batch of concrete delays longer than the network was built with (Exp2Syn 2 ms,
    IonotropicSynapse 0.5 ms) runs every member as dx.simulate runs it alone: the spike
    ring and the voltage history are sized for the batch's longest (the longest member was
    NaN, with advice to pass concrete params)."""
    net = dx.Network([hh_cell((1, 1)), hh_cell((1, 1))])
    net.cell(0).iclamp(net.cell(0).soma(0.5), delay=1.0, dur=1.0, amp=0.5)
    net.connect(net.cell(0).soma(0.5), net.cell(1).soma(0.5), "Exp2Syn", weight=0.02,
                delay=2.0)
    net.connect(net.cell(0).soma(0.5), net.cell(1).soma(0.5), "IonotropicSynapse", gS=0.002,
                delay=0.5)
    net.record("v", net.cell(1).soma(0.5))
    D = np.array([[0.5], [2.0], [3.5]])
    G = np.array([[0.2], [1.5], [0.5]])
    batch = {"synapses": {"Exp2Syn": {"delay": D}, "IonotropicSynapse": {"delay": G}}}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "longer than the network was built for"
        out = np.asarray(simulate_batch(net, batch, 12.0, DT))
        jax.effects_barrier()
    spikes = []
    for k in range(3):
        p = net.params
        p["synapses"]["Exp2Syn"]["delay"] = jnp.asarray(D[k])
        p["synapses"]["IonotropicSynapse"]["delay"] = jnp.asarray(G[k])
        alone = dx.simulate(net, 12.0, DT, params=p)
        np.testing.assert_allclose(out[k], alone.traces, rtol=0, atol=1e-10)
        spikes.append(float(np.asarray(alone.t)[np.argmax(np.asarray(alone.traces[0]))]))
    assert spikes[0] < spikes[1] < spikes[2]  # cell 1's peak: the delays do matter
    # sized as dx.simulate sizes a run of the same delay (4.01 ms was rounded up to 4.025
    # ms, one ring slot more: a batch resuming a single run's state did not fit it)
    p = net.params
    p["synapses"]["Exp2Syn"]["delay"] = jnp.asarray([4.01])
    first = dx.simulate(net, 3.0, DT, params=p)
    batch = {"synapses": {"Exp2Syn": {"delay": np.array([[4.01], [4.01]])}}}
    out = np.asarray(simulate_batch(net, batch, 8.0, DT, resume=first))
    np.testing.assert_allclose(out[1], dx.simulate(net, 8.0, DT, params=p, resume=first).traces,
                               rtol=0, atol=1e-10)


def test_delays_recompile_only_when_they_outgrow_the_buffers_built(delay_net):
    """docs/networks.md: concrete delays up to the longest built in reuse the compiled
    loop; a longer one sizes the spike ring (or voltage history) for the run's longest
    delay, in whole steps, and the loop compiles once per buffer size."""
    net = delay_net  # Exp2Syn delay 3 ms, IonotropicSynapse 1 ms built in
    dx.simulate(net, 10.0, DT)

    def run(exp2syn, graded):
        p = net.params
        p["synapses"]["Exp2Syn"]["delay"] = jnp.array([exp2syn])
        p["synapses"]["IonotropicSynapse"]["delay"] = jnp.array([graded])
        dx.simulate(net, 10.0, DT, params=p)
        return len(compiled)

    with loop_compiles() as compiled:
        assert run(1.0, 0.5) == 0 and run(3.0, 1.0) == 0  # within the buffers built
        assert run(4.0, 1.0) == 1  # the ring grows: 161 steps
        assert run(4.01, 1.0) == 1  # 4.01 ms rounds to 160 steps too: the same ring
        assert run(3.0, 2.0) == 2  # the voltage history grows
        assert run(4.0, 1.0) == 2  # a size compiled before is reused
        assert run(3.5, 1.0) == 3  # a ring of 141 steps: sized for the run, a new size


def test_simulate_batch_over_network_weights_equals_separate_runs():
    net = small_net()
    W = jnp.array([[0.0, 0.0, 0.0], [0.01, 0.002, 0.0], [0.02, 0.005, 0.01]])
    out = simulate_batch(net, {"synapses": {"Exp2Syn": {"weight": W}}}, 6.0, DT)
    assert out.shape == (3, 3, 241)
    for k in range(3):
        p = net.params
        p["synapses"]["Exp2Syn"]["weight"] = W[k]
        np.testing.assert_allclose(out[k], dx.simulate(net, 6.0, DT, params=p).traces,
                                   rtol=0, atol=1e-10)
    assert np.max(np.abs(np.asarray(out[2, 1] - out[0, 1]))) > 1.0  # weights matter


SHARDED_NET_SCRIPT = textwrap.dedent("""
    import jax, jax.numpy as jnp, numpy as np
    jax.config.update("jax_enable_x64", True)
    import dendrax as dx
    from dendrax.training.batch import simulate_batch

    assert jax.device_count() == 4, jax.devices()
    def cell():
        c = dx.Cell.ball_and_stick(nseg=[1, 1])
        c.insert("hh")
        return c
    net = dx.Network([cell(), cell(), cell()])
    net.cell(0).iclamp(net.cell(0).soma(0.5), delay=0.5, dur=1.0, amp=0.5)
    net.fully_connect([0], [1, 2], "Exp2Syn", weight=0.01, delay=0.5)
    net.connect(net.cell(1).soma(0.5), net.cell(2).soma(0.5), "IonotropicSynapse", gS=0.002)
    for i in range(3):
        net.record("v", net.cell(i).soma(0.5))
    B = 8
    W = jnp.linspace(0.0, 0.02, 2 * B).reshape(B, 2)
    batch = {"synapses": {"Exp2Syn": {"weight": W}}}
    sharded = simulate_batch(net, batch, 5.0, 0.025)
    assert sharded.shape == (B, 3, 201)
    assert len(sharded.sharding.device_set) == 4
    assert {s.data.shape for s in sharded.addressable_shards} == {(2, 3, 201)}
    for k in (0, 5, 7):
        p = net.params
        p["synapses"]["Exp2Syn"]["weight"] = W[k]
        np.testing.assert_allclose(sharded[k], dx.simulate(net, 5.0, 0.025, params=p).traces,
                                   atol=1e-10)
    print("sharded network ok")
""")


def test_sharded_network_batch_over_four_host_devices():
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4",
           "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run([sys.executable, "-c", SHARDED_NET_SCRIPT], env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "sharded network ok" in proc.stdout


def test_simulate_batch_takes_a_prng_key_as_simulate_does():
    """key=jax.random.PRNGKey(7) crashed (an array in the compile cache's key); it draws
    what the int seed 7 draws, as in dx.simulate."""
    net = dx.Network()
    gen = net.population("poisson_generator", 1, rate=8000.0)
    pop = net.population("iaf_psc_alpha", 3, name="exc")
    net.connect(gen, pop, weight=15.0, delay=1.0)
    net.record("V_m", pop[:1])
    W = net.params["synapses"]["static"]["weight"]
    batch = {"synapses": {"static": {"weight": jnp.stack([W, 2 * W])}}}
    by_key = simulate_batch(net, batch, 20.0, 0.1, key=jax.random.PRNGKey(7))
    np.testing.assert_array_equal(by_key, simulate_batch(net, batch, 20.0, 0.1, key=7))
    p = net.params
    p["synapses"]["static"]["weight"] = 2 * W
    np.testing.assert_allclose(by_key[1], dx.simulate(net, 20.0, 0.1, params=p, key=7).traces,
                               rtol=0, atol=1e-12)


# --- spike recording, jit and devices -------------------------------------------------
def _crossings(t, v, threshold):
    """Times of the first samples above threshold after one at or below it."""
    above = v > threshold
    first = above & ~np.concatenate([[False], above[:-1]])
    return t[first]


@pytest.fixture(scope="module")
def spiking_net():
    net = dx.Network([hh_cell(), hh_cell()])
    c0 = net.cell(0)
    c0.iclamp(c0.soma(0.5), delay=1.0, dur=20.0, amp=0.4)
    net.connect(c0.soma(0.5), net.cell(1).soma(0.5), "Exp2Syn", weight=0.02, delay=1.0)
    net.record("v", c0.soma(0.5)).record("v", net.cell(1).soma(0.5))
    net.record("v", c0.section(1)(1.0))
    net.record_spikes()
    net.record_spikes([0], threshold=-20.0, loc=hh_cell().section(1)(1.0))
    return net


def test_recorded_spikes_are_threshold_crossings_of_the_voltage(spiking_net):
    res = dx.simulate(spiking_net, 25.0, DT)
    t, v = np.asarray(res.t), np.asarray(res.traces)
    assert res.spike_cells == (0, 1, 0)
    expected = [_crossings(t, v[0], 10.0), _crossings(t, v[1], 10.0), _crossings(t, v[2], -20.0)]
    assert len(expected[0]) >= 2 and len(expected[1]) >= 2 and len(expected[2]) >= 2
    assert len(res.spikes) == 3
    for got, want in zip(res.spikes, expected):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(res["v", spiking_net.cell(1).soma(0.5)], v[1])


def test_jit_returns_the_result_pytree(spiking_net):
    net = spiking_net
    plain = dx.simulate(net, 25.0, DT)
    jitted = jax.jit(lambda p: dx.simulate(net, 25.0, DT, params=p))(net.params)
    assert isinstance(jitted, dx.Result)
    np.testing.assert_allclose(jitted.traces, plain.traces, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(jitted.raster, plain.raster)
    np.testing.assert_array_equal(jitted.t, plain.t)
    assert jitted.labels == plain.labels and jitted.spike_cells == plain.spike_cells
    for a, b in zip(jitted.spikes, plain.spikes):
        np.testing.assert_array_equal(a, b)


def test_traced_delay_longer_than_built_is_nan_and_warned_never_silently_wrong():
    cell = dx.Cell.ball_and_stick(nseg=[1, 3])
    cell.insert("hh")
    net = dx.Network.replicate(cell, 2)
    net.cell(0).iclamp(net.cell(0).soma(0.5), delay=1.0, dur=1.0, amp=1.0)
    net.connect(net.cell(0).soma(0.5), net.cell(1).soma(0.5), "Exp2Syn", weight=0.05, delay=1.0)
    net.record("v", net.cell(1).soma(0.5))
    run = jax.jit(lambda p: dx.simulate(net, 10.0, 0.025, params=p).traces)
    p = net.params
    assert np.all(np.isfinite(np.asarray(run(p))))
    p["synapses"]["Exp2Syn"]["delay"] = jnp.array([3.0])  # the network was built for 1 ms
    with pytest.warns(RuntimeWarning, match="longer than the network was built for"):
        out = np.asarray(run(p))
        jax.effects_barrier()
    assert np.all(np.isnan(out[:, 1:]))  # t = 0 (v_init) is right; every later value is NaN
    # concrete params resize the ring instead
    assert np.all(np.isfinite(np.asarray(dx.simulate(net, 10.0, 0.025, params=p).traces)))


SPLIT_SCRIPT = textwrap.dedent("""
    import jax, numpy as np
    jax.config.update("jax_enable_x64", True)
    import dendrax as dx
    from dendrax import distributed

    assert jax.device_count() == 4, jax.devices()
    cells = []
    for i in range(11):  # unequal cells: the split balances compartments, pads the rest
        c = dx.Cell.ball_and_stick(nseg=[1, 1 + i % 3])
        c.insert("hh")
        cells.append(c)
    net = dx.Network(cells)
    net.cell(0).iclamp(net.cell(0).soma(0.5), delay=1.0, dur=60.0, amp=0.3)
    net.sparse_connect(range(8), range(11), "Exp2Syn", p=0.4, key=2, weight=0.03, delay=1.1,
                       tau1=0.3, tau2=3.0)
    rng = np.random.default_rng(1)
    net.fully_connect(range(8, 11), range(0, 8), "Exp2Syn", weight=0.01, e=-80.0, tau1=0.5,
                      tau2=6.0, delay=rng.uniform(1.0, 3.0, 24))  # inhibitory, delays off the grid
    net.connect(net.spike_source([2.0, 7.5, 20.0]), net.cell(9).section(1)(0.5), "Exp2Syn",
                weight=0.1, delay=0.7)
    net.record_spikes()
    for i in (0, 3, 9, 10):
        net.record("v", net.cell(i).soma(0.5))
    ref = dx.simulate(net, 60.0, 0.025)
    assert sum(len(s) for s in ref.spikes) >= 15, ref.spikes  # spikes cross the cut
    for n in (1, 3, 4):
        res = distributed.simulate(net, 60.0, 0.025, devices=n)
        dv = np.abs(np.asarray(res.traces) - np.asarray(ref.traces)).max()
        assert dv < 1e-9, (n, dv)
        assert all(np.array_equal(a, b) for a, b in zip(res.spikes, ref.spikes)), n
        # the run's settings, as dx.simulate's (they were empty: no dt, no model fingerprint)
        assert res.meta == ref.meta and res.labels == ref.labels and res.units == ref.units
    try:  # quantities converted as dx.simulate converts them
        import pint
    except ImportError:
        pint = None
    if pint is not None:
        u = pint.UnitRegistry()
        res = distributed.simulate(net, 0.06 * u.s, 25.0 * u.us, devices=2, v_init=-0.065 * u.V)
        assert np.abs(np.asarray(res.traces) - np.asarray(ref.traces)).max() < 1e-9
    # the gradient over the whole params pytree (its delays traced: the network's own set
    # the exchange interval; this raised a TracerArrayConversionError), as dx.simulate's
    import jax.numpy as jnp
    def loss(p, run):
        return jnp.mean(run(net, 6.0, 0.025, params=p).traces[:, -40:] ** 2)
    def split(*args, **kw):
        return distributed.simulate(*args, devices=2, **kw)
    g1 = jax.grad(loss)(net.params, dx.simulate)["synapses"]["Exp2Syn"]["weight"]
    g2 = jax.grad(loss)(net.params, split)["synapses"]["Exp2Syn"]["weight"]
    assert np.abs(g1).max() > 0 and np.allclose(g1, g2, rtol=1e-9, atol=1e-12), (g1, g2)
    short = jax.tree_util.tree_map(lambda x: x, net.params)  # below the interval: NaN
    short["synapses"]["Exp2Syn"]["delay"] = short["synapses"]["Exp2Syn"]["delay"].at[0].set(0.5)
    out = jax.jit(lambda p: split(net, 6.0, 0.025, params=p).traces)(short)
    assert np.all(np.isnan(np.asarray(out)))
    # refusals name the problem
    net.connect(net.cell(1).soma(0.5), net.cell(2).soma(0.5), "Exp2Syn", weight=0.01, delay=0.01)
    try:
        distributed.simulate(net, 5.0, 0.025, devices=2)
        raise AssertionError("a delay below dt/2 must be refused")
    except ValueError as err:
        assert "minimum delay" in str(err), err
    for devices, words in ((0, "give 1 to 4"), ("abc", "None, a count or a list"),
                           ([0, 1], "must be jax devices"),
                           (jax.devices()[:1] * 2, "more than once")):
        try:
            distributed.simulate(net, 5.0, 0.025, devices=devices)
            raise AssertionError(f"devices={devices!r} must be refused")
        except ValueError as err:
            assert words in str(err), err
    bad = jax.tree_util.tree_map(lambda x: x, net.params)  # a NaN no valid range catches:
    bad["synapses"]["Exp2Syn"]["e"] = bad["synapses"]["Exp2Syn"]["e"].at[0].set(np.nan)
    try:  # refused as dx.simulate refuses it
        distributed.simulate(net, 5.0, 0.025, devices=2, params=bad)
        raise AssertionError("a NaN parameter must be refused")
    except ValueError as err:
        assert "non-finite" in str(err), err
    net.record("v", net.cell(0).soma(0.5), reduce="max")  # came back as a whole v trace
    try:
        distributed.simulate(net, 5.0, 0.025, devices=2)
        raise AssertionError("a statistic must be refused")
    except ValueError as err:
        assert "not statistics (reduce=...)" in str(err), err
    # what is not split yet (docs/networks.md) is refused, not run wrongly
    def pair():
        c = dx.Cell.ball_and_stick(nseg=[1, 2])
        c.insert("hh")
        return dx.Network.replicate(c, 2).record("v", dx.Location(0, 0.5, 0))
    gap, states, points = pair(), pair(), pair()
    gap.gap_junction(gap.cell(0).soma(0.5), gap.cell(1).soma(0.5), g=0.01)
    states.record("hh.m", states.cell(0).soma(0.5))
    points.population("iaf_psc_alpha", 2)
    for n, words in ((gap, "graded synapses are not split over devices yet"),
                     (states, "a split network records v and spikes only"),
                     (points, "point populations are not split over devices yet")):
        try:
            distributed.simulate(n, 2.0, 0.025, devices=2)
            raise AssertionError(f"{words}: must be refused")
        except ValueError as err:
            assert words in str(err), err
    print("split ok")
""")


TIMED_SPLIT_SCRIPT = textwrap.dedent("""
    import jax, numpy as np
    jax.config.update("jax_enable_x64", True)
    import dendrax as dx
    from dendrax import distributed, nmodl

    nmodl.load(%r)  # NET_RECEIVE reads t: each event's own time
    cells = []
    for i in range(4):
        c = dx.Cell.ball_and_stick(nseg=[1, 2])
        c.insert("hh")
        cells.append(c)
    net = dx.Network(cells)
    net.cell(0).iclamp(net.cell(0).soma(0.5), delay=1.0, dur=60.0, amp=0.3)
    for post in (1, 2, 3):
        net.connect(net.cell(0).soma(0.5), net.cell(post).soma(0.5), "stpx", weight=0.05,
                    delay=1.013, U=0.3)
    for post, times in ((3, [2.0, 2.01, 7.5, 20.0]), (1, [3.0, 9.5, 20.0])):
        net.connect(net.spike_source(times), net.cell(post).section(1)(0.5), "stpx",
                    weight=0.1, delay=0.7)
    for i in range(4):
        net.record("v", net.cell(i).soma(0.5))
    ref = dx.simulate(net, 40.0, 0.025)
    res = distributed.simulate(net, 40.0, 0.025, devices=2)
    dv = np.abs(np.asarray(res.traces) - np.asarray(ref.traces)).max()
    assert dv < 1e-9, dv
    print("timed split ok")
""")


def test_a_synapse_reading_event_times_split_over_devices_equals_the_unsplit_run():
    """Spike trains' event times (NET_RECEIVE reading t, tests/nmodl_cases/stpx.mod) reach
    the synapses of each part of a split network (they were not passed)."""
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    stpx = str(Path(__file__).parent / "nmodl_cases" / "stpx.mod")
    out = subprocess.run([sys.executable, "-c", TIMED_SPLIT_SCRIPT % stpx], env=env,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "timed split ok" in out.stdout


def test_one_network_split_over_four_devices_equals_the_unsplit_run():
    """One network cut by cells over 4 forced host devices (spikes exchanged once per
    minimum delay) gives the same voltages and spike times as one device."""
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4"}
    out = subprocess.run([sys.executable, "-c", SPLIT_SCRIPT], env=env, capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "split ok" in out.stdout


@pytest.mark.parametrize("method", ["backward_euler", "crank_nicolson"])
def test_synapses_and_electrodes_at_their_nodes_equal_them_in_the_membrane_currents(
        monkeypatch, method):
    """The voltage step adds synapses' and electrodes' currents at their nodes after the
    membrane's pass (large models: dendrax.step.POINTS_APART) or into the membrane's
    currents everywhere:
    the same sums in the same order, so the same run to rounding (XLA may contract a
    product and a sum differently next to an SEClamp). Event and graded synapses, IClamp,
    SEClamp, a waveform clamp; i_membrane (with the synapses) recorded too."""
    from dendrax import lowering, simulator_units, step, timecourse
    from dendrax.delays import sized
    from dendrax.simulation import schedule
    from dendrax.state import initial_state

    net = dx.Network([hh_cell() for _ in range(3)])
    a, b, c = (net.cell(i) for i in range(3))
    a.iclamp(a.soma(0.5), delay=1.0, dur=20.0, amp=0.4)
    b.vclamp(b.soma(0.5), amp=[-65.0, -20.0, -65.0], dur=[2.0, 5.0, 20.0], rs=0.5)
    c.stimulate(c.section(1)(0.5), [0.0, 10.0, 20.0, 30.0], [0.0, 0.2, 0.0, 0.0])
    c.synapse("Exp2Syn", c.section(1)(0.9), spike_times=[2.0, 3.0], weight=0.01, tau1=0.5,
              tau2=5.0)
    net.connect(a.soma(0.5), b.section(1)(0.5), "Exp2Syn", weight=0.02, delay=1.0)
    net.connect(a.soma(0.5), c.soma(0.5), "Exp2Syn", weight=0.01, delay=2.0)
    net.gap_junction(b.section(1)(0.9), c.section(1)(0.9), g=0.001)
    for cell in (a, b, c):
        net.record("v", cell.soma(0.5)).record("v", cell.section(1)(0.7))
    net.record("i_membrane", b.soma(0.5))
    model, params, layout = lowering.lower(net)
    model = sized(model, layout, params, DT)
    n_steps = round(30.0 / DT)
    drv = timecourse.drive(layout, n_steps, DT)
    assert 0 < step.point_nodes(model).size < model.n_nodes

    def traces(apart):  # the time loop traced anew (dx.simulate's is compiled once)
        monkeypatch.setattr(step, "POINTS_APART_NODES", 0)
        monkeypatch.setattr(step, "POINTS_APART", apart)

        def loop(core):
            body, _ = step.step_function(model, core, DT, method=method)
            xs = schedule(model, core, drv, DT)
            return jax.lax.scan(body, initial_state(model, core, DT), xs)[1][0]

        core = simulator_units.core_params(layout, params, v_init=-65.0, celsius=6.3)
        return np.asarray(jax.jit(loop)(core))

    at_nodes, everywhere = traces(1.0), traces(0.0)
    assert np.isfinite(at_nodes).all() and np.ptp(at_nodes[:, 0]) > 50.0  # cell a spikes
    np.testing.assert_allclose(at_nodes, everywhere, rtol=0, atol=1e-11)
