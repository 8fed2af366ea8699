"""The NEURON reference of the NMODL import tests (test_nmodl_neuron.py: channels and pools;
test_nmodl_synapses_neuron.py: point processes): every .mod file of tests/nmodl and
tests/nmodl_cases compiled by nrnivmodl into one library (cached in the temp dir by a hash
of the files), simulated by NEURON in a subprocess (a process loads one mechanism library
only, and the test process may hold tests/nmodl's) on a one-compartment cell
(L = diam = 20 um, pas), which dendrax simulates with the classes ``dendrax.nmodl.load``
makes from the same files, at the same dt."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import dendrax as dx
from dendrax import nmodl

from conftest_mechanisms import ReferenceUnavailable, compile_mod_files

HERE = Path(__file__).resolve().parent
MOD_FILES = sorted((HERE / "nmodl").glob("*.mod")) + sorted((HERE / "nmodl_cases").glob("*.mod"))
CELSIUS, DT, T_STOP, V_INIT = 34.0, 0.025, 150.0, -70.0
LENGTH = DIAM = 20.0
LEAK = {"g": 1e-4, "e": -70.0}
HYPER = (10.0, 40.0, -0.1)  # delay, dur, amp (nA)
DEPOL = (70.0, 60.0)  # delay, dur


def load_all() -> dict:
    """name -> class of every .mod file here (those of tests/nmodl_cases registered: the
    caller unregisters them, ``dendrax.nmodl.registry.unregister()``)."""
    out = {}
    for f in MOD_FILES:
        cls = nmodl.load(f, register=f.parent.name == "nmodl_cases")
        out[cls.name] = cls
    return out


def one_compartment():
    """dendrax's copy of the reference cell: one compartment, L = diam = 20 um, pas."""
    cell = dx.Cell.from_sections([{"length": LENGTH, "diam": DIAM, "parent": -1, "region": "soma"}])
    cell.insert("pas")
    cell.set("pas.g", LEAK["g"])
    cell.set("pas.e", LEAK["e"])
    return cell


# --- NEURON, in a subprocess --------------------------------------------------------------

def build_library() -> Path:
    """nrnivmodl of every .mod file here, cached in the temp dir by a hash of them."""
    return compile_mod_files(MOD_FILES, "dendrax-nmodl-import")


def library_or_skip() -> Path:
    """``build_library()``, or the calling test skipped with the reason NEURON is missing."""
    try:
        return build_library()
    except ReferenceUnavailable as err:
        pytest.skip(f"NEURON reference unavailable: {err}")


NEURON_SCRIPT = textwrap.dedent('''
    import json, sys
    import numpy as np
    import neuron
    from neuron import h
    spec = json.load(open(sys.argv[1]))
    assert neuron.load_mechanisms(spec["lib"], warn_if_already_loaded=False)
    h.load_file("stdrun.hoc")
    out = {}
    for run in spec["runs"]:
        sec = h.Section(name="soma")
        sec.L, sec.diam, sec.nseg, sec.cm = spec["L"], spec["diam"], 1, 1.0
        sec.insert("pas")
        seg = sec(0.5)
        seg.pas.g, seg.pas.e = spec["leak"]["g"], spec["leak"]["e"]
        for mech, values in run["mechs"].items():
            sec.insert(mech)
            for p, x in values.items():  # an ion's variable (eh) is the segment's
                mine = getattr(seg, mech)
                setattr(mine if hasattr(mine, p) else seg, p, x)
        for name, x in run.get("globals", {}).items():
            setattr(h, name, x)
        stims = []
        for delay, dur, amp in run.get("iclamp", []):
            s = h.IClamp(seg)
            s.delay, s.dur, s.amp = delay, dur, amp
            stims.append(s)
        if run.get("vclamp"):
            amps, durs, rs = run["vclamp"]
            c = h.SEClamp(seg)
            c.amp1, c.amp2, c.amp3 = amps
            c.dur1, c.dur2, c.dur3 = durs
            c.rs = rs
            stims.append(c)
        syns, ncs = [], []
        for mech, values, times, w in run.get("synapses", []):
            pp = getattr(h, mech)(seg)
            for p, x in values.items():
                setattr(pp, p, x)
            syns.append(pp)
            if times:
                nc = h.NetCon(None, pp)
                nc.weight[0] = w
                ncs.append((nc, times))
        fih = h.FInitializeHandler(lambda: [nc.event(t) for nc, ts in ncs for t in ts])
        vecs = []
        for kind, a, b in run["record"]:
            ref = (seg._ref_v if kind == "v" else getattr(seg, f"_ref_{a}") if kind == "ion"
                   else getattr(getattr(seg, a), f"_ref_{b}") if kind == "seg"
                   else getattr(syns[int(a)], f"_ref_{b}"))
            vecs.append(h.Vector().record(ref))
        h.cvode_active(0)
        h.secondorder = run.get("secondorder", 0)
        h.celsius = spec["celsius"]
        h.dt = spec["dt"]
        h.finitialize(spec["v_init"])
        h.continuerun(spec["t_stop"])
        out[run["name"]] = np.array([np.array(v) for v in vecs])
        del fih, stims, syns, ncs, vecs, seg, sec
    np.savez(sys.argv[2], **out)
''')



# cases NEURON runs in a process of their own, one run each: NEURON 9.0.2 crashes (a double
# free) on the second finitialize of a model with a STEADYSTATE derivimplicit mechanism
ALONE = ("ssdi",)


def neuron_runs(runs, tmp: Path) -> dict:
    """Simulate ``runs`` in NEURON (subprocesses): name -> [record, time] array."""
    shared = [r for r in runs if r["name"].split(":")[0] not in ALONE]
    out = {}
    for k, batch in enumerate([shared] + [[r] for r in runs if r not in shared]):
        spec = {"lib": str(build_library()), "runs": batch, "L": LENGTH, "diam": DIAM,
                "leak": LEAK, "celsius": CELSIUS, "dt": DT, "t_stop": T_STOP, "v_init": V_INIT}
        (tmp / f"spec{k}.json").write_text(json.dumps(spec))
        (tmp / "run.py").write_text(NEURON_SCRIPT)
        proc = subprocess.run([sys.executable, str(tmp / "run.py"), str(tmp / f"spec{k}.json"),
                               str(tmp / f"out{k}.npz")], capture_output=True, text=True,
                              timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        out.update(np.load(tmp / f"out{k}.npz"))
    return out



def compare(name, out, ref, labels, tol, report):
    """Errors of v (mV) and states (cai relative to its peak), kept in ``report``; asserts
    ``tol`` (mean |dV| mV, max |dV| mV, worst state)."""
    assert out.shape == ref.shape, (out.shape, ref.shape)
    assert np.isfinite(out).all()
    dv = np.abs(out[0] - ref[0])
    errs = {}
    for i, lab in enumerate(labels, start=1):
        e = np.abs(out[i] - ref[i]).max()
        errs[lab] = e / np.abs(ref[i]).max() if lab.endswith(".cai") else e
    worst = max(errs, key=errs.get) if errs else None
    report[name] = (dv.mean(), dv.max(), worst, errs.get(worst, np.nan))
    tol_mean, tol_max, tol_state = tol
    assert dv.max() < tol_max, f"{name}: max |dV| {dv.max():.3g} mV"
    assert dv.mean() < tol_mean, f"{name}: mean |dV| {dv.mean():.3g} mV"
    if errs:
        assert errs[worst] < tol_state, f"{name}: worst state {worst} off by {errs[worst]:.3g}"
    return errs



def print_report(report: dict) -> None:
    """The per-case errors a module's tests measured (``compare``'s ``report``; pytest -s)."""
    if report:
        print("\ncase                      mean|dV| mV  max|dV| mV  worst state      its error")
        for name, (mean, mx, worst, err) in report.items():
            print(f"{name:25s} {mean:11.2e}  {mx:10.2e}  {str(worst):15s}  {err:9.2e}")
