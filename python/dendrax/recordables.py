"""What a mechanism or synapse can record, by name: the grammar of "<mechanism>.<q>" and
"<synapse>.<q>" recordings, shared by ``check_record`` (is it recordable at a location of
a cell, in what unit: ``Cell.check_record``) and lowering (where the simulation finds its
value: ``Recording.source``). Where several synapses of one kind share a node,
"<synapse>[k].<q>" names the k-th of them (``synapse_pick``)."""

from __future__ import annotations

import re
from typing import NamedTuple

from .locations import Location
from .mechanisms.base import Channel, IonPool
from .mechanisms.introspect import (assigned_names, channel_currents, solved_names,
                                    synapse_ion_currents)
from .names import MEMBRANE_UNITS, ion_quantity


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


def check_record(cell, name: str, loc: Location, *, synapses=None) -> str:
    """The unit of ``name`` at ``loc`` of ``cell``, or a ValueError unless it can be
    recorded there (``synapses``: {name: mechanism} of synapse kinds placed from outside
    the cell, e.g. by a network): ``Cell.check_record``."""
    node = cell.node(loc)
    if name in MEMBRANE_UNITS:
        return MEMBRANE_UNITS[name]
    name, pick = synapse_pick(name)  # "Exp2Syn[1].g": one of several at a node
    kind, _, q = name.partition(".")
    if pick is not None and kind not in {*(synapses or {}), *cell.stimuli.spikes}:
        hint = (f"record {name!r}" if kind in cell.mechanisms else
                "a network's connections are recorded by the network: net.record(...)")
        raise ValueError(f"cannot record '{kind}[{pick}].{q}': [{pick}] picks one of the "
                         f"synapses of a kind at a node, and this cell has no {kind} "
                         f"synapse; {hint}")
    segment = cell.segment_node(loc)  # range variables: the segment's (NEURON's)
    mech, dot, q = name.partition(".")
    ion = ion_quantity(name)
    if ion is not None:  # ina; ena, nai, nao
        # a channel or pool there, a synapse of this cell there carrying the ion, or a
        # kind of synapse a network places that carries it
        if not (any(ion in m.ions or getattr(m, "ion", None) == ion
                    for k, m in cell.mechanisms.items() if cell.mechanism_nodes[k][segment])
                or any(ion in m.ions and any(x[0] in (node, segment) for x in items)
                       for m, items in cell.stimuli.spikes.values())
                or any(ion in m.ions for m in (synapses or {}).values())):
            raise ValueError(f"cannot record {name!r} at {location_message(cell, loc)}: no "
                             f"mechanism there uses {ion}")
        return {"i": "mA/cm2", "e": "mV"}.get(name[0], "mM")
    if name in ("iclamp.i", "vclamp.i"):
        clamps = cell.stimuli.iclamp + cell.stimuli.waveform if mech == "iclamp" \
            else cell.stimuli.vclamp
        if not any(c[0] == node for c in clamps):
            raise ValueError(f"cannot record {name!r} at {loc}: no {mech} there")
        return "nA"
    kinds = {**(synapses or {}), **{k: m for k, (m, _) in cell.stimuli.spikes.items()}}
    if mech in kinds:
        if mech in cell.stimuli.spikes and not (synapses and mech in synapses) and \
                not any(x[0] == node for x in cell.stimuli.spikes[mech][1]):
            raise ValueError(f"cannot record {name!r} at {loc}: no {mech} synapse there")
        syn = kinds[mech]
        found = synapse_quantity(syn, q)
        if found is not None:
            return found.unit
        raise ValueError(f"{mech} has no state or assigned variable {q!r}; record one of "
                         f"{sorted(synapse_recordables(syn))}{unrecordable(syn, q)}")
    if not dot:
        hint = neuron_spelling(cell, name)
        raise ValueError(f"cannot record {name!r}{hint}: record one of "
                         f"{sorted(MEMBRANE_UNITS)}, an ion's current (ina, ik, ica), "
                         "reversal potential (ena, ek, eca) or concentrations (nai, nao, "
                         "cai, ...), '<mechanism>.<state, current or assigned>' or "
                         "'iclamp.i' / 'vclamp.i'")
    if mech not in cell.mechanisms:
        raise ValueError(f"cannot record {name!r}: {mech!r} is not inserted in this cell")
    m = cell.mechanisms[mech]
    found = mechanism_quantity(m, q)
    if found is None:
        raise ValueError(f"{mech} has no state, current, assigned or solved variable {q!r}; "
                         f"record one of {sorted(mechanism_recordables(m))}"
                         f"{unrecordable(m, q)}")
    if not cell.mechanism_nodes[mech][segment]:
        raise ValueError(f"cannot record {name!r} at {location_message(cell, loc)}: {mech} is not "
                         "inserted there")
    return found.unit


def neuron_spelling(cell, name: str) -> str:
    """A hint where ``name`` is NEURON's <variable>_<suffix> of an inserted mechanism
    (gna_hh, m_NaTa_t) and that variable is recordable: "" otherwise."""
    for mech in sorted(cell.mechanisms, key=len, reverse=True):
        var = name[:-len(mech) - 1] if name.endswith("_" + mech) else ""
        if var and var in mechanism_recordables(cell.mechanisms[mech]):
            return f" (NEURON's {name} is {mech}.{var} here)"
    return ""


def location_message(cell, loc: Location) -> str:
    """A location's name for messages; at a section end, the segment NEURON reads."""
    name = cell.location_name(loc)
    if loc.x not in (0.0, 1.0):
        return name
    seg = cell.compartments.x[cell.segment_node(loc)]
    which = "first" if loc.x == 0.0 else "last"
    return (f"{name} (a range variable at x = {loc.x:g} is the {which} segment's, "
            f"{cell.location_name(Location(loc.section, float(seg)))}; v and i_membrane are "
            "the end node's)")
