"""NMODL import without running NEURON: what loads, as what (RANGE ASSIGNED recordables,
ions dendrax does not know, nonspecific currents, pools writing cai), unit factors,
language features, differentiability, headless loading and file encodings.

(Point processes: tests/test_nmodl_synapses.py. The agreement with NEURON compiling the
same files is tests/test_nmodl_neuron.py and tests/test_nmodl_synapses_neuron.py; the
refusals, with their lines, tests/test_nmodl_refusals.py; registration, the CLI and the
plugin package, tests/test_nmodl_package.py.)
References here are independent of the generator: dendrax's hand-written Hay channels
(mechanisms/hay.py), the constants of mechanisms/base.py, closed-form expressions written
out in numpy, and central finite differences for gradients.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

pytest.importorskip("neuron.nmodl", reason="NEURON's NMODL framework (dendrax[nmodl])")

import dendrax as dx
from dendrax import nmodl
from dendrax.mechanisms import hay
from dendrax.mechanisms.base import FARADAY, GAS_CONSTANT, Channel, IonPool
from dendrax.mechanisms.introspect import assigned_names, solved_names
from dendrax.nmodl import NmodlError
from dendrax.nmodl import registry as nmodl_registry
from dendrax.nmodl.units import Units

HERE = Path(__file__).resolve().parent
HAY_FILES = sorted((HERE / "nmodl").glob("*.mod"))
CASES = HERE / "nmodl_cases"


@pytest.fixture(autouse=True)
def _forget_registrations():
    yield
    nmodl_registry.unregister()


def _env(v, cai=2e-4, ica=-0.01):
    return {"celsius": jnp.asarray(34.0), "ena": jnp.full_like(v, 50.0),
            "ek": jnp.full_like(v, -85.0), "eca": jnp.full_like(v, 120.0),
            "cai": jnp.full_like(v, cai), "cao": jnp.full_like(v, 2.0), "ica": jnp.full_like(v, ica),
            "nai": jnp.full_like(v, 10.0), "nao": jnp.full_like(v, 140.0),
            "ki": jnp.full_like(v, 54.4), "ko": jnp.full_like(v, 2.5)}


# --- the Hay set against the hand-written channels ------------------------------------------

@pytest.mark.parametrize("path", HAY_FILES, ids=lambda p: p.stem)
def test_hay_file_matches_hand_written(path):
    cls = nmodl.load(path, register=False)
    ref = getattr(hay, cls.name)()
    assert cls.name == path.stem
    assert issubclass(cls, IonPool if cls.name == "CaDynamics_E2" else Channel)
    assert cls.params == ref.params
    assert set(cls.states) == set(ref.states)
    assert set(cls.ions) == set(ref.ions)
    mech = cls()
    v = jnp.linspace(-100.0, 60.0, 321)
    v = jnp.concatenate([v, jnp.asarray([-38.0, -66.0, -154.9, -27.0])])  # singular points
    env = _env(v)
    p = {k: jnp.full_like(v, 0.01 if k.startswith("g") else x) for k, x in ref.params.items()}
    if isinstance(mech, Channel):
        s0, s_ref = mech.steady_state(v, p, env), ref.steady_state(v, p, env)
        # measured: relative <= 4.5e-16 (currents), absolute <= 4.4e-16 (states), 3e-19 (cai)
        for k in s_ref:
            np.testing.assert_allclose(s0[k], s_ref[k], rtol=2e-15, atol=1e-15)
        cur, cur_ref = mech.current(v, s_ref, p, env), ref.current(v, s_ref, p, env)
        assert set(cur) == set(cur_ref)
        for k in cur_ref:
            np.testing.assert_allclose(cur[k], cur_ref[k], rtol=2e-15, atol=1e-18)
        # the RANGE ASSIGNED conductance (g<name>, BREAKPOINT's) and its unit
        extra, extra_ref = mech.assigned(v, s_ref, p, env), ref.assigned(v, s_ref, p, env)
        assert set(extra) == set(extra_ref) == {f"g{cls.name}"}
        for k in extra_ref:
            np.testing.assert_allclose(extra[k], extra_ref[k], rtol=2e-15, atol=1e-18)
            assert cls.units[k] == ref.units[k] == "S/cm2"
        states = s_ref
    else:
        states = {"cai": jnp.full_like(v, 3e-4)}
    step, step_ref = mech.advance(v + 1.0, states, p, env, 0.025), ref.advance(v + 1.0, states, p,
                                                                               env, 0.025)
    for k in step_ref:  # gates in [0, 1]; cai ~3e-4 mM, to its own scale
        np.testing.assert_allclose(step[k], step_ref[k], rtol=2e-15,
                                   atol=1e-18 if k == "cai" else 1e-15)


RANGE_CASES = """
NEURON {
    SUFFIX rangex
    USEION k READ ek WRITE ik
    RANGE gbar, g, minf, tauv, stick, never
}
UNITS { (mA) = (milliamp) (mV) = (millivolt) (S) = (siemens) }
PARAMETER { gbar = 0.01 (S/cm2) }
ASSIGNED { v (mV) ek (mV) ik (mA/cm2) g (S/cm2) minf mtau (ms) tauv stick never }
STATE { m }
BREAKPOINT {
    SOLVE states METHOD cnexp
    rates(v)
    g = gbar*m
    tauv = mtau
    if (m > 0.3) { stick = 1 }
    ik = g*(v - ek)
}
INITIAL { rates(v)  m = minf }
DERIVATIVE states { rates(v)  m' = (minf - m)/mtau }
PROCEDURE rates(v (mV)) {
    minf = 1/(1 + exp(-(v + 40)/8))
    mtau = 1 + 4/(1 + exp((v + 40)/10))
}
"""


def test_which_range_assigned_are_recordable():
    """RANGE ASSIGNED are recorded as NEURON records them: BREAKPOINT's where it sets them on
    every path (at v(t), the step's currents), the SOLVE'd block's where a cnexp block sets
    them on every path (at v(t + dt), the state update's: minf, also set by BREAKPOINT,
    which runs first); the others (the last value set on some path, one never set, one set
    inside an implicit solve) are refused, saying why."""
    cls = nmodl.load(RANGE_CASES, register=False)
    assert assigned_names(cls()) == ("g", "tauv")
    assert solved_names(cls()) == ("minf",)
    assert cls.units["g"] == "S/cm2"
    assert set(cls.unrecordable) == {"stick", "never"}
    cell = dx.Cell.ball_and_stick(nseg=[1, 1]).insert(cls)
    for name, why in (("stick", "BREAKPOINT sets it on some paths only"),
                      ("never", "BREAKPOINT does not set it")):
        with pytest.raises(ValueError, match=rf"its NMODL file declares RANGE {name}, but {why}"):
            cell.record(f"rangex.{name}", cell.soma(0.5))
    cell.iclamp(cell.soma(), delay=0.2, dur=1.0, amp=0.5)
    for q in ("g", "m", "minf", "tauv"):
        cell.record(f"rangex.{q}", cell.soma(0.5))
    cell.record("v", cell.soma(0.5))
    g, m, minf, tauv, v = np.asarray(dx.simulate(cell, 1.0, 0.025).traces)
    np.testing.assert_allclose(g, 0.01 * np.concatenate([m[:1], m[:-1]]), rtol=1e-13)
    # the state update's minf at the new v; BREAKPOINT's mtau (tauv) at the step's start
    np.testing.assert_allclose(minf, 1 / (1 + np.exp(-(v + 40) / 8)), rtol=1e-13)
    v_start = np.concatenate([v[:1], v[:-1]])
    np.testing.assert_allclose(tauv, 1 + 4 / (1 + np.exp((v_start + 40) / 10)), rtol=1e-13)
    assert np.ptp(v) > 1.0
    # at t = 0 what initialization left: here neither INITIAL nor BREAKPOINT computes
    # minf, so NEURON records 0 after finitialize; later the state update's value
    bare = RANGE_CASES.replace("INITIAL { rates(v)  m = minf }", "INITIAL { m = 0.1 }")
    bare = bare.replace("    rates(v)\n    g = gbar*m", "    g = gbar*m")
    assert bare.count("rates(v)") == 1
    cell = dx.Cell.ball_and_stick(nseg=[1, 1]).insert(nmodl.load(bare, register=False))
    cell.iclamp(cell.soma(), delay=0.2, dur=1.0, amp=0.5)
    cell.record("rangex.minf", cell.soma(0.5)).record("v", cell.soma(0.5))
    minf, v = np.asarray(dx.simulate(cell, 1.0, 0.025).traces)
    assert minf[0] == 0.0
    np.testing.assert_allclose(minf[1:], 1 / (1 + np.exp(-(v[1:] + 40) / 8)), rtol=1e-13)
    # set inside an implicit solve: NEURON's value is its Newton iteration's, refused
    implicit = nmodl.load(RANGE_CASES.replace("METHOD cnexp", "METHOD derivimplicit"),
                          register=False)
    assert solved_names(implicit()) == ()
    assert "inside its derivimplicit solve (NEURON records its Newton iteration's value)" \
        in implicit.unrecordable["minf"]
    # an ion pool's RANGE ASSIGNED: set by its SOLVE'd block, or not recordable at all
    text = (CASES / "capoolx.mod").read_text()
    assert "ASSIGNED {" in text and "RANGE depth" in text
    text = text.replace("RANGE depth", "RANGE irate, spare, depth").replace(
        "ASSIGNED {", "ASSIGNED { irate (mM/ms) spare (1)")
    text = text.replace("DERIVATIVE st {", "DERIVATIVE st {\n    irate = 2 * ica")
    pool = nmodl.load(text, register=False)
    assert set(pool.unrecordable) == {"spare"} and solved_names(pool()) == ("irate",)
    cell = dx.Cell.ball_and_stick(nseg=[1, 1]).insert(pool)
    with pytest.raises(ValueError, match=r"declares RANGE spare, but an ion pool's recordables "
                                         r"are its states"):
        cell.record(f"{pool.name}.spare", cell.soma(0.5))
    cell.insert(nmodl.load(CASES / "cahvx.mod", register=False))
    cell.iclamp(cell.soma(), delay=0.1, dur=1.0, amp=0.3)
    cell.record(f"{pool.name}.irate", cell.soma(0.5)).record("ica", cell.soma(0.5))
    irate, ica = np.asarray(dx.simulate(cell, 1.0, 0.025).traces)
    # the pool's step from the step's ion current (recorded with it); at t = 0 0, as
    # NEURON after finitialize (the pool's INITIAL does not set irate)
    np.testing.assert_allclose(irate[1:], 2 * ica[1:], rtol=1e-12)
    assert irate[0] == 0.0 and np.ptp(irate) > 0


def test_a_pool_writing_cai_sets_it():
    """WRITE cai: cai is a STATE, or the SOLVE'd block copies a STATE to it (cad.mod);
    a file that does neither is refused (its cai would never move)."""
    cad = nmodl.load(CASES / "cadx.mod", register=False)
    assert issubclass(cad, IonPool) and set(cad.states) == {"ca", "cai"}
    text = (CASES / "cadx.mod").read_text().replace("    cai = ca\n}", "}")
    with pytest.raises(NmodlError, match=r"WRITE cai needs cai to be a STATE, or set from one "
                                         r"by the SOLVE'd block"):
        nmodl.load(text, register=False)
    # set in a PROCEDURE that the SOLVE'd PROCEDURE calls
    procedure = """
BREAKPOINT { SOLVE step }
PROCEDURE step() { ca = ca + dt * (cainf - ca) / taur  tell(1) }
PROCEDURE tell(x) { cai = ca }
"""
    body = text[:text.index("BREAKPOINT")] + procedure
    assert set(nmodl.load(body, register=False).states) == {"ca", "cai"}


def test_a_range_name_declared_nowhere_else_is_ignored_with_a_warning():
    """nocmodl compiles a file whose RANGE or GLOBAL lists a name declared nowhere else
    (BBP's Ca_HVA2, Traub's naf_tcr, Poirazi's hha2): it was refused; now it is ignored,
    said, and the mechanism is the same as without it."""
    text = (HERE / "nmodl" / "Ih.mod").read_text()
    stray = text.replace("RANGE gIhbar", "RANGE gIhbar, stray_x", 1)
    assert stray != text
    with pytest.warns(UserWarning, match=r":\d+: RANGE/GLOBAL stray_x is declared nowhere "
                                         r"else in the file: ignored, as NEURON's nocmodl"):
        ih = nmodl.load(stray, register=False)
    plain = nmodl.load(text, register=False)
    assert ih.params == plain.params and ih.states == plain.states

    def run(mech):
        cell = dx.Cell.from_sections([{"length": 20.0, "diam": 20.0, "region": "soma"}])
        cell.insert(mech).iclamp(cell.soma(0.5), delay=1.0, dur=5.0, amp=-0.1)
        return dx.simulate(cell.record("v").record("Ih.m"), 10.0, 0.025).traces

    np.testing.assert_array_equal(run(ih), run(plain))


def test_an_ion_dendrax_does_not_know_read_only_is_a_parameter():
    """BBP's USEION ttx READ ttxo, ttxi (a TTX-block flag) was refused: the values are
    parameters of the mechanism at NEURON's for a new ion (1 mM; matched against NEURON in
    test_nmodl_neuron.py), said in a warning, and setting them blocks the channel here."""
    with pytest.warns(UserWarning, match=r"ttxnax.mod:8: USEION ttx, an ion dendrax does not "
                                         r"know, only read: ttxo, ttxi are parameters of "
                                         r"ttxnax at NEURON's values"):
        ttx = nmodl.load(CASES / "ttxnax.mod", register=False)
    assert ttx.params["ttxo"] == ttx.params["ttxi"] == 1.0 and ttx.ions == ("na",)

    def spikes(**flags):
        cell = dx.Cell.from_sections([{"length": 20.0, "diam": 20.0, "region": "soma"}])
        cell.insert(ttx).insert("hh").set("hh.gnabar", 0.0)
        for name, value in flags.items():
            cell.set(f"ttxnax.{name}", value)
        cell.iclamp(cell.soma(0.5), delay=1.0, dur=20.0, amp=0.3).record_spikes()
        return len(dx.simulate(cell, 25.0, 0.025).spikes[0])

    assert spikes() >= 1 and spikes(ttxi=0.015625, ttxo=1e-5) == 0
    written = (CASES / "ttxnax.mod").read_text().replace("READ ttxo, ttxi VALENCE 1",
                                                         "READ ttxo WRITE ttxi VALENCE 1")
    with pytest.raises(NmodlError, match="USEION ttx WRITE ttxi: dendrax knows the ions"):
        nmodl.load(written, register=False)


def test_an_ion_dendrax_does_not_know_written_is_a_nonspecific_current():
    """Poirazi's and Migliore's USEION h READ eh WRITE ih was refused: ih is the
    mechanism's nonspecific current (recorded as "hpx.ih") and eh its parameter at NEURON's
    value for a new ion (0 mV; the cell matched against NEURON in test_nmodl_neuron.py),
    said in a warning; the current is gbar l (v - eh) and moves the membrane."""
    with pytest.warns(UserWarning, match=r"hpx.mod:9: USEION h, an ion dendrax does not "
                                         r"know, read and written: eh is a parameter of hpx "
                                         r"at NEURON's values .*; the file's eh = -45 is not "
                                         r"used, as in NEURON.* its current ih is a "
                                         r"nonspecific current of hpx"):
        hp = nmodl.load(CASES / "hpx.mod", register=False)
    assert hp.params["eh"] == 0.0 and hp.ions == () and hp.nonspecific == "ih"

    def run(eh):
        cell = dx.Cell.from_sections([{"length": 20.0, "diam": 20.0, "region": "soma"}])
        cell.insert("pas").insert(hp).set("hpx.gbar", 2e-3).set("hpx.eh", eh)
        cell.record("v").record("hpx.ih").record("hpx.l").record("hpx.ghd")
        return np.asarray(dx.simulate(cell, 20.0, 0.025, v_init=-70.0).traces)

    for eh in (0.0, -30.0):  # recorded as NEURON records both: from the step's BREAKPOINT,
        v, ih, _, ghd = run(eh)  # at the step's starting v
        np.testing.assert_allclose(ih[1:], ghd[1:] * (v[:-1] - eh), rtol=1e-12, atol=1e-18)
        assert np.abs(ih).max() > 1e-3
    assert run(0.0)[0, -1] - run(-30.0)[0, -1] > 5.0  # eh moves the cell
    with pytest.warns(UserWarning, match="written: its current ih is a nonspecific current"):
        only = nmodl.load((CASES / "hpx.mod").read_text()
                          .replace("READ eh WRITE ih", "WRITE ih").replace("eh = -45", "eh = -30"),
                          register=False)
    assert only.params["eh"] == -30.0 and only.nonspecific == "ih"  # not the ion's: its own


def test_several_nonspecific_currents_are_recorded_each_by_its_name():
    """NONSPECIFIC_CURRENT i beside an unknown ion's ih: "nsh.i" recorded i + ih and "nsh.ih"
    could not be recorded (NEURON's i is i alone; tests/nmodl_cases/twonsx.mod against
    NEURON); their sum is "nsh.i_nonspecific". A POINT_PROCESS's eh is set per synapse."""
    text = """
NEURON { SUFFIX nsh NONSPECIFIC_CURRENT i USEION h READ eh WRITE ih VALENCE 1 RANGE g, gh }
PARAMETER { g = 1e-4 (S/cm2) gh = 2e-3 (S/cm2) }
ASSIGNED { v (mV) i (mA/cm2) ih (mA/cm2) eh (mV) }
BREAKPOINT { i = g*(v + 70)  ih = gh*(v - eh) }
"""
    with pytest.warns(UserWarning, match=r"cell.set\('nsh.eh', ...\)"):
        nsh = nmodl.load(text, register=False)
    assert nsh.nonspecific == "i_nonspecific"
    cell = dx.Cell.from_sections([{"length": 20.0, "diam": 20.0, "region": "soma"}])
    cell.insert(nsh).set("nsh.eh", -30.0)
    for name in ("v", "nsh.i", "nsh.ih", "nsh.i_nonspecific"):
        cell.record(name)
    v, i, ih, total = np.asarray(dx.simulate(cell, 1.0, 0.025, v_init=-60.0).traces)
    np.testing.assert_allclose(i[1:], 1e-4 * (v[:-1] + 70.0), rtol=1e-13)
    np.testing.assert_allclose(ih[1:], 2e-3 * (v[:-1] + 30.0), rtol=1e-13)
    np.testing.assert_allclose(total, i + ih, rtol=1e-13)
    point = text.replace("SUFFIX nsh", "POINT_PROCESS nsh").replace("(mA/cm2)", "(nA)").replace(
        "(S/cm2)", "(uS)")
    with pytest.warns(UserWarning, match=r"cell.synapse\('nsh', loc, eh=...\)"):
        nmodl.load(point, register=False)


def test_nonspecific_current_name():
    ih = nmodl.load(HERE / "nmodl" / "Ih.mod", register=False)
    assert ih.nonspecific == "ihcn" and ih.ions == ()


# --- units -----------------------------------------------------------------------------

def test_unit_factors_as_neuron():
    from neuron import h  # NEURON's own constants, the reference

    assert FARADAY == h.FARADAY and GAS_CONSTANT == h.R
    u = Units()
    assert u.factor("faraday", "coulombs") == FARADAY  # bit for bit: NEURON's 0x1.78e555060882cp+16
    assert u.factor("k-mole", "joule/degC") == pytest.approx(GAS_CONSTANT, rel=1e-15)
    assert u.factor("faraday", "kilocoulombs") == pytest.approx(FARADAY / 1000, rel=1e-15)
    assert u.factor("milliamp/cm2", "nanoamp/um2") == pytest.approx(1e-2, rel=1e-15)
    assert u.factor("pi", "1") == pytest.approx(np.pi, rel=1e-15)
    with pytest.raises(ValueError, match="different dimensions"):
        u.factor("millivolt", "milliamp")
    # a prefix alone is its number, as nocmodl reads "(mM) = (milli/liter)" (a factor of mM
    # was "unknown unit 'milli'")
    u.define("mM", "milli/liter")
    assert u.factor("mM", "mole/liter") == float.fromhex("0x1.071f77905d352p-89")  # nocmodl
    assert u.factor("micro", "1") == 1e-6
    from dendrax.nmodl.source import read
    d = nmodl.describe(*read(HERE / "nmodl" / "CaDynamics_E2.mod"))
    assert d.constants["FARADAY"][0] == FARADAY


UNITS_MOD = """
NEURON { SUFFIX ufac USEION ca READ ica WRITE cai RANGE depth }
UNITS {
    (mM) = (milli/liter)
    (um) = (micron)
    F = (faraday) (kilocoulombs)
    R = (k-mole) (joule/degC)
}
PARAMETER { depth = 0.1 (um) }
STATE { cai (mM) }
ASSIGNED { ica (mA/cm2) celsius (degC) }
BREAKPOINT { SOLVE s METHOD cnexp }
DERIVATIVE s { cai' = -ica/(2*F*depth) * (R*(celsius + 273.15)/(R*(celsius + 273.15))) }
"""


def test_unit_factor_constants_in_generated_code():
    src = nmodl.source(UNITS_MOD)
    assert f"F = {FARADAY / 1000!r}" in src.replace("96.48533212331002", repr(FARADAY / 1000))
    cls = nmodl.load(UNITS_MOD, register=False)
    assert issubclass(cls, IonPool) and cls.ion == "ca"
    v = jnp.zeros(2)
    out = cls().advance(v, {"cai": jnp.full(2, 1e-4)}, {"depth": jnp.full(2, 0.1)},
                        {"celsius": jnp.asarray(20.0), "ica": jnp.full(2, -0.01)}, 0.025)
    # cai' = -ica / (2 F depth) with F in kC/mol: a constant rate, exact over the step
    expected = 1e-4 + 0.025 * 0.01 / (2 * FARADAY / 1000 * 0.1)
    np.testing.assert_allclose(out["cai"], expected, rtol=1e-13)


# --- language features: IF/ELSE IF/ELSE, LOCAL, FUNCTION, builtins, TABLE -------------------

FEATURES_MOD = """
NEURON { SUFFIX feat NONSPECIFIC_CURRENT i RANGE g0, a, b GLOBAL q }
PARAMETER { g0 = 0.001 (S/cm2) a = 2 b = -30 (mV) q = 1.5 }
ASSIGNED { v (mV) i (mA/cm2) r }
STATE { w }
BREAKPOINT {
    SOLVE st METHOD cnexp
    i = g0 * w * shape(v) * (v - b)
}
INITIAL { w = 0.5 }
DERIVATIVE st { w' = (shape(v) - w) / a }
FUNCTION shape(x (mV)) {
    LOCAL y
    TABLE DEPEND a FROM -100 TO 100 WITH 200
    y = (x - b) / 10
    if (y < -1 && x < 0) {
        shape = exp(y) * fabs(y)^q
    } else if (!(y < 2) || y == 2) {
        shape = log(1 + y) + pow(y, 2) / 4 + sqrt(y) + tanh(y) + fmax(y, 3)
    } else {
        shape = 1 / (1 + y * y)
    }
}
"""


def _shape_numpy(x, b=-30.0, q=1.5):
    y = (x - b) / 10
    return np.where((y < -1) & (x < 0), np.exp(y) * np.abs(y) ** q,
                    np.where(y >= 2, np.log1p(np.maximum(y, -0.5)) + np.maximum(y, 0) ** 2 / 4
                             + np.sqrt(np.maximum(y, 0)) + np.tanh(y) + np.maximum(y, 3),
                             1 / (1 + y * y)))


def test_if_elseif_else_functions_and_builtins():
    cls = nmodl.load(FEATURES_MOD, register=False)
    mech = cls()
    x = jnp.asarray(np.concatenate([np.linspace(-100, 60, 161), [-40.0, -10.0, 0.0]]))
    p = {k: jnp.full_like(x, val) for k, val in cls.params.items()}
    vals = mech._vars(x, {"w": jnp.zeros_like(x)}, p, {})
    got = np.asarray(mech.shape(vals, x))
    with np.errstate(invalid="ignore"):
        np.testing.assert_allclose(got, _shape_numpy(np.asarray(x)), rtol=1e-13)
    # cnexp of a linear equation is exact: w relaxes to shape(v) with time constant a
    v = jnp.full(3, -45.0)
    pv = {k: jnp.full(3, val) for k, val in cls.params.items()}
    w = mech.advance(v, {"w": jnp.full(3, 0.5)}, pv, {}, 0.7)["w"]
    target = _shape_numpy(-45.0)
    np.testing.assert_allclose(w, target + (0.5 - target) * np.exp(-0.7 / 2.0), rtol=1e-13)


NUMBERS_MOD = """
NEURON { SUFFIX numbers NONSPECIFIC_CURRENT i RANGE g }
CONSTANT { c = -8  f = 3  x = 2 }
PARAMETER { g = 0.001 (S/cm2) <0.01, 1> }
ASSIGNED { v (mV) i (mA/cm2) }
STATE { root count }
BREAKPOINT { SOLVE st METHOD cnexp  i = g * (v + 65) }
INITIAL {
    root = c^(1/3)
    count = (v < -20) + (v < 0) + (v > 0 || v < 10) + !(v > 0) + (f == 3)*x
}
DERIVATIVE st { root' = 0  count' = 0 }
"""


def test_numbers_as_in_c():
    """Comparisons and logic are 1 or 0 (bools would add as OR), a negative base to a
    fractional power is NaN (C's pow; Python's would be complex), CONSTANTs named like
    the generated code's names (f, x) keep their values, and PARAMETER limits are not
    enforced (NEURON's are GUI hints: this default lies outside them)."""
    cls = nmodl.load(NUMBERS_MOD, register=False)
    s = cls().steady_state(jnp.asarray([-70.0, -10.0, 5.0]), {"g": jnp.full(3, 0.001)},
                           {"celsius": 6.3, "dt": 0.025})
    assert s["root"].dtype == jnp.float64 and np.isnan(np.asarray(s["root"])).all()
    np.testing.assert_array_equal(s["count"], [1 + 1 + 1 + 1 + 2, 0 + 1 + 1 + 1 + 2, 0 + 0 + 1 + 0 + 2])
    cell = dx.Cell.from_sections([{"length": 10.0, "diam": 10.0, "parent": -1, "region": "soma"}])
    cell.insert(cls)
    cell.set("numbers.g", 5.0)  # outside <0.01, 1>, as NEURON allows
    cell.record("v")
    assert np.isfinite(np.asarray(dx.simulate(cell, 1.0, 0.025).traces)).all()


# --- differentiable, jitted, in every PARAMETER -------------------------------------------------

def _rollout_loss(cls, v, params, steps=40, dt=0.025):
    mech = cls()
    env = {"celsius": jnp.asarray(22.0), "ena": jnp.full_like(v, 50.0),
           "ek": jnp.full_like(v, -85.0)}
    s = mech.steady_state(v, params, env)

    def body(s, _):
        s = mech.advance(v + 40.0, s, params, env, dt)
        return s, None

    s, _ = jax.lax.scan(body, s, None, length=steps)
    cur = mech.current(v + 40.0, s, params, env)
    return sum(jnp.sum(c) for c in cur.values())


@pytest.mark.parametrize("mod", ["hhx", "kin3", "nadi", "rungex", "hpx"])
def test_gradients_in_every_parameter(mod):
    cls = nmodl.load(CASES / f"{mod}.mod", register=False)
    v = jnp.asarray([-70.0, -60.0])
    params = {k: jnp.full(2, x if x != 0 else 0.1) for k, x in cls.params.items()}
    loss = jax.jit(lambda p: _rollout_loss(cls, v, p))
    grad = jax.jit(jax.grad(lambda p: _rollout_loss(cls, v, p)))(params)
    for k, g in grad.items():
        g = np.asarray(g)
        assert np.isfinite(g).all(), k
        h = 1e-6 * max(abs(float(params[k][0])), 1e-3)
        up = {**params, k: params[k] + h}
        down = {**params, k: params[k] - h}
        fd = (float(loss(up)) - float(loss(down))) / (2 * h)
        assert g.sum() == pytest.approx(fd, rel=1e-5, abs=1e-12), (k, g.sum(), fd)


OVERFLOW_GUARD = """
NEURON { SUFFIX nastep USEION na READ ena WRITE ina RANGE gbar, vh, k }
UNITS { (mA) = (milliamp) (mV) = (millivolt) (S) = (siemens) }
PARAMETER { gbar = 1e-4 (S/cm2) vh = -30 (mV) k = 0.05 (mV) }
ASSIGNED { v (mV) ena (mV) ina (mA/cm2) }
BREAKPOINT { ina = gbar*sigm(-(v - vh)/k)*(v - ena) }
FUNCTION sigm(x) {
    if (x > 700) {
        sigm = 0
    } else {
        sigm = 1/(1 + exp(x))
    }
}
"""


def test_an_exp_overflow_guard_keeps_gradients_finite():
    """Both branches of an IF are computed: the one not taken overflows exp (v far below vh
    with k = 0.05 mV). exp is NEURON's hoc_Exp, constant beyond +-700, so its derivative
    there is 0, not inf (0 * inf would make every gradient NaN)."""
    cls = nmodl.load(OVERFLOW_GUARD, register=False)
    v = jnp.asarray([-70.0, -30.5, -29.9])  # x = 800 (guarded), 10, -2

    def loss(p):
        return jnp.sum(cls().current(v, {}, p, {"ena": jnp.full(3, 50.0)})["na"] ** 2)

    params = {k: jnp.full(3, x) for k, x in cls.params.items()}
    grad = jax.grad(loss)(params)
    for k in params:
        h = 1e-6 * abs(float(params[k][0]))
        fd = (float(loss({**params, k: params[k] + h}))
              - float(loss({**params, k: params[k] - h}))) / (2 * h)
        assert np.isfinite(np.asarray(grad[k])).all(), k
        assert float(grad[k].sum()) == pytest.approx(fd, rel=1e-5), k
    ina = cls().current(v, {}, params, {"ena": jnp.full(3, 50.0)})["na"]
    assert float(ina[0]) == 0.0  # the guard's branch
    sigm = 1 / (1 + np.exp(-(np.array([-30.5, -29.9]) + 30) / 0.05))
    np.testing.assert_allclose(ina[1:], 1e-4 * sigm * (np.array([-30.5, -29.9]) - 50.0),
                               rtol=1e-12)


def test_exp_is_neurons_hoc_exp():
    """nocmodl compiles exp as hoc_Exp: 0 below -700, exp(700) above 700 (h.exp is the
    same function)."""
    from dendrax.nmodl import runtime as rt

    x = np.array([-800.0, -700.5, -699.5, 0.0, 1.0, 699.5, 700.5, 1e4])
    ours = np.asarray(rt.exp(jnp.asarray(x)))
    want = np.where(x < -700, 0.0, np.exp(np.minimum(x, 700.0)))
    np.testing.assert_allclose(ours, want, rtol=1e-15, atol=0)
    assert np.all(np.asarray(jax.vmap(jax.grad(rt.exp))(jnp.asarray(x)))[[0, 1, 6, 7]] == 0)
    neuron = pytest.importorskip("neuron")
    for xi, yi in zip(x[1:-1], ours[1:-1]):
        assert neuron.h.exp(xi) == pytest.approx(yi, rel=1e-15, abs=0)


def test_gradient_through_a_simulation():
    cls = nmodl.load(CASES / "hhx.mod", register=False)
    cell = dx.Cell.from_sections([{"length": 20.0, "diam": 20.0, "parent": -1, "region": "soma"}])
    cell.insert(cls)
    cell.iclamp(cell.soma(), delay=1.0, dur=5.0, amp=0.2)
    cell.record("v")

    def loss(params):
        return dx.simulate(cell, 10.0, 0.025, params=params, v_init=-65.0, celsius=6.3).traces.sum()

    params = cell.params
    g = jax.grad(loss)(params)["channels"]["hhx"]
    assert all(np.isfinite(np.asarray(x)).all() for x in g.values())
    assert abs(float(g["gnabar"][0])) > 0


def test_reading_nmodl_headless_prints_no_display_warning():
    """NEURON, loaded to parse NMODL on a machine without a display, says nothing of it;
    the environment is left as it was."""
    import os

    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "NEURON_MODULE_OPTIONS")}
    code = ("import os, dendrax.nmodl as m; m.load(%r); "
            "print('left:', os.environ.get('NEURON_MODULE_OPTIONS'))" % str(CASES / "hhx.mod"))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    assert "DISPLAY" not in out.stdout + out.stderr and "graphics" not in out.stdout + out.stderr
    assert out.stdout.strip().endswith("left: None")


def test_a_latin1_file_loads_as_its_utf8_twin(tmp_path):
    """ModelDB's older .mod files are often Latin-1 (accented names in comments)."""
    text = (CASES / "hhx.mod").read_text()
    latin = "COMMENT\nauthor: Jos\u00e9 M\u00fcller\nENDCOMMENT\n" + text
    for encoding in ("latin-1", "utf-8"):
        (tmp_path / encoding).mkdir()
        (tmp_path / encoding / "hhx.mod").write_bytes(latin.encode(encoding))
    assert nmodl.source(tmp_path / "latin-1" / "hhx.mod").replace("latin-1", "utf-8") == \
        nmodl.source(tmp_path / "utf-8" / "hhx.mod")


def test_a_parameter_breakpoint_sets_is_an_assigned_variable():
    """Migliore's cal2.mod declares ggk a PARAMETER and sets it in BREAKPOINT: NEURON never
    reads the value given to it and records it (tests/nmodl_cases/precx.mod's gm against
    NEURON); it was a parameter whose setting did nothing, and not recordable."""
    text = (CASES / "precx.mod").read_text()
    mech = nmodl.load(text, register=False)
    assert "gm" not in mech.params and "gm" in assigned_names(mech())
    cell = dx.Cell.from_sections([{"length": 20.0, "diam": 20.0, "region": "soma"}])
    cell.insert(mech)
    with pytest.raises(ValueError, match="gm"):
        cell.set("precx.gm", 1.0)


def test_a_global_kept_between_calls_is_said_to_be_per_instance():
    """Baker's Exp2NMDAR: GLOBAL total, summed in NET_RECEIVE, is one value in NEURON for
    every instance and one per synapse here (an audit found it silent); state_discontinuity
    (A, x) is the assignment NEURON 9 makes of it (tests/nmodl_cases/exp2synx.mod against
    NEURON)."""
    text = (CASES / "exp2synx.mod").read_text().replace(
        "    RANGE g\n", "    RANGE g\n    GLOBAL total\n").replace(
        "    factor\n", "    factor\n    total (uS)\n").replace(
        "NET_RECEIVE(weight (uS)) {\n", "NET_RECEIVE(weight (uS)) {\n    total = total + weight\n")
    assert "total = total + weight" in text and "GLOBAL total" in text
    with pytest.warns(UserWarning, match=r"GLOBAL total, kept from one call to the next, is one "
                                         r"value per synapse in dendrax; NEURON's is one value"):
        syn = nmodl.load(text, register=False)
    assert "total" in syn.states
