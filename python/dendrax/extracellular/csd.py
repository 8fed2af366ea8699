"""Current source density from a laminar electrode array (potentials along a line, z).

Units: potentials in uV, depths in um, conductivity in S/m, CSD in uA/mm^3 (positive:
current leaving the tissue's cells, a source; 1 S/m * uV/um^2 = 1e3 uA/mm^3).

* "standard": ``CSD = -sigma d^2 phi / dz^2`` by the three-point second difference
  (unequal spacings allowed). With ``vaknin=True`` (default) the array is extended by
  one contact past each end holding the end contact's potential (Vaknin et al. 1988),
  so every contact gets a CSD; with ``vaknin=False`` the two end contacts get none
  ([E - 2, T]).
* "delta": the delta-source inverse CSD (Pettersen et al. 2006, J. Neurosci. Methods
  154:116): the CSD is an infinitely thin disc of diameter ``diam`` at each contact
  (surface density CSD_j h, h the spacing), whose potential on the array's axis is
  ``phi_i = sum_j F_ij CSD_j``, ``F_ij = h / (2 sigma) (sqrt((z_i - z_j)^2 + (diam/2)^2)
  - |z_i - z_j|)``; the CSD is ``F^-1 phi``. Needs equal spacing.
"""

from __future__ import annotations

import numpy as np

import jax
import jax.numpy as jnp

from ..quantities import is_number, magnitude

CSD_METHODS = ("standard", "delta")
UA_PER_MM3 = 1e3  # (S/m) (uV / um^2) in uA/mm^3


def csd(lfp, z, *, sigma: float = 0.3, method: str = "standard", diam: float | None = None,
        vaknin: bool | None = None):
    """The current source density (uA/mm^3) at the contacts of a laminar array.

    Args:
        lfp: [E, T] (or [E]) potentials (uV) at depths ``z``.
        z: [E] contact depths (um), strictly increasing or decreasing.
        sigma: extracellular conductivity (S/m), finite and > 0.
        method: "standard" (second spatial difference) or "delta" (delta-source iCSD).
        diam: "delta" only (refused for "standard"): the diameter (um) of the disc
            sources (the lateral extent of the activity; default 500 um).
        vaknin: "standard" only (refused for "delta"): pad the ends as Vaknin et al.
            (default True) so that every contact gets a value; False gives the E - 2 inner
            contacts only.

    Returns:
        [E, T] (or [E - 2, T] for "standard" without Vaknin's padding) in uA/mm^3.
    """
    from .electrodes import check_sigma

    if method not in CSD_METHODS:
        raise ValueError(f"unknown CSD method {method!r}; choose one of {list(CSD_METHODS)}")
    for name, value, owner in (("diam", diam, "delta"), ("vaknin", vaknin, "standard")):
        if value is not None and method != owner:  # it was ignored
            raise ValueError(f"{name} applies to method={owner!r} only, not {method!r}")
    diam = 500.0 if diam is None else diam
    vaknin = True if vaknin is None else vaknin
    sigma = check_sigma(magnitude(sigma, "S/m", "sigma"))
    lfp, z, diam = (magnitude(lfp, "uV", "lfp"), magnitude(z, "um", "z"),
                    magnitude(diam, "um", "diam"))
    if not isinstance(vaknin, (bool, np.bool_)):
        raise ValueError(f"vaknin must be True or False, got {vaknin!r}")
    if not isinstance(lfp, jax.core.Tracer) and np.asarray(lfp).dtype.kind not in "iuf":
        raise ValueError(f"lfp must be numbers (uV), got {np.asarray(lfp).dtype} values")
    phi = jnp.asarray(lfp)
    if not isinstance(phi, jax.core.Tracer) and not np.all(np.isfinite(np.asarray(phi))):
        raise ValueError("lfp has non-finite values (a run that blew up?)")
    z = np.asarray(z, float)
    if z.ndim != 1 or z.size < 3 or not np.all(np.isfinite(z)):
        raise ValueError(f"z must be 1-D finite depths (um) of at least 3 contacts, got {z!r}")
    if phi.ndim not in (1, 2) or phi.shape[0] != z.size:
        raise ValueError(f"lfp must be [E] or [E, T] with E = len(z) = {z.size}, got shape "
                         f"{phi.shape}")
    dz = np.diff(z)
    if not (np.all(dz > 0) or np.all(dz < 0)):
        raise ValueError("z must be strictly increasing or decreasing (contacts in order)")
    if method == "standard":
        return -sigma * UA_PER_MM3 * _second_difference(phi, np.abs(z - z[0]), vaknin)
    h = np.abs(dz)
    if not np.allclose(h, h.mean(), rtol=1e-9):
        raise ValueError(f"the delta iCSD needs equally spaced contacts; spacings: {h}")
    if not is_number(diam) or not (
            np.isfinite(diam) and diam > 0):
        raise ValueError(f"diam must be a finite disc diameter > 0 (um), got {diam!r}")
    return jnp.linalg.solve(jnp.asarray(delta_matrix(z, sigma, diam)), phi)


def delta_matrix(z, sigma, diam) -> np.ndarray:
    """[E, E] the delta-iCSD forward matrix F (uV per uA/mm^3): the potential at contact i
    (um depths ``z``) of a thin disc source of diameter ``diam`` (um) at contact j with
    CSD 1 uA/mm^3 spread over the spacing h."""
    from .electrodes import check_sigma

    sigma = check_sigma(sigma)
    z = np.asarray(z, float)
    if z.ndim != 1 or z.size < 2 or not np.all(np.isfinite(z)) or np.any(np.diff(z) == 0):
        raise ValueError(f"z must be 1-D finite, distinct depths (um) of at least 2 contacts, "
                         f"got {z!r}")
    if not is_number(diam) or not (np.isfinite(diam) and diam > 0):
        raise ValueError(f"diam must be a finite disc diameter > 0 (um), got {diam!r}")
    h = float(np.abs(np.diff(z)).mean())
    d = np.abs(z[:, None] - z[None, :])
    # h / (2 sigma) (...) in um^2 m/S; times 1 uA/mm^3 = 1e3 A/m^3 gives 1e-3 uV
    return h / (2.0 * sigma) * (np.sqrt(d * d + (0.5 * diam) ** 2) - d) / UA_PER_MM3


def _second_difference(phi, z, vaknin: bool):
    """d^2 phi / dz^2 at the contacts (uV/um^2) by three-point differences over unequal
    spacings; with ``vaknin`` the ends repeat their contact one spacing further out."""
    if vaknin:
        phi = jnp.concatenate([phi[:1], phi, phi[-1:]], axis=0)
        z = np.concatenate([[z[0] - (z[1] - z[0])], z, [z[-1] + (z[-1] - z[-2])]])
    hm = (z[1:-1] - z[:-2])
    hp = (z[2:] - z[1:-1])
    shape = (-1,) + (1,) * (phi.ndim - 1)
    hm, hp = hm.reshape(shape), hp.reshape(shape)
    return 2.0 * ((phi[2:] - phi[1:-1]) / hp - (phi[1:-1] - phi[:-2]) / hm) / (hp + hm)
