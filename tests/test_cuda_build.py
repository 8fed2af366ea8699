"""The CUDA Hines kernel compiles wherever nvcc is on PATH (no GPU needed), and a CMake
build of the package with DENDRAX_CUDA=ON (the CUDA kernel is optional, off by default)
produced its extension module."""

from __future__ import annotations

import importlib
import importlib.util
import os
import pathlib
import re
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
@pytest.mark.parametrize("kernel", ["hines", "events"])
def test_nvcc_compiles_cuda_kernel(tmp_path, kernel):
    """Without warnings from our sources (XLA's and Python's headers: -isystem), host code
    compiled with -Wall -Wextra too. nanobind's headers are included as the CMake build
    includes them (-I, not -isystem): what nvcc warns about in its templates where our
    sources instantiate them shows in a CUDA build's log too."""
    obj = tmp_path / f"{kernel}_cuda.o"
    csrc, xla, nb_inc, *others = include_dirs()
    cmd = [NVCC, "-c", "-std=c++17", "-O2", "-Wno-deprecated-gpu-targets",
           "-Xcompiler", "-fPIC,-Wall,-Wextra", f"-I{csrc}", f"-I{nb_inc}",
           *(a for d in (xla, *others) for a in ("-isystem", str(d))),
           str(ROOT / "csrc" / f"{kernel}_cuda.cu"), "-o", str(obj)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{' '.join(cmd)}\n{proc.stderr[-5000:]}"
    assert obj.stat().st_size > 0
    assert "warning" not in (proc.stdout + proc.stderr).lower(), proc.stderr[-5000:]


@pytest.mark.parametrize("kernel", ["hines", "events"])
def test_cuda_handlers_are_command_buffer_compatible(kernel):
    """Every CUDA handler only enqueues work on XLA's stream, so each says so: without the
    trait XLA:GPU launches the call on its own, outside the CUDA graph of the step around
    it (docs/solver.md, On the GPU)."""
    source = (ROOT / "csrc" / f"{kernel}_cuda.cu").read_text()
    handlers = re.findall(r"XLA_FFI_DEFINE_HANDLER_SYMBOL\((\w+),(.*?)\);\n", source, re.S)
    assert handlers
    for name, body in handlers:
        assert body.rstrip().endswith("{xla::ffi::Traits::kCmdBufferCompatible}"), name


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
    assert set(module.registrations()) == {"dendrax_hines_factor_solve", "dendrax_hines_substitute",
                                           "dendrax_hines_factor_solve_scheduled",
                                           "dendrax_hines_substitute_scheduled"}
    # and the event-delivery kernel, built alongside
    if importlib.util.find_spec("dendrax._events_cuda") is None:
        pytest.fail(f"dendrax._hines_cuda is built but dendrax._events_cuda is not: rebuild with {rebuild}")
    events = importlib.import_module("dendrax._events_cuda")
    assert set(events.registrations()) == {"dendrax_events_deliver", "dendrax_events_take"}


# The CUDA kernel runs the device-portable loops of csrc/hines_kernel.h
# (factor_solve / substitute, one system per thread) where the parent array is traced or
# the systems fill the GPU (else the schedule, below); the CPU handlers run the row
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


# The CUDA event-delivery kernel (csrc/events_cuda.cu) gives each (batch entry,
# source) a warp: lanes take connections lane, lane + 32, ... of a fired source and
# add with atomicAdd, warps in any order. The CPU handler walks sources and their
# connections in order (deliver_all). Without a GPU, emulate the warp decomposition
# on the host with the same functions of csrc/events_kernel.h, warps and lanes in
# shuffled order, and check both against a plain loop over the documented semantics
# (integer-valued weights: sums exact in any order), also on corrupt data (ptr out of
# range or decreasing, targets and delays out of range, extreme steps), compiled
# with AddressSanitizer where available: no access out of bounds.
EVENTS_KERNEL_CHECK = r"""
#include <algorithm>
#include <climits>
#include <cstdio>
#include <numeric>
#include <random>
#include <vector>
#include "events_kernel.h"
using namespace dendrax::events;

int main() {
  std::mt19937_64 rng(11);
  int failures = 0, checked = 0, delivered = 0;
  for (int trial = 0; trial < 600; ++trial) {
    Sizes n;
    n.d = 1 + rng() % 6;
    n.s = rng() % 12;
    n.p = 1 + rng() % 9;
    const bool corrupt = trial % 3 == 0;
    std::vector<int32_t> ptr(n.s + 1, 0);
    for (int64_t s = 0; s < n.s; ++s) ptr[s + 1] = ptr[s] + static_cast<int32_t>(rng() % 70);
    n.c = ptr[n.s];
    std::vector<int32_t> target(n.c), delay(n.c);
    std::vector<double> weight(n.c);
    for (int64_t c = 0; c < n.c; ++c) {
      target[c] = static_cast<int32_t>(rng() % n.p);
      delay[c] = static_cast<int32_t>(rng() % n.d);
      weight[c] = static_cast<double>(static_cast<int>(rng() % 9) - 4);
    }
    if (corrupt) {
      for (auto& v : ptr) if (rng() % 4 == 0) v = static_cast<int32_t>(rng() % (n.c + 20)) - 10;
      for (auto& v : target) if (rng() % 4 == 0) v = static_cast<int32_t>(rng() % (n.p + 6)) - 3;
      for (auto& v : delay) if (rng() % 4 == 0) v = static_cast<int32_t>(rng() % (n.d + 6)) - 3;
    }
    std::vector<char> fired_store(n.s);  // bool vector without std::vector<bool>
    for (auto& f : fired_store) f = rng() % 3 == 0;
    const bool* fired = reinterpret_cast<const bool*>(fired_store.data());
    const int32_t steps[] = {0, 1, 7, -1, -13, INT_MAX, INT_MIN, 123456789};
    const int32_t step = steps[rng() % 8];

    const size_t size = n.d * 2 * n.p;
    std::vector<double> ref(size), cpu, gpu;
    for (auto& v : ref) v = static_cast<double>(static_cast<int>(rng() % 5));
    cpu = gpu = ref;
    // the documented semantics, written plainly
    const int64_t r0 = ((static_cast<int64_t>(step) % n.d) + n.d) % n.d;
    for (int64_t s = 0; s < n.s; ++s) {
      if (!fired[s]) continue;
      const int64_t b = std::min<int64_t>(std::max<int64_t>(ptr[s], 0), n.c);
      const int64_t e = std::min<int64_t>(std::max<int64_t>(ptr[s + 1], 0), n.c);
      for (int64_t c = b; c < e; ++c) {
        if (target[c] < 0 || target[c] >= n.p || delay[c] < 0 || delay[c] >= n.d) continue;
        const int64_t row = (r0 + delay[c]) % n.d;
        ref[(row * 2 + (weight[c] >= 0 ? 0 : 1)) * n.p + target[c]] += weight[c];
        ++delivered;
      }
    }
    // the CPU handler
    deliver_all(n, fired, ptr.data(), target.data(), delay.data(), weight.data(), step, cpu.data());
    // the CUDA kernel, warp by warp and lane by lane in shuffled order
    std::vector<int64_t> warps(n.s), lanes(32);
    std::iota(warps.begin(), warps.end(), 0);
    std::iota(lanes.begin(), lanes.end(), 0);
    std::shuffle(warps.begin(), warps.end(), rng);
    for (int64_t s : warps) {
      if (!fired[s]) continue;
      int64_t b, e;
      source_range(ptr.data(), s, n.c, &b, &e);
      const int64_t row0 = ring_row(step, n.d);
      std::shuffle(lanes.begin(), lanes.end(), rng);
      for (int64_t lane : lanes)
        deliver_range(n, row0, target.data(), delay.data(), weight.data(), b, e, lane, int64_t{32},
                      gpu.data(), [](double* p, double v) { *p += v; });
    }
    for (size_t k = 0; k < size; ++k) {
      ++checked;
      if (cpu[k] != ref[k] || gpu[k] != ref[k]) { ++failures; break; }
    }
  }
  std::printf("checked %d values (%d deliveries), %d failing trials\n", checked, delivered, failures);
  return failures || delivered == 0 ? 1 : 0;
}
"""


def test_events_device_kernel_matches_cpu_kernel(tmp_path):
    cxx = shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")
    if cxx is None:
        pytest.skip("no C++ compiler on PATH")
    src = tmp_path / "events_check.cc"
    src.write_text(EVENTS_KERNEL_CHECK)
    exe = tmp_path / "events_check"
    base = [cxx, "-O1", "-g", "-std=c++17", f"-I{ROOT / 'csrc'}", str(src), "-o", str(exe)]
    sanitize = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all"]
    proc = subprocess.run(base + sanitize, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:  # no sanitizer runtime here: the plain build still checks values
        proc = subprocess.run(base, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-5000:]
    run = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "ASAN_OPTIONS": "detect_leaks=0"})
    assert run.returncode == 0, run.stdout + run.stderr


# --- the branch-level schedule of the CUDA kernel ----------------------------------------
#
# With a concrete parent array the CUDA kernel runs the schedule of
# dendrax.solver.schedule (csrc/hines_schedule.h): branches (unbranched runs) solved as
# chains, one thread each, level by level. Without a GPU: (1) a numpy emulation of exactly
# that algorithm, branches of a level in shuffled order, against dense linear algebra and
# bit for bit against the CPU kernel; (2) the device functions themselves compiled for the
# host and run thread by thread, bit for bit against the CPU kernel's row formulation;
# (3) the lowering for CUDA calls the scheduled targets with the schedule operand.

import numpy as np  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from dendrax.solver.schedule import build_schedule  # noqa: E402

SCHED_PROPS = settings(max_examples=40, deadline=None,
                       suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@st.composite
def trees(draw, max_n=60):
    """Parent arrays: chains, stars, random trees, forests, and neuron-like trees
    (unbranched cables that fork), numbered parents first."""
    n = draw(st.integers(1, max_n))
    kind = draw(st.sampled_from(["chain", "star", "random", "forest", "cables"]))
    if kind == "chain":
        return np.arange(-1, n - 1, dtype=np.int32)
    if kind == "star":
        return np.r_[-1, np.zeros(n - 1, int)].astype(np.int32)
    if kind == "random":
        return np.array([-1] + [draw(st.integers(0, i - 1)) for i in range(1, n)], np.int32)
    if kind == "forest":
        return np.array([draw(st.integers(-1, i - 1)) for i in range(n)], np.int32)
    parent = [-1]  # a cable continues (i - 1) or starts at an earlier node
    for i in range(1, n):
        parent.append(i - 1 if draw(st.integers(0, 4)) else draw(st.integers(0, i - 1)))
    return np.array(parent, np.int32)


def check_schedule_invariants(parent, sched):
    s = sched.parts()
    n = parent.size
    nodes, bp, lp, cp, ct = (s[k] for k in ("nodes", "branch_ptr", "level_ptr", "child_ptr",
                                            "child_top"))
    assert sorted(nodes.tolist()) == list(range(n))
    n_children = np.bincount(parent[parent >= 0], minlength=n)
    level_of = np.repeat(np.arange(lp.size - 1), np.diff(lp))
    branch_of = np.empty(n, int)
    for b in range(bp.size - 1):
        run = nodes[bp[b]:bp[b + 1]]
        assert run.size >= 1
        branch_of[run] = b
        top, bottom = run[0], run[-1]
        assert all(parent[run[k + 1]] == run[k] for k in range(run.size - 1))  # a chain
        assert all(n_children[v] == 1 for v in run[:-1])  # unbranched inside
        assert parent[top] < 0 or n_children[parent[top]] != 1  # maximal at the top
        assert n_children[bottom] != 1  # and at the bottom
        kids = np.flatnonzero(parent == bottom)
        assert ct[cp[b]:cp[b + 1]].tolist() == sorted(kids.tolist(), reverse=True)
    for b in range(bp.size - 1):
        top = nodes[bp[b]]
        expected = 0 if parent[top] < 0 else level_of[branch_of[parent[top]]] + 1
        assert level_of[b] == expected
    assert sched.width == int(np.max(np.diff(lp)))


def emulate(parent, sched, lo, d, up, r, dinv=None, seed=0):
    """The scheduled kernel in numpy, over systems [N, T]: factor_solve (dinv None:
    returns x, dinv) or substitute (dinv given: returns x). Branches of a level run in a
    shuffled order, as threads do; every product is rounded before it is subtracted."""
    s = sched.parts()
    nodes, bp, lp, cp, ct = (s[k] for k in ("nodes", "branch_ptr", "level_ptr", "child_ptr",
                                            "child_top"))
    rng = np.random.default_rng(seed)
    factor = dinv is None
    x = np.full_like(r, np.nan)
    dinv = np.full_like(r, np.nan) if factor else dinv
    one = r.dtype.type(1)
    n_levels = lp.size - 1
    for lev in range(n_levels - 1, -1, -1):
        for b in rng.permutation(np.arange(lp[lev], lp[lev + 1])):
            run = nodes[bp[b]:bp[b + 1]]
            i = run[-1]
            di, ri = d[i].copy(), r[i].copy()
            for c in ct[cp[b]:cp[b + 1]]:
                f = up[c] * dinv[c]
                if factor:
                    di = di - f * lo[c]
                ri = ri - f * x[c]
            if factor:
                dinv[i] = one / di
            x[i] = ri
            for k in range(run.size - 2, -1, -1):
                c, i = i, run[k]
                f = up[c] * dinv[c]
                if factor:
                    dinv[i] = one / (d[i] - f * lo[c])
                x[i] = r[i] - f * x[c]
    for lev in range(n_levels):
        for b in rng.permutation(np.arange(lp[lev], lp[lev + 1])):
            for i in nodes[bp[b]:bp[b + 1]]:
                p = parent[i]
                x[i] = x[i] * dinv[i] if p < 0 else (x[i] - lo[i] * x[p]) * dinv[i]
    return (x, dinv) if factor else x


def random_system(parent, nt, dtype, seed):
    rng = np.random.default_rng(seed)
    shape = (parent.size, nt)
    lo, up = rng.uniform(-1, 1, (2,) + shape)
    dom = np.abs(lo) + np.abs(up)
    np.add.at(dom, parent[parent >= 0], (np.abs(lo) + np.abs(up))[parent >= 0])
    d = rng.choice([-1.0, 1.0], shape) * (dom + rng.uniform(0.5, 2.0, shape))
    r = rng.normal(size=shape)
    return tuple(a.astype(dtype) for a in (lo, d, up, r))


def dense(parent, lo, d, up):
    """A [T, N, N] of the tree operands [N, T] (float64)."""
    n, nt = d.shape
    a = np.zeros((nt, n, n))
    i = np.arange(n)
    a[:, i, i] = d.T
    ch = np.flatnonzero(parent >= 0)
    a[:, ch, parent[ch]] = lo[ch].T
    a[:, parent[ch], ch] = up[ch].T
    return a


@SCHED_PROPS
@given(parent=trees(), nt=st.sampled_from([1, 3]), dtype=st.sampled_from([np.float64, np.float32]),
       seed=st.integers(0, 2**32 - 1))
def test_scheduled_solve_emulation(parent, nt, dtype, seed):
    import jax
    import jax.numpy as jnp

    import dendrax
    from dendrax.solver import native_available

    sched = build_schedule(parent)
    check_schedule_invariants(parent, sched)
    lo, d, up, r = random_system(parent, nt, dtype, seed)
    x, dinv = emulate(parent, sched, lo, d, up, r, seed=seed)
    a = dense(parent, *(np.asarray(v, np.float64) for v in (lo, d, up)))
    expected = np.linalg.solve(a, np.asarray(r, np.float64).T[..., None])[..., 0].T
    tol = 1e-9 if dtype == np.float64 else 2e-4
    np.testing.assert_allclose(x, expected, rtol=tol, atol=tol * max(1.0, np.abs(expected).max()))
    # the transposed solve with the same dinv: A^T y = w
    w = np.random.default_rng(seed + 1).normal(size=r.shape).astype(dtype)
    y = emulate(parent, sched, up, d, lo, w, dinv=dinv, seed=seed + 2)
    y_ref = np.linalg.solve(np.swapaxes(a, 1, 2), np.asarray(w, np.float64).T[..., None])[..., 0].T
    np.testing.assert_allclose(y, y_ref, rtol=tol, atol=tol * max(1.0, np.abs(y_ref).max()))
    if not native_available("cpu") or (dtype == np.float64 and not jax.config.jax_enable_x64):
        return
    # bit for bit against the CPU kernel: the solve, and the gradient w.r.t. rhs (the
    # transposed substitute of the native kernel)
    solve = lambda rr: dendrax.hines_solve(parent, lo, d, up, rr, backend="native")  # noqa: E731
    np.testing.assert_array_equal(np.asarray(solve(r)), x)
    g = jax.grad(lambda rr: jnp.sum(jnp.asarray(w) * solve(rr)))(r)
    np.testing.assert_array_equal(np.asarray(g), y)


def test_schedule_examples():
    # a Y: root chain 0-1, fork at 1 into 2-3 and 4; a second tree 5-6
    parent = np.array([-1, 0, 1, 2, 1, -1, 5], np.int32)
    s = build_schedule(parent)
    parts = s.parts()
    assert parts["nodes"].tolist() == [0, 1, 5, 6, 2, 3, 4]
    assert parts["branch_ptr"].tolist() == [0, 2, 4, 6, 7]
    assert parts["level_ptr"].tolist() == [0, 2, 4]
    assert parts["child_top"].tolist() == [4, 2]
    assert (s.n_levels, s.n_branches, s.width) == (2, 4, 2)
    assert build_schedule(parent) is s  # cached by content
    assert hash(build_schedule(parent.astype(np.int64))) == hash(s)
    with pytest.raises(ValueError, match=r"parent\[2\] = 2 breaks"):
        build_schedule([-1, 0, 2])
    chain = build_schedule(np.arange(-1, 99))
    assert (chain.n_levels, chain.n_branches, chain.width) == (1, 1, 1)


def scheduled_calls(text):
    import re
    return re.findall(r"custom_call @(dendrax_hines_\w+)\(([^)]*)\).*?: \(([^)]*)\)", text)


def test_cuda_lowering_passes_the_schedule(monkeypatch):
    """Lowered for CUDA (no GPU needed): a concrete parent array gives the scheduled
    targets with the packed schedule as last operand (under vmap: the batch side by side
    with the systems, [N, B], and the schedule unbatched) and its width as attribute, in
    the solve and in its gradient; a traced one the plain targets."""
    import jax
    import jax.numpy as jnp

    import dendrax
    from dendrax.solver import _native

    real = _native.available
    monkeypatch.setattr(_native, "available", lambda p: True if p == "CUDA" else real(p))
    parent = np.array([-1, 0, 1, 1, 3, 4, 3, -1, 7], np.int32)
    n = parent.size
    sched = build_schedule(parent)
    k = sched.packed.size
    ops = [np.ones((n, 3), np.float32)] * 4

    def lower(f, *args):
        return jax.jit(f).trace(*args).lower(lowering_platforms=("cuda",)).as_text()

    solve = lambda *a: dendrax.hines_solve(parent, *a, backend="native")  # noqa: E731
    text = lower(solve, *ops)
    calls = scheduled_calls(text)
    assert [c[0] for c in calls] == ["dendrax_hines_factor_solve_scheduled"]
    assert calls[0][2].split(", ")[-1] == f"tensor<{k}xi32>"
    assert f"width = {sched.width} : i64" in text and "stablehlo.while" not in text
    grad = jax.grad(lambda *a: jnp.sum(solve(*a) ** 2), argnums=(0, 1, 2, 3))
    names = sorted(c[0] for c in scheduled_calls(lower(grad, *ops)))
    assert names == ["dendrax_hines_factor_solve_scheduled", "dendrax_hines_substitute_scheduled"]
    calls = scheduled_calls(lower(jax.vmap(solve), *[np.ones((5, n), np.float32)] * 4))
    types = calls[0][2].split(", ")
    assert types[-1] == f"tensor<{k}xi32>" and types[1] == f"tensor<{n}x5xf32>", types
    traced = lambda p, *a: dendrax.hines_solve(p, *a, backend="native")  # noqa: E731
    assert [c[0] for c in scheduled_calls(lower(traced, parent, *ops))] == [
        "dendrax_hines_factor_solve"]
    jaxonly = lambda *a: dendrax.hines_solve(parent, *a, backend="jax")  # noqa: E731
    assert scheduled_calls(lower(jaxonly, *ops)) == []


# The device functions of csrc/hines_schedule.h, compiled for the host: trees and their
# schedules come from build_schedule (stdin), values from the program's generator; each
# level's branches run in a shuffled order (as threads), then must equal the CPU
# kernel's row formulation and the one-thread-per-system loops bit for bit.
SCHEDULE_CHECK = r"""
#include <algorithm>
#include <cstdio>
#include <numeric>
#include <random>
#include <vector>
#include "hines_kernel.h"
#include "hines_schedule.h"
using namespace dendrax;

template <typename T>
int check(const std::vector<int32_t>& parent, const std::vector<int32_t>& packed, int64_t nt,
          std::mt19937_64& rng) {
  const int64_t n = parent.size();
  const Schedule S = unpack_schedule(packed.data());
  if (S.n != n || schedule_size(S.n, S.n_branches, S.n_levels, S.n_children) != (int64_t)packed.size()) return 1;
  std::uniform_real_distribution<double> u(-1, 1);
  const size_t sz = n * nt;
  std::vector<T> lo(sz), d(sz), up(sz), r(sz);
  for (size_t k = 0; k < sz; ++k) { lo[k] = u(rng); up[k] = u(rng); r[k] = u(rng); d[k] = T(2 * n + u(rng)); }
  std::vector<uint8_t> flags(n);
  tree_flags(parent.data(), n, flags.data());
  std::vector<T> x1(sz), di1(sz), x2(sz, T(7)), di2(sz, T(7)), y1(sz), y2(sz, T(7)), x3(sz), di3(sz);
  factor_solve_rows(parent.data(), flags.data(), lo.data(), d.data(), up.data(), r.data(), x1.data(), di1.data(), n, nt, int64_t{0}, nt);
  substitute_rows(parent.data(), flags.data(), up.data(), lo.data(), di1.data(), x1.data(), y1.data(), n, nt, int64_t{0}, nt);
  for (int64_t t = 0; t < nt; ++t)
    factor_solve(parent.data(), lo.data(), d.data(), up.data(), r.data(), x3.data(), di3.data(), n, nt, t, t + 1);
  // the scheduled kernel: per level, (branch, system) pairs in a shuffled order
  auto run_levels = [&](auto&& body, bool down) {
    for (int32_t k = 0; k < S.n_levels; ++k) {
      const int32_t lev = down ? S.n_levels - 1 - k : k;
      std::vector<std::pair<int32_t, int64_t>> work;
      for (int32_t b = S.level_ptr[lev]; b < S.level_ptr[lev + 1]; ++b)
        for (int64_t t = 0; t < nt; ++t) work.push_back({b, t});
      std::shuffle(work.begin(), work.end(), rng);
      for (auto [b, t] : work) body(b, t);
    }
  };
  run_levels([&](int32_t b, int64_t t) { factor_branch(S, b, lo.data(), d.data(), up.data(), r.data(), x2.data(), di2.data(), nt, t); }, true);
  run_levels([&](int32_t b, int64_t t) { back_branch(S, b, parent.data(), lo.data(), di2.data(), x2.data(), nt, t); }, false);
  run_levels([&](int32_t b, int64_t t) { substitute_branch(S, b, lo.data(), di2.data(), x2.data(), y2.data(), nt, t); }, true);
  run_levels([&](int32_t b, int64_t t) { back_branch(S, b, parent.data(), up.data(), di2.data(), y2.data(), nt, t); }, false);
  for (size_t k = 0; k < sz; ++k)
    if (x1[k] != x2[k] || di1[k] != di2[k] || y1[k] != y2[k] || x3[k] != x2[k] || di3[k] != di2[k]) return 1;
  return 0;
}

int main() {
  std::mt19937_64 rng(5);
  int trees = 0, failures = 0;
  int64_t n, k;
  while (std::scanf("%ld %ld", &n, &k) == 2) {
    std::vector<int32_t> parent(n), packed(k);
    for (auto& v : parent) if (std::scanf("%d", &v) != 1) return 2;
    for (auto& v : packed) if (std::scanf("%d", &v) != 1) return 2;
    for (int64_t nt : {1, 5}) {
      failures += check<double>(parent, packed, nt, rng);
      failures += check<float>(parent, packed, nt, rng);
    }
    ++trees;
  }
  std::printf("checked %d trees, %d failures\n", trees, failures);
  return failures || trees == 0 ? 1 : 0;
}
"""


def test_schedule_device_functions_match_cpu_kernel(tmp_path):
    cxx = shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")
    if cxx is None:
        pytest.skip("no C++ compiler on PATH")
    rng = np.random.default_rng(3)
    lines = []
    for trial in range(200):
        n = int(rng.integers(1, 120))
        kind = trial % 4
        if kind == 0:
            parent = np.arange(-1, n - 1)
        elif kind == 1:
            parent = np.r_[-1, [rng.integers(0, i) for i in range(1, n)]]
        elif kind == 2:
            parent = np.array([rng.integers(-1, i) for i in range(n)])
        else:
            parent = np.r_[-1, [i - 1 if rng.random() < 0.85 else rng.integers(0, i)
                                for i in range(1, n)]]
        packed = build_schedule(parent).packed
        lines.append(f"{n} {packed.size}\n{' '.join(map(str, parent))}\n{' '.join(map(str, packed))}")
    src = tmp_path / "schedule_check.cc"
    src.write_text(SCHEDULE_CHECK)
    exe = tmp_path / "schedule_check"
    base = [cxx, "-O1", "-g", "-std=c++17", f"-I{ROOT / 'csrc'}", str(src), "-o", str(exe)]
    sanitize = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all"]
    proc = subprocess.run(base + sanitize, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:  # no sanitizer runtime here: the plain build still checks values
        proc = subprocess.run(base, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-5000:]
    run = subprocess.run([str(exe)], input="\n".join(lines) + "\n", capture_output=True, text=True,
                         timeout=300, env={**os.environ, "ASAN_OPTIONS": "detect_leaks=0"})
    assert run.returncode == 0, run.stdout + run.stderr
    assert "checked 200 trees, 0 failures" in run.stdout
