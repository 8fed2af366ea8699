"""Training: transforms, trainable parameters with sharing, gradients through them, fitting,
batched and sharded simulation, parameter recovery and second derivatives (the ``dendrax fit``
command: test_training_cli.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings, strategies as st

import dendrax as dx
# submodules, not the package: they import even where an editable install's module map
# predates dendrax/training/__init__.py
from dendrax.training.batch import simulate_batch
from dendrax.training.fit import fit, plot_history
from dendrax.training.trainable import Trainables
from dendrax.training.transforms import Affine, Chain, Identity, Sigmoid, Softplus


def three_section_cell(nseg=(1, 4, 3), synapse=False):
    """Soma with a dendrite at soma(1) and an axon at soma(0); HH everywhere."""
    cell = dx.Cell.from_sections([
        {"length": 20.0, "diam": 20.0, "parent": -1, "region": "soma"},
        {"length": 200.0, "diam": 2.0, "parent": 0, "parent_x": 1.0, "region": "dend"},
        {"length": 150.0, "diam": 1.0, "parent": 0, "parent_x": 0.0, "region": "axon"},
    ], nseg=list(nseg), Ra=100.0, cm=1.0)
    cell.insert("hh")
    cell.iclamp(cell.soma(0.5), delay=2.0, dur=20.0, amp=0.2)
    cell.record("v", cell.soma(0.5)).record("v", cell.section(1)(0.9)).record("v", cell.section(2)(0.9))
    if synapse:
        cell.synapse("Exp2Syn", cell.section(1)(0.7), spike_times=[1.0, 4.0], weight=0.005)
    return cell


# --- transforms -------------------------------------------------------------
finite = st.floats(-1e3, 1e3, allow_nan=False)


@settings(max_examples=60, deadline=None)
@given(lo=finite, width=st.floats(1e-3, 1e3), u=st.floats(1e-6, 1 - 1e-6), free=st.floats(-15, 15))
def test_sigmoid_round_trips(lo, width, u, free):
    t = Sigmoid(lo, lo + width)
    value = lo + u * width
    np.testing.assert_allclose(float(t.forward(t.inverse(value))), value, rtol=1e-9, atol=1e-9 * width)
    sig = float(jax.nn.sigmoid(free))
    cond = (abs(lo) / width + 1.0) / (sig * (1.0 - sig))  # rounding of lo + width * sig, amplified
    np.testing.assert_allclose(float(t.inverse(t.forward(free))), free, atol=1e-9 + 1e-15 * cond)
    assert lo <= float(t.forward(free)) <= lo + width


@settings(max_examples=60, deadline=None)
@given(lo=finite, y=st.floats(1e-6, 1e4), free=st.floats(-20, 500))
def test_softplus_round_trips(lo, y, free):
    t = Softplus(lo)
    np.testing.assert_allclose(float(t.forward(t.inverse(lo + y))), lo + y, rtol=1e-9, atol=1e-9)
    back = float(t.inverse(t.forward(free)))
    np.testing.assert_allclose(back, free, rtol=1e-6, atol=1e-6 * max(1.0, np.exp(-free)))
    assert float(t.forward(free)) >= lo


@settings(max_examples=60, deadline=None)
@given(scale=st.floats(1e-3, 1e3) | st.floats(-1e3, -1e-3), shift=finite, x=finite)
def test_affine_and_chain_round_trip(scale, shift, x):
    a = Affine(scale, shift)
    np.testing.assert_allclose(float(a.inverse(a.forward(x))), x, rtol=1e-9, atol=1e-9)
    c = Sigmoid(0.0, 1.0) >> Affine(scale, shift)
    assert isinstance(c, Chain) and len(c.transforms) == 2
    v = float(c.forward(0.3))
    np.testing.assert_allclose(v, scale * float(jax.nn.sigmoid(0.3)) + shift, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(float(c.inverse(v)), 0.3, atol=1e-6)
    lo, hi = c.bounds
    np.testing.assert_allclose([lo, hi], sorted([shift, scale + shift]), rtol=1e-12, atol=1e-12)


def test_transform_bounds_and_errors():
    assert Sigmoid(2.0, 5.0).bounds == (2.0, 5.0) and Sigmoid(2.0, 5.0).bounded
    assert Softplus(1.0).bounds == (1.0, np.inf) and not Softplus().bounded
    assert Identity().bounds == (-np.inf, np.inf)
    assert (Softplus() >> Affine(2.0, 1.0)).bounds == (1.0, np.inf)
    assert (Affine(0.5) >> Sigmoid(0, 1) >> Affine(-2.0, 1.0)).bounds == (-1.0, 1.0)
    with pytest.raises(ValueError, match="lower < upper"):
        Sigmoid(1.0, 1.0)
    with pytest.raises(ValueError, match="nonzero scale"):
        Affine(0.0)
    with pytest.raises(ValueError, match=r"Sigmoid's lower must be one number \(a transform's "
                                         r"bounds are shared"):
        Sigmoid(np.array([0.0, 0.1]), np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match=r"Softplus's lower must be one number"):
        Softplus(True)
    with pytest.raises(TypeError, match="Transform"):
        Chain(Sigmoid(0, 1), "exp")
    g = jax.grad(lambda f: Chain(Softplus(), Affine(3.0)).forward(f))(0.0)
    np.testing.assert_allclose(float(g), 1.5)
    # the bounds have no free value, eagerly, compiled and in arrays alike (the upper one
    # once rounded a hair inside under jit: a finite free value stuck at the bound)
    s = Sigmoid(0.06, 0.24)
    for inverse in (s.inverse, jax.jit(s.inverse)):
        np.testing.assert_array_equal(inverse(jnp.array([0.06, 0.24])), [-np.inf, np.inf])
        assert float(inverse(0.24)) == np.inf and float(inverse(0.06)) == -np.inf


# --- trainables: sharing, init, apply ----------------------------------------
def test_region_sharing_writes_one_value_per_region():
    from dendrax import models

    cell = models.branched_neuron(nseg=3)
    cell.set("hh.gnabar", 0.2, where="axon")
    tr = Trainables(cell).add("hh.gnabar", share="region", transform=Sigmoid(0.01, 0.5))
    assert tr.groups("hh.gnabar") == tuple(sorted(cell.regions()))
    theta = tr.init()
    assert theta["hh.gnabar"].shape == (len(cell.regions()),)
    np.testing.assert_allclose(tr.values(theta)["hh.gnabar"], [0.12, 0.2, 0.12, 0.12], rtol=1e-12)
    new = {"hh.gnabar": Sigmoid(0.01, 0.5).inverse(jnp.array([0.1, 0.2, 0.3, 0.4]))}
    params = tr.apply(new)
    for region, value in zip(tr.groups("hh.gnabar"), [0.1, 0.2, 0.3, 0.4]):
        slots = cell.param_slots("hh.gnabar", region)
        np.testing.assert_allclose(params["channels"]["hh"]["gnabar"][slots.index], value, rtol=1e-12)
    # the cell's own params are untouched, everything else is passed through
    assert float(cell.params["channels"]["hh"]["gnabar"][cell.param_slots("hh.gnabar", "soma").index[0]]) == 0.12
    np.testing.assert_array_equal(params["channels"]["hh"]["gkbar"], cell.params["channels"]["hh"]["gkbar"])


def test_section_segment_and_list_sharing():
    cell = three_section_cell()
    tr = Trainables(cell)
    tr.add("cm", share="section").add("hh.gl", "dend", share="segment")
    tr.add("Ra", share=["soma", ["dend", "axon"]], transform=(10.0, 500.0))
    tr.add("diam", "axon", share="segment").add("L", "dend")
    theta = tr.init()
    assert tr.groups("cm") == ("sec0", "sec1", "sec2")
    assert tr.groups("hh.gl@dend") == tuple(f"node{n}" for n in cell.nodes("dend"))
    assert tr.groups("Ra") == ("soma", "dend+axon")
    assert isinstance(tr.transform("Ra"), Sigmoid)
    assert len(tr.groups("diam@axon")) == len(cell.param_slots("diam", "axon").index)
    theta["hh.gl@dend"] = jnp.arange(1.0, 5.0) * 1e-4
    theta["Ra"] = Sigmoid(10.0, 500.0).inverse(jnp.array([50.0, 150.0]))
    theta["L@dend"] = jnp.array([300.0])
    p = tr.apply(theta)
    np.testing.assert_allclose(p["channels"]["hh"]["gl"][cell.param_slots("hh.gl", "dend").index],
                               np.arange(1.0, 5.0) * 1e-4)
    np.testing.assert_allclose(p["cable"]["Ra"], [50.0, 150.0, 150.0], rtol=1e-12)
    np.testing.assert_allclose(p["cable"]["L"], [20.0, 300.0, 150.0], rtol=1e-6)
    # a group's initial value is the mean of its entries
    cell.set("cm", 2.0, where=cell.section(1)(0.1))
    np.testing.assert_allclose(Trainables(cell).add("cm").init()["cm"], [(7 * 1.0 + 2.0) / 8])
    # radius is half of diam
    r = Trainables(cell).add("radius", "dend")
    np.testing.assert_allclose(r.init()["radius@dend"], [1.0])
    np.testing.assert_allclose(r.apply({"radius@dend": jnp.array([1.5])})["cable"]["diam"][
        cell.param_slots("diam", "dend").index], 3.0)


def test_trainables_errors():
    cell = three_section_cell()
    tr = Trainables(cell).add("hh.gnabar", transform=Sigmoid(0.05, 0.3))
    with pytest.raises(ValueError, match="overlaps"):
        tr.add("hh.gnabar", "soma", label="again")
    with pytest.raises(ValueError, match="already used"):
        tr.add("cm", label="hh.gnabar")
    for bad in (5, ""):  # taken as 5, or quietly the default label
        with pytest.raises(ValueError, match="label must be a non-empty string"):
            Trainables(cell).add("cm", label=bad)
    with pytest.raises(ValueError, match="share must be"):
        Trainables(cell).add("cm", share="branch")
    with pytest.raises(ValueError, match="overlap"):
        Trainables(cell).add("cm", share=["soma", 0])
    # groups covering part of where: the rest was left untrained under the label "cm"
    with pytest.raises(ValueError, match=r"share groups \['soma'\] cover only part of cm at None: "
                                         r"its entries in \['axon', 'dend'\] are in no group"):
        Trainables(cell).add("cm", share=["soma"])
    # a transform whose whole range is invalid (one end infinite: it was not checked)
    with pytest.raises(ValueError, match=r"hh.gl must be >= 0 S/cm2, but .* spans \(-inf, 0\)"):
        Trainables(cell).add("hh.gl", transform=Softplus() >> Affine(-1e-4))
    with pytest.raises(ValueError, match="no parameter 'gnabarr'"):
        Trainables(cell).add("hh.gnabarr")
    with pytest.raises(ValueError, match="unknown parameter 'cmm'"):
        Trainables(cell).add("cmm")
    with pytest.raises(ValueError, match="outside the open interval"):
        Trainables(cell).add("hh.gnabar", transform=Sigmoid(0.2, 0.3)).init()
    # a non-finite start stopped at step 0 with a warning and an empty history
    with pytest.raises(ValueError, match=r"theta0\['a'\] has non-finite values"):
        fit(lambda th: jnp.sum(th["a"] ** 2), {"a": jnp.array([1.0, jnp.nan])}, steps=2,
            progress=False)
    with pytest.raises(KeyError, match="lacks"):
        tr.apply({})
    with pytest.raises(ValueError, match="shape"):
        tr.apply({"hh.gnabar": jnp.zeros((2, 1))})
    good = tr.init()
    with pytest.raises(KeyError, match=r"theta has labels \['hh.gkbarr'\] that are not trained"):
        tr.apply({**good, "hh.gkbarr": jnp.zeros(1)})
    regions = Trainables(cell).add("hh.gnabar", share="region", transform=Sigmoid(0.05, 0.3))
    with pytest.raises(ValueError, match=r"hh.gnabar: got values of shape \(4,\) for its 3 "
                                         r"groups \["):
        regions.from_values({"hh.gnabar": [0.1, 0.1, 0.1, 0.1]})
    with pytest.raises(ValueError, match=r"got values of shape \(1, 3\) .* \(shape \(3,\)\)"):
        regions.from_values({"hh.gnabar": [[0.1, 0.1, 0.1]]})
    with pytest.raises(ValueError, match=r"must lie inside \(0.05, 0.3\)"):
        regions.from_values({"hh.gnabar": 0.5})
    # bounds that would fit only refused values
    with pytest.raises(ValueError, match=r"hh.gnabar must be >= 0 S/cm2, but Sigmoid\(-1, -0.5\) "
                                         r"spans \(-1, -0.5\): choose bounds inside"):
        Trainables(cell).add("hh.gnabar", transform=(-1.0, -0.5))
    with pytest.raises(ValueError, match=r"cm must be > 0 uF/cm2, but Softplus\(-1\)"):
        Trainables(cell).add("cm", transform=Softplus(-1.0))
    Trainables(cell).add("hh.gnabar", transform=(0.0, 0.5)).add("hh.el", transform=(-90.0, -40.0))
    with pytest.raises(TypeError, match="Trainables takes the Cell or Network"):
        Trainables(cell.params)
    with pytest.raises(TypeError, match="must be a string such as 'hh.gnabar'"):
        Trainables(cell).add(3)
    # what theta's values and table read is checked as apply checks it
    for bad in (jnp.zeros(2), jnp.zeros(4), jnp.zeros((3, 1))):
        for read in (regions.values, regions.table, regions.apply):
            with pytest.raises(ValueError, match=r"theta\['hh.gnabar'\] must have shape \(3,\)"):
                read({"hh.gnabar": bad})
    # parameters the run never reads (their gradient is 0, a fit would never move them)
    with pytest.raises(ValueError, match=r"eca has no effect: no mechanism of the model uses ca"):
        Trainables(cell).add("eca")
    with pytest.raises(ValueError, match=r"nao has no effect here: no mechanism reads na's "
                                         r"concentrations.*train ena instead"):
        Trainables(cell).add("nao")
    ca = dx.Cell.ball_and_stick(nseg=2).insert("Ca_HVA").insert("CaDynamics_E2", "soma")
    with pytest.raises(ValueError, match=r"eca has no effect here: ca's reversal potential "
                                         r"follows Nernst.*train cao or cai0 instead"):
        Trainables(ca).add("eca", "soma")
    Trainables(ca).add("eca", "dend").add("cao", "soma").add("cai0", "soma")
    with pytest.raises(ValueError, match=r"cao has no effect here"):
        Trainables(ca).add("cao", "dend")
    # a branched cell and a network, where the solver numbers nodes otherwise than the
    # cells do (the check once read the wrong entries: refused cao where a pool reads it)
    tree = dx.Cell.from_sections([
        {"length": 20.0, "diam": 20.0, "parent": -1, "region": "soma"},
        {"length": 200.0, "diam": 2.0, "parent": 0, "parent_x": 1.0, "region": "dend"},
        {"length": 150.0, "diam": 1.0, "parent": 0, "parent_x": 0.0, "region": "axon"},
        {"length": 100.0, "diam": 1.0, "parent": 1, "parent_x": 1.0, "region": "apic"},
    ], nseg=[1, 4, 3, 2]).insert("Ca_HVA").insert("CaDynamics_E2", "axon")
    Trainables(tree).add("cao", "axon").add("eca", "dend").add("eca", "apic", label="e2")
    for region in ("soma", "dend", "apic"):
        with pytest.raises(ValueError, match=r"cao has no effect here"):
            Trainables(tree).add("cao", region)
    with pytest.raises(ValueError, match=r"eca has no effect here"):
        Trainables(tree).add("eca", "axon")
    net = dx.Network.replicate(tree, 2)
    Trainables(net).add("cao", net.cell(1).section(2)).add("eca", net.cell(1).section(0))
    with pytest.raises(ValueError, match=r"eca has no effect here"):
        Trainables(net).add("eca", net.cell(1).section(2))
    with pytest.raises(ValueError, match=r"steps must be a whole number >= 0, got 2.5"):
        fit(lambda th: 0.0, {}, steps=2.5)
    with pytest.raises(ValueError, match=r"optimizer must be an optax optimizer"):
        fit(lambda th: 0.0, {}, optimizer="adam", steps=1)


def test_trainables_refuse_params_of_another_layout():
    """Audit: entries are numbered when added; after a mechanism was inserted elsewhere (or
    with another model's params as base) they landed on other compartments, silently."""
    cell = dx.Cell.ball_and_stick(nseg=[1, 2])
    cell.insert("hh", where="dend")
    tr = Trainables(cell).add("hh.gnabar", "dend", transform=(0.01, 0.5))
    theta = tr.from_values({"hh.gnabar@dend": 0.3})
    np.testing.assert_array_equal(tr.apply(theta)["channels"]["hh"]["gnabar"], [0.3, 0.3])
    other = dx.Cell.ball_and_stick(nseg=[1, 5])
    other.insert("hh")
    for base in (other.params, None):
        if base is None:
            cell.insert("hh", where="soma")  # hh's leaf grows: the dend entries move
        with pytest.raises(ValueError, match=r"hh.gnabar@dend: channels/hh/gnabar has shape "
                                             r"\(\d+,\), but it had shape \(2,\) when it was added"):
            tr.apply(theta, base)
        with pytest.raises(ValueError, match="make the Trainables again"):
            tr.init(base)


def test_sample_inside_bounds_apply_jits_and_vmaps():
    cell = three_section_cell()
    tr = (Trainables(cell).add("hh.gnabar", share="region", transform=Sigmoid(0.05, 0.3))
          .add("cm", transform=Softplus()))
    keys = jax.random.split(jax.random.PRNGKey(3), 20)
    thetas = [tr.sample(k, margin=0.1) for k in keys]
    g = np.array([tr.values(t)["hh.gnabar"] for t in thetas])
    assert g.min() >= 0.075 and g.max() <= 0.275 and np.unique(g).size == g.size
    for t in thetas:  # unbounded: stays at the cell's value
        np.testing.assert_allclose(tr.values(t)["cm"], [1.0], rtol=1e-12)
    batch = jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *thetas[:4])
    vm = jax.vmap(tr.apply)(batch)
    jt = jax.jit(tr.apply)(thetas[2])
    np.testing.assert_allclose(vm["channels"]["hh"]["gnabar"][2], jt["channels"]["hh"]["gnabar"], rtol=1e-14)
    np.testing.assert_allclose(jt["channels"]["hh"]["gnabar"], tr.apply(thetas[2])["channels"]["hh"]["gnabar"], rtol=1e-14)
    # whole numbers are those numbers (was "logistic does not accept dtype int64"); booleans
    # are refused
    ints = {k: np.zeros(np.shape(v), int) for k, v in thetas[0].items()}
    floats = {k: np.zeros(np.shape(v)) for k, v in thetas[0].items()}
    np.testing.assert_array_equal(tr.apply(ints)["channels"]["hh"]["gnabar"],
                                  tr.apply(floats)["channels"]["hh"]["gnabar"])
    with pytest.raises(ValueError, match=r"theta\['hh.gnabar'\] must be real numbers, got "
                                         r"dtype bool"):
        tr.apply({k: np.zeros(np.shape(v), bool) for k, v in thetas[0].items()})


# --- gradients through apply vs finite differences ---------------------------
@pytest.fixture(scope="module")
def grad_setup():
    cell = three_section_cell(nseg=(1, 3, 2), synapse=True)
    tr = Trainables(cell)
    tr.add("hh.gnabar", share="region", transform=Sigmoid(0.05, 0.3))
    tr.add("hh.gkbar", "soma", transform=Softplus())
    tr.add("hh.gl", share="segment", transform=Affine(1e-4))
    tr.add("cm", share="section", transform=Softplus(0.1))
    tr.add("Ra", transform=Sigmoid(20.0, 300.0))
    tr.add("diam", "dend", share="segment")
    tr.add("radius", "axon")
    tr.add("L", share="section", transform=Softplus(0.01) >> Affine(100.0))  # L >= 1 um
    tr.add("Exp2Syn.weight", transform=Softplus())

    def loss(theta):
        v = dx.simulate(cell, 8.0, 0.025, params=tr.apply(theta)).traces
        return jnp.mean((v + 20.0) ** 2) / 100.0

    theta = tr.init()
    return tr, jax.jit(loss), jax.grad(loss)(theta), theta


LABELS = ["hh.gnabar", "hh.gkbar@soma", "hh.gl", "cm", "Ra", "diam@dend", "radius@axon", "L",
          "Exp2Syn.weight"]


@pytest.mark.parametrize("label", LABELS)
def test_gradient_through_apply_matches_finite_differences(grad_setup, label):
    tr, loss, grad, theta = grad_setup
    direction = np.random.default_rng(1).uniform(0.5, 1.0, theta[label].shape)
    eps = 1e-5 * max(1.0, float(np.max(np.abs(theta[label]))))

    def at(h):
        return float(loss({**theta, label: theta[label] + h * direction}))

    fd = (at(eps) - at(-eps)) / (2 * eps)
    ad = float(np.sum(np.asarray(grad[label]) * direction))
    assert abs(fd) > 1e-8, (label, fd)  # the parameter matters to the loss
    assert abs(ad - fd) <= 1e-4 * abs(fd), (label, ad, fd)


# --- batched and sharded simulation ------------------------------------------
def test_simulate_batch_over_parameters_and_stimuli_equals_separate_runs():
    cell = three_section_cell(nseg=(1, 2, 2))
    n = cell.params["channels"]["hh"]["gnabar"].shape[0]
    gna = jnp.array([0.08, 0.12, 0.16])[:, None] * jnp.ones((1, n))
    amps = jnp.array([[0.1], [0.3], [0.5]])
    out = simulate_batch(cell, {"channels": {"hh": {"gnabar": gna}}, "stimuli": {"iclamp": {"amp": amps}}}, 8.0, 0.025)
    assert out.shape == (3, 3, 321)
    for k in range(3):
        p = cell.params
        p["channels"]["hh"]["gnabar"], p["stimuli"]["iclamp"]["amp"] = gna[k], amps[k]
        np.testing.assert_allclose(out[k], dx.simulate(cell, 8.0, 0.025, params=p).traces,
                                   atol=1e-10)
    # explicit in_axes on a full pytree give the same
    full = cell.params
    full["stimuli"]["iclamp"] = {**full["stimuli"]["iclamp"], "amp": amps}
    axes = jax.tree_util.tree_map(lambda _: None, cell.params)
    axes["stimuli"]["iclamp"]["amp"] = 0
    again = simulate_batch(cell, full, 8.0, 0.025, in_axes=axes)
    p = cell.params
    p["stimuli"]["iclamp"]["amp"] = amps[2]
    np.testing.assert_allclose(again[2], dx.simulate(cell, 8.0, 0.025, params=p).traces, atol=1e-10)
    with pytest.raises(ValueError, match="batch size"):
        simulate_batch(cell, {"channels": {"hh": {"gnabar": gna}}, "stimuli": {"iclamp": {"amp": amps[:2]}}}, 8.0, 0.025)
    with pytest.raises(ValueError, match="no leaf"):
        simulate_batch(cell, {}, 8.0, 0.025)
    for bad in (None, jnp.zeros((2, 1))):
        with pytest.raises(ValueError, match="params_batch must be a params pytree"):
            simulate_batch(cell, bad, 8.0, 0.025)
    with pytest.raises(ValueError, match="holds 0 parameter sets"):
        simulate_batch(cell, {"stimuli": {"iclamp": {"amp": amps[:0]}}}, 8.0, 0.025)
    with pytest.raises(ValueError, match=r"runs each member in one piece: it takes no \['chunk'\]"):
        simulate_batch(cell, {"channels": {"hh": {"gnabar": gna}}}, 8.0, 0.025, chunk=40)
    with pytest.raises(ValueError, match="lack"):
        simulate_batch(cell, {"channels": {"hh": {"gnabarr": gna}}}, 8.0, 0.025)
    # (an AttributeError and JAX's pytree-structure error before)
    with pytest.raises(ValueError, match=r"params_batch has an array at channels where the "
                                         r"cell's params have a dict \(of \['hh'\]\)"):
        simulate_batch(cell, {"channels": gna}, 8.0, 0.025)
    with pytest.raises(ValueError, match=r"params_batch at stimuli/iclamp/amp must be an array "
                                         r"of numbers, got None"):
        simulate_batch(cell, {"stimuli": {"iclamp": {"amp": None}}}, 8.0, 0.025)
    # a list of numbers is an array; in_axes partial as params_batch (the rest shared)
    listed = simulate_batch(cell, {"stimuli": {"iclamp": {"amp": amps.tolist()}}}, 8.0, 0.025,
                            in_axes={"stimuli": {"iclamp": {"amp": 0}}})
    np.testing.assert_array_equal(listed, simulate_batch(cell, {"stimuli": {"iclamp": {
        "amp": amps}}}, 8.0, 0.025))
    # a leaf in_axes marks 0 without a batch axis was batched over its own (per-node) axis
    own = cell.params["channels"]["hh"]["gnabar"]
    with pytest.raises(ValueError, match=rf"\['gnabar'\] has shape \({own.size},\); in_axes "
                                         rf"marks it 0, so it must be \[B, {own.size}\]"):
        simulate_batch(cell, {"channels": {"hh": {"gnabar": own}}}, 8.0, 0.025,
                       in_axes={"channels": {"hh": {"gnabar": 0}}})
    # values are checked as simulate checks them: by name where they are concrete...
    with pytest.raises(ValueError, match=r"\['gnabar'\] has non-finite values"):
        simulate_batch(cell, {"channels": {"hh": {"gnabar": gna.at[1, 0].set(jnp.nan)}}}, 8.0, 0.025)
    ra = jnp.stack([cell.params["cable"]["Ra"], -cell.params["cable"]["Ra"]])
    with pytest.raises(ValueError, match=r"Ra must be > 0 ohm cm, got -100"):
        simulate_batch(cell, {"cable": {"Ra": ra}}, 8.0, 0.025)
    # ...and, traced (inside jit), only the members that break a rule come back NaN
    traced = jax.jit(lambda g: simulate_batch(cell, {"channels": {"hh": {"gnabar": g}}}, 8.0, 0.025))
    out = traced(gna.at[1].multiply(-1.0))
    assert np.isnan(out[1]).all()
    np.testing.assert_allclose(out[np.array([0, 2])], traced(gna)[np.array([0, 2])], rtol=0, atol=1e-12)



def test_simulate_batch_follows_edits_of_what_it_bakes_in_and_refuses_what_it_drops():
    """The extracellular tables (from positions and diameters when lowered) are constants
    of the compiled batch: a cell moved, turned or given another diam gets new ones (the
    cached batch returned the LFP and dipole of before, 2 uV and 130 nA um off). Statistics
    (reduce=) are not in its traces: refused (they were dropped, the rows misnumbered)."""
    def build():
        c = dx.Cell.ball_and_stick(nseg=[1, 3])
        c.insert("hh")
        net = dx.Network.replicate(c, 2)
        net.cell(0).iclamp(net.cell(0).soma(0.5), delay=1.0, dur=5.0, amp=0.5)
        net.record("v", net.cell(0).soma(0.5))
        net.record_extracellular(dx.Electrodes([[50.0, 0.0, 0.0], [0.0, 80.0, 0.0]]))
        net.record_dipole()
        return net

    amps = {"stimuli": {"iclamp": {"amp": jnp.array([[0.4], [0.6]])}}}
    net = build()
    before = np.asarray(simulate_batch(net, amps, 4.0, 0.025))
    net.place(0, [300.0, 0.0, 0.0], rotation=[0.0, 0.0, 1.0])
    net.cell(1).set("diam", 3.0, where="dend")
    after = np.asarray(simulate_batch(net, amps, 4.0, 0.025))
    assert np.abs(after[:, 1:] - before[:, 1:]).max() > 1.0
    p = net.params
    for k in range(2):
        p["stimuli"]["iclamp"]["amp"] = amps["stimuli"]["iclamp"]["amp"][k]
        np.testing.assert_allclose(after[k], dx.simulate(net, 4.0, 0.025, params=p).traces,
                                   rtol=1e-9, atol=1e-9)
    net.record("v", net.cell(1).soma(0.5), reduce="max")
    with pytest.raises(ValueError, match=r"returns traces only, and 1 recording\(s\) are kept "
                                         r"as statistics \(reduce='max'\)"):
        simulate_batch(net, amps, 4.0, 0.025)
    spiking = build().record_spikes()
    with pytest.warns(UserWarning, match="the recorded spikes are not in its output"):
        simulate_batch(spiking, amps, 4.0, 0.025)


def test_simulate_batch_differentiates_v_init_and_celsius_as_simulate():
    """v_init and celsius traced by the caller (a loss of them, under grad or jit) pass into
    the compiled batch (they once failed building its cache key): the batch's gradient is
    the sum of the members' own."""
    cell = three_section_cell(nseg=(1, 2, 2))
    amps = jnp.array([[0.1], [0.3]])
    for kw, x0 in (("celsius", 6.3), ("v_init", -65.0)):
        batch = lambda x: jnp.mean(simulate_batch(
            cell, {"stimuli": {"iclamp": {"amp": amps}}}, 5.0, 0.025, **{kw: x}), axis=(1, 2))
        members = []
        for a in amps:
            p = cell.params
            p["stimuli"]["iclamp"]["amp"] = a
            members.append(jax.grad(lambda x: jnp.mean(
                dx.simulate(cell, 5.0, 0.025, params=p, **{kw: x}).traces))(x0))
        g = jax.grad(lambda x: jnp.sum(batch(x)))(x0)
        assert abs(float(g) - float(sum(members))) < 1e-10 * abs(float(g)), (kw, g, members)
        np.testing.assert_allclose(jax.jit(batch)(x0), batch(x0), rtol=0, atol=1e-12)


SHARDED_SCRIPT = textwrap.dedent("""
    import jax, jax.numpy as jnp, numpy as np
    jax.config.update("jax_enable_x64", True)
    import dendrax as dx
    from dendrax.training.batch import simulate_batch

    assert jax.device_count() == 4, jax.devices()
    cell = dx.Cell.ball_and_stick(nseg=[1, 3])
    cell.insert("hh")
    cell.iclamp(cell.soma(0.5), delay=1.0, dur=5.0, amp=0.3)
    cell.record("v", cell.soma(0.5)).record("v", cell.section(1)(0.9))
    n = cell.params["channels"]["hh"]["gnabar"].shape[0]
    for B in (8, 6):
        batch = {"channels": {"hh": {"gnabar": jnp.linspace(0.08, 0.16, B)[:, None] * jnp.ones((1, n))}},
                 "stimuli": {"iclamp": {"amp": jnp.linspace(0.1, 0.5, B)[:, None]}}}
        sharded = simulate_batch(cell, batch, 6.0, 0.025)
        single = simulate_batch(cell, batch, 6.0, 0.025, devices=1)
        assert sharded.shape == single.shape == (B, 2, 241)
        np.testing.assert_allclose(sharded, single, atol=1e-10)
        for k in range(B):
            p = cell.params
            p["channels"]["hh"]["gnabar"], p["stimuli"]["iclamp"]["amp"] = batch["channels"]["hh"]["gnabar"][k], batch["stimuli"]["iclamp"]["amp"][k]
            np.testing.assert_allclose(sharded[k], dx.simulate(cell, 6.0, 0.025, params=p).traces,
                                       atol=1e-10)
        if B == 8:
            assert len(sharded.sharding.device_set) == 4
            shards = sharded.addressable_shards
            assert len(shards) == 4 and {s.data.shape for s in shards} == {(2, 2, 241)}
            assert len({s.device for s in shards}) == 4
    # gradients flow through the sharded batch
    f = lambda s: simulate_batch(cell, {"stimuli": {"iclamp": {"amp": s * jnp.ones((8, 1))}}}, 6.0, 0.025).mean()
    g, eps = float(jax.grad(f)(0.3)), 1e-6
    fd = (float(f(0.3 + eps)) - float(f(0.3 - eps))) / (2 * eps)
    assert abs(g - fd) <= 1e-5 * abs(fd), (g, fd)
    # a loss weighting the members (eager grad: its cotangent is not sharded as the batch
    # was; refused once with "Sharding passed to jit does not match")
    w = jnp.arange(1.0, 9.0)[:, None, None]
    f = lambda s, d: jnp.sum(w * simulate_batch(
        cell, {"stimuli": {"iclamp": {"amp": s * jnp.ones((8, 1))}}}, 6.0, 0.025, devices=d))
    np.testing.assert_allclose(float(jax.grad(f)(0.3, None)), float(jax.grad(f)(0.3, 1)),
                               rtol=1e-10)
    print("sharded ok")
""")


def test_sharded_batch_over_four_host_devices():
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4",
           "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run([sys.executable, "-c", SHARDED_SCRIPT], env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "sharded ok" in proc.stdout


# --- fit ---------------------------------------------------------------------
def test_fit_minimises_and_records(tmp_path):
    target = {"a": jnp.array([1.0, -2.0]), "b": jnp.array(3.0)}
    loss = lambda th: sum(jnp.sum((th[k] - target[k]) ** 2) for k in th)
    theta0 = {"a": jnp.zeros(2), "b": 0.0}
    res = fit(loss, theta0, optimizer=optax.adam(0.1), steps=300, progress=False)
    assert res.history.shape == (300,) and res.history[-1] < 1e-3 * res.history[0]
    np.testing.assert_allclose(res.theta["a"], target["a"], atol=2e-2)
    assert res.best_loss == res.history.min() and res.stopped is None
    lb = fit(loss, theta0, optimizer=optax.lbfgs(), steps=20, progress=False,
             callback=lambda k, th, value: value < 1e-20)
    np.testing.assert_allclose(lb.best_theta["b"], 3.0, rtol=1e-8)
    seen = []
    stop = fit(loss, theta0, steps=50, progress=False,
               callback=lambda k, th, value: seen.append(k) or k == 4)
    assert seen == [0, 1, 2, 3, 4] and stop.stopped == "callback" and stop.history.size == 5
    with pytest.warns(RuntimeWarning, match="not finite"):
        bad = fit(lambda th: jnp.log(th["x"]), {"x": jnp.array(0.5)},
                  optimizer=optax.sgd(1.0), steps=10, progress=False)
    assert bad.stopped == "non-finite loss" and np.isfinite(loss_at := float(jnp.log(bad.theta["x"])))
    assert loss_at == bad.history[-1]
    # a finite loss whose gradient is not: the point is kept (history, best), then stop
    with pytest.warns(RuntimeWarning, match="not finite"):
        edge = fit(lambda th: jnp.sqrt(th["x"]), {"x": jnp.array(0.0)}, steps=5, progress=False)
    assert edge.stopped == "non-finite gradient" and edge.history.tolist() == [0.0]
    assert edge.best_loss == 0.0 and float(edge.best_theta["x"]) == 0.0
    # a Python int in theta0 is a float parameter
    whole = fit(lambda th: (th["a"] - 3.0) ** 2, {"a": 1}, optimizer=optax.adam(0.2), steps=200,
                progress=False)
    assert whole.theta["a"].dtype == jnp.result_type(float)
    np.testing.assert_allclose(whole.theta["a"], 3.0, atol=1e-2)
    plot_history(res.history, tmp_path / "h.png")
    assert (tmp_path / "h.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --- recovery ----------------------------------------------------------------
TRUTH = {"hh.gnabar": 0.15, "hh.gkbar": 0.04, "hh.gl": 4e-4, "Ra": 120.0}
BOUNDS = {"hh.gnabar": (0.06, 0.24), "hh.gkbar": (0.018, 0.072), "hh.gl": (1e-4, 9e-4),
          "Ra": (50.0, 250.0)}


def test_recovers_hh_conductances_and_axial_resistivity_from_random_start():
    """Soma + dendrite + axon, HH everywhere; v at three sites under three current steps
    (hyperpolarising, one spike, two spikes) batched with vmap, 15 ms each, gradients
    checkpointed. From a random start inside the bounds, 30 Adam steps then L-BFGS on
    sigmoid-transformed parameters recover gnabar, gkbar, gl and Ra to 1e-5, as
    docs/training.md says (worst 2e-6 over 16 random starts tried; L-BFGS alone from 14)."""
    cell = three_section_cell(nseg=(1, 4, 3))
    tr = Trainables(cell)
    for name, (lo, hi) in BOUNDS.items():
        tr.add(name, transform=Sigmoid(lo, hi))
    amps = {"stimuli": {"iclamp": {"amp": jnp.array([[-0.1], [0.15], [0.6]])}}}

    def traces(theta):
        return simulate_batch(cell, amps, 15.0, 0.025, base=tr.apply(theta), checkpoint=25)

    truth = {k: tr.transform(k).inverse(jnp.array([v])) for k, v in TRUTH.items()}
    target = traces(truth)

    def loss(theta):
        return jnp.mean((traces(theta) - target) ** 2) / 100.0

    theta0 = tr.sample(jax.random.PRNGKey(0))
    same = tr.sample(0)  # an int seed is that key
    assert all(np.array_equal(theta0[k], same[k]) for k in theta0)
    start = tr.values(theta0)
    assert max(abs(float(start[k][0]) / v - 1) for k, v in TRUTH.items()) > 0.3
    warm = fit(loss, theta0, optimizer=optax.adam(0.05), steps=30, progress=False)
    res = fit(loss, warm.theta, optimizer=optax.lbfgs(), steps=60, progress=False,
              callback=lambda k, theta, value: value < 1e-12)
    fitted = tr.values(res.best_theta)
    errors = {k: abs(float(fitted[k][0]) / v - 1) for k, v in TRUTH.items()}
    assert max(errors.values()) < 1e-5, (errors, res.history[-5:])  # measured 8e-7


# --- second derivatives ------------------------------------------------------------------

def test_second_derivatives_with_forward_mode_inside():
    """Through a simulation with the native kernels (Hines solve, HH gates): jacrev(jacfwd)
    and jacfwd(jacfwd) agree with each other and with central differences of the gradient;
    forward-over-reverse fails as docs/training.md says (JAX drops custom rules inside the
    loop), so the docs stay true."""
    cell = dx.Cell.ball_and_stick(nseg=[1, 3], dend_length=150.0, dend_diam=2.0, Ra=100.0)
    cell.insert("hh")
    cell.iclamp(cell.soma(0.5), delay=1.0, dur=5.0, amp=0.05)
    cell.record("v", cell.soma(0.5))
    p0 = cell.params
    hh = p0["channels"]["hh"]

    def f(s):  # s: [2] scales of gnabar and gkbar
        p = {**p0, "channels": {**p0["channels"], "hh": {
            **hh, "gnabar": hh["gnabar"] * s[0], "gkbar": hh["gkbar"] * s[1]}}}
        return jnp.mean((dx.simulate(cell, 3.0, 0.025, params=p).traces + 62.0) ** 2)

    s0 = jnp.ones(2)
    rev_fwd = np.asarray(jax.jacrev(jax.jacfwd(f))(s0))
    fwd_fwd = np.asarray(jax.jacfwd(jax.jacfwd(f))(s0))
    np.testing.assert_allclose(rev_fwd, fwd_fwd, rtol=1e-9, atol=1e-12 * np.abs(fwd_fwd).max())
    g, e = jax.jit(jax.grad(f)), 1e-4
    fd = np.stack([(np.asarray(g(s0 + e * u)) - np.asarray(g(s0 - e * u))) / (2 * e)
                   for u in np.eye(2)], axis=1)
    assert np.abs(fd).max() > 1.0
    np.testing.assert_allclose(rev_fwd, fd, rtol=1e-6, atol=1e-6 * np.abs(fd).max())
    with pytest.raises(ValueError, match="cannot be differentiated"):
        jax.hessian(f)(s0)
