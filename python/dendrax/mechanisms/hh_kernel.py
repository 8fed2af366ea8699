"""HH's gate step on the CPU's native kernel (csrc/hh_cpu.cc), exponential Euler in JAX
(``dendrax.mechanisms.cnexp``) as its twin.

XLA:CPU spends most of an HH cell's time step on the gates (~20 ns per compartment of
~33 on an 880-compartment cell: six float64 exponentials per node, in several passes
over memory). The kernel does the same arithmetic in one vectorised pass. It runs where
the extension loaded and the platform is the CPU; elsewhere (a GPU, a per-node
temperature) the twin runs. The two agree to the rounding of the exponentials (~1e-14
relative; tests/test_hh_kernel.py).

Derivatives: the tangent of the new gates is ``slope * dv + decay * dx`` with both
coefficients from the kernel's second entry point (as ``cnexp.coefficients``); through
q and dt it is the twin's. The coefficients' own derivatives (Hessians) are the twin's.
In reverse mode the forward pass runs the plain entry and the backward pass (which
recomputes the step) the JVP entry.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
from jax import lax

from ..extensions import Extensions
from .cnexp import coefficients, exp_euler, symbolic_zero

EXTENSIONS = Extensions({"cpu": "dendrax._hh_cpu"})
GATES = ("m", "h", "n")


def advance(rates, v, states, q, dt):
    """HH's gates one step dt later at the new potential v.

    Args:
        rates: ``(v, q) -> {"m", "h", "n": (alpha, beta, q)}``, hh.mod's rates (1/ms):
            what the kernel computes, and the twin's definition. A module-level function
            (it is a static argument).
        v: [n] membrane potential, mV.
        states: {"m", "h", "n": [n]}.
        q: the temperature factor (scalar), 3 ** ((celsius - 6.3) / 10).
        dt: the step, ms (scalar).

    Returns:
        {"m", "h", "n": [n]}: ``exp_euler`` of ``rates``, to the exponentials' rounding.
    """
    v, states = jnp.asarray(v), {k: jnp.asarray(x) for k, x in states.items()}
    native = (EXTENSIONS.available("cpu") and jnp.ndim(q) == 0 and jnp.ndim(dt) == 0
              and jnp.ndim(v) == 1 and v.dtype in (jnp.float32, jnp.float64)
              and all(states[g].dtype == v.dtype for g in GATES))
    if not native:
        return _twin_states(rates, v, states, q, dt)
    new = _gates(rates, True, v, states["m"], states["h"], states["n"],
                 jnp.asarray(q, v.dtype), jnp.asarray(dt, v.dtype))
    return {**states, **dict(zip(GATES, new))}


def _alpha_beta(rates):
    """``rates`` as a Mechanism.alpha_beta reading q from env (not closing over it: q may
    be traced)."""
    return partial(_alpha_beta_of, rates)


def _alpha_beta_of(rates, v, params, env):
    return rates(v, env["q"])


def _twin_states(rates, v, states, q, dt):
    return exp_euler(_alpha_beta(rates), v, states, {}, {"q": q}, dt)


def _twin(rates, v, m, h, n, q, dt):
    new = _twin_states(rates, v, {"m": m, "h": h, "n": n}, q, dt)
    return tuple(new[g] for g in GATES)


def _twin_coefficients(rates, v, m, h, n, q, dt):
    new, slope, decay = coefficients(_alpha_beta(rates), v, {"m": m, "h": h, "n": n}, {},
                                     {"q": q}, dt)
    return tuple(tuple(d[g] for g in GATES) for d in (new, slope, decay))


def _call(target, n_out, alias, v, m, h, n, q, dt):
    """The kernel on [n] operands (q, dt passed as [1]: one per row).

    With ``alias`` the new gates overwrite the old (the kernel reads each node's gates
    before it writes them): in the time loop XLA then updates the carried gates in place
    instead of copying the results into the carry (a batch of 100 HH cells of 985 nodes:
    3 copies of 0.8 MB a step, ~12% of the step). Not where the step is differentiated:
    reverse mode also keeps the old gates of every step, so XLA must copy them before the
    kernel overwrites them (the forward pass of a gradient, 312 compartments: ~15% slower
    with the alias).
    """
    out = jax.ShapeDtypeStruct(v.shape, v.dtype)
    aliases = {1: 0, 2: 1, 3: 2} if alias else {}
    return jax.ffi.ffi_call(target, (out,) * n_out, vmap_method="broadcast_all",
                            input_output_aliases=aliases)(
        v, m, h, n, q.reshape(1), dt.reshape(1))


@partial(jax.custom_jvp, nondiff_argnums=(0, 1))
def _gates(rates, alias, v, m, h, n, q, dt):
    return lax.platform_dependent(v, m, h, n, q, dt,
                                  cpu=partial(_call, "dendrax_hh_gates", 3, alias),
                                  default=partial(_twin, rates))


@partial(jax.custom_jvp, nondiff_argnums=(0,))
def _coefficients(rates, v, m, h, n, q, dt):
    """((m', h', n'), slopes d/dv, decays d/dx)."""
    def native(*args):
        out = _call("dendrax_hh_gates_jvp", 9, False, *args)
        return out[:3], out[3:6], out[6:]

    return lax.platform_dependent(v, m, h, n, q, dt, cpu=native,
                                  default=partial(_twin_coefficients, rates))


@_coefficients.defjvp
def _coefficients_jvp(rates, primals, tangents):
    return jax.jvp(partial(_twin_coefficients, rates), primals, tangents)


@partial(_gates.defjvp, symbolic_zeros=True)
def _gates_jvp(rates, alias, primals, tangents):
    v, m, h, n, q, dt = primals
    dv, dm, dh, dn, dq, ddt = tangents
    if symbolic_zero(dv) and symbolic_zero(dm) and symbolic_zero(dh) and symbolic_zero(dn):
        new, out = _gates(rates, False, *primals), [jnp.zeros_like(x) for x in (m, h, n)]
    else:
        # the new gates from the plain kernel, the coefficients from the JVP entry: in
        # reverse mode the forward pass needs the former only, and the rematerialised
        # step in the backward pass the latter only
        new = _gates(rates, False, *primals)
        _, slope, decay = _coefficients(rates, *primals)
        out = []
        for dx, a, e in zip((dm, dh, dn), slope, decay):
            t = None if symbolic_zero(dv) else a * dv
            if not symbolic_zero(dx):
                t = e * dx if t is None else t + e * dx
            out.append(jnp.zeros_like(v) if t is None else t)
    # through the temperature factor or dt: the twin's
    if not (symbolic_zero(dq) and symbolic_zero(ddt)):
        fill = [jnp.zeros_like(p) if symbolic_zero(t) else t for p, t in ((q, dq), (dt, ddt))]
        _, extra = jax.jvp(lambda qq, step: _twin(rates, v, m, h, n, qq, step), (q, dt), tuple(fill))
        out = [e + x for e, x in zip(extra, out)]
    return tuple(new), tuple(out)
