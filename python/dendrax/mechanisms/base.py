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
            "diam" (um) and "area" (um2) of its segment (channels and pools that read
            them), and for each ion X the mechanism lists: "eX" (mV), "Xi", "Xo" (mM),
            and "iX" (mA/cm2, total membrane current of that ion; for pools)

Optional, for recording: a channel's or event synapse's ``assigned(v, states, params[,
env])`` (what it computes with its current, at v(t)), and a channel's or pool's
``solved(v, states, params, env, dt)`` (what its state update computes besides the
states, at the new v(t + dt); dt None at t = 0, for the values initialization leaves).

Units are NEURON's: densities in S/cm2 and mA/cm2 (outward positive), point
processes in uS and nA, time in ms.
"""

from __future__ import annotations

from typing import Any, ClassVar, Mapping

import jax.numpy as jnp

from ..ranges import FLAG, NONNEGATIVE, POSITIVE, Range, as_range
from .cnexp import exp_euler, kinetics
from .ions import FARADAY, GAS_CONSTANT, IONS, Ion, nernst

# the contract classes; the ions and ranges they declare with are re-exported from here
__all__ = ["Channel", "GradedSynapse", "IonPool", "Mechanism", "Synapse", "FARADAY",
           "GAS_CONSTANT", "IONS", "Ion", "nernst", "FLAG", "NONNEGATIVE", "POSITIVE", "Range",
           "as_range"]

Array = Any
Params = Mapping[str, Array]
States = Mapping[str, Array]
Env = Mapping[str, Array]


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

    A synapse that carries ions or reads its compartment (an NMDA synapse's calcium;
    NMODL's USEION, celsius, diam or area in a POINT_PROCESS) takes the compartment's
    environment as a fourth argument named env, ``current(v, states, params, env)`` (and
    ``assigned(v, states, params, env)``), with env as a channel's: "celsius", "diam",
    "area" and its ``ions``' "e<ion>", "<ion>i", "<ion>o"; ``steady_state`` and
    ``advance`` get it too. Its current is then one array (nA, nonspecific) or a dict
    {ion: nA, "": nA nonspecific} of the ions it declares, recorded as "i<ion>" (its
    "i" is the sum). As NEURON, an ion's current i (nA) of a point process adds
    i * 100 / area to its compartment's ion current density (mA/cm2), which ion pools
    see; at a node without membrane, area counts 100 um2.
    """

    def current(self, v, states: States, params: Params) -> Array:
        raise NotImplementedError

    def assigned(self, v, states: States, params: Params) -> dict[str, Array]:
        """Optional: what else the synapse computes with its current that can be recorded,
        as ``Channel.assigned`` (e.g. an NMDA synapse's conductance with its Mg block: a
        "g" given here is recorded in place of di/dv); with env where ``current`` takes
        it."""
        return {}

    def on_spike(self, states: States, params: Params, weight) -> dict[str, Array]:
        """The states after an event of ``weight`` (NEURON's NET_RECEIVE). Declared as
        ``on_spike(states, params, weight, t)`` it also gets each event's time (ms), and
        with ``self_events`` slots ``on_spike(states, params, weight, t, flag)`` its flag
        (0: a spike; see ``dendrax.net_receive``)."""
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


