"""The cell models the benchmarks share, built in dendrax, NEURON and Jaxley.

The models: a real reconstruction (SWC) with NEURON's segmentation, HH in every
section (Ra 100 ohm cm, cm 1 uF/cm2), a 0.5 nA step into the soma from 5 to
85 ms, float64, 100 ms at dt 0.025 ms, celsius 6.3, v_init -65 mV; the voltage
recorded at 10 sites (the soma centre and 9 random points). The same model is
built in dendrax, in NEURON (Import3d; run as users run it, as experts do, with exact
rates and in CoreNEURON: ``NeuronModel.run``) and in Jaxley (``jx.read_swc``, its own
segmentation). Plus an "L5PC-like" model
(``dendrax.models.l5pc_like``: the Hay et al. 2011 channels and densities), mirrored
into NEURON parameter by parameter.

NEURON and Jaxley are optional: when one cannot be imported its columns say
"skipped (not installed)".
"""

from __future__ import annotations

import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from _runner import SKIPPED, optional

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "morphologies"
CELLS = ["ball_and_stick.swc", "C010398B-P2.CNG.swc", "n120_ca1.swc",
         "NMO_49821_ca1_pyramidal.swc"]
ATTRIBUTION = (
    "Morphologies from `../shared/morphologies` (see its README): `ball_and_stick.swc` "
    "(Arbor test data, BSD-3-Clause); `C010398B-P2.CNG.swc` (Markram archive), "
    "`n120_ca1.swc` (Turner archive; Pyapali et al., J Comp Neurol 391:335, 1998) and "
    "`NMO_49821_ca1_pyramidal.swc` (Hoenigsperger et al., J Physiol 593:1551, 2015) from "
    "NeuroMorpho.Org (RRID:SCR_002145; Ascoli et al., J Neurosci 27:9247, 2007; Tecuatl, "
    "Ljungquist & Ascoli, FASEB BioAdvances 6(7):207-221, 2024), CC BY 4.0.")

RA, CM = 100.0, 1.0
STIM = (5.0, 80.0, 0.5)  # delay ms, dur ms, amp nA
V_INIT, CELSIUS = -65.0, 6.3
N_SITES, SITE_SEED = 10, 1


# --- simulators ----------------------------------------------------------------------

def neuron_h():
    """``neuron.h`` with stdrun loaded, or None if NEURON is absent. (hh's rate tables are
    left at NEURON's default, on; each run sets ``h.usetable_hh`` for its variant.)"""
    if optional("neuron") is None:
        return None
    from neuron import h

    h.load_file("stdrun.hoc")
    return h


def neuron_helpers():
    """tests/neuron_model.py (NEURON's Import3d reading, in dendrax's section order)."""
    sys.path.insert(0, str(REPO / "tests"))
    try:
        import neuron_model
    finally:
        sys.path.pop(0)
    return neuron_model


# --- cells -----------------------------------------------------------------------------

def resolve_cells(names) -> tuple[list[Path], str | None]:
    """Paths of the cells to run (names in ../shared/morphologies, or paths), and a
    message when the shared folder is needed but absent."""
    names = list(names) if names else list(CELLS)
    paths, missing = [], []
    for n in names:
        p = Path(n)
        if p.is_file():
            paths.append(p)
        elif (SHARED / n).is_file():
            paths.append(SHARED / n)
        else:
            missing.append(n)
    msg = None
    if missing:
        where = (f"real morphologies not found: {SHARED} is absent (see the project README)"
                 if not SHARED.is_dir() else f"not found in {SHARED}")
        msg = f"skipped {', '.join(missing)}: {where}"
    return paths, msg


def pick_sites(cell, n: int = N_SITES, seed: int = SITE_SEED):
    """The soma centre and n - 1 random points (section, x in [0.05, 1])."""
    rng = np.random.default_rng(seed)
    n_sec = len(cell.morphology.sections)
    secs, xs = rng.integers(0, n_sec, n - 1), rng.uniform(0.05, 1.0, n - 1)
    return [cell.soma(0.5)] + [cell.section(int(i))(float(x)) for i, x in zip(secs, xs)]


def site_xyz(morphology, loc) -> np.ndarray:
    """3-D position (um) of ``loc`` (section, x), by arc length along the section's points."""
    sec = morphology.sections[loc.section]
    arc, xyz = sec.arc, sec.xyz
    s = loc.x * arc[-1]
    return np.array([np.interp(s, arc, xyz[:, j]) for j in range(3)])


def dendrax_hh_cell(path: Path, nseg: int):
    """dendrax: HH everywhere, the soma step, v recorded at the sites. Returns (cell, sites)."""
    import dendrax as dx

    cell = dx.Cell(dx.read_morphology(path), nseg=nseg, Ra=RA, cm=CM)
    cell.insert("hh")
    return cell, _stimulate_and_record(cell)


def _stimulate_and_record(cell):
    """The STIM step into the soma and v recorded at ``pick_sites``; returns the sites."""
    delay, dur, amp = STIM
    cell.iclamp(cell.soma(0.5), delay=delay, dur=dur, amp=amp)
    sites = pick_sites(cell)
    for s in sites:
        cell.record("v", s)
    return sites


def dendrax_forward(cell, t_stop, dt, *, v_init=V_INIT, celsius=CELSIUS, checkpoint=None):
    """params -> recorded traces [n_t, n_recordings]: the time loop
    (``dendrax.simulation.run``) with the model, stimulus drive and dt fixed, ready for
    ``jax.jit``/``grad``/``vmap`` (what ``dx.simulate`` runs, without its Python wrapper)."""
    import jax.numpy as jnp
    from dendrax import lowering, simulator_units, timecourse
    from dendrax.simulation import run

    n_steps = int(round(t_stop / dt))
    model, _, layout = lowering.lower(cell)
    drive = timecourse.drive(layout, n_steps, dt)

    def forward(params):
        core = simulator_units.core_params(layout, params, v_init=v_init, celsius=celsius)
        return run(model, core, drive, jnp.asarray(dt), checkpoint=checkpoint)[0]

    return forward


def n_segments(cell) -> int:
    """Compartments as NEURON counts them (sum of nseg; dendrax's solver also has
    zero-area junction nodes where a child attaches mid-section)."""
    return int(cell.nseg.sum())


# --- the L5PC-like model ------------------------------------------------------------------

HAY_CHANNELS = ("NaTa_t", "NaTs2_t", "Nap_Et2", "K_Pst", "K_Tst", "SKv3_1", "SK_E2", "Ca_HVA",
                "Ca_LVAst", "Im", "Ih", "CaDynamics_E2")
HAY_V_INIT, HAY_CELSIUS = -80.0, 34.0  # as the published model


def l5pc_unavailable() -> str | None:
    """None when the L5PC-like model can be built (dendrax's Hay channels load and
    ``dendrax.models.l5pc_like`` exists), else the reason."""
    try:
        from dendrax.mechanisms import channel

        for name in HAY_CHANNELS:
            channel(name)
        from dendrax.models import l5pc_like  # noqa: F401
    except Exception as err:  # noqa: BLE001
        return f"{type(err).__name__}: {err}"
    return None


def dendrax_l5pc_cell(path: Path, nseg: int):
    """dendrax: ``dendrax.models.l5pc_like`` (the Hay et al. 2011 channels and densities
    by region, distance-dependent Ih and apical Ca hot zone) on the SWC, the soma step,
    v at the sites. Returns (cell, sites)."""
    import dendrax as dx
    from dendrax.models import l5pc_like

    cell = l5pc_like(dx.read_morphology(path), nseg=nseg)
    return cell, _stimulate_and_record(cell)


def mechanisms(cell) -> list[str]:
    """Names of the density mechanisms inserted in a cell (its params' mechanism dicts)."""
    return list(cell.params["channels"])


# --- NEURON -----------------------------------------------------------------------------------

@dataclass
class NeuronModel:
    """A cell built in NEURON with its stimulus and recordings (kept alive here)."""

    secs: list
    sites: list
    t_stop: float
    dt: float
    v_init: float = V_INIT
    celsius: float = CELSIUS
    keep: list = field(default_factory=list)

    def run(self, mode: str = "exact") -> np.ndarray:
        """Simulate and return the recorded voltages [site, time]. ``mode`` (see
        ``NEURON_MODES``): "user": NEURON's defaults, ``h.finitialize`` +
        ``h.continuerun`` (stdrun's hoc loop), hh's rate tables on; "expert":
        ``h.cvode.cache_efficient(1)`` + ``ParallelContext.psolve`` (the loop in C), tables
        on; "exact": as expert with ``h.usetable_hh = 0`` (the rates computed exactly, as
        dendrax does: the accuracy reference); "coreneuron": as expert with
        ``neuron.coreneuron.enable = True`` (CoreNEURON in memory, from the same wheel;
        it keeps hh's tables on whatever ``usetable_hh`` says)."""
        from neuron import h

        recs = [h.Vector().record(self.secs[loc.section](loc.x)._ref_v) for loc in self.sites]
        neuron_run(mode, self.t_stop, self.dt, v_init=self.v_init, celsius=self.celsius)
        return np.array([np.array(r) for r in recs])

    def n_sections_alive(self) -> int:
        from neuron import h

        return sum(1 for _ in h.allsec())


NEURON_MODES = ("user", "expert", "exact", "coreneuron")


def neuron_run(mode: str, t_stop: float, dt: float, *, v_init: float, celsius: float) -> None:
    """One fixed-step run (backward Euler) of everything built in NEURON, in ``mode``
    (``NeuronModel.run`` says what each of NEURON_MODES does); the caller's Vectors
    record it."""
    from neuron import h

    if mode not in NEURON_MODES:
        raise ValueError(f"unknown NEURON mode {mode!r}; valid: {', '.join(NEURON_MODES)}")
    h.usetable_hh = 0 if mode == "exact" else 1
    h.cvode.cache_efficient(0 if mode == "user" else 1)
    h.secondorder = 0
    h.celsius = celsius
    h.dt = dt
    h.steps_per_ms = 1.0 / dt
    h.finitialize(v_init)
    if mode == "user":
        h.continuerun(t_stop)
    elif mode == "coreneuron":
        from neuron import coreneuron

        coreneuron.enable, coreneuron.verbose = True, 0
        try:
            parallel_context().psolve(t_stop)
        finally:
            coreneuron.enable = False
    else:
        parallel_context().psolve(t_stop)

_PC = []


def parallel_context():
    if not _PC:
        from neuron import h

        _PC.append(h.ParallelContext())
        _PC[0].set_maxstep(10)
    return _PC[0]


def neuron_hh(path, nseg, sites, t_stop, dt) -> NeuronModel:
    from neuron import h

    secs = neuron_helpers().neuron_from_swc(path, nseg=nseg, Ra=RA, cm=CM)
    for s in secs:
        s.insert("hh")
    return _neuron_stim(h, secs, sites, t_stop, dt)


def _neuron_stim(h, secs, sites, t_stop, dt, **kw) -> NeuronModel:
    ic = h.IClamp(secs[sites[0].section](sites[0].x))
    ic.delay, ic.dur, ic.amp = STIM
    return NeuronModel(secs, sites, t_stop, dt, keep=[ic], **kw)


def neuron_mirror(path, nseg, cell, sites, t_stop, dt, *, v_init, celsius) -> NeuronModel:
    """The dendrax ``cell`` rebuilt in NEURON from the same SWC: every inserted mechanism
    in the sections that have it, and every parameter value (per segment), cm, Ra, ena
    and ek copied from the dendrax cell's params (so any distribution carries over).
    NMODL mechanisms must be loaded (``load_hay_neuron()`` for the Hay channels)."""
    from neuron import h

    secs = neuron_helpers().neuron_from_swc(path, nseg=nseg, Ra=RA, cm=CM)
    params, comps = cell.params, cell.compartments
    for sec, ra in zip(secs, np.asarray(params["cable"]["Ra"])):
        sec.Ra = float(ra)

    def segments(name):
        slots = cell.param_slots(name)
        leaf = params
        for key in slots.path:
            leaf = leaf[key]
        values = np.asarray(leaf)[slots.index]
        return [(secs[s](float(comps.x[n])), float(v))
                for s, n, v in zip(slots.section, slots.node, values)]

    for mech in mechanisms(cell):
        names = list(params["channels"][mech])
        for s in sorted(set(cell.param_slots(f"{mech}.{names[0]}").section.tolist())):
            secs[s].insert(mech)
        for p in names:
            for seg, v in segments(f"{mech}.{p}"):
                setattr(seg, f"{p}_{mech}", v)
    for seg, v in segments("cm"):
        seg.cm = v
    for ion in ("ena", "ek"):
        for seg, v in segments(ion):
            if hasattr(seg, ion):  # only where a mechanism uses the ion
                setattr(seg, ion, v)
    return _neuron_stim(h, secs, sites, t_stop, dt, v_init=v_init, celsius=celsius)


HAY = {}  # after load_hay_neuron(): "dir" (the build), "corenrn_lib" or "corenrn_why"


def load_hay_neuron() -> str | None:
    """Compile tests/nmodl (the Hay channels as NMODL) with ``nrnivmodl -coreneuron`` (its
    default optimisation; also builds the CoreNEURON library of the same files) and load
    them into this process's NEURON; None on success, else the reason they are
    unavailable. When the CoreNEURON build fails, the NEURON-only build is used and
    ``HAY["corenrn_why"]`` says why. Builds are cached in the temp folder by content hash.
    (The tests build the same files at -O0 to compile fast; timings need -O2.)"""
    import hashlib
    import shutil
    import subprocess
    import tempfile

    try:
        import neuron
    except ImportError:
        return SKIPPED
    files = sorted((REPO / "tests" / "nmodl").glob("*.mod"))
    names = {f.stem for f in files}
    if not set(HAY_CHANNELS) <= names:
        return f"tests/nmodl lacks {sorted(set(HAY_CHANNELS) - names)}"
    exe = shutil.which("nrnivmodl") or str(Path(sys.executable).with_name("nrnivmodl"))

    def library(d, stem="libnrnmech"):
        return next(iter(sorted(d.glob(f"*/.libs/{stem}.so")) +
                         sorted(d.glob(f"*/{stem}.*"))), None)

    def build(flags):
        digest = hashlib.sha256(neuron.__version__.encode() + " ".join(flags).encode())
        for f in files:
            digest.update(f.name.encode() + f.read_bytes())
        cache = Path(tempfile.gettempdir()) / f"dendrax-bench-nmodl-{digest.hexdigest()[:16]}"
        want = ["libnrnmech"] + (["libcorenrnmech"] if "-coreneuron" in flags else [])
        if all(library(cache, w) for w in want):
            return cache, None
        if not Path(exe).exists():
            return None, "nrnivmodl not found"
        work = Path(tempfile.mkdtemp(prefix="dendrax-bench-nmodl-"))
        for f in files:
            shutil.copy(f, work / f.name)
        print(f"compiling tests/nmodl with nrnivmodl {' '.join(flags)} (once, cached in "
              f"{cache}) ...", flush=True)
        proc = subprocess.run([exe, *flags, "."], cwd=work, capture_output=True, text=True)
        if proc.returncode != 0 or not all(library(work, w) for w in want):
            return None, (f"nrnivmodl {' '.join(flags)} failed: "
                          f"{(proc.stdout + proc.stderr)[-500:]}")
        try:
            work.rename(cache)
        except OSError:
            cache = work if library(cache) is None else cache
        return cache, None

    HAY.clear()
    where, why = build(["-coreneuron"])
    if where is not None:
        HAY["corenrn_lib"] = str(library(where, "libcorenrnmech"))
    else:
        HAY["corenrn_why"] = why
        where, why = build([])
        if where is None:
            return why
    HAY["dir"] = str(where)
    if not neuron.load_mechanisms(str(where), warn_if_already_loaded=False):
        return f"neuron.load_mechanisms({str(where)!r}) failed"
    return None


_CORENRN_PROBE = """
import sys
import numpy as np
import neuron
from neuron import h, coreneuron
h.load_file("stdrun.hoc")
secs = [h.Section(name="soma")]
secs[0].L = secs[0].diam = 20
secs[0].insert("hh")
if len(sys.argv) > 1:
    neuron.load_mechanisms(sys.argv[1], warn_if_already_loaded=False)
    d = h.Section(name="dend")
    d.L, d.diam, d.nseg = 100, 2, 5
    d.connect(secs[0](1))
    d.insert("pas")
    for m in filter(None, sys.argv[2].split(",")):
        d.insert(m)
    secs.append(d)
ic = h.IClamp(secs[0](0.5))
ic.delay, ic.dur, ic.amp = 1, 5, 0.5
v = h.Vector().record(secs[-1](0.5)._ref_v)
pc = h.ParallelContext()
pc.set_maxstep(10)
h.cvode.cache_efficient(1)
h.dt = 0.025
out = []
for enable in (False, True):
    coreneuron.enable, coreneuron.verbose = enable, 0
    h.finitialize(-65)
    pc.psolve(10)
    out.append(np.array(v))
err = float(np.abs(out[0] - out[1]).max())
print("PROBE", err if out[1].size == out[0].size == 401 else "wrong length")
"""


def coreneuron_unavailable(mech_dir=None, mechanisms=()) -> str | None:
    """None when CoreNEURON (from the installed NEURON wheel, in memory via
    ``neuron.coreneuron.enable``) runs a small HH cell here like NEURON does -- with the
    NMODL build ``mech_dir`` loaded and ``mechanisms`` inserted in a dendrite when given,
    and the CoreNEURON library named by $CORENEURONLIB (else the wheel's built-in one) --
    else the reason. Tried in a subprocess, so a crash inside CoreNEURON cannot take the
    benchmark down."""
    import subprocess

    try:
        import neuron  # noqa: F401
        from neuron import coreneuron  # noqa: F401
    except ImportError as err:
        return f"neuron.coreneuron cannot be imported ({err})"
    cmd = [sys.executable, "-c", _CORENRN_PROBE]
    if mech_dir is not None:
        cmd += [str(mech_dir), ",".join(mechanisms)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        return "the CoreNEURON test run timed out"
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("PROBE ")), None)
    if line is None:
        tail = " / ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
        return f"the CoreNEURON test run failed (exit {proc.returncode}: {tail})"
    err = line.split()[1]
    if err == "wrong" or float(err) > 1e-6:
        return f"CoreNEURON's test run differs from NEURON's ({line[6:]})"
    return None


# --- Jaxley -----------------------------------------------------------------------------------

def jaxley_hh(path, ncomp, site_points, trainable=True):
    """The HH model in Jaxley from the same SWC (Jaxley's reader, ncomp compartments per
    branch), the soma step at the compartment nearest the soma centre, v recorded at the
    compartments nearest the sites' 3-D positions. With ``trainable``, gNa, gK, gLeak and
    eLeak are trainable per compartment (as dendrax's params["hh"]).

    Returns (cell, number of compartments, indices of the recorded compartments).
    """
    import jaxley as jx
    from jaxley.channels import HH

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cell = jx.read_swc(str(path), ncomp=ncomp)
    cell.insert(HH())
    cell.set("axial_resistivity", RA)
    cell.set("capacitance", CM)
    cell.set("v", V_INIT)
    cell.init_states()
    cell.compute_compartment_centers()
    xyz = cell.nodes[["x", "y", "z"]].to_numpy()
    idx = [int(np.argmin(((xyz - p) ** 2).sum(1))) for p in site_points]
    n = len(cell.nodes)
    if trainable:
        for key in ("HH_gNa", "HH_gK", "HH_gLeak", "HH_eLeak"):
            cell.select(nodes=np.arange(n)).make_trainable(key, verbose=False)
    return cell, n, idx


def jaxley_stimulate(cell, idx, t_stop, dt):
    """Step current at idx[0], v recorded at idx; returns the output row of each site."""
    import jaxley as jx

    delay, dur, amp = STIM
    cell.select(nodes=idx[0]).stimulate(jx.step_current(delay, dur, amp, dt, t_stop),
                                        verbose=False)
    uniq = list(dict.fromkeys(idx))  # Jaxley keeps one recording per compartment
    for i in uniq:
        cell.select(nodes=i).record("v", verbose=False)
    return np.array([uniq.index(i) for i in idx])  # rows of Jaxley's output, per site


def mean_abs_dv(a, b) -> float:
    a, b = np.asarray(a), np.asarray(b)
    n = min(a.shape[-1], b.shape[-1])
    return float(np.abs(a[..., :n] - b[..., :n]).mean())
