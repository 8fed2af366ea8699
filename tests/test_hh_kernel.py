"""HH's gate step on the native CPU kernel (dendrax.mechanisms.hh_kernel, csrc/hh_cpu.cc)
against its pure-JAX twin (cnexp's exponential Euler of hh.mod's rates, itself checked
against NEURON in test_channels_neuron.py) and finite differences: values, derivatives of
first and second order, vmap, float32, threads and instruction sets, bad operands."""

from __future__ import annotations

import re
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import dendrax as dx
from dendrax.mechanisms import base, hh_kernel
from dendrax.mechanisms.cnexp import exp_euler
from dendrax.mechanisms.hh import HH, q10, rates

NATIVE = hh_kernel.EXTENSIONS.available("cpu")
pytestmark = pytest.mark.skipif(not NATIVE, reason="native HH kernel unavailable: "
                                f"{hh_kernel.EXTENSIONS.unavailable_reason('cpu')}")


def native(v, states, q, dt):
    return hh_kernel.advance(rates, v, states, q, dt)


def twin(v, states, q, dt):
    return exp_euler(lambda u, p, env: rates(u, env["q"]), v, states, {}, {"q": q}, dt)


def _inputs(n=256, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    # hh.mod's removable singularities (v = -40, -55 mV) and points within vtrap's
    # series zone (|x / 10| < 1e-6) among random potentials
    special = [-40.0, -55.0, -40.0 + 5e-6, -55.0 - 9e-6, -40.0 + 2e-5, -65.0, -154.9]
    v = np.concatenate([rng.uniform(-120.0, 80.0, n - len(special)), special])
    states = {g: jnp.asarray(rng.uniform(0.0, 1.0, n), dtype) for g in "mhn"}
    return jnp.asarray(v, dtype), states


def _close(a, b, rtol, atol):
    for g in "mhn":
        np.testing.assert_allclose(a[g], b[g], rtol=rtol, atol=atol, err_msg=g)


def test_kernel_is_what_a_cell_step_runs():
    """A jitted HH simulation calls the kernel once per step, its gradient the JVP entry
    too (so a silent fallback to the twin would fail here); only the plain run lets the
    kernel write the new gates over the old."""
    cell = dx.Cell.ball_and_stick(nseg=[1, 3])
    cell.insert("hh")
    cell.record("v", cell.soma(0.5))
    run = lambda p: dx.simulate(cell, 1.0, 0.025, params=p).traces  # noqa: E731
    text = jax.jit(run).lower(cell.params).as_text()
    calls = re.findall(r"custom_call @dendrax_hh_gates\b.*", text)
    assert len(calls) == 1
    # the new gates overwrite the old in a plain run ...
    assert "output_operand_aliases" in calls[0]
    grad = jax.jit(jax.grad(lambda p: jnp.sum(run(p) ** 2))).lower(cell.params).as_text()
    # the forward pass the plain entry, the rematerialised step of the backward pass the
    # JVP entry (its coefficients)
    calls = re.findall(r"custom_call @dendrax_hh_gates\b.*", grad)
    jvp_calls = re.findall(r"custom_call @dendrax_hh_gates_jvp\b.*", grad)
    assert len(calls) == 1 and len(jvp_calls) == 1
    # ... not in a gradient, which keeps the old gates of every step
    assert "output_operand_aliases" not in calls[0] + jvp_calls[0]


@settings(max_examples=40, deadline=None)
@given(celsius=st.floats(-5.0, 45.0), dt=st.floats(1e-3, 1.0), seed=st.integers(0, 2**16))
def test_values_equal_the_twin(celsius, dt, seed):
    """To ~1e-14 (asserted 1e-13); within 1 mV of hh.mod's singular points (v = -40,
    -55 mV), where its x / (exp(x/10) - 1) loses digits to cancellation (as in NEURON), to
    ~1e-12 (asserted 1e-11; 1.6e-12 the largest over 200,000 random potentials)."""
    v, states = _inputs(seed=seed)
    q = q10(jnp.asarray(celsius))
    out, ref = jax.jit(native)(v, states, q, dt), jax.jit(twin)(v, states, q, dt)
    near = (np.abs(v + 40.0) < 1.0) | (np.abs(v + 55.0) < 1.0)
    for g in "mhn":
        np.testing.assert_allclose(out[g][~near], ref[g][~near], rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(out[g][near], ref[g][near], rtol=1e-11, atol=1e-15)


def test_float32_rounds_the_float64_result():
    """float32 operands are computed in float64 and rounded once: within half an ulp of
    float32 of the float64 twin (plus the twin's own ~1e-15)."""
    v, states = _inputs(dtype=np.float32)
    q = q10(jnp.float32(6.3))
    out = jax.jit(native)(v, states, q, jnp.float32(0.025))
    assert all(out[g].dtype == jnp.float32 for g in "mhn")
    ref = twin(v.astype(jnp.float64), {g: x.astype(jnp.float64) for g, x in states.items()},
               jnp.float64(q), float(np.float32(0.025)))
    for g in "mhn":
        np.testing.assert_allclose(out[g], ref[g], rtol=2 ** -24 * 1.01, atol=1e-30)


def _loss(step, v, states, celsius, dt):
    out = step(v, states, q10(celsius), dt)
    w = jnp.linspace(0.5, 1.5, v.size)
    return sum(jnp.sum(w * (i + 1) * out[g]) for i, g in enumerate("mhn"))


def test_gradients_equal_the_twins():
    v, states = _inputs(seed=1)
    args = (v, states, jnp.asarray(16.3), jnp.asarray(0.025))
    new = jax.jit(jax.grad(lambda *a: _loss(native, *a), (0, 1, 2, 3)))(*args)
    old = jax.jit(jax.grad(lambda *a: _loss(twin, *a), (0, 1, 2, 3)))(*args)
    # d/dv within 2e-5 mV of v = -40, -55 (the last 7 entries): hh.mod's x / (exp(x/10) - 1)
    # loses digits to cancellation there (as in NEURON), and the two derivative formulas
    # lose different ones: ~1e-10 relative
    np.testing.assert_allclose(new[0][:-7], old[0][:-7], rtol=1e-12)
    np.testing.assert_allclose(new[0][-7:], old[0][-7:], rtol=1e-9)
    for a, b in zip(jax.tree_util.tree_leaves(new[1:]), jax.tree_util.tree_leaves(old[1:])):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14 * float(np.max(np.abs(b))))
    # forward mode, tangents in v and the states together
    tv, ts = jnp.linspace(-1.0, 1.0, v.size), {g: jnp.full(v.size, 0.3) for g in "mhn"}
    _, jn = jax.jvp(lambda u, s: native(u, s, q10(16.3), 0.025), (v, states), (tv, ts))
    _, jo = jax.jvp(lambda u, s: twin(u, s, q10(16.3), 0.025), (v, states), (tv, ts))
    _close(jn, jo, 1e-12, 1e-14)


def test_derivative_in_v_matches_finite_differences():
    v, states = _inputs(seed=2)
    f = lambda u: sum(native(u, states, q10(6.3), 0.025).values())  # noqa: E731
    g = jax.grad(lambda u: jnp.sum(f(u)))(v)
    h = 1e-5
    fd = (f(v + h) - f(v - h)) / (2 * h)
    # away from v = -40 and -55 mV (the last 7 entries), where vtrap switches form within h
    np.testing.assert_allclose(g[:-7], fd[:-7], rtol=1e-7, atol=1e-10)


def test_second_derivatives_are_the_twins():
    """The kernel's JVP coefficients differentiate as the twin's (Hessians, forward over
    reverse)."""
    v, states = _inputs(n=16, seed=3)
    hess = lambda step: jax.hessian(lambda u: _loss(step, u, states, 6.3, 0.025))(v)  # noqa: E731
    np.testing.assert_allclose(hess(native), hess(twin), rtol=1e-10, atol=1e-12)


def test_vmap_over_potentials_and_temperature():
    v, states = _inputs(seed=4)
    vs = jnp.stack([v, v + 3.0, v - 7.0])
    celsius = jnp.asarray([6.3, 22.0, 37.0])
    out = jax.jit(jax.vmap(lambda u, c: native(u, states, q10(c), 0.025)))(vs, celsius)
    for i in range(3):
        ref = twin(vs[i], states, q10(celsius[i]), 0.025)
        _close({g: out[g][i] for g in "mhn"}, ref, 1e-13, 1e-15)


def test_a_subclass_with_its_own_rates_is_not_run_by_the_kernel():
    """The kernel computes hh.mod's rates only: a channel derived from HH that changes
    them advances by its own alpha_beta (never silently by hh.mod's)."""

    class FastHH(HH):
        name = "fast_hh"

        def alpha_beta(self, v, params, env):
            return {g: (2.0 * a, 2.0 * b, q) for g, (a, b, q) in
                    super().alpha_beta(v, params, env).items()}

    v, states = _inputs(seed=5)
    env = {"celsius": jnp.asarray(6.3)}
    out = FastHH().advance(v, states, {}, env, 0.025)
    _close(out, exp_euler(FastHH().alpha_beta, v, states, {}, env, 0.025), 0, 0)
    assert not np.allclose(out["m"], HH().advance(v, states, {}, env, 0.025)["m"])


def test_cell_traces_equal_the_twins(monkeypatch):
    """A spiking cell over 40 ms: kernel and twin agree to ~1e-9 mV (rounding only)."""
    cell = dx.Cell.ball_and_stick(nseg=[1, 5], dend_length=150.0, dend_diam=2.0)
    cell.insert("hh")
    cell.iclamp(cell.soma(0.5), delay=1.0, dur=30.0, amp=0.3)
    cell.record("v", cell.soma(0.5)).record("v", cell.section(1)(0.9))
    new = dx.simulate(cell, 40.0, 0.025).traces
    monkeypatch.setattr(HH, "advance", base.Mechanism.advance)
    jax.clear_caches()
    old = dx.simulate(cell, 40.0, 0.025).traces
    jax.clear_caches()
    assert float(np.max(new)) > 0.0  # it spiked
    np.testing.assert_allclose(new, old, rtol=0, atol=1e-9)


PATHS = textwrap.dedent("""
    import sys
    import jax
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import numpy as np
    from dendrax.mechanisms import hh_kernel
    from dendrax.mechanisms.hh import q10, rates
    rng = np.random.default_rng(7)
    n = 100_000  # several work items per thread
    v = jnp.asarray(rng.uniform(-120.0, 80.0, n))
    states = {g: jnp.asarray(rng.uniform(0.0, 1.0, n)) for g in "mhn"}
    out = jax.jit(lambda u, s: hh_kernel.advance(rates, u, s, q10(6.3), 0.025))(v, states)
    jv = jax.jit(jax.grad(lambda u: sum(jnp.sum(x) for x in
                                        hh_kernel.advance(rates, u, states, q10(6.3), 0.025).values())))(v)
    np.savez(sys.argv[1], jv=jv, **out)
""")


def test_threads_and_instruction_sets(run_in_processes):
    """Threads change which elements a thread computes, never the result (bit for bit);
    the baseline instructions (DENDRAX_DISABLE_AVX2=1: no FMA, no AVX-512) round a little
    differently (~1e-16; the derivative in v, whose terms cancel near v = -40 and -55 mV,
    ~1e-13 of its largest value)."""
    runs = {"threads4": {"DENDRAX_NUM_THREADS": "4"}, "serial": {"DENDRAX_NUM_THREADS": "1"},
            "baseline": {"DENDRAX_NUM_THREADS": "1", "DENDRAX_DISABLE_AVX2": "1"}}
    out = run_in_processes(PATHS, runs)
    for k in out["serial"]:
        np.testing.assert_array_equal(out["threads4"][k], out["serial"][k], err_msg=k)
        # measured: gates 2.8e-16 (absolute), the derivative 2.4e-13 of its largest
        scale = (1e-12 if k == "jv" else 1e-15) * float(np.max(np.abs(out["serial"][k])))
        np.testing.assert_allclose(out["baseline"][k], out["serial"][k], rtol=0, atol=scale,
                                   err_msg=k)


def _ffi(*operands):
    out = jax.ShapeDtypeStruct(operands[0].shape, operands[0].dtype)
    return jax.ffi.ffi_call("dendrax_hh_gates", (out,) * 3)(*operands)


@pytest.mark.parametrize("case, message", [
    ("short state", "m must have v's shape"),
    ("q per node", "q must have v's shape with a last axis of 1"),
    ("mixed dtypes", "h has another dtype than v"),
    ("integers", "operands must be float32 or float64"),
])
def test_kernel_refuses_bad_operands(case, message):
    """The handler checks what it is given and says what is wrong (never reads past an
    array): reachable only by calling the FFI target directly."""
    v = jnp.zeros(8)
    ops = [v, v, v, v, jnp.ones(1), jnp.full(1, 0.025)]
    if case == "short state":
        ops[1] = jnp.zeros(7)
    elif case == "q per node":
        ops[4] = jnp.ones(8)
    elif case == "mixed dtypes":
        ops[2] = jnp.zeros(8, jnp.float32)
    else:
        ops = [jnp.zeros(8, jnp.int32)] * 4 + [jnp.ones(1, jnp.int32)] * 2
    with pytest.raises(Exception, match=re.escape(message)):
        jax.block_until_ready(_ffi(*ops))
