"""An example dendrax plugin package: a channel, a synapse and a morphology reader."""

import jax.numpy as jnp
from dendrax.mechanisms import Channel, Synapse
from dendrax.morphology import Morphology, MorphologyError


class KdrDemo(Channel):
    """Delayed-rectifier K+ channel, i = gbar n^4 (v - ek), HH-style n kinetics."""

    name = "kdr_demo"
    params = {"gbar": 0.02}
    units = {"gbar": "S/cm2"}
    states = {"n": 0.0}
    ions = ("k",)

    def rates(self, v, params, env):
        x = v + 55.0
        small = jnp.abs(x) < 1e-6
        safe = jnp.where(small, 1.0, x)
        alpha = jnp.where(small, 0.1, 0.01 * safe / (1.0 - jnp.exp(-safe / 10.0)))
        beta = 0.125 * jnp.exp(-(v + 65.0) / 80.0)
        return {"n": (alpha / (alpha + beta), 1.0 / (alpha + beta))}

    def current(self, v, states, params, env):
        return {"k": params["gbar"] * states["n"] ** 4 * (v - env["ek"])}


class ExpSynDemo(Synapse):
    """Single-exponential conductance synapse: g jumps by the weight (uS), decays with tau."""

    name = "ExpSynDemo"
    params = {"tau": 2.0, "e": 0.0}
    units = {"tau": "ms", "e": "mV"}
    states = {"g": 0.0}

    def advance(self, v, states, params, env, dt):
        return {"g": states["g"] * jnp.exp(-dt / params["tau"])}

    def on_spike(self, states, params, weight):
        return {"g": states["g"] + weight}

    def current(self, v, states, params):
        return states["g"] * (v - params["e"])


def read_cyl(path) -> Morphology:
    """Read a .cyl file: lines `name parent length diam region` (parent '-' for the root)."""
    sections, index = [], {}
    with open(path) as f:
        for lineno, line in enumerate(f, 1):
            line = line.split("#")[0].strip()
            if not line:
                continue
            fields = line.split()
            if len(fields) != 5:
                raise MorphologyError(f"{path}:{lineno}: expected 5 fields, got {len(fields)}")
            name, parent, length, diam, region = fields
            if parent != "-" and parent not in index:
                raise MorphologyError(f"{path}:{lineno}: unknown parent {parent!r}")
            try:
                length, diam = float(length), float(diam)
            except ValueError:
                raise MorphologyError(f"{path}:{lineno}: length and diam must be numbers") from None
            index[name] = len(sections)
            sections.append({"length": length, "diam": diam, "region": region,
                             "parent": -1 if parent == "-" else index[parent], "parent_x": 1.0})
    if not sections:
        raise MorphologyError(f"{path}: no sections")
    return Morphology.from_sections(sections)
