"""Current dipole moments and what they make far away: EEG in a four-sphere head, MEG.

The current dipole moment of a cell is ``p = sum_k I_k r_k`` (nA um) over its segments,
with I_k the membrane current (nA) and r_k the segment's midpoint (um), as lfpykit's
``CurrentDipoleMoment``. (With no electrode current the I_k sum to zero, so p does not
depend on the origin.)

``eeg_four_sphere``: the corrected four-sphere head model (Naess et al. 2017, Front.
Hum. Neurosci. 11:490; brain, CSF, skull, scalp with outer radii ``radii`` and
conductivities ``sigmas``), written as Legendre series in the angle between dipole and
electrode. The radial part of p gives ``(p.z) / (4 pi s1 rz^2) sum_n n T_n P_n(cos t)``
and the tangential part ``(p_tan.e) / (4 pi s1 rz^2) sum_n T_n P_n'(cos t)``, with z, e
the unit vectors to the dipole and to the electrode, and T_n the shell's coefficient
(the same as lfpykit's ``FourSphereVolumeConductor``; every power of a radius ratio is
grouped so that none exceeds 1, which keeps the terms finite for thousands of n).

``meg``: the magnetic field of a current dipole in an infinite homogeneous conductor
(lfpykit's ``InfiniteHomogeneousVolCondMEG``), ``B = mu0 / (4 pi) p x R / |R|^3``.
"""

from __future__ import annotations

import warnings

import numpy as np

import jax
import jax.numpy as jnp
from jax import lax

from ..quantities import magnitude

RADII = (79000.0, 80000.0, 85000.0, 90000.0)  # um: brain, CSF, skull, scalp (outer)
SIGMAS = (0.3, 1.5, 0.015, 0.3)  # S/m
MU0 = 4e-7 * np.pi  # T m / A
FT_PER_NA_PER_UM = 1e12  # mu0 * (nA / um) in T is 1e-3 T: 1e12 fT


def dipole_matrix(geom) -> np.ndarray:
    """[3, N] the segment midpoints (um) as rows x, y, z (a zero-area end node's: the node):
    ``dipole_matrix(geom) @ i_membrane`` is the current dipole moment (nA um)."""
    return np.asarray(geom.mid.T)


def current_dipole_moment(i_membrane, geom):
    """[3, T] the current dipole moment (nA um) of membrane currents ``i_membrane`` [N, T]
    (nA) over a ``SegmentGeometry``."""
    return jnp.asarray(dipole_matrix(geom)) @ jnp.asarray(i_membrane)


def _check_dipole(dipole):
    dipole = magnitude(dipole, "nA*um", "dipole")
    if _concrete(dipole) and np.asarray(dipole).dtype.kind not in "iuf":
        raise ValueError(f"a dipole is real numbers (nA um), got {np.asarray(dipole).dtype} "
                         "values")
    p = jnp.asarray(dipole)
    if p.ndim not in (1, 2) or p.shape[0] != 3:
        raise ValueError(f"a dipole is [3] or [3, T] (nA um), got shape {p.shape}")
    if _concrete(p) and not np.all(np.isfinite(np.asarray(p))):
        raise ValueError("the dipole has non-finite values (a run that blew up?)")
    return p


def _concrete(x) -> bool:
    return not isinstance(x, jax.core.Tracer)


MAX_TERMS = 200_000  # eeg_four_sphere's default series at most (beyond: give n_terms)


def eeg_four_sphere(dipole, location, electrodes_xyz, radii=RADII, sigmas=SIGMAS, *,
                    n_terms: int | None = None):
    """The potential (uV) at scalp/skull/CSF/brain electrodes of a current dipole in the
    brain of the four-sphere head model (the sphere centre is the origin).

    Args:
        dipole: [3] or [3, T] current dipole moment, nA um (``res["dipole"]``).
        location: [3] where the dipole is (um), inside the brain sphere (0 < |r| < r1).
        electrodes_xyz: [E, 3] electrode positions (um) with |r_dipole| < |r| <= r4.
        radii: outer radii of brain, CSF, skull and scalp (um), increasing (lfpykit's
            default [79000, 80000, 85000, 90000]).
        sigmas: their conductivities (S/m) > 0 (default [0.3, 1.5, 0.015, 0.3]).
        n_terms: terms of the Legendre series; default: enough for the largest term
            ratio to fall below 1e-17 (computed from concrete positions; give it when
            differentiating with respect to positions).

    Returns:
        [E] or [E, T] potentials, uV (lfpykit's mV times 1e3).
    """
    p = _check_dipole(dipole)
    location, electrodes_xyz, radii = (magnitude(x, "um", name) for x, name in (
        (location, "location"), (electrodes_xyz, "electrodes_xyz"), (radii, "radii")))
    sigmas = magnitude(sigmas, "S/m", "sigmas")
    if _concrete(electrodes_xyz) and (np.ndim(electrodes_xyz) != 2 or np.shape(electrodes_xyz)[0]
                                      < 1 or np.shape(electrodes_xyz)[1] != 3):
        raise ValueError(f"electrodes_xyz must be [E, 3] (um) with E >= 1, got shape "
                         f"{np.shape(electrodes_xyz)}")
    radii = np.asarray(radii, float) if _concrete(radii) else radii
    sigmas = np.asarray(sigmas, float) if _concrete(sigmas) else sigmas
    if _concrete(radii) and (np.shape(radii) != (4,) or not np.all(np.isfinite(radii)) or not
                             (0 < radii[0] < radii[1] < radii[2] < radii[3])):
        raise ValueError(f"radii must be 4 increasing radii > 0 (um): brain, CSF, skull, scalp; "
                         f"got {radii!r}")
    if _concrete(sigmas) and (np.shape(sigmas) != (4,) or not np.all(np.isfinite(sigmas))
                              or not np.all(sigmas > 0)):
        raise ValueError(f"sigmas must be 4 finite conductivities > 0 (S/m), got {sigmas!r}")
    if n_terms is not None and (isinstance(n_terms, bool) or not isinstance(
            n_terms, (int, np.integer)) or n_terms < 1):
        raise ValueError(f"n_terms must be a whole number >= 1 (terms of the series), got "
                         f"{n_terms!r}")
    rz_vec = jnp.asarray(location, float)
    if rz_vec.shape != (3,):
        raise ValueError(f"location must be [3] (um), got shape {rz_vec.shape}")
    r_el = jnp.asarray(electrodes_xyz, float)
    if r_el.ndim != 2 or r_el.shape[1] != 3:
        raise ValueError(f"electrodes_xyz must be [E, 3] (um), got shape {r_el.shape}")
    for what, x in (("location", rz_vec), ("electrodes_xyz", r_el)):
        if _concrete(x) and not np.all(np.isfinite(np.asarray(x))):
            raise ValueError(f"{what} has non-finite values")
    rz = jnp.linalg.norm(rz_vec)
    r = jnp.linalg.norm(r_el, axis=1)
    if _concrete(rz) and _concrete(r) and _concrete(radii):
        rz_, r_ = float(rz), np.asarray(r)
        if not 0 < rz_ < radii[0]:
            raise ValueError(f"the dipole must be inside the brain sphere, 0 < |location| < "
                             f"{radii[0]:g} um; got |location| = {rz_:g} um")
        if np.any(r_ > radii[3] * (1 + 1e-12)) or np.any(r_ <= rz_):
            raise ValueError(f"every electrode must lie between the dipole and the scalp "
                             f"surface ({rz_:g} < |r| <= {radii[3]:g} um); got |r| = {r_}")
        q = np.max(np.maximum(rz_ / r_, rz_ * np.minimum(r_, radii[0]) / radii[0] ** 2))
        needed = np.ceil(np.log(1e-17) / np.log(q)) + 10 if q < 1 else np.inf
        if n_terms is None:
            if needed > MAX_TERMS:  # the series was cut there: another value, even the sign
                raise ValueError(
                    f"the dipole (|r| = {rz_:g} um) lies too close to the brain surface or an "
                    f"electrode for the four-sphere series: it needs about {needed:.3g} terms "
                    f"(at most {MAX_TERMS:,} by default); move them apart, or give n_terms")
            n_terms = int(max(needed, 50))
        elif n_terms < needed:
            warnings.warn(f"eeg_four_sphere: n_terms = {n_terms} is short of the about "
                          f"{needed:.3g} terms the series needs here to converge (largest "
                          "term ratio to 1e-17): the potentials may be off", RuntimeWarning,
                          stacklevel=2)
    if n_terms is None:
        raise ValueError("n_terms must be given when the positions are traced")
    t = _series(rz, r, radii, sigmas, int(n_terms))  # [E, n] coefficients T_n
    z = rz_vec / rz
    e = r_el / r[:, None]
    cos_t = jnp.clip(e @ z, -1.0, 1.0)
    leg, dleg = _legendre(cos_t, int(n_terms))  # [E, n]
    n = jnp.arange(1, int(n_terms) + 1)
    rad_sum = jnp.sum(n * t * leg, axis=1)  # [E]
    tan_sum = jnp.sum(t * dleg, axis=1)
    scale = 1e3 / (4 * jnp.pi * sigmas[0] * rz ** 2)  # mV -> uV
    p2 = p if p.ndim == 2 else p[:, None]
    p_rad = z @ p2  # [T]
    p_tan = p2 - z[:, None] * p_rad[None, :]  # [3, T]
    out = scale * (rad_sum[:, None] * p_rad[None, :] + tan_sum[:, None] * (e @ p_tan))
    return out if p.ndim == 2 else out[:, 0]


def _legendre(x, n_terms: int):
    """P_n(x) and P_n'(x) for n = 1 .. n_terms: [E, n_terms] each (three-term recurrences;
    P'_{n+1} = P'_{n-1} + (2n + 1) P_n)."""
    def body(carry, n):
        p_prev, p, d_prev, d = carry
        p_next = ((2 * n + 1) * x * p - n * p_prev) / (n + 1)
        d_next = d_prev + (2 * n + 1) * p
        return (p, p_next, d, d_next), (p_next, d_next)

    ones, zeros = jnp.ones_like(x), jnp.zeros_like(x)
    if n_terms == 1:
        return x[:, None], ones[:, None]
    _, (ps, ds) = lax.scan(body, (ones, x, zeros, ones), jnp.arange(1, n_terms, dtype=x.dtype))
    return (jnp.concatenate([x[:, None], ps.T], axis=1),
            jnp.concatenate([ones[:, None], ds.T], axis=1))


def _series(rz, r, radii, sigmas, n_terms: int):
    """T_n [E, n_terms] of each electrode's shell (the coefficients multiplying the Legendre
    functions), with every power of a radius ratio written as one that is <= 1."""
    r1, r2, r3, r4 = (radii[k] for k in range(4))
    s1, s2, s3, s4 = (sigmas[k] for k in range(4))
    n = jnp.arange(1, n_terms + 1, dtype=jnp.result_type(float))[None, :]
    a, b = (n + 1) / n, n / (n + 1)
    pw = lambda ratio, k: jnp.exp(k * jnp.log(ratio))  # noqa: E731  (ratio <= 1)
    r12, r23, r34 = r1 / r2, r2 / r3, r3 / r4
    s12, s23, s34 = s1 / s2, s2 / s3, s3 / s4
    q34, q23, q12 = pw(r34, 2 * n + 1), pw(r23, 2 * n + 1), pw(r12, 2 * n + 1)
    rc = (q34 - 1) / (a * q34 + 1)
    v = (b * s34 - rc) / (s34 + rc)
    rc = (b * q23 - v) / (q23 + v)
    y = (b * s23 - rc) / (s23 + rc)
    zn = (q12 - a * y) / (q12 + y)
    A = (a * s12 + zn) / (s12 - zn)  # c1n = A rz1^(n+1)
    d12, d23, d34 = q12 + y, q23 + v, a * q34 + 1
    B = (1 + A) * (1 + y) / (d12 * d23)  # c3n = B (rz/r3)^(n+1)
    R = r[:, None]
    k1 = n + 1
    rz_r = pw(rz / R, k1)
    brain = A * (rz / r1) * pw(rz * jnp.minimum(R, r1) / r1 ** 2, n) + rz_r
    Rc = jnp.clip(R, r1, r2)
    csf = (1 + A) * (pw(rz / r1, k1) * r12 * pw(r1 * Rc / r2 ** 2, n) + y * pw(rz / Rc, k1)) / d12
    Rs = jnp.clip(R, r2, r3)
    skull = B * (pw(rz / r3, k1) * pw(Rs / r3, n) + v * pw(rz / Rs, k1))
    Rp = jnp.clip(R, r3, r4)
    scalp = (1 + v) * B / d34 * (a * pw(rz / r4, k1) * pw(Rp / r4, n) + pw(rz / Rp, k1))
    return jnp.where(R <= r1, brain, jnp.where(R <= r2, csf, jnp.where(R <= r3, skull, scalp)))


def meg(dipole, location, sensors_xyz):
    """The magnetic field B (fT) at ``sensors_xyz`` [S, 3] (um) of a current dipole
    ``dipole`` [3] or [3, T] (nA um) at ``location`` [3] (um) in an infinite homogeneous
    conductor: ``B = mu0 / (4 pi) p x R / |R|^3``, R from the dipole to the sensor.

    Returns:
        [S, 3] or [S, 3, T] field components x, y, z in fT (1 fT = 1e-15 T; lfpykit's
        ``calculate_B`` gives mu0 H in units of 1e-3 T, i.e. 1e12 fT).
    """
    p = _check_dipole(dipole)
    loc = jnp.asarray(magnitude(location, "um", "location"), float)
    sens = jnp.asarray(magnitude(sensors_xyz, "um", "sensors_xyz"), float)
    if loc.shape != (3,):
        raise ValueError(f"location must be [3] (um), got shape {loc.shape}")
    if sens.ndim != 2 or sens.shape[1] != 3:
        raise ValueError(f"sensors_xyz must be [S, 3] (um), got shape {sens.shape}")
    R = sens - loc[None, :]
    dist = jnp.linalg.norm(R, axis=1)
    for what, x in (("location", loc), ("sensors_xyz", sens)):
        if _concrete(x) and not np.all(np.isfinite(np.asarray(x))):
            raise ValueError(f"{what} has non-finite values")
    if _concrete(dist) and np.any(np.asarray(dist) == 0):
        raise ValueError("a sensor sits exactly at the dipole's location: the field is infinite")
    p2 = p if p.ndim == 2 else p[:, None]
    cross = jnp.cross(p2.T[None, :, :], R[:, None, :])  # [S, T, 3]
    out = MU0 / (4 * jnp.pi) * FT_PER_NA_PER_UM * cross / dist[:, None, None] ** 3
    out = jnp.moveaxis(out, 2, 1)
    return out if p.ndim == 2 else out[:, :, 0]
