"""The time loop against analytic results and finite differences; its contracts."""

import re
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import dendrax as dx
from dendrax import scan, simulation


def hh_ball_and_stick(amp=0.3):
    cell = dx.Cell.ball_and_stick(nseg=[1, 5], Ra=100.0, cm=1.0, dend_length=150.0, dend_diam=2.0)
    cell.insert("hh")
    cell.iclamp(cell.soma(0.5), delay=1.0, dur=10.0, amp=amp)
    cell.record("v", cell.soma(0.5)).record("v", cell.section(1)(0.9))
    return cell


def test_sealed_cable_steady_state_is_cosh():
    """Passive sealed-end cable, DC current at x = 0: V(x) = I R_in cosh((L-x)/lam) / cosh(L/lam)."""
    L, d, Ra, g, I = 1000.0, 2.0, 100.0, 1e-4, 0.1
    cell = dx.Cell.from_sections([{"length": L, "diam": d, "parent": -1, "region": "dend"}],
                                 nseg=401, Ra=Ra, cm=1.0)
    cell.insert("pas").set("pas.g", g).set("pas.e", 0.0)
    cell.iclamp(cell.section(0)(0.0), delay=0.0, dur=1e9, amp=I)
    xs = np.array([0.1, 0.3, 0.5, 0.7, 0.9, 1.0])
    for x in xs:
        cell.record("v", cell.section(0)(x))
    res = dx.simulate(cell, 300.0, 0.5, v_init=0.0)  # tau = 10 ms: steady long before 300 ms
    lam = np.sqrt(d * 1e-4 / (4 * Ra * g)) * 1e4  # um
    r_a = 4 * Ra / (np.pi * (d * 1e-4) ** 2) * 1e-4 * 1e-6  # MOhm per um
    r_in = r_a * lam / np.tanh(L / lam)  # MOhm
    expected = I * r_in * np.cosh((L - xs * L) / lam) / np.cosh(L / lam)  # mV
    np.testing.assert_allclose(np.asarray(res.traces)[:, -1], expected, rtol=2e-3)


def test_input_resistance_of_a_sphere_like_soma():
    """A single passive compartment: V_inf = I / (g A), tau = cm / g."""
    cell = dx.Cell.from_sections([{"length": 30.0, "diam": 30.0, "parent": -1, "region": "soma"}])
    cell.insert("pas").set("pas.g", 5e-4).set("pas.e", -70.0)
    cell.iclamp(cell.soma(), delay=0.0, dur=1e9, amp=0.05)
    cell.record("v")
    res = dx.simulate(cell, 50.0, 0.01, v_init=-70.0)
    area_cm2 = np.pi * 30.0 * 30.0 * 1e-8
    v_inf = 0.05e-9 / (5e-4 * area_cm2) * 1e3  # mV
    tau = 1.0 / 5e-4 * 1e-6 * 1e3  # ms
    v = np.asarray(res.traces[0]) + 70.0
    np.testing.assert_allclose(v[-1], v_inf, rtol=1e-6)
    t = res.t[100]  # backward Euler: v_n = v_inf (1 - (1 + dt/tau)^-n)
    np.testing.assert_allclose(v[100], v_inf * (1 - (1 + 0.01 / tau) ** -100), rtol=1e-9)
    assert t == pytest.approx(1.0)


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
def test_channels_of_several_regions_add_up_and_differentiate_in_both_modes(monkeypatch,
                                                                             one_scatter):
    """Channels placed on different node sets add into the node vectors (in one scatter
    where the values are few; its derivative scatters each quantity on its own, as where
    they are many): the currents equal each placement's added at its nodes, and forward
    mode, reverse mode and finite differences agree."""
    from dendrax import currents, lowering
    from dendrax.currents import environment, membrane_currents

    if not one_scatter:  # a scatter per node set and quantity, as for many values
        monkeypatch.setattr(currents, "_ONE_SCATTER", 0)

    cell = dx.Cell.ball_and_stick(nseg=[1, 5], Ra=100.0, cm=1.0, dend_length=150.0, dend_diam=2.0)
    cell.insert("hh", where="soma")
    cell.insert("pas", where="dend")
    cell.iclamp(cell.soma(0.5), delay=1.0, dur=10.0, amp=0.3)
    cell.record("v", cell.soma(0.5)).record("v", cell.section(1)(0.9))

    model, _, layout = lowering.lower(cell)
    core = lowering.core_params(layout, cell.params, v_init=-65.0, celsius=6.3)
    state = simulation.initial_state(model, core)
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


def test_no_recompile_when_values_change():
    cell = hh_ball_and_stick()
    dx.simulate(cell, 5.0, 0.025)
    before = simulation.advance._cache_size()
    cell.set("hh.gnabar", 0.2)
    cell.set("cm", 1.3)
    other = hh_ball_and_stick(amp=0.7)  # a new cell of the same structure
    dx.simulate(cell, 5.0, 0.025)
    dx.simulate(other, 5.0, 0.025)
    assert simulation.advance._cache_size() == before


def test_native_and_jax_backends_agree():
    cell = hh_ball_and_stick()
    a = dx.simulate(cell, 15.0, 0.025, backend="native").traces
    b = dx.simulate(cell, 15.0, 0.025, backend="jax").traces
    np.testing.assert_allclose(a, b, atol=1e-9)


@settings(max_examples=10, deadline=None)
@given(amp=st.floats(0.0, 0.5), gl=st.floats(1e-5, 1e-3))
def test_passive_response_is_linear_in_current(amp, gl):
    """Property: for a passive cell, the deflection from rest scales with the injected current."""
    cell = dx.Cell.ball_and_stick(nseg=[1, 3])
    cell.insert("pas").set("pas.g", gl).set("pas.e", -65.0)
    cell.iclamp(cell.section(1)(0.5), delay=0.5, dur=3.0, amp=1.0)
    cell.record("v")
    unit = np.asarray(dx.simulate(cell, 5.0, 0.05).traces[0]) + 65.0
    p = cell.params
    p["stimuli"]["iclamp"]["amp"] = jnp.array([amp])
    scaled = np.asarray(dx.simulate(cell, 5.0, 0.05, params=p).traces[0]) + 65.0
    np.testing.assert_allclose(scaled, amp * unit, atol=1e-8)


def test_bad_inputs_raise_clear_errors():
    cell = hh_ball_and_stick()
    with pytest.raises(ValueError, match="unknown parameter 'hh.gnabarr'|no parameter 'gnabarr'"):
        cell.set("hh.gnabarr", 0.1)
    with pytest.raises(ValueError, match="must be finite"):
        cell.set("hh.gnabar", float("nan"))
    with pytest.raises(ValueError, match="no sections in region 'apical'"):
        cell.set("hh.gnabar", 0.1, where="apical")
    with pytest.raises(ValueError, match="no channel named 'hhh'|did you mean"):
        cell.insert("hhh")
    with pytest.raises(ValueError, match="unknown method"):
        dx.simulate(cell, 5.0, 0.025, method="rk4")
    with pytest.raises(ValueError, match="dt > 0"):
        dx.simulate(cell, 5.0, -0.025)
    p = cell.params
    p["channels"]["hh"]["gkbar"] = p["channels"]["hh"]["gkbar"].at[0].set(jnp.inf)
    with pytest.raises(ValueError, match=r"non-finite.*gkbar|gkbar.*non-finite"):
        dx.simulate(cell, 5.0, 0.025, params=p)
    with pytest.raises(ValueError, match="not inserted"):
        cell.record("pas.g")
    with pytest.raises(IndexError, match="out of range"):
        cell.section(99)
    empty = dx.Cell.ball_and_stick()
    with pytest.raises(ValueError, match="nothing is recorded"):
        dx.simulate(empty, 5.0)


@pytest.mark.parametrize("kwargs,message", [
    (dict(nseg=2.5), r"nseg must be whole numbers of segments, got 2.5"),
    (dict(nseg=[1, 2.7]), r"nseg must be whole numbers"),
    (dict(nseg=[1, 2, 3]), r"nseg has 3 values for 2 sections"),
    (dict(nseg=0), r"nseg must be >= 1 in every section, got 0"),
    (dict(nseg="lambda"), r"nseg must be an int, a list of ints or 'd_lambda'"),
    (dict(nseg=3, max_length=10.0), r"give nseg or max_length, not both"),
    (dict(nseg=3, d_lambda=0.01), r"d_lambda and freq set the segmentation with nseg='d_lambda'"),
    (dict(max_length=20.0, freq=500.0), r"d_lambda and freq set the segmentation"),
    (dict(nseg="d_lambda", d_lambda=-0.1), r"d_lambda must be a finite number > 0, got -0.1"),
    (dict(nseg="d_lambda", d_lambda=float("nan")), r"d_lambda must be a finite number > 0"),
    (dict(nseg="d_lambda", freq=-100.0), r"freq must be a finite number > 0, got -100"),
    (dict(max_length=-1.0), r"max_length must be a finite number > 0 \(um\), got -1"),
    (dict(max_length=True), r"max_length must be a finite number > 0 \(um\), got True"),
    (dict(max_length="20"), r"max_length must be a finite number > 0 \(um\), got '20'"),
    (dict(max_length=[5.0]), r"max_length must be .* \(one number\), got \[5.0\]"),
])
def test_segmentation_settings_that_do_not_make_one_are_refused(kwargs, message):
    """Never a truncated nseg or a silently ignored setting."""
    with pytest.raises((ValueError, TypeError), match=message):
        dx.Cell.ball_and_stick(**kwargs)


def test_nseg_is_fixed_once_the_cell_is_built():
    # (an edit in place re-segmented part of the cell at its next kept section end, with
    # the mechanisms left on the old centres; a new array was ignored)
    cell = dx.Cell.ball_and_stick(nseg=[1, 3])
    with pytest.raises(AttributeError, match="nseg is fixed when it is built"):
        cell.nseg = np.array([1, 9])
    with pytest.raises(ValueError, match="read-only"):
        cell.nseg[1] = 9
    cell.iclamp(cell.section(1)(1.0), delay=0.0, dur=1.0, amp=0.1)  # keeps an end node
    assert list(cell.nseg) == [1, 3] and list(cell.compartments.nseg) == [1, 3]


def test_segmentation_defaults():
    assert list(dx.Cell.ball_and_stick().nseg) == [1, 1]
    assert list(dx.Cell.ball_and_stick(nseg=[1, 3]).nseg) == [1, 3]
    assert list(dx.Cell.ball_and_stick(max_length=10.0).nseg) == [2, 20]
    d_lambda = dx.Cell.ball_and_stick(nseg="d_lambda").nseg
    finer = dx.Cell.ball_and_stick(nseg="d_lambda", d_lambda=0.01).nseg
    assert list(d_lambda) == list(dx.Cell.ball_and_stick(nseg="d_lambda", d_lambda=0.1,
                                                         freq=100.0).nseg)
    assert np.all(finer >= d_lambda) and finer.sum() > d_lambda.sum()


def test_t_stop_off_the_step_grid_warns_and_ends_at_the_nearest_step():
    """As NEURON's run() (which steps while t < tstop - dt/2), but said, not silent."""
    cell = hh_ball_and_stick()
    with pytest.warns(UserWarning, match=r"t_stop = 1 ms is not a whole number of steps of "
                                         r"dt = 0.3 ms: the run ends at the nearest step, t = 0.9 ms"):
        res = dx.simulate(cell, 1.0, 0.3)
    np.testing.assert_allclose(res.t[-1], 0.9)
    assert res.meta["t_stop"] == pytest.approx(0.9)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dx.simulate(cell, 40.0, 0.025)  # 1600 steps: on the grid up to rounding


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


def test_params_pytree_is_checked_against_the_cells():
    """A misspelt, missing or misshapen entry of params is an error naming it, never
    ignored (the run would use the old value) or a broadcasting error from deep inside."""
    cell = hh_ball_and_stick()
    n = cell.params["channels"]["hh"]["gnabar"].shape[0]

    def edited(edit):
        p = cell.params
        edit(p)
        return p

    cases = [
        (lambda p: p["channels"]["hh"].update(gnabr=p["channels"]["hh"]["gnabar"]),
         r"params\['channels'\]\['hh'\] has no entries \['gnabr'\]; valid: \['el', 'gkbar', 'gl', 'gnabar'\]"),
        (lambda p: p["channels"].update(pas={"g": 1e-4, "e": -70.0}),
         r"params\['channels'\] has no entries \['pas'\]; valid: \['hh'\]"),
        (lambda p: p.pop("cable"), r"params lacks \['cable'\]: pass the whole params pytree"),
        (lambda p: p["channels"]["hh"].pop("gnabar"), r"\['hh'\] lacks \['gnabar'\]"),
        (lambda p: p["channels"]["hh"].update(gnabar=jnp.ones(3)),
         rf"\['gnabar'\] has shape \(3,\); expected an array of shape \({n},\)"),
        (lambda p: p["channels"]["hh"].update(gnabar=jnp.ones((1, n))),
         rf"has shape \(1, {n}\); expected an array of shape \({n},\)"),
        (lambda p: p["channels"].update(hh=jnp.ones(n)),
         r"\['hh'\] must be a dict with entries \['el', 'gkbar', 'gl', 'gnabar'\], got"),
        (lambda p: p["channels"]["hh"].update(gnabar={"soma": 0.1}), r"\['gnabar'\] has a dict"),
    ]
    for edit, message in cases:
        with pytest.raises(ValueError, match=message):
            dx.simulate(cell, 1.0, 0.025, params=edited(edit))
    with pytest.raises(ValueError, match=r"params must be a dict like the target's params.*got list"):
        dx.simulate(cell, 1.0, 0.025, params=[1, 2, 3])
    # checked under jit too (shapes and keys are static)
    bad = edited(lambda p: p["channels"]["hh"].update(gnabr=p["channels"]["hh"]["gnabar"]))
    with pytest.raises(ValueError, match="no entries"):
        jax.jit(lambda q: dx.simulate(cell, 1.0, 0.025, params=q).traces)(bad)
    # a scalar that broadcasts is a valid value, and gives the run of the spelt-out array
    scalar = edited(lambda p: p["channels"]["hh"].update(gnabar=jnp.asarray(0.1)))
    spelt = edited(lambda p: p["channels"]["hh"].update(gnabar=jnp.full(n, 0.1)))
    np.testing.assert_array_equal(dx.simulate(cell, 1.0, 0.025, params=scalar).traces,
                                  dx.simulate(cell, 1.0, 0.025, params=spelt).traces)
    # params from before a second clamp: its one value is not stretched over both (the
    # second clamp ran with the first one's amp)
    cell = dx.Cell.ball_and_stick()
    cell.insert("hh")
    cell.iclamp(cell.soma(), delay=0.1, dur=0.5, amp=0.3)
    cell.record("v", cell.soma())
    stale = cell.params
    cell.iclamp(cell.soma(), delay=0.2, dur=0.5, amp=-0.1)
    with pytest.raises(ValueError, match=r"params\['stimuli'\]\['iclamp'\]\['\w+'\] has shape "
                                         r"\(1,\) where the target has \(2,\): an axis of size 1 "
                                         r"is not stretched"):
        dx.simulate(cell, 1.0, 0.025, params=stale)



def test_params_leaves_may_be_numbers_or_lists_and_nothing_else():
    """A number or a list where params has an array is that array (every kind of leaf:
    cable, stimuli, synapses); None, text, booleans and ragged lists are refused by name."""
    cell = hh_ball_and_stick()
    cell.iclamp(cell.soma(), delay=0.2, dur=0.5, amp=0.2)
    cell.vclamp(cell.section(1)(0.5), amp=[-60.0], dur=[0.5])
    cell.synapse("Exp2Syn", cell.soma(), spike_times=[0.3], weight=0.01)
    base = cell.params

    def run(path, value):
        p = cell.params
        leaf = p
        for k in path[:-1]:
            leaf = leaf[k]
        leaf[path[-1]] = value
        return np.asarray(dx.simulate(cell, 1.0, 0.025, params=p).traces)

    ref = run(("cable", "cm"), base["cable"]["cm"])
    for path, value in [(("cable", "Ra"), float(base["cable"]["Ra"][0])),
                        (("cable", "diam"), base["cable"]["diam"].tolist()),
                        (("stimuli", "vclamp", "amp"), -60.0),
                        (("stimuli", "vclamp", "dur"), [0.5, 0.0, 0.0]),
                        (("stimuli", "iclamp", "amp"), base["stimuli"]["iclamp"]["amp"].tolist()),
                        (("synapses", "Exp2Syn", "delay"), 0),
                        (("cable", "cm"), [1] * base["cable"]["cm"].shape[0])]:
        np.testing.assert_array_equal(run(path, value), ref, err_msg=str(path))
    for value, message in [(None, "is None"), ("50", "is '50'"), (True, "has dtype bool"),
                           ([[1.0], [2.0, 3.0]], "is a ragged list"),
                           (np.ones(3, complex), "has dtype complex128")]:
        with pytest.raises(ValueError, match=r"params\['ions'\]\['ena'\] " + re.escape(message)
                           + ".*expected real numbers"):
            run(("ions", "ena"), value)
    # a float32 leaf in a float64 run (params saved from a float32 session) would take the
    # whole run down to float32 (0.1-0.2 mV off): refused by name, traced or not
    for value in (np.float32(50.0), base["ions"]["ena"].astype(np.float32),
                  jnp.asarray(base["ions"]["ena"], jnp.float32), np.float16(50.0)):
        with pytest.raises(ValueError, match=r"params\['ions'\]\['ena'\] is float(32|16), but "
                                             r"this run computes in float64.*Cast the params"):
            run(("ions", "ena"), value)


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


def _unroll(model):
    return scan.unroll_for(model.parent.size + model.n_points)


def _chunk(model, n, record_every, dtype):
    return scan.chunk_for(n, simulation.loop_width(model, record_every, dtype))


@pytest.mark.parametrize("shape", ["unrolled", "chunked"])
def test_time_loop_shapes_give_the_same_bits(monkeypatch, shape):
    """A small model runs several steps per iteration of the time loop (unrolled), or its
    loop as a loop over chunks of steps; either changes how XLA schedules the steps,
    never their arithmetic: traces (any length, including one that is not a multiple of
    the unroll) are identical to the plain loop's, bit for bit; gradients agree to
    rounding: the per-step parameter cotangents are summed in another order, 1e-13
    relative for the channels' parameters here; the cable's geometry (Ra, L, diam: sums
    of large terms that cancel) to ~1e-10 of each leaf's largest entry."""
    cell = hh_ball_and_stick()
    model = dx.lower(cell).model
    if shape == "unrolled":
        monkeypatch.setattr(scan, "SEQUENTIAL_BYTES", 0)  # no chunks
        assert _unroll(model) > 1  # the model is small enough
    else:
        assert _chunk(model, 402, 1, np.float64) == 6  # 402 = 6 * 67
        assert _chunk(model, 120, 1, np.float64) > 1

    def run():
        out = dx.simulate(cell, 10.05, 0.025).traces  # 402 steps
        g = jax.grad(lambda p: jnp.sum(dx.simulate(cell, 3.0, 0.025, params=p).traces ** 2))(
            cell.params)
        return out, g

    shaped = run()
    monkeypatch.setattr(scan, "SMALL", 0)
    monkeypatch.setattr(scan, "SEQUENTIAL_BYTES", 0)
    jax.clear_caches()
    assert _unroll(model) == 1 and _chunk(model, 402, 1, np.float64) == 1
    plain = run()
    np.testing.assert_array_equal(shaped[0], plain[0])
    for a, b in zip(jax.tree_util.tree_leaves(shaped[1]), jax.tree_util.tree_leaves(plain[1])):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-9 * float(np.max(np.abs(b), initial=0)))
    channels = plain[1]["channels"]["hh"]
    for k, a in shaped[1]["channels"]["hh"].items():
        np.testing.assert_allclose(a, channels[k], rtol=1e-12)


def test_chunks_divide_the_loop_and_fit_the_sequential_size():
    """The chunk is the largest divisor of the number of iterations whose per-step arrays
    (nodes, traces, spike flags of record_every steps) fit XLA's sequential size; 1 where
    none does."""
    model = dx.lower(hh_ball_and_stick()).model
    width = max(model.parent.size, sum(r.reduce is None for r in model.recordings)) * 8
    top = scan.SEQUENTIAL_BYTES // width
    assert top >= 2
    for n in (2, 3, 97, 120, 4000, 4001):
        c = _chunk(model, n, 1, np.float64)
        assert n % c == 0 and c <= top
        assert c == max([d for d in range(1, top + 1) if n % d == 0 and d <= n // 2] or [1])
    assert _chunk(model, 97, 1, np.float64) == 1  # a prime: unrolled instead
    # float32 halves the bytes per entry
    assert _chunk(model, 10 ** 6, 1, np.float32) >= _chunk(model, 10 ** 6, 1, np.float64)
    big = dx.Cell.ball_and_stick(nseg=[1, 80])
    big.insert("hh")
    assert _chunk(dx.lower(big).model, 4000, 1, np.float64) == 1  # 82 nodes: too large


def test_simulate_inside_jit():
    cell = hh_ball_and_stick()
    f = jax.jit(lambda p: dx.simulate(cell, 5.0, 0.025, params=p).traces)
    np.testing.assert_allclose(f(cell.params), dx.simulate(cell, 5.0, 0.025).traces, atol=1e-12)


def test_progress_bar_run_equals_plain_run(capsys):
    cell = hh_ball_and_stick()
    plain = dx.simulate(cell, 10.0, 0.025).traces
    chunked = dx.simulate(cell, 10.0, 0.025, progress=True).traces
    np.testing.assert_allclose(chunked, plain, atol=1e-12)
    assert "step" in capsys.readouterr().err


def test_params_namespaces_and_reserved_mechanism_names():
    """Mechanisms and core quantities live in separate namespaces; names that would be
    ambiguous are refused at insert time, naming the problem."""
    from dendrax.mechanisms import Channel

    cell = hh_ball_and_stick()
    assert set(cell.params) == {"cable", "ions", "channels", "synapses", "stimuli"}
    assert set(cell.params["cable"]) == {"cm", "Ra", "diam", "L"}

    def channel(name):
        return type("C", (Channel,), {"name": name, "params": {"g": 1e-4},
                                      "current": lambda self, v, s, p, env: {"": p["g"] * v}})

    for bad in ("cm", "iclamp", "ena", "v", "hh.x", ""):
        with pytest.raises(ValueError, match="reserved|identifier"):
            cell.insert(channel(bad))
    with pytest.raises(ValueError, match="already inserted"):
        cell.insert(channel("hh"))  # a different class under a name already in use
    # the other way round: a registered name never means another class inserted under it
    other = dx.Cell.ball_and_stick()
    other.insert(channel("hh"), "soma")
    with pytest.raises(ValueError, match=r"another mechanism named 'hh' \(C\) is already "
                                         r"inserted; this one is HH"):
        other.insert("hh", "dend")
    # nor does an instance with other settings join one of its class
    scaled = type("Scaled", (Channel,), {
        "name": "scaled", "params": {"g": 1e-4}, "__init__": lambda self, k=1.0: setattr(
            self, "k", k), "current": lambda self, v, s, p, env: {"": self.k * p["g"] * v}})
    other.insert(scaled(1.0), "soma").insert(scaled(1.0), "dend")  # the same settings: fine
    with pytest.raises(ValueError, match="already inserted with other settings"):
        other.insert(scaled(100.0), "dend")
    cell.insert(channel("leak2"))  # any other name is fine, next to the core quantities
    assert set(cell.params["channels"]) == {"hh", "leak2"}
    assert dx.simulate(cell, 1.0, 0.025).traces.shape == (2, 41)


def test_set_diam_stores_neurons_float32_diameters():
    """NEURON's sec.diam = d stores d as float32 in every 3-D point (areas were 1.7e-8
    from NEURON's after set("diam", 0.7)); a diam float32 cannot hold is refused with
    its range (1e39 made areas inf, 1e-50 made them 0)."""
    cell = hh_ball_and_stick()
    cell.set("diam", 0.7, where="dend").set("diam", [1.3, 0.9], where=cell.section(1))
    assert cell.get("diam")[2:].tolist() == [float(np.float32(1.3)), float(np.float32(0.9))]
    cell.set("diam", 0.7)
    assert np.all(cell.get("diam") == float(np.float32(0.7)))
    with pytest.raises(ValueError, match=r"diam = 1e\+39 um is beyond float32.*at most "
                                         r"3.4028235e\+38 um"):
        cell.set("diam", 1e39)
    with pytest.raises(ValueError, match=r"diam\[1\] = 1e-50 um is not positive as float32.*"
                                         r"at least 1.4e-45 um"):
        cell.set("diam", [1.0, 1e-50], where="dend")


def test_impossible_values_are_refused_naming_parameter_value_and_range():
    """Physically impossible values never run: each is a ValueError that names the
    parameter, the value and the valid range (issue: cm = -1 ran and 'spiked' 1,906 times)."""
    cell = hh_ball_and_stick()
    cases = [
        (lambda: cell.set("cm", -1.0, "soma"), r"cm must be > 0 uF/cm2, got -1"),
        (lambda: cell.set("Ra", 0.0), r"Ra must be > 0 ohm cm, got 0"),
        (lambda: cell.set("L", -5.0), r"L must be > 0 um, got -5"),
        (lambda: cell.set("diam", 0.0), r"diam must be > 0 um, got 0"),
        (lambda: cell.set("hh.gnabar", -0.1), r"hh.gnabar must be >= 0 S/cm2, got -0.1"),
        (lambda: cell.set("cai0", -1e-4), r"cai0 must be > 0 mM, got -0.0001"),
        (lambda: cell.set("hh.gl", np.ones(3)),
         r"hh.gl: got 3 values for 6 entries \(give a flat list of 6, one per node with hh"),
        (lambda: cell.set("hh.gl", [[1e-4] * 6]), r"hh.gl: got an array of shape \(1, 6\) for 6"),
        (lambda: cell.stimulate(cell.soma(0.5), [0.0, 2.0, 1.0], [0.0, 0.1, 0.2]),
         r"waveform times must not decrease .*got t\[2\] = 1 after t\[1\] = 2 ms"),
        (lambda: cell.set("cm", [1.0, 2.0], "dend"), r"cm: got 2 values for 5 entries"),
        (lambda: cell.iclamp(cell.soma(), delay=1.0, dur=-1.0, amp=0.1), r"iclamp dur must be >= 0"),
        (lambda: cell.synapse("Exp2Syn", cell.soma(), spike_times=[1.0], tau2=-3.0),
         r"Exp2Syn.tau2 must be > 0 ms, got -3"),
        (lambda: dx.simulate(cell, 5.0, 0.025, celsius=-300.0), r"above absolute zero"),
        (lambda: dx.simulate(cell, 5.0, 0.025, v_init=float("nan")), r"v_init must be a finite"),
        (lambda: dx.simulate(cell, 5.0, 0.025, v_init=True), r"v_init must be a number \(mV\)"),
        (lambda: dx.simulate(cell, 5.0, 0.025, celsius="x"), r"celsius must be a number \(degC\)"),
        # one per run (were a bare broadcasting error, or a per-node celsius kept silently)
        (lambda: dx.simulate(cell, 5.0, 0.025, v_init=np.array([-65.0, -70.0])),
         r"v_init must be one number \(mV\) for the whole run, got shape \(2,\)"),
        (lambda: dx.simulate(cell, 5.0, 0.025, celsius=np.full(5, 6.3)),
         r"celsius must be one number \(degC\) for the whole run, got shape \(5,\)"),
        (lambda: dx.simulate(cell, 0.01, 0.025), r"rounds to no step of dt = 0.025 ms"),
        # exactly half a step: NEURON's run() takes no step either (it ran none, warning)
        (lambda: dx.simulate(cell, 0.0125, 0.025), r"t_stop = 0.0125 ms rounds to no step"),
        (lambda: dx.simulate(cell, 5.0, "0.025"), r"dt must be one number of ms, got '0.025'"),
        # a float32 0.025 is 0.025000000373 ms: the run ended off its grid (a warning that
        # showed "dt = 0.025"); float32 numbers that are exact (2.0, 0.5) are taken
        (lambda: dx.simulate(cell, 5.0, np.float32(0.025)),
         r"dt is a float32 number, 0.02500000037252903 ms \(the float32 nearest 0.025\), but "
         r"the run computes in float64: give it as a Python float"),
        (lambda: dx.simulate(cell, np.float32(5.1), 0.025), r"t_stop is a float32 number"),
        (lambda: dx.simulate(cell, 5.0, 0.025, celsius=np.float32(6.3)),
         r"celsius is a float32 number, 6.300000190734863 degC"),
        (lambda: dx.simulate(cell, 5.0, 0.025, v_init=jnp.float32(-65.3)),
         r"v_init is a float32 number"),
        (lambda: dx.simulate(cell, 5.0, 0.025, v_init=np.float32("nan")),
         r"v_init must be a finite potential"),
        (lambda: dx.simulate(cell, [5.0], 0.025), r"t_stop must be one number of ms"),
        (lambda: dx.simulate(cell, 1e9, 1e-9), r"t_stop / dt = 1e\+18 steps; a run takes at most "
                                              r"2,147,483,647 steps"),
        (lambda: dx.simulate(cell, 5.0, 0.025, checkpoint=2.5),
         r"checkpoint must be None or a positive whole number of steps, got 2.5"),
        (lambda: dx.simulate(cell, 5.0, 0.025, key="abc"),
         r"key must be an int seed or a JAX PRNG key"),
        (lambda: cell.iclamp(cell.soma(0.5), delay=1.0, dur=1.0, amp=np.array([0.1, 0.2])),
         r"iclamp amp must be one number, got array"),
        # refused where the clamp is made, as iclamp's values are (were accepted, text read
        # as a number, NaN and negative durations refused only by simulate)
        (lambda: cell.vclamp(cell.soma(), amp=[-70.0], dur=[2.0], rs=float("nan")),
         r"vclamp rs must be finite, got nan"),
        (lambda: cell.vclamp(cell.soma(), amp=[-70.0], dur=[2.0], rs=[1.0, 2.0]),
         r"vclamp rs must be one number \(MOhm\)"),
        (lambda: cell.vclamp(cell.soma(), amp=[-70.0, -10.0], dur=[2.0, -1.0]),
         r"vclamp dur must be >= 0 ms, got -1"),
        # (a 2-D amp or dur was kept, and lowering failed with numpy's inhomogeneous shape)
        (lambda: cell.vclamp(cell.soma(), amp=[[-70.0, -10.0, -70.0]], dur=[5.0, 5.0, 5.0]),
         r"vclamp amp must be one number or a list of up to 3 \(one per level\), got shape "
         r"\(1, 3\)"),
        (lambda: cell.vclamp(cell.soma(), amp=[-70.0, -10.0], dur=[[5.0], [5.0]]),
         r"vclamp dur must be one number or a list .* got shape \(2, 1\)"),
        (lambda: cell.vclamp(cell.soma(), amp="-70", dur=[1.0]),
         r"vclamp amp must be real numbers, got '-70'"),
    ]
    for call, message in cases:
        with pytest.raises(ValueError, match=message):
            call()
    # traced run settings cannot raise: a temperature below absolute zero or a non-finite
    # v_init makes the outputs NaN (they ran as finite, wrong traces)
    traced = jax.jit(lambda c, v: dx.simulate(cell, 2.0, 0.025, celsius=c, v_init=v).traces)
    assert np.isfinite(np.asarray(traced(6.3, -65.0))).all()
    assert np.isnan(np.asarray(traced(-300.0, -65.0))).all()
    assert np.isnan(np.asarray(traced(6.3, jnp.inf))).all()
    for index in (1.5, True):  # was a TypeError from inside (tuple indices, '<=')
        with pytest.raises(TypeError, match="section index must be a whole number"):
            cell.section(index)
    with pytest.raises(ValueError, match="section name '1': give a region and an index"):
        cell.section("1")
    # a params pytree passed to simulate is checked too (the description was not involved)
    p = cell.params
    p["cable"]["cm"] = p["cable"]["cm"].at[0].set(-1.0)
    with pytest.raises(ValueError, match=r"cm must be > 0 uF/cm2, got -1"):
        dx.simulate(cell, 5.0, 0.025, params=p)
    p = cell.params
    p["channels"]["hh"]["gkbar"] = -p["channels"]["hh"]["gkbar"]
    with pytest.raises(ValueError, match=r"hh.gkbar must be >= 0"):
        dx.simulate(cell, 5.0, 0.025, params=p)
    # inside jit the values are traced: no error can be raised, but a run whose values
    # break a rule returns NaN rather than a finite, wrong answer
    run = jax.jit(lambda q: dx.simulate(cell, 1.0, 0.025, params=q).traces)
    good = run(cell.params)
    np.testing.assert_allclose(good, dx.simulate(cell, 1.0, 0.025).traces, rtol=0, atol=1e-11)
    for leaf, value in (("Ra", -1.0), ("cm", 0.0), ("diam", jnp.nan), ("L", jnp.inf)):
        p = cell.params
        p["cable"][leaf] = p["cable"][leaf].at[0].set(value)
        assert np.isnan(run(p)).all(), leaf
    p = cell.params
    p["channels"]["hh"]["gkbar"] = -p["channels"]["hh"]["gkbar"]
    assert np.isnan(run(p)).all()
    p = cell.params  # el has no range: any finite value is valid
    p["channels"]["hh"]["el"] = p["channels"]["hh"]["el"] + 100.0
    assert np.isfinite(run(p)).all()
    # the gradient of a valid run is unchanged by the check
    g = jax.grad(lambda q: dx.simulate(cell, 1.0, 0.025, params=q).traces.mean())(cell.params)
    assert np.isfinite(g["channels"]["hh"]["gnabar"]).all()
    # and the gradient of an invalid one is NaN too, never finite zeros
    p = cell.params
    p["channels"]["hh"]["gnabar"] = -p["channels"]["hh"]["gnabar"]
    g = jax.grad(lambda q: dx.simulate(cell, 1.0, 0.025, params=q).traces.mean())(p)
    assert np.isnan(g["channels"]["hh"]["gnabar"]).all() and np.isnan(g["cable"]["cm"]).all()
    # a region alias suggests only what the cell has
    apical_only = dx.Cell.from_sections([
        {"length": 20.0, "diam": 20.0, "parent": -1, "region": "soma"},
        {"length": 100.0, "diam": 2.0, "parent": 0, "parent_x": 1.0, "region": "apic"}])
    with pytest.raises(ValueError, match=r"no sections in region 'basal'") as err:
        apical_only.set("cm", 1.0, where="basal")
    assert "['basal']" not in str(err.value), err.value  # never suggests the name it refused


def test_plugin_ranges_are_enforced():
    """A plugin declares its parameters' ranges; values outside are refused by name."""
    from dendrax.mechanisms import Channel

    class Leak(Channel):
        name = "leak_r"
        params = {"g": 1e-4, "e": -70.0}
        units = {"g": "S/cm2"}
        ranges = {"g": (0.0, 1.0)}

        def current(self, v, states, params, env):
            return {"": params["g"] * (v - params["e"])}

    cell = dx.Cell.ball_and_stick().insert(Leak)
    cell.set("leak_r.g", 0.5).set("leak_r.e", -1e3)  # e is unbounded
    with pytest.raises(ValueError, match=r"leak_r.g must be in \[0, 1\] S/cm2, got 2"):
        cell.set("leak_r.g", 2.0)


def test_cell_spike_records_match_threshold_crossings_rates_and_isis():
    """record_spikes on a cell: NEURON's NetCon.record (the step at whose start v is above
    threshold for the first time since it was below), checked against the trace in numpy;
    spikes alone (no trace) can be recorded; rates and inter-spike intervals."""
    cell = hh_ball_and_stick(amp=1.0)
    cell.record_spikes().record_spikes(cell.section(1)(0.9), threshold=-20.0)
    res = dx.simulate(cell, 12.0, 0.025)
    for k, (trace, thr) in enumerate(((res.traces[0], 10.0), (res.traces[1], -20.0))):
        v = np.asarray(trace)
        up = np.flatnonzero((v[1:] > thr) & (v[:-1] <= thr)) + 1  # first sample above
        np.testing.assert_allclose(res.spikes[k], np.asarray(res.t)[up], atol=1e-12)
        assert len(up) >= k + 1
    np.testing.assert_allclose(res.rates(), [len(s) / 12.0 * 1e3 for s in res.spikes])
    np.testing.assert_allclose(res.rates(5.0, 12.0)[1], 1e3 / 7.0)  # one spike in [5, 12)
    np.testing.assert_allclose(res.isis()[1], np.diff(res.spikes[1]))
    spikes_only = dx.Cell.ball_and_stick(nseg=[1, 5], Ra=100.0, dend_length=150.0, dend_diam=2.0)
    spikes_only.insert("hh").iclamp(spikes_only.soma(), delay=1.0, dur=10.0, amp=1.0)
    out = dx.simulate(spikes_only.record_spikes(), 12.0, 0.025)
    assert out.traces.shape == (0, 481)
    np.testing.assert_array_equal(out.spikes[0], res.spikes[0])


def test_values_at_a_section_end_set_its_end_segment_as_neuron():
    """cell.set(..., where=sec(0) or sec(1)) sets the first or last segment, as NEURON's
    ``sec(1).cm = 7`` (was: the zero-area junction node, silently doing nothing)."""
    cell = dx.Cell.ball_and_stick(nseg=[1, 3])
    cell.insert("hh")
    cell.set("cm", 7.0, where=cell.section(1)(1.0))
    cell.set("hh.gnabar", 0.3, where=cell.section(1)(0.0))
    cell.set("cm", 2.0, where=cell.soma(1.0))
    segs = cell.nodes()
    np.testing.assert_array_equal(cell.get("cm")[segs], [2.0, 1.0, 1.0, 7.0])
    np.testing.assert_array_equal(cell.get("hh.gnabar")[segs], [0.12, 0.3, 0.12, 0.12])
    with pytest.raises(ValueError, match=r"x must lie in \[0, 1\]"):
        cell.set("cm", 1.0, where=cell.section(1)(1.5))


def test_a_list_of_locations_selects_their_segments():
    """Audit: where=[loc, ...] selected each location's whole section (where=loc one
    segment); section values (Ra, L, diam) at a location are refused, not applied to the
    whole section."""
    cell = dx.Cell.ball_and_stick(nseg=[1, 5])
    cell.insert("hh")
    cell.set("hh.gnabar", 0.5, where=[cell.soma(0.5), cell.section(1)(0.3)])
    cell.insert("pas", where=[cell.section(1)(0.9), "soma"])
    segs = cell.nodes()
    np.testing.assert_array_equal(cell.get("hh.gnabar")[segs], [0.5, 0.12, 0.5, 0.12, 0.12, 0.12])
    np.testing.assert_array_equal(cell.mechanism_nodes["pas"][segs], [1, 0, 0, 0, 0, 1])
    for name in ("diam", "L", "Ra"):
        with pytest.raises(ValueError, match=f"{name} is a section's"):
            cell.set(name, 3.0, where=cell.section(1)(0.5))
        with pytest.raises(ValueError, match=f"{name} is a section's"):
            cell.set(name, 3.0, where=[1, cell.section(1)(0.5)])


@pytest.mark.parametrize("build, error, message", [
    (lambda c: c.synapse("Exp2Syn", c.soma(), spike_times=[-5.0]), ValueError,
     "Exp2Syn spike times must be >= 0 ms, got -5"),
    (lambda c: c.synapse("Exp2Syn", c.soma(), spike_times=[[1.0], [2.0]]), ValueError,
     r"spike times must be a flat list \(ms\), got shape \(2, 1\)"),
    (lambda c: c.synapse("Exp2Syn", c.soma(), spike_times=[1.0], weight=[0.1, 0.2]), ValueError,
     r"Exp2Syn \['weight'\] must be one number each"),
    (lambda c: dx.Cell.ball_and_stick(Ra=-100.0, nseg="d_lambda"), ValueError,
     "Ra must be > 0 ohm cm, got -100"),
    (lambda c: dx.Cell.ball_and_stick(Ra=float("nan")), ValueError, "Ra must be finite"),
    (lambda c: dx.Cell.ball_and_stick(cm=0.0, nseg="d_lambda"), ValueError, "cm must be > 0"),
    (lambda c: dx.Cell.ball_and_stick(cm=[1.0, 2.0]), ValueError, "cm must be one number"),
    (lambda c: dx.Cell("cell.swc"), TypeError,
     r"Cell takes a dendrax Morphology, got str: read a file with dx.read_morphology"),
    (lambda c: dx.simulate(c, 1.0, celsius=np.inf), ValueError, "celsius must be finite"),
])
def test_more_bad_cell_inputs_are_refused(build, error, message):
    cell = dx.Cell.ball_and_stick(nseg=2)
    cell.insert("hh")
    cell.record("v")
    with pytest.raises(error, match=message):
        build(cell)


@pytest.mark.parametrize("call", [
    lambda c: c.iclamp(c.soma(), delay=1.0, dur=1.0, amp=True),
    lambda c: c.set("cm", "2"),
    lambda c: c.set("hh.gnabar", 0.1 + 0.1j),
    lambda c: c.stimulate(c.soma(), [0.0, 1.0], ["a", "b"]),
    lambda c: c.synapse("Exp2Syn", c.soma(), spike_times=[1.0], weight="0.1"),
])
def test_text_booleans_and_complex_numbers_are_not_numbers(call):
    """numpy would read "2" as 2.0, True as 1.0 and drop an imaginary part: refused."""
    cell = dx.Cell.ball_and_stick()
    cell.insert("hh")
    with pytest.raises(ValueError, match="must be real numbers"):
        call(cell)


def test_an_electrode_current_at_a_shared_node_is_the_first_electrodes():
    """Two IClamps (or an IClamp and a waveform) on one node: "iclamp.i" there is the first
    IClamp's current, as documented (the other one's is not in it)."""
    cell = dx.Cell.ball_and_stick()
    cell.insert("hh")
    cell.iclamp(cell.soma(), delay=0.2, dur=0.5, amp=0.1)
    cell.iclamp(cell.soma(), delay=0.4, dur=0.5, amp=0.3)
    cell.stimulate(cell.soma(), [0.0, 1.0], [0.2, 0.2])
    cell.record("iclamp.i", cell.soma())
    alone = dx.Cell.ball_and_stick()
    alone.insert("hh")
    alone.iclamp(alone.soma(), delay=0.2, dur=0.5, amp=0.1)
    alone.record("iclamp.i", alone.soma())
    i = np.asarray(dx.simulate(cell, 1.0, 0.025).traces[0])
    np.testing.assert_array_equal(i, np.asarray(dx.simulate(alone, 1.0, 0.025).traces[0]))
    assert i.max() == pytest.approx(0.1)


@pytest.mark.parametrize("call, message", [
    (lambda c: c.soma(True), r"x must be a number in \[0, 1\], got True"),
    (lambda c: c.set("cm", 2.0, where=True), r"cannot select sections with True"),
    (lambda c: dx.simulate(c, 1.0, v_init=True), r"v_init must be a number \(mV\), got True"),
    (lambda c: dx.simulate(c, 1.0, record_every=True), r"record_every must be a positive whole"),
    (lambda c: c.synapse("Exp2Syn", c.soma(), spike_times=[True, "2.5"], weight=0.01),
     r"Exp2Syn spike times must be real numbers"),
    (lambda c: dx.Network().spike_source(["1.0"]), r"spike times must be real numbers"),
    (lambda c: dx.Network.replicate(c, True), r"n must be a positive integer, got True"),
    (lambda c: (lambda n: n.connect(n.cell(0).soma(), n.cell(1).soma(), "Exp2Syn", weight=0.01,
                                    threshold=True))(dx.Network.replicate(c, 2)),
     r"threshold must be real numbers, got True"),
    (lambda c: dx.Network().population("iaf_psc_alpha", 2, I_e=True),
     r"iaf_psc_alpha.I_e must be real numbers, got True"),
    (lambda c: dx.Network().population("spike_generator", 1, spike_times=[True, 2.0]),
     r"spike_generator spike_times must be real numbers"),
    (lambda c: dx.simulate(c, 1 + 0j), r"t_stop must be one number of ms, got \(1\+0j\)"),
    (lambda c: jax.jit(lambda dt: dx.simulate(c, 1.0, dt).traces)(0.025),
     r"dt must be a concrete number .* cannot be traced"),  # was TracerArrayConversionError
    (lambda c: c.set("HH_gNa", 0.1), r"did you mean 'hh.gnabar' \(Jaxley's 'HH_gNa'\)"),
    (lambda c: jax.jit(lambda v: dx.simulate(c, 1.0, 0.025, v_init=v, chunk=10).traces)(-65.0),
     r"a run in pieces \(chunk, stream, progress\) brings each piece to the host"),
])
def test_booleans_and_text_are_not_read_as_numbers(call, message):
    """numpy reads True as 1 and "2.5" as 2.5: each was accepted as that number (soma(True)
    was x = 1, where=True section 1, v_init=True 1 mV); now a ValueError naming it."""
    cell = hh_ball_and_stick()
    with pytest.raises(ValueError, match=message):
        call(cell)


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


def test_a_mechanisms_settings_are_part_of_what_is_compiled():
    """Two instances of one channel class with different settings (here the reversal
    potential its __init__ takes) are different models: the second run compiled its own
    code (it reused the first's, silently giving the first's answer); changing a class
    attribute after a run takes effect in the next."""
    from dendrax.mechanisms import Channel

    class Leak(Channel):
        name = "settings_leak"
        params = {"g": 1e-3}
        scale = 1.0

        def __init__(self, e=-70.0):
            self.e = e

        def current(self, v, states, params, env):
            return {"": self.scale * params["g"] * (v - self.e)}

    def rest(mech):
        cell = dx.Cell.ball_and_stick()
        cell.insert(mech).record("v")
        return float(dx.simulate(cell, 100.0, 0.025, v_init=-65.0).traces[0, -1])

    assert rest(Leak(-70.0)) == pytest.approx(-70.0, abs=1e-6)
    assert rest(Leak(-50.0)) == pytest.approx(-50.0, abs=1e-6)
    Leak.scale = 0.0  # no current: v stays where it starts
    assert rest(Leak(-50.0)) == pytest.approx(-65.0, abs=1e-6)
    cell = dx.Cell.ball_and_stick()  # the same cell, simulated again after a change
    cell.insert(Leak(-50.0)).record("v")
    before = float(dx.simulate(cell, 100.0, 0.025, v_init=-65.0).traces[0, -1])
    Leak.scale = 1.0
    after = float(dx.simulate(cell, 100.0, 0.025, v_init=-65.0).traces[0, -1])
    assert before == pytest.approx(-65.0, abs=1e-6) and after == pytest.approx(-50.0, abs=1e-6)


def test_a_function_an_instance_keeps_is_part_of_what_is_compiled():
    """A rate law given to a plugin's __init__ (a function, a partial, a closure over a
    number) is a setting: two instances that keep different ones run their own code (the
    second reused the first's compiled loop, silently giving the first's answer: functions
    were not part of what identified the code)."""
    import functools

    from dendrax.mechanisms import Channel

    class Leak(Channel):
        name = "function_settings_leak"
        params = {"g": 1e-3}

        def __init__(self, reversal):
            self.reversal = reversal

        def current(self, v, states, params, env):
            return {"": params["g"] * (v - self.reversal())}

    def rest(mech):
        cell = dx.Cell.ball_and_stick(nseg=1)
        cell.insert(mech).record("v")
        return float(dx.simulate(cell, 100.0, 0.025, v_init=-65.0).traces[0, -1])

    def at(e):
        return lambda: e

    def fixed(e):
        return e

    assert rest(Leak(lambda: -70.0)) == pytest.approx(-70.0, abs=1e-6)
    assert rest(Leak(lambda: -50.0)) == pytest.approx(-50.0, abs=1e-6)
    assert rest(Leak(at(-60.0))) == pytest.approx(-60.0, abs=1e-6)
    assert rest(Leak(at(-55.0))) == pytest.approx(-55.0, abs=1e-6)
    assert rest(Leak(functools.partial(fixed, -75.0))) == pytest.approx(-75.0, abs=1e-6)
    assert rest(Leak(functools.partial(fixed, -45.0))) == pytest.approx(-45.0, abs=1e-6)


def test_equal_mechanisms_share_compiled_code_and_odd_attributes_are_harmless():
    """Review of mechanism_key: fresh cells whose mechanism instances are equal (a NaN made
    in __init__ equals itself; a lambda made in __init__ is the same code, even where it
    closes over the instance or is jitted; a callable object by its attributes) share one
    compiled loop; a traced value a plugin leaves on itself is no setting (it broke
    lowering); two cells of one network inserting one name with different settings are
    refused (the first one's setting ran for both)."""
    from dendrax import simulation
    from dendrax.mechanisms import Channel

    class Odd(Channel):
        name = "odd_settings_leak"
        params = {"g": 1e-3}

        def __init__(self, e=-70.0):
            self.e, self.unset = e, float("nan")
            self.shape = lambda x: jnp.tanh(x)
            self.scaled = lambda x: self.e * x
            self.method = self.current
            self.jitted = jax.jit(lambda x: 2.0 * x)
            self.vectorized = np.vectorize(lambda x: x)  # a callable object with settings

        def current(self, v, states, params, env):
            self.last = v  # a tracer, left behind
            return {"": params["g"] * (v - self.e)}

    def build(e=-70.0):
        cell = dx.Cell.ball_and_stick(nseg=1)
        cell.insert(Odd(e)).record("v")
        return cell

    dx.simulate(build(), 2.0, 0.1)
    size = simulation.advance._cache_size()
    for _ in range(2):
        dx.simulate(build(), 2.0, 0.1)
    assert simulation.advance._cache_size() == size
    net = dx.Network([build(-70.0), build(-50.0)])
    dx.simulate(dx.Network([build(-70.0), build(-70.0)]), 2.0, 0.1)  # equal: accepted
    with pytest.raises(ValueError, match="two cells of this network insert "
                                         r"'odd_settings_leak' with different settings \(e "
                                         "differ\)"):
        dx.simulate(net, 2.0, 0.1)


def test_a_cell_is_freed_once_dropped_and_a_copy_is_lowered_as_itself():
    """The lowering is kept on the cell (in a weak-keyed table, its layout's reference to
    the cell kept every simulated cell, and its compiled batches, alive: ~6 MiB a cell in a
    loop); a copy made after a run is lowered as the copy."""
    import gc
    import weakref

    from dendrax.training.batch import simulate_batch

    cell = hh_ball_and_stick()
    cell.record("v")
    dx.simulate(cell, 1.0, 0.025)
    simulate_batch(cell, {"stimuli": {"iclamp": {"amp": jnp.array([[0.1], [0.2]])}}}, 1.0)
    copy = cell.copy()
    assert dx.lower(copy).layout.cells[0] is copy
    copy.set("hh.gnabar", 0.2)
    assert float(dx.lower(cell).params["channels"]["hh"]["gnabar"][0]) == 0.12
    # a pickle (and a deep copy) carries no lowering: the copy lowers itself
    import pickle
    size = len(pickle.dumps(copy))
    dx.lower(copy)
    assert len(pickle.dumps(copy)) < size + 200
    again = pickle.loads(pickle.dumps(copy))
    assert dx.lower(again).layout.cells[0] is again
    alive = weakref.ref(cell)
    del cell
    gc.collect()
    assert alive() is None


def test_set_takes_one_value_per_node_of_the_cell_as_get_and_distance_give():
    """NEURON's ``for seg in sec: seg.gbar = f(h.distance(seg))``: distance() and get() are
    [n_nodes], junction nodes included, and set took only one value per selected node, so
    on any branched cell they were refused ("6 values for 5 entries")."""
    cell = dx.Cell.ball_and_stick(nseg=[1, 4])
    cell.insert("pas")
    d = cell.distance()
    assert d.shape == (cell.n_nodes,) and cell.n_nodes > len(cell.nodes())
    cell.set("pas.g", 1e-4 * (1 + d / 100.0))
    seg = cell.nodes()
    np.testing.assert_array_equal(cell.get("pas.g")[seg], 1e-4 * (1 + d[seg] / 100.0))
    cell.set("pas.g", 2e-4 * (1 + d / 100.0), where="dend")  # the selected nodes' values
    dend = cell.nodes("dend")
    np.testing.assert_array_equal(cell.get("pas.g")[dend], 2e-4 * (1 + d[dend] / 100.0))
    assert cell.get("pas.g")[cell.nodes("soma")] == 1e-4 * (1 + d[cell.nodes("soma")] / 100.0)
    cell.set("cm", cell.get("cm") * 2)  # a round trip
    assert np.all(cell.get("cm")[seg] == 2.0)
    # a mechanism on part of a one-section cell (no junction nodes): its nodes' values
    soma = dx.Cell.from_sections([{"length": 20.0, "diam": 20.0, "region": "soma"}], nseg=5)
    soma.insert("pas", where=[soma.soma(0.1), soma.soma(0.9)])
    soma.set("pas.g", np.arange(1.0, 6.0) * 1e-4)
    np.testing.assert_array_equal(soma.get("pas.g"), [1e-4, np.nan, np.nan, np.nan, 5e-4])
    with pytest.raises(ValueError):  # other lengths are still refused
        cell.set("cm", np.ones(cell.n_nodes - 2))


def test_sections_by_neurons_names():
    """cell.section("apic[2]"): the name location_name() gives (and NEURON's Import3d, whose
    h.allsec() order differs from the indices) selects the section."""
    cell = dx.Cell.from_sections([
        {"length": 20.0, "diam": 20.0, "region": "soma"},
        {"length": 100.0, "diam": 2.0, "parent": 0, "region": "apic"},
        {"length": 80.0, "diam": 1.0, "parent": 0, "parent_x": 0.0, "region": "dend"},
        {"length": 60.0, "diam": 1.0, "parent": 1, "region": "apic"}])
    for k in range(4):
        name = cell.location_name(cell.section(k)(0.5))[:-len("(0.5)")]
        assert cell.section(name).index == k
    assert cell.section("apic[1]").index == 3 and cell.section("dend").index == 2
    assert cell.sections("apic[1]") == [3]  # where= takes the names too (the CLI's @apic[1])
    cell.insert("pas", where="apic[1]")
    assert np.isfinite(cell.get("pas.g")[cell.nodes(3)]).all()
    assert np.isnan(cell.get("pas.g")[cell.nodes(1)]).all()
    with pytest.raises(ValueError, match=r"region 'apic' has 2 sections: name one, e.g. 'apic\[0\]'"):
        cell.section("apic")
    with pytest.raises(IndexError, match=r"apic\[2\]: region 'apic' has 2 sections"):
        cell.section("apic[2]")
    with pytest.raises(ValueError, match="give a region and an index"):
        cell.section("apic 2")
    with pytest.raises(TypeError, match="a whole number or a name"):
        cell.section(1.5)
