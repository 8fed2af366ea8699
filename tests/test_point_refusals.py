"""Point populations inside a dendrax.Network: what is refused, with the value and the
valid range or choices named (NEST's refusals where NEST has one), at build or at
simulate."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import dendrax as dx
from point_cases import DT, Counter


@pytest.mark.parametrize("build,message", [
    (lambda net, pop: net.connect(pop, pop, weight=1.0, delay=0.04), "rounds to no step"),
    (lambda net, pop: net.population("spike_generator", 1, spike_times=[0.0, 1.0]),
     "NEST refuses a spike at 0"),
    (lambda net, pop: net.connect(net.population("spike_generator", 1, spike_times=[1.05]), pop,
                                  weight=1.0, all_to_all=True),
     r"spike_generator member 0: the spike time 1.05 ms is not on the grid of dt = 0.1 ms"),
    (lambda net, pop: net.connect(net.population("dc_generator", 1, amplitude=1.0, start=0.25),
                                  pop, weight=1.0, all_to_all=True),
     r"dc_generator .*: start = 0.25 ms is not a multiple of the simulation step 0.1 ms"),
    (lambda net, pop: net.connect(net.population("spike_generator", 1, spike_times=[1.0]),
                                  net.population("iaf_psc_alpha", 1), "stdp_synapse",
                                  weight=1.0, all_to_all=True),
     r"stdp_synapse connections need neurons or cells as sources, not a spike_generator"),
    (lambda net, pop: net.population("no_such_model", 3), "no point_neuron named 'no_such_model'"),
    (lambda net, pop: net.population(Counter, 3, V_thr=1.0), "has no parameters"),
    (lambda net, pop: net.population(Counter, 2, V_th=[1.0, 2.0, 3.0]), "got 3 values for 2"),
    (lambda net, pop: net.connect(pop, net.population("poisson_generator", 1), weight=1.0),
     "cannot be a connection's target"),
    (lambda net, pop: net.connect(pop, pop, "Exp2Syn", weight=1.0), "use 'static'"),
    (lambda net, pop: net.connect(pop, pop, weight=1.0, p=0.5), "needs key="),
    (lambda net, pop: net.connect(pop, pop, weight=1.0, p=0.5, key=1, one_to_one=True),
     "choose one rule"),
    (lambda net, pop: net.connect(pop[:2], pop, weight=1.0, one_to_one=True), "equal sizes"),
    (lambda net, pop: net.population("spike_generator", 2, spike_times=[[1.0]]), "or 2 lists"),
    (lambda net, pop: net.population(Counter, 1, name="counters"), "exists already"),
    (lambda net, pop: net.record("v", pop), "cannot record 'v'"),
    (lambda net, pop: pop[5], r"population .* has neurons 0\.\.2; select them by"),
    # NEST's set_status refuses these; so does dendrax (the constructor and simulate)
    (lambda net, pop: net.population("iaf_psc_alpha", 2, V_th=-80.0, V_reset=-70.0),
     r"iaf_psc_alpha population .*: V_reset < V_th required"),
    (lambda net, pop: net.population("iaf_cond_exp", 2, V_th=-60.0, V_reset=-60.0),
     r"V_reset < V_th required"),
    (lambda net, pop: net.population("aeif_cond_exp", 1, V_peak=-65.0), r"V_reset < V_peak"),
    (lambda net, pop: net.population("aeif_cond_exp", 1, V_peak=-55.0), r"V_peak >= V_th"),
    (lambda net, pop: net.population("poisson_generator", 1, rate=5.0, start=10.0, stop=5.0),
     r"poisson_generator population .*: stop >= start required"),
    (lambda net, pop: net.connect(net.population("iaf_psc_alpha", 2), net.population(
        "iaf_psc_alpha", 2), "stdp_synapse", weight=-10.0, Wmax=100.0, all_to_all=True),
     r"stdp_synapse connections: weight and Wmax must have the same sign"),
    (lambda net, pop: net.connect(net.population("iaf_psc_alpha", 2), net.population(
        "iaf_psc_alpha", 2), "tsodyks2_synapse", weight=1.0, U=1.5, all_to_all=True),
     r"tsodyks2_synapse.U must be in \[0, 1\], got 1.5$"),
    (lambda net, pop: net.connect(net.population("iaf_psc_alpha", 1), net.population(
        "iaf_psc_alpha", 1), "stdp_synapse", weight=40.0, Wmax=float("nan")),
     r"stdp_synapse.Wmax must be finite, got nan"),  # was "must have the same sign"
    (lambda net, pop: net.population("iaf_psc_alpha", 1, tau_minus=30.0),
     r"no parameters \['tau_minus'\].*STDP's tau_minus .NEST's neuron parameter. is a "
     r"parameter of the plastic connections here"),
    (lambda net, pop: net.connect(pop, dx.Network.add(net, dx.Cell.ball_and_stick()).soma(),
                                  "stdp_synapse", weight=0.01),
     r"stdp_synapse connects onto point neurons only"),  # was "no synapse named ..."
    (lambda net, pop: net.connect(net.population("noise_generator", 1, std=1.0, dt=0.25), pop,
                                  weight=1.0, all_to_all=True),
     r"noise_generator .*: dt = 0.25 ms is not a multiple of the simulation step 0.1 ms"),
    # audit: a population of another network was read as this one's of the same index
    (lambda net, pop: net.connect(dx.Network().population("spike_generator", 1,
                                                          spike_times=[1.0]), pop, weight=1.0),
     r"population 0 of another network"),
    (lambda net, pop: net.record("V_m", dx.Network().population(Counter, 2)[:1]),
     r"population 0 of another network"),
    # a cell's spikes detected at a NaN threshold never reached the point neurons
    (lambda net, pop: net.connect(dx.Network.add(net, dx.Cell.ball_and_stick()).soma(), pop,
                                  weight=1.0, threshold=float("nan")),
     r"threshold must be finite \(mV\), got nan"),
    # text and booleans were read as numbers; arguments that do not apply were ignored
    (lambda net, pop: net.connect(pop, pop, weight="1e3"), r"weight must be real numbers"),
    (lambda net, pop: net.connect(pop, pop, weight=1.0, delay=True),
     r"delay must be real numbers"),
    (lambda net, pop: net.connect(pop, net.population("iaf_psc_alpha", 1), "stdp_synapse",
                                  weight=1.0, Wmax="100"), r"Wmax must be real numbers"),
    (lambda net, pop: net.connect(pop, pop, weight=1.0, threshold=-20.0),
     r"threshold= detects spikes on cells; a point population's neurons spike by their own"),
    (lambda net, pop: net.connect(pop, pop, weight=1.0, key=1),
     r"key= draws the random rules .*; all_to_all connects without it"),
    (lambda net, pop: net.connect(pop, pop, weight=1.0, one_to_one="no"),
     r"one_to_one must be True or False, got 'no'"),
    (lambda net, pop: net.connect(pop[[]], pop, weight=1.0, indegree=2, key=1),
     r"got \[\]: it selects no neurons"),
    (lambda net, pop: net.population("spike_generator", 1, spike_times=5.0),
     r"spike_times: give a list of times \(ms\), or one list per neuron, got 5.0"),
    (lambda net, pop: net.population("spike_generator", 1, spike_times=[[1.0, [2.0]]]),
     r"spike_generator spike_times must be real numbers"),
    # audit: a (1, 3) array for 3 neurons was "got 3 values for 3 neurons"
    (lambda net, pop: net.population("iaf_psc_alpha", 3, I_e=[[1.0, 2.0, 3.0]]),
     r"iaf_psc_alpha.I_e: got an array of shape \(1, 3\) for 3 neurons; give an array of "
     r"shape \(3,\) \(one value per neuron\) or one scalar"),
    (lambda net, pop: net.population("iaf_psc_alpha", 3, I_e=[1.0, 2.0]),
     r"iaf_psc_alpha.I_e: got 2 values for 3 neurons; give an array of shape \(3,\)"),
    # booleans: NEST's flags take them (test_nest_boolean_flags_are_0_or_1), others not
    (lambda net, pop: net.population("iaf_psc_alpha", 1, I_e=True),
     r"iaf_psc_alpha.I_e must be real numbers, got True"),
    (lambda net, pop: net.population("iaf_psc_delta", 1, refractory_input=2.0),
     r"iaf_psc_delta.refractory_input must be 0 or 1, got 2"),
    # audit: positive values XLA flushes to 0 (subnormal) passed the check, and V_m was NaN
    (lambda net, pop: net.population("iaf_psc_alpha", 1, C_m=1e-310),
     r"iaf_psc_alpha.C_m = 1e-310 pF is below 2.225e-308, the smallest normal float64 "
     r"number, which XLA flushes to 0: give a value >= 2.225e-308 pF"),
    (lambda net, pop: net.population("LIF", 2, tau=[10.0, 1e-310]),
     r"LIF.tau = 1e-310 ms is below 2.225e-308"),
    (lambda net, pop: net.connect(pop, net.population("iaf_psc_alpha", 1), "stdp_synapse",
                                  weight=1.0, tau_plus=1e-310),
     r"stdp_synapse.tau_plus = 1e-310 ms is below 2.225e-308"),
    (lambda net, pop: net.population("iaf_psc_alpha", 1, surrogate=3),
     r"a surrogate is a name, \(name, slope\) or a Surrogate; got 3"),
    (lambda net, pop: net.population("iaf_psc_alpha", 1, name="a b"),
     r"population name 'a b' must be an identifier"),
    (lambda net, pop: pop[1.0], r"population 'counters' has neurons 0\.\.2"),
    # sizes that were killed for their memory (a dense draw of 1e5 x 1e5: 75 GiB)
    (lambda net, pop: net.population("iaf_psc_alpha", 10 ** 9),
     r"n = 1e\+09 neurons in one population: at most 1e\+08"),
    (lambda net, pop: net.connect(*[net.population("parrot_neuron", 10 ** 5)] * 2, weight=1.0,
                                  p=0.1, key=1),
     r"p = 0.1 would make 1e\+09 connections in one call"),
    # NEST refuses these: aeif's exponential overflows at the peak; a noise interval that
    # rounds to no step; a Poisson count per step beyond the int32 draw (it wrapped)
    (lambda net, pop: net.population("aeif_cond_exp", 1, Delta_T=0.05),
     r"\(V_peak - V_th\) / Delta_T < log\(DBL_MAX / 1e20\) = 664.4 required"),
    (lambda net, pop: net.connect(net.population("noise_generator", 1, std=1.0, dt=1e-12), pop,
                                  weight=1.0),
     r"noise_generator .*: dt = 1e-12 ms is not a multiple of the simulation step"),
    (lambda net, pop: net.connect(net.population("poisson_generator", 1, rate=3e13), pop,
                                  weight=1.0),
     r"rate = 3e\+13 Hz makes 3e\+09 spikes per step of dt = 0.1 ms; at most 1e\+08"),
    # a probe's (NEST refuses each): a slice beyond the population (0 connections, no
    # error), an empty or None or True selection, unsorted spike times (sorted silently),
    # a current into a parrot (it never fired), a NetCon threshold or site for a point
    # population's spikes (ignored, even NaN)
    (lambda net, pop: net.connect(pop[5:10], pop, weight=1.0),
     r"has neurons 0\.\.2; .*got slice\(5, 10, None\): it selects no neurons"),
    (lambda net, pop: pop[None], r"has neurons 0\.\.2; .*got None"),
    (lambda net, pop: pop[True], r"has neurons 0\.\.2; .*got True"),
    (lambda net, pop: net.population("spike_generator", 1, spike_times=[5.0, 2.0, 3.0]),
     r"spike_generator times must be sorted in non-descending order, as NEST requires"),
    (lambda net, pop: net.connect(net.population("dc_generator", 1, amplitude=1e3),
                                  net.population("parrot_neuron", 1), weight=1.0),
     r"a parrot_neuron relays spikes, and a dc_generator sends a current"),
    (lambda net, pop: net.record_spikes(pop, threshold=float("nan")),
     r"threshold and loc are a detailed cell's"),
    (lambda net, pop: net.connect(net.population("noise_generator", 1, std=1.0, dt=1e300), pop,
                                  weight=1.0),
     r"dt = 1e\+300 ms is beyond NEST's clock \(at most 4.61e\+15 ms\), which NEST refuses"),
])
def test_refusals(build, message):
    net = dx.Network()
    pop = net.population(Counter, 3, name="counters")
    net.record("V_m", pop)
    with pytest.raises((ValueError, IndexError), match=message):
        build(net, pop)
        dx.simulate(net, 1.0, DT)


def _network_a():
    """Two iaf_psc_alpha neurons ("a", V_m recorded), and ``with_values(**values)``: the
    network's params with those of "a" replaced."""
    net = dx.Network()
    net.record("V_m", net.population("iaf_psc_alpha", 2, I_e=400.0, name="a"))

    def with_values(**values):
        p = net.params
        p["populations"]["a"] = {**p["populations"]["a"], **values}
        return p

    return net, with_values


def test_population_params_passed_to_simulate_are_checked():
    """Params given to simulate meet the constructor's rules: concrete ones raise naming the
    parameter; traced ones (jit, grad, vmap) cannot raise, so the run's outputs are NaN."""
    net, with_values = _network_a()

    base = net.params["populations"]["a"]
    with pytest.raises(ValueError, match=r"a.C_m must be > 0 pF, got -250"):
        dx.simulate(net, 2.0, DT, params=with_values(C_m=-base["C_m"]))
    with pytest.raises(ValueError, match=r"population 'a' \(iaf_psc_alpha\): V_reset < V_th"):
        dx.simulate(net, 2.0, DT, params=with_values(V_reset=base["V_th"] + 1.0))

    def run(c_m, v_reset):
        return dx.simulate(net, 2.0, DT, params=with_values(C_m=c_m, V_reset=v_reset)).traces

    run = jax.jit(run)
    good = run(base["C_m"], base["V_reset"])
    np.testing.assert_allclose(good, dx.simulate(net, 2.0, DT).traces, rtol=0, atol=1e-11)
    assert np.isnan(run(-base["C_m"], base["V_reset"])).all()
    assert np.isnan(run(base["C_m"], base["V_th"] + 1.0)).all()
    # infinite values: only where NEST's default is (V_min = -inf); I_e = inf ran as a
    # finite, wrong trace (check_finite lets populations' inf through for V_min)
    with pytest.raises(ValueError, match=r"a.I_e must be finite \(iaf_psc_alpha's I_e has a "
                                         r"finite default, 0\), got inf"):
        dx.simulate(net, 2.0, DT, params=with_values(I_e=np.full(2, np.inf)))
    assert np.isfinite(dx.simulate(net, 2.0, DT, params=with_values(
        V_min=np.full(2, -np.inf))).traces).all()
    inf_ie = jax.jit(lambda ie: dx.simulate(net, 2.0, DT, params=with_values(I_e=ie)).traces)
    assert np.isnan(inf_ie(jnp.full(2, jnp.inf))).all()


def test_subnormal_positive_params_passed_to_simulate_are_refused():
    """Strictly positive parameters below the smallest normal float (which XLA flushes to
    0: NaN from the first step) are refused by name when given to simulate, and make a
    traced run NaN; non-negative ones (0 allowed) keep such values (flushed to 0, valid)."""
    net, with_values = _network_a()

    with pytest.raises(ValueError, match=r"a.tau_m = 1e-310 ms is below 2.225e-308, the "
                                         r"smallest normal float64 number"):
        dx.simulate(net, 2.0, DT, params=with_values(tau_m=np.array([10.0, 1e-310])))
    traced = jax.jit(lambda c: dx.simulate(net, 2.0, DT, params=with_values(C_m=c)).traces)
    assert np.isnan(traced(jnp.full(2, 1e-310))).all()
    assert np.isfinite(traced(jnp.full(2, 1e-300))).all()  # small, but a normal number
    ok = dx.simulate(net, 2.0, DT, params=with_values(t_ref=np.full(2, 1e-310))).traces
    assert np.isfinite(ok).all()
    # detailed cells hold their positive quantities (cm, Ra, diam, L, concentrations) and
    # mechanism parameters to the same rule; non-negative conductances keep 0 .. tiny
    cell = dx.Cell.ball_and_stick()
    cell.insert("hh")
    with pytest.raises(ValueError, match=r"cm = 1e-310 uF/cm2 is below 2.225e-308"):
        cell.set("cm", 1e-310)
    with pytest.raises(ValueError, match=r"cai0 = 1e-310 mM is below 2.225e-308"):
        cell.set("cai0", 1e-310)
    cell.set("cm", 1e-300)
    cell.set("hh.gnabar", 1e-310)
    with pytest.raises(ValueError, match=r"Exp2Syn.tau1 = 1e-310 ms is below 2.225e-308"):
        cell.synapse("Exp2Syn", cell.soma(), tau1=1e-310)


def test_nest_boolean_flags_are_0_or_1():
    """NEST's boolean parameters (iaf_psc_delta's refractory_input, izhikevich's
    consistent_integration; the brainpy-style models' soft_reset) take True / False as
    NEST does: 1 / 0 (they were refused as "must be real numbers, got True")."""
    net = dx.Network()
    a = net.population("iaf_psc_delta", 2, refractory_input=True, name="a")
    b = net.population("izhikevich", 1, consistent_integration=False, name="b")
    c = net.population("LIF", 2, soft_reset=[True, False], name="c")
    d = net.population("iaf_psc_delta", 2, refractory_input=1.0, name="d")
    values = net.params["populations"]
    assert np.array_equal(values["a"]["refractory_input"], [1.0, 1.0])
    assert np.array_equal(values["b"]["consistent_integration"], [0.0])
    assert np.array_equal(values["c"]["soft_reset"], [1.0, 0.0])
    for pop in (a, d):
        net.record("V_m", pop)
    gen = net.population("spike_generator", 1, spike_times=[1.0, 1.5, 2.0])
    net.connect(gen, a, weight=20.0)
    net.connect(gen, d, weight=20.0)
    traces = np.asarray(dx.simulate(net, 5.0, DT).traces)
    assert np.array_equal(traces[:2], traces[2:])  # True runs as 1
    assert b.model.name == "izhikevich" and c.model.name == "LIF"


def test_a_step_off_nests_clock_is_refused():
    """Point neurons count steps in NEST's 1 us tics: a dt that is not a whole number of
    them is refused, as NEST refuses it (0.0375 ms once made t_ref = 2 ms 1.9875 ms, and
    dt below 1 us an infinite refractory period)."""
    net = dx.Network()
    pop = net.population("iaf_psc_alpha", 1, I_e=1e5, t_ref=2.0)
    net.record("V_m", pop)
    for dt in (0.0375, 0.0004):
        with pytest.raises(ValueError, match=f"dt = {dt:g} ms is not a whole number of NEST's "
                                             r"tics \(1/1000 ms\)"):
            dx.simulate(net, 1.0, dt)
    assert np.isfinite(np.asarray(dx.simulate(net, 1.0, 0.025).traces)).all()


def test_quantities_are_converted_or_refused():
    pint = pytest.importorskip("pint")
    u = pint.UnitRegistry()
    net = dx.Network()
    a = net.population("iaf_psc_alpha", 1, I_e=0.376 * u.nA, V_th=-0.055 * u.V, name="a")
    np.testing.assert_allclose(net.params["populations"]["a"]["I_e"], [376.0])
    np.testing.assert_allclose(net.params["populations"]["a"]["V_th"], [-55.0])
    b = net.population("iaf_cond_exp", 1, name="b")
    net.connect(a, b, weight=2.0 * u.nS, delay=1500.0 * u.us)
    net.connect(a, a, weight=20.0 * u.pA, delay=1.0 * u.ms)
    np.testing.assert_allclose(net.params["synapses"]["static"]["weight"], [2.0, 20.0])
    np.testing.assert_allclose(net.params["synapses"]["static"]["delay"], [1.5, 1.0])
    with pytest.raises(ValueError, match="cannot be expressed in mV"):
        net.population("iaf_psc_alpha", 1, V_th=20.0 * u.ms)
    with pytest.raises(ValueError, match="weight = .* cannot be expressed in nS"):
        net.connect(a, b, weight=20.0 * u.pA)
    gen = net.population("spike_generator", 1, spike_times=[1.0, 2.5] * u.ms)
    assert net.wiring.populations[gen.index].spike_times[0].tolist() == [1.0, 2.5]
    # a plastic synapse's parameters in its declared units (stdp tau_plus: ms)
    net.connect(a, a, "stdp_synapse", weight=5.0 * u.pA, Wmax=0.1 * u.nA, tau_plus=0.03 * u.s)
    np.testing.assert_allclose(net.params["synapses"]["stdp_synapse"]["tau_plus"], [30.0])
    np.testing.assert_allclose(net.params["synapses"]["stdp_synapse"]["Wmax"], [100.0])  # pA
    with pytest.raises(ValueError, match="stdp_synapse.tau_plus = .* cannot be expressed in ms"):
        net.connect(a, a, "stdp_synapse", weight=5.0, Wmax=100.0, tau_plus=3 * u.mV)


def test_switches_are_0_or_1_and_generators_spikes_are_not_recorded():
    net = dx.Network()
    with pytest.raises(ValueError, match="LIF.soft_reset must be 0 or 1, got 0.5"):
        net.population("LIF", 1, soft_reset=0.5)
    with pytest.raises(ValueError, match="refractory_input must be 0 or 1"):
        net.population("iaf_psc_delta", 1, refractory_input=0.3)
    net.population("LIF", 1, soft_reset=1.0)
    gen = net.population("poisson_generator", 1, rate=10.0)
    with pytest.raises(ValueError, match="poisson_generator is a generator: its spikes are not "
                                         "recorded .* parrot_neuron"):
        net.record_spikes(gen)


def test_two_spike_generator_times_on_one_step_are_refused():
    """The spike ring holds one spike per source and step; NEST would send two with a
    multiplicity, so the run is refused rather than silently halving them."""
    net = dx.Network()
    gen = net.population("spike_generator", 1, spike_times=[1.0, 1.0, 3.0])
    post = net.population("iaf_psc_delta", 1)
    net.connect(gen, post, weight=1.0, delay=1.0)
    net.record("V_m", post)
    with pytest.raises(ValueError, match=r"spike_generator member 0: 2 spikes fall on one step "
                                         r"\(t = 1 ms, dt = 0.1 ms\)"):
        dx.simulate(net, 5.0, 0.1)


@pytest.mark.parametrize("edit, message", [
    (dict(params=[("V_th", 1.0)]), "params must be a dict name -> default value"),
    (dict(params={"V_th": float("nan")}), r"params\['V_th'\] must be a number"),
    (dict(ranges={"V_thh": (0, None)}), r"ranges names \['V_thh'\], which are not its parameters"),
    (dict(update=lambda self, s, p, inp, dt: ({"V_m": s["V_m"]}, s["V_m"] > 0)),
     r"update must give its states \['I', 'V_m'\], got \['V_m'\]"),
    (dict(update=lambda self, s, p, inp, dt: ({"V_m": s["V_m"][:2], "I": s["I"]}, s["V_m"] > 0)),
     r"update\(\)\['V_m'\] must have one value per neuron \(shape \[n\]\), got shape \(2,\)"),
    (dict(update=lambda self, s, p, inp, dt: (s, None)), r"update must return \(states, spiked"),
    # a float "flag" fired every step where non-zero; an int state failed inside the loop
    (dict(update=lambda self, s, p, inp, dt: (s, s["V_m"] + 0.5)),
     r"update's spiked must be booleans .* got float32"),
    (dict(spike_count="n_spikes"), r"spike_count must name one of its states \['V_m', 'I'\]"),
    (dict(initial=lambda self, p, dt: {"V_m": jnp.zeros(p["V_th"].shape, jnp.int32),
                                       "I": jnp.zeros_like(p["V_th"])}),
     r"initial\(\)\['V_m'\] must be floating point .* got int32"),
])
def test_a_point_model_plugin_is_checked_where_used(edit, message):
    Broken = type("Broken", (Counter,), {"name": "broken_test", **edit})
    with pytest.raises(ValueError, match=message):
        dx.Network().population(Broken, 2)
