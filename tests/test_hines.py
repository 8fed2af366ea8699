"""Property tests of ``dendrax.hines_solve``: values, gradients, transformations, errors.

Every solve is compared with a dense solve of the same matrix (numpy for values,
``jnp.linalg.solve`` for autodiff) and gradients also with central finite
differences. Random forests (chains, stars, random trees, several roots) carry
random diagonally dominant values; batch shapes [N], [N, B] and [N, B1, B2]; both
float dtypes; both backends ("native" where the compiled kernel loaded).
"""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys
import textwrap
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jax import lax

import dendrax
from dendrax.solver import native_available, native_unavailable_reason

ROOT = pathlib.Path(__file__).resolve().parents[1]
NATIVE = native_available("cpu")
BACKENDS = ["jax", pytest.param("native", marks=pytest.mark.skipif(
    not NATIVE, reason=f"native CPU kernel unavailable: {native_unavailable_reason('cpu')}"))]
# backends compared inside one property test
SOLVE_BACKENDS = ("native", "jax") if NATIVE else ("jax",)

PROPS = settings(max_examples=30, deadline=None,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
FEW = settings(PROPS, max_examples=15)

# relative tolerances (of the largest entry) against a float64 dense reference
RTOL = {np.float64: 1e-12, np.float32: 2e-6}  # [measured 1.3e-15, 1.4e-7]


# --- random forests and systems ---------------------------------------------

# few distinct shapes, so that jitted test functions compile once per shape
SIZES = (1, 2, 5, 12)


@st.composite
def forests(draw, min_n=1, max_n=max(SIZES)):
    """A parent array: -1 marks a root, else parent[i] < i."""
    n = draw(st.sampled_from([k for k in SIZES if min_n <= k <= max_n]))
    kind = draw(st.sampled_from(["chain", "star", "tree", "forest", "cables"]))
    if kind == "chain":
        parent = np.arange(-1, n - 1)
    elif kind == "star":
        parent = np.r_[-1, np.zeros(n - 1, int)]
    elif kind == "tree":
        parent = [-1] + [draw(st.integers(0, i - 1)) for i in range(1, n)]
    elif kind == "forest":  # several roots anywhere
        parent = [draw(st.integers(-1, i - 1)) for i in range(n)]
    else:  # several unbranched cables one after another
        starts = {0} | set(draw(st.lists(st.integers(0, n - 1), max_size=3)))
        parent = [-1 if i in starts else i - 1 for i in range(n)]
    return np.asarray(parent, np.int32)


batch_shapes = st.sampled_from([(), (3,), (2, 3)])
dtypes = st.sampled_from([np.float64, np.float32])
seeds = st.integers(0, 2**32 - 1)


def make_system(parent, batch=(), dtype=np.float64, seed=0):
    """Random (lower, diag, upper, rhs) of shape [N, *batch]: strictly diagonally
    dominant in rows and columns, diagonal of either sign. Entries at roots that the
    solve ignores (lower, upper) hold junk on purpose."""
    rng = np.random.default_rng(seed)
    parent = np.asarray(parent)
    shape = (len(parent),) + tuple(batch)
    lower = rng.uniform(-1, 1, shape)
    upper = rng.uniform(-1, 1, shape)
    off = np.abs(lower) + np.abs(upper)
    dom = off.copy()
    child = parent >= 0
    np.add.at(dom, parent[child], off[child])
    diag = rng.choice([-1.0, 1.0], shape) * (dom + rng.uniform(0.5, 2.0, shape))
    rhs = rng.normal(size=shape)
    return tuple(a.astype(dtype) for a in (lower, diag, upper, rhs))


def dense_matrix(parent, lower, diag, upper, xp=np):
    """A of shape [*batch, N, N] from the tree operands [N, *batch]. With xp=jnp the
    parent array may be traced (roots scatter out of bounds, dropped)."""
    parent = parent if isinstance(parent, jax.Array) else np.asarray(parent)
    n = parent.shape[0]
    mv = lambda a: xp.moveaxis(xp.asarray(a), 0, -1)  # noqa: E731
    d, lo, up = mv(diag), mv(lower), mv(upper)
    i = np.arange(n)
    if xp is np:
        parent = np.asarray(parent)
        ch = np.flatnonzero(parent >= 0)
        a = np.zeros(d.shape + (n,), d.dtype)
        a[..., i, i] = d
        a[..., ch, parent[ch]] = lo[..., ch]
        a[..., parent[ch], ch] = up[..., ch]
        return a
    cols = jnp.where(parent >= 0, parent, n)
    a = jnp.zeros(d.shape + (n,), d.dtype).at[..., i, i].set(d)
    a = a.at[..., i, cols].set(lo, mode="drop")
    return a.at[..., cols, i].set(up, mode="drop")


def dense_solve(parent, lower, diag, upper, rhs, xp=np):
    """The same solve with a dense matrix; xp=jnp is differentiable and jittable."""
    a = dense_matrix(parent, lower, diag, upper, xp)
    b = xp.moveaxis(xp.asarray(rhs), 0, -1)[..., None]
    return xp.moveaxis(xp.linalg.solve(a, b)[..., 0], -1, 0)


def _solver(backend):
    if backend == "dense":
        return lambda p, *a: dense_solve(p, *a, xp=jnp)
    return lambda p, *a: dendrax.hines_solve(p, *a, backend=backend)


@partial(jax.jit, static_argnames="backend")
def solve_jit(parent, lower, diag, upper, rhs, *, backend):
    return _solver(backend)(parent, lower, diag, upper, rhs)


@partial(jax.jit, static_argnames="backend")
def derivatives(parent, ops, w, tangents, *, backend):
    """grad of sum(w * x) w.r.t. the four float operands, and jvp of x along tangents.
    Jitted with a traced parent: one compilation per shape serves every tree."""
    solve = partial(_solver(backend), parent)
    grads = jax.grad(lambda *a: jnp.sum(w * solve(*a)), argnums=(0, 1, 2, 3))(*ops)
    _, dx = jax.jvp(solve, tuple(ops), tuple(tangents))
    return grads, dx


def f64(args):
    return tuple(np.asarray(a, np.float64) for a in args)


def assert_close(actual, expected, rtol, what=""):
    actual = np.asarray(actual, np.float64)
    expected = np.asarray(expected, np.float64)
    assert actual.shape == expected.shape, (what, actual.shape, expected.shape)
    scale = max(1.0, float(np.max(np.abs(expected), initial=0.0)))
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * scale, err_msg=what)


def loss_weights(shape, seed):
    return np.random.default_rng(seed + 1).normal(size=shape)


# --- values -------------------------------------------------------------------

@PROPS
@given(parent=forests(), batch=batch_shapes, dtype=dtypes, seed=seeds)
def test_solve_matches_dense(parent, batch, dtype, seed):
    ops = make_system(parent, batch, dtype, seed)
    expected = dense_solve(parent, *f64(ops))
    results = {}
    for backend in SOLVE_BACKENDS:
        x = solve_jit(parent, *ops, backend=backend)
        assert x.shape == ops[0].shape and x.dtype == dtype, backend
        assert_close(x, expected, RTOL[dtype], backend)
        results[backend] = np.asarray(x)
    if len(results) == 2:  # same algorithm, same operation order: round-off apart
        assert_close(results["native"], results["jax"], RTOL[dtype] / 10, "native vs jax")
    auto = solve_jit(parent, *ops, backend="auto")
    assert_close(auto, results[SOLVE_BACKENDS[0]], 0.0, "auto")


def test_solve_eager():
    parent = np.array([-1, 0, 1, 1, -1, 4])
    for batch in [(), (2,), (2, 1)]:
        ops = make_system(parent, batch, np.float64, 3)
        for backend in SOLVE_BACKENDS + ("auto",):
            x = dendrax.hines_solve(parent, *ops, backend=backend)
            assert_close(x, dense_solve(parent, *ops), 1e-12, backend)


def test_solve_jax_arrays_and_lists():
    parent = [-1, 0, 1, 1]
    ops = make_system(parent, (2,))
    x = dendrax.hines_solve(jnp.asarray(parent), *map(jnp.asarray, ops))
    assert_close(x, dense_solve(parent, *ops), 1e-12)
    x1 = dendrax.hines_solve(parent, *(a[:, 0].tolist() for a in ops))
    assert_close(x1, np.asarray(x)[:, 0], 1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_empty_systems(backend):
    for n, batch in [(0, ()), (3, (0,)), (0, (2,))]:
        ops = [np.zeros((n,) + batch)] * 4
        parent = np.arange(-1, n - 1)
        x = dendrax.hines_solve(parent, *ops, backend=backend)
        assert x.shape == (n,) + batch


# --- gradients ----------------------------------------------------------------

@settings(PROPS, max_examples=20)
@given(parent=forests(), batch=batch_shapes, dtype=dtypes, seed=seeds)
def test_grad_and_jvp_match_dense_autodiff(parent, batch, dtype, seed):
    ops = make_system(parent, batch, dtype, seed)
    tangents = make_system(parent, batch, dtype, seed + 7)
    w = loss_weights(ops[0].shape, seed)
    g_ref, dx_ref = derivatives(parent, f64(ops), w, f64(tangents), backend="dense")
    # the solve ignores lower and upper at roots: zero gradient there
    for g in (g_ref[0], g_ref[2]):
        assert np.all(np.asarray(g)[parent < 0] == 0)
    for backend in SOLVE_BACKENDS:
        g, dx = derivatives(parent, ops, w.astype(dtype), tangents, backend=backend)
        for name, a, b in zip(("lower", "diag", "upper", "rhs"), g, g_ref):
            assert a.dtype == dtype
            assert_close(a, b, 10 * RTOL[dtype], f"{backend} grad {name}")
        assert dx.dtype == dtype
        assert_close(dx, dx_ref, 10 * RTOL[dtype], f"{backend} jvp")


@FEW
@given(parent=forests(), batch=batch_shapes, seed=seeds)
def test_derivatives_match_central_differences(parent, batch, seed):
    ops = make_system(parent, batch, np.float64, seed)
    v = make_system(parent, batch, np.float64, seed + 3)  # one direction per operand
    w = loss_weights(ops[0].shape, seed)
    eps = 1e-6
    for backend in SOLVE_BACKENDS:
        plus = solve_jit(parent, *(a + eps * d for a, d in zip(ops, v)), backend=backend)
        minus = solve_jit(parent, *(a - eps * d for a, d in zip(ops, v)), backend=backend)
        fd = (np.asarray(plus) - np.asarray(minus)) / (2 * eps)
        g, dx = derivatives(parent, ops, w, v, backend=backend)
        assert_close(dx, fd, 1e-6, f"{backend} jvp vs central differences")
        directional = sum(float(np.sum(np.asarray(gi) * di)) for gi, di in zip(g, v))
        assert directional == pytest.approx(float(np.sum(w * fd)), rel=1e-6, abs=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
def test_eager_grad_and_jvp(backend):
    parent = np.array([-1, 0, 0, 2, -1, 4])
    ops = make_system(parent, (2,), np.float64, 11)
    w = loss_weights(ops[0].shape, 11)
    g_ref, dx_ref = derivatives(parent, ops, w, ops, backend="dense")
    solve = lambda *a: dendrax.hines_solve(parent, *a, backend=backend)  # noqa: E731
    g = jax.grad(lambda *a: jnp.sum(w * solve(*a)), argnums=(0, 1, 2, 3))(*ops)
    _, dx = jax.jvp(solve, ops, ops)
    for a, b in zip(g, g_ref):
        assert_close(a, b, 1e-12, "grad")
    assert_close(dx, dx_ref, 1e-12, "jvp")


@pytest.mark.parametrize("backend", BACKENDS)
def test_second_order_derivatives(backend):
    """The JVP rule is itself differentiable: Hessians and forward-over-reverse work
    with the native kernel too (an FFI call has no derivative of its own)."""
    parent = np.array([-1, 0, 1, 1, 3, -1])
    ops = make_system(parent, (2,), np.float64, 4)
    ours = lambda *a: jnp.sum(dendrax.hines_solve(parent, *a, backend=backend) ** 3)  # noqa: E731
    ref = lambda *a: jnp.sum(dense_solve(parent, *a, xp=jnp) ** 3)  # noqa: E731
    h = jax.jit(jax.hessian(ours, argnums=(0, 1, 2, 3)))(*ops)
    h_ref = jax.jit(jax.hessian(ref, argnums=(0, 1, 2, 3)))(*ops)
    for a, e in zip(jax.tree.leaves(h), jax.tree.leaves(h_ref)):
        assert_close(a, e, 1e-12, "hessian")
    # a loss linear in rhs: where only rhs varies the tangent solve sees symbolic zeros
    w = loss_weights(ops[0].shape, 4)
    lin = lambda *a: jnp.sum(w * dendrax.hines_solve(parent, *a, backend=backend))  # noqa: E731
    lin_ref = lambda *a: jnp.sum(w * dense_solve(parent, *a, xp=jnp))  # noqa: E731
    for argnums in [(3,), (1, 3)]:
        h = jax.jit(jax.hessian(lin, argnums=argnums))(*ops)
        h_ref = jax.jit(jax.hessian(lin_ref, argnums=argnums))(*ops)
        for a, e in zip(jax.tree.leaves(h), jax.tree.leaves(h_ref)):
            assert_close(a, e, 1e-12, f"hessian of a linear loss {argnums}")
    # batched tangents only (vmap of jvp) and jax.linearize
    tangents = np.stack([ops[3] * k for k in range(3)])
    solve = lambda *a: dendrax.hines_solve(parent, *a, backend=backend)  # noqa: E731
    dx = jax.vmap(lambda t: jax.jvp(solve, ops, ops[:3] + (t,))[1])(tangents)
    for k in range(3):
        _, e = jax.jvp(lambda *a: dense_solve(parent, *a, xp=jnp), ops, ops[:3] + (tangents[k],))
        assert_close(dx[k], e, 1e-12, "vmap of jvp")
    _, lin = jax.linearize(solve, *ops)
    assert_close(lin(*ops), jax.jvp(lambda *a: dense_solve(parent, *a, xp=jnp), ops, ops)[1], 1e-12)


def test_grad_is_one_factorization_and_one_transposed_solve():
    if not NATIVE:
        pytest.skip("native CPU kernel unavailable")
    parent = np.array([-1, 0, 1, 1, 3])
    ops = make_system(parent, (4,))
    w = loss_weights(ops[0].shape, 0)
    loss = lambda *a: jnp.sum(w * dendrax.hines_solve(parent, *a, backend="native"))  # noqa: E731
    text = jax.jit(jax.grad(loss, argnums=(0, 1, 2, 3))).lower(*ops).as_text()
    assert count_calls(text, "factor_solve") == 1
    assert count_calls(text, "substitute") == 1
    assert "stablehlo.while" not in text


# --- transformations ------------------------------------------------------------

def count_calls(text, which):
    """Calls of the native target `which` (on CUDA, with a concrete parent array: its
    ``_scheduled`` variant)."""
    return len(re.findall(rf"custom_call @dendrax_hines_{which}(?:_scheduled)?\b", text))


def batched(a, axis, size, rng):
    """Stack `size` perturbed copies of a along a new axis (values stay dominant)."""
    if axis is None:
        return a
    copies = [a * (1 + 0.1 * rng.uniform(-1, 1, a.shape)).astype(a.dtype) for _ in range(size)]
    return np.stack(copies, axis=axis)


def take(a, axis, b):
    return a if axis is None else np.take(a, b, axis=axis)


@st.composite
def vmap_cases(draw):
    """Per-example parents of one size, and in_axes (None or an axis) per operand."""
    size = draw(st.integers(1, 3))
    n = draw(st.sampled_from([2, 5]))
    parents = [draw(forests(min_n=n, max_n=n)) for _ in range(size)]
    rank = draw(st.sampled_from([1, 2]))  # per-example float operands [N] or [N, 2]
    axes = [draw(st.sampled_from([None, 0, 1]))]  # parent [N]: batched on axis 0 or 1
    axes += [draw(st.sampled_from([None] + list(range(rank + 1)))) for _ in range(4)]
    if all(a is None for a in axes):
        axes[4] = 0
    return size, parents, rank, tuple(axes), draw(seeds)


@PROPS
@given(case=vmap_cases())
def test_vmap_in_axes_and_per_system_parents(case):
    size, parents, rank, axes, seed = case
    rng = np.random.default_rng(seed)
    # dominance must hold for every parent array: build values for the union of edges
    star = np.r_[-1, np.zeros(len(parents[0]) - 1, int)]
    ops = make_system(star, (2,) * (rank - 1), np.float64, seed)
    ops = list(ops)
    ops[1] = ops[1] + np.sign(ops[1]) * 2 * len(parents[0])  # dominant for any tree
    parent_b = np.stack(parents, axis=axes[0]) if axes[0] is not None else parents[0]
    args = [parent_b] + [batched(o, ax, size, rng) for o, ax in zip(ops, axes[1:])]
    for backend in SOLVE_BACKENDS:
        f = jax.vmap(lambda p, *a: dendrax.hines_solve(p, *a, backend=backend), in_axes=axes)
        x = jax.jit(f)(*args)
        for b in range(size):
            p = parents[b] if axes[0] is not None else parents[0]
            ex = dense_solve(p, *(take(a, ax, b) for a, ax in zip(args[1:], axes[1:])))
            assert_close(x[b], ex, 1e-12, f"{backend} example {b} in_axes={axes}")


@pytest.mark.parametrize("backend", BACKENDS)
def test_nested_vmap_jit_and_grad_of_vmap(backend):
    rng = np.random.default_rng(0)
    n, b1, b2 = 7, 3, 2
    parents = np.array([[-1, 0, 1, 2, 3, 4, 5], [-1, 0, 0, 1, 1, -1, 5], [-1, 0, 0, 0, 0, 0, 0]])
    base = make_system(np.r_[-1, np.zeros(n - 1, int)], (), np.float64, 1)
    lower, diag, upper, rhs = base
    diag = diag + np.sign(diag) * 2 * n
    lower_b = batched(lower, 0, b1, rng)  # batched over the outer axis
    upper_b = batched(upper, 1, b2, rng)  # batched over the inner axis (stored [N, b2])
    rhs_b = rng.normal(size=(b2, n, b1))  # both axes: inner at 0, outer at 2

    def solve(p, lo, up, r):
        return dendrax.hines_solve(p, lo, diag, up, r, backend=backend)

    inner = jax.vmap(solve, in_axes=(None, None, 1, 0))  # over b2
    outer = jax.jit(jax.vmap(inner, in_axes=(0, 0, None, 2)))  # over b1, parent per system
    x = outer(parents, lower_b, upper_b, rhs_b)
    assert x.shape == (b1, b2, n)
    for i in range(b1):
        for j in range(b2):
            ex = dense_solve(parents[i], lower_b[i], diag, upper_b[:, j], rhs_b[j, :, i])
            assert_close(x[i, j], ex, 1e-12, f"[{i}, {j}]")
    if backend == "native":
        text = outer.lower(parents, lower_b, upper_b, rhs_b).as_text()
        assert count_calls(text, "factor_solve") == 1 and "stablehlo.while" not in text

    # grad of vmap (jitted), against grad of the dense solve
    w = rng.normal(size=(b1, b2, n))

    def loss(lo, up, r, solver):
        return jnp.sum(w * jax.vmap(jax.vmap(solver, in_axes=(None, None, 1, 0)),
                                    in_axes=(0, 0, None, 2))(parents, lo, up, r))

    def dense(p, lo, up, r):
        return dense_solve(p, lo, diag, up, r, xp=jnp)

    # the dense reference needs a concrete parent: loop over the outer axis instead
    def dense_loss(lo, up, r):
        tot = 0.0
        for i in range(b1):
            xs = jax.vmap(lambda u, rr: dense(parents[i], lo[i], u, rr), in_axes=(1, 0))(up, r[..., i])
            tot = tot + jnp.sum(w[i] * xs)
        return tot

    g = jax.jit(jax.grad(lambda *a: loss(*a, solve), argnums=(0, 1, 2)))(lower_b, upper_b, rhs_b)
    g_ref = jax.jit(jax.grad(dense_loss, argnums=(0, 1, 2)))(lower_b, upper_b, rhs_b)
    for a, e in zip(g, g_ref):
        assert_close(a, e, 1e-12, "grad of vmap")
    # vmap of grad
    gv = jax.jit(jax.vmap(jax.grad(lambda r, p, lo: jnp.sum(solve(p, lo, upper, r) ** 2)),
                          in_axes=(1, 0, 0)))(rhs_b[0], parents, lower_b)
    for i in range(b1):
        ge = jax.grad(lambda r: jnp.sum(dense(parents[i], lower_b[i], upper, r) ** 2))(rhs_b[0, :, i])
        assert_close(gv[i], ge, 1e-12, "vmap of grad")
    if backend == "native":
        text = jax.jit(jax.grad(lambda *a: loss(*a, solve), argnums=(0, 1, 2))).lower(
            lower_b, upper_b, rhs_b).as_text()
        assert count_calls(text, "factor_solve") == 1
        assert count_calls(text, "substitute") == 1
        assert "stablehlo.while" not in text


def test_vmap_lowers_to_one_native_call():
    if not NATIVE:
        pytest.skip("native CPU kernel unavailable")
    n, b = 9, 5
    parent = np.arange(-1, n - 1)
    ops = make_system(parent, (), np.float64, 0)
    solve = lambda p, *a: dendrax.hines_solve(p, *a, backend="native")  # noqa: E731
    # per-system parents, rhs batched on its last axis, the rest shared
    f = jax.vmap(solve, in_axes=(0, None, None, None, 1))
    text = jax.jit(f).lower(np.tile(parent, (b, 1)), *ops[:3], np.tile(ops[3][:, None], (1, b))).as_text()
    assert count_calls(text, "factor_solve") == 1 and "stablehlo.while" not in text
    # everything batched but the parent, and a vmap of a vmap
    g = jax.vmap(jax.vmap(lambda *a: solve(parent, *a)))
    args = [np.tile(o, (2, b, 1)) for o in ops]
    text = jax.jit(g).lower(*args).as_text()
    assert count_calls(text, "factor_solve") == 1 and "stablehlo.while" not in text
    assert np.asarray(jax.jit(g)(*args)).shape == (2, b, n)


def test_cpu_vmap_keeps_the_batch_where_it_is():
    """On the CPU a vmapped batch of one tree (B parameter sets of one cell) reaches the
    kernel as leading entries, where vmap put it, and shared operands unbroadcast: no
    transposes or broadcasts around the call, in the solve and in its gradient."""
    if not NATIVE:
        pytest.skip("native CPU kernel unavailable")
    n, b = 9, 5
    parent = np.arange(-1, n - 1)
    lower, diag, upper, rhs = make_system(parent, (), np.float64, 0)
    solve = lambda d, r: dendrax.hines_solve(parent, lower, d, upper, r, backend="native")  # noqa: E731
    args = (np.tile(diag, (b, 1)), np.tile(rhs, (b, 1)))
    grad = jax.grad(lambda d, r: jnp.sum(jax.vmap(solve)(d, r) ** 2), argnums=(0, 1))
    for f in (jax.vmap(solve), grad):  # lowered for the CPU, also where a GPU is the default
        text = jax.jit(f).trace(*args).lower(lowering_platforms=("cpu",)).as_text()
        calls = re.findall(r"custom_call @dendrax_hines_\w+\((.*?)\) \{.*?: \((.*?)\) ->", text)
        assert calls, text
        for _, types in calls:
            assert types.count(f"tensor<{b}x{n}x1xf64>") >= 2, types  # diag and rhs (or dinv)
            assert f"tensor<1x{n}x1xf64>" in types, types  # shared lower / upper
        assert "stablehlo.transpose" not in text


@pytest.mark.parametrize("backend", BACKENDS)
def test_scan_under_jit_differentiated(backend):
    """An implicit-Euler-like loop: a solve per scan step, gradient through the scan."""
    parent = np.array([-1, 0, 1, 1, 3, -1, 5])
    lower, diag, upper, v0 = make_system(parent, (2,), np.float64, 5)

    def simulate(solve, lower, diag, upper, v0):
        def step(v, k):
            v = solve(parent, lower, diag, upper, v + 0.1 * jnp.sin(k))
            return v, jnp.sum(v ** 2)
        v, ys = lax.scan(step, v0, jnp.arange(6.0))
        return jnp.sum(v) + jnp.sum(ys)

    ours = lambda *a: simulate(lambda *s: dendrax.hines_solve(*s, backend=backend), *a)  # noqa: E731
    ref = lambda *a: simulate(lambda *s: dense_solve(*s, xp=jnp), *a)  # noqa: E731
    args = (lower, diag, upper, v0)
    val, g = jax.jit(jax.value_and_grad(ours, argnums=(0, 1, 2, 3)))(*args)
    val_ref, g_ref = jax.value_and_grad(ref, argnums=(0, 1, 2, 3))(*args)
    assert float(val) == pytest.approx(float(val_ref), rel=1e-10)
    for a, e in zip(g, g_ref):
        assert_close(a, e, 1e-12, "scan grad")
    _, t = jax.jit(lambda *a: jax.jvp(ours, args, a))(*args)
    _, t_ref = jax.jvp(ref, args, args)
    assert float(t) == pytest.approx(float(t_ref), rel=1e-9)


@pytest.mark.parametrize("backend", BACKENDS)
def test_jit_with_traced_parent(backend):
    parent = np.array([-1, 0, 0, 2, -1])
    ops = make_system(parent, (3,), np.float32, 2)
    f = jax.jit(lambda p, *a: dendrax.hines_solve(p, *a, backend=backend))
    assert_close(f(parent, *ops), dense_solve(parent, *f64(ops)), 2e-4)
    other = np.array([-1, 0, 1, -1, 3])  # same shape: no retrace, another tree
    assert_close(f(other, *ops), dense_solve(other, *f64(ops)), 2e-4)


# --- kernel paths: threads, instruction sets, packing ---------------------------------

KERNEL_PATHS = textwrap.dedent("""
    import sys, numpy as np, jax, jax.numpy as jnp
    jax.config.update("jax_enable_x64", True)
    import dendrax
    rng = np.random.default_rng(0)
    n, b = 300, 2000  # 6e5 node-systems: split over threads
    parent = np.r_[-1, [rng.integers(0, i) for i in range(1, n)]].astype(np.int32)
    lo, up = rng.uniform(-1, 1, (2, n, b))
    d = 2 * n + rng.uniform(0, 1, (n, b))
    r = rng.normal(size=(n, b))
    solve = lambda *a: dendrax.hines_solve(parent, *a, backend="native")
    x = jax.jit(solve)(lo, d, up, r)
    # calls from several threads at once, all handing work to XLA's threads (threads.h:
    # a task that starts after its call returned takes no work)
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(4) as ex:
        xc = list(ex.map(lambda k: np.asarray(jax.jit(solve)(lo, d, up, r)), range(8)))
    assert all(np.array_equal(a, x) for a in xc)
    g = jax.jit(jax.grad(lambda *a: jnp.sum(solve(*a) ** 2), argnums=(0, 1, 2, 3)))(lo, d, up, r)
    # vmap over the systems of a [N] solve: short rows, solved interleaved
    xv = jax.jit(jax.vmap(solve, in_axes=1, out_axes=1))(lo, d, up, r)
    gv = jax.jit(jax.grad(lambda *a: jnp.sum(jax.vmap(solve, in_axes=1, out_axes=1)(*a) ** 2),
                          argnums=(0, 1, 2, 3)))(lo, d, up, r)
    # trees too large to interleave (hines_cpu.cc: group_fit): entry by entry, one system
    # per entry (float64 and float32; no copy pass: one_system_entries) and three (vmap
    # over the last axis of [N, 3, 40]: short_rows)
    n2, b2 = 1500, 120
    parent2 = np.r_[-1, [rng.integers(max(0, i - 3), i) for i in range(1, n2)]].astype(np.int32)
    lo2, up2 = rng.uniform(-1, 1, (2, n2, b2))
    d2 = 4 + rng.uniform(0, 1, (n2, b2))
    r2 = rng.normal(size=(n2, b2))
    solve2 = lambda *a: dendrax.hines_solve(parent2, *a, backend="native")
    x2 = jax.jit(solve2)(lo2, d2, up2, r2)
    xe2 = jax.jit(jax.vmap(solve2, in_axes=1, out_axes=1))(lo2, d2, up2, r2)
    three = lambda a: a.reshape(n2, 3, b2 // 3)
    xt2 = jax.jit(jax.vmap(solve2, in_axes=2, out_axes=2))(*map(three, (lo2, d2, up2, r2)))
    f32 = [a.astype(np.float32) for a in (lo2, d2, up2, r2)]
    xf2 = jax.jit(solve2)(*f32)
    xef2 = jax.jit(jax.vmap(solve2, in_axes=1, out_axes=1))(*f32)
    # a forest (three more roots; node n2 - 1, a leaf, cut off alone), entry by entry
    parent3 = parent2.copy()
    parent3[[500, 900, n2 - 1]] = -1
    solve3 = lambda *a: dendrax.hines_solve(parent3, *a, backend="native")
    x3 = jax.jit(solve3)(lo2, d2, up2, r2)
    xe3 = jax.jit(jax.vmap(solve3, in_axes=1, out_axes=1))(lo2, d2, up2, r2)
    g2 = jax.jit(jax.grad(lambda *a: jnp.sum(solve2(*a) ** 2), argnums=(0, 1, 2, 3)))(lo2, d2, up2, r2)
    ge2 = jax.jit(jax.grad(lambda *a: jnp.sum(jax.vmap(solve2, in_axes=1, out_axes=1)(*a) ** 2),
                           argnums=(0, 1, 2, 3)))(lo2, d2, up2, r2)
    np.savez(sys.argv[1], x=x, xv=xv, x2=x2, xe2=xe2, xt2=np.reshape(xt2, (n2, b2)), xf2=xf2,
             xef2=xef2, x3=x3, xe3=xe3, parent=parent, parent2=parent2, parent3=parent3,
             ops=np.stack([lo, d, up, r])[:, :, :4], ops2=np.stack([lo2, d2, up2, r2])[:, :, :4],
             **{f"g{k}": v for k, v in enumerate(g)}, **{f"gv{k}": v for k, v in enumerate(gv)},
             **{f"g2{k}": v for k, v in enumerate(g2)}, **{f"ge2{k}": v for k, v in enumerate(ge2)})
""")


def test_kernel_paths_agree_bit_for_bit(run_in_processes):
    """Threads (DENDRAX_NUM_THREADS), AVX2 or baseline SIMD (DENDRAX_DISABLE_AVX2), and
    how short rows (vmap) are solved (interleaved, or entry by entry where the trees are
    large) change how systems are scheduled, never their arithmetic: all results are
    identical."""
    if not NATIVE:
        pytest.skip("native CPU kernel unavailable")
    runs = {"threads4": {"DENDRAX_NUM_THREADS": "4"},
            "serial_baseline": {"DENDRAX_NUM_THREADS": "1", "DENDRAX_DISABLE_AVX2": "1"}}
    out = run_in_processes(KERNEL_PATHS, runs)
    a, b = out["threads4"], out["serial_baseline"]
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    np.testing.assert_array_equal(a["x"], a["xv"])  # interleaved == row layout
    np.testing.assert_array_equal(a["x2"], a["xe2"])  # entry by entry == row layout
    np.testing.assert_array_equal(a["x2"], a["xt2"])
    np.testing.assert_array_equal(a["xf2"], a["xef2"])
    np.testing.assert_array_equal(a["x3"], a["xe3"])
    assert a["xf2"].dtype == np.float32
    for k in range(4):
        np.testing.assert_array_equal(a[f"g{k}"], a[f"gv{k}"])
        np.testing.assert_array_equal(a[f"g2{k}"], a[f"ge2{k}"])
    # and against a dense solve (the first systems of each): the paths share one
    # arithmetic, which must be right [measured 1e-15 relative in float64, 1e-7 in float32]
    for x, parent, ops, dtype in ((a["x"], a["parent"], a["ops"], np.float64),
                                  (a["x2"], a["parent2"], a["ops2"], np.float64),
                                  (a["xf2"], a["parent2"], a["ops2"], np.float32),
                                  (a["x3"], a["parent3"], a["ops2"], np.float64)):
        expected = dense_solve(parent, *ops)
        assert_close(x[:, :4], expected, RTOL[dtype], f"{x.shape} {dtype.__name__}")
    # the gradient w.r.t. rhs of sum(x^2): the transposed solve of 2 x
    lo2, d2, up2, _ = a["ops2"]
    g_rhs = dense_solve(a["parent2"], up2, d2, lo2, 2 * a["x2"][:, :4], xp=np)
    assert_close(a["g23"][:, :4], g_rhs, RTOL[np.float64], "transposed solve")


# --- errors ---------------------------------------------------------------------

P4 = np.array([-1, 0, 1, 1])
G4 = make_system(P4)


def _with(i, value):
    ops = list(G4)
    ops[i] = value
    return ops


BAD_INPUTS = {
    "parent not before child": (np.array([-1, 0, 2, 1]), G4, r"parent\[2\] = 2 breaks"),
    "parent after child": (np.array([-1, 3, 0, 1]), G4, r"parent\[1\] = 3 breaks"),
    "parent below -1": (np.array([-1, -2, 0, 1]), G4, r"parent\[1\] = -2 breaks"),
    "parent too short": (np.array([-1, 0, 1]), G4, r"parent has shape \(3,\)"),
    "parent 2-d": (P4[None], G4, r"parent has shape \(1, 4\)"),
    "parent float": (P4.astype(float), G4, r"parent must be an integer array, got float64"),
    "float shapes differ": (P4, _with(2, G4[2][:3]), r"must share one shape.*upper=\(3,\)"),
    "float batch differs": (P4, _with(3, np.ones((4, 2))), r"must share one shape.*rhs=\(4, 2\)"),
    "scalar operands": (P4[:0], [np.float64(1.0)] * 4, r"need a node axis"),
    "mixed dtypes": (P4, _with(1, G4[1].astype(np.float32)), r"share one dtype.*diag=float32"),
    "integer operand": (P4, _with(0, np.ones(4, np.int32)), r"lower must be float32 or float64, got int32"),
    "float16 operand": (P4, _with(3, np.ones(4, np.float16)), r"rhs must be float32 or float64, got float16"),
    "complex operand": (P4, _with(1, np.ones(4, np.complex128)), r"diag must be float32 or float64"),
    "nan": (P4, _with(1, np.r_[1.0, np.nan, 1.0, 1.0]), r"diag has non-finite values"),
    "inf": (P4, _with(3, np.r_[1.0, 1.0, 1.0, -np.inf]), r"rhs has non-finite values"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
@pytest.mark.parametrize("backend", BACKENDS)
def test_bad_inputs_raise_value_error(case, backend):
    parent, ops, match = BAD_INPUTS[case]
    with pytest.raises(ValueError, match=match):
        dendrax.hines_solve(parent, *ops, backend=backend)


def test_unknown_backend():
    with pytest.raises(ValueError, match=r"unknown backend 'cuda'"):
        dendrax.hines_solve(P4, *G4, backend="cuda")


def test_bad_inputs_raise_inside_jit():
    """Shapes and dtypes are static: they are still checked under jit."""
    f = jax.jit(lambda p, *a: dendrax.hines_solve(p, *a))
    with pytest.raises(ValueError, match="parent has shape"):
        f(P4[:3], *G4)
    with pytest.raises(ValueError, match="parent must be an integer array"):
        f(P4.astype(np.float32), *G4)
    with pytest.raises(ValueError, match="share one dtype"):
        f(P4, *_with(0, G4[0].astype(np.float32)))


TRACED_BAD_PARENT = textwrap.dedent("""
    import jax, jax.numpy as jnp, numpy as np
    import dendrax
    bad = np.array([[-1, 0, 3, 1], [-1, -2, 0, 1], [-1, 0, 1, 9]], np.int32)
    good = np.array([-1, 0, 1, 1], np.int32)
    ops = [np.full((4, 2), v) for v in (0.5, 4.0, 0.25, 1.0)]
    solve = lambda p, *a: dendrax.hines_solve(p, *a, backend="native")
    calls = {
        "jit": lambda p: jax.jit(solve)(p, *ops),
        "jit grad": lambda p: jax.jit(jax.grad(lambda r, p: solve(p, *ops[:3], r).sum()))(ops[3], p),
        "vmap": lambda p: jax.vmap(solve, in_axes=(0, None, None, None, None))(np.stack([good, p]), *ops),
    }
    for p in bad:
        for name, call in calls.items():
            try:
                out = jax.block_until_ready(call(p))
            except Exception as err:  # an FFI error surfaces as a Python exception
                assert "parent must satisfy" in str(err), err
                print("raised", name)
            else:  # the CUDA kernel: NaN for the bad system (no host synchronisation)
                bad_part = np.asarray(out)[-1] if name == "vmap" else np.asarray(out)
                ok = jax.default_backend() == "gpu" and np.all(np.isnan(bad_part))
                print(f"raised {name}" if ok else f"NO ERROR {name} {out}")
    print("good", float(jax.jit(solve)(good, *ops).sum()))
""")


def test_traced_bad_parent_is_an_ffi_error():
    """On the CPU an FFI error; on a GPU (the CUDA kernel never waits for the device to
    report) the systems with the bad parent array come back as NaN, counted alike."""
    if not NATIVE:
        pytest.skip("native CPU kernel unavailable")
    proc = subprocess.run([sys.executable, "-c", TRACED_BAD_PARENT], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]  # a crash would be a signal here
    lines = proc.stdout.split("\n")
    assert lines.count("raised jit") == 3, proc.stdout
    assert lines.count("raised jit grad") == 3, proc.stdout
    assert lines.count("raised vmap") == 3, proc.stdout
    assert "NO ERROR" not in proc.stdout
    assert "good" in proc.stdout


def test_traced_bad_parent_jax_backend_gives_nan():
    f = jax.jit(lambda p, *a: dendrax.hines_solve(p, *a, backend="jax"))
    x = f(np.array([-1, 0, 3, 1]), *G4)
    assert np.all(np.isnan(x))
    # an int64 entry beyond int32 is not wrapped into a valid parent (2**40 -> 0: the solve
    # of another tree)
    x = f(jnp.asarray(np.array([-1, 0, 1, 2 ** 40], np.int64)), *G4)
    assert np.all(np.isnan(x))


# --- documentation ----------------------------------------------------------------

def test_solver_docs_examples_run():
    """Runs the ```python blocks of docs/solver.md in order, in one namespace."""
    text = (ROOT / "docs" / "solver.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks, "docs/solver.md has no python examples"
    namespace: dict = {"__name__": "docs_solver"}
    for k, block in enumerate(blocks):
        try:
            exec(compile(block, f"docs/solver.md[block {k}]", "exec"), namespace)
        except Exception as err:  # pragma: no cover - report which block failed
            raise AssertionError(f"docs/solver.md block {k} failed:\n{block}") from err


def _gpu():
    try:
        return jax.devices("gpu")[0]
    except RuntimeError:
        return None


@pytest.mark.skipif(_gpu() is None or not native_available("CUDA"),
                    reason="needs a GPU with the CUDA kernel built (docs/solver.md; run "
                           "benchmarks/gpu.py where one is lent)")
def test_cuda_kernel_equals_the_cpu_kernel_bit_for_bit():
    """docs/solver.md: the CUDA kernel rounds exactly as the CPU's, one system per thread
    (a batch) and a large cell level by level (a schedule) alike; float64 and float32."""
    gpu, cpu = _gpu(), jax.devices("cpu")[0]
    rng = np.random.default_rng(7)
    for n, batch in ((2000, ()), (300, (64,)), (12, (3, 5))):
        parent = np.r_[-1, [rng.integers(max(0, i - 40), i) for i in range(1, n)]]
        parent = parent.astype(np.int32)
        for dtype in (np.float64, np.float32):
            ops = make_system(parent, batch, dtype, seed=n)
            solve = jax.jit(lambda *a: dendrax.hines_solve(parent, *a, backend="native"))
            on = [np.asarray(solve(*[jax.device_put(o, d) for o in ops])) for d in (gpu, cpu)]
            np.testing.assert_array_equal(on[0], on[1], err_msg=f"n={n} batch={batch} {dtype}")


def test_native_availability_takes_the_platform_in_any_spelling():
    """"cuda" and "gpu" name the CUDA kernel, any case (install.md's "CUDA"; they raised a
    bare KeyError); another platform is a ValueError naming the choices."""
    for name in ("cuda", "gpu", "GPU"):
        assert native_unavailable_reason(name) == native_unavailable_reason("CUDA")
    assert native_available("CPU") == native_available("cpu")
    with pytest.raises(ValueError, match=r"platform 'tpu': the native kernels are for "
                                         r"\['CUDA', 'cpu'\]"):
        native_available("tpu")
