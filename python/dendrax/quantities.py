"""Values with units (pint, brainunit, astropy-style quantities): converted to the unit a
parameter is documented in, or refused; never a number misread in another unit.

dendrax takes plain numbers in documented units (NEURON's for cells, NEST's for NEST-named
point models). A quantity passed instead is converted when its library can convert it to
that unit (``20 * ureg.mV`` for a parameter in mV; ``0.02 * ureg.V`` too), and refused with
an error naming the parameter, the value and the unit otherwise (``20 * ureg.ms`` for a
potential).
"""

from __future__ import annotations

import numpy as np


def is_quantity(value) -> bool:
    """Whether ``value`` carries a unit (duck-typed: pint, brainunit, astropy)."""
    return any(hasattr(value, a) for a in ("units", "unit", "dimensionality", "mantissa"))


def magnitude(value, unit: str, name: str):
    """``value`` as plain numbers in ``unit`` (a quantity is converted; a plain number is
    returned as it is). A ValueError when a quantity cannot be expressed in ``unit``."""
    if not is_quantity(value):
        return value
    unit = {"1": "dimensionless", "uS": "microsiemens", "GOhm": "gigaohm"}.get(unit, unit)
    try:
        if hasattr(value, "to") and hasattr(value, "magnitude"):  # pint, astropy
            return np.asarray(value.to(unit).magnitude, float)
        if hasattr(value, "to_decimal"):  # brainunit
            import brainunit as bu

            return np.asarray(value.to_decimal(getattr(bu, unit)), float)
    except Exception as err:  # the library's own dimensionality error, named
        raise ValueError(f"{name} = {value!r} cannot be expressed in {unit} ({err}); give it in "
                         f"{unit}") from None
    raise ValueError(f"{name} = {value!r} has a unit dendrax cannot convert; give a plain number "
                     f"in {unit}")
