"""The time loop: one ``lax.scan`` of NEURON's fixed-step scheme under jit.

Each step from t to t + dt, as NEURON's ``fadvance`` with ``cvode`` off:

0. spike sources whose v rose above threshold since the last check fire (NEURON's
   threshold check at the start of a step; the spike time is t);
1. spikes due by t + dt/2 reach their synapses (NET_RECEIVE): spike trains given
   up front, and spikes of the network's sources after each connection's delay
   (from a ring buffer of the last ``ring_size`` steps of spikes per source);
2. graded synapses' states advance first (Jaxley's order, from v_pre at t - delay);
   membrane currents and their conductances (d i / d v, by autodiff) at v(t),
   stimuli at t + dt/2 (``dendrax.currents``);
3. the implicit voltage step: one Hines solve for dv (written for u = v + dv,
   which saves the axial product). Backward Euler (NEURON's default) applies
   v += dv; Crank-Nicolson (``secondorder=2``) solves with 2 C / dt and
   applies v += 2 dv;
4. ion pools, then gates, advance to t + dt at the new v (exponential Euler,
   NEURON's cnexp), so gates are staggered half a step from v; under Crank-Nicolson
   implicit state updates take nocmodl's midpoint form (``env["secondorder"]`` 2).

Units: area um2, conductance uS, current nA, capacitance from cm (uF/cm2).
"""

from __future__ import annotations

import warnings
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from .compiled import functions as compiled_functions
from .currents import (assigned_values, environment, iclamp_currents, local_environment,
                       membrane_currents, solved_values, solved_wanted, synapse_environment,
                       synaptic_currents, take, vclamp_currents, vclamp_level)
from .delays import THRESHOLD_EVENT_OFFSET, fit_buffers, warn_too_long
from .extracellular.fields import observe as observe_fields
from .mechanisms.base import IonPool
from .mechanisms.introspect import takes_event_time
from .net_receive import lost_self_events, receive, warn_lost_self_events
from .model import Model
from .point.plasticity import EACH_SPIKE_UP_TO
from .point_step import delivered_weight, extra_spikes, plastic_multi_slots, update_points
from .recording import accumulate, recorded, statistics
from .scan import chunk_for, every, scan_steps, unroll_for
from .solver import hines_solve

METHODS = {"backward_euler": 1.0, "crank_nicolson": 2.0}
CAP_TO_NF = 1e-5  # (uF/cm2) * um2 -> nF


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
        stats: {"max", "min", "sum"}: [R] running statistics of the recordings kept as
            statistics (``Recording.reduce``), from t = 0 to t.
        points: per point-neuron population, its states {name: [n]}.
        point_fired: [n_points] whether each point neuron spiked in the last step (they
            enter the spike ring at the start of this one).
        point_spikes: [n_points] the same as floats carrying surrogate gradients, and
        spike_history: [ring_size, n_points] those of the last ring_size steps (only where a
            population has a surrogate; else None).
        plastic: per plastic connection kind, its states {name: [C]} (e.g. the weights).
        inbuf: [inbuf_size, 2, n_points] the input plastic connections sent to each point
            neuron for the coming steps (excitatory, inhibitory), or None.
        point_extra: int32 [M] the spikes beyond the first that each point neuron able to
            fire more than once per step (``Model.multi_points``) fired in the last step, and
        extra_ring: int32 [ring_size, M] those of the last ring_size steps (slot step %
            ring_size, as the ring's bits); both None where no model can.
        plastic_merged: int32, the steps in which such a neuron, the source or target of a
            plastic connection, fired more than ``EACH_SPIKE_UP_TO`` times (the plastic
            rules take that many one by one: the run warns), or None.
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
    stats: dict
    points: tuple = ()
    point_fired: Any = None
    point_spikes: Any = None
    spike_history: Any = None
    plastic: tuple = ()
    inbuf: Any = None
    point_extra: Any = None
    extra_ring: Any = None
    plastic_merged: Any = None


def initial_state(model: Model, core, dt=None) -> State:
    """The state at t = 0 (NEURON's finitialize): v = v_init, gates at steady state."""
    n = model.n_nodes
    dtype = core["area"].dtype
    v = jnp.full(n, core["v_init"], dtype)
    conc = {ion: core["ions"][f"{ion}i0"] for ion in model.dynamic_ions}
    # the pools' INITIAL first, from <ion>i0; the channels' then see the concentrations
    # they set (NEURON runs INITIAL blocks in mechanism order, ions first)
    states = [None] * len(model.channels)
    pools = [isinstance(placement.mech, IonPool) for placement in model.channels]
    for first in (True, False):
        env = environment(model, core, conc, dt)
        for j, (placement, p) in enumerate(zip(model.channels, core["channels"])):
            if pools[j] != first:
                continue
            local = local_environment(env, placement.mech, placement.nodes)
            vn = take(v, placement.nodes)
            s = _each(placement.mech.steady_state(vn, p, local), vn)
            if first:
                ion = placement.mech.ion
                conc = {**conc, ion: _put_into(conc[ion], placement.nodes, s[f"{ion}i"])}
            states[j] = s
    syn_env = {**synapse_environment(core, env), **({} if dt is None else {"dt": dt})}
    syn = [_each(placement.mech.steady_state(v[placement.nodes], p, local_environment(
               syn_env, placement.mech, placement.nodes)), v[placement.nodes])
           for placement, p in zip(model.synapses, core["synapses"])]
    v_pre = v[model.graded_pre_nodes]
    graded = [_each(placement.mech.steady_state(v_pre[placement.pre], p,
                                                {"v": v[placement.nodes]}), v_pre[placement.pre])
              for placement, p in zip(model.graded, core["graded"])]
    state = State(v=v, channels=tuple(states), conc=conc, synapses=tuple(syn), graded=tuple(graded),
                  t=jnp.zeros((), dtype), step=jnp.zeros((), jnp.int32),
                  ring=jnp.zeros((model.ring_size, -(-model.n_sources // 32)), jnp.uint32),
                  above=jnp.zeros(model.source_nodes.shape[0], bool),
                  history=jnp.broadcast_to(v_pre, (model.history_size, v_pre.shape[0])), stats={},
                  points=tuple(_sized(pl.model.initial(p, dt), pl.size, dtype) for pl, p in
                               zip(model.points, core.get("points", ()))),
                  point_fired=jnp.zeros(model.n_points, bool),
                  plastic=tuple(pl.mech.initial(p) for pl, p in
                                zip(model.plastic, core.get("plastic", ()))),
                  inbuf=jnp.zeros((model.inbuf_size, 2, model.n_points), dtype)
                  if model.plastic or model.events else None)
    if model.multi_points.size:
        m = model.multi_points.size
        state = state._replace(point_extra=jnp.zeros(m, jnp.int32),
                               extra_ring=jnp.zeros((model.ring_size, m), jnp.int32),
                               plastic_merged=jnp.zeros((), jnp.int32)
                               if plastic_multi_slots(model).size else None)
    if model.surrogate:
        state = state._replace(point_spikes=jnp.zeros(model.n_points, dtype),
                               spike_history=jnp.zeros((model.ring_size, model.n_points), dtype))
    return state


def _each(states: dict, like) -> dict:
    """A mechanism's initial states, each one value per node or synapse (a number, e.g. a
    steady state that does not depend on v, is that value everywhere) in ``like``'s
    shape and dtype."""
    return {k: jnp.broadcast_to(jnp.asarray(x, like.dtype), like.shape) for k, x in states.items()}


def _events_at_zero(model: Model, core, synapses, trains):
    """The synapses' states with the spike-train events due at t = 0 delivered, as NEURON's
    finitialize delivers them before its t = 0 sample (``trains``: the drive's, per event
    placement [r, k]). For that sample only: the run delivers them at the start of its
    first step, which gives the same states from then on."""
    out = []
    for placement, inp, p, s, times in zip(model.synapses, model.inputs, core["synapses"],
                                           synapses, trains):
        if not inp.train_local.size:
            out.append(s)
            continue
        due = jnp.sum(jnp.asarray(times) + p["delay"][inp.train_local][:, None] <= 0.0, axis=1)
        count = jnp.zeros(placement.nodes.shape[0], p["weight"].dtype).at[
            inp.train_local].set(due.astype(p["weight"].dtype))
        zero = jnp.zeros_like(count)
        at_zero = jnp.zeros((inp.max_arrivals, inp.train_local.size), count.dtype)
        out.append(receive(placement.mech, p, s, count, zero, at_zero, inp.train_local,
                           inp.max_arrivals, None, jnp.zeros((), count.dtype)))
    return tuple(out)


def _observe_initial(model: Model, core, state: State, waveform0, dt=None, trains=None) -> dict:
    """What can be recorded at t = 0 (``_step`` gives it at every later step), as NEURON
    after finitialize: currents at v_init with the initial states, no capacitive current,
    electrode currents at t = 0 (``waveform0`` [W]: the waveform clamps'), synapses after
    the spike-train events due at t = 0 (``trains``, the drive's)."""
    if trains is not None and any(inp.train_local.size for inp in model.inputs):
        state = state._replace(synapses=_events_at_zero(model, core, state.synapses, trains))
    v = state.v
    env = environment(model, core, state.conc, dt)
    _, _, i_ion, per_mech = membrane_currents(model, core, v, state.channels, env)
    v_pre = [state.history[0][g.pre] for g in model.graded]
    _, _, event, graded, i_syn_ion, _ = synaptic_currents(model, core, v, state.synapses, v_pre,
                                                          state.graded, env)
    i_ion = {ion: i_ion[ion] + i_syn_ion[ion] if ion in i_syn_ion else i_ion[ion]
             for ion in model.ions}
    t0 = jnp.zeros((), v.dtype)
    iclamp, vclamp = iclamp_currents(core, t0), vclamp_currents(model, core, t0, v)
    # NEURON's i_membrane_ at t = 0: the electrodes' currents (v is uniform, so no axial
    # current flows and the membrane takes what the electrodes inject)
    i_membrane = (jnp.zeros_like(v).at[model.iclamp_nodes].add(iclamp)
                  .at[model.waveform_nodes].add(waveform0).at[model.vclamp_nodes].add(vclamp))
    # what the state updates compute (minf, ...), at t = 0 (dt None): as initialization
    # left it, the ion currents at v_init included
    env_now = {**env, **{f"i{ion}": i_ion[ion] for ion in model.ions}}
    wanted = solved_wanted(model)
    solved = tuple(
        solved_values(placement, take(v, placement.nodes), s, p,
                      local_environment(env_now, placement.mech, placement.nodes), None)
        if j in wanted else {}
        for j, (placement, p, s) in enumerate(zip(model.channels, core["channels"],
                                                  state.channels)))
    return {"v": v, "channels": state.channels, "synapses": state.synapses, "graded": state.graded,
            "channel_currents": per_mech, "ions": i_ion, "i_cap": jnp.zeros_like(v),
            **assigned_values(model, core, v, state.channels, env, state.synapses),
            "channel_solved": solved,
            "i_membrane": i_membrane, "synapse_currents": event, "graded_currents": graded,
            "iclamp": iclamp, "waveform": waveform0, "vclamp": vclamp, "points": state.points,
            "plastic": state.plastic, "ion_values": _ion_values(model, env, state.conc),
            "extracellular": observe_fields(core.get("extracellular", ()), i_membrane)}


def _matrix(model: Model, core, dt, k):
    """The loop-invariant parts of the voltage step: off-diagonal, axial diagonal, C/dt."""
    # concrete where it can be (the solver then schedules the tree once); a part of a
    # network split over devices gets its parent array traced
    traced = isinstance(model.parent, jax.core.Tracer)
    parent = model.parent if traced else np.asarray(model.parent, np.int32)
    has = parent >= 0
    g_ax = jnp.where(has, core["g_axial"], 0.0)
    diag_ax = g_ax.at[(jnp if traced else np).maximum(parent, 0)].add(g_ax)
    cap_dt = k * core["cm"] * core["area"] * CAP_TO_NF / dt
    return {"parent": parent, "off": -g_ax, "cap_dt": cap_dt, "diag": cap_dt + diag_ax}


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
    ring, above = carry.ring, carry.above
    fired = jnp.zeros(model.source_nodes.shape[0], bool)
    if model.source_nodes.size:
        over = v[model.source_nodes] > model.source_threshold
        fired = over & ~above
        above = over
    point_fired = carry.point_fired
    if model.spike_generators.size:  # spike_generator spikes at t (NEST's stamp t / dt)
        point_fired = point_fired.at[model.spike_generators].set(xs["generators"] > 0)
    point_fired_in = point_fired  # the point sources of this ring row
    if model.n_sources:
        # this part's words of the ring row (all of it, unless split over devices)
        row = pack_bits(jnp.concatenate([fired, point_fired]) if model.n_points else fired)
        ring = lax.dynamic_update_slice(ring, row[None],
                                        (n % model.ring_size, jnp.asarray(mat["ring_offset"], n.dtype)))
    extra_ring = carry.extra_ring  # spikes beyond the first, beside the ring's bits
    if extra_ring is not None:
        extra_ring = extra_ring.at[n % model.ring_size].set(carry.point_extra)
    history = carry.history
    if model.graded_pre_nodes.size:
        history = history.at[n % model.history_size].set(v[model.graded_pre_nodes])
    # t + dt/2: the events' delivery window and the stimuli's time (t advances by dt/2
    # twice a step, as NEURON's: stimulus edges on half steps switch in NEURON's step; the
    # barrier keeps XLA from folding the two halves of a constant dt into one; in float32
    # the sum would drift, so there t + dt/2 = (n + 1/2) dt)
    t = carry.t
    if t.dtype == jnp.float64:  # NEURON's clock, to its last bit
        t_mid = lax.optimization_barrier(t + 0.5 * dt)
    else:  # float32 would drift (1e-3 ms per 1000 ms): from the step count instead
        t_mid = (n.astype(t.dtype) + 0.5) * jnp.asarray(dt, t.dtype)
    # 1. events due by t + dt/2 reach their synapses (NET_RECEIVE: dendrax.net_receive)
    new_syn = []
    train_times = xs.get("train_times", (None,) * len(model.synapses))
    for placement, inp, p, s, trains, delay, when in zip(
            model.synapses, model.inputs, core["synapses"], syn_states, xs["trains"],
            mat["delay_steps"], train_times):
        count = jnp.zeros(placement.nodes.shape[0], v.dtype)
        if inp.train_local.size:
            count = count.at[inp.train_local].set(trains)
        if inp.conn_local.size:
            rows = (n - delay) % model.ring_size
            words = ring[rows, inp.conn_source // 32]
            bits = ((words >> (inp.conn_source % 32).astype(jnp.uint32)) & jnp.uint32(1)).astype(v.dtype)
            if extra_ring is not None:  # a point neuron's several spikes in one step
                bits = bits + extra_spikes(model, extra_ring, rows, inp.conn_source, v.dtype)
            # every synapse fed by a connection, in order (no spike trains): no scatter
            count = bits if inp.conn_local.size == count.shape[0] else count.at[inp.conn_local].set(bits)
        conn_fed = None  # a placement whose trains bring several spikes a step: its
        if inp.max_arrivals > 1 and inp.conn_local.size:  # connections' synapses
            conn_fed = jnp.zeros(count.shape[0], bool).at[inp.conn_local].set(True)
        t_event = None
        if takes_event_time(placement.mech):  # NEURON's t in NET_RECEIVE: spike time (+ 1e-10
            #                                   ms from a threshold, as NEURON's) + delay
            t_event = jnp.zeros(count.shape, carry.t.dtype)
            if inp.conn_local.size:
                offset = THRESHOLD_EVENT_OFFSET
                if model.n_points:  # a point neuron's spike crossed no threshold
                    offset = jnp.where(inp.conn_source < model.source_nodes.shape[0], offset, 0.0)
                sent = carry.t - delay.astype(carry.t.dtype) * dt + offset
                t_event = t_event.at[inp.conn_local].set(sent + p["delay"][inp.conn_local])
        s = receive(placement.mech, p, s, count, t_event, when, inp.train_local,
                    inp.max_arrivals, conn_fed, t_mid)
        new_syn.append(s)
    syn_states = tuple(new_syn)
    syn_seen = syn_states  # what this step's synaptic currents see (for recording)
    v_pre = [history[(n - d) % model.history_size, g.pre]
             for g, d in zip(model.graded, mat["graded_steps"])]
    # 2. currents at v(t), stimuli at t + dt/2
    secondorder = 0 if k == 1.0 else 2  # NEURON's global, for implicit state updates
    env = environment(model, core, conc, dt, secondorder)
    env_start = env  # the reversal potentials of this step's currents
    # Crank-Nicolson (NEURON's secondorder=2) moves the ion currents to t + dt/2 after the
    # solve, i += di/dv (v(t + dt/2) - v(t)), before the pools read them and for recording
    half_step_ions = k != 1.0 and bool(model.ions)
    i_mem, g_mem, i_ion, per_mech, *g_ion = membrane_currents(
        model, core, v, states, env, ion_conductances=half_step_ions)
    # graded synapses (Jaxley's) take Jaxley's order: their states advance first, on v_pre
    # at t - delay, and this step's currents use the advanced states
    graded_states = tuple(
        placement.mech.advance(vp, s, p, {"v": v[placement.nodes], "secondorder": secondorder},
                               dt)
        for placement, p, s, vp in zip(model.graded, core["graded"], graded_states, v_pre))
    event_cur, graded_cur = (), ()
    if model.synapses or model.graded:
        i_syn, g_syn, event_cur, graded_cur, i_syn_ion, g_syn_ion = synaptic_currents(
            model, core, v, syn_states, v_pre, graded_states, env)
        i_mem, g_mem = i_mem + i_syn, g_mem + g_syn
        for ion in i_syn_ion:  # the ions synapses carry (NMDA's calcium)
            i_ion = {**i_ion, ion: i_ion[ion] + i_syn_ion[ion]}
            if half_step_ions:
                g_ion = [{**g_ion[0], ion: g_ion[0][ion] + g_syn_ion[ion]}]
    i_membrane, g_membrane = i_mem, g_mem  # membrane only, before the electrodes
    iclamp = iclamp_currents(core, t_mid)
    if model.iclamp_nodes.size:
        i_mem = i_mem.at[model.iclamp_nodes].add(-iclamp)
    if model.waveform_nodes.size:
        i_mem = i_mem.at[model.waveform_nodes].add(-xs["waveform"])
    if model.vclamp_nodes.size:
        vc = core["vclamp"]
        nodes = model.vclamp_nodes
        level, on = vclamp_level(vc, t_mid)
        i_mem = i_mem.at[nodes].add(-jnp.where(on, (level - v[nodes]) / vc["rs"], 0.0))
        g_mem = g_mem.at[nodes].add(jnp.where(on, 1.0 / vc["rs"], 0.0))
    # 3. implicit voltage step, solved for u = v + dv:
    #    (k C/dt + G_axial + g) u = (k C/dt + g) v - i
    rhs = (mat["cap_dt"] + g_mem) * v - i_mem
    u = hines_solve(parent, mat["off"], mat["diag"] + g_mem, mat["off"], rhs, backend=backend)
    v_new = u if k == 1.0 else k * u - (k - 1.0) * v
    if half_step_ions:
        i_ion = {ion: i_ion[ion] + g_ion[0][ion] * (u - v) for ion in model.ions}
    # 4. pools, then gates, at the new v
    new_states = list(states)
    # what a recorded placement's state update computes besides its states (NEURON's
    # RANGE variables its SOLVE sets, e.g. minf), at v(t + dt) from the states at t
    solved = [{} for _ in model.channels]
    wanted = solved_wanted(model)
    if model.dynamic_ions:
        env = {**env, **{f"i{ion}": i_ion[ion] for ion in model.ions}}
        for j, (placement, p, s) in enumerate(zip(model.channels, core["channels"], states)):
            if isinstance(placement.mech, IonPool):
                local = local_environment(env, placement.mech, placement.nodes)
                vl = take(v_new, placement.nodes)
                if j in wanted:
                    solved[j] = solved_values(placement, vl, s, p, local, dt)
                s = placement.mech.advance(vl, s, p, local, dt)
                new_states[j] = s
                ion = placement.mech.ion
                conc = {**conc, ion: _put_into(conc[ion], placement.nodes, s[f"{ion}i"])}
        env = environment(model, core, conc, dt, secondorder)
    for j, (placement, p, s) in enumerate(zip(model.channels, core["channels"], states)):
        if not isinstance(placement.mech, IonPool):
            local = local_environment(env, placement.mech, placement.nodes)
            vl = take(v_new, placement.nodes)
            if j in wanted:
                solved[j] = solved_values(placement, vl, s, p, local, dt)
            new_states[j] = placement.mech.advance(vl, s, p, local, dt)
    # event synapses' states, at the new v and (as channels') the pools' new concentrations
    syn_env = synapse_environment(core, env) if model.synapses else None
    syn_states = tuple(placement.mech.advance(v_new[placement.nodes], s, p,
                                              local_environment(syn_env, placement.mech,
                                                                placement.nodes), dt)
                       for placement, p, s in zip(model.synapses, core["synapses"], syn_states))
    points, point_fired = carry.points, carry.point_fired
    spike_history, point_spikes = carry.spike_history, carry.point_spikes
    if model.surrogate:  # the spikes entering the ring now, as floats with gradients
        spike_history = spike_history.at[n % model.ring_size].set(point_spikes)
    plastic, inbuf = carry.plastic, carry.inbuf
    point_extra, merged = carry.point_extra, carry.plastic_merged
    if model.points:
        row = jnp.concatenate([fired, carry.point_fired if not model.spike_generators.size
                               else point_fired_in])
        points, point_spikes, plastic, inbuf, point_extra = update_points(
            model, core, mat, dt, carry._replace(extra_ring=extra_ring), ring, n, spike_history,
            row)
        point_fired = point_spikes > 0.5 if model.surrogate else point_spikes
        if merged is not None:  # a plastic connection's neuron fired more times than the
            # rules take one by one
            merged = merged + jnp.any(point_extra[plastic_multi_slots(model)]
                                      >= EACH_SPIKE_UP_TO)
    carry = State(v=v_new, channels=tuple(new_states), conc=conc, synapses=syn_states,
                  graded=graded_states, t=t_mid + 0.5 * dt, step=n + 1, ring=ring, above=above,
                  history=history, stats=carry.stats, points=points, point_fired=point_fired,
                  point_spikes=point_spikes if model.surrogate else None,
                  spike_history=spike_history, plastic=plastic, inbuf=inbuf,
                  point_extra=point_extra, extra_ring=extra_ring, plastic_merged=merged)
    if model.n_points:  # recorded point spikes: those of this step's update (at t + dt)
        fired = jnp.concatenate([fired, point_fired])
    spikes = _recorded_spikes(model, fired, point_extra)
    record = mat["record"]  # a part of a split network records its own sites
    if record is not None:
        return carry, (record(carry), spikes)
    # what can be recorded after the step, as NEURON records it: currents computed in the
    # step from v(t); the capacitive and whole-membrane currents over the step (NEURON's
    # i_cap and i_membrane_); the clamp currents (SEClamp's at the new v)
    cap = core["cm"] * CAP_TO_NF * core["area"]  # nF
    i_cap = (v_new - v) / dt * cap  # nA
    obs = {"v": v_new, "channels": carry.channels, "synapses": syn_states, "graded": graded_states,
           "channel_currents": per_mech, "ions": i_ion,
           **assigned_values(model, core, v, states, env_start, syn_seen),
           "channel_solved": tuple(solved),
           "i_cap": core["cm"] * (v_new - v) / dt * 1e-3,  # uF/cm2 mV/ms -> mA/cm2
           "i_membrane": i_cap + i_membrane + g_membrane * (u - v),
           "synapse_currents": event_cur, "graded_currents": graded_cur, "iclamp": iclamp,
           "waveform": xs["waveform"], "vclamp": vclamp_currents(model, core, t_mid, v_new),
           "points": points, "plastic": plastic,
           "ion_values": _ion_values(model, env_start, conc)}
    obs["extracellular"] = observe_fields(core.get("extracellular", ()), obs["i_membrane"])
    carry = carry._replace(stats=accumulate(model, carry.stats, obs))
    return carry, (recorded(model, obs), spikes)


def _recorded_spikes(model: Model, fired, point_extra):
    """The recorded sources' spikes of a step: ``fired`` [n_sources] at the recorded sources
    (bool), or where a recorded source can fire more than once per step, how many times
    each fired (int32: the flag plus ``point_extra`` [M], its spikes beyond the first)."""
    out = fired[model.spike_records]
    if not model.records_counts:
        return out
    slot = model.multi_slot[model.spike_records]
    hit = np.flatnonzero(slot >= 0)
    return out.astype(jnp.int32).at[hit].add(point_extra[slot[hit]])


def _ion_values(model: Model, env, conc) -> dict:
    """What NEURON records of each ion after a step: "e<ion>" as this step's currents saw
    it (NEURON computes it with them), "<ion>i" after the pools' update, "<ion>o"."""
    out = {}
    for ion in model.ions:
        out[f"e{ion}"], out[f"{ion}o"] = env[f"e{ion}"], env[f"{ion}o"]
        out[f"{ion}i"] = conc.get(ion, env[f"{ion}i"])
    return out


def _put_into(total, nodes, x):
    return x if nodes is None else total.at[nodes].set(x)


class Compiled(NamedTuple):
    """A model's jitted ``initialize`` and ``advance`` (without the model argument)."""

    initialize: Any
    advance: Any


def _compile(model: Model) -> Compiled:
    return Compiled(jax.jit(partial(_initialize, model)),
                    jax.jit(partial(_advance, model),
                            static_argnames=("method", "backend", "checkpoint", "record_every")))


def compiled(model: Model) -> Compiled:
    """The model's compiled functions, kept while a model of its structure lives
    (``dendrax.compiled``)."""
    return compiled_functions(model, _compile)


def initialize(model: Model, core, waveform0=None, dt=None, trains=None):
    """The simulation state at t = 0 and the traces there, compiled per structure (as
    ``_initialize``)."""
    return compiled(model).initialize(core, waveform0, dt, trains)


def advance(model: Model, core, state, xs, dt, *, method: str = "backward_euler",
            backend: str = "auto", checkpoint: int | None = None, record_every: int = 1):
    """``state`` advanced by as many steps of dt as ``xs`` has rows, compiled per structure
    (as ``_advance``, which documents it)."""
    return compiled(model).advance(core, state, xs, dt, method=method, backend=backend,
                                   checkpoint=checkpoint, record_every=record_every)


def _initialize(model: Model, core, waveform0=None, dt=None, trains=None):
    """The simulation state at t = 0 and the traces there ([n_traces]); ``waveform0`` [W]:
    the waveform clamps' currents at t = 0 (nA; default 0); dt (ms) for point neurons;
    ``trains``: the drive's spike trains, whose events due at t = 0 the traces there show
    (as NEURON's; the state delivers them in the first step)."""
    state = initial_state(model, core, dt)
    if waveform0 is None:
        waveform0 = jnp.zeros(model.waveform_nodes.shape[0], state.v.dtype)
    obs = _observe_initial(model, core, state, waveform0, dt, trains)
    if any(r.reduce for r in model.recordings):
        first = recorded(model, obs, reduced=True)
        state = state._replace(stats={"max": first, "min": first, "sum": first})
    return state, recorded(model, obs)


def schedule(model: Model, core, drive, dt, start: int = 0, size: int | None = None):
    """The per-step inputs of the scan for steps start .. start + size (default all):
    waveform currents [size, W] and, per event placement, the spikes of its train-fed
    synapses arriving in each step [size, r] (each train shifted by its synapse's delay;
    delivered as NEURON delivers them)."""
    size = drive["waveform"].shape[0] - start if size is None else size  # a static shape
    dtype = jnp.result_type(float)
    trains, times = [], []
    for placement, inp, p, spikes in zip(model.synapses, model.inputs, core["synapses"],
                                        drive["trains"]):
        r = inp.train_local.size
        times.append(None)
        if not r:
            trains.append(jnp.zeros((size, 0), dtype))
            continue
        t_deliver = jnp.asarray(drive["t_deliver"])
        arrival = jnp.sort(jnp.asarray(spikes) + p["delay"][inp.train_local][:, None], axis=1)
        due = jnp.searchsorted(t_deliver, arrival, side="left") - start  # sorted in each row
        step = jnp.where(due >= 0, due, size)  # before this piece: dropped
        col = jnp.broadcast_to(jnp.arange(r)[:, None], step.shape)
        trains.append(jnp.zeros((size, r), dtype).at[step, col].add(1.0, mode="drop"))
        if takes_event_time(placement.mech):  # on_spike(..., t): the j-th spike's time of
            rank = jnp.arange(due.shape[1]) - jax.vmap(  # each step, [size, arrivals, r]
                lambda s: jnp.searchsorted(s, s, side="left"))(due)
            times[-1] = jnp.zeros((size, inp.max_arrivals, r), dtype).at[step, rank, col].set(
                arrival, mode="drop")
    out = {"waveform": jnp.asarray(drive["waveform"][start:start + size]), "trains": tuple(trains)}
    if any(t is not None for t in times):
        out["train_times"] = tuple(times)
    if model.spike_generators.size:
        out["generators"] = jnp.asarray(drive["generators"][start:start + size])
    return out


def _advance(model: Model, core, state, xs, dt, *, method: str = "backward_euler",
             backend: str = "auto", checkpoint: int | None = None, record_every: int = 1):
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
        record_every: keep the traces of every k-th step only (n_steps must be a
            multiple of k; with ``checkpoint``, so must checkpoint).

    Returns:
        (state, (traces [n_steps / k, n_traces] at t + k dt, ..., t + n_steps dt,
        spikes [n_steps, Q]: whether each recorded source fired at the start of each step;
        int32 counts where a recorded source can fire more than once per step)).
    """
    step, too_long = step_function(model, core, dt, method=method, backend=backend)
    k = record_every
    if k > 1:
        n = jax.tree_util.tree_leaves(xs)[0].shape[0]
        xs = jax.tree_util.tree_map(lambda a: a.reshape(n // k, k, *a.shape[1:]), xs)
        step = every(step, k, sum(r.reduce is None for r in model.recordings), state.v.dtype)
        checkpoint = None if checkpoint is None else checkpoint // k
    n_iter = jax.tree_util.tree_leaves(xs)[0].shape[0]
    span = n_iter if checkpoint is None else min(checkpoint, n_iter)  # what one scan runs
    merged_before = state.plastic_merged
    lost_before = lost_self_events(model, state.synapses)
    state, out = scan_steps(step, checkpoint, state, xs, unroll_for(model.parent.size + model.n_points),
                            chunk_for(span, loop_width(model, k, state.v.dtype)))
    if k > 1:
        out = (out[0], out[1].reshape(n, out[1].shape[-1]))
    if model.n_sources or model.graded:
        # a traced delay longer than the buffers hold: NaN outputs and a warning, never a
        # silently wrong run
        jax.debug.callback(warn_too_long, too_long)
        out = jax.tree_util.tree_map(
            lambda a: jnp.where(too_long, jnp.nan, a) if a.dtype.kind == "f" else a, out)
    if merged_before is not None:
        jax.debug.callback(warn_plastic_multiplicity, state.plastic_merged - merged_before)
    if lost_before is not None:
        jax.debug.callback(warn_lost_self_events,
                           lost_self_events(model, state.synapses) - lost_before)
    return state, out


def _sized(states, size: int, dtype):
    """A population's initial states, a scalar (a model without parameters, e.g.
    parrot_neuron, does not know its size) broadcast to [size] in the run's dtype."""
    return {k: jnp.broadcast_to(jnp.asarray(v, dtype), (size,)) if jnp.ndim(v) == 0 else v
            for k, v in states.items()}


def warn_plastic_multiplicity(steps):
    """Warn (``steps``: in how many steps of this run it happened) that a neuron firing more
    than ``EACH_SPIKE_UP_TO`` times in one step was the source or target of a plastic
    connection, whose rule took the spikes beyond those as the last."""
    if int(np.max(np.asarray(steps))) > 0:
        warnings.warn(
            f"dendrax: a neuron that fired more than {EACH_SPIKE_UP_TO} times within one step "
            "(aeif_cond_exp with t_ref = 0, or a parrot_neuron that many spikes reached) is "
            f"the source or target of plastic connections, in {int(np.max(steps))} step(s) "
            "of this run: the plastic rules (stdp_synapse, tsodyks2_synapse) took the first "
            f"{EACH_SPIKE_UP_TO} one by one, as NEST takes every spike, and each further "
            "spike as the last of those (sent with its weight), so the weights differ from "
            "NEST's. Give aeif_cond_exp a refractory time (t_ref > 0), or use a smaller dt",
            RuntimeWarning)


# What reverse mode keeps of each step: the voltage solve's solution and pivots (named in
# dendrax.solver); the rest is recomputed. Storing the pivots costs less than factoring
# again (HH, 880 compartments: gradient 3.3x -> 2.9x the forward); storing the gates' rates
# as well costs more than it saves (the stores are memory-bound).
_KEEP = jax.checkpoint_policies.save_only_these_names("dendrax.solve")


def loop_width(model: Model, record_every: int, dtype) -> int:
    """Bytes of the largest per-step array of the time loop (nodes and point neurons, the
    traces, in reverse mode each step's kept state; the spike flags of record_every
    steps), for ``scan.chunk_for``."""
    width = max(model.parent.size + model.n_points,
                sum(r.reduce is None for r in model.recordings), 1) * np.dtype(dtype).itemsize
    return max(width, model.spike_records.size * record_every * (4 if model.records_counts else 1))


def step_function(model: Model, core, dt, *, method: str = "backward_euler",
                  backend: str = "auto", ring_offset=0, record=None):
    """The time step as a scan body, ``(state, xs) -> (state, (recordings, spikes))``
    (rematerialised in reverse mode but for its voltage solve), and whether a traced delay
    overflows the buffers.

    ``ring_offset`` (words) and ``record`` (state -> recordings) serve a part of a network
    split over devices (``dendrax.distributed``): where its sources sit in the spike
    ring, and what it records.
    """
    k = METHODS[method]
    mat = _matrix(model, core, dt, k)
    mat["delay_steps"], mat["graded_steps"], mat["static_steps"], too_long = fit_buffers(
        model, core, dt)
    if model.events:  # sorted by source once per run, outside the time loop
        conn = core["static_csr"]["conn"]
        mat["events_weight"] = delivered_weight(model, core["static"]["weight"][conn],
                                                core["static_csr"]["target"])
        mat["events_delay"] = mat["static_steps"][conn] - 1
        if model.multi_points.size:  # each connection's source, for the extra spikes
            ptr = core["static_csr"]["ptr"]
            mat["events_source"] = jnp.searchsorted(
                ptr, jnp.arange(conn.shape[0]), side="right").astype(jnp.int32) - 1
        too_long |= jnp.any(mat["events_delay"] >= model.inbuf_size)
    mat["ring_offset"], mat["record"] = ring_offset, record
    return jax.checkpoint(partial(_step, model, core, mat, dt, k, backend), prevent_cse=False,
                          policy=_KEEP), too_long



class Output(NamedTuple):
    """What ``run`` returns (a pytree).

    Attributes:
        traces: [n_t, n_traces] at t = 0, k dt, 2 k dt, ..., n_steps dt (k = record_every);
            a run resumed at step s: at (s + k) dt, ..., n_steps dt.
        raster: [n_steps - s, Q] bool: whether recorded spike source q fired at step s + n
            (int32: how many times, where a recorded source can fire more than once per step).
        stats: [n_stats] the statistic ("max", "min", "mean") of each recording kept as one,
            over the whole run from t = 0.
        state: the ``State`` at the end, to resume from.
    """

    traces: Any
    raster: Any
    stats: Any
    state: Any


def run(model: Model, core, drive, dt, *, method: str = "backward_euler", backend: str = "auto",
        checkpoint: int | None = None, record_every: int = 1, state: State | None = None,
        start: int = 0) -> Output:
    """The whole run from t = 0, or from ``state`` at step ``start`` (a resumed run:
    NEURON's continuerun), to the end of ``drive`` (differentiable in ``core``): traces,
    spike raster, statistics and the final state (``Output``)."""
    n_steps = drive["waveform"].shape[0]
    fresh = state is None
    if fresh:
        state, rec0 = initialize(model, core, drive["waveform0"], dt, drive["trains"])
    xs = schedule(model, core, drive, dt, start, n_steps - start)
    state, (rec, spikes) = advance(model, core, state, xs, dt, method=method, backend=backend,
                                   checkpoint=checkpoint, record_every=record_every)
    if fresh:
        rec = jnp.concatenate([rec0[None], rec], axis=0)
    return Output(rec, spikes, statistics(model, state.stats, n_steps), state)
