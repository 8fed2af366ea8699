"""Delays in whole steps, and the buffers of the time loop sized for them.

Events between cells follow NEURON's fixed step (``event_delay_steps``); connections onto
point neurons NEST's rounding (``dendrax.point.propagators.delay_steps``); graded synapses
read the presynaptic voltage as many steps back as an event with their delay would take
(``event_delay_steps``: delay / dt rounded, halves up, with NEURON's 1e-10 ms, so that a
half typed in decimal, 0.0375 ms at dt 0.025 ms, rounds up as an exact one does).
``sized`` gives a model the spike ring, voltage history and input buffer its delays need at
a dt; ``fit_buffers`` gives the loop each connection's delay in steps and whether a traced
one overflows them. ``longest_delays`` and ``delays_up_to`` size a compiled batch
(``simulate_batch``) for its members' concrete delays, which are traced inside it.
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import replace

import jax
import jax.numpy as jnp
import numpy as np

from .model import Model
from .point.generators import Generator
from .point.propagators import (MAX_TICS, TICS_PER_MS, check_dt, counted,
                                 delay_steps as nest_delay_steps)

_MAX_DELAY_BUFFER = 2**31  # bytes: a delay buffer beyond this is a mistake, not a model
SIZED_KEPT = 8  # a model's sizings of its buffers kept with it (one loop each)


# NEURON's fixed step sends a threshold crossing detected at t as an event at t + 1e-10 ms
# (NetCvode::check_thresh's teps), so a delay of a whole number of steps plus one half
# arrives a step late, not on the tie
THRESHOLD_EVENT_OFFSET = 1e-10


def event_delay_steps(delay, dt):
    """Whole steps between a spike's detection at t_n and its delivery (int32, shaped as
    delay; delay and dt in ms): NEURON delivers the event due at t_e = t_n + 1e-10 + delay
    in the step from t_m when t_e <= t_m + dt/2. That is delay / dt rounded to whole steps,
    halves up, and the 1e-10 ms makes a half typed in decimal (0.0375 ms at dt 0.025 ms,
    1.4999999999999998 steps in binary) round up too; graded synapses round so as well."""
    xp = jnp if isinstance(delay, jax.Array) or isinstance(dt, jax.Array) else np
    steps = xp.ceil((delay + THRESHOLD_EVENT_OFFSET) / dt - 0.5)
    return counted(xp, xp.maximum(steps, 0))


def fit_buffers(model: Model, core, dt):
    """Per placement, the delay of each connection in steps, the static connections' (NEST's
    ``delay_steps``), and whether any is longer than the spike ring / voltage history
    holds (possible only with traced delays)."""
    event = tuple(event_delay_steps(p["delay"][inp.conn_local], dt) if inp.conn_local.size else None
                  for inp, p in zip(model.inputs, core["synapses"]))
    # whole steps, halves up, as the events' (numpy's round takes halves to even: 2.5 -> 2)
    graded = tuple(event_delay_steps(p["delay"], dt) for p in core["graded"])
    over = jnp.zeros((), bool)
    for d in event:
        if d is not None:
            over |= jnp.any(d >= model.ring_size)
    for d in graded:
        over |= jnp.any(d >= model.history_size)
    static = None
    if model.static is not None:
        static = nest_delay_steps(jnp.asarray(core["static"]["delay"]), dt)
        over |= jnp.any(static < 1)  # onto point neurons: NEST's minimum delay is one step
        if model.static.ring_conn.size and not model.events:
            over |= jnp.any(static[model.static.ring_conn] - 1 >= model.ring_size)
    for p in core["plastic"] if model.plastic else ():
        # a plastic connection reads ring rows n - d - 1 and writes input row n + d - 1
        d = nest_delay_steps(jnp.asarray(p["delay"]), dt)
        over |= jnp.any((d < 1) | (d + 2 > model.ring_size) | (d > model.inbuf_size))
    return event, graded, static, over


def warn_too_long(over):
    """Warn (``over``: a boolean, a run's traced delays overflowed its buffers) that the
    run's outputs are NaN, and what to do."""
    if bool(np.any(np.asarray(over))):
        warnings.warn("dendrax: a traced delay in params (inside jax.jit, jax.grad or a "
                      "jax.vmap of your own) is longer than the network was built for (or, "
                      "onto point neurons, shorter than one step); the run's outputs are NaN. "
                      "Traced delays cannot resize the spike ring or voltage history: build "
                      "the network with the longest delay you will use (connect(..., "
                      "delay=...)); dendrax.simulate and simulate_batch given concrete delays "
                      "size them for those", RuntimeWarning)


# {synapse kind: ms}: the longest delays the buffers must hold where the params' are traced
_PROMISED: ContextVar = ContextVar("dendrax_delays_up_to", default={})


@contextmanager
def delays_up_to(longest: dict):
    """Within this block, ``sized`` makes the buffers hold delays up to ``longest`` ({kind of
    ``params["synapses"]``: ms}) even where the params' delays are traced: how a compiled
    batch (``simulate_batch``, traced inside its ``vmap``) is sized for the concrete delays
    of its members (``longest_delays``)."""
    token = _PROMISED.set({**_PROMISED.get(), **longest})
    try:
        yield
    finally:
        _PROMISED.reset(token)


def longest_delays(layout, params, dt) -> dict:
    """{synapse kind: ms} for each kind whose concrete delays in ``params`` (with any leading
    batch axes) are longer than those the network was built with: the longest, as the
    whole number of steps of dt it rounds to (as ``sized`` rounds it: NEURON's rule for
    synapses on cells, NEST's onto point neurons) times dt, so that batches whose longest
    delays round alike share one compiled program, sized as ``dendrax.simulate`` sizes a
    run of that delay. Traced delays are left out."""
    built = {name: layout.max_graded_delay if g.graded else layout.max_delay
             for name, g in layout.synapses.items()}
    built.update({name: layout.max_static_delay for name in ("static", *layout.plastic)})
    out = {}
    for name, longest in built.items():
        delay = params.get("synapses", {}).get(name, {}).get("delay")
        if delay is None or isinstance(delay, jax.core.Tracer) or not np.size(delay):
            continue
        d = float(np.max(np.asarray(delay)))
        if d > longest:
            onto_points = name == "static" or name in layout.plastic
            steps = (nest_delay_steps if onto_points else event_delay_steps)(d, dt)
            out[name] = int(steps) * float(dt)
    return out


def _longest(delay, name: str):
    """The longest delay (ms) the buffers must hold for synapse kind ``name``: the maximum of
    ``delay`` where concrete, where traced the one promised by ``delays_up_to`` (None: no
    delay, or none promised)."""
    if isinstance(delay, jax.core.Tracer):
        return _PROMISED.get().get(name)
    return float(np.max(np.asarray(delay))) if np.size(delay) else None


def _longest_onto_points(delay, name: str, built: float) -> float:
    """The longest delay (ms) of connections of kind ``name`` onto point neurons: the
    concrete delays' maximum (0 for none); for traced ones the longest built in (``built``,
    ms) or promised, whichever is longer."""
    d = _longest(delay, name) or 0.0
    return max(built, d) if isinstance(delay, jax.core.Tracer) else d


def sized(model: Model, layout, params, dt) -> Model:
    """``model`` with its spike ring and voltage history sized for the longest delays at dt
    (the delays in ``params`` when they are concrete, else those built in, or those promised
    by ``delays_up_to``, when longer)."""
    event, graded = layout.max_delay, layout.max_graded_delay
    for name, group in layout.synapses.items():
        d = _longest(params["synapses"][name]["delay"], name)
        if d is None:
            continue
        if group.graded:
            graded = max(graded, d)
        else:
            event = max(event, d)
    ring = int(event_delay_steps(event, dt)) + 1 if model.n_sources else 1
    ring_ms = event  # the longest delay the spike ring serves (for the message)
    if model.static is not None:
        delay = params["synapses"]["static"]["delay"]
        static = layout.max_static_delay
        if not isinstance(delay, jax.core.Tracer):
            delay = np.asarray(delay)
            if delay.size and nest_delay_steps(delay.min(), dt) < 1:
                raise ValueError(f"a connection onto point neurons has delay {delay.min():g} ms, "
                                 f"which rounds to no step (dt = {dt:g} ms); NEST's minimum "
                                 "delay is the resolution: use delay >= dt")
        static = max(static, _longest(delay, "static") or 0.0)
        ring = max(ring, int(nest_delay_steps(static, dt)))
        ring_ms = max(ring_ms, static)
    if layout.populations:  # point neurons follow NEST's clock of 1 us tics
        check_dt(float(dt))
    tics_per_step = round(float(dt) * TICS_PER_MS)
    for pop in layout.populations:  # NEST: a generator's start and stop lie on the grid
        for k in ("start", "stop"):
            edge = params["populations"][pop.name].get(k) if isinstance(pop.model, Generator) \
                else None
            if edge is None or isinstance(edge, jax.core.Tracer):
                continue
            edge = np.asarray(edge, float)
            # beyond NEST's clock (int64 tics) a time is its end, as NEST clamps it: never
            # off the grid (1e300 ms was "not a multiple of the step")
            edge = np.where(np.abs(edge) * TICS_PER_MS < MAX_TICS, edge, np.inf)
            tics = np.floor(np.where(np.isfinite(edge), edge, 0.0) * TICS_PER_MS + 0.5)
            off = tics % tics_per_step != 0  # stop = inf (the default): never off
            if np.any(off):
                raise ValueError(f"{pop.model.name} {pop.name!r}: {k} = {edge[off][0]:g} ms is "
                                 f"not a multiple of the simulation step {dt:g} ms (NEST "
                                 "requires one)")
    for pop in layout.populations:  # a step's Poisson count is an int32
        rate = params["populations"][pop.name].get("rate") if pop.model.name == \
            "poisson_generator" else None
        if rate is None or isinstance(rate, jax.core.Tracer):
            continue
        per_step = np.max(np.asarray(rate, float), initial=0.0) * float(dt) * 1e-3
        if per_step > MAX_SPIKES_PER_STEP:
            raise ValueError(f"poisson_generator {pop.name!r}: rate = "
                             f"{np.max(np.asarray(rate, float)):g} Hz makes {per_step:.3g} "
                             f"spikes per step of dt = {dt:g} ms; at most "
                             f"{MAX_SPIKES_PER_STEP:g} are supported")
    for pop in layout.populations:  # NEST: a noise_generator's dt is a multiple of the step
        interval = params["populations"][pop.name].get("dt") if pop.model.name == \
            "noise_generator" else None
        if interval is None or isinstance(interval, jax.core.Tracer):
            continue
        if np.any(np.asarray(interval, float) * TICS_PER_MS >= MAX_TICS):
            raise ValueError(f"noise_generator {pop.name!r}: dt = {np.max(interval):g} ms is "
                             f"beyond NEST's clock (at most {MAX_TICS / TICS_PER_MS:.3g} ms), "
                             "which NEST refuses")
        steps = np.asarray(interval, float) / dt
        if np.any(np.round(steps) < 1) or \
                np.any(np.abs(steps - np.round(steps)) > 1e-9 * np.maximum(steps, 1.0)):
            raise ValueError(f"noise_generator {pop.name!r}: dt = {np.ravel(interval)[0]:g} ms "
                             f"is not a multiple of the simulation step {dt:g} ms (NEST "
                             "requires one)")
    inbuf = 1
    for name in layout.plastic:  # STDP reads the post spikes of d + 1 steps ago
        delay = params["synapses"][name]["delay"]
        d = _longest_onto_points(delay, name, layout.max_static_delay)
        if not isinstance(delay, jax.core.Tracer) and np.asarray(delay).size and \
                nest_delay_steps(np.min(np.asarray(delay)), dt) < 1:
            raise ValueError(f"a {name} connection has delay {np.min(delay):g} ms, which rounds "
                             f"to no step (dt = {dt:g} ms); NEST's minimum delay is the "
                             "resolution")
        ring = max(ring, int(nest_delay_steps(d, dt)) + 2)
        ring_ms = max(ring_ms, d)
        inbuf = max(inbuf, int(nest_delay_steps(d, dt)))
    if model.events:
        delay = params["synapses"]["static"]["delay"]
        d = _longest_onto_points(delay, "static", layout.max_static_delay)
        inbuf = max(inbuf, int(nest_delay_steps(d, dt)))
    history = int(event_delay_steps(graded, dt)) + 1 if model.graded else 1
    itemsize = np.dtype(jnp.result_type(float)).itemsize
    buffers = (("spike ring", ring, 4 * -(-max(model.n_sources + model.n_points, 1) // 32), ring_ms),
               ("voltage history", history, itemsize * model.graded_pre_nodes.size, graded),
               ("input buffer", inbuf, 2 * itemsize * model.n_points, None))
    for what, steps, row_bytes, delay in buffers:
        if steps * row_bytes > _MAX_DELAY_BUFFER:
            longest = "" if delay is None else f" (the longest delay, {delay:g} ms)"
            raise ValueError(f"the delays{longest} need a {what} of {steps:.3g} steps of dt = "
                             f"{dt:g} ms, {steps * row_bytes / 2**30:.3g} GiB: use shorter "
                             "delays or a larger dt")
    inputs = tuple(replace(inp, max_arrivals=_max_arrivals(trains, dt))
                   for inp, trains in zip(model.inputs, layout.trains, strict=True))
    most = max((inp.max_arrivals for inp in inputs), default=1)
    if most > MAX_ARRIVALS:  # NET_RECEIVE runs once per spike: a loop written out per step
        raise ValueError(f"a spike train brings up to {most} spikes to one synapse within one "
                         f"step (dt = {dt:g} ms); at most {MAX_ARRIVALS} are supported: check "
                         "the rate (Hz) and times (ms), use a smaller dt, or spread the train "
                         "over several synapses")
    sizes = (max(ring, 1), max(history, 1), max(inbuf, 1))
    key = (*sizes, tuple(inp.max_arrivals for inp in inputs))
    # one object per sizing, held by the model (a cell holds its model): what is compiled
    # for it is kept while the cell lives (dendrax.compiled), not dropped after each run
    variants = model.__dict__.setdefault("_sized", {})
    if key not in variants:
        if len(variants) >= SIZED_KEPT:
            variants.pop(next(iter(variants)))
        variants[key] = replace(model, ring_size=sizes[0], history_size=sizes[1],
                                inbuf_size=sizes[2], inputs=inputs)
    return variants[key]


def off_grid(layout, params, dt) -> list:
    """The traced generator ``start``/``stop`` and noise_generator ``dt`` (inside jit, grad
    or vmap, where no error can be raised): [boolean scalar: off the step grid], which
    ``simulate`` turns into NaN outputs, as ``checks.check_values``' (concrete ones are
    refused by ``sized``)."""
    out = []
    for pop in layout.populations:
        if not isinstance(pop.model, Generator):
            continue
        values = params["populations"][pop.name]
        for k in ("start", "stop"):
            edge = values.get(k)
            if isinstance(edge, jax.core.Tracer):  # in steps, to the dtype's rounding (a
                steps = jnp.where(jnp.isfinite(edge), edge, 0.0) / dt  # float32 grid point
                whole = jnp.round(steps)                              # is a few ulp off)
                tol = 16 * jnp.finfo(steps.dtype).eps * jnp.maximum(jnp.abs(steps), 1.0)
                out.append(jnp.any(jnp.abs(steps - whole) > tol))
        interval = values.get("dt") if pop.model.name == "noise_generator" else None
        if isinstance(interval, jax.core.Tracer):
            steps = interval / dt
            whole = jnp.round(steps)
            tol = 16 * jnp.finfo(steps.dtype).eps * jnp.maximum(steps, 1.0)
            out.append(jnp.any((whole < 1) | (jnp.abs(steps - whole) > tol)))
    return out


MAX_ARRIVALS = 64  # spikes of one train at one synapse within one step
MAX_SPIKES_PER_STEP = 1e8  # a poisson_generator's mean count per step (int32 counts)


def _max_arrivals(trains, dt) -> int:
    """The most spikes of one train within one step's delivery window (dt wide, whatever
    the delay shifts it by; a little wider, so that rounding never undercounts)."""
    most = 1
    for times in trains:
        t = np.sort(np.asarray(times, float))
        if t.size > 1:
            ends = np.searchsorted(t, t + dt * (1.0 + 1e-6), side="right")
            most = max(most, int(np.max(ends - np.arange(t.size))))
    return most
