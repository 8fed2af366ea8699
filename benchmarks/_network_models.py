"""The networks of benchmarks/network.py, described once (``NetBench``) and built in each
simulator from the same numbers: dendrax (Exp2Syn or graded synapses), NEURON (Exp2Syn +
NetCon; as users, experts and with exact rates) and Jaxley (graded synapses)."""

from __future__ import annotations

import sys
import gc
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _models as M  # noqa: E402
import _runner as R  # noqa: E402

THRESHOLD = 10.0  # mV: NetCon threshold of every connection and of the spike recording
SEED = 1


# --- the networks, described once ---------------------------------------------------------

@dataclass
class Group:
    """Connections of one synapse type, arrays of equal length sorted by (pre, post).
    ``post_sec``/``post_x``: the site on the post cell (one value: every connection there)."""

    pre: np.ndarray
    post: np.ndarray
    post_sec: np.ndarray
    post_x: np.ndarray
    weight: np.ndarray   # uS (Exp2Syn)
    delay: np.ndarray    # ms
    gS: np.ndarray       # uS (the graded variant)
    tau1: float
    tau2: float
    e: float

    @property
    def size(self) -> int:
        return int(self.pre.size)

    @property
    def one_site(self) -> bool:
        return np.unique(self.post_sec).size == 1 and np.unique(self.post_x).size == 1


@dataclass
class NetBench:
    name: str
    kinds: list          # per cell: "ball_and_stick" or an SWC path
    nseg: object         # ball-and-stick: [1, 5]; SWC: an int
    groups: list
    iclamps: list        # (cell, delay, dur, amp) at soma(0.5)
    t_stop: float
    dt: float
    soma_sec: list = field(default_factory=list)  # soma section index of each cell

    @property
    def n_cells(self) -> int:
        return len(self.kinds)

    @property
    def n_connections(self) -> int:
        return sum(g.size for g in self.groups)


BS_NSEG = [1, 5]
BS_EXC = dict(tau1=0.2, tau2=3.0, e=0.0)
BS_INH = dict(tau1=0.5, tau2=8.0, e=-80.0)
W_EXC, W_INH = 0.0006, 0.02        # uS, mean Exp2Syn weights
G_EXC, G_INH = 0.0006, 0.0006      # uS, mean IonotropicSynapse gS (graded variant)


def _group(pre, post, sec, x, w, gs, rng, kin):
    order = np.lexsort((post, pre))
    pre, post = pre[order], post[order]
    n = pre.size
    sec = np.broadcast_to(np.asarray(sec)[order] if np.ndim(sec) else sec, (n,)).astype(int)
    x = np.broadcast_to(np.asarray(x)[order] if np.ndim(x) else x, (n,)).astype(float)
    scale = rng.uniform(0.5, 1.5, n)
    return Group(pre, post, sec, x, w * scale, rng.uniform(1.0, 5.0, n), gs * scale, **kin)


def ball_and_stick_net(n_cells, p, t_stop, dt, seed=SEED) -> NetBench:
    rng = np.random.default_rng(seed)
    mask = rng.random((n_cells, n_cells)) < p
    np.fill_diagonal(mask, False)
    n_exc = int(round(0.8 * n_cells))
    pre, post = np.nonzero(mask)
    exc = pre < n_exc
    groups = [_group(pre[exc], post[exc], 1, 0.5, W_EXC, G_EXC, rng, BS_EXC),
              _group(pre[~exc], post[~exc], 0, 0.5, W_INH, G_INH, rng, BS_INH)]
    n_drive = max(1, n_cells // 10)
    amps = rng.uniform(0.15, 0.25, n_drive)
    iclamps = [(i, 5.0, 1e9, float(a)) for i, a in enumerate(amps)]
    return NetBench("ball-and-stick", ["ball_and_stick"] * n_cells, BS_NSEG, groups, iclamps,
                    t_stop, dt, soma_sec=[0] * n_cells)


SWC_W = 0.001         # uS, mean Exp2Syn weight onto the reconstructions' dendrites
SWC_IN = 5            # connections into each cell


def swc_net(paths, copies, nseg, t_stop, dt, seed=SEED) -> NetBench:
    import dendrax as dx

    rng = np.random.default_rng(seed)
    morphs = [dx.read_morphology(p) for p in paths]
    kinds = [str(p) for p in paths for _ in range(copies)]
    m_of = [m for m in morphs for _ in range(copies)]
    n = len(kinds)
    soma = [next(i for i, s in enumerate(m.sections) if s.region == "soma") for m in m_of]
    pre, post, sec, x = [], [], [], []
    k = min(SWC_IN, n - 1)
    for j in range(n):
        src = rng.choice(np.delete(np.arange(n), j), k, replace=False)
        dends = [i for i, s in enumerate(m_of[j].sections) if s.region != "soma"]
        pre += src.tolist()
        post += [j] * k
        sec += rng.choice(dends, k).tolist()
        x += rng.uniform(0.05, 1.0, k).tolist()
    groups = [_group(np.array(pre), np.array(post), np.array(sec), np.array(x), SWC_W, 0.0,
                     rng, BS_EXC)]
    drive = list(range(0, n, copies // 2 or 1))[:4]
    iclamps = [(i, 5.0, 1e9, float(a)) for i, a in zip(drive, rng.uniform(0.4, 0.6, len(drive)))]
    return NetBench("SWC", kinds, nseg, groups, iclamps, t_stop, dt, soma_sec=soma)


# --- dendrax ------------------------------------------------------------------------------

def dendrax_net(spec: NetBench, synapse="Exp2Syn"):
    """The dx.Network of ``spec``: soma v of every cell and its spikes recorded.
    ``synapse="IonotropicSynapse"``: the graded variant (gS, e_syn, no delay)."""
    import dendrax as dx

    protos = {}
    cells = []
    for k in spec.kinds:
        if k not in protos:
            cell = (dx.Cell.ball_and_stick(nseg=spec.nseg, Ra=M.RA, cm=M.CM) if k == "ball_and_stick"
                    else dx.Cell(dx.read_morphology(k), nseg=spec.nseg, Ra=M.RA, cm=M.CM))
            cell.insert("hh")
            protos[k] = cell
        cells.append(protos[k].copy())
    net = dx.Network(cells)
    for c, delay, dur, amp in spec.iclamps:
        net.cell(c).iclamp(net.cell(c).soma(0.5), delay=delay, dur=dur, amp=amp)
    for g in spec.groups:
        if synapse == "Exp2Syn":
            kw = dict(weight=g.weight, delay=g.delay, threshold=THRESHOLD, tau1=g.tau1,
                      tau2=g.tau2, e=g.e)
        else:
            kw = dict(gS=g.gS, e_syn=g.e, delay=0.0)
        if g.one_site:  # vectorised: one connect_matrix per group
            m = np.zeros((spec.n_cells, spec.n_cells), bool)
            m[g.pre, g.post] = True
            loc = cells[0].section(int(g.post_sec[0]))(float(g.post_x[0]))
            net.connect_matrix(m, synapse, pre_loc=None, post_loc=loc, **kw)
        else:
            for i in range(g.size):
                one = {k: (v[i] if np.ndim(v) else v) for k, v in kw.items()}
                net.connect(net.cell(int(g.pre[i])).soma(0.5),
                            net.cell(int(g.post[i])).section(int(g.post_sec[i]))(float(g.post_x[i])),
                            synapse, **one)
    for i in range(spec.n_cells):
        net.record("v", net.cell(i).soma(0.5))
    net.record_spikes(threshold=THRESHOLD)
    return net


def dendrax_loop(net, t_stop, dt, *, checkpoint=None):
    """params -> (soma traces [n_t, n_cells], spike raster [n_steps, n_cells]): the time
    loop of ``dx.simulate`` without its Python wrapper, ready for jit/grad."""
    import jax.numpy as jnp
    from dendrax import lowering, simulator_units, timecourse
    from dendrax.delays import sized
    from dendrax.simulation import run

    n_steps = int(round(t_stop / dt))
    model, params, layout = lowering.lower(net)
    model = sized(model, layout, params, dt)
    drv = timecourse.drive(layout, n_steps, dt)

    def forward(p):
        core = simulator_units.core_params(layout, p, v_init=M.V_INIT, celsius=M.CELSIUS)
        out = run(model, core, drv, jnp.asarray(dt), checkpoint=checkpoint)
        return out.traces, out.raster, out.stats

    return forward, params


def spikes_from_raster(raster, dt) -> list:
    raster = np.asarray(raster)
    t = np.arange(raster.shape[0]) * dt
    return [t[raster[:, q]] for q in range(raster.shape[1])]


def bench_dendrax(jax, spec, synapse, repeats):
    t0 = time.perf_counter()
    net = dendrax_net(spec, synapse)
    import dendrax as dx

    dx.lower(net)
    build = time.perf_counter() - t0
    fwd, params = dendrax_loop(net, spec.t_stop, spec.dt)
    f = jax.jit(fwd)
    (traces, raster, _), first, steady = R.timed(lambda: jax.block_until_ready(f(params)), repeats)
    spikes = spikes_from_raster(raster, spec.dt)
    n_comp = sum(M.n_segments(c) for c in net.cells)
    return {"build_s": build, "compile_s": max(first - steady, 0.0), "run_s": steady,
            "n_comp": n_comp, "n_nodes": sum(c.n_nodes for c in net.cells),
            "traces": np.asarray(traces).T, "spikes": spikes,
            "n_spikes": int(sum(s.size for s in spikes))}


# --- NEURON ---------------------------------------------------------------------------------

class NeuronNet:
    """The NEURON model of a NetBench (keeps every hoc object alive)."""

    def __init__(self, spec: NetBench):
        from neuron import h

        import dendrax as dx

        nm = M.neuron_helpers()
        bs = dx.Cell.ball_and_stick().morphology
        self.spec, self.keep, self.cells = spec, [], []
        for k in spec.kinds:
            secs = (nm.neuron_from_morphology(bs, spec.nseg, Ra=M.RA, cm=M.CM)
                    if k == "ball_and_stick" else nm.neuron_from_swc(k, nseg=spec.nseg, Ra=M.RA,
                                                                     cm=M.CM))
            for s in secs:
                s.insert("hh")
            self.cells.append(secs)
        somas = [secs[i](0.5) for secs, i in zip(self.cells, spec.soma_sec)]
        for c, delay, dur, amp in spec.iclamps:
            ic = h.IClamp(somas[c])
            ic.delay, ic.dur, ic.amp = delay, dur, amp
            self.keep.append(ic)
        for g in spec.groups:
            for i in range(g.size):
                syn = h.Exp2Syn(self.cells[g.post[i]][g.post_sec[i]](g.post_x[i]))
                syn.tau1, syn.tau2, syn.e = g.tau1, g.tau2, g.e
                src = somas[g.pre[i]]
                nc = h.NetCon(src._ref_v, syn, sec=src.sec)
                nc.threshold, nc.delay, nc.weight[0] = THRESHOLD, g.delay[i], g.weight[i]
                self.keep += [syn, nc]
        self.spike_vecs = []
        for s in somas:
            nc = h.NetCon(s._ref_v, None, sec=s.sec)
            nc.threshold = THRESHOLD
            vec = h.Vector()
            nc.record(vec)
            self.keep.append(nc)
            self.spike_vecs.append(vec)
        self.v_rec = [h.Vector().record(s._ref_v) for s in somas]

    def run(self, mode: str):
        """mode: "user" (continuerun, tables on), "expert" (cache_efficient + psolve, tables
        on) or "exact" (as expert, h.usetable_hh = 0)."""
        from neuron import h

        M.neuron_run(mode, self.spec.t_stop, self.spec.dt, v_init=M.V_INIT, celsius=M.CELSIUS)
        h.usetable_hh = 0
        return (np.array([np.array(r) for r in self.v_rec]),
                [np.array(v) for v in self.spike_vecs])


def bench_neuron(spec, repeats):
    t0 = time.perf_counter()
    model = NeuronNet(spec)
    out = {"build_s": time.perf_counter() - t0}
    for mode in ("user", "expert", "exact"):
        (traces, spikes), _, steady = R.timed(lambda: model.run(mode), repeats)
        out[mode] = {"run_s": steady, "n_spikes": int(sum(s.size for s in spikes))}
        if mode == "exact":
            out["traces"], out["spikes"] = traces, spikes
    del model
    gc.collect()
    return out


# --- Jaxley (graded synapses) ---------------------------------------------------------------

def jaxley_net(spec: NetBench, trainable=True):
    """The ball-and-stick network in Jaxley with IonotropicSynapse at the same sites."""
    import jaxley as jx
    from jaxley.channels import HH
    from jaxley.connect import connect
    from jaxley.synapses import IonotropicSynapse

    n_soma, n_dend = spec.nseg
    soma = jx.Branch(jx.Compartment(), ncomp=n_soma)
    dend = jx.Branch(jx.Compartment(), ncomp=n_dend)
    cell = jx.Cell([soma, dend], parents=[-1, 0])
    cell.branch(0).set("length", 20.0 / n_soma)
    cell.branch(0).set("radius", 10.0)
    cell.branch(1).set("length", 200.0 / n_dend)
    cell.branch(1).set("radius", 0.5)
    cell.set("axial_resistivity", M.RA)
    cell.set("capacitance", M.CM)
    cell.insert(HH())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = jx.Network([cell for _ in range(spec.n_cells)])
    per_cell = n_soma + n_dend

    index = net.nodes.index.to_numpy()  # (Jaxley numbers branch points in between)

    def node(c, sec, x):  # the compartment containing x (NEURON's segment of x)
        n = spec.nseg[sec]
        return index[c * per_cell + (0 if sec == 0 else n_soma) + min(int(x * n), n - 1)]

    somas = np.array([node(c, 0, 0.5) for c in range(spec.n_cells)])
    first = 0
    for g in spec.groups:
        post = [node(int(c), int(s), float(x)) for c, s, x in zip(g.post, g.post_sec, g.post_x)]
        connect(net.select(nodes=somas[g.pre]), net.select(nodes=np.array(post)),
                IonotropicSynapse())
        rows = net.edges.index[first:first + g.size]
        net.edges.loc[rows, "IonotropicSynapse_gS"] = g.gS
        net.edges.loc[rows, "IonotropicSynapse_e_syn"] = g.e
        first += g.size
    net.set("v", M.V_INIT)
    net.init_states()
    cur = np.stack([jx.step_current(delay, dur, amp, spec.dt, spec.t_stop)
                    for _, delay, dur, amp in spec.iclamps])
    net.select(nodes=somas[[c for c, *_ in spec.iclamps]]).stimulate(cur, verbose=False)
    net.select(nodes=somas).record("v", verbose=False)
    if trainable:
        net.select(edges="all").make_trainable("IonotropicSynapse_gS", verbose=False)
    return net, per_cell * spec.n_cells


def bench_jaxley(jax, spec, repeats):
    import jaxley as jx

    t0 = time.perf_counter()
    net, n_comp = jaxley_net(spec)
    build = time.perf_counter() - t0
    params = net.get_parameters()
    f = jax.jit(lambda p: jx.integrate(net, params=p, t_max=spec.t_stop, delta_t=spec.dt))
    traces, first, steady = R.timed(lambda: f(params).block_until_ready(), repeats)
    traces = np.asarray(traces)
    spikes = [detect(spec.dt, v) for v in traces]
    return {"build_s": build, "compile_s": max(first - steady, 0.0), "run_s": steady,
            "n_comp": n_comp, "n_steps": traces.shape[1] - 1, "traces": traces,
            "n_spikes": int(sum(s.size for s in spikes))}


def detect(dt, v, threshold=THRESHOLD):
    """NetCon's rule on a sampled voltage: a spike where v first exceeds threshold."""
    above = np.asarray(v) > threshold
    return (np.flatnonzero(above[1:] & ~above[:-1]) + 1) * dt
