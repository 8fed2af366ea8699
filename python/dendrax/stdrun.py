"""The standard run: ``simulate``, the whole run a user asks for, as NEURON's
``stdrun.hoc`` ``run()`` (initialise, then step to tstop).

It checks the settings and parameters, lowers the cell or network (``dendrax.lowering``),
runs the time loop (``dendrax.simulation``) in one piece or in pieces (``chunk``,
``stream``, ``progress``), reports a run that became non-finite, and returns a
``Result``.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from functools import partial
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .checks import beyond_float32, check_finite, check_values, conform, refuse_invalid
from .delays import off_grid, sized
from .layout import Layout
from .locations import Location
from .lowering import lower
from .simulator_units import core_params
from .model import Model
from .timecourse import drive, step_count
from .quantities import magnitude, refuse_narrow
from .point.plasticity import PLASTIC
from .result import Result
from .recording import statistics
from .simulation import METHODS, advance, initialize, run, schedule
from .version import __version__


MAX_STEPS = 2**31 - 1  # the time loop counts steps in int32


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
                  "before building cells", PrecisionWarning, stacklevel=4)


class Run(NamedTuple):
    """A run's checked settings (plain numbers in NEURON's units) and its lowered target."""

    model: Model
    params: dict  # the target's own params
    layout: Layout
    t_stop: float
    dt: float
    v_init: float
    celsius: float
    method: str
    n_steps: int
    invalid: tuple  # traced settings out of range (``refuse_invalid``)
    given: Callable | None = None  # params path -> a connection's value beyond float32


def prepare(target, t_stop, dt=None, v_init=None, celsius=None, method=None) -> Run:
    """Check a run's settings (defaults: dt 0.025 ms, v_init -65 mV, celsius 6.3 degC,
    backward Euler; quantities converted), lower ``target`` and count its steps; refuses a
    target that records nothing. Shared by ``simulate`` and ``dendrax.distributed``."""
    dt = 0.025 if dt is None else dt
    v_init = -65.0 if v_init is None else v_init
    celsius = 6.3 if celsius is None else celsius
    method = "backward_euler" if method is None else method
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {sorted(METHODS)}")
    t_stop, dt, v_init, celsius = (magnitude(v, u, k) for v, u, k in (
        (t_stop, "ms", "t_stop"), (dt, "ms", "dt"), (v_init, "mV", "v_init"),
        (celsius, "degC", "celsius")))
    invalid = check_run(t_stop, dt, v_init, celsius)
    _warn_if_float32()
    model, base, layout = lower(target)
    if not model.recordings and not model.spike_records.size:
        raise ValueError("nothing is recorded: call .record(...) or .record_spikes() before simulate")
    n_steps = step_count(t_stop, dt)
    warn_if_rounded(t_stop, dt, n_steps)
    given = partial(beyond_float32, getattr(target, "wiring", None))
    return Run(model, base, layout, t_stop, dt, v_init, celsius, method, n_steps, invalid, given)


def checked_params(run_: Run, params=None) -> tuple:
    """(model sized for ``params``, params conformed to the target's, every traced value out
    of range): ``params`` default the target's own."""
    params = conform(run_.params if params is None else params, run_.params)
    invalid = (run_.invalid + check_finite(params, run_.given)
               + check_values(run_.model, run_.layout, params)
               + off_grid(run_.layout, params, run_.dt))
    return sized(run_.model, run_.layout, params, run_.dt), params, invalid


def simulate(target, t_stop: float, dt: float | None = None, *, params=None,
             v_init: float | None = None, celsius: float | None = None,
             method: str | None = None, backend: str = "auto", checkpoint: int | None = None,
             record_every: int = 1, chunk: int | None = None, stream: str | None = None,
             progress: bool = False, key=None, resume: Result | None = None) -> Result:
    """Simulate a cell or a network from t = 0 (or from where ``resume`` ended) to t_stop (ms)
    with fixed step dt, as NEURON's run() (continuerun()).

    Args:
        target: a ``dendrax.Cell`` or ``dendrax.Network`` (anything ``Simulatable``) with
            its mechanisms, stimuli, connections and recordings.
        dt: the time step, ms (default 0.025).
        params: a params pytree like ``dendrax.lower(target).params`` (default: the
            target's own); pass a traced one to differentiate.
        v_init: initial membrane potential, mV (default -65; gates start at their steady
            state).
        celsius: temperature, degC (default NEURON's 6.3).
        method: "backward_euler" (NEURON's default) or "crank_nicolson" (secondorder=2).
        backend: Hines solve backend, "auto", "native" or "jax".
        checkpoint: memory control for gradients: store the state every
            ``checkpoint`` steps and recompute in between (see ``advance``).
        record_every: keep traces at every k-th step only (t = 0, k dt, ...; as
            NEURON's ``Vector.record(..., Dt)``); spikes and statistics still see every step.
            t_stop / dt must be a multiple of k.
        chunk: run in pieces of this many steps (one compiled piece, reused): the
            device holds one piece of traces at a time (a multiple of record_every).
        stream: a ``.npy`` file to write the traces to piece by piece ([n_t, n_traces],
            row per time): host memory stays one piece, whatever the run's length;
            ``res.traces`` then reads the file lazily (a memory map). Implies ``chunk``
            (default 10,000 steps).
        progress: show a progress bar (runs in pieces; for long runs from the CLI).
        key: the random draws of poisson_generator populations (a JAX PRNG key or an int
            seed; default 0): the same key gives the same run.
        resume: a Result of this target to go on from (NEURON's ``continuerun``, NEST's
            next ``Simulate``): the run continues from its end (its state at its t_stop)
            to t_stop, with ``params`` (which may differ from the first run's), its dt,
            celsius and method unless given; v_init does not apply. The Result holds the
            samples after the resumed run's end, spikes in that time, statistics over the
            whole run from t = 0. Resuming in steps gives the run in one piece.

    Returns:
        Result with t [n_t], traces [n_traces, n_t] and units, statistics, the spikes of
        recorded sources, the run's settings (``meta``) and its final ``state``.
    """
    if resume is not None:
        dt, v_init, celsius, method = _resumed_settings(resume, dt, v_init, celsius, method)
    run_ = prepare(target, t_stop, dt, v_init, celsius, method)
    model, base, layout, n_steps = run_.model, run_.params, run_.layout, run_.n_steps
    t_stop, dt, v_init, celsius, method = run_.t_stop, run_.dt, run_.v_init, run_.celsius, \
        run_.method
    _warn_if_unstable(model, layout, method)
    start = 0 if resume is None else _resumed_steps(resume, layout, n_steps, t_stop)
    chunk = _check_pieces(n_steps - start, record_every, checkpoint, chunk, stream, progress)
    if resume is not None and params is None and \
            resume.meta.get("params") != _digest(conform(base, base)):
        raise ValueError("the run to resume ran with other params than this target's own (or "
                         "traced ones): pass them again, params=..., changed where you mean "
                         "the continued run to differ (a resumed run takes its values from "
                         "params, not from the run it continues)")
    model, params, invalid = checked_params(run_, params)
    core = core_params(layout, params, v_init=v_init, celsius=celsius, model=model)
    if key is None and resume is not None and "key" in resume.meta:
        if resume.meta["key"] == "traced":
            raise ValueError("the run to resume drew its Poisson spikes with a traced key (not "
                             "kept in its meta): give the same key again (key=...)")
        key = np.asarray(resume.meta["key"], np.uint32)  # the resumed run's draws go on
    if key is not None:
        key = random_key(key)
        if core.get("key") is not None:  # only poisson_generator populations draw
            core["key"] = key
    if resume is not None:  # what must not change first: it may also change the buffers
        _check_fixed(resume.meta.get("fixed", ()), _fixed_at_start(params))
    state = None if resume is None else _resumed_state(resume, model, core, dt)
    drv, step = drive(layout, n_steps, dt), jnp.asarray(dt)
    traced = [r.reduce is None for r in model.recordings]
    meta = run_meta(layout, params, dt, n_steps, v_init, celsius, method, record_every)
    if start:
        meta = {**meta, "t_start": start * float(dt), "v_init": resume.meta.get("v_init")}
        meta = {k: x for k, x in meta.items() if x is not None}
    if key is not None and core.get("key") is not None:  # for a resumed run's default
        if isinstance(key, jax.core.Tracer):
            meta["key"] = "traced"
        else:
            data = jax.random.key_data(key) if jax.dtypes.issubdtype(
                key.dtype, jax.dtypes.prng_key) else key
            meta["key"] = tuple(int(x) for x in np.asarray(data).ravel())
    kw = dict(units=[u for u, keep in zip(layout.units, traced) if keep],
              stat_labels=[(*lab, r.reduce) for lab, r in zip(layout.labels, model.recordings)
                           if r.reduce is not None],
              stat_units=[u for u, keep in zip(layout.units, traced) if not keep], meta=meta)
    labels = [lab for lab, keep in zip(layout.labels, traced) if keep]
    first = start + record_every if start else 0  # a resumed run: after its start
    t = jnp.asarray(np.arange(first, n_steps + 1, record_every) * dt)
    if chunk is None:
        out = run(model, core, drv, step, method=method, backend=backend, checkpoint=checkpoint,
                  record_every=record_every, state=state, start=start)
        out = refuse_invalid(out, invalid)
        _warn_nonfinite(out.traces, dt * record_every, labels, stats=out.stats,
                        t0=first * float(dt))
        return Result(t, out.traces.T, labels, out.raster, layout.spike_cells, stats=out.stats,
                      spike_shift=layout.spike_shift, state=out.state, **kw)
    if any(isinstance(x, jax.core.Tracer) for x in jax.tree_util.tree_leaves((core, invalid))):
        raise ValueError("a run in pieces (chunk, stream, progress) brings each piece to the "
                         "host: it cannot run inside jax.jit, grad or vmap (its values are "
                         "traced); run it outside, or in one piece there")
    traces, spike_times, stats, state = _run_in_pieces(
        model, core, drv, step, method, backend, record_every, chunk, stream, progress, labels,
        layout.spike_shift, float(dt), state, start)
    return Result(t, traces.T, labels, None, layout.spike_cells, stats=stats,
                  spike_shift=layout.spike_shift, spike_times=spike_times, state=state,
                  counts=model.records_counts, **kw)


# what a resumed run cannot change: fixed when the run started (NEURON fixes an event's
# delivery when it is sent and an SEClamp's level times in INITIAL; a plastic weight is
# the run's state, params give only its start)
def _fixed_values(params) -> dict:
    """what -> the values a resumed run must keep: every connection's and spike train's
    delay, plastic connections' weights, SEClamp durations."""
    synapses = params.get("synapses", {})
    return {"delays": [g["delay"] for g in synapses.values() if "delay" in g],
            "plastic weights": [g["weight"] for name, g in synapses.items() if name in PLASTIC],
            "SEClamp durations": [params.get("stimuli", {}).get("vclamp", {}).get("dur", ())]}


def _digest(values) -> str | None:
    """A short hash of arrays' values (None where any is traced)."""
    if any(isinstance(v, jax.core.Tracer) for v in jax.tree_util.tree_leaves(values)):
        return None
    h = hashlib.sha1()
    for v in jax.tree_util.tree_leaves(values):
        h.update(np.ascontiguousarray(np.asarray(v, float)).tobytes())
    return h.hexdigest()[:16]


def _fixed_at_start(params) -> tuple:
    """(what, hash) of the values a resumed run must keep (a what left out where traced)."""
    return tuple((what, h) for what, values in _fixed_values(params).items()
                 if (h := _digest(values)) is not None)


def _check_fixed(before, now) -> None:
    changed = sorted(what for what, h in now if dict(before).get(what, h) != h)
    if changed:
        raise ValueError(
            f"a resumed run keeps the {' and '.join(changed)} of the run it continues (spikes "
            "in flight keep the delay they were sent with, as NEURON's events; an SEClamp's "
            "level times are fixed at initialization, as NEURON's tc2, tc3; a plastic weight "
            "is the run's state, params give only its start: set it in res.state.plastic): "
            "give the same values, or start a new run")


def _resumed_settings(resume, dt, v_init, celsius, method):
    """dt, v_init, celsius, method of a run resuming ``resume``: its own unless given (dt
    must be its dt); a ValueError for a v_init or a Result that cannot be resumed."""
    if not isinstance(resume, Result) or resume.state is None or "dt" not in resume.meta:
        what = ("a Result without the final state of a run (read from a file, or made by hand)"
                if isinstance(resume, Result) else type(resume).__name__)
        raise ValueError(f"resume takes the Result of a simulate() run (with its final state), "
                         f"got {what}")
    if v_init is not None:
        raise ValueError("a resumed run goes on from the state where the last run ended: "
                         "v_init does not apply (start a new run for another v_init)")
    meta = resume.meta
    if dt is not None and magnitude(dt, "ms", "dt") != meta["dt"]:
        raise ValueError(f"a resumed run keeps the time step of the run it continues "
                         f"(dt = {meta['dt']:g} ms), got dt = {dt!r}")
    if celsius is None and "celsius" not in meta:
        raise ValueError("the run to resume had a traced celsius (not kept in its meta): "
                         "give celsius")
    return (meta["dt"], None, meta["celsius"] if celsius is None else celsius,
            meta["method"] if method is None else method)


def _resumed_steps(resume, layout, n_steps: int, t_stop) -> int:
    """The step a run resuming ``resume`` starts from; ValueErrors for another target or a
    t_stop not after its end."""
    if resume.meta.get("model") != layout.fingerprint:
        raise ValueError("resume: that Result is a run of another cell or network (its "
                         "sections, nodes or recordings differ): resume a run of this target")
    start = step_count(resume.meta["t_stop"], resume.meta["dt"])
    if n_steps <= start:
        raise ValueError(f"a resumed run goes on to a later t_stop, by at least one step: the "
                         f"run it continues ended at {resume.meta['t_stop']:g} ms (dt = "
                         f"{resume.meta['dt']:g} ms), got t_stop = {t_stop!r}")
    return start


def _resumed_state(resume, model, core, dt):
    """``resume``'s final state, checked against the state this model carries (one run, not
    a batch; buffers sized for the same delays)."""
    expected = jax.eval_shape(lambda c: initialize(model, c, None, dt)[0], core)
    got = jax.tree_util.tree_map(lambda a: jax.ShapeDtypeStruct(jnp.shape(a), jnp.result_type(a)),
                                 resume.state)
    if jax.tree_util.tree_structure(got) != jax.tree_util.tree_structure(expected) or any(
            a.shape != b.shape or a.dtype != b.dtype for a, b in
            zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(expected))):
        raise ValueError("resume: that Result's state does not fit this run: resume a run of "
                         "this target (the same mechanisms, synapses and connections), one run "
                         "(not a batch from vmap or simulate_batch), in the same precision, "
                         "with delays that fit the same spike buffers")
    return resume.state


def random_key(key):
    """A JAX PRNG key from an int seed or a key; a ValueError for anything else."""
    if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
        if not 0 <= key < 2 ** 32:  # 2**70 overflowed inside JAX; without x64 it keeps 32
            raise ValueError(f"key must be an int seed in [0, 2**32) or a JAX PRNG key, got "
                             f"{key}")                      # bits (2**62 was the seed 0)
        return jax.random.PRNGKey(key)
    if isinstance(key, (jax.Array, np.ndarray)) and (
            jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key)
            or (key.dtype == np.uint32 and key.shape == (2,))):
        return key
    raise ValueError(f"key must be an int seed or a JAX PRNG key (jax.random.PRNGKey(seed)), "
                     f"got {key!r}")


def _warn_if_unstable(model, layout, method) -> None:
    """Crank-Nicolson with a graded synapse (a gap junction) on a zero-area node (a section
    end where a point process sits): the explicit coupling there, with no capacitance to
    damp it, alternates sign from step to step and grows until the run fails, in NEURON as
    here; say so before the run."""
    if method != "crank_nicolson" or not model.graded:
        return
    nodes = np.concatenate([np.asarray(g.nodes) for g in model.graded])
    ends = [layout.rank[layout.node_offset[c] + cell.node(Location(s, x))]
            for c, cell in enumerate(layout.cells) for s, x in cell.ends]
    on_end = np.isin(nodes, ends)
    if on_end.any():
        warnings.warn(f"{int(on_end.sum())} graded synapse(s) (e.g. a gap junction) sit "
                      "on a section end's zero-area node: under Crank-Nicolson their explicit "
                      "coupling there oscillates and grows (in NEURON too); place them on a "
                      "segment (e.g. x = 0.9 instead of 1) or use backward Euler",
                      RuntimeWarning, stacklevel=3)


def warn_if_rounded(t_stop, dt, n_steps) -> None:
    """NEURON's run() stops at the step nearest t_stop (its loop runs while t < t_stop -
    dt/2), and so does simulate; a t_stop that is not a whole number of steps says so."""
    end = n_steps * float(dt)
    if abs(end - t_stop) > 1e-9 * max(abs(t_stop), 1.0):
        warnings.warn(f"t_stop = {t_stop:g} ms is not a whole number of steps of dt = {dt:g} ms:"
                      f" the run ends at the nearest step, t = {end:g} ms (as NEURON's run() "
                      "does)", UserWarning, stacklevel=4)


def _check_pieces(n_steps, record_every, checkpoint, chunk, stream, progress):
    """The piece size (steps) of a run in pieces, or None for one piece; ValueErrors for
    settings that do not fit together."""
    if checkpoint is not None and not (isinstance(checkpoint, (int, np.integer))
                                       and not isinstance(checkpoint, bool) and checkpoint >= 1):
        raise ValueError(f"checkpoint must be None or a positive whole number of steps, got "
                         f"{checkpoint!r}")
    if isinstance(record_every, bool) or not (isinstance(record_every, (int, np.integer))
                                              and record_every >= 1):
        raise ValueError(f"record_every must be a positive whole number of steps, got {record_every!r}")
    if n_steps % record_every:
        raise ValueError(f"t_stop / dt = {n_steps} steps is not a multiple of record_every = "
                         f"{record_every}; choose t_stop as a multiple of {record_every} dt")
    if checkpoint is not None and record_every > 1 and checkpoint % record_every:
        raise ValueError(f"checkpoint = {checkpoint} must be a multiple of record_every = "
                         f"{record_every}")
    if stream is not None and not str(stream).endswith(".npy"):
        raise ValueError(f"stream must name a .npy file, got {stream!r}")
    if chunk is None and stream is None and not progress:
        return None
    if checkpoint is not None:
        raise ValueError("checkpoint (for gradients) and chunk / stream / progress (for long "
                         "runs) do not combine: a run in pieces is not differentiated")
    if chunk is None:
        chunk = 10_000 if stream is not None else max(-(-n_steps // 20), 1)
        chunk = -(-chunk // record_every) * record_every
    if isinstance(chunk, bool) or not (isinstance(chunk, (int, np.integer)) and chunk >= 1) \
            or chunk % record_every:
        raise ValueError(f"chunk must be a positive multiple of record_every = {record_every} "
                         f"steps, got {chunk!r}")
    return int(min(chunk, n_steps))


def _run_in_pieces(model, core, drive, dt, method, backend, record_every, chunk, stream, progress,
                   labels, shift, dt_ms, state=None, first: int = 0):
    """The run in pieces of ``chunk`` steps (one compiled piece; the last may be shorter),
    from t = 0 or from ``state`` at step ``first``: traces [n_t, n_traces] (a memory-mapped
    .npy when ``stream``), spike times per source (step counts times ``dt_ms``, the Python
    float dt, as a run in one piece gives them: not the float32 ``dt`` of a float32 run),
    statistics, the final state."""
    n_steps = drive["waveform"].shape[0]
    if drive["t_deliver"] is not None:  # on the device once, not once per piece
        drive = {**drive, "t_deliver": jnp.asarray(drive["t_deliver"])}
    if state is None:
        state, rec0 = initialize(model, core, drive["waveform0"], dt, drive["trains"])
        rec0 = np.asarray(rec0)[None]
    else:  # a resumed run: its samples start after its first step
        n_rec = sum(r.reduce is None for r in model.recordings)
        rec0 = np.zeros((0, n_rec), np.asarray(state.v).dtype)
    n_t = (n_steps - first) // record_every + rec0.shape[0]
    if stream is not None:  # a new file (the link's target, where it is a link): an earlier
        # Result that maps the old one (the run this one continues, say) keeps its data
        target = os.path.realpath(os.fspath(stream))
        if os.path.isfile(target):
            os.remove(target)
        f = open(target, "wb")
        np.lib.format.write_array_header_2_0(
            f, {"descr": np.lib.format.dtype_to_descr(rec0.dtype), "fortran_order": False,
                "shape": (n_t, rec0.shape[1])})
        f.write(rec0.tobytes())
        keep = None
    else:
        keep = [rec0]
    spikes: list = [[] for _ in range(model.spike_records.shape[0])]
    bar, warned = None, _warn_nonfinite(rec0, 0.0, labels)
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=n_steps - first, unit="step", desc="dendrax")
    try:
        for start in range(first, n_steps, chunk):
            size = min(chunk, n_steps - start)
            xs = schedule(model, core, drive, dt, start, size)
            state, (rec, raster) = advance(model, core, state, xs, dt, method=method,
                                           backend=backend, record_every=record_every)
            rec = np.asarray(rec)
            if not warned:
                warned = _warn_nonfinite(rec, dt_ms * record_every, labels,
                                         t0=(start + record_every) * dt_ms)
            if keep is None:
                f.write(rec.tobytes())
            else:
                keep.append(rec)
            raster = np.asarray(raster)
            steps, sources = np.nonzero(raster)
            for n, q in zip(steps, sources):  # a count: the time repeated (several spikes)
                spikes[q].extend([(start + n + shift[q]) * dt_ms] * int(raster[n, q]))
            if bar is not None:
                bar.update(size)
    finally:
        if bar is not None:
            bar.close()
        if keep is None:
            f.close()
    traces = np.concatenate(keep) if keep is not None else np.load(stream, mmap_mode="r")
    times = [np.asarray(s, float) for s in spikes]
    stats = statistics(model, state.stats, n_steps)
    if not warned:
        _warn_nonfinite(np.zeros((0, 0)), 0.0, labels, stats=stats)
    return traces, times, stats, state


def run_meta(layout, params, dt, n_steps, v_init, celsius, method, record_every) -> dict:
    """A Result's ``meta``: the run's settings, the fingerprint of what was simulated, and
    digests of its params and of what a resumed run must keep ("fixed"); v_init and celsius
    only where concrete, the params digest None where traced."""

    meta = {"dt": float(dt), "t_stop": n_steps * float(dt), "v_init": v_init, "celsius": celsius,
            "method": method, "record_every": record_every, "dendrax": __version__,
            "model": layout.fingerprint, "params": _digest(params),
            "fixed": _fixed_at_start(params)}
    if isinstance(v_init, jax.core.Tracer) or isinstance(celsius, jax.core.Tracer):
        meta = {k: v for k, v in meta.items() if k not in ("v_init", "celsius")}
    return meta


def check_run(t_stop, dt, v_init, celsius) -> list:
    """ValueErrors for run settings no simulation can have (before anything runs); for a
    traced v_init or celsius (which cannot raise) [boolean scalar: broken]."""
    for name, value in (("dt", dt), ("t_stop", t_stop)):
        if isinstance(value, jax.core.Tracer):
            raise ValueError(f"{name} must be a concrete number (it sets the number of steps, "
                             "a shape); it cannot be traced by jit, grad or vmap: pass it "
                             "outside (e.g. as a static argument)")
        if isinstance(value, (str, bytes, bool)) or np.ndim(value) != 0 or \
                np.asarray(value).dtype.kind not in "iuf":
            raise ValueError(f"{name} must be one number of ms, got {value!r}")
        refuse_narrow(name, value, "ms")
    if not (np.isfinite(dt) and dt > 0) or not (np.isfinite(t_stop) and t_stop > 0):
        raise ValueError(f"need dt > 0 and t_stop > 0, got dt={dt}, t_stop={t_stop}")
    if t_stop / dt > MAX_STEPS:
        raise ValueError(f"t_stop / dt = {t_stop / dt:.3g} steps; a run takes at most "
                         f"{MAX_STEPS:,} steps (its step counter is int32): use a larger dt "
                         "or a shorter run")
    if step_count(float(t_stop), float(dt)) < 1:  # as the run counts its steps
        raise ValueError(f"t_stop = {t_stop} ms rounds to no step of dt = {dt} ms (at most "
                         "half a step): no step would run; use t_stop >= dt")
    for name, value in (("v_init", v_init), ("celsius", celsius)):
        unit = "mV" if name == "v_init" else "degC"
        if not isinstance(value, jax.core.Tracer) and (
                isinstance(value, (str, bytes, bool, np.bool_))
                or np.asarray(value).dtype.kind not in "iuf"):
            raise ValueError(f"{name} must be a number ({unit}), got {value!r}")
        if np.ndim(value) != 0:  # one for the whole run (vmap maps a batch of them)
            raise ValueError(f"{name} must be one number ({unit}) for the whole run, got shape "
                             f"{np.shape(value)}; for several values jax.vmap a function of "
                             f"it (simulate_batch batches params, not {name})")
        if not isinstance(value, jax.core.Tracer):
            refuse_narrow(name, value, unit)
    traced = []  # traced values cannot raise: [boolean scalar: broken], as check_values
    if isinstance(v_init, jax.core.Tracer):
        traced.append(jnp.any(~jnp.isfinite(v_init)))
    elif not np.all(np.isfinite(np.asarray(v_init, float))) or (
            not jax.config.jax_enable_x64 and np.any(np.isinf(np.asarray(v_init, np.float32)))):
        raise ValueError(f"v_init must be a finite potential (mV; within float32 where "
                         f"jax_enable_x64 is off), got {v_init}")
    if isinstance(celsius, jax.core.Tracer):
        traced.append(jnp.any(~(jnp.isfinite(celsius) & (celsius > -273.15))))
    else:
        c = np.asarray(celsius, float)
        if not (np.all(np.isfinite(c)) and np.all(c > -273.15)):
            raise ValueError(f"celsius must be finite and above absolute zero (> -273.15 degC), "
                             f"got {celsius}")
    return traced


# an NMODL mechanism's implicit step gives NaN where Newton did not converge (docs/nmodl.md)
_NEWTON = ("; an imported NMODL mechanism with an implicit step: raise its class's "
           "newton_iterations")


def _warn_nonfinite(traces, dt, labels, t0=0.0, stats=None) -> bool:
    """A run that blew up (e.g. a huge current into a thin dendrite) is reported, not silent
    (traces [n_t, R] sampled every dt from t0; stats [S]). Whether it warned."""
    if isinstance(traces, jax.core.Tracer):
        return False
    finite = np.isfinite(np.asarray(traces))
    if not finite.all():
        step, rec = np.argwhere(~finite)[0]
        warnings.warn(f"dendrax: the simulation became non-finite at t = {t0 + step * dt:g} ms "
                      f"(first in recording {labels[rec]}); check stimuli and parameters "
                      f"(or reduce dt{_NEWTON})", RuntimeWarning, stacklevel=3)
        return True
    if stats is not None and not isinstance(stats, jax.core.Tracer) and \
            not np.isfinite(np.asarray(stats)).all():
        warnings.warn("dendrax: the simulation became non-finite (a recorded statistic is not "
                      f"finite); check stimuli and parameters (or reduce dt{_NEWTON})",
                      RuntimeWarning, stacklevel=3)
        return True
    return False
