"""Python names for NMODL names in generated code: never a Python keyword, never one the
mechanism API or the generated code uses itself."""

from __future__ import annotations

import keyword
import re

# what the generated code uses (variables, locals, arguments; its module's imports)
RESERVED = {"x", "l", "s", "f", "cons", "self", "jnp", "rt", "weight", "v", "states", "params",
            "env", "dt", "Channel", "IonPool", "Synapse"}

# the mechanism API's attributes and methods (``dendrax.mechanisms.base``) and those the
# generated class defines
TAKEN = {"name", "params", "units", "ranges", "states", "ions", "ion", "nonspecific", "carried",
         "newton_iterations", "current", "advance", "steady_state", "on_spike", "rates",
         "assigned", "solved", "alpha_beta", "unrecordable", "nmodl_source"}


def identifier(name: str) -> str:
    """A Python identifier for an NMODL name (keywords get a trailing underscore)."""
    out = re.sub(r"\W", "_", name)
    if not out or out[0].isdigit():
        out = "M_" + out
    return out + "_" if keyword.iskeyword(out) else out


def method(name: str) -> str:
    """The method name of a FUNCTION or PROCEDURE (avoiding the mechanism API's names)."""
    out = identifier(name)
    return out + "_" if out in TAKEN - {"rates"} or out.startswith("_") else out


def block(kind: str, name: str) -> str:
    """The method name of a DERIVATIVE or KINETIC block."""
    return f"_{kind.lower()}_{identifier(name)}"


def argument(name: str) -> str:
    """A Python parameter name for a FUNCTION/PROCEDURE argument, or the module-level name
    of a CONSTANT or UNITS factor: never one the generated code uses itself (its own
    locals start with "_")."""
    out = identifier(name)
    return out + "_" if out in RESERVED else out


def class_name(name: str) -> str:
    """The Python name of the generated class (never one the module's code uses: a SUFFIX
    ``rt`` would hide the runtime)."""
    out = identifier(name)
    return out + "_" if out in RESERVED else out
