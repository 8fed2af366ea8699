"""The cell benchmarks' main paths on a tiny synthetic cell, so the scripts cannot rot.

Runs ``benchmarks/single_cell.py`` and ``benchmarks/gradients.py`` on a 4-section SWC
written to tmp_path, 2 ms, NEURON and Jaxley skipped (single_cell.py also once with
NEURON's four variants when NEURON is installed), and checks the tables they write into
a markdown file (keeping another section of that file intact).
"""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"

SWC = """\
# soma, a dendrite, two branches
1 1 0.0 0.0 0.0 8.0 -1
2 3 8.0 0.0 0.0 0.6 1
3 3 60.0 0.0 0.0 0.5 2
4 3 100.0 20.0 0.0 0.4 3
5 3 100.0 -20.0 0.0 0.4 3
"""


def load(name):
    sys.path.insert(0, str(BENCH))
    try:
        spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
        mod = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = mod  # (dataclasses look their module up while executing)
        spec.loader.exec_module(mod)
    finally:
        sys.path.remove(str(BENCH))
    return mod


@pytest.fixture
def files(tmp_path):
    swc = tmp_path / "tiny.swc"
    swc.write_text(SWC)
    md = tmp_path / "bench.md"
    md.write_text("# Benchmarks\n\n## Hines solve\n\nsomeone else's table\n")
    return swc, md


def test_single_cell_smoke(files, capsys):
    swc, md = files
    mod = load("single_cell")
    assert mod.main(["--cells", str(swc), "--nseg", "2", "--t-stop", "2", "--repeats", "1",
                     "--skip-jaxley", "--skip-neuron", "--skip-l5pc", "--no-grad",
                     "--markdown", str(md), "--json", str(md.with_suffix(".json"))]) == 0
    out = capsys.readouterr().out
    assert "NEURON: skipped" in out and "Jaxley: skipped" in out
    text = md.read_text()
    assert "## Hines solve\n\nsomeone else's table" in text
    assert "## Single cell" in text and "| HH | tiny.swc | 2 | 8 (" in text
    assert "ns/compartment-step" in text and "--json" not in text
    # re-rendering the saved run gives the same section
    md.write_text("# Benchmarks\n")
    assert mod.main(["--from-json", str(md.with_suffix(".json")), "--markdown", str(md)]) == 0
    assert md.read_text().split("## Single cell")[1] == text.split("## Single cell")[1]


@pytest.mark.skipif(importlib.util.find_spec("neuron") is None, reason="NEURON not installed")
def test_single_cell_neuron_smoke(files):
    """NEURON as users run it, as experts do, with exact rates and (when it runs here)
    CoreNEURON: every variant timed, the accuracy table against the exact rates."""
    swc, md = files
    mod = load("single_cell")
    # in a process of its own: NEURON aborts the process where its expert and CoreNEURON
    # runs follow the sections and mechanisms other tests left (test_channels_neuron's)
    proc = subprocess.run(
        [sys.executable, str(BENCH / "single_cell.py"), "--cells", str(swc), "--nseg", "2",
         "--t-stop", "2", "--repeats", "1", "--skip-jaxley", "--skip-l5pc", "--no-grad",
         "--markdown", str(md), "--json", str(md.with_suffix(".json"))],
        capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "NEURON s: user " in out and ", expert " in out and ", exact " in out
    text = md.read_text()
    section = text.split("## Single cell")[1]
    for col in ("NEURON user s", "NEURON expert s", "NEURON exact s", "CoreNEURON s",
                "NEURON user / dendrax", "CoreNEURON / dendrax",
                "NEURON with tables (user, expert)"):
        assert f" {col} |" in section, col
    row = next(ln for ln in section.splitlines() if ln.startswith("| HH | tiny.swc | 2 | 8 ("))
    assert len(row.strip("|").split("|")) == len(mod.SPEED_HEADERS)
    n = json.loads(md.with_suffix(".json").read_text())["results"][0]["neuron"]
    for mode in ("user", "expert", "exact"):
        assert n[mode]["run_s"] > 0 and n[mode]["ratio"] > 0, mode
    if isinstance(n["coreneuron"], str):  # CoreNEURON cannot run here: the section says why
        assert "CoreNEURON not run for the HH model: " in section
    else:
        assert n["coreneuron"]["run_s"] > 0 and n["max_dv_user_coreneuron"] < 1e-6
    assert n["max_dv_user_expert"] < 1e-6  # the same tables, the same voltages
    assert n["dv_tables"] >= 0
    # dendrax computes the exact rates NEURON computes at usetable_hh = 0
    assert json.loads(md.with_suffix(".json").read_text())["results"][0]["dendrax"]["dv"] < 1e-6
    assert "CoreNEURON" in section.split("Targets:")[1]
    md.write_text("# Benchmarks\n")
    assert mod.main(["--from-json", str(md.with_suffix(".json")), "--markdown", str(md)]) == 0
    assert md.read_text().split("## Single cell")[1] == section


def test_gradients_smoke(files, capsys):
    swc, md = files
    mod = load("gradients")
    assert mod.main(["--cells", str(swc), "--nseg", "1", "--t-stop", "2", "--repeats", "1",
                     "--batch", "2", "--batch-cell", str(swc), "--batch-nseg", "1",
                     "--modes", "grad_ckpt", "--checkpoint", "9", "--skip-jaxley",
                     "--skip-l5pc", "--in-process", "--markdown", str(md)]) == 0
    text = md.read_text()
    assert "## Hines solve" in text and "## Gradients" in text
    assert "| HH | tiny.swc | 1 | 4 | 1 | dendrax |" in text
    assert "| HH | tiny.swc | 1 | 4 | 2 | dendrax |" in text
    assert "error" not in capsys.readouterr().out


def test_gradients_case_subprocess(files):
    """One case through the subprocess path the full benchmark uses."""
    swc, _ = files
    mod = load("gradients")
    case = {"t_stop": 1.0, "dt": 0.025, "repeats": 1, "checkpoint": 5, "model": "HH",
            "path": str(swc), "cell": swc.name, "nseg": 1, "batch": 1, "sim": "dendrax",
            "mode": "fwd"}
    r = mod.run_case_subprocess(case, timeout=120)
    assert "error" not in r, r
    assert r["n_comp"] == 4 and r["run_s"] > 0 and r["max_rss_mib"] > 0


def test_network_smoke(tmp_path, capsys):
    """benchmarks/network.py on a 6-cell ball-and-stick network, 3 ms, with NEURON and
    Jaxley when installed (skipped otherwise), the build test (100 connections) and
    dendrax's gradients (in process)."""
    md = tmp_path / "bench.md"
    md.write_text("# Benchmarks\n\n## Hines solve\n\nsomeone else's table\n")
    mod = load("network")
    args = ["--networks", "ball-and-stick", "--n-cells", "6", "--p", "0.5", "--t-stop", "3",
            "--repeats", "1", "--build-cells", "20", "--build-connections", "100",
            "--grad-modes", "grad", "--grad-sims", "dendrax", "--grad-t-stop", "1",
            "--checkpoint", "9", "--in-process", "--markdown", str(md),
            "--json", str(md.with_suffix(".json"))]
    have_neuron = importlib.util.find_spec("neuron") is not None
    have_jaxley = importlib.util.find_spec("jaxley") is not None
    assert mod.main(args) == 0
    out = capsys.readouterr().out
    assert "error" not in out
    text = md.read_text()
    assert "## Hines solve\n\nsomeone else's table" in text and "## Networks" in text
    assert "| ball-and-stick (6 cells, " in text and "| dendrax | Exp2Syn | 36 (42) |" in text
    assert "connections built (`sparse_connect` + `dx.lower`)" in text
    assert "| ball-and-stick | dendrax | Exp2Syn | every Exp2Syn weight |" in text
    assert "| ball-and-stick | dendrax | IonotropicSynapse | every synapse's gS |" in text
    if have_neuron:  # same spikes as NEURON with exact rates
        assert "0 cells differ in spike count" in text
    else:
        assert "NEURON: skipped (not installed)" in out
    if have_jaxley:
        assert "| Jaxley | IonotropicSynapse | 36 |" in text
    else:
        assert "Jaxley: skipped (not installed)" in out
    md.write_text("# Benchmarks\n")
    assert mod.main(["--from-json", str(md.with_suffix(".json")), "--markdown", str(md)]) == 0
    assert md.read_text().split("## Networks")[1] == text.split("## Networks")[1]


POINT_FIELDS = ("build_s", "run_s", "n_conn", "n_neurons", "n_steps", "updates_per_s",
                "events_per_s", "peak_mib", "exc", "inh")


def check_point_run(r):
    assert "error" not in r, r
    for k in POINT_FIELDS:
        assert k in r, k
    assert r["run_s"] > 0 and r["peak_mib"] > 0 and r["n_conn"] > 0
    assert r["updates_per_s"] > 0 and r["events_per_s"] > 0
    for pop in ("exc", "inh"):
        assert r[pop]["rate"] > 0 and "cv" in r[pop] and "n_cv" in r[pop]


def test_point_networks_smoke(tmp_path, capsys):
    """benchmarks/point_networks.py --quick: the Brunel and COBA networks, small, in dendrax
    (float64), each in a fresh process; the JSON has every field, the section is written and
    re-rendered from the JSON."""
    md = tmp_path / "bench.md"
    md.write_text("# Benchmarks\n\n## Hines solve\n\nsomeone else's table\n")
    js = md.with_suffix(".json")
    mod = load("point_networks")
    assert mod.main(["--quick", "--skip-nest", "--precisions", "float64", "--markdown", str(md),
                     "--json", str(js)]) == 0
    results = json.loads(js.read_text())["results"]["results"]
    assert [r["network"] for r in results] == ["brunel", "coba"]
    for r in results:
        check_point_run(r)
        assert r["sim"] == "dendrax" and r["precision"] == "float64"
        assert r["lower_s"] >= 0 and r["compile_s"] >= 0
    text = md.read_text()
    assert "## Hines solve\n\nsomeone else's table" in text and "## Point networks" in text
    assert "| Brunel A (625 iaf_psc_delta, 0.0387 M syn.) | 100 | dendrax float64 |" in text
    assert "| COBA (400 iaf_cond_exp) | 100 | dendrax float64 |" in text
    assert "--json" not in text and "error" not in capsys.readouterr().out
    md.write_text("# Benchmarks\n")
    assert mod.main(["--from-json", str(js), "--markdown", str(md)]) == 0
    assert md.read_text().split("## Point networks")[1] == text.split("## Point networks")[1]


@pytest.mark.skipif(importlib.util.find_spec("nest") is None, reason="NEST not installed")
def test_point_networks_nest_smoke(tmp_path):
    """The NEST side of point_networks.py --quick (1 thread, one more seed, no dendrax)."""
    js = tmp_path / "run.json"
    mod = load("point_networks")
    assert mod.main(["--quick", "--precisions", "--threads", "1", "--json", str(js)]) == 0
    results = json.loads(js.read_text())["results"]["results"]
    assert [(r["network"], r["sim"], r.get("stats", False)) for r in results] == [
        ("brunel", "nest", False), ("brunel", "nest", True), ("coba", "nest", False),
        ("coba", "nest", True)]
    for r in results:
        check_point_run(r)
        assert r["threads"] == 1 and r["nest"]


def test_columns_smoke(tmp_path, capsys):
    """benchmarks/columns.py --quick on the Izhikevich column (in process; the detailed column's
    path runs in tests/test_column_detailed.py), the section written and re-rendered; the
    LFP-overhead line from two detailed rows."""
    md = tmp_path / "bench.md"
    md.write_text("# Benchmarks\n\n## Hines solve\n\nsomeone else's table\n")
    js = md.with_suffix(".json")
    mod = load("columns")
    assert mod.main(["--quick", "--skip-detailed", "--in-process", "--markdown", str(md),
                     "--json", str(js)]) == 0
    r = json.loads(js.read_text())["results"]["results"][0]
    assert r["kind"] == "izhikevich" and r["run_s"] > 0 and r["peak_mib"] > 0 and r["rate"] > 0
    assert "LFP" in r["signals"] and "EMM" in r["signals"]
    text = md.read_text()
    assert "## Hines solve\n\nsomeone else's table" in text and "## Columns" in text
    assert "| izhikevich (cortical_eig) | 100 | all proxies | 100 | 0.1 |" in text
    md.write_text("# Benchmarks\n")
    assert mod.main(["--from-json", str(js), "--markdown", str(md)]) == 0
    assert md.read_text().split("## Columns")[1] == text.split("## Columns")[1]
    fake = [{"kind": "detailed", "lfp": False, "run_s": 2.0}, {"kind": "detailed", "lfp": True,
                                                               "run_s": 2.1}]
    assert abs(mod.lfp_overhead(fake) - 0.05) < 1e-12


def test_gpu_benchmark_cpu_pieces(files, capsys):
    """benchmarks/gpu.py measures on a GPU; --check-cpu runs its steps on the CPU."""
    swc, md = files
    out_json = md.with_suffix(".gpu.json")
    mod = load("gpu")
    assert mod.main(["--check-cpu", "--cells", str(swc), "--nseg", "2", "--skip-jaxley",
                     "--json", str(out_json), "--markdown", str(md), "--note", "a note"]) == 0
    out = capsys.readouterr().out
    assert "schedule:" in out and "same bits as CPU: True" in out and "batch     2" in out
    row = json.loads(out_json.read_text())["cells"][0]
    assert row["schedule"]["levels"] >= 1 and row["dendrax"]["single_s"] > 0
    text = md.read_text()
    assert "## Hines solve\n\nsomeone else's table" in text
    assert "## GPU" in text and "- note: a note" in text and "| tiny.swc | 2 |" in text
    assert "bit for bit (3 cases): largest difference 0.0e+00, **met**" in text
    assert "equals the CPU's to round-off" in text  # (here both runs are on the CPU)
    # a saved run renders the same section without a GPU
    md.write_text("# Benchmarks\n")
    assert mod.main(["--from-json", str(out_json), "--markdown", str(md)]) == 0
    assert md.read_text().split("## GPU")[1] == text.split("## GPU")[1]


def test_precision_smoke(files, capsys):
    """benchmarks/precision.py: float64 here, float32 in a subprocess, on the tiny cell."""
    swc, md = files
    mod = load("precision")
    assert mod.main(["--cells", str(swc), "--nseg", "1", "--models", "HH", "--t-stop", "2",
                     "--repeats", "1", "--skip-neuron", "--markdown", str(md)]) == 0
    text = md.read_text()
    assert "## Hines solve\n\nsomeone else's table" in text
    assert "## float32" in text and "| HH | tiny.swc | 1 | 4 |" in text
    assert "float32 sufficient in 1 of 1 models" in text
    assert "- HH: float32 gradients off float64's by at most" in text


def test_batch_smoke(files, capsys):
    """benchmarks/batch.py: simulate_batch and NEURON's B cells on the tiny cell."""
    swc, md = files
    mod = load("batch")
    sims = ["dendrax"] + (["neuron"] if importlib.util.find_spec("neuron") else [])
    assert mod.main(["--cell", str(swc), "--nseg", "1", "--batch", "1", "3", "--t-stop", "2",
                     "--repeats", "1", "--simulators", *sims, "--markdown", str(md)]) == 0
    text = md.read_text()
    assert "## Batches" in text and "| dendrax | 3 | 4 |" in text and "error" not in text
    if "neuron" in sims:
        assert "| neuron | 3 | 4 |" in text


def test_memory_long_smoke(files, capsys):
    """benchmarks/memory.py: the long-run case on the tiny cell, in its subprocesses; the
    streamed run reports the RSS after its pieces (watched through what dx.simulate calls)."""
    swc, md = files
    mod = load("memory")
    assert mod.main(["--cases", "long", "--quick", "--long-cell", str(swc),
                     "--long-t-stop", "20", "40", "--chunk", "400", "--markdown", str(md)]) == 0
    text = md.read_text()
    assert "## Hines solve\n\nsomeone else's table" in text and "error" not in text
    assert "(2 pieces)" in text and "(4 pieces)" in text  # 20 and 40 ms in pieces of 10 ms


def test_structures_smoke(files, capsys):
    """benchmarks/structures.py: a sweep over 12 cell structures in this process."""
    _, md = files
    mod = load("structures")
    assert mod.main(["--structures", "12", "--markdown", str(md)]) == 0
    text = md.read_text()
    assert "## Hines solve\n\nsomeone else's table" in text
    assert "## Structure sweep" in text and "| 12 | " in text
    assert "a sweep over 12 cell structures keeps" in text
