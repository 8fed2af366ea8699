"""NEURON's own shipped .mod files, imported by dendrax.nmodl, against NEURON's built-ins.

The neuron wheel ships the NMODL source of its core mechanisms in
``<site-packages>/neuron/.data/share/modfile``. NEURON compiles hh.mod, passive.mod,
expsyn.mod and exp2syn.mod into its core, so ``h.hh``, ``h.pas``, ``h.ExpSyn`` and
``h.Exp2Syn`` are those files compiled by nocmodl (no nrnivmodl needed) and the reference
here. The files are read from the installed package at test time, never copied.

dendrax has built-in mechanisms named hh, pas and Exp2Syn, so ``load`` does not register
the imported classes under those names (it warns): the density mechanisms are loaded
with ``register=False`` and inserted as classes (``cell.insert(cls)``), and the point
processes, which ``cell.synapse`` finds by name, are loaded from the file's text with the
POINT_PROCESS renamed (ExpSyn_nrn, Exp2Syn_nrn; unregistered at the end).

The cell: a ball and stick (soma 1 segment, dendrite 9; Ra 120, cm 1) with the imported
hh everywhere (weaker Na and no leak in the dendrite), the imported pas in the dendrite,
a soma current step, and spike trains into an ExpSyn (mid-dendrite) and two Exp2Syn (the
dendrite's end; the soma, with tau1 = tau2, which the file's INITIAL clamps to 0.9999
tau2). It fires in soma and dendrite. Compared with NEURON's built-ins on the same cell
(usetable_hh = 0: NEURON's hh otherwise interpolates tables): mean |dV| < 5e-11 mV and
max |dV| < 2e-9 mV at every site; every state (hh's m, h, n; ExpSyn's g; Exp2Syn's A, B),
Exp2Syn's g and the synaptic currents within 3e-11 (relative where a value exceeds 1:
Exp2Syn's A and B at tau1 ~ tau2 are ~500 uS). Measured: mean |dV| 1.0e-11 mV at the worst
site (7.5e-12 over all), max 3.2e-10 mV (at a spike's upstroke), states <= 2.3e-12,
currents <= 6.5e-12.

None of the four files uses a construct dendrax refuses. The other files NEURON ships
(stim.mod: IClamp, svclmp.mod: SEClamp, netstim.mod: NetStim, pattern.mod: PatternStim)
are electrodes and artificial cells, which dendrax provides natively (``cell.iclamp``,
``cell.vclamp``, ``spike_times``); their refusals are checked to name the construct and
its line.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("neuron.nmodl", reason="NEURON's NMODL framework (dendrax[nmodl])")

import neuron  # noqa: E402
from neuron import h  # noqa: E402

import dendrax as dx  # noqa: E402
from dendrax import nmodl  # noqa: E402
from dendrax.mechanisms.base import Channel, Synapse  # noqa: E402
from dendrax.nmodl import registry as nmodl_registry  # noqa: E402

from neuron_model import neuron_from_morphology  # noqa: E402

MODFILE = Path(neuron.__file__).resolve().parent / ".data" / "share" / "modfile"
SHIPPED = ("hh", "passive", "expsyn", "exp2syn")
if not all((MODFILE / f"{f}.mod").is_file() for f in SHIPPED):
    pytest.skip(f"NEURON's shipped mod files are not in {MODFILE} (this neuron install does "
                "not include share/modfile)", allow_module_level=True)

h.load_file("stdrun.hoc")
DT, T_STOP, V_INIT, CELSIUS = 0.025, 80.0, -65.0, 6.3
NSEG = [1, 9]
STEP = (5.0, 10.0, 0.15)  # delay, dur (ms), amp (nA) into the soma
DEND_HH = {"gnabar": 0.05, "gl": 0.0}
DEND_PAS = {"g": 2e-4, "e": -65.0}
# synapse name -> [(section, x, params, spike times (ms), weight (uS))]
SYNAPSES = {
    "ExpSyn": [(1, 0.5, {"tau": 2.0, "e": 0.0}, [20.0, 20.0125, 31.3, 45.0], 0.004)],
    "Exp2Syn": [(1, 0.95, {"tau1": 0.5, "tau2": 5.0, "e": 0.0}, [25.0, 25.01, 40.5, 55.5], 0.003),
                (0, 0.5, {"tau1": 3.0, "tau2": 3.0, "e": -80.0}, [60.0, 61.0], 0.01)],
}
RENAMED = {"ExpSyn": "ExpSyn_nrn", "Exp2Syn": "Exp2Syn_nrn"}


def shipped_text(stem: str) -> str:
    return (MODFILE / f"{stem}.mod").read_text()


@pytest.fixture(scope="module")
def classes():
    """The four files loaded: hh and pas as classes (not registered: dendrax has those
    names), ExpSyn and Exp2Syn registered under the renamed POINT_PROCESS."""
    out = {"hh": nmodl.load(MODFILE / "hh.mod", register=False),
           "pas": nmodl.load(MODFILE / "passive.mod", register=False)}
    for stem, name in (("expsyn", "ExpSyn"), ("exp2syn", "Exp2Syn")):
        text, n = re.subn(rf"POINT_PROCESS\s+{name}\b", f"POINT_PROCESS {RENAMED[name]}",
                          shipped_text(stem))
        assert n == 1
        out[name] = nmodl.load(text)
    yield out
    for name in RENAMED.values():
        nmodl_registry.unregister(name)


@pytest.mark.parametrize("stem", SHIPPED)
def test_shipped_file_is_supported(stem):
    """Each file imports whole: nothing refused, the class NEURON's mechanism would be."""
    path = MODFILE / f"{stem}.mod"
    assert nmodl.check(path) == []
    cls = nmodl.load(path, register=False)
    expected = {"hh": ("hh", Channel, {"gnabar": 0.12, "gkbar": 0.036, "gl": 0.0003, "el": -54.3},
                       {"m", "h", "n"}),
                "passive": ("pas", Channel, {"g": 0.001, "e": -70.0}, set()),
                "expsyn": ("ExpSyn", Synapse, {"tau": 0.1, "e": 0.0}, {"g"}),
                "exp2syn": ("Exp2Syn", Synapse, {"tau1": 0.1, "tau2": 10.0, "e": 0.0},
                            {"A", "B"})}[stem]
    name, kind, params, states = expected
    assert cls.name == name and issubclass(cls, kind)
    assert cls.params == params
    assert states <= set(cls.states)
    assert cls.nmodl_source == str(path)


def test_taken_names_warn_and_stay_builtin():
    """Loading hh.mod with registration leaves dendrax's hh in place, with a warning that
    says to insert the class."""
    with pytest.warns(RuntimeWarning, match="already provided by 'dendrax'.*insert the returned"):
        cls = nmodl.load(MODFILE / "hh.mod")
    assert "hh" not in nmodl_registry.registered()
    from dendrax.mechanisms import channel

    assert type(channel("hh")) is not cls


def dendrax_run(mechs):
    """The test cell in dendrax with ``mechs``: {"hh", "pas": class or registered name,
    "ExpSyn", "Exp2Syn": synapse name}. Returns (traces, labels, recordings)."""
    cell = dx.Cell.ball_and_stick(nseg=NSEG, Ra=120.0, cm=1.0)
    cell.insert(mechs["hh"])
    for p, x in DEND_HH.items():
        cell.set(f"hh.{p}", x, where="dend")
    cell.insert(mechs["pas"], where="dend")
    for p, x in DEND_PAS.items():
        cell.set(f"pas.{p}", x)
    delay, dur, amp = STEP
    cell.iclamp(cell.soma(0.5), delay=delay, dur=dur, amp=amp)
    for kind, placed in SYNAPSES.items():
        for sec, x, params, times, w in placed:
            cell.synapse(mechs[kind], cell.section(sec)(x), spike_times=times, weight=w, **params)
    soma, d5, d9 = cell.soma(0.5), cell.section(1)(0.5), cell.section(1)(0.95)
    sites = [soma, cell.section(1)(0.05), d5, d9]
    recs = [("v", s) for s in sites]
    recs += [(f"hh.{s}", loc) for loc in (soma, d5, d9) for s in ("m", "h", "n")]
    recs += [("ExpSyn.g", d5), ("ExpSyn.i", d5)]
    recs += [(f"Exp2Syn.{q}", loc) for loc in (d9, soma) for q in ("A", "B", "g", "i")]
    for name, loc in recs:
        m, q = name.split(".") if "." in name else (name, None)
        cell.record(f"{mechs[m]}.{q}" if m in SYNAPSES else name, loc)
    res = dx.simulate(cell, T_STOP, DT, v_init=V_INIT, celsius=CELSIUS)
    return np.asarray(res.traces), cell, recs


def neuron_run(cell, recs):
    """The same cell with NEURON's built-in hh, pas, ExpSyn and Exp2Syn."""
    secs = neuron_from_morphology(cell.morphology, NSEG, Ra=120.0, cm=1.0)
    for s in secs:
        s.insert("hh")
    secs[1].insert("pas")
    for seg in secs[1]:
        for p, x in DEND_HH.items():
            setattr(seg.hh, p, x)
        for p, x in DEND_PAS.items():
            setattr(seg.pas, p, x)
    ic = h.IClamp(secs[0](0.5))
    ic.delay, ic.dur, ic.amp = STEP
    pps, ncs = {}, []
    for kind, placed in SYNAPSES.items():
        for sec, x, params, times, w in placed:
            pp = getattr(h, kind)(secs[sec](x))
            for p, val in params.items():
                setattr(pp, p, val)
            nc = h.NetCon(None, pp)
            nc.weight[0] = w
            pps[kind, sec, x] = pp
            ncs.append((nc, times))
    fih = h.FInitializeHandler(lambda: [nc.event(t) for nc, ts in ncs for t in ts])

    def ref(name, loc):
        seg = secs[loc.section](loc.x)
        if name == "v":
            return seg._ref_v
        m, q = name.split(".")
        if m == "hh":
            return getattr(seg.hh, f"_ref_{q}")
        return getattr(pps[m, loc.section, loc.x], f"_ref_{q}")

    vecs = [h.Vector().record(ref(n, loc)) for n, loc in recs]
    h.usetable_hh = 0  # NEURON's hh would interpolate its rate tables
    h.cvode_active(0)
    h.secondorder = 0
    h.celsius = CELSIUS
    h.dt = DT
    h.finitialize(V_INIT)
    h.continuerun(T_STOP)
    assert fih is not None and ic is not None  # kept alive through the run
    return np.array([np.array(v) for v in vecs])


def spikes(v):
    return int(((v[1:] >= 0.0) & (v[:-1] < 0.0)).sum())


def test_shipped_files_match_neuron_builtins(classes):
    mechs = {"hh": classes["hh"], "pas": classes["pas"], **RENAMED}
    out, cell, recs = dendrax_run(mechs)
    assert isinstance(cell.mechanisms["hh"], classes["hh"])
    assert isinstance(cell.mechanisms["pas"], classes["pas"])
    ref = neuron_run(cell, recs)
    assert out.shape == ref.shape and np.isfinite(out).all()
    n_v = sum(1 for n, _ in recs if n == "v")
    # not vacuous: the soma and the dendrite fire, every synapse moves
    assert spikes(ref[0]) >= 3 and spikes(ref[n_v - 1]) >= 2
    dv = np.abs(out[:n_v] - ref[:n_v])
    print(f"\nshipped hh/pas/ExpSyn/Exp2Syn vs NEURON built-ins: mean |dV| {dv.mean():.2e} mV, "
          f"max {dv.max():.2e} mV")
    # measured: mean 1.0e-11 mV at the worst site, max 3.2e-10 mV (a spike's upstroke)
    assert dv.mean(axis=1).max() < 5e-11, f"mean |dV| {dv.mean(axis=1)} mV"
    assert dv.max() < 2e-9, f"max |dV| {dv.max(axis=1)} mV"
    for i, (name, loc) in enumerate(recs[n_v:], start=n_v):
        # absolute, or relative where a state exceeds 1 (Exp2Syn's A and B at tau1 ~ tau2
        # reach weight * factor ~ 500 uS; their difference g stays small)
        err = np.abs(out[i] - ref[i]).max() / max(1.0, np.abs(ref[i]).max())
        print(f"  {name:10s} at {loc.section}({loc.x:g}): max error {err:.1e} "
              f"(range {np.ptp(ref[i]):.3g})")
        assert np.ptp(ref[i]) > 1e-4, f"{name} does not move"
        # measured: states <= 2.3e-12 (hh.m), currents <= 6.5e-12 (the soma's Exp2Syn.i)
        assert err < 3e-11, f"{name} at {loc}: {err:.3g}"


def test_shipped_files_match_dendrax_builtins(classes):
    """And the same cell with dendrax's own hh, pas and Exp2Syn (ExpSyn stays imported:
    dendrax has none) gives the same run."""
    imported, _, recs = dendrax_run({"hh": classes["hh"], "pas": classes["pas"],
                                              **RENAMED})
    builtin, _, _ = dendrax_run({"hh": "hh", "pas": "pas", "ExpSyn": RENAMED["ExpSyn"],
                                          "Exp2Syn": "Exp2Syn"})
    # measured: 3.0e-12 (v, mV), 2.3e-14 (states, currents)
    np.testing.assert_allclose(imported, builtin, rtol=0, atol=3e-11)


# --- the other files NEURON ships: electrodes and artificial cells, refused ------------------

REFUSED = {
    "stim.mod": ["ELECTRODE_CURRENT is not supported (electrodes are built in: Cell.iclamp"],
    "svclmp.mod": ["ELECTRODE_CURRENT is not supported", "at_time is not supported"],
    "netstim.mod": ["ARTIFICIAL_CELL is not supported (dendrax synapses sit on a compartment: "
                    "write a POINT_PROCESS; spike sources and NEST's point neurons are built in: "
                    "Cell.synapse(spike_times=...), Network.spike_source, "
                    "Network.poisson_source, Network.population)",
                    "net_send outside NET_RECEIVE is not supported", "RANDOM is not supported",
                    "net_event is not supported", "VERBATIM (C code) is not supported"],
    "pattern.mod": ["ARTIFICIAL_CELL is not supported", "BBCOREPOINTER is not supported",
                    "VERBATIM (C code) is not supported"],
}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_other_shipped_files_refused_by_construct(name):
    path = MODFILE / name
    if not path.is_file():
        pytest.skip(f"{name} is not shipped in {MODFILE}")
    text = path.read_text().splitlines()
    with pytest.raises(nmodl.NmodlError) as err:
        nmodl.load(path, register=False)
    problems = err.value.problems
    for message in REFUSED[name]:
        lines = [ln for ln, msg in problems if message in msg]
        assert lines, f"{name}: no {message!r} in {problems}"
        keyword = message.split()[0]  # ELECTRODE_CURRENT, net_send, VERBATIM, ...
        # each refusal names its line, and the construct is on it
        assert any(keyword.lower() in text[ln - 1].lower() for ln in lines if ln > 0), \
            (name, message, lines)
        assert keyword in str(err.value)
