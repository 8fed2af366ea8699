"""The CUDA Hines kernel compiles wherever nvcc is on PATH (no GPU needed), and a CMake
build of the package with DENDRAX_CUDA=ON (the CUDA kernel is optional, off by default)
produced its extension module."""

from __future__ import annotations

import importlib
import importlib.util
import os
import pathlib
import shutil
import subprocess
import sysconfig

import jax
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
NVCC = shutil.which("nvcc")
needs_nvcc = pytest.mark.skipif(NVCC is None, reason="nvcc is not on PATH: the CUDA kernel is not built")


def include_dirs() -> list[pathlib.Path]:
    nanobind = pytest.importorskip("nanobind", reason="nanobind (a build requirement) not installed")
    nb_inc = pathlib.Path(nanobind.include_dir())
    dirs = [ROOT / "csrc", pathlib.Path(jax.ffi.include_dir()), nb_inc,
            pathlib.Path(sysconfig.get_paths()["include"])]
    robin_map = nb_inc.parent / "ext" / "robin_map" / "include"
    if robin_map.is_dir():
        dirs.append(robin_map)
    return dirs


@needs_nvcc
def test_nvcc_compiles_cuda_kernel(tmp_path):
    cmd = [NVCC, "-c", "-std=c++17", "-O2", "-Xcompiler", "-fPIC",
           *(f"-I{d}" for d in include_dirs()),
           str(ROOT / "csrc" / "hines_cuda.cu"), "-o", str(tmp_path / "hines_cuda.o")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{' '.join(cmd)}\n{proc.stderr[-5000:]}"
    assert (tmp_path / "hines_cuda.o").stat().st_size > 0


def cuda_build_requested() -> bool:
    """DENDRAX_CUDA=ON, what turns the (optional, off by default) CUDA build on, asks
    for this check too."""
    return os.environ.get("DENDRAX_CUDA", "").strip().upper() in {"1", "ON", "TRUE", "YES", "Y"}


@needs_nvcc
def test_cmake_build_produced_cuda_module():
    rebuild = "`DENDRAX_CUDA=ON pip install --no-build-isolation -e .`"
    if importlib.util.find_spec("dendrax._hines_cuda") is None:
        if not cuda_build_requested():
            pytest.skip(f"the CUDA kernel is an optional part, not built by default: {rebuild} builds it")
        pytest.fail(f"DENDRAX_CUDA=ON but no dendrax._hines_cuda is installed: rebuild with {rebuild}")
    # importable without a GPU (the CUDA runtime is linked statically), exports both targets
    module = importlib.import_module("dendrax._hines_cuda")
    assert set(module.registrations()) == {"dendrax_hines_factor_solve", "dendrax_hines_substitute"}


# The CUDA kernel runs the device-portable loops of csrc/hines_kernel.h
# (factor_solve / substitute, one system per thread); the CPU handlers run the row
# formulation (factor_solve_rows / substitute_rows). Without a GPU, check on the
# host that both give the same results bit for bit.
KERNEL_CHECK = r"""
#include <cstdio>
#include <random>
#include <vector>
#include "hines_kernel.h"
using namespace dendrax;

int main() {
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> u(-1, 1);
  int failures = 0, cases = 0;
  for (int trial = 0; trial < 300; ++trial) {
    const int64_t n = 1 + rng() % 40, nt = 1 + rng() % 9;
    std::vector<int32_t> parent(n);
    const int kind = trial % 4;
    for (int64_t i = 0; i < n; ++i) {
      if (i == 0) parent[i] = -1;
      else if (kind == 0) parent[i] = i - 1;                             // chain
      else if (kind == 1) parent[i] = 0;                                 // star
      else if (kind == 2) parent[i] = rng() % i;                         // tree
      else parent[i] = static_cast<int32_t>(rng() % (i + 1)) - 1;        // forest
    }
    if (!valid_parents(parent.data(), n)) return 2;
    std::vector<uint8_t> flags(n);
    tree_flags(parent.data(), n, flags.data());
    const size_t sz = n * nt;
    std::vector<double> lo(sz), d(sz), up(sz), r(sz);
    for (size_t k = 0; k < sz; ++k) { lo[k] = u(rng); up[k] = u(rng); r[k] = u(rng); d[k] = 2 * n + u(rng); }
    std::vector<double> x1(sz), di1(sz), x2(sz, 7.0), di2(sz, 7.0), y1(sz), y2(sz, 7.0);
    for (int64_t t = 0; t < nt; ++t)  // one system per call, as a CUDA thread
      factor_solve(parent.data(), lo.data(), d.data(), up.data(), r.data(), x1.data(), di1.data(), n, nt, t, t + 1);
    factor_solve_rows(parent.data(), flags.data(), lo.data(), d.data(), up.data(), r.data(), x2.data(), di2.data(), n, nt, int64_t{0}, nt);
    for (int64_t t = 0; t < nt; ++t)  // the transposed solve
      substitute(parent.data(), up.data(), lo.data(), di1.data(), x1.data(), y1.data(), n, nt, t, t + 1);
    substitute_rows(parent.data(), flags.data(), up.data(), lo.data(), di2.data(), x2.data(), y2.data(), n, nt, int64_t{0}, nt);
    for (size_t k = 0; k < sz; ++k) {
      ++cases;
      if (x1[k] != x2[k] || di1[k] != di2[k] || y1[k] != y2[k]) { ++failures; break; }
    }
  }
  const int32_t bad1[] = {-1, 0, 2}, bad2[] = {-1, -2, 0}, good[] = {-1, 0, 0};
  if (valid_parents(bad1, 3) || valid_parents(bad2, 3) || !valid_parents(good, 3)) return 3;
  std::printf("checked %d values, %d failing systems\n", cases, failures);
  return failures ? 1 : 0;
}
"""


def test_device_kernel_matches_cpu_kernel(tmp_path):
    cxx = shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")
    if cxx is None:
        pytest.skip("no C++ compiler on PATH")
    src = tmp_path / "kernel_check.cc"
    src.write_text(KERNEL_CHECK)
    exe = tmp_path / "kernel_check"
    proc = subprocess.run([cxx, "-O2", "-std=c++17", f"-I{ROOT / 'csrc'}", str(src), "-o", str(exe)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-5000:]
    run = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
