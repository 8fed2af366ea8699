"""NEURON with the reference NMODL files of tests/nmodl, compiled and loaded once.

``load_reference_mechanisms()`` compiles tests/nmodl/*.mod (and the NEURON-only
references of tests/nmodl_neuron, which dendrax does not import) with nrnivmodl into a
temporary directory named after a hash of the files (so a later session reuses
the build instead of compiling for ~30 s again), loads it into this process's
NEURON, and returns ``neuron.h``. NEURON can load a mechanism library only once
per process, so the result is cached; a second test module asking for it gets
the same. Raises ``ReferenceUnavailable`` (tests turn it into a skip) when
NEURON, nrnivmodl or a C++ compiler is missing; a build that fails with them present,
or a clash with a library loaded before, is a ``RuntimeError``: the test errs rather
than skipping the comparison it exists for.

Use from a test module::

    from conftest_mechanisms import ReferenceUnavailable, load_reference_mechanisms

    @pytest.fixture(scope="session")
    def nrn():
        try:
            return load_reference_mechanisms()
        except ReferenceUnavailable as err:
            pytest.skip(str(err))
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

NMODL_DIR = Path(__file__).resolve().parent / "nmodl"
NEURON_ONLY_DIR = Path(__file__).resolve().parent / "nmodl_neuron"
FILES = sorted(NMODL_DIR.glob("*.mod")) + sorted(NEURON_ONLY_DIR.glob("*.mod"))
MECHANISMS = sorted(p.stem for p in FILES)

_loaded: object | None = None


class ReferenceUnavailable(RuntimeError):
    """The NEURON reference cannot be built or loaded here (reason in the message)."""


def _nrnivmodl() -> str:
    exe = shutil.which("nrnivmodl") or str(Path(sys.executable).with_name("nrnivmodl"))
    if not Path(exe).exists():
        raise ReferenceUnavailable("nrnivmodl not found (install NEURON >= 9: pip install neuron)")
    if not (shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")):
        raise ReferenceUnavailable("no C++ compiler (c++, g++ or clang++) to build the NMODL files")
    return exe


def _library(build: Path) -> Path | None:
    libs = sorted(build.glob("*/.libs/libnrnmech.so")) + sorted(build.glob("*/libnrnmech.*"))
    return libs[0] if libs else None


def build_reference_mechanisms() -> Path:
    """The directory holding the compiled reference mechanisms (built if needed)."""
    return compile_mod_files(FILES, "dendrax-nmodl")


def compile_mod_files(files, prefix: str) -> Path:
    """nrnivmodl of ``files``, built if needed into the temp dir's ``prefix``-<hash of the
    files and NEURON's version> (shared by the test processes)."""
    try:
        import neuron
    except ImportError as err:  # pragma: no cover - neuron is a test dependency
        raise ReferenceUnavailable(f"NEURON is not installed: {err}") from None
    digest = hashlib.sha256(neuron.__version__.encode())
    for f in files:
        digest.update(f.name.encode() + f.read_bytes())
    cache = Path(tempfile.gettempdir()) / f"{prefix}-{digest.hexdigest()[:16]}"
    if _library(cache) is not None:
        return cache
    exe = _nrnivmodl()
    work = Path(tempfile.mkdtemp(prefix=f"{prefix}-build-"))
    for f in files:
        shutil.copy(f, work / f.name)
    # -O0: these small files then build in ~10 s instead of ~30 s (same arithmetic:
    # no fused multiply-add either way on a default x86-64 target)
    env = {**os.environ, "MAKEFLAGS": r"CXXFLAGS=-O0\ -std=c++17"}
    proc = subprocess.run([exe, "."], cwd=work, capture_output=True, text=True, env=env)
    if proc.returncode != 0 or _library(work) is None:
        tail = (proc.stdout + proc.stderr)[-2000:]
        raise RuntimeError(f"nrnivmodl failed (exit {proc.returncode}):\n{tail}")
    try:
        work.rename(cache)  # atomic; another process may have won the race
    except OSError:
        if _library(cache) is None:
            return work
        shutil.rmtree(work, ignore_errors=True)
    return cache


def _known(h, name: str) -> bool:
    mt = h.MechanismType(0)
    out = h.ref("")
    for i in range(int(mt.count())):
        mt.select(i)
        mt.selected(out)
        if out[0] == name:
            return True
    return False


def load_reference_mechanisms():
    """``neuron.h`` with the reference mechanisms loaded (once per process)."""
    global _loaded
    if _loaded is not None:
        return _loaded
    build = build_reference_mechanisms()
    import neuron
    from neuron import h

    if not all(_known(h, m) for m in MECHANISMS):
        if any(_known(h, m) for m in MECHANISMS):
            raise RuntimeError(
                "another mechanism library with the same names (e.g. a Hay model) is already "
                "loaded into this process's NEURON; run these tests in their own process")
        if not neuron.load_mechanisms(str(build), warn_if_already_loaded=False):
            raise RuntimeError(f"neuron.load_mechanisms({str(build)!r}) failed")
    h.load_file("stdrun.hoc")
    _loaded = h
    return h
