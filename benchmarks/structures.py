"""Compiled code per cell structure: a sweep over morphologies in one process.

40 HH ball-and-stick cells whose dendrites have 1, 2, ..., 40 segments (each a new
structure: its geometry, initial state and time loop compile), each simulated for 5 ms
and dropped, as a parameter sweep over morphologies does. After each, the process's RSS
(after ``gc.collect`` and glibc's ``malloc_trim``) and its number of memory mappings
(``/proc/self/maps``; Linux allows 65,530 a process); then the last cell rebuilt and
simulated again (its compiled code is kept, ``dendrax.compiled``: nothing compiles).

    python benchmarks/structures.py                                # 40 structures (~1 min)
    python benchmarks/structures.py --markdown docs/benchmarks.md  # rewrite "## Structure sweep"
    python benchmarks/structures.py --json run.json                # keep the raw results
    python benchmarks/structures.py --from-json run.json --markdown docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _runner as R  # noqa: E402

TITLE = "Structure sweep"
T_STOP, DT, V_INIT, CELSIUS = 5.0, 0.025, -65.0, 6.3
KEPT = 8  # structures whose compiled code stays after their cells die (dendrax.compiled.RECENT)
# what a dropped structure may leave behind (compiled code was kept for the process's life:
# ~55 MiB and ~145 memory mappings per structure before dendrax.compiled)
TARGET_MIB, TARGET_MAPS = 4.0, 5.0
HEADERS = ["structures", "first simulate (s): median, range", "again (ms)",
           f"RSS after the 1st / {KEPT}th / last (MiB)",
           f"mappings after the 1st / {KEPT}th / last", "per dropped structure: MiB, mappings"]


def parse(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--structures", type=int, default=40,
                   help="cells of different structure (default 40)")
    p.add_argument("--markdown", metavar="PATH",
                   help=f"write the results as section '## {TITLE}' of PATH")
    p.add_argument("--json", metavar="PATH", help="also write the raw results as JSON")
    p.add_argument("--from-json", metavar="PATH",
                   help="render the tables of a saved --json run instead of running")
    args = p.parse_args(argv)
    if args.structures < KEPT + 4:
        p.error(f"--structures {args.structures}: at least {KEPT + 4} (the growth is fitted "
                f"over the structures after the {KEPT} that stay compiled)")
    return args


def _status() -> tuple[float, int]:
    """This process's RSS (MiB) and memory mappings."""
    with open("/proc/self/maps") as f:
        maps = sum(1 for _ in f)
    return R.rss_kib()["VmRSS"] / 1024.0, maps


def sweep(n: int) -> dict:
    """``n`` cells of different structure, each simulated once and dropped; the RSS and
    mappings after each (malloc_trim'd), each one's first simulate (compile + run), then
    the last cell rebuilt and simulated again."""
    jax = R.setup_jax()
    import dendrax as dx
    from dendrax.compiled import RECENT

    trim = getattr(ctypes.CDLL(None), "malloc_trim", None)  # glibc

    def build(k):
        cell = dx.Cell.ball_and_stick(nseg=[1, k])
        cell.insert("hh")
        cell.iclamp(cell.soma(0.5), delay=1.0, dur=T_STOP, amp=0.3)
        return cell.record("v", cell.soma(0.5))

    def simulate(cell):
        t0 = time.perf_counter()
        res = dx.simulate(cell, T_STOP, DT, v_init=V_INIT, celsius=CELSIUS)
        jax.block_until_ready(res.traces)
        return time.perf_counter() - t0

    first, rss, maps = [], [], []
    for k in range(1, n + 1):
        first.append(simulate(build(k)))
        gc.collect()
        if trim is not None:
            trim(0)
        r, m = _status()
        rss.append(r)
        maps.append(m)
    again = [simulate(build(n)) for _ in range(5)]
    after = np.arange(RECENT, n)  # each a structure dropped: one more beyond RECENT

    def slope(y):  # the growth per dropped structure
        return float(np.polyfit(after, np.asarray(y)[after], 1)[0])

    return {"structures": n, "first_s": first, "rss_mib": rss, "maps": maps,
            "again_s": float(np.median(again)), "mib_per_structure": slope(rss),
            "maps_per_structure": slope(maps), "trimmed": trim is not None}


def rows(r) -> list:
    first, rss, maps = r["first_s"], r["rss_mib"], r["maps"]

    def pick(y, f):
        return " / ".join(f(y[i]) for i in (0, KEPT - 1, -1))

    return [[r["structures"], f"{np.median(first):.2f} ({min(first):.2f}-{max(first):.2f})",
             f"{r['again_s'] * 1e3:.1f}", pick(rss, lambda x: f"{x:.0f}"),
             pick(maps, str), f"{r['mib_per_structure']:+.2f}, {r['maps_per_structure']:+.2f}"]]


def target(r) -> str:
    mib, maps = r["mib_per_structure"], r["maps_per_structure"]
    kept_mib, kept_maps = ((r[k][KEPT - 1] - r[k][0]) / (KEPT - 1) for k in ("rss_mib", "maps"))
    ok = mib <= TARGET_MIB and maps <= TARGET_MAPS
    return (f"- a sweep over {r['structures']} cell structures keeps at most {TARGET_MIB:g} MiB "
            f"and {TARGET_MAPS:g} memory mappings per dropped structure (a kept one: "
            f"{kept_mib:.0f} MiB, {kept_maps:.0f} mappings): {mib:+.2f} MiB, {maps:+.2f} "
            f"mappings: **{'met' if ok else 'not met'}**")


def markdown(r, machine, notes) -> str:
    n = r["structures"]
    body = [
        "Written by `benchmarks/structures.py`. In one process, "
        f"{n} HH ball-and-stick cells whose dendrites have 1, 2, ..., {n} segments (each a "
        "new structure: its geometry, initial state and time loop compile), each simulated "
        f"for {T_STOP:g} ms (float64, dt {DT:g} ms), v at the soma, then dropped, as a sweep "
        "over morphologies does. *first simulate*: compile + run of each; *again*: the last "
        "cell rebuilt and simulated (median of 5; its compiled code is kept, "
        "`dendrax.compiled`); *RSS* and *mappings* (`/proc/self/maps`; Linux allows 65,530 "
        "a process) after each cell, after `gc.collect()` and glibc's `malloc_trim`; the "
        f"code of the last {KEPT} structures run stays compiled; *per dropped structure*: "
        f"the least-squares slope from the {KEPT + 1}th structure on, each of which drops "
        "one (what stays: JAX's own bounded caches of traced functions per shape). Before "
        "compiled code was freed with its structure, each structure kept ~55 MiB and ~145 "
        "mappings for the process's life.",
        "",
        *machine,
        "",
        R.markdown_table(HEADERS, rows(r)),
        "",
        "Target (2 shared cores):",
        "",
        target(r),
        "",
    ]
    if notes:
        body += ["Notes:", ""] + [f"- {x}" for x in notes] + [""]
    return "\n".join(body)


def report(res, args, machine, notes):
    print("\n" + R.markdown_table(HEADERS, rows(res)) + "\n\n" + target(res), flush=True)
    if args.markdown:
        R.write_section(args.markdown, TITLE, markdown(res, machine, notes))
        print(f"wrote section '## {TITLE}' of {args.markdown}", flush=True)


def main(argv=None) -> int:
    argv, args = R.start(argv, parse, report)
    if args is None:
        return 0
    res = sweep(args.structures)
    return R.finish(__file__, argv, args, [], res, report)


if __name__ == "__main__":
    sys.exit(main())
