"""dendrax: differentiable simulation of biophysically detailed neurons on JAX.

Layers, imports flowing one way: description (cell, network) -> lowering
(model, params, layout) -> simulation (the time loop) -> solver (the Hines
kernels); morphology and mechanisms are side rooms they call.
"""

import jax as _jax

_jax.config.update("jax_enable_x64", True)  # float64 by default, as NEURON

from .solver import hines_solve  # noqa: E402
from .morphology import Morphology, read_morphology  # noqa: E402
from .cell import Cell, Location  # noqa: E402
from .network import Network  # noqa: E402
from .lowering import Simulatable, lower  # noqa: E402
from .simulation import Result, simulate  # noqa: E402

__version__ = "0.1.0"
__all__ = ["Cell", "Location", "Morphology", "Network", "Result", "Simulatable", "hines_solve",
           "lower", "read_morphology", "simulate", "__version__"]
