"""Fitting a column's parameters to objectives by gradient descent.

``fit(cfg, objectives, params=("weights", "drive"), steps=50, learning_rate=0.05)`` tunes

* ``"weights"``: the four recurrent weight magnitudes w_EE, w_EI, w_IE, w_II, each as
  w = w0 exp(theta) (positive; a pair whose w0 is 0 stays 0);
* ``"drive"``: the drive's noise mean of each cell type, mean = mean0 + s theta with
  s = max(|mean0|, std0, 1) (the emitter's current unit);

with optax's Adam on the objectives' loss (``dendrax.column.objectives``), starting from
the configuration's values (theta = 0). Spikes carry a surrogate gradient (``surrogate``,
default "fast_sigmoid"; the forward run is unchanged). Gradients are taken in forward mode
(one tangent per tuned value, no stored trajectory: memory stays that of one run) when
there are at most 8 values or the emitter is "adex" (whose adaptive integrator reverse mode
cannot differentiate), else in reverse mode. Returns a ``FitResult`` whose ``cfg`` is the
configuration with the best values written in (``connectivity(w_..=)``, ``drive(mean=)``).
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from .config import CELL_TYPES, PAIRS, Configuration
from .construction import check_precision, construct
from .objectives import Objective, loss
from .readouts import SIGNAL_OF

TUNABLE = ("weights", "drive")
MODE_FOR = {"spikes": "SPK", "V_m": "Vm", "source": "source-proxy", "LFP": "LFP-proxy",
            "CSD": "CSD-proxy"}


@dataclass(frozen=True)
class FitResult:
    """What ``fit`` returns.

    Attributes:
        cfg: the configuration with the best values written in.
        values: {"weights": {...}, "drive": {...}} the best values (tuned ones only).
        history: the loss at every step (before that step's update).
        best_loss: the lowest loss seen; readouts: {objective name: value} there.
        start: the starting values.
    """

    cfg: object
    values: dict
    history: tuple
    best_loss: float
    readouts: dict
    start: dict


def fit(cfg, objectives, params=TUNABLE, steps: int = 50, learning_rate: float = 0.05, *,
        duration_ms: float | None = None, surrogate: str = "fast_sigmoid", mode: str = "auto",
        progress: bool = False, callback=None) -> FitResult:
    """Tune ``params`` of ``cfg`` (a Configuration) so that ``objectives`` (an
    ``objective(...)`` or a list) are met; see the module docstring.

    Args:
        steps: Adam steps (>= 1); learning_rate: Adam's (free values are O(1)), a number
            or an optax schedule.
        duration_ms: the length of each run (default the configuration's).
        mode: "auto", "forward" or "reverse" (how gradients are taken).
        callback: ``callback(step, loss, values)`` returning True stops early.
    """
    import optax

    if not isinstance(cfg, Configuration):
        raise TypeError(f"fit takes a dendrax.column.Configuration, got {type(cfg).__name__}")
    if isinstance(objectives, Objective):
        objectives = [objectives]
    objectives = list(objectives)
    if not objectives or not all(isinstance(o, Objective) for o in objectives):
        raise ValueError("fit needs objectives made by objective(name, metric, target)")
    if isinstance(params, str):
        params = (params,)
    try:
        params = tuple(params)
    except TypeError:
        raise ValueError(f"fit params are names of {list(TUNABLE)} (a name or a list), got "
                         f"{params!r}") from None
    bad = [p for p in params if p not in TUNABLE]
    if bad or not params:
        raise ValueError(f"unknown fit params {bad or params!r}; tunable: {list(TUNABLE)}")
    if cfg.family == "multicompartment":
        raise ValueError("fit tunes point-neuron columns (izhikevich, lif, adex); for "
                         "detailed cells use dendrax.training with the model's network")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    if not callable(learning_rate) and (  # an optax schedule, or a number
            isinstance(learning_rate, bool) or not isinstance(learning_rate, (int, float,
                                                                              np.number))
            or not (np.isfinite(learning_rate) and learning_rate > 0)):
        raise ValueError(f"learning_rate must be a finite number > 0 or an optax schedule, got "
                         f"{learning_rate!r}")
    check_precision(cfg)
    if mode not in ("auto", "forward", "reverse"):
        raise ValueError(f"unknown mode {mode!r}; choose 'auto', 'forward' or 'reverse'")
    needed = tuple(dict.fromkeys(MODE_FOR[SIGNAL_OF[o.spec.metric][0]] for o in objectives))
    cfg_run = cfg.probes(needed, name="fit", electrodes=cfg.probe.electrodes)
    model = construct(cfg_run, surrogate=surrogate)
    start = model.tunable()
    drive0 = cfg.drive_values()
    base = model.network.params

    w0 = {p: start["weights"][p] for p in PAIRS if start["weights"][p] > 0}
    scale = {t: max(abs(start["drive"][t]), drive0["std"][t], 1.0) for t in CELL_TYPES}
    theta = {}
    if "weights" in params:
        theta["weights"] = {p: jnp.asarray(0.0) for p in w0}
    if "drive" in params:
        theta["drive"] = {t: jnp.asarray(0.0) for t in CELL_TYPES}

    def values_of(th):
        out = {}
        if "weights" in th:
            out["weights"] = {p: w0[p] * jnp.exp(v) for p, v in th["weights"].items()}
        if "drive" in th:
            out["drive"] = {t: start["drive"][t] + scale[t] * v for t, v in th["drive"].items()}
        return out

    def objective_fn(th):
        sig = model.run(model.params_with(values_of(th), base), duration_ms)
        total, vals = loss(model, sig, objectives)
        return total, vals

    n = len(jax.tree_util.tree_leaves(theta))
    forward = mode == "forward" or (mode == "auto" and (n <= 8 or cfg.family == "adex"))
    if forward:
        def value_and_grad(th):
            jac, vals = jax.jacfwd(objective_fn, has_aux=True)(th)
            total = sum(o.weight * ((vals[o.name] - o.target) / o.scale) ** 2
                        for o in objectives)
            return (total, vals), jac
    else:
        value_and_grad = jax.value_and_grad(objective_fn, has_aux=True)
    step_fn = jax.jit(value_and_grad)
    opt = optax.adam(learning_rate)
    state = opt.init(theta)
    history, best = [], (np.inf, theta, {})
    for k in range(steps):
        (value, vals), grad = step_fn(theta)
        value = float(value)
        history.append(value)
        if progress:
            print(f"step {k}: loss {value:.4g} " + " ".join(f"{a}={float(b):.4g}"
                                                            for a, b in vals.items()))
        if not np.isfinite(value):
            break
        if value < best[0]:
            best = (value, theta, {a: float(b) for a, b in vals.items()})
        if callback is not None and callback(k, value, values_of(theta)):
            break
        updates, state = opt.update(grad, state, theta)
        theta = jax.tree_util.tree_map(lambda a, u: a + u, theta, updates)
    best_values = jax.tree_util.tree_map(float, values_of(best[1]))
    fitted = cfg
    if "weights" in best_values:
        fitted = fitted.connectivity(**{f"w_{p}": v for p, v in best_values["weights"].items()})
    if "drive" in best_values:
        fitted = fitted.drive(mean=best_values["drive"])
    return FitResult(fitted, best_values, tuple(history), float(best[0]), best[2], start)
