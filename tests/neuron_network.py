"""Networks described once, built twice: in dendrax (``dx.Network``) and in NEURON.

Import this module only after ``pytest.importorskip("neuron")``.

A network is a plain-Python :class:`NetSpec`: cells (a ball-and-stick or an SWC file,
nseg, Ra, cm, mechanisms, current clamps), artificial spike trains, connections
(``Exp2Syn`` at a postsynaptic site, driven by a presynaptic site's voltage crossing a
threshold, or by an artificial train, after a delay, with a weight) and the voltage
sites to record. :func:`build_dendrax` and :func:`build_neuron` make the two models from
the same numbers; :func:`run_neuron` and :func:`run_dendrax` return the same
:class:`Result` (time, voltages, spike times at each cell's soma).

NEURON's side is plain NEURON 9: one ``h.Exp2Syn`` per connection, fed by
``h.NetCon(sec(x)._ref_v, syn, sec=sec)`` with ``threshold``, ``delay`` and
``weight[0]``; an artificial train is a source-less ``h.NetCon(None, syn)`` whose
events ``nc.event(t + delay)`` are queued by an ``FInitializeHandler`` (the wheel has
no VecStim; a VecStim would deliver the same events).

Two NEURON facts the specs respect:

* A NetCon's threshold belongs to its source (a PreSyn shared by every NetCon on the
  same voltage), so two connections from one node cannot have different thresholds
  in NEURON. :func:`build_neuron` checks that and refuses such a spec.
* For the same reason, each cell's soma spike times are detected from the recorded
  somatic voltage (:func:`detect_spikes`: NetCon's fixed-step rule, a spike at the end
  of the first step where v > threshold, re-armed once v <= threshold) and not with an
  extra NetCon, which would change the thresholds of the connections leaving the
  soma. :func:`build_neuron` also records every connection NetCon's own spike times
  (``NetCon.record``), and the tests check the detector against them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from neuron import h

from neuron_model import neuron_from_morphology

h.load_file("stdrun.hoc")
h.usetable_hh = 0  # hh.mod's rate tables are an approximation dendrax does not make


# --- the description ----------------------------------------------------------

@dataclass
class CellSpec:
    """One cell. ``kind`` is "ball_and_stick" (``geometry``: the keyword arguments of
    ``dx.Cell.ball_and_stick``) or "swc" (``path``: an SWC file)."""

    kind: str = "ball_and_stick"
    nseg: int | list = 1
    Ra: float = 100.0
    cm: float = 1.0
    geometry: dict = field(default_factory=dict)
    path: str | Path | None = None
    mechanisms: tuple = ("hh",)
    # (section, x, delay, dur, amp); section: an index or "soma"
    iclamps: list = field(default_factory=list)


@dataclass
class Conn:
    """One Exp2Syn at ``post`` = (cell, section, x), driven by ``pre``: either
    (cell, section, x) (a spike when v there crosses ``threshold``) or ("source", k)
    (the k-th artificial train of the spec)."""

    pre: tuple
    post: tuple
    weight: float
    delay: float = 1.0
    threshold: float = 10.0
    tau1: float = 0.2
    tau2: float = 3.0
    e: float = 0.0

    @property
    def from_source(self) -> bool:
        return self.pre[0] == "source"


@dataclass
class NetSpec:
    cells: list
    conns: list = field(default_factory=list)
    sources: list = field(default_factory=list)  # one list of spike times (ms) per train
    record: list = field(default_factory=list)   # (cell, section, x): voltage sites
    gaps: list = field(default_factory=list)     # (site a, site b, g uS): gap junctions
    spike_threshold: float = 0.0                 # soma spike detection (record_spikes)
    t_stop: float = 40.0
    dt: float = 0.025
    v_init: float = -65.0
    celsius: float = 6.3

    def sites(self):
        """Every recorded voltage site: each cell's soma(0.5) first, then ``record``."""
        return [(i, "soma", 0.5) for i in range(len(self.cells))] + list(self.record)


@dataclass
class Result:
    t: np.ndarray          # [n_t]
    v: np.ndarray          # [n_sites, n_t], sites in ``NetSpec.sites()`` order
    spikes: list           # per cell: soma spike times (ms)
    conn_spikes: list | None = None  # NEURON only: per connection, its NetCon's spikes


# --- helpers ------------------------------------------------------------------

def morphology(cell: CellSpec):
    """The dendrax Morphology of ``cell`` (NEURON builds its geometry from it)."""
    import dendrax as dx

    if cell.kind == "ball_and_stick":
        return dx.Cell.ball_and_stick(**cell.geometry).morphology
    if cell.kind == "swc":
        return dx.read_morphology(Path(cell.path))
    raise ValueError(f"unknown cell kind {cell.kind!r}")


def section_index(morph, section) -> int:
    if section == "soma":
        return next(i for i, s in enumerate(morph.sections) if s.region == "soma")
    return int(section)


def detect_spikes(t, v, threshold) -> np.ndarray:
    """Fixed-step NetCon rule on a sampled voltage: a spike at t[n] when v[n] > threshold
    and the detector is armed; armed again once v <= threshold (armed at t = 0 if v[0] is
    at or below threshold)."""
    above = np.asarray(v) > threshold
    up = np.flatnonzero(above[1:] & ~above[:-1]) + 1
    return np.asarray(t)[up]


# --- dendrax ------------------------------------------------------------------

def build_dendrax(spec: NetSpec):
    """``(net, sites)``: the dx.Network of ``spec`` with its voltage recordings (sites in
    ``spec.sites()`` order, as dendrax Locations) and soma spike recording."""
    import dendrax as dx

    cells = []
    for c in spec.cells:
        if c.kind == "ball_and_stick":
            cell = dx.Cell.ball_and_stick(nseg=c.nseg, Ra=c.Ra, cm=c.cm, **c.geometry)
        else:
            cell = dx.Cell(dx.read_morphology(Path(c.path)), nseg=c.nseg, Ra=c.Ra, cm=c.cm)
        for m in c.mechanisms:
            cell.insert(m)
        cells.append(cell)
    net = dx.Network(cells)

    def loc(site):
        i, sec, x = site
        view = net.cell(i)
        return view.soma(x) if sec == "soma" else view.section(int(sec))(x)

    for i, c in enumerate(spec.cells):
        for sec, x, delay, dur, amp in c.iclamps:
            net.cell(i).iclamp(loc((i, sec, x)), delay=delay, dur=dur, amp=amp)
    sources = [net.spike_source(np.asarray(times, float)) for times in spec.sources]
    for c in spec.conns:
        syn = {"weight": c.weight, "delay": c.delay, "tau1": c.tau1, "tau2": c.tau2, "e": c.e}
        if c.from_source:
            net.connect(sources[c.pre[1]], loc(c.post), "Exp2Syn", **syn)
        else:
            net.connect(loc(c.pre), loc(c.post), "Exp2Syn", threshold=c.threshold, **syn)
    for a, b, g in spec.gaps:
        net.gap_junction(loc(a), loc(b), g=g)
    sites = [loc(s) for s in spec.sites()]
    for s in sites:
        net.record("v", s)
    net.record_spikes(threshold=spec.spike_threshold)
    return net, sites


def run_dendrax(spec: NetSpec, **kwargs) -> Result:
    import dendrax as dx

    net, sites = build_dendrax(spec)
    res = dx.simulate(net, spec.t_stop, spec.dt, v_init=spec.v_init, celsius=spec.celsius,
                      **kwargs)
    v = np.asarray(res.traces, dtype=np.float64)
    by_cell = {int(c): np.asarray(s, float) for c, s in zip(res.spike_cells, res.spikes)}
    spikes = [by_cell.get(i, np.zeros(0)) for i in range(len(spec.cells))]
    return Result(np.asarray(res.t, float), v, spikes)


# --- NEURON -------------------------------------------------------------------

class NeuronNetwork:
    """The NEURON model of a NetSpec; keeps every hoc object alive. ``run()`` -> Result."""

    def __init__(self, spec: NetSpec):
        self.spec = spec
        self.morphs = [morphology(c) for c in spec.cells]
        self.secs = []
        self.keep = []
        for c, m in zip(spec.cells, self.morphs):
            secs = neuron_from_morphology(m, c.nseg, Ra=c.Ra, cm=c.cm)
            for s in secs:
                for mech in c.mechanisms:
                    s.insert(mech)
            self.secs.append(secs)
        for i, c in enumerate(spec.cells):
            for sec, x, delay, dur, amp in c.iclamps:
                ic = h.IClamp(self.seg((i, sec, x)))
                ic.delay, ic.dur, ic.amp = delay, dur, amp
                self.keep.append(ic)

        self.netcons, self.conn_rec = [], []
        events = []  # (netcon, delivery time) of artificial trains
        for c in spec.conns:
            syn = h.Exp2Syn(self.seg(c.post))
            syn.tau1, syn.tau2, syn.e = c.tau1, c.tau2, c.e
            if c.from_source:
                nc = h.NetCon(None, syn)
                events += [(nc, float(t) + c.delay) for t in spec.sources[c.pre[1]]]
                rec = None
            else:
                seg = self.seg(c.pre)
                nc = h.NetCon(seg._ref_v, syn, sec=seg.sec)
                nc.threshold = c.threshold
                rec = h.Vector()
                nc.record(rec)
            nc.delay = c.delay
            nc.weight[0] = c.weight
            self.keep.append(syn)
            self.netcons.append(nc)
            self.conn_rec.append(rec)
        # the threshold is the source's: a later NetCon on the same node overrides it
        for c, nc in zip(spec.conns, self.netcons):
            if not c.from_source and nc.threshold != c.threshold:
                raise ValueError(f"connection {c}: NEURON shares one threshold per source "
                                 f"node ({nc.threshold}); use another presynaptic site")
        if spec.gaps:  # tests/nmodl_neuron/halfgap.mod, a half each side
            from conftest_mechanisms import load_reference_mechanisms

            load_reference_mechanisms()
        for a, b, g in spec.gaps:
            for here, there in ((a, b), (b, a)):
                half = h.halfgap(self.seg(here))
                half.g = g
                h.setpointer(self.seg(there)._ref_v, "vgap", half)
                self.keep.append(half)
        # (no reference to self in the handler: the network is freed with its last user)
        self.fih = h.FInitializeHandler(lambda ev=events: [nc.event(t) for nc, t in ev])

        self.t_rec = h.Vector().record(h._ref_t)
        self.v_rec = [h.Vector().record(self.seg(s)._ref_v) for s in spec.sites()]

    def seg(self, site):
        i, sec, x = site
        return self.secs[i][section_index(self.morphs[i], sec)](x)

    def run(self) -> Result:
        spec = self.spec
        h.secondorder = 0
        h.celsius = spec.celsius
        h.dt = spec.dt
        h.finitialize(spec.v_init)
        h.continuerun(spec.t_stop)
        t = np.array(self.t_rec)
        v = np.array([np.array(r) for r in self.v_rec])
        spikes = [detect_spikes(t, v[i], spec.spike_threshold) for i in range(len(spec.cells))]
        conn_spikes = [None if r is None else np.array(r) for r in self.conn_rec]
        return Result(t, v, spikes, conn_spikes)


def build_neuron(spec: NetSpec) -> NeuronNetwork:
    return NeuronNetwork(spec)


def run_neuron(spec: NetSpec) -> Result:
    return NeuronNetwork(spec).run()
