"""One step of NEURON's fixed-step scheme, as a scan body (``step_function``).

Each step from t to t + dt, as NEURON's ``fadvance`` with ``cvode`` off:

0. spike sources whose v rose above threshold since the last check fire (NEURON's
   threshold check at the start of a step; the spike time is t);
1. spikes due by t + dt/2 reach their synapses (NET_RECEIVE): spike trains given
   up front, and spikes of the network's sources after each connection's delay
   (from a ring buffer of the last ``ring_size`` steps of spikes per source);
2. graded synapses' states advance first (Jaxley's order, from v_pre at t - delay);
   membrane currents and their conductances (d i / d v, by autodiff) at v(t),
   stimuli at t + dt/2 (``dendrax.currents``);
3. the implicit voltage step: one Hines solve, in float64 for u = v + dv (which saves
   the axial currents), in float32 for dv (``axial_currents``). Backward Euler
   (NEURON's default) applies v += dv; Crank-Nicolson (``secondorder=2``) solves with
   2 C / dt and applies v += 2 dv;
4. ion pools, then gates, advance to t + dt at the new v (exponential Euler,
   NEURON's cnexp), so gates are staggered half a step from v; under Crank-Nicolson
   implicit state updates take nocmodl's midpoint form (``env["secondorder"]`` 2).

Units: area um2, conductance uS, current nA, capacitance from cm (uF/cm2).
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from .currents import (assigned_values, environment, iclamp_currents, local_environment,
                       membrane_currents, solved_values, solved_wanted, summed_at_nodes,
                       synapse_environment, synaptic_currents, take, vclamp_currents,
                       vclamp_level)
from .delays import THRESHOLD_EVENT_OFFSET, fit_buffers
from .extracellular.fields import observe as observe_fields
from .mechanisms.base import IonPool
from .mechanisms.introspect import takes_event_time
from .model import Model
from .net_receive import receive
from .point.plasticity import EACH_SPIKE_UP_TO
from .point_step import delivered_weight, extra_spikes, plastic_multi_slots, update_points
from .recording import accumulate, recorded
from .solver import hines_solve
from .state import State, ion_values, put_into

METHODS = {"backward_euler": 1.0, "crank_nicolson": 2.0}
CAP_TO_NF = 1e-5  # (uF/cm2) * um2 -> nF


def matrix(model: Model, core, dt, k):
    """The loop-invariant parts of the voltage step: off-diagonal, axial diagonal, C/dt."""
    # concrete where it can be (the solver then schedules the tree once); a part of a
    # network split over devices gets its parent array traced
    traced = isinstance(model.parent, jax.core.Tracer)
    parent = model.parent if traced else np.asarray(model.parent, np.int32)
    has = parent >= 0
    to = (jnp if traced else np).maximum(parent, 0)  # each node's parent (roots: 0)
    g_ax = jnp.where(has, core["g_axial"], 0.0)
    diag_ax = g_ax.at[to].add(g_ax)
    cap_dt = k * core["cm"] * core["area"] * CAP_TO_NF / dt
    return {"parent": parent, "to": to, "off": -g_ax, "cap_dt": cap_dt,
            "diag": cap_dt + diag_ax}


def axial_currents(mat, v):
    """The axial current out of each node (nA; v [N] in mV), each coupling's g (v_i - v_j)
    with the difference taken first.

    In float32 the voltage step solves for dv with these on the right-hand side, as
    NEURON's does: solved for u = v + dv, with (C/dt + g) v on the right, float32 kept too
    few digits of dv beside v (tests/test_precision.py's HH ball-and-stick, 20 ms: 0.025 mV
    from float64 and its gradient w.r.t. L off by 1e-2 of its largest entry; solved for
    dv: 3.6e-4 mV and 7e-6). float64 keeps enough and solves for u, which saves these (a
    gather and a scatter a step: single cell ~5%, a batch of 100 ~20% slower on 2 cores)."""
    to = mat["to"]
    out = -mat["off"] * (v - v[to])  # from each node to its parent (off is 0 at roots)
    return out.at[to].add(-out)


# Synapses and electrodes add their currents to the voltage step at their nodes, after
# the membrane's pass over all nodes, in models of at least POINTS_APART_NODES nodes where
# they sit at no more than a fraction POINTS_APART of them. Added to the membrane's
# currents first, they split the loop XLA fuses to compute the membrane's currents and
# the right-hand side, which costs in proportion to the nodes: the SWC network of
# docs/benchmarks.md (3470 nodes, 101 with synapses or IClamps) runs 2.02 -> 1.75 s apart.
# Apart takes ~5 more operations a step, each dispatched to XLA's threads (~0.5 us), which
# cost more on smaller models (an HH cell of 112 nodes with 5 synapses and an IClamp:
# 10.7 -> 24 ms; 985 nodes: 61 -> 75 ms; one IClamp alone: +4%) and where points are
# many (the ball-and-stick network, 188 of 700 nodes: 0.64 -> 0.71 s).
POINTS_APART_NODES, POINTS_APART = 2000, 0.1


def point_nodes(model: Model) -> np.ndarray | None:
    """The nodes where synapses (event and graded) or electrodes (IClamp, waveform,
    SEClamp) add current, sorted, each once; None where they are traced (a part of a
    network split over devices)."""
    arrays = [p.nodes for p in (*model.synapses, *model.graded)] + [
        model.iclamp_nodes, model.waveform_nodes, model.vclamp_nodes]
    if any(isinstance(a, jax.core.Tracer) for a in arrays):
        return None
    return np.unique(np.concatenate([np.asarray(a, np.int64) for a in arrays]))


def _electrodes(model: Model, core, xs, v, t, iclamp, i, g, at):
    """Currents ``i`` (nA) and conductances ``g`` (uS) with the electrodes' added: IClamps
    (``iclamp`` [K] nA, into the cell), waveform clamps, SEClamps at time t (ms); ``at``
    maps nodes to indices of i and g."""
    if model.iclamp_nodes.size:
        i = i.at[at(model.iclamp_nodes)].add(-iclamp)
    if model.waveform_nodes.size:
        i = i.at[at(model.waveform_nodes)].add(-xs["waveform"])
    if model.vclamp_nodes.size:
        vc = core["vclamp"]
        nodes = model.vclamp_nodes
        level, on = vclamp_level(vc, t)
        i = i.at[at(nodes)].add(-jnp.where(on, (level - v[nodes]) / vc["rs"], 0.0))
        g = g.at[at(nodes)].add(jnp.where(on, 1.0 / vc["rs"], 0.0))
    return i, g


def pack_bits(flags):
    """bool [S] -> uint32 [ceil(S / 32)], bit i % 32 of word i // 32 set where flags[i]."""
    n_words = -(-flags.shape[0] // 32)
    padded = jnp.pad(flags.astype(jnp.uint32), (0, n_words * 32 - flags.shape[0]))
    shifts = jnp.arange(32, dtype=jnp.uint32)
    return jnp.sum(padded.reshape(n_words, 32) << shifts, axis=1, dtype=jnp.uint32)


def step(model: Model, core, mat, dt, k, backend, carry: State, xs):
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
    i_membrane, g_membrane = i_mem, g_mem  # what NEURON's i_membrane_ sums: with synapses
    if model.synapses or model.graded:
        i_syn, g_syn, event_cur, graded_cur, i_syn_ion, g_syn_ion = synaptic_currents(
            model, core, v, syn_states, v_pre, graded_states, env)
        i_membrane, g_membrane = i_mem + i_syn, g_mem + g_syn
        for ion in i_syn_ion:  # the ions synapses carry (NMDA's calcium)
            i_ion = {**i_ion, ion: i_ion[ion] + i_syn_ion[ion]}
            if half_step_ions:
                g_ion = [{**g_ion[0], ion: g_ion[0][ion] + g_syn_ion[ion]}]
    # 3. implicit voltage step, in float64 solved for u = v + dv:
    #    (k C/dt + G_axial + g) u = (k C/dt + g) v - i
    #    in float32 for dv (axial_currents): (k C/dt + G_axial + g) dv = -i - G_axial v
    for_dv = v.dtype != jnp.float64
    i_axial = axial_currents(mat, v) if for_dv else None

    def rhs_at(i, g, nodes=slice(None)):
        """The right-hand side at ``nodes`` for membrane (and point) currents i and
        conductances g there."""
        if for_dv:
            return -i - i_axial[nodes]
        return (mat["cap_dt"][nodes] + g) * v[nodes] - i

    iclamp = iclamp_currents(core, t_mid)
    points = point_nodes(model)
    if (points is None or model.n_nodes < POINTS_APART_NODES
            or points.size > POINTS_APART * model.n_nodes):
        # a part of a network split over devices (its nodes are traced), a small model, or
        # points at many nodes: synapses' and electrodes' currents go into the membrane's
        i_tot, g_tot = _electrodes(model, core, xs, v, t_mid, iclamp, i_membrane, g_membrane,
                                   lambda nodes: nodes)
        rhs = rhs_at(i_tot, g_tot)
        diag = mat["diag"] + g_tot
    else:
        # The membrane's terms in one pass over the nodes; then, at the few nodes where
        # synapses and electrodes add current, those entries again with them (the same
        # sums in the same order; XLA may contract a product and a sum differently:
        # ~1e-12 mV next to an SEClamp). See POINTS_APART.
        rhs = rhs_at(i_mem, g_mem)
        diag = mat["diag"] + g_mem
        if points.size:
            def at(nodes):
                return np.searchsorted(points, nodes)

            i_pt, g_pt = i_mem[points], g_mem[points]
            if model.synapses or model.graded:  # as synaptic_currents adds them
                i_s, g_s = summed_at_nodes(model, event_cur, graded_cur, points.size, v.dtype, at)
                i_pt, g_pt = i_pt + i_s, g_pt + g_s
            i_pt, g_pt = _electrodes(model, core, xs, v, t_mid, iclamp, i_pt, g_pt, at)
            rhs = rhs.at[points].set(rhs_at(i_pt, g_pt, points))
            diag = diag.at[points].set(mat["diag"][points] + g_pt)
    x = hines_solve(parent, mat["off"], diag, mat["off"], rhs, backend=backend)
    if for_dv:  # change: v_new - v, as the step computed it
        dv, change = x, k * x
        v_new = v + change
    else:  # x = u = v + dv
        dv, v_new = x - v, (x if k == 1.0 else k * x - (k - 1.0) * v)
        change = v_new - v
    if half_step_ions:
        i_ion = {ion: i_ion[ion] + g_ion[0][ion] * dv for ion in model.ions}
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
                conc = {**conc, ion: put_into(conc[ion], placement.nodes, s[f"{ion}i"])}
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
    i_cap = change / dt * cap  # nA
    obs = {"v": v_new, "channels": carry.channels, "synapses": syn_states, "graded": graded_states,
           "channel_currents": per_mech, "ions": i_ion,
           **assigned_values(model, core, v, states, env_start, syn_seen),
           "channel_solved": tuple(solved),
           "i_cap": core["cm"] * change / dt * 1e-3,  # uF/cm2 mV/ms -> mA/cm2
           "i_membrane": i_cap + i_membrane + g_membrane * dv,
           "synapse_currents": event_cur, "graded_currents": graded_cur, "iclamp": iclamp,
           "waveform": xs["waveform"], "vclamp": vclamp_currents(model, core, t_mid, v_new),
           "points": points, "plastic": plastic,
           "ion_values": ion_values(model, env_start, conc)}
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


# What reverse mode keeps of each step: the voltage solve's solution and pivots (named in
# dendrax.solver); the rest is recomputed. Storing the pivots costs less than factoring
# again (HH, 880 compartments: gradient 3.3x -> 2.9x the forward); storing the gates' rates
# as well costs more than it saves (the stores are memory-bound).
_KEEP = jax.checkpoint_policies.save_only_these_names("dendrax.solve")


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
    mat = matrix(model, core, dt, k)
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
    return jax.checkpoint(partial(step, model, core, mat, dt, k, backend), prevent_cse=False,
                          policy=_KEEP), too_long

