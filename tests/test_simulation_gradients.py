"""Gradients and JAX transformations through the time loop: reverse mode against central
finite differences in every kind of parameter, forward mode against reverse for channels
on several regions, checkpointed gradients against plain ones (the measured rounding
bounds are stated with the test), the backward pass reusing each step's factored matrix,
params first built inside jit, simulate inside jit, and vmap over parameter sets (a
vmapped Result read per member)."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import dendrax as dx
from dendrax.state import initial_state
from simulation_cases import hh_ball_and_stick


def _fd_check(loss, params, leaf_path, eps):
    """Directional derivative along a random direction of one leaf: grad vs central FD."""
    g = jax.grad(loss)(params)
    leaf = params
    gleaf = g
    for k in leaf_path:
        leaf, gleaf = leaf[k], gleaf[k]
    direction = np.random.default_rng(0).uniform(0.5, 1.0, np.shape(leaf))

    def at(h):
        p = jax.tree_util.tree_map(lambda x: x, params)
        node = p
        for k in leaf_path[:-1]:
            node = node[k]
        node[leaf_path[-1]] = leaf + h * direction
        return float(loss(p))

    fd = (at(eps) - at(-eps)) / (2 * eps)
    ad = float(np.sum(np.asarray(gleaf) * direction))
    assert abs(ad - fd) <= 1e-4 * max(abs(fd), 1e-8), (leaf_path, ad, fd)


@pytest.mark.parametrize("path,eps", [
    (("channels", "hh", "gnabar"), 1e-6), (("channels", "hh", "gkbar"), 1e-6),
    (("cable", "cm"), 1e-5), (("cable", "Ra"), 1e-3), (("cable", "diam"), 1e-5),
    (("cable", "L"), 1e-3), (("stimuli", "iclamp", "amp"), 1e-6), (("ions", "ena"), 1e-4),
])
def test_gradients_match_finite_differences(path, eps):
    cell = hh_ball_and_stick()

    def loss(params):
        v = dx.simulate(cell, 12.0, 0.025, params=params).traces
        return jnp.mean((v - (-20.0)) ** 2) / 100.0

    _fd_check(loss, cell.params, path, eps)


@pytest.mark.parametrize("one_scatter", [True, False])
def test_channels_of_several_regions_add_up_and_differentiate_in_both_modes(monkeypatch, request,
                                                                             one_scatter):
    """Channels placed on different node sets add into the node vectors (in one scatter
    where the values are few; its derivative scatters each quantity on its own, as where
    they are many): the currents equal each placement's added at its nodes, and forward
    mode, reverse mode and finite differences agree."""
    from dendrax import currents, lowering, simulator_units
    from dendrax.currents import environment, membrane_currents

    if not one_scatter:  # a scatter per node set and quantity, as for many values
        monkeypatch.setattr(currents, "_ONE_SCATTER", 0)
    jax.clear_caches()  # simulate traced with this setting, not the other case's compiled run
    request.addfinalizer(jax.clear_caches)  # nor later tests with this one's

    cell = dx.Cell.ball_and_stick(nseg=[1, 5], Ra=100.0, cm=1.0, dend_length=150.0, dend_diam=2.0)
    cell.insert("hh", where="soma")
    cell.insert("pas", where="dend")
    cell.iclamp(cell.soma(0.5), delay=1.0, dur=10.0, amp=0.3)
    cell.record("v", cell.soma(0.5)).record("v", cell.section(1)(0.9))

    model, _, layout = lowering.lower(cell)
    core = simulator_units.core_params(layout, cell.params, v_init=-65.0, celsius=6.3)
    state = initial_state(model, core)
    v = state.v + jnp.asarray(np.random.default_rng(1).uniform(-20.0, 40.0, state.v.shape))
    env = environment(model, core, state.conc)
    i_tot, g_tot, i_ion, per_mech = membrane_currents(model, core, v, state.channels, env)
    assert len({p.nodes.tobytes() for p in model.channels if p.nodes is not None}) >= 2
    jaxpr = str(jax.make_jaxpr(lambda u: membrane_currents(model, core, u, state.channels,
                                                           env)[:3])(v))
    assert (jaxpr.count("scatter-add") == 1) == one_scatter
    want_i, want_na = np.zeros(v.shape), np.zeros(v.shape)
    for placement, cur in zip(model.channels, per_mech):
        nodes = np.arange(v.shape[0]) if placement.nodes is None else placement.nodes
        area = np.asarray(core["area"])[nodes] * 1e-2
        np.add.at(want_i, nodes, sum(np.asarray(c) for c in cur.values()) * area)
        np.add.at(want_na, nodes, np.asarray(cur.get("na", np.zeros(nodes.size))))
    np.testing.assert_allclose(i_tot, want_i, rtol=1e-13, atol=1e-13 * np.abs(want_i).max())
    np.testing.assert_allclose(i_ion["na"], want_na, rtol=1e-13,
                               atol=1e-13 * np.abs(want_na).max())
    h = 1e-4  # g = di/dv at fixed states: central differences
    fd = (membrane_currents(model, core, v + h, state.channels, env)[0]
          - membrane_currents(model, core, v - h, state.channels, env)[0]) / (2 * h)
    np.testing.assert_allclose(g_tot, fd, rtol=1e-6, atol=1e-9 * float(np.abs(fd).max()))

    def loss_of(params):
        return jnp.mean(dx.simulate(cell, 12.0, 0.025, params=params).traces ** 2) / 1e3

    def loss(gnabar):
        channels = cell.params["channels"]
        return loss_of({**cell.params, "channels": {**channels, "hh": {**channels["hh"],
                                                                      "gnabar": gnabar}}})

    g0 = cell.params["channels"]["hh"]["gnabar"]
    rev = jax.grad(loss)(g0)
    fwd = jax.jacfwd(loss)(g0)
    np.testing.assert_allclose(fwd, rev, rtol=1e-9, atol=1e-12 * float(np.abs(rev).max()))
    _fd_check(loss_of, cell.params, ("channels", "hh", "gnabar"), 1e-6)


def test_mechanisms_at_segment_nodes_only_equal_them_at_every_node(monkeypatch):
    """Mechanisms inserted everywhere computed at every node (the junctions too, where
    their current counts 0) or at segment nodes only (models of many junction nodes:
    dendrax.lowering.SEGMENTS_ONLY_JUNCTIONS): the same traces (a calcium pool and a
    calcium channel too), and the same gradients w.r.t. their per-node parameters, 0 at the
    junctions, in reverse and forward mode."""
    from dendrax import lowering

    def cell_of():  # anew for each (a cell keeps its lowering)
        cell = dx.Cell.ball_and_stick(nseg=[3, 5], Ra=100.0, cm=1.0, dend_length=150.0,
                                      dend_diam=2.0)
        for name in ("hh", "Ca_HVA", "CaDynamics_E2"):
            cell.insert(name)
        cell.iclamp(cell.soma(0.5), delay=1.0, dur=10.0, amp=0.3)
        cell.record("v", cell.soma(0.5)).record("v", cell.section(1)(0.9))
        cell.record("cai", cell.section(1)(0.3)).record("hh.m", cell.section(1)(0.9))
        return cell

    cell = cell_of()
    layout = lowering.lower(cell)[2]
    junctions = layout.rank[np.flatnonzero(cell.compartments.is_junction)]  # params order
    assert junctions.size == 1

    def run(threshold):
        monkeypatch.setattr(lowering, "SEGMENTS_ONLY_JUNCTIONS", threshold)
        cell = cell_of()
        model = lowering.lower(cell)[0]
        assert all((p.nodes is None) == (threshold > 1) for p in model.channels)

        def loss(gnabar, gbar):
            ch = cell.params["channels"]
            params = {**cell.params, "channels": {
                **ch, "hh": {**ch["hh"], "gnabar": gnabar},
                "Ca_HVA": {**ch["Ca_HVA"], "gCa_HVAbar": gbar}}}
            return jnp.mean(dx.simulate(cell, 12.0, 0.025, params=params).traces ** 2) / 1e3

        args = (cell.params["channels"]["hh"]["gnabar"],
                cell.params["channels"]["Ca_HVA"]["gCa_HVAbar"])
        return (np.asarray(dx.simulate(cell, 12.0, 0.025).traces), jax.grad(loss, (0, 1))(*args),
                jax.jacfwd(loss, (0, 1))(*args))

    every, segments = run(2), run(1)
    assert np.ptp(every[0][0]) > 50.0  # the soma spikes
    np.testing.assert_allclose(segments[0], every[0], rtol=1e-12, atol=1e-11)
    for got, want in zip((*segments[1], *segments[2]), every[1]):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12 * float(np.abs(want).max()))
        assert np.all(np.asarray(got)[junctions] == 0.0)


def test_segment_nodes_only_batches_resumes_and_trains_as_every_node(monkeypatch):
    """Mechanisms at segment nodes only (dendrax.lowering.SEGMENTS_ONLY_JUNCTIONS) through
    the rest of the API: a batch of conductances (simulate_batch), a run resumed from
    another (the final state holds the channels' states at the segment nodes only), and a
    gradient w.r.t. Trainables shared per region give what the every-node model gives."""
    from dendrax import lowering
    from dendrax.training import Trainables, simulate_batch

    def run(threshold):
        monkeypatch.setattr(lowering, "SEGMENTS_ONLY_JUNCTIONS", threshold)
        cell = dx.Cell.ball_and_stick(nseg=[3, 5], Ra=100.0, cm=1.0, dend_length=150.0,
                                      dend_diam=2.0).insert("hh")
        cell.iclamp(cell.soma(0.5), delay=1.0, dur=10.0, amp=0.3)
        cell.record("v", cell.soma(0.5)).record("v", cell.section(1)(0.9))
        n, n_segments = cell.compartments.is_junction.size, 8
        gna = cell.params["channels"]["hh"]["gnabar"]
        batch = simulate_batch(cell, {"channels": {"hh": {
            "gnabar": jnp.array([0.8, 1.0, 1.3])[:, None] * gna}}}, 12.0, 0.025)
        first = dx.simulate(cell, 6.0, 0.025)
        assert first.state.channels[0]["m"].shape == ((n_segments,) if threshold == 1 else (n,))
        resumed = dx.simulate(cell, 12.0, resume=first)
        tr = Trainables(cell).add("hh.gnabar", share="region").add("hh.gkbar", share="region")
        theta = tr.init()
        grads = jax.grad(lambda th: jnp.mean(
            dx.simulate(cell, 12.0, 0.025, params=tr.apply(th)).traces ** 2) / 1e3)(theta)
        return np.asarray(batch), np.asarray(resumed.traces), grads

    every, segments = run(2), run(1)
    assert np.ptp(every[0]) > 50.0 and not np.allclose(every[0][0], every[0][2], atol=1.0)
    np.testing.assert_allclose(segments[0], every[0], rtol=1e-12, atol=1e-11)
    np.testing.assert_allclose(segments[1], every[1], rtol=1e-12, atol=1e-11)
    for key, want in every[2].items():
        assert np.all(np.asarray(want) != 0.0), key
        np.testing.assert_allclose(segments[2][key], want, rtol=1e-9)


def test_vmap_over_parameter_sets_equals_separate_runs():
    cell = hh_ball_and_stick()
    base = cell.params
    gna = jnp.array([0.08, 0.12, 0.16])
    batched = jax.tree_util.tree_map(lambda x: x, base)
    batched["channels"]["hh"] = {**base["channels"]["hh"],
                                "gnabar": gna[:, None] * jnp.ones_like(base["channels"]["hh"]["gnabar"])}
    in_axes = jax.tree_util.tree_map(lambda _: None, base)
    in_axes["channels"]["hh"] = {k: (0 if k == "gnabar" else None) for k in base["channels"]["hh"]}
    out = jax.vmap(lambda p: dx.simulate(cell, 10.0, 0.025, params=p).traces, in_axes=(in_axes,))(batched)
    for k, g in enumerate(gna):
        single = cell.params
        single["channels"]["hh"]["gnabar"] = g * jnp.ones_like(base["channels"]["hh"]["gnabar"])
        np.testing.assert_allclose(out[k], dx.simulate(cell, 10.0, 0.025, params=single).traces,
                                   atol=1e-10)


def test_params_first_built_inside_jit_do_not_leak_tracers():
    """cell.params read for the first time inside a jitted loss lowers the cell there; the
    cached lowering must hold concrete arrays, or the next transformation fails."""
    cell = hh_ball_and_stick()

    def loss(scale):
        p = cell.params
        p["channels"]["hh"]["gnabar"] = p["channels"]["hh"]["gnabar"] * scale
        return dx.simulate(cell, 1.0, 0.025, params=p).traces.mean()

    value = jax.jit(loss)(1.0)
    grad = jax.grad(loss)(1.0)
    assert np.isfinite(value) and np.isfinite(grad)
    assert not isinstance(cell.params["cable"]["Ra"], jax.core.Tracer)


def test_checkpointed_gradients_equal_plain():
    cell = hh_ball_and_stick()

    def loss(params, checkpoint):
        v = dx.simulate(cell, 12.0, 0.025, params=params, checkpoint=checkpoint).traces
        return jnp.mean(v ** 2)

    plain = jax.grad(loss)(cell.params, None)
    for k in (7, 40):  # 480 steps: with and without a remainder
        chk = jax.grad(loss)(cell.params, k)
        # rounding differs between the two compiled loops: relative to each leaf's largest
        # entry, Ra (whose soma entry, tiny next to the dendrite's, is a sum of large
        # cancelling terms) moves by up to 4.9e-11, every other leaf by up to 9e-12
        # (docs/cells.md)
        flat = jax.tree_util.tree_flatten_with_path(plain)[0]
        for (path, a), b in zip(flat, jax.tree_util.tree_leaves(chk)):
            scale = float(np.max(np.abs(a), initial=0.0))
            bound = 2.5e-10 if "Ra" in jax.tree_util.keystr(path) else 5e-11
            assert float(np.max(np.abs(np.asarray(a) - np.asarray(b)), initial=0.0)) \
                <= bound * scale, (jax.tree_util.keystr(path), k)


def test_gradient_reuses_each_steps_factored_matrix():
    """Reverse mode keeps each step's voltage solve (solution and pivots): the backward
    pass transposes with the stored pivots instead of factoring the step again."""
    from dendrax.solver import native_available

    if not native_available("cpu"):
        pytest.skip("native CPU kernel unavailable")
    cell = hh_ball_and_stick()

    def calls(checkpoint):
        def loss(params):
            return jnp.mean(dx.simulate(cell, 2.0, 0.025, params=params,
                                        checkpoint=checkpoint).traces ** 2)

        text = jax.jit(jax.grad(loss)).lower(cell.params).as_text()
        return [len(re.findall(rf"custom_call @dendrax_hines_{w}\b", text))
                for w in ("factor_solve", "substitute")]

    assert calls(None) == [1, 1]  # the forward loop's solve, the backward's transposed one
    assert calls(8) == [2, 1]  # plus the forward rerun of each checkpointed stretch


def test_simulate_inside_jit():
    cell = hh_ball_and_stick()
    f = jax.jit(lambda p: dx.simulate(cell, 5.0, 0.025, params=p).traces)
    np.testing.assert_allclose(f(cell.params), dx.simulate(cell, 5.0, 0.025).traces, atol=1e-12)


def test_a_vmapped_result_is_read_per_member():
    """A Result of jax.vmap keeps the batch axis in front: res[name, loc] is that trace of
    every member (it indexed the batch axis: member 1's traces), res.spikes asks for one
    member, and one member taken out reads as its own run."""
    cell = hh_ball_and_stick()
    cell.record("hh.m", cell.soma(0.5)).record("hh.m", cell.soma(0.5), reduce="max")
    cell.record_spikes()
    base = cell.params

    def run(g):
        p = {**base, "channels": {"hh": {**base["channels"]["hh"], "gnabar": g}}}
        return dx.simulate(cell, 5.0, 0.025, params=p)

    gs = jnp.stack([base["channels"]["hh"]["gnabar"] * f for f in (0.8, 1.0, 1.2)])
    res = jax.vmap(run)(gs)
    m = res.labels.index(("hh.m", cell.soma(0.5)))
    np.testing.assert_array_equal(res["hh.m", cell.soma(0.5)], res.traces[:, m])
    np.testing.assert_array_equal(res["hh.m", cell.soma(0.5), "max"], res.stats[:, 0])
    np.testing.assert_array_equal(res[m], res.traces[:, m])
    with pytest.raises(ValueError, match="holds a batch of runs"):
        res.spikes
    one = jax.tree_util.tree_map(lambda a: a[2], res)
    alone = run(gs[2])
    np.testing.assert_allclose(one["hh.m", cell.soma(0.5)], alone["hh.m", cell.soma(0.5)],
                               rtol=0, atol=1e-12)
    assert [list(s) for s in one.spikes] == [list(s) for s in alone.spikes]
