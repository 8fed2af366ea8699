"""One network split by cells over devices: each device simulates its share of the
cells, and spikes cross devices by one all-gather per minimum delay, as NEURON and
NEST exchange spikes over MPI.

    res = dendrax.distributed.simulate(net, t_stop, dt, devices=4)

gives what ``dendrax.simulate(net, t_stop, dt)`` gives (tested on CPU with forced
host device counts). The cells are cut into contiguous groups of about equal
compartment counts, one per device (a ``jax.sharding.Mesh`` axis "cells"); each
group runs the same step as a whole network (one Hines solve over its own forest),
padded to the largest group's sizes. Spike detection and delivery keep NEURON's
semantics: a connection with a delay of D steps reads spikes D steps old, so with
the minimum delay M (in steps) every device runs M steps on its own, then all
devices exchange the spikes of those M steps at once.

Limits (clear errors): every connection's delay must reach the next step
(delay > dt/2); graded synapses and recordings other than "v" are not split yet.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.sharding import Mesh, PartitionSpec as P

from .simulation import schedule
from .delays import event_delay_steps
from .checks import refuse_invalid
from .simulator_units import core_params
from .timecourse import drive
from .model import EventInputs, Model, Placement
from .result import Result
from .state import initial_state
from .step import pack_bits, step_function
from .stdrun import checked_params, prepare, run_meta

AXIS = "cells"


def partition(node_counts, n_parts: int) -> list[np.ndarray]:
    """Contiguous groups of cells (indices) with about equal node counts, none empty."""
    n = len(node_counts)
    if not 1 <= n_parts <= n:
        raise ValueError(f"cannot split {n} cells over {n_parts} devices (need 1 <= devices <= cells)")
    cum = np.cumsum(node_counts)
    cuts = [0]
    for k in range(1, n_parts):
        c = int(np.searchsorted(cum, cum[-1] * k / n_parts)) + 1
        cuts.append(min(max(c, cuts[-1] + 1), n - (n_parts - k)))
    cuts.append(n)
    return [np.arange(a, b) for a, b in zip(cuts[:-1], cuts[1:])]


def _pad(rows, fill, width=None):
    """[D, width] int array of ragged rows, padded with ``fill``."""
    width = max([len(r) for r in rows] + [0]) if width is None else width
    out = np.full((len(rows), width), fill, np.int64)
    for d, r in enumerate(rows):
        out[d, :len(r)] = r
    return out


class _Plan:
    """Which global nodes, entries and sources each part holds (numpy, static)."""

    def __init__(self, model: Model, layout, parts):
        D = len(parts)
        order_cell = np.repeat(np.arange(len(layout.cells)), np.diff(layout.node_offset))[layout.order]
        part_of_cell = np.empty(len(layout.cells), int)
        for d, cells in enumerate(parts):
            part_of_cell[cells] = d
        part = part_of_cell[order_cell]  # [N] part of each solver node
        nodes = [np.flatnonzero(part == d) for d in range(D)]
        self.N = max(len(x) for x in nodes) + 1  # at least one dummy node per part
        local = np.empty(model.n_nodes, int)
        for x in nodes:
            local[x] = np.arange(len(x))
        is_segment = np.concatenate([~c.compartments.is_junction for c in layout.cells])[layout.order]
        pad_node = int(np.flatnonzero(is_segment)[0])  # values of a real compartment for dummies
        self.nodes = _pad(nodes, pad_node, self.N)
        self.parent = _pad([np.where(model.parent[x] >= 0, local[np.maximum(model.parent[x], 0)], -1)
                            for x in nodes], -1, self.N)
        dummy = [len(x) for x in nodes]  # first dummy node of each part

        def split(entry_nodes):
            """(entries [D, n], local nodes [D, n]) of a placement; pads sit on dummies."""
            rows = [np.flatnonzero(part[entry_nodes] == d) for d in range(D)]
            width = max(len(r) for r in rows) + 1
            entries = _pad(rows, 0, width)
            where = _pad([local[entry_nodes[r]] for r in rows], -1, width)
            where = np.where(where < 0, np.asarray(dummy)[:, None], where)
            return entries, where, rows

        self.channels = [split(np.arange(model.n_nodes) if p.nodes is None else p.nodes)[:2]
                         for p in model.channels]
        # spike sources: each part watches its own; bit (d * words + i) of a ring row
        src_rows = [np.flatnonzero(part[model.source_nodes] == d) for d in range(D)]
        self.S = max([len(r) for r in src_rows] + [0]) + 1
        self.words = -(-self.S // 32)
        src = _pad([local[model.source_nodes[r]] for r in src_rows], -1, self.S)
        self.source_nodes = np.where(src < 0, np.asarray(dummy)[:, None], src)
        thr = np.full((D, self.S), np.inf)
        bit = np.empty(model.n_sources, int)  # global bit of each source
        slot = np.empty(model.n_sources, int)  # column of each source in the gathered raster
        for d, r in enumerate(src_rows):
            thr[d, :len(r)] = model.source_threshold[r]
            bit[r] = d * self.words * 32 + np.arange(len(r))
            slot[r] = d * self.S + np.arange(len(r))
        self.threshold = thr
        never = (self.S - 1)  # the last source slot of part 0 never fires (threshold inf)
        self.synapses = []
        for p, inp in zip(model.synapses, model.inputs):
            entries, where, rows = split(p.nodes)
            pos = [{int(e): i for i, e in enumerate(r)} for r in rows]
            conn = [[(pos[d][int(l)], int(bit[s])) for l, s in zip(inp.conn_local, inp.conn_source)
                     if int(l) in pos[d]] for d in range(D)]
            train = [[(pos[d][int(l)], j) for j, l in enumerate(inp.train_local) if int(l) in pos[d]]
                     for d in range(D)]
            pad_syn = entries.shape[1] - 1  # every part has a pad synapse there
            width = max([len(c) for c in conn] + [0])
            conn_local = _pad([[a for a, _ in c] for c in conn], pad_syn, width)
            conn_bit = _pad([[b for _, b in c] for c in conn], never, width)
            width = max([len(t) for t in train] + [0])
            train_local = _pad([[a for a, _ in t] for t in train], pad_syn, width)
            train_col = _pad([[j for _, j in t] for t in train], inp.train_local.size, width)
            self.synapses.append((entries, where, conn_local, conn_bit, train_local, train_col))

        def clamps(global_nodes, n_global):
            rows = [np.flatnonzero(part[global_nodes] == d) for d in range(D)] if n_global else \
                [np.zeros(0, int)] * D
            width = max(len(r) for r in rows)
            entries = _pad(rows, n_global, width)  # pads read an appended "off" entry
            where = _pad([local[global_nodes[r]] for r in rows], -1, width)
            return entries, np.where(where < 0, np.asarray(dummy)[:, None], where)

        self.iclamp = clamps(model.iclamp_nodes, model.iclamp_nodes.size)
        self.vclamp = clamps(model.vclamp_nodes, model.vclamp_nodes.size)
        self.waveform = clamps(model.waveform_nodes, model.waveform_nodes.size)
        rec_rows = [[i for i, r in enumerate(model.recordings) if part[r.node] == d] for d in range(D)]
        self.R = max([len(r) for r in rec_rows] + [0])
        rec = _pad([[local[model.recordings[i].node] for i in r] for r in rec_rows], -1, self.R)
        self.rec_nodes = np.where(rec < 0, np.asarray(dummy)[:, None], rec)
        rec_slot = np.empty(len(model.recordings), int)
        for d, r in enumerate(rec_rows):
            rec_slot[r] = d * self.R + np.arange(len(r))
        self.rec_slot = rec_slot
        self.spike_slot = slot[model.spike_records]


def _gather(x, index, fill=None):
    """x[index] over the leading axis; with ``fill``, index == len(x) reads ``fill``."""
    if fill is not None:
        x = jnp.concatenate([x, jnp.broadcast_to(jnp.asarray(fill, x.dtype), (1,) + x.shape[1:])])
    return x[index]


def _split_core(core, plan: _Plan):
    """The global core params cut into [D, ...] per part (differentiable gathers)."""
    node = lambda x: x[plan.nodes]  # noqa: E731
    off = {"delay": 0.0, "dur": 0.0, "amp": 0.0, "rs": 1.0}
    n_dev = plan.nodes.shape[0]
    return {
        "v_init": jnp.broadcast_to(core["v_init"], (n_dev,)),
        "celsius": jnp.broadcast_to(core["celsius"], (n_dev,)),
        "area": node(core["area"]), "diam": node(core["diam"]), "g_axial": node(core["g_axial"]),
        "cm": node(core["cm"]),
        "ions": {k: node(a) for k, a in core["ions"].items()},
        "channels": tuple({k: a[e] for k, a in p.items()} for p, (e, _) in
                          zip(core["channels"], plan.channels)),
        "synapses": tuple({k: a[s[0]] for k, a in p.items()} for p, s in
                          zip(core["synapses"], plan.synapses)),
        "graded": (),
        "iclamp": {k: _gather(a, plan.iclamp[0], off[k]) for k, a in core["iclamp"].items()},
        "vclamp": {k: _gather(a, plan.vclamp[0], off[k]) for k, a in core["vclamp"].items()},
    }


def simulate(net, t_stop: float, dt: float = 0.025, *, devices=None, params=None,
             v_init: float = -65.0, celsius: float = 6.3, method: str = "backward_euler",
             backend: str = "auto"):
    """Simulate ``net`` split by cells over ``devices`` (None: every device; an int: the
    first n; or a list). The other arguments and the result as ``dendrax.simulate``'s of
    those names (it takes no record_every, resume, checkpoint or key). The shortest
    connection delay sets how often the parts exchange spikes: where ``params`` is traced
    (jit, grad), the network's own delays set it, and traced delays shorter than that make
    the outputs NaN."""
    run_ = prepare(net, t_stop, dt, v_init, celsius, method)
    model, layout, n_steps, dt = run_.model, run_.layout, run_.n_steps, run_.dt
    if model.graded:
        raise ValueError("graded synapses are not split over devices yet: use dendrax.simulate")
    if model.n_points:
        raise ValueError("point populations are not split over devices yet: use dendrax.simulate")
    if any(r.name != "v" for r in model.recordings):
        raise ValueError("a split network records v and spikes only: use dendrax.simulate to "
                         "record states")
    if any(r.reduce is not None for r in model.recordings):  # it came back as a whole trace
        raise ValueError("a split network records v traces and spikes only, not statistics "
                         "(reduce=...): use dendrax.simulate for them, or reduce the traces")
    devices = resolve_devices(devices)
    model, params, invalid = checked_params(run_, params)
    block, shorter = _min_delay_steps(model, layout, params, run_.params, dt, n_steps)
    invalid = invalid + shorter  # a traced delay below the exchange interval: NaN
    parts = partition(np.diff(layout.node_offset), len(devices))
    plan = _Plan(model, layout, parts)
    drv = drive(layout, n_steps, dt)
    fn = _compiled(model, plan, len(devices), tuple(devices), block, float(dt), run_.method,
                   backend, n_steps)
    core = core_params(layout, params, v_init=run_.v_init, celsius=run_.celsius, model=model)
    traces, raster = refuse_invalid(fn(core, drv), invalid)
    meta = run_meta(layout, params, dt, n_steps, run_.v_init, run_.celsius, run_.method, 1)
    return Result(jnp.asarray(np.arange(n_steps + 1) * dt), traces.T, layout.labels, raster,
                  layout.spike_cells, units=layout.units, meta=meta)


def _min_delay_steps(model, layout, params, built, dt, n_steps) -> tuple[int, list]:
    """The exchange interval: the shortest connection delay in steps (all steps if none),
    and the traced checks (see ``checks.refuse_invalid``) that traced delays are no
    shorter: the interval is set from concrete delays, ``built`` (the network's own)
    where ``params`` holds traced ones (jit or grad over the whole params pytree)."""
    names = [(name, inp.conn_local) for (name, g), inp in zip(
        ((n, g) for n, g in layout.synapses.items() if not g.graded), model.inputs)
        if inp.conn_local.size]
    if not names:
        return max(n_steps, 1), []
    given = [params["synapses"][name]["delay"] for name, _ in names]
    traced = any(isinstance(d, jax.core.Tracer) for d in given)
    source = [built["synapses"][name]["delay"] for name, _ in names] if traced else given
    delays = np.concatenate([np.asarray(d)[local] for d, (_, local) in zip(source, names)])
    steps = int(np.min(event_delay_steps(delays, dt)))
    if steps < 1:
        raise ValueError("a split network exchanges spikes once per minimum delay: every "
                         f"connection delay must be at least dt/2 ({dt / 2:g} ms)")
    block = min(steps, max(n_steps, 1))
    invalid = [jnp.any(event_delay_steps(jnp.asarray(d)[local], dt) < block)
               for d, (_, local) in zip(given, names) if isinstance(d, jax.core.Tracer)]
    return block, invalid


def resolve_devices(devices) -> list:
    """None: every device of the default backend; an int n: the first n; or a list."""
    available = jax.devices()
    if devices is None:
        return list(available)
    if isinstance(devices, (int, np.integer)) and not isinstance(devices, bool):
        if not 1 <= devices <= len(available):
            raise ValueError(f"devices={devices}: give 1 to {len(available)} (the device(s) "
                             "available), a list of devices, or None for all")
        return list(available[:devices])
    if isinstance(devices, (str, bytes, bool)) or not hasattr(devices, "__iter__"):
        raise ValueError(f"devices must be None, a count or a list of jax devices "
                         f"(jax.devices()), got {devices!r}")
    devices = list(devices)
    if not devices:
        raise ValueError("devices is an empty list")
    if not all(isinstance(d, jax.Device) for d in devices):
        raise ValueError(f"devices must be jax devices (from jax.devices()), got {devices!r}")
    if len(set(devices)) < len(devices):
        raise ValueError(f"devices lists a device more than once: {devices}")
    return devices


def _part_model(model: Model, plan: _Plan, idx) -> Model:
    """One part's model: the global structure with this part's (traced) index arrays."""
    return Model(
        parent=idx["parent"],
        channels=tuple(Placement(p.mech, n) for p, n in zip(model.channels, idx["channels"])),
        synapses=tuple(Placement(p.mech, s[0]) for p, s in zip(model.synapses, idx["synapses"])),
        inputs=tuple(EventInputs(s[1], s[2], s[3], inp.max_arrivals)
                     for s, inp in zip(idx["synapses"], model.inputs)),
        ions=model.ions, dynamic_ions=model.dynamic_ions,
        iclamp_nodes=idx["iclamp"], waveform_nodes=idx["waveform"], vclamp_nodes=idx["vclamp"],
        source_nodes=idx["sources"], source_threshold=idx["threshold"],
        ring_size=model.ring_size, spike_records=jnp.arange(plan.S))


_CACHE: dict = {}


def _compiled(model, plan, n_dev, devices, block, dt, method, backend, n_steps):
    key = (model, n_dev, devices, block, dt, method, backend, n_steps,
           plan.nodes.tobytes(), plan.rec_slot.tobytes())
    if key in _CACHE:
        return _CACHE[key]
    mesh = Mesh(np.asarray(devices), (AXIS,))
    index = {
        "parent": plan.parent, "channels": tuple(w for _, w in plan.channels),
        "synapses": tuple((w, cl, cb, tl) for _, w, cl, cb, tl, _ in plan.synapses),
        "iclamp": plan.iclamp[1], "vclamp": plan.vclamp[1], "waveform": plan.waveform[1],
        "sources": plan.source_nodes, "threshold": plan.threshold, "rec": plan.rec_nodes,
    }
    index = jax.tree_util.tree_map(lambda a: a.astype(np.float64 if a.dtype.kind == "f" else np.int32),
                                   index)

    def part(core, idx, xs):
        core = jax.tree_util.tree_map(lambda a: a[0], core)
        idx = jax.tree_util.tree_map(lambda a: a[0], idx)
        xs = jax.tree_util.tree_map(lambda a: a[:, 0], xs)
        m = _part_model(model, plan, idx)
        step, too_long = step_function(
            m, core, dt, method=method, backend=backend,
            ring_offset=lax.axis_index(AXIS) * plan.words, record=lambda st: st.v[idx["rec"]])
        state = initial_state(m, core, dt)
        state = state._replace(ring=jnp.zeros((model.ring_size, n_dev * plan.words), jnp.uint32))

        def run_block(state, piece):
            state, (rec, fired) = lax.scan(step, state, piece)
            words = jax.vmap(pack_bits)(fired)  # [M, words]: this part's spikes
            everyone = lax.all_gather(words, AXIS, axis=1, tiled=True)  # [M, n_dev * words]
            m_steps = fired.shape[0]
            slots = (state.step - m_steps + jnp.arange(m_steps)) % model.ring_size
            return state._replace(ring=state.ring.at[slots].set(everyone)), (rec, fired)

        n_blocks, rest = divmod(n_steps, block)
        head = jax.tree_util.tree_map(
            lambda a: a[:n_blocks * block].reshape(n_blocks, block, *a.shape[1:]), xs)
        state_end, (rec, fired) = lax.scan(run_block, state, head)
        rec = rec.reshape(n_blocks * block, -1)
        fired = fired.reshape(n_blocks * block, -1)
        if rest:
            tail = jax.tree_util.tree_map(lambda a: a[n_blocks * block:], xs)
            _, (rec_t, fired_t) = run_block(state_end, tail)
            rec, fired = jnp.concatenate([rec, rec_t]), jnp.concatenate([fired, fired_t])
        rec = jnp.concatenate([state.v[idx["rec"]][None], rec])
        rec = jnp.where(too_long, jnp.nan, rec)
        return rec, fired

    sharded = jax.shard_map(part, mesh=mesh, in_specs=(P(AXIS), P(AXIS), P(None, AXIS)),
                            out_specs=(P(None, AXIS), P(None, AXIS)), check_vma=False)

    @jax.jit
    def run(core, drv):
        pieces = _split_core(core, plan)
        xs = schedule(model, core, drv, dt)
        part_xs = {
            "waveform": _gather(xs["waveform"].T, plan.waveform[0], 0.0).transpose(2, 0, 1)
            if model.waveform_nodes.size else jnp.zeros((n_steps, n_dev, 0)),
            "trains": tuple(_gather(t.T, s[5], 0.0).transpose(2, 0, 1)
                            for t, s in zip(xs["trains"], plan.synapses)),
        }
        if "train_times" in xs:  # [steps, arrivals, r] -> [steps, devices, arrivals, width]
            part_xs["train_times"] = tuple(
                None if t is None else _gather(t.transpose(2, 0, 1), s[5], 0.0).transpose(2, 0, 3, 1)
                for t, s in zip(xs["train_times"], plan.synapses))
        rec, fired = sharded(pieces, index, part_xs)
        return rec[:, plan.rec_slot], fired[:, plan.spike_slot]

    if len(_CACHE) >= 8:
        _CACHE.pop(next(iter(_CACHE)))
    _CACHE[key] = run
    return run
