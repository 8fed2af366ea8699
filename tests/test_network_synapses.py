"""Synapses in networks of cells: graded and event synapses against finite differences and
independent numpy references (kinetics, recorded currents, delays in whole steps, half
steps rounded up), trainables on networks. Building networks: tests/test_network_build.py;
running them (recompiles, batches, spikes, devices): tests/test_network_runs.py."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import dendrax as dx
from dendrax.training.trainable import Trainables
from dendrax.training.transforms import Softplus
from network_cases import DT, hh_cell, one_compartment


def _with_leaf(params, path, value):
    p = jax.tree_util.tree_map(lambda x: x, params)
    node = p
    for k in path[:-1]:
        node = node[k]
    node[path[-1]] = value
    return p


# --- gradients through graded and event synapses vs finite differences ---------------
@pytest.fixture(scope="module")
def graded_net():
    """Three HH cells; cell 0 is driven and fires. Each graded kind once without and once
    with a delay (entry 0: no delay, entry 1: 0.5 ms = 20 steps); two Exp2Syn connections."""
    net = dx.Network([hh_cell(), hh_cell(), hh_cell()])
    c0, c1, c2 = (net.cell(i) for i in range(3))
    c0.iclamp(c0.soma(0.5), delay=1.0, dur=10.0, amp=0.3)
    net.connect(c0.soma(0.5), c1.soma(0.5), "IonotropicSynapse", gS=0.005, delay=0.0)
    net.connect(c0.soma(0.5), c2.section(1)(0.5), "IonotropicSynapse", gS=0.004, v_th=-30.0,
                delay=0.5)
    net.connect(c1.soma(0.5), c2.soma(0.5), "TanhRateSynapse", gS=0.04, x_offset=-55.0,
                slope=0.08, delay=0.0)
    net.connect(c0.section(1)(0.5), c1.section(1)(0.5), "TanhRateSynapse", gS=0.05,
                x_offset=-60.0, slope=0.1, delay=0.5)
    net.connect(c0.soma(0.5), c2.soma(0.5), "Exp2Syn", weight=0.002, delay=1.0)
    net.connect(c1.soma(0.5), c2.section(1)(0.9), "Exp2Syn", weight=0.003, delay=0.5)
    for i in range(3):
        net.record("v", net.cell(i).soma(0.5))
    net.record("v", c2.section(1)(0.9))

    def loss(params):
        v = dx.simulate(net, 8.0, DT, params=params).traces
        return jnp.mean((v + 20.0) ** 2) / 100.0

    params = net.params
    grad_fn = jax.jit(jax.grad(loss))  # compiled once, reused by the trainables test
    return net, loss, params, grad_fn(params), grad_fn


GRADED_LEAVES = [("IonotropicSynapse", p) for p in ("gS", "e_syn", "k_minus", "v_th", "delta")] + \
                [("TanhRateSynapse", p) for p in ("gS", "x_offset", "slope")]


@pytest.mark.parametrize("entry", [0, 1], ids=["no_delay", "delay"])
@pytest.mark.parametrize("kind,name", GRADED_LEAVES)
def test_graded_synapse_gradients_match_finite_differences(graded_net, kind, name, entry):
    net, loss, params, grad, _ = graded_net
    path = ("synapses", kind, name)
    leaf = params["synapses"][kind][name]
    assert params["synapses"][kind]["delay"][entry] == (0.0 if entry == 0 else 0.5)
    direction = np.zeros(leaf.shape)
    direction[entry] = np.random.default_rng(entry).uniform(0.5, 1.0)
    # mV-valued parameters move this loss little per mV: a 1e-6 mV step is lost in round-off
    # (e_syn, delayed: 3e-5 relative off at 1e-6 mV, 2e-9 at 1e-4 mV; jax.jvp agrees with grad)
    eps = (1e-4 if name in ("e_syn", "v_th", "x_offset") else 1e-6) * max(1.0, abs(float(leaf[entry])))
    fd = (float(loss(_with_leaf(params, path, leaf + eps * direction)))
          - float(loss(_with_leaf(params, path, leaf - eps * direction)))) / (2 * eps)
    ad = float(np.sum(np.asarray(grad["synapses"][kind][name]) * direction))
    assert abs(fd) > 1e-8, (path, entry, fd)  # the parameter matters
    assert abs(ad - fd) <= 1e-4 * abs(fd), (path, entry, ad, fd)


def test_event_synapse_weight_gradient_matches_finite_differences(graded_net):
    net, loss, params, grad, _ = graded_net
    path = ("synapses", "Exp2Syn", "weight")
    leaf = params["synapses"]["Exp2Syn"]["weight"]
    direction = np.random.default_rng(5).uniform(0.5, 1.0, leaf.shape)
    eps = 1e-7
    fd = (float(loss(_with_leaf(params, path, leaf + eps * direction)))
          - float(loss(_with_leaf(params, path, leaf - eps * direction)))) / (2 * eps)
    ad = float(np.sum(np.asarray(grad["synapses"]["Exp2Syn"]["weight"]) * direction))
    assert abs(fd) > 1e-8
    assert abs(ad - fd) <= 1e-4 * abs(fd), (ad, fd)


# --- graded synapse kinetics against numpy -----------------------------------------
KIN = {"gS": 0.002, "k_minus": 0.1, "delta": 8.0}
KIN["v_th"] = -65.0 + KIN["delta"] * np.log(4.0)  # s_bar(-65 mV) = 0.2 = the initial s
TANH = {"gS": 0.05, "x_offset": -65.0, "slope": 0.05}  # no current while v_pre = -65 mV
DELAYS = [0.0, 0.26, 0.3]  # 0, round(10.4) = 10, round(12.0) = 12 steps
POST = {"g": 1e-3, "diam": 20.0, "length": 20.0}


@pytest.fixture(scope="module")
def kinetics_run():
    """A voltage-clamped passive presynaptic compartment (held at -65 mV for 2 ms, then
    -20 and -45 mV) drives one passive postsynaptic compartment per delay through an
    IonotropicSynapse (e_syn = 0) and a TanhRateSynapse, both with that delay. Each post
    cell's leak reversal is set so it rests at -65 mV with s = 0.2."""
    area = np.pi * POST["diam"] * POST["length"]
    g_leak = POST["g"] * area * 1e-2  # uS
    e_leak = -65.0 + KIN["gS"] * 0.2 * (-65.0 - 0.0) / g_leak
    pre = one_compartment()
    pre.vclamp(pre.soma(), amp=[-65.0, -20.0, -45.0], dur=[2.0, 3.0, 100.0], rs=0.01)
    posts = [one_compartment(POST["g"], e_leak, POST["diam"], POST["length"]) for _ in DELAYS]
    net = dx.Network([pre, *posts])
    net.record("v", net.cell(0).soma())
    for k, d in enumerate(DELAYS):
        post = net.cell(k + 1).soma()
        net.connect(net.cell(0).soma(), post, "IonotropicSynapse", e_syn=0.0, delay=d, **KIN)
        net.connect(net.cell(0).soma(), post, "TanhRateSynapse", delay=d, **TANH)
    for k in range(len(DELAYS)):
        post = net.cell(k + 1).soma()
        net.record("IonotropicSynapse.s", post).record("v", post)
    res = dx.simulate(net, 12.0, DT)
    tr = np.asarray(res.traces)
    return {"t": np.asarray(res.t), "v_pre": tr[0], "s": tr[1::2], "v": tr[2::2],
            "area": area, "e_leak": e_leak, "res": res, "net": net}


def _reference(v_pre, steps, area, e_leak, n_t):
    """s and post v by exponential Euler / backward Euler from the recorded v_pre."""
    s = np.empty(n_t)
    v = np.empty(n_t)
    s[0], v[0] = 0.2, -65.0
    cap = 1.0 * area * 1e-5 / DT  # nF / ms
    g_leak = POST["g"] * area * 1e-2
    for n in range(n_t - 1):
        vp = v_pre[max(n - steps, 0)]  # v_pre at t - delay
        # Jaxley's order: s advances first, and the step's current uses the new s
        s_bar = 1.0 / (1.0 + np.exp((KIN["v_th"] - vp) / KIN["delta"]))
        tau = (1.0 - s_bar) / KIN["k_minus"]
        s[n + 1] = s_bar + (s[n] - s_bar) * np.exp(-DT / tau)
        i = (g_leak * (v[n] - e_leak) + KIN["gS"] * s[n + 1] * (v[n] - 0.0)
             - TANH["gS"] * np.tanh((vp - TANH["x_offset"]) * TANH["slope"]))
        g = g_leak + KIN["gS"] * s[n + 1]
        v[n + 1] = v[n] - i / (cap + g)
    return s, v


def test_graded_synapse_current_and_conductance_are_recorded():
    """"<graded synapse>.i" / ".g" as documented (docs/cells.md), computed in the step from
    t and stored at t + dt: IonotropicSynapse gS s (v - e_syn) and gS s from the recorded
    s and v one step earlier; TanhRateSynapse -gS tanh(slope (v_pre - x_offset)), no
    conductance."""
    pre, post = (one_compartment(POST["g"], -65.0, POST["diam"], POST["length"]) for _ in "ab")
    pre.iclamp(pre.soma(), delay=1.0, dur=3.0, amp=0.05)
    net = dx.Network([pre, post])
    site = net.cell(1).soma()
    net.connect(net.cell(0).soma(), site, "IonotropicSynapse", e_syn=0.0, delay=0.0, **KIN)
    net.connect(net.cell(0).soma(), site, "TanhRateSynapse", delay=0.0, **TANH)
    for name in ("v", "IonotropicSynapse.s", "IonotropicSynapse.i", "IonotropicSynapse.g",
                 "TanhRateSynapse.i"):
        net.record(name, site)
    net.record("v", net.cell(0).soma())
    v, s, i, g, i_tanh, v_pre = np.asarray(dx.simulate(net, 6.0, DT).traces)
    # Jaxley's order: the step from t uses s at t + dt (advanced first, from v_pre(t))
    np.testing.assert_allclose(i[1:], KIN["gS"] * s[1:] * v[:-1], rtol=1e-12, atol=1e-18)
    np.testing.assert_allclose(g[1:], KIN["gS"] * s[1:], rtol=1e-12)
    np.testing.assert_allclose(i_tanh[1:], -TANH["gS"] * np.tanh(
        (v_pre[:-1] - TANH["x_offset"]) * TANH["slope"]), rtol=1e-12)
    assert np.ptp(i) > 1e-6 and np.ptp(i_tanh) > 1e-6  # both currents move


@pytest.mark.parametrize("k", range(len(DELAYS)))
def test_graded_kinetics_follow_exponential_euler_of_recorded_v_pre(kinetics_run, k):
    r = kinetics_run
    v_pre = r["v_pre"]
    assert v_pre.min() < -64.9 and v_pre.max() > -20.5  # the clamp moves v_pre through s_bar
    steps = int(round(DELAYS[k] / DT))
    s, v = _reference(v_pre, steps, r["area"], r["e_leak"], v_pre.size)
    assert np.ptp(s) > 0.3 and np.ptp(v) > 1.0
    np.testing.assert_allclose(r["s"][k], s, rtol=0, atol=1e-12)
    np.testing.assert_allclose(r["v"][k], v, rtol=0, atol=1e-9)


@pytest.mark.parametrize("k", [1, 2])
def test_delayed_graded_synapse_sees_v_pre_round_delay_over_dt_steps_late(kinetics_run, k):
    r = kinetics_run
    steps = int(round(DELAYS[k] / DT))
    assert steps == [0, 10, 12][k]
    n = r["s"].shape[1] - steps
    # everything rests until v_pre moves at 2 ms: the delayed run is the undelayed one shifted
    np.testing.assert_allclose(r["s"][k][steps:], r["s"][0][:n], rtol=0, atol=1e-12)
    np.testing.assert_allclose(r["v"][k][steps:], r["v"][0][:n], rtol=0, atol=1e-10)
    np.testing.assert_allclose(r["s"][k][:steps], 0.2, rtol=0, atol=1e-12)
    # one step less or more would not match
    assert np.max(np.abs(r["s"][k][steps + 1:] - r["s"][0][:n - 1])) > 1e-3


# --- trainables on a network --------------------------------------------------------
def test_trainables_on_a_network_share_and_round_trip(graded_net):
    net = graded_net[0]
    params = net.params
    w = np.asarray(params["synapses"]["Exp2Syn"]["weight"])
    seg = Trainables(net).add("Exp2Syn.weight", share="segment")
    theta = seg.init()
    assert seg.groups("Exp2Syn.weight") == ("syn0", "syn1")
    np.testing.assert_allclose(theta["Exp2Syn.weight"], w, rtol=1e-15)
    back = seg.apply(theta)
    for a, b in zip(jax.tree_util.tree_leaves(back), jax.tree_util.tree_leaves(params)):
        np.testing.assert_array_equal(a, b)
    new = seg.apply({"Exp2Syn.weight": jnp.array([0.01, 0.02])})
    np.testing.assert_allclose(new["synapses"]["Exp2Syn"]["weight"], [0.01, 0.02])
    np.testing.assert_array_equal(new["synapses"]["Exp2Syn"]["tau1"],
                                  params["synapses"]["Exp2Syn"]["tau1"])
    cell = Trainables(net).add("Exp2Syn.weight", share="cell").add("IonotropicSynapse.gS",
                                                                    share="cell")
    th = cell.init()
    np.testing.assert_allclose(th["Exp2Syn.weight"], [w.mean()], rtol=1e-15)
    out = cell.apply({"Exp2Syn.weight": jnp.array([0.007]),
                      "IonotropicSynapse.gS": jnp.array([1e-3])})
    np.testing.assert_allclose(out["synapses"]["Exp2Syn"]["weight"], [0.007, 0.007])
    np.testing.assert_allclose(out["synapses"]["IonotropicSynapse"]["gS"], [1e-3, 1e-3])
    # where= a network's cell: only the synapses on that cell
    on2 = Trainables(net).add("IonotropicSynapse.gS", net.cell(2), share="segment", label="g2")
    assert len(on2.groups("g2")) == 1
    out = on2.apply({"g2": jnp.array([0.123])})
    np.testing.assert_allclose(out["synapses"]["IonotropicSynapse"]["gS"], [0.005, 0.123])
    # a delay acts in whole steps: its gradient is 0, so training it is refused (it was
    # accepted, and a fit never moved it)
    for name in ("IonotropicSynapse.delay", "Exp2Syn.delay"):
        with pytest.raises(ValueError, match=rf"{name}: a delay acts in whole steps of dt"):
            Trainables(net).add(name)


def test_gradient_through_trainables_on_a_network_matches_finite_differences(graded_net):
    net, loss, params, _, grad_fn = graded_net
    tr = (Trainables(net).add("Exp2Syn.weight", share="segment", transform=Softplus())
          .add("IonotropicSynapse.gS", share="cell", transform=Softplus()))
    theta = tr.init()
    f = lambda th: loss(tr.apply(th))  # noqa: E731
    # reverse mode through apply (its vjp) on top of the simulation's gradient at the same
    # params (saves compiling the backward pass again); checked end to end against FD
    applied, vjp = jax.vjp(tr.apply, theta)
    np.testing.assert_allclose(applied["synapses"]["IonotropicSynapse"]["gS"],
                               params["synapses"]["IonotropicSynapse"]["gS"].mean(), rtol=1e-14)
    np.testing.assert_allclose(applied["synapses"]["Exp2Syn"]["weight"],
                               params["synapses"]["Exp2Syn"]["weight"], rtol=1e-14)
    (grad,) = vjp(grad_fn(applied))
    rng = np.random.default_rng(7)
    for label in tr.labels:
        direction = rng.uniform(0.5, 1.0, theta[label].shape)
        eps = 1e-5 * max(1.0, float(np.max(np.abs(theta[label]))))
        fd = (float(f({**theta, label: theta[label] + eps * direction}))
              - float(f({**theta, label: theta[label] - eps * direction}))) / (2 * eps)
        ad = float(np.sum(np.asarray(grad[label]) * direction))
        assert abs(fd) > 1e-8, (label, fd)
        assert abs(ad - fd) <= 1e-4 * abs(fd), (label, ad, fd)


# --- graded delays in whole steps ----------------------------------------------------
def _graded_s(delay):
    """The postsynaptic s of an IonotropicSynapse whose (clamped) presynaptic cell steps from
    -65 to -20 mV at 0.5 ms, read ``delay`` ms late, [81] over 2 ms at DT."""
    pre = one_compartment()
    pre.vclamp(pre.soma(), amp=[-65.0, -20.0], dur=[0.5, 10.0], rs=0.01)
    net = dx.Network([pre, one_compartment()])
    net.connect(net.cell(0).soma(), net.cell(1).soma(), "IonotropicSynapse", delay=delay,
                **KIN)
    net.record("IonotropicSynapse.s", net.cell(1).soma())
    return np.asarray(dx.simulate(net, 2.0, DT).traces[0])


def _assert_read_late(s, base, steps):
    """s is base shifted by exactly ``steps`` steps (s rests at first: so is base)."""
    np.testing.assert_allclose(s[steps:], base[:base.size - steps], rtol=0, atol=1e-14)
    assert np.abs(s[steps - 1:] - base[:base.size - steps + 1]).max() > 1e-6


def test_a_graded_delay_rounds_half_steps_up():
    """delay / dt = 2.5 steps reads v_pre 3 steps late (numpy's round gave 2: halves to
    even), as 1.5 reads it 2 late: the delayed run is the undelayed one shifted."""
    base = _graded_s(0.0)
    for halves, steps in ((3, 2), (5, 3)):
        _assert_read_late(_graded_s(halves * DT / 2), base, steps)


def test_a_graded_delay_typed_as_a_half_step_rounds_up_as_an_event_delay():
    """0.0375 and 0.0875 ms at dt 0.025 ms are 1.4999999999999998 and 3.4999999999999996
    steps in binary: floor(delay / dt + 1/2) read v_pre 1 and 3 steps late; rounded as an
    event's delay (NEURON's 1e-10 ms, halves up) they read it 2 and 4 steps late, as 0.0625
    (2.5 steps exactly) reads it 3."""
    from dendrax.delays import event_delay_steps

    base = _graded_s(0.0)
    for delay, steps in ((0.0375, 2), (0.0875, 4), (0.0625, 3)):
        assert int(event_delay_steps(delay, DT)) == steps
        if steps != 3:
            assert delay / DT < steps - 0.5  # the premise: just below the half in binary
        _assert_read_late(_graded_s(delay), base, steps)


# --- synapses reading each event's time (NEURON's t in NET_RECEIVE) ---------------------
class _LastEvent(dx.mechanisms.Synapse):
    """A depressing synapse that keeps the time of its last event (on_spike takes t): each
    event uses half of what recovered since the last one, in 10 ms."""

    name = "last_event_test"
    params = {"tau": 2.0}
    states = {"g": 0.0, "r": 1.0, "last": 0.0}

    def steady_state(self, v, params, env):
        one = jnp.ones_like(v)
        return {"g": 0.0 * one, "r": one, "last": 0.0 * one}

    def advance(self, v, states, params, env, dt):
        return {**states, "g": states["g"] * jnp.exp(-dt / params["tau"])}

    def on_spike(self, states, params, weight, t):
        r = 1.0 - (1.0 - states["r"]) * jnp.exp(-(t - states["last"]) / 10.0)
        return {"g": states["g"] + weight * 0.5 * r, "r": 0.5 * r, "last": t}

    def current(self, v, states, params):
        return states["g"] * v


def test_point_neuron_spikes_reach_a_time_reading_synapse_at_their_times():
    """A spike_generator's spike at t_s reaches the synapse at t_s + delay exactly (NEURON's
    1e-10 ms is a threshold crossing's: it was added here too); a point neuron firing
    several times in one step (parrot_neuron repeating a poisson_generator) is one call of
    the summed weight, as documented, whether or not another synapse of the placement gets
    several train spikes in one step (that made each of its spikes a call of its own)."""
    def run(extra_train):
        cell = one_compartment()
        net = dx.Network()
        c = net.add(cell)
        gen = net.population("spike_generator", 1, spike_times=[1.0, 2.5])
        net.connect(gen, c.soma(0.5), _LastEvent, weight=0.05, delay=0.5)
        pois = net.population("poisson_generator", 1, rate=20000.0)
        parrot = net.population("parrot_neuron", 1)
        net.connect(pois, parrot, weight=1.0, delay=0.1)
        net.connect(parrot, c.soma(0.5), _LastEvent, weight=0.05, delay=0.5)
        if extra_train:  # an unrelated synapse of the kind, 3 train spikes in one step
            net.connect(net.spike_source([1.0, 1.01, 1.02]), c.soma(0.5), _LastEvent,
                        weight=0.0, delay=0.0)
        net.record(f"{_LastEvent.name}[0].last", c.soma(0.5))
        net.record(f"{_LastEvent.name}[1].g", c.soma(0.5))
        res = dx.simulate(net, 4.0, 0.1, key=3)
        return np.asarray(res.traces), np.asarray(res.t)

    (last, g), t = run(False)
    assert abs(last[np.searchsorted(t, 2.0)] - 1.5) < 1e-12 and abs(last[-1] - 3.0) < 1e-12
    assert np.ptp(g) > 0.01  # not vacuous: the parrot's spikes arrive
    (last2, g2), _ = run(True)
    np.testing.assert_array_equal(g2, g)
    np.testing.assert_array_equal(last2, last)
