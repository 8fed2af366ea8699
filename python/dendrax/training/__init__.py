"""Training at scale: trainable parameters with sharing and transforms, fitting with optax,
and batched (vmap) and multi-device (jax.sharding) simulation.

    from dendrax.training import Trainables, Sigmoid, fit, simulate_batch

See docs/training.md.
"""

from .batch import simulate_batch
from .fit import FitResult, fit, plot_history
from .trainable import Trainables
from .transforms import Affine, Chain, Identity, Sigmoid, Softplus, Transform

__all__ = ["Affine", "Chain", "FitResult", "Identity", "Sigmoid", "Softplus", "Trainables",
           "Transform", "fit", "plot_history", "simulate_batch"]
