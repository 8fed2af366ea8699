"""The point neurons' part of the time step (called by ``dendrax.step``):
inputs from static connections (the spike ring, or event by event through
``dendrax.events``), generators (Poisson, dc, noise), plastic connections, then each
population's update (NEST's grid-based order).

A neuron fires at most once per step but for models with a ``spike_count`` (NEST's
aeif_cond_exp with t_ref = 0 fires as often as it reaches V_peak within a step, and NEST
sends one event per firing): the ring holds the first spike's bit, and the spikes beyond it
(``State.point_extra``, ``State.extra_ring``) are delivered as more spikes over the same
connections: the weight times the count, as NEST's events add up in the target's buffer.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from .events import deliver, take
from .model import Model
from .point.propagators import delay_steps


def update_points(model: Model, core, mat, dt, carry, ring, n, spike_history, row):
    """Point neurons' step from t to t + dt (NEST's grid-based update): the weights of the
    spikes read in this step, split by sign, and generator currents, then each
    population's update. Returns (states per population, fired [n_points]: bool, or with
    surrogates float 0/1 carrying gradients, plastic states, input buffer, int32 [M] the
    spikes beyond the first of the neurons that can fire more than once per step, or None).

    ``carry.extra_ring`` must already hold ``carry.point_extra`` in ring row n (the step
    writes both rows before this)."""
    P = model.n_points
    dtype = carry.v.dtype
    ex, inh, current = (jnp.zeros(P, dtype) for _ in range(3))
    st = model.static
    if st is not None:
        weight = core["static"]["weight"]
        steps = mat["static_steps"]  # NEST's delay in steps
        if st.ring_conn.size and not model.events:
            # a spike in ring row r is read by the target in step r + delay_steps - 1
            rows = (n - steps[st.ring_conn] + 1) % model.ring_size
            words = ring[rows, st.ring_source // 32]
            bits = ((words >> (st.ring_source % 32).astype(jnp.uint32)) & jnp.uint32(1)).astype(dtype)
            if carry.extra_ring is not None:
                bits = bits + extra_spikes(model, carry.extra_ring, rows, st.ring_source, dtype)
            if model.surrogate:  # point sources: the same 0/1, with the spikes' gradients
                k = st.ring_source - model.source_nodes.shape[0]
                h = spike_history[rows, jnp.maximum(k, 0)]
                bits = bits + jnp.where(k >= 0, h - lax.stop_gradient(h), 0.0)
            # split by the weight's sign, not the product's: where no spike arrived the
            # product is 0 but carries the surrogate's gradient
            w = delivered_weight(model, weight[st.ring_conn], st.ring_target)
            x = w * bits
            ex += jax.ops.segment_sum(jnp.where(w > 0, x, 0.0), st.ring_target, P)
            inh += jax.ops.segment_sum(jnp.where(w < 0, x, 0.0), st.ring_target, P)
        gen = core["generators"]
        if st.poisson_conn.size:
            # NEST's poisson_generator: in its step s (start < s dt <= stop), a Poisson number
            # of spikes per target, read by the target in step s + delay_steps
            s_gen = n - steps[st.poisson_conn]
            g = st.poisson_gen
            active = (jnp.round(gen["start"][g] / dt) < s_gen) & (s_gen <= jnp.round(gen["stop"][g] / dt))
            lam_gen = gen["rate"] * dt * 1e-3  # per generator: its targets share it
            lam = jnp.where(active, lam_gen[g], 0.0)
            top = None if lam.dtype == jnp.float64 else jnp.where(active, _cdf_top(lam_gen)[g], 1.0)
            k = poisson(jax.random.fold_in(core["key"], n), lam, top).astype(dtype)
            w = delivered_weight(model, weight[st.poisson_conn], st.poisson_target)
            x = w * k
            ex += jax.ops.segment_sum(jnp.where(w > 0, x, 0.0), st.poisson_target, P)
            inh += jax.ops.segment_sum(jnp.where(w < 0, x, 0.0), st.poisson_target, P)
        if st.dc_conn.size:
            # NEST's dc_generator (a current device: active when start < (s + 2) dt <= stop)
            # ... in a step s >= 0 that the run has (start = 0 would allow s = -1)
            s_gen = n - steps[st.dc_conn] + 2
            g = st.dc_gen
            active = (jnp.round(gen["start"][g] / dt) < s_gen) \
                & (s_gen <= jnp.round(gen["stop"][g] / dt)) & (s_gen >= 2)
            x = jnp.where(active, gen["amplitude"][g] * weight[st.dc_conn], 0.0)
            current += jax.ops.segment_sum(x, st.dc_target, P)
        if st.noise_conn.size:
            # NEST's noise_generator: mean + std N(0, 1), drawn anew every dt (from start),
            # independently per target; a current device's activity window
            s_gen = n - steps[st.noise_conn] + 2
            g = st.noise_gen
            start = jnp.round(gen["start"][g] / dt)
            active = (start < s_gen) & (s_gen <= jnp.round(gen["stop"][g] / dt)) & (s_gen >= 2)
            interval = jnp.floor((s_gen - start - 1) / jnp.round(gen["dt"][g] / dt)).astype(jnp.int32)
            keys = jax.vmap(lambda c, k: jax.random.fold_in(jax.random.fold_in(
                jax.random.fold_in(core["key"], 1 << 20), c), k))(
                    jnp.arange(st.noise_conn.size), interval)
            z = jax.vmap(lambda k: jax.random.normal(k, (), dtype))(keys)
            x = jnp.where(active, (gen["mean"][g] + gen["std"][g] * z) * weight[st.noise_conn], 0.0)
            current += jax.ops.segment_sum(x, st.noise_target, P)
    plastic, inbuf = carry.plastic, carry.inbuf
    if model.events:  # this row's spikes into the buffer, read delay_steps - 1 steps on
        csr = core["static_csr"]
        inbuf = deliver(inbuf, row, csr["ptr"], csr["target"], mat["events_delay"],
                        mat["events_weight"], n)
        if carry.point_extra is not None:
            inbuf = _deliver_extra(model, core, mat, inbuf, carry.point_extra, n)
    if model.plastic:
        plastic, inbuf = _plastic_step(model, core, dt, carry._replace(inbuf=inbuf), ring, n)
    if inbuf is not None:
        inbuf, due = take(inbuf, n)
        ex, inh = ex + due[0], inh + due[1]
    states, fired = [], jnp.zeros(P, dtype if model.surrogate else bool)
    extra = []
    for pl, p, s in zip(model.points, core["points"], carry.points):
        sl = slice(pl.start, pl.start + pl.size)
        new, spiked = pl.model.update(s, p, {"ex": ex[sl], "in": inh[sl], "current": current[sl]},
                                      dt)
        states.append(new)
        fired = fired.at[sl].set(spiked.astype(fired.dtype))
        if getattr(pl.model, "spike_count", None) is not None:
            extra.append(_beyond_first(new[pl.model.spike_count], spiked))
    extra = jnp.concatenate(extra) if extra else None
    return tuple(states), fired, plastic, inbuf, extra


def delivered_weight(model: Model, weight, target, spikes=1.0):
    """[C] the weights ``weight`` [C] of connections onto point neurons ``target`` [C] as
    delivered: onto spike counters (``Model.spike_counters``) the number of ``spikes`` (a
    bool or count, [C] or scalar; each counts once, as NEST's parrot_neuron ignores
    weights), else as given."""
    if not model.spike_counters.any():
        return weight
    return jnp.where(jnp.asarray(model.spike_counters)[target],
                     jnp.ones_like(weight) * spikes, weight)


def _beyond_first(count, spiked):
    """int32 [n]: the spikes beyond the first of neurons that fired ``count`` [n] times in
    the step (a model's ``spike_count`` state; 0 where ``spiked`` [n] is not set, and for a
    count that is not a number)."""
    fired = spiked if spiked.dtype == jnp.bool_ else spiked != 0
    count = jnp.where(fired & (count >= 2.0), jnp.minimum(count, 2.0 ** 30), 1.0)
    return (jnp.floor(count) - 1.0).astype(jnp.int32)


def extra_spikes(model: Model, extra_ring, rows, source, dtype):
    """[C] the spikes beyond the first that ring sources ``source`` [C] (numpy) sent at the
    time of ring rows ``rows`` (a scalar or [C], already mod ring_size): from
    ``extra_ring`` [ring_size, M] for the neurons that can fire more than once per step
    (``Model.multi_slot``), 0 for every other source."""
    slot = model.multi_slot[np.asarray(source)]
    hit = np.flatnonzero(slot >= 0)
    if hit.size == slot.size:  # every source can: a gather, no scatter
        return extra_ring[rows, slot].astype(dtype)
    out = jnp.zeros(slot.shape[0], dtype)
    if not hit.size:
        return out
    r = rows if jnp.ndim(rows) == 0 else rows[hit]
    return out.at[hit].set(extra_ring[r, slot[hit]].astype(dtype))


def _deliver_extra(model: Model, core, mat, inbuf, extra, n):
    """The input buffer with the spikes beyond the first (``extra`` [M], of the neurons
    ``Model.multi_points``, sent in this ring row) delivered over the static connections
    too: one delivery of each connection's weight times its source's extra spikes (linear
    in the weights: reverse mode differentiates it, as the first spike's delivery)."""
    csr = core["static_csr"]
    where = model.source_nodes.shape[0] + model.multi_points
    count = jnp.zeros(model.n_sources, mat["events_weight"].dtype).at[where].set(extra)
    return deliver(inbuf, count > 0, csr["ptr"], csr["target"], mat["events_delay"],
                   mat["events_weight"] * count[mat["events_source"]], n)


def plastic_multi_slots(model: Model) -> np.ndarray:
    """int32: the indices in ``Model.multi_points`` of the neurons that can fire more than
    once per step and are the source or target of a plastic connection."""
    if not model.multi_points.size or not model.plastic:
        return np.zeros(0, np.int32)
    S = model.source_nodes.shape[0]
    ends = np.concatenate([np.concatenate([np.asarray(pl.source), S + np.asarray(pl.target)])
                           for pl in model.plastic])
    slot = model.multi_slot[ends]
    return np.unique(slot[slot >= 0]).astype(np.int32)


def _ring_bit(model: Model, ring, row, source, dtype=bool):
    """Whether ring source ``source`` [C] fired at the time of ring row ``row`` (mod size)."""
    words = ring[row % model.ring_size, source // 32]
    return (((words >> (source % 32).astype(jnp.uint32)) & jnp.uint32(1)) > 0).astype(dtype)


def _plastic_step(model: Model, core, dt, carry, ring, n):
    """Plastic connections at step n (time t = n dt): their rules act on the spikes sent now
    (ring row n) and the postsynaptic spikes reaching them, and each sent spike is added to
    its target's input buffer for the step that reads it (n + delay_steps - 1), with the
    weight it carries now (NEST sends the updated weight)."""
    t = n * dt
    S = model.source_nodes.shape[0]
    states, inbuf = [], carry.inbuf
    for pl, p, s in zip(model.plastic, core["plastic"], carry.plastic):
        d = delay_steps(jnp.asarray(p["delay"]), dt)
        post = S + pl.target
        pre = _ring_bit(model, ring, n, pl.source)
        arrival = _ring_bit(model, ring, n - d, post)  # post spikes at t - d reach it now
        before = _ring_bit(model, ring, n - d - 1, post, carry.v.dtype)
        # how many, where an end can fire several times per step (decided when tracing:
        # bool flags elsewhere, and the rules take no more_spikes path)
        dtype = carry.v.dtype
        if carry.extra_ring is not None and np.any(model.multi_slot[pl.source] >= 0):
            pre = pre + extra_spikes(model, carry.extra_ring, n % model.ring_size, pl.source,
                                     dtype)
        if carry.extra_ring is not None and np.any(model.multi_slot[post] >= 0):
            arrival = arrival + extra_spikes(model, carry.extra_ring, (n - d) % model.ring_size,
                                             post, dtype)
            before = before + extra_spikes(model, carry.extra_ring,
                                           (n - d - 1) % model.ring_size, post, dtype)
        new, w = pl.mech.step(s, p, t, dt, pre, arrival, before)
        states.append(new)
        x = jnp.where(pre > 0, delivered_weight(model, w, pl.target, pre), 0.0)
        inbuf = inbuf.at[(n + d - 1) % model.inbuf_size, (x < 0).astype(jnp.int32),
                         pl.target].add(x)
    return tuple(states), inbuf


def poisson(key, lam, top=None):
    """Poisson counts of means ``lam`` [C]: by inversion of the CDF (one uniform per draw, a
    fixed 48-term loop: exact to ~1e-18 in probability for means up to 10, the per-step means
    of Poisson generators; ~4x faster than ``jax.random.poisson``'s rejection sampling),
    and by ``jax.random.poisson`` when some mean is larger (lax.cond: only one runs).

    In float32 the summed CDF can top out below the largest uniforms (1 - 2^-23) by
    rounding (by up to 4.2e-7, for 1.6% of the means up to 10): a uniform above it would
    run off the end of the loop (a count of 47). There the uniform is scaled by the sum's
    last value, so the draws follow the Poisson law (as float32 sums it) and never run off;
    float64 sums reach 1 to ~1e-16 and draw unscaled. ``top`` [C]: that value for each mean,
    ``_cdf_top(lam)``, where the caller has it cheaper (computed once per generator, and 1
    where lam = 0); float32 only."""

    def inversion(key, lam):
        u = jax.random.uniform(key, lam.shape, lam.dtype)
        if lam.dtype != jnp.float64:
            u = u * (_cdf_top(lam) if top is None else top)
        return _inverse_cdf(u, lam)

    return lax.cond(jnp.max(lam, initial=0.0) <= 10.0, inversion,
                    lambda key, lam: jax.random.poisson(key, lam).astype(jnp.int32), key, lam)


_TERMS = 48  # the inversion's CDF terms: P(k >= 48) < 1e-18 for means up to 10


def _inverse_cdf(u, lam):
    """int32 [C]: the Poisson(``lam``) count whose CDF interval holds ``u`` [C] (uniforms in
    [0, 1)): how many of the CDF's first ``_TERMS - 1`` values u exceeds."""
    p = jnp.exp(-lam)
    cdf, k = p, jnp.zeros(lam.shape, jnp.int32)
    for j in range(1, _TERMS):
        k = k + (u > cdf)
        p = p * lam / j
        cdf = cdf + p
    return k


def _cdf_top(lam):
    """[C]: the last CDF value ``_inverse_cdf`` compares with (k = _TERMS - 2), summed as it
    sums it: a uniform scaled by it stays at or below it (rounding is monotonic)."""
    p = jnp.exp(-lam)
    cdf = p
    for j in range(1, _TERMS - 1):
        p = p * lam / j
        cdf = cdf + p
    return cdf
