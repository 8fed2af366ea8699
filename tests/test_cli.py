"""The dendrax command line: the main job, options, TOML config, errors."""

import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest

import dendrax
import dendrax as dx
from dendrax.cli import main

SWC = """# a tiny synthetic cell: 3-point soma, a dendrite and an axon
1 1 0 0 0 8 -1
2 1 0 -8 0 8 1
3 1 0 8 0 8 1
4 3 0 8 0 1 1
5 3 0 60 0 1 4
6 3 30 120 0 0.8 5
7 2 0 -8 0 0.6 1
8 2 0 -150 0 0.5 7
"""


def test_default_main_job_writes_traces_and_plot(tmp_path, capsys):
    assert main(["simulate", "--out", str(tmp_path), "--quiet", "--t-stop", "40"]) == 0
    out = capsys.readouterr().out
    assert "spikes" in out
    data = np.load(tmp_path / "traces.npz")
    assert data["traces"].shape == (3, 1601)
    assert data["traces"][0].max() > 0, "the default cell should fire"
    csv = np.loadtxt(tmp_path / "traces.csv", delimiter=",", skiprows=1)
    np.testing.assert_allclose(csv[:, 1:].T, data["traces"])
    assert (tmp_path / "voltage.png").stat().st_size > 10_000


def test_the_summary_says_how_long_the_run_was(tmp_path, capsys):
    """A t_stop off the step grid runs to the nearest step; the summary says that time."""
    with pytest.warns(UserWarning, match="not a whole number of steps"):
        assert main(["simulate", "--out", str(tmp_path), "--quiet", "--no-plot", "--t-stop",
                     "1.01"]) == 0
    assert "for 1 ms (dt 0.025 ms)" in capsys.readouterr().out
    assert np.load(tmp_path / "traces.npz")["traces"].shape[1] == 41


def test_outputs_describe_themselves(tmp_path):
    """Columns are named as the user wrote them, with units; the npz carries the run's
    settings; --nwb writes an NWB file pynwb reads."""
    import json

    args = ["simulate", "--record", "v@apic[1](0.5)", "--record", "hh.m", "--record",
            "i_membrane@soma(0.5)", "--t-stop", "5", "--celsius", "10", "--out", str(tmp_path),
            "--quiet", "--no-plot"]
    nwb = importlib.util.find_spec("pynwb") is not None
    assert main(args + (["--nwb"] if nwb else [])) == 0
    header = (tmp_path / "traces.csv").read_text().splitlines()[0]
    assert header == "t (ms),v@apic[1](0.5) (mV),hh.m@soma(0.5) (1),i_membrane@soma(0.5) (nA)"
    data = np.load(tmp_path / "traces.npz")
    assert list(data["labels"]) == ["v@apic[1](0.5)", "hh.m@soma(0.5)", "i_membrane@soma(0.5)"]
    assert list(data["units"]) == ["mV", "1", "nA"]
    meta = json.loads(str(data["meta"]))
    assert meta["dt"] == 0.025 and meta["celsius"] == 10.0 and meta["t_stop"] == 5.0
    assert meta["dendrax"] == dendrax.__version__ and meta["morphology"] == "default branched neuron"
    assert json.loads(meta["options"])["record"] == ["v@apic[1](0.5)", "hh.m", "i_membrane@soma(0.5)"]
    if nwb:
        from pynwb import NWBHDF5IO

        with NWBHDF5IO(str(tmp_path / "run.nwb"), "r") as io:
            f = io.read()
            series = f.acquisition["v apic[1](0.5)"]
            np.testing.assert_array_equal(series.data[:], data["traces"][0])


def test_swc_with_options_and_toml(tmp_path):
    swc = tmp_path / "cell.swc"
    swc.write_text(SWC)
    args = ["simulate", str(swc), "--nseg", "3", "--Ra", "120", "-m", "hh", "-m", "pas@dend",
            "--set", "hh.gnabar=0.2@soma", "--set", "pas.g=1e-4@dend",
            "--iclamp", "0.4,2,10@soma(0.5)", "--record", "v@soma(0.5)", "--record", "hh.m@dend[0](0.5)",
            "--t-stop", "15", "--dt", "0.05", "--out", str(tmp_path / "a"), "--no-plot", "--quiet"]
    assert main(args) == 0
    a = np.load(tmp_path / "a" / "traces.npz")
    assert a["traces"].shape == (2, 301)
    toml = tmp_path / "run.toml"
    toml.write_text(f'''swc = "{swc}"
nseg = 3
Ra = 120
mechanism = ["hh", "pas@dend"]
set = ["hh.gnabar=0.2@soma", "pas.g=1e-4@dend"]
iclamp = "0.4,2,10@soma(0.5)"
record = ["v@soma(0.5)", "hh.m@dend[0](0.5)"]
t_stop = 15
dt = 0.05
out = "{tmp_path / 'b'}"
no_plot = true
quiet = true
''')
    assert main(["simulate", "--config", str(toml)]) == 0
    b = np.load(tmp_path / "b" / "traces.npz")
    np.testing.assert_allclose(a["traces"], b["traces"])


def test_v_init_celsius_and_method_options_reach_the_run(tmp_path):
    """--v-init, --celsius and --method give the run simulate gives with those settings."""
    swc = tmp_path / "cell.swc"
    swc.write_text(SWC)
    args = ["simulate", str(swc), "--nseg", "3", "--iclamp", "0.4,2,10@soma(0.5)",
            "--record", "v@soma(0.5)", "--t-stop", "8", "--v-init", "-72.5", "--celsius", "20",
            "--method", "crank_nicolson", "--out", str(tmp_path / "a"), "--no-plot", "--quiet"]
    assert main(args) == 0
    got = np.load(tmp_path / "a" / "traces.npz")["traces"]
    cell = dx.Cell(dx.read_morphology(swc), nseg=3).insert("hh")
    cell.iclamp(cell.soma(0.5), delay=2.0, dur=10.0, amp=0.4).record("v", cell.soma(0.5))
    want = dx.simulate(cell, 8.0, 0.025, v_init=-72.5, celsius=20.0, method="crank_nicolson")
    assert got[0, 0] == -72.5 and np.ptp(got) > 50.0  # it fired
    np.testing.assert_array_equal(got, np.asarray(want.traces))
    with pytest.raises(SystemExit) as exit_:  # argparse's own refusal of a choice
        main(args[:-6] + ["--method", "crank-nicolson", "--out", str(tmp_path / "b"),
                          "--no-plot", "--quiet"])
    assert exit_.value.code == 2


@pytest.mark.parametrize("args,message", [
    (["simulate", "--nseg", "x"], "--nseg must be an integer"),
    (["simulate", "/no/such/file.swc"], "does not exist"),
    (["simulate", "--dt", "-1"], "dt must be a finite positive number"),
    (["simulate", "--t-stop", "inf"], "t_stop must be a finite positive number, got inf"),
    (["simulate", "-m", "nosuchchannel"], "no channel named 'nosuchchannel'"),
    (["simulate", "--set", "hh.gnabar"], "--set takes name=value"),
    (["simulate", "--set", "hh.gnabar=1_0"], "--set takes name=value"),  # float() reads 10
    (["simulate", "--iclamp", "0.1,1_0,5"], "--iclamp takes amp,delay,dur"),
    (["simulate", "--record", "v@soma(2)"], "x must lie in"),
    (["simulate", "--iclamp", "1,2@soma"], "--iclamp takes amp,delay,dur"),
    (["simulate", "--record", "v@soma(1..2)"], "bad location 'soma(1..2)': x '1..2' is not a "
                                               "number"),
])
def test_bad_arguments_give_one_line_and_exit_2(args, message, capsys, tmp_path):
    assert main(args + ["--out", str(tmp_path), "--quiet", "--no-plot"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("dendrax: error:") and message in err and "\n" not in err, err


def test_cells_without_a_soma_and_custom_regions(tmp_path, capsys):
    """A reconstruction without a soma runs with the defaults (clamp, recording and spike
    count at section 0's middle, said so in the summary: it refused, 'no sections in region
    soma'); a region SWC's type 7 makes, custom7, is a location as dendrax names it."""
    swc = tmp_path / "nosoma.swc"
    swc.write_text("1 3 0 0 0 1 -1\n2 3 100 0 0 1 1\n")
    assert main(["simulate", str(swc), "--out", str(tmp_path / "a"), "--quiet", "--no-plot",
                 "--t-stop", "20", "--iclamp", "0.3,1,15"]) == 0
    out = capsys.readouterr().out
    assert "spike at dend(0.5)" in out or "spikes at dend(0.5)" in out, out
    assert (np.load(tmp_path / "a" / "traces.npz")["traces"][0].max()) > 0  # clamped, fired
    custom = tmp_path / "custom.swc"
    custom.write_text("1 1 0 0 0 6 -1\n2 7 6 0 0 1 1\n3 7 106 0 0 0.5 2\n")
    cell = dx.Cell(dx.read_morphology(custom))
    assert cell.location_name(cell.section(1)(0.5)) == "custom7(0.5)"
    for where in ("custom7(0.5)", "custom7[0](0.5)"):
        assert main(["simulate", str(custom), "--out", str(tmp_path / "b"), "--quiet",
                     "--no-plot", "--t-stop", "2", "--record", f"v@{where}"]) == 0
        header = (tmp_path / "b" / "traces.csv").read_text().splitlines()[0]
        assert header == f"t (ms),v@{where} (mV)"


def test_a_network_of_cells_without_a_soma_runs_with_the_defaults(tmp_path, capsys):
    """A network TOML of soma-less cells: v recorded and spikes counted at section 0's middle
    and a connection without pre_loc/post_loc between them (it refused: no soma)."""
    swc = tmp_path / "nosoma.swc"
    swc.write_text("1 3 0 0 0 1 -1\n2 3 100 0 0 1 1\n")
    toml = tmp_path / "net.toml"
    toml.write_text(f"""[[cell]]
swc = "{swc}"
count = 2
iclamp = "0.3,1,15"
[[connection]]
pre = 0
post = 1
synapse = "Exp2Syn"
weight = 0.01
[simulation]
t_stop = 20.0
""")
    assert main(["simulate", str(toml), "--out", str(tmp_path / "o"), "--quiet",
                 "--no-plot"]) == 0
    header = (tmp_path / "o" / "traces.csv").read_text().splitlines()[0]
    assert header == "t (ms),v@cell[0].dend(0.5) (mV)", header
    assert "spikes from" in capsys.readouterr().out


def test_bad_config_file(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("t_stop = [\n")
    assert main(["simulate", "--config", str(bad)]) == 2
    assert "not valid TOML" in capsys.readouterr().err
    # binary: it was the codec's message, naming no file
    binary = tmp_path / "b.toml"
    binary.write_bytes(b"\x00\xff")
    for argv in (["simulate", "--config", str(binary)], ["column", str(binary)],
                 ["fit", str(binary)]):
        assert main(argv) == 2
        assert f"config {binary} is not valid TOML: not UTF-8 text" in capsys.readouterr().err
    bad.write_text("tstop = 5\n")
    assert main(["simulate", "--config", str(bad)]) == 2
    assert "unknown config key 'tstop'" in capsys.readouterr().err
    bad.write_text('mechanisms = ["hh"]\n')
    assert main(["simulate", "--config", str(bad)]) == 2
    assert "(did you mean 'mechanism'?)" in capsys.readouterr().err
    bad.write_text('no_plot = "no"\n')
    assert main(["simulate", "--config", str(bad)]) == 2
    assert "no_plot must be true or false, got 'no'" in capsys.readouterr().err
    bad.write_text("out = 3\n")
    assert main(["simulate", "--config", str(bad)]) == 2
    assert "out must be a path (a string), got 3" in capsys.readouterr().err


def test_info_and_plugins_as_console_commands():
    info = subprocess.run([sys.executable, "-m", "dendrax", "info"], capture_output=True, text=True)
    assert info.returncode == 0, info.stderr
    assert "native cpu: available" in info.stdout
    plugins = subprocess.run([sys.executable, "-m", "dendrax", "plugins"], capture_output=True, text=True)
    assert plugins.returncode == 0 and "hh" in plugins.stdout and "swc" in plugins.stdout
    # the built-in generators and plastic kinds, which are not plugins, are listed too
    assert "built in (net.population): dc_generator, noise_generator, poisson_generator, " \
           "spike_generator" in plugins.stdout
    assert "stdp_synapse, tsodyks2_synapse" in plugins.stdout


def test_the_command_simulates_in_float64_by_itself(tmp_path):
    """README: the dendrax command turns float64 on itself (a fresh process, without
    JAX_ENABLE_X64: the test processes have it on)."""
    env = {k: v for k, v in os.environ.items() if k != "JAX_ENABLE_X64"}
    out = tmp_path / "run"
    done = subprocess.run([sys.executable, "-m", "dendrax", "simulate", "--t-stop", "1",
                           "--out", str(out), "--quiet", "--no-plot"], capture_output=True,
                          text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert np.load(out / "traces.npz")["traces"].dtype == np.float64


def test_the_command_prints_a_warning_as_one_line(tmp_path):
    """It printed Python's file:line and the source line of the call (cli.py:61 ...)."""
    done = subprocess.run([sys.executable, "-m", "dendrax", "simulate", "--t-stop", "5",
                           "--dt", "3", "--out", str(tmp_path / "run"), "--quiet", "--no-plot"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    lines = [ln for ln in done.stderr.splitlines() if "warning" in ln.lower()]
    assert lines and all(ln.startswith("dendrax: warning: ") for ln in lines), done.stderr
    assert "cli.py" not in done.stderr and "simulate(" not in done.stderr, done.stderr


# --- dendrax.spec: one builder for the command line and the config files ------------------

def test_cell_spec_from_dict_and_from_options_build_the_same_cell(tmp_path):
    import argparse

    from dendrax.spec import CellSpec

    swc = tmp_path / "cell.swc"
    swc.write_text(SWC)
    table = {"swc": str(swc), "nseg": 3, "Ra": 120, "mechanisms": ["hh", "pas@dend"],
             "set": ["hh.gnabar=0.2@soma", "pas.g=1e-4@dend[0](0.5)"],
             "iclamp": "0.4,2,10@soma(0.5)", "record": ["v@soma(0.5)", "hh.m@dend[0](0.5)"]}
    a = CellSpec.from_dict(table).build()
    opts = argparse.Namespace(swc=str(swc), nseg="3", Ra=120.0, cm=None,
                              mechanism=table["mechanisms"], set=table["set"],
                              iclamp=[table["iclamp"]], record=table["record"])
    b = CellSpec.from_options(opts).build()
    assert a.recordings == b.recordings and len(a.recordings) == 2
    for name in ("hh.gnabar", "pas.g", "Ra", "cm"):
        np.testing.assert_array_equal(a.get(name), b.get(name))
    assert a.get("hh.gnabar").max() == 0.2


def test_cell_spec_defaults():
    from dendrax.spec import CellSpec

    bundled = CellSpec().build()                # the default cell: its own step and recordings
    assert len(bundled.recordings) == 3
    bs = CellSpec(model="ball_and_stick", nseg=[1, 4]).build()  # hh, a step, v at the soma
    assert bs.n_nodes > 5 and bs.recordings == [("v", bs.soma(0.5))]
    assert bs.get("hh.gnabar").size > 0
    quiet = CellSpec(model="ball_and_stick").build(defaults=False)   # a network's cell
    assert quiet.recordings == []


@pytest.mark.parametrize("table,message", [
    ({"model": "ball"}, "[cell] model must be one of"),
    ({"model": "branched_neuron", "swc": "x.swc"}, "[cell] takes either model or swc"),
    ({"nseg": "many"}, "[cell] nseg must be an integer"),
    ({"nseg": [1, 0]}, "[cell] nseg must be an integer"),
    ({"Ra": -1}, "[cell] Ra must be a positive number"),
    ({"mechanisms": [1]}, "[cell] mechanisms must be a string or a list of strings"),
    ({"nsegs": 1}, "unknown config key(s) ['nsegs'] in [cell]"),
    # one cell's config spells it as its option, -m/--mechanism: the error says which
    ({"mechanism": ["hh"]}, "(did you mean 'mechanisms'?)"),
])
def test_cell_spec_errors_name_the_key(table, message):
    from dendrax.spec import CellSpec, SpecError

    with pytest.raises(SpecError) as err:
        CellSpec.from_dict(table)
    assert message in str(err.value), str(err.value)


@pytest.mark.parametrize("table,message", [
    ({"set": ["hh.gnabar=x"]}, "[cell] set takes name=value"),
    ({"iclamp": "1,2"}, "[cell] iclamp takes amp,delay,dur"),
    ({"record": "v@soma(7)"}, "x must lie in"),
    ({"record": "v@soma[1](0.5)"}, "soma has 1 sections, no [1]"),
    ({"mechanisms": "hh@nowhere"}, "no sections in region 'nowhere'"),
])
def test_cell_spec_build_errors(table, message):
    from dendrax.spec import CellSpec

    with pytest.raises(ValueError) as err:
        CellSpec.from_dict({"model": "ball_and_stick", **table}).build()
    assert message in str(err.value), str(err.value)


def test_front_ends_use_no_private_names_of_other_modules():
    """cli.py, dendrax.spec, plotting.py and dendrax.training import only public names."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "python" / "dendrax"
    files = [root / "cli.py", root / "plotting.py", *sorted((root / "spec").glob("*.py")),
             *sorted((root / "training").glob("*.py"))]
    bad = []
    for f in files:
        for node in ast.walk(ast.parse(f.read_text())):
            if not isinstance(node, ast.ImportFrom):
                continue
            if node.level or (node.module or "").startswith("dendrax"):
                bad += [f"{f.name}:{node.lineno} {a.name}" for a in node.names
                        if a.name.startswith("_") and a.name != "__version__"]
    assert not bad, bad


# --- networks: dendrax simulate net.toml ----------------------------------------------------

NET = """
[[cell]]                        # cell 0: clamped
model = "ball_and_stick"
nseg = [1, 5]
Ra = 100.0
iclamp = "0.2,2,40@soma(0.5)"

[[cell]]                        # cells 1 and 2
model = "ball_and_stick"
nseg = [1, 5]
Ra = 100.0
count = 2

[[connection]]                  # 0 excites 1 only
pre = 0
post = 1
synapse = "Exp2Syn"
weight = 0.004
delay = 2.0

[simulation]
t_stop = 30

[record]
v = ["cell 0", "cell 1 soma(0.5)", "cell 2 dend[0](0.5)"]
"""


def _spikes(path):
    rows = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
    return {c: rows[rows[:, 0] == c, 1] for c in np.unique(rows[:, 0]).astype(int)}


def test_network_toml_writes_spikes_traces_and_raster(tmp_path, capsys):
    (tmp_path / "net.toml").write_text(NET)
    assert main(["simulate", str(tmp_path / "net.toml"), "--out", str(tmp_path / "o"),
                 "--quiet"]) == 0
    assert "simulated 3 cells" in capsys.readouterr().out
    assert (tmp_path / "o" / "spikes.csv").read_text().splitlines()[0] == "cell,t (ms)"
    header = (tmp_path / "o" / "traces.csv").read_text().splitlines()[0]
    assert header.startswith("t (ms),v@cell[0].soma(0.5) (mV),"), header
    spikes = _spikes(tmp_path / "o" / "spikes.csv")
    assert len(spikes.get(0, [])) >= 1, "the clamped cell fires"
    assert len(spikes.get(1, [])) == len(spikes[0]), "the connected cell follows it"
    assert np.all(spikes[1] >= spikes[0] + 2.0)  # after the 2 ms delay
    assert 2 not in spikes, "the unconnected cell stays silent"
    csv = np.loadtxt(tmp_path / "o" / "traces.csv", delimiter=",", skiprows=1)
    assert csv.shape == (1201, 4) and csv[:, 1].max() > 0 and csv[:, 3].max() < -60
    data = np.load(tmp_path / "o" / "traces.npz")
    assert data["traces"].shape == (3, 1201)
    assert list(data["spike_cells"]).count(1) == len(spikes[1])
    png = tmp_path / "o" / "network.png"
    assert png.read_bytes()[:4] == b"\x89PNG" and png.stat().st_size > 10_000
    # --config works the same; command-line options win over [simulation]
    assert main(["simulate", "--config", str(tmp_path / "net.toml"), "--t-stop", "10",
                 "--out", str(tmp_path / "p"), "--quiet", "--no-plot"]) == 0
    assert np.loadtxt(tmp_path / "p" / "traces.csv", delimiter=",", skiprows=1).shape == (401, 4)
    assert not (tmp_path / "p" / "network.png").exists()


def test_network_spec_matches_the_python_api():
    import dendrax as dx
    from dendrax.spec import NetworkSpec

    cfg = {"cell": [{"model": "ball_and_stick", "count": 20}],
           "connection": [{"pre": "0:10", "post": "10:20", "synapse": "Exp2Syn", "weight": 0.001,
                           "p": 0.3, "seed": 4, "post_loc": "dend[0](0.5)",
                           "params": {"tau2": 3.0}}],
           "record": {"spikes": "10:20", "v": []}}
    net = NetworkSpec.from_dict(cfg).build()
    ref = dx.Network.replicate(dx.Cell.ball_and_stick(), 20)
    ref.sparse_connect(range(10), range(10, 20), "Exp2Syn", p=0.3, key=4, weight=0.001,
                       post_loc=ref.cell(0).section(1)(0.5)._replace(cell=None), tau2=3.0)
    (a,), (b,) = net.wiring.blocks, ref.wiring.blocks
    assert a.size == b.size > 0
    for name in ("pre_cell", "post_cell", "post_section", "post_x"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    np.testing.assert_array_equal(a.values["tau2"], 3.0)
    assert [r[0] for r in net.wiring.spike_records] == list(range(10, 20))


@pytest.mark.parametrize("edit,message", [
    (lambda c: c.replace("post = 1", 'post = "1:4"'),
     "[[connection]] 0 post: range '1:4' does not fit the network's 3 cells"),
    (lambda c: c.replace("delay = 2.0", "delay = 2.0\ndelays = 1"),
     "unknown config key(s) ['delays'] in [[connection]] 0"),
    (lambda c: c.replace("count = 2", "count = 0"), "[[cell]] 1 count must be a positive integer"),
    (lambda c: c.replace('synapse = "Exp2Syn"', 'synapse = "Exp3Syn"'), "[[connection]] 0:"),
    (lambda c: c.replace("weight = 0.004", ""), "need a weight"),
    (lambda c: c.replace('"cell 0"', '"soma(0.5)"'), "use e.g. \"cell 2 soma(0.5)\""),
    (lambda c: c.replace('"cell 0"', '"cell 0 apic(0.5)"'), "no sections in region 'apic'"),
    (lambda c: c.replace("t_stop = 30", "t_stop = -1"), "[simulation] t_stop must be a positive"),
    (lambda c: c.replace("[record]", "[recording]"), "unknown config key(s) ['recording']"),
])
def test_bad_network_configs_give_one_line(tmp_path, capsys, edit, message):
    (tmp_path / "net.toml").write_text(edit(NET))
    assert main(["simulate", str(tmp_path / "net.toml"), "--out", str(tmp_path / "o"),
                 "--quiet", "--no-plot"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("dendrax: error:") and message in err and "\n" not in err, err


def test_single_cell_options_are_errors_with_a_network(tmp_path, capsys):
    (tmp_path / "net.toml").write_text(NET)
    assert main(["simulate", str(tmp_path / "net.toml"), "--nseg", "3", "--quiet"]) == 2
    assert "do not apply to a network config" in capsys.readouterr().err


def test_docs_network_example_runs(tmp_path, monkeypatch, capsys):
    """docs/cli.md's network TOML runs as written (from a fresh folder) and does what it says."""
    import re
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[1] / "docs" / "cli.md").read_text()
    (toml,) = [b for b in re.findall(r"```toml\n(.*?)```", doc, re.S) if "[[cell]]" in b]
    assert "dendrax simulate net.toml" in doc
    monkeypatch.chdir(tmp_path)
    (tmp_path / "net.toml").write_text(toml)
    assert main(["simulate", "net.toml", "--quiet"]) == 0
    assert "simulated 12 cells" in capsys.readouterr().out
    spikes = _spikes(tmp_path / "net_out" / "spikes.csv")
    population = [c for c in range(1, 11) if c in spikes]
    assert len(spikes[0]) >= 2 and 0 < len(population) < 10  # p = 0.5: some, not all
    assert len(spikes.get(11, [])) >= 1, "the readout fires when the population does"
    assert (tmp_path / "net_out" / "network.png").exists()
    assert np.loadtxt(tmp_path / "net_out" / "traces.csv", delimiter=",", skiprows=1).shape[1] == 4


def test_spike_count_is_the_soma_s_whatever_is_recorded_first(tmp_path, capsys):
    """The summary counts spikes at the soma (NEURON's NetCon.record), not threshold crossings
    of the first recording (which reported 0 spikes when hh.m came first)."""
    assert main(["simulate", "--out", str(tmp_path), "--quiet", "--t-stop", "40", "--no-plot",
                 "--record", "hh.m@soma(0.5)"]) == 0
    out = capsys.readouterr().out
    n = int(out.split(" spike")[0].rsplit(" ", 1)[-1])
    assert n >= 2, out


@pytest.mark.parametrize("toml,message", [
    ('[[population]]\nmodel = "iaf_psc_alpha"\n', "n must be a positive integer"),
    ('[[population]]\nmodel = "nope"\nn = 3\n', "no point_neuron named 'nope'"),
    ('[[population]]\nmodel = "iaf_psc_alpha"\nn = 3\nparams = { tau = 1.0 }\n', "has no parameters"),
    ('[[population]]\nmodel = "iaf_psc_alpha"\nn = 3\nname = "a"\n[[connection]]\npre = "a"\n'
     'post = "b"\nweight = 1.0\n', "no population named 'b'"),
    ('[[population]]\nmodel = "iaf_psc_alpha"\nn = 3\nname = "a"\n[[connection]]\npre = "a"\n'
     'post = "a[x]"\nweight = 1.0\n', "bad selection"),
    ('[[population]]\nmodel = "iaf_psc_alpha"\nn = 3\nname = "a"\n[[connection]]\npre = "a"\n'
     'post = "a"\nweight = 1.0\ndelay = 0.01\n[simulation]\ndt = 0.1\n', "rounds to no step"),
    ('[[population]]\nmodel = "iaf_psc_alpha"\nn = 3\nname = "a"\n[[connection]]\npre = "a"\n'
     'post = "a"\nweight = 1.0\none_to_one = "false"\n',
     "one_to_one must be true or false, got 'false'"),
    ('[[population]]\nmodel = "iaf_psc_alpha"\nn = 3\nname = "a"\n[[connection]]\npre = "a[5:9]"\n'
     'post = "a"\nweight = 1.0\n', "'a[5:9]' selects no neuron of a (3 neurons)"),
    # a bare ValueError without its table; a threshold that did nothing
    ('[[population]]\nmodel = "poisson_generator"\nn = 1\nname = "g"\n[record]\nV_m = ["g"]\n',
     "[record] V_m: poisson_generator cannot record 'V_m'"),
    ('[[population]]\nmodel = "iaf_psc_alpha"\nn = 3\nname = "a"\n[[connection]]\npre = "a"\n'
     'post = "a"\nweight = 1.0\nthreshold = -20.0\n', "threshold= detects spikes on cells"),
])
def test_point_network_toml_refusals(tmp_path, capsys, toml, message):
    (tmp_path / "p.toml").write_text(toml)
    assert main(["simulate", str(tmp_path / "p.toml"), "--out", str(tmp_path / "o"), "--quiet",
                 "--no-plot", "--t-stop", "1"]) == 2
    assert message in capsys.readouterr().err


def test_saved_cell_with_its_own_statistics_reruns(tmp_path):
    """A saved cell with a reduce= recording reruns with the plot on (its own statistics
    come before the plot's per-segment peaks), with the API's numbers."""
    cell = dx.Cell.ball_and_stick(nseg=[1, 5])
    cell.insert("hh")
    cell.iclamp(cell.soma(0.5), delay=1.0, dur=20.0, amp=0.3)
    cell.record("v", cell.soma(0.5)).record("v", cell.soma(0.5), reduce="max")
    dx.save(cell, tmp_path / "stats_cell.json")
    assert main(["simulate", str(tmp_path / "stats_cell.json"), "--t-stop", "5", "--out",
                 str(tmp_path / "o"), "--quiet"]) == 0
    assert (tmp_path / "o" / "voltage.png").exists()
    ref = dx.simulate(dx.load(tmp_path / "stats_cell.json"), 5.0, 0.025)
    np.testing.assert_array_equal(np.load(tmp_path / "o" / "traces.npz")["traces"], ref.traces)


def test_record_on_a_saved_network_refused(tmp_path, capsys):
    net = dx.Network.replicate(dx.Cell.ball_and_stick(nseg=[1, 3]), 2)
    net.record("v", net.cell(1).soma(0.5))
    dx.save(net, tmp_path / "net.json")
    assert main(["simulate", str(tmp_path / "net.json"), "--record", "v@soma(0.5)",
                 "--out", str(tmp_path / "o"), "--quiet", "--no-plot"]) == 2
    assert "--record does not apply to a saved network" in capsys.readouterr().err


def test_a_saved_models_summary_counts_the_somas_spikes_and_configs_do_not_override_it(
        tmp_path, capsys):
    """Audit: a saved model's own spike detector (threshold -64 mV, which a subthreshold
    step crosses) was reported as the soma's spikes above 10 mV, and merged into
    traces.npz; a config's cell options, or a network config, were silently dropped for a
    saved model: refused as the same options on the command line are."""
    cell = dx.Cell.ball_and_stick(nseg=[1, 3])
    cell.insert("hh")
    cell.iclamp(cell.soma(0.5), delay=1.0, dur=2.0, amp=0.05)  # below threshold
    cell.record("v", cell.soma(0.5))
    cell.record_spikes(cell.soma(0.5), threshold=-64.0)
    dx.save(cell, tmp_path / "m.dendrax.json")
    args = ["simulate", str(tmp_path / "m.dendrax.json"), "--t-stop", "5", "--out",
            str(tmp_path / "o"), "--quiet", "--no-plot"]
    assert main(args) == 0
    assert "0 spikes at the soma (v > 10 mV, 0.0 Hz)" in capsys.readouterr().out
    assert np.load(tmp_path / "o" / "traces.npz")["spike_times"].size == 0
    assert dx.simulate(cell, 5.0, 0.025).spikes[0].size == 1  # the model's own detector fires
    (tmp_path / "run.toml").write_text('iclamp = "1.0,1,2@soma(0.5)"\nt_stop = 5\n')
    assert main(args + ["--config", str(tmp_path / "run.toml")]) == 2
    assert "config keys ['iclamp']" in capsys.readouterr().err
    (tmp_path / "net.toml").write_text('[[cell]]\nmodel = "ball_and_stick"\ncount = 2\n')
    assert main(args + ["--config", str(tmp_path / "net.toml")]) == 2
    assert "two models: the saved model" in capsys.readouterr().err


def test_ra_and_cm_of_the_bundled_cell_set_its_d_lambda_segments(tmp_path):
    """Audit: --Ra and --cm were set after the bundled cell was segmented at Ra 100, cm 1:
    the d_lambda rule now sees them, as for an SWC."""
    from dendrax.models import branched_neuron

    assert main(["simulate", "--Ra", "1000", "--cm", "4", "--t-stop", "1", "--out",
                 str(tmp_path / "o"), "--quiet", "--no-plot"]) == 0
    saved = dx.load(tmp_path / "o" / "model.dendrax.json")
    ref = branched_neuron(Ra=1000.0, cm=4.0)
    np.testing.assert_array_equal(saved.nseg, ref.nseg)
    assert saved.n_nodes > branched_neuron().n_nodes
    np.testing.assert_array_equal(saved.values["Ra"], 1000.0)
    np.testing.assert_array_equal(saved.values["cm"], 4.0)
