"""Plastic connections onto point neurons, as NEST's ``stdp_synapse`` and
``tsodyks2_synapse``: the weights (or the short-term state) are state of the run.

Both act when a presynaptic spike is sent (its time t on the grid), as NEST's ``send``:

``stdp_synapse`` (pair-based STDP; Guetig et al. 2003 weight dependence; NEST
models/stdp_synapse.h). With d the connection's delay (all dendritic, as NEST's default):

1. facilitation by each postsynaptic spike t_post with t_last - d < t_post <= t - d (the post
   spikes reaching the synapse since the last presynaptic spike), in order:
   w <- facilitate(w, K+ exp((t_last - (t_post + d)) / tau_plus));
2. depression by the postsynaptic trace at t - d (spikes strictly before it):
   w <- depress(w, K-(t - d)), K-(t) = sum over t_post < t of exp(-(t - t_post) / tau_minus);
3. the spike is sent with the new w; K+ <- K+ exp((t_last - t) / tau_plus) + 1; t_last <- t.

facilitate(w, k) = Wmax min(1, w/Wmax + lambda (1 - w/Wmax)^mu_plus k),
depress(w, k) = Wmax max(0, w/Wmax - alpha lambda (w/Wmax)^mu_minus k). NEST keeps tau_minus
on the postsynaptic neuron; here it is a parameter of the connection (equal on every
connection onto one neuron to match NEST).

``tsodyks2_synapse`` (Tsodyks & Markram 1997; Maass & Markram 2002 eqs. 4-5): at each spike
after the first, with h = t - t_last, x <- 1 + (x - x u - 1) exp(-h/tau_rec),
u <- U + u (1 - U) exp(-h/tau_fac) (0 for tau_fac = 0); the spike carries weight u x w.

Several spikes in one step (a parrot_neuron relaying k spikes, aeif_cond_exp with t_ref = 0
firing k times) are taken one by one, as NEST's events: each presynaptic spike is depressed
and sent with its own weight (and adds 1 to K+), a tsodyks2 spike after another at the same
time has h = 0; each postsynaptic spike facilitates (and adds 1 to K-). Up to
``EACH_SPIKE_UP_TO`` spikes per step and connection; the run warns beyond.

Units: ms, weights as the target model's (pA or nS).
"""

from __future__ import annotations

from typing import ClassVar

import jax
import jax.numpy as jnp

from ..ranges import NONNEGATIVE, POSITIVE, Range

EACH_SPIKE_UP_TO = 8  # spikes per step and connection a rule takes one by one (NEST: all)


def more_spikes(update, state, count, carried=None):
    """The spikes beyond the first of a step, one by one: ``update(state) -> state`` (a
    pytree of [C] arrays) once per further spike of ``count`` [C] (bool: none further; else
    how many spikes, whole numbers >= 0). Returns (the state after them, the sum over them of
    ``carried(state)`` after each: what each further spike sends; 0 without ``carried``).
    Spikes beyond ``EACH_SPIKE_UP_TO`` send what the last carried (the run warns). A step
    with no connection seeing a second spike skips the work (``lax.cond``); under
    ``jax.vmap`` (``simulate_batch``) the cond becomes a select and every step does it
    (``EACH_SPIKE_UP_TO`` evaluations of the rule per connection)."""
    if count.dtype == jnp.bool_:
        return state, 0.0

    def further(args):
        state, sent = args
        for j in range(1, EACH_SPIKE_UP_TO):
            nxt = update(state)
            state = jax.tree.map(lambda a, b: jnp.where(count > j, a, b), nxt, state)
            if carried is not None:
                sent = sent + jnp.where(count > j, carried(state), 0.0)
        if carried is not None:
            sent = sent + jnp.maximum(count - EACH_SPIKE_UP_TO, 0.0) * carried(state)
        return state, sent

    zero = jnp.zeros_like(count)
    return jax.lax.cond(jnp.any(count > 1), further, lambda a: a, (state, zero))


def bounded_power(base, exponent):
    """``base ** exponent`` as NEST's STDP weight dependence uses ``std::pow`` (base: the
    weight's distance from a bound over Wmax, exponent: mu_plus or mu_minus; dimensionless),
    with the same updates and derivatives that stay finite at the bounds.

    For base > 0 it is ``jnp.power``, differentiated in both arguments. For base <= 0 (the
    weight at Wmax in the facilitation or at 0 in the depression, or a weight set beyond
    Wmax) the slope exponent * base^(exponent - 1) is used where it is finite (exponent 1,
    NEST's default, or above), 0 where it is not (exponent < 1 at base 0: infinite), and the
    derivative w.r.t. the exponent is 0; a power that is not real (a negative base with a
    fractional exponent: NaN in NEST) is 0. In each case the update the power enters clips at
    its bound as NEST's does (fac = w/Wmax + lambda P k >= 1 for w >= Wmax, NaN failing
    ``fac < 1`` in NEST; dep = w/Wmax - alpha lambda P k <= 0 for w <= 0), so the result
    does not depend on the power there, and the zeros are the derivatives of the clipped
    result where plain ``jnp.power`` inside ``jnp.where`` gives 0 * inf or 0 * NaN = NaN
    (the double-where, safe-base pattern).
    """
    positive = base > 0
    smooth = jnp.power(jnp.where(positive, base, 1.0), exponent)
    b, e = jax.lax.stop_gradient(base), jax.lax.stop_gradient(exponent)
    value = jnp.power(b, e)
    slope = e * jnp.power(b, e - 1.0)
    slope = jnp.where(positive | ~jnp.isfinite(slope), 0.0, slope)
    edge = jnp.where(jnp.isnan(value), 0.0, value) + (base - b) * slope
    return jnp.where(positive, smooth, edge)


class PlasticSynapse:
    """A plastic connection kind: NEST's name, parameters (per connection), states."""

    name: ClassVar[str]
    params: ClassVar[dict[str, float]] = {}
    units: ClassVar[dict[str, str]] = {}
    ranges: ClassVar[dict] = {}
    states: ClassVar[tuple[str, ...]] = ()


class StdpSynapse(PlasticSynapse):
    """NEST's ``stdp_synapse`` (see the module docstring)."""

    name = "stdp_synapse"
    params = {"tau_plus": 20.0, "lambda": 0.01, "alpha": 1.0, "mu_plus": 1.0, "mu_minus": 1.0,
              "Wmax": 100.0, "tau_minus": 20.0}
    units = {"tau_plus": "ms", "lambda": "1", "alpha": "1", "mu_plus": "1", "mu_minus": "1",
             "Wmax": "pA or nS", "tau_minus": "ms"}
    ranges = {"tau_plus": POSITIVE, "tau_minus": POSITIVE, "lambda": NONNEGATIVE,
              "alpha": NONNEGATIVE, "mu_plus": NONNEGATIVE, "mu_minus": NONNEGATIVE}
    # "weight" is NEST's weight (it changes when a spike is sent); "w_facilitated" is it
    # with the facilitation of the postsynaptic spikes that reached the synapse since, which
    # NEST applies at the next presynaptic spike (the same arithmetic, done as they arrive)
    states = ("weight", "Kplus", "t_last", "Kminus", "w_facilitated")

    def initial(self, p):
        w = jnp.asarray(p["weight"])
        return {"weight": w, "Kplus": jnp.zeros_like(w), "t_last": jnp.zeros_like(w),
                "Kminus": jnp.zeros_like(w), "w_facilitated": w * 1.0}

    def step(self, s, p, t, dt, pre, post_arrival, post_before):
        """One step at time t (ms): ``pre`` [C] the presynaptic spikes sent now,
        ``post_arrival`` [C] the postsynaptic spikes reaching the synapse now (t_post + d
        = t), ``post_before`` [C] the postsynaptic neuron's spikes at t - d - dt (for the
        trace K-(t - d)); each bool (one or none) or how many. Returns (new states, the
        weight the spikes sent now carry in all: one spike's weight where ``pre`` is bool)."""
        w, kplus, t_last = s["w_facilitated"], s["Kplus"], s["t_last"]
        wmax = p["Wmax"]
        # K-(t - d): post spikes strictly before t - d
        kminus = (s["Kminus"] + post_before) * jnp.exp(-dt / p["tau_minus"])
        reach = kplus * jnp.exp((t_last - t) / p["tau_plus"])

        def facilitate(w):
            fac = w / wmax + p["lambda"] * bounded_power(1.0 - w / wmax, p["mu_plus"]) * reach
            return jnp.where(fac < 1.0, fac * wmax, wmax)

        def depress(w):
            dep = w / wmax - p["alpha"] * p["lambda"] * bounded_power(w / wmax,
                                                                      p["mu_minus"]) * kminus
            return jnp.where(dep > 0.0, dep * wmax, 0.0)

        w = jnp.where(post_arrival > 0, facilitate(w), w)
        w, _ = more_spikes(facilitate, w, post_arrival)
        w = first = jnp.where(pre > 0, depress(w), w)  # the first spike is sent with it
        w, more = more_spikes(depress, w, pre, lambda w: w)
        sent = first + more
        kplus = jnp.where(pre > 0, kplus * jnp.exp((t_last - t) / p["tau_plus"]) + pre, kplus)
        t_last = jnp.where(pre > 0, t, t_last)
        return {"weight": jnp.where(pre > 0, w, s["weight"]), "Kplus": kplus, "t_last": t_last,
                "Kminus": kminus, "w_facilitated": w}, sent


class Tsodyks2Synapse(PlasticSynapse):
    """NEST's ``tsodyks2_synapse`` (see the module docstring)."""

    name = "tsodyks2_synapse"
    params = {"U": 0.5, "u": 0.5, "x": 1.0, "tau_rec": 800.0, "tau_fac": 0.0}
    units = {"U": "1", "u": "1", "x": "1", "tau_rec": "ms", "tau_fac": "ms"}
    ranges = {"U": Range(0.0, 1.0), "u": Range(0.0, 1.0), "x": Range(0.0, 1.0),
              "tau_rec": POSITIVE, "tau_fac": NONNEGATIVE}
    states = ("u", "x", "t_last")

    def initial(self, p):
        u = jnp.asarray(p["u"]) * 1.0
        return {"u": u, "x": jnp.asarray(p["x"]) * 1.0, "t_last": jnp.full_like(u, -1.0)}

    def step(self, s, p, t, dt, pre, post_arrival, post_before):
        """As ``StdpSynapse.step``; the postsynaptic spikes play no part."""
        u, x, t_last = s["u"], s["x"], s["t_last"]
        no_fac = p["tau_fac"] == 0

        def spike(ux, h):  # a spike h ms after the last
            u, x = ux
            u_decay = jnp.where(no_fac, 0.0, jnp.exp(-h / jnp.where(no_fac, 1.0, p["tau_fac"])))
            return p["U"] + u * (1.0 - p["U"]) * u_decay, 1.0 + (x - x * u - 1.0) * jnp.exp(
                -h / p["tau_rec"])

        later = (pre > 0) & (t_last >= 0.0)
        u_new, x_new = spike((u, x), t - t_last)
        u, x = jnp.where(later, u_new, u), jnp.where(later, x_new, x)
        first = x * u * p["weight"]
        (u, x), more = more_spikes(lambda ux: spike(ux, 0.0), (u, x), pre,
                                   lambda ux: ux[0] * ux[1] * p["weight"])
        return {"u": u, "x": x, "t_last": jnp.where(pre > 0, t, t_last)}, first + more


PLASTIC = {k.name: k for k in (StdpSynapse, Tsodyks2Synapse)}
