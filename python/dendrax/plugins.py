"""Discovery of plugins through Python entry points.

dendrax finds channels, synapses and morphology readers by name in the entry
point groups ``dendrax.channels``, ``dendrax.synapses`` and
``dendrax.morphology_readers``. Its own built-ins are registered the same way
in its pyproject.toml, so a third-party package is found exactly like them.
"""

from __future__ import annotations

import difflib
import warnings
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata
from typing import Any

GROUPS = ("dendrax.channels", "dendrax.synapses", "dendrax.morphology_readers")


class PluginError(ValueError):
    """A plugin name that is unknown, ambiguous or broken."""


@dataclass(frozen=True)
class Plugin:
    name: str
    group: str
    value: str  # "module:attribute"
    package: str  # distribution that provides it

    def load(self) -> Any:
        return metadata.EntryPoint(self.name, self.value, self.group).load()


def _entry_points(group: str):
    for dist in metadata.distributions():
        for ep in dist.entry_points:
            if ep.group == group:
                yield Plugin(ep.name, group, ep.value, dist.metadata["Name"])


@lru_cache(maxsize=None)
def plugins(group: str) -> dict[str, Plugin]:
    """Name -> Plugin for one group. Two packages providing one name is an error."""
    if group not in GROUPS:
        raise PluginError(f"unknown plugin group {group!r}; groups are {GROUPS}")
    found: dict[str, Plugin] = {}
    for p in _entry_points(group):
        other = found.get(p.name)
        if other is not None and (other.package, other.value) != (p.package, p.value):
            raise PluginError(
                f"{group}: the name {p.name!r} is provided by two packages, "
                f"{other.package!r} ({other.value}) and {p.package!r} ({p.value}); "
                "uninstall one of them")
        found[p.name] = p
    return found


@lru_cache(maxsize=None)
def _loaded(group: str, name: str) -> Any:
    return plugins(group)[name].load()


def load(group: str, name: str) -> Any:
    """The object registered under ``name`` in ``group``.

    Raises:
        PluginError: unknown name (with the nearest known names), or the plugin
            failed to import (with its package and error).
    """
    table = plugins(group)
    if name not in table:
        near = difflib.get_close_matches(name, list(table), n=3)
        hint = f"; did you mean {', '.join(map(repr, near))}?" if near else ""
        raise PluginError(f"no {group.split('.')[-1].rstrip('s')} named {name!r} "
                          f"(known: {', '.join(sorted(table)) or 'none'}){hint}")
    try:
        return _loaded(group, name)
    except Exception as err:  # noqa: BLE001 - a broken plugin must not take dendrax down
        p = table[name]
        raise PluginError(f"plugin {name!r} from package {p.package!r} ({p.value}) failed to "
                          f"load: {type(err).__name__}: {err}") from err


def load_all(group: str) -> dict[str, Any]:
    """Every loadable plugin of a group; broken ones are skipped with a warning."""
    out = {}
    for name, p in plugins(group).items():
        try:
            out[name] = _loaded(group, name)
        except Exception as err:  # noqa: BLE001
            warnings.warn(f"dendrax: plugin {name!r} from package {p.package!r} ({p.value}) "
                          f"failed to load and is skipped: {type(err).__name__}: {err}",
                          RuntimeWarning, stacklevel=2)
    return out


def clear_cache() -> None:
    """Forget discovered plugins (after installing a package at run time)."""
    plugins.cache_clear()
    _loaded.cache_clear()
