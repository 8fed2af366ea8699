"""What the point-neuron models share: state and flag helpers, and the spike's type."""

from __future__ import annotations

import math
from typing import Mapping

import jax.numpy as jnp

from ..base import Array

E = math.e  # NEST's numerics::e


def zeros(x):
    """Float zeros shaped as x."""
    return jnp.zeros_like(jnp.asarray(x, dtype=jnp.result_type(float)))


def state(params: Mapping[str, Array], name: str):
    """params[name] as a float array (a copy: a state of its own)."""
    return jnp.asarray(params[name], dtype=jnp.result_type(float)) * 1.0


def flag(x):
    """A 0/1 parameter as bool."""
    return jnp.asarray(x) != 0


def is_spike(spike):
    """The bool behind a spike from ``PointNeuron.spike`` (bool, or 0/1 float with a
    surrogate): for the model's own logic (resets), which is not differentiated through."""
    return spike if spike.dtype == jnp.bool_ else spike != 0


def when(spike, mask):
    """spike and mask (mask: bool, not differentiated), keeping the spike's type."""
    return spike & mask if spike.dtype == jnp.bool_ else spike * mask.astype(spike.dtype)


class NoRecordInternals:
    """Models whose states include internals NEST does not record (counters, buffers)."""

    record: tuple[str, ...] = ()

    @property
    def recordables(self) -> tuple[str, ...]:
        return self.record


def exp_euler(y, f, a, h):
    """y + h phi1(h a) f, with phi1(z) = expm1(z)/z (1 at z = 0)."""
    z = h * a
    small = z == 0.0
    phi1 = jnp.where(small, 1.0, jnp.expm1(z) / jnp.where(small, 1.0, z))
    return y + h * phi1 * f
