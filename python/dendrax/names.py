"""The names of a cell's quantities: what can be set and recorded, what each must lie in.

Core quantities (cm, Ra, diam, L), ion values (NEURON's "ena", "cai0", ...), the
recordable membrane quantities and statistics, region aliases, the names a mechanism may
not take, and Jaxley's names for dendrax's. Units are NEURON's (uF/cm2, ohm cm, um, mM, mV).
"""

from __future__ import annotations

import re

import numpy as np

from .mechanisms.base import IONS
from .ranges import NONNEGATIVE, POSITIVE, Range, as_range

REDUCTIONS = (None, "max", "min", "mean")
MEMBRANE_UNITS = {"v": "mV", "i_cap": "mA/cm2", "i_membrane": "nA"}


def ion_quantity(name: str) -> str | None:
    """The ion of a recordable ion quantity: its current "i<ion>", reversal potential
    "e<ion>" or concentrations "<ion>i", "<ion>o" (NEURON's names); else None."""
    for ion in IONS:
        if name in (f"i{ion}", f"e{ion}", f"{ion}i", f"{ion}o"):
            return ion
    return None


REGION_ALIASES = {"apical": "apic", "basal": "dend"}
# names a user may mean for more than one region (refused, with the regions named)
AMBIGUOUS_REGIONS = frozenset({"dendrite", "dendrites", "all"})


def region_name(name: str) -> str:
    """The region a name selects: the aliases above, and NEURON Import3d's name of an SWC
    type's sections, "dend_7", for dendrax's "custom7"; a ValueError for a name that could
    mean several regions ("dendrites": basal and apical?) or NEURON's "all"."""
    if name in AMBIGUOUS_REGIONS:
        raise ValueError(
            f"where={name!r} is not a region: " + (
                "'dend' selects the basal dendrites (SWC type 3), 'apic' the apical ones "
                "(type 4); give where=['dend', 'apic'] for both" if name != "all" else
                "where=None (the default) selects every section"))
    custom = re.fullmatch(r"dend_(-?\d+)", name)
    return f"custom{int(custom[1])}" if custom else REGION_ALIASES.get(name, name)

# valid values and units of the core quantities (mechanisms declare their own ``ranges``)
# A section's length: below 1 nm (a membrane is ~5 nm thick) its axial conductance leaves
# the voltages around it to round-off (1e-15 um moved a passive cell at rest by 63 mV in
# 1 ms; NEURON gives a zero-length section 1e-9 um, off by 0.002 mV), and above 100 m
# (an axon is at most metres) the run overflows.
SECTION_LENGTH = Range(1e-3, 1e8)
# A diameter: positive and at most float32's largest, as NEURON stores diameters (pt3d
# points) and as set() takes them; in params beyond it (1e200 um) the areas overflowed
# and the run went NaN.
DIAMETER = Range(0.0, float(np.finfo(np.float32).max), strict=True)
CORE_RANGES = {"cm": (POSITIVE, "uF/cm2"), "Ra": (POSITIVE, "ohm cm"), "diam": (DIAMETER, "um"),
               "L": (SECTION_LENGTH, "um"), "delay": (NONNEGATIVE, "ms")}


def value_range(name: str, mech=None) -> tuple[Range | None, str]:
    """(valid range or None, unit) of a parameter: a core quantity, an ion value ("cai0",
    "ena", ...), or a parameter of ``mech``."""
    if mech is not None:
        if name in CORE_RANGES and name not in mech.params:  # a synapse's delay
            return CORE_RANGES[name]
        r = mech.ranges.get(name)
        return (None if r is None else as_range(r)), mech.units.get(name, "")
    if name in CORE_RANGES:
        return CORE_RANGES[name]
    for ion in IONS:
        if name in (f"{ion}i0", f"{ion}o", f"{ion}i"):
            return POSITIVE, "mM"
        if name == f"e{ion}":
            return None, "mV"
    return None, ""


RESERVED = ("v", "cm", "Ra", "diam", "L", "radius", "iclamp", "vclamp", "weight", "delay")


# Jaxley's parameter names -> dendrax's (units: Jaxley's radius and length um, its
# axial_resistivity ohm cm, capacitance uF/cm2, HH_g* S/cm2, as dendrax's)
JAXLEY_NAMES = {"radius": "diam (2 x radius)", "length": "L", "axial_resistivity": "Ra",
                "capacitance": "cm", "HH_gNa": "hh.gnabar", "HH_gK": "hh.gkbar",
                "HH_gLeak": "hh.gl", "HH_eLeak": "hh.el", "HH_eNa": "ena", "HH_eK": "ek"}


def check_name(name, what: str = "mechanism") -> None:
    """A mechanism's (or a population's: ``what``) name must be a plain identifier that no
    core quantity uses."""
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"{what} name {name!r} must be an identifier (letters, digits, _)")
    ion_names = {f"{p}{i}{q}" for i in IONS for p, q in (("e", ""), ("", "i"), ("", "i0"),
                                                         ("", "o"), ("i", ""))}
    if name in RESERVED or name in ion_names:
        raise ValueError(f"{what} name {name!r} is reserved (core names: {RESERVED} and ion "
                         f"names); rename the {what}")
