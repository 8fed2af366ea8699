"""Unit conversion factors, as NEURON's NMODL translator computes them.

An NMODL UNITS block may define named constants from units, e.g.
``FARADAY = (faraday) (coulombs)`` (96485.33... C/mol) or ``R = (k-mole) (joule/degC)``
(8.314... J/(K mol)): the value is how many of the second unit make one of the first.
NEURON reads its units database, ``nrnunits.lib`` (shipped with the neuron package,
modern CODATA 2018 constants), and so does this module; definitions of the mod file's own
units (``(mM) = (millimolar)``) extend it.

The database format (that of Unix ``units``): one ``name definition`` per line, ``/``
starts a comment; a definition is a product of factors separated by spaces or ``-``, with
one ``/`` dividing (everything after it is in the denominator); a factor is a number
(``1.602176634-19`` is 1.602176634e-19, ``1|180`` is 1/180), a unit name, optionally
with an SI prefix and a plural ``s``, and a trailing digit is a power (``cm2``). Primitive
units are written ``*a*`` ... .
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

# SI prefixes (the database lists them only as comments: NEURON's units reader knows them)
PREFIXES = {
    "yotta": 1e24, "zetta": 1e21, "exa": 1e18, "peta": 1e15, "tera": 1e12, "giga": 1e9,
    "mega": 1e6, "myria": 1e4, "kilo": 1e3, "hecto": 1e2, "deka": 1e1, "deci": 1e-1,
    "centi": 1e-2, "milli": 1e-3, "micro": 1e-6, "nano": 1e-9, "pico": 1e-12, "femto": 1e-15,
    "atto": 1e-18, "zepto": 1e-21, "zopto": 1e-21, "yocto": 1e-24,
    "Y": 1e24, "Z": 1e21, "E": 1e18, "P": 1e15, "T": 1e12, "G": 1e9, "M": 1e6, "k": 1e3,
    "h": 1e2, "da": 1e1, "d": 1e-1, "c": 1e-2, "m": 1e-3, "u": 1e-6, "n": 1e-9, "p": 1e-12,
    "f": 1e-15, "a": 1e-18, "z": 1e-21, "y": 1e-24,
}


class UnitError(ValueError):
    """A unit the database does not know, or two units of different dimensions."""


def _database_path() -> Path:
    from importlib.util import find_spec

    spec = find_spec("neuron")
    if spec is None or spec.origin is None:
        raise UnitError("unit factors need NEURON's units database: pip install 'dendrax[nmodl]'")
    base = Path(spec.origin).parent / ".data" / "share"
    for p in (base / "nrn" / "lib" / "nrnunits.lib", base / "nmodl" / "nrnunits.lib"):
        if p.exists():
            return p
    raise UnitError(f"nrnunits.lib not found under {base}")


@lru_cache(maxsize=None)
def _database() -> dict[str, str]:
    table = {}
    for line in _database_path().read_text().splitlines():
        line = line.split("/", 1)[0] if line.startswith("/") else line
        if not line.strip() or line[0].isspace():
            continue
        name, _, definition = line.partition(" ") if " " in line.split("\t")[0] else \
            line.partition("\t")
        table.setdefault(name.strip(), definition.strip())
    return table


class Units:
    """A unit system: NEURON's database plus the mod file's own definitions.

    ``value(text)`` is (factor, dimensions) of a unit expression, dimensions a tuple of
    powers of the primitive units.
    """

    def __init__(self, extra: dict[str, str] | None = None):
        self.db = dict(_database())
        self.primitives = sorted(k for k, d in self.db.items() if re.fullmatch(r"\*\w\*", d))
        self.db.update(extra or {})
        self._cache: dict[str, tuple[float, tuple]] = {}

    def define(self, name: str, definition: str) -> None:
        """A mod file's ``(name) = (definition)``."""
        self.db[name] = definition
        self._cache.clear()

    def _dims(self, name):
        return tuple(1 if p == name else 0 for p in self.primitives)

    def _name(self, word: str, depth: int):
        """(factor, dims) of one unit name, with prefixes, plurals and a power digit."""
        if word in self._cache:
            return self._cache[word]
        power, out = 1, self._lookup(word, depth)
        m = re.fullmatch(r"(.*[^\d])(\d)", word)
        if out is None and m:
            power, out = int(m.group(2)), self._lookup(m.group(1), depth)
        if out is None:
            raise UnitError(f"unknown unit {word!r}")
        out = (out[0] ** power, tuple(d * power for d in out[1]))
        self._cache[word] = out
        return out

    def _lookup(self, word, depth):
        if word in self.db:
            d = self.db[word]
            if re.fullmatch(r"\*\w\*", d):
                return 1.0, self._dims(word)
            return self.value(d, depth + 1)
        if word.endswith("s") and len(word) > 2 and word[:-1] in self.db:  # plurals
            return self._lookup(word[:-1], depth)
        for p in sorted(PREFIXES, key=len, reverse=True):  # longest prefix first
            if word.startswith(p) and len(word) > len(p):
                rest = self._lookup(word[len(p):], depth)
                if rest is not None:
                    return PREFIXES[p] * rest[0], rest[1]
        if word in PREFIXES:  # a prefix alone is its number: (mM) = (milli/liter)
            return PREFIXES[word], (0,) * len(self.primitives)
        return None

    def value(self, text: str, depth: int = 0):
        """(factor, dims) of a unit expression such as "joule/degC" or "1.602176634-19 coul"."""
        if depth > 50:
            raise UnitError(f"unit definitions loop at {text!r}")
        text = text.strip()
        factor, dims = 1.0, (0,) * len(self.primitives)
        num, _, den = text.partition("/")
        for part, sign in ((num, 1), (den, -1)):
            for word in re.split(r"[\s\-]+(?![\d.])|\s+", part.strip()):
                if not word:
                    continue
                f, d = self._factor(word, depth)
                factor = factor * f if sign > 0 else factor / f
                dims = tuple(a + sign * b for a, b in zip(dims, d))
        return factor, dims

    def _factor(self, word, depth):
        if re.fullmatch(r"[\d.]+([+-]\d+)?(\|[\d.]+([+-]\d+)?)?", word):
            a, _, b = word.partition("|")
            x = _number(a) / (_number(b) if b else 1.0)
            return x, (0,) * len(self.primitives)
        return self._name(word, depth)

    def factor(self, unit1: str, unit2: str) -> float:
        """How many ``unit2`` make one ``unit1`` (NMODL's ``name = (unit1) (unit2)``)."""
        f1, d1 = self.value(unit1)
        f2, d2 = self.value(unit2)
        if d1 != d2:
            raise UnitError(f"({unit1}) and ({unit2}) have different dimensions")
        return f1 / f2


def _number(text: str) -> float:
    """A database number: "1.602176634-19" is 1.602176634e-19 (parsed exactly)."""
    m = re.fullmatch(r"([\d.]+)([+-]\d+)?", text)
    return float(f"{m.group(1)}e{m.group(2)}") if m.group(2) else float(m.group(1))
