"""Extracellular electrodes and the transfer matrices from membrane currents to potentials.

An infinite, homogeneous, isotropic, ohmic medium of conductivity sigma (S/m). A
segment k carrying membrane current I_k (nA, outward positive, NEURON's
``i_membrane_``) makes at electrode e the potential M[e, k] I_k, with M in uV per nA:

* "linesource" (Holt & Koch 1999; LFPy's default): the current spreads evenly along the
  segment's straight line from start to end, length L:
  ``M = 1e3 / (4 pi sigma L) * log((l + sqrt(l^2 + r^2)) / (h + sqrt(h^2 + r^2)))``
  with r the electrode's distance from the segment's axis and h, l its signed distances
  along the axis beyond the segment's end and start (written in the three forms without
  cancellation, as lfpykit does);
* "pointsource": the current leaves at the segment's midpoint:
  ``M = 1e3 / (4 pi sigma |r_e - r_mid|)``;
* "root_as_point": line sources, except the root segment of each cell (the first
  segment of its first section, the soma in cells read from SWC) which is a point
  source at its midpoint (lfpykit's ``RecExtElectrode(method="root_as_point")``).

Closer than a segment's radius the distance is taken as the radius (``r_limit = d/2``,
with d NEURON's ``seg.diam``), as lfpykit does: an electrode on or inside a segment
reads the potential at its membrane surface, finite. (1 nA / (S/m * um) = 1 mV.)
"""

from __future__ import annotations

import numpy as np

import jax
import jax.numpy as jnp

from ..quantities import magnitude

METHODS = ("linesource", "pointsource", "root_as_point")
UV_PER_NA = 1e3  # (nA / (S/m um)) in uV


def check_sigma(sigma) -> float:
    if isinstance(sigma, jax.core.Tracer):  # a traced conductivity (differentiating): trusted
        return sigma
    if isinstance(sigma, (bool, np.bool_, str, bytes)):
        raise ValueError(f"sigma must be one finite conductivity > 0 (S/m), got {sigma!r}")
    s = np.asarray(sigma, float)
    if s.shape != () or not np.isfinite(s) or not s > 0:
        raise ValueError(f"sigma must be one finite conductivity > 0 (S/m), got {sigma!r}")
    return float(s)


def check_xyz(xyz, what: str = "electrode positions") -> np.ndarray:
    if np.asarray(xyz).dtype.kind not in "iuf":
        raise ValueError(f"{what} must be numbers x, y, z (um), got "
                         f"{np.asarray(xyz).dtype} values")
    a = np.asarray(xyz, float)
    if a.ndim == 1 and a.shape == (3,):
        a = a[None]
    if a.ndim != 2 or a.shape[1] != 3 or a.shape[0] < 1:
        raise ValueError(f"{what} must be an array [n, 3] of x, y, z (um), got shape "
                         f"{np.shape(xyz)}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{what} must be finite, got {a[~np.isfinite(a).all(axis=1)][:3]}")
    return a


def check_method(method) -> str:
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {list(METHODS)}")
    return method


class Electrodes:
    """Point contacts in an infinite homogeneous medium.

    Args:
        xyz: [E, 3] contact positions (um), in the coordinates of the cells (a network's
            cells as placed by ``Network.add(..., position=, rotation=)``).
        sigma: extracellular conductivity (S/m), finite and > 0.
        method: "linesource" (default), "pointsource" or "root_as_point" (see the module
            docstring).

    ``cell.record_extracellular(el)`` then gives ``res["lfp"]``, [E, n_t] in uV.
    """

    __slots__ = ("xyz", "sigma", "method")

    def __init__(self, xyz, *, sigma: float = 0.3, method: str = "linesource"):
        xyz = check_xyz(magnitude(xyz, "um", "electrode positions"))
        xyz.setflags(write=False)
        object.__setattr__(self, "xyz", xyz)
        object.__setattr__(self, "sigma", check_sigma(magnitude(sigma, "S/m", "sigma")))
        object.__setattr__(self, "method", check_method(method))

    def __setattr__(self, name, value):
        # what a cell records with is compiled into its run: changed afterwards it would be
        # ignored (or unchecked)
        raise AttributeError(f"Electrodes cannot be changed (its {name} is part of the "
                             "recordings made with it): make a new Electrodes(xyz, sigma=, "
                             "method=)")

    def __reduce__(self):  # pickling: built again, through the checks
        return _rebuilt, (np.asarray(self.xyz), self.sigma, self.method)

    def __copy__(self):  # unchangeable: a copy is itself
        return self

    def __deepcopy__(self, memo):
        return self

    def __len__(self) -> int:
        return int(self.xyz.shape[0])

    def __repr__(self) -> str:
        return f"Electrodes({len(self)} contacts, sigma={self.sigma:g} S/m, method={self.method!r})"

    def __eq__(self, other) -> bool:
        return (isinstance(other, Electrodes) and self.method == other.method
                and self.sigma == other.sigma and np.array_equal(self.xyz, other.xyz))

    __hash__ = None

    def to_dict(self) -> dict:
        """JSON-able: {"xyz": [[x, y, z], ...], "sigma", "method"}."""
        return {"xyz": self.xyz.tolist(), "sigma": self.sigma, "method": self.method}

    @classmethod
    def from_dict(cls, d: dict) -> "Electrodes":
        """The inverse of ``to_dict``: every key it writes, and no other."""
        keys = {"xyz", "sigma", "method"}
        if not isinstance(d, dict) or set(d) != keys:
            got = sorted(d) if isinstance(d, dict) else type(d).__name__
            raise ValueError(f"an Electrodes dict has exactly the keys {sorted(keys)} (as "
                             f"to_dict writes them), got {got}")
        return cls(d["xyz"], sigma=d["sigma"], method=d["method"])

    def matrix(self, geom, roots=()) -> np.ndarray:
        """[E, N] float64 transfer matrix (uV per nA) for a ``SegmentGeometry`` of N nodes
        (a zero-area end node, whose current is that of the point processes there, as a
        point source); ``roots``: the root segment of each cell (for "root_as_point")."""
        if not geom.start.shape[0]:
            return np.zeros((len(self), 0))
        start, end, diam = geom.start, geom.end, geom.diam
        if self.method == "pointsource":
            m = _point_source(self.xyz, 0.5 * (start + end), diam, self.sigma)
        else:
            m = _line_source(self.xyz, start, end, diam, self.sigma)
            dot = np.flatnonzero(np.all(start == end, axis=1))
            if dot.size:  # a segment of zero length is a point
                m = jnp.asarray(m).at[:, dot].set(
                    _point_source(self.xyz, start[dot], diam[dot], self.sigma))
            if self.method == "root_as_point" and len(roots):
                col = np.asarray(roots, int)
                pt = _point_source(self.xyz, 0.5 * (start[col] + end[col]), diam[col],
                                         self.sigma)
                m = jnp.asarray(m).at[:, col].set(pt)
        return np.asarray(m)


def point_source_matrix(xyz, mid, diam, sigma):
    """[E, N] uV per nA from point sources at ``mid`` [N, 3] (um) to contacts ``xyz``
    [E, 3] (um) in a medium of ``sigma`` (S/m); distances below ``diam / 2`` [N] are
    taken as diam / 2. Pure JAX: differentiable in every argument; concrete arguments are
    checked (finite positions, diam > 0, sigma > 0, the shapes)."""
    _check_sources(xyz, {"mid": mid}, diam, sigma)
    return _point_source(xyz, mid, diam, sigma)


def _point_source(xyz, mid, diam, sigma):
    xyz, mid, diam = jnp.asarray(xyz), jnp.asarray(mid), jnp.asarray(diam)
    r2 = jnp.sum((xyz[:, None, :] - mid[None, :, :]) ** 2, axis=-1)
    r2 = jnp.maximum(r2, (0.5 * diam)[None, :] ** 2)
    return UV_PER_NA / (4.0 * jnp.pi * sigma * jnp.sqrt(r2))


def line_source_matrix(xyz, start, end, diam, sigma):
    """[E, N] uV per nA from line sources ``start`` -> ``end`` [N, 3] (um, nonzero
    lengths) to contacts ``xyz`` [E, 3] (um) in a medium of ``sigma`` (S/m); axial
    distances below ``diam / 2`` [N] are taken as diam / 2. Pure JAX: differentiable;
    concrete arguments are checked (as ``point_source_matrix``'s, and lengths > 0)."""
    _check_sources(xyz, {"start": start, "end": end}, diam, sigma)
    if not any(isinstance(a, jax.core.Tracer) for a in (start, end)):
        length = np.linalg.norm(np.asarray(end, float) - np.asarray(start, float), axis=-1)
        if np.any(length <= 0):
            raise ValueError(f"line source {int(np.argmax(length <= 0))} has length 0 (start "
                             "== end): use point_source_matrix for it")
    return _line_source(xyz, start, end, diam, sigma)


def _check_sources(xyz, positions: dict, diam, sigma) -> None:
    """A ValueError naming what is wrong with concrete source-matrix arguments: shapes
    ([E, 3], [N, 3], [N]), non-finite positions, diam <= 0, sigma <= 0 (``check_sigma``)
    (each gave inf, NaN or a flipped sign)."""
    def concrete(a):
        return not isinstance(a, jax.core.Tracer)

    check_sigma(sigma)
    arrays = {"xyz": xyz, **positions, "diam": diam}
    values = {k: np.asarray(a, float) for k, a in arrays.items() if concrete(a)}
    for k, a in values.items():
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{k} has non-finite values")
    for k in ("xyz", *positions):
        if k in values and (values[k].ndim != 2 or values[k].shape[1] != 3):
            raise ValueError(f"{k} must be [{'E' if k == 'xyz' else 'N'}, 3] (um), got shape "
                             f"{values[k].shape}")
    n = {values[k].shape[0] for k in positions if k in values}
    if "diam" in values:
        if values["diam"].ndim != 1 or (n and values["diam"].shape[0] not in n) or len(n) > 1:
            raise ValueError(f"diam must be [N] (um), one per source, and the sources' arrays "
                             f"must agree: got diam {values['diam'].shape}, "
                             + ", ".join(f"{k} {values[k].shape}" for k in positions if k in values))
        if np.any(values["diam"] <= 0):
            raise ValueError(f"diam must be > 0 (um), got {values['diam'].min():g}")


def _line_source(xyz, start, end, diam, sigma):
    xyz, start, end, diam = (jnp.asarray(a) for a in (xyz, start, end, diam))
    seg = end - start  # [N, 3]
    length = jnp.sqrt(jnp.sum(seg * seg, axis=-1))  # [N]
    to_end = xyz[:, None, :] - end[None, :, :]  # [E, N, 3]
    h = jnp.sum(to_end * seg[None], axis=-1) / length  # along the axis beyond the end
    r2 = jnp.abs(jnp.sum(to_end * to_end, axis=-1) - h * h)
    r2 = jnp.maximum(r2, (0.5 * diam)[None, :] ** 2)
    # the three forms of lfpykit, each without cancellation where it applies; each is
    # evaluated on safe operands elsewhere, so that gradients stay finite
    ahead, behind = h >= 0, h + length < 0  # beyond the end / before the start
    h_a = jnp.where(ahead, h, 0.0)
    h_b = jnp.where(behind, h, -2.0 * length)
    h_c = jnp.where(ahead | behind, -0.5 * length, h)
    l_a, l_b, l_c = h_a + length, h_b + length, h_c + length
    root = lambda x: jnp.sqrt(x * x + r2)  # noqa: E731
    value = jnp.where(ahead, jnp.log((root(l_a) + l_a) / (root(h_a) + h_a)),
                      jnp.where(behind, jnp.log((root(h_b) - h_b) / (root(l_b) - l_b)),
                                jnp.log((root(h_c) - h_c) * (root(l_c) + l_c) / r2)))
    return UV_PER_NA / (4.0 * jnp.pi * sigma * length)[None, :] * value


def _rebuilt(xyz, sigma, method) -> Electrodes:
    return Electrodes(xyz, sigma=sigma, method=method)
