"""Packaging metadata, checked without building anything (.ci/run builds the wheel,
repairs it with auditwheel and installs it in a fresh venv): the LICENSE pyproject
names, the [build-system] of the plugin pyproject files, the cibuildwheel set-up,
the CUDA kernel being opt-in, and what git ignores after `pip wheel .`."""

from __future__ import annotations

import pathlib
import re
import shutil
import subprocess
import sys

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - dendrax depends on tomli there
    import tomli as tomllib

ROOT = pathlib.Path(__file__).resolve().parents[1]
PLUGIN = ROOT / "examples" / "plugins" / "dendrax-example-plugin"


def load_toml(path: pathlib.Path) -> dict:
    with path.open("rb") as f:
        return tomllib.load(f)


@pytest.fixture(scope="module")
def pyproject() -> dict:
    return load_toml(ROOT / "pyproject.toml")


def words(text: str) -> str:
    return " ".join(text.split())


# --- LICENSE -----------------------------------------------------------------------

# The three clauses and the disclaimer of the BSD 3-Clause license (SPDX BSD-3-Clause).
BSD3_PHRASES = [
    "Redistribution and use in source and binary forms, with or without modification, "
    "are permitted provided that the following conditions are met:",
    "Redistributions of source code must retain the above copyright notice, this list of "
    "conditions and the following disclaimer.",
    "Redistributions in binary form must reproduce the above copyright notice, this list of "
    "conditions and the following disclaimer in the documentation and/or other materials "
    "provided with the distribution.",
    "Neither the name of the copyright holder nor the names of its contributors may be used "
    "to endorse or promote products derived from this software without specific prior "
    "written permission.",
    'THIS SOFTWARE IS PROVIDED BY THE COPYRIGHT HOLDERS AND CONTRIBUTORS "AS IS"',
    "IN NO EVENT SHALL THE COPYRIGHT HOLDER OR CONTRIBUTORS BE LIABLE",
]


def test_license_file_is_bsd_3_clause():
    text = words((ROOT / "LICENSE").read_text(encoding="utf-8"))
    for phrase in BSD3_PHRASES:
        assert words(phrase) in text, f"LICENSE lacks the BSD-3-Clause text: {phrase!r}"
    assert re.search(r"Copyright \(c\) 2026, the dendrax developers", text), text[:200]
    # three numbered conditions, not two (BSD-2-Clause) or four (BSD-4-Clause)
    assert re.findall(r"(?:^|\s)(\d)\. ", text) == ["1", "2", "3"]


def test_version_is_the_pyprojects(pyproject):
    import dendrax

    assert dendrax.__version__ == pyproject["project"]["version"]


def test_pyproject_license_matches_the_file(pyproject):
    license_ = pyproject["project"]["license"]
    spdx = license_ if isinstance(license_, str) else license_.get("text")
    assert spdx == "BSD-3-Clause", license_
    files = pyproject["tool"]["scikit-build"]["wheel"]["license-files"]
    assert [p for p in files if (ROOT / p).is_file()] == ["LICENSE"], files


# --- the plugin pyproject files: an example package and the docs' snippet ----------

def check_build_system(doc: dict, where: str) -> None:
    assert "build-system" in doc, f"{where} has no [build-system] table"
    bs = doc["build-system"]
    requires, backend = bs.get("requires"), bs.get("build-backend")
    assert isinstance(requires, list) and requires and all(isinstance(r, str) for r in requires), (where, bs)
    assert isinstance(backend, str) and re.fullmatch(r"[A-Za-z_][\w.]*(:[\w.]+)?", backend), (where, bs)
    # the backend's package is among the requirements (setuptools.build_meta -> setuptools, ...)
    top = backend.split(".")[0].split(":")[0]
    names = {re.split(r"[\s<>=!~;\[]", r, maxsplit=1)[0].lower().replace("-", "_") for r in requires}
    assert top.lower() in names, f"{where}: build-backend {backend!r} not provided by {requires}"


def check_plugin_project(doc: dict, where: str) -> None:
    project = doc["project"]
    assert project["name"] and project["version"], where
    assert any(re.match(r"dendrax\b", dep) for dep in project.get("dependencies", [])), where
    groups = {k: v for k, v in project.get("entry-points", {}).items() if k.startswith("dendrax.")}
    assert groups, f"{where} registers no dendrax entry point"
    for group, entries in groups.items():
        assert group in {"dendrax.channels", "dendrax.synapses", "dendrax.morphology_readers"}, group
        for name, target in entries.items():
            assert re.fullmatch(r"[\w.]+:[\w.]+", target), (where, group, name, target)


def test_example_plugin_pyproject_has_build_system():
    doc = load_toml(PLUGIN / "pyproject.toml")
    check_build_system(doc, "examples/plugins/dendrax-example-plugin/pyproject.toml")
    check_plugin_project(doc, "examples/plugins/dendrax-example-plugin/pyproject.toml")


def toml_blocks(markdown: str) -> list[str]:
    return re.findall(r"^```toml\n(.*?)^```", markdown, flags=re.S | re.M)


def test_docs_plugin_pyproject_snippet_is_complete():
    blocks = toml_blocks((ROOT / "docs" / "mechanisms.md").read_text(encoding="utf-8"))
    plugin_blocks = [b for b in blocks if "dendrax.channels" in b]
    assert len(plugin_blocks) == 1, f"expected one plugin pyproject snippet, found {len(plugin_blocks)}"
    doc = tomllib.loads(plugin_blocks[0])
    check_build_system(doc, "docs/mechanisms.md plugin snippet")
    check_plugin_project(doc, "docs/mechanisms.md plugin snippet")


# --- wheels: cibuildwheel, the optional CUDA part -----------------------------------

def test_cibuildwheel_builds_manylinux_wheels(pyproject):
    cibw = pyproject["tool"]["cibuildwheel"]
    linux = cibw["linux"]
    for arch in ("x86_64", "aarch64"):
        image = linux[f"manylinux-{arch}-image"]
        assert re.fullmatch(r"manylinux(2014|_2_\d+)", image), (arch, image)
    build = cibw["build"]
    build = build.split() if isinstance(build, str) else build
    assert sorted(build) == ["cp310-*", "cp311-*", "cp312-*", "cp313-*"], build
    # every Python built is one pyproject allows
    assert pyproject["project"]["requires-python"] == ">=3.10"
    skip = cibw.get("skip", [])
    assert "*-musllinux_*" in (skip.split() if isinstance(skip, str) else skip)
    assert "native_available('cpu')" in cibw["test-command"]
    # the wheels are CPU-only whatever the runner's environment holds
    assert linux["environment"]["DENDRAX_CUDA"] == "OFF"


def test_cuda_kernel_is_opt_in(pyproject):
    define = pyproject["tool"]["scikit-build"]["cmake"]["define"]["DENDRAX_CUDA"]
    assert define == {"env": "DENDRAX_CUDA", "default": "OFF"}, define
    cmake = (ROOT / "CMakeLists.txt").read_text(encoding="utf-8")
    option = re.search(r'^option\(DENDRAX_CUDA\s+"[^"]*"\s+(\w+)\)', cmake, flags=re.M)
    assert option and option.group(1) == "OFF", option
    # asked for and impossible is an error, not a silent CPU-only build
    assert re.search(r"if\(NOT CMAKE_CUDA_COMPILER\)\s*\n\s*message\(FATAL_ERROR", cmake)


# --- what `pip wheel .` leaves is ignored -------------------------------------------

def git_ignored(paths: list[str]) -> set[str]:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    proc = subprocess.run(["git", "check-ignore", "--no-index", "--stdin"], cwd=ROOT,
                          input="\n".join(paths) + "\n", capture_output=True, text=True, timeout=60)
    assert proc.returncode in (0, 1), proc.stderr
    return set(proc.stdout.split())


def test_gitignore_covers_what_pip_wheel_leaves(pyproject):
    build_dir = pyproject["tool"]["scikit-build"]["build-dir"]
    assert build_dir.startswith("build/"), build_dir
    tree = build_dir.replace("{wheel_tag}", "cp311-cp311-linux_x86_64")
    litter = [
        "dendrax-0.1.0-cp311-cp311-linux_x86_64.whl",  # `pip wheel .` without -w: the current folder
        f"{tree}/CMakeCache.txt",
        f"{tree}/_hines_cpu.cpython-311-x86_64-linux-gnu.so",
        "dist/dendrax-0.1.0-cp311-cp311-linux_x86_64.whl",
        "dist/repaired/dendrax-0.1.0-cp311-cp311-manylinux_2_34_x86_64.whl",
        "wheelhouse/dendrax-0.1.0-cp312-cp312-manylinux_2_28_x86_64.whl",  # cibuildwheel
        "examples/plugins/dendrax-example-plugin/build/lib/dendrax_example_plugin/__init__.py",
        "examples/plugins/dendrax-example-plugin/src/dendrax_example_plugin.egg-info/PKG-INFO",
    ]
    ignored = git_ignored(litter)
    assert ignored == set(litter), f"not ignored: {sorted(set(litter) - ignored)}"
    kept = ["LICENSE", "pyproject.toml", "CMakeLists.txt", "csrc/hines_cpu.cc", ".ci/run"]
    assert not git_ignored(kept), "the sources must not be ignored"


def test_install_guide_python_examples_run():


    doc = (pathlib.Path(__file__).resolve().parents[1] / "docs" / "install.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", doc, re.S)
    assert blocks
    for block in blocks:
        exec(compile(block, "docs/install.md", "exec"), {})
