"""Reading a model file's cells: the mechanisms table (found among the installed plugins),
the morphologies and each cell's values, channels, stimuli and recordings."""

from __future__ import annotations

import math
import warnings

import numpy as np

from .. import plugins
from ..cell import Cell, Location, Stimuli
from ..locations import locations_in, untagged
from ..mechanisms import registry
from ..mechanisms.base import GradedSynapse, IonPool, Synapse
from ..morphology import Morphology, Section, dropped_end
from ..names import REDUCTIONS
from ..nmodl import mechanism_sha256
from ..nmodl.registry import PACKAGE as NMODL_LOADED
from .format import CHANNELS, SYNAPSES
from .reader import Reader


def read_mechanisms(r: Reader, table, where="mechanisms") -> dict:
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
        chosen = installed_provider(r, w, group, name, package, "mechanism")
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


def _same_nmodl(r: Reader, w, saved, mech, chosen: plugins.Plugin) -> None:
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


def installed_provider(r: Reader, w, group, name, package, what) -> plugins.Plugin:
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


def read_morphology(r: Reader, m, where) -> Morphology:
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


def _point(r: Reader, p, where) -> np.ndarray:
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


def _keep_ends(r: Reader, cell: Cell, nodes: dict, where: str) -> None:
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


def read_cell(r: Reader, c, where, morphs, mechs, templates, index) -> Cell:
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
        params = r.params(ch["params"], f"{w}.params", mech)
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
            vals = r.params(item["values"], f"{wk}.values", mech, ("weight", "delay"))
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
    recordings = [read_entries(r, e, f"{where}.recordings[{i}]")
                  for i, e in enumerate(r.list(c["recordings"], f"{where}.recordings"))]
    for i, rec in enumerate(recordings):
        check_recording(r, cell, rec, f"{where}.recordings[{i}]")
        if len(rec) != 3:
            r.fail(f"{where}.recordings[{i}]", "a recording is [name, location, reduce]")
        for loc in locations_in(rec):  # files of earlier versions kept the cell index
            if index is not None and loc.cell not in (None, index):
                r.fail(f"{where}.recordings[{i}]", f"a location of cell {loc.cell} in the "
                                                   f"recordings of cell {index}")
        cell.record(rec[0], untagged(rec[1]), reduce=rec[2])
    cell.revision = 0
    return cell


def _geometry(r: Reader, x, where, own, what) -> np.ndarray:
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


def read_entries(r: Reader, e, where) -> tuple:
    return tuple(_read_entry(r, x, f"{where}[{i}]") for i, x in enumerate(r.list(e, where)))


def _read_entry(r: Reader, x, where):
    if isinstance(x, dict):
        r.keys(x, where, {"section", "x", "cell"})
        cell = x["cell"]
        return Location(r.int(x["section"], f"{where}.section"), r.number(x["x"], f"{where}.x"),
                        None if cell is None else r.int(cell, f"{where}.cell"))
    if isinstance(x, list):
        return [_read_entry(r, v, f"{where}[{i}]") for i, v in enumerate(x)]
    return x


def check_recording(r: Reader, cell: Cell, rec: tuple, where, synapses=()) -> None:
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


def check_site(r: Reader, cell: Cell, section: int, x: float, where) -> None:
    try:
        cell.node(Location(section, x))
    except (ValueError, IndexError) as err:
        r.fail(where, str(err))
