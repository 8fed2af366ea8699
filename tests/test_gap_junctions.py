"""Gap junctions (``Network.gap_junction``): two passive compartments against a numpy
step-by-step reference and the circuit's analytic steady state, the recorded junction
currents, gradients against finite differences, refusals and model files. (Against
NEURON's half-gap point processes: the ``gap_junctions`` case of
tests/test_network_neuron.py.)"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import dendrax as dx

DT = 0.025
DIAM = LENGTH = 20.0
AREA = np.pi * DIAM * LENGTH  # um2, lateral
CAP = 1.0 * AREA * 1e-5       # nF (cm 1 uF/cm2)


def compartment(g_pas, e_pas):
    cell = dx.Cell.from_sections([{"length": LENGTH, "diam": DIAM, "parent": -1,
                                   "region": "soma"}], Ra=100.0, cm=1.0)
    return cell.insert("pas").set("pas.g", g_pas).set("pas.e", e_pas)


def pair(g, g_pas=(1e-3, 5e-4), e_pas=(-65.0, -70.0), amp=0.05, v_init=-65.0, t_stop=20.0):
    """Cells A (clamped from 1 ms) and B joined by a junction of ``g`` uS: dendrax's traces
    of v_A, v_B and the two halves' currents (at B, then at A)."""
    net = dx.Network([compartment(g_pas[0], e_pas[0]), compartment(g_pas[1], e_pas[1])])
    a, b = net.cell(0).soma(), net.cell(1).soma()
    net.cell(0).iclamp(a, delay=1.0, dur=t_stop, amp=amp)
    net.gap_junction(a, b, g=g)
    net.record("v", a).record("v", b)
    net.record("GapJunction.i", b).record("GapJunction.i", a)
    return net, np.asarray(dx.simulate(net, t_stop, DT, v_init=v_init).traces)


def reference(g, g_pas, e_pas, amp, v_init, n_steps):
    """numpy: each compartment's backward-Euler step, implicit in its own voltage, the
    other side's voltage taken at the start of the step (NEURON's half-gaps)."""
    gm = np.asarray(g_pas) * AREA * 1e-2  # uS
    v = np.full(2, v_init)
    out = [v.copy()]
    for n in range(n_steps):
        t_mid = (n + 0.5) * DT
        i_stim = np.array([amp if t_mid >= 1.0 else 0.0, 0.0])
        other = v[::-1]
        v = (CAP / DT * v + gm * np.asarray(e_pas) + g * other + i_stim) / (CAP / DT + gm + g)
        out.append(v.copy())
    return np.array(out).T


@settings(max_examples=8, deadline=None)
@given(g=st.floats(1e-4, 0.05), amp=st.floats(-0.1, 0.1))
def test_junction_matches_numpy_reference(g, amp):
    g_pas, e_pas = (1e-3, 5e-4), (-65.0, -70.0)
    _, (va, vb, ib, ia) = pair(g, g_pas, e_pas, amp)
    ref = reference(g, g_pas, e_pas, amp, -65.0, va.size - 1)
    np.testing.assert_allclose(va, ref[0], rtol=0, atol=1e-10)
    np.testing.assert_allclose(vb, ref[1], rtol=0, atol=1e-10)
    # each half's current, computed in the step from v(t): g (v_here - v_there)
    np.testing.assert_allclose(ib[1:], g * (vb[:-1] - va[:-1]), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(ia[1:], -ib[1:], rtol=1e-12, atol=1e-15)
    assert np.ptp(vb) > 1e-3  # B moves only through the junction


def test_steady_state_is_the_circuits():
    """Long after the clamp starts: (G_A + g) V_A - g V_B = G_A e_A + I and
    (G_B + g) V_B - g V_A = G_B e_B (conductances in uS, I in nA, V in mV)."""
    g, g_pas, e_pas, amp = 0.01, (1e-3, 5e-4), (-65.0, -70.0), 0.08
    _, (va, vb, _, _) = pair(g, g_pas, e_pas, amp, t_stop=300.0)
    ga, gb = np.asarray(g_pas) * AREA * 1e-2
    m = np.array([[ga + g, -g], [-g, gb + g]])
    v = np.linalg.solve(m, [ga * e_pas[0] + amp, gb * e_pas[1]])
    np.testing.assert_allclose([va[-1], vb[-1]], v, rtol=0, atol=1e-9)
    assert vb[-1] - e_pas[1] > 1.0  # B is pulled up by A


def test_junction_gradient_matches_finite_differences():
    """HH cells: A fires, B follows through the junction; d(loss)/dg of each half."""
    cells = [dx.Cell.ball_and_stick(nseg=[1, 3], Ra=100.0).insert("hh") for _ in range(2)]
    net = dx.Network(cells)
    net.cell(0).iclamp(net.cell(0).soma(), delay=1.0, dur=6.0, amp=0.3)
    net.gap_junction(net.cell(0).soma(), net.cell(1).section(1)(0.5), g=0.01)
    net.record("v", net.cell(1).soma())

    def loss(params):
        return jnp.mean((dx.simulate(net, 8.0, DT, params=params).traces + 20.0) ** 2) / 100.0

    params = net.params
    g = params["synapses"]["GapJunction"]["g"]
    assert g.shape == (2,)
    grad = jax.grad(loss)(params)["synapses"]["GapJunction"]["g"]
    for k in range(2):
        step = np.zeros(2)
        step[k] = 1e-6
        fd = [float(loss({**params, "synapses": {"GapJunction": {
            **params["synapses"]["GapJunction"], "g": g + s * step}}})) for s in (1, -1)]
        fd = (fd[0] - fd[1]) / 2e-6
        assert abs(fd) > 1e-3, fd
        assert abs(float(grad[k]) - fd) <= 1e-5 * abs(fd), (k, float(grad[k]), fd)


def test_halves_sit_where_asked():
    net, _ = pair(0.002, t_stop=1.0)
    params = net.params["synapses"]["GapJunction"]
    np.testing.assert_array_equal(params["g"], [0.002, 0.002])
    np.testing.assert_array_equal(params["delay"], [0.0, 0.0])
    net2 = dx.Network([compartment(1e-3, -65.0), compartment(1e-3, -65.0)])
    net2.gap_junction(net2.cell(0).soma(), net2.cell(1).soma(), g=[0.001, 0.003])
    np.testing.assert_array_equal(net2.params["synapses"]["GapJunction"]["g"], [0.001, 0.003])


@pytest.mark.parametrize("call,match", [
    (lambda n: n.gap_junction(n.cell(0).soma(), n.cell(0).soma(0.5), g=0.01), "same node"),
    (lambda n: n.gap_junction(n.cell(0).soma(), n.cell(1).soma(), g=-0.01), "g"),
    (lambda n: n.gap_junction(n.cell(0).soma(), n.cell(1).soma(), g=float("nan")), "g"),
    (lambda n: n.gap_junction(n.cell(0).soma(), n.cell(1).soma(), g=0.01, synapse="Exp2Syn"),
     "graded"),
    (lambda n: n.gap_junction(n.cell(0).soma(), dx.Cell.ball_and_stick().soma(), g=0.01),
     "which cell"),
    (lambda n: n.gap_junction(n.cell(0).soma(), n.cell(1).soma(), g=[0.1, 0.2, 0.3]), "2"),
    # one per half or one number: a list of one is not stretched (as simulate's params)
    (lambda n: n.gap_junction(n.cell(0).soma(), n.cell(1).soma(), g=[0.1]),
     r"g is one number or one per half \(\[2\]: the half at b, then at a\), got shape \(1,\)"),
])
def test_bad_junctions_are_refused(call, match):
    net = dx.Network([compartment(1e-3, -65.0), compartment(1e-3, -65.0)])
    with pytest.raises(ValueError, match=match):
        call(net)


def test_model_file_round_trip(tmp_path):
    net, traces = pair(0.01, t_stop=5.0)
    dx.save(net, tmp_path / "gap.dendrax")
    again = dx.load(tmp_path / "gap.dendrax")
    np.testing.assert_array_equal(np.asarray(dx.simulate(again, 5.0, DT).traces), traces)


GAP_TOML = """
[[cell]]
model = "ball_and_stick"
nseg = [1, 5]
Ra = 100.0
count = 3

[[gap_junction]]
a = "0:2"
b = [1, 2]
g = 0.02
a_loc = "dend[0](0.5)"

[simulation]
t_stop = 5.0

[record]
v = ["cell 0", "cell 2"]
"""


def test_network_spec_gap_junctions():
    """[[gap_junction]] tables (docs/cli.md) place what Network.gap_junction places: a[i]
    joined to b[i] at a_loc / b_loc (default soma(0.5))."""
    from dendrax.spec import NetworkSpec, SpecError

    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib

    net = NetworkSpec.from_dict(tomllib.loads(GAP_TOML)).build()
    ref = dx.Network([dx.Cell.ball_and_stick(nseg=[1, 5], Ra=100.0).insert("hh")
                      for _ in range(3)])
    for a, b in ((0, 1), (1, 2)):
        ref.gap_junction(ref.cell(a).section(1)(0.5), ref.cell(b).soma(0.5), g=0.02)
    model, params, layout = dx.lower(net)
    model_r, params_r, layout_r = dx.lower(ref)
    (ours,), (theirs,) = model.graded, model_r.graded
    np.testing.assert_array_equal(ours.nodes, theirs.nodes)
    np.testing.assert_array_equal(model.graded_pre_nodes[ours.pre],
                                  model_r.graded_pre_nodes[theirs.pre])
    np.testing.assert_array_equal(params["synapses"]["GapJunction"]["g"], [0.02] * 4)
    for bad, words in (("a = [0, 1]\nb = [1]\ng = 0.1\nb_loc = 'x'", "no sections in region 'x'"),
                       ("a = [0, 1, 2]\nb = [1, 2]\ng = 0.1", "as many cells"),
                       ("a = 0\nb = 1", "needs a, b"),
                       ("a = 0\nb = 1\ng = -1.0", "g must be >= 0"),
                       ("a = 0\nb = 1\ng = nan", "g must be a finite number, got nan"),
                       ("a = 0\nb = 0\ng = 0.1", "same node"),
                       ("a = 0\nb = 7\ng = 0.1", "out of range"),
                       ("a = 0\nb = 1\ng = 0.1\nweight = 2.0", "weight"),
                       ("a = []\nb = 1\ng = 0.1", "at least one cell"),
                       ("a = 0\nb = 1\ng = 0.1\n[[connection]]\npre = 0\npost = 1\n"
                        "synapse = 'GapJunction'\nparams = {g = 0.1}", "one half")):
        text = GAP_TOML.replace('a = "0:2"\nb = [1, 2]\ng = 0.02\na_loc = "dend[0](0.5)"', bad)
        with pytest.raises(SpecError, match=words):
            NetworkSpec.from_dict(tomllib.loads(text)).build()


def test_crank_nicolson_warns_of_a_junction_on_an_end_node():
    """The docs' caveat (docs/networks.md): under CN a junction on a zero-area node grows;
    simulate says so before the run, and says nothing for a junction on a segment."""
    net = dx.Network([dx.Cell.ball_and_stick(nseg=[1, 3]).insert("hh") for _ in range(2)])
    net.gap_junction(net.cell(0).section(1)(1.0), net.cell(1).section(1)(0.5), g=0.005)
    net.record("v", net.cell(0).soma())
    with pytest.warns(RuntimeWarning, match="zero-area node"):
        dx.simulate(net, 0.1, DT, method="crank_nicolson")
    ok = dx.Network([dx.Cell.ball_and_stick(nseg=[1, 3]).insert("hh") for _ in range(2)])
    ok.gap_junction(ok.cell(0).section(1)(0.9), ok.cell(1).section(1)(0.5), g=0.005)
    # a branch point's node (dend(0) = soma(1)) has no area either, but its neighbours damp
    # it (stable: 30 ms of CN with a spiking cell stay finite); no warning there
    ok.gap_junction(ok.cell(0).section(1)(0.0), ok.cell(1).section(1)(0.0), g=0.01)
    ok.record("v", ok.cell(0).soma())
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        dx.simulate(ok, 0.1, DT, method="crank_nicolson")
        dx.simulate(net, 0.1, DT)  # backward Euler: stable
