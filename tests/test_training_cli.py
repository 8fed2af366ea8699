"""The ``dendrax fit`` command: a TOML config in, fitted parameters and a history out; bad
configs and targets recorded otherwise exit 2 with one line (docs/training.md)."""

from __future__ import annotations

import json

import numpy as np
import pytest


CLI_CONFIG = """
out = "{out}"
[cell]
swc = "{swc}"
nseg = 2
mechanisms = ["hh"]
[stimulus]
iclamp = ["0.3,1,6@soma(0.5)"]
record = ["v@soma(0.5)", "v@dend(0.9)"]
t_stop = 8.0
dt = 0.05
[[param]]
name = "hh.gl"
lower = 1e-4
upper = 1e-3
[[param]]
name = "cm"
where = "dend"
lower = 0.5
[target]
npz = "{npz}"
[optimizer]
name = "lbfgs"
warmup = 3
steps = 5
learning_rate = 0.1
start = "cell"
"""

SWC = """1 1 0 0 0 10 -1
2 1 10 0 0 10 1
3 3 10 0 0 1 2
4 3 110 0 0 1 3
"""


def test_cli_fit_npz_target_writes_results(tmp_path, capsys):
    from dendrax.cli import main

    (tmp_path / "cell.swc").write_text(SWC)
    cfg = CLI_CONFIG.format(out=tmp_path / "out", swc=tmp_path / "cell.swc", npz=tmp_path / "t.npz")
    # target: the same cell with gl = 5e-4, from dendrax simulate's own .npz format
    assert main(["simulate", str(tmp_path / "cell.swc"), "--nseg", "2", "--set", "hh.gl=0.0005",
                 "--iclamp", "0.3,1,6@soma(0.5)", "--record", "v@soma(0.5)",
                 "--record", "v@dend(0.9)", "--t-stop", "8", "--dt", "0.05", "--no-plot",
                 "--quiet", "--out", str(tmp_path / "sim")]) == 0
    (tmp_path / "t.npz").write_bytes((tmp_path / "sim" / "traces.npz").read_bytes())
    (tmp_path / "fit.toml").write_text(cfg)
    assert main(["fit", str(tmp_path / "fit.toml"), "--quiet"]) == 0
    out = json.loads((tmp_path / "out" / "fitted.json").read_text())
    assert set(out["fitted"]) == {"hh.gl", "cm@dend"} and out["steps"] == 8  # 3 Adam + 5 L-BFGS
    assert out["start"]["hh.gl"]["cell"] == pytest.approx(3e-4)
    hist = np.loadtxt(tmp_path / "out" / "history.csv", delimiter=",", skiprows=1)
    assert hist.shape == (8, 2) and hist[-1, 1] < hist[0, 1]
    assert out["loss"] == pytest.approx(hist[:, 1].min(), rel=1e-9)
    assert (tmp_path / "out" / "history.png").exists()
    assert "fitted 2 parameter(s) in 8 steps" in capsys.readouterr().out
    assert 3.2e-4 < out["fitted"]["hh.gl"]["cell"] < 6e-4  # from 3e-4 toward the target's 5e-4


def test_cli_fit_share_list_items_may_list_several_selections(tmp_path):
    """share = [["soma", "dend"]] is one value for both, as Trainables.add takes it (the
    item once failed as a region named "['soma', 'dend']")."""
    from dendrax.cli import main

    (tmp_path / "cell.swc").write_text(SWC)
    n_t = int(round(8.0 / 0.05)) + 1
    np.savez(tmp_path / "t.npz", t=np.arange(n_t) * 0.05, traces=np.zeros((2, n_t)) - 65.0)
    cfg = CLI_CONFIG.format(out=tmp_path / "out", swc=tmp_path / "cell.swc", npz=tmp_path / "t.npz")
    cfg = cfg.replace('name = "hh.gl"', 'name = "hh.gl"\nshare = [["soma", "dend"]]')
    (tmp_path / "fit.toml").write_text(cfg.replace("steps = 5", "steps = 1"))
    assert main(["fit", str(tmp_path / "fit.toml"), "--quiet"]) == 0
    out = json.loads((tmp_path / "out" / "fitted.json").read_text())
    assert list(out["fitted"]["hh.gl"]) == ["soma+dend"]


@pytest.mark.parametrize("edit,message", [
    (lambda c: c.replace("[optimizer]", "[optimizer]\nrate = 1"), "unknown config key"),
    (lambda c: c.replace('name = "hh.gl"', 'name = "hh.gll"'), "no parameter 'gll'"),
    (lambda c: c.replace("upper = 1e-3", "upper = 1e-5"), "lower < upper"),
    (lambda c: c.replace('name = "lbfgs"', 'name = "sgd"'), "adam or lbfgs"),
    (lambda c: c.replace("steps = 5", "steps = -1"), "steps must be a positive integer"),
    (lambda c: c.replace("warmup = 3", "warmup = -3"), "warmup must be >= 0"),
    (lambda c: c.replace("t_stop = 8.0", "t_stop = 9.0"), "does not match"),
    (lambda c: c.replace('npz = "', 'npzz = "'), "unknown config key"),
    (lambda c: c.replace('where = "dend"', 'where = "apical"'), "no sections in region"),
    (lambda c: c.split("[[param]]")[0] + c[c.index("[target]"):], "no parameters to fit"),
    (lambda c: c.replace("[target]", "[target]\nsynthetic = {}"), "exactly one of"),
    (lambda c: c.replace("t_stop = 8.0", "t_stop = 8.0\namps = [[0.1, 0.2]]"), "amplitude"),
    (lambda c: c + "\n[[param]]\nname = 'cm'\nwhere = 'dend'\n", "already used"),
    (lambda c: "x = = 1", "not valid TOML"),
    (lambda c: c.replace("upper = 1e-3", "upper = -1e-5").replace("lower = ", "lower = -1e-4 #"),
     "hh.gl must be >= 0 S/cm2, but Sigmoid"),
    (lambda c: c.replace('npz = "', 'npz = "' + __file__ + '" #"'), "as an .npz file of traces"),
    (lambda c: c.replace("[optimizer]", "[optimizer]\nseed = 2.5"), "seed must be an integer"),
    (lambda c: c.replace("t_stop = 8.0", "t_stop = 8.0\namps = [[true], [0.3]]"),
     "amps must be a list of numbers"),
    (lambda c: c.replace('out = "', 'out = 3 #"'), "out must be a folder's path"),
])
def test_cli_fit_bad_configs_exit_2_with_one_line(tmp_path, capsys, edit, message):
    from dendrax.cli import main

    (tmp_path / "cell.swc").write_text(SWC)
    n_t = int(round(8.0 / 0.05)) + 1
    np.savez(tmp_path / "t.npz", t=np.arange(n_t) * 0.05, traces=np.zeros((2, n_t)) - 65.0)
    cfg = CLI_CONFIG.format(out=tmp_path / "out", swc=tmp_path / "cell.swc", npz=tmp_path / "t.npz")
    (tmp_path / "fit.toml").write_text(edit(cfg))
    assert main(["fit", str(tmp_path / "fit.toml"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("dendrax: error:") and "\n" not in err and message in err, err
    assert not (tmp_path / "out").exists()




def test_cli_fit_refuses_a_target_recorded_otherwise(tmp_path, capsys):
    """An .npz of `dendrax simulate` whose labels, start time or run settings differ from
    the fit's is refused by name (its traces were once fitted swapped), and non-string
    names and paths are one-line errors (were tracebacks)."""
    from dendrax.cli import main

    cell = tmp_path / "cell.swc"
    cell.write_text("1 1 0 0 0 8 -1\n2 3 8 0 0 1 1\n3 3 100 0 0 1 2\n")
    base = (f'[cell]\nswc = "{cell}"\nmechanisms = ["hh"]\n[stimulus]\n'
            'iclamp = ["0.3,1,5@soma(0.5)"]\nrecord = ["v@soma(0.5)", "v@dend(0.5)"]\n'
            't_stop = 2.0\ndt = 0.05\n[[param]]\nname = "hh.gnabar"\nlower = 0.05\n'
            'upper = 0.3\n[optimizer]\nsteps = 1\n')
    t = np.arange(41) * 0.05
    traces = np.zeros((2, 41))
    npz = tmp_path / "target.npz"

    def run(npz_extra=None, text=None):
        np.savez(npz, t=t, traces=traces, **(npz_extra or {}))
        (tmp_path / "fit.toml").write_text(text or base + f'[target]\nnpz = "{npz}"\n')
        code = main(["fit", str(tmp_path / "fit.toml"), "--out", str(tmp_path / "o"),
                     "--quiet"])
        return code, capsys.readouterr().err

    code, err = run({"labels": np.array(["v@dend(0.5)", "v@soma(0.5)"])})
    assert code == 2 and "its traces are ['v@dend(0.5)', 'v@soma(0.5)'], the fit records" in err
    code, err = run({"meta": '{"celsius": 30.0}'})
    assert code == 2 and "its run had celsius = 30.0, the fit's [stimulus] has 6.3" in err
    t = t + 5.0
    code, err = run()
    assert code == 2 and "41 samples from 5 ms, every 0.05 ms) does not match" in err
    t = t - 5.0
    t = t * 2  # every 0.1 ms where the fit steps 0.05 ms: its message said only "from 0"
    code, err = run()
    assert code == 2 and "(41 samples from 0 ms, every 0.1 ms) does not match" in err
    t = t / 2
    code, err = run(text=base.replace('"hh.gnabar"', "5") + f'[target]\nnpz = "{npz}"\n')
    assert code == 2 and "[[param]] name must be a string" in err
    code, err = run(text=base + "[target]\nnpz = 5\n")
    assert code == 2 and "npz must be a path (a string), got 5" in err
