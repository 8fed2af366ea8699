"""What a run keeps of each step: the recorded quantities gathered from what a step
exposes (one gather per array they come from), and the running max, min and sum of the
recordings kept as statistics."""

from __future__ import annotations

from functools import lru_cache

import jax.numpy as jnp
import numpy as np

from .model import Model


@lru_cache(maxsize=64)
def record_plan(recordings: tuple, reduced: bool):
    """The traces (or, with ``reduced``, the statistics) grouped by the array they read (one
    gather each), and the permutation back to the order they were added:
    ((source, indices), ...), order."""
    groups: dict[tuple, list] = {}
    rows = [r for r in recordings if (r.reduce is not None) == reduced]
    for i, r in enumerate(rows):
        groups.setdefault(r.source, []).append((i, r.local))
    plan = tuple((key, np.asarray([k for _, k in items], np.int32)) for key, items in groups.items())
    order = np.argsort([i for items in groups.values() for i, _ in items]).astype(np.int32)
    return plan, order


def recorded(model: Model, obs: dict, reduced: bool = False):
    """The recorded quantities [R] (traces, or with ``reduced`` the quantities kept as
    statistics) from what a step exposes (``obs``), one gather per array they come from."""
    plan, order = record_plan(model.recordings, reduced)  # (not the model: kept by the cache)
    if not plan:
        return jnp.zeros(0, obs["v"].dtype)
    pieces = []
    for (kind, j, key), index in plan:
        source = obs[kind]
        if isinstance(source, tuple):
            source = source[j]
        if isinstance(source, dict):
            source = source[key]
        pieces.append(jnp.broadcast_to(source, obs["v"].shape)[index] if source.ndim == 0
                      else source[index])
    out = pieces[0] if len(pieces) == 1 else jnp.concatenate(pieces)
    return out if np.array_equal(order, np.arange(order.size)) else out[order]


def accumulate(model: Model, stats: dict, obs: dict) -> dict:
    """Running max, min and sum of the recordings kept as statistics."""
    if not stats:
        return stats
    x = recorded(model, obs, reduced=True)
    return {"max": jnp.maximum(stats["max"], x), "min": jnp.minimum(stats["min"], x),
            "sum": stats["sum"] + x}


def statistics(model: Model, stats: dict, n_steps: int):
    """[n_stats] the requested statistic of each recording kept as one, after n_steps."""
    how = [r.reduce for r in model.recordings if r.reduce is not None]
    if not how:
        return jnp.zeros(0)
    code = np.asarray([("max", "min", "mean").index(h) for h in how])
    return jnp.where(code == 0, stats["max"],
                     jnp.where(code == 1, stats["min"], stats["sum"] / (n_steps + 1)))
