"""Mechanisms by name, from the entry-point groups dendrax.channels and dendrax.synapses."""

from __future__ import annotations

from .. import plugins
from .base import Channel, GradedSynapse, IonPool, Mechanism, Synapse
from .validation import check_mechanism


def channel(name: str) -> Mechanism:
    """The density mechanism (channel or ion pool) registered under ``name``, instantiated."""
    obj = plugins.load("dendrax.channels", name)
    kind = IonPool if isinstance(obj, type) and issubclass(obj, IonPool) else Channel
    mech = check_mechanism(obj, kind)
    name = name.rpartition(":")[2]  # "<package>:<name>" picks one of several providers
    if mech.name != name:
        raise plugins.PluginError(f"channel plugin registered as {name!r} declares name {mech.name!r}")
    return mech


def synapse(name) -> Synapse | GradedSynapse:
    """The synapse (event-driven or graded) registered under ``name``, instantiated; a
    synapse class or instance is checked and used as it is (as ``Cell.insert`` takes
    channels)."""
    if not isinstance(name, str):
        graded = isinstance(name, GradedSynapse) or (isinstance(name, type)
                                                     and issubclass(name, GradedSynapse))
        return check_mechanism(name, GradedSynapse if graded else Synapse)
    obj = plugins.load("dendrax.synapses", name)
    kind = GradedSynapse if isinstance(obj, GradedSynapse) or (
        isinstance(obj, type) and issubclass(obj, GradedSynapse)) else Synapse
    mech = check_mechanism(obj, kind)
    name = name.rpartition(":")[2]
    if mech.name != name:
        raise plugins.PluginError(f"synapse plugin registered as {name!r} declares name {mech.name!r}")
    return mech


def available() -> dict[str, dict[str, str]]:
    """group -> {name: providing package} for every registered mechanism and reader; a name
    several packages provide lists them all, marked as a conflict."""
    out = {}
    for g in plugins.GROUPS:
        table = {}
        for n, ps in sorted(plugins.providers(g).items()):
            table[n] = ps[0].package if len(ps) == 1 else (
                "CONFLICT: " + ", ".join(p.package for p in ps) + f" (pick one as '<package>:{n}')")
        out[g] = table
    return out
