"""Params in simulator units (``core_params``): what the time loop reads, pure JAX and
differentiable. Geometry becomes areas and axial conductances, per-node arrays are in
solver order, and a network's synapses, stimuli, extracellular tables and point
populations are gathered as the loop takes them.

Units: area um2, diam um, axial conductance uS, cm uF/cm2, v_init mV, celsius degC; the
rest as given in the params (``dendrax.lowering``).
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from . import morphology as morph_lib
from .compiled import functions as compiled_functions
from .extracellular.fields import device_tables
from .layout import Layout
from .model import Model


def core_params(layout: Layout, params: dict, *, v_init, celsius, model: Model | None = None
                ) -> dict:
    """Params in simulator units, per-node arrays in solver order: geometry becomes areas
    and axial conductances (differentiable in diam and L). With the ``model`` lowered with
    ``layout``, the geometry's compiled function is kept as long as its structure is
    (``dendrax.compiled``); without, for the life of the process."""
    cable = params["cable"]
    has_parent = np.concatenate([c.compartments.parent >= 0 for c in layout.cells]
                                + [np.zeros(0, bool)])[layout.order]
    geometry = _cable if model is None else compiled_functions(model, _jit_cable)
    area, diam, g_axial = geometry(layout.frustums, cable["diam"], cable["L"], layout.lengths,
                                   cable["Ra"], layout.order, layout.section_of, has_parent)
    synapses = params["synapses"]
    return {
        "area": area, "diam": diam, "g_axial": g_axial, "cm": cable["cm"],
        "v_init": jnp.asarray(v_init, area.dtype), "celsius": jnp.asarray(celsius, area.dtype),
        "ions": params["ions"],
        "channels": _channel_params(layout, params, model),
        "synapses": tuple(synapses[n] for n, g in layout.synapses.items() if not g.graded),
        "graded": tuple(synapses[n] for n, g in layout.synapses.items() if g.graded),
        "iclamp": params["stimuli"]["iclamp"], "vclamp": params["stimuli"]["vclamp"],
        "extracellular": device_tables(layout.fields, area.dtype),
        **_point_params(layout, params, area.dtype),
    }


def _channel_params(layout: Layout, params: dict, model: Model | None) -> tuple:
    """Each channel's parameters at the nodes it is computed at: those of the channels
    computed at segment nodes only (``dendrax.lowering.SEGMENTS_ONLY_JUNCTIONS``) taken there, by a compiled
    function as the geometry's (see ``core_params``)."""
    channels = tuple(params["channels"][n] for n in layout.channels)
    if not layout.segments_only:
        return channels
    take = _taken if model is None else compiled_functions(model, _jit_taken)
    return take(channels, tuple(layout.segments_only.get(n) for n in layout.channels))


def _taken_at(channels, nodes):
    return tuple(c if k is None else {p: a[k] for p, a in c.items()}
                 for c, k in zip(channels, nodes))


_taken = jax.jit(_taken_at)


def _jit_taken(model: Model):
    return jax.jit(partial(_taken_at))  # a function object of its own, as _jit_cable's


def _cable_geometry(frustums, point_diam, L, lengths, Ra, order, section_of, has_parent):
    """(area um2, diam um, axial conductance uS) per node in solver order, from the pt3d
    diameters, the sections' L (lengths: at scale 1) and Ra. Compiled as one function
    (eagerly, op by op, a new morphology compiled ~40 small ones, each kept by JAX for the
    process's life: ~50 MB and ~0.5 s per morphology)."""
    scale = L / lengths
    area, axial = morph_lib.geometry_jax(frustums, point_diam, scale)
    diam = morph_lib.mean_diameters(frustums, point_diam, scale)
    area, axial, diam = area[order], axial[order], diam[order]
    ri = 4e-2 / np.pi * Ra[section_of] * axial
    return area, diam, jnp.where(has_parent, 1.0 / jnp.where(has_parent, ri, 1.0), 0.0)


_cable = jax.jit(_cable_geometry)


def _jit_cable(model: Model):
    # a function object of its own: JAX keeps compiled code per function object, and frees
    # it with the object (one jax.jit of _cable_geometry keeps every shape's for good)
    return jax.jit(partial(_cable_geometry))


def _point_params(layout: Layout, params: dict, dtype) -> dict:
    """Point populations' params in loop order, static weights and delays, and the
    generators' settings over all point neurons (zero where a member is no such generator)."""
    from .point import PointNeuron

    pops = layout.populations
    if not pops:
        return {"points": (), "static": None, "generators": None, "key": None, "plastic": (),
                "static_csr": None}
    table = params["populations"]
    out = {"points": tuple(table[p.name] for p in pops if isinstance(p.model, PointNeuron)),
           "static": params["synapses"].get("static"), "key": jax.random.PRNGKey(0),
           "static_csr": layout.static_csr,
           "plastic": tuple(params["synapses"][name] for name in layout.plastic)}

    def over_all(key, fill):
        return jnp.concatenate([jnp.asarray(table[p.name][key], dtype) if key in table[p.name]
                                else jnp.full(p.size, fill, dtype) for p in pops])

    out["generators"] = {"rate": over_all("rate", 0.0), "amplitude": over_all("amplitude", 0.0),
                         "start": over_all("start", 0.0), "stop": over_all("stop", jnp.inf),
                         "mean": over_all("mean", 0.0), "std": over_all("std", 0.0),
                         "dt": over_all("dt", 1.0)}
    return out
