"""dendrax: differentiable simulation of biophysically detailed neurons on JAX.

Layers, imports flowing one way: description (cell, network) -> lowering
(model, params, layout) -> simulation (the time loop) -> solver (the Hines
kernels); morphology and mechanisms are side rooms they call.

Precision: importing dendrax changes no JAX setting. dendrax computes in JAX's
default float dtype. For float64 (NEURON's numbers, ~1e-10 mV) turn JAX's 64-bit
mode on once, first thing, before building cells::

    import jax
    jax.config.update("jax_enable_x64", True)   # or JAX_ENABLE_X64=1 in the environment

Without it everything runs in float32 (supported; ~1e-2 mV from NEURON) and the first
``simulate`` says so with a ``dendrax.PrecisionWarning``. The ``dendrax`` command
turns float64 on itself.
"""

from .solver import hines_solve
from . import events
from .morphology import Morphology, read_morphology
from .cell import Cell, Location
from .version import __version__
from .network import Network
from .lowering import Simulatable, lower
from .result import Result
from .stdrun import PrecisionWarning, simulate
from .modelfile import load, save
from . import extracellular
from .extracellular import Electrodes


def __getattr__(name):  # dendrax.column (docs/columns.md) is imported on first use
    if name == "column":
        import importlib

        return importlib.import_module(".column", __name__)
    raise AttributeError(f"module 'dendrax' has no attribute {name!r}")

__all__ = ["Cell", "Electrodes", "Location", "Morphology", "Network", "PrecisionWarning", "Result", "Simulatable",
           "events", "extracellular", "hines_solve", "load", "lower", "read_morphology", "save", "simulate", "__version__"]
