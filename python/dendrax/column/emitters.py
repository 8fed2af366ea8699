"""Emitters: the neuron models a column is made of, by family and preset.

An emitter says, for each cell type ("E", "I"), which model a neuron runs and with which
parameters. Families and their presets:

``izhikevich`` (NEST's ``izhikevich``: V and U in mV, time in ms, currents in NEST's "pA",
which enter dV/dt as mV/ms; weights are jumps of V in mV). The (a, b, c, d) sets are
Izhikevich's published tables: Izhikevich 2003 (IEEE Trans Neural Netw 14:1569, Fig. 2) for
the cortical classes and Izhikevich 2004 (IEEE Trans Neural Netw 15:1063, Fig. 1 and its
parameter file) for the firing features:

=======================  ======  =====  =====  =====  ===============================
preset                   a       b      c      d      source
=======================  ======  =====  =====  =====  ===============================
regular_spiking          0.02    0.2    -65    8      2003, RS
intrinsically_bursting   0.02    0.2    -55    4      2003, IB
chattering               0.02    0.2    -50    2      2003, CH
fast_spiking             0.1     0.2    -65    2      2003, FS
low_threshold            0.02    0.25   -65    2      2003, LTS
tonic_spiking            0.02    0.2    -65    6      2004, (A) tonic spiking
phasic_spiking           0.02    0.25   -65    6      2004, (B) phasic spiking
tonic_bursting           0.02    0.2    -50    2      2004, (C) tonic bursting
=======================  ======  =====  =====  =====  ===============================

``cortical_eig`` is the excitatory/inhibitory mix of Izhikevich's 2003 network: regular
spiking for "E", fast spiking for "I". Every other preset gives both types the same model
(the types then differ only in the sign of their outgoing weights). V starts at c - 0 = -65
mV (V_m = -65) and U at b V.

``lif``: NEST's ``iaf_psc_exp`` (current-based LIF, exponential synaptic currents; mV, ms,
pF, pA; weights pA). Presets: ``nest_default`` (NEST's defaults: C_m 250 pF, tau_m 10 ms,
E_L -70, V_th -55, V_reset -70 mV, t_ref 2 ms, tau_syn 2 ms) and ``brunel_potjans`` (the
values of Potjans & Diesmann 2014's microcircuit: tau_m 10 ms, C_m 250 pF, E_L -65,
V_th -50, V_reset -65 mV, t_ref 2 ms, tau_syn 0.5 ms).

``adex``: NEST's ``aeif_cond_exp`` (adaptive exponential IF, conductance-based; weights
nS). Presets: ``nest_default`` (NEST's defaults, which are Brette & Gerstner 2005's) and
``adapting`` (the same with stronger adaptation: a 8 nS, b 150 pA, tau_w 200 ms). Its
integrator is NEST's adaptive RKF45, which reverse-mode autodiff cannot differentiate:
``fit`` differentiates it in forward mode.

``multicompartment``: detailed cells, preset ``l5pc_like``: ``dendrax.models.l5pc_like``
(Hay et al. 2011 channels) on a synthetic layer-5 pyramidal morphology generated in code
(``pyramidal_morphology``): both types run it, "I" cells' synapses are inhibitory
(reversal -80 mV). Simulated at 34 degC from v_init -80 mV.

Every point model is run through a thin subclass (``recording_model``) that adds two
recordable states: ``I_syn`` (the synaptic input current of the step, see
``docs/columns.md``) and ``spike`` (the step's spike as 0/1, carrying the surrogate
gradient when the population has one).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import jax.numpy as jnp
from jax import lax

FAMILIES = ("izhikevich", "lif", "adex", "multicompartment")

IZHIKEVICH = {  # a (1/ms), b (1/ms), c (mV), d (mV)
    "regular_spiking": (0.02, 0.2, -65.0, 8.0),
    "intrinsically_bursting": (0.02, 0.2, -55.0, 4.0),
    "chattering": (0.02, 0.2, -50.0, 2.0),
    "fast_spiking": (0.1, 0.2, -65.0, 2.0),
    "low_threshold": (0.02, 0.25, -65.0, 2.0),
    "tonic_spiking": (0.02, 0.2, -65.0, 6.0),
    "phasic_spiking": (0.02, 0.25, -65.0, 6.0),
    "tonic_bursting": (0.02, 0.2, -50.0, 2.0),
}

LIF = {
    "nest_default": {},
    "brunel_potjans": {"C_m": 250.0, "tau_m": 10.0, "E_L": -65.0, "V_m": -65.0, "V_th": -50.0,
                       "V_reset": -65.0, "t_ref": 2.0, "tau_syn_ex": 0.5, "tau_syn_in": 0.5},
}
ADEX = {
    "nest_default": {},
    "adapting": {"a": 8.0, "b": 150.0, "tau_w": 200.0},
}
MULTICOMPARTMENT = ("l5pc_like",)

PRESETS = {
    "izhikevich": (*IZHIKEVICH, "cortical_eig"),
    "lif": tuple(LIF),
    "adex": tuple(ADEX),
    "multicompartment": MULTICOMPARTMENT,
}
DEFAULT_PRESET = {"izhikevich": "cortical_eig", "lif": "nest_default", "adex": "nest_default",
                  "multicompartment": "l5pc_like"}

# The unit of each emitter family's synaptic current I_syn and of its weights.
CURRENT_UNIT = {"izhikevich": "pA", "lif": "pA", "adex": "pA", "multicompartment": "nA"}
WEIGHT_UNIT = {"izhikevich": "mV", "lif": "pA", "adex": "nS", "multicompartment": "uS"}


def check_emitter(family: str, preset: str | None) -> tuple[str, str]:
    """(family, preset) checked, the preset defaulted; a ValueError naming the valid choices."""
    if family not in FAMILIES:
        raise ValueError(f"unknown emitter family {family!r}; choose one of {list(FAMILIES)}")
    preset = DEFAULT_PRESET[family] if preset is None else preset
    if preset not in PRESETS[family]:
        raise ValueError(f"unknown preset {preset!r} for the {family!r} emitter; choose one of "
                         f"{list(PRESETS[family])}")
    return family, preset


@dataclass(frozen=True)
class PointEmitter:
    """A point-neuron model and its parameters for one cell type.

    Attributes:
        model: the recording model class (``recording_model`` of a NEST model).
        params: NEST parameter name -> value (NEST's units).
    """

    model: type
    params: dict = field(default_factory=dict)


def point_emitter(family: str, preset: str, cell_type: str) -> PointEmitter:
    """The model and parameters of ``cell_type`` ("E" or "I") for a point family."""
    from ..point.models import AeifCondExp, IafPscExp, Izhikevich

    if family == "izhikevich":
        name = preset if preset != "cortical_eig" else (
            "regular_spiking" if cell_type == "E" else "fast_spiking")
        a, b, c, d = IZHIKEVICH[name]
        return PointEmitter(recording_model(Izhikevich),
                            {"a": a, "b": b, "c": c, "d": d, "V_m": -65.0, "U_m": b * -65.0})
    if family == "lif":
        return PointEmitter(recording_model(IafPscExp), dict(LIF[preset]))
    if family == "adex":
        return PointEmitter(recording_model(AeifCondExp), dict(ADEX[preset]))
    raise ValueError(f"{family!r} is not a point-neuron family")


def _synaptic_current(base_name, new, params, inputs, dt):
    """The step's synaptic input current per neuron (see ``recording_model``)."""
    if base_name == "izhikevich":  # the V jumps (mV) of this step's spikes, spread over it
        return (inputs["ex"] + inputs["in"]) / dt
    if base_name == "iaf_psc_exp":
        return new["I_syn_ex"] + new["I_syn_in"]
    if base_name == "aeif_cond_exp":  # nS mV = pA
        v = new["V_m"]
        return new["g_ex"] * (params["E_ex"] - v) + new["g_in"] * (params["E_in"] - v)
    raise ValueError(f"no synaptic current defined for {base_name}")


@lru_cache(maxsize=None)
def recording_model(base: type) -> type:
    """``base`` (a NEST point model class) with two more recordable states:

    * ``I_syn`` [n]: the synaptic input current of the step (positive: depolarising):
      izhikevich: (sum of this step's spike weights, mV) / dt -> mV/ms (NEST's "pA" of the
      izhikevich model); iaf_psc_exp: I_syn_ex + I_syn_in (pA) after the step;
      aeif_cond_exp: g_ex (E_ex - V) + g_in (E_in - V) (pA) after the step.
    * ``spike`` [n]: the neuron's spikes in the step (at its end): 1.0 or 0.0, or for a
      model that can fire several times in one step (aeif_cond_exp with t_ref = 0) how
      many; with a surrogate it carries the surrogate gradient (a differentiable spike
      count).

    The model's own dynamics are unchanged.
    """
    extra = ("I_syn", "spike")

    class Recording(base):
        states = (*base.states, *extra)
        record = (*base.record, *extra)
        units = {**base.units, "I_syn": "mV/ms" if base.name == "izhikevich" else "pA",
                 "spike": "1"}

        def initial(self, params, dt):
            s = super().initial(params, dt)
            z = jnp.zeros_like(s["V_m"])
            return {**s, "I_syn": z, "spike": z}

        def update(self, states, params, inputs, dt):
            own = {k: v for k, v in states.items() if k not in extra}
            new, spike = super().update(own, params, inputs, dt)
            i_syn = _synaptic_current(base.name, new, params, inputs, dt)
            count = spike.astype(new["V_m"].dtype)
            if base.spike_count is not None:  # each spike of the step, as the network sends
                count = count * jnp.maximum(lax.stop_gradient(new[base.spike_count]), 1.0)
            return {**new, "I_syn": i_syn * 1.0, "spike": count}, spike

    Recording.__name__ = Recording.__qualname__ = f"Column{base.__name__}"
    Recording.name = base.name
    return Recording


# --- the multicompartment emitter: a synthetic L5 pyramidal cell ---------------------------

def pyramidal_morphology(*, apical_length: float = 1000.0):
    """A synthetic layer-5 pyramidal morphology, oriented along +z (apical dendrite up),
    soma centred at the origin, generated in code (no data file):

    soma (cylinder 20 um long along z, 20 um diameter), an axon (600 um, 1 um, down -z),
    four basal dendrites (200 um, 1.2 um, pointing down and out at 45 degrees), an apical
    trunk (``apical_length`` - 250 um along +z, tapering 4 -> 2.5 um), one oblique branch
    from the trunk's middle (250 um, 1 um, at 60 degrees from the axis) and a tuft of two
    branches (250 um, 1.5 um) from the trunk's end. Regions soma, axon, dend, apic.
    Returns a ``dendrax.Morphology``.
    """
    import numpy as np

    from ..morphology import Morphology
    from ..morphology.morphology import Section

    trunk = apical_length - 250.0
    s2 = np.sqrt(0.5)
    secs = []

    def add(a, b, d0, d1, parent, region, parent_x=1.0):
        pts = np.array([[*a, d0], [*b, d1]], float)
        secs.append(Section(points=pts, parent=parent, parent_x=parent_x, region=region))
        return len(secs) - 1

    base, top = np.array([0.0, 0, -10]), np.array([0.0, 0, 10])
    soma = add(base, top, 20.0, 20.0, -1, "soma")
    add(base, base + [0, 0, -600], 1.0, 1.0, soma, "axon", 0.0)
    for k in range(4):
        ang = k * np.pi / 2
        d = np.array([np.cos(ang) * s2, np.sin(ang) * s2, -s2])
        add(base, base + 200 * d, 1.2, 1.2, soma, "dend", 0.0)
    half = top + [0, 0, trunk / 2]
    end = top + [0, 0, trunk]
    t = add(top, half, 4.0, 3.2, soma, "apic", 1.0)
    t2 = add(half, end, 3.2, 2.5, t, "apic")
    add(half, half + 250 * np.array([np.sin(np.pi / 3), 0, np.cos(np.pi / 3)]), 1.0, 1.0, t,
        "apic")
    for sx in (-1, 1):
        add(end, end + 250 * np.array([sx * 0.5, 0, np.sqrt(0.75)]), 1.5, 1.5, t2, "apic")
    return Morphology(sections=tuple(secs), name="pyramidal_l5_synthetic")


def detailed_cell(*, nseg="d_lambda"):
    """The ``l5pc_like`` emitter's cell: ``dendrax.models.l5pc_like`` on
    ``pyramidal_morphology()``."""
    from ..models import l5pc_like

    return l5pc_like(pyramidal_morphology(), nseg=nseg)
