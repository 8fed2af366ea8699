"""The mechanism API: what a channel, an ion pool or a synapse must say.

A mechanism is a small class. It declares its parameters (with defaults), its
states, the ions it touches, and pure functions of JAX arrays. The simulator
derives everything else: the conductance the implicit voltage step needs is the
derivative of ``current`` with respect to ``v`` (by autodiff), and states
advance by exponential Euler from ``rates`` (or from opening and closing rates,
``alpha_beta``) unless ``advance`` is overridden.

Every function receives arrays over the compartments where the mechanism is
inserted, shape [n]:

    v       membrane potential, mV
    states  dict state name -> array
    params  dict parameter name -> array (the mechanism's own, unprefixed)
    env     dict of what the compartment provides, read-only: "celsius" (degC),
            and for each ion X the mechanism lists: "eX" (mV), "Xi", "Xo" (mM),
            and "iX" (mA/cm2, total membrane current of that ion; for pools)

Units are NEURON's: densities in S/cm2 and mA/cm2 (outward positive), point
processes in uS and nA, time in ms.
"""

from __future__ import annotations

import math
import weakref
from dataclasses import dataclass
from typing import Any, ClassVar, Mapping, NamedTuple

import jax.numpy as jnp
import numpy as np

from .cnexp import exp_euler, kinetics

Array = Any
Params = Mapping[str, Array]
States = Mapping[str, Array]
Env = Mapping[str, Array]


@dataclass(frozen=True)
class Ion:
    """An ion species: valence and NEURON's default reversal and concentrations."""

    name: str
    charge: int
    e: float  # mV, used while no pool changes the concentrations
    ci: float  # mM, inside
    co: float  # mM, outside


# NEURON's defaults (nrn/src/nrnoc: na_ion, k_ion, ca_ion)
IONS: dict[str, Ion] = {
    "na": Ion("na", 1, 50.0, 10.0, 140.0),
    "k": Ion("k", 1, -77.0, 54.4, 2.5),
    "ca": Ion("ca", 2, 132.4579341637009, 5e-5, 2.0),
}

FARADAY = 96485.33212331001  # C/mol (CODATA 2018, as NEURON 9)
GAS_CONSTANT = 8.31446261815324  # J/(K mol)


def nernst(ci, co, charge: int, celsius):
    """Reversal potential in mV of an ion with concentrations ci, co (mM).

    As NEURON's nrn_nernst: +1e6 mV when ci <= 0 and -1e6 mV when co <= 0 (a
    pool driven below zero), never NaN.
    """
    ktf = 1000.0 * GAS_CONSTANT * (celsius + 273.15) / FARADAY
    ok = (ci > 0) & (co > 0)
    e = ktf / charge * jnp.log(jnp.where(ok, co, 1.0) / jnp.where(ok, ci, 1.0))
    return jnp.where(ci <= 0, 1e6, jnp.where(co <= 0, -1e6, e))


class Range(NamedTuple):
    """The valid values of a parameter: low <= x <= high, or low < x when ``strict``; only
    the listed ``values`` where given (a switch: ``FLAG``, 0 or 1)."""

    low: float = -math.inf
    high: float = math.inf
    strict: bool = False
    values: tuple | None = None

    def __str__(self):
        if self.values is not None:
            return " or ".join(f"{v:g}" for v in self.values)
        if self.high == math.inf:
            return f"{'>' if self.strict else '>='} {self.low:g}"
        return f"in {'(' if self.strict else '['}{self.low:g}, {self.high:g}]"

    def check(self, name: str, value, unit: str = "") -> None:
        """A ValueError naming the parameter, the offending value and this range."""
        arr = np.asarray(value, dtype=float)
        ok = (arr > self.low if self.strict else arr >= self.low) & (arr <= self.high)
        if self.values is not None:
            ok &= np.isin(arr, self.values)
        if not np.all(ok):
            bad = arr[~ok] if arr.ndim else arr
            unit = "" if unit == "1" else unit  # dimensionless
            raise ValueError(f"{name} must be {self}{' ' + unit if unit else ''}, got "
                             f"{np.ravel(bad)[0]:g}" + (f" (and {np.size(bad) - 1} more)"
                                                       if np.size(bad) > 1 else ""))


    def violated(self, value):
        """Whether any element of a (traced) array lies outside this range or is NaN: a
        boolean scalar, for checks that cannot raise (inside jit, grad or vmap)."""
        ok = (value > self.low if self.strict else value >= self.low) & (value <= self.high)
        if self.values is not None:
            ok &= jnp.isin(value, jnp.asarray(self.values, jnp.result_type(value)))
        return ~jnp.all(ok)


POSITIVE = Range(0.0, math.inf, True)
NONNEGATIVE = Range(0.0)
FLAG = Range(0.0, 1.0, values=(0.0, 1.0))  # a switch: 0 (off) or 1 (on)


def as_range(r) -> Range:
    """A Range from a Range or a (low, high) pair (None: unbounded; closed interval)."""
    if isinstance(r, Range):
        return r
    low, high = r
    return Range(-math.inf if low is None else float(low), math.inf if high is None else float(high))


class Mechanism:
    """What every mechanism declares.

    Attributes:
        name: how a cell inserts it (the NEURON SUFFIX or POINT_PROCESS name).
        params: parameter name -> default value.
        units: parameter or state name -> unit string (shown in recordings' labels and files;
            states without one are dimensionless, "1").
        ranges: parameter name -> valid values, a ``Range`` or a (low, high) pair (None:
            unbounded); a value outside is refused with an error naming it (optional).
        states: state name -> value used when ``steady_state`` does not set it.
        ions: ions whose quantities it uses, e.g. ("na", "k").
    """

    name: ClassVar[str]
    params: ClassVar[dict[str, float]] = {}
    units: ClassVar[dict[str, str]] = {}
    ranges: ClassVar[dict] = {}
    states: ClassVar[dict[str, float]] = {}
    ions: ClassVar[tuple[str, ...]] = ()

    def rates(self, v, params: Params, env: Env) -> dict[str, tuple[Array, Array]]:
        """state name -> (steady state, time constant in ms), for exponential Euler.

        Default: derived from ``alpha_beta`` when the mechanism defines it, else none.
        """
        if not self._has_alpha_beta():
            return {}
        return {k: kinetics(a, b, q) for k, (a, b, q) in self.alpha_beta(v, params, env).items()}

    def alpha_beta(self, v, params: Params, env: Env) -> dict[str, tuple[Array, Array, Array]]:
        """Optional, instead of ``rates``: state name -> (alpha, beta, q), the opening and
        closing rates in 1/ms and a temperature factor q (scalar or [n], independent of
        v); steady state alpha / (alpha + beta), time constant 1 / (q (alpha + beta)).
        The states then advance by the same exponential Euler, whose gradient reuses
        the forward's rates (cheaper in reverse mode; ``dendrax.mechanisms.cnexp``)."""
        raise NotImplementedError

    def _has_alpha_beta(self) -> bool:
        return type(self).alpha_beta is not Mechanism.alpha_beta

    def steady_state(self, v, params: Params, env: Env) -> dict[str, Array]:
        """Initial states at membrane potential v (NEURON's INITIAL block).

        Default: the steady states of ``rates``, and the declared defaults for
        the states ``rates`` does not cover.
        """
        out = {k: jnp.full(jnp.shape(v), x, dtype=jnp.result_type(v)) for k, x in self.states.items()}
        out.update({k: inf for k, (inf, _) in self.rates(v, params, env).items()})
        return out

    def advance(self, v, states: States, params: Params, env: Env, dt) -> dict[str, Array]:
        """States one step dt later, at potential v (NEURON's cnexp by default)."""
        if self._has_alpha_beta() and type(self).rates is Mechanism.rates:
            return exp_euler(self.alpha_beta, v, states, params, env, dt)
        new = dict(states)
        for k, (inf, tau) in self.rates(v, params, env).items():
            new[k] = inf + (states[k] - inf) * jnp.exp(-dt / tau)
        return new


class Channel(Mechanism):
    """A density mechanism: per-compartment states and a membrane current.

    Must define ``current``. ``ions`` lists the ions it carries or reads; a
    nonspecific current (a leak, Ih) is returned under the key "" and is recorded
    as "<name>.<nonspecific>" (NEURON's NONSPECIFIC_CURRENT name: "il" for hh).
    """

    nonspecific: ClassVar[str] = "i"

    def current(self, v, states: States, params: Params, env: Env) -> dict[str, Array]:
        """Outward current density in mA/cm2 per ion ("" for nonspecific)."""
        raise NotImplementedError

    def assigned(self, v, states: States, params: Params, env: Env) -> dict[str, Array]:
        """Optional: what else the channel computes with its current that can be recorded
        (NEURON's RANGE ASSIGNED variables of BREAKPOINT, e.g. hh's "gna"): name -> [n]
        array, at the same v, states and env as ``current``; units in ``units``. None by
        default."""
        return {}


class IonPool(Mechanism):
    """A density mechanism that changes an ion's inside concentration.

    It has one state named "<ion>i" (e.g. "cai") and ``ion`` names the ion;
    ``advance`` reads the ion's membrane current from env["i<ion>"]. While a
    pool is inserted, the ion's reversal potential follows Nernst.
    """

    ion: ClassVar[str]

    def steady_state(self, v, params: Params, env: Env) -> dict[str, Array]:
        """Initial states (NEURON's INITIAL): as ``Mechanism``'s, and the concentration
        the ion has at t = 0 (env["<ion>i"], its "<ion>i0"), as NEURON's pools start
        unless their INITIAL sets it."""
        out = super().steady_state(v, params, env)
        key = f"{self.ion}i"
        return {**out, key: jnp.zeros(jnp.shape(v), jnp.result_type(v)) + env[key]}


class Synapse(Mechanism):
    """A point process on one compartment, driven by presynaptic spikes.

    Must define ``current`` (nA, outward positive, as NEURON's NONSPECIFIC_CURRENT
    of a point process) and ``on_spike`` (NEURON's NET_RECEIVE).
    """

    def current(self, v, states: States, params: Params) -> Array:
        raise NotImplementedError

    def assigned(self, v, states: States, params: Params) -> dict[str, Array]:
        """Optional: what else the synapse computes with its current that can be recorded,
        as ``Channel.assigned`` (e.g. an NMDA synapse's conductance with its Mg block: a
        "g" given here is recorded in place of di/dv)."""
        return {}

    def on_spike(self, states: States, params: Params, weight) -> dict[str, Array]:
        raise NotImplementedError


class GradedSynapse(Mechanism):
    """A synapse whose current is a smooth function of the presynaptic voltage (no
    spikes, no thresholds: differentiable everywhere), as Jaxley's graded synapses.

    Must define ``current(v, v_pre, states, params)`` (nA, outward positive;
    v: postsynaptic potential, v_pre: presynaptic potential, both mV, [n]).
    States advance from the presynaptic potential: ``rates(v_pre, params, env)``
    for exponential Euler (or an ``advance(v_pre, states, params, env, dt)``
    override), where env["v"] is the postsynaptic potential. Units as NEURON's
    point processes: uS, nA, mV, ms.
    """

    def current(self, v, v_pre, states: States, params: Params) -> Array:
        raise NotImplementedError


def channel_currents(mech: Channel) -> dict[str, str]:
    """The currents a channel can record -> their keys in ``current``'s dict: "i<ion>" ->
    "<ion>" for each ion it carries, ``nonspecific`` -> "" (found by tracing ``current``
    once on abstract arrays, so it costs no computation)."""
    import jax

    one, env = _abstract_inputs(mech, 1)
    try:
        keys = jax.eval_shape(mech.current, one, {k: one for k in mech.states},
                              {k: one for k in mech.params}, env).keys()
    except Exception:  # a current that needs more than the documented env: assume all ions
        keys = [*mech.ions, ""]
    return {(f"i{k}" if k else mech.nonspecific): k for k in keys}


def assigned_of(mech):
    """A channel's or event synapse's ``assigned`` where it belongs to its ``current``: defined
    by the class that defines ``current`` or by one derived from it (a subclass that
    rewrites ``current`` does not inherit what its parent's current computed); else None."""
    if not isinstance(mech, (Channel, Synapse)):
        return None
    mro = type(mech).__mro__
    owner = {name: next(k for k in mro if name in vars(k)) for name in ("assigned", "current")}
    return mech.assigned if issubclass(owner["assigned"], owner["current"]) else None


def _assigned_args(mech, one, env):
    args = (one, {k: one for k in mech.states}, {k: one for k in mech.params})
    return args + ((env,) if isinstance(mech, Channel) else ())


def assigned_names(mech) -> tuple[str, ...]:
    """The names of what a mechanism's ``assigned`` returns (traced once per instance on
    abstract arrays; () where it has none)."""
    import jax

    if mech in _ASSIGNED_NAMES:
        return _ASSIGNED_NAMES[mech]
    fn = assigned_of(mech)
    names = ()
    if fn is not None:
        one, env = _abstract_inputs(mech, 1)
        names = tuple(jax.eval_shape(fn, *_assigned_args(mech, one, env)))
    _ASSIGNED_NAMES[mech] = names
    return names


_ASSIGNED_NAMES: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _abstract_inputs(mech, n: int):
    """(an abstract [n] float32 array, the documented environment of abstract arrays) for
    tracing a mechanism's functions with ``jax.eval_shape`` (no computation)."""
    import jax

    one = jax.ShapeDtypeStruct((n,), jnp.float32)
    env = {"celsius": jax.ShapeDtypeStruct((), jnp.float32),
           "dt": jax.ShapeDtypeStruct((), jnp.float32), "secondorder": 0, "diam": one,
           **{f"{k}{ion}{q}": one for ion in mech.ions for k, q in (("e", ""), ("", "i"),
                                                                    ("", "o"), ("i", ""))}}
    return one, env


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
    """The keys of its environment a channel's ``current``, ``rates``, ``steady_state`` or
    ``advance`` (or an ion pool's) reads (traced once per class on placeholder arrays)."""
    import jax

    cls = type(mech)
    if cls in _ENV_READ:
        return _ENV_READ[cls]
    seen: set = set()
    one = jnp.ones(3, jnp.float32)
    values = {"celsius": jnp.float32(6.3), "diam": one,
              **{f"{k}{ion}{q}": one for ion in mech.ions for k, q in (("e", ""), ("", "i"),
                                                                       ("", "o"), ("i", ""))}}
    params, states = {k: one for k in mech.params}, {k: one for k in mech.states}
    calls = (lambda env: mech.current(one, states, params, env),
             lambda env: mech.rates(one, params, env),
             lambda env: mech.steady_state(one, params, env),
             lambda env: mech.advance(one, states, params, env, jnp.float32(0.025)))
    for call in calls if isinstance(mech, (Channel, IonPool)) else ():
        try:
            jax.eval_shape(lambda: call(_ReadsEnv(values, seen)))
        except Exception:  # what the mechanism cannot do (a pool's current) or needs more
            pass
    _ENV_READ[cls] = out = frozenset(seen)
    return out


def concentrations_read(mech) -> frozenset:
    """The ions whose concentrations ("<ion>i", "<ion>o") a channel's ``current``,
    ``rates`` or ``advance`` reads from its environment, or an ion pool changes. NEURON
    computes such an ion's reversal potential from its concentrations (Nernst) wherever one
    is read, not only where a pool changes them."""
    seen = environment_read(mech)
    ions = {ion for ion in mech.ions if f"{ion}i" in seen or f"{ion}o" in seen}
    if isinstance(mech, IonPool):
        ions.add(mech.ion)
    return frozenset(ions)


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
        if unknown and what == "units" and kind in (Channel, Synapse):  # of what it assigns
            unknown = sorted(set(unknown) - set(_traced_assigned(obj)))
        if unknown:
            if what == "units" and kind in (Channel, Synapse):
                known = {**known, **dict.fromkeys(_traced_assigned(obj))}
            raise ValueError(f"{cls.__name__}.{what} names {unknown}, which are not its "
                             f"{'parameters' if what == 'ranges' else 'parameters, states or assigned'}: "
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
        if kind is Synapse:
            _check_spike(mech)
        _OUTPUTS_CHECKED.add(cls)
    return mech


_OUTPUTS_CHECKED: "weakref.WeakSet[type]" = weakref.WeakSet()


def _traced(label: str, mech, fn, *args, env=()):
    """``jax.eval_shape(fn, *args)``, or None where tracing on the documented inputs fails
    (left to the run), but a ValueError where ``fn`` reads a name it is not given (a state,
    parameter or environment entry it does not declare: a bare KeyError at run time)."""
    import jax

    try:
        return jax.eval_shape(fn, *args)
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


def _check_kinetics(mech) -> None:
    """A ValueError where ``rates`` does not give (steady state, time constant) pairs, or
    ``advance`` or a synapse's ``current`` returns what the loop cannot carry (checked on
    abstract arrays: no computation; what needs more than the documented environment is
    left to the run)."""
    import jax

    name = type(mech).__name__
    one, env = _abstract_inputs(mech, 3)
    params, states = {k: one for k in mech.params}, {k: one for k in mech.states}
    env = {**env, **({f"i{mech.ion}": one} if isinstance(mech, IonPool) else {})}
    if isinstance(mech, Mechanism) and mech._has_alpha_beta():
        ab = _traced(f"{name}.alpha_beta", mech, mech.alpha_beta, one, params, env, env=env)
        _tuples(f"{name}.alpha_beta", ab, "a triple (alpha, beta in 1/ms, temperature factor q)")
    rates = _traced(f"{name}.rates", mech, mech.rates, one, params, env, env=env)
    for k, pair in _tuples(f"{name}.rates", rates, "a pair (steady state, time constant in ms)"):
        for x in pair:
            _one_each(f"{name}.rates[{k!r}]", x, "node")
    adv_env = {} if isinstance(mech, Synapse) else env
    out = _traced(f"{name}.advance", mech, mech.advance, one, states, params, adv_env,
                  jax.ShapeDtypeStruct((), jnp.float32), env=adv_env)
    if out is not None:
        _states_out(f"{name}.advance", out, mech.states, "node")
    init_env = {"dt": env["dt"]} if isinstance(mech, Synapse) else env
    out = _traced(f"{name}.steady_state", mech, mech.steady_state, one, params, init_env,
                  env=init_env)
    if out is not None:
        _states_out(f"{name}.steady_state", out, mech.states, "node")
    if isinstance(mech, Synapse):
        cur = _traced(f"{name}.current", mech, mech.current, one, states, params)
        if cur is None:
            return
        if not hasattr(cur, "dtype") or not jnp.issubdtype(cur.dtype, jnp.floating):
            raise ValueError(f"{name}.current must return one float array (nA, [n]), got "
                             f"{type(cur).__name__}")
        _one_each(f"{name}.current", cur, "synapse")


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
    import jax

    name = type(mech).__name__
    one, _ = _abstract_inputs(mech, 3)
    try:
        out = jax.eval_shape(mech.on_spike, {k: one for k in mech.states},
                             {k: one for k in mech.params}, one)
    except Exception:
        out = None  # what fails on abstract inputs is left to the run
    if out is not None:
        _states_out(f"{name}.on_spike", out, mech.states, "synapse")
    _check_assigned(mech, {"i"}, "synapse")


def _states_out(label: str, out, states, each: str) -> None:
    """A ValueError unless the abstract output ``out`` is a dict of exactly ``states``, each
    a float array of one value per ``each``."""
    if not isinstance(out, dict) or set(out) != set(states):
        got = sorted(out) if isinstance(out, dict) else type(out).__name__
        raise ValueError(f"{label} must return a dict of its states {sorted(states)}, got {got}")
    for k, x in out.items():
        _one_each(f"{label}[{k!r}]", x, each)
        if not jnp.issubdtype(x.dtype, jnp.floating):
            raise ValueError(f"{label}[{k!r}] must be a float array, got {x.dtype}")


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
    one, env = _abstract_inputs(mech, 3)
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
        if not jnp.issubdtype(x.dtype, jnp.floating):
            raise ValueError(f"{name}.current[{k!r}] must be a float array, got {x.dtype}")
    _check_assigned(mech, set(channel_currents(mech)), "node")


def _check_assigned(mech, currents: set, each: str) -> None:
    """A ValueError unless a mechanism's ``assigned`` (where it has one) returns a dict of
    new names (identifiers; not its parameters, states or currents) -> one float per
    ``each`` (or a scalar), on abstract arrays; a failing trace is named here, not left to
    a run that records something else."""
    import jax

    fn = assigned_of(mech)
    if fn is None:
        return
    name = type(mech).__name__
    one, env = _abstract_inputs(mech, 3)
    try:
        extra = jax.eval_shape(fn, *_assigned_args(mech, one, env))
    except Exception as err:
        raise ValueError(f"{name}.assigned fails on arrays of the documented inputs: "
                         f"{type(err).__name__}: {err}") from None
    if not isinstance(extra, dict) or not all(isinstance(k, str) and k.isidentifier()
                                              for k in extra):
        raise ValueError(f"{name}.assigned must return a dict name -> array (names that are "
                         f"Python identifiers), got {extra!r:.200}")
    clash = sorted(set(extra) & (set(mech.states) | set(mech.params) | currents))
    if clash:
        raise ValueError(f"{name}.assigned names {clash}, which are already its parameters, "
                         "states or currents: give them names of their own")
    for k, x in extra.items():
        _one_each(f"{name}.assigned[{k!r}]", x, each)
        if not jnp.issubdtype(x.dtype, jnp.floating):
            raise ValueError(f"{name}.assigned[{k!r}] must be a float array, got {x.dtype}")


def _traced_assigned(obj) -> tuple:
    """The names a mechanism class's (or instance's) ``assigned`` returns; () where tracing
    fails (``_check_assigned`` then names the problem)."""
    try:
        return assigned_names(obj() if isinstance(obj, type) else obj)
    except Exception:
        return ()
