"""NMODL import refuses what it cannot import as NEURON runs it: each construct named with
its line, all of a file's problems at once (dendrax.nmodl's semantics, describe and codegen
checks); and what it must not refuse or misread (a file's own names, prose)."""

from __future__ import annotations

import warnings
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

pytest.importorskip("neuron.nmodl", reason="NEURON's NMODL framework (dendrax[nmodl])")

import dendrax as dx  # noqa: E402
from dendrax import nmodl  # noqa: E402
from dendrax.nmodl import NmodlError  # noqa: E402
from dendrax.nmodl import registry as nmodl_registry  # noqa: E402

HERE = Path(__file__).resolve().parent
CASES = HERE / "nmodl_cases"


@pytest.fixture(autouse=True)
def _forget_registrations():
    yield
    nmodl_registry.unregister()


# --- refusals, with the construct and the line ------------------------------------------------

BASE = """NEURON {{
    SUFFIX bad
    USEION k READ ek WRITE ik
    {neuron}
}}
PARAMETER {{ gbar = 0.01 (S/cm2) }}
ASSIGNED {{ v (mV) ek (mV) ik (mA/cm2) }}
STATE {{ n }}
BREAKPOINT {{
    SOLVE st METHOD {method}
    ik = gbar * n * (v - ek)
}}
DERIVATIVE st {{
    {deriv}
}}
{extra}
"""


def _bad(neuron="", method="cnexp", deriv="n' = (1 - n) / 5", extra=""):
    return BASE.format(neuron=neuron, method=method, deriv=deriv, extra=extra)


REFUSALS = {
    "verbatim": (_bad(extra="PROCEDURE f() {\nVERBATIM\n  nrn_flag = 1;\nENDVERBATIM\n}"), 17,
                 "VERBATIM"),
    # a FUNCTION's C return would replace its value (a PROCEDURE's closing "return 0;" is
    # read as the no-op it is, tests/nmodl_cases/mainenx.mod)
    "verbatim return in a function": (
        _bad(extra="FUNCTION g() {\ng = 1\nVERBATIM\n  return 0;\nENDVERBATIM\n}"), 18,
        "VERBATIM"),
    "pointer": (_bad(neuron="POINTER pp"), 4, "POINTER"),
    "function_table": (_bad(extra="FUNCTION_TABLE tab(x)"), 16, "FUNCTION_TABLE"),
    "watch": (_bad(extra="NET_RECEIVE(w) {\n  WATCH (v > 0) 2\n}"), 17, "WATCH"),
    "net_send in INITIAL": (_bad(extra="INITIAL {\n  net_send(1, 1)\n}"), 17,
                            "net_send outside NET_RECEIVE is not supported"),
    "time": (_bad(deriv="n' = (1 - n) / 5 + t"), 14, "'t'"),
    # at its use, not at the INDEPENDENT declaration (line 16 here)
    "time after INDEPENDENT": (_bad(deriv="n' = (1 - n) / 5",
                                    extra="INDEPENDENT { t FROM 0 TO 1 WITH 1 (ms) }\n"
                                          "FUNCTION f() { f = t }"), 17, "'t'"),
    "time after a multi-line INDEPENDENT": (_bad(deriv="n' = (1 - n) / 5",
                                                 extra="INDEPENDENT {\n  t FROM 0 TO 1 WITH 1 (ms)"
                                                       "\n}\nFUNCTION f() { f = t }"), 19, "'t'"),
    "kinetic flux": (_bad(extra="FUNCTION f() { f = f_flux }"), 16,
                     "'f_flux' (a KINETIC reaction's flux) is not supported"),
    # (reported at line 0: the line was found by "r =", not "r[0] =")
    "array element assigned": (_bad(extra="PROCEDURE p() {\n  LOCAL r[2]\n  r[0] = 1\n}"), 18,
                               "assignment to an array element r[...]"),
    # (read, or its current written, it is the mechanism's own: tests/test_nmodl.py)
    "unknown ion's concentration written": (_bad(neuron="USEION h READ eh WRITE hi VALENCE 1"),
                                            4, "USEION h WRITE hi: dendrax knows the ions"),
    "unknown ion's current read": (_bad(neuron="USEION h READ ih VALENCE 1"), 4,
                                   "USEION h READ ih: dendrax knows the ions"),
    "nonlinear cnexp": (_bad(deriv="n' = (1 - n) / 5 - n * n"), 14, "cnexp needs n' linear"),
    "method": (_bad(method="newton"), 10, "METHOD newton: DERIVATIVE blocks are solved with "
                                              "cnexp, derivimplicit, euler or runge"),
    "undeclared": (_bad(deriv="n' = (ninf - n) / 5"), 14, "'ninf' is used but not declared"),
    "array": (_bad(extra="ASSIGNED { arr[3] }"), 16, "array"),
    "syntax": (_bad(deriv="n' = (1 - n) / "), 15, "syntax error"),
    # nocmodl refuses these; loading them would let the later declaration silently win
    "two suffixes": (_bad(neuron="SUFFIX other"), 4, "a second SUFFIX (other) after bad"),
    "parameter twice": (_bad(extra="PARAMETER { gbar = 0.02 (S/cm2) }"), 16,
                        "gbar is declared twice in PARAMETER"),
    "parameter twice on one line": (_bad(extra="PARAMETER { c = 1 c = 2 }"), 16,
                                    "c is declared twice in PARAMETER"),
    "parameter and state": (_bad(extra="PARAMETER { n = 1 }"), 16,
                            "n is declared twice (STATE, then PARAMETER)"),
    "empty limits": (_bad(extra="PARAMETER { a = 0.5 <1, 0> }"), 16, "limits <1, 0> admit no value"),
    "infinite": (_bad(extra="PARAMETER { big = 1e400 }"), 16, "big = inf: not a finite number"),
    # nocmodl compiles these to C; dendrax inlines while tracing, so it would never end
    "recursion": (_bad(extra="FUNCTION fact(k) {\n  if (k > 1) { fact = k * fact(k - 1) } else { fact = 1 }\n}"),
                  16, "FUNCTION fact calls itself (fact -> fact)"),
    "mutual recursion": (_bad(extra="FUNCTION f(x) { f = g(x) }\nPROCEDURE g(x) { f(x) }"), 16,
                         "FUNCTION f calls itself (f -> g -> f)"),
    # bad-input audit: each of these loaded and simulated something else than NEURON
    "unterminated comment": (_bad(extra="COMMENT\n no end"), 16, "COMMENT has no ENDCOMMENT"),
    "unterminated verbatim": (_bad(extra="VERBATIM\n x = 1;"), 16,
                              "VERBATIM has no ENDVERBATIM"),
    "reading a derivative": (_bad(deriv="n' = (1 - n) / 5 - 0 * n'"), 14,
                             "reading a derivative n'"),
    "second breakpoint": (_bad(extra="BREAKPOINT { ik = 0 }"), 16,
                          "a second BREAKPOINT block (the first at line 9): merge them"),
    "second initial": (_bad(extra="INITIAL { n = 0 }\nINITIAL { n = 1 }"), 17,
                       "a second INITIAL block (the first at line 16)"),
    "function twice": (_bad(extra="FUNCTION f() { f = 1 }\nFUNCTION f() { f = 2 }"), 17,
                       "FUNCTION f is defined twice (the first at line 16)"),
    "function and procedure": (_bad(extra="FUNCTION f() { f = 1 }\nPROCEDURE f() { }"), 17,
                               "PROCEDURE f is defined twice (the first at line 16)"),
    "derivative twice": (_bad(extra="DERIVATIVE st { n' = -n }"), 16,
                         "DERIVATIVE st is defined twice (the first at line 13)"),
    "constant twice": (_bad(extra="CONSTANT { c = 1 c = 2 }"), 16,
                       "c is declared twice in CONSTANT"),
    "constant and parameter": (_bad(extra="CONSTANT { gbar = 1 }"), 16,
                               "gbar is declared twice (PARAMETER, then CONSTANT)"),
    "infinite constant": (_bad(extra="CONSTANT { big = 1e400 }"), 16,
                          "CONSTANT big = inf: not a finite number"),
    "infinite unit factor": (_bad(extra="UNITS { big = 1e400 (mV) }"), 16,
                             "unit factor big = inf: not a finite number"),
    "undeclared FARADAY": (_bad(deriv="n' = (1 - n) / 5 + 0 * FARADAY"), 14,
                           "'FARADAY' is used but not declared: define it in the UNITS block, "
                           "e.g. FARADAY = (faraday) (coulombs)"),
    "fractional valence": (_bad(neuron="USEION ca READ eca VALENCE 2.5"), 4,
                           "USEION ca VALENCE 2.5: dendrax's ca has charge 2"),
    "procedure as a value": (_bad(extra="PROCEDURE p() { }\nFUNCTION f() { f = p() }"), 17,
                             "PROCEDURE p is used as a value (NEURON gives 0)"),
    # v moved where the current is computed (NEURON's di/dv evaluates it twice, at v and
    # v + 0.001: a conditional move differs, 12 mV here once); SOLVE'd blocks may move it
    "v moved in BREAKPOINT": (BASE.format(neuron="", method="cnexp", deriv="n' = (1 - n) / 5",
                                          extra="PROCEDURE p() {\n  if (v == -70) { v = v + 10 }\n}")
                              .replace("ik = gbar", "p()\n    ik = gbar"), 18,
                              "BREAKPOINT assigns v (in PROCEDURE p): NEURON takes the current's "
                              "di/dv"),
    # statements before SOLVE run with the currents (tests/nmodl_cases/presolvex.mod); what
    # they set the SOLVE'd block may not read (NEURON's sees the step's starting value)
    "set before SOLVE, read by it": (
        _bad(deriv="n' = (q - n) / 5", extra="ASSIGNED { q }").replace(
            "BREAKPOINT {\n    SOLVE", "BREAKPOINT {\n    q = 1\n    SOLVE"), 10,
        "'q' is set in BREAKPOINT and read in SOLVE before being set there"),
    # a variable set before SOLVE under an IF only, read after it
    "set before SOLVE on some paths": (
        _bad(extra="ASSIGNED { k }").replace(
            "BREAKPOINT {\n    SOLVE", "BREAKPOINT {\n    if (v > -50) { k = 2 }\n    SOLVE")
        .replace("ik = gbar * n", "ik = k * gbar * n"), 10,
        "'k' is set in BREAKPOINT and read in BREAKPOINT before being set there: dendrax "
        "computes currents without side effects (set it on every path before BREAKPOINT "
        "reads it)"),
    # an unknown ion's variable read is the ion's: NEURON's INITIAL sets a copy that
    # BREAKPOINT does not see (it was carried: 2.2 mV off)
    "unknown ion's variable assigned": ("""
NEURON { SUFFIX hh2 USEION h READ eh WRITE ih VALENCE 1 RANGE g }
PARAMETER { g = 1e-3 (S/cm2) }
ASSIGNED { v (mV) eh (mV) ih (mA/cm2) }
INITIAL {
    eh = -30
}
BREAKPOINT { ih = g*(v - eh) }
""", 6, "assignment to eh, which USEION h only READs"),
    # NEURON computes eh from the concentrations where a mechanism reads them (its ion style)
    "unknown ion's reversal read with a concentration": (
        _bad(neuron="USEION h READ eh, ho WRITE ih VALENCE 1"), 4,
        "USEION h READ eh, ho: NEURON computes eh from hi and ho (Nernst)"),
    # as nocmodl: every SOLVE of a block solved to its STEADYSTATE by derivimplicit uses it
    "runge with STEADYSTATE derivimplicit": (
        _bad(method="runge").replace("SOLVE st METHOD runge",
                                     "SOLVE st METHOD runge").replace(
            "STATE { n }", "STATE { n }\nINITIAL { SOLVE st STEADYSTATE derivimplicit }"), 9,
        "SOLVE st STEADYSTATE derivimplicit with BREAKPOINT's SOLVE st METHOD runge"),
    # a peak-voltage recorder (Hemond's distr.mod): a recording in dendrax
    "no current, no concentration": ("""
NEURON { SUFFIX ds RANGE vmax }
ASSIGNED { v (mV) vmax }
INITIAL { vmax = v }
BREAKPOINT { if (v > vmax) { vmax = v } }
""", 2, 'the mechanism writes no current and no concentration (one that only keeps a value, '
        'such as a peak-voltage recorder, is a recording in dendrax: cell.record("v", '
        'locations, reduce="max"))'),
    # a pool whose dummy current is dropped runs its BREAKPOINT in the state update, where v
    # is not the value NEURON's current evaluation saw
    "dropped dummy current, BREAKPOINT reading v": ("""
NEURON { SUFFIX pl USEION ca READ ica WRITE cai NONSPECIFIC_CURRENT i RANGE vmax }
UNITS { (mM) = (milli/liter) (mA) = (milliamp) }
ASSIGNED { ica (mA/cm2) i (mA/cm2) v (mV) vmax }
STATE { cai (mM) }
INITIAL { cai = 1e-4 vmax = v }
BREAKPOINT {
    SOLVE st METHOD cnexp
    if (v > vmax) { vmax = v }
    i = 0
}
DERIVATIVE st { cai' = -ica - (cai - 1e-4)/5 }
""", 7, "pl's BREAKPOINT, run with its dropped current in NEURON, reads v"),
    "statements before an ion pool's SOLVE": ("""
NEURON { SUFFIX pl USEION ca READ ica WRITE cai }
UNITS { (mM) = (milli/liter) (mA) = (milliamp) }
ASSIGNED { ica (mA/cm2) q }
STATE { cai (mM) }
INITIAL { cai = 1e-4 }
BREAKPOINT {
    q = 1
    SOLVE st METHOD cnexp
}
DERIVATIVE st { cai' = -ica - (cai - 1e-4)/5 }
""", 9, "statements before SOLVE in an ion pool's BREAKPOINT are not supported"),
    # the simulator's values other than v (which a block may move: vnudgex.mod)
    "celsius assigned": (_bad(deriv="celsius = 30\n    n' = (1 - n) / 5"), 14,
                         "assignment to 'celsius' is not supported"),
    # names that mean two things (a probe: each loaded, and ran another model)
    "ion current also nonspecific": (_bad(neuron="NONSPECIFIC_CURRENT ik"), 4,
                                     "ik is USEION k's current and a NONSPECIFIC_CURRENT"),
    "a FUNCTION named as a reserved function": (_bad(extra="FUNCTION exp(x) { exp = 0 }"), 16,
                                                "FUNCTION exp: exp is a reserved function name"),
    "a FUNCTION named as a RANGE variable": (_bad(neuron="RANGE f", extra="FUNCTION f(x) { f = x }"),
                                             16, "f is both a RANGE variable and a FUNCTION"),
    "a FUNCTION named as a PARAMETER": (_bad(extra="FUNCTION gbar(x) { gbar = x }"), 16,
                                        "gbar is both a PARAMETER and a FUNCTION"),
    "a PROCEDURE named as a STATE": (_bad(extra="PROCEDURE n() { }"), 16,
                                     "n is both a STATE and a PROCEDURE"),
    "a second USEION of one ion": (_bad(neuron="USEION ttx READ ttxo VALENCE 1\n"
                                               "    USEION ttx READ ttxi VALENCE 2"), 5,
                                   "a second USEION ttx: name all of ttx's variables in one"),
    "a USEION variable not the ion's": (_bad().replace("READ ek WRITE", "READ ekk WRITE"), 3,
                                        "USEION k READ ekk: ekk is not a variable of the ion k "
                                        "(its variables: ek, ki, ko, ik)"),
    "a reserved SUFFIX": (_bad().replace("SUFFIX bad", "SUFFIX cai"), 2,
                          "mechanism name 'cai' is reserved"),
    "a reserved POINT_PROCESS": (_bad().replace("SUFFIX bad", "POINT_PROCESS weight")
                                 .replace("(mA/cm2)", "(nA)"), 2,
                                 "synapse name 'weight' is reserved"),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_refused_with_construct_and_line(case):
    text, line, words = REFUSALS[case]
    with pytest.raises(NmodlError) as err:
        nmodl.load(text, register=False)
    assert any(ln == line and words in msg for ln, msg in err.value.problems), err.value.problems
    assert f":{line}: " in str(err.value)
    assert nmodl.check(text), "check reports the problem too"


def test_names_nocmodl_takes_are_taken_and_each_refusal_is_one_problem():
    """A file may define its own exprelr, expm1, fmin or fmax (nocmodl does not reserve
    them): its calls run the file's; a USEION variable not the ion's is one problem (it was
    also "WRITE kk is not supported", and for an unknown ion a made-up READ ittx)."""
    own = _bad(extra="FUNCTION fmax(a, b) { fmax = a }").replace(
        "ik = gbar * n * (v - ek)", "ik = gbar * n * fmax(v - ek, 1e9)")
    runs = []
    for text in (own, _bad()):  # the file's fmax(a, b) = a: the plain current
        cell = dx.Cell.from_sections([{"length": 20.0, "diam": 20.0, "region": "soma"}])
        cell.insert(nmodl.load(text, register=False)).record("v", cell.soma())
        runs.append(np.asarray(dx.simulate(cell, 2.0, 0.025, v_init=-60.0).traces))
    np.testing.assert_array_equal(runs[0], runs[1])
    for text, word in ((_bad().replace("WRITE ik", "WRITE ik, kk"), "kk is not a variable"),
                       (_bad(neuron="USEION ttx READ ttxo, foo"), "foo is not a variable")):
        problems = nmodl.check(text)
        assert len(problems) == 1 and word in problems[0][1], problems


def test_a_refused_construct_is_one_problem():
    """Audit leftovers: an ARTIFICIAL_CELL was also told it writes no current and that its
    NET_RECEIVE sits in a density mechanism; printf's format string was a second problem; an
    ELECTRODE_CURRENT was also told a POINT_PROCESS needs a current."""
    artificial = """NEURON { ARTIFICIAL_CELL ac RANGE tau }
    PARAMETER { tau = 10 (ms) }
    ASSIGNED { m }
    NET_RECEIVE (w) { m = m + w }
    """
    printf = _bad().replace("ik = gbar * n * (v - ek)",
                            'ik = gbar * n * (v - ek)\n    printf("v %g\\n", v)')
    electrode = """NEURON { POINT_PROCESS stim ELECTRODE_CURRENT i RANGE amp }
    PARAMETER { amp = 0.1 (nA) }
    ASSIGNED { i (nA) }
    BREAKPOINT { i = -amp }
    """
    for text, words in ((artificial, "ARTIFICIAL_CELL is not supported"),
                        (electrode, "ELECTRODE_CURRENT is not supported (electrodes are "
                                    "built in"),
                        (printf, "printf is not supported")):
        problems = nmodl.check(text)
        assert len(problems) == 1 and words in problems[0][1], problems


def test_refused_where_the_whole_file_decides():
    """Audit: a current set on some paths only (0 on the others, where NEURON keeps its
    last value), an expression too deep to translate (a RecursionError), a state-dependent
    << flux in a STEADYSTATE solve, v read in NET_RECEIVE through a FUNCTION, a CONSTANT
    named as the mechanism: each an NmodlError, nothing loaded."""
    if_only = _bad().replace("ik = gbar * n * (v - ek)", "if (v > -60) { ik = gbar * n * (v - ek) }")
    deep = _bad().replace("ik = gbar * n * (v - ek)", "ik = " + " + ".join(["n"] * 3000))
    flux = """NEURON { SUFFIX flux NONSPECIFIC_CURRENT i }
    ASSIGNED { v (mV) i (mA/cm2) }
    STATE { A B }
    INITIAL { SOLVE k STEADYSTATE sparse }
    BREAKPOINT { SOLVE k METHOD sparse  i = 0.001*B*(v + 70) }
    KINETIC k { ~ A <-> B (0.3, 0.1)  ~ B << (-0.02*B) }
    """
    # non-linear (a buffer): NEURON's steady state breaks its CONSERVE (B 12959 of 0.5 mM)
    buffered = """NEURON { SUFFIX bufss USEION ca READ ica WRITE cai }
    UNITS { (mA) = (milliamp) (mM) = (milli/liter) FARADAY = (faraday) (coulombs) }
    PARAMETER { kon = 500 (/mM-ms) koff = 0.05 (/ms) btot = 0.5 (mM) taur = 50 (ms) }
    ASSIGNED { ica (mA/cm2) }
    STATE { cai (mM) B (mM) CaB (mM) }
    INITIAL { cai = 1e-3  B = btot  CaB = 0  SOLVE kin STEADYSTATE sparse }
    BREAKPOINT { SOLVE kin METHOD sparse }
    KINETIC kin {
      ~ cai << (-(10000)*ica/(2*FARADAY) - (cai - 5e-5)/taur)
      ~ cai + B <-> CaB (kon, koff)
      CONSERVE B + CaB = btot
    }
    """
    through = """NEURON { POINT_PROCESS through NONSPECIFIC_CURRENT i }
    ASSIGNED { v (mV) i (nA) }
    STATE { g (uS) }
    BREAKPOINT { SOLVE state METHOD cnexp  i = g*v }
    DERIVATIVE state { g' = -g }
    NET_RECEIVE(w (uS)) { g = g + w*vdep() }
    FUNCTION vdep() { vdep = 1/(1 + exp(-(v + 60)/5)) }
    """
    named = _bad().replace("SUFFIX bad", "SUFFIX cst") + "CONSTANT { cst = 2 }"
    for text, words in ((if_only, "BREAKPOINT sets the current ik on some paths only"),
                        (deep, "an expression nested too deeply, or too long a sum or product"),
                        (flux, "a << flux that depends on a state, in a STEADYSTATE solve"),
                        (buffered, "a << flux that depends on a state, in a STEADYSTATE solve"),
                        (through, "'v' in NET_RECEIVE (through FUNCTION vdep)"),
                        (named, "the CONSTANT or UNITS factor cst has the mechanism's name")):
        with pytest.raises(NmodlError) as err:
            nmodl.load(text, register=False)
        assert any(words in msg for _, msg in err.value.problems), err.value.problems


def test_names_the_generated_code_uses_are_kept_apart():
    """A TITLE with quotes and backslashes, SUFFIX rt (the runtime's module name), a
    FUNCTION named assigned, a CONSTANT named Channel: each loads and runs as the same
    file with plain names does (they broke the generated Python)."""
    plain = _bad().replace("SUFFIX bad", "SUFFIX plain")
    runs = []
    for text in (plain,
                 'TITLE Kv "A-type" \\ \n' + _bad().replace("SUFFIX bad", "SUFFIX rt"),
                 _bad(extra="FUNCTION assigned(x) { assigned = x }").replace(
                     "SUFFIX bad", "SUFFIX fas").replace("(1 - n) / 5", "(assigned(1) - n) / 5"),
                 _bad(extra="CONSTANT { Channel = 5 }").replace("SUFFIX bad", "SUFFIX cch")
                 .replace("(1 - n) / 5", "(1 - n) / Channel")):
        mech = nmodl.load(text, register=False)
        cell = dx.Cell.from_sections([{"length": 10.0, "diam": 10.0, "region": "soma"}])
        cell.insert(mech).record(f"{mech.name}.n")
        runs.append(np.asarray(dx.simulate(cell, 2.0, 0.025).traces))
    assert np.ptp(runs[0]) > 0.1
    for r in runs[1:]:
        np.testing.assert_array_equal(r, runs[0])


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 5).flatmap(lambda n: st.lists(
    st.lists(st.integers(0, n - 1), max_size=3), min_size=n, max_size=n)))
def test_recursion_refused_exactly_on_call_cycles(callees):
    """Random call graphs of FUNCTIONs: those on a cycle (reachable from themselves, by a
    transitive closure computed here) are refused, and only those."""
    n = len(callees)
    funcs = "\n".join(f"FUNCTION f{i}(x) {{ f{i} = x" + "".join(f" + f{j}(x)" for j in calls)
                      + " }" for i, calls in enumerate(callees))
    reach = np.zeros((n, n), bool)
    for i, calls in enumerate(callees):
        reach[i, calls] = True
    for _ in range(n):
        reach |= (reach.astype(int) @ reach.astype(int)) > 0
    cyclic = {f"f{i}" for i in range(n) if reach[i, i]}
    text = _bad(extra=funcs)
    problems = nmodl.check(text)
    flagged = {m.split()[1] for _, m in problems if "calls itself" in m}
    assert flagged == cyclic, (callees, problems)
    if not cyclic:
        nmodl.load(text, register=False)  # the rest of the file is fine


def test_every_problem_is_reported_at_once():
    text = _bad(neuron="POINTER pp", deriv="n' = (1 - n) / 5 + t")
    problems = nmodl.check(text)
    assert {ln for ln, _ in problems} >= {4, 14}


RUNAWAY = """NEURON {
    SUFFIX runaway
    NONSPECIFIC_CURRENT i
    RANGE k
}
PARAMETER { k = 1e6 (/ms) }
ASSIGNED { v (mV) i (mA/cm2) }
STATE { m }
INITIAL { m = 1 }
BREAKPOINT {
    SOLVE st METHOD derivimplicit
    i = 1e-6 * m * (v + 65)
}
DERIVATIVE st { m' = k * m * m * m }
"""


def test_newton_that_does_not_converge_gives_nan_not_a_wrong_state():
    """derivimplicit's 8 Newton iterations from m = 1 on m' = k m^3 (k = 1e6/ms): the
    implicit step's root (m ~ -0.034) is far, and the last iterate still moves by a third.
    dendrax returns NaN for that compartment (a finite state that solves nothing would be
    a silent wrong answer; NEURON iterates up to 50 times and stops with "not converged"
    beyond), while a mild k converges to the root of the backward-Euler equation."""
    cls = nmodl.load(RUNAWAY, register=False)
    mech, v = cls(), jnp.full(2, -65.0)
    env = {"celsius": jnp.asarray(6.3)}
    for k, converged in ((1e6, False), (0.01, True)):
        params = {"k": jnp.full(2, k)}
        s = mech.advance(v, mech.steady_state(v, params, env), params, env, 0.025)
        if converged:
            m = np.asarray(s["m"])  # backward Euler: m - 1 = dt k m^3
            np.testing.assert_allclose(m - 1.0, 0.025 * k * m ** 3, rtol=1e-12)
        else:
            assert np.isnan(np.asarray(s["m"])).all()
    # with more iterations (docs/nmodl.md) the stiff step converges too
    cls.newton_iterations = 40
    params = {"k": jnp.full(2, 1e6)}
    m = np.asarray(mech.advance(v, mech.steady_state(v, params, env), params, env, 0.025)["m"])
    np.testing.assert_allclose(m - 1.0, 0.025 * 1e6 * m ** 3, rtol=1e-9, atol=1e-12)


def test_missing_file_and_missing_current():
    with pytest.raises(FileNotFoundError, match="no NMODL file"):
        nmodl.load("does/not/exist.mod")
    with pytest.raises(ValueError, match="empty NMODL path or text"):
        nmodl.load("")
    with pytest.raises(TypeError, match="give a path to an NMODL file or its text"):
        nmodl.load(None)
    with pytest.raises(NmodlError, match="writes no current"):
        nmodl.load("NEURON { SUFFIX quiet }\nPARAMETER { a = 1 }\n", register=False)


def test_a_math_function_with_the_wrong_number_of_arguments_is_refused():
    text = (CASES / "hhx.mod").read_text()
    assert "exp(" in text
    bad = text.replace("exp(", "exp(1, ", 1)
    with pytest.raises(NmodlError, match=r"exp\(\) takes 1 argument, got 2"):
        nmodl.source(bad)


def test_a_refused_declaration_still_declares_its_name():
    """An array or non-finite PARAMETER is refused once, where it is declared: no second
    "used but not declared" problem where it is used."""
    text = """NEURON { SUFFIX arr RANGE g NONSPECIFIC_CURRENT i }
PARAMETER { g[3] (S/cm2) big = 1e400 }
ASSIGNED { v (mV) i (mA/cm2) w[2] }
BREAKPOINT { i = g*(v + 70) + big + w }
"""
    with pytest.raises(NmodlError) as err:
        nmodl.load(text, register=False)
    assert [m for _, m in err.value.problems] == [
        "PARAMETER big = inf: not a finite number", "array PARAMETER g[...] is not supported",
        "array ASSIGNED w[...] is not supported"]


def test_names_of_simulator_variables_as_locals_and_arguments_are_theirs():
    """'t' as a FUNCTION's argument or a LOCAL, 'diam' as a point process's LOCAL: the
    file's own names, as nocmodl reads them (they were refused as the time and the
    geometry); 't' as the time is still refused."""
    targ = _bad(extra="FUNCTION f(t) { f = 1 + 0*t }").replace("(1 - n) / 5", "(f(1) - n) / 5")
    tlocal = _bad(deriv="LOCAL t\n    t = 5\n    n' = (1 - n) / t")
    for text in (targ, tlocal):
        assert nmodl.check(text) == []
    pdiam = """NEURON { POINT_PROCESS pdiam NONSPECIFIC_CURRENT i }
    ASSIGNED { v (mV) i (nA) }
    STATE { g (uS) }
    BREAKPOINT { SOLVE st METHOD cnexp  i = g*v }
    DERIVATIVE st { LOCAL diam  diam = 2  g' = -g/diam }
    NET_RECEIVE(w (uS)) { g = g + w }
    """
    syn = nmodl.load(pdiam, register=False)
    for x in (0.5, 1.0):  # its own diam: not the segment's, so at a section's end too
        cell = dx.Cell.ball_and_stick()
        site = cell.section(1)(x)
        cell.synapse(syn, site, spike_times=[1.0], weight=0.01).record("pdiam.g", site)
        res = dx.simulate(cell, 5.0, 0.025)
        t, g = np.asarray(res.t), np.asarray(res["pdiam.g", site])
        after = t > 1.0 + 0.0125
        np.testing.assert_allclose(g[after], 0.01 * np.exp(-(t[after] - 1.0) / 2.0), rtol=1e-12)
    assert any("'t' (time)" in msg for _, msg in nmodl.check(_bad(deriv="n' = (1 - n) / 5 + t")))


def _point(neuron="USEION ca READ cai, eca WRITE ica", current="ica = g*(v - eca)",
           receive="g = g + w"):
    return f"""NEURON {{ POINT_PROCESS pca {neuron} }}
    ASSIGNED {{ v (mV) ica (nA) cai (mM) eca (mV) i (nA) }}
    STATE {{ g (uS) }}
    BREAKPOINT {{ SOLVE st METHOD cnexp  {current} }}
    DERIVATIVE st {{ g' = -g }}
    NET_RECEIVE(w (uS)) {{ {receive} }}
    FUNCTION hot() {{ hot = celsius/10 }}
    """


def test_point_processes_with_ions_refused_only_where_they_cannot_run():
    """A POINT_PROCESS whose only current is an ion's (USEION ca WRITE ica) loads; refused
    with its reason: one writing a concentration (a pool: a SUFFIX's job), one with no
    current, a NET_RECEIVE reading an ion's concentration or celsius, directly or through
    a FUNCTION (on_spike is given neither)."""
    syn = nmodl.load(_point(), register=False)
    assert syn.ions == ("ca",)
    for text, line, words in (
            (_point(neuron="USEION ca READ ica WRITE cai NONSPECIFIC_CURRENT i",
                    current="i = g*v"), 1, "a POINT_PROCESS writing cai (an ion pool)"),
            (_point(neuron="USEION ca READ eca", current="g = g"), 0,
             "a POINT_PROCESS needs a current: a NONSPECIFIC_CURRENT or USEION"),
            (_point(receive="g = g + w*cai"), 6, "'cai' in NET_RECEIVE is not supported"),
            (_point(receive="g = g + w*hot()"), 6,
             "'celsius' in NET_RECEIVE (through FUNCTION hot) is not supported")):
        with pytest.raises(NmodlError) as err:
            nmodl.load(text, register=False)
        assert any(ln == line and words in msg for ln, msg in err.value.problems), \
            err.value.problems


def test_net_receive_arguments_and_time_refused_where_they_cannot_run():
    """NET_RECEIVE's arguments after the weight and t in NET_RECEIVE and INITIAL load (a
    Tsodyks-Markram synapse, tests/test_nmodl_synapses_neuron.py); refused with their reason: an
    argument named as a variable of the mechanism (nocmodl compiles it, and NEURON's
    NET_RECEIVE then sets the argument, never the variable: the synapse never conducts),
    t in BREAKPOINT, the SOLVE'd block or a FUNCTION (also one NET_RECEIVE calls), a
    NET_RECEIVE without arguments."""
    # R, the resources of many Tsodyks-Markram files (ModelDB 82784's NET_RECEIVE(wgt, R,
    # u, tlast, nspike)), as an argument or a LOCAL is not the gas constant: it was refused
    # as "used but not declared"; R read as the file's own name still is
    for receive in ("INITIAL { R = 1 }  g = g + w*R  R = R*0.5", "LOCAL R  R = 2  g = g + w*R"):
        args = "(w (uS), R)" if "INITIAL" in receive else "(w (uS))"
        nmodl.load(_point(receive=receive).replace("(w (uS))", args), register=False)
    with pytest.raises(NmodlError, match="'R' is used but not declared"):
        nmodl.load(_point(receive="g = g + w*R"), register=False)
    syn = nmodl.load(_point(receive="INITIAL { last = t }  g = g + w*exp(-(t - last))  last = t",
                            current="ica = g*(v - eca)").replace("(w (uS))", "(w (uS), last)"),
                     register=False)
    assert syn.per_connection == ("last",) and "last" in syn.states
    for text, words in (
            (_point(receive="g = g + w").replace("(w (uS))", "(w (uS), g)"),
             "the NET_RECEIVE argument g has the name of a variable of the mechanism"),
            (_point(current="ica = g*(v - eca)*t"), "'t' (time) in BREAKPOINT"),
            (_point().replace("g' = -g", "g' = -g*t"), "'t' (time) in DERIVATIVE st"),
            (_point(receive="g = g + w*late()") + "FUNCTION late() { late = t }",
             "'t' (time) in FUNCTION late"),
            (_point().replace("(w (uS))", "()"), "NET_RECEIVE without arguments"),
            (_point(receive="if (flag == 0) { g = g + w }", current="ica = g*(v - eca)*flag"),
             "'flag' outside NET_RECEIVE")):
        with pytest.raises(NmodlError) as err:
            nmodl.load(text, register=False)
        assert any(words in msg for _, msg in err.value.problems), err.value.problems


def test_a_value_breakpoint_sets_for_net_receive_is_kept_unless_it_follows_v():
    """A value BREAKPOINT sets and only NET_RECEIVE reads (BMTK's stp2syn Pmax) is kept from
    the state update for the next events (tests/test_nmodl_synapses_neuron.py: relx.mod against
    NEURON); one computed from v (directly, through an IF or a FUNCTION) is refused, as
    NEURON's events read it at the previous step's v, which dendrax does not keep."""
    base = """NEURON {{ POINT_PROCESS kp NONSPECIFIC_CURRENT i }}
    PARAMETER {{ p0 = 0.3 }}
    ASSIGNED {{ v (mV) i (nA) P q dum }}
    STATE {{ g (uS) n }}
    INITIAL {{ n = 1 }}
    BREAKPOINT {{ SOLVE st METHOD cnexp  i = g*v  {bp} }}
    DERIVATIVE st {{ g' = -g  n' = 1 - n }}
    NET_RECEIVE(w (uS)) {{ g = g + w*P  n = n*(1 - p0) }}
    FUNCTION boost(x) {{ boost = x*exp(v/50) }}
    FUNCTION side() {{ q = (v + 65)/100  side = 1 }}
    """
    syn = nmodl.load(base.format(bp="P = n*p0"), register=False)
    assert "P" in syn.states and syn.carried == ("P",)
    for bp in ("P = n*p0*exp(v/10)", "if (v > -50) { P = p0 } else { P = n*p0 }",
               "P = boost(n*p0)", "dum = side()  P = n*p0*(1 + q)"):  # (a FUNCTION's
        #                                                         side effect: was accepted)
        with pytest.raises(NmodlError, match="'P' is set in BREAKPOINT from v"):
            nmodl.load(base.format(bp=bp), register=False)


def test_a_solve_of_a_refused_block_is_one_problem():
    """A LINEAR block that BREAKPOINT solves: its refusal alone (a second problem said the
    SOLVE named no DERIVATIVE, KINETIC or PROCEDURE)."""
    text = """NEURON { SUFFIX lin NONSPECIFIC_CURRENT i }
    ASSIGNED { v (mV) i (mA/cm2) }
    STATE { x }
    BREAKPOINT { SOLVE eqs  i = 0.001*x*(v + 70) }
    LINEAR eqs { ~ x = 1 }
    """
    problems = nmodl.check(text)
    assert [msg for _, msg in problems] == ["LINEAR block is not supported"], problems


def test_prose_and_one_line_texts_are_not_misread():
    """Review: a TITLE mentioning VERBATIM or COMMENT is prose (it was read as an
    unterminated block); one line of NMODL text holding '{' is text, not a path (it raised
    OSError: file name too long)."""
    leak = ("NEURON {{ SUFFIX {} NONSPECIFIC_CURRENT i }} PARAMETER {{ g = 0.001 (S/cm2) }} "
            "ASSIGNED {{ v (mV) i (mA/cm2) }} BREAKPOINT {{ i = g*(v + 70) }}")
    assert nmodl.check("TITLE leak, no VERBATIM code\n" + leak.format("prose1")) == []
    assert nmodl.check("TITLE leak (COMMENT block below removed)\n" + leak.format("prose2")) == []
    assert nmodl.check(leak.format("oneline")) == []


def test_a_name_loaded_again_from_another_file_warns():
    """Loading the same file again (edited) replaces its class quietly; another file with
    the same SUFFIX replaces it with a warning (it replaced it silently)."""
    first = _bad().replace("SUFFIX bad", "SUFFIX twice_loaded")
    path = HERE / "nmodl_cases" / "hhx.mod"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nmodl.load(first)
        nmodl.load(first)
        nmodl.load(path)
        nmodl.load(path)
    with pytest.warns(RuntimeWarning, match=r"'hhx' \(loaded from .*hhx.mod\) is replaced by "
                                            r"the one from <text>"):
        nmodl.load(path.read_text())
