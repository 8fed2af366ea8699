"""What a cell, its params pytree and simulate accept, and what they refuse, naming the
parameter, value and range: segmentation settings, values set per node, at section ends
or at lists of locations, sections by NEURON's names, the params pytree checked against
the cell (keys, shapes, dtypes, numbers or lists as leaves), reserved mechanism names,
physically impossible values (traced ones give NaN), plugins' ranges, and booleans, text
and complex numbers never read as numbers."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import dendrax as dx
from simulation_cases import hh_ball_and_stick


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
        (lambda: cell.set("L", -5.0), r"L must be in \[0.001, 1e\+08\] um, got -5"),
        (lambda: cell.set("diam", 0.0), r"diam must be in \(0, 3.40282e\+38\] um, got 0"),
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


def test_section_lengths_outside_what_the_solve_resolves_are_refused():
    """L below 1 nm left a passive cell's voltages to round-off (1e-15 um: 63 mV off rest in
    1 ms) and L = 1e200 um ran to NaN; both were taken by set() and by params. The shortest
    length accepted keeps a cell at rest to round-off."""
    cell = dx.Cell.ball_and_stick(nseg=[1, 2])
    cell.insert("pas").set("pas.e", -65.0).record("v", cell.soma(0.5))
    for bad in (1e-15, 1e-4, 1e200):
        with pytest.raises(ValueError, match=r"L must be in \[0.001, 1e\+08\] um, got "):
            cell.set("L", bad, where="dend")
    p = cell.params
    p["cable"]["L"] = np.array([20.0, 1e-15])
    with pytest.raises(ValueError, match=r"L must be in \[0.001, 1e\+08\] um, got 1e-15"):
        dx.simulate(cell, 1.0, 0.025, v_init=-65.0, params=p)
    cell.set("L", 1e-3, where="dend")
    rest = dx.simulate(cell, 1.0, 0.025, v_init=-65.0).traces
    assert np.abs(np.asarray(rest) + 65.0).max() < 1e-6


def test_diameters_in_params_beyond_float32_are_refused():
    """set() refused a diameter float32 cannot hold, but params took any positive one:
    1e200 um overflowed the areas and the run went NaN (with only a warning)."""
    cell = hh_ball_and_stick()
    cell.record("v", cell.soma(0.5))
    p = cell.params
    p["cable"]["diam"] = np.asarray(p["cable"]["diam"], float).copy()
    p["cable"]["diam"][-1] = 1e200
    with pytest.raises(ValueError, match=r"diam must be in \(0, 3.40282e\+38\] um, got 1e\+200"):
        dx.simulate(cell, 1.0, 0.025, params=p)
    p["cable"]["diam"][-1] = 1e-30  # tiny but positive: the dendrite is cut off, and runs
    assert np.all(np.isfinite(np.asarray(dx.simulate(cell, 1.0, 0.025, params=p).traces)))


@pytest.mark.parametrize("call, message", [
    (lambda c: c.set("hh.gnabar", np.float32(0.12)),
     r"hh.gnabar is a float32 number, 0.11999999731779099 \(the float32 nearest 0.12\), but "
     r"the run computes in float64: give it as a Python float"),
    (lambda c: c.set("hh.gnabar", np.float16(0.12)), r"hh.gnabar is a float16 number"),
    (lambda c: c.set("cm", np.full(c.n_nodes, 1.1, np.float32)),
     r"cm is an array of float32 numbers, but the run computes in float64: they would be "
     r"taken as they are"),
    (lambda c: c.insert("pas").set("pas.g", jnp.asarray([1e-4] * 3, jnp.float32), where="dend"),
     r"pas.g is an array of float32 numbers"),
    (lambda c: dx.Network().population("iaf_psc_alpha", 1, I_e=np.float32(376.1)),
     r"iaf_psc_alpha.I_e is a float32 number, 376.1000061035156"),
    (lambda c: c.synapse("Exp2Syn", c.soma(), spike_times=np.array([1.1], np.float32)),
     r"Exp2Syn spike times is an array of float32 numbers"),
])
def test_narrower_floats_given_to_a_cell_or_network_are_refused(call, message):
    """float32 numbers were narrowed silently where a cell or network takes values (set:
    0.12 became 0.11999999731779099), while simulate refused them in its params."""
    cell = dx.Cell.ball_and_stick(nseg=[1, 3])
    cell.insert("hh")
    with pytest.raises(ValueError, match=message):
        call(cell)


def test_float32_numbers_that_are_what_they_print_are_taken():
    cell = dx.Cell.ball_and_stick(nseg=[1, 3])
    cell.insert("hh").set("hh.gnabar", np.float32(0.5)).set("cm", np.float32(2.0))
    assert cell.get("hh.gnabar")[0] == 0.5 and cell.get("cm")[0] == 2.0


@pytest.mark.parametrize("dtype, message", [
    (np.longdouble, r"is float128, which JAX cannot take \(float64 at most\): give float64"),
    (jnp.bfloat16, r"is bfloat16, but this run computes in float64 .*\)\)$"),
])
def test_params_of_other_float_widths_are_refused_by_name(dtype, message):
    """A float128 leaf failed inside JAX with the whole model in the message; bfloat16 was
    "expected real numbers"."""
    if np.dtype(np.longdouble).itemsize <= 8 and dtype is np.longdouble:
        pytest.skip("numpy's longdouble is float64 on this platform")
    cell = hh_ball_and_stick()
    p = cell.params
    p["channels"]["hh"]["gnabar"] = np.asarray(p["channels"]["hh"]["gnabar"]).astype(dtype)
    with pytest.raises(ValueError, match=r"params\['channels'\]\['hh'\]\['gnabar'\] " + message):
        dx.simulate(cell, 0.5, 0.025, params=p)


def test_a_reversal_potential_that_follows_nernst_cannot_be_set():
    """eca set where a pool changes cai was taken and ignored (the run used Nernst's
    127.5 mV, as NEURON does): refused there, taken where no mechanism reads calcium's
    concentrations."""
    cell = dx.Cell.ball_and_stick(nseg=[1, 1])
    cell.insert("Ca_HVA", where="soma").insert("CaDynamics_E2", where="soma").insert("pas")
    for where, chosen in (("soma", "where='soma'"), (None, "the whole cell")):
        with pytest.raises(ValueError, match=(
                r"eca follows the Nernst equation from cai and cao wherever CaDynamics_E2 "
                rf"reads or changes them, as in NEURON, and {chosen} includes such nodes: .* "
                r"Set cai0 / cao there instead")):
            cell.set("eca", 50.0, where=where)
    cell.set("eca", 50.0, where="dend")
    assert cell.get("eca")[cell.nodes("dend")].tolist() == [50.0]
    cell.insert("Ca_HVA", where="dend").record("ica", cell.section("dend[0]")(0.5))
    cell.set("Ca_HVA.gCa_HVAbar", 1e-3, where="dend")
    ica = dx.simulate(cell, 0.5, 0.025, v_init=-20.0).traces
    cell.set("eca", 120.0, where="dend")  # used there: the current changes
    assert not np.allclose(dx.simulate(cell, 0.5, 0.025, v_init=-20.0).traces, ica)
