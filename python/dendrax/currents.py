"""The currents of one step: ionic environment, channel and synaptic currents and their
conductances (dI/dv), clamp currents.

The time step (``dendrax.step``) calls these at v(t) to set up its implicit
voltage step, and again to report what it records. Conductances are the currents'
derivatives by the membrane potential (by autodiff, ``jax.jvp``), as NEURON's
``di/dv``. Arrays are per solver node [N] unless said otherwise; a placement's
``nodes`` (int32 [n], or None for every node) picks its own.

Units are NEURON's: potential mV, time ms, area um2, current density mA/cm2,
conductance density S/cm2, current nA, conductance uS, concentration mM, degC.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from .mechanisms.base import IONS, IonPool, nernst
from .mechanisms.introspect import (assigned_of, concentrations_read, environment_read,
                                    takes_environment)
from .model import Model

DENSITY_TO_NA = 1e-2  # (mA/cm2) * um2 -> nA, and (S/cm2) * um2 -> uS


def take(x, nodes):
    """The values of ``x`` [N] at ``nodes`` (int32 [n]): [n]; all of ``x`` where nodes is None."""
    return x if nodes is None else x[nodes]


# Channels on different node sets (regions) add their currents, conductances and ion
# currents into the node vectors [N] by scatters. XLA:CPU runs each scatter as an
# operation of its own, at a fixed cost of ~0.5 us; where the values are few, one scatter
# of them all, stacked, costs less. Where they are many, stacking them (a concatenation,
# and zeros for ions a node set lacks) costs more than the scatters it saves. L5PC-like,
# 100 ms (values stacked): n120_ca1 nseg 1 (550) 60 -> 45 ms, nseg 4 (2200) 145 -> 118 ms;
# C010398B-P2 nseg 4 (3660) 150 -> 123 ms; NMO_49821 nseg 4 (8220) 280 -> 314 ms. Under
# vmap the values are those of one cell, so a batch stacks more: 10 of C010398B-P2 nseg 1
# (915 a cell) 377 -> 399 ms.
_ONE_SCATTER = 4096


def _add_at(n: int, nodes, *rows):
    """[N] arrays, zero but for ``rows[k]`` [m] added at ``nodes`` (int32 [m], concrete):
    one scatter of the rows stacked. Its derivative scatters each row on its own: the
    transpose of the stacked scatter (a stacked gather, then a slice per row) runs as
    more, slower operations (the gradient of an L5PC-like cell ~5% slower)."""

    @jax.custom_jvp
    def added(*rows):
        out = jnp.zeros((len(rows), n), rows[0].dtype).at[:, nodes].add(jnp.stack(rows))
        return tuple(out)

    @added.defjvp
    def _(primals, tangents):
        return added(*primals), tuple(jnp.zeros(n, t.dtype).at[nodes].add(t) for t in tangents)

    return added(*rows)


def _put_add(total, nodes, x):
    return total + x if nodes is None else total.at[nodes].add(x)


def environment(model: Model, core, conc, dt=None, secondorder: int = 0):
    """Per-node ionic environment: reversal potentials, concentrations, celsius, dt, and
    NEURON's ``secondorder`` (0: backward Euler, 2: Crank-Nicolson).

    Args:
        model: static structure (``dendrax.lower``); its ions and those a pool changes.
        core: params pytree in simulator units (``dendrax.simulator_units.core_params``).
        conc: {ion: [N]} inside concentrations (mM) of the ions a pool changes.
        dt: the time step (ms), if known.
        secondorder: 2 under Crank-Nicolson (implicit state updates then take NEURON's
            midpoint form, as nocmodl's derivimplicit and sparse do), else 0.

    Returns:
        {"celsius": scalar degC, "dt": scalar ms (where given), "secondorder": 0 or 2
        (a Python int), "diam": [N] um (each segment's diameter, NEURON's seg.diam),
        "area": [N] um2 (each node's membrane area, NEURON's area; 1 um and 1 um2 at nodes
        without membrane, where currents count 0), and per ion "e<ion>" (mV),
        "<ion>i", "<ion>o" (mM)}: [N] or scalars; "e<ion>" follows Nernst at the nodes
        where a mechanism reads the ion's concentrations or a pool changes them (NEURON's
        ion style), else it is the parameter.
    """
    # a node without membrane (a junction, a kept section end: NEURON has no segment there)
    # counts a mechanism's current times its area, 0; a mechanism inserted everywhere is
    # evaluated there too (in models of fewer than lowering.SEGMENTS_ONLY_JUNCTIONS
    # junctions) and sees diam 1 um and area 1 um2, so that what it computes (a division
    # by diam, a shell's volume) stays finite
    membrane = core["area"] > 0
    env = {"celsius": core["celsius"],  # a scalar: temperature factors are computed once
           "secondorder": secondorder, "diam": jnp.where(membrane, core["diam"], 1.0),
           "area": jnp.where(membrane, core["area"], 1.0)}
    if dt is not None:
        env["dt"] = dt
    for ion in model.ions:
        info = IONS[ion]
        ci = conc.get(ion, core["ions"][f"{ion}i0"])
        co = core["ions"][f"{ion}o"]
        env[f"{ion}i"], env[f"{ion}o"] = ci, co
        env[f"e{ion}"] = core["ions"][f"e{ion}"]
        where = nernst_nodes(model, ion)
        if where is not False:
            e = nernst(ci, co, info.charge, env["celsius"])
            env[f"e{ion}"] = e if where is None else jnp.where(where, e, env[f"e{ion}"])
    return env


def nernst_nodes(model: Model, ion: str):
    """Where ``ion``'s reversal potential follows Nernst: False (nowhere), None (at every
    node) or a bool mask [N] (numpy where the placements' nodes are, else traced): the
    nodes of the mechanisms (channels, pools, event synapses) that read its concentrations
    or change them."""
    readers = [p.nodes for p in model.channels + model.synapses
               if ion in concentrations_read(p.mech)]
    if not readers:
        return False
    if any(nodes is None for nodes in readers):
        return None
    if all(isinstance(nodes, np.ndarray) for nodes in readers):
        mask = np.zeros(model.n_nodes, bool)
        mask[np.concatenate(readers)] = True
        return mask
    return jnp.zeros(model.n_nodes, bool).at[jnp.concatenate(readers)].set(True)


def local_environment(env, mech, nodes):
    """The part of ``env`` (``environment``'s, and "i<ion>" ion current densities in
    mA/cm2 where given) that mechanism ``mech`` reads, at its ``nodes``: "celsius", "dt",
    "secondorder", "e<ion>", "<ion>i", "<ion>o", "i<ion>" of its ions and, where it reads
    them, "diam" (um) and "area" (um2), each [n] (or scalar)."""
    shared = ("celsius", "dt", "secondorder")
    keys = [*shared] + [k for ion in mech.ions
                        for k in (f"e{ion}", f"{ion}i", f"{ion}o", f"i{ion}")]
    read = environment_read(mech)  # the geometry only where read: a gather less per step
    keys += [k for k in ("diam", "area") if k in read]
    return {k: env[k] if k in shared else take(env[k], nodes) for k in keys if k in env}


def membrane_currents(model: Model, core, v, states, env, ion_conductances: bool = False):
    """Membrane current (nA) and its conductance (uS) per node, ion current densities
    (mA/cm2) per node, and each channel's current densities by ion.

    Args:
        model: static structure; ``model.channels`` are the channel and pool placements.
        core: params pytree in simulator units ("area" [N] um2, "channels").
        v: [N] membrane potential, mV.
        states: per channel placement, its states {name: [n]}.
        env: the ionic environment (``environment``).
        ion_conductances: also give each ion current's di/dv (NEURON's dcurdv).

    Returns:
        (i [N] nA, g [N] uS (di/dv), {ion: [N] mA/cm2}, per placement {ion: [n] mA/cm2}
        ("" for nonspecific; {} for ion pools)), and with ``ion_conductances`` a fifth,
        {ion: [N] mA/cm2/mV}.
    """
    area = core["area"]
    n = model.n_nodes
    i_tot = jnp.zeros(n, v.dtype)
    g_tot = jnp.zeros(n, v.dtype)
    keys = list(model.ions) + ([("g", ion) for ion in model.ions] if ion_conductances else [])
    i_ion = {key: jnp.zeros(n, v.dtype) for key in keys}  # and ("g", ion): di/dv
    per_mech = []
    # channels on the same nodes (e.g. a region's) add up locally and scatter once
    groups: dict = {}  # node set -> (nodes, [i], [g], {ion: [i]})
    for placement, p, s in zip(model.channels, core["channels"], states):
        mech, nodes = placement.mech, placement.nodes
        if isinstance(mech, IonPool):
            per_mech.append({})
            continue
        local = local_environment(env, mech, nodes)
        vl = take(v, nodes)
        cur, dcur = jax.jvp(lambda u: mech.current(u, s, p, local), (vl,), (jnp.ones_like(vl),))
        a = take(area, nodes) * DENSITY_TO_NA
        key = (None if nodes is None else nodes.tobytes() if isinstance(nodes, np.ndarray)
               else id(nodes))  # traced nodes (a network part split over devices): alone
        _, i, g, ions = groups.setdefault(key, (nodes, [], [], {}))
        i.append(sum(cur.values()) * a)
        g.append(sum(dcur.values()) * a)
        for ion, c in cur.items():
            if ion:
                ions.setdefault(ion, []).append(c)
                if ion_conductances:
                    ions.setdefault(("g", ion), []).append(dcur[ion])
        per_mech.append(cur)
    # node sets known when traced add in one scatter of [i, g, per-ion current] rows, where
    # those are few (_ONE_SCATTER): see there
    scattered = [grp for grp in groups.values() if isinstance(grp[0], np.ndarray)]
    size = (2 + len(keys)) * sum(nodes.size for nodes, _, _, _ in scattered)
    if len(scattered) > 1 and size <= _ONE_SCATTER:
        rows = [[sum(i) for _, i, _, _ in scattered], [sum(g) for _, _, g, _ in scattered]]
        rows += [[sum(ions[ion]) if ion in ions else jnp.zeros(nodes.size, v.dtype)
                  for nodes, _, _, ions in scattered] for ion in keys]
        nodes = np.concatenate([nodes for nodes, _, _, _ in scattered])
        added = _add_at(n, nodes, *(jnp.concatenate(r) for r in rows))
        i_tot, g_tot = added[0], added[1]
        i_ion = {ion: added[2 + j] for j, ion in enumerate(keys)}
        groups = {k: grp for k, grp in groups.items() if not isinstance(grp[0], np.ndarray)}
    for nodes, i, g, ions in groups.values():
        i_tot = _put_add(i_tot, nodes, sum(i))
        g_tot = _put_add(g_tot, nodes, sum(g))
        for ion, c in ions.items():
            i_ion[ion] = _put_add(i_ion[ion], nodes, sum(c))
    out = (i_tot, g_tot, {ion: i_ion[ion] for ion in model.ions}, tuple(per_mech))
    return out + ({ion: i_ion[("g", ion)] for ion in model.ions},) if ion_conductances else out


def assigned_values(model: Model, core, v, states, env, syn_states) -> dict:
    """What the recorded channels' and event synapses' ``assigned`` give (e.g. hh's "gna"),
    at v [N] and their states, as their currents see them: {"channel_assigned": per channel
    placement, "synapse_assigned": per synapse placement: {name: [n]}, {} where none of a
    placement's is recorded}."""
    wanted = {r.source[:2] for r in model.recordings}
    out = ([], [])
    for kind, placements, params, values in (("channel_assigned", model.channels,
                                              core["channels"], states),
                                             ("synapse_assigned", model.synapses,
                                              core["synapses"], syn_states)):
        for j, (placement, p, s) in enumerate(zip(placements, params, values)):
            fn = assigned_of(placement.mech) if (kind, j) in wanted else None
            if fn is None:
                out[kind == "synapse_assigned"].append({})
                continue
            vl = take(v, placement.nodes)
            here = env if kind == "channel_assigned" else synapse_environment(core, env)
            args = (vl, s, p) + ((local_environment(here, placement.mech, placement.nodes),)
                                 if takes_environment(placement.mech) else ())
            out[kind == "synapse_assigned"].append(
                {k: jnp.broadcast_to(jnp.asarray(x, vl.dtype), vl.shape)
                 for k, x in fn(*args).items()})
    return {"channel_assigned": tuple(out[0]), "synapse_assigned": tuple(out[1])}


def solved_wanted(model: Model) -> set:
    """The channel placements (indices) whose ``solved`` values are recorded."""
    return {r.source[1] for r in model.recordings if r.source[0] == "channel_solved"}


def solved_values(placement, v, states, params, env, dt) -> dict:
    """What a placement's ``solved`` gives at v [n] (its new potential), from its states
    before the step, each as [n] ({name: [n]}); dt None at t = 0."""
    return {k: jnp.broadcast_to(jnp.asarray(x, v.dtype), v.shape)
            for k, x in placement.mech.solved(v, states, params, env, dt).items()}


def synaptic_currents(model: Model, core, v, syn_states, v_pre, graded_states, env):
    """Synaptic current (nA) and its conductance (uS) per node, event-driven and graded,
    each placement's {"i": nA, "g": uS (di/dv), "i<ion>": nA} per synapse, and the ion
    currents of the synapses that carry ions, as densities.

    Args:
        model: static structure; ``model.synapses`` and ``model.graded`` the placements.
        core: params pytree in simulator units ("synapses", "graded", "area").
        v: [N] membrane potential, mV.
        syn_states: per event-synapse placement, its states {name: [n]}.
        v_pre: per graded placement, the presynaptic potential [n] (mV) its synapses see.
        graded_states: per graded placement, its states {name: [n]}.
        env: the ionic environment (``environment``), for the synapses that take it.

    Returns:
        (i [N] nA, g [N] uS, per event placement {"i", "g", "i<ion>"}: [n], per graded
        placement {"i", "g"}: [n], {ion: [N] mA/cm2}, {ion: [N] mA/cm2/mV}): the last two,
        the currents of the ions synapses carry and their di/dv, as NEURON adds a point
        process's: i * 100 / area, with 100 um2 at nodes without membrane.
    """
    n = model.n_nodes
    i_ion, g_ion = {}, {}  # of the ions synapses carry
    event, graded = [], []
    syn_env = None
    for placement, p, s in zip(model.synapses, core["synapses"], syn_states):
        mech, nodes = placement.mech, placement.nodes
        vl = v[nodes]
        if takes_environment(mech):
            if syn_env is None:
                syn_env = synapse_environment(core, env)
            local = local_environment(syn_env, mech, nodes)
            cur, dcur = jax.jvp(lambda u: mech.current(u, s, p, local), (vl,),
                                (jnp.ones_like(vl),))
        else:
            cur, dcur = jax.jvp(lambda u: mech.current(u, s, p), (vl,), (jnp.ones_like(vl),))
        if isinstance(cur, dict):
            ions = {f"i{ion}": cur[ion] for ion in cur if ion}
            per_area = 1.0 / (syn_env["area"][nodes] * DENSITY_TO_NA)
            for ion in cur:
                if ion:
                    zero = jnp.zeros(n, v.dtype)
                    i_ion[ion] = i_ion.get(ion, zero).at[nodes].add(cur[ion] * per_area)
                    g_ion[ion] = g_ion.get(ion, zero).at[nodes].add(dcur[ion] * per_area)
            cur, dcur = sum(cur.values()), sum(dcur.values())
        else:
            ions = {}
        event.append({"i": cur, "g": dcur, **ions})
    for placement, p, s, vp in zip(model.graded, core["graded"], graded_states, v_pre):
        vl = v[placement.nodes]
        cur, dcur = jax.jvp(lambda u: placement.mech.current(u, vp, s, p), (vl,),
                            (jnp.ones_like(vl),))
        graded.append({"i": cur, "g": dcur})
    i_tot, g_tot = summed_at_nodes(model, event, graded, n, v.dtype)
    return i_tot, g_tot, tuple(event), tuple(graded), i_ion, g_ion


def summed_at_nodes(model: Model, event, graded, size: int, dtype, at=None):
    """The synapses' currents (nA) and conductances (uS) summed per node: event
    placements' then graded ones', each in order ([size] each; ``event``, ``graded``: per
    placement {"i", "g"}: [n], as ``synaptic_currents`` returns them). ``at`` maps a
    placement's nodes to indices into the sums (default: the nodes themselves)."""
    i_tot, g_tot = jnp.zeros(size, dtype), jnp.zeros(size, dtype)
    for placement, c in zip((*model.synapses, *model.graded), (*event, *graded)):
        idx = placement.nodes if at is None else at(placement.nodes)
        i_tot = i_tot.at[idx].add(c["i"])
        g_tot = g_tot.at[idx].add(c["g"])
    return i_tot, g_tot


def synapse_environment(core, env):
    """``env`` as event synapses see it: "area" (um2) 100 at nodes without membrane, as
    NEURON's point processes (so that their currents in nA count as mA/cm2 there)."""
    return {**env, "area": jnp.where(core["area"] > 0, core["area"], 100.0)}


def vclamp_level(vc, t):
    """NEURON's SEClamp at time t (ms): (level [M] in mV, on [M]): amp1 for dur1, amp2 for
    dur2, amp3 for dur3, then off. ``vc``: the clamps' params, "dur" and "amp" [M, 3]
    (ms, mV)."""
    edges = jnp.cumsum(vc["dur"], axis=1)
    amp = vc["amp"]
    level = jnp.where(t < edges[:, 0], amp[:, 0], jnp.where(t < edges[:, 1], amp[:, 1], amp[:, 2]))
    return level, t < edges[:, 2]


def iclamp_currents(core, t):
    """IClamp currents (nA, into the cell) at time t (ms): [K]. ``core["iclamp"]``:
    "delay", "dur" (ms) and "amp" (nA), each [K]."""
    ic = core["iclamp"]
    return jnp.where((t >= ic["delay"]) & (t < ic["delay"] + ic["dur"]), ic["amp"], 0.0)


def vclamp_currents(model: Model, core, t, v):
    """SEClamp currents (nA, into the cell) with the level at time t (ms) and potential v
    [N] (mV): [M], at ``model.vclamp_nodes``; series resistance ``core["vclamp"]["rs"]``
    [M] (MOhm)."""
    if not model.vclamp_nodes.size:
        return jnp.zeros(0, v.dtype)
    level, on = vclamp_level(core["vclamp"], t)
    return jnp.where(on, (level - v[model.vclamp_nodes]) / core["vclamp"]["rs"], 0.0)
