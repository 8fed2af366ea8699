"""Hodgkin-Huxley sodium, potassium and leak channels, as NEURON's hh.mod."""

import math

import jax.numpy as jnp

from . import hh_kernel
from .base import NONNEGATIVE, Channel


def vtrap(x, y, e=None):
    """x / (exp(x / y) - 1), continued smoothly through x = 0 (hh.mod's vtrap);
    ``e``: exp(x / y) when already at hand (it is then not computed again)."""
    small = jnp.abs(x / y) < 1e-6
    safe = jnp.where(small, 1.0, x)
    denominator = jnp.expm1(safe / y) if e is None else jnp.where(small, 1.0, e - 1.0)
    return jnp.where(small, y * (1.0 - x / y / 2.0), safe / denominator)


def rates(v, q):
    """hh.mod's opening and closing rates (1/ms) at v (mV), with temperature factor q:
    {"m", "h", "n": (alpha, beta, q)}.

    The six rate functions share three exponentials (hh.mod's exponents differ by
    constants or factors: exp(-(v+55)/10) = exp(-(v+40)/10) exp(-1.5), exp(-(v+65)/20) =
    exp(-(v+65)/80)^4, ...), as hh.mod evaluates vtrap with exp(x/y) - 1: the rates equal
    the six-exponential form to ~1e-12 relative (near v = -40 and -55 mV, where hh.mod's
    own subtraction rounds the same way) at ~0.7x its cost.
    """
    e40 = jnp.exp(-(v + 40.0) / 10.0)
    e80 = jnp.exp(-(v + 65.0) / 80.0)
    am, bm = 0.1 * vtrap(-(v + 40.0), 10.0, e40), 4.0 * jnp.exp(-(v + 65.0) / 18.0)
    ah, bh = 0.07 * jnp.square(jnp.square(e80)), 1.0 / (e40 * math.exp(0.5) + 1.0)
    an, bn = 0.01 * vtrap(-(v + 55.0), 10.0, e40 * math.exp(-1.5)), 0.125 * e80
    return {"m": (am, bm, q), "h": (ah, bh, q), "n": (an, bn, q)}


def q10(celsius):
    """hh.mod's temperature factor: 3 ** ((celsius - 6.3) / 10)."""
    return 3.0 ** ((celsius - 6.3) / 10.0)


class HH(Channel):
    """Squid axon Na+, K+ and leak currents (Hodgkin & Huxley 1952), hh.mod's kinetics
    (``rates``). On the CPU the gates advance in a native kernel (``hh_kernel``; exponential
    Euler in JAX elsewhere, and for a subclass that changes ``alpha_beta``)."""

    name = "hh"
    params = {"gnabar": 0.12, "gkbar": 0.036, "gl": 0.0003, "el": -54.3}
    units = {"gnabar": "S/cm2", "gkbar": "S/cm2", "gl": "S/cm2", "el": "mV", "gna": "S/cm2",
             "gk": "S/cm2"}
    ranges = {"gnabar": NONNEGATIVE, "gkbar": NONNEGATIVE, "gl": NONNEGATIVE}
    states = {"m": 0.0, "h": 1.0, "n": 0.0}
    ions = ("na", "k")
    nonspecific = "il"

    def alpha_beta(self, v, params, env):
        return rates(v, q10(env["celsius"]))

    def advance(self, v, states, params, env, dt):
        if type(self).alpha_beta is not HH.alpha_beta or type(self).rates is not HH.rates:
            return super().advance(v, states, params, env, dt)
        return hh_kernel.advance(rates, v, states, q10(env["celsius"]), dt)

    def current(self, v, states, params, env):
        g = _conductances(states, params)
        return {
            "na": g["gna"] * (v - env["ena"]),
            "k": g["gk"] * (v - env["ek"]),
            "": params["gl"] * (v - params["el"]),
        }

    def assigned(self, v, states, params, env):
        """hh.mod's gna and gk (S/cm2), recordable as "hh.gna", "hh.gk"."""
        return _conductances(states, params)


def _conductances(states, params):
    """hh.mod's gna = gnabar m^3 h and gk = gkbar n^4 (S/cm2)."""
    m, h, n = states["m"], states["h"], states["n"]
    return {"gna": params["gnabar"] * m**3 * h, "gk": params["gkbar"] * n**4}
