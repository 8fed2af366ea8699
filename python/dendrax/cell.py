"""Describing a cell: insert mechanisms, set parameters, stimulate, record.

A ``Cell`` records what the user asks for, over a morphology and its
compartments (in the cell's own node numbering). ``dendrax.lowering.lower``
turns it (alone or in a ``Network``) into what the time loop needs: a static
``Model``, a params pytree and a ``Layout``.
"""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass
from typing import Iterable

import jax
import numpy as np

from . import morphology as morph_lib
from .morphology.morphology import pt3d_float32
from .extracellular import fields
from .locations import Location, SectionRef, locations_in
from .lowering import lower
from .quantities import is_number, magnitude, real_array
from . import plugins
from .mechanisms import registry
from .mechanisms.base import IONS, Channel, IonPool, Synapse
from .ranges import NONNEGATIVE
from . import recordables
from .mechanisms.introspect import concentrations_read
from .mechanisms.validation import check_mechanism
from .names import (CORE_RANGES, JAXLEY_NAMES, REDUCTIONS, REGION_ALIASES, check_name,
                    region_name, value_range)


def _same_settings(a, b) -> bool:
    """Whether two instances of one mechanism class carry the same attributes."""
    try:
        return bool(vars(a) == vars(b))
    except Exception:  # e.g. arrays among the attributes: compare them as lists
        try:
            return {k: np.asarray(v).tolist() for k, v in vars(a).items()} == \
                {k: np.asarray(v).tolist() for k, v in vars(b).items()}
        except Exception:
            return False


@dataclass
class Stimuli:
    """What a cell's stimuli are, as given (nodes in the cell's own numbering)."""

    iclamp: list  # (node, delay, dur, amp)
    waveform: list  # (node, t array, i array)
    vclamp: list  # (node, amps[3], durs[3], rs)
    spikes: dict  # synapse name -> (mechanism, [(node, params incl. weight and delay, times)])


class Cell:
    """A neuron: morphology, segmentation, mechanisms, parameters, stimuli, recordings.

    Args:
        morphology: a ``dendrax.morphology.Morphology`` (e.g. from ``read_morphology``).
        nseg: segments per section: an int (default 1), a sequence (one per section),
            or "d_lambda" (NEURON's d_lambda rule with ``d_lambda``, default 0.1, and
            ``freq``, default 100 Hz).
        max_length: instead of nseg, the longest segment allowed (um).
        Ra: axial resistivity, ohm cm (every section; change with ``set``).
        cm: specific membrane capacitance, uF/cm2.
    """

    def __init__(self, morphology, *, nseg=None, max_length=None, d_lambda=None, freq=None,
                 Ra=35.4, cm=1.0):
        max_length, d_lambda, freq, Ra, cm = (
            magnitude(v, unit, name) for v, unit, name in
            ((max_length, "um", "max_length"), (d_lambda, "1", "d_lambda"), (freq, "Hz", "freq"),
             (Ra, "ohm cm", "Ra"), (cm, "uF/cm2", "cm")))
        if not isinstance(morphology, morph_lib.Morphology):
            hint = (": read a file with dx.read_morphology(path)"
                    if isinstance(morphology, (str, os.PathLike)) else "")
            raise TypeError(f"Cell takes a dendrax Morphology, got {type(morphology).__name__}"
                            + hint)
        for name, value in (("Ra", Ra), ("cm", cm)):  # before they set a segmentation
            if np.ndim(value) or isinstance(value, (str, bytes, bool)):
                raise ValueError(f"{name} must be one number ({CORE_RANGES[name][1]}; per "
                                 f"section or node: cell.set), got {value!r}")
            _check_finite(name, value)
            CORE_RANGES[name][0].check(name, value, CORE_RANGES[name][1])
        morph_lib.refuse_zero_length(morphology)
        self.morphology = morphology
        n_sec = len(morphology.sections)
        nseg = morph_lib.resolve_nseg(morphology, nseg, max_length, d_lambda, freq, Ra, cm)
        nseg.flags.writeable = False
        self._nseg = nseg
        self.ends: tuple = ()  # (section, x) ends whose zero-area node is kept (point_node)
        self.compartments = morph_lib.compartments(morphology, nseg)
        n = len(self.compartments.parent)
        self.frustums = morph_lib.frustum_table(morphology, nseg)
        self.revision = 0  # counts changes, so lowerings can be cached
        self.values = {
            "diam": morphology.point_diameters,  # float32, as NEURON holds them
            "L": np.array(morphology.lengths, float),
            "cm": np.full(n, float(cm)),
            "Ra": np.full(n_sec, float(Ra)),
            "ions": {},
            "mechs": {},
        }
        for ion in IONS.values():
            self.values["ions"].update({
                f"e{ion.name}": np.full(n, ion.e),
                f"{ion.name}i0": np.full(n, ion.ci),
                f"{ion.name}o": np.full(n, ion.co)})
        self.mechanisms: dict[str, object] = {}  # name -> mechanism, insertion order
        self.mechanism_nodes: dict[str, np.ndarray] = {}  # name -> bool [N]
        self.stimuli = Stimuli([], [], [], {})
        self._recordings: list[tuple[str, Location, str | None]] = []  # (name, loc, reduce)
        self.spike_records: list[tuple[int, float, float]] = []  # (section, x, threshold)
        self.field_records: list = []  # extracellular readouts (dendrax.extracellular)

    # --- construction shortcuts -------------------------------------------
    @classmethod
    def from_sections(cls, sections: list[dict], **kwargs) -> "Cell":
        """A cell from programmatic sections (see ``Morphology.from_sections``; lengths and
        diameters in um)."""
        sections = [{k: magnitude(v, "um", k) if k in ("length", "diam", "diams") else v
                     for k, v in s.items()} if isinstance(s, dict) else s for s in sections]
        return cls(morph_lib.Morphology.from_sections(sections), **kwargs)

    @classmethod
    def ball_and_stick(cls, *, soma_diam=20.0, soma_length=20.0, dend_length=200.0,
                       dend_diam=1.0, **kwargs) -> "Cell":
        """A soma with one dendrite attached at soma(1)."""
        return cls.from_sections([
            {"length": soma_length, "diam": soma_diam, "parent": -1, "region": "soma"},
            {"length": dend_length, "diam": dend_diam, "parent": 0, "parent_x": 1.0,
             "region": "dend"},
        ], **kwargs)

    @property
    def nseg(self) -> np.ndarray:
        """Segments per section, int [sections] (read-only: fixed when the cell is built)."""
        return self._nseg

    @nseg.setter
    def nseg(self, value):
        raise AttributeError("a Cell's nseg is fixed when it is built (its compartments, "
                             "values and stimuli are laid out on it): build a new one, "
                             "dx.Cell(morphology, nseg=...)")

    # --- locations --------------------------------------------------------
    @property
    def n_nodes(self) -> int:
        """The solver's nodes: one per segment centre, plus NEURON's zero-area nodes where
        sections join and at section ends where a point process sits (no membrane, so no
        mechanism sits there); ``cell.nodes()`` lists the segment centres."""
        return len(self.compartments.parent)

    def section(self, index) -> SectionRef:
        """Section ``index`` (an int, negative from the end), or by NEURON's name: "apic[2]",
        the k-th section of a region in the cell's order, or "soma" for a region's only
        section."""
        n = len(self.morphology.sections)
        if isinstance(index, str):
            return self.section(self._named_section(index))
        if isinstance(index, (bool, np.bool_)) or isinstance(index, bytes) \
                or np.ndim(index) != 0 or np.asarray(index).dtype.kind not in "iu":
            raise TypeError(f"section index must be a whole number or a name such as "
                            f"'apic[2]', got {index!r}")
        index = int(index)
        if not -n <= index < n:
            raise IndexError(f"section {index} out of range: the cell has {n} sections")
        index %= n
        return SectionRef(index, self.morphology.sections[index].region)

    def _named_section(self, name: str) -> int:
        m = re.fullmatch(r"\s*([A-Za-z_][\w-]*)\s*(?:\[\s*(\d+)\s*\])?\s*", name)
        if not m:
            raise ValueError(f"section name {name!r}: give a region and an index, e.g. "
                             "'apic[2]', or an int")
        secs = self.sections(m[1])
        if m[2] is None:
            if len(secs) != 1:
                raise ValueError(f"region {m[1]!r} has {len(secs)} sections: name one, e.g. "
                                 f"'{m[1]}[0]'")
            return secs[0]
        k = int(m[2])
        if k >= len(secs):
            raise IndexError(f"{m[1]}[{k}]: region {m[1]!r} has {len(secs)} sections")
        return secs[k]

    def soma(self, x: float = 0.5) -> Location:
        secs = self.sections("soma")
        if not secs:
            raise ValueError("this cell has no soma section")
        return self.section(secs[0])(x)

    def regions(self) -> list[str]:
        return sorted({s.region for s in self.morphology.sections})

    def sections(self, where=None) -> list[int]:
        """Section indices of ``where``: None (all), a region name, an index, a SectionRef, or a list."""
        n = len(self.morphology.sections)
        if where is None:
            return list(range(n))
        if isinstance(where, str) and "[" in where:  # a section by NEURON's name
            return [self._named_section(where)]
        if isinstance(where, str):  # a region of the cell, or an alias
            region = where if where in self.regions() else region_name(where)
            secs = [i for i, s in enumerate(self.morphology.sections) if s.region == region]
            if not secs:
                present = set(self.regions())
                names = self.regions() + [a for a, r in REGION_ALIASES.items() if r in present]
                near = [m for m in difflib.get_close_matches(where, names, n=3) if m != where]
                raise ValueError(f"no sections in region {where!r}; regions of this cell: "
                                 f"{self.regions()}" + (f" (did you mean {near}?)" if near else ""))
            return secs
        if isinstance(where, SectionRef):
            return [where.index]
        if isinstance(where, (int, np.integer)) and not isinstance(where, (bool, np.bool_)):
            return [self.section(int(where)).index]
        if isinstance(where, Location):
            return [where.section]
        if isinstance(where, Iterable):
            return sorted({i for w in where for i in self.sections(w)})
        raise ValueError(f"cannot select sections with {where!r}")

    def location_name(self, loc: Location) -> str:
        """NEURON's name of a location: "soma(0.5)", "dend[2](0.3)", "apic[3](1)" (the k-th
        section of its region; the bare region name when the region has one section)."""
        self.section(loc.section)
        region = self.morphology.sections[loc.section].region
        same = self.sections(region)
        name = region if len(same) == 1 else f"{region}[{same.index(loc.section)}]"
        return f"{name}({loc.x:g})"

    def node(self, loc: Location) -> int:
        """The node of NEURON's v at ``loc``: a segment centre, or at a section end the
        zero-area node there (where sections join, or where a point process sits; else
        the adjacent centre, whose v it shares)."""
        if not isinstance(loc, Location):
            raise ValueError(f"expected a Location such as cell.soma(0.5), got {loc!r}")
        self.section(loc.section)
        return int(morph_lib.node_index(self.compartments, loc.section, loc.x))

    def point_node(self, loc: Location) -> int:
        """The node a point process at ``loc`` sits on (an electrode, a synapse), as
        ``node``; at a terminal section's x = 1 or the root's x = 0 NEURON's zero-area node
        there, which the cell keeps from now on (it has a voltage of its own once current
        is injected there). Keeping it renumbers the nodes after it."""
        node = self.node(loc)
        if not morph_lib.dropped_end(self.compartments, loc.section, loc.x):
            return node
        self._keep_end(int(loc.section), float(loc.x))
        return self.node(loc)

    def segment_node(self, loc: Location) -> int:
        """The node whose range variables NEURON reads at ``loc`` (states, currents,
        i_cap; not v or i_membrane, which are the node's): the centre of the segment
        holding x, at x = 0 and 1 the section's first and last segment."""
        return int(self.nodes(loc)[0])

    def _keep_end(self, section: int, x: float) -> None:
        """Keep the zero-area node at ``section(x)`` (a dropped end): new compartments and
        frustums, every per-node value and stimulus moved to the new numbering (the new
        node takes its neighbouring centre's values; no mechanism sits on it)."""
        self._touch()
        old = self.compartments
        self.ends = tuple(sorted(self.ends + ((section, x),)))
        self.compartments = morph_lib.compartments(self.morphology, self._nseg, self.ends)
        self.frustums = morph_lib.frustum_table(self.morphology, self._nseg, self.ends)
        source, added = morph_lib.renumbering(old, self.compartments)
        moved = np.empty(old.n_nodes, dtype=int)
        moved[source[~added]] = np.flatnonzero(~added)
        vals = self.values
        vals["cm"] = vals["cm"][source]
        vals["ions"] = {k: v[source] for k, v in vals["ions"].items()}
        vals["mechs"] = {m: {k: v[source] for k, v in t.items()} for m, t in vals["mechs"].items()}
        self.mechanism_nodes = {m: v[source] & ~added for m, v in self.mechanism_nodes.items()}
        st = self.stimuli
        self.stimuli = Stimuli(
            [(int(moved[n]), *rest) for n, *rest in st.iclamp],
            [(int(moved[n]), *rest) for n, *rest in st.waveform],
            [(int(moved[n]), *rest) for n, *rest in st.vclamp],
            {k: (m, [(int(moved[n]), *rest) for n, *rest in items])
             for k, (m, items) in st.spikes.items()})

    def distance(self) -> np.ndarray:
        """Path length (um) along the tree from the soma centre to every node, as
        NEURON's ``h.distance(soma(0.5), seg)``, which measures from the node of the
        segment holding soma(0.5) (with an even nseg, not x = 0.5 itself) and a branch
        point at the centre of the parent segment it joins. float64 [N]."""
        return morph_lib.path_distances(self.morphology, self.compartments, self.soma())

    def diameters(self) -> np.ndarray:
        """Each node's segment diameter (um) as NEURON's ``seg.diam``: the mean diameter
        along the segment, at the cell's present diam and L (0 at the zero-area nodes
        where sections join; index with ``nodes(where)``). float64 [N]."""
        scale = self.values["L"] / self.morphology.lengths
        return np.asarray(morph_lib.mean_diameters(self.frustums, self.values["diam"], scale),
                          float)

    def nodes(self, where=None) -> np.ndarray:
        """Node indices (segment centres) of ``where``; a Location selects the segment
        holding its x (x = 0 and 1: the section's first and last segment, as NEURON
        assigns ``sec(0).cm``; ``node`` is the potential's node there, a junction)."""
        if isinstance(where, Location):
            self.node(where)  # checks the section and x
            comps, s = self.compartments, where.section
            n = int(comps.nseg[s])
            return np.array([int(comps.first_centre[s]) + min(int(n * float(where.x)), n - 1)])
        if _holds_locations(where):  # each location its segment, each other entry its sections
            return np.unique(np.concatenate([self.nodes(w) for w in where]))
        secs = np.asarray(self.sections(where))
        comps = self.compartments
        return np.flatnonzero(np.isin(comps.section, secs) & ~comps.is_junction)

    # --- mechanisms and parameters ----------------------------------------
    def insert(self, mechanism, where=None) -> "Cell":
        """Insert a channel or ion pool in ``where``: a registered name (a plugin,
        e.g. "hh"; "<package>:<name>" picks one where two packages register a name), or
        a Channel/IonPool instance or class (to try one before packaging it)."""
        self._touch()
        self._own("insert", where)
        if isinstance(mechanism, str):  # a name, or "<package>:<name>" to pick a provider
            check_name(mechanism.rpartition(":")[2])
            # the registered mechanism; a name only this cell knows (a class inserted by
            # value) means what was inserted
            known = mechanism in self.mechanisms and \
                mechanism not in plugins.providers("dendrax.channels")
            mech = self.mechanisms[mechanism] if known else registry.channel(mechanism)
        else:
            kind = IonPool if isinstance(mechanism, IonPool) or (
                isinstance(mechanism, type) and issubclass(mechanism, IonPool)) else Channel
            mech = check_mechanism(mechanism, kind)
            check_name(mech.name)
        name = mech.name
        inserted = self.mechanisms.get(name)
        if inserted is not None and type(inserted) is not type(mech):
            raise ValueError(f"another mechanism named {name!r} ({type(inserted).__name__}) "
                             f"is already inserted; this one is {type(mech).__name__}")
        by_instance = not isinstance(mechanism, (str, type))
        if inserted is not None and inserted is not mech and by_instance \
                and not _same_settings(inserted, mech):
            raise ValueError(f"{name!r} is already inserted with other settings (another "
                             f"{type(mech).__name__} instance); insert the same instance, or "
                             "give this one another name")
        nodes = self.nodes(where)
        if name not in self.mechanisms:
            self.mechanisms[name] = mech
            self.mechanism_nodes[name] = np.zeros(self.n_nodes, bool)
            self.values["mechs"][name] = {k: np.full(self.n_nodes, float(v))
                                           for k, v in mech.params.items()}
        self.mechanism_nodes[name][nodes] = True
        return self

    def set(self, name: str, value, where=None) -> "Cell":
        """Set a parameter where given (default everywhere).

        Names: "cm" (uF/cm2), "Ra" (ohm cm, per section), "diam" (um, every 3-D
        point of the selected sections; rounded to float32, as NEURON's ``sec.diam =``
        stores pt3d diameters, so within 1.4e-45..3.4028235e38 um), "L" (um, section
        length), an ion's
        "ena"/"cai0"/"cao"..., or "<mech>.<param>" such as "hh.gnabar". ``value``
        is a scalar, or one value per selected entry (per node of
        ``cell.nodes(where)``, per section, or per 3-D point for "diam"); a per-node
        parameter also takes one value per node of the cell, [n_nodes] as ``get`` and
        ``distance`` give them, and uses the selected nodes' (NaN elsewhere is fine).
        """
        self._touch()
        self._own("set", where)
        if name in ("Ra", "L", "diam", "cm") or name in self.values["ions"]:
            rng, unit = value_range(name)
        else:
            mech, param = self._mech_param(name)
            rng, unit = value_range(param, self.mechanisms[mech])
        value = magnitude(value, unit, name)
        if name not in ("Ra", "L", "diam") and np.ndim(value) == 1 \
                and len(value) == self.n_nodes \
                and self.n_nodes != len(self._targets(name, where)):
            # one value per node of the cell, as get() and distance() give them (NaN at
            # the junctions): the selected nodes' values
            value = np.asarray(value)[self._targets(name, where)]
        _check_finite(name, value)
        if name == "diam" and np.all(np.asarray(value) > 0):
            # positive: stored as NEURON stores it (float32), whose refusals say why
            value = pt3d_float32(value, "diam", positive=True)
        if rng is not None:
            rng.check(name, value, unit)
        if name in ("Ra", "L", "diam") and (isinstance(where, Location) or _holds_locations(where)):
            raise ValueError(f"{name} is a section's (its 3-D points' for diam), not a "
                             f"segment's: select sections (a region, cell.section(i), an index), "
                             f"not a location, got {where!r}")
        if name in ("Ra", "L"):
            secs = self.sections(where)
            _assign(name, self.values[name], secs, value, "section")
            return self
        if name == "diam":
            offsets = self.morphology.point_offsets
            points = np.concatenate([np.arange(offsets[s], offsets[s + 1])
                                     for s in self.sections(where)])
            # NEURON's sec.diam = x on a section with 3-D points stores x in every pt3d
            # point: as float32, like pt3dadd's diameters
            _assign(name, self.values["diam"], points, value, "3-D point")
            return self
        targets = self._targets(name, where)
        if name == "cm":
            _assign(name, self.values["cm"], targets, value, "node")
            return self
        if name in self.values["ions"]:
            if name[0] == "e":
                self._refuse_nernst(name, targets, where)
            _assign(name, self.values["ions"][name], targets, value, "node")
            return self
        if targets.size == 0:
            raise ValueError(f"{mech} is not inserted where {name} was set ({where!r})")
        _assign(name, self.values["mechs"][mech][param], targets, value, f"node with {mech}")
        return self

    def _refuse_nernst(self, name: str, targets: np.ndarray, where) -> None:
        """A ValueError where a reversal potential ``name`` ("eca") is set at nodes where it
        follows Nernst (a mechanism there reads or changes the ion's concentrations): the
        run, as NEURON's, would ignore the value there."""
        ion = name[1:]
        readers = [m for m, mech in self.mechanisms.items()
                   if ion in concentrations_read(mech) and self.mechanism_nodes[m][targets].any()]
        if readers:
            chosen = "the whole cell" if where is None else f"where={where!r}"
            raise ValueError(
                f"{name} follows the Nernst equation from {ion}i and {ion}o wherever "
                f"{', '.join(readers)} {'reads or changes' if len(readers) == 1 else 'read or change'} "
                f"them, as in NEURON, and {chosen} includes such nodes: a value set there "
                f"would be ignored. Set {ion}i0 / {ion}o there instead, or set {name} only "
                f"where no mechanism reads {ion}'s concentrations")

    def _targets(self, name: str, where) -> np.ndarray:
        """The nodes a per-node parameter is set at: those of ``where`` (with the mechanism,
        for "<mech>.<param>")."""
        nodes = self.nodes(where)
        if name == "cm" or name in self.values["ions"]:
            return nodes
        return nodes[self.mechanism_nodes[self._mech_param(name)[0]][nodes]]

    def get(self, name: str) -> np.ndarray:
        """Current values of a parameter (a copy): [N] per node for "cm", ions and
        "<mech>.<param>" (for a mechanism's, NaN where it is not inserted and at the
        zero-area nodes where sections join, which have no membrane; "cm" and ions hold
        a value there that nothing uses: index with ``cell.nodes()`` for the segments),
        [n_sections] for "Ra" and "L", [n_points] for "diam"."""
        if name in ("Ra", "L", "diam", "cm"):
            return self.values[name].copy()
        if name in self.values["ions"]:
            return self.values["ions"][name].copy()
        mech, param = self._mech_param(name)
        return np.where(self.mechanism_nodes[mech], self.values["mechs"][mech][param], np.nan)

    def _mech_param(self, name: str) -> tuple[str, str]:
        """(mechanism, parameter) of "<mech>.<param>", or a ValueError suggesting names."""
        mech, _, param = name.partition(".")
        if mech not in self.mechanisms:
            known = ["cm", "Ra", "diam", "L", *self.values["ions"],
                     *(f"{m}.{p}" for m in self.mechanisms for p in self.values["mechs"][m])]
            near = difflib.get_close_matches(name, known, n=3)
            if name in JAXLEY_NAMES:
                near = f"{JAXLEY_NAMES[name]!r} (Jaxley's {name!r})"
            raise ValueError(f"unknown parameter {name!r}" + (f"; did you mean {near}?" if near
                             else f"; known: {known}") +
                             ("" if "." not in name else f" (is {mech!r} inserted?)"))
        table = self.values["mechs"][mech]
        if param not in table:
            near = difflib.get_close_matches(param, list(table), n=3)
            raise ValueError(f"{mech} has no parameter {param!r}; its parameters: {sorted(table)}"
                             + (f" (did you mean {near}?)" if near else ""))
        return mech, param

    def param_slots(self, name: str, where=None):
        """Where parameter ``name`` at ``where`` lives in ``cell.params`` (a ``ParamSlots``;
        see ``dendrax.layout.Layout.slots``)."""

        return lower(self).layout.slots(name, where)

    # --- stimuli and recordings -------------------------------------------
    def iclamp(self, loc: Location, *, delay: float, dur: float, amp: float) -> "Cell":
        """A step current (nA) from delay to delay + dur (ms), as NEURON's IClamp."""
        self._touch()
        self._own("iclamp", loc)
        delay, dur, amp = (magnitude(v, u, f"iclamp {k}") for v, u, k in
                           ((delay, "ms", "delay"), (dur, "ms", "dur"), (amp, "nA", "amp")))
        for k, v in (("delay", delay), ("dur", dur), ("amp", amp)):
            if np.ndim(v) or not isinstance(np.asarray(v).item(), (int, float)):
                raise ValueError(f"iclamp {k} must be one number, got {v!r} (one IClamp per "
                                 "call; a time course of current: cell.stimulate)")
            _check_finite(f"iclamp {k}", v)
        NONNEGATIVE.check("iclamp dur", dur, "ms")
        node = self.point_node(loc)  # first: keeping an end node renumbers the stimuli
        self.stimuli.iclamp.append((node, float(delay), float(dur), float(amp)))
        return self

    def stimulate(self, loc: Location, t, i) -> "Cell":
        """A current waveform i (nA) at times t (ms), linearly interpolated (Vector.play)."""
        self._touch()
        self._own("stimulate", loc)
        t, i = magnitude(t, "ms", "waveform times"), magnitude(i, "nA", "waveform")
        _check_finite("waveform times", t)
        _check_finite("waveform", i)
        t, i = np.asarray(t, float), np.asarray(i, float)
        if t.ndim != 1 or t.shape != i.shape or t.size < 1:
            raise ValueError(f"waveform needs 1-D t and i of one length, got {t.shape} and {i.shape}")
        back = np.flatnonzero(np.diff(t) < 0)
        if back.size:
            k = int(back[0]) + 1
            raise ValueError(f"waveform times must not decrease (equal times make a step, as "
                             f"Vector.play's), got t[{k}] = {t[k]:g} after t[{k - 1}] = "
                             f"{t[k - 1]:g} ms")
        node = self.point_node(loc)  # first: keeping an end node renumbers the stimuli
        self.stimuli.waveform.append((node, t, i))
        return self

    def vclamp(self, loc: Location, *, amp, dur, rs: float = 1.0) -> "Cell":
        """A voltage clamp as NEURON's SEClamp: up to three levels amp (mV) held for dur (ms) each, then off; series resistance rs (MOhm)."""
        self._touch()
        self._own("vclamp", loc)
        rs = magnitude(rs, "MOhm", "vclamp rs")
        amp, dur = magnitude(amp, "mV", "vclamp amp"), magnitude(dur, "ms", "vclamp dur")
        for k, v in (("amp", amp), ("dur", dur), ("rs", rs)):  # before numpy reads "-70" as -70
            _check_finite(f"vclamp {k}", v)
        if np.ndim(rs):
            raise ValueError(f"vclamp rs must be one number (MOhm), got {rs!r}")
        for k, v in (("amp", amp), ("dur", dur)):
            if np.ndim(v) > 1:
                raise ValueError(f"vclamp {k} must be one number or a list of up to 3 (one per "
                                 f"level), got shape {np.shape(v)}")
        amp = [float(a) for a in np.atleast_1d(np.asarray(amp, float))]
        dur = [float(d) for d in np.atleast_1d(np.asarray(dur, float))]
        if len(amp) != len(dur) or not 1 <= len(amp) <= 3:
            raise ValueError("vclamp takes 1 to 3 levels: amp and dur of equal length")
        if rs <= 0:
            raise ValueError(f"vclamp series resistance rs must be > 0 MOhm, got {rs}")
        NONNEGATIVE.check("vclamp dur", np.asarray(dur), "ms")
        amp += [amp[-1]] * (3 - len(amp))
        dur += [0.0] * (3 - len(dur))
        node = self.point_node(loc)  # first: keeping an end node renumbers the stimuli
        self.stimuli.vclamp.append((node, amp, dur, float(rs)))
        return self

    def record(self, name: str = "v", loc=None, *, reduce: str | None = None) -> "Cell":
        """Record ``name`` at ``loc`` (default the soma centre) or at every location of a
        list (one gathered array: compile time does not grow with the number of sites).

        Args:
            name: what to record (units in ``Result.units``):

                * "v": membrane potential, mV;
                * "<mech>.<state>": a state, e.g. "hh.m" (dimensionless), "CaDynamics_E2.cai" (mM);
                * "<mech>.i<ion>" / its nonspecific current: a channel's current density,
                  e.g. "hh.ina", "hh.ik", "hh.il", "pas.i", "Ih.ihcn" (mA/cm2, outward positive);
                * "ina", "ik", "ica": the total current density of an ion (mA/cm2);
                * "i_cap": capacitive current density (mA/cm2);
                * "i_membrane": the compartment's whole membrane current, nA (capacitive,
                  ionic and synaptic; not electrodes), as NEURON's ``i_membrane_``: over a
                  cell it sums to the current the electrodes inject;
                * "<synapse>.<state>", "<synapse>.i" (nA), "<synapse>.g" (uS, di/dv): the
                  synapse of that kind at ``loc``'s node, e.g. "Exp2Syn.g"; where several
                  share the node, "Exp2Syn[k].g" is the k-th placed there (from 0), and
                  the plain name is refused when the run starts;
                * "iclamp.i", "vclamp.i": an electrode's current into the cell, nA.
            loc: a Location or a list of them (e.g. ``cell.segments()``). At a section end
                (x = 0 or 1), as NEURON: v and i_membrane are the end's node's (a zero-area
                node's i_membrane is 0 but for a synapse there), states, currents and i_cap
                the first or last segment's.
            reduce: None to keep the trace; "max", "min" or "mean" to keep only that
                statistic over the run (t = 0 included), computed as the run goes, no trace
                stored: ``res[name, loc, reduce]``.

        Currents follow NEURON's recording times: the value stored at t + dt is the one
        computed during the step from t (i_cap, i_membrane and vclamp.i use its new v).
        """
        self._touch()
        self._own("record", loc)
        if not isinstance(name, str):
            raise ValueError(f"what to record is a name such as 'v' or 'hh.m', got {name!r}")
        if reduce not in REDUCTIONS:
            raise ValueError(f"reduce must be one of {REDUCTIONS}, got {reduce!r}")
        locs = [self.soma() if loc is None else loc] if not isinstance(loc, (list, tuple)) \
            or isinstance(loc, Location) else list(loc)
        for one in locs:
            self.check_record(name, one)
            if name == "i_membrane":  # NEURON's i_membrane_ at an end is its node's (0 there
                self.point_node(one)  # without a point process): keep that node
        self._recordings.extend((name, one, reduce) for one in locs)
        return self

    def segments(self, where=None) -> list[Location]:
        """The centre of every segment of ``where`` (a region, section or list; default all),
        as NEURON's ``for seg in sec``: e.g. ``cell.record("v", cell.segments(), reduce="max")``."""
        comps = self.compartments
        secs = set(self.sections(where))
        return [Location(int(s), float(x)) for s, x, junction in
                zip(comps.section, comps.x, comps.is_junction) if not junction and int(s) in secs]

    def record_spikes(self, loc: Location | None = None, *, threshold: float = 10.0) -> "Cell":
        """Record spike times at ``loc`` (default the soma centre) as NEURON's
        ``NetCon.record``: a spike when v rises above ``threshold`` (mV, NEURON's default
        10), found at the start of each step; ``res.spikes``. Needs no trace recording."""
        self._touch()
        self._own("record_spikes", loc)
        loc = self.soma() if loc is None else loc
        self.node(loc)
        threshold = magnitude(threshold, "mV", "threshold")
        if not is_number(threshold):
            raise ValueError(f"threshold must be one number (mV), got {threshold!r}")
        _check_finite("threshold", threshold)
        self.spike_records.append((loc.section, loc.x, float(threshold)))
        return self

    def record_extracellular(self, electrodes, name: str = "lfp") -> "Cell":
        """Record the extracellular potential at ``electrodes`` (a ``dendrax.Electrodes``)
        made by this cell's membrane currents, computed inside the run (an [E x N] matrix
        times ``i_membrane`` each step; no current trace is kept): ``res[name]``, [E, n_t]
        in uV. Geometry: docs/extracellular.md (the morphology's coordinates)."""

        self._touch()
        fields.check_name(name, [r.name for r in self.field_records])
        rec = fields.FieldRecord(name, "lfp", fields.check_electrodes(electrodes))
        self.field_records.append(rec)
        return self

    def record_dipole(self, name: str = "dipole") -> "Cell":
        """Record the cell's current dipole moment ``sum_k i_k r_k`` (segment midpoints r_k)
        inside the run: ``res[name]``, [3, n_t] (x, y, z) in nA um."""

        self._touch()
        fields.check_name(name, [r.name for r in self.field_records])
        self.field_records.append(fields.FieldRecord(name, "dipole"))
        return self

    def check_record(self, name: str, loc: Location, *, synapses=None) -> str:
        """The unit of ``name`` at ``loc``, or a ValueError unless it can be recorded there
        (``synapses``: {name: mechanism} of synapse kinds placed from outside the cell,
        e.g. by a network)."""
        return recordables.check_record(self, name, loc, synapses=synapses)

    def synapse(self, name, loc: Location, *, spike_times=(), weight: float = 0.001,
                delay: float = 0.0, **params) -> "Cell":
        """A synapse (a registered plugin's name, e.g. "Exp2Syn", or a ``Synapse`` class) at
        ``loc`` driven by presynaptic
        spikes at ``spike_times`` (ms), arriving after ``delay`` (ms) with ``weight`` (uS for
        conductance synapses), as a NEURON NetCon from a VecStim (but for the default
        delay: 0 here, 1 ms for a NetCon)."""
        self._touch()
        self._own("synapse", loc)
        mech = synapse_mechanism(name)
        name = mech.name  # "<package>:<name>" picks one of several providers
        if not isinstance(mech, Synapse):
            raise ValueError(f"{name} is a graded synapse (driven by a presynaptic voltage, not "
                             "by spikes): connect two cells with dendrax.Network.connect")
        if name in self.mechanisms:
            raise ValueError(f"{name!r} is already a channel of this cell")
        values = synapse_values(mech, params, weight=weight, delay=delay)
        many = [k for k, v in values.items() if np.ndim(v)]
        if many:
            raise ValueError(f"{name} {many} must be one number each (one synapse per call)")
        times = real_array(magnitude(spike_times, "ms", f"{name} spike times"),
                           f"{name} spike times")
        if times.ndim > 1:
            raise ValueError(f"{name} spike times must be a flat list (ms), got shape {times.shape}")
        _check_finite(f"{name} spike times", times)
        if np.any(times < 0):
            raise ValueError(f"{name} spike times must be >= 0 ms, got {times[times < 0][0]:g}")
        times = times.ravel()
        node = self.point_node(loc)  # first: keeping an end node renumbers the stimuli
        self.stimuli.spikes.setdefault(name, (mech, []))[1].append((node, values, times))
        return self

    @property
    def recordings(self) -> list[tuple[str, Location]]:
        """(name, location) of every recorded trace, in order."""
        return [(n, loc) for n, loc, how in self._recordings if how is None]

    @property
    def recorded(self) -> list[tuple[str, Location, str | None]]:
        """(name, location, reduce) of everything recorded, traces and statistics, in order."""
        return list(self._recordings)

    @property
    def params(self) -> dict:
        """All parameter values as a pytree of arrays (what jax.grad differentiates); the
        ``params`` of ``dendrax.lower(cell)``. Keys: "cable" {"cm" [N], "Ra" [n_sections],
        "diam" [n_points], "L" [n_sections]}, "ions" {name: [N]}, "channels" {mech: {param:
        [n_nodes_of_mech]}}, "synapses" {name: {param: [n_synapses], "weight", "delay"}},
        "stimuli" {"iclamp": {"amp", "delay", "dur": [K]}, "vclamp": {"amp", "dur": [M, 3],
        "rs": [M]}}. Per-node arrays are in the solver's node order (``param_slots`` maps
        locations to entries)."""

        return lower(self).params

    # --- what lowering reads (a cell is a network of one) -----------------
    @property
    def cells(self) -> tuple:
        return (self,)

    wiring = None  # no connections: see dendrax.Network

    def copy(self) -> "Cell":
        """An independent copy (morphology and geometry shared: they never change)."""
        import copy

        new = copy.copy(self)
        new.values = copy.deepcopy(self.values)
        new.mechanisms = dict(self.mechanisms)
        new.mechanism_nodes = {k: v.copy() for k, v in self.mechanism_nodes.items()}
        new.stimuli = copy.deepcopy(self.stimuli)
        new.ends = tuple(self.ends)
        new._recordings = list(self._recordings)
        new.spike_records = list(self.spike_records)
        new.field_records = list(self.field_records)
        new.revision = 0
        return new

    def _own(self, method: str, *args) -> None:
        """Refuse a network's location (one carrying a cell index) in a cell's own method:
        the cell does not know where it sits in a network, and would put it on itself."""
        for item in locations_in(args):
            if item.cell is not None:
                raise ValueError(f"{item} is a location of cell {item.cell} of a network; "
                                 f"Cell.{method} takes the cell's own locations (cell.soma(0.5), "
                                 f"cell.section(k)(x)); in a network use "
                                 f"net.cell({item.cell}).{method}(...)")

    def _touch(self):
        self.revision += 1


def _holds_locations(where) -> bool:
    """Whether ``where`` is a list (or other collection) with a Location among its entries."""
    return isinstance(where, (list, tuple, set, frozenset)) and any(
        isinstance(w, Location) for w in where)


def synapse_mechanism(synapse):
    """A synapse by registered name (``"<package>:<name>"`` picks one of several providers),
    or a ``Synapse`` / ``GradedSynapse`` class or instance (to try one before packaging it)."""
    mech = registry.synapse(synapse)
    if not isinstance(synapse, str):
        check_name(mech.name)
    return mech


def synapse_values(mech, params: dict, **extra) -> dict:
    """A synapse's parameter values: its defaults, ``params`` and ``extra`` (weight, delay),
    checked: unknown names and non-finite values are errors."""
    unknown = set(params) - set(mech.params)
    if unknown:
        raise ValueError(f"{mech.name} has no parameters {sorted(unknown)}; its parameters: "
                         f"{sorted(mech.params)}")
    values = {**mech.params, **params, **extra}
    for k, v in values.items():
        rng, unit = value_range(k, mech)
        if k == "weight":  # NetCon's weight: uS (conductance synapses) unless declared
            unit = mech.units.get("weight", "uS")
        v = values[k] = magnitude(v, unit, f"{mech.name}.{k}")
        _check_finite(f"{mech.name}.{k}", v)
        if rng is not None:
            rng.check(f"{mech.name}.{k}", v, unit)
    return values


def _assign(name, table, index, value, what):
    """table[index] = value, with an error naming the parameter for a wrong-length array."""
    value = np.asarray(value, float)
    if value.ndim and value.shape != (len(index),):
        got = (f"{value.size} values" if value.ndim == 1 else
               f"an array of shape {value.shape}")
        raise ValueError(f"{name}: got {got} for {len(index)} entries (give a flat list of "
                         f"{len(index)}, one per {what} selected, or one scalar)")
    table[index] = value


def _check_finite(name, value):
    """A ValueError unless value is finite real numbers (not text, booleans or complex
    numbers, which numpy would silently turn into others)."""
    if isinstance(value, jax.core.Tracer):
        return
    arr = real_array(value, name)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, got {value!r}")
