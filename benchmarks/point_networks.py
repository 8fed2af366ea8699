"""Point-neuron networks: dendrax vs NEST 3.10 on the same cores.

Two networks, each built in both simulators from the same numbers (our own code, written
from the models' published descriptions):

* "Brunel": Brunel's (2000) sparsely connected balanced network, model A (delta synapses),
  in the version NEST's example builds: NE = 10,000 excitatory and NI = 2,500 inhibitory
  ``iaf_psc_delta`` neurons (tau_m 20 ms, C_m 1 pF so that weights are mV, t_ref 2 ms,
  E_L 0, V_reset 10, V_th 20, V_m 0 mV); every neuron receives CE = 0.1 NE excitatory
  (J = 0.1 mV) and CI = 0.1 NI inhibitory (-g J, g = 5) inputs drawn at random
  (fixed in-degree, autapses and multapses allowed: 12,500 x 1,250 = 15.6 M synapses),
  delay 1.5 ms, and an independent Poisson train of CE x nu_ext, nu_ext = eta V_th /
  (J CE tau_m), eta = 2 (one ``poisson_generator`` of 20 kHz, weight J, to every neuron).
  ``--scale`` shrinks NE and NI (CE, CI stay 10 %).
* "COBA": the conductance-based benchmark of Brette et al. (2007) after Vogels & Abbott
  (2005), with the values of PyNN's VAbenchmarks: 4,000 ``iaf_cond_exp`` neurons (80 %
  excitatory), each ordered pair connected with p = 0.02 (autapses allowed), C_m 200 pF,
  g_L 10 nS (tau_m 20 ms), E_L -60, V_th -50, V_reset -60 mV, t_ref 5 ms, E_ex 0,
  E_in -80 mV, tau_syn_ex 5, tau_syn_in 10 ms, weights 4 nS (excitatory) and 51 nS
  (inhibitory), delay 0.2 ms, V_m drawn uniformly in [V_reset, V_th) (the same values in
  both simulators); a kick for 50 ms: 20 ``poisson_generator``s of 100 Hz (stop 50 ms),
  each connected to every neuron with p = 0.01, weight 100 nS, delay 0.1 ms (NEST's
  generator semantics: every target its own train). The activity then sustains itself.

Each (simulator, network, precision) runs in a fresh process, so that its peak memory
(``ru_maxrss`` of that process, from ``os.wait4``) and threads are its own. NEST runs with
``local_num_threads`` = --threads (default 2); dendrax on jax's CPU device. Measured:
build (dendrax: the ``dx.Network`` with its connections, then ``dx.lower``; NEST: Create
+ Connect), the simulation (dendrax: ``dx.simulate`` called 1 + --repeats times with the
same arguments: the first compiles, the fastest of the others is the simulation time;
NEST: ``nest.Simulate`` for the same length 1 + --repeats times, the fastest; the
statistics come from the first call),
firing rates and the CV of the inter-spike intervals of --n-rec recorded neurons per
population after --transient ms, neuron-updates/s (neurons x steps / simulation time) and
recurrent synaptic events/s (spikes x out-degree / simulation time; the Poisson input
not counted).

    python benchmarks/point_networks.py                                 # everything
    python benchmarks/point_networks.py --quick                         # small smoke run
    python benchmarks/point_networks.py --markdown docs/benchmarks.md   # "## Point networks"
    python benchmarks/point_networks.py --json run.json
    python benchmarks/point_networks.py --from-json run.json --markdown docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _runner as R  # noqa: E402

TITLE = "Point networks"
DT = 0.1  # ms, both networks (NEST's example and the COBA benchmark)
SEED = 12345

# Brunel (2000) model A, NEST example scale
B_NE, B_NI = 10_000, 2_500
B_J, B_G, B_ETA, B_DELAY = 0.1, 5.0, 2.0, 1.5
B_NEURON = {"C_m": 1.0, "tau_m": 20.0, "t_ref": 2.0, "E_L": 0.0, "V_reset": 10.0,
            "V_m": 0.0, "V_th": 20.0}
# Brette et al. (2007) COBA (Vogels & Abbott 2005), PyNN VAbenchmarks values
V_N, V_P, V_WE, V_WI, V_DELAY = 4_000, 0.02, 4.0, 51.0, 0.2
V_NEURON = {"C_m": 200.0, "g_L": 10.0, "E_L": -60.0, "V_th": -50.0, "V_reset": -60.0,
            "t_ref": 5.0, "E_ex": 0.0, "E_in": -80.0, "tau_syn_ex": 5.0, "tau_syn_in": 10.0,
            "I_e": 0.0}
V_STIM_N, V_STIM_RATE, V_STIM_STOP, V_STIM_P, V_STIM_W, V_STIM_DELAY = 20, 100.0, 50.0, 0.01, 100.0, 0.2

RATE_TOL, CV_TOL = 0.10, 0.05  # "same statistics": |rate - NEST|/NEST, |CV - NEST|


def parse(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--networks", nargs="+", choices=["brunel", "coba"], default=["brunel", "coba"])
    p.add_argument("--scale", type=float, default=1.0,
                   help="Brunel size: NE = 10,000 x scale, NI = NE / 4 (CE, CI: 10 %%)")
    p.add_argument("--coba-n", type=int, default=V_N, help="COBA neurons (80 %% excitatory)")
    p.add_argument("--t-stop", type=float, nargs="+", default=[500.0, 1000.0],
                   help="ms simulated (Brunel; each length a run of its own)")
    p.add_argument("--coba-t-stop", type=float, nargs="+", default=[1000.0], help="ms (COBA)")
    p.add_argument("--transient", type=float, default=100.0,
                   help="ms left out of the rate and CV statistics")
    p.add_argument("--n-rec", type=int, default=500, help="neurons recorded per population")
    p.add_argument("--precisions", nargs="*", choices=["float64", "float32"],
                   default=["float64", "float32"], help="dendrax runs (float64: x64 on)")
    p.add_argument("--threads", type=int, nargs="+", default=[2],
                   help="NEST's local_num_threads, a run for each (dendrax is compared with "
                        "NEST's fastest run of any thread count or seed)")
    p.add_argument("--repeats", type=int, default=2,
                   help="timed simulations after the first (dendrax: the same call again; "
                        "NEST: Simulate for the same length again); the fastest counts")
    p.add_argument("--stat-seeds", type=int, default=2,
                   help="more NEST runs (1 thread, other seeds: other connectivity and "
                        "Poisson trains) for the spread of the statistics, first length only")
    p.add_argument("--skip-nest", action="store_true")
    p.add_argument("--quick", action="store_true",
                   help="a small smoke run: Brunel at scale 0.05, COBA of 400 neurons, 100 ms")
    p.add_argument("--timeout", type=float, default=1800.0, help="seconds per case")
    p.add_argument("--markdown", metavar="PATH",
                   help=f"write the results as section '## {TITLE}' of PATH")
    p.add_argument("--json", metavar="PATH", help="also write the raw results as JSON")
    p.add_argument("--from-json", metavar="PATH",
                   help="render the tables of a saved --json run instead of running")
    p.add_argument("--case", help=argparse.SUPPRESS)  # internal: one case, as JSON
    args = p.parse_args(argv)
    if args.quick:
        args.scale, args.coba_n = 0.05, 400
        args.t_stop, args.coba_t_stop, args.transient, args.n_rec = [100.0], [100.0], 20.0, 50
        args.stat_seeds, args.repeats = min(args.stat_seeds, 1), 1
    return args


def log(*a):
    print(*a, flush=True)


# --- the networks' numbers ---------------------------------------------------------------------

def brunel_sizes(scale):
    ne = max(int(round(B_NE * scale)), 4)
    ni = max(int(round(B_NI * scale)), 1)
    ce, ci = max(ne // 10, 1), max(ni // 10, 1)
    nu_th = B_NEURON["V_th"] / (B_J * ce * B_NEURON["tau_m"])  # 1/ms
    return {"NE": ne, "NI": ni, "CE": ce, "CI": ci,
            "p_rate": 1000.0 * B_ETA * nu_th * ce}  # Hz, the CE inputs of one neuron together


def coba_sizes(n):
    ne = int(round(0.8 * n))
    return {"NE": ne, "NI": n - ne}


def coba_v0(n, seed):
    """Initial membrane potentials (mV), the same in both simulators."""
    rng = np.random.default_rng(seed)
    return rng.uniform(V_NEURON["V_reset"], V_NEURON["V_th"], n)


def spike_stats(trains, t0, t1) -> dict:
    """Rate (Hz) over [t0, t1) ms and mean CV of the ISIs of trains with >= 3 spikes there."""
    span = (t1 - t0) * 1e-3
    inside = [np.asarray(t)[(np.asarray(t) >= t0) & (np.asarray(t) < t1)] for t in trains]
    n = sum(x.size for x in inside)
    cvs = []
    for x in inside:
        if x.size >= 3:
            isi = np.diff(np.sort(x))
            cvs.append(float(isi.std() / isi.mean()))
    return {"rate": n / max(len(trains), 1) / span if span > 0 else None,
            "cv": float(np.mean(cvs)) if cvs else None, "n_cv": len(cvs)}


def add_stats(out, exc, inh, case, sizes, out_degree):
    """Rates, CVs and throughput from the recorded trains (ms)."""
    t_stop = case["t_stop"]
    out["exc"] = spike_stats(exc, case["transient"], t_stop)
    out["inh"] = spike_stats(inh, case["transient"], t_stop)
    whole_e = spike_stats(exc, 0.0, t_stop)["rate"]
    whole_i = spike_stats(inh, 0.0, t_stop)["rate"]
    n = sizes["NE"] + sizes["NI"]
    n_steps = int(round(t_stop / DT))
    spikes = (whole_e * sizes["NE"] + whole_i * sizes["NI"]) * t_stop * 1e-3
    out["n_neurons"], out["n_steps"] = n, n_steps
    out["updates_per_s"] = n * n_steps / out["run_s"]
    out["events_per_s"] = spikes * out_degree / out["run_s"]
    return out


# --- dendrax ----------------------------------------------------------------------------------

def dendrax_brunel(dx, case):
    s = brunel_sizes(case["scale"])
    net = dx.Network()
    exc = net.population("iaf_psc_delta", s["NE"], name="exc", **B_NEURON)
    inh = net.population("iaf_psc_delta", s["NI"], name="inh", **B_NEURON)
    noise = net.population("poisson_generator", 1, name="noise", rate=s["p_rate"])
    for target in (exc, inh):
        net.connect(noise, target, weight=B_J, delay=B_DELAY)  # all to all: own trains
    seed = case["seed"]
    net.connect(exc, exc, weight=B_J, delay=B_DELAY, indegree=s["CE"], key=seed)
    net.connect(exc, inh, weight=B_J, delay=B_DELAY, indegree=s["CE"], key=seed + 1)
    net.connect(inh, exc, weight=-B_G * B_J, delay=B_DELAY, indegree=s["CI"], key=seed + 2)
    net.connect(inh, inh, weight=-B_G * B_J, delay=B_DELAY, indegree=s["CI"], key=seed + 3)
    return net, exc, inh, s


def dendrax_coba(dx, case):
    s = coba_sizes(case["n"])
    n = s["NE"] + s["NI"]
    v0 = coba_v0(n, case["seed"])
    net = dx.Network()
    exc = net.population("iaf_cond_exp", s["NE"], name="exc", **{**V_NEURON, "V_m": v0[:s["NE"]]})
    inh = net.population("iaf_cond_exp", s["NI"], name="inh", **{**V_NEURON, "V_m": v0[s["NE"]:]})
    stim = net.population("poisson_generator", V_STIM_N, name="kick", rate=V_STIM_RATE,
                          stop=V_STIM_STOP)
    seed = case["seed"]
    for k, target in enumerate((exc, inh)):
        net.connect(stim, target, weight=V_STIM_W, delay=V_STIM_DELAY, p=V_STIM_P, key=seed + k)
        net.connect(exc, target, weight=V_WE, delay=V_DELAY, p=V_P, key=seed + 2 + k)
        net.connect(inh, target, weight=-V_WI, delay=V_DELAY, p=V_P, key=seed + 4 + k)
    return net, exc, inh, s


def run_dendrax(case) -> dict:
    import jax

    if case["precision"] == "float64":
        jax.config.update("jax_enable_x64", True)
    warnings.simplefilter("ignore")  # float32's precision warning
    import dendrax as dx

    t0 = time.perf_counter()
    net, exc, inh, s = (dendrax_brunel if case["network"] == "brunel" else dendrax_coba)(dx, case)
    net.record_spikes(exc[:min(case["n_rec"], s["NE"])])
    net.record_spikes(inh[:min(case["n_rec"], s["NI"])])
    build_s = time.perf_counter() - t0
    n_conn = recurrent_connections(net)
    t0 = time.perf_counter()
    dx.lower(net)
    lower_s = time.perf_counter() - t0

    def once():
        t = time.perf_counter()
        res = dx.simulate(net, case["t_stop"], DT, key=case["seed"])
        trains = [np.asarray(x) for x in res.spikes]
        return trains, time.perf_counter() - t

    trains, first_s = once()
    runs = [once()[1] for _ in range(max(case.get("repeats", 1), 1))]
    run_s = min(runs)
    extra = {"compile_s": max(first_s - run_s, 0.0)}
    if case.get("overhead"):  # the same network for 10 steps: dx.simulate's per-call work
        t_stop = case["t_stop"]
        case["t_stop"] = 10 * DT
        short_first = once()[1]
        extra["call_s"] = min(once()[1], once()[1])
        extra["compile_s"] = max(short_first - extra["call_s"], 0.0)  # the same graph, 10 steps
        case["t_stop"] = t_stop
        extra["step_ms"] = (run_s - extra["call_s"]) / (int(round(t_stop / DT)) - 10) * 1e3
    ne_rec = min(case["n_rec"], s["NE"])
    out = {**case, "build_s": build_s, "lower_s": lower_s, "first_s": first_s,
           "run_s": run_s, "runs_s": runs, "n_conn": n_conn, **extra}
    return add_stats(out, trains[:ne_rec], trains[ne_rec:], case, s, n_conn / (s["NE"] + s["NI"]))


def recurrent_connections(net) -> int:
    """Connections between neurons (those from generators left out)."""
    from dendrax.point import Generator

    pops = net.wiring.populations
    starts = np.array([p.offset for p in pops])
    n = 0
    for b in net.wiring.blocks:
        if b.size and not isinstance(pops[np.searchsorted(starts, b.pre_neuron[0], "right") - 1].model,
                                     Generator):
            n += b.size
    return n


# --- NEST -------------------------------------------------------------------------------------

def run_nest(case) -> dict:
    import nest

    nest.set_verbosity("M_ERROR")
    nest.ResetKernel()
    nest.SetKernelStatus({"resolution": DT, "local_num_threads": case["threads"],
                          "rng_seed": case["seed"], "print_time": False})
    t0 = time.perf_counter()
    if case["network"] == "brunel":
        s = brunel_sizes(case["scale"])
        exc = nest.Create("iaf_psc_delta", s["NE"], params=B_NEURON)
        inh = nest.Create("iaf_psc_delta", s["NI"], params=B_NEURON)
        noise = nest.Create("poisson_generator", params={"rate": s["p_rate"]})
        ex_syn = {"synapse_model": "static_synapse", "weight": B_J, "delay": B_DELAY}
        in_syn = {"synapse_model": "static_synapse", "weight": -B_G * B_J, "delay": B_DELAY}
        rec_e, rec_i = nest.Create("spike_recorder"), nest.Create("spike_recorder")
        nest.Connect(noise, exc + inh, syn_spec=ex_syn)
        nest.Connect(exc[:min(case["n_rec"], s["NE"])], rec_e)
        nest.Connect(inh[:min(case["n_rec"], s["NI"])], rec_i)
        nest.Connect(exc, exc + inh, {"rule": "fixed_indegree", "indegree": s["CE"]}, ex_syn)
        nest.Connect(inh, exc + inh, {"rule": "fixed_indegree", "indegree": s["CI"]}, in_syn)
        n_conn = (s["NE"] + s["NI"]) * (s["CE"] + s["CI"])
    else:
        s = coba_sizes(case["n"])
        v0 = coba_v0(s["NE"] + s["NI"], case["seed"])
        exc = nest.Create("iaf_cond_exp", s["NE"], params=V_NEURON)
        inh = nest.Create("iaf_cond_exp", s["NI"], params=V_NEURON)
        (exc + inh).V_m = v0
        stim = nest.Create("poisson_generator", V_STIM_N,
                           params={"rate": V_STIM_RATE, "stop": V_STIM_STOP})
        rec_e, rec_i = nest.Create("spike_recorder"), nest.Create("spike_recorder")
        nest.Connect(exc[:min(case["n_rec"], s["NE"])], rec_e)
        nest.Connect(inh[:min(case["n_rec"], s["NI"])], rec_i)
        rule = {"rule": "pairwise_bernoulli", "p": V_P}
        nest.Connect(stim, exc + inh, {"rule": "pairwise_bernoulli", "p": V_STIM_P},
                     {"weight": V_STIM_W, "delay": V_STIM_DELAY})
        nest.Connect(exc, exc + inh, rule, {"weight": V_WE, "delay": V_DELAY})
        nest.Connect(inh, exc + inh, rule, {"weight": -V_WI, "delay": V_DELAY})
        n_conn = len(nest.GetConnections(exc + inh, exc + inh))
    build_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    nest.Simulate(case["t_stop"])
    first_s = time.perf_counter() - t0
    runs = []
    for _ in range(case.get("repeats", 0)):  # the same length again (the network goes on)
        t0 = time.perf_counter()
        nest.Simulate(case["t_stop"])
        runs.append(time.perf_counter() - t0)
    run_s = min([first_s] + runs)

    def trains(rec, nodes):  # the first call's spikes
        ev = rec.get("events")
        senders, times = np.asarray(ev["senders"]), np.asarray(ev["times"])
        senders, times = senders[times <= case["t_stop"]], times[times <= case["t_stop"]]
        ids = nodes.tolist()[:min(case["n_rec"], len(nodes))]
        return [times[senders == i] for i in ids]

    out = {**case, "build_s": build_s, "first_s": first_s, "run_s": run_s,
           "runs_s": [first_s] + runs, "n_conn": n_conn, "nest": nest.__version__}
    return add_stats(out, trains(rec_e, exc), trains(rec_i, inh), case, s,
                     n_conn / (s["NE"] + s["NI"]))


# --- cases in fresh processes -------------------------------------------------------------------

def run_case(case) -> dict:
    return run_nest(case) if case["sim"] == "nest" else run_dendrax(case)


def run_case_subprocess(case, timeout) -> dict:
    """One case in a fresh process: its result with the process's peak memory
    (``ru_maxrss`` from ``os.wait4``), or the case with an "error"."""
    import tempfile
    import threading

    cmd = [sys.executable, str(Path(__file__).resolve()), "--case", json.dumps(case)]
    t0 = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, text=True)
        killed = []
        timer = threading.Timer(timeout, lambda: (killed.append(1), proc.kill()))
        timer.start()
        _, status, usage = os.wait4(proc.pid, 0)
        timer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if killed:
        return {**case, "error": f"timed out after {timeout:g} s"}
    result = None
    for line in stdout.splitlines():
        if line.startswith("RESULT "):
            result = json.loads(line[len("RESULT "):])
    if result is None:
        tail = (stderr or stdout).strip().splitlines()[-3:]
        why = "killed (out of memory?)" if proc.returncode in (-9, 137) else " / ".join(tail)
        return {**case, "error": f"exit {proc.returncode}: {why}"}
    result["peak_mib"] = usage.ru_maxrss / 1024  # KiB on Linux
    result["wall_s"] = time.perf_counter() - t0
    return result


def case_main(case) -> dict:
    """Run one case in this (fresh) process; VmHWM: its peak memory seen from inside
    (``peak_mib`` comes from os.wait4 in the parent; in process, VmHWM stands in)."""
    r = run_case(case)
    r["peak_mib"] = r["hwm_mib"] = R.rss_kib()["VmHWM"] / 1024
    return r


def cases(args, have_nest):
    out = []
    nets = []
    if "brunel" in args.networks:
        nets += [("brunel", t) for t in args.t_stop]
    if "coba" in args.networks:
        nets += [("coba", t) for t in args.coba_t_stop]
    nets_first = {}
    for net, t_stop in nets:
        nets_first.setdefault(net, t_stop)
    for net, t_stop in nets:
        base = {"network": net, "t_stop": t_stop, "transient": args.transient,
                "n_rec": args.n_rec, "seed": SEED, "scale": args.scale, "n": args.coba_n,
                "repeats": args.repeats}
        if have_nest:
            out += [{**base, "sim": "nest", "threads": k} for k in args.threads]
            if t_stop == nets_first[net]:  # NEST's spread over realizations, 1 thread
                out += [{**base, "sim": "nest", "threads": 1, "seed": SEED + k, "stats": True,
                         "repeats": 0}
                        for k in range(1, args.stat_seeds + 1)]
        for prec in args.precisions:
            out.append({**base, "sim": "dendrax", "precision": prec, "overhead": not args.quick})
    return out


# --- output -----------------------------------------------------------------------------------

ok = lambda good: "**met**" if good else "**not met**"  # noqa: E731


def label(r):
    if r["sim"] == "nest":
        seed = f", seed {r['seed']}" if r.get("stats") else ""
        return " ".join(f"NEST {r.get('nest', '')}".split()) + \
            f" ({r['threads']} thread{'s' * (r['threads'] > 1)}{seed})"
    return f"dendrax {r['precision']}"


def net_name(r):
    if r["network"] == "brunel":
        s = brunel_sizes(r["scale"])
        return (f"Brunel A ({s['NE'] + s['NI']:,} iaf_psc_delta, "
                f"{(s['NE'] + s['NI']) * (s['CE'] + s['CI']) / 1e6:.3g} M syn.)")
    return f"COBA ({r['n']:,} iaf_cond_exp)"


HEADERS = ["network", "simulated ms", "simulator", "build s", "compile s", "simulation s",
           "x fastest NEST (> 1: dendrax faster)", "ms/step (+ per-call s)", "neuron-updates/s",
           "syn. events/s",
           "exc rate Hz", "exc CV ISI", "peak MiB"]
STATS_HEADERS = ["network", "simulated ms", "simulator", "exc rate Hz", "inh rate Hz",
                 "exc CV ISI", "inh CV ISI", "neurons with >= 3 spikes (exc, inh)"]


def same_net(x, r):
    return x["network"] == r["network"] and x["t_stop"] == r["t_stop"] and "error" not in x


def nest_of(results, r):
    """NEST's fastest run of r's network and length (any thread count or seed: the same
    work; on a loaded machine NEST's threads can lose more at its barriers than they gain)."""
    runs = [x for x in results if x["sim"] == "nest" and same_net(x, r)]
    return min(runs, key=lambda x: x["run_s"]) if runs else None


def nest_runs(results, r):
    """Every NEST run of r's network (any length, seed and thread count): realizations."""
    return [x for x in results if x["sim"] == "nest" and x["network"] == r["network"]
            and "error" not in x]


def rows(results):
    out = []
    for r in results:
        if r.get("stats"):
            continue
        head = [net_name(r), f"{r['t_stop']:g}", label(r)]
        if "error" in r:
            out.append(head + [r["error"]] + [""] * (len(HEADERS) - 4))
            continue
        n = nest_of(results, r)
        build = (f"{r['build_s']:.2f}" if r["sim"] == "nest"
                 else f"{r['build_s'] + r['lower_s']:.2f} ({r['build_s']:.2f} + lower "
                      f"{r['lower_s']:.2f})")
        ratio = R.fmt(n["run_s"] / r["run_s"], ".2f") if n else "-"
        step = (f"{r['step_ms']:.2f} (+ {r['call_s']:.2f})" if "step_ms" in r
                else f"{r['run_s'] / r['n_steps'] * 1e3:.2f}")
        out.append(head + [build, R.fmt(r.get("compile_s"), ".1f"), f"{r['run_s']:.2f}", ratio,
                           step,
                           f"{r['updates_per_s']:.3g}", f"{r['events_per_s']:.3g}",
                           R.fmt(r["exc"]["rate"], ".1f"), R.fmt(r["exc"]["cv"], ".2f"),
                           f"{r['peak_mib']:.0f}"])
    return out


def stats_rows(results):
    return [[net_name(r), f"{r['t_stop']:g}", label(r), R.fmt(r["exc"]["rate"], ".1f"),
             R.fmt(r["inh"]["rate"], ".1f"), R.fmt(r["exc"]["cv"], ".2f"),
             R.fmt(r["inh"]["cv"], ".2f"), f"{r['exc']['n_cv']}, {r['inh']['n_cv']}"]
            for r in results if "error" not in r]


ALIVE_HZ = 1.0  # a realization whose excitatory rate after the transient is below this fell silent


def same_stats(results, r):
    """(same statistics?, text): dendrax run r's excitatory rate and CV within the range of
    NEST's realizations (those that did not fall silent) widened by the tolerances."""
    runs = nest_runs(results, r)
    alive = [x for x in runs if (x["exc"]["rate"] or 0) >= ALIVE_HZ and x["exc"]["cv"] is not None]
    silent = len(runs) - len(alive)
    note = f"; {silent} of {len(runs)} NEST realizations fell silent" if silent else ""
    a = r["exc"]
    if not alive:
        return False, "no NEST realization with activity" + note
    if (a["rate"] or 0) < ALIVE_HZ or a["cv"] is None:
        return False, f"dendrax fell silent ({R.fmt(a['rate'], '.1f')} Hz)" + note
    lo, hi = min(x["exc"]["rate"] for x in alive), max(x["exc"]["rate"] for x in alive)
    clo, chi = min(x["exc"]["cv"] for x in alive), max(x["exc"]["cv"] for x in alive)
    good = lo * (1 - RATE_TOL) <= a["rate"] <= hi * (1 + RATE_TOL) and \
        clo - CV_TOL <= a["cv"] <= chi + CV_TOL
    span = lambda x, y, f: f"{x:{f}}" if f"{x:{f}}" == f"{y:{f}}" else f"{x:{f}}-{y:{f}}"  # noqa: E731
    return good, (f"exc rate {a['rate']:.1f} Hz vs NEST {span(lo, hi, '.1f')} Hz, CV "
                  f"{a['cv']:.2f} vs {span(clo, chi, '.2f')} over {len(alive)} NEST "
                  f"realization{'s' * (len(alive) > 1)}" + note)


def targets(results) -> list[str]:
    lines = []
    for r in results:
        if r["sim"] != "dendrax" or "error" in r:
            continue
        n = nest_of(results, r)
        if n is None:
            continue
        x = n["run_s"] / r["run_s"]
        good, text = same_stats(results, r)
        lines.append(f"- {net_name(r)}, {r['t_stop']:g} ms, {label(r)}: faster than NEST "
                     f"(its fastest run here, {n['threads']} thread{'s' * (n['threads'] > 1)}): "
                     f"{r['run_s']:.2f} s vs {n['run_s']:.2f} s (x{x:.2f}) {ok(x > 1)}; same "
                     f"statistics ({text}) {ok(good)}")
    return lines


def findings(results) -> list[str]:
    """Where dendrax's time and memory go, from the rows: per step against NEST, lowering,
    the peaks, dx.simulate's per-call work."""
    lines = []
    ok_runs = [r for r in results if "error" not in r]
    nest_build = {}
    for x in ok_runs:
        if x["sim"] == "nest":
            nest_build[x["network"]] = min(nest_build.get(x["network"], x["build_s"]), x["build_s"])
    for r in ok_runs:
        if r["sim"] != "dendrax" or "step_ms" not in r:
            continue
        n = nest_of(results, r)
        fan_out = r["n_conn"] / r["n_neurons"]
        per_step = r["events_per_s"] * r["run_s"] / fan_out / r["n_steps"]
        what = (f"{r['n_neurons']:,} Poisson draws, the delivery of ~{per_step:.0f} spikes x "
                f"{fan_out:,.0f} targets (native event kernel) and {r['n_neurons']:,} "
                "`iaf_psc_delta` updates"
                if r["network"] == "brunel" else
                f"{r['n_neurons']:,} `iaf_cond_exp` updates by NEST's adaptive RKF45, step for "
                "step, vectorised (a `while_loop` until every neuron reached the end of the "
                "step: all take the sub-steps of the slowest)")
        lines.append(f"- {net_name(r)}, {r['t_stop']:g} ms, {r['precision']}: "
                     f"{r['step_ms']:.2f} ms per step ({what})"
                     + (f"; NEST's fastest run {n['run_s'] / n['n_steps'] * 1e3:.2f} ms per step "
                        f"({n['threads']} thread{'s' * (n['threads'] > 1)})" if n else "")
                     + f"; `dx.simulate`'s per-call work {r['call_s']:.2f} s.")
    for r in ok_runs:
        if r["sim"] == "dendrax" and r["network"] == "brunel" and r["precision"] == "float64":
            lines.append(
                f"- Building Brunel: `dx.lower` of the {r['n_conn'] / 1e6:.1f} M connections takes "
                f"{r['lower_s']:.1f} s (the `dx.Network` itself {r['build_s']:.2f} s"
                + (f"; NEST's whole Create + Connect {nest_build['brunel']:.1f} s"
                   if "brunel" in nest_build else "")
                + "): per-connection Python-object arrays of synapse and source kinds "
                "(`np.full(..., dtype=object)` and string comparisons over every connection) "
                "and a comparison sort (stable `argsort` of int64 sources) for the CSR order. "
                f"The process's peak ({r['peak_mib']:.0f} MiB) is reached inside `dx.lower` "
                "(its transient copies), not in the simulation; float32 does not lower it "
                "(the description's arrays are float64).")
            break
    return lines


def markdown(results, args, machine, notes) -> str:
    body = [
        "Written by `benchmarks/point_networks.py`. dt 0.1 ms. Two networks built in dendrax "
        "and in NEST from the same numbers (our own scripts, from the models' descriptions):",
        "",
        "- *Brunel A*: Brunel (2000) model A as NEST's example builds it: 10,000 excitatory + "
        "2,500 inhibitory `iaf_psc_delta` (tau_m 20 ms, C_m 1 pF, t_ref 2 ms, E_L 0, "
        "V_reset 10, V_th 20, V_m 0 mV), fixed in-degree CE = 1,000 excitatory (J 0.1 mV) "
        "and CI = 250 inhibitory (-0.5 mV, g = 5) inputs per neuron (15.6 M synapses), delay "
        "1.5 ms, every neuron its own Poisson train of CE nu_ext = 20 kHz (eta = 2) from one "
        "`poisson_generator`"
        + (f" (here scaled by {args.scale:g})" if args.scale != 1 else "") + ".",
        "- *COBA*: Brette et al. (2007) benchmark 1 after Vogels & Abbott (2005), values of "
        f"PyNN's VAbenchmarks: {args.coba_n:,} `iaf_cond_exp` (80 % excitatory), p = 0.02, "
        "C_m 200 pF, g_L 10 nS, E_L -60, V_th -50, V_reset -60 mV, t_ref 5 ms, E_ex 0, E_in "
        "-80 mV, tau_syn 5 / 10 ms, weights 4 / 51 nS, delay 0.2 ms, V_m uniform in [-60, -50) "
        "mV (the same values in both); a 50 ms kick from 20 `poisson_generator`s of 100 Hz "
        "(p = 0.01 to every neuron, 100 nS), after which the activity sustains itself.",
        "",
        *machine,
        "",
        "Speed and memory:",
        "",
        R.markdown_table(HEADERS, rows(results)),
        "",
        "Statistics (every run, including NEST's runs with other seeds):",
        "",
        R.markdown_table(STATS_HEADERS, stats_rows(results)),
        "",
        "Targets (the same cores as NEST; *same statistics*: dendrax's excitatory rate within "
        f"NEST's range over its realizations +- {100 * RATE_TOL:.0f} %, its CV within NEST's "
        f"range +- {CV_TOL:g}; realizations below {ALIVE_HZ:g} Hz after the transient count as "
        "fallen silent and are left out of the range):",
        "",
        *targets(results),
        "",
        "Where the time goes (from these rows):",
        "",
        *findings(results),
        "",
        "How it is measured:",
        "",
        "- Every row is a fresh process (its peak resident memory is its own: `ru_maxrss` "
        "from `os.wait4`, the whole process including Python and the simulator). NEST: "
        "`local_num_threads` as the row says (*x fastest NEST*: against NEST's fastest "
        "run of that network and length, any thread count or seed), build = Create + "
        "Connect, *simulation* = the fastest "
        f"of 1 + {args.repeats} `nest.Simulate` calls of the row's length (the network going "
        "on; the first call includes NEST's one-off preparation). dendrax: build = the "
        "`dx.Network` with its connections + `dx.lower`; `dx.simulate` is called "
        f"1 + {args.repeats} times with the same arguments: *simulation* = the fastest of "
        "the calls after the first (everything `dx.simulate` does, including its per-call "
        "work on the connection arrays), *compile* = first call minus steady call of the "
        "same network simulated for 10 steps (where measured; else of the row's length). "
        "float64 runs with `jax_enable_x64` on (dendrax's precision contract), float32 "
        "without. Statistics come from the first call of each.",
        f"- Statistics over the first {args.n_rec} neurons of each population, from "
        f"{args.transient:g} ms to the end: rate, and the CV of the inter-spike intervals "
        "(mean over neurons with >= 3 spikes). The simulators draw their own connectivity "
        "and Poisson trains, so the statistics agree in distribution, not spike for spike; "
        f"NEST also runs {args.stat_seeds} more seed(s) (1 thread, the first length) for the "
        "spread between realizations; they are timed too, and NEST's fastest run of any "
        "thread count or seed is the speed reference of the targets.",
        "- ms/step: simulation s / steps; for dendrax, where measured, the same network "
        "simulated for 10 steps gives the per-call work of `dx.simulate` (in parentheses: "
        "checks, the O(connections) preparation of the connection arrays, transfers) and "
        "ms/step = (simulation s - that) / (steps - 10).",
        "- neuron-updates/s = neurons x steps / simulation s; syn. events/s = recurrent spikes "
        "(whole run) x mean out-degree / simulation s (the Poisson input not counted).",
        "- The machine is shared with other jobs (see the load average): timings move by "
        "tens of percent from run to run, and more for NEST's threads: they synchronise "
        "every min-delay interval (Brunel 1.5 ms, COBA 0.2 ms: 5,000 times per simulated "
        "second), and a thread the OS has descheduled stalls the other, so a loaded machine "
        "can make NEST's 2-thread runs slower than its 1-thread ones (compare the rows). For "
        "scale: on a quiet machine NEST 3.10 with 2 threads builds the Brunel network in "
        "2.5 s and simulates 500 ms in 4.9 s at ~0.8 GB (the project's reference "
        "measurement, not from this script's run).",
        *[f"- {n}" for n in notes],
    ]
    return "\n".join(body)


def report(results, args, machine, notes):
    log("\n" + R.markdown_table(HEADERS, rows(results)) + "\n")
    log(R.markdown_table(STATS_HEADERS, stats_rows(results)) + "\n")
    for line in targets(results):
        log(line)
    if args.markdown:
        R.write_section(args.markdown, TITLE, markdown(results, args, machine, notes))
        log(f"wrote section '## {TITLE}' of {args.markdown}")


def main(argv=None) -> int:
    # saved and replayed results are {"results": [...]}; report takes the list
    show = lambda res, a, m, n: report(res["results"], a, m, n)  # noqa: E731
    argv, args = R.start(argv, parse, show, case_main)
    if args is None:
        return 0
    notes = []
    have_nest = not args.skip_nest and R.optional("nest") is not None
    if args.skip_nest:
        log("NEST: skipped (--skip-nest)")
    elif not have_nest:
        log(f"NEST: {R.SKIPPED}")
        notes.append(f"NEST: {R.SKIPPED}")
    results = []
    grid = cases(args, have_nest)
    for i, case in enumerate(grid):
        r = run_case_subprocess(case, args.timeout)
        results.append(r)
        what = f"{case['network']} {case['t_stop']:g} ms {label(case)}"
        if "error" in r:
            log(f"[{i + 1}/{len(grid)}] {what}: {r['error']}")
        else:
            log(f"[{i + 1}/{len(grid)}] {what}: build {r['build_s']:.2f} s"
                + (f" + lower {r['lower_s']:.2f} s, compile {r['compile_s']:.1f} s"
                   if "lower_s" in r else "")
                + f", simulation {r['run_s']:.2f} s, exc {R.fmt(r['exc']['rate'], '.1f')} Hz "
                f"CV {R.fmt(r['exc']['cv'], '.2f')}, inh {R.fmt(r['inh']['rate'], '.1f')} Hz, "
                f"peak {r['peak_mib']:.0f} MiB [{r['wall_s']:.0f} s]")
    nest_v = next((r["nest"] for r in results if r.get("nest")), None)
    return R.finish(__file__, argv, args, notes, {"results": results}, show,
                    extra_versions={"nest": nest_v})


if __name__ == "__main__":
    sys.exit(main())
