"""Values with units (pint, brainunit, astropy-style quantities): converted to the unit a
parameter is documented in, or refused; never a number misread in another unit.

dendrax takes plain numbers in documented units (NEURON's for cells, NEST's for NEST-named
point models). A quantity passed instead is converted when its library can convert it to
that unit (``20 * ureg.mV`` for a parameter in mV; ``0.02 * ureg.V`` too), and refused with
an error naming the parameter, the value and the unit otherwise (``20 * ureg.ms`` for a
potential).
Units are written as NEURON and NEST write them ("uF/cm2", "ohm cm", "S/cm2", "mV", "pA");
``magnitude`` translates them for the quantity's library.
"""

from __future__ import annotations

import re

import numpy as np

# NEURON's and NEST's unit names that the quantity libraries spell otherwise
_NAMES = {"1": "dimensionless", "uS": "microsiemens", "GOhm": "gigaohm", "MOhm": "megaohm",
          "ohm cm": "ohm*cm"}


def is_number(value) -> bool:
    """Whether ``value`` is one real number: a Python or numpy number, or a 0-d array (a
    JAX scalar included); not text, a boolean or a complex number."""
    if isinstance(value, (str, bytes, bool, np.bool_)) or np.ndim(value) != 0:
        return False
    try:
        return np.asarray(value).dtype.kind in "iuf"
    except Exception:  # a traced value: its dtype says
        return getattr(getattr(value, "dtype", None), "kind", "") in "iuf"


DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z")


def decimal(text: str) -> float:
    """A number written as C's strtod reads it (digits 0-9, a point, an exponent; or inf,
    nan), as in SWC files and command lines; a ValueError for anything else, including
    what Python's float() also takes ("1_0", other scripts' digits)."""
    t = text.strip()
    if not (DECIMAL.match(t) or t.lower().lstrip("+-") in ("inf", "infinity", "nan")):
        raise ValueError(f"not a decimal number: {text!r}")
    return float(t)


def real_array(value, name: str, flag: bool = False) -> np.ndarray:
    """``value`` (plain numbers, a list or an array of them) as a float array; a ValueError
    naming ``name`` for text, booleans or complex numbers, which numpy would turn into
    other numbers ("2.5" -> 2.5, True -> 1.0). With ``flag`` (a switch, 0 or 1, as NEST's
    boolean parameters) booleans are taken as 0 and 1 (False, True)."""
    try:
        arr = np.asarray(value)
    except ValueError:  # a ragged list
        arr = np.asarray(None)
    flat = value if isinstance(value, (list, tuple)) else ()
    if flag and arr.dtype.kind in "biuf":
        return arr.astype(float)
    if arr.dtype.kind not in "iuf" or any(isinstance(v, (bool, np.bool_)) for v in flat):
        raise ValueError(f"{name} must be real numbers, got {value!r}")
    refuse_narrow(name, arr)
    return arr.astype(float)


def refuse_narrow(name: str, value, unit: str = "") -> None:
    """A ValueError where ``value`` holds floats narrower than the run's (float32 numbers
    while jax_enable_x64 is on), which the run would silently take as they are:
    np.float32(0.025) is 0.025000000372529. One such number that is the number it prints
    (np.float32(0.5)) is taken; an array of them is refused, as simulate refuses float32
    params."""
    import jax.numpy as jnp

    arr = np.asarray(value)
    run = np.dtype(jnp.result_type(float))
    if arr.dtype.kind != "f" or arr.dtype.itemsize >= run.itemsize:
        return
    unit = f" {unit}" if unit else ""
    if arr.ndim == 0:
        if not np.isfinite(arr):
            return  # refused as non-finite where it matters
        meant = float(np.format_float_positional(arr[()], unique=True))
        if meant != float(arr):
            raise ValueError(f"{name} is a {arr.dtype} number, {float(arr)!r}{unit} (the "
                             f"{arr.dtype} nearest {meant:g}), but the run computes in {run}: "
                             "give it as a Python float")
        return
    raise ValueError(f"{name} is an array of {arr.dtype} numbers, but the run computes in "
                     f"{run}: they would be taken as they are ({arr.dtype}'s nearest to 0.1 "
                     f"is {float(np.asarray(0.1, arr.dtype))!r}); give {run} numbers or "
                     f"Python floats (np.asarray(x, np.{run}) keeps the {arr.dtype} values)")


def is_quantity(value) -> bool:
    """Whether ``value`` carries a unit (duck-typed: pint, brainunit, astropy)."""
    return any(hasattr(value, a) for a in ("units", "unit", "dimensionality", "mantissa"))


def magnitude(value, unit: str, name: str):
    """``value`` as plain numbers in ``unit`` (a quantity is converted, as is each quantity
    of a list; a plain number is returned as it is). A ValueError when a quantity cannot
    be expressed in ``unit``, or where ``unit`` is "" (a plugin's parameter whose unit its
    mechanism does not declare)."""
    if isinstance(value, (list, tuple)) and any(is_quantity(x) for x in value):
        return [magnitude(x, unit, name) for x in value]
    if not is_quantity(value):
        return value
    if not unit:
        raise ValueError(f"{name} = {value!r}: its unit is not declared (the mechanism's "
                         "`units`), so a quantity cannot be converted; give a plain number")
    shown = unit
    unit = _NAMES.get(unit, unit)
    unit = re.sub(r"([A-Za-z])(\d+)", r"\1**\2", "1" + unit if unit[0] == "/" else unit)  # cm2: cm**2
    try:
        if hasattr(value, "to_decimal"):  # brainunit: its names of simple units only
            import brainunit as bu

            return _plain(value.to_decimal(getattr(bu, unit)))
        if hasattr(value, "to"):  # pint (.magnitude), astropy (.value)
            q = value.to(unit)
            return _plain(q.magnitude if hasattr(q, "magnitude") else q.value)
    except Exception as err:  # the library's own dimensionality error, named
        raise ValueError(f"{name} = {value} cannot be expressed in {shown} ({err}); give it "
                         f"in {shown}") from None
    raise ValueError(f"{name} = {value!r} has a unit dendrax cannot convert; give a plain number "
                     f"in {shown}")


def _plain(x):
    """A float for one number, else a float array."""
    x = np.asarray(x, float)
    return x.item() if x.ndim == 0 else x
