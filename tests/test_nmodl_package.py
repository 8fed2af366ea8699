"""NMODL files as mechanisms by name: registration by nmodl.load (a name already taken
warns, the built-in stays), the ``dendrax nmodl`` command line (--check, --skip-unsupported,
--name), the plugin package it writes (installable, its generated tests pass, names that
would break or replace things refused) and a saved model of a loaded file.

(What loads and as what is tests/test_nmodl.py.)
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("neuron.nmodl", reason="NEURON's NMODL framework (dendrax[nmodl])")

import dendrax as dx
from dendrax import nmodl
from dendrax.mechanisms import hay, registry
from dendrax.nmodl import registry as nmodl_registry
from dendrax.nmodl.cli import main as nmodl_main

HERE = Path(__file__).resolve().parent
CASES = HERE / "nmodl_cases"


@pytest.fixture(autouse=True)
def _forget_registrations():
    yield
    nmodl_registry.unregister()


# --- registration ---------------------------------------------------------------------

def test_load_registers_by_name_and_warns_on_taken_names():
    cls = nmodl.load(CASES / "hhx.mod")
    assert type(registry.channel("hhx")) is cls
    cell = dx.Cell.from_sections([{"length": 20.0, "diam": 20.0, "parent": -1, "region": "soma"}])
    cell.insert("hhx")
    syn = nmodl.load(CASES / "exp2synx.mod")
    assert type(registry.synapse("Exp2Synx")) is syn
    with pytest.warns(RuntimeWarning, match="already provided by 'dendrax'"):
        nmodl.load(HERE / "nmodl" / "NaTa_t.mod")
    assert type(registry.channel("NaTa_t")) is hay.NaTa_t  # the built-in stays
    nmodl_registry.unregister("hhx")
    with pytest.raises(ValueError, match="no channel named 'hhx'"):
        registry.channel("hhx")


# --- the command line and the plugin package -------------------------------------------------

def test_cli_check(capsys, tmp_path):
    bad = tmp_path / "bad.mod"
    bad.write_text("NEURON { SUFFIX ptr NONSPECIFIC_CURRENT i POINTER pp }\n"
                   "ASSIGNED { v (mV) i (mA/cm2) pp }\nBREAKPOINT { i = 0 }\n")
    assert nmodl_main(["nmodl", "--check", str(CASES)]) == 0
    out = capsys.readouterr().out
    assert "kin3.mod: supported: Channel kin3" in out and "METHOD sparse" in out
    assert "exp2synx.mod: supported: Synapse Exp2Synx" in out
    assert nmodl_main(["nmodl", "--check", str(bad), str(CASES / "hhx.mod")]) == 1
    out = capsys.readouterr().out
    assert "bad.mod: NOT supported" in out and "line 1: POINTER is not supported" in out
    assert nmodl_main(["nmodl", str(bad), "-o", str(tmp_path / "pkg")]) == 2
    assert "POINTER" in capsys.readouterr().err
    # two files of one mechanism: refused by --check as by packaging (it said "supported")
    twice = tmp_path / "twice"
    twice.mkdir()
    for name in ("a.mod", "b.mod"):
        (twice / name).write_text((CASES / "hhx.mod").read_text())
    assert nmodl_main(["nmodl", "--check", str(twice)]) == 1
    out = capsys.readouterr().out
    assert "a.mod: supported" in out
    assert f"b.mod: NOT supported beside {twice / 'a.mod'}: both define the mechanism 'hhx'" in out
    assert nmodl_main(["nmodl", str(twice), "-o", str(tmp_path / "pkg2")]) == 2
    assert "both define the mechanism 'hhx'" in capsys.readouterr().err
    # one file named twice (or with its folder) is one mechanism
    assert nmodl_main(["nmodl", "--check", str(twice / "a.mod"), str(twice / "a.mod")]) == 0
    assert capsys.readouterr().out.count("supported") == 1


def test_packaging_a_name_taken_by_another_package_warns(tmp_path, capsys):
    """Installed, it would make cell.insert("hh") ambiguous for every user of hh."""
    mod = tmp_path / "hh.mod"
    mod.write_text("NEURON {\n  SUFFIX hh\n  NONSPECIFIC_CURRENT i\n}\n"
                   "PARAMETER { g = 0.001 (S/cm2) }\nASSIGNED { v (mV) i (mA/cm2) }\n"
                   "BREAKPOINT { i = g * (v + 70) }\n")
    with pytest.warns(UserWarning, match=r"'hh' is already provided by dendrax; once this package "
                                         r"is installed, cell.insert\('hh'\) is ambiguous"):
        assert nmodl_main(["nmodl", str(mod), "-o", str(tmp_path / "leak")]) == 0


def test_packaging_refuses_what_would_break_or_replace_things(tmp_path):
    """Two SUFFIXes differing in case (one module file: the package did not import), a
    folder holding another project's pyproject.toml (it was overwritten), a package name
    of dendrax's or Python's own (installing it replaces that), are refused; a SUFFIX rt
    packages under a class name that keeps the runtime."""
    from dendrax.nmodl.package import write_package

    def leak(suffix):
        return ("NEURON {\n  SUFFIX %s\n  NONSPECIFIC_CURRENT i\n}\n"
                "PARAMETER { g = 0.001 (S/cm2) }\nASSIGNED { v (mV) i (mA/cm2) }\n"
                "BREAKPOINT { i = g * (v + 70) }\n" % suffix)

    files = tmp_path / "mods"
    files.mkdir()
    (files / "a.mod").write_text(leak("Kv"))
    (files / "b.mod").write_text(leak("kv"))
    with pytest.raises(ValueError, match=r"would be one module, kv.py \(names differing only "
                                         r"in case\): rename one"):
        write_package([files], tmp_path / "out")
    (files / "b.mod").write_text(leak("rt"))
    other = tmp_path / "project"
    other.mkdir()
    (other / "pyproject.toml").write_text('[project]\nname = "mine"\n')
    with pytest.raises(ValueError, match="holds a pyproject.toml dendrax nmodl did not write"):
        write_package([files], other)
    assert (other / "pyproject.toml").read_text() == '[project]\nname = "mine"\n'
    for name in ("bad name!", "", "-x"):  # were changed quietly ("", to the folder's name)
        with pytest.raises(ValueError, match=rf"the package name '{re.escape(name)}' \(--name\) "
                                             r"is not valid"):
            write_package([files], tmp_path / "named", name=name)
    for name, owner in (("dendrax", "a package"), ("json", "Python's standard library")):
        with pytest.raises(ValueError, match=rf"the package name '{name}' is {owner}'s"):
            write_package([files], tmp_path / "named", name=name)
    braces = tmp_path / "dir{x}"  # a path holding "{" was read as NMODL text
    braces.mkdir()
    (braces / "leak.mod").write_text(leak("braced"))
    assert nmodl.load(braces / "leak.mod", register=False).name == "braced"
    assert nmodl.load(str(braces / "leak.mod"), register=False).name == "braced"
    done = write_package([files], tmp_path / "good")
    assert done["channels"]["rt"] == "good.rt:rt_"
    write_package([files], tmp_path / "good")  # its own output: written again


def test_a_saved_model_of_a_loaded_mod_file_says_how_to_load_it(tmp_path):
    """A mechanism from dendrax.nmodl.load is no installed package: loading the model where
    the file was not loaded says to load it (or package it), not to install a package."""
    path = tmp_path / "m.dendrax.json"
    try:
        nmodl.load(CASES / "leakunit.mod")
        cell = dx.Cell.ball_and_stick().insert("leakunit")
        cell.record("v", cell.soma(0.5))
        dx.save(cell, path)
        assert dx.load(path).mechanisms.keys() == cell.mechanisms.keys()  # loaded: it works
    finally:
        nmodl_registry.unregister()
    with pytest.raises(ValueError, match=r"came from dendrax.nmodl.load .*: load the same "
                                         r"\.mod file first .* or package it"):
        dx.load(path)


def test_cli_skip_unsupported_and_name(tmp_path, capsys):
    """An unsupported file stops the package (exit 2, its problems named); with
    --skip-unsupported the others are packaged and it is listed; --name names the package."""
    folder = tmp_path / "mods"
    folder.mkdir()
    (folder / "leakunit.mod").write_text((CASES / "leakunit.mod").read_text())
    (folder / "bad.mod").write_text("NEURON { SUFFIX bad NONSPECIFIC_CURRENT i POINTER p }\n"
                                    "ASSIGNED { v (mV) i (mA/cm2) p }\n"
                                    "BREAKPOINT { i = 0.001*(v + 65) }\n")
    out = tmp_path / "pkg"
    assert nmodl_main(["nmodl", str(folder), "-o", str(out)]) == 2
    assert "POINTER is not supported" in capsys.readouterr().err and not out.exists()
    assert nmodl_main(["nmodl", str(folder), "-o", str(out), "--skip-unsupported",
                       "--name", "lab-leaks"]) == 0
    printed = capsys.readouterr()
    assert "package lab-leaks with 1 mechanisms (leakunit)" in printed.out
    assert f"skipped {folder / 'bad.mod'}" in printed.err and "POINTER" in printed.err
    pyproject = (out / "pyproject.toml").read_text()
    assert 'name = "lab-leaks"' in pyproject and "leakunit" in pyproject and "bad" not in pyproject


def test_cli_writes_an_installable_package(tmp_path, capsys, monkeypatch):
    out = tmp_path / "my-lab-model"
    assert nmodl_main(["nmodl", str(CASES), str(HERE / "nmodl" / "CaDynamics_E2.mod"),
                       "-o", str(out)]) == 0
    assert f"pip install {out}" in capsys.readouterr().out
    monkeypatch.chdir(tmp_path)  # a relative folder is named as a path, not a package name
    assert nmodl_main(["nmodl", str(CASES / "leakunit.mod"), "-o", "rel-pkg"]) == 0
    assert "pip install ./rel-pkg" in capsys.readouterr().out
    pyproject = (out / "pyproject.toml").read_text()
    assert '[project.entry-points."dendrax.channels"]' in pyproject
    assert 'hhx = "my_lab_model.hhx:hhx"' in pyproject
    assert 'Exp2Synx = "my_lab_model.exp2synx:Exp2Synx"' in pyproject
    code = (out / "src" / "my_lab_model" / "kin3.py").read_text()
    assert "class kin3(Channel):" in code and "# ~ C <-> O (a, b)" in code
    # the generated test passes from the source tree
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           str(out / "tests")], capture_output=True, text=True, timeout=600,
                          cwd=out)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    # installed (pip, into a folder), its mechanisms are found by name
    site = tmp_path / "site"
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--quiet",
                          "--target", str(site), str(out)], capture_output=True, text=True,
                         timeout=300)
    if pip.returncode != 0:
        pytest.skip(f"pip cannot build the package here: {pip.stderr[-500:]}")
    script = ("import jax; jax.config.update('jax_enable_x64', True)\n"
              "import dendrax as dx\n"
              "cell = dx.Cell.from_sections([{'length': 20.0, 'diam': 20.0, 'parent': -1, "
              "'region': 'soma'}])\n"
              "cell.insert('hhx'); cell.insert('kin3')\n"
              "cell.synapse('Exp2Synx', cell.soma(), spike_times=[1.0], weight=0.01)\n"
              "cell.record('v'); cell.record('kin3.O')\n"
              "res = dx.simulate(cell, 5.0, 0.025, v_init=-65.0)\n"
              "import numpy as np; assert np.isfinite(np.asarray(res.traces)).all()\n"
              "print('ok', type(cell.mechanisms['hhx']).__module__)\n")
    env = {**__import__("os").environ, "PYTHONPATH": str(site)}
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=600, env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "ok my_lab_model.hhx" in run.stdout
