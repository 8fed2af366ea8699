"""Point populations of a network (NEST's neuron models and generators): creating them
and connecting them by NEST's rules (docs/point_neurons.md).

Units are NEST's: parameters in the model's own units (pA, pF, nS, mV, ms), weights in
the target model's ``weight_unit``; onto cells' synapses, NEURON's (uS).
"""

from __future__ import annotations

import numpy as np

from . import connection_rules as rules
from .cell import Location, synapse_mechanism, synapse_values
from .mechanisms.base import GradedSynapse
from .ranges import as_range, is_flag
from .names import check_name
from .point import Generator, SpikeGenerator, StaticSynapse, model as point_model
from .point.base import constraints
from .point.plasticity import PLASTIC
from .point.surrogate import as_surrogate
from .quantities import is_number, is_quantity, magnitude, real_array
from .wiring import Block, Neurons, PopulationSpec


class Population:
    """A population of point neurons (or generators) in a network: ``pop[i]``, ``pop[a:b]``,
    ``pop[[i, j]]`` select neurons (``Neurons``) for ``connect``, ``record`` and
    ``record_spikes``; the population itself stands for all of them."""

    def __init__(self, network, index: int):
        self.network, self.index = network, index

    @property
    def spec(self) -> PopulationSpec:
        return self.network.wiring.populations[self.index]

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def model(self):
        return self.spec.model

    def __len__(self) -> int:
        return self.spec.size

    def __getitem__(self, key) -> Neurons:
        how = (f"population {self.name!r} has neurons 0..{len(self) - 1}; select them by an "
               f"integer, a slice, a list of integers or a boolean mask, got {key!r}")
        if key is None or isinstance(key, (bool, np.bool_)):  # numpy: a new axis, a 0-d mask
            raise IndexError(how)
        try:
            ids = np.atleast_1d(np.arange(len(self))[key])
        except IndexError:
            raise IndexError(how) from None
        if ids.ndim != 1 or ids.size == 0:  # a slice beyond the population selected none
            raise IndexError(f"{how}: it selects {'no neurons' if ids.size == 0 else ids}")
        return Neurons(self.index, ids.astype(int), id(self.network.wiring.populations))

    @property
    def all(self) -> Neurons:
        return Neurons(self.index, np.arange(len(self)), id(self.network.wiring.populations))

    def __repr__(self):
        return f"Population({self.name!r}: {len(self)} {self.model.name})"


MAX_NEURONS = 10 ** 8


def _ndim(x) -> int:
    """Dimensions of an array-like (a list, range, numpy or JAX array); 1 for a ragged one."""
    try:
        return np.ndim(x)
    except ValueError:
        return 1


def population_spec(populations: list, model, n: int, name: str | None, spike_times,
                    surrogate, params: dict) -> PopulationSpec:
    """The checked description of a new population after ``populations`` (``Network.population``
    documents the arguments)."""
    mech = point_model(model)
    if surrogate is not None:
        if not hasattr(mech, "spike"):
            raise ValueError(f"{mech.name} is a generator: it has no spikes to differentiate")
        mech = type(mech)()  # this population's own instance
        mech.surrogate = as_surrogate(surrogate)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    if n > MAX_NEURONS:  # 2e7 took ~2 GB to build; 1e9 was killed for its memory
        raise ValueError(f"n = {n:.3g} neurons in one population: at most {MAX_NEURONS:.0e}")
    n = int(n)
    name = f"{mech.name}_{len(populations)}" if name is None else name
    check_name(name, "population")
    if any(p.name == name for p in populations):
        raise ValueError(f"a population named {name!r} exists already")
    unknown = set(params) - set(mech.params)
    if unknown:
        hint = ("; STDP's tau_minus (NEST's neuron parameter) is a parameter of the plastic "
                "connections here: connect(..., 'stdp_synapse', tau_minus=...)"
                if "tau_minus" in unknown and "tau_minus" in PLASTIC["stdp_synapse"].params
                else "")
        raise ValueError(f"{mech.name} has no parameters {sorted(unknown)}; its parameters: "
                         f"{sorted(mech.params)}{hint}")
    values = {}
    for k, default in mech.params.items():
        v = real_array(magnitude(params.get(k, default), mech.units.get(k, "1"),
                                 f"{mech.name}.{k}"), f"{mech.name}.{k}",
                       flag=is_flag(mech.ranges.get(k)))  # NEST's booleans: True -> 1
        if v.ndim and v.shape != (n,):
            got = f"{v.size} values" if v.ndim == 1 else f"an array of shape {v.shape}"
            raise ValueError(f"{mech.name}.{k}: got {got} for {n} neurons; give an array of "
                             f"shape ({n},) (one value per neuron) or one scalar")
        if np.any(np.isnan(v)) or (np.any(np.isinf(v)) and np.isfinite(default)):
            raise ValueError(f"{mech.name}.{k} must be finite, got {params.get(k)!r}")
        rng = mech.ranges.get(k)
        if rng is not None:
            as_range(rng).check(f"{mech.name}.{k}", v, mech.units.get(k, ""))
        values[k] = np.broadcast_to(v, (n,)).copy()
    _check_constraints(constraints(values), f"{mech.name} population {name!r}")
    trains = ()
    if isinstance(mech, SpikeGenerator):
        spike_times = magnitude(spike_times, "ms", "spike_times")
        if spike_times is not None and _ndim(spike_times) == 0:
            raise ValueError(f"spike_generator spike_times: give a list of times (ms), or one "
                             f"list per neuron, got {spike_times!r}")
        times = [] if spike_times is None else list(spike_times)
        if not times or _ndim(times[0]) == 0:  # one list (maybe empty) for every member
            times = [times] * n
        if len(times) != n:
            raise ValueError(f"spike_generator: give one list of spike times, or {n} lists")
        trains = tuple(real_array(t, "spike_generator spike_times").ravel() for t in times)
        for t in trains:
            if not np.all(np.isfinite(t)) or np.any(t <= 0):
                raise ValueError(f"spike_generator times must be finite and > 0 ms (NEST "
                                 f"refuses a spike at 0), got {t}")
            if np.any(np.diff(t) < 0):  # NEST: "Spike times must be sorted"
                raise ValueError(f"spike_generator times must be sorted in non-descending "
                                 f"order, as NEST requires, got {t}")
    elif spike_times is not None:
        raise ValueError(f"spike_times is for spike_generator, not {mech.name}")
    offset = sum(p.size for p in populations)
    return PopulationSpec(name, mech, n, offset, values, trains)


def neurons(populations: list, x) -> Neurons:
    """The neurons of a Population / Neurons ``x``, checked against its population."""
    if isinstance(x, Population):
        x = x.all
    if x.owner is not None and x.owner != id(populations):
        raise ValueError(f"population {x.population} of another network: use this network's "
                         "populations (the handles its population() returned)")
    pop = populations[x.population]
    ids = np.asarray(x.index, int).ravel()
    if ids.size and (ids.min() < 0 or ids.max() >= pop.size):
        raise IndexError(f"neurons of {pop.name!r} range over 0..{pop.size - 1}, got "
                         f"{ids.min()}..{ids.max()}")
    return Neurons(x.population, ids, x.owner)


def point_connections(populations: list, cell_of, pre, post, synapse, weight, delay,
                      threshold, params, rule, p, key) -> Block:
    """The block of connections with a point population at either end, by NEST's rule
    ``rule`` (``p``: its probability or indegree; ``key``: its PRNG key); ``cell_of(loc)``
    is the (checked) index of the cell a location is on. ``Network.connect`` documents the
    rest."""

    def ends(x):
        if isinstance(x, (Population, Neurons)):
            nrn = neurons(populations, x)
            return nrn, nrn.index.size
        if isinstance(x, Location):
            return x, 1
        if isinstance(x, (list, tuple)) and x and all(isinstance(v, Location) for v in x):
            return list(x), len(x)
        raise ValueError(f"connect takes populations, neurons (pop[i:j]) or locations on "
                         f"cells, got {x!r}")

    a, n_pre = ends(pre)
    b, n_post = ends(post)
    target_unit = None
    if isinstance(b, Neurons):  # quantities: converted to the target's weight unit, or refused
        target = populations[b.population].model
        target_unit = getattr(target, "weight_unit", "pA")
        weight = magnitude(weight, target_unit, "weight")
    delay = magnitude(delay, "ms", "delay")
    for k, v in (("weight", weight), ("delay", delay), *params.items()):  # "1e3", True:
        quantity = is_quantity(v) or (isinstance(v, (list, tuple))     # refused, not read
                                      and any(is_quantity(x) for x in v))
        if v is not None and not quantity:
            real_array(v, k)
    if rule == "pairwise_bernoulli":
        if not is_number(p) or not 0.0 <= p <= 1.0:
            raise ValueError(f"p must lie in [0, 1], got {p!r}")
        i, j = rules.pairwise_bernoulli(n_pre, n_post, p, key)
    elif rule == "fixed_indegree":
        i, j = rules.fixed_indegree(n_pre, n_post, p, key)
    else:
        i, j = getattr(rules, rule)(n_pre, n_post)
    offsets = [q.offset for q in populations]
    kw = {}
    if isinstance(a, Neurons):
        kw["pre_neuron"] = offsets[a.population] + a.index[i]
        pre_cell = pre_section = pre_x = thr = None
    else:
        locs = a if isinstance(a, list) else [a]
        cells = np.array([cell_of(loc) for loc in locs], int)[i]
        pre_cell, pre_section = cells, np.array([loc.section for loc in locs], int)[i]
        pre_x = np.array([loc.x for loc in locs], float)[i]
        thr = np.broadcast_to(real_array(magnitude(threshold, "mV", "threshold"), "threshold"),
                              (i.size,)).copy()
        if not np.all(np.isfinite(thr)):
            raise ValueError(f"threshold must be finite (mV), got {threshold!r}")
    source = populations[a.population].model if isinstance(a, Neurons) else None
    if isinstance(b, Neurons):
        if isinstance(populations[b.population].model, Generator):
            raise ValueError("a generator cannot be a connection's target")
        if isinstance(source, Generator) and source.name in ("dc_generator", "noise_generator") \
                and populations[b.population].model.name == "parrot_neuron":
            raise ValueError(f"a parrot_neuron relays spikes, and a {source.name} sends a "
                             "current (NEST's IllegalConnection): it would never fire")
        kw["post_neuron"] = offsets[b.population] + b.index[j]
        post_cell = post_section = post_x = None
        if synapse in ("static", "static_synapse", StaticSynapse):
            if params:
                raise ValueError(f"static connections take weight and delay only, got "
                                 f"{sorted(params)}")
            mech, name = StaticSynapse(), "static"
            values = {"weight": weight, "delay": delay}
        elif synapse in PLASTIC:
            mech = PLASTIC[synapse]()
            name = mech.name
            if weight is None:
                raise ValueError(f"{name} connections need a weight")
            unknown = set(params) - set(mech.params)
            if unknown:
                raise ValueError(f"{name} has no parameters {sorted(unknown)}; its "
                                 f"parameters: {sorted(mech.params)}")
            params = {k: magnitude(v, target_unit if k == "Wmax" else mech.units.get(k, ""),
                                   f"{name}.{k}") for k, v in params.items()}
            values = {**mech.params, **params, "weight": weight, "delay": delay}
            for k, v in values.items():
                if not np.all(np.isfinite(np.asarray(v, float))):
                    raise ValueError(f"{name}.{k} must be finite, got {v!r}")
            for k, v in params.items():
                if k in mech.ranges:
                    as_range(mech.ranges[k]).check(f"{name}.{k}", np.asarray(v, float),
                                                   mech.units.get(k, ""))
            _check_constraints(constraints({k: np.asarray(v, float) for k, v in values.items()}),
                               f"{name} connections")
            if isinstance(source, Generator):  # as NEST's IllegalConnection
                raise ValueError(f"{name} connections need neurons or cells as sources, not "
                                 f"a {source.name} (NEST's devices connect by static "
                                 "synapses only): relay it through a parrot_neuron")
        else:
            raise ValueError(f"connections onto point neurons use 'static' (NEST's "
                             f"static_synapse), 'stdp_synapse' or 'tsodyks2_synapse', got "
                             f"{synapse!r}")
    else:
        mech = synapse_mechanism(plastic_onto_cells_refused(synapse))
        name = mech.name
        if isinstance(mech, GradedSynapse):
            raise ValueError(f"{name} is a graded synapse: point neurons have no voltage "
                             "trace to drive it; use an event synapse (e.g. Exp2Syn)")
        locs = b if isinstance(b, list) else [b]
        post_cell = np.array([cell_of(loc) for loc in locs], int)[j]
        post_section = np.array([loc.section for loc in locs], int)[j]
        post_x = np.array([loc.x for loc in locs], float)[j]
        values = synapse_values(mech, params, weight=0.0, delay=1.0)
        weight = magnitude(weight, mech.units.get("weight", "uS"), "weight")
        values.update(weight=weight, delay=delay)
    if weight is None:
        raise ValueError(f"{name} connections need a weight")
    if isinstance(source, Generator) and source.name != "spike_generator" \
            and "post_neuron" not in kw:
        raise ValueError(f"a {source.name} drives point neurons only; drive cells with "
                         "spike_source / poisson_source, or iclamp")
    n = i.size
    try:
        values = {k: np.broadcast_to(np.asarray(v, float), (n,)).copy() for k, v in values.items()}
    except ValueError:
        raise ValueError(f"{name}: every parameter must be a scalar or have one value per "
                         f"connection ({n})") from None
    for k, v in values.items():
        if not np.all(np.isfinite(v)):
            raise ValueError(f"{name}.{k} must be finite")
    if np.any(values["delay"] < 0):
        raise ValueError(f"delay must be >= 0 ms, got {values['delay'].min()}")
    return Block(name, mech, False, pre_cell, pre_section, pre_x, None, thr, post_cell,
                 post_section, post_x, values, **kw)


def plastic_onto_cells_refused(synapse):
    """``synapse``, unless it names one of NEST's plastic connections (onto point neurons
    only): then a ValueError that says so."""
    if isinstance(synapse, str) and synapse in PLASTIC:
        raise ValueError(f"{synapse} connects onto point neurons only (NEST's synapse model); "
                         "onto a cell use a synapse mechanism such as Exp2Syn")
    return synapse


def _check_constraints(rules, what: str) -> None:
    for rule, bad in rules:
        if bad:
            raise ValueError(f"{what}: {rule}")
