"""The time loop: one ``lax.scan`` of NEURON's fixed-step scheme under jit.

Each step from t to t + dt, as NEURON's ``fadvance`` with ``cvode`` off:

1. spikes due by t + dt/2 reach their synapses (NET_RECEIVE);
2. membrane currents and their conductances (d i / d v, by autodiff) at v(t),
   stimuli at t + dt/2;
3. the implicit voltage step: one Hines solve for dv (written for u = v + dv,
   which saves the axial product). Backward Euler (NEURON's default) applies
   v += dv; Crank-Nicolson (``secondorder=2``) solves with 2 C / dt and
   applies v += 2 dv;
4. ion pools, then gates, advance to t + dt at the new v (exponential Euler,
   NEURON's cnexp), so gates are staggered half a step from v.

Units: area um2, conductance uS, current nA, capacitance from cm (uF/cm2).
"""

from __future__ import annotations

import warnings
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from .mechanisms.base import IONS, IonPool, nernst
from .model import Model
from .solver import hines_solve

METHODS = {"backward_euler": 1.0, "crank_nicolson": 2.0}
DENSITY_TO_NA = 1e-2  # (mA/cm2) * um2 -> nA, and (S/cm2) * um2 -> uS
CAP_TO_NF = 1e-5  # (uF/cm2) * um2 -> nF


def _take(x, nodes):
    return x if nodes is None else x[nodes]


def _put_add(total, nodes, x):
    return total + x if nodes is None else total.at[nodes].add(x)


def _env(model: Model, core, conc):
    """Per-node ionic environment: reversal potentials, concentrations, celsius."""
    env = {"celsius": core["celsius"]}  # a scalar: temperature factors are computed once
    for ion in model.ions:
        info = IONS[ion]
        ci = conc.get(ion, core["ions"][f"{ion}i0"])
        co = core["ions"][f"{ion}o"]
        env[f"{ion}i"], env[f"{ion}o"] = ci, co
        if ion in model.dynamic_ions:
            env[f"e{ion}"] = nernst(ci, co, info.charge, env["celsius"])
        else:
            env[f"e{ion}"] = core["ions"][f"e{ion}"]
    return env


def _local_env(env, mech, nodes):
    keys = ["celsius"] + [k for ion in mech.ions for k in (f"e{ion}", f"{ion}i", f"{ion}o", f"i{ion}")]
    return {k: env[k] if k == "celsius" else _take(env[k], nodes) for k in keys if k in env}


def _membrane(model: Model, core, v, states, env):
    """Membrane current (nA), its conductance (uS) per node, and ion current densities."""
    area = core["area"]
    n = model.n_nodes
    i_tot = jnp.zeros(n, v.dtype)
    g_tot = jnp.zeros(n, v.dtype)
    i_ion = {ion: jnp.zeros(n, v.dtype) for ion in model.ions}
    for placement, p, s in zip(model.channels, core["channels"], states):
        mech, nodes = placement.mech, placement.nodes
        if isinstance(mech, IonPool):
            continue
        local = _local_env(env, mech, nodes)
        vl = _take(v, nodes)
        cur, dcur = jax.jvp(lambda u: mech.current(u, s, p, local), (vl,), (jnp.ones_like(vl),))
        a = _take(area, nodes) * DENSITY_TO_NA
        i_tot = _put_add(i_tot, nodes, sum(cur.values()) * a)
        g_tot = _put_add(g_tot, nodes, sum(dcur.values()) * a)
        for ion, c in cur.items():
            if ion:
                i_ion[ion] = _put_add(i_ion[ion], nodes, c)
    return i_tot, g_tot, i_ion


def _synapses(model: Model, core, v, syn_states):
    n = model.n_nodes
    i_tot = jnp.zeros(n, v.dtype)
    g_tot = jnp.zeros(n, v.dtype)
    for placement, p, s in zip(model.synapses, core["synapses"], syn_states):
        vl = v[placement.nodes]
        cur, dcur = jax.jvp(lambda u: placement.mech.current(u, s, p), (vl,), (jnp.ones_like(vl),))
        i_tot = i_tot.at[placement.nodes].add(cur)
        g_tot = g_tot.at[placement.nodes].add(dcur)
    return i_tot, g_tot


def _vclamp(vc, t):
    """NEURON's SEClamp at time t: (level [M] in mV, on [M]): amp1 for dur1, amp2 for
    dur2, amp3 for dur3, then off."""
    edges = jnp.cumsum(vc["dur"], axis=1)
    amp = vc["amp"]
    level = jnp.where(t < edges[:, 0], amp[:, 0], jnp.where(t < edges[:, 1], amp[:, 1], amp[:, 2]))
    return level, t < edges[:, 2]


def initial_state(model: Model, core):
    """v, channel/pool states, concentrations and synapse states at t = 0 (NEURON's finitialize)."""
    n = model.n_nodes
    dtype = core["area"].dtype
    v = jnp.full(n, core["v_init"], dtype)
    conc = {ion: core["ions"][f"{ion}i0"] for ion in model.dynamic_ions}
    env = _env(model, core, conc)
    states = []
    for placement, p in zip(model.channels, core["channels"]):
        local = _local_env(env, placement.mech, placement.nodes)
        vl = _take(v, placement.nodes)
        s = placement.mech.steady_state(vl, p, local)
        if isinstance(placement.mech, IonPool):
            ion = placement.mech.ion
            s = {**s, f"{ion}i": _take(conc[ion], placement.nodes)}
        states.append(s)
    syn = [placement.mech.steady_state(v[placement.nodes], p, {}) for placement, p in
           zip(model.synapses, core["synapses"])]
    return v, tuple(states), conc, tuple(syn)


def _matrix(model: Model, core, dt, k):
    """The loop-invariant parts of the voltage step: off-diagonal, axial diagonal, C/dt."""
    parent = jnp.asarray(model.parent)
    has = parent >= 0
    g_ax = jnp.where(has, core["g_axial"], 0.0)
    diag_ax = g_ax.at[jnp.maximum(parent, 0)].add(g_ax)
    cap_dt = k * core["cm"] * core["area"] * CAP_TO_NF / dt
    return {"parent": parent, "off": -g_ax, "cap_dt": cap_dt, "diag": cap_dt + diag_ax}


def _step(model: Model, core, mat, dt, k, backend, carry, drive):
    v, states, conc, syn_states, t = carry
    parent = mat["parent"]
    # 1. spikes due in this step (weight 0 where none arrives)
    syn_states = tuple(
        placement.mech.on_spike(s, p, w * p["weight"])
        for placement, p, s, w in zip(model.synapses, core["synapses"], syn_states, drive["spikes"]))
    # 2. currents at v(t), stimuli at t + dt/2
    t_mid = t + 0.5 * dt
    env = _env(model, core, conc)
    i_mem, g_mem, i_ion = _membrane(model, core, v, states, env)
    if model.synapses:
        i_syn, g_syn = _synapses(model, core, v, syn_states)
        i_mem, g_mem = i_mem + i_syn, g_mem + g_syn
    if model.iclamp_nodes.size:
        ic = core["iclamp"]
        on = (t_mid >= ic["delay"]) & (t_mid < ic["delay"] + ic["dur"])
        i_mem = i_mem.at[model.iclamp_nodes].add(-jnp.where(on, ic["amp"], 0.0))
    if model.waveform_nodes.size:
        i_mem = i_mem.at[model.waveform_nodes].add(-drive["waveform"])
    if model.vclamp_nodes.size:
        vc = core["vclamp"]
        nodes = model.vclamp_nodes
        level, on = _vclamp(vc, t_mid)
        i_mem = i_mem.at[nodes].add(-jnp.where(on, (level - v[nodes]) / vc["rs"], 0.0))
        g_mem = g_mem.at[nodes].add(jnp.where(on, 1.0 / vc["rs"], 0.0))
    # 3. implicit voltage step, solved for u = v + dv:
    #    (k C/dt + G_axial + g) u = (k C/dt + g) v - i
    rhs = (mat["cap_dt"] + g_mem) * v - i_mem
    u = hines_solve(parent, mat["off"], mat["diag"] + g_mem, mat["off"], rhs, backend=backend)
    v_new = u if k == 1.0 else k * u - (k - 1.0) * v
    # 4. pools, then gates, at the new v
    new_states = list(states)
    if model.dynamic_ions:
        env = {**env, **{f"i{ion}": i_ion[ion] for ion in model.ions}}
        for j, (placement, p, s) in enumerate(zip(model.channels, core["channels"], states)):
            if isinstance(placement.mech, IonPool):
                local = _local_env(env, placement.mech, placement.nodes)
                s = placement.mech.advance(_take(v_new, placement.nodes), s, p, local, dt)
                new_states[j] = s
                ion = placement.mech.ion
                conc = {**conc, ion: _put_into(conc[ion], placement.nodes, s[f"{ion}i"])}
        env = _env(model, core, conc)
    for j, (placement, p, s) in enumerate(zip(model.channels, core["channels"], states)):
        if not isinstance(placement.mech, IonPool):
            local = _local_env(env, placement.mech, placement.nodes)
            new_states[j] = placement.mech.advance(_take(v_new, placement.nodes), s, p, local, dt)
    syn_states = tuple(placement.mech.advance(v_new[placement.nodes], s, p, {}, dt)
                       for placement, p, s in zip(model.synapses, core["synapses"], syn_states))
    carry = (v_new, tuple(new_states), conc, syn_states, t + dt)
    return carry, _record(model, v_new, tuple(new_states), syn_states)


def _put_into(total, nodes, x):
    return x if nodes is None else total.at[nodes].set(x)


def _record(model: Model, v, states, syn_states):
    out = []
    channels = [p.mech.name for p in model.channels]
    synapses = [p.mech.name for p in model.synapses]
    for r in model.recordings:
        if r.name == "v":
            out.append(v[r.node])
            continue
        mech, state = r.name.split(".", 1)
        if mech in synapses:
            out.append(syn_states[synapses.index(mech)][state][r.local])
        else:
            out.append(states[channels.index(mech)][state][r.local])
    return jnp.stack(out) if out else jnp.zeros(0, v.dtype)


@partial(jax.jit, static_argnames=("model",))
def initialize(model: Model, core):
    """The simulation state at t = 0 and the recordings there ([n_recordings])."""
    v, states, conc, syn = initial_state(model, core)
    return (v, states, conc, syn, jnp.zeros((), v.dtype)), _record(model, v, states, syn)


@partial(jax.jit, static_argnames=("model", "method", "backend", "checkpoint"))
def advance(model: Model, core, state, drive, dt, *, method: str = "backward_euler",
            backend: str = "auto", checkpoint: int | None = None):
    """Advance ``state`` by as many steps of dt (ms) as ``drive`` has rows.

    Args:
        model: static structure.
        core: params pytree in simulator units (``Cell.core_params``).
        state: from ``initialize`` or a previous ``advance``.
        drive: per-step inputs: "waveform" [n_steps, W] (nA at t + dt/2) and
            "spikes", a tuple of [n_steps, n_syn] counts per synapse placement.
        checkpoint: memory control for reverse mode. None: keep the state of
            every step (each step's internals are recomputed in the backward
            pass). An int k: keep the state every k steps only, and recompute the
            k steps in between during the backward pass, so a gradient stores
            about n_steps / k + k states instead of n_steps (k ~ sqrt(n_steps)
            is the sweet spot); values are identical.

    Returns:
        (state, traces [n_steps, n_recordings]) at t + dt, ..., t + n_steps dt.
    """
    k = METHODS[method]
    mat = _matrix(model, core, dt, k)
    step = jax.checkpoint(partial(_step, model, core, mat, dt, k, backend), prevent_cse=False)
    n = jax.tree_util.tree_leaves(drive)[0].shape[0]
    if checkpoint is None or checkpoint >= n:
        return lax.scan(step, state, drive)
    if checkpoint < 1:
        raise ValueError(f"checkpoint must be a positive number of steps, got {checkpoint}")
    n_chunks, rest = divmod(n, checkpoint)
    head = jax.tree_util.tree_map(
        lambda a: a[: n_chunks * checkpoint].reshape(n_chunks, checkpoint, *a.shape[1:]), drive)

    @jax.checkpoint
    def chunk(carry, piece):
        return lax.scan(step, carry, piece)

    state, rec = lax.scan(chunk, state, head)
    rec = rec.reshape(n_chunks * checkpoint, *rec.shape[2:])
    if rest:
        tail = jax.tree_util.tree_map(lambda a: a[n_chunks * checkpoint:], drive)
        state, rec_tail = lax.scan(step, state, tail)
        rec = jnp.concatenate([rec, rec_tail], axis=0)
    return state, rec


def run(model: Model, core, drive, dt, *, method: str = "backward_euler", backend: str = "auto",
        checkpoint: int | None = None):
    """Recordings [n_steps + 1, n_recordings] at t = 0, dt, ..., n_steps dt (differentiable)."""
    state, rec0 = initialize(model, core)
    _, rec = advance(model, core, state, drive, dt, method=method, backend=backend,
                     checkpoint=checkpoint)
    return jnp.concatenate([rec0[None], rec], axis=0)


class Result:
    """Recorded traces of a simulation.

    Attributes:
        t: [n_t] times in ms (0, dt, ..., t_stop).
        traces: [n_recordings, n_t] in the recorded quantity's units (v in mV).
        labels: (name, Location) for each recording, in the order they were added.
    """

    def __init__(self, t, traces, labels):
        self.t, self.traces, self.labels = t, traces, list(labels)

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, key):
        """res[i], or res[name, location] as recorded (e.g. res["v", cell.soma(0.5)])."""
        if isinstance(key, (int, np.integer)):
            return self.traces[key]
        try:
            return self.traces[self.labels.index(tuple(key))]
        except ValueError:
            raise KeyError(f"{key!r} was not recorded; recorded: {self.labels}") from None


def simulate(cell, t_stop: float, dt: float = 0.025, *, params=None, v_init: float = -65.0,
             celsius: float = 6.3, method: str = "backward_euler", backend: str = "auto",
             checkpoint: int | None = None, progress: bool = False) -> Result:
    """Simulate a cell from t = 0 to t_stop (ms) with fixed step dt, as NEURON's run().

    Args:
        cell: a ``dendrax.Cell`` with its mechanisms, stimuli and recordings.
        params: a params pytree like ``cell.params`` (default: the cell's own);
            pass a traced one to differentiate.
        v_init: initial membrane potential, mV (gates start at their steady state).
        celsius: temperature, degC (NEURON's default 6.3).
        method: "backward_euler" (NEURON's default) or "crank_nicolson" (secondorder=2).
        backend: Hines solve backend, "auto", "native" or "jax".
        checkpoint: memory control for gradients: store the state every
            ``checkpoint`` steps and recompute in between (see ``advance``).
        progress: show a progress bar (runs in chunks; for long runs from the CLI).

    Returns:
        Result with t [n_t] and traces [n_recordings, n_t].
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {sorted(METHODS)}")
    if not (dt > 0 and np.isfinite(dt)) or not (t_stop > 0 and np.isfinite(t_stop)):
        raise ValueError(f"need dt > 0 and t_stop > 0, got dt={dt}, t_stop={t_stop}")
    if not cell.recordings:
        raise ValueError("nothing is recorded: call cell.record(...) before simulate")
    n_steps = int(round(t_stop / dt))
    params = cell.params if params is None else params
    _check_params(params)
    core = cell.core_params(params, v_init=v_init, celsius=celsius)
    model, drive, step = cell.model(), cell.drive(n_steps, dt), jnp.asarray(dt)
    if not progress:
        traces = run(model, core, drive, step, method=method, backend=backend, checkpoint=checkpoint)
    else:
        traces = _run_with_progress(model, core, drive, step, method, backend)
    _warn_nonfinite(traces, dt, cell.recordings)
    return Result(np.arange(n_steps + 1) * dt, traces.T, cell.recordings)


def _warn_nonfinite(traces, dt, labels):
    """A run that blew up (e.g. a huge current into a thin dendrite) is reported, not silent."""
    if isinstance(traces, jax.core.Tracer):
        return
    finite = np.isfinite(np.asarray(traces))
    if not finite.all():
        step, rec = np.argwhere(~finite)[0]
        warnings.warn(f"dendrax: the simulation became non-finite at t = {step * dt:g} ms "
                      f"(first in recording {labels[rec]}); check stimuli and parameters "
                      "(or reduce dt)", RuntimeWarning, stacklevel=3)


def _run_with_progress(model, core, drive, dt, method, backend, chunks=20):
    """The same run in equal chunks (one compiled scan) with a tqdm progress bar."""
    from tqdm import tqdm

    n = drive["waveform"].shape[0]
    size = -(-n // chunks)
    state, rec0 = initialize(model, core)
    out = [rec0[None]]
    with tqdm(total=n, unit="step", desc="dendrax") as bar:
        for start in range(0, n, size):
            piece = jax.tree_util.tree_map(lambda a: a[start:start + size], drive)
            state, rec = advance(model, core, state, piece, dt, method=method, backend=backend)
            out.append(rec)
            bar.update(rec.shape[0])
    return jnp.concatenate(out, axis=0)


def _check_params(params):
    for path, leaf in jax.tree_util.tree_leaves_with_path(params):
        if isinstance(leaf, jax.core.Tracer):
            continue
        if not np.all(np.isfinite(np.asarray(leaf))):
            raise ValueError(f"parameter {jax.tree_util.keystr(path)} has non-finite values")
