"""The time loop: one ``lax.scan`` of NEURON's fixed-step scheme (``dendrax.step``)
under jit, from the state at t = 0 (``dendrax.state``): the per-step inputs, the
loop's entry points compiled per structure, and the whole run.
"""

from __future__ import annotations

import warnings
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .compiled import functions as compiled_functions
from .delays import warn_too_long
from .mechanisms.introspect import takes_event_time
from .model import Model
from .net_receive import lost_self_events, warn_lost_self_events
from .point.plasticity import EACH_SPIKE_UP_TO
from .recording import recorded, statistics
from .scan import chunk_for, every, scan_steps, unroll_for
from .state import State, initial_state, observe_initial
from .step import METHODS, step_function

__all__ = ["METHODS", "Output", "State", "advance", "initialize", "run", "schedule"]


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
    obs = observe_initial(model, core, state, waveform0, dt, trains)
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
        core: params pytree in simulator units (``dendrax.simulator_units.core_params``).
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


def loop_width(model: Model, record_every: int, dtype) -> int:
    """Bytes of the largest per-step array of the time loop (nodes and point neurons, the
    traces, in reverse mode each step's kept state; the spike flags of record_every
    steps), for ``scan.chunk_for``."""
    width = max(model.parent.size + model.n_points,
                sum(r.reduce is None for r in model.recordings), 1) * np.dtype(dtype).itemsize
    return max(width, model.spike_records.size * record_every * (4 if model.records_counts else 1))


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
