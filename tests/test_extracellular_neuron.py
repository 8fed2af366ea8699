"""Segment geometry and in-run LFP of real SWC cells against a NEURON-side computation.

NEURON side: the cell read with Import3d, segments' start and end points interpolated
along NEURON's own pt3d (``arc3d``, ``x3d``...) at the segment boundaries j L / nseg
(LFPy's ``Cell._collect_geometry``, without its 6-decimal rounding), ``seg.diam``, and
``i_membrane_`` recorded at every step with an Exp2Syn input; the LFP is lfpykit's
``LineSourcePotential`` on that geometry times those currents. dendrax side:
``cell.record_extracellular`` inside the run.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import dendrax as dx
from dendrax.extracellular import Electrodes, segment_geometry

neuron = pytest.importorskip("neuron", reason="NEURON is the reference (pip install neuron)")
lfpykit = pytest.importorskip("lfpykit", reason="lfpykit is the reference (pip install lfpykit)")
from neuron import h  # noqa: E402

from neuron_model import neuron_from_morphology, neuron_from_swc  # noqa: E402

h.load_file("stdrun.hoc")
SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "morphologies"
SWC_FILES = ["ball_and_stick.swc", "C010398B-P2.CNG.swc", "n120_ca1.swc",
             "NMO_49821_ca1_pyramidal.swc"]


def swc(name):
    path = SHARED / name
    if not path.exists():
        pytest.skip(f"real morphologies not found: {path} is absent (../shared/morphologies)")
    return path


def neuron_geometry(secs):
    """(start [n, 3], end [n, 3], diam [n]) of every NEURON segment, sections in order."""
    start, end, diam = [], [], []
    for sec in secs:
        n3d = int(sec.n3d())
        arc = np.array([sec.arc3d(i) for i in range(n3d)])
        xyz = np.array([[sec.x3d(i), sec.y3d(i), sec.z3d(i)] for i in range(n3d)])
        bounds = np.arange(sec.nseg + 1) * (sec.L / sec.nseg)
        pts = np.stack([np.interp(bounds, arc, xyz[:, k]) for k in range(3)], 1)
        start.append(pts[:-1])
        end.append(pts[1:])
        diam += [seg.diam for seg in sec]
    return np.concatenate(start), np.concatenate(end), np.array(diam)


def dendrax_order(cell):
    """dendrax node of each NEURON segment (sections in order, segments by x)."""
    c = cell.compartments
    return np.concatenate([c.first_centre[s] + np.arange(c.nseg[s]) for s in range(len(c.nseg))])


@pytest.mark.parametrize("nseg", [1, 3])
@pytest.mark.parametrize("name", SWC_FILES)
def test_segment_geometry_matches_neuron(name, nseg):
    path = swc(name)
    cell = dx.Cell(dx.read_morphology(path), nseg=nseg)
    secs = neuron_from_swc(path, nseg=nseg)
    start, end, diam = neuron_geometry(secs)
    geom = segment_geometry(cell).take(dendrax_order(cell))
    assert geom.has_area.all()
    scale = np.abs(start).max()
    assert np.abs(geom.start - start).max() <= 1e-12 * scale
    assert np.abs(geom.end - end).max() <= 1e-12 * scale
    np.testing.assert_allclose(geom.diam, diam, rtol=1e-12)
    # a zero-area end node: a point at the section's end, with the diameter of the
    # segment it ends (the clamp of its point source)
    full, c = segment_geometry(cell), cell.compartments
    for s in range(len(c.nseg)):
        node = int(c.end_node[s])
        if node >= 0:
            last = int(c.first_centre[s] + c.nseg[s] - 1)
            assert not full.has_area[node] and full.diam[node] == full.diam[last]
            np.testing.assert_array_equal(full.start[node], full.end[last])


def test_lfp_of_a_real_cell_matches_neuron_and_lfpykit():
    path = swc("C010398B-P2.CNG.swc")
    nseg, dt, t_stop, syn_x, spikes, weight = 3, 0.025, 15.0, 0.6, (2.0, 6.0), 0.05
    cell = dx.Cell(dx.read_morphology(path), nseg=nseg, Ra=100.0)
    cell.insert("hh")
    target = cell.section(len(cell.morphology.sections) // 2)(syn_x)
    cell.synapse("Exp2Syn", target, spike_times=spikes, weight=weight, tau1=0.5, tau2=3.0)
    soma = segment_geometry(cell).mid[cell.node(cell.soma(0.5))]
    rng = np.random.default_rng(0)
    xyz = soma + np.concatenate([rng.uniform(-150, 150, (12, 3)),
                                 [[0, 0, 0], [0, 1000.0, 0]]])  # at the soma; far away
    cell.record_extracellular(Electrodes(xyz, sigma=0.3)).record("v")
    res = dx.simulate(cell, t_stop, dt)

    secs = neuron_from_swc(path, nseg=nseg, Ra=100.0)
    for s in secs:
        s.insert("hh")
    h.usetable_hh = 0
    h.cvode.use_fast_imem(1)
    syn = h.Exp2Syn(secs[target.section](syn_x))
    syn.tau1, syn.tau2 = 0.5, 3.0
    nc = h.NetCon(None, syn)
    nc.weight[0] = weight
    fih = h.FInitializeHandler(lambda: [nc.event(t) for t in spikes])  # noqa: F841
    imem = [h.Vector().record(seg._ref_i_membrane_) for sec in secs for seg in sec]
    v = h.Vector().record(secs[0](0.5)._ref_v)
    h.cvode_active(0)
    h.secondorder, h.dt, h.celsius = 0, dt, 6.3
    h.finitialize(-65.0)
    h.continuerun(t_stop)
    h.cvode.use_fast_imem(0)
    imem = np.array([np.array(x) for x in imem])
    start, end, diam = neuron_geometry(secs)
    cg = lfpykit.CellGeometry(x=np.stack([start[:, 0], end[:, 0]], 1),
                              y=np.stack([start[:, 1], end[:, 1]], 1),
                              z=np.stack([start[:, 2], end[:, 2]], 1), d=diam)
    m = lfpykit.LineSourcePotential(cg, x=xyz[:, 0].copy(), y=xyz[:, 1].copy(),
                                    z=xyz[:, 2].copy(), sigma=0.3).get_transformation_matrix()
    ref = 1e3 * m @ imem  # uV
    ours = np.asarray(res["lfp"])
    assert np.asarray(res["v"]).max() > 0  # the input makes a spike: a large signal
    assert np.abs(np.asarray(res["v"])[0] - np.array(v)).max() < 1e-8
    assert ours.shape == ref.shape
    err = np.abs(ours - ref).max(axis=1) / np.abs(ref).max(axis=1)
    # measured ~1e-11: round-off of the two time loops (v agrees to ~1e-10 mV)
    assert err.max() < 1e-10, err
    assert res.units[-1] == "uV"


def test_lfp_keeps_a_synapse_at_a_section_end():
    """An Exp2Syn at the dendrite's tip, dend(1), sits on NEURON's zero-area end node, whose
    i_membrane_ is the synapse's current: the LFP and the dipole take it as a point at the
    tip (it was once left out: the currents summed to the synapse's, 0.28 nA, and the far
    field was its monopole). Reference: NEURON's i_membrane_ of every segment through
    lfpykit, and of the end node as a point source (I / (4 pi sigma r)) at the tip."""
    nseg, dt, t_stop, sigma = [1, 5], 0.025, 8.0, 0.3
    cell = dx.Cell.ball_and_stick(nseg=nseg, Ra=100.0)
    cell.insert("pas")
    tip = cell.section(1)(1.0)
    cell.synapse("Exp2Syn", tip, spike_times=[1.0], weight=0.01, tau1=0.5, tau2=3.0)
    geom = segment_geometry(cell)
    at = geom.start[cell.node(tip)]
    xyz = at + np.array([[0.0, 20.0, 0.0], [0.0, 0.0, 100.0], [-300.0, 50.0, 0.0],
                         [1e6, 0.0, 0.0]])
    cell.record_extracellular(Electrodes(xyz, sigma=sigma)).record_dipole()
    res = dx.simulate(cell, t_stop, dt)

    secs = neuron_from_morphology(cell.morphology, nseg, Ra=100.0)
    for s in secs:
        s.insert("pas")
    syn = h.Exp2Syn(secs[1](1.0))
    syn.tau1, syn.tau2 = 0.5, 3.0
    nc = h.NetCon(None, syn)
    nc.weight[0] = 0.01
    fih = h.FInitializeHandler(lambda: nc.event(1.0))  # noqa: F841
    h.cvode.use_fast_imem(1)
    imem = [h.Vector().record(seg._ref_i_membrane_) for sec in secs for seg in sec]
    i_tip = h.Vector().record(secs[1](1.0)._ref_i_membrane_)
    h.cvode_active(0)
    h.secondorder, h.dt, h.celsius = 0, dt, 6.3
    h.finitialize(-65.0)
    h.continuerun(t_stop)
    h.cvode.use_fast_imem(0)
    imem, i_tip = np.array([np.array(x) for x in imem]), np.array(i_tip)
    assert np.abs(i_tip).max() > 0.2  # nA: the synapse's current, at the end node
    np.testing.assert_allclose(imem.sum(0), -i_tip, rtol=0, atol=1e-12)  # Kirchhoff
    start, end, diam = neuron_geometry(secs)
    cg = lfpykit.CellGeometry(x=np.stack([start[:, 0], end[:, 0]], 1),
                              y=np.stack([start[:, 1], end[:, 1]], 1),
                              z=np.stack([start[:, 2], end[:, 2]], 1), d=diam)
    m = lfpykit.LineSourcePotential(cg, x=xyz[:, 0].copy(), y=xyz[:, 1].copy(),
                                    z=xyz[:, 2].copy(), sigma=sigma).get_transformation_matrix()
    r = np.linalg.norm(xyz - end[-1], axis=1)
    ref = 1e3 * (m @ imem + np.outer(1.0 / (4 * np.pi * sigma * r), i_tip))  # uV
    ours = np.asarray(res["lfp"])
    err = np.abs(ours - ref).max(axis=1) / np.abs(ref).max(axis=1)
    assert err[:3].max() < 1e-10, err
    # the far contact: no monopole left (the currents sum to zero), a dipole's 1/r^2 only
    assert np.abs(ours[3]).max() < 1e-3 * 1e3 * np.abs(i_tip).max() / (4 * np.pi * sigma * 1e6)
    dip = lfpykit.CurrentDipoleMoment(cg).get_transformation_matrix() @ imem
    dip += np.outer(end[-1], i_tip)
    np.testing.assert_allclose(np.asarray(res["dipole"]), dip, rtol=0,
                               atol=1e-10 * np.abs(dip).max())
