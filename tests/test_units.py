"""Quantities with units (pint) at every numeric entry point of cells, networks of cells and
simulate: converted to NEURON's units, or refused with the parameter and the unit named;
never a number read in another unit."""

import numpy as np
import pytest

import dendrax as dx

pint = pytest.importorskip("pint")
u = pint.UnitRegistry()


def _sections(length, diam):
    return [{"length": length[0], "diam": diam[0], "parent": -1, "region": "soma"},
            {"length": length[1], "diam": diam[1], "parent": 0, "parent_x": 1.0,
             "region": "dend"}]


def _cell(q):
    """The same cell, stimuli and synapse, in plain NEURON units (q False) or as
    quantities in other units (q True)."""
    if q:
        cell = dx.Cell.from_sections(_sections([0.02 * u.mm, 200e-6 * u.m], [20 * u.um, 1e-3 * u.mm]),
                                     nseg="d_lambda", freq=0.1 * u.kHz, Ra=1.0 * u.ohm * u.m,
                                     cm=0.01 * u.F / u.m**2)
        cell.insert("hh")
        cell.set("hh.gnabar", 150 * u.mS / u.cm**2, where="soma")
        cell.set("hh.el", -0.0543 * u.V)
        cell.set("L", 0.25 * u.mm, where="dend")
        cell.set("ena", 0.055 * u.V)
        cell.iclamp(cell.soma(), delay=1e-3 * u.s, dur=2 * u.ms, amp=300 * u.pA)
        cell.stimulate(cell.section(1)(0.5), np.array([0.0, 4e-3]) * u.s,
                       np.array([0.0, 50.0]) * u.pA)
        cell.synapse("Exp2Syn", cell.section(1)(0.9), spike_times=[2 * u.ms, 4e-3 * u.s],
                     weight=2 * u.nS, delay=500 * u.us, tau1=200 * u.us)
        cell.record_spikes(threshold=0.0 * u.V)
    else:
        cell = dx.Cell.from_sections(_sections([20.0, 200.0], [20.0, 1.0]), nseg="d_lambda",
                                     freq=100.0, Ra=100.0, cm=1.0)
        cell.insert("hh")
        cell.set("hh.gnabar", 0.15, where="soma")
        cell.set("hh.el", -54.3)
        cell.set("L", 250.0, where="dend")
        cell.set("ena", 55.0)
        cell.iclamp(cell.soma(), delay=1.0, dur=2.0, amp=0.3)
        cell.stimulate(cell.section(1)(0.5), [0.0, 4.0], [0.0, 0.05])
        cell.synapse("Exp2Syn", cell.section(1)(0.9), spike_times=[2.0, 4.0], weight=0.002,
                     delay=0.5, tau1=0.2)
        cell.record_spikes(threshold=0.0)
    cell.record("v", cell.section(1)(0.5))
    return cell


def test_a_cell_in_other_units_runs_as_in_neurons():
    plain = dx.simulate(_cell(False), 6.0, 0.025)
    units = dx.simulate(_cell(True), 6e-3 * u.s, 25 * u.us, v_init=-0.065 * u.V,
                        celsius=u.Quantity(6.3, u.degC))
    a, b = _cell(False), _cell(True)
    assert a.nseg.tolist() == b.nseg.tolist()
    for name in ("cm", "Ra", "L", "diam", "hh.gnabar", "hh.el", "ena"):
        np.testing.assert_allclose(b.get(name), a.get(name), rtol=1e-14)
    np.testing.assert_allclose(np.asarray(units.traces), np.asarray(plain.traces), rtol=0,
                               atol=1e-10)
    assert len(plain.spikes[0]) == 1  # the soma fires once
    np.testing.assert_array_equal(units.spikes[0], plain.spikes[0])


@pytest.mark.parametrize("call, message", [
    (lambda c: c.set("cm", 1.0 * u.mV), r"cm = 1\.0 millivolt cannot be expressed in uF/cm2 \(.*\); give it in uF/cm2"),
    (lambda c: c.set("hh.gkbar", 36 * u.ms), "hh.gkbar = .* cannot be expressed in S/cm2"),
    (lambda c: c.iclamp(c.soma(), delay=1 * u.mV, dur=1.0, amp=0.1), "iclamp delay .* ms"),
    (lambda c: c.iclamp(c.soma(), delay=1.0, dur=1.0, amp=0.1 * u.mV), "iclamp amp .* nA"),
    (lambda c: c.vclamp(c.soma(), amp=[-70 * u.ms], dur=[5.0]), "vclamp amp .* mV"),
    (lambda c: c.synapse("Exp2Syn", c.soma(), spike_times=[1.0], weight=1 * u.nA),
     "Exp2Syn.weight = .* cannot be expressed in uS"),
    (lambda c: dx.Cell.ball_and_stick(cm=1 * u.ohm), "cm = .* uF/cm2"),
    (lambda c: dx.simulate(c, 5 * u.mV, 0.025), "t_stop = .* cannot be expressed in ms"),
])
def test_a_quantity_in_the_wrong_dimension_is_refused(call, message):
    cell = dx.Cell.ball_and_stick(nseg=2)
    cell.insert("hh")
    cell.record("v")
    with pytest.raises(ValueError, match=message):
        call(cell)


def test_a_parameter_without_a_declared_unit_refuses_quantities():
    from dendrax.mechanisms.base import Channel

    class Leak(Channel):
        name = "leak_units_test"
        params = {"g": 1e-4, "e": -70.0}
        units = {"e": "mV"}  # g's unit not declared
        states = {}

        def current(self, v, states, params, env):
            return {"": params["g"] * (v - params["e"])}

    cell = dx.Cell.ball_and_stick(nseg=1)
    cell.insert(Leak)
    cell.set("leak_units_test.e", -0.06 * u.V)
    assert np.nanmax(cell.get("leak_units_test.e")) == pytest.approx(-60.0, rel=1e-14)
    with pytest.raises(ValueError, match="unit is not declared"):
        cell.set("leak_units_test.g", 1e-4 * u.S / u.cm**2)
    cell.set("leak_units_test.g", 2e-4)  # a plain number is taken in the documented unit


def test_network_sources_thresholds_and_positions_take_units():
    def build(q):
        net = dx.Network()
        for _ in range(2):
            cell = dx.Cell.ball_and_stick(nseg=1)
            cell.insert("hh")
            net.add(cell)
        src = net.spike_source([1e-3 * u.s, 3 * u.ms] if q else [1.0, 3.0])
        net.connect(src, net.cell(0).soma(), "Exp2Syn", weight=(20 * u.nS) if q else 0.02,
                    delay=(1 * u.ms) if q else 1.0)
        net.connect(net.cell(0).soma(), net.cell(1).soma(), "Exp2Syn",
                    weight=(20 * u.nS) if q else 0.02, delay=1.0,
                    threshold=(-0.01 * u.V) if q else -10.0)
        net.place(1, position=np.array([0.0, 0.1, 0.0]) * u.mm if q else [0.0, 100.0, 0.0])
        net.record_spikes(threshold=(0 * u.mV) if q else 0.0)
        return net

    plain, units = build(False), build(True)
    np.testing.assert_allclose(units.position(1), plain.position(1), rtol=1e-14)
    a, b = dx.simulate(plain, 20.0, 0.025), dx.simulate(units, 20.0, 0.025)
    assert all(len(s) for s in a.spikes) and len(a.spikes) == 2  # both cells fire
    for x, y in zip(b.spikes, a.spikes):
        np.testing.assert_array_equal(x, y)
    p = dx.Network().poisson_source(0.02 * u.kHz, 1, start=0 * u.ms, stop=1 * u.s)
    assert p.index == 0


def test_electrodes_take_units():
    a = dx.Electrodes(np.array([[0.0, 0.05, 0.0]]) * u.mm, sigma=3 * u.mS / u.cm)
    np.testing.assert_allclose(a.xyz, [[0.0, 50.0, 0.0]], rtol=1e-14)
    assert a.sigma == pytest.approx(0.3, rel=1e-14)
    with pytest.raises(ValueError, match="sigma = .* cannot be expressed in S/m"):
        dx.Electrodes([[0.0, 50.0, 0.0]], sigma=0.3 * u.ohm)
