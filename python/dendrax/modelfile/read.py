"""Reading a model file: ``load`` and ``loads``, each part checked as it is read (the format:
``dendrax.modelfile.format``)."""

from __future__ import annotations

import json
import math
import os
import warnings
from pathlib import Path

import numpy as np

from .. import plugins
from ..cell import Cell, Location, Stimuli
from ..locations import locations_in, untagged
from ..mechanisms import registry
from ..mechanisms.base import GradedSynapse, IonPool, Synapse
from ..ranges import as_range
from ..morphology import Morphology, Section, dropped_end
from ..names import REDUCTIONS
from ..nmodl import mechanism_sha256
from ..nmodl.registry import PACKAGE as NMODL_LOADED
from ..network import Network
from ..point import GENERATORS, GROUP as POINT_NEURONS, Generator, PointNeuron, SpikeGenerator
from ..point import StaticSynapse, model as point_model
from ..point.plasticity import PLASTIC
from ..point.surrogate import NAMES as SURROGATES, Surrogate
from ..wiring import Block
from .format import CHANNELS, FORMAT, GENERATOR, SYNAPSES, VERSION, ModelFileError



def load(path):
    """Read a dendrax model file written by ``save``: a ``dendrax.Cell`` or a
    ``dendrax.Network`` that simulates exactly as the saved one did.

    Raises:
        ModelFileError (a ValueError), naming the file and the problem: not JSON, not a
            dendrax model file, a newer format version, a missing or malformed entry
            (named by its place in the file, e.g. ``cells[0].values.cm``), a wrong-length
            array, a connection to a point neuron that does not exist, an unknown plastic
            synapse kind or surrogate, a parameter out of its range, a 3-D point beyond
            float32 (as NEURON's pt3d holds it), a mechanism or point-neuron model that no
            installed package registers (naming it and the package that provided it), or
            a mechanism saved with the SHA-256 of its NMODL text where the one found by
            its name was made from other text (naming both hashes).
        FileNotFoundError: no such file.
    """
    path = os.fspath(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ModelFileError(f"{path}: not a dendrax model file (not UTF-8 text: {err})") from None
    return loads(text, path)


def loads(text: str, path: str = "<string>"):
    """The model in ``text`` (the contents of a model file; ``path`` names it in errors)."""
    r = _Reader(path)

    def constant(name):
        raise ValueError(f"{name} is not allowed (a model file holds finite numbers only)")

    try:
        doc = json.loads(text, parse_constant=constant)
    except json.JSONDecodeError as err:
        raise ModelFileError(f"{path}: not a dendrax model file: not valid JSON ({err})") from None
    except ValueError as err:
        raise ModelFileError(f"{path}: {err}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        got = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
        raise ModelFileError(f"{path}: not a dendrax model file: \"format\" is {got!r}, "
                             f"expected {FORMAT!r}")
    version = doc.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        r.fail("version", f"expected a positive integer format version, got {version!r}")
    r.version = version
    if version > VERSION:
        r.fail("version", f"the file has format version {version}, written by dendrax "
                          f"{doc.get('dendrax', '?')}; this dendrax reads versions up to "
                          f"{VERSION}: upgrade dendrax to load it")
    r.keys(doc, "", {"format", "version", "dendrax", "kind", "mechanisms", "morphologies",
                     "cells"}, {"units", "wiring"})
    kind = doc["kind"]
    if kind not in ("cell", "network"):
        r.fail("kind", f"expected 'cell' or 'network', got {kind!r}")
    mechs = _read_mechanisms(r, doc["mechanisms"])
    morphs = [_read_morphology(r, m, f"morphologies[{i}]")
              for i, m in enumerate(r.list(doc["morphologies"], "morphologies"))]
    cells_doc = r.list(doc["cells"], "cells")
    if kind == "cell" and len(cells_doc) != 1:
        r.fail("cells", f"a file of kind 'cell' holds exactly one cell, got {len(cells_doc)}")
    templates: dict = {}
    cells = [r.named(f"cells[{i}]", _read_cell, r, c, f"cells[{i}]", morphs, mechs, templates,
                     i if kind == "network" else None)
             for i, c in enumerate(cells_doc)]
    if kind == "cell":
        if "wiring" in doc:
            r.fail("wiring", "a file of kind 'cell' has no wiring")
        return r.named("cells[0]", _in_range, cells[0])
    if "wiring" not in doc:
        r.fail("", "missing key 'wiring' (a file of kind 'network')")
    net = Network(cells)
    r.named("wiring", _read_wiring, r, doc["wiring"], "wiring", net, mechs)
    return r.named("", _in_range, net)


def _in_range(target):
    """``target``, after the checks simulate makes of its values (cm > 0, conductances
    >= 0, ...): a file cannot bring in what Cell.set refuses."""
    from ..checks import check_values
    from ..lowering import lower

    model, params, layout = lower(target)
    check_values(model, layout, params)
    return target


INT64 = (-(2 ** 63), 2 ** 63 - 1)  # the integers a file's indices may hold

class _Reader:
    """Checks of the parsed JSON that raise a ModelFileError naming the file and the place."""

    def __init__(self, path):
        self.path = path
        self.version = VERSION

    def fail(self, where: str, msg: str):
        raise ModelFileError(f"{self.path}: " + (f"{where}: " if where else "") + msg)

    def named(self, where: str, fn, *args):
        """fn(*args), with a ValueError from what it builds (a value out of range, as
        Cell.set refuses it) named by the file and ``where``."""
        try:
            return fn(*args)
        except ModelFileError:
            raise
        except ValueError as err:
            self.fail(where, str(err))

    def keys(self, obj, where, required, optional=()):
        if not isinstance(obj, dict):
            self.fail(where, f"expected an object, got {_kind(obj)}")
        missing = [k for k in sorted(required) if k not in obj]
        if missing:
            self.fail(where, f"missing key{'s' if len(missing) > 1 else ''} "
                             f"{', '.join(map(repr, missing))}")
        unknown = sorted(set(obj) - set(required) - set(optional))
        if unknown:
            self.fail(where, f"unknown keys {unknown}; expected {sorted({*required, *optional})}")
        return obj

    def list(self, x, where, n=None, what=""):
        if not isinstance(x, list):
            self.fail(where, f"expected an array, got {_kind(x)}")
        if n is not None and len(x) != n:
            note = f" ({what})" if what else ""
            self.fail(where, f"expected {n} entries{note}, got {len(x)}")
        return x

    def floats(self, x, where, n=None, what="") -> np.ndarray:
        x = self.list(x, where, n, what)
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in x):
            self.fail(where, "expected an array of numbers")
        a = np.array(x, dtype=np.float64)
        if not np.all(np.isfinite(a)):
            self.fail(where, "holds a number too large for a float64")
        return a

    def ints(self, x, where, n=None, what="", low=None, high=None) -> np.ndarray:
        x = self.list(x, where, n, what)
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in x):
            self.fail(where, "expected an array of integers")
        big = next((v for v in x if not INT64[0] <= v <= INT64[1]), None)
        if big is not None:
            self.fail(where, f"entry {big} is out of range (beyond a 64-bit integer)")
        a = np.array(x, dtype=np.int64)
        if a.size and low is not None and a.min() < low:
            self.fail(where, f"entry {a.min()} is below {low}")
        if a.size and high is not None and a.max() >= high:
            self.fail(where, f"entry {a.max()} is out of range (must be < {high})")
        return a

    def numbers(self, x, where, n=None, what="") -> np.ndarray:
        """An array of numbers in which the strings "inf" and "-inf" stand for +-infinity."""
        x = self.list(x, where, n, what)
        inf = {"inf": math.inf, "-inf": -math.inf}
        if not all(v in inf if isinstance(v, str) else
                   isinstance(v, (int, float)) and not isinstance(v, bool) for v in x):
            self.fail(where, 'expected an array of numbers (or "inf", "-inf")')
        try:
            nums = [float(v) for v in x if not isinstance(v, str)]
        except OverflowError:
            nums = [math.inf]
        if not all(math.isfinite(v) for v in nums):
            self.fail(where, "holds a number too large for a float64")
        return np.array([inf[v] if isinstance(v, str) else v for v in x], dtype=np.float64)

    def number(self, x, where) -> float:
        if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
            self.fail(where, f"expected a finite number, got {x!r}")
        return float(x)

    def int(self, x, where, low=None, high=None) -> int:
        if isinstance(x, bool) or not isinstance(x, int):
            self.fail(where, f"expected an integer, got {x!r}")
        if not INT64[0] <= x <= INT64[1]:
            self.fail(where, f"{x} is out of range (beyond a 64-bit integer)")
        if (low is not None and x < low) or (high is not None and x >= high):
            self.fail(where, f"{x} is out of range [{low}, {high})")
        return x

    def str(self, x, where) -> str:
        if not isinstance(x, str):
            self.fail(where, f"expected a string, got {_kind(x)}")
        return x


def _kind(x) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean",
            type(None): "null"}.get(type(x), f"the number {x!r}" if isinstance(x, (int, float))
                                    else type(x).__name__)


def _read_mechanisms(r: _Reader, table, where="mechanisms") -> dict:
    """(group, name) -> the mechanism instance, found among the installed plugins."""
    out = {}
    kinds = {CHANNELS: {"channel": False, "ion_pool": True},
             SYNAPSES: {"synapse": False, "graded_synapse": True}}
    for i, e in enumerate(r.list(table, where)):
        w = f"{where}[{i}]"
        r.keys(e, w, {"group", "name", "kind", "package"},
               {"entry_point", *(("nmodl_sha256",) if r.version >= 4 else ())})
        group, name, kind, package = (r.str(e[k], f"{w}.{k}")
                                      for k in ("group", "name", "kind", "package"))
        if group not in kinds:
            r.fail(f"{w}.group", f"expected one of {sorted(kinds)}, got {group!r}")
        if kind not in kinds[group]:
            r.fail(f"{w}.kind", f"expected one of {sorted(kinds[group])}, got {kind!r}")
        chosen = _chosen(r, w, group, name, package, "mechanism")
        try:
            lookup = registry.channel if group == CHANNELS else registry.synapse
            mech = lookup(f"{chosen.package}:{name}")
        except (plugins.PluginError, ValueError) as err:
            r.fail(w, f"mechanism {name!r} from package {chosen.package!r} cannot be loaded: {err}")
        is_special = isinstance(mech, IonPool if group == CHANNELS else GradedSynapse)
        if is_special != kinds[group][kind]:
            r.fail(f"{w}.kind", f"the file says {name!r} is a {kind}, but the installed "
                                f"{name!r} ({chosen.package}) is not")
        if "nmodl_sha256" in e:
            _same_nmodl(r, f"{w}.nmodl_sha256", e["nmodl_sha256"], mech, chosen)
        out[(group, name)] = mech
    return out


def _same_nmodl(r: _Reader, w, saved, mech, chosen: plugins.Plugin) -> None:
    """The mechanism found by name must be generated from the NMODL text the model was saved
    with (its SHA-256 ``saved``), not another .mod file with the same SUFFIX."""
    saved = r.str(saved, w)
    if len(saved) != 64 or any(c not in "0123456789abcdef" for c in saved):
        r.fail(w, f"expected a SHA-256 (64 lowercase hexadecimal digits), got {saved!r}")
    here = mechanism_sha256(mech)
    if here == saved:
        return
    origin = getattr(type(mech), "nmodl_source", None)
    found = (f"the {mech.name!r} available here (package {chosen.package!r}"
             + (f", loaded from {origin}" if origin else "") + ")")
    if here is None:
        found += " was not generated from NMODL"
    else:
        found += f" was generated from NMODL text with SHA-256 {here}"
    r.fail(w, f"mechanism {mech.name!r} was saved from NMODL text with SHA-256 {saved}, but "
              f"{found}: a different mechanism with the same name. Load the .mod file the "
              f"model was saved with (dendrax.nmodl.load(path); dendrax.nmodl.sha256(path) "
              f"gives a file's hash) before dendrax.load, or, to use this one on purpose, "
              f"build the model with it and save it again (or delete this nmodl_sha256 "
              f"entry from the file)")


def _chosen(r: _Reader, w, group, name, package, what) -> plugins.Plugin:
    """The installed provider of ``name`` in ``group``: the package that provided it when the
    model was saved, else the one package that provides it (with a warning)."""
    found = plugins.providers(group).get(name, ())
    if not found and _normal(package) == _normal(NMODL_LOADED):
        r.fail(w, f"{what} {name!r} came from dendrax.nmodl.load when the model was saved "
                  "(not an installed package): load the same .mod file first "
                  f"(dendrax.nmodl.load(path)), or package it (dendrax nmodl FILE.mod -o DIR; "
                  "pip install ./DIR) and save the model again")
    if not found:
        r.fail(w, f"{what} {name!r} (provided by package {package!r} when the model was "
                  f"saved) is not registered in this environment (entry point group "
                  f"{group!r}): install {package!r}")
    same = [p for p in found if _normal(p.package) == _normal(package)]
    if same:
        return same[0]
    if len(found) > 1:
        r.fail(w, f"{what} {name!r} was provided by package {package!r}, which is not "
                  f"installed; {', '.join(repr(p.package) for p in found)} provide the name")
    warnings.warn(f"{r.path}: {what} {name!r} was provided by package {package!r} when the "
                  f"model was saved; using the one package {found[0].package!r} provides "
                  "(results may differ)", UserWarning, stacklevel=4)
    return found[0]


def _normal(package: str) -> str:
    return package.lower().replace("_", "-")


def _read_morphology(r: _Reader, m, where) -> Morphology:
    r.keys(m, where, {"name", "sections"})
    name = r.str(m["name"], f"{where}.name")
    sections = []
    for i, s in enumerate(r.list(m["sections"], f"{where}.sections")):
        w = f"{where}.sections[{i}]"
        r.keys(s, w, {"region", "parent", "parent_x", "points"})
        pts = r.list(s["points"], f"{w}.points")
        rows = [_point(r, p, f"{w}.points[{k}]") for k, p in enumerate(pts)]
        if isinstance(s["region"], str) and not s["region"]:  # as from_sections refuses it
            r.fail(f"{w}.region", "region must be a non-empty string")
        try:  # Section refuses points float32 cannot hold, as NEURON's pt3d stores them
            section = Section(np.array(rows).reshape(-1, 4), r.int(s["parent"], f"{w}.parent"),
                              r.number(s["parent_x"], f"{w}.parent_x"),
                              r.str(s["region"], f"{w}.region"))
        except ValueError as err:
            r.fail(w, str(err))
        xyz = section.points[:, :3]
        if len(xyz) >= 2 and not np.any(np.linalg.norm(np.diff(xyz, axis=0), axis=1) > 0):
            r.fail(w, "the section has zero length (all its points coincide): its membrane "
                      "area would be 0")
        sections.append(section)
    try:
        return Morphology(tuple(sections), name=name)
    except (ValueError, TypeError) as err:
        r.fail(where, str(err))


def _point(r: _Reader, p, where) -> np.ndarray:
    """A 3-D point [x, y, z, diameter] (um); its range is Section's to check."""
    row = r.list(p, where, 4, "x, y, z, diameter")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in row):
        r.fail(where, "expected an array of numbers")
    return np.array([_float(v) for v in row])  # 1e999 reads as inf: Section refuses it


def _float(v) -> float:
    """A JSON number as a float (an integer too large for one: +-inf)."""
    try:
        return float(v)
    except OverflowError:
        return math.inf if v > 0 else -math.inf


def _keep_ends(r: _Reader, cell: Cell, nodes: dict, where: str) -> None:
    """Keep the zero-area end nodes the file's cell has where point processes sat (a
    terminal x = 1, a root's x = 0; ``Cell.point_node``), so the numbering matches."""
    sec = r.ints(nodes["section"], f"{where}.section")
    x = r.floats(nodes["x"], f"{where}.x")
    if sec.shape != x.shape:
        return  # reported with the node count below
    for s, at in sorted({(int(s), float(a)) for s, a in zip(sec, x) if a in (0.0, 1.0)}):
        if 0 <= s < len(cell.morphology.sections) and \
                dropped_end(cell.compartments, s, at):
            cell.point_node(Location(s, at))


def _read_cell(r: _Reader, c, where, morphs, mechs, templates, index) -> Cell:
    """The cell ``c``; ``index``: its place in a network file (None in a cell's file)."""
    r.keys(c, where, {"morphology", "nseg", "nodes", "values", "channels", "stimuli",
                      "recordings", "spike_records"})
    m = r.int(c["morphology"], f"{where}.morphology", 0, len(morphs))
    morph = morphs[m]
    n_sec = len(morph.sections)
    nseg = r.ints(c["nseg"], f"{where}.nseg", n_sec, "one per section", low=1)
    key = (m, tuple(nseg.tolist()))
    if key not in templates:  # cells of one morphology and nseg share their geometry
        templates[key] = Cell(morph, nseg=nseg)
    cell = templates[key].copy()

    nodes = r.keys(c["nodes"], f"{where}.nodes", {"section", "x"})
    _keep_ends(r, cell, nodes, f"{where}.nodes")
    n = cell.n_nodes
    sec = r.ints(nodes["section"], f"{where}.nodes.section", n, "one per node")
    x = r.floats(nodes["x"], f"{where}.nodes.x", n, "one per node")
    if not (np.array_equal(sec, cell.compartments.section)
            and np.array_equal(x, cell.compartments.x)):
        r.fail(f"{where}.nodes", "this dendrax numbers the cell's nodes differently from the "
                                 "dendrax that wrote the file")

    vw = f"{where}.values"
    v = r.keys(c["values"], vw, {"cm", "Ra", "L", "diam", "ions"})
    ions = r.keys(v["ions"], f"{vw}.ions", set(cell.values["ions"]))
    values = {"diam": _geometry(r, v["diam"], f"{vw}.diam", morph.point_diameters,
                                "one per 3-D point"),
              "L": _geometry(r, v["L"], f"{vw}.L", morph.lengths, "one per section"),
              "cm": r.floats(v["cm"], f"{vw}.cm", n, "one per node"),
              "Ra": r.floats(v["Ra"], f"{vw}.Ra", n_sec, "one per section"),
              "ions": {k: r.floats(a, f"{vw}.ions.{k}", n, "one per node")
                       for k, a in ions.items()},
              "mechs": {}}
    mechanisms, mech_nodes = {}, {}
    for i, ch in enumerate(r.list(c["channels"], f"{where}.channels")):
        w = f"{where}.channels[{i}]"
        r.keys(ch, w, {"name", "nodes", "params"})
        name = r.str(ch["name"], f"{w}.name")
        mech = mechs.get((CHANNELS, name))
        if mech is None:
            r.fail(f"{w}.name", f"{name!r} is not in the file's mechanisms table")
        if name in mechanisms:
            r.fail(f"{w}.name", f"{name!r} is listed twice")
        mask = np.zeros(n, bool)
        mask[r.ints(ch["nodes"], f"{w}.nodes", low=0, high=n)] = True
        params = r.keys(ch["params"], f"{w}.params", set(mech.params))
        mechanisms[name] = mech
        mech_nodes[name] = mask
        values["mechs"][name] = {p: r.floats(params[p], f"{w}.params.{p}", n, "one per node")
                                 for p in mech.params}
    cell.values = values
    cell.mechanisms = mechanisms
    cell.mechanism_nodes = mech_nodes

    sw = f"{where}.stimuli"
    st = r.keys(c["stimuli"], sw, {"iclamp", "waveform", "vclamp", "synapses"})
    node = lambda e, w: r.int(e["node"], f"{w}.node", 0, n)  # noqa: E731
    iclamp, waveform, vclamp, spikes = [], [], [], {}
    for i, e in enumerate(r.list(st["iclamp"], f"{sw}.iclamp")):
        w = f"{sw}.iclamp[{i}]"
        r.keys(e, w, {"node", "delay", "dur", "amp"})
        iclamp.append((node(e, w), *(r.number(e[k], f"{w}.{k}") for k in ("delay", "dur", "amp"))))
    for i, e in enumerate(r.list(st["waveform"], f"{sw}.waveform")):
        w = f"{sw}.waveform[{i}]"
        r.keys(e, w, {"node", "t", "i"})
        t = r.floats(e["t"], f"{w}.t")
        if t.size < 1:
            r.fail(f"{w}.t", "a waveform needs at least one time")
        back = np.flatnonzero(np.diff(t) < 0)
        if back.size:  # as Cell.stimulate
            k = int(back[0]) + 1
            r.fail(f"{w}.t", f"times must not decrease, got t[{k}] = {t[k]:g} after "
                             f"t[{k - 1}] = {t[k - 1]:g} ms")
        waveform.append((node(e, w), t, r.floats(e["i"], f"{w}.i", t.size, "one per time")))
    for i, e in enumerate(r.list(st["vclamp"], f"{sw}.vclamp")):
        w = f"{sw}.vclamp[{i}]"
        r.keys(e, w, {"node", "amp", "dur", "rs"})
        vclamp.append((node(e, w), r.floats(e["amp"], f"{w}.amp", 3, "three levels").tolist(),
                       r.floats(e["dur"], f"{w}.dur", 3, "three levels").tolist(),
                       r.number(e["rs"], f"{w}.rs")))
    for i, e in enumerate(r.list(st["synapses"], f"{sw}.synapses")):
        w = f"{sw}.synapses[{i}]"
        r.keys(e, w, {"name", "items"})
        name = r.str(e["name"], f"{w}.name")
        mech = mechs.get((SYNAPSES, name))
        if mech is None:
            r.fail(f"{w}.name", f"{name!r} is not in the file's mechanisms table")
        if not isinstance(mech, Synapse):
            r.fail(f"{w}.name", f"{name!r} is not an event-driven synapse")
        items = []
        for k, item in enumerate(r.list(e["items"], f"{w}.items")):
            wk = f"{w}.items[{k}]"
            r.keys(item, wk, {"node", "values", "times"})
            vals = r.keys(item["values"], f"{wk}.values", {*mech.params, "weight", "delay"})
            times = r.floats(item["times"], f"{wk}.times")
            if np.any(times < 0):
                r.fail(f"{wk}.times", "spike times must be >= 0 ms")
            items.append((node(item, wk), {p: r.number(vals[p], f"{wk}.values.{p}") for p in vals},
                          times))
        if not items:
            r.fail(f"{w}.items", "a synapse kind without synapses (omit it)")
        spikes[name] = (mech, items)
    cell.stimuli = Stimuli(iclamp, waveform, vclamp, spikes)

    for i, e in enumerate(r.list(c["spike_records"], f"{where}.spike_records")):
        w = f"{where}.spike_records[{i}]"
        r.keys(e, w, {"section", "x", "threshold"})
        loc = Location(r.int(e["section"], f"{w}.section"), r.number(e["x"], f"{w}.x"))
        threshold = r.number(e["threshold"], f"{w}.threshold")
        try:
            cell.record_spikes(loc, threshold=threshold)
        except (ValueError, IndexError) as err:
            r.fail(w, str(err))
    recordings = [_read_entries(r, e, f"{where}.recordings[{i}]")
                  for i, e in enumerate(r.list(c["recordings"], f"{where}.recordings"))]
    for i, rec in enumerate(recordings):
        _check_recording(r, cell, rec, f"{where}.recordings[{i}]")
        if len(rec) != 3:
            r.fail(f"{where}.recordings[{i}]", "a recording is [name, location, reduce]")
        for loc in locations_in(rec):  # files of earlier versions kept the cell index
            if index is not None and loc.cell not in (None, index):
                r.fail(f"{where}.recordings[{i}]", f"a location of cell {loc.cell} in the "
                                                   f"recordings of cell {index}")
        cell.record(rec[0], untagged(rec[1]), reduce=rec[2])
    cell.revision = 0
    return cell


def _geometry(r: _Reader, x, where, own, what) -> np.ndarray:
    """A cell's L (per section) or diam (per 3-D point): the file's numbers, and from
    version 4 on, where it writes null, the morphology's ``own`` value (from its points).
    So the points are the geometry, as NEURON's pt3d; a number is an explicit Cell.set
    (as ``sec.L = ...`` after pt3dadd), which stays authoritative where it is given."""
    own = np.asarray(own, dtype=np.float64)
    if r.version < 4:  # every value written; they take precedence over the points
        return r.floats(x, where, own.size, what)
    out = own.copy()
    for k, v in enumerate(r.list(x, where, own.size, what)):
        if v is not None:
            out[k] = r.number(v, f"{where}[{k}]")
    return out


def _read_entries(r: _Reader, e, where) -> tuple:
    return tuple(_read_entry(r, x, f"{where}[{i}]") for i, x in enumerate(r.list(e, where)))


def _read_entry(r: _Reader, x, where):
    if isinstance(x, dict):
        r.keys(x, where, {"section", "x", "cell"})
        cell = x["cell"]
        return Location(r.int(x["section"], f"{where}.section"), r.number(x["x"], f"{where}.x"),
                        None if cell is None else r.int(cell, f"{where}.cell"))
    if isinstance(x, list):
        return [_read_entry(r, v, f"{where}[{i}]") for i, v in enumerate(x)]
    return x


def _check_recording(r: _Reader, cell: Cell, rec: tuple, where, synapses=()) -> None:
    """The recording's name (its first string entry) must be recordable at its locations."""
    name = next((x for x in rec if isinstance(x, str)), None)
    if name is None:
        r.fail(where, "a recording needs the recorded quantity's name")
    locs = [x for v in rec for x in (v if isinstance(v, list) else [v]) if isinstance(x, Location)]
    rest = rec[rec.index(name) + 1:]
    if rest and not (isinstance(rest[0], Location) or (isinstance(rest[0], list) and rest[0]
                                                         and all(isinstance(v, Location)
                                                                 for v in rest[0]))):
        r.fail(where, f"the recording's location must be {{\"section\", \"x\", \"cell\"}} or a "
                      f"list of them, got {rest[0]!r}")
    bad = [x for x in rest if (x is None or isinstance(x, str)) and x not in REDUCTIONS]
    if bad:
        r.fail(where, f"unknown reduction {bad[0]!r}; expected one of {REDUCTIONS}")
    for loc in locs:
        try:
            cell.check_record(name, loc, synapses=synapses)
        except (ValueError, IndexError) as err:
            r.fail(where, str(err))


WIRING_V1 = ("sources", "blocks", "spike_records", "recordings")
WIRING_V2 = ("populations", "point_spike_records", "point_recordings")  # added in version 2


def _read_wiring(r: _Reader, w, where, net: Network, mechs) -> None:
    """Give ``net`` (holding its cells) the wiring in ``w``: point populations through
    ``Network.population`` (in order, so each gets its saved offset), their recordings
    through ``record`` and ``record_spikes``."""
    v2 = r.version >= 2
    r.keys(w, where, {*WIRING_V1, *(WIRING_V2 if v2 else ())})
    cells = net.cells
    n_cells = len(cells)
    sources = []
    for i, t in enumerate(r.list(w["sources"], f"{where}.sources")):
        t = r.floats(t, f"{where}.sources[{i}]")
        if np.any(t < 0) or np.any(np.diff(t) < 0):
            r.fail(f"{where}.sources[{i}]", "spike times must be >= 0 and sorted")
        sources.append(t)
    pops = [_read_population(r, e, f"{where}.populations[{i}]", net)
            for i, e in enumerate(r.list(w["populations"], f"{where}.populations"))] if v2 else []
    blocks = []
    for i, b in enumerate(r.list(w["blocks"], f"{where}.blocks")):
        blocks.append(_read_block(r, b, f"{where}.blocks[{i}]", cells, mechs, len(sources),
                                  net.wiring.populations))
    spike_records = []
    for i, e in enumerate(r.list(w["spike_records"], f"{where}.spike_records")):
        wi = f"{where}.spike_records[{i}]"
        r.keys(e, wi, {"cell", "section", "x", "threshold"})
        c = r.int(e["cell"], f"{wi}.cell", 0, n_cells)
        s, x = r.int(e["section"], f"{wi}.section"), r.number(e["x"], f"{wi}.x")
        _check_site(r, cells[c], s, x, wi)
        spike_records.append((c, s, x, r.number(e["threshold"], f"{wi}.threshold")))
    recordings = []
    network_synapses = {b.synapse: b.mech for b in blocks}
    for i, e in enumerate(r.list(w["recordings"], f"{where}.recordings")):
        wi = f"{where}.recordings[{i}]"
        rec = _read_entries(r, e, wi)
        if not rec:
            r.fail(wi, "empty recording")
        c = r.int(rec[0], f"{wi}[0]", 0, n_cells)
        _check_recording(r, cells[c], rec[1:], wi, synapses=network_synapses)
        recordings.append(rec)
    wiring = net.wiring
    wiring.sources, wiring.blocks = sources, blocks
    wiring.spike_records, wiring.recordings = spike_records, recordings
    if v2:
        _read_point_records(r, w, where, net, pops)


def _read_population(r: _Reader, e, w, net: Network):
    """A point population, created by ``net.population`` (a ``Population``)."""
    r.keys(e, w, {"name", "model", "group", "package", "size", "values", "spike_times",
                  *(("surrogate",) if r.version >= 3 else ())}, {"entry_point"})
    name, model, group, package = (r.str(e[k], f"{w}.{k}")
                                   for k in ("name", "model", "group", "package"))
    size = r.int(e["size"], f"{w}.size", 1)
    if group == GENERATOR:
        if model not in GENERATORS:
            r.fail(f"{w}.model", f"unknown generator {model!r}; dendrax's generators are "
                                 f"{sorted(GENERATORS)}")
        spec = model
        mech = GENERATORS[model]()
    elif group == POINT_NEURONS:
        if model in GENERATORS and model not in plugins.providers(POINT_NEURONS):
            r.fail(f"{w}.group", f"{model!r} is one of dendrax's generators: its group is "
                                 f"{GENERATOR!r}, not {POINT_NEURONS!r}")
        chosen = _chosen(r, w, POINT_NEURONS, model, package, "point-neuron model")
        spec = f"{chosen.package}:{model}"
        try:
            mech = point_model(spec)
        except (plugins.PluginError, ValueError, TypeError) as err:
            r.fail(w, f"point-neuron model {model!r} from package {chosen.package!r} cannot be "
                      f"loaded: {err}")
        if not isinstance(mech, PointNeuron) or mech.name != model:
            r.fail(f"{w}.model", f"the installed {model!r} ({chosen.package}) is not a "
                                 f"point-neuron model named {model!r}")
    else:
        r.fail(f"{w}.group", f"expected {POINT_NEURONS!r} or {GENERATOR!r}, got {group!r}")
    vals = r.keys(e["values"], f"{w}.values", set(mech.params))
    values = {k: r.numbers(vals[k], f"{w}.values.{k}", size, "one per neuron")
              for k in mech.params}
    trains = None
    if isinstance(mech, SpikeGenerator):
        trains = []
        for i, t in enumerate(r.list(e["spike_times"], f"{w}.spike_times", size,
                                     "one list per generator")):
            t = r.floats(t, f"{w}.spike_times[{i}]")
            if np.any(t < 0) or np.any(np.diff(t) < 0):
                r.fail(f"{w}.spike_times[{i}]", "spike times must be >= 0 and sorted")
            trains.append(t)
    elif e["spike_times"] is not None:
        r.fail(f"{w}.spike_times", f"only a spike_generator has spike times; a {model} has null")
    surrogate = _read_surrogate(r, e.get("surrogate"), f"{w}.surrogate")
    try:
        return net.population(spec, size, name=name, spike_times=trains, surrogate=surrogate,
                              **values)
    except (ValueError, TypeError) as err:
        r.fail(w, str(err))


def _read_surrogate(r: _Reader, s, where) -> Surrogate | None:
    """A population's surrogate gradient (null: none; absent before version 3)."""
    if s is None:
        return None
    r.keys(s, where, {"name", "slope"})
    name = r.str(s["name"], f"{where}.name")
    if name not in SURROGATES:
        r.fail(f"{where}.name", f"unknown surrogate {name!r}; the surrogates are {SURROGATES}")
    slope = r.number(s["slope"], f"{where}.slope")
    if not slope > 0:
        r.fail(f"{where}.slope", f"a surrogate's slope must be > 0 (1/mV), got {slope!r}")
    return Surrogate(name, slope)


def _read_point_records(r: _Reader, w, where, net: Network, pops) -> None:
    """The point populations' spike records and recordings, made by ``net.record_spikes``
    and ``net.record`` (one call per run of entries of one population, name and reduce), and
    the recordings of plastic connections (``net.record(name, kind)`` where they are all of
    that kind's connections, as it makes them; else the entries as they are)."""
    from itertools import groupby

    def neuron(e, wi, k):
        p = r.int(e[0], f"{wi}[0]", 0, len(pops))
        return p, r.int(e[k], f"{wi}[{k}]", 0, len(pops[p]))

    spikes = []
    for i, e in enumerate(r.list(w["point_spike_records"], f"{where}.point_spike_records")):
        wi = f"{where}.point_spike_records[{i}]"
        spikes.append(neuron(r.list(e, wi, 2, "[population, neuron]"), wi, 1))
    for p, run in groupby(spikes, key=lambda x: x[0]):
        net.record_spikes(pops[p][[i for _, i in run]])
    n_plastic = {}  # plastic kind -> its connections (recordings number them in block order)
    for b in net.wiring.blocks:
        if b.synapse in PLASTIC and b.post_neuron is not None:
            n_plastic[b.synapse] = n_plastic.get(b.synapse, 0) + b.size
    recs = []
    for i, e in enumerate(r.list(w["point_recordings"], f"{where}.point_recordings")):
        wi = f"{where}.point_recordings[{i}]"
        r.list(e, wi, 4, "[population, name, neuron, reduce]")
        if isinstance(e[0], str) and r.version >= 3:  # a plastic connection's state
            kind, name = e[0], r.str(e[1], f"{wi}[1]")
            if kind not in PLASTIC:
                r.fail(f"{wi}[0]", f"unknown plastic synapse kind {kind!r}; the plastic kinds "
                                   f"are {sorted(PLASTIC)}")
            if kind not in n_plastic:
                r.fail(f"{wi}[0]", f"the network has no {kind} connections to record")
            if name not in PLASTIC[kind].states:
                r.fail(f"{wi}[1]", f"{kind} records {list(PLASTIC[kind].states)}, not {name!r}")
            p, k = kind, r.int(e[2], f"{wi}[2]", 0, n_plastic[kind])
        else:
            p, k = neuron(e, wi, 2)
            name = r.str(e[1], f"{wi}[1]")
            model = pops[p].model
            if name not in model.recordables:
                r.fail(f"{wi}[1]", f"{model.name} cannot record {name!r}; it records "
                                   f"{list(model.recordables)}")
        reduce = e[3]
        if reduce not in REDUCTIONS:
            r.fail(f"{wi}[3]", f"unknown reduction {reduce!r}; expected one of {REDUCTIONS}")
        recs.append((p, name, k, reduce))
    for (p, name, reduce), run in groupby(recs, key=lambda x: (x[0], x[1], x[3])):
        index = [x[2] for x in run]
        if not isinstance(p, str):
            net.record(name, pops[p][index], reduce=reduce)
        elif index == list(range(n_plastic[p])):  # as net.record(name, kind) records them
            net.record(name, p, reduce=reduce)
        else:  # some of them (the entries net.record would make for these alone)
            net.wiring.point_recordings.extend((p, name, k, reduce) for k in index)


def _check_site(r: _Reader, cell: Cell, section: int, x: float, where) -> None:
    try:
        cell.node(Location(section, x))
    except (ValueError, IndexError) as err:
        r.fail(where, str(err))


def _neuron_name(populations, k: int) -> str:
    """Point neuron ``k`` (numbered over all populations) as "<population>[i]"."""
    p = next(p for p in populations if p.offset <= k < p.offset + p.size)
    return f"{p.name!r}[{k - p.offset}]"


def _read_neurons(r: _Reader, x, where, n, populations) -> np.ndarray:
    """Point neurons [n], numbered over all populations, that exist."""
    a = r.ints(x, where, n, "one per connection")
    n_points = sum(p.size for p in populations)
    bad = a[(a < 0) | (a >= n_points)]
    if bad.size:
        r.fail(where, f"point neuron {bad[0]} does not exist (the network's populations have "
                      f"{n_points} neurons, numbered from 0 over all populations)")
    return a


def _read_block(r: _Reader, b, where, cells, mechs, n_sources, populations=()) -> Block:
    keys = {"synapse", "graded", "pre_cell", "pre_section", "pre_x", "pre_source", "threshold",
            "post_cell", "post_section", "post_x", "values"}
    r.keys(b, where, keys | ({"pre_neuron", "post_neuron"} if r.version >= 2 else set()))
    name = r.str(b["synapse"], f"{where}.synapse")
    graded = b["graded"]
    if not isinstance(graded, bool):
        r.fail(f"{where}.graded", f"expected true or false, got {graded!r}")
    what = "one per connection"
    post_neuron = b.get("post_neuron")
    if post_neuron is not None:  # static and plastic connections onto point neurons
        if name != "static" and (name not in PLASTIC or r.version < 3):
            plastic = f" or a plastic one {sorted(PLASTIC)}" if r.version >= 3 else \
                f" in a version {r.version} file (plastic ones from version 3 on)"
            r.fail(f"{where}.synapse", f"connections onto point neurons (post_neuron) use the "
                                       f"'static' synapse{plastic}, got {name!r}")
        if graded:
            r.fail(f"{where}.graded", "connections onto point neurons are not graded")
        if any(b[k] is not None for k in ("post_cell", "post_section", "post_x")):
            r.fail(where, "connections onto point neurons have post_neuron only (post_cell, "
                          "post_section and post_x null)")
        mech = StaticSynapse() if name == "static" else PLASTIC[name]()
        post_neuron = _read_neurons(r, post_neuron, f"{where}.post_neuron", None, populations)
        n = post_neuron.size
        for p in populations:
            hit = post_neuron[(post_neuron >= p.offset) & (post_neuron < p.offset + p.size)]
            if hit.size and isinstance(p.model, Generator):
                r.fail(f"{where}.post_neuron", f"point neuron {hit[0]} "
                       f"({_neuron_name(populations, int(hit[0]))}) is a {p.model.name}, which "
                       "cannot be a connection's target")
        post_cell = post_section = post_x = None
    else:
        mech = mechs.get((SYNAPSES, name))
        if mech is None:
            r.fail(f"{where}.synapse", f"{name!r} is not in the file's mechanisms table")
        if graded is not isinstance(mech, GradedSynapse):
            r.fail(f"{where}.graded",
                   f"{name} is {'' if isinstance(mech, GradedSynapse) else 'not '}"
                   f"a graded synapse, the file says graded={graded!r}")
        post_cell = r.ints(b["post_cell"], f"{where}.post_cell", low=0, high=len(cells))
        n = post_cell.size
        post_section = r.ints(b["post_section"], f"{where}.post_section", n, what, low=0)
        post_x = r.floats(b["post_x"], f"{where}.post_x", n, what)
    optional = {}
    for k in ("pre_cell", "pre_section", "pre_x", "pre_source", "pre_neuron", "threshold"):
        if b.get(k) is None:  # pre_neuron is absent from version 1 files
            optional[k] = None
        elif k in ("pre_x", "threshold"):
            optional[k] = r.floats(b[k], f"{where}.{k}", n, what)
        elif k == "pre_neuron":
            optional[k] = _read_neurons(r, b[k], f"{where}.{k}", n, populations)
        else:
            optional[k] = r.ints(b[k], f"{where}.{k}", n, what, low=0)
    on_cells = [optional[k] is not None for k in ("pre_cell", "pre_section", "pre_x")]
    if any(on_cells) and not all(on_cells):
        r.fail(where, "connections from cells need pre_cell, pre_section and pre_x")
    pre = [k for k, on in (("pre_cell", all(on_cells)),
                           ("pre_source", optional["pre_source"] is not None),
                           ("pre_neuron", optional["pre_neuron"] is not None)) if on]
    if len(pre) != 1:
        r.fail(where, "connections have one kind of presynaptic side: pre_cell, pre_section and "
                      "pre_x (cells), pre_source (spike sources) or pre_neuron (point neurons); "
                      f"this block has {' and '.join(pre) or 'none'}")
    pre = pre[0]
    if graded and pre != "pre_cell":
        r.fail(where, f"{name} is a graded synapse: its presynaptic side must be a cell")
    if (optional["threshold"] is None) != (graded or pre != "pre_cell"):
        r.fail(f"{where}.threshold", "event-driven connections from cells have a threshold; "
                                     "graded ones and those from spike sources or point neurons "
                                     "have none")
    if pre == "pre_source":
        if post_neuron is not None:
            r.fail(where, "spike sources drive cells only (a spike_generator population drives "
                          "point neurons)")
        if n and optional["pre_source"].max() >= n_sources:
            r.fail(f"{where}.pre_source", f"unknown spike source {optional['pre_source'].max()} "
                                          f"(the file has {n_sources})")
    elif pre == "pre_cell":
        if optional["pre_cell"].size and optional["pre_cell"].max() >= len(cells):
            r.fail(f"{where}.pre_cell", f"cell {optional['pre_cell'].max()} out of range "
                                        f"(the network has {len(cells)} cells)")
    elif post_neuron is None or name in PLASTIC:  # onto cells, or plastic: spiking sources
        for p in populations:
            a = optional["pre_neuron"]
            hit = a[(a >= p.offset) & (a < p.offset + p.size)]
            # a spike_generator drives cells (a NetCon's source), but no plastic synapse
            # (NEST's devices connect by static synapses only), as Network.connect
            if hit.size and isinstance(p.model, Generator) and (
                    p.model.name != "spike_generator" or name in PLASTIC):
                r.fail(f"{where}.pre_neuron", f"point neuron {hit[0]} "
                       f"({_neuron_name(populations, int(hit[0]))}) is a {p.model.name}, which "
                       + ("drives point neurons only" if post_neuron is None else
                          f"cannot drive {name} connections (they need neurons or cells as "
                          "sources: relay it through a parrot_neuron)"))
    sites = [] if post_neuron is not None else [(post_cell, post_section, post_x)]
    if pre == "pre_cell":
        sites.append((optional["pre_cell"], optional["pre_section"], optional["pre_x"]))
    for cs, ss, xs in sites:
        for c, s, x in set(zip(cs.tolist(), ss.tolist(), xs.tolist())):
            _check_site(r, cells[c], s, x, where)
    if post_neuron is not None:  # every parameter of the kind (none for static), in order
        vals = r.keys(b["values"], f"{where}.values", {*mech.params, "weight", "delay"})
        values = {k: r.floats(vals[k], f"{where}.values.{k}", n, what)
                  for k in (*mech.params, "weight", "delay")}
        for k, rng in mech.ranges.items():
            try:
                as_range(rng).check(f"{name}.{k}", values[k], mech.units.get(k, ""))
            except ValueError as err:
                r.fail(f"{where}.values.{k}", str(err))
    else:
        expected = {*mech.params, "delay"} | (set() if graded else {"weight"})
        vals = r.keys(b["values"], f"{where}.values", expected)
        values = {k: r.floats(v, f"{where}.values.{k}", n, what) for k, v in vals.items()}
    return Block(name, mech, graded, optional["pre_cell"], optional["pre_section"],
                 optional["pre_x"], optional["pre_source"], optional["threshold"], post_cell,
                 post_section, post_x, values, pre_neuron=optional["pre_neuron"],
                 post_neuron=post_neuron)
