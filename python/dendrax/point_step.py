"""The point neurons' part of the time step (called by ``dendrax.simulation``'s step):
inputs from static connections (the spike ring, or event by event through
``dendrax.events``), generators (Poisson, dc, noise), plastic connections, then each
population's update (NEST's grid-based order)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from .events import deliver, take
from .model import Model
from .point.propagators import delay_steps


def update_points(model: Model, core, mat, dt, carry, ring, n, spike_history, row):
    """Point neurons' step from t to t + dt (NEST's grid-based update): the weights of the
    spikes read in this step, split by sign, and generator currents, then each
    population's update. Returns (states per population, fired [n_points]: bool, or with
    surrogates float 0/1 carrying gradients)."""
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
            if model.surrogate:  # point sources: the same 0/1, with the spikes' gradients
                k = st.ring_source - model.source_nodes.shape[0]
                h = spike_history[rows, jnp.maximum(k, 0)]
                bits = bits + jnp.where(k >= 0, h - lax.stop_gradient(h), 0.0)
            # split by the weight's sign, not the product's: where no spike arrived the
            # product is 0 but carries the surrogate's gradient
            w = weight[st.ring_conn]
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
            lam = jnp.where(active, gen["rate"][g] * dt * 1e-3, 0.0)
            k = poisson(jax.random.fold_in(core["key"], n), lam).astype(dtype)
            w = weight[st.poisson_conn]
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
    if model.plastic:
        plastic, inbuf = _plastic_step(model, core, dt, carry._replace(inbuf=inbuf), ring, n)
    if inbuf is not None:
        inbuf, due = take(inbuf, n)
        ex, inh = ex + due[0], inh + due[1]
    states, fired = [], jnp.zeros(P, dtype if model.surrogate else bool)
    for pl, p, s in zip(model.points, core["points"], carry.points):
        sl = slice(pl.start, pl.start + pl.size)
        new, spiked = pl.model.update(s, p, {"ex": ex[sl], "in": inh[sl], "current": current[sl]},
                                      dt)
        states.append(new)
        fired = fired.at[sl].set(spiked.astype(fired.dtype))
    return tuple(states), fired, plastic, inbuf


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
        new, w = pl.mech.step(s, p, t, dt, pre, arrival, before)
        states.append(new)
        x = jnp.where(pre, w, 0.0)
        inbuf = inbuf.at[(n + d - 1) % model.inbuf_size, (x < 0).astype(jnp.int32),
                         pl.target].add(x)
    return tuple(states), inbuf


def poisson(key, lam):
    """Poisson counts of means ``lam`` [C]: by inversion of the CDF (one uniform per draw, a
    fixed 48-term loop: exact to ~1e-18 in probability for means up to 10, the per-step means
    of Poisson generators; ~4x faster than ``jax.random.poisson``'s rejection sampling),
    and by ``jax.random.poisson`` when some mean is larger (lax.cond: only one runs)."""

    def inversion(key, lam):
        u = jax.random.uniform(key, lam.shape, lam.dtype)
        p = jnp.exp(-lam)
        cdf, k = p, jnp.zeros(lam.shape, jnp.int32)
        for j in range(1, 48):
            k = k + (u > cdf)
            p = p * lam / j
            cdf = cdf + p
        return k

    return lax.cond(jnp.max(lam, initial=0.0) <= 10.0, inversion,
                    lambda key, lam: jax.random.poisson(key, lam).astype(jnp.int32), key, lam)

