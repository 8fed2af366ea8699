"""Cortical columns (``dendrax.column``): speed and memory of two columns.

* "izhikevich": a 1,000-neuron column (``cortical_eig``: 80 % regular-spiking E, 20 %
  fast-spiking I; four layers L2/3, L4, L5, L6; the default connectivity, p = 0.1, and
  drive) for 1 s at dt 0.1 ms with every proxy probe (SPK, Vm, MUA-proxy, source-proxy,
  LFP-proxy, CSD-proxy, EEG-proxy, MEG-proxy, EMM; 16 electrodes).
* "detailed": a column of 50 L5PC-like cells (``multicompartment``/``l5pc_like``: Hay et al.
  2011 channels on the synthetic pyramidal morphology; two layers; p = 0.1; a 0.4 nA IClamp
  and Poisson synaptic input on tuft and basal dendrites) at dt 0.025 ms, once with the
  physical LFP on 16 laminar electrodes (line source, recorded inside the run) and once
  with the same probes less the LFP (SPK and Vm): the LFP's cost is the difference.

Each case runs in a fresh process (``--case``): construct (``dc.construct``), the first
``model.simulate()`` (compilation and run), then --repeats more runs (the median is the
run time). Reported: seconds per biological second, peak resident memory of the process
(VmHWM, whole process), the mean rate, and for the detailed column the LFP's overhead
(run with LFP / run without - 1; target < 10 %).

    python benchmarks/columns.py                                    # everything
    python benchmarks/columns.py --quick                            # a small smoke run
    python benchmarks/columns.py --markdown docs/benchmarks.md      # "## Columns"
    python benchmarks/columns.py --json run.json
    python benchmarks/columns.py --from-json run.json --markdown docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _runner as R  # noqa: E402

TITLE = "Columns"
PROXIES = ["SPK", "Vm", "MUA-proxy", "source-proxy", "LFP-proxy", "CSD-proxy", "EEG-proxy",
           "MEG-proxy", "EMM"]
HEADERS = ["column", "neurons (compartments)", "probes", "biological ms", "dt ms",
           "construct s", "compile + first run s", "run s", "s per biological s",
           "peak MiB", "rate Hz"]


def log(msg):
    print(msg, flush=True)


def parse(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    ap.add_argument("--izh-n", type=int, default=1000)
    ap.add_argument("--izh-t", type=float, default=1000.0, help="ms")
    ap.add_argument("--cells", type=int, default=50)
    ap.add_argument("--cells-t", type=float, default=100.0, help="ms")
    ap.add_argument("--electrodes", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--skip-detailed", action="store_true")
    ap.add_argument("--in-process", action="store_true", help="no subprocesses (tests)")
    ap.add_argument("--timeout", type=float, default=3600.0)
    ap.add_argument("--markdown")
    ap.add_argument("--json")
    ap.add_argument("--from-json")
    ap.add_argument("--case")
    args = ap.parse_args(argv)
    if args.quick:
        args.izh_n, args.izh_t, args.cells, args.cells_t = 100, 100.0, 2, 2.0
        args.electrodes, args.repeats = 6, 1
    return args


def config(case):
    import dendrax.column as dc

    if case["kind"] == "izhikevich":
        return (dc.configuration().runtime(seed=1, duration_ms=case["t"], dt_ms=case["dt"])
                .column("A", ["L2/3", "L4", "L5", "L6"], case["n"])
                .cell_types({"E": 0.8, "I": 0.2}).set_emitter("izhikevich", "cortical_eig")
                .probes(PROXIES, electrodes=case["electrodes"]))
    modes = ["SPK", "Vm"] + (["LFP"] if case["lfp"] else [])
    types = {"E": 0.8, "I": 0.2} if case["n"] >= 5 else {"E": 0.5, "I": 0.5}
    return (dc.configuration().runtime(seed=1, duration_ms=case["t"], dt_ms=case["dt"])
            .column("A", ["L2/3", "L5"], case["n"]).cell_types(types)
            .set_emitter("multicompartment", "l5pc_like").drive(mean=0.4)
            .probes(modes, electrodes=case["electrodes"]))


def run_case(case) -> dict:
    R.setup_jax()
    import dendrax.column as dc

    t0 = time.perf_counter()
    model = dc.construct(config(case))
    construct_s = time.perf_counter() - t0
    sig, first, run_s = R.timed(lambda: model.simulate(), case["repeats"])
    comps = getattr(model._detailed, "n_compartments", None)
    rate = model.compute_readout(sig, dc.readout_spec("r", "spike_rate_hz"))["r"]
    return {**case, "construct_s": construct_s, "first_s": first, "run_s": run_s,
            "per_bio_s": run_s / (case["t"] * 1e-3), "compartments": comps, "rate": rate,
            "signals": list(sig.present), "peak_mib": R.rss_kib()["VmHWM"] / 1024}


def cases(args):
    out = [{"kind": "izhikevich", "n": args.izh_n, "t": args.izh_t, "dt": 0.1,
            "electrodes": args.electrodes, "repeats": args.repeats}]
    if not args.skip_detailed:
        for lfp in (False, True):
            out.append({"kind": "detailed", "n": args.cells, "t": args.cells_t, "dt": 0.025,
                        "electrodes": args.electrodes, "repeats": args.repeats, "lfp": lfp})
    return out


def rows(results):
    out = []
    for r in results:
        if "error" in r:
            out.append([r["kind"], r["n"], "-", r["t"], r["dt"], r["error"]] + ["-"] * 5)
            continue
        what = "izhikevich (cortical_eig)" if r["kind"] == "izhikevich" else "L5PC-like"
        probes = "all proxies" if r["kind"] == "izhikevich" else (
            f"SPK, Vm, LFP ({r['electrodes']} el.)" if r["lfp"] else "SPK, Vm")
        n = f"{r['n']}" + (f" ({r['compartments']})" if r.get("compartments") else "")
        out.append([what, n, probes, f"{r['t']:g}", f"{r['dt']:g}", R.fmt(r["construct_s"], ".2f"),
                    R.fmt(r["first_s"], ".1f"), R.fmt(r["run_s"], ".2f"),
                    R.fmt(r["per_bio_s"], ".3g"), R.fmt(r["peak_mib"], ".0f"),
                    R.fmt(r["rate"], ".1f")])
    return out


def lfp_overhead(results):
    """(run with LFP / run without) - 1 for the detailed column, or None."""
    d = {r.get("lfp"): r for r in results if r.get("kind") == "detailed" and "error" not in r}
    if True in d and False in d:
        return d[True]["run_s"] / d[False]["run_s"] - 1.0
    return None


def markdown(results, args, machine, notes) -> str:
    over = lfp_overhead(results)
    lines = ["Written by `benchmarks/columns.py` (see its docstring for the models).", "",
             *machine, "", R.markdown_table(HEADERS, rows(results)), ""]
    if over is not None:
        lines.append(f"The physical LFP ({args.electrodes} electrodes, line source, inside the "
                     f"run) costs {100 * over:+.1f} % of the detailed column's run time "
                     f"(target < 10 %).")
    lines += ["", "Run time: median of the runs after the first (which compiles); peak "
              "MiB: the process's VmHWM (Python, JAX and the simulation together)."]
    lines += [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"


def report(results, args, machine, notes):
    log("\n" + R.markdown_table(HEADERS, rows(results)) + "\n")
    over = lfp_overhead(results)
    if over is not None:
        log(f"LFP overhead: {100 * over:+.1f} %")
    if args.markdown:
        R.write_section(args.markdown, TITLE, markdown(results, args, machine, notes))


def main(argv=None) -> int:
    # saved and replayed results are {"results": [...]}; report takes the list
    show = lambda res, a, m, n: report(res["results"], a, m, n)  # noqa: E731
    argv, args = R.start(argv, parse, show, run_case)
    if args is None:
        return 0
    results = []
    grid = cases(args)
    for i, case in enumerate(grid):
        r = run_case(case) if args.in_process else R.run_case_subprocess(__file__, case,
                                                                          args.timeout)
        results.append(r)
        if "error" in r:
            log(f"[{i + 1}/{len(grid)}] {case['kind']}: {r['error']}")
        else:
            log(f"[{i + 1}/{len(grid)}] {case['kind']} n={case['n']} lfp={case.get('lfp', '-')}: "
                f"construct {r['construct_s']:.2f} s, first {r['first_s']:.1f} s, run "
                f"{r['run_s']:.2f} s ({r['per_bio_s']:.3g} s per biological s), peak "
                f"{r['peak_mib']:.0f} MiB, rate {r['rate']:.1f} Hz")
    return R.finish(__file__, argv, args, [], {"results": results}, show)


if __name__ == "__main__":
    sys.exit(main())
