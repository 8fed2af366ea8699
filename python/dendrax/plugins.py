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

GROUPS = ("dendrax.channels", "dendrax.synapses", "dendrax.point_neurons",
          "dendrax.morphology_readers")


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
def providers(group: str) -> dict[str, tuple[Plugin, ...]]:
    """Name -> every distinct provider of it in one group (almost always one)."""
    if group not in GROUPS:
        raise PluginError(f"unknown plugin group {group!r}; groups are {GROUPS}")
    found: dict[str, list[Plugin]] = {}
    for p in _entry_points(group):
        same = found.setdefault(p.name, [])
        if all((q.package, q.value) != (p.package, p.value) for q in same):
            same.append(p)
    return {name: tuple(ps) for name, ps in found.items()}


def plugins(group: str) -> dict[str, Plugin]:
    """Name -> Plugin for the names of one group that exactly one package provides."""
    return {name: ps[0] for name, ps in providers(group).items() if len(ps) == 1}


def conflicts(group: str) -> dict[str, tuple[Plugin, ...]]:
    """Names that two or more packages provide (unusable by the bare name)."""
    return {name: ps for name, ps in providers(group).items() if len(ps) > 1}


def _normal(package: str) -> str:
    return package.lower().replace("_", "-")


# what a NEURON user may reach for under a plugin's name, and where dendrax has it
ELSEWHERE = {"iclamp": "an electrode: cell.iclamp(loc, delay=, dur=, amp=)",
             "seclamp": "an electrode: cell.vclamp(loc, amp=, dur=)",
             "vclamp": "an electrode: cell.vclamp(loc, amp=, dur=)",
             "netstim": "a spike source: cell.synapse(name, loc, spike_times=...), "
                        "Network.spike_source or Network.poisson_source",
             "expsyn": "NEURON's ExpSyn: load NEURON's expsyn.mod with dendrax.nmodl.load "
                       "(docs/nmodl.md), or use Exp2Syn",
             "alphasynapse": "NEURON's AlphaSynapse (a conductance at a fixed onset time): "
                             "Exp2Syn with tau1 = tau2 is the alpha function, peaking at its "
                             "weight: cell.synapse(\"Exp2Syn\", loc, spike_times=[onset], "
                             "tau1=tau, tau2=tau, weight=gmax)"}
# the other group a mechanism name may belong to, and how that kind is placed
PLACED = {"dendrax.channels": ("dendrax.synapses", "a synapse: place it with "
                               "cell.synapse(name, loc, ...) or Network.connect"),
          "dendrax.synapses": ("dendrax.channels", "a channel: insert it with "
                               "cell.insert(name)")}


def _hint(group: str, bare: str, table: dict) -> str:
    """How to fix an unknown name: where it is registered under another kind, what
    dendrax has built in instead, or the nearest names (ignoring case)."""
    other = PLACED.get(group)
    if other and bare in providers(other[0]):
        return f"; {bare!r} is {other[1]}"
    if bare.lower() in ELSEWHERE:
        return f"; {bare!r} is {ELSEWHERE[bare.lower()]}"
    lower = {k.lower(): k for k in table}
    near = [lower[k] for k in difflib.get_close_matches(bare.lower(), list(lower), n=3)]
    return f"; did you mean {', '.join(map(repr, near))}?" if near else ""


def resolve(group: str, name: str) -> Plugin:
    """The plugin ``name`` names: a registered name, or "<package>:<name>" to pick one
    provider of a name that several packages register.

    Raises:
        PluginError: unknown name (with the nearest known names), or a name two packages
            provide (naming both and how to pick one).
    """
    package, _, bare = name.rpartition(":")
    table = providers(group)
    kind = group.split(".")[-1].rstrip("s")
    if bare not in table:
        raise PluginError(f"no {kind} named {bare!r} (known: {', '.join(sorted(table)) or 'none'})"
                          f"{_hint(group, bare, table)}")
    found = table[bare]
    if package:
        chosen = [p for p in found if _normal(p.package) == _normal(package)]
        if not chosen:
            raise PluginError(f"package {package!r} provides no {kind} named {bare!r}; it is "
                              f"provided by {', '.join(repr(p.package) for p in found)}")
        return chosen[0]
    if len(found) > 1:
        listing = " and ".join(f"{p.package!r} ({p.value})" for p in found)
        raise PluginError(f"{group}: the name {bare!r} is provided by {len(found)} packages, "
                          f"{listing}; pick one as '{found[0].package}:{bare}' (or uninstall one)")
    return found[0]


@lru_cache(maxsize=None)
def _loaded(plugin: Plugin) -> Any:
    return plugin.load()


def load(group: str, name: str) -> Any:
    """The object registered under ``name`` in ``group`` ("<package>:<name>" picks one of
    several providers).

    Raises:
        PluginError: unknown or ambiguous name (see ``resolve``), or the plugin failed to
            import (with its package and error).
    """
    p = resolve(group, name)
    try:
        return _loaded(p)
    except Exception as err:  # noqa: BLE001 - a broken plugin must not take dendrax down
        raise PluginError(f"plugin {p.name!r} from package {p.package!r} ({p.value}) failed to "
                          f"load: {type(err).__name__}: {err}") from err


def load_all(group: str) -> dict[str, Any]:
    """Every loadable plugin of a group with one provider; broken ones are skipped with a
    warning (names several packages provide are left out: see ``conflicts``)."""
    out = {}
    for name, p in plugins(group).items():
        try:
            out[name] = _loaded(p)
        except Exception as err:  # noqa: BLE001
            warnings.warn(f"dendrax: plugin {name!r} from package {p.package!r} ({p.value}) "
                          f"failed to load and is skipped: {type(err).__name__}: {err}",
                          RuntimeWarning, stacklevel=2)
    return out


def clear_cache() -> None:
    """Forget discovered plugins (after installing a package at run time)."""
    providers.cache_clear()
    _loaded.cache_clear()
