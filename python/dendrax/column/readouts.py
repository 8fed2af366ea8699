"""Readouts: named scalar summaries of a run's ``Signals``.

``readout_spec(name, metric, *, column=None, layer=None, cell_type=None, t_start_ms=0,
t_stop_ms=None)`` names one; ``Model.compute_readout(signals, specs)`` computes them.
Metrics (over the selected neurons / electrodes and the time window [t_start, t_stop]):

==================  =========================================================  =========
metric              value                                                      unit
==================  =========================================================  =========
spike_rate_hz       mean over neurons of (spikes in the window) / its length    Hz
max_spike_rate_hz   the largest single-neuron rate                              Hz
burst_frequency_hz  bursts per neuron per second: a burst is >= 2 spikes with   Hz
                    successive intervals <= 10 ms (``BURST_ISI_MS``)
mean_V_m            mean of V_m over time and neurons                           mV
mean_source         mean of the source over time and neurons                    proxy
mean_LFP            mean of the LFP over time and the column's electrodes       signal's
mean_CSD            mean of the CSD over time and the column's electrodes       signal's
==================  =========================================================  =========

spike_rate_hz, mean_V_m, mean_source, mean_LFP and mean_CSD are smooth functions of the
signals (with a surrogate, the spikes carry gradients), so objectives built on them can be
fitted by gradient descent; max_spike_rate_hz is differentiable almost everywhere;
burst_frequency_hz counts events (no gradient).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import jax.numpy as jnp
import numpy as np

from ..quantities import is_number

METRICS = ("spike_rate_hz", "mean_V_m", "mean_source", "mean_LFP", "mean_CSD",
           "max_spike_rate_hz", "burst_frequency_hz")
BURST_ISI_MS = 10.0
SIGNAL_OF = {"spike_rate_hz": ("spikes", "SPK"), "max_spike_rate_hz": ("spikes", "SPK"),
             "burst_frequency_hz": ("spikes", "SPK"), "mean_V_m": ("V_m", "Vm"),
             "mean_source": ("source", "source-proxy"), "mean_LFP": ("LFP", "LFP-proxy or LFP"),
             "mean_CSD": ("CSD", "CSD-proxy or CSD")}


@dataclass(frozen=True)
class ReadoutSpec:
    """One readout: its ``name``, ``metric`` and selection (None: everything)."""

    name: str
    metric: str
    column: str | None = None
    layer: str | None = None
    cell_type: str | None = None
    t_start_ms: float = 0.0
    t_stop_ms: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def readout_spec(name: str, metric: str, *, column: str | None = None, layer: str | None = None,
                 cell_type: str | None = None, t_start_ms: float = 0.0,
                 t_stop_ms: float | None = None) -> ReadoutSpec:
    """A readout named ``name`` computing ``metric`` (one of ``METRICS``) over the neurons
    of ``column`` / ``layer`` / ``cell_type`` (None: all) between ``t_start_ms`` and
    ``t_stop_ms`` (default: the whole run)."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"a readout's name is a non-empty string, got {name!r}")
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; metrics: {list(METRICS)}")
    if cell_type is not None and cell_type not in ("E", "I"):
        raise ValueError(f"unknown cell type {cell_type!r}; cell types: ['E', 'I']")
    if metric in ("mean_LFP", "mean_CSD") and (layer is not None or cell_type is not None):
        raise ValueError(f"{metric} averages electrodes: select them by column only")
    for what, value in (("t_start_ms", t_start_ms), ("t_stop_ms", t_stop_ms)):
        if (value is not None or what == "t_start_ms") and (
                not is_number(value) or not np.isfinite(value)):
            raise ValueError(f"{what} must be a finite time in ms, got {value!r}")
    t0 = float(t_start_ms)
    if t0 < 0:
        raise ValueError(f"t_start_ms must be >= 0, got {t_start_ms!r}")
    if t_stop_ms is not None and not float(t_stop_ms) > t0:
        raise ValueError(f"t_stop_ms must exceed t_start_ms ({t0}), got {t_stop_ms!r}")
    return ReadoutSpec(name, metric, column, layer, cell_type, t0,
                       None if t_stop_ms is None else float(t_stop_ms))


@dataclass(frozen=True)
class ReadoutResult:
    """``specs`` (tuple of ReadoutSpec), ``results`` {name: value}, ``units`` {name: unit}."""

    specs: tuple
    results: dict
    units: dict

    def to_dict(self) -> dict:
        return {"specs": [s.to_dict() for s in self.specs],
                "results": {k: float(v) for k, v in self.results.items()},
                "units": dict(self.units)}

    def __getitem__(self, name):
        return self.results[name]


def _window(signals, spec):
    t = signals.t
    meta = signals.meta
    dt = float(meta["dt_ms"]) if "dt_ms" in meta else float(t[1] - t[0])
    if spec.t_stop_ms is not None:
        t_stop = spec.t_stop_ms
    else:
        t_stop = float(meta["duration_ms"]) if "duration_ms" in meta else float(t[-1])
    # row k covers the step (t[k] - dt, t[k]]
    k0, k1 = int(round(spec.t_start_ms / dt)), int(round(t_stop / dt))
    for edge, k in ((spec.t_start_ms, k0), (t_stop, k1)):
        if abs(edge - k * dt) > 1e-9 * max(dt, abs(edge)):  # never a silently moved window
            raise ValueError(f"readout {spec.name!r}: window edge {edge:g} ms is not on the "
                             f"step grid (dt = {dt:g} ms): use a multiple of dt")
    if not 0 <= k0 < k1 <= len(t):
        raise ValueError(f"readout {spec.name!r}: window [{spec.t_start_ms}, {t_stop}] ms is "
                         f"outside the run (0 to {len(t) * dt:g} ms)")
    return slice(k0, k1), (k1 - k0) * dt


def check_selection(geometry, spec: ReadoutSpec) -> None:
    """A ValueError where ``spec`` names a column or layer the geometry does not have, or
    selects no neurons (checked before a run, and by ``metric_value``)."""
    g = geometry
    if spec.column is not None and spec.column not in g.column_names:
        raise ValueError(f"readout {spec.name!r}: unknown column {spec.column!r}; columns: "
                         f"{list(g.column_names)}")
    if spec.metric not in ("mean_LFP", "mean_CSD") and not g.select(
            column=spec.column, layer=spec.layer, cell_type=spec.cell_type).any():
        raise ValueError(f"readout {spec.name!r} selects no neurons")


def metric_value(model, signals, spec: ReadoutSpec):
    """The value of one readout (jnp scalar; differentiable where the metric is)."""
    name, mode = SIGNAL_OF[spec.metric]
    x = signals.require(name, mode)
    rows, length = _window(signals, spec)
    x = x[rows]
    g = model.geometry
    check_selection(g, spec)
    if spec.metric in ("mean_LFP", "mean_CSD"):
        cols = np.ones(x.shape[1], bool)
        if spec.column is not None:
            el_col = g.electrode_column if spec.metric == "mean_LFP" else \
                g.electrode_column[g.csd_electrodes]
            cols = el_col == g.column_names.index(spec.column)
        return jnp.mean(x[:, np.flatnonzero(cols)])
    mask = g.select(column=spec.column, layer=spec.layer, cell_type=spec.cell_type)
    x = x[:, np.flatnonzero(mask)]
    if spec.metric == "spike_rate_hz":
        return jnp.sum(x) / x.shape[1] / (length * 1e-3)
    if spec.metric == "max_spike_rate_hz":
        return jnp.max(jnp.sum(x, axis=0)) / (length * 1e-3)
    if spec.metric == "burst_frequency_hz":
        return jnp.asarray(bursts(np.asarray(x), length / x.shape[0]) / x.shape[1]
                           / (length * 1e-3))
    return jnp.mean(x)


def bursts(spikes: np.ndarray, dt: float, isi_ms: float = BURST_ISI_MS) -> int:
    """The number of bursts in a raster [time, neurons] (a burst: >= 2 spikes, each within
    ``isi_ms`` of the previous)."""
    total = 0
    for col in np.asarray(spikes).T:  # a step's count of spikes (adex: several), each one
        times = np.repeat(np.arange(col.size), np.rint(np.maximum(col, 0)).astype(int)) * dt
        if times.size < 2:
            continue
        close = np.diff(times) <= isi_ms + 1e-9
        # a burst starts at each close interval not preceded by a close one
        total += int(np.sum(close & ~np.concatenate([[False], close[:-1]])))
    return total


def compute_readout(model, signals, specs) -> ReadoutResult:
    """Each readout of ``specs`` (a ReadoutSpec or a list of them) on ``signals``."""
    if isinstance(specs, ReadoutSpec):
        specs = [specs]
    try:
        specs = tuple(specs)
    except TypeError:
        raise TypeError(f"readouts are made by readout_spec(name, metric) (one, or a list), "
                        f"got {specs!r}") from None
    for s in specs:
        if not isinstance(s, ReadoutSpec):
            raise TypeError(f"readouts are made by readout_spec(name, metric), got {s!r}")
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ValueError(f"readout names repeat: {names}")
    results, units = {}, {}
    for s in specs:
        v = metric_value(model, signals, s)
        results[s.name] = float(v) if not _traced(v) else v
        units[s.name] = _unit(signals, s.metric)
    return ReadoutResult(specs, results, units)


def _unit(signals, metric):
    if metric.endswith("_hz"):
        return "Hz"
    name, _ = SIGNAL_OF[metric]
    return signals.units.get(name, "proxy")


def _traced(v) -> bool:
    import jax

    return isinstance(v, jax.core.Tracer)
