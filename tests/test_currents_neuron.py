"""Recorded currents of a branched cell against NEURON, and Kirchhoff's law.

A soma (hh) with two dendrites (pas; nseg 3 and 2), an IClamp at the soma, an SEClamp
on a dendrite that lets go after 2 ms, and an Exp2Syn driven by two spikes. Both
simulators record at every step: each segment's ``i_membrane`` (NEURON's
``i_membrane_``, nA), the soma's ``ina``, ``ik``, ``hh.il``, ``i_cap``, the dendrites'
``pas.i``, the clamps' ``i`` and the synapse's ``i`` and ``g``. The one-compartment
comparison of every channel's currents is in test_channels_neuron.py.
"""

from __future__ import annotations

import numpy as np
import pytest

import dendrax as dx

neuron = pytest.importorskip("neuron", reason="NEURON is the reference (pip install neuron)")

DT, T_STOP, V_INIT = 0.025, 12.0, -65.0
SPIKES = (1.0, 6.0)
SECTIONS = [  # length, diam, parent, nseg, region
    (20.0, 20.0, -1, 1, "soma"), (200.0, 1.0, 0, 3, "dend"), (150.0, 0.8, 0, 2, "dend")]
IC = (0.5, 8.0, 0.3)  # delay, dur, amp
VC = (-50.0, 2.0, 0.5)  # amp1, dur1, rs
SYN_X, SYN_W = 0.9, 0.004


def build_dendrax():
    cell = dx.Cell.from_sections(
        [{"length": L, "diam": d, "parent": p, "parent_x": 1.0, "region": r}
         for L, d, p, _, r in SECTIONS], nseg=[n for *_, n, _ in SECTIONS], Ra=100.0)
    cell.insert("hh", "soma")
    cell.insert("pas", "dend")
    cell.set("pas.e", -65.0)
    cell.iclamp(cell.soma(0.5), delay=IC[0], dur=IC[1], amp=IC[2])
    cell.vclamp(cell.section(1)(0.5), amp=[VC[0]], dur=[VC[1]], rs=VC[2])
    cell.synapse("Exp2Syn", cell.section(2)(SYN_X), spike_times=SPIKES, weight=SYN_W, tau1=0.5,
                 tau2=3.0)
    cell.record("i_membrane", cell.segments())
    for name in ("ina", "ik", "hh.il", "i_cap", "iclamp.i"):
        cell.record(name, cell.soma(0.5))
    cell.record("pas.i", [cell.section(1)(0.5), cell.section(2)(0.25)])
    cell.record("vclamp.i", cell.section(1)(0.5))
    cell.record("Exp2Syn.i", cell.section(2)(SYN_X))
    cell.record("Exp2Syn.g", cell.section(2)(SYN_X))
    return cell


def run_neuron(cell):
    from neuron import h

    h.load_file("stdrun.hoc")
    secs = []
    for k, (L, d, p, n, _) in enumerate(SECTIONS):
        sec = h.Section(name=f"currents_test_{k}")
        sec.L, sec.diam, sec.nseg, sec.Ra, sec.cm = L, d, n, 100.0, 1.0
        if p >= 0:
            sec.connect(secs[p](1.0))
        secs.append(sec)
    secs[0].insert("hh")
    for sec in secs[1:]:
        sec.insert("pas")
        for seg in sec:
            seg.pas.e = -65.0
    h.usetable_hh = 0
    h.cvode.use_fast_imem(1)
    ic = h.IClamp(secs[0](0.5))
    ic.delay, ic.dur, ic.amp = IC
    vc = h.SEClamp(secs[1](0.5))
    vc.amp1, vc.dur1, vc.rs = VC
    syn = h.Exp2Syn(secs[2](SYN_X))
    syn.tau1, syn.tau2 = 0.5, 3.0
    nc = h.NetCon(None, syn)  # spike times as events (the wheel has no VecStim)
    nc.weight[0] = SYN_W
    fih = h.FInitializeHandler(lambda: [nc.event(t) for t in SPIKES])  # noqa: F841
    refs = [secs[loc.section](loc.x)._ref_i_membrane_ for loc in cell.segments()]
    soma = secs[0](0.5)
    refs += [soma._ref_ina, soma._ref_ik, soma.hh._ref_il, soma._ref_i_cap, ic._ref_i,
             secs[1](0.5).pas._ref_i, secs[2](0.25).pas._ref_i, vc._ref_i, syn._ref_i, syn._ref_g]
    vecs = [h.Vector().record(r) for r in refs]
    h.cvode_active(0)
    h.secondorder = 0
    h.dt, h.celsius = DT, 6.3
    h.finitialize(V_INIT)
    h.continuerun(T_STOP)
    h.cvode.use_fast_imem(0)
    return np.array([np.array(v) for v in vecs])


@pytest.fixture(scope="module")
def runs():
    cell = build_dendrax()
    res = dx.simulate(cell, T_STOP, DT, v_init=V_INIT)
    return cell, res, np.asarray(res.traces), run_neuron(cell)


def test_currents_match_neuron(runs):
    cell, res, ours, ref = runs
    assert ours.shape == ref.shape
    scale = np.abs(ref).max(axis=1)
    err = np.abs(ours - ref).max(axis=1) / scale
    names = [f"{n} {cell.location_name(loc)}" for n, loc in res.labels]
    # round-off of NEURON's own scheme, relative to each current's peak: the soma's channel
    # and capacitive currents and the clamps' [measured <= 1.8e-9]; membrane currents in
    # the dendrite, whose small peaks meet the round-off of v near the stiff voltage clamp
    # (rs 0.5 MOhm) [measured <= 4.6e-8]; the synapse's conductance [3.5e-16]
    bound = {"i_membrane": 1e-7, "pas.i": 1e-7, "Exp2Syn.i": 1e-7, "Exp2Syn.g": 1e-13,
             "iclamp.i": 1e-14}
    limits = np.array([bound.get(n, 1e-8) for n, _ in res.labels])
    assert np.all(err < limits), [(n, e, b) for n, e, b in zip(names, err, limits) if e >= b]
    # none is vacuous: every current flows at some time
    assert np.all(scale > 1e-6), dict(zip(names, scale))


def test_units(runs):
    cell, res, *_ = runs
    units = dict(zip([n for n, _ in res.labels], res.units))
    assert units == {"i_membrane": "nA", "ina": "mA/cm2", "ik": "mA/cm2", "hh.il": "mA/cm2",
                     "i_cap": "mA/cm2", "iclamp.i": "nA", "pas.i": "mA/cm2", "vclamp.i": "nA",
                     "Exp2Syn.i": "nA", "Exp2Syn.g": "uS"}


def test_membrane_currents_sum_to_the_electrodes(runs):
    """Kirchhoff: the axial currents cancel over the cell, so the membrane currents of all
    segments add up to what the electrodes inject (0 when none does)."""
    cell, res, ours, _ = runs
    n_seg = len(cell.segments())
    total = ours[:n_seg].sum(axis=0)
    injected = res["iclamp.i", cell.soma(0.5)] + res["vclamp.i", cell.section(1)(0.5)]
    # [measured 2.7e-14 of the largest membrane current here, 1.7e-11 in the quiet cell]
    assert np.abs(total - np.asarray(injected)).max() < 1e-10 * np.abs(ours[:n_seg]).max()
    quiet = dx.Cell.ball_and_stick(nseg=4)
    quiet.insert("hh")
    quiet.synapse("Exp2Syn", quiet.section(1)(0.5), spike_times=[1.0], weight=0.01)
    quiet.record("i_membrane", quiet.segments())
    r = np.asarray(dx.simulate(quiet, 5.0, DT).traces)
    assert np.abs(r).max() > 1e-3 and np.abs(r.sum(axis=0)).max() < 1e-10 * np.abs(r).max()
