"""The simulation state (``State``, the pytree the time loop carries) and how a run
starts, as NEURON's ``finitialize``: v = v_init, every mechanism at its steady state,
and what can be recorded at t = 0.

Units: as ``dendrax.step``'s (mV, mM, nA).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax.numpy as jnp

from .currents import (assigned_values, environment, iclamp_currents, local_environment,
                       membrane_currents, solved_values, solved_wanted, synapse_environment,
                       synaptic_currents, take, vclamp_currents)
from .extracellular.fields import observe as observe_fields
from .mechanisms.base import IonPool
from .model import Model
from .net_receive import receive
from .point_step import plastic_multi_slots


class State(NamedTuple):
    """The simulation state carried from step to step (a pytree).

    Attributes:
        v: [N] membrane potential, mV, per solver node.
        channels: per channel placement, its states {name: [n]} at the placement's nodes
            (``Model.channels``; one inserted everywhere is at every node, or, in models
            of ``dendrax.lowering.SEGMENTS_ONLY_JUNCTIONS`` junction nodes or more, at
            the segment nodes only).
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
                conc = {**conc, ion: put_into(conc[ion], placement.nodes, s[f"{ion}i"])}
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


def observe_initial(model: Model, core, state: State, waveform0, dt=None, trains=None) -> dict:
    """What can be recorded at t = 0 (``dendrax.step.step`` gives it at every later step), as NEURON
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
            "plastic": state.plastic, "ion_values": ion_values(model, env, state.conc),
            "extracellular": observe_fields(core.get("extracellular", ()), i_membrane)}


def _sized(states, size: int, dtype):
    """A population's initial states, a scalar (a model without parameters, e.g.
    parrot_neuron, does not know its size) broadcast to [size] in the run's dtype."""
    return {k: jnp.broadcast_to(jnp.asarray(v, dtype), (size,)) if jnp.ndim(v) == 0 else v
            for k, v in states.items()}


def ion_values(model: Model, env, conc) -> dict:
    """What NEURON records of each ion after a step: "e<ion>" as this step's currents saw
    it (NEURON computes it with them), "<ion>i" after the pools' update, "<ion>o"."""
    out = {}
    for ion in model.ions:
        out[f"e{ion}"], out[f"{ion}o"] = env[f"e{ion}"], env[f"{ion}o"]
        out[f"{ion}i"] = conc.get(ion, env[f"{ion}i"])
    return out


def put_into(total, nodes, x):
    """``total`` [N] with ``x`` at ``nodes`` (``x`` itself where nodes is None: everywhere)."""
    return x if nodes is None else total.at[nodes].set(x)
