"""NMODL point processes without running NEURON (NEURON's own runs of the same files:
tests/test_nmodl_synapses_neuron.py): NET_RECEIVE's flag and self-events, what a synapse
carries, one call per event, gradients through event times against central finite
differences, NET_RECEIVE's INITIAL, and a refusal."""

from __future__ import annotations

import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

pytest.importorskip("neuron.nmodl", reason="NEURON's NMODL framework (dendrax[nmodl])")

import dendrax as dx
from dendrax import nmodl
from dendrax.mechanisms.base import Synapse
from dendrax.nmodl import NmodlError
from dendrax.nmodl import registry as nmodl_registry

CASES = Path(__file__).resolve().parent / "nmodl_cases"


@pytest.fixture(autouse=True)
def _forget_registrations():
    yield
    nmodl_registry.unregister()


def _soma():
    return dx.Cell.from_sections([{"length": 20.0, "diam": 20.0, "parent": -1, "region": "soma"}])


def test_flag_is_0_for_a_spike_and_self_events_are_counted_when_slots_run_out():
    """NET_RECEIVE's flag is 0 for a spike (it was refused); a synapse that sends itself more
    events than it has slots for (8 pending) drops the rest and the run warns."""
    text = """NEURON { POINT_PROCESS flagsyn NONSPECIFIC_CURRENT i }
PARAMETER { g = 0.001 (uS) hold = 50 (ms) }
ASSIGNED { v (mV) i (nA) }
STATE { s }
BREAKPOINT { SOLVE st METHOD cnexp  i = g * s * v }
DERIVATIVE st { s' = -s/1000 }
NET_RECEIVE(w) {
    if (flag == 0) { s = s + w  net_send(hold, 1) }
    if (flag == 1) { s = s - w }
}
"""
    cls = nmodl.load(text, register=False)
    assert cls.self_events == 8

    def run(times):
        cell = _soma()
        cell.synapse(cls, cell.soma(), spike_times=times, weight=1.0)
        cell.record("flagsyn.s")
        cell.record("flagsyn.net_send_lost")
        return np.asarray(dx.simulate(cell, 60.0, 0.025).traces)

    s, lost = run([1.0, 2.0, 3.0])  # each spike's self-event takes its weight back 50 ms on
    t = np.arange(s.size) * 0.025
    assert s[np.searchsorted(t, 3.5)] > 2.0 and s[-1] < 0 and lost[-1] == 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        s, lost = run(np.arange(1.0, 11.0))  # 10 pending at once: 2 dropped
    assert lost[-1] == 2
    assert any("self-event(s) (NMODL net_send) found" in str(w.message) for w in caught)


def test_exp2syn_like_carries_factor_and_clamped_tau1():
    cls = nmodl.load(CASES / "exp2synx.mod", register=False)
    assert issubclass(cls, Synapse)
    assert cls.carried == ("factor", "tau1")
    syn = cls()
    p = {"tau1": jnp.asarray([0.5, 3.0]), "tau2": jnp.asarray([5.0, 3.0]), "e": jnp.zeros(2)}
    s = syn.steady_state(jnp.full(2, -65.0), p, {})
    np.testing.assert_allclose(s["tau1"], [0.5, 0.9999 * 3.0], rtol=1e-15)
    from dendrax.mechanisms.exp2syn import peak_factor
    np.testing.assert_allclose(s["factor"], peak_factor(s["tau1"], p["tau2"]), rtol=1e-12)
    s = syn.on_spike(s, p, jnp.asarray([0.004, 0.0]))
    np.testing.assert_allclose(s["A"], [0.004 * float(s["factor"][0]), 0.0], rtol=1e-15)


def test_net_receive_runs_once_per_event_only_where_events_arrive():
    text = """
    NEURON { POINT_PROCESS Latch NONSPECIFIC_CURRENT i RANGE e }
    PARAMETER { e = 0 (mV) tau = 5 (ms) }
    ASSIGNED { v (mV) i (nA) }
    STATE { g (uS) }
    BREAKPOINT { SOLVE st METHOD cnexp  i = g * (v - e) }
    DERIVATIVE st { g' = -g / tau }
    NET_RECEIVE(w (uS)) { g = w }
    """
    latch = nmodl.load(text, register=False)
    cell = dx.Cell.ball_and_stick()
    site = cell.section(1)(0.5)
    # two events in one step (1.0, 1.01 ms): NEURON sets g = w twice, not g = 2 w
    cell.synapse(latch, site, spike_times=[1.0, 1.01, 3.0], weight=0.01)
    cell.record("Latch.g", site)
    res = dx.simulate(cell, 6.0, 0.025)
    t, g = np.asarray(res.t), np.asarray(res["Latch.g", site])
    # set to the weight in the step from each event, then decaying (cnexp is exact here)
    last = np.where(t > 3.0 + 0.0125, 3.0, np.where(t > 1.0 + 0.0125, 1.0, np.nan))
    expected = np.where(np.isnan(last), 0.0, 0.01 * np.exp(-(t - np.nan_to_num(last)) / 5.0))
    np.testing.assert_allclose(g, expected, rtol=1e-12, atol=1e-18)

# (mechanism, weight, parameters checked): stpx (NET_RECEIVE's per-connection arguments and
# t): U, tau_rec and the delay, which moves the events' times t, not their steps; pulsex
# (net_send): Cdur, which moves the self-events' times, and the weight
EVENT_TIME_CASES = [("stpx", 0.05, ("U", "tau_rec", "delay")), ("pulsex", 0.01, ("Cdur", "weight"))]


@pytest.mark.parametrize("mech, weight, names", EVENT_TIME_CASES, ids=[c[0] for c in EVENT_TIME_CASES])
def test_gradient_through_a_synapse_using_event_times(mech, weight, names):
    """The gradient of the mean v against central finite differences."""
    nmodl.load(CASES / f"{mech}.mod")
    cell = _soma()
    cell.insert("pas")
    cell.synapse(mech, cell.soma(), spike_times=[1.0, 1.01, 3.3, 6.0], weight=weight, delay=0.3)
    cell.record("v")
    params = cell.params

    def loss(p):
        return dx.simulate(cell, 10.0, 0.025, params=p, v_init=-70.0).traces.mean()

    grad = jax.grad(loss)(params)["synapses"][mech]
    for name in names:
        base = float(params["synapses"][mech][name][0])
        h = 1e-6 * max(abs(base), 1.0)

        def at(x):
            syn = {**params["synapses"][mech], name: jnp.asarray([x])}
            return float(loss({**params, "synapses": {mech: syn}}))

        fd = (at(base + h) - at(base - h)) / (2 * h)
        assert abs(fd) > 1e-6, name  # not vacuous
        np.testing.assert_allclose(float(grad[name][0]), fd, rtol=1e-5, err_msg=name)


def test_net_receive_initial_reads_the_connection_weight():
    """An INITIAL inside NET_RECEIVE reading the weight (NEURON's NetCon weight) and what the
    mechanism's INITIAL set (it runs after it, as NEURON's): it was accepted by the import
    and refused by the run ("reads 'weight', which it is not given")."""
    text = """NEURON { POINT_PROCESS wini NONSPECIFIC_CURRENT i RANGE scale }
    PARAMETER { scale = 3 }
    ASSIGNED { v (mV) i (nA) factor }
    STATE { g (uS) }
    INITIAL { g = 0  factor = 2*scale }
    BREAKPOINT { SOLVE st METHOD cnexp  i = g*v }
    DERIVATIVE st { g' = -g }
    NET_RECEIVE(weight (uS), w0 (uS), tsyn (ms)) {
        INITIAL { w0 = weight*factor  tsyn = t - 5 }
        g = g + w0  w0 = 0.5*w0  tsyn = t
    }
    """
    cls = nmodl.load(text, register=False)
    cell = _soma()
    cell.synapse(cls, cell.soma(), spike_times=[1.0], weight=0.01)
    for q in ("w0", "tsyn"):
        cell.record(f"wini.{q}")
    w0, tsyn = np.asarray(dx.simulate(cell, 2.0, 0.025).traces)
    assert w0[0] == 0.06 and tsyn[0] == -5.0  # weight x factor, t - 5 at t = 0
    assert w0[-1] == 0.03 and tsyn[-1] == 1.0  # after the event


def test_dt_in_a_point_process_current_refused():
    text = """NEURON { POINT_PROCESS dtsyn NONSPECIFIC_CURRENT i }
PARAMETER { g = 0.001 (uS) }
ASSIGNED { v (mV) i (nA) }
BREAKPOINT {
    i = g * (v + 65) * dt
}
NET_RECEIVE(w) { }
"""
    with pytest.raises(NmodlError) as err:
        nmodl.load(text, register=False)
    assert any(ln == 5 and "dt in BREAKPOINT of a POINT_PROCESS" in m
               for ln, m in err.value.problems), err.value.problems
