"""The parsers of specs: config files (TOML), option values, locations and cell
selections; every bad value raises ``SpecError`` naming where it came from."""

from __future__ import annotations

import difflib

import re
from typing import Mapping

import numpy as np


class SpecError(ValueError):
    """A bad value in a spec (a config file or a command-line option); one-line message."""


# a region is named as SWC's (soma, dend, custom7, custom-3: dendrax.morphology.swc)
LOCATION = re.compile(r"^\s*(?P<sec>[A-Za-z_][A-Za-z0-9_-]*(\[\d+\])?|\d+)\s*"
                      r"(\(\s*(?P<x>[0-9.eE+-]+)\s*\))?\s*$")
CELL_LOCATION = re.compile(
    r"^\s*cell\s*(?:\[\s*(?P<i>\d+)\s*\]\s*|(?P<j>\d+)(?:\s+|$))(?P<loc>.*?)\s*$")


# --- config files ---------------------------------------------------------------------------
def load_toml(path) -> dict:
    """A TOML file as a dict; unreadable or invalid files raise SpecError."""
    try:
        import tomllib
    except ImportError:  # Python < 3.11
        import tomli as tomllib
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except OSError as err:
        raise SpecError(f"cannot read config {path}: {err.strerror}") from None
    except tomllib.TOMLDecodeError as err:
        raise SpecError(f"config {path} is not valid TOML: {err}") from None
    except UnicodeDecodeError:
        raise SpecError(f"config {path} is not valid TOML: not UTF-8 text") from None


def check_keys(table, known, where: str) -> None:
    """SpecError naming the keys of ``table`` not in ``known``; ``where`` names the table."""
    if not isinstance(table, Mapping):
        raise SpecError(f"{where} must be a table, got {table!r}")
    unknown = set(table) - set(known)
    if unknown:
        raise SpecError(f"unknown config key(s) {sorted(unknown)} in {where}; known: "
                        f"{sorted(known)}" + did_you_mean(unknown, known))


def did_you_mean(unknown, known) -> str:
    """" (did you mean 'mechanisms'?)" for the known names nearest the unknown ones."""
    near = sorted({m for u in unknown for m in difflib.get_close_matches(str(u), list(known), 1)})
    return f" (did you mean {', '.join(map(repr, near))}?)" if near else ""


def get_number(table, key, default=None, *, positive=False, integer=False, prefix=""):
    """``table[key]`` (or ``default``) as a float (an int with ``integer``), checked finite
    (and > 0 with ``positive``); errors read ``f"{prefix}{key} must be ..."``."""
    value = table.get(key, default)
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and np.isfinite(value)
    if ok and integer:
        ok = isinstance(value, int) or float(value).is_integer()
    if not ok or (positive and value <= 0):
        kind = "a positive " if positive else ("an " if integer else "a finite ")
        raise SpecError(f"{prefix}{key} must be {kind}{'integer' if integer else 'number'}, "
                        f"got {value!r}")
    return int(value) if integer else float(value)


def get_strings(table, key, where: str):
    """``table[key]`` as a list of strings (a single string becomes a list), or None."""
    value = table.get(key)
    if value is None:
        return None
    value = [value] if isinstance(value, str) else value
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise SpecError(f"{where} {key} must be a string or a list of strings, got {value!r}")
    return list(value)


# --- locations ------------------------------------------------------------------------------
def split_where(text: str) -> tuple[str, str | None]:
    """``"hh.gnabar=0.2@soma"`` -> ``("hh.gnabar=0.2", "soma")``; no ``@``: ``(text, None)``."""
    value, _, where = text.partition("@")
    return value.strip(), (where.strip() or None)


def parse_location(cell, text: str):
    """A Location on ``cell`` (a Cell, or a network's cell view): ``"soma(0.5)"``, a section
    index ``"12(0.3)"``, or the k-th section of a region ``"apic[2](1)"``; x defaults to 0.5."""
    m = LOCATION.match(text)
    if not m:
        raise SpecError(f"bad location {text!r}; use e.g. soma(0.5), 12(0.3) or apic[2](1)")
    sec = m.group("sec")
    try:
        x = float(m.group("x") or 0.5)
    except ValueError:
        raise SpecError(f"bad location {text!r}: x {m.group('x')!r} is not a number; use "
                        "e.g. soma(0.5), 12(0.3) or apic[2](1)") from None
    if sec.isdigit():
        return cell.section(int(sec))(x)
    region, _, k = sec.partition("[")
    secs = cell.sections(region)
    k = int(k.rstrip("]") or 0)
    if k >= len(secs):
        raise SpecError(f"{region} has {len(secs)} sections, no [{k}]")
    return cell.section(secs[k])(x)


def default_site(cell) -> str:
    """Where a clamp, recording or spike record without a location goes: ``"soma(0.5)"``,
    or on a cell without a soma (many reconstructions) the middle of section 0,
    ``"0(0.5)"``."""
    return "soma(0.5)" if "soma" in cell.regions() else "0(0.5)"


def parse_where(cell, where):
    """What ``Cell.insert``/``set`` take from text: None, a region name, a section index
    (``"3"``) or a location (``"dend[0](0.5)"``)."""
    if where is None:
        return None
    where = str(where).strip()
    if "(" in where:
        return parse_location(cell, where)
    return int(where) if where.isdigit() else where


def parse_cells(value, n_cells: int, what: str) -> list[int]:
    """Cell indices from an int, a range string ``"a:b"`` (cells a to b - 1; ``":10"``,
    ``"5:"`` and a step ``"0:50:2"`` as in Python), a digit string, or a list of these;
    each must lie in [0, n_cells)."""
    items = value if isinstance(value, list) else [value]
    out: list[int] = []
    for item in items:
        if isinstance(item, bool) or not isinstance(item, (int, str)):
            raise SpecError(f"{what} must be a cell index, a range \"a:b\" or a list of them, "
                            f"got {value!r}")
        if isinstance(item, str) and ":" in item:
            try:
                parts = [int(p) if p.strip() else None for p in item.split(":")]
                negative = any(p is not None and p < 0 for p in parts)
                if len(parts) > 3 or negative or parts[2:] == [0]:
                    raise ValueError
            except ValueError:
                raise SpecError(f"{what}: bad range {item!r}; use e.g. \"0:50\" (cells 0 to "
                                f"49) or \"0:50:2\"") from None
            start, stop = parts[0] or 0, parts[1] if parts[1] is not None else n_cells
            if stop > n_cells or start >= stop:
                raise SpecError(f"{what}: range {item!r} does not fit the network's {n_cells} "
                                f"cells (0 to {n_cells - 1})")
            out.extend(range(start, stop, parts[2] if len(parts) == 3 and parts[2] else 1))
            continue
        try:
            index = int(item)
        except ValueError:
            raise SpecError(f"{what}: bad cell index {item!r}") from None
        if not 0 <= index < n_cells:
            raise SpecError(f"{what}: cell {index} out of range (the network has {n_cells} "
                            f"cells)")
        out.append(index)
    return out


def parse_cell_location(net, text: str, what: str = "location"):
    """``"cell 2 soma(0.5)"`` (also ``"cell[2] dend[0](1)"``; no location: its soma, or
    ``default_site``) -> a Location on cell 2 of ``net``."""
    m = CELL_LOCATION.match(text)
    if not m:
        raise SpecError(f"{what}: bad location {text!r}; use e.g. \"cell 2 soma(0.5)\"")
    index = int(m.group("i") or m.group("j"))
    if not 0 <= index < len(net):
        raise SpecError(f"{what}: cell {index} out of range (the network has {len(net)} cells)")
    try:
        return parse_location(net.cell(index), m.group("loc") or default_site(net.cell(index)))
    except (ValueError, IndexError) as err:
        raise SpecError(f"{what} {text!r}: {err}") from None
