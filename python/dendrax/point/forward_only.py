"""A marker on the outputs of a computation JAX differentiates in forward mode only (the
adaptive ``lax.while_loop`` of ``propagators.rkf45_evolve``), which turns reverse-mode
differentiation through it into an error that names the model and the alternatives.

``forward_only(tree, model)`` is the identity on values, on forward-mode tangents (jvp,
jacfwd, linearize) and under vmap and jit; only its transpose (reverse mode: grad, vjp,
jacrev, value_and_grad) raises. It is reached in the backward pass before the loop it
follows, whose own error (JAX's "Reverse-mode differentiation does not work for
lax.while_loop ...") names neither the model nor what to do. Where no tangent flows
through the loop (the model's states do not depend on what is differentiated), reverse
mode never reaches the marker and works.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.extend.core import Primitive
from jax.interpreters import ad, batching, mlir

GSL_MODELS = ("iaf_cond_exp", "iaf_cond_alpha", "iaf_cond_beta", "aeif_cond_exp",
              "hh_psc_alpha")
EXACT_MODELS = ("iaf_psc_alpha", "iaf_psc_exp", "iaf_psc_delta", "LIF_AMPA_NMDA (conductances)",
                "LIF", "ExpIF", "ALIF")

_forward_only_p = Primitive("dendrax_forward_only")
_forward_only_p.def_impl(lambda x, *, model: x)
_forward_only_p.def_abstract_eval(lambda x, *, model: x)
mlir.register_lowering(_forward_only_p, mlir.lower_fun(lambda x, *, model: x,
                                                       multiple_results=False))
batching.primitive_batchers[_forward_only_p] = \
    lambda args, dims, *, model: (_forward_only_p.bind(*args, model=model), dims[0])


def reverse_mode_message(model: str) -> str:
    """Why reverse-mode differentiation cannot pass through ``model`` and what to use."""
    what = (f"{model} (integrated by NEST's GSL solver" if model else
            f"a point model integrated by NEST's GSL solver ({', '.join(GSL_MODELS)}")
    return (f"reverse-mode differentiation (jax.grad, jax.vjp, jax.jacrev, "
            f"jax.value_and_grad) cannot pass through {what}: adaptive RKF45 sub-steps in a "
            "lax.while_loop, which JAX differentiates in forward mode only). Use forward mode "
            "(jax.jacfwd, jax.jvp: one pass per parameter differentiated), or for jax.grad an "
            f"exactly integrated model ({', '.join(EXACT_MODELS)})")


def _transpose(ct, x, *, model):
    raise ValueError(reverse_mode_message(model))


ad.deflinear2(_forward_only_p, _transpose)


def forward_only(tree, model: str = ""):
    """``tree`` unchanged (its floating-point leaves marked): forward-mode differentiation
    passes through, reverse mode raises ``reverse_mode_message(model)``."""
    def mark(x):
        x = jnp.asarray(x)
        return _forward_only_p.bind(x, model=model) if jnp.issubdtype(x.dtype, jnp.inexact) \
            else x

    return jax.tree_util.tree_map(mark, tree)
