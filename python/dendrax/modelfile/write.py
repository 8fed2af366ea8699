"""Writing a model file: ``save`` and ``dumps`` (the format: ``dendrax.modelfile.format``)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from .. import plugins
from ..cell import Cell, Location
from ..mechanisms.base import GradedSynapse, IonPool
from ..morphology import Morphology
from ..network import Network
from ..nmodl import mechanism_sha256
from ..wiring import Block, Wiring
from ..point import GENERATORS, GROUP as POINT_NEURONS, Generator, SpikeGenerator, StaticSynapse
from ..point.plasticity import PLASTIC
from ..point.surrogate import as_surrogate
from .format import CHANNELS, FORMAT, GENERATOR, SYNAPSES, UNITS, VERSION, ModelFileError
from ..version import __version__


def save(target, path) -> None:
    """Write ``target`` (a ``dendrax.Cell`` or ``dendrax.Network``) to ``path`` as a
    dendrax model file (JSON; the format: ``dendrax.modelfile.format``).

    Raises:
        ModelFileError (a ValueError): a value is NaN or infinite (named by its place in the
            file), or a mechanism or point-neuron model is not a registered plugin (a class
            inserted or given to ``Network.population`` directly), so a loaded model could
            not find it.
        TypeError: ``target`` is neither a Cell nor a Network.
    """
    text = dumps(target)
    Path(path).write_text(text, encoding="utf-8")


def dumps(target) -> str:
    """The text ``save`` writes."""

    if isinstance(target, Network):
        kind, cells = "network", list(target.cells)
    elif isinstance(target, Cell):
        kind, cells = "cell", [target]
    else:
        raise TypeError(f"dendrax.save writes a dendrax.Cell or a dendrax.Network, got "
                        f"{type(target).__name__}")
    _refuse_extracellular(target, cells)
    enc = _Encoder()
    encoded = [enc.cell(c) for c in cells]
    doc = {"format": FORMAT, "version": VERSION, "dendrax": __version__, "kind": kind,
           "units": dict(UNITS)}
    wiring = enc.wiring(target.wiring) if kind == "network" else None
    doc["mechanisms"] = list(enc.mechanisms.values())
    doc["morphologies"] = [_morphology(m) for m in enc.morphologies]
    doc["cells"] = encoded
    if wiring is not None:
        doc["wiring"] = wiring
    _check_finite(doc, "")
    return _dump(doc) + "\n"


def _refuse_extracellular(target, cells) -> None:
    """Extracellular readouts and cell placements are not part of the file format yet: refuse
    them by name rather than write a model that loads without them."""
    names = [r.name for c in cells for r in getattr(c, "field_records", [])]
    wiring = getattr(target, "wiring", None)
    names += [r.name for r in getattr(wiring, "fields", [])]
    if names:
        raise ModelFileError(f"cannot save extracellular readouts {names} (record_extracellular / "
                             "record_dipole): the model file does not hold electrodes yet; save "
                             "the model without them and record them again after dendrax.load")
    if getattr(wiring, "placements", None):
        raise ModelFileError(f"cannot save the positions of cells {sorted(wiring.placements)} "
                             "(Network.add/replicate/place position=, rotation=): the model file "
                             "does not hold cell positions yet; place the cells again after "
                             "dendrax.load")


class _Encoder:
    def __init__(self):
        self.mechanisms: dict[tuple[str, str], dict] = {}  # (group, name) -> entry, first use
        self.morphologies: list[Morphology] = []

    def mechanism(self, group: str, mech) -> str:
        """Register ``mech`` (an instance) in the table; its name."""
        key = (group, mech.name)
        if key not in self.mechanisms:
            p = _provider(group, mech)
            kind = {CHANNELS: "ion_pool" if isinstance(mech, IonPool) else "channel",
                    SYNAPSES: "graded_synapse" if isinstance(mech, GradedSynapse) else "synapse"}
            self.mechanisms[key] = {"group": group, "name": mech.name, "kind": kind[group],
                                    "package": p.package, "entry_point": p.value}
            sha = mechanism_sha256(mech)
            if sha is not None:  # load refuses another .mod file with this SUFFIX
                self.mechanisms[key]["nmodl_sha256"] = sha
        return mech.name

    def morphology(self, m: Morphology) -> int:
        for i, known in enumerate(self.morphologies):
            if known is m or known == m:
                return i
        self.morphologies.append(m)
        return len(self.morphologies) - 1

    def cell(self, cell: Cell) -> dict:
        comps = cell.compartments
        vals = cell.values
        channels = []
        for name, mech in cell.mechanisms.items():
            channels.append({"name": self.mechanism(CHANNELS, mech),
                             "nodes": np.flatnonzero(cell.mechanism_nodes[name]).tolist(),
                             "params": {p: _floats(v) for p, v in vals["mechs"][name].items()}})
        st = cell.stimuli
        synapses = []
        for name, (mech, items) in st.spikes.items():
            self.mechanism(SYNAPSES, mech)
            synapses.append({"name": name, "items": [
                {"node": int(node), "values": {k: float(v) for k, v in values.items()},
                 "times": _floats(times)} for node, values, times in items]})
        return {
            "morphology": self.morphology(cell.morphology),
            "nseg": [int(n) for n in cell.nseg],
            "nodes": {"section": np.asarray(comps.section).tolist(), "x": _floats(comps.x)},
            "values": {"cm": _floats(vals["cm"]), "Ra": _floats(vals["Ra"]),
                       "L": _overrides(vals["L"], cell.morphology.lengths),
                       "diam": _overrides(vals["diam"], cell.morphology.point_diameters),
                       "ions": {k: _floats(v) for k, v in vals["ions"].items()}},
            "channels": channels,
            "stimuli": {
                "iclamp": [{"node": int(n), "delay": float(d), "dur": float(t), "amp": float(a)}
                           for n, d, t, a in st.iclamp],
                "waveform": [{"node": int(n), "t": _floats(t), "i": _floats(i)}
                             for n, t, i in st.waveform],
                "vclamp": [{"node": int(n), "amp": _floats(a), "dur": _floats(d), "rs": float(rs)}
                           for n, a, d, rs in st.vclamp],
                "synapses": synapses},
            "recordings": [_entries(r) for r in _recordings(cell)],
            "spike_records": [{"section": int(s), "x": float(x), "threshold": float(t)}
                              for s, x, t in cell.spike_records],
        }

    def wiring(self, w: Wiring) -> dict:
        populations = [self.population(p, f"wiring.populations[{i}]")
                       for i, p in enumerate(w.populations)]
        blocks = []
        for i, b in enumerate(w.blocks):
            if b.post_neuron is None:
                self.mechanism(SYNAPSES, b.mech)
            else:
                _check_point_block(b, f"wiring.blocks[{i}]")
            ints = lambda a: None if a is None else np.asarray(a).astype(int).tolist()  # noqa: E731
            flts = lambda a: None if a is None else _floats(a)  # noqa: E731
            n = b.size
            blocks.append({
                "synapse": b.synapse, "graded": bool(b.graded),
                "pre_cell": ints(b.pre_cell), "pre_section": ints(b.pre_section),
                "pre_x": flts(b.pre_x), "pre_source": ints(b.pre_source),
                "pre_neuron": ints(b.pre_neuron),
                "threshold": None if b.threshold is None else _floats(
                    np.broadcast_to(np.asarray(b.threshold, float), (n,))),
                "post_cell": ints(b.post_cell), "post_section": ints(b.post_section),
                "post_x": flts(b.post_x), "post_neuron": ints(b.post_neuron),
                "values": {k: _floats(np.broadcast_to(np.asarray(v, float), (n,)))
                           for k, v in b.values.items()}})
        return {"sources": [_floats(t) for t in w.sources], "populations": populations,
                "blocks": blocks,
                "spike_records": [{"cell": int(c), "section": int(s), "x": float(x),
                                   "threshold": float(t)} for c, s, x, t in w.spike_records],
                "recordings": [_entries(r) for r in w.recordings],
                "point_spike_records": [[int(p), int(i)] for p, i in w.point_spike_records],
                "point_recordings": [[p if isinstance(p, str) else int(p), str(name), int(i),
                                      reduce] for p, name, i, reduce in w.point_recordings]}

    def population(self, spec, where: str) -> dict:
        """A point population's entry (its model found among the registered plugins, or a
        built-in generator)."""
        m = spec.model
        if isinstance(m, Generator):
            if GENERATORS.get(m.name) is not type(m):
                cls = type(m)
                raise ModelFileError(
                    f"cannot save {where} ({spec.name!r}): its generator "
                    f"{cls.__module__}.{cls.__qualname__} is not one of dendrax's generators "
                    f"{sorted(GENERATORS)}")
            entry = {"name": spec.name, "model": m.name, "group": GENERATOR, "package": "dendrax"}
        else:
            p = _provider(POINT_NEURONS, m, what="point-neuron model",
                          how="give it to Network.population by name (see docs/point_neurons.md)")
            entry = {"name": spec.name, "model": m.name, "group": POINT_NEURONS,
                     "package": p.package, "entry_point": p.value}
        entry["size"] = int(spec.size)
        entry["values"] = {k: _numbers(v) for k, v in spec.values.items()}
        entry["spike_times"] = ([_floats(t) for t in spec.spike_times]
                                if isinstance(m, SpikeGenerator) else None)
        s = getattr(m, "surrogate", None)
        if s is not None:
            try:
                s = as_surrogate(s)
            except (ValueError, TypeError) as err:
                raise ModelFileError(f"cannot save {where} ({spec.name!r}): its surrogate "
                                     f"{s!r}: {err}") from None
            s = {"name": s.name, "slope": float(s.slope)}
        entry["surrogate"] = s
        return entry


def _check_point_block(b: Block, where: str) -> None:
    """A block onto point neurons must be one that ``load`` rebuilds: the built-in "static"
    synapse or a plastic kind with every parameter, weight and delay."""
    if b.synapse == "static" and isinstance(b.mech, StaticSynapse):
        expected = {"weight", "delay"}
    elif b.synapse in PLASTIC and type(b.mech) is PLASTIC[b.synapse]:
        expected = {*PLASTIC[b.synapse].params, "weight", "delay"}
    else:
        raise ModelFileError(f"cannot save {where}: connections onto point neurons use the "
                             f"'static' synapse or a plastic one {sorted(PLASTIC)}, got "
                             f"{b.synapse!r} ({type(b.mech).__name__})")
    if set(b.values) != expected:
        raise ModelFileError(f"cannot save {where}: its {b.synapse} connections have values "
                             f"{sorted(b.values)}, expected {sorted(expected)}")


def _recordings(cell: Cell) -> list:
    """Every recording of a cell as the cell holds it (traces and statistics)."""
    return list(cell.recorded)


def _provider(group: str, mech, what: str = "mechanism",
              how: str = "insert it by name") -> plugins.Plugin:
    """The registered plugin whose object ``mech`` is (an instance of), or a ModelFileError."""
    cls = type(mech)
    for p in plugins.providers(group).get(mech.name, ()):
        try:
            obj = plugins.load(group, f"{p.package}:{p.name}")
        except plugins.PluginError:
            continue
        if obj is mech or obj is cls or type(obj) is cls:
            return p
    raise ModelFileError(
        f"cannot save {what} {mech.name!r} ({cls.__module__}.{cls.__qualname__}): it is not "
        f"a registered plugin, so a loaded model could not find it. Register it under the "
        f"entry point group {group!r} of an installed package (see docs/mechanisms.md) and "
        f"{how}")


def _morphology(m: Morphology) -> dict:
    return {"name": m.name, "sections": [
        {"region": s.region, "parent": int(s.parent), "parent_x": float(s.parent_x),
         "points": np.asarray(s.points, float).tolist()} for s in m.sections]}


def _floats(a) -> list:
    return np.asarray(a, dtype=np.float64).ravel().tolist()


def _overrides(values, own) -> list:
    """``values`` as floats, with null where one equals (bit for bit) the morphology's
    ``own`` value: the points are the geometry, a number is an explicit Cell.set."""
    values = np.asarray(values, dtype=np.float64).ravel()
    own = np.asarray(own, dtype=np.float64).ravel()
    same = values.view(np.int64) == own.view(np.int64)
    return [None if s else v for s, v in zip(same.tolist(), values.tolist())]


def _numbers(a) -> list:
    """As ``_floats``, with +-infinity written as the strings "inf" / "-inf" (NaN stays, to be
    refused by ``_check_finite``)."""
    return [("inf" if v > 0 else "-inf") if math.isinf(v) else v for v in _floats(a)]


def _entries(rec) -> list:
    """A recording tuple's entries as JSON (strings, numbers, None, locations, lists)."""
    return [_entry(x) for x in rec]


def _entry(x):
    if isinstance(x, Location):
        return {"section": int(x.section), "x": float(x.x),
                "cell": None if x.cell is None else int(x.cell)}
    if isinstance(x, (list, tuple)):
        return [_entry(v) for v in x]
    if isinstance(x, np.ndarray):
        return [_entry(v) for v in x.tolist()]
    if isinstance(x, np.generic):
        return x.item()
    if x is None or isinstance(x, (str, bool, int, float)):
        return x
    raise ModelFileError(f"cannot save a recording entry of type {type(x).__name__}: {x!r}")


def _check_finite(x, where: str) -> None:
    if isinstance(x, float):
        if not math.isfinite(x):
            raise ModelFileError(f"cannot save {where}: {x} is not a finite number (a JSON "
                                 "model file holds finite numbers only)")
    elif isinstance(x, dict):
        for k, v in x.items():
            _check_finite(v, f"{where}.{k}" if where else k)
    elif isinstance(x, list):
        for i, v in enumerate(x):
            if isinstance(v, (dict, list)) or (isinstance(v, float) and not math.isfinite(v)):
                _check_finite(v, f"{where}[{i}]")


def _dump(x, indent: int = 0) -> str:
    """Deterministic, readable JSON: objects one key a line, flat arrays on one line, small
    objects and arrays (up to 96 characters) on one line."""
    if not isinstance(x, (dict, list)) or (
            isinstance(x, list) and not any(isinstance(v, (dict, list)) for v in x)):
        return json.dumps(x, allow_nan=False)
    if _small(x):
        flat = json.dumps(x, allow_nan=False)
        if len(flat) + indent <= 96:
            return flat
    pad = " " * (indent + 2)
    if isinstance(x, dict):
        body = ",\n".join(f"{pad}{json.dumps(k)}: {_dump(v, indent + 2)}" for k, v in x.items())
        return "{\n" + body + "\n" + " " * indent + "}"
    body = ",\n".join(pad + _dump(v, indent + 2) for v in x)
    return "[\n" + body + "\n" + " " * indent + "]"


def _small(x, budget: int = 32) -> bool:
    """Whether ``x`` has at most ``budget`` entries in all (so that it may fit one line)."""
    stack = [x]
    while stack:
        y = stack.pop()
        items = y.values() if isinstance(y, dict) else y
        budget -= len(items)
        if budget < 0:
            return False
        stack.extend(v for v in items if isinstance(v, (dict, list)))
    return True
