"""Checks of a model file's parsed JSON: ``Reader`` raises a ``ModelFileError`` naming the
file and the place (e.g. ``cells[0].values.cm``) of an entry of the wrong kind, length or
range."""

from __future__ import annotations

import math
import warnings

import numpy as np

from .format import VERSION, ModelFileError


INT64 = (-(2 ** 63), 2 ** 63 - 1)  # the integers a file's indices may hold


class Reader:
    """Checks of the parsed JSON that raise a ModelFileError naming the file and the place."""

    def __init__(self, path):
        self.path = path
        self.version = VERSION

    def fail(self, where: str, msg: str):
        raise ModelFileError(f"{self.path}: " + (f"{where}: " if where else "") + msg)

    def named(self, where: str, fn, *args):
        """fn(*args), with a ValueError from what it builds (a value out of range, as
        Cell.set refuses it) named by the file and ``where``."""
        try:
            return fn(*args)
        except ModelFileError:
            raise
        except ValueError as err:
            self.fail(where, str(err))

    def keys(self, obj, where, required, optional=()):
        if not isinstance(obj, dict):
            self.fail(where, f"expected an object, got {_kind(obj)}")
        missing = [k for k in sorted(required) if k not in obj]
        if missing:
            self.fail(where, f"missing key{'s' if len(missing) > 1 else ''} "
                             f"{', '.join(map(repr, missing))}")
        unknown = sorted(set(obj) - set(required) - set(optional))
        if unknown:
            self.fail(where, f"unknown keys {unknown}; expected {sorted({*required, *optional})}")
        return obj

    def params(self, obj, where, mech, extra=()):
        """``keys`` of a mechanism's values (its params and ``extra``): names its NMODL file
        declares as PARAMETERs but BREAKPOINT sets (the class's ``overwritten``: a file
        saved before dendrax read them as ASSIGNED holds them) are left out, with a
        warning (NEURON never reads their value either)."""
        gone = [k for k in getattr(mech, "overwritten", ()) if isinstance(obj, dict) and k in obj]
        if gone:
            warnings.warn(f"{self.path}: {where}: {gone} of {mech.name} left out: its BREAKPOINT "
                          "sets them, so they are not parameters (NEURON never reads the value "
                          "given)", UserWarning, stacklevel=3)
            obj = {k: v for k, v in obj.items() if k not in gone}
        return self.keys(obj, where, {*mech.params, *extra})

    def list(self, x, where, n=None, what=""):
        if not isinstance(x, list):
            self.fail(where, f"expected an array, got {_kind(x)}")
        if n is not None and len(x) != n:
            note = f" ({what})" if what else ""
            self.fail(where, f"expected {n} entries{note}, got {len(x)}")
        return x

    def floats(self, x, where, n=None, what="") -> np.ndarray:
        x = self.list(x, where, n, what)
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in x):
            self.fail(where, "expected an array of numbers")
        a = np.array(x, dtype=np.float64)
        if not np.all(np.isfinite(a)):
            self.fail(where, "holds a number too large for a float64")
        return a

    def ints(self, x, where, n=None, what="", low=None, high=None) -> np.ndarray:
        x = self.list(x, where, n, what)
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in x):
            self.fail(where, "expected an array of integers")
        big = next((v for v in x if not INT64[0] <= v <= INT64[1]), None)
        if big is not None:
            self.fail(where, f"entry {big} is out of range (beyond a 64-bit integer)")
        a = np.array(x, dtype=np.int64)
        if a.size and low is not None and a.min() < low:
            self.fail(where, f"entry {a.min()} is below {low}")
        if a.size and high is not None and a.max() >= high:
            self.fail(where, f"entry {a.max()} is out of range (must be < {high})")
        return a

    def numbers(self, x, where, n=None, what="") -> np.ndarray:
        """An array of numbers in which the strings "inf" and "-inf" stand for +-infinity."""
        x = self.list(x, where, n, what)
        inf = {"inf": math.inf, "-inf": -math.inf}
        if not all(v in inf if isinstance(v, str) else
                   isinstance(v, (int, float)) and not isinstance(v, bool) for v in x):
            self.fail(where, 'expected an array of numbers (or "inf", "-inf")')
        try:
            nums = [float(v) for v in x if not isinstance(v, str)]
        except OverflowError:
            nums = [math.inf]
        if not all(math.isfinite(v) for v in nums):
            self.fail(where, "holds a number too large for a float64")
        return np.array([inf[v] if isinstance(v, str) else v for v in x], dtype=np.float64)

    def number(self, x, where) -> float:
        if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
            self.fail(where, f"expected a finite number, got {x!r}")
        return float(x)

    def int(self, x, where, low=None, high=None) -> int:
        if isinstance(x, bool) or not isinstance(x, int):
            self.fail(where, f"expected an integer, got {x!r}")
        if not INT64[0] <= x <= INT64[1]:
            self.fail(where, f"{x} is out of range (beyond a 64-bit integer)")
        if (low is not None and x < low) or (high is not None and x >= high):
            self.fail(where, f"{x} is out of range [{low}, {high})")
        return x

    def str(self, x, where) -> str:
        if not isinstance(x, str):
            self.fail(where, f"expected a string, got {_kind(x)}")
        return x


def _kind(x) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean",
            type(None): "null"}.get(type(x), f"the number {x!r}" if isinstance(x, (int, float))
                                    else type(x).__name__)
