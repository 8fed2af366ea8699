"""What a mechanism or synapse can record, by name: the grammar of "<mechanism>.<q>" and
"<synapse>.<q>" recordings, shared by ``Cell.check_record`` (is it recordable, in what
unit) and lowering (where the simulation finds its value: ``Recording.source``). Where
several synapses of one kind share a node, "<synapse>[k].<q>" names the k-th of them
(``synapse_pick``)."""

from __future__ import annotations

import re
from typing import NamedTuple

from .mechanisms.base import Channel, IonPool
from .mechanisms.introspect import (assigned_names, channel_currents, solved_names,
                                    synapse_ion_currents)


class Quantity(NamedTuple):
    """A recordable quantity of one mechanism or synapse.

    Attributes:
        source: where the step's observations keep it: "channels" (a channel's or pool's
            state), "channel_currents", "channel_solved", "channel_assigned"; for a
            synapse "states", "synapse_assigned" or "currents" ("i", "g"), which lowering
            names by the synapse's kind ("synapses" / "graded", "synapse_currents" /
            "graded_currents").
        key: its key there (a current: the ion of ``current``'s dict, "" nonspecific).
        unit: its unit.
    """

    source: str
    key: str
    unit: str


def mechanism_quantity(mech, q: str) -> Quantity | None:
    """``q`` of a channel or ion pool (a state, current, solved or assigned value), None
    where it has none."""
    pool = f"{mech.ion}i" if isinstance(mech, IonPool) else None
    if q in mech.states or q == pool:
        return Quantity("channels", q, mech.units.get(q, "mM" if q == pool else "1"))
    currents = channel_currents(mech) if isinstance(mech, Channel) else {}
    if q in currents:
        return Quantity("channel_currents", currents[q], "mA/cm2")
    if q in solved_names(mech):
        return Quantity("channel_solved", q, mech.units.get(q, "1"))
    if q in assigned_names(mech):
        return Quantity("channel_assigned", q, mech.units.get(q, "1"))
    return None


def mechanism_recordables(mech) -> set[str]:
    """Every ``q`` of ``mechanism_quantity``'s for the channel or ion pool."""
    pool = {f"{mech.ion}i"} if isinstance(mech, IonPool) else set()
    currents = set(channel_currents(mech)) if isinstance(mech, Channel) else set()
    return set(mech.states) | pool | currents | set(assigned_names(mech)) | set(
        solved_names(mech))


def synapse_quantity(syn, q: str) -> Quantity | None:
    """``q`` of a synapse (a state, assigned value, its current "i", an ion's part of it
    "i<ion>", or its conductance "g"), None where it has none."""
    ions = synapse_ion_currents(syn)
    unit = syn.units.get(q, "nA" if q == "i" or q in ions else "uS" if q == "g" else "1")
    if q in syn.states:
        return Quantity("states", q, unit)
    if q in assigned_names(syn):
        return Quantity("synapse_assigned", q, unit)
    if q in ("i", "g") or q in ions:
        return Quantity("currents", q, unit)
    return None


_PICK = re.compile(r"^([^.\[\]]+)\[(\d+)\]\.([^.\[\]]+)$")


def synapse_pick(name: str) -> tuple[str, int | None]:
    """A recording's name without its pick, and the pick: ("Exp2Syn.g", 1) for
    "Exp2Syn[1].g" (the second Exp2Syn at the recorded node, counted from 0 in the order
    they were placed there), (name, None) for a name without one ("Exp2Syn.g", "v")."""
    m = _PICK.match(name) if isinstance(name, str) else None
    if m is None:
        return name, None
    return f"{m.group(1)}.{m.group(3)}", int(m.group(2))


def synapse_recordables(syn) -> set[str]:
    """Every ``q`` of ``synapse_quantity``'s for the synapse."""
    return set(syn.states) | set(assigned_names(syn)) | {"i", "g"} | set(
        synapse_ion_currents(syn))


def unrecordable(mech, q: str) -> str:
    """Why an NMODL mechanism's RANGE variable ``q`` cannot be recorded, for a message ("" if
    it does not declare it): the generated class lists them in ``unrecordable``."""
    why = getattr(mech, "unrecordable", {}).get(q)
    return "" if why is None else f" (its NMODL file declares RANGE {q}, but {why})"
