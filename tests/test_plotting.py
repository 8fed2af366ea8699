"""The figures of ``dendrax simulate``: traces split by unit with named locations, the
morphology at equal scale with its recording and stimulus sites, short titles."""

from types import SimpleNamespace

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")

import dendrax as dx  # noqa: E402
from dendrax.plotting import plot_network, plot_run, quantity_label, short_title  # noqa: E402
from dendrax.timecourse import play  # noqa: E402


def _axes(fig):
    return {ax.get_label(): ax for ax in fig.axes if ax.get_label()}


def _legend_texts(ax):
    return [t.get_text() for t in ax.get_legend().get_texts()]


def _is_png(path):
    return path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000


def _peak(cell, res_full, n_user):
    """Peak v per node from recordings of every segment centre after the user's ones."""
    peak = np.full(cell.n_nodes, np.nan)
    peak[cell.nodes()] = np.asarray(res_full.traces)[n_user:].max(axis=1)
    return peak


@pytest.fixture(scope="module")
def ball_run():
    cell = dx.Cell.ball_and_stick(nseg=[1, 5], Ra=100.0)
    cell.insert("hh")
    cell.iclamp(cell.soma(0.5), delay=1.0, dur=3.0, amp=0.3)
    cell.record("v", cell.soma(0.5))
    cell.record("hh.m", cell.soma(0.5))
    cell.record("v", cell.section(1)(0.9))
    res = dx.simulate(cell, 5.0, 0.05)
    return cell, res


@pytest.fixture(scope="module")
def branched_run():
    cell = dx.Cell.from_sections([
        {"length": 20.0, "diam": 20.0, "parent": -1, "region": "soma"},
        {"length": 150.0, "diam": 2.0, "parent": 0, "parent_x": 1.0, "region": "dend"},
        {"length": 100.0, "diam": 1.0, "parent": 1, "parent_x": 1.0, "region": "dend"},
        {"length": 120.0, "diam": 1.0, "parent": 1, "parent_x": 1.0, "region": "dend"},
    ], nseg=[1, 3, 4, 5], Ra=100.0)
    cell.insert("hh")
    cell.iclamp(cell.section(2)(0.5), delay=0.5, dur=2.0, amp=0.2)
    cell.record("v", cell.soma(0.5))
    cell.record("v", cell.section(3)(0.3))
    n_user = len(cell.recordings)
    for node in cell.nodes():
        cell.record("v", cell.section(int(cell.compartments.section[node]))(
            float(cell.compartments.x[node])))
    res = dx.simulate(cell, 3.0, 0.05)
    user = SimpleNamespace(t=res.t, traces=np.asarray(res.traces)[:n_user],
                           labels=res.labels[:n_user])
    return cell, user, _peak(cell, res, n_user)


def test_traces_one_panel_per_unit_named_locations(ball_run, tmp_path):
    cell, res = ball_run
    path = tmp_path / "run.png"
    fig = plot_run(cell, res, path, title="dendrax: /some/where/deep/cell.swc")
    assert _is_png(path)
    axes = _axes(fig)
    traces = {k: ax for k, ax in axes.items() if k.startswith("traces")}
    # v (mV) and hh.m (a gate) on separate axes, each naming its quantity
    assert len(traces) == 2, sorted(axes)
    ylabels = sorted(ax.get_ylabel() for ax in traces.values())
    assert ylabels == ["gating variable", "membrane potential (mV)"]
    v_ax = next(ax for ax in traces.values() if "(mV)" in ax.get_ylabel())
    m_ax = next(ax for ax in traces.values() if ax is not v_ax)
    assert _legend_texts(v_ax) == ["v soma(0.5)", "v dend(0.9)"]
    assert _legend_texts(m_ax) == ["hh.m soma(0.5)"]
    # the gate panel holds values in [0, 1], not the mV scale
    assert m_ax.get_ylim()[1] < 2 and v_ax.get_ylim()[0] < -50
    # the time axis is shared and labelled once
    assert v_ax.get_shared_x_axes().joined(v_ax, m_ax)
    assert axes["stimulus"].get_xlabel() == "time (ms)"
    assert axes["stimulus"].get_ylabel() == "stimulus (nA)"
    # the title is short: no directory part
    title = fig.get_suptitle()
    assert title == "dendrax: cell.swc" and "/" not in title


def test_morphology_equal_scale_markers_and_scale_bar(ball_run, tmp_path):
    cell, res = ball_run
    fig = plot_run(cell, res, tmp_path / "run.png", peak=np.linspace(-65, 40, cell.n_nodes))
    ax = _axes(fig)["morphology"]
    assert ax.get_aspect() == 1.0
    # really equal on the page: 100 um across is as long as 100 um up
    p = ax.transData.transform([[0.0, 0.0], [100.0, 0.0], [0.0, 100.0]])
    assert np.isclose(np.hypot(*(p[1] - p[0])), np.hypot(*(p[2] - p[0])), rtol=1e-9)
    lines = {ln.get_label(): [] for ln in ax.lines}
    for ln in ax.lines:
        lines[ln.get_label()].append(ln)
    # a dot per recorded location (soma, dend(0.9)), in the colour of its traces
    rec = lines["recording"]
    assert len(rec) == 2
    v_ax = next(a for a in fig.axes if a.get_label() == "traces mV")
    colours = [matplotlib.colors.to_hex(ln.get_color()) for ln in v_ax.lines]
    assert [matplotlib.colors.to_hex(ln.get_markerfacecolor()) for ln in rec] == colours
    # the dend(0.9) dot sits 90% along the 200 um dendrite from the soma's end
    soma_end = np.asarray(cell.morphology.sections[1].points)[0, :2]
    dot = np.r_[rec[1].get_data()].ravel()
    assert np.hypot(*(dot - soma_end)) == pytest.approx(180.0, rel=1e-6)
    # the stimulus: a red marker at the soma and its label
    assert len(lines["stimulus"]) == 1
    texts = [t.get_text() for t in ax.texts]
    assert "IClamp 0.3 nA" in texts and "soma(0.5)" in texts
    # a scale bar in um and a colour bar for peak v
    bar_texts = [t.get_text() for a in ax.artists for t in a.findobj(matplotlib.text.Text)]
    assert any(t.endswith(" µm") for t in bar_texts), bar_texts
    assert any(a.get_ylabel() == "peak v (mV)" for a in fig.axes)


def test_morphology_coloured_per_segment(branched_run, tmp_path):
    """Each section is cut at its segment boundaries: along section s the colours are the
    values of its nseg nodes in order (a 2-point section is not one colour)."""
    cell, res, _ = branched_run
    peak = np.arange(cell.n_nodes, dtype=float)  # each node its own value
    fig = plot_run(cell, res, tmp_path / "b.png", peak=peak)
    lc = _axes(fig)["morphology"].collections[0]
    values = np.asarray(lc.get_array())
    segs = lc.get_segments()
    for s, n in enumerate(cell.nseg):
        expected = peak[cell.nodes(cell.section(s))]
        assert len(expected) == n
        # the pieces of section s: those whose values are its nodes
        mine = [v for v in values if v in set(expected)]
        assert list(dict.fromkeys(mine)) == list(expected), (s, mine)
    # and the drawn pieces cover every section's length
    total = sum(np.hypot(*(b - a)) for a, b in segs)
    assert total == pytest.approx(float(np.sum(cell.morphology.lengths)), rel=1e-6)


def test_branched_cell_labels_and_stimulus_elsewhere(branched_run, tmp_path):
    cell, res, peak = branched_run
    fig = plot_run(cell, res, tmp_path / "b.png", peak=peak, title="branched")
    axes = _axes(fig)
    assert _legend_texts(axes["traces mV"]) == ["v soma(0.5)", "v dend[2](0.3)"]
    # the clamp sits at the centre of the segment holding x = 0.5 (nseg 4: x = 0.625), as
    # NEURON's IClamp.get_loc() reports it
    assert _legend_texts(axes["stimulus"]) == ["IClamp 0.2 nA dend[1](0.625)"]
    ax = axes["morphology"]
    assert ax.get_aspect() == 1.0
    stim = [ln for ln in ax.lines if ln.get_label() == "stimulus"]
    start = np.asarray(cell.morphology.sections[2].points)[0, :2]
    end = np.asarray(cell.morphology.sections[2].points)[-1, :2]
    np.testing.assert_allclose(np.r_[stim[0].get_data()].ravel(),
                               start + 0.625 * (end - start), atol=1e-4)
    assert fig.get_suptitle() == "branched"


def test_explicit_stimuli_units_and_no_peak(ball_run, tmp_path):
    cell, res = ball_run
    # units from the result: a current in nA gets its own panel
    fake = SimpleNamespace(t=res.t, traces=np.asarray(res.traces), labels=res.labels,
                           units=("mV", "1", "nA"), meta={"dt": 0.05, "celsius": 6.3})
    fig = plot_run(cell, fake, tmp_path / "u.png", stimuli=[])
    axes = _axes(fig)
    assert sorted(k for k in axes if k.startswith("traces")) == ["traces 1", "traces mV",
                                                                 "traces nA"]
    assert axes["traces nA"].get_ylabel() == "current (nA)"
    assert "stimulus" not in axes  # stimuli=[]: none shown
    morph = axes["morphology"]
    assert not [ln for ln in morph.lines if ln.get_label() == "stimulus"]
    assert "dt 0.05 ms" in axes["traces mV"].get_title(loc="left")
    fig = plot_run(cell, res, tmp_path / "s.png",
                   stimuli=[(cell.section(1)(0.5), 1.0, 2.0, -0.1)])
    assert "IClamp -0.1 nA" in [t.get_text() for t in _axes(fig)["morphology"].texts]
    with pytest.raises(ValueError, match="one value per node"):
        plot_run(cell, res, tmp_path / "x.png", peak=np.zeros(3))
    with pytest.raises(ValueError, match="stimuli must be a list"):
        plot_run(cell, res, tmp_path / "x.png", stimuli=[(1, 2)])
    with pytest.raises(ValueError, match=r"result.units: got 2 for 3 traces"):
        plot_run(cell, SimpleNamespace(**{**vars(fake), "units": ("mV", "1")}),
                 tmp_path / "x.png")
    with pytest.raises(ValueError, match=r"traces must have shape \[labels, times\]"):
        plot_run(cell, SimpleNamespace(**{**vars(fake), "traces": fake.traces[:, :-1]}),
                 tmp_path / "x.png")


def test_bundled_default_cell_is_drawn_to_scale_apical_up(tmp_path):
    """What ``dendrax simulate`` draws: the bundled branched neuron."""
    from dendrax.spec import CellSpec

    cell = CellSpec().build()
    res = dx.simulate(cell, 2.0, 0.05)
    fig = plot_run(cell, res, tmp_path / "d.png", peak=np.full(cell.n_nodes, -60.0),
                   title="dendrax: default branched neuron")
    assert _is_png(tmp_path / "d.png")
    ax = _axes(fig)["morphology"]
    assert ax.get_aspect() == 1.0
    p = ax.transData.transform([[0.0, 0.0], [100.0, 0.0], [0.0, 100.0]])
    assert np.isclose(np.hypot(*(p[1] - p[0])), np.hypot(*(p[2] - p[0])), rtol=1e-9)
    # the apical tree is drawn above the soma
    segs = np.asarray(ax.collections[0].get_segments())
    lc_y = segs[:, :, 1].mean(axis=1)
    regions = [s.region for s in cell.morphology.sections]
    rec = {ln.get_label(): ln for ln in ax.lines}
    soma_y = np.r_[rec["stimulus"].get_data()].ravel()[1]  # the clamp is at the soma
    assert lc_y.max() > soma_y + 300 and "apic" in regions
    texts = [t.get_text() for t in ax.texts]
    assert "IClamp 0.8 nA" in texts
    # a constant peak still gets a readable colour range around it
    lo, hi = ax.collections[0].get_clim()
    assert lo < -60 < hi


def test_every_kind_of_stimulus_is_marked(tmp_path):
    cell = dx.Cell.ball_and_stick(nseg=[1, 4])
    cell.insert("hh")
    cell.vclamp(cell.soma(0.5), amp=[-70.0, -20.0], dur=[1.0, 2.0])
    cell.stimulate(cell.section(1)(0.9), [0.0, 1.0, 2.0], [0.0, 0.05, 0.0])
    cell.synapse("Exp2Syn", cell.section(1)(0.4), spike_times=[1.0])
    cell.record("v", cell.soma(0.5))
    t = np.arange(0.0, 3.0, 0.1)
    res = SimpleNamespace(t=t, traces=np.full((1, t.size), -65.0), labels=cell.recordings)
    fig = plot_run(cell, res, tmp_path / "k.png")
    ax = _axes(fig)["morphology"]
    texts = [x.get_text() for x in ax.texts]
    assert "SEClamp -70/-20 mV" in texts and "I(t) 0.05 nA peak" in texts
    assert [ln.get_label() for ln in ax.lines].count("synapse") == 1
    assert _legend_texts(_axes(fig)["stimulus"]) == ["I(t) 0.05 nA peak dend(0.875)"]


def test_a_waveform_is_drawn_as_the_cell_receives_it(tmp_path):
    """Before its first time a waveform holds its first value (NEURON's Vector.play): the
    panel drew a ramp from 0 at t = 0 to it; points beyond the run are not drawn."""
    cell = dx.Cell.ball_and_stick(nseg=[1, 2])
    cell.stimulate(cell.soma(0.5), [5.0, 10.0, 25.0, 40.0], [0.2, 0.2, 0.1, 0.3])
    cell.record("v", cell.soma(0.5))
    t = np.arange(0.0, 30.0 + 1e-9, 0.5)
    res = SimpleNamespace(t=t, traces=np.full((1, t.size), -65.0), labels=cell.recordings)
    line = _axes(plot_run(cell, res, tmp_path / "w.png"))["stimulus"].lines[0]
    ts, ys = line.get_xdata(), line.get_ydata()
    assert ts.min() == 0.0 and ts.max() == 30.0
    np.testing.assert_allclose(np.interp(t, ts, ys), play(t, np.array([5.0, 10.0, 25.0, 40.0]),
                                                          np.array([0.2, 0.2, 0.1, 0.3])),
                               rtol=0, atol=1e-12)
    # a pulse ending at the run's end, or spanning the whole run, is flat (not a ramp to the
    # mean of its last two values)
    for times in ([5.0, 5.0, 30.0, 30.0], [0.0, 0.0, 30.0, 30.0]):
        other = dx.Cell.ball_and_stick(nseg=[1, 2])
        other.stimulate(other.soma(0.5), times, [0.0, 0.2, 0.2, 0.0])
        other.record("v", other.soma(0.5))
        line = _axes(plot_run(other, res, tmp_path / "p.png"))["stimulus"].lines[0]
        mid = t[(t > times[1]) & (t < 30.0)]
        np.testing.assert_allclose(np.interp(mid, line.get_xdata(), line.get_ydata()), 0.2)


def test_extracellular_readouts_get_panels_of_their_own(tmp_path):
    """A cell recording an LFP and a dipole: their rows are drawn in uV and nA um panels,
    labelled by contact and axis (plot_run raised an AttributeError on them)."""
    cell = dx.Cell.ball_and_stick(nseg=[1, 3]).insert("hh")
    cell.iclamp(cell.soma(0.5), delay=0.5, dur=2.0, amp=0.3).record("v", cell.soma(0.5))
    cell.record_extracellular(dx.Electrodes(np.array([[0.0, 20.0, 0.0], [50.0, 20.0, 0.0]]),
                                            sigma=0.3)).record_dipole()
    res = dx.simulate(cell, 3.0, 0.025)
    axes = _axes(plot_run(cell, res, tmp_path / "x.png"))
    lfp = axes["traces uV"]
    assert lfp.get_ylabel() == "extracellular potential (µV)"
    assert _legend_texts(lfp) == ["lfp[0]", "lfp[1]"]
    np.testing.assert_array_equal(lfp.lines[1].get_ydata(), np.asarray(res["lfp"])[1])
    assert _legend_texts(axes["traces nA um"]) == ["dipole[x]", "dipole[y]", "dipole[z]"]
    assert [t.get_text() for t in axes["morphology"].texts].count("soma(0.5)") == 1


def test_labels_and_titles():
    assert short_title("dendrax: /a/b/c/cell.swc") == "dendrax: cell.swc"
    assert short_title("dendrax: runs/net.toml") == "dendrax: net.toml"
    assert short_title("dendrax: default branched neuron") == "dendrax: default branched neuron"
    assert quantity_label("mV", ["v"]) == "membrane potential (mV)"
    assert quantity_label("1", ["hh.m", "hh.h"]) == "gating variable"
    assert quantity_label("nA", ["i_membrane"]) == "current (nA)"
    assert quantity_label("mA/cm2", ["ina"]) == "current density (mA/cm²)"
    assert quantity_label("mM", ["cai"]) == "concentration (mM)"
    assert quantity_label("uS", ["Exp2Syn.g"]) == "conductance (µS)"
    assert quantity_label("", ["foo.x"]) == "foo.x"


def test_plot_network_raster_and_panels_by_unit(tmp_path):
    t = np.linspace(0.0, 50.0, 501)
    traces = np.stack([-65 + 10 * np.sin(t / 5), -60 + 5 * np.cos(t / 3), 0.5 + 0.4 * np.sin(t)])
    labels = ["v cell[0].soma(0.5)", "v cell[2].dend(0.3)", "hh.m cell[0].soma(0.5)"]
    path = tmp_path / "net.png"
    fig = plot_network(t, traces, labels, [0, 1, 2], [[5.0, 20.0], [], [7.5]], path,
                       units=["mV", "mV", "1"], n_cells=4, title="dendrax: /x/y/net.toml")
    assert _is_png(path)
    axes = _axes(fig)
    assert set(axes) == {"raster", "traces mV", "traces 1"}
    assert axes["raster"].get_ylim() == (-0.5, 3.5)
    assert "3 spikes from 2 of 3 recorded neurons" in axes["raster"].get_title(loc="left")
    assert axes["traces mV"].get_ylabel() == "membrane potential (mV)"
    assert axes["traces 1"].get_ylabel() == "gating variable"
    assert _legend_texts(axes["traces mV"]) == labels[:2]
    # one colour per site: v and hh.m at cell[0].soma(0.5) match
    c_v = axes["traces mV"].lines[0].get_color()
    assert axes["traces 1"].lines[0].get_color() == c_v
    assert axes["traces mV"].lines[1].get_color() != c_v
    assert fig.get_suptitle() == "dendrax: net.toml"
    # default units: "v ..." is mV, the rest unknown
    fig = plot_network(t, traces, labels, [], [], tmp_path / "n2.png")
    assert {k for k in _axes(fig)} == {"raster", "traces mV", "traces "}
    with pytest.raises(ValueError, match="units"):
        plot_network(t, traces, labels, [], [], tmp_path / "n3.png", units=["mV"])
    with pytest.raises(ValueError, match=r"traces must have shape \[labels, times\] = \(3, 501\), "
                                         r"got \(3, 500\)"):
        plot_network(t, traces[:, 1:], labels, [], [], tmp_path / "n4.png")
    with pytest.raises(ValueError, match=r"traces must have shape .* = \(2, 501\), got \(3, 501\)"):
        plot_network(t, traces, labels[:2], [], [], tmp_path / "n5.png")
    plot_network(t, traces[0], labels[:1], [], [], tmp_path / "one.png")  # one trace, [n_t]
    with pytest.raises(ValueError, match=r"t must be one time axis \[n_t\], got shape \(1, 501\)"):
        plot_network(t[None], traces, labels, [], [], tmp_path / "n6.png")


def test_figures_stay_out_of_pyplot(ball_run, tmp_path):
    import matplotlib.pyplot as plt

    cell, res = ball_run
    before = plt.get_fignums()
    plot_run(cell, res, tmp_path / "r.png")
    plot_network(res.t, res.traces, ["a", "b", "c"], [0], [[1.0]], tmp_path / "n.png")
    assert plt.get_fignums() == before
