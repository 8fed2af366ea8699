"""Figures: voltage traces and the morphology coloured by a per-node value; a network's spike
raster above its traces."""

from __future__ import annotations

import numpy as np


def plot_run(cell, result, node_peak, path, title="dendrax") -> None:
    """Write a PNG: recorded traces (left) and the morphology coloured by peak v (right).

    Args:
        cell: the simulated Cell.
        result: its Result.
        node_peak: [N] peak membrane potential per node, mV.
        path: PNG file to write.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.collections import LineCollection

    from .morphology import node_index

    fig, (ax_v, ax_m) = plt.subplots(1, 2, figsize=(12, 5), gridspec_kw={"width_ratios": [3, 2]})
    for (name, loc), trace in zip(result.labels, np.asarray(result.traces)):
        ax_v.plot(result.t, trace, lw=1, label=f"{name} @ sec {loc.section}({loc.x:g})")
    ax_v.set(xlabel="t (ms)", ylabel="recorded (mV for v)", title=title)
    ax_v.legend(fontsize=8, loc="upper right")

    segs, colors, widths = [], [], []
    for i, sec in enumerate(cell.morphology.sections):
        pts = np.asarray(sec.points)
        arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(pts[:, :3], axis=0), axis=1))])
        total = arc[-1] if arc[-1] > 0 else 1.0
        for a in range(len(pts) - 1):
            x_mid = 0.5 * (arc[a] + arc[a + 1]) / total
            segs.append(pts[a:a + 2, :2])
            colors.append(node_peak[node_index(cell.compartments, i, min(max(x_mid, 1e-9), 1 - 1e-9))])
            widths.append(max(0.5, min(6.0, 0.5 * (pts[a, 3] + pts[a + 1, 3]))))
    lc = LineCollection(segs, array=np.asarray(colors), cmap="viridis", linewidths=widths)
    ax_m.add_collection(lc)
    ax_m.autoscale()
    ax_m.set_aspect("equal")
    ax_m.set(title="peak v (mV)", xlabel="x (um)", ylabel="y (um)")
    fig.colorbar(lc, ax=ax_m)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_network(t, traces, labels, spike_cells, spike_times, path, *, n_cells=None,
                 title="dendrax network") -> None:
    """Write a PNG: a spike raster (top) above the recorded traces (bottom), one time axis.

    Args:
        t: [n_t] times, ms.
        traces: [n_recordings, n_t] recorded values (mV for v).
        labels: a label per trace.
        spike_cells: the cell index of each spike train.
        spike_times: one array of spike times (ms) per entry of ``spike_cells``.
        path: PNG file to write.
        n_cells: the network's size (the raster's y range); default from spike_cells.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = np.asarray(t)
    traces = np.asarray(traces).reshape(len(labels), -1)
    has_traces = len(labels) > 0
    fig, axes = plt.subplots(2 if has_traces else 1, 1, sharex=True, squeeze=False,
                             figsize=(10, 7 if has_traces else 4),
                             gridspec_kw={"height_ratios": [1, 1.3] if has_traces else [1]})
    ax_r = axes[0, 0]
    cells = [int(c) for c in spike_cells]
    times = [np.asarray(s, float).ravel() for s in spike_times]
    n_spikes = sum(s.size for s in times)
    top = (n_cells if n_cells is not None else max(cells, default=0) + 1) - 0.5
    if n_spikes:
        xs = np.concatenate(times)
        ys = np.concatenate([np.full(s.size, c) for c, s in zip(cells, times)])
        ax_r.scatter(xs, ys, s=float(np.clip(3000.0 / max(top, 1.0), 4.0, 150.0)), marker="|",
                     color="k", linewidths=1)
    ax_r.set(ylim=(-0.5, max(top, 0.5)), ylabel="cell",
             title=f"{title}: {n_spikes} spikes from {len(cells)} recorded cells")
    if top < 20:
        ax_r.set_yticks(range(int(top + 0.5)))
    ax_r.set_xlim(t[0] if t.size else 0.0, t[-1] if t.size else 1.0)
    if has_traces:
        ax_v = axes[1, 0]
        for label, trace in zip(labels, traces):
            ax_v.plot(t, trace, lw=1, label=label)
        ax_v.set(xlabel="t (ms)", ylabel="recorded (mV for v)")
        ax_v.legend(fontsize=8, loc="upper right")
    else:
        ax_r.set_xlabel("t (ms)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
