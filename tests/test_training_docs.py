"""docs/training.md runs: its python blocks in order in one namespace, and its TOML example
through ``dendrax fit``."""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path

import numpy as np

DOC = Path(__file__).resolve().parents[1] / "docs" / "training.md"


def blocks(kind: str) -> list[str]:
    return re.findall(rf"```{kind}\n(.*?)```", DOC.read_text(), flags=re.S)


def _training_package():
    """``import dendrax.training``. An editable install whose module map was written before
    dendrax/training/__init__.py existed imports the folder as a namespace package; run the
    package's __init__ into it then, so the documented imports work there too."""
    pkg = importlib.import_module("dendrax.training")
    if not hasattr(pkg, "Trainables"):
        init = Path(pkg.__path__[0]) / "__init__.py"
        exec(compile(init.read_text(), str(init), "exec"), pkg.__dict__)
    return pkg


def test_python_examples_run(tmp_path, monkeypatch, capsys):
    _training_package()
    monkeypatch.chdir(tmp_path)
    code = blocks("python")
    assert len(code) >= 6
    ns: dict = {"__name__": "docs_training"}
    for k, block in enumerate(code):
        try:
            exec(compile(block, f"{DOC.name}[python block {k}]", "exec"), ns)
        except Exception as err:
            raise AssertionError(f"docs/training.md python block {k} failed:\n{block}") from err
    fitted = ns["tr"].values(ns["res"].best_theta)
    truth = {"hh.gnabar": [0.15], "hh.gkbar": [0.04], "hh.gl": [5e-4, 3e-4]}
    for label, values in truth.items():
        assert abs(np.asarray(fitted[label]) / np.asarray(values) - 1).max() < 1e-3, (label, fitted[label])
    assert (tmp_path / "history.png").exists()
    assert ns["v"].shape == (4, 2, 401)
    assert ns["warm"].history[-1] < ns["warm"].history[0]
    if ns["plain"] is not None and ns["chunked"] is not None:  # checkpointing saves memory
        assert ns["chunked"].temp_size_in_bytes < 0.5 * ns["plain"].temp_size_in_bytes


def test_toml_example_runs_through_the_cli(tmp_path, capsys):
    from dendrax.cli import main

    (toml,) = blocks("toml")
    config = tmp_path / "fit.toml"
    config.write_text(toml)
    assert main(["fit", str(config), "--quiet", "--out", str(tmp_path / "out")]) == 0
    result = json.loads((tmp_path / "out" / "fitted.json").read_text())
    assert abs(result["fitted"]["hh.gnabar"]["cell"] / 0.15 - 1) < 1e-2
    assert set(result["fitted"]["hh.gkbar"]) == {"soma", "axon", "dend", "apic"}
    assert abs(result["fitted"]["hh.gkbar"]["soma"] / 0.04 - 1) < 1e-2
    rows = (tmp_path / "out" / "history.csv").read_text().splitlines()
    assert rows[0] == "step,loss" and len(rows) == result["steps"] + 1
    assert (tmp_path / "out" / "history.png").read_bytes()[:4] == b"\x89PNG"
    assert "fitted 2 parameter(s)" in capsys.readouterr().out


_GRADIENT_BITS = """
import hashlib, jax
jax.config.update("jax_enable_x64", True)
import numpy as np, dendrax as dx
from dendrax.models import branched_neuron
cell = branched_neuron()
def loss(params):
    return dx.simulate(cell, 20.0, 0.025, params=params).traces.mean()
value, grads = jax.jit(jax.value_and_grad(loss))(cell.params)
leaves = [np.asarray(value)] + [np.asarray(g) for g in jax.tree_util.tree_leaves(grads)]
print(hashlib.sha256(b"".join(a.tobytes() for a in leaves)).hexdigest(), len(leaves))
"""


def test_huge_pages_tip_gives_the_same_bits(tmp_path):
    """The documented GLIBC_TUNABLES setting changes how memory is mapped, not a number."""
    import os
    import subprocess
    import sys

    (command,) = [b for b in blocks("bash") if "GLIBC_TUNABLES" in b]
    name, value = command.split()[0].split("=", 1)
    assert name == "GLIBC_TUNABLES" and value == "glibc.malloc.hugetlb=1"
    script = tmp_path / "bits.py"
    script.write_text(_GRADIENT_BITS)
    out = []
    for extra in ({}, {name: value}):
        env = {k: v for k, v in os.environ.items() if k != name} | extra
        run = subprocess.run([sys.executable, str(script)], env=env, capture_output=True,
                             text=True, timeout=600)
        assert run.returncode == 0, run.stderr[-2000:]
        out.append(run.stdout.split()[-2:])
    assert int(out[0][1]) > 10  # the loss and every parameter's gradient
    assert out[0] == out[1]
