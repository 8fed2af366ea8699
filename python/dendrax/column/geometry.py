"""Laminar geometry of columns: how many neurons of each layer and type, where cells and
electrodes sit (um).

Coordinates: x, y across the cortex, z along each column's axis, z = 0 at the white
matter and z = depth_um at the pia; layers are stacked with equal thickness from the pia
down in the order given; cells' apical axis points to +z (the pia). Each column has
``electrodes`` laminar electrodes on its axis, evenly spaced from half a spacing below the
pia to half a spacing above the white matter. EEG / MEG sensors (for the proxies) sit
10 mm above each column's pia on its axis (EEG) and 10 mm above and 10 mm to the side in
+x (MEG).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SENSOR_DISTANCE_UM = 10_000.0


def split(n: int, fractions) -> np.ndarray:
    """Whole counts summing to n, proportional to ``fractions`` (largest remainder)."""
    f = np.asarray(fractions, float)
    raw = n * f / f.sum()
    counts = np.floor(raw).astype(int)
    order = np.argsort(-(raw - counts), kind="stable")
    counts[order[: n - counts.sum()]] += 1
    return counts


@dataclass(frozen=True)
class Geometry:
    """Where everything is.

    Attributes:
        positions: float [N, 3] um, each neuron's soma, in the model's neuron order (by
            column, then type "E" before "I", then layer from the pia down).
        column: int [N] column index of each neuron; layer: str [N] its layer; cell_type:
            str [N] "E" or "I".
        layer_bounds: {(column name, layer): (z_bottom, z_top)} um.
        electrodes: float [n_el, 3] um, the laminar electrodes of all columns (column by
            column, from the pia down); electrode_column: int [n_el].
        csd_electrodes: int [n_csd] the electrodes where a CSD is defined (all but each
            column's first and last).
        eeg_sensors, meg_sensors: float [n_columns, 3] um.
        column_names: the columns' names.
    """

    positions: np.ndarray
    column: np.ndarray
    layer: np.ndarray
    cell_type: np.ndarray
    layer_bounds: dict
    electrodes: np.ndarray
    electrode_column: np.ndarray
    csd_electrodes: np.ndarray
    eeg_sensors: np.ndarray
    meg_sensors: np.ndarray
    column_names: tuple

    @property
    def n_neurons(self) -> int:
        return int(self.positions.shape[0])

    def select(self, *, column=None, layer=None, cell_type=None) -> np.ndarray:
        """bool [N]: the neurons of the given column name, layer and type (None: any);
        a ValueError names unknown ones and the valid choices."""
        mask = np.ones(self.n_neurons, bool)
        if column is not None:
            if column not in self.column_names:
                raise ValueError(f"unknown column {column!r}; columns: {list(self.column_names)}")
            mask &= self.column == self.column_names.index(column)
        if layer is not None:
            known = list(dict.fromkeys(self.layer.tolist()))
            if layer not in known:
                raise ValueError(f"unknown layer {layer!r}; layers: {known}")
            mask &= self.layer == layer
        if cell_type is not None:
            if cell_type not in ("E", "I"):
                raise ValueError(f"unknown cell type {cell_type!r}; cell types: ['E', 'I']")
            mask &= self.cell_type == cell_type
        return mask

    def to_dict(self) -> dict:
        return {"positions_um": self.positions.tolist(), "column": self.column.tolist(),
                "layer": self.layer.tolist(), "cell_type": self.cell_type.tolist(),
                "electrodes_um": self.electrodes.tolist(),
                "electrode_column": self.electrode_column.tolist(),
                "csd_electrodes": self.csd_electrodes.tolist(),
                "eeg_sensors_um": self.eeg_sensors.tolist(),
                "meg_sensors_um": self.meg_sensors.tolist(),
                "column_names": list(self.column_names),
                "layer_bounds_um": {f"{c}/{k}": list(v) for (c, k), v in self.layer_bounds.items()}}


def type_counts(types: dict, n: int) -> dict:
    """{"E": n_E, "I": n_I} for n neurons from fractions or counts."""
    names = [k for k in ("E", "I") if k in types]
    counts = split(n, [types[k] for k in names])
    return dict(zip(names, counts.tolist()))


def layer_type_counts(types: dict, layer_n, names) -> dict:
    """{layer: {"E": n_E, "I": n_I}}: the column's type counts (``type_counts`` of its n,
    so counts are kept exactly) spread over its layers in proportion to their sizes, each
    layer keeping its size ``layer_n`` (largest remainder: the excitatory neurons first,
    the rest of each layer inhibitory)."""
    layer_n = np.asarray(layer_n, int)
    totals = type_counts(types, int(layer_n.sum()))
    kinds = list(totals)
    first = split(totals[kinds[0]], layer_n) if layer_n.sum() else np.zeros_like(layer_n)
    rows = [first] + ([layer_n - first] if len(kinds) > 1 else [])
    return {name: {k: int(r[li]) for k, r in zip(kinds, rows)} for li, name in enumerate(names)}


def build(cfg) -> Geometry:
    """The geometry of a (validated) configuration: counts per layer and type, positions
    drawn from the configuration's seed, electrodes and sensors."""
    rng = np.random.default_rng([cfg.seed, 7])
    pos, col, lay, typ, bounds = [], [], [], [], {}
    electrodes, el_col, csd = [], [], []
    for ci, c in enumerate(cfg.columns):
        thick = c.depth_um / len(c.layers)
        layer_n = split(c.n, [f for _, f in c.layers])
        per_layer = layer_type_counts(dict(cfg.types), layer_n, [name for name, _ in c.layers])
        for li, (name, _) in enumerate(c.layers):
            top = c.depth_um - li * thick
            bounds[(c.name, name)] = (top - thick, top)
        for t in ("E", "I"):
            for name, _ in c.layers:
                k = per_layer[name].get(t, 0)
                if not k:
                    continue
                z0, z1 = bounds[(c.name, name)]
                r = c.radius_um * np.sqrt(rng.random(k))
                phi = 2 * np.pi * rng.random(k)
                z = z0 + (z1 - z0) * (0.1 + 0.8 * rng.random(k))
                pos.append(np.stack([c.center_um[0] + r * np.cos(phi),
                                     c.center_um[1] + r * np.sin(phi), z], axis=1))
                col += [ci] * k
                lay += [name] * k
                typ += [t] * k
        n_el = cfg.probe.electrodes
        spacing = c.depth_um / n_el
        z = c.depth_um - spacing * (np.arange(n_el) + 0.5)
        first = sum(len(e) for e in electrodes)
        electrodes.append(np.stack([np.full(n_el, c.center_um[0]), np.full(n_el, c.center_um[1]),
                                    z], axis=1))
        el_col += [ci] * n_el
        csd += list(range(first + 1, first + n_el - 1))
    centers = np.array([[c.center_um[0], c.center_um[1], c.depth_um] for c in cfg.columns])
    eeg = centers + [0.0, 0.0, SENSOR_DISTANCE_UM]
    meg = centers + [SENSOR_DISTANCE_UM, 0.0, SENSOR_DISTANCE_UM]
    return Geometry(np.concatenate(pos) if pos else np.zeros((0, 3)), np.asarray(col, int),
                    np.asarray(lay, dtype=object).astype(str), np.asarray(typ).astype(str),
                    bounds, np.concatenate(electrodes), np.asarray(el_col, int),
                    np.asarray(csd, int), eeg, meg, tuple(c.name for c in cfg.columns))
