"""The dendrax command line: the main job, options, TOML config, errors."""

import subprocess
import sys

import numpy as np
import pytest

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


@pytest.mark.parametrize("args,message", [
    (["simulate", "--nseg", "x"], "--nseg must be an integer"),
    (["simulate", "/no/such/file.swc"], "does not exist"),
    (["simulate", "--dt", "-1"], "dt must be a positive number"),
    (["simulate", "-m", "nosuchchannel"], "no channel named 'nosuchchannel'"),
    (["simulate", "--set", "hh.gnabar"], "--set takes name=value"),
    (["simulate", "--record", "v@soma(2)"], "x must lie in"),
    (["simulate", "--iclamp", "1,2@soma"], "--iclamp takes amp,delay,dur"),
])
def test_bad_arguments_give_one_line_and_exit_2(args, message, capsys, tmp_path):
    assert main(args + ["--out", str(tmp_path), "--quiet", "--no-plot"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("dendrax: error:") and message in err and "\n" not in err, err


def test_bad_config_file(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("t_stop = [\n")
    assert main(["simulate", "--config", str(bad)]) == 2
    assert "not valid TOML" in capsys.readouterr().err
    bad.write_text("tstop = 5\n")
    assert main(["simulate", "--config", str(bad)]) == 2
    assert "unknown config key 'tstop'" in capsys.readouterr().err


def test_info_and_plugins_as_console_commands():
    info = subprocess.run([sys.executable, "-m", "dendrax", "info"], capture_output=True, text=True)
    assert info.returncode == 0, info.stderr
    assert "native cpu: available" in info.stdout
    plugins = subprocess.run([sys.executable, "-m", "dendrax", "plugins"], capture_output=True, text=True)
    assert plugins.returncode == 0 and "hh" in plugins.stdout and "swc" in plugins.stdout
