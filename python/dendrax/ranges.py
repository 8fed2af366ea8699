"""The valid values of a parameter (``Range``) and the common ones: ``POSITIVE``,
``NONNEGATIVE``, ``FLAG`` (a switch, 0 or 1). Mechanisms, point models, synapses and the
cell's own quantities declare theirs with these."""

from __future__ import annotations

import math
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np


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
        """A ValueError naming the parameter, the offending value and this range; for a
        strictly positive range also one for a positive value below the smallest normal
        number of the simulation's float dtype (``smallest_normal``), which XLA flushes to
        0 on the CPU (a time constant or capacitance of 0: NaN from the first step)."""
        arr = np.asarray(value, dtype=float)
        ok = (arr > self.low if self.strict else arr >= self.low) & (arr <= self.high)
        if self.values is not None:
            ok &= np.isin(arr, self.values)
        unit = "" if unit == "1" else unit  # dimensionless
        if not np.all(ok):
            raise ValueError(f"{name} must be {self}{' ' + unit if unit else ''}, got "
                             + _first(arr, ~ok))
        if self._positive():
            tiny, dtype = smallest_normal()
            subnormal = arr < tiny
            if np.any(subnormal):
                why = ("" if dtype == "float64" else " (the precision dendrax runs in while "
                       "jax_enable_x64 is off)")
                unit = " " + unit if unit else ""
                raise ValueError(f"{name} = {_first(arr, subnormal, unit)} is below {tiny:.4g}, "
                                 f"the smallest normal {dtype} number{why}, which XLA flushes "
                                 f"to 0: give a value >= {tiny:.4g}{unit}")

    def violated(self, value):
        """Whether any element of a (traced) array lies outside this range or is NaN (or,
        for a strictly positive range, below ``smallest_normal``): a boolean scalar, for
        checks that cannot raise (inside jit, grad or vmap)."""
        ok = (value > self.low if self.strict else value >= self.low) & (value <= self.high)
        if self.values is not None:
            ok &= jnp.isin(value, jnp.asarray(self.values, jnp.result_type(value)))
        if self._positive():
            ok &= value >= smallest_normal()[0]
        return ~jnp.all(ok)

    def _positive(self) -> bool:
        """Whether this is a strictly positive range (low = 0, excluded)."""
        return self.strict and self.low == 0.0 and self.values is None


def smallest_normal() -> tuple[float, str]:
    """(finfo(dtype).tiny, dtype name) of the float dtype runs use: float64 with
    jax_enable_x64, float32 without (1.175e-38; 2.225e-308 in float64). XLA on the CPU
    flushes subnormal numbers (positive ones below it) to 0."""
    dtype = jnp.result_type(float)
    return float(jnp.finfo(dtype).tiny), np.dtype(dtype).name


def _first(arr, bad, unit: str = "") -> str:
    """The first offending value of ``arr`` (where ``bad``) with ``unit``, and how many more
    there are."""
    bad = arr[bad] if arr.ndim else arr
    more = np.size(bad) - 1
    return f"{np.ravel(bad)[0]:g}{unit}" + (f" (and {more} more)" if more else "")


POSITIVE = Range(0.0, math.inf, True)
NONNEGATIVE = Range(0.0)
FLAG = Range(0.0, 1.0, values=(0.0, 1.0))  # a switch: 0 (off) or 1 (on)


def is_flag(r) -> bool:
    """Whether a declared range (a ``Range``, a (low, high) pair or None) is a switch that
    takes 0 or 1 only (``FLAG``)."""
    return isinstance(r, Range) and r.values is not None and set(r.values) == {0.0, 1.0}


def as_range(r) -> Range:
    """A Range from a Range or a (low, high) pair (None: unbounded; closed interval)."""
    if isinstance(r, Range):
        return r
    low, high = r
    return Range(-math.inf if low is None else float(low), math.inf if high is None else float(high))
