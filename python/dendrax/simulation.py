"""The time loop: one ``lax.scan`` of NEURON's fixed-step scheme under jit.

Each step from t to t + dt, as NEURON's ``fadvance`` with ``cvode`` off:

0. spike sources whose v rose above threshold since the last check fire (NEURON's
   threshold check at the start of a step; the spike time is t);
1. spikes due by t + dt/2 reach their synapses (NET_RECEIVE): spike trains given
   up front, and spikes of the network's sources after each connection's delay
   (from a ring buffer of the last ``ring_size`` steps of spikes per source);
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
from dataclasses import replace
from functools import lru_cache, partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from .lowering import check_values, core_params, drive, lower
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


def _synapses(model: Model, core, v, syn_states, v_pre, graded_states):
    """Synaptic current (nA) and its conductance (uS) per node: event-driven and graded."""
    n = model.n_nodes
    i_tot = jnp.zeros(n, v.dtype)
    g_tot = jnp.zeros(n, v.dtype)
    for placement, p, s in zip(model.synapses, core["synapses"], syn_states):
        vl = v[placement.nodes]
        cur, dcur = jax.jvp(lambda u: placement.mech.current(u, s, p), (vl,), (jnp.ones_like(vl),))
        i_tot = i_tot.at[placement.nodes].add(cur)
        g_tot = g_tot.at[placement.nodes].add(dcur)
    for placement, p, s, vp in zip(model.graded, core["graded"], graded_states, v_pre):
        vl = v[placement.nodes]
        cur, dcur = jax.jvp(lambda u: placement.mech.current(u, vp, s, p), (vl,),
                            (jnp.ones_like(vl),))
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


class State(NamedTuple):
    """The simulation state carried from step to step (a pytree).

    Attributes:
        v: [N] membrane potential, mV, per solver node.
        channels: per channel placement, its states {name: [n]}.
        conc: inside concentration [N] (mM) of each ion a pool changes.
        synapses: per event-synapse placement, its states {name: [n]}.
        graded: per graded-synapse placement, its states {name: [n]}.
        t: time, ms.
        step: the number of steps taken.
        ring: uint32 [ring_size, ceil(S / 32)]: which sources fired in each of the last
            ring_size steps (slot step % ring_size; one bit per source), for delivery
            after each connection's delay. Bits, not floats: a gradient keeps the carry
            of every step, and spikes carry no derivative.
        above: [S] whether each source's voltage was above threshold at the last check.
        history: [history_size, P] presynaptic voltages of graded synapses, for delays.
    """

    v: Any
    channels: tuple
    conc: dict
    synapses: tuple
    graded: tuple
    t: Any
    step: Any
    ring: Any
    above: Any
    history: Any


def initial_state(model: Model, core) -> State:
    """The state at t = 0 (NEURON's finitialize): v = v_init, gates at steady state."""
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
    v_pre = v[model.graded_pre_nodes]
    graded = [placement.mech.steady_state(v_pre[placement.pre], p, {"v": v[placement.nodes]})
              for placement, p in zip(model.graded, core["graded"])]
    return State(v=v, channels=tuple(states), conc=conc, synapses=tuple(syn), graded=tuple(graded),
                 t=jnp.zeros((), dtype), step=jnp.zeros((), jnp.int32),
                 ring=jnp.zeros((model.ring_size, -(-model.n_sources // 32)), jnp.uint32),
                 above=jnp.zeros(model.n_sources, bool),
                 history=jnp.broadcast_to(v_pre, (model.history_size, v_pre.shape[0])))


def _matrix(model: Model, core, dt, k):
    """The loop-invariant parts of the voltage step: off-diagonal, axial diagonal, C/dt."""
    parent = jnp.asarray(model.parent)
    has = parent >= 0
    g_ax = jnp.where(has, core["g_axial"], 0.0)
    diag_ax = g_ax.at[jnp.maximum(parent, 0)].add(g_ax)
    cap_dt = k * core["cm"] * core["area"] * CAP_TO_NF / dt
    return {"parent": parent, "off": -g_ax, "cap_dt": cap_dt, "diag": cap_dt + diag_ax}


def _delay_steps(delay, dt):
    """Whole steps between a spike's detection and its delivery: NEURON delivers an event
    due at t_e in the step from t_n when t_e <= t_n + dt/2."""
    return jnp.maximum(jnp.ceil(delay / dt - 0.5 - 1e-9), 0).astype(jnp.int32)


def _fit_buffers(model: Model, core, dt):
    """Per placement, the delay of each connection in steps, and whether any is longer than
    the spike ring / voltage history holds (possible only with traced delays)."""
    event = tuple(_delay_steps(p["delay"][inp.conn_local], dt) if inp.conn_local.size else None
                  for inp, p in zip(model.inputs, core["synapses"]))
    graded = tuple(jnp.maximum(jnp.round(p["delay"] / dt), 0).astype(jnp.int32)
                   for p in core["graded"])
    over = jnp.zeros((), bool)
    for d in event:
        if d is not None:
            over |= jnp.any(d >= model.ring_size)
    for d in graded:
        over |= jnp.any(d >= model.history_size)
    return event, graded, over


def _warn_too_long(over):
    if bool(np.any(np.asarray(over))):
        warnings.warn("dendrax: a delay in params is longer than the network was built for; the "
                      "run's outputs are NaN. Build the network with the longest delay you will "
                      "use (connect(..., delay=...)) or pass concrete params", RuntimeWarning)


def pack_bits(flags):
    """bool [S] -> uint32 [ceil(S / 32)], bit i % 32 of word i // 32 set where flags[i]."""
    n_words = -(-flags.shape[0] // 32)
    padded = jnp.pad(flags.astype(jnp.uint32), (0, n_words * 32 - flags.shape[0]))
    shifts = jnp.arange(32, dtype=jnp.uint32)
    return jnp.sum(padded.reshape(n_words, 32) << shifts, axis=1, dtype=jnp.uint32)


def _step(model: Model, core, mat, dt, k, backend, carry: State, xs):
    v, states, conc, syn_states, graded_states = (carry.v, carry.channels, carry.conc,
                                                  carry.synapses, carry.graded)
    n = carry.step
    parent = mat["parent"]
    # 0. spike detection at t (NEURON checks thresholds at the start of each step): a
    #    source fires when its v is above threshold and was not at the last check
    ring, above, fired = carry.ring, carry.above, jnp.zeros(model.n_sources, bool)
    if model.n_sources:
        over = v[model.source_nodes] > model.source_threshold
        fired = over & ~above
        # this part's words of the ring row (all of it, unless split over devices)
        ring = lax.dynamic_update_slice(ring, pack_bits(fired)[None],
                                        (n % model.ring_size, jnp.asarray(mat["ring_offset"], n.dtype)))
        above = over
    history = carry.history
    if model.graded_pre_nodes.size:
        history = history.at[n % model.history_size].set(v[model.graded_pre_nodes])
    # 1. events due by t + dt/2 reach their synapses (weight 0 where none arrives)
    new_syn = []
    for placement, inp, p, s, trains, delay in zip(model.synapses, model.inputs, core["synapses"],
                                                   syn_states, xs["trains"], mat["delay_steps"]):
        count = jnp.zeros(placement.nodes.shape[0], v.dtype)
        if inp.train_local.size:
            count = count.at[inp.train_local].set(trains)
        if inp.conn_local.size:
            words = ring[(n - delay) % model.ring_size, inp.conn_source // 32]
            bits = ((words >> (inp.conn_source % 32).astype(jnp.uint32)) & jnp.uint32(1)).astype(v.dtype)
            # every synapse fed by a connection, in order (no spike trains): no scatter
            count = bits if inp.conn_local.size == count.shape[0] else count.at[inp.conn_local].set(bits)
        new_syn.append(placement.mech.on_spike(s, p, count * p["weight"]))
    syn_states = tuple(new_syn)
    v_pre = [history[(n - d) % model.history_size, g.pre]
             for g, d in zip(model.graded, mat["graded_steps"])]
    # 2. currents at v(t), stimuli at t + dt/2
    t = carry.t
    t_mid = t + 0.5 * dt
    env = _env(model, core, conc)
    i_mem, g_mem, i_ion = _membrane(model, core, v, states, env)
    if model.synapses or model.graded:
        i_syn, g_syn = _synapses(model, core, v, syn_states, v_pre, graded_states)
        i_mem, g_mem = i_mem + i_syn, g_mem + g_syn
    if model.iclamp_nodes.size:
        ic = core["iclamp"]
        on = (t_mid >= ic["delay"]) & (t_mid < ic["delay"] + ic["dur"])
        i_mem = i_mem.at[model.iclamp_nodes].add(-jnp.where(on, ic["amp"], 0.0))
    if model.waveform_nodes.size:
        i_mem = i_mem.at[model.waveform_nodes].add(-xs["waveform"])
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
    graded_states = tuple(
        placement.mech.advance(vp, s, p, {"v": v_new[placement.nodes]}, dt)
        for placement, p, s, vp in zip(model.graded, core["graded"], graded_states, v_pre))
    carry = State(v=v_new, channels=tuple(new_states), conc=conc, synapses=syn_states,
                  graded=graded_states, t=t + dt, step=n + 1, ring=ring, above=above,
                  history=history)
    record = mat["record"]  # a part of a split network records its own sites
    return carry, (_record(model, carry) if record is None else record(carry),
                   fired[model.spike_records])


def _put_into(total, nodes, x):
    return x if nodes is None else total.at[nodes].set(x)


@lru_cache(maxsize=64)
def _record_plan(model: Model):
    """Recordings grouped by the array they read (one gather each), and the permutation
    back to the order they were added: ((source, state, indices), ...), order."""
    channels = [p.mech.name for p in model.channels]
    synapses = [p.mech.name for p in model.synapses]
    graded = [p.mech.name for p in model.graded]
    groups: dict[tuple, list] = {}
    for i, r in enumerate(model.recordings):
        if r.name == "v":
            key, index = ("v", 0, ""), r.node
        else:
            mech, name = r.name.split(".", 1)
            kind = "synapses" if mech in synapses else "graded" if mech in graded else "channels"
            table = {"synapses": synapses, "graded": graded, "channels": channels}[kind]
            key, index = (kind, table.index(mech), name), r.local
        groups.setdefault(key, []).append((i, index))
    plan = tuple((key, np.asarray([k for _, k in items], np.int32)) for key, items in groups.items())
    order = np.argsort([i for items in groups.values() for i, _ in items]).astype(np.int32)
    return plan, order


def _record(model: Model, state: State):
    """The recorded quantities [n_recordings], one gather per array they come from."""
    if not model.recordings:
        return jnp.zeros(0, state.v.dtype)
    plan, order = _record_plan(model)
    pieces = []
    for (kind, j, name), index in plan:
        source = state.v if kind == "v" else getattr(state, kind)[j][name]
        pieces.append(source[index])
    out = pieces[0] if len(pieces) == 1 else jnp.concatenate(pieces)
    return out if np.array_equal(order, np.arange(order.size)) else out[order]


@partial(jax.jit, static_argnames=("model",))
def initialize(model: Model, core):
    """The simulation state at t = 0 and the recordings there ([n_recordings])."""
    state = initial_state(model, core)
    return state, _record(model, state)


def schedule(model: Model, core, drive, dt):
    """The per-step inputs of the scan: waveform currents [n_steps, W] and, per event
    placement, the spikes of its train-fed synapses arriving in each step [n_steps, r]
    (each train shifted by its synapse's delay; delivered as NEURON delivers them)."""
    t_deliver = jnp.asarray(drive["t_deliver"])
    n_steps = t_deliver.shape[0]
    trains = []
    for inp, p, times in zip(model.inputs, core["synapses"], drive["trains"]):
        r = inp.train_local.size
        if not r:
            trains.append(jnp.zeros((n_steps, 0), t_deliver.dtype))
            continue
        arrival = jnp.asarray(times) + p["delay"][inp.train_local][:, None]
        step = jnp.searchsorted(t_deliver, arrival, side="left")
        col = jnp.broadcast_to(jnp.arange(r)[:, None], step.shape)
        trains.append(jnp.zeros((n_steps, r), t_deliver.dtype).at[step, col].add(1.0, mode="drop"))
    return {"waveform": jnp.asarray(drive["waveform"]), "trains": tuple(trains)}


@partial(jax.jit, static_argnames=("model", "method", "backend", "checkpoint"))
def advance(model: Model, core, state, xs, dt, *, method: str = "backward_euler",
            backend: str = "auto", checkpoint: int | None = None):
    """Advance ``state`` by as many steps of dt (ms) as ``xs`` has rows.

    Args:
        model: static structure (``dendrax.lower``).
        core: params pytree in simulator units (``dendrax.lowering.core_params``).
        state: from ``initialize`` or a previous ``advance``.
        xs: per-step inputs from ``schedule``: "waveform" [n_steps, W] (nA at t + dt/2)
            and "trains", a tuple of [n_steps, r] spike counts per event placement.
        checkpoint: memory control for reverse mode. None: keep the state of
            every step (each step's internals are recomputed in the backward
            pass). An int k: keep the state every k steps only, and recompute the
            k steps in between during the backward pass, so a gradient stores
            about n_steps / k + k states instead of n_steps (k ~ sqrt(n_steps)
            is the sweet spot); values are identical.

    Returns:
        (state, (traces [n_steps, n_recordings] at t + dt, ..., t + n_steps dt,
        spikes [n_steps, Q]: whether each recorded source fired at the start of each step)).
    """
    step, too_long = step_function(model, core, dt, method=method, backend=backend)
    state, out = _scan(step, checkpoint, state, xs)
    if model.n_sources or model.graded:
        # a traced delay longer than the buffers hold: NaN outputs and a warning, never a
        # silently wrong run
        jax.debug.callback(_warn_too_long, too_long)
        out = jax.tree_util.tree_map(
            lambda a: jnp.where(too_long, jnp.nan, a) if a.dtype.kind == "f" else a, out)
    return state, out


def step_function(model: Model, core, dt, *, method: str = "backward_euler",
                  backend: str = "auto", ring_offset=0, record=None):
    """The time step as a scan body, ``(state, xs) -> (state, (recordings, spikes))``
    (rematerialised in reverse mode), and whether a traced delay overflows the buffers.

    ``ring_offset`` (words) and ``record`` (state -> recordings) serve a part of a network
    split over devices (``dendrax.distributed``): where its sources sit in the spike
    ring, and what it records.
    """
    k = METHODS[method]
    mat = _matrix(model, core, dt, k)
    mat["delay_steps"], mat["graded_steps"], too_long = _fit_buffers(model, core, dt)
    mat["ring_offset"], mat["record"] = ring_offset, record
    return jax.checkpoint(partial(_step, model, core, mat, dt, k, backend), prevent_cse=False), too_long


def _scan(step, checkpoint, state, xs):
    n = jax.tree_util.tree_leaves(xs)[0].shape[0]
    if checkpoint is None or checkpoint >= n:
        return lax.scan(step, state, xs)
    if checkpoint < 1:
        raise ValueError(f"checkpoint must be a positive number of steps, got {checkpoint}")
    n_chunks, rest = divmod(n, checkpoint)
    head = jax.tree_util.tree_map(
        lambda a: a[: n_chunks * checkpoint].reshape(n_chunks, checkpoint, *a.shape[1:]), xs)

    @jax.checkpoint
    def chunk(carry, piece):
        return lax.scan(step, carry, piece)

    state, out = lax.scan(chunk, state, head)
    out = jax.tree_util.tree_map(lambda a: a.reshape(n_chunks * checkpoint, *a.shape[2:]), out)
    if rest:
        tail = jax.tree_util.tree_map(lambda a: a[n_chunks * checkpoint:], xs)
        state, out_tail = lax.scan(step, state, tail)
        out = jax.tree_util.tree_map(lambda a, b: jnp.concatenate([a, b], axis=0), out, out_tail)
    return state, out


def run(model: Model, core, drive, dt, *, method: str = "backward_euler", backend: str = "auto",
        checkpoint: int | None = None):
    """Recordings [n_steps + 1, n_recordings] at t = 0, dt, ..., n_steps dt and the spike
    raster [n_steps, Q] of the recorded sources (differentiable in ``core``)."""
    state, rec0 = initialize(model, core)
    xs = schedule(model, core, drive, dt)
    _, (rec, spikes) = advance(model, core, state, xs, dt, method=method, backend=backend,
                               checkpoint=checkpoint)
    return jnp.concatenate([rec0[None], rec], axis=0), spikes


@jax.tree_util.register_pytree_node_class
class Result:
    """What a simulation recorded (a pytree: ``jax.jit`` can return it).

    Attributes:
        t: [n_t] times in ms (0, dt, ..., t_stop).
        traces: [n_recordings, n_t] in the recorded quantity's units (v in mV).
        labels: (name, Location) for each recording, in the order they were added
            (in a network, each Location carries its cell index).
        raster: [n_t - 1, Q] bool: whether recorded spike source q fired at t[n].
        spike_cells: [Q] the cell of each recorded spike source.
    """

    def __init__(self, t, traces, labels, raster=None, spike_cells=()):
        self.t, self.traces, self.labels = t, traces, list(labels)
        self.raster = jnp.zeros((max(len(t) - 1, 0), 0), bool) if raster is None else raster
        self.spike_cells = tuple(int(c) for c in spike_cells)

    def tree_flatten(self):
        return (self.t, self.traces, self.raster), (tuple(self.labels), self.spike_cells)

    @classmethod
    def tree_unflatten(cls, aux, children):
        obj = cls.__new__(cls)
        obj.t, obj.traces, obj.raster = children
        obj.labels, obj.spike_cells = list(aux[0]), aux[1]
        return obj

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, key):
        """res[i], or res[name, location] as recorded (e.g. res["v", cell.soma(0.5)])."""
        if isinstance(key, (int, np.integer)):
            return self.traces[key]
        key = tuple(key)
        if key in self.labels:
            return self.traces[self.labels.index(key)]
        if len(key) == 2 and hasattr(key[1], "_replace") and key[1].cell is None:
            hits = [i for i, (n, loc) in enumerate(self.labels)
                    if n == key[0] and loc._replace(cell=None) == key[1]]
            if len(hits) == 1:
                return self.traces[hits[0]]
        raise KeyError(f"{key!r} was not recorded; recorded: {self.labels}")

    def rates(self, t_start: float = 0.0, t_stop: float | None = None) -> np.ndarray:
        """Mean firing rate (Hz) of each recorded source between t_start and t_stop (ms;
        default the end of the run): spikes in [t_start, t_stop) / duration."""
        t_stop = float(np.asarray(self.t)[-1]) if t_stop is None else t_stop
        if not t_stop > t_start:
            raise ValueError(f"need t_stop > t_start, got {t_start}, {t_stop}")
        return np.array([np.sum((s >= t_start) & (s < t_stop)) for s in self.spikes],
                        float) * 1e3 / (t_stop - t_start)

    def isis(self) -> list:
        """Inter-spike intervals (ms) of each recorded source."""
        return [np.diff(s) for s in self.spikes]

    @property
    def spikes(self) -> list:
        """Spike times (ms) of each recorded source, in the order recorded: a list of
        numpy arrays (NEURON's NetCon.record: the time of the step at whose start v was
        first found above threshold)."""
        raster = np.asarray(self.raster)
        t = np.asarray(self.t)[:raster.shape[0]]
        return [t[raster[:, q]] for q in range(raster.shape[1])]


class PrecisionWarning(UserWarning):
    """dendrax is computing in float32 because JAX's 64-bit mode is off."""


_warned_float32 = False


def _warn_if_float32():
    global _warned_float32
    if jax.config.jax_enable_x64 or _warned_float32:
        return
    _warned_float32 = True
    warnings.warn("dendrax is simulating in float32 because jax_enable_x64 is off (about 1e-2 mV "
                  "from NEURON); for float64 call jax.config.update(\"jax_enable_x64\", True) "
                  "before building cells", PrecisionWarning, stacklevel=3)


def simulate(target, t_stop: float, dt: float = 0.025, *, params=None, v_init: float = -65.0,
             celsius: float = 6.3, method: str = "backward_euler", backend: str = "auto",
             checkpoint: int | None = None, progress: bool = False) -> Result:
    """Simulate a cell or a network from t = 0 to t_stop (ms) with fixed step dt, as NEURON's run().

    Args:
        target: a ``dendrax.Cell`` or ``dendrax.Network`` (anything ``Simulatable``) with
            its mechanisms, stimuli, connections and recordings.
        params: a params pytree like ``dendrax.lower(target).params`` (default: the
            target's own); pass a traced one to differentiate.
        v_init: initial membrane potential, mV (gates start at their steady state).
        celsius: temperature, degC (NEURON's default 6.3).
        method: "backward_euler" (NEURON's default) or "crank_nicolson" (secondorder=2).
        backend: Hines solve backend, "auto", "native" or "jax".
        checkpoint: memory control for gradients: store the state every
            ``checkpoint`` steps and recompute in between (see ``advance``).
        progress: show a progress bar (runs in chunks; for long runs from the CLI).

    Returns:
        Result with t [n_t], traces [n_recordings, n_t] and the spikes of recorded sources.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {sorted(METHODS)}")
    check_run(t_stop, dt, v_init, celsius)
    _warn_if_float32()
    model, base, layout = lower(target)
    if not model.recordings and not model.spike_records.size:
        raise ValueError("nothing is recorded: call .record(...) or .record_spikes() before simulate")
    n_steps = int(round(t_stop / dt))
    params = base if params is None else params
    _check_params(params)
    check_values(model, params)
    model = sized(model, layout, params, dt)
    core = core_params(layout, params, v_init=v_init, celsius=celsius)
    drv, step = drive(layout, n_steps, dt), jnp.asarray(dt)
    if not progress:
        traces, raster = run(model, core, drv, step, method=method, backend=backend,
                             checkpoint=checkpoint)
    else:
        traces, raster = _run_with_progress(model, core, drv, step, method, backend)
    _warn_nonfinite(traces, dt, layout.labels)
    return Result(jnp.asarray(np.arange(n_steps + 1) * dt), traces.T, layout.labels, raster,
                  layout.spike_cells)


def check_run(t_stop, dt, v_init, celsius) -> None:
    """ValueErrors for run settings no simulation can have (before anything runs)."""
    if not (np.isfinite(dt) and dt > 0) or not (np.isfinite(t_stop) and t_stop > 0):
        raise ValueError(f"need dt > 0 and t_stop > 0, got dt={dt}, t_stop={t_stop}")
    if t_stop < 0.5 * dt:
        raise ValueError(f"t_stop = {t_stop} ms is shorter than half a step (dt = {dt} ms): no "
                         "step would run; use t_stop >= dt")
    if isinstance(v_init, jax.core.Tracer) or isinstance(celsius, jax.core.Tracer):
        return
    if not np.all(np.isfinite(np.asarray(v_init, float))):
        raise ValueError(f"v_init must be a finite potential (mV), got {v_init}")
    if not np.all(np.asarray(celsius, float) > -273.15):
        raise ValueError(f"celsius must be above absolute zero (> -273.15 degC), got {celsius}")


def sized(model: Model, layout, params, dt) -> Model:
    """``model`` with its spike ring and voltage history sized for the longest delays at dt
    (the delays in ``params`` when they are concrete, else those built in)."""
    event, graded = layout.max_delay, layout.max_graded_delay
    for name, group in layout.synapses.items():
        delay = params["synapses"][name]["delay"]
        if isinstance(delay, jax.core.Tracer) or not delay.size:
            continue
        d = float(np.max(np.asarray(delay)))
        if group.graded:
            graded = max(graded, d)
        else:
            event = max(event, d)
    ring = int(np.ceil(event / dt - 0.5 - 1e-9)) + 1 if model.n_sources else 1
    history = int(np.round(graded / dt)) + 1 if model.graded else 1
    return replace(model, ring_size=max(ring, 1), history_size=max(history, 1))


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

    xs = schedule(model, core, drive, dt)
    n = xs["waveform"].shape[0]
    size = -(-n // chunks)
    state, rec0 = initialize(model, core)
    recs, rasters = [rec0[None]], []
    with tqdm(total=n, unit="step", desc="dendrax") as bar:
        for start in range(0, n, size):
            piece = jax.tree_util.tree_map(lambda a: a[start:start + size], xs)
            state, (rec, raster) = advance(model, core, state, piece, dt, method=method,
                                           backend=backend)
            recs.append(rec)
            rasters.append(raster)
            bar.update(rec.shape[0])
    return jnp.concatenate(recs, axis=0), jnp.concatenate(rasters, axis=0)


def _check_params(params):
    for path, leaf in jax.tree_util.tree_leaves_with_path(params):
        if isinstance(leaf, jax.core.Tracer):
            continue
        if not np.all(np.isfinite(np.asarray(leaf))):
            raise ValueError(f"parameter {jax.tree_util.keystr(path)} has non-finite values")
