"""Multicompartment columns: L5PC-like cells in the laminar geometry with physical LFP (uV),
CSD (uA/mm^3), EEG (uV) and MEG (fT) through dendrax.extracellular. (The same small column
as docs/columns.md's example, so that one compilation serves both.)"""

import numpy as np
import pytest

import dendrax.column as dc
from dendrax.extracellular import csd


def small(center=(0.0, 0.0)):
    return (dc.configuration().runtime(seed=0, duration_ms=5.0, dt_ms=0.025)
            .column("A", ["L2/3", "L5"], 2, center_um=center).cell_types({"E": 1, "I": 1})
            .set_emitter("multicompartment", "l5pc_like")
            .drive(mean=0.5)
            .probes(["SPK", "Vm", "LFP", "CSD", "EEG", "MEG"], electrodes=6))


def test_detailed_column_physical_signals():
    model = dc.construct(small())
    net = model.network
    assert len(net.cells) == 2 and np.allclose(net.position(0), model.geometry.positions[0])
    sig = model.simulate()
    assert sig.units == {"t": "ms", "spikes": "1", "V_m": "mV", "LFP": "uV",
                         "CSD": "uA/mm^3", "EEG": "uV", "MEG": "fT"}
    assert sig.LFP.shape == (200, 6) and sig.CSD.shape == (200, 4)
    assert sig.EEG.shape == (200, 1) and sig.MEG.shape == (200, 1)
    for x in (sig.LFP, sig.CSD, sig.EEG, sig.MEG, sig.V_m):
        assert np.all(np.isfinite(x))
    assert np.abs(sig.LFP).max() > 0 and np.abs(sig.EEG).max() > 0
    z = model.geometry.electrodes[:, 2]
    assert np.allclose(sig.CSD, np.asarray(csd(sig.LFP.T, z, method="standard", vaknin=False)).T)
    # the soma depolarises under the 0.5 nA drive
    assert sig.V_m[-1].mean() > sig.V_m[0].mean()
    assert sig.source is None and sig.I_syn is None

    # the dipole is about the column's centre: moving the column sideways leaves the LFP
    # and the MEG (an infinite conductor: translation-invariant) as they are, though the
    # 0.5 nA drive makes the membrane currents sum to 1 nA (about the coordinates' origin
    # the MEG changed by 28%)
    moved = dc.construct(small(center=(2000.0, 0.0))).simulate()
    np.testing.assert_allclose(moved.LFP, sig.LFP, rtol=0, atol=1e-12 * np.abs(sig.LFP).max())
    np.testing.assert_allclose(moved.MEG, sig.MEG, rtol=1e-9, atol=1e-12 * np.abs(sig.MEG).max())
    # and the EEG: the column stands radially in the spherical head wherever its centre
    # (was: shifted flat, its pia 100 um below the surface at the axis only; far out its
    # dipole left the brain sphere, 12 mm: an error after the run)
    far = dc.construct(small(center=(0.0, 30000.0))).simulate()
    for other in (moved, far):
        np.testing.assert_allclose(other.EEG, sig.EEG, rtol=1e-9,
                                   atol=1e-12 * np.abs(sig.EEG).max())
    # run settings the drive, drawn when the model was built, cannot follow: refused
    with pytest.raises(ValueError, match="drawn up to its configuration's duration"):
        model.simulate(duration_ms=10.0)
    with pytest.raises(ValueError, match=r"build it with .runtime\(seed=1\)"):
        model.simulate(seed=1)


def test_the_meg_of_several_columns_is_one_component_of_their_summed_field():
    """Sensor s reads the field of every column's dipole, summed, along its own column's
    azimuthal direction. It added each column's field along that column's own direction:
    0.6156 fT, more than the summed field's magnitude (0.5992 fT), for two radial dipoles
    of 1000 nA um at (0, 0) and (0, 5000) um."""
    import jax.numpy as jnp

    from dendrax.column.detailed import azimuthal_meg
    from dendrax.column.geometry import build
    from dendrax.extracellular import meg

    cfg = (dc.configuration().column("A", ["L5"], 1, center_um=(0.0, 0.0))
           .column("B", ["L5"], 1, center_um=(0.0, 5000.0)).probes(["SPK"], electrodes=4))
    sensors = build(cfg).meg_sensors
    locations = [np.array([0.0, 0.0, 750.0]), np.array([0.0, 5000.0, 750.0])]
    p = jnp.asarray([[0.0], [0.0], [1000.0]])  # [3, T = 1] nA um, radial
    got = np.asarray(azimuthal_meg([p, p], locations, sensors))[:, 0]
    total = sum(np.asarray(meg(p, loc, sensors))[:, :, 0] for loc in locations)  # [S, 3]
    for s in range(2):
        axis = np.cross([0.0, 0.0, 1.0], sensors[s] - locations[s])
        assert got[s] == pytest.approx(total[s] @ axis / np.linalg.norm(axis), rel=1e-12)
        assert abs(got[s]) <= np.linalg.norm(total[s]) * (1 + 1e-12)
    alone = np.asarray(azimuthal_meg([p], locations[:1], sensors[:1]))[0, 0]
    assert got[0] != pytest.approx(alone)  # column B's field reaches sensor 0
