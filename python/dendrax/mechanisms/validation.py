"""Checking a mechanism when it is inserted: what it must define, its tables (params,
states, ranges, units) and, traced once per class on placeholder arrays, that its
functions return what the loop can use. A broken plugin gets a ValueError naming the
problem here, not an error deep inside a run."""

from __future__ import annotations

import inspect
import weakref

import jax
import jax.numpy as jnp
import numpy as np

from ..ranges import as_range
from .base import Channel, GradedSynapse, IonPool, Mechanism, Synapse
from .introspect import (abstract_inputs, assigned_args, assigned_names, assigned_of,
                         channel_currents, solved_names, solved_of, static_numbers,
                         synapse_ion_currents, takes_environment, takes_event_time)
from .ions import IONS


REQUIRED = {Channel: ("name", "current"), IonPool: ("name", "ion", "advance"),
            Synapse: ("name", "current", "on_spike"), GradedSynapse: ("name", "current")}


def check_mechanism(obj, kind: type) -> Mechanism:
    """An instance of ``obj`` (class or instance), or a ValueError naming what is missing."""
    cls = obj if isinstance(obj, type) else type(obj)
    if not (isinstance(cls, type) and issubclass(cls, kind)):
        raise ValueError(f"{obj!r} is not a dendrax {kind.__name__} subclass")
    missing = [m for m in REQUIRED[kind] if not hasattr(cls, m)
               or (m in ("current", "on_spike") and getattr(cls, m) is getattr(kind, m, None))
               or (m == "advance" and kind is IonPool and cls.advance is Mechanism.advance)]
    if missing:
        raise ValueError(f"{kind.__name__} {cls.__name__} does not define {', '.join(missing)}")
    for what in ("params", "states"):
        table = getattr(cls, what)
        if not isinstance(table, dict) or not all(isinstance(k, str) for k in table):
            raise ValueError(f"{cls.__name__}.{what} must be a dict name -> default value")
    bad_ions = [i for i in cls.ions if i not in IONS]
    if bad_ions:
        raise ValueError(f"{cls.__name__} uses unknown ions {bad_ions}; known: {sorted(IONS)}")
    for k, default in cls.params.items():
        if isinstance(default, (str, bytes, bool)) or not np.isscalar(default) and \
                np.ndim(default) != 0 or not np.isfinite(np.asarray(default, float)):
            raise ValueError(f"{cls.__name__}.params[{k!r}] must be a finite number (the "
                             f"default), got {default!r}")
    for k, default in (cls.states.items() if isinstance(cls.states, dict) else ()):
        if isinstance(default, (str, bytes, bool)) or default is None or \
                np.ndim(default) != 0 or not np.isfinite(np.asarray(default, float)):
            raise ValueError(f"{cls.__name__}.states[{k!r}] must be a finite number (its "
                             f"default), got {default!r}")
    # a typo in ranges or units would leave a parameter unchecked or unlabelled, silently
    for what, known in (("ranges", cls.params), ("units", {**cls.params, **cls.states})):
        unknown = sorted(set(getattr(cls, what, {})) - set(known))
        computed = ()  # what it assigns or its state update computes, for its units
        if unknown and what == "units" and kind in (Channel, Synapse, IonPool):
            computed = _traced_assigned(obj) + _traced_solved(obj)
            unknown = sorted(set(unknown) - set(computed))
        if unknown:
            if what == "units":
                # an assigned or solved that fails to trace: its own error, not this one
                inst = obj() if isinstance(obj, type) else obj
                if kind in (Channel, Synapse):
                    _check_assigned(inst, set(), "node" if kind is Channel else "synapse")
                if kind in (Channel, IonPool):
                    _check_solved(inst)
                known = {**known, **dict.fromkeys(computed)}
            raise ValueError(f"{cls.__name__}.{what} names {unknown}, which are not its "
                             f"{'parameters' if what == 'ranges' else 'parameters, states, assigned or solved values'}: "
                             f"{sorted(known)}")
    for k, r in getattr(cls, "ranges", {}).items():
        try:
            rng = as_range(r)
        except (TypeError, ValueError):
            rng = None
        if rng is None or np.isnan(rng.low) or np.isnan(rng.high) or rng.low > rng.high:
            raise ValueError(f"{cls.__name__}.ranges[{k!r}] must be a Range or a (low, high) "
                             f"pair with low <= high (None: unbounded), got {r!r}")
    for k, u in getattr(cls, "units", {}).items():
        if not isinstance(u, str):
            raise ValueError(f"{cls.__name__}.units[{k!r}] must be a string, got {u!r}")
    if kind is IonPool:
        ion = getattr(cls, "ion", None)
        if ion not in IONS or f"{ion}i" not in cls.states:
            raise ValueError(f"IonPool {cls.__name__}: ion must be one of {sorted(IONS)} and "
                             f"its state '<ion>i' (e.g. 'cai'), got ion={ion!r}, states "
                             f"{sorted(cls.states)}")
        if ion not in getattr(cls, "ions", ()):
            raise ValueError(f"IonPool {cls.__name__}: its ion {ion!r} must be in its ions "
                             f"(ions = ({ion!r},)): that is how it reads i{ion} and {ion}i, got "
                             f"ions={getattr(cls, 'ions', ())!r}")
    mech = obj() if isinstance(obj, type) else obj
    if cls not in _OUTPUTS_CHECKED:  # tracing takes ~5 ms a mechanism: once per class
        if kind is Channel:
            _check_outputs(mech)
        if kind in (Channel, IonPool, Synapse):
            _check_kinetics(mech)
        if kind in (Channel, IonPool):
            _check_solved(mech)
        if kind is Synapse:
            _check_spike(mech)
        _OUTPUTS_CHECKED.add(cls)
    return mech


_OUTPUTS_CHECKED: "weakref.WeakSet[type]" = weakref.WeakSet()


def _traced(label: str, mech, fn, *args, env=()):
    """``jax.eval_shape(fn, *args)``, or None where tracing on the documented inputs fails
    (left to the run), but a ValueError where ``fn`` reads a name it is not given (a state,
    parameter or environment entry it does not declare: a bare KeyError at run time)."""
    call, arrays = static_numbers(fn, *args)
    try:
        closed, out = jax.make_jaxpr(call, return_shape=True)(*arrays)
    except KeyError as err:
        key = err.args[0] if err.args else None
        if not isinstance(key, str):
            return None
        raise ValueError(f"{label} reads {key!r}, which it is not given: its states "
                         f"{sorted(mech.states)}, parameters {sorted(mech.params)} and "
                         f"environment {sorted(env)} (declare it; an ion's e<ion>, <ion>i, "
                         "<ion>o need the ion in ions)") from None
    except Exception:
        return None
    _refuse_reduced(label, closed.jaxpr, out)
    return out


def _refuse_reduced(label: str, jaxpr, out) -> None:
    """A ValueError where an output of ``jaxpr`` (traced on [n] arrays per node or synapse
    and scalars such as celsius and dt; ``out``: its output shapes) is a scalar that depends
    on an [n] input: a sum, a mean or one element, which the loop would give every node. A
    scalar that depends on scalars alone (a temperature factor) is broadcast, as meant."""
    per_node = [getattr(v.aval, "ndim", 0) == 1 for v in jaxpr.invars]
    leaves = jax.tree_util.tree_flatten_with_path(out)[0]
    for (path, _), v, dep in zip(leaves, jaxpr.outvars, _dependence(jaxpr, per_node)):
        if dep and v.aval.ndim == 0:
            raise ValueError(f"{label}{jax.tree_util.keystr(path)} is one number computed from "
                             "the per-node (or per-synapse) inputs, e.g. a sum, a mean or one "
                             "element: it must keep one value per node or synapse (shape "
                             "[n]); the loop would give that number to every one")


def _dependence(jaxpr, given: list) -> list:
    """Which outputs of ``jaxpr`` depend on the inputs flagged in ``given``, looking into the
    jaxprs of nested calls (a ``jax.jit`` helper, ``custom_jvp``, ``checkpoint``) and of
    ``lax.cond``'s branches; loops (scan, while) and other primitives with jaxprs count
    every output as depending on every input (a refusal of such an output names it, and it
    is rare in a mechanism)."""
    from jax.extend.core import ClosedJaxpr, Jaxpr, Literal

    dep = {v for v, d in zip(jaxpr.invars, given) if d}
    for eqn in jaxpr.eqns:
        ins = [not isinstance(v, Literal) and v in dep for v in eqn.invars]
        if not any(ins):
            continue
        subs = [j.jaxpr if isinstance(j, ClosedJaxpr) else j for j in eqn.params.values()
                if isinstance(j, (ClosedJaxpr, Jaxpr))]
        branches = eqn.params.get("branches")
        if eqn.primitive.name in ("scan", "while"):  # carries feed back: every output
            outs = [True] * len(eqn.outvars)
        elif branches and not ins[0]:  # lax.cond: an index, then each branch's operands
            outs = [any(col) for col in zip(*(_dependence(b.jaxpr, ins[1:]) for b in branches))]
        elif len(subs) == 1 and len(subs[0].invars) == len(ins) \
                and len(subs[0].outvars) == len(eqn.outvars):
            outs = _dependence(subs[0], ins)
        else:
            outs = [True] * len(eqn.outvars)
        dep.update(v for v, d in zip(eqn.outvars, outs) if d)
    return [not isinstance(v, Literal) and v in dep for v in jaxpr.outvars]


def _check_kinetics(mech) -> None:
    """A ValueError where ``rates`` does not give (steady state, time constant) pairs, or
    ``advance`` or a synapse's ``current`` returns what the loop cannot carry (checked on
    abstract arrays: no computation; what needs more than the documented environment is
    left to the run)."""
    name = type(mech).__name__
    one, env = abstract_inputs(mech, 3)
    params, states = {k: one for k in mech.params}, {k: one for k in mech.states}
    if isinstance(mech, Synapse):  # the run gives a synapse its connection's values too
        params = {**params, "weight": one, "delay": one}
    env = {**env, **({f"i{mech.ion}": one} if isinstance(mech, IonPool) else {})}
    if isinstance(mech, Mechanism) and mech._has_alpha_beta():
        ab = _traced(f"{name}.alpha_beta", mech, mech.alpha_beta, one, params, env, env=env)
        _tuples(f"{name}.alpha_beta", ab, "a triple (alpha, beta in 1/ms, temperature factor q)")
    rates = _traced(f"{name}.rates", mech, mech.rates, one, params, env, env=env)
    for k, pair in _tuples(f"{name}.rates", rates, "a pair (steady state, time constant in ms)"):
        for x in pair:
            _one_each(f"{name}.rates[{k!r}]", x, "node")
    for order in (0, 2):  # backward Euler's and Crank-Nicolson's (env["secondorder"])
        label = f"{name}.advance" + (" (Crank-Nicolson, env['secondorder'] 2)" if order else "")
        out = _traced(label, mech, mech.advance, one, states, params, {**env, "secondorder": order},
                      jax.ShapeDtypeStruct((), one.dtype), env=env)
        if out is not None:
            _states_out(label, out, mech.states, "node")
    out = _traced(f"{name}.steady_state", mech, mech.steady_state, one, params, env, env=env)
    if out is not None:  # a number of scalars alone starts every node at it
        _states_out(f"{name}.steady_state", out, mech.states, "node", carried=False)
    if isinstance(mech, Synapse):
        with_env = (env,) if takes_environment(mech) else ()
        cur = _traced(f"{name}.current", mech, mech.current, one, states, params, *with_env,
                      env=env if with_env else {})
        if cur is None:
            return
        if with_env and isinstance(cur, dict):  # a synapse carrying ions
            bad = sorted(set(cur) - set(mech.ions) - {""})
            if bad:
                raise ValueError(f"{name}.current returns currents of {bad}, which it does not "
                                 f"declare: ions = {tuple(mech.ions)} ('' is its nonspecific "
                                 "current)")
        for k, x in (cur.items() if with_env and isinstance(cur, dict) else [(None, cur)]):
            label = f"{name}.current" + ("" if k is None else f"[{k!r}]")
            if not hasattr(x, "dtype") or not jnp.issubdtype(x.dtype, jnp.floating):
                raise ValueError(f"{label} must return " + (
                    "one float array (nA, [n]), or, taking env, a dict {ion: nA, '': nA}"
                    if k is None else "a float array (nA, [n])") + f", got {type(x).__name__}")
            _one_each(label, x, "synapse")


def _tuples(label: str, out, what: str) -> list:
    """The (state, tuple) items of ``out`` (an abstract ``{state: tuple}``, or None where
    tracing was left to the run); a ValueError where a value is not ``what`` ("a pair
    (...)" or "a triple (...)": its length from the word)."""
    n = {"pair": 2, "triple": 3}[what.split()[1]]
    items = list(out.items()) if isinstance(out, dict) else []
    for k, value in items:
        if not (isinstance(value, (tuple, list)) and len(value) == n):
            got = (f"{len(value)} values" if isinstance(value, (tuple, list))
                   else type(value).__name__)
            raise ValueError(f"{label}[{k!r}] must be {what}, got {got}")
    return items


def _check_spike(mech) -> None:
    """A ValueError where a synapse's ``on_spike`` does not return its states, each one
    value per synapse (checked on abstract arrays: no computation)."""
    name = type(mech).__name__
    timed = takes_event_time(mech)
    try:
        given = list(inspect.signature(mech.on_spike).parameters.values())
    except (TypeError, ValueError):
        given = []
    P = inspect.Parameter
    sends = bool(getattr(mech, "self_events", 0))  # and flag (net_send's self-events)
    needed = [p.name for p in given[3 + timed + sends:] if p.default is P.empty
              and p.kind not in (P.VAR_POSITIONAL, P.VAR_KEYWORD)]
    if needed:
        raise ValueError(f"{name}.on_spike needs {needed[0]!r}, which dendrax does not give: "
                         "it calls on_spike(states, params, weight) or, where the fourth "
                         "positional parameter is named t, on_spike(states, params, weight, "
                         f"t) (each event's time, ms): make {needed[0]} that parameter t, or "
                         "give it a default")
    if sends:
        queue = [f"net_send_{what}{k}" for k in range(int(mech.self_events))
                 for what in ("t", "flag")] + ["net_send_lost"]
        missing = [k for k in queue if k not in mech.states]
        if missing or not timed:
            raise ValueError(f"{name}.self_events = {mech.self_events}: its states must hold the "
                             "pending self-events (net_send_t<k>: ms, +inf when free; "
                             "net_send_flag<k>; net_send_lost) and on_spike take (states, "
                             f"params, weight, t, flag)" + (f"; missing {missing}" if missing
                                                            else ""))
    one, _ = abstract_inputs(mech, 3)
    extra = (one,) * (timed + sends)  # the event's time (and flag)
    try:
        out = jax.eval_shape(mech.on_spike, {k: one for k in mech.states},
                             {k: one for k in mech.params}, one, *extra)
    except Exception:
        out = None  # what fails on abstract inputs is left to the run
    if out is not None:
        _states_out(f"{name}.on_spike", out, mech.states, "synapse")
    _check_assigned(mech, {"i", *synapse_ion_currents(mech)}, "synapse")


def _states_out(label: str, out, states, each: str, carried: bool = True) -> None:
    """A ValueError unless the abstract output ``out`` is a dict of exactly ``states``, each
    a float array of one value per ``each``."""
    if not isinstance(out, dict) or set(out) != set(states):
        got = sorted(out) if isinstance(out, dict) else type(out).__name__
        raise ValueError(f"{label} must return a dict of its states {sorted(states)}, got {got}")
    for k, x in out.items():
        _one_each(f"{label}[{k!r}]", x, each)
        if carried and getattr(x, "shape", None) == ():  # carried from step to step
            raise ValueError(f"{label}[{k!r}] must have one value per {each} (shape [n]), got "
                             "one number")
        _run_dtype(f"{label}[{k!r}]", x)


def _run_dtype(label: str, x) -> None:
    """A ValueError unless the abstract output ``x`` is a float array of the run's dtype
    (that of the inputs it was traced on): a float32 state would break the float64 loop, a
    float16 current lose precision silently."""
    run = jnp.result_type(float)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise ValueError(f"{label} must be a float array, got {x.dtype}")
    if x.dtype != run:
        raise ValueError(f"{label} is {x.dtype}, but the run computes in {np.dtype(run)} (its "
                         "inputs' dtype): compute it from the inputs, without casting")


def _one_each(label: str, x, each: str) -> None:
    """A ValueError unless the abstract output x of a function traced on [3] arrays
    (``_abstract_inputs``) has one value per node or synapse (or is a scalar)."""
    if getattr(x, "shape", None) not in ((3,), ()):
        raise ValueError(f"{label} must have one value per {each} (shape [n]), got shape "
                         f"{getattr(x, 'shape', None)}")


def _check_outputs(mech) -> None:
    """A ValueError where a channel's ``rates`` name a state it does not declare (it would
    be dropped), or its ``current`` returns what the loop cannot use: not a dict, a current
    of an ion it does not declare, or not one value per node (checked on abstract arrays:
    no computation). What needs more than the documented environment is left to the run."""
    name = type(mech).__name__
    one, env = abstract_inputs(mech, 3)
    rates = _traced(f"{name}.rates", mech, mech.rates, one, {k: one for k in mech.params}, env,
                    env=env) or {}
    if isinstance(rates, dict) and set(rates) - set(mech.states):
        raise ValueError(f"{name}'s rates give {sorted(set(rates) - set(mech.states))}, which are "
                         f"not its states {sorted(mech.states)}: declare them in states")
    out = _traced(f"{name}.current", mech, mech.current, one, {k: one for k in mech.states},
                  {k: one for k in mech.params}, env, env=env)
    if out is None:
        return
    if not isinstance(out, dict):
        raise ValueError(f"{name}.current must return a dict {{ion: current, '': the "
                         f"nonspecific current}}, got {type(out).__name__}")
    bad = sorted(set(out) - set(mech.ions) - {""})
    if bad:
        raise ValueError(f"{name}.current returns currents of {bad}, which it does not declare: "
                         f"ions = {tuple(mech.ions)} ('' is its nonspecific current)")
    for k, x in out.items():
        _one_each(f"{name}.current[{k!r}]", x, "node")
        _run_dtype(f"{name}.current[{k!r}]", x)
    _check_assigned(mech, set(channel_currents(mech)), "node")


def _check_assigned(mech, currents: set, each: str) -> None:
    """A ValueError unless a mechanism's ``assigned`` (where it has one) returns a dict of
    new names (identifiers; not its parameters, states or currents) -> one float per
    ``each`` (or a scalar), on abstract arrays; a failing trace is named here, not left to
    a run that records something else."""
    fn = assigned_of(mech)
    if fn is not None:
        one, env = abstract_inputs(mech, 3)
        _check_extra(mech, "assigned", fn, assigned_args(mech, one, env), currents, each)


def _check_solved(mech) -> None:
    """As ``_check_assigned``, for a channel's or ion pool's ``solved`` (whose names must
    differ from its assigned values' too)."""
    fn = solved_of(mech)
    if fn is not None:
        one, env = abstract_inputs(mech, 3)
        currents = set(channel_currents(mech)) if isinstance(mech, Channel) else set()
        args = (one, {k: one for k in mech.states}, {k: one for k in mech.params}, env)
        taken = currents | set(assigned_names(mech))
        _check_extra(mech, "solved", fn, args + (jax.ShapeDtypeStruct((), one.dtype),),
                     taken, "node")
        # at t = 0 (dt None): the values initialization leaves
        _check_extra(mech, "solved (at t = 0, dt=None)", fn, args + (None,), taken, "node")


def _check_extra(mech, label: str, fn, args, taken: set, each: str) -> None:
    """``fn(*args)`` (traced) is a dict of new identifiers -> one float per ``each``."""
    name = type(mech).__name__
    call, arrays = static_numbers(fn, *args)
    try:
        closed, extra = jax.make_jaxpr(call, return_shape=True)(*arrays)
    except Exception as err:
        raise ValueError(f"{name}.{label} fails on arrays of the documented inputs: "
                         f"{type(err).__name__}: {err}") from None
    _refuse_reduced(f"{name}.{label}", closed.jaxpr, extra)
    if not isinstance(extra, dict) or not all(isinstance(k, str) and k.isidentifier()
                                              for k in extra):
        raise ValueError(f"{name}.{label} must return a dict name -> array (names that are "
                         f"Python identifiers), got {extra!r:.200}")
    clash = sorted(set(extra) & (set(mech.states) | set(mech.params) | taken))
    if clash:
        what = "states, currents or assigned values" if label == "solved" else \
            "states or currents"
        raise ValueError(f"{name}.{label} names {clash}, which are already its parameters, "
                         f"{what}: give them names of their own")
    for k, x in extra.items():
        _one_each(f"{name}.{label}[{k!r}]", x, each)
        if not jnp.issubdtype(x.dtype, jnp.floating):
            raise ValueError(f"{name}.{label}[{k!r}] must be a float array, got {x.dtype}")


def _traced_solved(obj) -> tuple:
    """The names a mechanism's ``solved`` returns; () where it has none or tracing fails
    (``_check_solved`` then names the problem)."""
    try:
        return solved_names(obj() if isinstance(obj, type) else obj)
    except Exception:
        return ()


def _traced_assigned(obj) -> tuple:
    """The names a mechanism class's (or instance's) ``assigned`` returns; () where tracing
    fails (``_check_assigned`` then names the problem)."""
    try:
        return assigned_names(obj() if isinstance(obj, type) else obj)
    except Exception:
        return ()
