"""Extracellular readouts recorded inside a run: cells, networks, placement, pieces,
Kirchhoff's law, gradients, saving."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import dendrax as dx
from dendrax.extracellular import (Electrodes, dipole_matrix, placed_geometry, segment_geometry,
                                   soma_centre)

DT = 0.025
XYZ = np.array([[30.0, 0, 10], [50.0, 40, 100], [-20.0, 5, 0], [120.0, 80, 3]])


def ball_and_stick(nseg=(1, 6)):
    cell = dx.Cell.ball_and_stick(nseg=list(nseg), Ra=100.0)
    cell.insert("hh")
    cell.synapse("Exp2Syn", cell.section(1)(0.7), spike_times=[1.0, 4.0], weight=0.02)
    return cell


def full_currents(cell, res, name="i_membrane"):
    """The recorded i_membrane of every segment as [n_nodes, n_t] (zeros at junctions)."""
    im = np.asarray(res[name])
    out = np.zeros((cell.n_nodes, im.shape[1]))
    out[[cell.node(loc) for loc in cell.segments()]] = im
    return out


@pytest.mark.parametrize("method", ["linesource", "pointsource", "root_as_point"])
def test_in_run_lfp_is_the_matrix_times_the_membrane_currents(method):
    cell = ball_and_stick()
    cell.record("i_membrane", cell.segments())
    el = Electrodes(XYZ, sigma=0.3, method=method)
    cell.record_extracellular(el).record_dipole()
    res = dx.simulate(cell, 8.0, DT)
    geom = segment_geometry(cell)
    currents = full_currents(cell, res)
    root = [int(cell.compartments.first_centre[0])]
    lfp = np.asarray(res["lfp"])
    assert lfp.shape == (4, res.t.shape[0]) and np.abs(lfp).max() > 1.0
    np.testing.assert_allclose(lfp, el.matrix(geom, roots=root) @ currents, rtol=1e-12,
                               atol=1e-12 * np.abs(lfp).max())
    np.testing.assert_allclose(np.asarray(res["dipole"]), dipole_matrix(geom) @ currents,
                               rtol=1e-12, atol=1e-12 * np.abs(res["dipole"]).max())
    assert [u for (n, _), u in zip(res.labels, res.units) if n == "lfp"] == ["uV"] * 4
    assert [u for (n, _), u in zip(res.labels, res.units) if n == "dipole"] == ["nA um"] * 3


def test_lfp_with_record_every_and_in_pieces():
    cell = ball_and_stick()
    cell.record_extracellular(Electrodes(XYZ)).record_dipole("p")
    whole = dx.simulate(cell, 6.0, DT)
    every = dx.simulate(cell, 6.0, DT, record_every=4)
    pieces = dx.simulate(cell, 6.0, DT, chunk=40)
    for name in ("lfp", "p"):
        ref = np.asarray(whole[name])
        np.testing.assert_allclose(np.asarray(every[name]), ref[:, ::4], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(np.asarray(pieces[name]), ref, rtol=1e-12, atol=1e-12)


def test_far_field_is_the_dipole_potential():
    """Kirchhoff: with no electrode the membrane currents sum to zero, so far away the
    potential is the dipole's, p.R / (4 pi sigma R^3), with an error falling as 1/R."""
    cell = ball_and_stick(nseg=(1, 11))
    direction = np.array([0.3, 0.8, -0.52])
    direction /= np.linalg.norm(direction)
    centre = soma_centre(cell)
    dist = np.array([1e3, 1e4, 1e5])
    cell.record_extracellular(Electrodes(centre + dist[:, None] * direction, sigma=0.3))
    cell.record_dipole().record("i_membrane", cell.segments())
    res = dx.simulate(cell, 8.0, DT)
    total = np.asarray(res["i_membrane"]).sum(axis=0)
    assert np.abs(total).max() < 1e-9 * np.abs(np.asarray(res["i_membrane"])).max()
    p = np.asarray(res["dipole"])  # about the origin; the same about any point (sum i = 0)
    dipole = 1e3 * (direction @ p) / (4 * np.pi * 0.3 * dist[:, None] ** 2)  # uV
    peak = np.argmax(np.abs(dipole[0]))
    rel = np.abs(np.asarray(res["lfp"])[:, peak] - dipole[:, peak]) / np.abs(dipole[:, peak])
    assert rel[-1] < 1e-2 and rel[1] < 0.2 and rel[2] < rel[1] / 5, rel


def test_gradient_of_an_lfp_loss_matches_finite_differences():
    cell = dx.Cell.ball_and_stick(nseg=[1, 5], Ra=100.0)
    cell.insert("pas", "dend").set("pas.g", 2e-4, "dend").set("pas.e", -65.0, "dend")
    cell.insert("hh", "soma")
    cell.synapse("Exp2Syn", cell.section(1)(0.8), spike_times=[0.5], weight=0.005)
    cell.record_extracellular(Electrodes(XYZ[:2]))
    params = dx.lower(cell).params

    def loss(p):
        return jnp.sum(dx.simulate(cell, 4.0, DT, params=p)["lfp"] ** 2)

    g = jax.grad(loss)(params)
    for path, eps in ((("channels", "hh", "gkbar"), 1e-6), (("channels", "pas", "g"), 1e-8),
                      (("synapses", "Exp2Syn", "weight"), 1e-7)):
        leaf, gl = params, g
        for k in path:
            leaf, gl = leaf[k], gl[k]

        def at(h):
            p = jax.tree_util.tree_map(lambda x: x, params)
            node = p
            for k in path[:-1]:
                node = node[k]
            node[path[-1]] = leaf + h
            return float(loss(p))

        fd = (at(eps) - at(-eps)) / (2 * eps)
        ad = float(np.sum(np.asarray(gl)))
        assert abs(fd) > 0 and abs(ad - fd) <= 1e-5 * abs(fd), (path, ad, fd)


def test_network_positions_rotations_and_sums():
    cell = ball_and_stick()
    positions = np.array([[0.0, 0, 0], [200.0, -50, 30], [-100.0, 300, 0]])
    rotations = np.array([[0.0, 0, 0], [0.3, -1.1, 0.7], [np.pi / 2, 0, 0]])
    net = dx.Network.replicate(cell, 3, positions=positions, rotations=rotations)
    for i in range(3):
        np.testing.assert_allclose(net.position(i), positions[i])
        geom = placed_geometry(net.cells[i], positions[i], rotations[i])
        np.testing.assert_allclose(soma_centre(net.cells[i], geom), positions[i], atol=1e-12)
        net.cell(i).record("i_membrane", net.cell(i).segments())
    el = Electrodes(XYZ)
    net.record_extracellular(el).record_extracellular(el, name="lfp01", cells=[0, 1])
    net.record_dipole().record_dipole("per_cell", per_cell=True)
    res = dx.simulate(net, 6.0, DT)
    parts, dipoles = [], []
    for i in range(3):
        geom = placed_geometry(net.cells[i], positions[i], rotations[i])
        rows = [k for k, (n, loc) in enumerate(res.labels) if n == "i_membrane" and loc.cell == i]
        im = np.asarray(res.traces)[rows]
        cur = np.zeros((net.cells[i].n_nodes, im.shape[1]))
        cur[[net.cells[i].node(loc) for loc in net.cells[i].segments()]] = im
        parts.append(el.matrix(geom) @ cur)
        dipoles.append(dipole_matrix(geom) @ cur)
    scale = np.abs(parts[0]).max()
    np.testing.assert_allclose(np.asarray(res["lfp"]), sum(parts), atol=1e-11 * scale)
    np.testing.assert_allclose(np.asarray(res["lfp01"]), parts[0] + parts[1], atol=1e-11 * scale)
    per = np.asarray(res["per_cell"]).reshape(3, 3, -1)
    np.testing.assert_allclose(per, np.stack(dipoles), atol=1e-11 * np.abs(per).max())
    np.testing.assert_allclose(np.asarray(res["dipole"]), per.sum(axis=0),
                               atol=1e-11 * np.abs(per).max())
    # rotating a cell and its electrodes together changes nothing
    rot = dx.extracellular.rotation_matrix(rotations[1])
    alone = ball_and_stick()
    centre = soma_centre(alone)
    alone.record_extracellular(Electrodes((XYZ - positions[1]) @ rot + centre))
    np.testing.assert_allclose(np.asarray(dx.simulate(alone, 6.0, DT)["lfp"]), parts[1],
                               atol=1e-11 * np.abs(parts[1]).max())


def test_network_add_places_cells_and_readout_names_are_checked():
    net = dx.Network()
    net.add(ball_and_stick(), position=[10.0, 20.0, 30.0])
    net.add(ball_and_stick())
    np.testing.assert_allclose(net.position(0), [10.0, 20.0, 30.0])
    np.testing.assert_allclose(net.position(1), soma_centre(net.cells[1]))
    net.record_extracellular(Electrodes(XYZ))
    with pytest.raises(ValueError, match="'lfp' is already recorded"):
        net.record_extracellular(Electrodes(XYZ))
    with pytest.raises(ValueError, match="a readout name must be"):
        net.record_dipole("v")
    with pytest.raises(TypeError, match="expected dendrax.Electrodes"):
        net.record_extracellular(XYZ, name="raw")
    with pytest.raises(IndexError, match="out of range"):
        net.record_dipole("d", cells=[5])
    with pytest.raises(ValueError, match="a position is 3 finite coordinates"):
        net.add(ball_and_stick(), position=[0.0, 1.0])
    with pytest.raises(ValueError, match="rotation must be None, 3 angles"):
        net.add(ball_and_stick(), rotation=[0.0, 1.0])
    with pytest.raises(ValueError, match="orthonormal"):
        net.add(ball_and_stick(), rotation=2 * np.eye(3))
    with pytest.raises(ValueError, match="positions needs one entry per cell"):
        dx.Network.replicate(ball_and_stick(), 2, positions=np.zeros((3, 3)))
    net.cell(1).record_extracellular(Electrodes(XYZ), name="lfp")  # the cell's own: same name
    with pytest.raises(ValueError, match="two extracellular readouts are named \\['lfp'\\]"):
        dx.lower(net)


def test_save_refuses_and_nwb_writes(tmp_path):
    cell = ball_and_stick()
    cell.record("v").record_extracellular(Electrodes(XYZ)).record_dipole()
    with pytest.raises(ValueError, match="cannot save extracellular readouts \\['lfp', 'dipole'\\]"):
        dx.save(cell, tmp_path / "cell.json")
    net = dx.Network.replicate(ball_and_stick(), 2, positions=np.zeros((2, 3)))
    with pytest.raises(ValueError, match="cannot save the positions of cells \\[0, 1\\]"):
        dx.save(net, tmp_path / "net.json")
    pytest.importorskip("pynwb")
    from dendrax.nwb import read_nwb, write_nwb

    res = dx.simulate(cell, 2.0, DT)
    back = read_nwb(write_nwb(res, tmp_path / "cell.nwb", target=cell))
    data, unit = back["traces"][("lfp", "electrode[2]")]
    assert unit == "uV"
    np.testing.assert_allclose(data, np.asarray(res["lfp"])[2])
