"""Reading a network file's wiring: spike sources, point populations, connection blocks and
the network's spike records and recordings."""

from __future__ import annotations

import numpy as np

from .. import plugins
from ..names import REDUCTIONS
from ..network import Network
from ..point import GENERATORS, GROUP as POINT_NEURONS, Generator, PointNeuron, SpikeGenerator
from ..point import StaticSynapse, model as point_model
from ..point.plasticity import PLASTIC
from ..point.surrogate import NAMES as SURROGATES, Surrogate
from ..ranges import as_range
from ..wiring import Block
from ..mechanisms.base import GradedSynapse
from .format import GENERATOR, SYNAPSES
from .read_cells import check_recording, check_site, installed_provider, read_entries
from .reader import Reader


WIRING_V1 = ("sources", "blocks", "spike_records", "recordings")


WIRING_V2 = ("populations", "point_spike_records", "point_recordings")  # added in version 2


def read_wiring(r: Reader, w, where, net: Network, mechs) -> None:
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
        check_site(r, cells[c], s, x, wi)
        spike_records.append((c, s, x, r.number(e["threshold"], f"{wi}.threshold")))
    recordings = []
    network_synapses = {b.synapse: b.mech for b in blocks}
    for i, e in enumerate(r.list(w["recordings"], f"{where}.recordings")):
        wi = f"{where}.recordings[{i}]"
        rec = read_entries(r, e, wi)
        if not rec:
            r.fail(wi, "empty recording")
        c = r.int(rec[0], f"{wi}[0]", 0, n_cells)
        check_recording(r, cells[c], rec[1:], wi, synapses=network_synapses)
        recordings.append(rec)
    wiring = net.wiring
    wiring.sources, wiring.blocks = sources, blocks
    wiring.spike_records, wiring.recordings = spike_records, recordings
    if v2:
        _read_point_records(r, w, where, net, pops)


def _read_population(r: Reader, e, w, net: Network):
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
        chosen = installed_provider(r, w, POINT_NEURONS, model, package, "point-neuron model")
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


def _read_surrogate(r: Reader, s, where) -> Surrogate | None:
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


def _read_point_records(r: Reader, w, where, net: Network, pops) -> None:
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


def _neuron_name(populations, k: int) -> str:
    """Point neuron ``k`` (numbered over all populations) as "<population>[i]"."""
    p = next(p for p in populations if p.offset <= k < p.offset + p.size)
    return f"{p.name!r}[{k - p.offset}]"


def _read_neurons(r: Reader, x, where, n, populations) -> np.ndarray:
    """Point neurons [n], numbered over all populations, that exist."""
    a = r.ints(x, where, n, "one per connection")
    n_points = sum(p.size for p in populations)
    bad = a[(a < 0) | (a >= n_points)]
    if bad.size:
        r.fail(where, f"point neuron {bad[0]} does not exist (the network's populations have "
                      f"{n_points} neurons, numbered from 0 over all populations)")
    return a


def _read_block(r: Reader, b, where, cells, mechs, n_sources, populations=()) -> Block:
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
            check_site(r, cells[c], s, x, where)
    if post_neuron is not None:  # every parameter of the kind (none for static), in order
        vals = r.params(b["values"], f"{where}.values", mech, ("weight", "delay"))
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
