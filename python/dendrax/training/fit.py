"""Gradient-based fitting with optax: ``fit`` and ``plot_history``."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np


@dataclass
class FitResult:
    """What ``fit`` returns.

    Attributes:
        theta: the parameters after the last step.
        history: [n_steps] the loss at the start of each step (float64 numpy).
        best_theta: the parameters with the lowest loss seen (``history.min()``).
        best_loss: that loss.
        stopped: None, or why the loop ended early ("callback", "non-finite loss", or
            "non-finite gradient": the loss there is finite, and kept).
    """

    theta: dict
    history: np.ndarray
    best_theta: dict = field(repr=False, default=None)
    best_loss: float = math.inf
    stopped: str | None = None


def fit(loss, theta0, *, optimizer=None, steps: int, progress: bool = True, callback=None,
        jit: bool = True) -> FitResult:
    """Minimise ``loss(theta)`` from ``theta0`` with an optax optimizer.

    One step evaluates ``jax.value_and_grad(loss)`` and applies the optimizer's
    update; the step is compiled once (``jax.jit``) and reused.

    Args:
        loss: a scalar function of a pytree ``theta`` (pure JAX, e.g. simulate
            ``trainables.apply(theta)`` and compare with a target).
        theta0: the starting pytree (e.g. ``Trainables.init()`` or ``.sample(key)``).
        optimizer: an ``optax.GradientTransformation`` (default ``optax.adam(0.05)``,
            a good start for sigmoid-transformed parameters, whose free values are O(1)).
            Optimizers that take extra arguments get ``value``, ``grad`` and
            ``value_fn=loss``, so ``optax.lbfgs()`` (with its line search) works too.
        steps: number of optimizer steps.
        progress: show a tqdm progress bar with the current loss.
        callback: called as ``callback(step, theta, loss)`` after each step's loss is
            known (theta is the point where that loss was evaluated); return True to stop.
        jit: compile the step (turn off only to debug).

    Returns:
        FitResult(theta, history, best_theta, best_loss, stopped). The loop stops early,
        with a warning, when the loss or its gradient is not finite; theta is then the
        point of the last finite loss.
    """
    import optax
    from tqdm.auto import tqdm

    if not isinstance(steps, (int, np.integer)) or isinstance(steps, bool) or steps < 0:
        raise ValueError(f"steps must be a whole number >= 0, got {steps!r}")
    optimizer = optax.adam(0.05) if optimizer is None else optimizer
    if not (callable(getattr(optimizer, "init", None)) and callable(getattr(optimizer, "update",
                                                                            None))):
        raise ValueError(f"optimizer must be an optax optimizer (e.g. optax.adam(0.05)), got "
                         f"{optimizer!r}")
    extra_args = isinstance(optimizer, optax.GradientTransformationExtraArgs)
    for path, x in jax.tree_util.tree_leaves_with_path(theta0):  # it stopped at step 0
        if not isinstance(x, jax.core.Tracer) and not np.all(np.isfinite(np.asarray(x, float))):
            raise ValueError(f"theta0{jax.tree_util.keystr(path)} has non-finite values: start "
                             "from finite ones (e.g. Trainables.init() or .sample(key))")

    def step(theta, state):
        value, grad = jax.value_and_grad(loss)(theta)
        if extra_args:  # line-search methods (optax.lbfgs) need the value and the function
            updates, state = optimizer.update(grad, state, theta, value=value, grad=grad,
                                              value_fn=loss)
        else:
            updates, state = optimizer.update(grad, state, theta)
        finite = jax.tree_util.tree_reduce(
            lambda ok, g: ok & jnp.all(jnp.isfinite(g)), grad, jnp.isfinite(value))
        return optax.apply_updates(theta, updates), state, value, finite

    step = jax.jit(step) if jit else step
    # strong types throughout: a weakly typed leaf (a Python float in theta0, a scalar in
    # optax.lbfgs's state) comes back strongly typed from the first step and would recompile it
    theta = _strong(theta0, floats=True)
    state = _strong(optimizer.init(theta))
    history, best, best_theta, stopped, previous = [], math.inf, theta, None, theta
    bar = tqdm(total=steps, desc="fit", unit="step", disable=not progress, leave=False)
    try:
        for k in range(steps):
            new_theta, new_state, value, finite = step(theta, state)
            value = float(value)
            if not bool(finite):
                if math.isfinite(value):  # a finite loss here, its gradient not: keep it
                    history.append(value)
                    if value < best:
                        best, best_theta = value, theta
                    stopped = "non-finite gradient"
                else:
                    stopped, theta = "non-finite loss", previous
                warnings.warn(f"fit: the loss or its gradient is not finite at step {k} "
                              f"(loss {value}); stopping", RuntimeWarning, stacklevel=2)
                break
            history.append(value)
            if value < best:
                best, best_theta = value, theta
            bar.update(1)
            bar.set_postfix(loss=f"{value:.4g}")
            if callback is not None and callback(k, theta, value):
                theta, stopped = new_theta, "callback"
                break
            previous, theta, state = theta, new_theta, new_state
    finally:
        bar.close()
    return FitResult(theta, np.asarray(history, float), best_theta, best, stopped)


def _strong(tree, floats: bool = False):
    """Strongly typed leaves; with ``floats``, integers (a Python int in theta0) become
    floats (not in an optimizer's state: its step counts stay integers)."""
    def strong(x):
        x = jnp.asarray(x)
        whole = jnp.issubdtype(x.dtype, jnp.integer) or x.dtype == bool
        return x.astype(jnp.result_type(float) if floats and whole else x.dtype)

    return jax.tree_util.tree_map(strong, tree)


def plot_history(history, path, *, title: str = "dendrax fit") -> None:
    """Write a PNG of the loss per step (log scale where all losses are positive)."""
    from matplotlib.figure import Figure  # no pyplot: leaves the user's backend alone

    history = np.asarray(history, float)
    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot()
    ax.plot(np.arange(history.size), history, lw=1.2)
    if history.size and np.all(history > 0):
        ax.set_yscale("log")
    ax.set(xlabel="step", ylabel="loss", title=title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
