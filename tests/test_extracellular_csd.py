"""CSD from a laminar array on analytic sources (uA/mm^3)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate, special

from dendrax.extracellular import csd, delta_matrix

SIGMA = 0.3


def gaussian_csd(z, z0=0.0, s=120.0, amp=1.0):
    return amp * np.exp(-0.5 * ((z - z0) / s) ** 2)


def laminar_potential(z, z0=0.0, s=120.0, amp=1.0):
    """uV of an infinitely wide Gaussian current layer C(z) (uA/mm^3) in a medium of SIGMA:
    phi = -1/(2 sigma) int C(z') |z - z'| dz' (closed form), so -sigma phi'' = C."""
    u = z - z0
    inner = amp * s * np.sqrt(2 * np.pi) * (u * special.erf(u / (s * np.sqrt(2)))
                                            + s * np.sqrt(2 / np.pi) * np.exp(-0.5 * (u / s) ** 2))
    return -inner / (2 * SIGMA) * 1e-3  # (uA/mm^3) um^2 / (S/m) = 1e-3 uV


def test_standard_csd_recovers_a_laminar_gaussian_source():
    z = np.arange(-800.0, 801.0, 50.0)
    phi = laminar_potential(z)[:, None] * np.array([[1.0, -2.0]])
    ours = np.asarray(csd(phi, z, sigma=SIGMA, vaknin=False))
    true = gaussian_csd(z[1:-1])[:, None] * np.array([[1.0, -2.0]])
    # second difference: error h^2/12 C'''' ~ 1.5e-2 of the peak at h = 50, s = 120
    assert np.abs(ours - true).max() < 0.02 * np.abs(true).max()
    fine = np.arange(-800.0, 801.0, 10.0)
    err_fine = np.abs(np.asarray(csd(laminar_potential(fine), fine, sigma=SIGMA, vaknin=False))
                      - gaussian_csd(fine[1:-1])).max()
    assert err_fine < 0.001  # O(h^2)
    padded = np.asarray(csd(phi, z, sigma=SIGMA))
    assert padded.shape == phi.shape
    np.testing.assert_allclose(padded[1:-1], ours, rtol=1e-12)
    # Vaknin's ends: each end contact repeated one spacing out, so there the second
    # difference is (phi_1 - phi_0) / h^2; S/m uV/um^2 = 1e6 A/m^3 = 1e3 uA/mm^3
    h = 50.0
    np.testing.assert_allclose(padded[0], -SIGMA * (phi[1] - phi[0]) / h**2 * 1e3, rtol=1e-12)
    np.testing.assert_allclose(padded[-1], -SIGMA * (phi[-2] - phi[-1]) / h**2 * 1e3,
                               rtol=1e-12)
    assert np.all(np.abs(padded[[0, -1]]) > 1e-6 * np.abs(padded).max())
    # unequal spacing (17 / 33 um): the three-point formula is first order there,
    # error ~ (h+ - h-) / 3 times the third derivative (2.7e-2 of the peak here)
    zu = np.sort(np.concatenate([z, z[:-1] + 17.0]))
    err_u = np.abs(np.asarray(csd(laminar_potential(zu), zu, sigma=SIGMA, vaknin=False))
                   - gaussian_csd(zu[1:-1])).max()
    assert err_u < 0.04


def disc_potential(dz, radius):
    """uV on the axis of a uniform disc of radius ``radius`` (um) carrying 1 nA/um^2... by
    quadrature of point sources: int_0^R 2 pi rho K / (4 pi sigma sqrt(dz^2 + rho^2)) drho."""
    val, _ = integrate.quad(lambda rho: rho / (2 * SIGMA * np.sqrt(dz * dz + rho * rho)), 0, radius,
                            epsabs=1e-13, epsrel=1e-13)
    return val


def test_delta_icsd_matrix_is_the_potential_of_discs_and_inverts_it():
    z = np.arange(0.0, 1000.0, 100.0)
    diam = 500.0
    f = delta_matrix(z, SIGMA, diam)
    # a disc of surface density CSD * h (uA/mm^3 * um): potential by direct quadrature
    h = 100.0
    quad = np.array([[disc_potential(zi - zj, diam / 2) * h * 1e-3 for zj in z] for zi in z])
    np.testing.assert_allclose(f, quad, rtol=1e-9)
    rng = np.random.default_rng(0)
    true = rng.normal(size=(z.size, 3))
    phi = quad @ true
    np.testing.assert_allclose(np.asarray(csd(phi, z, sigma=SIGMA, method="delta", diam=diam)),
                               true, rtol=1e-7, atol=1e-7)


def test_delta_icsd_of_a_wide_gaussian_layer():
    """A layer much wider than the array: the delta iCSD with a wide disc recovers C."""
    z = np.arange(-500.0, 501.0, 50.0)
    ours = np.asarray(csd(laminar_potential(z, s=150.0), z, sigma=SIGMA, method="delta",
                          diam=1e6))
    true = gaussian_csd(z, s=150.0)
    inner = slice(3, -3)  # the ends see the truncated array
    assert np.abs(ours[inner] - true[inner]).max() < 0.03 * true.max()


@pytest.mark.parametrize("kwargs,message", [
    ({"z": [0.0, 1.0]}, "at least 3 contacts"),
    ({"z": [0.0, 2.0, 1.0, 3.0, 4.0]}, "strictly increasing or decreasing"),
    ({"sigma": 0.0}, "sigma must be one finite conductivity"),
    ({"method": "delta", "z": [0.0, 1.0, 3.0, 4.0, 5.0]}, "equally spaced"),
    ({"method": "delta", "diam": -1.0}, "diam must be a finite disc diameter"),
    ({"lfp": np.zeros((4, 2))}, "E = len\\(z\\) = 5"),
    ({"method": "delta", "diam": "abc"}, "diam must be a finite disc diameter"),
    ({"vaknin": "no"}, "vaknin must be True or False, got 'no'"),
    ({"lfp": np.full((5, 2), np.nan)}, "lfp has non-finite values"),
])
def test_bad_csd_inputs_are_refused(kwargs, message):
    args = {"lfp": np.zeros((5, 2)), "z": np.arange(5.0), **kwargs}
    with pytest.raises(ValueError, match=message):
        csd(args.pop("lfp"), args.pop("z"), **args)
