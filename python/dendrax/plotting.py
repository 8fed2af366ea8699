"""Figures: voltage traces and the morphology coloured by a per-node value."""

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
