"""The point-neuron API: what a NEST-style model must say.

A point neuron has no morphology: its states (one entry per neuron, arrays [n]) advance by
one explicit update per time step, as NEST's grid-based models do (``update`` in NEST's
C++), and it spikes at the end of a step: the spike time is t + dt, on the grid. Input
arrives as the summed weights of the spikes due in the step, split by sign as NEST splits
them (excitatory: w > 0, inhibitory: w < 0), and a current (pA) from current generators.

Units are NEST's for NEST-named models: mV, ms, pF, pA, nS (weights: pA for current-based
synapses, nS for conductance-based ones).
"""

from __future__ import annotations

import weakref
from typing import Any, ClassVar, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from ..ranges import as_range

Array = Any


class PointNeuron:
    """A point-neuron model.

    Attributes:
        name: the model's name (NEST's, e.g. "iaf_psc_alpha").
        params: parameter name -> default, NEST's names and units (including the initial
            membrane potential "V_m" where NEST has one).
        units: parameter or state name -> unit.
        ranges: parameter name -> valid values (``dendrax.mechanisms.base.Range`` or a pair).
        states: the state names, in NEST's names where NEST records them ("V_m", "I_syn_ex",
            ...); refractory counters are states too.
        recordables: the states a multimeter can record (default: all of ``states``).
        weight_unit: the unit of weights onto it: "pA" (current-based), "nS"
            (conductance-based), "mV" (voltage jumps), or "1": a spike counter, whose input
            "ex" is the number of spikes that reach it in the step, whatever the
            connections' weights (NEST's parrot_neuron ignores them).
        spike_count: for a model that can fire more than once within one step (NEST's
            aeif_cond_exp with t_ref = 0, which sends one spike event per firing), the state
            that holds how many times each neuron fired in the step (a whole number >= 1
            where ``update``'s flag is set); the network then delivers and records every one
            of them (the weight times the count, the spike time repeated). None (the
            default): at most one spike per step.
    """

    name: ClassVar[str]
    params: ClassVar[dict[str, float]] = {}
    units: ClassVar[dict[str, str]] = {}
    ranges: ClassVar[dict] = {}
    states: ClassVar[tuple[str, ...]] = ()
    surrogate = None  # a dendrax.point.surrogate.Surrogate (set per population) or None
    weight_unit: ClassVar[str] = "pA"  # what a connection's weight onto it is in
    spike_count: ClassVar[str | None] = None  # the state counting a step's spikes, if several

    def spike(self, x):
        """Threshold crossing, x = V - threshold (mV): a bool array, or with the
        population's surrogate a 0/1 float array carrying the surrogate gradient. Models
        call this for their threshold so that ``surrogate=`` makes them trainable."""
        from .surrogate import spike

        return spike(x, self.surrogate)

    @property
    def recordables(self) -> tuple[str, ...]:
        return self.states

    def initial(self, params: Mapping[str, Array], dt) -> dict[str, Array]:
        """The states at t = 0 ([n] each), as NEST's after Create (e.g. V_m = params["V_m"])."""
        raise NotImplementedError

    def update(self, states: Mapping[str, Array], params: Mapping[str, Array],
               inputs: Mapping[str, Array], dt) -> tuple[dict[str, Array], Array]:
        """One step from t to t + dt, in NEST's order of operations.

        Args:
            states, params: [n] arrays.
            inputs: "ex": [n] summed weights > 0 of the spikes read in this step (NEST's
                ring-buffer slot of this step), "in": [n] summed weights < 0 (negative),
                "current": [n] pA, the current read in this step (NEST's ``y0`` / ``I_stim``
                buffer, which most models apply from the next step on, as NEST does).
            dt: the step, ms.

        Returns:
            (new states, spiked [n] bool): whether each neuron crossed threshold in this
            step (spike time t + dt).
        """
        raise NotImplementedError


def constraints(values: Mapping) -> list:
    """NEST's rules between the parameters of a point model, generator or plastic synapse
    (its set_status refuses values that break them): [(rule, violated)] for the rules
    whose parameters ``values`` has; violated is a bool, or a boolean scalar for traced
    values.

    V_reset < V_th (aeif's V_reset < V_peak and V_peak >= V_th instead), start <= stop
    (generators), weight and Wmax of one sign (STDP).
    """
    import jax.numpy as jnp

    rules = []

    def rule(text, ok):
        rules.append((text, ~jnp.all(ok)))

    v = values
    if "V_reset" in v and "V_peak" in v:
        rule("V_reset < V_peak required", v["V_reset"] < v["V_peak"])
        if "V_th" in v:
            rule("V_peak >= V_th required", v["V_peak"] >= v["V_th"])
    elif "V_reset" in v and "V_th" in v:
        rule("V_reset < V_th required (the reset potential must be below threshold)",
             v["V_reset"] < v["V_th"])
    if {"Delta_T", "V_peak", "V_th"} <= set(v):  # NEST's aeif models: exp() at the peak
        dt_ = v["Delta_T"]
        rule("(V_peak - V_th) / Delta_T < log(DBL_MAX / 1e20) = 664.4 required (the "
             "exponential current at V_peak overflows)",
             (dt_ <= 0) | ((v["V_peak"] - v["V_th"]) / jnp.where(dt_ > 0, dt_, 1.0)
                           < _AEIF_EXP_LIMIT))
    if "start" in v and "stop" in v:
        rule("stop >= start required", v["stop"] >= v["start"])
    if "Wmax" in v and "weight" in v:
        rule("weight and Wmax must have the same sign",
             (v["weight"] >= 0) == (v["Wmax"] >= 0))
    return [(text, bad if _traced(bad) else bool(bad)) for text, bad in rules]


_AEIF_EXP_LIMIT = float(np.log(np.finfo(np.float64).max / 1e20))  # NEST's aeif models


def _traced(x) -> bool:
    import jax

    return isinstance(x, jax.core.Tracer)


def check_point_model(model) -> None:
    """A ValueError naming what a point-neuron model (a plugin's, say) declares or returns
    that the loop cannot use: its name, params (name -> number; +-inf allowed, NaN not),
    states, ranges and units naming unknown entries, recordables that are not states, and
    (on abstract arrays: no computation) ``initial`` and ``update`` not giving one [n]
    array per state and an [n] spike flag."""
    cls = type(model)
    if cls in _CHECKED:
        return
    label = f"point model {cls.__name__}"
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"{label}: name must be an identifier, got {name!r}")
    params, states = cls.params, cls.states
    if not isinstance(params, dict) or not all(isinstance(k, str) for k in params):
        raise ValueError(f"{label}: params must be a dict name -> default value")
    for k, d in params.items():
        if isinstance(d, (str, bytes, bool)) or np.ndim(d) or np.isnan(np.asarray(d, float)):
            raise ValueError(f"{label}: params[{k!r}] must be a number (the default), got {d!r}")
    if not isinstance(states, (tuple, list)) or not all(isinstance(k, str) for k in states):
        raise ValueError(f"{label}: states must be a tuple of names")
    for what, known in (("ranges", set(params)), ("units", set(params) | set(states))):
        unknown = sorted(set(getattr(cls, what, {})) - known)
        if unknown:
            raise ValueError(f"{label}: {what} names {unknown}, which are not its "
                             f"{'parameters' if what == 'ranges' else 'parameters or states'}")
    for k, r in getattr(cls, "ranges", {}).items():
        try:
            as_range(r)
        except (TypeError, ValueError):
            raise ValueError(f"{label}: ranges[{k!r}] must be a Range or a (low, high) pair, "
                             f"got {r!r}") from None
    count = getattr(cls, "spike_count", None)
    if count is not None and count not in states:
        raise ValueError(f"{label}: spike_count must name one of its states {list(states)} (the "
                         f"one counting a step's spikes) or be None, got {count!r}")
    extra = sorted(set(model.recordables) - set(states))
    if extra:
        raise ValueError(f"{label}: recordables {extra} are not states {list(states)}")
    n = jax.ShapeDtypeStruct((3,), jnp.float32)
    p = {k: n for k in params}
    dt = jax.ShapeDtypeStruct((), jnp.float32)
    try:
        init = jax.eval_shape(model.initial, p, dt)
        new, spiked = jax.eval_shape(model.update, init, p,
                                     {"ex": n, "in": n, "current": n}, dt)
    except Exception:
        _CHECKED.add(cls)
        return  # what fails on abstract inputs is left to the run
    for what, out in (("initial", init), ("update", new)):
        if not isinstance(out, dict) or set(out) != set(states):
            got = sorted(out) if isinstance(out, dict) else type(out).__name__
            raise ValueError(f"{label}: {what} must give its states {sorted(states)}, got {got}")
        for k, x in out.items():
            if getattr(x, "shape", None) not in ((3,), ()):
                raise ValueError(f"{label}: {what}()[{k!r}] must have one value per neuron "
                                 f"(shape [n]), got shape {getattr(x, 'shape', None)}")
            if not jnp.issubdtype(x.dtype, jnp.floating):
                raise ValueError(f"{label}: {what}()[{k!r}] must be floating point (the "
                                 f"parameters' dtype), got {x.dtype}")
    if getattr(spiked, "shape", None) not in ((3,), ()):
        raise ValueError(f"{label}: update must return (states, spiked [n]), got spiked "
                         f"{spiked!r}")
    if getattr(model, "surrogate", None) is None and spiked.dtype != jnp.bool_:
        raise ValueError(f"{label}: update's spiked must be booleans (whether each neuron "
                         f"fired: v >= threshold, or self.spike(v - threshold)), got "
                         f"{spiked.dtype}")
    _CHECKED.add(cls)


_CHECKED: "weakref.WeakSet[type]" = weakref.WeakSet()  # tracing costs ms: once per class
