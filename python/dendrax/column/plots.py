"""Figures of a column run: a spike raster and laminar heat maps (matplotlib, Agg)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def raster(signals, geometry, path) -> Path:
    """A spike raster (neurons by depth, E red, I blue) with layer boundaries, as PNG."""
    plt = _plt()
    spikes = np.asarray(signals.require("spikes", "SPK"))
    t = np.asarray(signals.t)
    steps, cells = np.nonzero(spikes > 0.5)
    z = geometry.positions[:, 2] + geometry.column * 0.0
    colors = np.where(geometry.cell_type[cells] == "E", "tab:red", "tab:blue")
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.scatter(t[steps], z[cells] + 2000.0 * geometry.column[cells], s=1.5, c=colors,
               linewidths=0)
    for (col, layer), (lo, hi) in geometry.layer_bounds.items():
        off = 2000.0 * geometry.column_names.index(col)
        ax.axhline(lo + off, color="0.8", lw=0.5)
        ax.text(t[-1] if t.size else 0, 0.5 * (lo + hi) + off, f" {col}:{layer}", va="center",
                fontsize=7)
    ax.set_xlabel("time (ms)")
    ax.set_ylabel("depth z (um; pia up)")
    ax.set_title("spikes (red E, blue I)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def heatmap(signals, name: str, path) -> Path:
    """A [time x electrode] heat map of signal ``name`` ("LFP" or "CSD"), electrodes from
    the pia (top) down, as PNG."""
    plt = _plt()
    x = np.asarray(signals.require(name, f"{name}-proxy or {name}"))
    t = np.asarray(signals.t)
    rows = signals.meta.get("rows", {}).get(name, [str(k) for k in range(x.shape[1])])
    fig, ax = plt.subplots(figsize=(8, 4.5))
    lim = np.nanmax(np.abs(x - np.nanmean(x))) or 1.0
    im = ax.imshow((x - np.nanmean(x)).T, aspect="auto", cmap="RdBu_r", vmin=-lim, vmax=lim,
                   extent=[t[0] if t.size else 0, t[-1] if t.size else 1, len(rows) - 0.5, -0.5],
                   interpolation="nearest")
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels(rows, fontsize=6)
    ax.set_xlabel("time (ms)")
    unit = signals.units.get(name, "")
    fig.colorbar(im, ax=ax, label=f"{name} minus its mean ({unit})")
    ax.set_title(f"{name} ({unit})")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)
