"""What a mechanism does, read by tracing its functions on placeholder arrays (no
computation): its currents' names, what its ``assigned`` records, which environment
entries it reads. Lowering, the step's currents and the checks at insertion ask these."""

from __future__ import annotations

import inspect
import weakref

import jax
import jax.numpy as jnp

from .base import Channel, IonPool, Synapse


def channel_currents(mech: Channel) -> dict[str, str]:
    """The currents a channel can record -> their keys in ``current``'s dict: "i<ion>" ->
    "<ion>" for each ion it carries, ``nonspecific`` -> "" (found by tracing ``current``
    once on abstract arrays, so it costs no computation)."""
    one, env = abstract_inputs(mech, 1)
    try:
        keys = shapes(mech.current, one, {k: one for k in mech.states},
                              {k: one for k in mech.params}, env).keys()
    except Exception:  # a current that needs more than the documented env: assume all ions
        keys = [*mech.ions, ""]
    return {(f"i{k}" if k else mech.nonspecific): k for k in keys}


def _owned(mech, method: str, *by: str):
    """``mech.<method>`` where the class defining it is (or derives from) each class that
    defines one of ``by`` (a subclass that rewrites those does not inherit what its parent
    computed with them); else None."""
    mro = type(mech).__mro__
    owner = next((k for k in mro if method in vars(k)), None)
    if owner is None:
        return None
    others = [next((k for k in mro if name in vars(k)), None) for name in by]
    return getattr(mech, method) if all(o is None or issubclass(owner, o) for o in others) \
        else None


def assigned_of(mech):
    """A channel's or event synapse's ``assigned`` where it belongs to its ``current``: defined
    by the class that defines ``current`` or by one derived from it (a subclass that
    rewrites ``current`` does not inherit what its parent's current computed); else None."""
    return _owned(mech, "assigned", "current") if isinstance(mech, (Channel, Synapse)) else None


def assigned_args(mech, one, env):
    args = (one, {k: one for k in mech.states}, {k: one for k in mech.params})
    return args + ((env,) if takes_environment(mech) else ())


_TAKES_ENV: "weakref.WeakKeyDictionary[type, bool]" = weakref.WeakKeyDictionary()
_TAKES_TIME: "weakref.WeakKeyDictionary[type, bool]" = weakref.WeakKeyDictionary()


def takes_environment(mech) -> bool:
    """Whether a mechanism's ``current`` (and ``assigned``) take its compartment's
    environment: a channel's always; an event synapse's where its ``current`` names a
    fourth parameter ``env``, ``current(v, states, params, env)`` (one that carries ions
    or reads celsius, diam or area). Only the name decides: a fourth parameter of
    another name (an option with a default) or ``*args`` keep the three-argument call."""
    if isinstance(mech, Channel):
        return True
    if not isinstance(mech, Synapse):
        return False
    cls = type(mech)
    if cls not in _TAKES_ENV:
        try:
            params = list(inspect.signature(cls.current).parameters.values())
        except (TypeError, ValueError):  # not introspectable: the documented 3 arguments
            params = []
        P = inspect.Parameter
        positional = [p.name for p in params if p.kind in (P.POSITIONAL_ONLY,
                                                            P.POSITIONAL_OR_KEYWORD)]
        _TAKES_ENV[cls] = positional[4:5] == ["env"]  # after self, v, states, params
    return _TAKES_ENV[cls]


def takes_event_time(mech) -> bool:
    """Whether a synapse's ``on_spike`` takes the event's time (ms) as a fourth parameter
    named t, ``on_spike(states, params, weight, t)`` (NEURON's t in NET_RECEIVE: the
    presynaptic spike's time plus the delay, a spike train's time plus the delay). Only
    the name decides, as for ``takes_environment``."""
    if not isinstance(mech, Synapse):
        return False
    cls = type(mech)
    if cls not in _TAKES_TIME:
        try:  # bound: without self (a staticmethod has none either)
            params = list(inspect.signature(mech.on_spike).parameters.values())
        except (TypeError, ValueError):
            params = []
        P = inspect.Parameter
        positional = [p.name for p in params if p.kind in (P.POSITIONAL_ONLY,
                                                            P.POSITIONAL_OR_KEYWORD)]
        _TAKES_TIME[cls] = positional[3:4] == ["t"]  # after states, params, weight
    return _TAKES_TIME[cls]


def synapse_ion_currents(mech) -> dict[str, str]:
    """The ion currents an event synapse can record -> their keys in ``current``'s dict:
    "i<ion>" -> "<ion>" (found by tracing ``current`` once on abstract arrays; {} where it
    returns one array)."""
    if not takes_environment(mech):
        return {}
    one, env = abstract_inputs(mech, 1)
    try:
        out = shapes(mech.current, one, {k: one for k in mech.states},
                             {k: one for k in mech.params}, env)
    except Exception:  # left to the run (validation names what it can)
        return {}
    return {f"i{k}": k for k in out if k} if isinstance(out, dict) else {}


def assigned_names(mech) -> tuple[str, ...]:
    """The names of what a mechanism's ``assigned`` returns (traced once per instance on
    abstract arrays; () where it has none)."""
    return _names(mech, "assigned", assigned_of,
                  lambda one, env: assigned_args(mech, one, env))


def _names(mech, what: str, of, args) -> tuple[str, ...]:
    """The keys of the dict ``of(mech)(*args(one, env))`` returns, traced on abstract
    arrays once per instance and ``what``; () where ``of(mech)`` is None."""
    cache = _NAMES.setdefault(mech, {})
    if what not in cache:
        fn = of(mech)
        one, env = abstract_inputs(mech, 1)
        cache[what] = () if fn is None else tuple(shapes(fn, *args(one, env)))
    return cache[what]


_NAMES: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def solved_of(mech):
    """A channel's or ion pool's ``solved`` (what its state update computes besides the
    states, e.g. an NMODL file's RANGE minf) where it belongs to its ``advance``: defined by
    the class that defines its kinetics (``advance``, ``rates``, ``alpha_beta``) or by one
    derived from it; else None."""
    if not isinstance(mech, (Channel, IonPool)):
        return None
    return _owned(mech, "solved", "advance", "rates", "alpha_beta")


def solved_names(mech) -> tuple[str, ...]:
    """The names of what a mechanism's ``solved`` returns (traced once per instance on
    abstract arrays; () where it has none)."""
    return _names(mech, "solved", solved_of, lambda one, env: (
        one, {k: one for k in mech.states}, {k: one for k in mech.params}, env,
        jax.ShapeDtypeStruct((), jnp.float32)))


def static_numbers(fn, *args):
    """(``call``, the abstract arrays among ``args``): ``call(*arrays)`` is ``fn(*args)``
    with those arrays put back, and every other leaf of ``args`` (the environment's
    ``secondorder``, a Python number) passed as it is, not traced: what ``jax.eval_shape``
    and ``jax.make_jaxpr`` of a mechanism's function take, as the run gives it."""
    leaves, tree = jax.tree_util.tree_flatten(args)
    where = [i for i, x in enumerate(leaves) if isinstance(x, jax.ShapeDtypeStruct)]

    def call(*arrays):
        full = list(leaves)
        for i, a in zip(where, arrays):
            full[i] = a
        return fn(*jax.tree_util.tree_unflatten(tree, full))

    return call, [leaves[i] for i in where]


def shapes(fn, *args):
    """``jax.eval_shape(fn, *args)``, the Python numbers among ``args`` passed as they are
    (``static_numbers``)."""
    call, arrays = static_numbers(fn, *args)
    return jax.eval_shape(call, *arrays)


def abstract_inputs(mech, n: int):
    """(an abstract [n] array of the run's dtype (JAX's default float), the documented
    environment of abstract arrays) for tracing a mechanism's functions with
    ``jax.eval_shape`` (no computation)."""
    dtype = jnp.result_type(float)
    one = jax.ShapeDtypeStruct((n,), dtype)
    return one, _environment(mech, one, jax.ShapeDtypeStruct((), dtype))


def _environment(mech, one, scalar) -> dict:
    """The documented environment of a mechanism, every entry ``one`` (per node) or
    ``scalar``."""
    return {"celsius": scalar, "dt": scalar, "secondorder": 0, "diam": one, "area": one,
            **{f"{k}{ion}{q}": one for ion in mech.ions for k, q in (("e", ""), ("", "i"),
                                                                     ("", "o"), ("i", ""))}}


class _ReadsEnv(dict):
    """An environment that notes which keys a mechanism reads."""

    def __init__(self, values, seen):
        super().__init__(values)
        self.seen = seen

    def __getitem__(self, key):
        self.seen.add(key)
        return super().__getitem__(key)

    def get(self, key, default=None):
        self.seen.add(key)
        return super().get(key, default)

    def __contains__(self, key):
        self.seen.add(key)
        return super().__contains__(key)

    def __iter__(self):
        self.seen.update(self.keys())
        return super().__iter__()

    def items(self):
        self.seen.update(self.keys())
        return super().items()


_ENV_READ: "weakref.WeakKeyDictionary[type, frozenset]" = weakref.WeakKeyDictionary()


def environment_read(mech) -> frozenset:
    """The keys of its environment a channel's, an ion pool's or an event synapse's
    functions read: ``current``, ``rates``, ``steady_state``, ``advance``, ``assigned``,
    ``solved`` (traced once per class on placeholder arrays: what a mechanism reads must
    not depend on its instance's settings)."""
    cls = type(mech)
    if cls in _ENV_READ:
        return _ENV_READ[cls]
    seen: set = set()
    one = jnp.ones(3, jnp.float32)
    values = _environment(mech, one, jnp.float32(0.025))
    params, states = {k: one for k in mech.params}, {k: one for k in mech.states}
    dt = jnp.float32(0.025)
    calls = [lambda env: mech.current(one, states, params, env),
             lambda env: mech.rates(one, params, env),
             lambda env: mech.steady_state(one, params, env),
             lambda env: mech.advance(one, states, params, env, dt)]
    if not takes_environment(mech):
        calls = calls[1:]
    if assigned_of(mech) is not None and takes_environment(mech):
        calls.append(lambda env: assigned_of(mech)(one, states, params, env))
    if solved_of(mech) is not None:
        calls += [lambda env: solved_of(mech)(one, states, params, env, dt),
                  lambda env: solved_of(mech)(one, states, params, env, None)]
    for call in calls if isinstance(mech, (Channel, IonPool, Synapse)) else ():
        try:
            jax.eval_shape(lambda: call(_ReadsEnv(values, seen)))
        except Exception:  # what the mechanism cannot do (a pool's current) or needs more
            pass
    _ENV_READ[cls] = out = frozenset(seen)
    return out


def concentrations_read(mech) -> frozenset:
    """The ions whose concentrations ("<ion>i", "<ion>o") a channel's (or event
    synapse's) ``current``, ``rates`` or ``advance`` reads from its environment, or an ion
    pool changes. NEURON
    computes such an ion's reversal potential from its concentrations (Nernst) wherever one
    is read, not only where a pool changes them."""
    seen = environment_read(mech)
    ions = {ion for ion in mech.ions if f"{ion}i" in seen or f"{ion}o" in seen}
    if isinstance(mech, IonPool):
        ions.add(mech.ion)
    return frozenset(ions)
