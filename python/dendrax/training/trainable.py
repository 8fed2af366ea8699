"""Which parameters to train, how they are shared, and in which space.

``Trainables(cell)`` (or ``Trainables(network)``) collects parameters to fit. Each ``add`` names a parameter
(anything ``Cell.set`` takes, plus synapse parameters such as
"Exp2Syn.weight" or "IonotropicSynapse.gS", plus "radius", half of "diam"), where it is trained, how its
entries are shared, and a transform to an unconstrained free space. The result
is a small pytree ``theta = {label: array [n_groups]}`` of free values for an
optimizer; ``apply(theta)`` writes them into the cell's full params pytree (pure
JAX: differentiable and jit-able), ready for ``dendrax.simulate(params=...)``.

Sharing (``share=``) groups the entries a parameter occupies in the params
pytree (``Cell.param_slots``); each group is one trained value written to all
its entries:

* "cell": one value for all entries;
* "region": one per region (soma, axon, dend, apic, ...);
* "section": one per section;
* "segment": every entry on its own: one per segment (node) for density
  parameters and cm, per section for Ra and L, per 3-D point for diam, per
  synapse for synapse parameters;
* a list of ``where`` selections (e.g. ``["soma", ["dend", "apic"]]``): one value
  per item.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from ..cell import Location, SectionRef
from ..checks import valid_range
from ..lowering import lower
from ..stdrun import random_key
from .transforms import Transform, as_transform

SHARES = ("cell", "region", "section", "segment")


@dataclass(frozen=True)
class _Entry:
    label: str
    name: str
    path: tuple
    index: np.ndarray  # [k] entries of the leaf
    group: np.ndarray  # [k] group of each entry
    groups: tuple  # names of the groups
    transform: Transform
    factor: float  # leaf value = factor * trained value ("radius": 2)
    shape: tuple  # the leaf's, when added: its entries are numbered for that layout


def _where_text(where) -> str:
    if isinstance(where, SectionRef):
        return f"sec{where.index}"
    if isinstance(where, Location):
        return f"sec{where.section}({where.x:g})"
    if isinstance(where, (list, tuple)):
        return "+".join(_where_text(w) for w in where)
    return str(where)


def _get(tree, path):
    for k in path:
        tree = tree[k]
    return tree


def _copy_dicts(tree):
    """A copy of the nested dicts (leaves shared), so leaves can be replaced without touching the original."""
    return {k: _copy_dicts(v) if isinstance(v, dict) else v for k, v in tree.items()}


class Trainables:
    """Parameters of ``cell`` to train, with sharing and transforms.

    Example::

        tr = Trainables(cell)
        tr.add("hh.gnabar", share="region", transform=Sigmoid(0.05, 0.3))
        tr.add("cm", transform=Softplus())
        theta = tr.init()                 # {"hh.gnabar": [n_regions], "cm": [1]}, free space
        params = tr.apply(theta)          # the cell's params with those entries replaced
    """

    def __init__(self, cell):
        if not hasattr(cell, "param_slots"):
            raise TypeError(f"Trainables takes the Cell or Network whose parameters it trains "
                            f"(it finds their entries there), got {type(cell).__name__}")
        self.cell = cell  # a Cell or a Network (anything with params and param_slots)
        self._entries: list[_Entry] = []

    # --- declaring --------------------------------------------------------
    def add(self, name: str, where=None, *, share="cell", transform=None, label: str | None = None
            ) -> "Trainables":
        """Train parameter ``name`` at ``where`` (default everywhere it exists).

        Args:
            name: "cm", "Ra", "diam", "radius" (diam / 2), "L", an ion parameter
                ("ena", ...), "<mech>.<param>" (e.g. "hh.gnabar") or
                "<Synapse>.<param>" (e.g. "Exp2Syn.weight").
            where: a region, section index, SectionRef, Location or a list of them.
            share: "cell", "region", "section", "segment", or a list of ``where``
                selections, one trained value per item (see the module docstring).
            transform: a ``Transform`` from free to constrained space (default
                identity); a (lower, upper) pair means ``Sigmoid(lower, upper)``.
            label: the key in ``theta`` (default ``name``, or ``name@where``).

        Returns:
            self, so calls chain.
        """
        cell = self.cell
        if not isinstance(name, str):
            raise TypeError(f"the parameter's name must be a string such as 'hh.gnabar', "
                            f"'cm' or 'Exp2Syn.weight', got {name!r}")
        factor = 1.0
        leaf_name = name
        if isinstance(name, str) and name.rpartition(".")[2] == "delay":
            raise ValueError(f"{name}: a delay acts in whole steps of dt, so its gradient is 0 "
                             "and training it would never move it; search it outside the "
                             "gradient (one run per candidate delay)")
        if name == "radius":
            leaf_name, factor = "diam", 2.0
        slots = cell.param_slots(leaf_name, where)
        if slots.index.size == 0:
            raise ValueError(f"{name} has no entries at {where!r}")
        if slots.path[0] == "ions":
            _check_ion_read(name, lower(cell).model, slots.index)
        index, section = np.asarray(slots.index), np.asarray(slots.section)
        if isinstance(share, str):
            if share not in SHARES:
                raise ValueError(f"share must be one of {SHARES} or a list of where selections, "
                                 f"got {share!r}")
            if share == "cell":
                group, groups = np.zeros(index.size, int), ("cell",)
            elif share == "region":
                names, group = np.unique(np.asarray(slots.region, str), return_inverse=True)
                groups = tuple(str(r) for r in names)
            elif share == "section":
                secs, group = np.unique(section, return_inverse=True)
                groups = tuple(f"sec{s}" for s in secs)
            else:
                kind = {"node": "node", "section": "sec", "point": "point",
                        "synapse": "syn"}[slots.kind]
                ids = slots.node if kind == "node" else (section if kind == "sec" else index)
                group = np.arange(index.size)
                groups = tuple(f"{kind}{i}" for i in ids)
        else:
            items = list(share) if isinstance(share, (list, tuple)) else None
            if not items:
                raise ValueError(f"share must be one of {SHARES} or a non-empty list of where "
                                 f"selections, got {share!r}")
            group = np.full(index.size, -1)
            for g, w in enumerate(items):
                member = np.isin(index, cell.param_slots(leaf_name, w).index)
                if not member.any():
                    raise ValueError(f"share group {w!r} holds no entries of {name} at {where!r}")
                if (group[member] >= 0).any():
                    raise ValueError(f"share groups overlap: {w!r} repeats entries of an earlier group")
                group[member] = g
            if (group < 0).any():  # they were left untrained under a label naming them all
                left = sorted(set(np.asarray(slots.region, str)[group < 0].tolist()))
                raise ValueError(f"share groups {[_where_text(w) for w in items]} cover only part "
                                 f"of {name} at {where!r}: its entries in {left} are in no group; "
                                 "add a group for them, or select only what the groups cover "
                                 "with where=")
            groups = tuple(_where_text(w) for w in items)
        if label is not None and (not isinstance(label, str) or not label):
            raise ValueError(f"label must be a non-empty string, got {label!r}")
        label = label or (name if where is None else f"{name}@{_where_text(where)}")
        if any(e.label == label for e in self._entries):
            raise ValueError(f"label {label!r} is already used; pass label= to add {name} again")
        for e in self._entries:
            if e.path == slots.path and np.intersect1d(e.index, index).size:
                raise ValueError(f"{name} at {where!r} overlaps entries already trained as {e.label!r}")
        transform = as_transform(transform)
        _check_bounds(name, transform, *valid_range(lower(cell).model, slots.path), factor)
        shape = tuple(np.shape(_get(cell.params, slots.path)))
        self._entries.append(_Entry(label, name, slots.path, index, np.asarray(group, int),
                                    groups, transform, factor, shape))
        return self

    # --- inspecting -------------------------------------------------------
    @property
    def labels(self) -> list[str]:
        return [e.label for e in self._entries]

    def groups(self, label: str) -> tuple:
        """Names of the groups (the entries of ``theta[label]``), e.g. ("apic", "dend", "soma")."""
        return self._entry(label).groups

    def transform(self, label: str) -> Transform:
        return self._entry(label).transform

    def _entry(self, label):
        for e in self._entries:
            if e.label == label:
                return e
        raise KeyError(f"no trainable labelled {label!r}; labels: {self.labels}")

    def __len__(self):
        return len(self._entries)

    def __repr__(self):
        rows = [f"  {e.label}: {len(e.groups)} value(s) over {e.index.size} entries of "
                f"{'/'.join(e.path)}, {e.transform!r}" for e in self._entries]
        return "Trainables(\n" + "\n".join(rows) + "\n)"

    # --- free space <-> params --------------------------------------------
    def init(self, base: dict | None = None) -> dict:
        """theta (free space) from the current values (``base``, default ``cell.params``);
        the mean where a group's entries differ."""
        base = self.cell.params if base is None else base
        return {e.label: self._init_entry(e, base) for e in self._entries}

    def _leaf(self, e: _Entry, params: dict):
        """The leaf of ``e`` in ``params``, or a ValueError where its layout is not the one
        ``e``'s entries were numbered for (a mechanism inserted since, another cell's
        params): they would land on other compartments."""
        leaf = _get(params, e.path)
        if tuple(np.shape(leaf)) != e.shape:
            raise ValueError(f"{e.label}: {'/'.join(e.path)} has shape {tuple(np.shape(leaf))}, "
                             f"but it had shape {e.shape} when it was added (the cell changed "
                             "since, e.g. a mechanism inserted, or these params are another "
                             "model's): its entries would land elsewhere; make the Trainables "
                             "again")
        return leaf

    def _init_entry(self, e: _Entry, base: dict):
        leaf = np.asarray(self._leaf(e, base), float)[e.index] / e.factor
        value = np.bincount(e.group, leaf, len(e.groups)) / np.bincount(e.group, None, len(e.groups))
        free = np.asarray(e.transform.inverse(jnp.asarray(value)))
        bad = ~np.isfinite(free)
        if bad.any():
            lo, hi = e.transform.bounds
            raise ValueError(f"{e.label}: initial value {value[bad][0]:g} lies outside the open "
                             f"interval ({lo:g}, {hi:g}) of {e.transform!r}")
        return jnp.asarray(free)

    def sample(self, key, *, margin: float = 0.0, base: dict | None = None) -> dict:
        """A random theta: uniform in the constrained bounds of each bounded transform (shrunk by
        ``margin``, a fraction of the width, at each end); other labels start at ``init``.
        ``key``: a JAX PRNG key or an int seed."""
        if not 0.0 <= margin < 0.5:
            raise ValueError(f"margin must lie in [0, 0.5), got {margin}")
        key = random_key(key)
        theta = {}
        keys = jax.random.split(key, max(len(self._entries), 1))
        for k, e in zip(keys, self._entries):
            if not e.transform.bounded:
                theta[e.label] = self._init_entry(e, self.cell.params if base is None else base)
                continue
            lo, hi = e.transform.bounds
            lo, hi = lo + margin * (hi - lo), hi - margin * (hi - lo)
            u = jax.random.uniform(k, (len(e.groups),), float, lo, hi)
            theta[e.label] = e.transform.inverse(u)
        return theta

    def from_values(self, values: dict, base: dict | None = None) -> dict:
        """theta (free space) from constrained values {label: scalar or [n_groups]}; labels
        left out start at ``init``. The inverse of ``values``."""
        theta = self.init(base) if set(values) != set(self.labels) else {}
        for label, v in values.items():
            e = self._entry(label)
            v = jnp.asarray(v, float)
            if v.ndim > 1 or (v.ndim == 1 and v.shape[0] != len(e.groups)):
                raise ValueError(f"{label}: got values of shape {v.shape} for its "
                                 f"{len(e.groups)} groups {list(e.groups)}: give one per group "
                                 f"(shape ({len(e.groups)},)), or one scalar")
            v = jnp.broadcast_to(v, (len(e.groups),))
            free = e.transform.inverse(v)
            if not bool(jnp.all(jnp.isfinite(free))):
                lo, hi = e.transform.bounds
                raise ValueError(f"{label}: values {np.asarray(v)} must lie inside ({lo:g}, {hi:g})")
            theta[label] = free
        return theta

    def values(self, theta: dict) -> dict:
        """Constrained values {label: array [n_groups]} (differentiable)."""
        _check_labels(theta, self.labels)
        return {e.label: _constrained(e, theta[e.label]) for e in self._entries}

    def table(self, theta: dict) -> dict:
        """{label: {group name: constrained value}} as plain floats (for printing and JSON)."""
        vals = self.values(theta)
        return {e.label: {g: float(v) for g, v in zip(e.groups, np.asarray(vals[e.label]))}
                for e in self._entries}

    def apply(self, theta: dict, base: dict | None = None) -> dict:
        """The full params pytree (``base``, default ``cell.params``) with the trained entries
        replaced by the constrained values of ``theta``. Pure JAX: jit and grad through it."""
        _check_labels(theta, self.labels)
        params = _copy_dicts(self.cell.params if base is None else base)
        for e in self._entries:
            leaf = jnp.asarray(self._leaf(e, params))
            value = e.factor * _constrained(e, theta[e.label], leaf.dtype)
            node = params
            for k in e.path[:-1]:
                node = node[k]
            node[e.path[-1]] = leaf.at[e.index].set(value[e.group].astype(leaf.dtype))
        return params


def _check_labels(theta, labels) -> None:
    """A TypeError or KeyError unless ``theta`` is a dict of exactly these labels (a
    misspelt label would leave its parameter untrained, silently)."""
    if not isinstance(theta, dict):
        raise TypeError(f"theta must be a dict label -> array (from init or sample), got "
                        f"{type(theta).__name__}")
    missing = [label for label in labels if label not in theta]
    if missing:
        raise KeyError(f"theta lacks {missing}; expected labels {labels}")
    unknown = sorted(set(theta) - set(labels), key=str)
    if unknown:
        raise KeyError(f"theta has labels {unknown} that are not trained; trained: {labels}")


def _constrained(e: _Entry, raw, dtype=None):
    """The constrained values [n_groups] of ``raw`` (free space; whole numbers are taken as
    floats), or a ValueError naming ``e.label`` where it is not real numbers of that shape."""
    raw = jnp.asarray(raw)
    if not jnp.issubdtype(raw.dtype, jnp.floating):
        if not jnp.issubdtype(raw.dtype, jnp.integer):
            raise ValueError(f"theta[{e.label!r}] must be real numbers, got dtype {raw.dtype}")
        raw = raw.astype(dtype or jnp.result_type(float))
    if raw.shape != (len(e.groups),):
        raise ValueError(f"theta[{e.label!r}] must have shape ({len(e.groups)},), one value per "
                         f"group {list(e.groups)}, got {raw.shape}; vmap over batches of theta")
    return e.transform.forward(raw)


def _check_ion_read(name: str, model, nodes) -> None:
    """A ValueError where the ion parameter ``name`` ("ena", "cao", "cai0", ...) is read at
    none of its ``nodes`` (entries of the per-node leaf, in the solver's order): its gradient
    would be 0 and a fit would never move it. An ion's reversal potential is the parameter
    where no mechanism reads the ion's concentrations; elsewhere it follows Nernst, from the
    concentrations (docs/cells.md)."""
    from ..currents import nernst_nodes
    from ..names import ion_quantity

    ion = ion_quantity(name.removesuffix("0"))
    if ion is None:
        return
    if ion not in model.ions:
        raise ValueError(f"{name} has no effect: no mechanism of the model uses {ion} (its "
                         f"ions: {list(model.ions)})")
    where = nernst_nodes(model, ion)
    nernst = np.ones(len(nodes), bool) if where is None else (
        np.zeros(len(nodes), bool) if where is False else np.asarray(where)[nodes])
    if name == f"e{ion}" and nernst.all():
        raise ValueError(f"{name} has no effect here: {ion}'s reversal potential follows Nernst "
                         f"from its concentrations (a mechanism reads or changes them): train "
                         f"{ion}o or {ion}i0 instead")
    if name != f"e{ion}" and not nernst.any():
        raise ValueError(f"{name} has no effect here: no mechanism reads {ion}'s "
                         f"concentrations, so its reversal potential is the parameter e{ion}: "
                         f"train e{ion} instead")


def _check_bounds(name, transform, rng, unit, factor) -> None:
    """A ValueError where a finite bound of ``transform`` lets the parameter leave its
    valid range (e.g. bounds (-1, -0.5) for a conductance >= 0): every value it could
    fit would be refused. An unbounded side (the identity's) is not checked."""
    if rng is None:
        return
    lo, hi = (b * factor for b in transform.bounds)  # values in the leaf's terms (radius: diam)
    below = np.isfinite(lo) and lo < rng.low
    above = np.isfinite(hi) and hi > rng.high
    outside = hi <= rng.low or lo >= rng.high  # (open bounds) e.g. (-inf, 0) for gl >= 0
    if below or above or outside:
        raise ValueError(f"{name} must be {rng}{' ' + unit if unit else ''}, but {transform!r} "
                         f"spans ({transform.bounds[0]:g}, {transform.bounds[1]:g}): choose "
                         "bounds inside the valid range")
