"""Objectives: targets for readouts, combined into one loss to minimise.

``objective(name, metric, target, weight=1.0, **selection)`` asks that readout ``metric``
(a ``readout_spec`` metric, over ``selection``: column, layer, cell_type, t_start_ms,
t_stop_ms) equal ``target``. The loss of a run is

    sum over objectives of  weight * ((value - target) / scale)^2,   scale = |target| or 1 if 0

(a relative squared error, so objectives in Hz and mV can be mixed).
"""

from __future__ import annotations

from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np

from ..quantities import is_number
from .readouts import ReadoutSpec, metric_value, readout_spec


@dataclass(frozen=True)
class Objective:
    """``spec`` (ReadoutSpec), ``target`` and ``weight``."""

    spec: ReadoutSpec
    target: float
    weight: float = 1.0

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def scale(self) -> float:
        return abs(self.target) if self.target != 0 else 1.0

    def to_dict(self) -> dict:
        return {"spec": self.spec.to_dict(), "target": self.target, "weight": self.weight}


def objective(name: str, metric: str, target: float, weight: float = 1.0, **selection) -> Objective:
    """An objective: readout ``metric`` (see ``readout_spec``) should equal ``target``;
    ``weight`` (>= 0) scales its share of the loss; ``selection``: column, layer,
    cell_type, t_start_ms, t_stop_ms."""
    spec = readout_spec(name, metric, **selection)
    if not (is_number(target) and is_number(weight)):
        raise ValueError(f"objective {name!r}: target and weight must be numbers, got "
                         f"{target!r}, {weight!r}")
    target, weight = float(target), float(weight)
    if not np.isfinite(target):
        raise ValueError(f"objective {name!r}: target must be finite, got {target!r}")
    if not (np.isfinite(weight) and weight >= 0):
        raise ValueError(f"objective {name!r}: weight must be >= 0, got {weight!r}")
    return Objective(spec, target, weight)


def loss(model, signals, objectives) -> tuple:
    """(total loss, {name: value}) of ``objectives`` on ``signals`` (jnp; differentiable)."""
    total, values = 0.0, {}
    for o in objectives:
        v = metric_value(model, signals, o.spec)
        values[o.name] = v
        total = total + o.weight * ((v - o.target) / o.scale) ** 2
    return jnp.asarray(total), values
