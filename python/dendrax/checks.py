"""Which params a lowered model accepts: the pytree's structure (no misspelt, missing or
misshapen entry), finite values, and each value inside its valid range (a conductance
>= 0, cm > 0, a point neuron's V_reset < V_th, ...).

Concrete params that break a rule raise a ValueError naming the parameter. Traced params
(inside ``jit``, ``grad`` or ``vmap``) cannot raise: the checks return boolean scalars,
True where a rule is broken, and ``refuse_invalid`` makes the run's outputs NaN rather
than a finite, wrong answer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp
import numpy as np

from .ranges import NONNEGATIVE, POSITIVE, as_range
from .model import Model
from .names import value_range
from .point.base import constraints

if TYPE_CHECKING:
    from .layout import Layout


def conform(params, base: dict, path: str = "params"):
    """``params`` checked against ``base`` (the target's own params, ``lower(target).params``),
    with every leaf an array of its base leaf's shape: a number, or an array that broadcasts
    by leading axes alone, is broadcast (an axis of size 1 is never stretched over several
    entries); a list becomes an array, whole numbers become floats.

    A ValueError names the entry where ``params`` is not a pytree like ``base``: a key
    ``base`` lacks (a misspelt parameter is never silently ignored), a missing key, a leaf
    whose shape does not broadcast to base's leaf's, or one that is not real numbers (None,
    text, booleans, complex numbers, ragged lists)."""
    if not isinstance(base, dict):
        return _conform_leaf(params, base, path)
    if not isinstance(params, dict):
        what = ("like the target's params (dx.lower(target).params)" if path == "params"
                else f"with entries {sorted(base, key=str)}")
        raise ValueError(f"{path} must be a dict {what}, got {type(params).__name__}")
    unknown = sorted(set(params) - set(base), key=str)
    if unknown:
        raise ValueError(f"{path} has no entries {unknown}; valid: {sorted(base, key=str)}")
    missing = sorted(set(base) - set(params), key=str)
    if missing:
        raise ValueError(f"{path} lacks {missing}: pass the whole params pytree (start from "
                         "the target's .params and change what you vary)")
    return {k: conform(params[k], ref, f"{path}[{k!r}]") for k, ref in base.items()}


def _conform_leaf(x, ref, path: str):
    want = np.shape(ref)
    shaped = f"an array of shape {want} (or one that broadcasts to it)"
    expected = f"expected real numbers, {shaped}"
    if isinstance(x, dict) or x is None or isinstance(x, (str, bytes)):
        raise ValueError(f"{path} {'has a dict' if isinstance(x, dict) else f'is {x!r}'}; "
                         f"{expected}")
    traced = isinstance(x, jax.Array)
    if not traced:
        try:
            x = np.asarray(x)
        except ValueError:  # a ragged list
            raise ValueError(f"{path} is a ragged list; {expected}") from None
    floating = jnp.issubdtype(x.dtype, jnp.floating)  # bfloat16 and float8s too
    if x.dtype.kind not in "iu" and not floating:
        raise ValueError(f"{path} has dtype {x.dtype}; {expected}")
    if x.dtype.kind in "iu":
        x = x.astype(np.asarray(ref).dtype)
    run = jnp.result_type(float)  # JAX's default float: what the run computes in
    if x.dtype.itemsize > 8:  # float128: JAX takes float64 at most
        raise ValueError(f"{path} is {x.dtype}, which JAX cannot take (float64 at most): give "
                         f"{np.dtype(run)} numbers (np.asarray(x, np.{np.dtype(run)}))")
    if x.dtype.itemsize < np.dtype(run).itemsize:
        raise ValueError(
            f"{path} is {x.dtype}, but this run computes in {np.dtype(run)} (jax_enable_x64 "
            f"{'on' if run == jnp.float64 else 'off'}): it would take the whole run down to "
            f"{x.dtype}. Cast the params first (jax.tree.map(lambda a: a.astype(jnp.{np.dtype(run)}), "
            f"params)){', or run in float32 (README: Precision)' if x.dtype == np.float32 else ''}")
    shape = np.shape(x)
    if _broadcast_shape(shape, want) != want:
        raise ValueError(f"{path} has shape {shape}; expected {shaped}")
    stretched = [k for k, (a, b) in enumerate(zip(shape[::-1], want[::-1])) if a == 1 and b != 1]
    if stretched:  # one value where the target has several: stale params, most likely
        raise ValueError(f"{path} has shape {shape} where the target has {want}: an axis of "
                         "size 1 is not stretched over several entries (params from before "
                         "a clamp, synapse or node was added? start from the target's "
                         "current .params); give a number for one value everywhere")
    if shape != want:
        x = jnp.broadcast_to(x, want) if traced else np.broadcast_to(x, want)
    return x


def _broadcast_shape(shape, want):
    try:
        return np.broadcast_shapes(shape, want)
    except ValueError:
        return None


def valid_range(model: Model, path: tuple):
    """(Range or None, unit) of the params leaf at ``path`` (e.g. ("cable", "cm"),
    ("channels", "hh", "gnabar")): what ``check_values`` holds it to."""
    if path[0] in ("cable", "ions"):
        return value_range(path[1])
    mechs = {p.mech.name: p.mech for p in (*model.channels, *model.synapses, *model.graded,
                                            *model.plastic)}
    if path[0] in ("channels", "synapses") and path[1] in mechs:
        return value_range(path[2], mechs[path[1]])
    return None, ""


def check_values(model: Model, layout: Layout, params: dict) -> list:
    """A ValueError naming the first parameter outside its valid range (cm <= 0, a negative
    conductance, a negative delay, a point neuron's V_reset above V_th, ...).

    Traced leaves (inside jit, grad or vmap) cannot raise: for them it returns [boolean
    scalar: the rule is broken], which ``simulate`` turns into NaN outputs instead of a
    silently wrong run.
    """
    stimuli = {("iclamp", "dur"): (NONNEGATIVE, "ms"), ("vclamp", "dur"): (NONNEGATIVE, "ms"),
               ("vclamp", "rs"): (POSITIVE, "MOhm")}
    traced = []

    def check(label, leaf, rng_unit):
        rng, unit = rng_unit
        if rng is None:
            return
        if isinstance(leaf, jax.core.Tracer):
            traced.append(rng.violated(leaf))
        else:
            rng.check(label, np.asarray(leaf), unit)

    for kind in ("cable", "ions"):
        for k, leaf in params.get(kind, {}).items():
            check(k, leaf, valid_range(model, (kind, k)))
    for kind in ("channels", "synapses"):
        for name, table in params.get(kind, {}).items():
            for k, leaf in table.items():
                check(f"{name}.{k}", leaf, valid_range(model, (kind, name, k)))
    for (stim, k), rng_unit in stimuli.items():
        leaf = params.get("stimuli", {}).get(stim, {}).get(k)
        if leaf is not None:
            check(f"{stim} {k}", leaf, rng_unit)
    for pop in layout.populations:
        values, mech = params["populations"][pop.name], pop.model
        for k, leaf in values.items():
            rng = mech.ranges.get(k)
            check(f"{pop.name}.{k}", leaf, (None if rng is None else as_range(rng),
                                            mech.units.get(k, "")))
            with np.errstate(over="ignore"):  # -DBL_MAX (NEST's izhikevich V_min) too
                unbounded = not np.isfinite(np.float32(mech.params.get(k, np.inf)))
            if unbounded:
                continue  # NEST's unbounded defaults (V_min = -inf, stop = inf) may stay so
            if isinstance(leaf, jax.core.Tracer):  # check_finite lets NEST's inf through
                traced.append(jnp.any(jnp.isinf(leaf)))
            elif np.any(np.isinf(np.asarray(leaf))):
                given = np.asarray(pop.values.get(k, np.inf), float)  # as created
                if not jax.config.jax_enable_x64 and np.all(np.isfinite(given)) \
                        and np.any(np.abs(given) > F32_MAX):
                    raise ValueError(
                        f"{pop.name}.{k} = {given.flat[np.argmax(np.abs(given))]:g} is beyond "
                        f"float32 (|x| <= {F32_MAX:.4g}), the precision dendrax runs in "
                        "while jax_enable_x64 is off")
                raise ValueError(f"{pop.name}.{k} must be finite ({mech.name}'s {k} has a "
                                 f"finite default, {mech.params[k]:g}), got inf")
        for rule, bad in constraints(values):
            if isinstance(bad, jax.core.Tracer):
                traced.append(bad)
            elif bad:
                raise ValueError(f"population {pop.name!r} ({mech.name}): {rule}")
    for name in layout.plastic:
        for rule, bad in constraints(params["synapses"][name]):
            if isinstance(bad, jax.core.Tracer):
                traced.append(bad)
            elif bad:
                raise ValueError(f"{name} connections: {rule}")
    return traced


def check_finite(params, given=None) -> list:
    """A ValueError for a parameter with non-finite values; for traced leaves (which cannot
    raise) [boolean scalar: non-finite], as ``check_values``. ``given`` (``beyond_float32``'s
    function: params path -> the value given, or None) names a connection's value that the
    float32 lowering turned into inf, as beyond float32 rather than non-finite."""
    traced = []
    for path, leaf in jax.tree_util.tree_leaves_with_path(params):
        name = f"parameter {jax.tree_util.keystr(path)}"
        nest = getattr(path[0], "key", None) == "populations"  # NEST's bounds may be
        if isinstance(leaf, jax.core.Tracer):                  # infinite (V_min = -inf,
            bad = jnp.isnan(leaf) if nest else ~jnp.isfinite(leaf)  # stop = inf)
            traced.append(jnp.any(bad))
            continue
        value = np.asarray(leaf)
        if nest:
            value = np.where(np.isinf(value), 0.0, value)
        if not np.all(np.isfinite(value)):
            wide = None if given is None else given(tuple(getattr(k, "key", k) for k in path))
            if wide is not None:
                raise ValueError(_beyond_float32(f"{name} = {wide:g} is"))
            raise ValueError(f"{name} has non-finite values")
        if not jax.config.jax_enable_x64 and np.any(np.abs(value) > F32_MAX):
            raise ValueError(_beyond_float32(f"{name} has values"))
    return traced


def beyond_float32(wiring, path: tuple):
    """The first value of a network's connections (``wiring.blocks``: weights, delays,
    synapse parameters) at params ``path`` ("synapses", kind, name) that is finite but beyond
    float32 (lowering, in float32 while jax_enable_x64 is off, made it inf); None where there
    is none (or in float64)."""
    if jax.config.jax_enable_x64 or wiring is None or len(path) != 3 or path[0] != "synapses":
        return None
    for block in getattr(wiring, "blocks", ()):
        if path[1] not in (block.synapse, getattr(block.mech, "name", None)):
            continue
        arr = np.asarray(block.values.get(path[2], 0.0), float)
        wide = np.isfinite(arr) & (np.abs(arr) > F32_MAX)
        if np.any(wide):
            return float(arr[wide].flat[0])
    return None


def _beyond_float32(what: str) -> str:
    return (f"{what} beyond float32 (|x| <= {F32_MAX:.4g}), the precision dendrax runs in "
            "while jax_enable_x64 is off")


F32_MAX = float(np.finfo(np.float32).max)


def refuse_invalid(out, invalid: list):
    """``out`` (a pytree of results) with its float leaves, and gradients through them, NaN
    where a traced parameter broke its rule (``invalid``: boolean scalars from the checks,
    True where broken): a traced call (jit, grad, vmap) cannot raise, but its answer must
    not look valid. The same call outside jit raises the error that names the parameter."""
    if not invalid:
        return out
    bad = jnp.any(jnp.stack([jnp.asarray(b) for b in invalid]))
    # a product, not a select, so that gradients through the outputs are NaN too (a
    # select's would be zero); valid outputs are multiplied by 1.0, the same bits
    nan_if_bad = jnp.where(bad, jnp.nan, 1.0)
    return jax.tree_util.tree_map(
        lambda a: a * nan_if_bad.astype(a.dtype) if jnp.issubdtype(a.dtype, jnp.floating)
        else a, out)

