"""Proxy signals of point-neuron columns: fixed linear maps of V_m and of the synaptic
source, labelled "proxy" (they are not extracellular potentials; no units are claimed).

Every proxy is one matrix (``BasisSpec.matrix``) applied to a [time, neurons] signal at
every time point, so all are differentiable and cheap:

* ``LFP-proxy`` [time, electrodes] = V_m @ W.T, W[e, j] = exp(-|z_j - z_e| / 100 um) for
  neuron j of electrode e's column (0 otherwise), each row normalised to sum 1: a
  depth-weighted mean of the membrane potentials near each laminar electrode.
* ``CSD-proxy`` [time, interior electrodes] = -(L[e-1] - 2 L[e] + L[e+1]) / h^2 (h: the
  electrode spacing, um) of the LFP-proxy L: its discrete second spatial derivative along
  each column (a positive value is a "source", as for a physical CSD = -sigma d2phi/dz2).
* the dipole proxy [time, columns] = source @ M.T, M[c, j] = z_j - z_mid(c) for neuron j in
  column c: the first moment of the source along the column's axis.
* ``EEG-proxy`` [time, sensors] = dipole @ G.T, G[k, c] = cos(theta) / d^2 (d: distance from
  column c's centre to EEG sensor k, theta: from the axis): a radial dipole's potential
  shape in an infinite homogeneous conductor, constants dropped.
* ``MEG-proxy`` [time, sensors] = dipole @ H.T, H[k, c] = sin(theta) / d^2 for the MEG
  sensors: |p x R| / R^3 of a radial dipole (the magnetic field's magnitude in an infinite
  homogeneous conductor), constants dropped.
* ``EMM`` [time, columns]: the mean over each column's neurons of |source|.
* ``MUA-proxy`` [time, column-layers]: spikes per neuron per second (Hz) of each layer of
  each column in each step.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np

LFP_LENGTH_UM = 100.0


@dataclass(frozen=True)
class BasisSpec:
    """One linear map: ``output[t] = matrix @ input[t]``.

    Attributes:
        matrix: float [n_out, n_in].
        input: the signal it maps ("V_m", "source", "LFP-proxy", "dipole-proxy").
        rows: a label per output row.
        description: the formula in words.
    """

    matrix: np.ndarray
    input: str
    rows: tuple
    description: str

    def to_dict(self) -> dict:
        return {"matrix": self.matrix.tolist(), "input": self.input, "rows": list(self.rows),
                "description": self.description}


def bases(geometry) -> dict:
    """{name: BasisSpec} for LFP-proxy, CSD-proxy, dipole-proxy, EEG-proxy, MEG-proxy,
    EMM and MUA-proxy of a column geometry."""
    g = geometry
    z = g.positions[:, 2]
    el = g.electrodes
    same = g.electrode_column[:, None] == g.column[None, :]
    w = np.exp(-np.abs(z[None, :] - el[:, 2][:, None]) / LFP_LENGTH_UM) * same
    w = w / np.maximum(w.sum(axis=1, keepdims=True), 1e-300)
    el_rows = tuple(f"{g.column_names[c]}:z={zz:.0f}um" for c, zz in zip(g.electrode_column,
                                                                            el[:, 2]))
    d = np.zeros((g.csd_electrodes.size, el.shape[0]))
    for r, e in enumerate(g.csd_electrodes):
        h = el[e - 1, 2] - el[e, 2]
        d[r, [e - 1, e, e + 1]] = np.array([-1.0, 2.0, -1.0]) / h ** 2
    n_col = len(g.column_names)
    m = np.zeros((n_col, g.n_neurons))
    emm = np.zeros((n_col, g.n_neurons))
    centres = np.zeros((n_col, 3))
    for c in range(n_col):
        mine = g.column == c
        lo, hi = el[g.electrode_column == c, 2].min(), el[g.electrode_column == c, 2].max()
        centres[c] = [*el[g.electrode_column == c][0, :2], 0.5 * (lo + hi)]
        m[c, mine] = z[mine] - centres[c, 2]
        emm[c, mine] = 1.0 / max(mine.sum(), 1)

    def lead(sensors, angle):
        r = sensors[:, None, :] - centres[None, :, :]
        dist = np.linalg.norm(r, axis=2)
        cos = r[..., 2] / dist
        return (cos if angle == "cos" else np.sqrt(np.clip(1 - cos ** 2, 0, 1))) / dist ** 2

    groups = [(c, k) for c in range(n_col)
              for k in dict.fromkeys(g.layer[g.column == c].tolist())]
    mua = np.zeros((len(groups), g.n_neurons))
    for r, (c, k) in enumerate(groups):
        mine = (g.column == c) & (g.layer == k)
        mua[r, mine] = 1.0 / max(mine.sum(), 1)
    cols = tuple(g.column_names)
    return {
        "LFP-proxy": BasisSpec(w, "V_m", el_rows, "depth-weighted mean of V_m: W[e, j] = "
                               f"exp(-|z_j - z_e| / {LFP_LENGTH_UM:g} um), rows summing to 1"),
        "CSD-proxy": BasisSpec(d, "LFP-proxy", tuple(el_rows[e] for e in g.csd_electrodes),
                               "-(L[e-1] - 2 L[e] + L[e+1]) / h^2, h the electrode spacing (um)"),
        "dipole-proxy": BasisSpec(m, "source", cols, "sum_j source_j (z_j - z_mid) per column"),
        "EEG-proxy": BasisSpec(lead(g.eeg_sensors, "cos"), "dipole-proxy",
                               tuple(f"EEG{k}" for k in range(n_col)), "cos(theta) / d^2"),
        "MEG-proxy": BasisSpec(lead(g.meg_sensors, "sin"), "dipole-proxy",
                               tuple(f"MEG{k}" for k in range(n_col)), "sin(theta) / d^2"),
        "EMM": BasisSpec(emm, "|source|", cols, "mean |source| over each column's neurons"),
        "MUA-proxy": BasisSpec(mua, "spikes", tuple(f"{cols[c]}:{k}" for c, k in groups),
                               "spikes per neuron per second (Hz) of each layer"),
    }


def apply(basis: BasisSpec, x):
    """[time, n_in] -> [time, n_out] (jnp; differentiable)."""
    return x @ jnp.asarray(basis.matrix, dtype=x.dtype).T
