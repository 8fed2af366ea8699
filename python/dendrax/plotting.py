"""Figures of a run: ``plot_run`` (one cell: traces by unit, the stimulus, and the morphology
with its recording and stimulus sites, coloured by peak v) and ``plot_network`` (a spike
raster above the traces).

Both are pure functions of what they are given: they build a ``matplotlib.figure.Figure``
without pyplot (no global backend is switched, nothing stays open), write it as a PNG and
return it, so a caller can inspect or restyle it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .timecourse import play

__all__ = ["plot_network", "plot_run", "quantity_label", "short_title"]

DPI = 130
# trace colours: matplotlib's tab10 without red (kept for stimuli) and grey (the morphology)
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#bcbd22",
           "#17becf")
STIM_COLOR = "#d62728"
LINESTYLES = ("-", "--", ":", "-.")
MIN_PEAK_SPAN = 20.0  # mV: the least range of the peak-v colour scale
MIN_WIDTH = 1.3  # pt: the thinnest neurite drawn
SCALE_BARS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)  # um

QUANTITIES = {"mV": "potential", "nA": "current", "mA/cm2": "current density",
              "uS": "conductance", "S/cm2": "conductance density", "mM": "concentration",
              "ms": "time", "um": "length", "uV": "extracellular potential",
              "nA um": "current dipole moment", "pA": "current", "nS": "conductance"}
PRETTY_UNITS = {"uS": "µS", "um": "µm", "mA/cm2": "mA/cm²", "uF/cm2": "µF/cm²",
                "S/cm2": "S/cm²", "uV": "µV", "nA um": "nA µm"}


# --- labels ---------------------------------------------------------------------------------
def short_title(title) -> str:
    """``title`` with every path in it cut to its file name: "dendrax: /a/b/cell.swc" ->
    "dendrax: cell.swc"."""
    words = str(title).split(" ")
    return " ".join(Path(w).name if ("/" in w or "\\" in w) and Path(w).name else w
                    for w in words)


def quantity_label(unit: str, names=()) -> str:
    """The y-axis label of a panel of traces in ``unit`` (recorded names ``names``):
    "membrane potential (mV)" for v, "gating variable" for "1", "current (nA)", ...; for an
    unknown unit "" the names themselves."""
    names = list(dict.fromkeys(names))
    unit = str(unit)
    if unit == "mV":
        return "membrane potential (mV)" if names and set(names) == {"v"} else "potential (mV)"
    if unit == "1":
        return "gating variable" if all("." in n for n in names) else "value (1)"
    if unit == "":
        return ", ".join(names) if names else "value"
    pretty = PRETTY_UNITS.get(unit, unit)
    return f"{QUANTITIES[unit]} ({pretty})" if unit in QUANTITIES else f"({pretty})"


def _default_unit(name: str) -> str:
    return "mV" if name == "v" else ""


def _halo() -> list:
    """A white outline that keeps text readable over lines."""
    from matplotlib import patheffects

    return [patheffects.withStroke(linewidth=2.5, foreground="white")]


def _split_label(label: str) -> tuple[str, str]:
    """(quantity, site) of a trace label "v cell[3].soma(0.5)" or "v@cell 3 0(0.5)"."""
    for sep in ("@", " "):
        if sep in label:
            name, _, site = label.partition(sep)
            return name.strip(), site.strip()
    return label, label


def _location_name(cell, loc) -> str:
    name = getattr(cell, "location_name", None)
    if callable(name):
        try:
            return str(name(loc))
        except (ValueError, IndexError, TypeError):
            pass
    return f"sec {loc.section}({loc.x:g})"


def _groups(units) -> dict:
    """unit -> indices of the traces in it, in order of first appearance."""
    out: dict = {}
    for i, u in enumerate(units):
        out.setdefault(str(u), []).append(i)
    return out


def _first_labels(labels) -> list:
    """The first (name, Location) of each recorded location, in order."""
    seen: dict = {}
    for name, loc in labels:
        if hasattr(loc, "section"):  # not an extracellular readout's row
            seen.setdefault((loc.section, float(loc.x)), (name, loc))
    return list(seen.values())


# --- morphology geometry ----------------------------------------------------------------------
class _Layout2D:
    """The cell projected on the x-y plane (um), turned so that the apical tree (if any) points
    up; positions of section(x) by arc length."""

    def __init__(self, cell):
        morph = cell.morphology
        self.sections = morph.sections
        diam = None
        try:
            diam = np.asarray(cell.get("diam"), float)
            offsets = np.asarray(morph.point_offsets)
        except (AttributeError, KeyError, ValueError):
            diam = None
        self.points, self.diams, self.arcs = [], [], []
        for i, sec in enumerate(self.sections):
            pts = np.asarray(sec.points, float)
            self.points.append(pts[:, :2].copy())
            self.diams.append(diam[offsets[i]:offsets[i + 1]] if diam is not None and
                              diam.size == offsets[-1] else pts[:, 3])
            self.arcs.append(np.concatenate(
                [[0.0], np.cumsum(np.linalg.norm(np.diff(pts[:, :3], axis=0), axis=1))]))
        self.rotation = np.eye(2)
        regions = [s.region for s in self.sections]
        if "apic" in regions:
            soma = [i for i, r in enumerate(regions) if r == "soma"]
            origin = (np.concatenate([self.points[i] for i in soma]).mean(axis=0) if soma
                      else self.points[0][0])
            apic = np.concatenate([p for p, r in zip(self.points, regions) if r == "apic"])
            d = apic.mean(axis=0) - origin
            if np.hypot(*d) > 0:
                angle = np.pi / 2 - np.arctan2(d[1], d[0])
                c, s = np.cos(angle), np.sin(angle)
                self.rotation = np.array([[c, -s], [s, c]])
                self.points = [p @ self.rotation.T for p in self.points]

    def position(self, section: int, x: float) -> np.ndarray:
        """[2] where section(x) is drawn, um."""
        pts, arc = self.points[section], self.arcs[section]
        s = float(x) * arc[-1]
        return np.array([np.interp(s, arc, pts[:, 0]), np.interp(s, arc, pts[:, 1])])

    def pieces(self, comps):
        """The drawn segments: ([k, 2, 2] ends, um; [k] diameters, um; [k] node of each),
        each section cut at its points and at its segment boundaries so that every piece
        lies in one node."""
        from .morphology import node_index

        segs, diams, nodes = [], [], []
        for i, (pts, arc, dia) in enumerate(zip(self.points, self.arcs, self.diams)):
            total = arc[-1]
            if total <= 0:
                continue
            n = int(comps.nseg[i])
            cuts = np.unique(np.concatenate([arc / total, np.arange(n + 1) / n]))
            xy = np.column_stack([np.interp(cuts * total, arc, pts[:, 0]),
                                  np.interp(cuts * total, arc, pts[:, 1])])
            d = np.interp(cuts * total, arc, dia)
            for a in range(len(cuts) - 1):
                if cuts[a + 1] - cuts[a] < 1e-12:
                    continue
                mid = min(max(0.5 * (cuts[a] + cuts[a + 1]), 1e-9), 1 - 1e-9)
                segs.append(xy[a:a + 2])
                diams.append(0.5 * (d[a] + d[a + 1]))
                nodes.append(int(node_index(comps, i, mid)))
        return np.asarray(segs).reshape(-1, 2, 2), np.asarray(diams), np.asarray(nodes, int)


def _traces(t, traces, n_labels: int):
    """(t [n_t], traces [n_labels, n_t]) as float arrays, or a ValueError naming the shapes."""
    t = np.asarray(t, float)
    traces = np.asarray(traces, float)
    if t.ndim != 1:
        raise ValueError(f"t must be one time axis [n_t], got shape {t.shape}")
    if traces.size == 0 and n_labels == 0:  # nothing recorded
        traces = traces.reshape(0, t.size)
    elif traces.ndim == 1 and n_labels == 1:  # one trace given as [n_t]
        traces = traces[None]
    if traces.shape != (n_labels, t.size):
        raise ValueError(f"traces must have shape [labels, times] = ({n_labels}, {t.size}), got "
                         f"{traces.shape}")
    return t, traces


def _stimuli_of(cell) -> list:
    """The cell's stimuli as (kind, Location, a, b, amp): ("IClamp", loc, delay ms, dur ms,
    amp nA), ("waveform", loc, t ms, i nA, None), ("SEClamp", loc, amps mV, durs ms, None),
    ("synapse", loc, name, spike times ms, None)."""
    from .cell import Location

    comps = cell.compartments
    st = getattr(cell, "stimuli", None)
    if st is None:
        return []

    def loc(node):
        return Location(int(comps.section[node]), float(comps.x[node]))

    out = []
    for node, delay, dur, amp in getattr(st, "iclamp", []):
        out.append(("IClamp", loc(node), float(delay), float(dur), float(amp)))
    for node, t, i in getattr(st, "waveform", []):
        out.append(("waveform", loc(node), np.asarray(t, float), np.asarray(i, float), None))
    for node, amps, durs, _rs in getattr(st, "vclamp", []):
        out.append(("SEClamp", loc(node), list(map(float, amps)), list(map(float, durs)), None))
    for name, (_mech, items) in getattr(st, "spikes", {}).items():
        for node, _values, times in items:
            out.append(("synapse", loc(node), name, np.asarray(times, float), None))
    return out


def _stim_label(kind, a, b, amp) -> str:
    if kind == "IClamp":
        return f"IClamp {amp:g} nA"
    if kind == "waveform":
        return f"I(t) {np.max(np.abs(b)) if np.size(b) else 0:.3g} nA peak"
    if kind == "SEClamp":
        return "SEClamp " + "/".join(f"{v:g}" for v in a[:sum(1 for d in b if d > 0) or 1]) + " mV"
    return f"{a}"


def _scale_bar_length(extent: float) -> float:
    """A round length (um) near a fifth of ``extent``."""
    target = max(extent, 1e-9) / 5
    return min(SCALE_BARS, key=lambda L: abs(np.log(L / target)))


# --- plot_run ---------------------------------------------------------------------------------
def plot_run(cell, result, path, *, peak=None, title="dendrax", stimuli=None):
    """Write a PNG of one cell's run and return the ``matplotlib.figure.Figure``.

    Left: the recorded traces, one panel per unit (v in mV, gates, currents in nA, ...)
    on one time axis, each labelled with its quantity and unit; legend entries are
    "<name> <location>" (``cell.location_name``: "v soma(0.5)"); one colour per recorded
    location, one line style per quantity. Below them, the injected current (nA) of each
    current clamp. Right: the morphology (x-y projection, equal scale, turned so the
    apical tree points up) with a scale bar in um, coloured by ``peak`` (else grey), a dot
    per recorded location in its trace's colour and a red electrode per stimulus (current
    clamps and voltage clamps, labelled "IClamp 0.8 nA"; spike-driven synapses are open
    red diamonds).

    The axes carry labels (``ax.get_label()``): "traces <unit>" for each trace panel,
    "stimulus", "morphology"; the morphology has equal x and y scales.

    Args:
        cell: the simulated ``Cell`` (morphology, compartments, stimuli).
        result: its ``Result``: ``t`` [n_t] ms, ``traces`` [n_rec, n_t], ``labels``
            [(name, Location)] and, when present, ``units`` [n_rec] (else "mV" for "v"
            and "" for the rest) and ``meta`` (dt, celsius, method: shown under the title).
        path: the PNG file to write.
        peak: [N] peak membrane potential per node of the cell (mV; NaN: not known, drawn
            grey), or None for a grey morphology.
        title: the figure's title (a path in it is cut to its file name).
        stimuli: the stimuli to show instead of ``cell.stimuli``: a list of current clamps
            ``(Location, delay ms, dur ms, amp nA)``; ``[]`` shows none.

    Returns:
        The Figure (already saved; not registered with pyplot).
    """
    from matplotlib.collections import LineCollection
    from matplotlib.figure import Figure
    from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar

    labels = list(result.labels)
    t, traces = _traces(result.t, result.traces, len(labels))
    units = getattr(result, "units", None)
    if units is not None and len(units) != len(labels):
        raise ValueError(f"result.units: got {len(units)} for {len(labels)} traces")
    units = [str(u) for u in units] if units is not None else \
        [_default_unit(name) for name, _ in labels]
    if peak is not None:
        peak = np.asarray(peak, float).ravel()
        if peak.size != cell.n_nodes:
            raise ValueError(f"peak must have one value per node of the cell ({cell.n_nodes}), "
                             f"got {peak.size}")
    if stimuli is None:
        stims = _stimuli_of(cell)
    else:
        stims = []
        for item in stimuli:
            try:
                loc, delay, dur, amp = item
                cell.section(loc.section)
                stims.append(("IClamp", loc, float(delay), float(dur), float(amp)))
            except (TypeError, ValueError, AttributeError):
                raise ValueError("stimuli must be a list of (Location, delay ms, dur ms, amp nA), "
                                 f"got the entry {item!r}") from None
    current_stims = [s for s in stims if s[0] in ("IClamp", "waveform")]

    # colours: one per recorded location; extracellular readouts (an electrode's contact,
    # a dipole's axis: no site on the cell) take the ones after them, in their own panels
    sites = [loc for _, loc in labels if hasattr(loc, "section")]
    loc_keys = list(dict.fromkeys((loc.section, float(loc.x)) for loc in sites))
    colour = {k: PALETTE[i % len(PALETTE)] for i, k in enumerate(loc_keys)}
    readouts = list(dict.fromkeys(lab for lab in labels if not hasattr(lab[1], "section")))
    colour.update({lab: PALETTE[(len(loc_keys) + i) % len(PALETTE)]
                   for i, lab in enumerate(readouts)})

    groups = _groups(units)
    if "mV" in groups:  # membrane potential first
        groups = {"mV": groups.pop("mV"), **groups}
    heights = [2.2 if u == "mV" else 1.2 for u in groups] or [2.2]
    if current_stims:
        heights.append(0.55)
    n_rows = len(heights)
    geo = _Layout2D(cell)
    segs, diams, nodes = geo.pieces(cell.compartments)
    fig_h = float(np.clip(1.0 + 0.95 * sum(heights), 5.4, 9.0))
    # the morphology panel as wide as the cell's shape asks at the figure's height
    span = np.ptp(segs.reshape(-1, 2), axis=0) if segs.size else np.ones(2)
    morph_w = float(np.clip((fig_h - 1.0) * span[0] / max(span[1], 1e-9 * span[0], 1e-9),
                            2.8, 4.8))
    trace_w = 6.2
    fig = Figure(figsize=(trace_w + 1.5 + morph_w + (1.0 if peak is not None else 0.2), fig_h),
                 dpi=DPI, layout="constrained")
    grid = fig.add_gridspec(n_rows, 2, width_ratios=[trace_w, morph_w], height_ratios=heights)
    axes = []
    for r in range(n_rows):
        axes.append(fig.add_subplot(grid[r, 0], sharex=axes[0] if axes else None))
    ax_m = fig.add_subplot(grid[:, 1], label="morphology")

    for ax, (unit, idx) in zip(axes, groups.items()):
        names = [labels[i][0] for i in idx]
        style = {n: LINESTYLES[k % len(LINESTYLES)] for k, n in enumerate(dict.fromkeys(names))}
        for i in idx:
            name, loc = labels[i]
            if hasattr(loc, "section"):
                ax.plot(t, traces[i], lw=1.1, color=colour[(loc.section, float(loc.x))],
                        ls=style[name], label=f"{name} {_location_name(cell, loc)}")
            else:  # ElectrodeRef(contact, cell) or DipoleRef(axis, cell)
                ax.plot(t, traces[i], lw=1.1, color=colour[labels[i]], ls=style[name],
                        label=f"{name}[{loc[0]}]")
        ax.set_ylabel(quantity_label(unit, names))
        ax.set_label(f"traces {unit}")
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False,
                  handlelength=2.2, borderaxespad=0.3)
    if not groups:
        axes[0].text(0.5, 0.5, "no traces recorded", ha="center", va="center",
                     transform=axes[0].transAxes, color="0.4")
        axes[0].set_yticks([])
        axes[0].set_label("traces")
    if current_stims:
        ax_s = axes[-1]
        for k, (kind, loc, a, b, amp) in enumerate(current_stims):
            if kind == "IClamp":  # on from delay to delay + dur (to the end, if it outlasts it)
                ts = np.clip(np.array([t[0], a, a, a + b, a + b, t[-1]]), t[0], t[-1])
                after = 0.0 if a + b < t[-1] else amp
                ys = np.array([0, 0, amp, amp, after, after])
            else:  # the played waveform: its value at the run's ends, its points between
                # (before its first time it holds its first value, as NEURON's Vector.play)
                a, b = np.asarray(a, float), np.asarray(b, float)
                inside = (a >= t[0]) & (a <= t[-1])
                ts, ys = a[inside], b[inside]
                if not ts.size or ts[0] > t[0]:
                    ts, ys = np.r_[t[0], ts], np.r_[play(np.array([t[0]]), a, b), ys]
                if ts[-1] < t[-1]:
                    ts, ys = np.r_[ts, t[-1]], np.r_[ys, play(np.array([t[-1]]), a, b)]
            ax_s.plot(ts, ys, color=STIM_COLOR, lw=1.1, ls=LINESTYLES[k % len(LINESTYLES)],
                      label=f"{_stim_label(kind, a, b, amp)} {_location_name(cell, loc)}")
        ax_s.set_ylabel("stimulus (nA)")
        ax_s.set_label("stimulus")
        ax_s.axhline(0, color="0.8", lw=0.6, zorder=0)
        lo, hi = ax_s.get_ylim()
        ax_s.set_ylim(min(lo, 0), max(hi, 0))
        ax_s.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False,
                    borderaxespad=0.3)
    for ax in axes:
        ax.spines[["top", "right"]].set_visible(False)
        ax.margins(x=0)
        if ax is not axes[-1]:
            ax.tick_params(labelbottom=False)
    axes[-1].set_xlabel("time (ms)")
    if t.size:
        axes[-1].set_xlim(t[0], t[-1] if t[-1] > t[0] else t[0] + 1)

    # morphology
    if peak is not None:
        import matplotlib

        cmap = matplotlib.colormaps["viridis"].with_extremes(bad="0.75")
        values = np.ma.masked_invalid(peak[nodes])
        finite = peak[np.isfinite(peak)]
        lc = LineCollection(segs, array=values, cmap=cmap, capstyle="round")
        if finite.size:  # at least MIN_PEAK_SPAN mV, so that a few mV do not look like much
            lo, hi = float(finite.min()), float(finite.max())
            grow = max(0.0, MIN_PEAK_SPAN - (hi - lo)) / 2
            lc.set_clim(lo - grow, hi + grow)
    else:
        lc = LineCollection(segs, colors="0.45", capstyle="round")
    ax_m.add_collection(lc, autolim=True)
    extent = float(max(span)) or 1.0
    centre = segs.reshape(-1, 2).mean(axis=0) if segs.size else np.zeros(2)
    ax_m.margins(0.06)
    ax_m.set_aspect("equal", adjustable="datalim")
    ax_m.set_axis_off()
    if peak is not None:
        cb = fig.colorbar(lc, ax=ax_m, shrink=0.6, pad=0.02, aspect=25)
        cb.set_label("peak v (mV)")

    # recording sites: a dot in the trace's colour, named
    for (sec, x), (_, loc) in zip(loc_keys, _first_labels(labels)):
        p = geo.position(sec, x)
        ax_m.plot(*p, "o", ms=8, mfc=colour[(sec, x)], mec="white", mew=1.2, zorder=6,
                  label="recording")
        ax_m.annotate(_location_name(cell, loc), xy=p, xytext=(7, -2), textcoords="offset points",
                      color=colour[(sec, x)], fontsize=8, ha="left", va="top", zorder=7,
                      path_effects=_halo())
    # stimulus sites: a red electrode (a line ending in a triangle) with its label
    for k, (kind, loc, a, b, amp) in enumerate(stims):
        p = geo.position(loc.section, loc.x)
        if kind == "synapse":
            ax_m.plot(*p, "D", ms=5, mfc="none", mec=STIM_COLOR, mew=1.2, zorder=5,
                      label="synapse")
            continue
        text = _stim_label(kind, a, b, amp)
        # the electrode comes from outside the cell: away from its centre, turned a little
        # for each further stimulus
        away = p - centre
        angle = (np.arctan2(away[1], away[0]) if np.hypot(*away) > 0.1 * extent
                 else 0.75 * np.pi) + 0.5 * k
        tip = p + 0.16 * extent * np.array([np.cos(angle), np.sin(angle)])
        ax_m.annotate(text, xy=p, xytext=tip, color=STIM_COLOR, fontsize=8.5,
                      path_effects=_halo(),
                      ha="right" if np.cos(angle) < 0 else "left", va="center", zorder=7,
                      arrowprops=dict(arrowstyle="-", color=STIM_COLOR, lw=1.4,
                                      shrinkA=2, shrinkB=4))
        ax_m.plot(*p, marker="v" if kind != "SEClamp" else "s", ms=8, color=STIM_COLOR,
                  mec="white", mew=0.8, zorder=5, label="stimulus",
                  transform=ax_m.transData)
    bar = _scale_bar_length(extent)
    # under the panel's lower right corner, where nothing of the cell can be
    ax_m.add_artist(AnchoredSizeBar(ax_m.transData, bar, f"{bar:g} µm", "upper right",
                                    bbox_to_anchor=(1.0, 0.0), bbox_transform=ax_m.transAxes,
                                    frameon=False, size_vertical=0, pad=0.2, sep=4,
                                    borderpad=0.0, fontproperties={"size": 9}))
    ax_m.set_title("peak v along the cell" if peak is not None else "morphology",
                   fontsize=10)

    # title and run settings
    fig.suptitle(short_title(title), fontsize=13, fontweight="bold", x=0.01, ha="left")
    meta = getattr(result, "meta", None) or {}
    info = [f"{len(labels)} recording{'s' * (len(labels) != 1)}", f"{cell.n_nodes} nodes"]
    for key, fmt in (("dt", "dt {:g} ms"), ("celsius", "{:g} °C"), ("method", "{}")):
        if key in meta:
            info.append(fmt.format(meta[key]))
    axes[0].set_title("   ·   ".join(info), fontsize=9, color="0.35", loc="left")

    # line widths: the diameters at the drawn scale, at least MIN_WIDTH
    fig.draw_without_rendering()
    ax_m.apply_aspect()
    xl = ax_m.get_xlim()
    pt_per_um = ax_m.get_window_extent().width / (xl[1] - xl[0]) * 72.0 / fig.dpi
    lc.set_linewidths(np.clip(diams * pt_per_um, MIN_WIDTH, 12.0))
    fig.savefig(path, dpi=DPI)
    return fig


# --- plot_network -----------------------------------------------------------------------------
def plot_network(t, traces, labels, spike_cells, spike_times, path, *, units=None,
                 n_cells=None, title="dendrax network"):
    """Write a PNG of a network's run and return the ``matplotlib.figure.Figure``: a spike
    raster (top, axes label "raster") above the recorded traces, one panel per unit (axes
    label "traces <unit>"), on one time axis; one colour per recorded site, one line style
    per quantity.

    Args:
        t: [n_t] times, ms.
        traces: [n_rec, n_t] recorded values, in ``units``.
        labels: a legend label per trace (e.g. "v cell[3].soma(0.5)").
        spike_cells: [Q] the cell index of each spike train.
        spike_times: Q arrays of spike times, ms.
        path: the PNG file to write.
        units: [n_rec] the unit of each trace ("mV", "1", "nA", ...); default "mV" for a
            label that starts with "v" followed by a space or "@", else "".
        n_cells: the network's size (the raster's y range); default from ``spike_cells``.
        title: the figure's title (a path in it is cut to its file name).

    Returns:
        The Figure (already saved; not registered with pyplot).
    """
    from matplotlib.figure import Figure

    labels = [str(x) for x in labels]
    t, traces = _traces(t, traces, len(labels))
    if units is None:
        units = [_default_unit(_split_label(lab)[0]) for lab in labels]
    units = [str(u) for u in units]
    if len(units) != len(labels):
        raise ValueError(f"units: got {len(units)} for {len(labels)} traces")
    cells = [int(c) for c in spike_cells]
    times = [np.asarray(s, float).ravel() for s in spike_times]
    if len(times) != len(cells):
        raise ValueError(f"spike_times: got {len(times)} trains for {len(cells)} spike_cells")
    n_spikes = sum(s.size for s in times)
    size = n_cells if n_cells is not None else max(cells, default=-1) + 1
    groups = _groups(units)
    if "mV" in groups:
        groups = {"mV": groups.pop("mV"), **groups}
    raster_h = float(np.clip(0.6 + 0.04 * size, 1.2, 3.0))
    with_rate = len(cells) >= 10  # a population rate panel under the raster
    heights = [raster_h] + [0.9] * with_rate + [2.0 if u == "mV" else 1.2 for u in groups]
    fig_h = float(np.clip(1.1 + 1.05 * sum(heights), 3.6, 10.0))
    fig = Figure(figsize=(11.0, fig_h), dpi=DPI, layout="constrained")
    grid = fig.add_gridspec(len(heights), 1, height_ratios=heights)
    ax_r = fig.add_subplot(grid[0], label="raster")
    axes = [ax_r] + [fig.add_subplot(grid[k], sharex=ax_r,
                                     label="rate" if with_rate and k == 1 else "")
                     for k in range(1, len(heights))]
    if with_rate:
        ax_rate = axes.pop(1)
        span = (t[-1] - t[0]) if t.size > 1 else 1.0
        width = float(np.clip(span / 100.0, 0.5, 10.0))  # ms per bin
        edges = np.arange(t[0] if t.size else 0.0, (t[-1] if t.size else 1.0) + width, width)
        counts = np.histogram(np.concatenate(times) if n_spikes else np.zeros(0), edges)[0]
        ax_rate.step(edges[:-1], counts / (len(cells) * width * 1e-3), where="post", color="k",
                     lw=1.0)
        ax_rate.set_ylabel("rate (Hz)")
        ax_rate.spines[["top", "right"]].set_visible(False)
        ax_rate.tick_params(labelbottom=not groups)
        if not groups:
            ax_rate.set_xlabel("time (ms)")

    if n_spikes:
        xs = np.concatenate(times)
        ys = np.concatenate([np.full(s.size, c) for c, s in zip(cells, times)])
        ax_r.scatter(xs, ys, s=float(np.clip(2500.0 / max(size, 1), 6.0, 120.0)), marker="|",
                     color="k", linewidths=1.0)
    ax_r.set_ylim(-0.5, max(size, 1) - 0.5)
    ax_r.set_ylabel("neuron")
    if size <= 12:
        ax_r.set_yticks(range(max(size, 1)))
    else:
        ax_r.yaxis.get_major_locator().set_params(integer=True)
    duration = (t[-1] - t[0]) / 1e3 if t.size > 1 else 0.0
    rate = n_spikes / (len(cells) * duration) if cells and duration > 0 else 0.0
    ax_r.set_title(f"{n_spikes} spikes from {sum(1 for s in times if s.size)} of {len(cells)} "
                   f"recorded neurons (mean {rate:.1f} Hz)", fontsize=9, color="0.35", loc="left")
    # one colour per recorded site, one line style per quantity (as plot_run)
    names = [_split_label(lab)[0] for lab in labels]
    sites = list(dict.fromkeys(_split_label(lab)[1] for lab in labels))
    colour = {site: PALETTE[k % len(PALETTE)] for k, site in enumerate(sites)}
    for ax, (unit, idx) in zip(axes[1:], groups.items()):
        style = {n: LINESTYLES[k % len(LINESTYLES)]
                 for k, n in enumerate(dict.fromkeys(names[i] for i in idx))}
        for i in idx:
            ax.plot(t, traces[i], lw=1.0, color=colour[_split_label(labels[i])[1]],
                    ls=style[names[i]], label=labels[i])
        ax.set_ylabel(quantity_label(unit, [names[i] for i in idx]))
        ax.set_label(f"traces {unit}")
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False,
                  borderaxespad=0.3)
    for ax in axes:
        ax.spines[["top", "right"]].set_visible(False)
        if ax is not axes[-1] or (with_rate and not groups):
            ax.tick_params(labelbottom=False)
    if not (with_rate and not groups):
        axes[-1].set_xlabel("time (ms)")
    ax_r.set_xlim(t[0] if t.size else 0.0, t[-1] if t.size > 1 and t[-1] > t[0] else
                  (t[0] if t.size else 0.0) + 1.0)
    fig.suptitle(short_title(title), fontsize=13, fontweight="bold", x=0.01, ha="left")
    fig.savefig(path, dpi=DPI)
    return fig
