"""dendrax: differentiable simulation of biophysically detailed neurons on JAX."""

import jax as _jax

_jax.config.update("jax_enable_x64", True)  # float64 by default, as NEURON

from .solver import hines_solve

__version__ = "0.1.0"
__all__ = ["hines_solve", "__version__"]
