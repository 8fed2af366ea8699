"""The suite checks NEURON agreement in float64: turn JAX's 64-bit mode on, as the
README tells users to (importing dendrax does not; see tests/test_precision.py)."""

import jax

jax.config.update("jax_enable_x64", True)
