"""Surrogate gradients for spiking neurons: a spike is a step function of the membrane
potential, whose derivative is zero almost everywhere; training replaces that derivative
(and only that) by a smooth pseudo-derivative (Neftci, Mostafa & Zenke 2019, IEEE Signal
Process Mag 36:51; Zenke & Ganguli 2018, Neural Comput 30:1514).

``spike(x, surrogate)`` returns heaviside(x) = 1.0 where x >= 0 (x = V - threshold, mV), else
0.0, exactly as the simulation without gradients; its derivative is the surrogate's:

=================  ===============================================  ==================
name               d spike / dx (x in mV, ``slope`` in 1/mV)         default slope
=================  ===============================================  ==================
"fast_sigmoid"     1 / (1 + slope |x|)^2   (SuperSpike)              1.0
"sigmoid"          slope s (1 - s),  s = 1 / (1 + exp(-slope x))     1.0
"arctan"           slope / (1 + (pi slope x)^2)                      1.0
"triangle"         slope max(0, 1 - slope |x|)                       1.0
"gaussian"         slope / sqrt(2 pi) exp(-(slope x)^2 / 2)          1.0
=================  ===============================================  ==================

A population uses one with ``net.population("LIF", n, surrogate="fast_sigmoid")`` (or
``Surrogate("sigmoid", slope=2.0)``): its spikes then carry gradients to the neurons they
reach (through the static connections' weights) and to its own parameters. The reset after
a spike is not differentiated through (the common "detached reset").
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from ..quantities import is_number


class Surrogate(NamedTuple):
    """A surrogate gradient: its ``name`` (see the module's table) and ``slope`` (1/mV)."""

    name: str = "fast_sigmoid"
    slope: float = 1.0


def _derivative(name, slope, x):
    if name == "fast_sigmoid":
        return 1.0 / (1.0 + slope * jnp.abs(x)) ** 2
    if name == "sigmoid":
        s = jax.nn.sigmoid(slope * x)
        return slope * s * (1.0 - s)
    if name == "arctan":
        return slope / (1.0 + (np.pi * slope * x) ** 2)
    if name == "triangle":
        return slope * jnp.maximum(0.0, 1.0 - slope * jnp.abs(x))
    return slope / np.sqrt(2.0 * np.pi) * jnp.exp(-0.5 * (slope * x) ** 2)


NAMES = ("fast_sigmoid", "sigmoid", "arctan", "triangle", "gaussian")


def as_surrogate(s) -> Surrogate | None:
    """None, a name, or a Surrogate -> a checked Surrogate (or None)."""
    if s is None:
        return None
    if isinstance(s, str):
        s = Surrogate(s)
    elif isinstance(s, (tuple, list)) and 1 <= len(s) <= 2:
        s = Surrogate(*s)
    else:
        raise ValueError(f"a surrogate is a name, (name, slope) or a Surrogate; got {s!r}")
    if s.name not in NAMES:
        raise ValueError(f"unknown surrogate {s.name!r}; choose one of {NAMES}")
    if not is_number(s.slope) or not (np.isfinite(s.slope) and s.slope > 0):
        raise ValueError(f"a surrogate's slope must be a number > 0 (1/mV), got {s.slope!r}")
    return Surrogate(s.name, float(s.slope))


@partial(jax.custom_jvp, nondiff_argnums=(1, 2))
def _heaviside(x, name, slope):
    return (x >= 0).astype(x.dtype)


@_heaviside.defjvp
def _heaviside_jvp(name, slope, primals, tangents):
    (x,), (dx,) = primals, tangents
    return _heaviside(x, name, slope), _derivative(name, slope, x) * dx


def spike(x, surrogate: Surrogate | None = None):
    """heaviside(x) (x = V - threshold): a bool array without a surrogate; with one, a float
    array of 0.0 / 1.0 whose derivative is the surrogate's."""
    if surrogate is None:
        return x >= 0
    x = jnp.asarray(x)
    return _heaviside(x.astype(jnp.result_type(x, float)), surrogate.name, surrogate.slope)
