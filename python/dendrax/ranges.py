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
