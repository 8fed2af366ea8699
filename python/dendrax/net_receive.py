"""NET_RECEIVE for the events of one step: each synapse's spikes (from its spike train or
its connection) and its self-events (NEURON's ``net_send``), in time order, as NEURON's
fixed step delivers every event due by t + dt/2 at the start of the step.

A synapse's ``on_spike(states, params, weight)`` runs once per spike of a train (of any
weight, 0 included); a connection brings one spike a step, or from a point neuron that
fires several times in one step (NEST's multiplicity) one call of their summed weight.
``on_spike(states, params, weight, t)`` (a fourth parameter named t) also gets each
event's time (ms). A synapse with ``self_events`` slots (NMODL's ``net_send``) keeps its
pending self-events in states ``net_send_t<k>`` (ms; +inf: free) and ``net_send_flag<k>``;
its ``on_spike(states, params, weight, t, flag)`` gets flag 0 for a spike and the flag sent
for a self-event, whose weight is the synapse's own (NEURON's: the NetCon's that sent it).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jax import lax

from .mechanisms.introspect import takes_event_time


def self_event_slots(mech) -> int:
    """How many pending self-events (``net_send``) a synapse holds; 0: none."""
    return int(getattr(mech, "self_events", 0) or 0)


def lost_self_events(model, synapses):
    """The self-events lost so far (no free slot: ``net_send_lost``), summed over every
    synapse; None where no synapse sends any."""
    lost = [jnp.sum(s["net_send_lost"]) for placement, s in zip(model.synapses, synapses)
            if self_event_slots(placement.mech)]
    return sum(lost) if lost else None


def warn_lost_self_events(lost):
    """Warn (``lost``: how many in this run) that self-events found no free slot."""
    if float(np.max(np.asarray(lost))) > 0:
        import warnings

        warnings.warn(f"dendrax: {int(np.max(lost))} self-event(s) (NMODL net_send) found "
                      "their synapse's slots full (more pending at once than its "
                      "self_events) and were dropped, or were due in a step after more "
                      "events than one step delivers and came late, so the run differs from "
                      "NEURON's (a pulse a dropped event would end stays on): give the "
                      "synapse fewer overlapping events (a lower input rate, or a train "
                      "split over several synapses)", RuntimeWarning)


def receive(mech, p, s, count, t_event, when, train_local, max_arrivals: int, conn_fed, window):
    """The states ``s`` of one placement's synapses after this step's events.

    Args:
        mech: the placement's Synapse.
        p: its params (per synapse [n]: "weight", ...).
        s: its states ({name: [n]}).
        count: float [n], the spikes arriving this step.
        t_event: float [n] or None, the connections' events' times (ms; where timed).
        when: float [max_arrivals, r] or None, the train spikes' times, in order.
        train_local: int [r], the train-fed synapses.
        max_arrivals: static, the most train spikes one synapse gets in a step.
        conn_fed: bool [n] or None, where connections and trains share a placement whose
            trains bring several spikes a step: the connection-fed synapses.
        window: scalar, t + dt/2 (ms): self-events due by then are delivered now.
    """
    timed = takes_event_time(mech)

    def arrival(j):  # the j-th spike of the step: (weight, whether it arrives, its time)
        last = j == max_arrivals - 1
        if conn_fed is not None:
            w = p["weight"] * jnp.where(conn_fed, count if j == 0 else 0.0,
                                        count - j if last else 1.0)
            arrives = jnp.where(conn_fed, (count > 0) & (j == 0), count > j)
        else:
            w = p["weight"] * (count - j if last else 1.0)
            arrives = count > j
        t = t_event
        if timed and train_local.size:
            t = t_event.at[train_local].set(when[j])
        return w, arrives, t

    slots = self_event_slots(mech)
    if not slots:
        for j in range(max_arrivals):
            w, arrives, t = arrival(j)
            after = mech.on_spike(s, p, w, t) if timed else mech.on_spike(s, p, w)
            s = {name: jnp.where(arrives, x, s[name]) for name, x in after.items()}
        return s
    # self-events: each round delivers one event per synapse, the earliest of its next
    # spike and its earliest self-event due (a spike first at the same time); rounds for
    # every spike, every slot and one sent now by each spike, traced once (lax.fori_loop)
    spikes = [arrival(j) for j in range(max_arrivals)]
    weights = jnp.stack([w for w, _, _ in spikes])
    times = jnp.stack([jnp.where(a, t, jnp.inf) for _, a, t in spikes])

    def round_(_, carry):
        s, nxt = carry
        at = jnp.minimum(nxt, max_arrivals - 1)[None]
        t_spike = jnp.where(nxt < max_arrivals, jnp.take_along_axis(times, at, 0)[0], jnp.inf)
        w_spike = jnp.take_along_axis(weights, at, 0)[0]
        pending = jnp.stack([s[f"net_send_t{k}"] for k in range(slots)])
        k = jnp.argmin(pending, 0)
        t_self = jnp.min(pending, 0)
        flag = jnp.take_along_axis(jnp.stack([s[f"net_send_flag{k}"] for k in range(slots)]),
                                   k[None], 0)[0]
        own = (t_self <= window) & (t_self < t_spike)
        spike = jnp.isfinite(t_spike) & ~own
        freed = {**s, **{f"net_send_t{j}": jnp.where(own & (k == j), jnp.inf, s[f"net_send_t{j}"])
                         for j in range(slots)}}
        # (no event: a finite t all the same, for finite derivatives of what is not used)
        t = jnp.where(own, t_self, jnp.where(spike, t_spike, window))
        after = mech.on_spike(freed, p, jnp.where(own, p["weight"], w_spike), t,
                              jnp.where(own, flag, 0.0))
        s = {name: jnp.where(own | spike, x, s[name]).astype(s[name].dtype)
             for name, x in after.items()}
        return s, nxt + spike

    s, _ = lax.fori_loop(0, 2 * max_arrivals + 2 * slots, round_,
                         (s, jnp.zeros(count.shape, jnp.int32)))
    # what is still due now (a chain of self-events longer than the rounds) comes late:
    # counted with the dropped ones, for the run's warning
    late = sum(jnp.where(s[f"net_send_t{k}"] <= window, 1.0, 0.0) for k in range(slots))
    return {**s, "net_send_lost": s["net_send_lost"] + late}
