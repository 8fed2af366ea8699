"""Many simulations at once: ``jax.vmap`` over parameter sets and stimuli, spread over
devices with ``jax.sharding`` (a ``Mesh`` over the devices and the batch axis split
across it, each device running its share with ``jax.shard_map``)."""

from __future__ import annotations

import hashlib
import warnings
import weakref

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from .. import timecourse
from ..checks import check_finite, check_values
from ..delays import delays_up_to, longest_delays
from ..distributed import resolve_devices
from ..lowering import lower
from ..result import Result
from ..stdrun import simulate

AXIS = "batch"


def _merge(base, update, path=(), what="params_batch"):
    """``base`` with the leaves given in the (partial) pytree ``update`` replaced (numbers
    and lists of them as arrays)."""
    where = "/".join(path) or "the top"
    if isinstance(base, dict) and not isinstance(update, dict):
        kind = "an array" if hasattr(update, "shape") else repr(update)
        raise ValueError(f"{what} has {kind} at {where} where the cell's params have a dict "
                         f"(of {sorted(base)})")
    if not isinstance(update, dict):
        if what == "in_axes":
            return update
        try:
            value = jnp.asarray(update)
        except (TypeError, ValueError):
            value = None
        if value is None or value.dtype.kind not in "iufb":
            raise ValueError(f"params_batch at {where} must be an array of numbers, got "
                             f"{update!r}")
        return value
    if not isinstance(base, dict):
        raise ValueError(f"{what} has a dict at {where} where the cell's params have an array")
    unknown = set(update) - set(base)
    if unknown:
        raise ValueError(f"{what} has keys {sorted(unknown)} at {where} that the cell's "
                         f"params lack; known: {sorted(base)}")
    return {k: _merge(v, update[k], path + (k,), what) if k in update else v
            for k, v in base.items()}


def batch_axes(params, base) -> tuple[dict, int]:
    """``in_axes`` for ``jax.vmap``: 0 for leaves with one more leading axis than the cell's
    (``base``) own leaf, None for the rest; and the batch size."""
    sizes = set()

    def axis(path, leaf, ref):
        leaf, ref = np.shape(leaf), np.shape(ref)
        if leaf == ref:
            return None
        if len(leaf) == len(ref) + 1 and leaf[1:] == ref:
            sizes.add(leaf[0])
            return 0
        raise ValueError(f"params_batch{jax.tree_util.keystr(path)} has shape {leaf}; expected "
                         f"{ref} (shared) or [B, {', '.join(map(str, ref))}] (batched)")

    axes = jax.tree_util.tree_map_with_path(axis, params, base)
    if len(sizes) > 1:
        raise ValueError(f"batched leaves disagree on the batch size: {sorted(sizes)}")
    if not sizes:
        raise ValueError("no leaf of params_batch has a batch axis (a leading axis of size B "
                         "in front of the cell's own shape)")
    return axes, sizes.pop()


def simulate_batch(cell, params_batch, t_stop: float, dt: float | None = None, *, in_axes=None,
                   base: dict | None = None, devices=None, **simulate_kwargs):
    """Simulate a batch of parameter sets (and stimuli) in one call: traces [B, n_rec, n_t].

    Args:
        cell: the ``Cell`` or ``Network`` (its structure: mechanisms, stimulus sites,
            connections, recordings).
        params_batch: a params pytree, complete or partial (missing leaves come from
            ``base``, default ``cell.params``). Batched leaves carry a leading batch
            axis of size B: ``{"channels": {"hh": {"gnabar": [B, n]}}}`` batches the
            conductance, ``{"stimuli": {"iclamp": {"amp": [B, n_clamps]}}}`` the stimulus
            amplitude.
        t_stop, dt: as ``dendrax.simulate`` (dt: default 0.025 ms, or that of ``resume``).
        in_axes: a pytree of 0 / None like the params (as ``jax.vmap``'s); default:
            inferred, 0 where a leaf has one more axis than the cell's own.
        devices: None (every device of the default backend), an int (the first n),
            or a list of devices. With more than one device the batch is split over
            them along a ``Mesh`` axis "batch" (padded to a multiple of the device
            count, the padding dropped from the result). When B is a multiple of the
            device count the result stays sharded the same way
            (``NamedSharding(mesh, P("batch"))``); otherwise trimming gathers it.
        **simulate_kwargs: passed to ``dendrax.simulate`` (v_init, celsius, method,
            backend, checkpoint).

    Returns:
        traces [B, n_recordings, n_t] (a jax Array; differentiable).

    The compiled batch function is cached per cell and settings, so repeated calls
    with new values (same shapes) do not recompile; inside a jitted loss it is
    traced into the caller's program. Delays given concretely size the spike ring and
    voltage history as ``dendrax.simulate`` does: for the longest delay of any member
    (compiled again when that grows past what was compiled, in whole steps); traced ones
    (inside a jitted loss) fit within the delays the network was built with, or that
    member's outputs are NaN, with a warning.
    """
    if "params" in simulate_kwargs or "progress" in simulate_kwargs:
        raise ValueError("simulate_batch takes the params as params_batch and has no progress bar")
    pieces = sorted({"chunk", "stream"} & set(simulate_kwargs))
    if pieces:
        raise ValueError(f"simulate_batch runs each member in one piece: it takes no {pieces} "
                         "(split a long batch run with dendrax.simulate per member instead)")
    if not isinstance(params_batch, dict):
        raise ValueError("params_batch must be a params pytree (a dict, complete or partial, "
                         "e.g. {'channels': {'hh': {'gnabar': [B, n]}}}), got "
                         f"{type(params_batch).__name__}")
    base = cell.params if base is None else base
    params = _merge(base, params_batch)
    # values given concretely are checked here, where an error can name them (inside the
    # compiled batch they are traced: a broken rule would only make that member NaN)
    model, _, layout = lower(cell)
    kept = [r for r in model.recordings if r.reduce is not None]
    if kept:
        raise ValueError(f"simulate_batch returns traces only, and {len(kept)} recording(s) "
                         f"are kept as statistics (reduce={kept[0].reduce!r}): record them as "
                         "traces, or jax.vmap dendrax.simulate (whose Result holds them)")
    if model.spike_records.size:
        warnings.warn("simulate_batch returns traces only: the recorded spikes are not in "
                      "its output (jax.vmap dendrax.simulate for a Result with them)",
                      UserWarning, stacklevel=2)
    check_finite(params)
    check_values(model, layout, params)
    if in_axes is None:
        in_axes, size = batch_axes(params, base)
    else:  # complete, or partial as params_batch (the leaves not given: None, shared)
        if isinstance(in_axes, dict):
            in_axes = _merge(jax.tree_util.tree_map(lambda _: None, params), in_axes,
                             what="in_axes")
        try:
            axes = jax.tree_util.tree_structure(params).flatten_up_to(in_axes)
        except (ValueError, TypeError):
            raise ValueError("in_axes must have the structure of the params pytree "
                             "(0 or None per leaf)") from None
        if any(a not in (0, None) for a in axes):
            raise ValueError("in_axes may hold only 0 (batched) and None (shared)")
        refs = jax.tree_util.tree_leaves(base)
        for (path, x), a, ref in zip(jax.tree_util.tree_leaves_with_path(params), axes, refs):
            shape, ref = np.shape(x), np.shape(ref)
            if shape != ((shape[:1] + ref) if a == 0 and len(shape) else ref):
                # a leaf marked 0 without a batch axis was batched over its own axis
                raise ValueError(f"params_batch{jax.tree_util.keystr(path)} has shape {shape}; "
                                 f"in_axes marks it {a}, so it must be "
                                 + (f"[B, {', '.join(map(str, ref))}]" if a == 0 else f"{ref}"))
        leaves = [np.shape(x)[0] for x, a in zip(jax.tree_util.tree_leaves(params), axes) if a == 0]
        if not leaves or len(set(leaves)) != 1:
            raise ValueError("in_axes must mark at least one leaf 0, all of one batch size")
        size = leaves[0]
    if size == 0:
        raise ValueError("params_batch holds 0 parameter sets (its batched leaves have a "
                         "leading axis of size 0): give at least one")
    devices = resolve_devices(devices)
    n_dev = len(devices)
    pad = -size % n_dev
    if pad:  # repeat the last set: every device gets an equal, valid share
        params = jax.tree_util.tree_map(
            lambda x, a: x if a is None else jnp.concatenate([x, jnp.repeat(x[-1:], pad, 0)]),
            params, in_axes, is_leaf=lambda a: a is None)
    resume = simulate_kwargs.pop("resume", None)  # every member goes on from its state
    if dt is None:
        dt = resume.meta.get("dt", 0.025) if isinstance(resume, Result) else 0.025
    longest = longest_delays(layout, params, float(dt))  # concrete delays, traced inside
    # values traced by the caller (a jitted or differentiated loss of v_init, celsius or a
    # PRNG key) are arguments of the compiled batch, concrete ones part of its cache key
    traced = {k: simulate_kwargs.pop(k) for k in list(simulate_kwargs)
              if isinstance(simulate_kwargs[k], jax.core.Tracer)}
    fn, specs, mesh = _compiled(cell, float(t_stop), float(dt), in_axes, tuple(devices),
                                simulate_kwargs, resume is not None, longest, tuple(sorted(traced)))
    if mesh is not None:
        params = jax.tree_util.tree_map(lambda x, s: jax.device_put(x, NamedSharding(mesh, s)),
                                        params, specs)
    out = fn(params, resume, traced)
    return out[:size] if pad else out


def _hashable(value):
    """``value`` as a cache key: an array (a PRNG key, a v_init per node) by its bytes."""
    if isinstance(value, (jax.Array, np.ndarray)):
        if jnp.issubdtype(value.dtype, jax.dtypes.prng_key):
            value = jax.random.key_data(value)
        value = np.asarray(value)
        return ("array", value.dtype.str, value.shape, value.tobytes())
    return value


# compiled batch functions per live cell, keyed by everything they bake in
_CACHE: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _compiled(cell, t_stop, dt, in_axes, devices, kwargs, resumed: bool, longest: dict,
              traced: tuple = ()):
    """The compiled batch function (and its sharding specs and mesh, None on one device),
    cached per cell and everything it bakes in; ``longest``: {synapse kind: ms} the buffers
    must hold beyond the delays built in (``dendrax.delays.longest_delays``); ``traced``:
    the names of simulate's keywords it takes as its third argument, a dict."""
    n_steps = timecourse.step_count(t_stop, dt) if dt > 0 and np.isfinite(t_stop / dt) else 0
    model, _, layout = lower(cell)
    with jax.ensure_compile_time_eval():  # concrete even when called inside a jitted loss
        drive = timecourse.drive(layout, n_steps, dt) if n_steps > 0 else {}
    digest = hashlib.sha1()  # what the batch bakes in besides the model: the drive, and
    # the extracellular tables (from the cells' positions and geometry when lowered)
    for leaf in jax.tree_util.tree_leaves((drive, layout.fields)):
        digest.update(np.asarray(leaf).tobytes())
    axes, treedef = jax.tree_util.tree_flatten(in_axes, is_leaf=lambda a: a is None)
    key = (model, digest.hexdigest(), t_stop, dt, treedef, tuple(axes), devices, resumed,
           tuple(sorted((k, _hashable(v)) for k, v in kwargs.items())),
           tuple(sorted(longest.items())), traced)
    per_cell = _CACHE.setdefault(cell, {})
    if key in per_cell:
        return per_cell[key]
    ref = weakref.ref(cell)  # the cache must not keep the cell alive

    def one(p, resume, given):  # the resumed Result is an argument (a pytree), shared by all
        with delays_up_to(longest):  # p's delays are traced here: size for the batch's
            return simulate(ref(), t_stop, dt, params=p, resume=resume, **kwargs,
                            **given).traces

    batched = jax.vmap(one, in_axes=(in_axes, None, None))
    if len(devices) == 1:
        entry = (jax.jit(batched), None, None)
    else:
        mesh = Mesh(np.asarray(devices), (AXIS,))
        specs = jax.tree_util.tree_map(lambda a: P() if a is None else P(AXIS), in_axes,
                                       is_leaf=lambda a: a is None)
        spmd = jax.shard_map(batched, mesh=mesh, in_specs=(specs, P(), P()), out_specs=P(AXIS),
                             check_vma=False)
        entry = (jax.jit(spmd), specs, mesh)
    if len(per_cell) >= 8:
        per_cell.pop(next(iter(per_cell)))
    per_cell[key] = entry
    return entry
