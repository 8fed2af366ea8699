"""Building a cell: insert mechanisms, set parameters, stimulate, record.

A ``Cell`` is a mutable builder over a morphology and its compartments. It
produces the two things the time loop needs: a static ``Model`` (structure)
and a params pytree (values), so changing a value never forces a recompile.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Iterable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from . import morphology as morph_lib
from .mechanisms import registry
from .mechanisms.base import IONS, Channel, IonPool, check_mechanism
from .model import Model, Placement, Recording

REGION_ALIASES = {"apical": "apic", "basal": "dend", "dendrite": "dend", "dendrites": "dend"}


class Location(NamedTuple):
    """A point on a section: section index and x in [0, 1] (NEURON's sec(x))."""

    section: int
    x: float


@dataclass(frozen=True)
class SectionRef:
    """A section of a cell; call it with x to get a Location, like NEURON's sec(x)."""

    index: int
    region: str

    def __call__(self, x: float = 0.5) -> Location:
        if not 0.0 <= x <= 1.0:
            raise ValueError(f"x must lie in [0, 1], got {x}")
        return Location(self.index, float(x))


@dataclass(frozen=True)
class ParamSlots:
    """Entries of one params leaf: ``params[path[0]][path[1]...][index]``.

    Attributes:
        path: keys into the params pytree, e.g. ("hh", "gnabar") or ("cm",).
        index: int [k] entries of that leaf.
        section: int [k] section of each entry.
        node: int [k] compartment node of each entry (-1 for per-section and per-point leaves).
    """

    path: tuple
    index: np.ndarray
    section: np.ndarray
    node: np.ndarray


@dataclass
class _Stimuli:
    iclamp: list  # (node, delay, dur, amp)
    waveform: list  # (node, t array, i array)
    vclamp: list  # (node, amps[3], durs[3], rs)
    spikes: dict  # synapse name -> (mechanism, [(node, params incl. weight, arrival times)])


class Cell:
    """A neuron: morphology, segmentation, mechanisms, parameters, stimuli, recordings.

    Args:
        morphology: a ``dendrax.morphology.Morphology`` (e.g. from ``read_morphology``).
        nseg: segments per section: an int, a sequence (one per section), or
            "d_lambda" (NEURON's d_lambda rule with ``d_lambda`` and ``freq``).
        max_length: instead of nseg, the longest segment allowed (um).
        Ra: axial resistivity, ohm cm (every section; change with ``set``).
        cm: specific membrane capacitance, uF/cm2.
    """

    def __init__(self, morphology, *, nseg=1, max_length=None, d_lambda=0.1, freq=100.0,
                 Ra=35.4, cm=1.0):
        self.morphology = morphology
        n_sec = len(morphology.sections)
        if max_length is not None:
            nseg = morph_lib.nseg_max_length(morphology, max_length)
        elif isinstance(nseg, str):
            if nseg != "d_lambda":
                raise ValueError(f"nseg must be an int, a list of ints or 'd_lambda', got {nseg!r}")
            nseg = morph_lib.nseg_d_lambda(morphology, d_lambda=d_lambda, freq=freq, Ra=Ra, cm=cm)
        nseg = np.broadcast_to(np.asarray(nseg), (n_sec,)).astype(int)
        if np.any(nseg < 1):
            raise ValueError(f"nseg must be >= 1 in every section, got {nseg.min()}")
        self.nseg = nseg
        self.compartments = morph_lib.compartments(morphology, nseg)
        n = len(self.compartments.parent)
        self._order, self._rank = _level_order(self.compartments.parent)
        self._segment_nodes = np.flatnonzero(~self.compartments.is_junction)
        self._frustums = morph_lib.frustum_table(morphology, nseg)
        self._values = {
            "diam": morphology.point_diameters.astype(float),
            "L": np.array(morphology.lengths, float),
            "cm": np.full(n, float(cm)),
            "Ra": np.full(n_sec, float(Ra)),
            "ions": {},
            "mechs": {},
        }
        for ion in IONS.values():
            self._values["ions"].update({
                f"e{ion.name}": np.full(n, ion.e),
                f"{ion.name}i0": np.full(n, ion.ci),
                f"{ion.name}o": np.full(n, ion.co)})
        self._mechs: dict[str, object] = {}  # name -> mechanism, insertion order
        self._mech_nodes: dict[str, np.ndarray] = {}  # name -> bool [N]
        self._stim = _Stimuli([], [], [], {})
        self._recordings: list[tuple[str, Location]] = []
        _check_finite("Ra", Ra)
        _check_finite("cm", cm)

    # --- construction shortcuts -------------------------------------------
    @classmethod
    def from_sections(cls, sections: list[dict], **kwargs) -> "Cell":
        """A cell from programmatic sections (see ``Morphology.from_sections``)."""
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

    # --- locations --------------------------------------------------------
    @property
    def n_nodes(self) -> int:
        return len(self.compartments.parent)

    def section(self, index: int) -> SectionRef:
        n = len(self.morphology.sections)
        if not -n <= index < n:
            raise IndexError(f"section {index} out of range: the cell has {n} sections")
        index %= n
        return SectionRef(index, self.morphology.sections[index].region)

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
        if isinstance(where, str):
            region = REGION_ALIASES.get(where, where)
            secs = [i for i, s in enumerate(self.morphology.sections) if s.region == region]
            if not secs:
                near = difflib.get_close_matches(where, self.regions() + list(REGION_ALIASES), n=3)
                raise ValueError(f"no sections in region {where!r}; regions of this cell: "
                                 f"{self.regions()}" + (f" (did you mean {near}?)" if near else ""))
            return secs
        if isinstance(where, SectionRef):
            return [where.index]
        if isinstance(where, (int, np.integer)):
            return [self.section(int(where)).index]
        if isinstance(where, Location):
            return [where.section]
        if isinstance(where, Iterable):
            return sorted({i for w in where for i in self.sections(w)})
        raise ValueError(f"cannot select sections with {where!r}")

    def node(self, loc: Location) -> int:
        if not isinstance(loc, Location):
            raise ValueError(f"expected a Location such as cell.soma(0.5), got {loc!r}")
        self.section(loc.section)
        return int(morph_lib.node_index(self.compartments, loc.section, loc.x))

    def distance(self) -> np.ndarray:
        """Path length (um) along the tree from the soma centre to every node, as
        NEURON's ``h.distance(soma(0.5), seg)`` (which measures a branch point at
        the centre of the parent segment it joins). float64 [N]."""
        morph, comps = self.morphology, self.compartments
        L = morph.lengths
        n_sec = len(morph.sections)
        parent = [sec.parent for sec in morph.sections]
        # where each section's 0 end sits on its parent: the joined node's x
        joint = np.zeros(n_sec)
        for i, sec in enumerate(morph.sections):
            x, p = sec.parent_x, sec.parent
            if p >= 0 and 0.0 < x < 1.0:
                n = int(self.nseg[p])
                x = (min(int(n * x), n - 1) + 0.5) / n
            joint[i] = x
        lineage = []  # sections from the root down to each section
        for i in range(n_sec):
            lineage.append((lineage[parent[i]] if parent[i] >= 0 else []) + [i])
        soma = self.soma()
        out = np.empty(self.n_nodes)
        for k, (sec, x) in enumerate(zip(comps.section, comps.x)):
            a, b = lineage[soma.section], lineage[int(sec)]
            depth = 0
            while depth < min(len(a), len(b)) and a[depth] == b[depth]:
                depth += 1
            common = a[depth - 1]

            def down(path, x_end):
                """Path length from the common section to (path[-1], x_end) and the exit x on it."""
                if len(path) == depth:
                    return 0.0, x_end
                rest = path[depth:]
                total = x_end * L[rest[-1]]
                for s, t in zip(rest[:-1], rest[1:]):
                    total += joint[t] * L[s]
                return total, joint[rest[0]]

            da, xa = down(a, soma.x)
            db, xb = down(b, float(x))
            out[k] = da + db + abs(xa - xb) * L[common]
        return out

    def nodes(self, where=None) -> np.ndarray:
        """Node indices (segment centres) of ``where``; a Location selects one segment."""
        if isinstance(where, Location):
            return np.array([self.node(where)])
        secs = np.asarray(self.sections(where))
        comps = self.compartments
        return np.flatnonzero(np.isin(comps.section, secs) & ~comps.is_junction)

    # --- mechanisms and parameters ----------------------------------------
    def insert(self, mechanism, where=None) -> "Cell":
        """Insert a channel or ion pool in ``where``: a registered name (a plugin,
        e.g. "hh"), or a Channel/IonPool instance or class (to try one before
        packaging it)."""
        if isinstance(mechanism, str):
            name = mechanism
            mech = self._mechs.get(name) or registry.channel(name)
        else:
            kind = IonPool if isinstance(mechanism, IonPool) or (
                isinstance(mechanism, type) and issubclass(mechanism, IonPool)) else Channel
            mech = check_mechanism(mechanism, kind)
            name = mech.name
            if name in self._mechs and type(self._mechs[name]) is not type(mech):
                raise ValueError(f"another mechanism named {name!r} is already inserted")
        nodes = self.nodes(where)
        if name not in self._mechs:
            self._mechs[name] = mech
            self._mech_nodes[name] = np.zeros(self.n_nodes, bool)
            self._values["mechs"][name] = {k: np.full(self.n_nodes, float(v))
                                           for k, v in mech.params.items()}
        self._mech_nodes[name][nodes] = True
        return self

    def set(self, name: str, value, where=None) -> "Cell":
        """Set a parameter where given (default everywhere).

        Names: "cm" (uF/cm2), "Ra" (ohm cm, per section), "diam" (um, every 3-D
        point of the selected sections), "L" (um, section length), an ion's
        "ena"/"cai0"/"cao"..., or "<mech>.<param>" such as "hh.gnabar". ``value``
        is a scalar, or one value per selected entry (per node of
        ``cell.nodes(where)``, per section, or per 3-D point for "diam").
        """
        _check_finite(name, value)
        if name in ("Ra", "L"):
            if name == "L" and np.any(np.asarray(value) <= 0):
                raise ValueError(f"L must be > 0 um, got {value!r}")
            self._values[name][self.sections(where)] = value
            return self
        if name == "diam":
            if np.any(np.asarray(value) <= 0):
                raise ValueError(f"diam must be > 0 um, got {value!r}")
            offsets = self.morphology.point_offsets
            for s in self.sections(where):
                self._values["diam"][offsets[s]:offsets[s + 1]] = value
            return self
        nodes = self.nodes(where)
        if name == "cm":
            self._values["cm"][nodes] = value
            return self
        if name in self._values["ions"]:
            self._values["ions"][name][nodes] = value
            return self
        mech, param = self._mech_param(name)
        present = nodes[self._mech_nodes[mech][nodes]]
        if present.size == 0:
            raise ValueError(f"{mech} is not inserted where {name} was set ({where!r})")
        self._values["mechs"][mech][param][present] = value
        return self

    def get(self, name: str) -> np.ndarray:
        """Current values of a parameter (a copy): [N] per node for "cm", ions and
        "<mech>.<param>" (NaN where the mechanism is not inserted), [n_sections] for
        "Ra" and "L", [n_points] for "diam"."""
        if name in ("Ra", "L", "diam", "cm"):
            return self._values[name].copy()
        if name in self._values["ions"]:
            return self._values["ions"][name].copy()
        mech, param = self._mech_param(name)
        return np.where(self._mech_nodes[mech], self._values["mechs"][mech][param], np.nan)

    def _mech_param(self, name: str) -> tuple[str, str]:
        """(mechanism, parameter) of "<mech>.<param>", or a ValueError suggesting names."""
        mech, _, param = name.partition(".")
        if mech not in self._mechs:
            known = ["cm", "Ra", "diam", "L", *self._values["ions"],
                     *(f"{m}.{p}" for m in self._mechs for p in self._values["mechs"][m])]
            near = difflib.get_close_matches(name, known, n=3)
            raise ValueError(f"unknown parameter {name!r}" + (f"; did you mean {near}?" if near
                             else f"; known: {known}") +
                             ("" if "." not in name else f" (is {mech!r} inserted?)"))
        table = self._values["mechs"][mech]
        if param not in table:
            near = difflib.get_close_matches(param, list(table), n=3)
            raise ValueError(f"{mech} has no parameter {param!r}; its parameters: {sorted(table)}"
                             + (f" (did you mean {near}?)" if near else ""))
        return mech, param

    def param_slots(self, name: str, where=None) -> "ParamSlots":
        """Where parameter ``name`` at ``where`` lives in the ``params`` pytree.

        For training: which leaf (``path``) and which entries of it (``index``),
        with the section and node each entry belongs to, so entries can be
        grouped (shared) by cell, region, section or segment.
        """
        comps = self.compartments
        offsets = self.morphology.point_offsets
        if name in ("Ra", "L"):
            secs = np.asarray(self.sections(where))
            return ParamSlots((name,), secs, secs, np.full(secs.shape, -1))
        if name == "diam":
            secs = self.sections(where)
            idx = np.concatenate([np.arange(offsets[s], offsets[s + 1]) for s in secs])
            sec_of = np.concatenate([np.full(offsets[s + 1] - offsets[s], s) for s in secs])
            return ParamSlots(("diam",), idx, sec_of, np.full(idx.shape, -1))
        nodes = self.nodes(where)
        if name == "cm" or name in self._values["ions"]:
            path = ("cm",) if name == "cm" else ("ions", name)
            return ParamSlots(path, nodes, comps.section[nodes], nodes)
        mech, _, param = name.partition(".")
        if mech in self._stim.spikes:
            _, items = self._stim.spikes[mech]
            if param not in items[0][1]:
                raise ValueError(f"{mech} has no parameter {param!r}; its parameters: {sorted(items[0][1])}")
            syn_nodes = np.asarray([x[0] for x in items])
            keep = np.flatnonzero(np.isin(syn_nodes, nodes))
            return ParamSlots((mech, param), keep, comps.section[syn_nodes[keep]], syn_nodes[keep])
        mech, param = self._mech_param(name)
        present = nodes[self._mech_nodes[mech][nodes]]
        if present.size == 0:
            raise ValueError(f"{mech} is not inserted in {where!r}")
        solver = self._placement_nodes(mech)
        ranks = self._rank[present]
        idx = ranks if solver is None else np.searchsorted(solver, ranks)
        order = np.argsort(idx)
        return ParamSlots((mech, param), idx[order], comps.section[present[order]], present[order])

    # --- stimuli and recordings -------------------------------------------
    def iclamp(self, loc: Location, *, delay: float, dur: float, amp: float) -> "Cell":
        """A step current (nA) from delay to delay + dur (ms), as NEURON's IClamp."""
        for k, v in (("delay", delay), ("dur", dur), ("amp", amp)):
            _check_finite(f"iclamp {k}", v)
        self._stim.iclamp.append((self.node(loc), float(delay), float(dur), float(amp)))
        return self

    def stimulate(self, loc: Location, t, i) -> "Cell":
        """A current waveform i (nA) at times t (ms), linearly interpolated (Vector.play)."""
        t, i = np.asarray(t, float), np.asarray(i, float)
        if t.ndim != 1 or t.shape != i.shape or t.size < 1:
            raise ValueError(f"waveform needs 1-D t and i of one length, got {t.shape} and {i.shape}")
        _check_finite("waveform", i)
        _check_finite("waveform times", t)
        self._stim.waveform.append((self.node(loc), t, i))
        return self

    def vclamp(self, loc: Location, *, amp, dur, rs: float = 1.0) -> "Cell":
        """A voltage clamp as NEURON's SEClamp: up to three levels amp (mV) held for dur (ms) each, then off; series resistance rs (MOhm)."""
        amp = list(np.atleast_1d(np.asarray(amp, float)))
        dur = list(np.atleast_1d(np.asarray(dur, float)))
        if len(amp) != len(dur) or not 1 <= len(amp) <= 3:
            raise ValueError("vclamp takes 1 to 3 levels: amp and dur of equal length")
        if rs <= 0:
            raise ValueError(f"vclamp series resistance rs must be > 0 MOhm, got {rs}")
        _check_finite("vclamp amp", amp)
        _check_finite("vclamp dur", dur)
        amp += [amp[-1]] * (3 - len(amp))
        dur += [0.0] * (3 - len(dur))
        self._stim.vclamp.append((self.node(loc), amp, dur, float(rs)))
        return self

    def record(self, name: str = "v", loc: Location | None = None) -> "Cell":
        """Record "v", a mechanism state "<mech>.<state>" (e.g. "hh.m"), or a synapse
        state "<synapse>.<state>" (e.g. "Exp2Syn.B", the first such synapse at ``loc``)
        at ``loc`` (default: the soma centre)."""
        loc = self.soma() if loc is None else loc
        node = self.node(loc)
        mech, _, state = name.partition(".")
        if mech in self._stim.spikes:
            syn, items = self._stim.spikes[mech]
            if state not in syn.states:
                raise ValueError(f"{mech} has no state {state!r}; states: {sorted(syn.states)}")
            if not any(x[0] == node for x in items):
                raise ValueError(f"cannot record {name!r} at {loc}: no {mech} synapse there")
        elif name != "v":
            if mech not in self._mechs:
                raise ValueError(f"cannot record {name!r}: {mech!r} is not inserted in this cell")
            if state not in self._mechs[mech].states and not (
                    isinstance(self._mechs[mech], IonPool) and state == f"{self._mechs[mech].ion}i"):
                raise ValueError(f"{mech} has no state {state!r}; states: {sorted(self._mechs[mech].states)}")
            if not self._mech_nodes[mech][node]:
                raise ValueError(f"cannot record {name!r} at {loc}: {mech} is not inserted there")
        self._recordings.append((name, loc))
        return self

    def synapse(self, name: str, loc: Location, *, spike_times=(), weight: float = 0.001,
                delay: float = 0.0, **params) -> "Cell":
        """A synapse (a registered plugin, e.g. "Exp2Syn") at ``loc`` driven by presynaptic
        spikes at ``spike_times`` (ms), arriving after ``delay`` (ms) with ``weight`` (uS for
        conductance synapses), as a NEURON NetCon from a VecStim."""
        mech = registry.synapse(name)
        if name in self._mechs:
            raise ValueError(f"{name!r} is already a channel of this cell")
        unknown = set(params) - set(mech.params)
        if unknown:
            raise ValueError(f"{name} has no parameters {sorted(unknown)}; its parameters: "
                             f"{sorted(mech.params)}")
        values = {**mech.params, **params, "weight": weight}
        for k, v in values.items():
            _check_finite(f"{name}.{k}", v)
        times = np.asarray(spike_times, float).ravel() + delay
        _check_finite(f"{name} spike times", times)
        self._stim.spikes.setdefault(name, (mech, []))[1].append((self.node(loc), values, times))
        return self

    @property
    def recordings(self) -> list[tuple[str, Location]]:
        return list(self._recordings)

    # --- what the simulator consumes --------------------------------------
    # The simulator numbers nodes in level order (all nodes of one depth in the
    # tree together), so the Hines solve eliminates independent branches side
    # by side. ``_order[k]`` is the compartment at solver index k, ``_rank`` the inverse.
    def _placement_nodes(self, name) -> np.ndarray | None:
        """Solver indices of a mechanism's nodes (sorted), or None for every node."""
        mask = self._mech_nodes[name]
        if mask[self._segment_nodes].all():
            return None
        return np.flatnonzero(mask[self._order]).astype(np.int32)

    def _solver_values(self, name, table) -> np.ndarray:
        nodes = self._placement_nodes(name)
        full = table[self._order]
        return full if nodes is None else full[nodes]

    def model(self) -> Model:
        """The static structure of this cell for ``dendrax.simulation.run``."""
        placements = tuple(Placement(m, self._placement_nodes(n)) for n, m in self._mechs.items())
        ions = tuple(sorted({i for m in self._mechs.values() for i in m.ions}
                            | {m.ion for m in self._mechs.values() if isinstance(m, IonPool)}))
        dynamic = tuple(sorted({m.ion for m in self._mechs.values() if isinstance(m, IonPool)}))
        recs = []
        for name, loc in self._recordings:
            node = int(self._rank[self.node(loc)])
            local = node
            mech = name.split(".")[0]
            if mech in self._stim.spikes:
                local = [x[0] for x in self._stim.spikes[mech][1]].index(self.node(loc))
            elif name != "v":
                p = placements[list(self._mechs).index(mech)]
                if p.nodes is not None:
                    local = int(np.searchsorted(p.nodes, node))
            recs.append(Recording(name, node, local))
        as_nodes = lambda xs: self._rank[np.asarray([x[0] for x in xs], int)].astype(np.int32)
        parent = self.compartments.parent[self._order]
        return Model(
            parent=np.where(parent >= 0, self._rank[np.maximum(parent, 0)], -1).astype(np.int32),
            channels=placements,
            ions=ions,
            dynamic_ions=dynamic,
            iclamp_nodes=as_nodes(self._stim.iclamp),
            waveform_nodes=as_nodes(self._stim.waveform),
            vclamp_nodes=as_nodes(self._stim.vclamp),
            synapses=tuple(Placement(mech, as_nodes(items))
                           for mech, items in self._stim.spikes.values()),
            recordings=tuple(recs),
        )

    @property
    def params(self) -> dict:
        """All parameter values as a pytree of arrays (what jax.grad differentiates).

        Keys: "cm" [N] (uF/cm2), "Ra" [n_sections] (ohm cm), "diam" [n_points]
        (um, the 3-D points' diameters), "L" [n_sections] (um), "ions" {name: [N]},
        one dict per inserted mechanism {param: [n_nodes_of_mech]}, and
        one dict per synapse type {param: [n_synapses], "weight": [n_synapses]},
        "iclamp" {"amp", "delay", "dur": [K]}, "vclamp" {"amp", "dur": [M, 3], "rs": [M]}.
        """
        v = self._values
        out = {"cm": jnp.asarray(v["cm"]), "Ra": jnp.asarray(v["Ra"]),
               "diam": jnp.asarray(v["diam"]), "L": jnp.asarray(v["L"]),
               "ions": {k: jnp.asarray(a) for k, a in v["ions"].items()}}
        for name in self._mechs:
            out[name] = {k: jnp.asarray(self._solver_values(name, a))
                         for k, a in v["mechs"][name].items()}
        ic = np.asarray([s[1:] for s in self._stim.iclamp], float).reshape(-1, 3)
        out["iclamp"] = {"delay": jnp.asarray(ic[:, 0]), "dur": jnp.asarray(ic[:, 1]),
                         "amp": jnp.asarray(ic[:, 2])}
        for name, (mech, items) in self._stim.spikes.items():
            out[name] = {k: jnp.asarray([x[1][k] for x in items], float) for k in items[0][1]}
        vc = self._stim.vclamp
        out["vclamp"] = {"amp": jnp.asarray(np.asarray([s[1] for s in vc], float).reshape(-1, 3)),
                         "dur": jnp.asarray(np.asarray([s[2] for s in vc], float).reshape(-1, 3)),
                         "rs": jnp.asarray(np.asarray([s[3] for s in vc], float))}
        return out

    def core_params(self, params: dict, *, v_init, celsius) -> dict:
        """Params in simulator units, nodes in solver order: geometry becomes areas and
        axial conductances (differentiable in diam and L)."""
        comps, order = self.compartments, self._order
        area, axial = morph_lib.geometry_jax(self._frustums, params["diam"],
                                             params["L"] / self.morphology.lengths)
        area, axial = area[order], axial[order]
        ri = 4e-2 / np.pi * params["Ra"][comps.section[order]] * axial
        has_parent = comps.parent[order] >= 0
        g_axial = jnp.where(has_parent, 1.0 / jnp.where(has_parent, ri, 1.0), 0.0)
        return {
            "area": area, "g_axial": g_axial, "cm": params["cm"][order],
            "v_init": jnp.asarray(v_init, area.dtype), "celsius": jnp.asarray(celsius, area.dtype),
            "ions": {k: a[order] for k, a in params["ions"].items()},
            "channels": tuple(params[name] for name in self._mechs),
            "synapses": tuple(params[name] for name in self._stim.spikes),
            "iclamp": params["iclamp"], "vclamp": params["vclamp"],
        }

    def drive(self, n_steps: int, dt: float) -> dict:
        """Per-step inputs: waveform currents at t + dt/2, spike weights per step."""
        t_mid = (np.arange(n_steps) + 0.5) * dt
        wave = [np.interp(t_mid, t, i, left=i[0], right=i[-1]) for _, t, i in self._stim.waveform]
        # NEURON delivers an event at the start of the step from t_n when t_e <= t_n + dt/2,
        # with t accumulated in half steps (t += dt/2 twice a step): ties at half-step
        # boundaries fall as NEURON's rounding makes them fall
        half = np.cumsum(np.full(2 * n_steps + 1, 0.5 * dt)) - 0.5 * dt
        t_deliver = half[0:2 * n_steps:2] + 0.5 * dt
        spikes = []
        for _, items in self._stim.spikes.values():
            counts = np.zeros((n_steps, len(items)))
            for j, (_, _, times) in enumerate(items):
                step = np.searchsorted(t_deliver, times, side="left")
                np.add.at(counts[:, j], step[(step >= 0) & (step < n_steps)], 1.0)
            spikes.append(jnp.asarray(counts))
        return {"waveform": jnp.asarray(np.stack(wave, 1) if wave else np.zeros((n_steps, 0))),
                "spikes": tuple(spikes)}


def _level_order(parent: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nodes sorted by depth in the tree (stable), and the inverse permutation."""
    depth = np.zeros(len(parent), int)
    for i, p in enumerate(parent):
        depth[i] = depth[p] + 1 if p >= 0 else 0
    order = np.argsort(depth, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return order, rank


def _check_finite(name, value):
    if isinstance(value, jax.core.Tracer):
        return
    arr = np.asarray(value, dtype=float)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, got {value!r}")
