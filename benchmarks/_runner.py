"""The runner every benchmark shares: environment, timing and memory, run files, output.

A benchmark's ``main`` starts with ``start`` (which serves ``--case``, one case in a
fresh process, and ``--from-json``, a saved run re-rendered) and ends with ``finish``
(machine lines, the saved run, the report); ``run_case_subprocess`` runs one case in a
fresh process; ``markdown_table`` and ``write_section`` write docs/benchmarks.md.
"""

from __future__ import annotations

import datetime
import importlib
import os
import platform
import resource
import statistics
import sys
import time
import warnings
from pathlib import Path

SKIPPED = "skipped (not installed)"


# --- environment ---------------------------------------------------------------------

def setup_jax():
    """Import jax with float64 on (as NEURON); returns the module."""
    import jax

    jax.config.update("jax_enable_x64", True)
    return jax


def optional(name: str):
    """The module ``name``, or None when it cannot be imported (a benchmark then skips it)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return importlib.import_module(name)
    except Exception:  # noqa: BLE001 - any failure to import means "not available"
        return None


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def versions() -> dict:
    out = {"python": platform.python_version()}
    for name in ("dendrax", "jax", "jaxlib", "numpy", "neuron", "jaxley"):
        mod = optional(name)
        out[name] = getattr(mod, "__version__", "?") if mod is not None else "not installed"
    return out


def shown_args(argv) -> list[str]:
    """argv without the options that do not change the results (--json PATH)."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == "--json":
            skip = True
        elif not a.startswith("--json="):
            out.append(a)
    return out


def machine_lines(command: str) -> list[str]:
    """Markdown lines: machine, versions, date and the command that produced a table."""
    v = versions()
    try:
        from dendrax.solver import native_available

        native = ("native Hines solve (CPU) available" if native_available("cpu")
                  else "pure-JAX Hines solve (native CPU kernel unavailable)")
    except Exception:  # noqa: BLE001
        native = "?"
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return [
        f"- Machine: {cpu_model()}, {os.cpu_count()} cores, Linux {platform.release()}; "
        f"load average at the end of the run {load}",
        "- Versions: " + ", ".join(f"{k} {val}" for k, val in v.items()) + f"; dendrax: {native}",
        f"- Date: {datetime.datetime.now().strftime('%Y-%m-%d %H:%M')}",
        f"- Command: `{command}`",
    ]


# --- timing, memory, output ---------------------------------------------------------------

def timed(fn, repeats: int):
    """(result of the first call, seconds of the first call, median seconds of ``repeats``
    further calls). ``fn`` must block until its result is ready."""
    t0 = time.perf_counter()
    out = fn()
    first = time.perf_counter() - t0
    times = []
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return out, first, statistics.median(times)


def rss_kib() -> dict:
    """VmRSS and VmHWM (peak) of this process, KiB."""
    out = {}
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(("VmRSS", "VmHWM")):
                    k, v = line.split(":")
                    out[k] = int(v.split()[0])
    except OSError:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        out = {"VmRSS": peak, "VmHWM": peak}
    return out


def reset_peak_rss() -> bool:
    """Reset this process's VmHWM to its current RSS (Linux clear_refs 5)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def save_run(path, argv, machine, notes, results) -> None:
    """Save a benchmark run (its arguments, machine lines, notes, results) as JSON."""
    import json

    Path(path).write_text(json.dumps({"argv": list(argv), "machine": machine, "notes": notes,
                                      "results": results}, indent=1))


def load_run(path) -> dict:
    import json

    return json.loads(Path(path).read_text())


def run_case_subprocess(script, case, timeout) -> dict:
    """One case of ``script`` (its ``--case`` path) in a fresh process: its result, or the
    case with an "error" (timeout, out of memory, the last lines of its output)."""
    import json
    import subprocess
    import sys

    cmd = [sys.executable, str(Path(script).resolve()), "--case", json.dumps(case)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {**case, "error": f"timed out after {timeout:g} s"}
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
    why = "killed (out of memory?)" if proc.returncode in (-9, 137) else " / ".join(tail)
    return {**case, "error": f"exit {proc.returncode}: {why}"}


def replay(args, parse, report, run_case=None) -> bool:
    """The two paths every benchmark's main shares: ``--case`` (one case, in a subprocess:
    print its result) and ``--from-json`` (re-render a saved run). True if one was taken."""
    import json

    if run_case is not None and getattr(args, "case", None):
        print("RESULT " + json.dumps(run_case(json.loads(args.case))), flush=True)
        return True
    if args.from_json:
        saved = load_run(args.from_json)
        run_args = parse(saved["argv"])
        run_args.markdown = args.markdown
        report(saved["results"], run_args, saved["machine"], saved["notes"])
        return True
    return False


def start(argv, parse, report, run_case=None):
    """The head of a benchmark's main: ``argv`` (None: the command line) as a list and its
    parsed ``args``, after ``replay`` (``--case``, ``--from-json``). Returns (argv, args),
    args None when replay served the call (main then returns 0). ``report`` must take what
    ``finish`` saves as results."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse(argv)
    return argv, (None if replay(args, parse, report, run_case) else args)


def finish(script_file, argv, args, notes, results, report, *, extra_versions=None) -> int:
    """The tail of a benchmark's main: the machine lines (command ``python
    benchmarks/<script>.py`` and ``argv`` without --json), ``results`` saved with them to
    ``args.json`` when given, then ``report(results, args, machine, notes)``. Non-empty
    ``extra_versions`` ({name: version}) are appended to the Versions line. Returns 0."""
    import shlex

    machine = machine_lines(shlex.join(["python", f"benchmarks/{Path(script_file).name}",
                                        *shown_args(argv)]))
    machine[1] += "".join(f", {k} {v}" for k, v in (extra_versions or {}).items() if v)
    if args.json:
        save_run(args.json, argv, machine, notes, results)
    report(results, args, machine, notes)
    return 0


def fmt(x, spec=".3g", none="-") -> str:
    if x is None:
        return none
    if isinstance(x, str):
        return x
    return format(x, spec)


def markdown_table(headers, rows) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


DOC_INTRO = ("# Benchmarks\n\nSpeed and accuracy of dendrax against NEURON and Jaxley; each "
             "section is written by the script it names (see `benchmarks/`).\n")


def write_section(path, title: str, body: str) -> None:
    """Replace section ``## title`` of the markdown file ``path`` (up to the next ``## ``
    heading) by ``body``, appending it when absent and creating the file when missing.
    Other sections are left as they are."""
    path = Path(path)
    text = path.read_text() if path.exists() else DOC_INTRO
    lines = text.splitlines()
    head = f"## {title}"
    new = [head, ""] + body.strip("\n").splitlines() + [""]
    try:
        start = next(i for i, ln in enumerate(lines) if ln.strip() == head)
    except StopIteration:
        while lines and not lines[-1].strip():
            lines.pop()
        lines += [""] + new
    else:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")),
                   len(lines))
        lines[start:end] = new
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines).rstrip("\n") + "\n")
