"""Transforms between a parameter's constrained value and an unconstrained free value.

An optimizer works on free values (any real number); the simulation needs the
constrained value (a conductance >= 0, a capacitance inside plausible bounds).
Each transform maps ``forward(free) -> constrained`` and back with
``inverse(constrained) -> free``; both are elementwise, pure JAX and
differentiable, so they run inside ``jax.jit`` and ``jax.grad``.

Transforms compose: ``Chain(t1, t2)`` (or ``t1 >> t2``) applies ``t1`` first in
the forward direction: ``forward = t2.forward(t1.forward(free))`` and
``inverse = t1.inverse(t2.inverse(value))``. ``Sigmoid(0, 1) >> Affine(0.2, 0.01)``
maps the real line onto (0.01, 0.21).

Every transform here is monotone, so ``bounds`` (the open interval of values it
can reach) is ``forward`` at -inf and +inf, sorted.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["Transform", "Identity", "Sigmoid", "Softplus", "Affine", "Chain", "as_transform"]


class Transform:
    """Base class: ``forward(free) -> constrained``, ``inverse(constrained) -> free``."""

    def forward(self, free):
        raise NotImplementedError

    def inverse(self, value):
        raise NotImplementedError

    @property
    def bounds(self) -> tuple[float, float]:
        """(lower, upper): the open interval ``forward`` maps the real line onto."""
        with np.errstate(all="ignore"):
            ends = [float(self.forward(jnp.asarray(x, float))) for x in (-np.inf, np.inf)]
        lo, hi = sorted(ends)
        return lo, hi

    @property
    def bounded(self) -> bool:
        """True when both bounds are finite (``Trainables.sample`` draws uniformly inside)."""
        return bool(np.all(np.isfinite(self.bounds)))

    def __rshift__(self, other: "Transform") -> "Chain":
        return Chain(self, other)

    def __call__(self, free):
        return self.forward(free)


class Identity(Transform):
    """free == constrained (the default)."""

    def forward(self, free):
        return jnp.asarray(free)

    def inverse(self, value):
        return jnp.asarray(value)

    def __repr__(self):
        return "Identity()"


class Sigmoid(Transform):
    """Onto the open interval (lower, upper): ``lower + (upper - lower) * sigmoid(free)``.

    The free value 0 is the interval's midpoint; inverse is the logit. Values on
    or outside the bounds have no free value (inverse gives +-inf or nan).
    """

    def __init__(self, lower: float, upper: float):
        lower, upper = _number("Sigmoid", "lower", lower), _number("Sigmoid", "upper", upper)
        if not (np.isfinite(lower) and np.isfinite(upper) and lower < upper):
            raise ValueError(f"Sigmoid needs finite lower < upper, got ({lower}, {upper})")
        self.lower, self.upper = lower, upper

    def forward(self, free):
        return self.lower + (self.upper - self.lower) * jax.nn.sigmoid(free)

    def inverse(self, value):
        # from the distances to both bounds (not u = (v - lo) / (hi - lo), whose rounding
        # can put a value on the upper bound a hair inside it): -inf and inf exactly there
        value = jnp.asarray(value)
        return jnp.log(value - self.lower) - jnp.log(self.upper - value)

    def __repr__(self):
        return f"Sigmoid({self.lower:g}, {self.upper:g})"


class Softplus(Transform):
    """Onto (lower, inf): ``lower + log(1 + exp(free))``; close to ``lower + free`` for large free."""

    def __init__(self, lower: float = 0.0):
        lower = _number("Softplus", "lower", lower)
        if not np.isfinite(lower):
            raise ValueError(f"Softplus needs a finite lower bound, got {lower}")
        self.lower = lower

    def forward(self, free):
        return self.lower + jax.nn.softplus(free)

    def inverse(self, value):
        y = jnp.asarray(value) - self.lower
        # log(exp(y) - 1) = y + log(1 - exp(-y)), stable for large and small y
        return y + jnp.log(-jnp.expm1(-y))

    def __repr__(self):
        return f"Softplus({self.lower:g})"


class Affine(Transform):
    """``scale * free + shift`` (scale != 0); e.g. to put a small conductance on unit scale."""

    def __init__(self, scale: float = 1.0, shift: float = 0.0):
        scale, shift = _number("Affine", "scale", scale), _number("Affine", "shift", shift)
        if not (np.isfinite(scale) and np.isfinite(shift) and scale != 0.0):
            raise ValueError(f"Affine needs a finite nonzero scale and finite shift, got ({scale}, {shift})")
        self.scale, self.shift = scale, shift

    def forward(self, free):
        return self.scale * jnp.asarray(free) + self.shift

    def inverse(self, value):
        return (jnp.asarray(value) - self.shift) / self.scale

    @property
    def bounds(self):
        return (-np.inf, np.inf)

    def __repr__(self):
        return f"Affine({self.scale:g}, {self.shift:g})"


class Chain(Transform):
    """Transforms applied in order in the forward direction (``t1 >> t2 >> ...``)."""

    def __init__(self, *transforms: Transform):
        flat = []
        for t in transforms:
            if not isinstance(t, Transform):
                raise TypeError(f"Chain takes Transforms, got {t!r}")
            flat.extend(t.transforms if isinstance(t, Chain) else [t])
        self.transforms = tuple(flat)

    def forward(self, free):
        for t in self.transforms:
            free = t.forward(free)
        return jnp.asarray(free)

    def inverse(self, value):
        for t in reversed(self.transforms):
            value = t.inverse(value)
        return jnp.asarray(value)

    def __repr__(self):
        return " >> ".join(map(repr, self.transforms)) if self.transforms else "Chain()"


def as_transform(t) -> Transform:
    """None -> Identity(); a (lower, upper) pair -> Sigmoid(lower, upper); a Transform as is."""
    if t is None:
        return Identity()
    if isinstance(t, Transform):
        return t
    if isinstance(t, (tuple, list)) and len(t) == 2:
        return Sigmoid(*t)
    raise TypeError(f"transform must be a Transform, None or a (lower, upper) pair, got {t!r}")


def _number(transform: str, name: str, value) -> float:
    """``value`` as a float, or a ValueError naming it: a transform's bounds are one number
    each (one transform per trained parameter; its groups share it)."""
    if isinstance(value, (bool, np.bool_, str, bytes)) or np.ndim(value) != 0:
        raise ValueError(f"{transform}'s {name} must be one number (a transform's bounds are "
                         f"shared by all the groups of a parameter), got {value!r}")
    return float(value)
