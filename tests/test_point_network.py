"""Point populations inside a dendrax.Network: spike timing through the ring (NEST's rule:
a spike at t with delay d acts on the state at t + d), generators, mixed networks with
detailed cells (refusals: test_point_refusals.py). The models themselves are compared with NEST in
test_point_models.py; whole networks in test_point_nest.py."""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import dendrax as dx
from point_cases import DT, Counter


def jump_times(trace, t):
    """Times at which a recorded trace changes."""
    trace = np.asarray(trace)
    return np.asarray(t)[1:][np.diff(trace) != 0]


@pytest.mark.parametrize("delay", [0.1, 0.3, 1.5])
def test_a_spike_acts_delay_after_it_was_sent(delay):
    net = dx.Network()
    gen = net.population("spike_generator", 1, spike_times=[1.0, 2.5])
    pop = net.population(Counter, 2)
    net.connect(gen, pop[0], weight=2.0, delay=delay)
    net.connect(gen, pop[1], weight=-3.0, delay=delay)
    net.record("V_m", pop)
    res = dx.simulate(net, 6.0, DT)
    np.testing.assert_allclose(jump_times(res.traces[0], res.t), [1.0 + delay, 2.5 + delay])
    assert np.asarray(res.traces[0])[-1] == 4.0 and np.asarray(res.traces[1])[-1] == -6.0


def test_chains_of_point_neurons_and_their_spike_times():
    """A fires when the generator's spike arrives (t = 1 + 0.5); B receives A's spike 1.2 ms
    later and fires; recorded spike times are on the grid, at the end of the update."""
    net = dx.Network()
    gen = net.population("spike_generator", 1, spike_times=[1.0])
    a = net.population(Counter, 1, V_th=1.0)
    b = net.population(Counter, 1, V_th=1.0)
    net.connect(gen, a, weight=1.0, delay=0.5)
    net.connect(a, b, weight=1.0, delay=1.2)
    net.record_spikes(a)
    net.record_spikes(b)
    res = dx.simulate(net, 5.0, DT)
    np.testing.assert_allclose(res.spikes[0], [1.5])
    np.testing.assert_allclose(res.spikes[1], [2.7])
    assert res.spike_cells == (1, 2) and res.spike_shift == (1, 1)  # after the generator
    np.testing.assert_allclose(dx.simulate(net, 5.0, DT, chunk=7).spikes[1], [2.7])


def test_dc_generator_follows_nests_activity_window():
    """NEST's current generators: active in the step from s dt when start < (s + 2) dt <= stop;
    the current reaches the target delay later."""
    net = dx.Network()
    dc = net.population("dc_generator", 1, amplitude=2.0, start=1.0, stop=2.0)
    pop = net.population(Counter, 1)
    net.connect(dc, pop, weight=1.5, delay=0.3)
    net.record("I", pop)
    res = dx.simulate(net, 4.0, DT)
    steps = round(1.0 / DT)  # the active steps s: 1.0 < (s + 2) dt <= 2.0 -> s = 9 .. 18
    assert np.asarray(res.traces[0])[-1] == pytest.approx(3.0 * steps)
    first = jump_times(res.traces[0], res.t)[0]
    assert first == pytest.approx((9 + 3) * DT + DT)  # read in step s + 3, recorded at its end


def test_poisson_generator_rates_and_independence():
    net = dx.Network()
    noise = net.population("poisson_generator", 1, rate=2000.0, start=10.0)
    pop = net.population(Counter, 200)
    net.connect(noise, pop, weight=1.0, delay=1.0)
    net.record("V_m", pop, reduce="max")
    res = dx.simulate(net, 510.0, DT)
    counts = np.asarray(res.stats)  # spikes received per target (no leak, no threshold)
    expected = 2000.0 * 0.5  # active for 500 ms (from 10 ms, read 1 ms later)
    assert abs(counts.mean() - expected) < 4 * np.sqrt(expected / counts.size)
    assert abs(counts.var() / expected - 1.0) < 0.3  # Poisson: variance = mean
    # every target its own train: traces of two targets are uncorrelated
    net2 = dx.Network()
    noise2 = net2.population("poisson_generator", 1, rate=2000.0)
    pop2 = net2.population(Counter, 2)
    net2.connect(noise2, pop2, weight=1.0, delay=1.0)
    net2.record("V_m", pop2)
    tr = np.diff(np.asarray(dx.simulate(net2, 500.0, DT).traces), axis=1)
    assert abs(np.corrcoef(tr)[0, 1]) < 0.05
    # reproducible: the same network gives the same draws
    again = np.diff(np.asarray(dx.simulate(net2, 500.0, DT).traces), axis=1)
    assert np.array_equal(tr, again)


def test_a_parrot_relays_every_poisson_spike():
    """A poisson_generator's draws of several spikes in one step reach a parrot_neuron as
    that many spikes and leave it as that many (NEST's multiplicity), whatever the weight
    onto it: at 5 kHz and dt 0.1 ms (mean 0.5 per step) a parrot relaying one spike per
    step would pass 1 - exp(-0.5) = 79% of them."""
    net = dx.Network()
    noise = net.population("poisson_generator", 1, rate=5000.0)
    parrots = net.population("parrot_neuron", 100)
    pop = net.population(Counter, 100)
    net.connect(noise, parrots, weight=0.3, delay=1.0)
    net.connect(parrots, pop, one_to_one=True, weight=1.0, delay=1.0)
    net.record("V_m", pop).record_spikes(parrots)
    res = dx.simulate(net, 202.0, DT)
    counts = np.asarray(res.traces)[:, -1]  # spikes received per target
    expected = 5000.0 * 0.2  # drawn for 200 ms: read 1 ms later by the parrot, 1 ms on
    assert abs(counts.mean() - expected) < 4 * np.sqrt(expected / counts.size), counts.mean()
    assert abs(counts.var() / expected - 1.0) < 0.3  # Poisson: variance = mean
    # each spike recorded as NEST's: those at t <= 201 ms reached the counters by the end
    relayed = np.array([np.sum(s <= 201.0 + 1e-9) for s in res.spikes])
    assert np.array_equal(relayed, counts), (relayed[:5], counts[:5])
    assert res.raster.dtype == np.int32 and int(res.raster.max()) >= 2


def test_point_neurons_drive_cells_as_spike_sources_do():
    """A point neuron's spikes reach an Exp2Syn on a cell exactly as the same spike times
    from a spike source do (that path is compared with NEURON in test_network_neuron.py)."""
    def cell():
        c = dx.Cell.ball_and_stick(nseg=[1, 3])
        c.insert("hh")
        return c

    net = dx.Network()
    gen = net.population("spike_generator", 1, spike_times=[1.0, 4.0])
    pop = net.population(Counter, 1, V_th=1.0)
    net.connect(gen, pop, weight=1.0, delay=0.1)
    post = net.add(cell())
    net.connect(pop, post.section(1)(0.5), "Exp2Syn", weight=0.02, delay=2.0, tau2=3.0)
    net.record("v", post.soma(0.5))
    net.record_spikes(pop)
    res = dx.simulate(net, 12.0, DT)
    times = res.spikes[0]
    np.testing.assert_allclose(times, [1.1, 4.1])
    ref = dx.Network()
    src = ref.spike_source(times)
    c = ref.add(cell())
    ref.connect(src, c.section(1)(0.5), "Exp2Syn", weight=0.02, delay=2.0, tau2=3.0)
    ref.record("v", c.soma(0.5))
    np.testing.assert_array_equal(res.traces, dx.simulate(ref, 12.0, DT).traces)
    assert np.ptp(np.asarray(res.traces)) > 1.0


def test_cells_drive_point_neurons():
    net = dx.Network()
    c = net.add(dx.Cell.ball_and_stick(nseg=[1, 3]))
    c.insert("hh")
    c.iclamp(c.soma(0.5), delay=1.0, dur=0.5, amp=1.0)
    pop = net.population(Counter, 1)
    net.connect(c.soma(0.5), pop, weight=1.0, delay=0.7)
    net.record_spikes([0])
    net.record("V_m", pop)
    res = dx.simulate(net, 8.0, DT)
    t_cell = res.spikes[0]
    assert t_cell.size == 1
    np.testing.assert_allclose(jump_times(res.traces[0], res.t), t_cell + 0.7)


def test_populations_params_are_trainable_leaves():
    net = dx.Network()
    gen = net.population("spike_generator", 1, spike_times=[1.0])
    pop = net.population(Counter, 3, name="counters")
    net.connect(gen, pop, weight=np.array([1.0, 2.0, 3.0]), delay=1.0)
    net.record("V_m", pop)
    params = net.params
    assert set(params["populations"]) == {"spike_generator_0", "counters"}
    np.testing.assert_array_equal(params["synapses"]["static"]["weight"], [1.0, 2.0, 3.0])

    def loss(w):
        p = {**params, "synapses": {**params["synapses"], "static": {**params["synapses"]["static"],
                                                                    "weight": w}}}
        return dx.simulate(net, 3.0, DT, params=p).traces[:, -1].sum()

    np.testing.assert_allclose(jax.grad(loss)(params["synapses"]["static"]["weight"]), [1, 1, 1])


def test_a_generator_stop_beyond_nests_clock_is_its_end():
    """NEST clamps stop = 1e300 ms to its clock's end; it was refused as "not a multiple of
    the simulation step"."""
    runs = []
    for stop in (1e300, np.inf):
        net = dx.Network()
        pop = net.population("iaf_psc_alpha", 1)
        net.connect(net.population("dc_generator", 1, amplitude=300.0, stop=stop), pop,
                    weight=1.0)
        net.record("V_m", pop)
        runs.append(np.asarray(dx.simulate(net, 5.0, DT).traces))
    np.testing.assert_array_equal(runs[0], runs[1])


def test_record_spikes_of_several_populations():
    """A list of populations was numpy's 'inhomogeneous shape' error; each is recorded."""
    net = dx.Network()
    a = net.population("parrot_neuron", 2)
    b = net.population("parrot_neuron", 1)
    src = net.population("spike_generator", 1, spike_times=[1.0, 2.0])
    net.connect(src, a, weight=1.0).connect(src, b, weight=1.0)
    net.record_spikes([a, b[0]])
    res = dx.simulate(net, 5.0, DT)
    assert len(res.spikes) == 3 and all(len(s) == 2 for s in res.spikes)


def _gsl_net(surrogate, record_gsl):
    """A spike_generator driving two iaf_cond_exp (I_e 200 pA: subthreshold; 500: firing),
    the second driving an iaf_psc_alpha; (network, loss(i_e of the first, weight onto the
    iaf_psc_alpha, row of the traces) -> mean of that row)."""
    net = dx.Network()
    gen = net.population("spike_generator", 1, spike_times=[1.0, 3.0, 5.0])
    g = net.population("iaf_cond_exp", 2, I_e=[200.0, 500.0], name="g", surrogate=surrogate)
    out = net.population("iaf_psc_alpha", 1, name="out")
    net.connect(gen, g, weight=5.0, delay=1.0)
    net.connect(g[1:], out, weight=50.0, delay=1.0)
    if record_gsl:
        net.record("V_m", g)
    net.record("V_m", out)
    base = net.params

    def loss(i_e, w_out, row):
        p = jax.tree_util.tree_map(lambda a: a, base)
        p["populations"]["g"] = {**p["populations"]["g"], "I_e": jnp.stack(
            [jnp.asarray(i_e, float), jnp.asarray(500.0)])}
        p["synapses"]["static"] = {**p["synapses"]["static"], "weight": p["synapses"][
            "static"]["weight"].at[-1].set(w_out)}
        return jnp.mean(dx.simulate(net, 30.0, DT, params=p).traces[row])

    return net, loss


def test_reverse_mode_through_a_gsl_model_names_it_and_forward_mode_works():
    """jax.grad through an RKF45-integrated model (a lax.while_loop) raised JAX's "Reverse-mode
    differentiation does not work for lax.while_loop ..." naming neither the model nor what
    to do; it names both now. Forward mode matches central differences (a surrogate on the
    population is for it), and reverse mode works where no gradient flows back into the
    model's sub-steps (not recorded, no surrogate: its spikes carry none)."""
    _, loss = _gsl_net("fast_sigmoid", record_gsl=True)
    mean_g0 = lambda i_e: loss(i_e, 50.0, 0)  # noqa: E731
    message = (r"reverse-mode differentiation \(jax.grad, .*\) cannot pass through iaf_cond_exp "
               r"\(integrated by NEST's GSL solver.*Use forward mode \(jax.jacfwd, jax.jvp.*"
               r"exactly integrated model \(iaf_psc_alpha")
    with pytest.raises(ValueError, match=message):
        jax.grad(mean_g0)(200.0)
    with pytest.raises(ValueError, match=message):
        jax.jit(jax.grad(mean_g0))(200.0)
    with pytest.raises(ValueError, match=message):  # the readout, past surrogate spikes
        jax.grad(lambda w: loss(200.0, w, 2))(50.0)
    h = 1e-3
    fd = (float(mean_g0(200.0 + h)) - float(mean_g0(200.0 - h))) / (2 * h)
    assert fd > 0 and float(jax.jacfwd(mean_g0)(200.0)) == pytest.approx(fd, rel=1e-6)
    # a fixed, unrecorded GSL population without a surrogate driving a differentiated one
    _, loss = _gsl_net(None, record_gsl=False)
    mean_out = lambda w: loss(200.0, w, 0)  # noqa: E731
    fd = (float(mean_out(50.0 + h)) - float(mean_out(50.0 - h))) / (2 * h)
    assert fd > 0 and float(jax.grad(mean_out)(50.0)) == pytest.approx(fd, rel=1e-6)


def test_reverse_mode_through_weights_from_a_neuron_firing_several_times_a_step():
    """An aeif_cond_exp (t_ref = 0: several spikes in some steps at dt 1 ms) driving an
    iaf_psc_alpha: the gradient of the target's mean V_m w.r.t. the weight is central
    differences' (the extra spikes were delivered in a while_loop: reverse mode failed for
    every network holding an aeif population)."""
    net = dx.Network()
    a = net.population("aeif_cond_exp", 1, I_e=20000.0, t_ref=0.0, name="a")
    out = net.population("iaf_psc_alpha", 1, name="out")
    net.connect(a, out, weight=5.0, delay=1.0)
    net.record("V_m", out)
    net.record_spikes(a)
    net.record_spikes(out)
    base = net.params

    def mean_v(w):
        p = jax.tree_util.tree_map(lambda x: x, base)
        p["synapses"]["static"] = {**p["synapses"]["static"], "weight": jnp.stack([w])}
        return jnp.mean(dx.simulate(net, 30.0, 1.0, params=p).traces[0])

    spikes = dx.simulate(net, 30.0, 1.0).spikes
    times = np.asarray(spikes[0])
    assert times.size > np.unique(times).size  # several spikes in some step
    assert len(spikes[1]) == 0  # the target stays below threshold: V_m is smooth in w
    h = 1e-4
    fd = (float(mean_v(5.0 + h)) - float(mean_v(5.0 - h))) / (2 * h)
    assert fd > 0 and float(jax.grad(mean_v)(5.0)) == pytest.approx(fd, rel=1e-6)


def test_traced_generator_times_off_the_grid_give_nan():
    """A generator's start/stop and a noise_generator's dt traced off the step grid cannot
    raise as concrete ones do: the run is NaN (it ran rounded)."""
    net = dx.Network()
    dc = net.population("dc_generator", 1, amplitude=100.0, start=2.0, name="dc")
    noise = net.population("noise_generator", 1, std=10.0, dt=0.2, name="nz")
    pop = net.population("iaf_psc_alpha", 1, name="a")
    net.connect(dc, pop, weight=1.0)
    net.connect(noise, pop, weight=1.0)
    net.record("V_m", pop)

    def run(start, interval):
        p = net.params
        p["populations"]["dc"] = {**p["populations"]["dc"], "start": start}
        p["populations"]["nz"] = {**p["populations"]["nz"], "dt": interval}
        return dx.simulate(net, 4.0, DT, params=p).traces

    run = jax.jit(run)
    assert np.isfinite(run(jnp.full(1, 2.0), jnp.full(1, 0.2))).all()
    for start, interval in ((2.05, 0.2), (2.0, 0.15), (2.0, 1e-12)):
        assert np.isnan(run(jnp.full(1, start), jnp.full(1, interval))).all(), (start, interval)


def test_a_network_of_only_point_neurons_and_its_names():
    net = dx.Network()
    pop = net.population(Counter, 2, name="exc")
    net.record("V_m", pop[1])
    res = dx.simulate(net, 1.0, DT)
    assert net.location_name(res.labels[0][1]) == "exc[1]" and res.units == ("mV",)
    assert "poisson_generator" in repr(net.population("poisson_generator", 1))


def test_the_run_key_sets_the_poisson_draws():
    net = dx.Network()
    noise = net.population("poisson_generator", 1, rate=3000.0)
    pop = net.population(Counter, 3)
    net.connect(noise, pop, weight=1.0, delay=0.1)
    net.record("V_m", pop)
    a = np.asarray(dx.simulate(net, 50.0, DT, key=1).traces)
    b = np.asarray(dx.simulate(net, 50.0, DT, key=jax.random.PRNGKey(1)).traces)
    c = np.asarray(dx.simulate(net, 50.0, DT, key=2).traces)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    for bad in (-1, 2 ** 32, 2 ** 70):  # -1 ran; 2**70 overflowed inside JAX
        with pytest.raises(ValueError, match=r"key must be an int seed in \[0, 2\*\*32\)"):
            dx.simulate(net, 1.0, DT, key=bad)
    dx.simulate(net, 1.0, DT, key=np.uint32(3_000_000_000))  # a uint32 seed


def test_fixed_indegree():
    net = dx.Network()
    a = net.population(Counter, 50)
    b = net.population(Counter, 20)
    net.connect(a, b, weight=1.0, delay=1.0, indegree=7, key=3)
    block = net.wiring.blocks[-1]
    assert block.size == 140
    np.testing.assert_array_equal(np.bincount(block.post_neuron - 50, minlength=20), 7)
    assert block.pre_neuron.min() >= 0 and block.pre_neuron.max() < 50
    assert len(np.unique(block.pre_neuron)) > 30  # drawn, not the first 7
    with pytest.raises(ValueError, match="choose one rule"):
        net.connect(a, b, weight=1.0, indegree=2, p=0.1, key=1)


def test_event_delivery_equals_the_ring_path():
    """Static connections from spiking sources are delivered event by event (native kernel);
    with a surrogate the same spikes go through the ring with gradients: same run."""
    def build(surrogate):
        net = dx.Network()
        gen = net.population("poisson_generator", 1, rate=4000.0)
        a = net.population("iaf_psc_alpha", 30, surrogate=surrogate, I_e=200.0)
        b = net.population("iaf_psc_exp", 10)
        net.connect(gen, a, weight=30.0, delay=1.0)
        net.connect(a, b, weight=np.linspace(-40, 80, 300), delay=np.linspace(0.1, 3.0, 300),
                    indegree=30, key=2)
        net.connect(a, a, weight=5.0, delay=0.7, p=0.2, key=5)
        net.record("V_m", b)
        net.record_spikes(a)
        return net

    events, ring = build(None), build("sigmoid")
    model, *_ = dx.lower(events)
    assert model.events and not dx.lower(ring).model.events
    r1, r2 = dx.simulate(events, 60.0, DT), dx.simulate(ring, 60.0, DT)
    assert sum(s.size for s in r1.spikes) > 20
    np.testing.assert_allclose(r1.traces, r2.traces, rtol=0, atol=1e-9)
    assert [s.tolist() for s in r1.spikes] == [s.tolist() for s in r2.spikes]


def test_noise_generator_statistics():
    """NEST's noise_generator: Gaussian current (mean, std), constant over each dt interval,
    independent per target, reproducible by key."""
    net = dx.Network()
    noise = net.population("noise_generator", 1, mean=5.0, std=2.0, dt=0.5)
    pop = net.population(Counter, 40)
    net.connect(noise, pop, weight=1.0, delay=0.1)
    net.record("I", pop)
    res = dx.simulate(net, 200.0, DT, key=4)
    cur = np.diff(np.asarray(res.traces), axis=1)[:, 5:]  # the current read in each step
    per_interval = cur[:, : (cur.shape[1] // 5) * 5].reshape(40, -1, 5)
    assert np.allclose(per_interval, per_interval[:, :, :1])  # piecewise constant over 0.5 ms
    values = per_interval[:, :, 0]
    assert abs(values.mean() - 5.0) < 4 * 2.0 / np.sqrt(values.size)
    assert abs(values.std() - 2.0) < 0.1
    assert abs(np.corrcoef(values[0], values[1])[0, 1]) < 0.15
    again = np.asarray(dx.simulate(net, 200.0, DT, key=4).traces)
    assert np.array_equal(again, np.asarray(res.traces))


@pytest.mark.parametrize("lam", [0.05, 2.0, 9.5, 30.0])
def test_poisson_counts_follow_the_poisson_law(lam):
    """The generators' per-step draws (CDF inversion up to mean 10, else jax's sampler)."""
    from scipy import stats

    from dendrax.point_step import poisson

    k = np.asarray(poisson(jax.random.PRNGKey(0), jnp.full(200_000, lam)))
    observed = np.bincount(k, minlength=k.max() + 1)
    expected = stats.poisson.pmf(np.arange(observed.size), lam) * k.size
    keep = expected > 5
    chi2 = ((observed[keep] - expected[keep]) ** 2 / expected[keep]).sum()
    assert stats.chi2.sf(chi2, keep.sum() - 1) > 1e-3, (lam, chi2)
    assert abs(k.mean() - lam) < 5 * np.sqrt(lam / k.size)


def test_float32_poisson_draws_never_run_off_the_end_of_the_cdf():
    """In float32 the CDF the inversion sums tops out below the largest uniforms for some
    means (at 8.568949, 1 - 4.2e-7: 3.6e-7 of the uniforms lie above it), and those draws ran
    off the end of its loop as k = 47 (9 of these 2e7 draws; P(k >= 40) is 1e-13 for
    Poisson(8.57)). Scaled by the sum's last value, the uniform stays inside the CDF."""
    from scipy import stats

    from dendrax.point_step import poisson

    lam = np.float32(8.568949)
    draw = jax.jit(lambda key: poisson(key, jnp.full(5_000_000, lam, jnp.float32)))
    k = np.concatenate([np.asarray(draw(jax.random.PRNGKey(s))) for s in range(4)])
    assert k.max() < 40, (k.max(), np.sum(k >= 40))
    observed = np.bincount(k, minlength=k.max() + 1)
    expected = stats.poisson.pmf(np.arange(observed.size), float(lam)) * k.size
    keep = expected > 5
    chi2 = ((observed[keep] - expected[keep]) ** 2 / expected[keep]).sum()
    assert stats.chi2.sf(chi2, keep.sum() - 1) > 1e-3, chi2


def test_float32_poisson_inversion_stops_inside_the_cdf_for_every_mean():
    """The largest uniform (1 - 2^-23), scaled as the sampler scales it, lands inside the
    float32 CDF for every mean up to 10 (unscaled it ran off the end for 1.6% of them)."""
    from dendrax.point_step import _TERMS, _cdf_top, _inverse_cdf

    lam = jnp.asarray(np.linspace(1e-4, 10.0, 200_001), jnp.float32)
    top = jnp.full(lam.shape, 1.0 - 2.0 ** -23, jnp.float32)
    assert int(jnp.max(_inverse_cdf(top, lam))) == _TERMS - 1  # what went wrong
    k = np.asarray(_inverse_cdf(top * _cdf_top(lam), lam))
    assert k.max() < 40, (k.max(), np.asarray(lam)[k.argmax()])


def _bursting(surrogate=None, t_ref=0.0):
    """aeif_cond_exp neurons under 20 and 10 nA (dt 1 ms), firing up to 4 times within one
    step (t_ref = 0), into two non-leaky iaf_psc_delta counters: one excitatory (1 ms), one
    inhibitory (2 ms); with a ``surrogate`` population in the network the spikes go through
    the ring instead of event-driven delivery."""
    net = dx.Network()
    a = net.population("aeif_cond_exp", 2, I_e=[2e4, 1e4], t_ref=t_ref)
    c = net.population("iaf_psc_delta", 2, V_th=1e9, tau_m=1e15, E_L=0.0, V_m=0.0)
    if surrogate:
        net.population("LIF", 1, surrogate=surrogate)
    net.connect(a, c[0], weight=0.01, delay=1.0)
    net.connect(a, c[1], weight=-0.02, delay=2.0)
    net.record_spikes(a)
    net.record("V_m", c)
    return net


def test_several_spikes_in_one_step_are_each_delivered_and_recorded():
    """A model that fires k times within one step (aeif_cond_exp with t_ref = 0, as NEST's)
    sends k spikes: its targets add k weights (by event delivery and through the ring alike)
    and the recorder lists the time k times (tests/test_point_nest.py compares with NEST)."""
    events, ring = _bursting(), _bursting("fast_sigmoid")
    assert dx.lower(events).model.events and not dx.lower(ring).model.events
    res, res_ring = dx.simulate(events, 40.0, 1.0), dx.simulate(ring, 40.0, 1.0)
    raster = np.asarray(res.raster)
    assert raster.dtype == np.int32 and raster.max() >= 3
    assert [s.size for s in res.spikes] == list(raster.sum(axis=0))
    for q, times in enumerate(res.spikes):
        steps = np.round(times / 1.0).astype(int) - 1  # a row's spikes are at its step's end
        np.testing.assert_array_equal(np.bincount(steps, minlength=raster.shape[0]), raster[:, q])
    # each counter's V_m jumps by weight x spikes, delay after they were sent
    sent = raster.sum(axis=1)
    jumps = np.diff(np.asarray(res.traces), axis=1)
    np.testing.assert_allclose(jumps[0, 1:], 0.01 * sent[:-1], rtol=0, atol=1e-9)
    np.testing.assert_allclose(jumps[1, 2:], -0.02 * sent[:-2], rtol=0, atol=1e-9)
    np.testing.assert_allclose(res_ring.traces, res.traces, rtol=0, atol=1e-12)
    assert [s.tolist() for s in res_ring.spikes] == [s.tolist() for s in res.spikes]
    # refractory for 1 ms: once per step at most; the raster's dtype is the model's (counts
    # where it could fire more than once), in one piece or streamed
    once = dx.simulate(_bursting(t_ref=1.0), 40.0, 1.0)
    assert once.raster.max() == 1 and once.raster.sum() > 10
    streamed = dx.simulate(_bursting(t_ref=1.0), 40.0, 1.0, chunk=7).raster
    assert once.raster.dtype == streamed.dtype == np.int32
    np.testing.assert_array_equal(np.asarray(streamed), np.asarray(once.raster))


def test_several_spikes_in_one_step_survive_pieces_and_resuming():
    """Streamed in pieces, or resumed mid-run, the counts and the deliveries are the run's
    (the spikes beyond the first of the last step are state, as the ring's bits)."""
    net = _bursting()
    whole = dx.simulate(net, 40.0, 1.0)
    pieces = dx.simulate(net, 40.0, 1.0, chunk=7)
    first = dx.simulate(net, 17.0, 1.0)
    second = dx.simulate(net, 40.0, 1.0, resume=first)
    assert [s.tolist() for s in pieces.spikes] == [s.tolist() for s in whole.spikes]
    np.testing.assert_array_equal(np.asarray(pieces.raster), np.asarray(whole.raster))
    for a, b, w in zip(first.spikes, second.spikes, whole.spikes):
        assert np.concatenate([a, b]).tolist() == w.tolist()
    np.testing.assert_array_equal(np.asarray(second.traces), np.asarray(whole.traces)[:, 18:])


def test_several_spikes_in_one_step_reach_a_cells_synapse():
    """A point neuron's k spikes in one step reach a detailed cell's synapse as k spikes:
    the cell's v equals that of the same synapse given the spike times as a train."""
    times = np.asarray(dx.simulate(_bursting(), 20.0, 0.5).spikes[0])
    assert times.size > np.unique(times).size

    def cell_v(driven):
        cell = dx.Cell.ball_and_stick(nseg=[1, 3])
        cell.insert("pas")
        net = dx.Network([cell])
        loc = net.cell(0).section(1)(0.5)
        if driven:
            a = net.population("aeif_cond_exp", 2, I_e=[2e4, 1e4])
            net.connect(a[0], loc, "Exp2Syn", weight=0.002, delay=1.0)
        else:
            net.cell(0).synapse("Exp2Syn", loc, spike_times=times, weight=0.002, delay=1.0)
        net.record("v", net.cell(0).soma(0.5))
        return np.asarray(dx.simulate(net, 20.0, 0.5).traces[0])

    driven, train = cell_v(True), cell_v(False)
    assert np.ptp(train) > 1.0
    np.testing.assert_allclose(driven, train, rtol=0, atol=1e-10)


def test_an_unreachable_tolerance_gives_nan_and_a_warning_not_a_hang():
    net = dx.Network()
    pop = net.population("aeif_cond_exp", 1, gsl_error_tol=1e-300)
    net.record("V_m", pop)
    with pytest.warns(RuntimeWarning, match="non-finite"):
        res = dx.simulate(net, 0.2, 0.1)
    assert np.isnan(np.asarray(res.traces)[0, 1:]).all()


@pytest.mark.parametrize("kind, delay", [("stdp_synapse", 4.0), ("stdp_synapse", 0.04),
                                         ("tsodyks2_synapse", 4.0), ("static", 0.0)])
def test_a_traced_delay_the_network_cannot_run_is_nan_and_warned(kind, delay):
    """Delays in traced params onto point neurons: longer than built (the buffers would
    wrap) or below one step (NEST's minimum) cannot run; the outputs are NaN with a warning,
    never a silently wrapped delivery (a plastic connection's delay went unchecked)."""
    net = dx.Network()
    gen = net.population("spike_generator", 1, spike_times=[10.0 + 10.0 * k for k in range(8)])
    parrot = net.population("parrot_neuron", 1)
    post = net.population("iaf_psc_alpha", 1)
    net.connect(gen, parrot, weight=1.0, delay=0.1)
    net.connect(parrot, post, kind, weight=400.0, delay=1.0)
    net.record("V_m", post)
    run = jax.jit(lambda p: dx.simulate(net, 100.0, 0.1, params=p).traces)
    p = net.params
    assert np.all(np.isfinite(np.asarray(run(p))))
    d = p["synapses"][kind]["delay"]
    p["synapses"][kind]["delay"] = jnp.where(jnp.arange(d.size) == d.size - 1, delay, d)
    with pytest.warns(RuntimeWarning, match="longer than the network was built for .or, onto "
                                            "point neurons, shorter than one step"):
        out = np.asarray(run(p))
        jax.effects_barrier()
    assert np.all(np.isnan(out[:, 1:]))


def test_connections_made_after_recording_a_plastic_kind_warn():
    """net.record(name, kind) records the connections of that kind made so far; more made
    later are not recorded, and the connect that makes them says so."""
    net = dx.Network()
    pre = net.population("parrot_neuron", 2)
    post = net.population("iaf_psc_alpha", 2)
    net.connect(pre[:1], post, "stdp_synapse", weight=1.0)
    net.record("weight", "stdp_synapse")
    with pytest.warns(UserWarning, match=r"these stdp_synapse connections are not among those "
                                         r"recorded: .* call it again"):
        net.connect(pre[1:], post, "stdp_synapse", weight=1.0)
    assert len(net.wiring.point_recordings) == 2  # the first block's two connections


def test_more_spikes_in_one_step_than_the_rules_take_one_by_one_warn():
    """A plastic rule takes up to EACH_SPIKE_UP_TO spikes of one step one by one, as NEST
    each (tests/test_point_plasticity_nest.py); a parrot relaying more to a plastic
    connection says the rest took the last one's weight. Up to that many: silent."""
    from dendrax.point.plasticity import EACH_SPIKE_UP_TO

    def run(k):
        net = dx.Network()
        gen = net.population("spike_generator", k, spike_times=[1.0])
        relay = net.population("parrot_neuron", 1)
        post = net.population("iaf_psc_alpha", 1)
        net.connect(gen, relay, weight=1.0)
        net.connect(relay, post, "stdp_synapse", weight=1.0)
        net.record("weight", "stdp_synapse")
        dx.simulate(net, 3.0, DT)
        jax.effects_barrier()

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        run(EACH_SPIKE_UP_TO)
    with pytest.warns(RuntimeWarning, match=f"fired more than {EACH_SPIKE_UP_TO} times within "
                                            "one step .* took the first"):
        run(EACH_SPIKE_UP_TO + 1)


def test_resuming_with_longer_delays_says_the_delays_are_kept():
    """A longer delay also resizes the spike buffers: the refusal named the state's shape
    instead of the delays (a shorter delay named them)."""
    net = dx.Network()
    gen = net.population("spike_generator", 1, spike_times=[1.0])
    pop = net.population("iaf_psc_alpha", 1, name="a")
    net.connect(gen, pop, weight=100.0, delay=1.0)
    net.record("V_m", pop)
    first = dx.simulate(net, 2.0, DT)
    for delay in (0.5, 2.0):
        later = net.params
        later["synapses"]["static"]["delay"] = jnp.asarray([delay])
        with pytest.raises(ValueError, match="keeps the delays of the run it continues"):
            dx.simulate(net, 4.0, params=later, resume=first)


def test_spike_times_take_any_array_like_and_traced_grid_points_pass_in_float32():
    """Review: JAX arrays and ranges of spike times (refused by a new check), and generator
    times on the grid traced in float32 (flagged off it from 8192.4 ms: NaN runs)."""
    from dendrax.delays import off_grid

    for times in (jnp.array([1.0, 2.0]), range(1, 3), [jnp.array([1.0]), jnp.array([2.0, 3.0])]):
        net = dx.Network()
        net.population("spike_generator", 2, spike_times=times)
    net = dx.Network()
    net.population("dc_generator", 1, amplitude=1.0, start=8192.4, name="dc")
    layout = dx.lower(net).layout
    grid = np.float32([8192.4, 0.1, 123456.7])
    flags = jax.jit(lambda s: off_grid(layout, {"populations": {"dc": {"start": s}}}, 0.1))(
        jnp.asarray(grid[:, None]))
    assert not any(bool(f) for f in flags)
    flags = jax.jit(lambda s: off_grid(layout, {"populations": {"dc": {"start": s}}}, 0.1))(
        jnp.asarray(np.float32([[8192.45]])))
    assert all(bool(f) for f in flags)
