"""The channels and calcium pool of the Hay et al. 2011 layer-5 pyramidal cell model.

Hay E, Hill S, Schürmann F, Markram H, Segev I (2011) Models of neocortical
layer 5b pyramidal cells capturing a wide range of dendritic and perisomatic
active properties. PLoS Comput Biol 7(7): e1002107.

Each class below is written from the equations published for that current (the
paper cited in its docstring, with the fits and shifts Hay et al. give). Names
of mechanisms and parameters are the model's own (``NaTa_t.gNaTa_tbar``, ...),
so parameter sets published for the model apply unchanged.

Temperature: where the model corrects kinetics from the recording temperature
(21 degC) with q10 = 2.3, the factor is computed from ``celsius``; the published
model fixes it at 34 degC, so simulate at ``celsius=34`` to reproduce it.

Rate functions of the form x / (1 - exp(-x / k)) are evaluated with ``linexp``,
which is continued through its removable singularity at x = 0 smoothly (value
and derivatives finite), where the original code nudged v by 1e-4 mV.
"""

from __future__ import annotations

from typing import ClassVar

import jax
import jax.numpy as jnp

from .base import FARADAY, IONS, NONNEGATIVE, POSITIVE, Channel, IonPool, Range

Q10 = 2.3  # Hay et al. 2011: kinetics measured at 21 degC, corrected with q10 = 2.3
T_MEASURED = 21.0


def linexp(x, k):
    """x / (1 - exp(-x / k)): k at x = 0, smooth and differentiable everywhere.

    Rates like alpha = a (v - vh) / (1 - exp(-(v - vh) / k)) are ``a * linexp(v - vh, k)``.
    """
    u = x / k
    # near 0 its Taylor series (Bernoulli numbers; the next term, u^10 / 47900160, is below
    # 1e-17 for |u| < 0.1), whose derivatives do not cancel as the quotient's do (in float32
    # the quotient's slope was 19% off at |u| = 1e-3)
    small = jnp.abs(u) < 0.1
    s = jnp.where(small, u, 0.0)  # the branch not taken stays finite (float32: u^8 overflows)
    s2 = s * s
    series = 1.0 + s / 2.0 + s2 * (1.0 / 12.0 + s2 * (-1.0 / 720.0 + s2 * (
        1.0 / 30240.0 - s2 / 1209600.0)))
    a = jnp.where(small, 1.0, jnp.abs(u))
    # |u| / (1 - exp(-|u|)), times exp(u) where u < 0: no exponential of a positive number,
    # so value and gradients stay finite at any voltage, in float32 too
    far = a / -jnp.expm1(-a) * jnp.exp(jnp.minimum(u, 0.0))
    return k * jnp.where(small, series, far)


def sigmoid(x):
    """1 / (1 + exp(-x)), without overflow in value or gradient."""
    return jax.nn.sigmoid(x)


def qt(env):
    """The model's temperature factor 2.3^((celsius - 21) / 10)."""
    return Q10 ** ((env["celsius"] - T_MEASURED) / 10.0)


class Ohmic(Channel):
    """A channel of one ohmic current, i = g (v - e): a subclass gives ``conductance`` g
    (S/cm2; recordable under ``conductance_name``, the model's RANGE name, e.g.
    "NaTa_t.gNaTa_t", which a renamed subclass keeps, as a renamed .mod file does) and the
    ion it ``carries`` (reversing at e<ion>; "" for a nonspecific current, reversing at
    ``reversal``)."""

    carries: ClassVar[str]
    conductance_name: ClassVar[str]

    def conductance(self, states, params):
        raise NotImplementedError

    def reversal(self, params, env):
        return env[f"e{self.carries}"]

    def current(self, v, states, params, env):
        g = self.conductance(states, params)
        return {self.carries: g * (v - self.reversal(params, env))}

    def assigned(self, v, states, params, env):
        return {self.conductance_name: self.conductance(states, params)}


class NaTa_t(Ohmic):
    """Fast inactivating Na+ current (Colbert & Pan 2002, Nat Neurosci 5: 533), axonal/somatic.

    i = gNaTa_tbar m^3 h (v - ena).
    """

    name = "NaTa_t"
    params = {"gNaTa_tbar": 0.00001}
    units = {"gNaTa_tbar": "S/cm2", "gNaTa_t": "S/cm2"}
    ranges = {"gNaTa_tbar": NONNEGATIVE}
    states = {"m": 0.0, "h": 1.0}
    ions = ("na",)
    carries = "na"
    conductance_name = "gNaTa_t"
    vm, vh = -38.0, -66.0  # half-points of the m and h rate functions, mV

    def alpha_beta(self, v, params, env):
        q = qt(env)
        am = 0.182 * linexp(v - self.vm, 6.0)
        bm = 0.124 * linexp(self.vm - v, 6.0)
        ah = 0.015 * linexp(self.vh - v, 6.0)
        bh = 0.015 * linexp(v - self.vh, 6.0)
        return {"m": (am, bm, q), "h": (ah, bh, q)}

    def conductance(self, states, params):
        return params[f"g{self.name}bar"] * states["m"] ** 3 * states["h"]


class NaTs2_t(NaTa_t):
    """Fast inactivating Na+ current, somatic variant (Colbert & Pan 2002, shifted as in Hay 2011).

    i = gNaTs2_tbar m^3 h (v - ena).
    """

    name = "NaTs2_t"
    conductance_name = "gNaTs2_t"
    params = {"gNaTs2_tbar": 0.00001}
    units = {"gNaTs2_tbar": "S/cm2", "gNaTs2_t": "S/cm2"}
    ranges = {"gNaTs2_tbar": NONNEGATIVE}
    vm, vh = -32.0, -60.0


class Nap_Et2(Ohmic):
    """Persistent Na+ current (Magistretti & Alonso 1999, J Gen Physiol 114: 491).

    i = gNap_Et2bar m^3 h (v - ena).
    """

    name = "Nap_Et2"
    params = {"gNap_Et2bar": 0.00001}
    units = {"gNap_Et2bar": "S/cm2", "gNap_Et2": "S/cm2"}
    ranges = {"gNap_Et2bar": NONNEGATIVE}
    states = {"m": 0.0, "h": 1.0}
    ions = ("na",)
    carries = "na"
    conductance_name = "gNap_Et2"

    def rates(self, v, params, env):
        q = qt(env)
        m_inf = sigmoid((v + 52.6) / 4.6)
        am = 0.182 * linexp(v + 38.0, 6.0)
        bm = 0.124 * linexp(-(v + 38.0), 6.0)
        h_inf = sigmoid(-(v + 48.8) / 10.0)
        ah = 2.88e-6 * linexp(-(v + 17.0), 4.63)
        bh = 6.94e-6 * linexp(v + 64.4, 2.63)
        return {"m": (m_inf, 6.0 / ((am + bm) * q)), "h": (h_inf, 1.0 / ((ah + bh) * q))}

    def conductance(self, states, params):
        return params["gNap_Et2bar"] * states["m"] ** 3 * states["h"]


class K_Pst(Ohmic):
    """Slow inactivating (persistent) K+ current (Korngreen & Sakmann 2000, J Physiol 525: 621).

    Kinetics shifted by -10 mV for the junction potential, as in Hay 2011.
    i = gK_Pstbar m^2 h (v - ek).
    """

    name = "K_Pst"
    params = {"gK_Pstbar": 0.00001}
    units = {"gK_Pstbar": "S/cm2", "gK_Pst": "S/cm2"}
    ranges = {"gK_Pstbar": NONNEGATIVE}
    states = {"m": 0.0, "h": 1.0}
    ions = ("k",)
    carries = "k"
    conductance_name = "gK_Pst"

    def rates(self, v, params, env):
        q = qt(env)
        u = v + 10.0
        m_inf = sigmoid((u + 1.0) / 12.0)
        m_tau = jnp.where(u < -50.0, 1.25 + 175.03 * jnp.exp(0.026 * u),
                          1.25 + 13.0 * jnp.exp(-0.026 * u)) / q
        h_inf = sigmoid(-(u + 54.0) / 11.0)
        h_tau = (360.0 + (1010.0 + 24.0 * (u + 55.0)) * jnp.exp(-(((u + 75.0) / 48.0) ** 2))) / q
        return {"m": (m_inf, m_tau), "h": (h_inf, h_tau)}

    def conductance(self, states, params):
        return params["gK_Pstbar"] * states["m"] ** 2 * states["h"]


class K_Tst(Ohmic):
    """Fast inactivating (transient) K+ current (Korngreen & Sakmann 2000, J Physiol 525: 621).

    Kinetics shifted by -10 mV for the junction potential, as in Hay 2011.
    i = gK_Tstbar m^4 h (v - ek).
    """

    name = "K_Tst"
    params = {"gK_Tstbar": 0.00001}
    units = {"gK_Tstbar": "S/cm2", "gK_Tst": "S/cm2"}
    ranges = {"gK_Tstbar": NONNEGATIVE}
    states = {"m": 0.0, "h": 1.0}
    ions = ("k",)
    carries = "k"
    conductance_name = "gK_Tst"

    def rates(self, v, params, env):
        q = qt(env)
        u = v + 10.0
        m_inf = sigmoid(u / 19.0)
        m_tau = (0.34 + 0.92 * jnp.exp(-(((u + 71.0) / 59.0) ** 2))) / q
        h_inf = sigmoid(-(u + 66.0) / 10.0)
        h_tau = (8.0 + 49.0 * jnp.exp(-(((u + 73.0) / 23.0) ** 2))) / q
        return {"m": (m_inf, m_tau), "h": (h_inf, h_tau)}

    def conductance(self, states, params):
        return params["gK_Tstbar"] * states["m"] ** 4 * states["h"]


class SKv3_1(Ohmic):
    """Fast non-inactivating Kv3.1 K+ current (Rettig et al. 1992, EMBO J 11: 2473).

    No temperature correction in the model. i = gSKv3_1bar m (v - ek).
    """

    name = "SKv3_1"
    params = {"gSKv3_1bar": 0.00001}
    units = {"gSKv3_1bar": "S/cm2", "gSKv3_1": "S/cm2"}
    ranges = {"gSKv3_1bar": NONNEGATIVE}
    states = {"m": 0.0}
    ions = ("k",)
    carries = "k"
    conductance_name = "gSKv3_1"

    def rates(self, v, params, env):
        m_inf = sigmoid((v - 18.7) / 9.7)
        m_tau = 4.0 * sigmoid((v + 46.56) / 44.14)
        return {"m": (m_inf, m_tau)}

    def conductance(self, states, params):
        return params["gSKv3_1bar"] * states["m"]


class SK_E2(Ohmic):
    """Small-conductance Ca2+-activated K+ current (Köhler et al. 1996, Science 273: 1709).

    Gated by the inside calcium concentration cai only:
    z_inf = 1 / (1 + (0.43 uM / cai)^4.8), time constant zTau. i = gSK_E2bar z (v - ek).
    """

    name = "SK_E2"
    params = {"gSK_E2bar": 0.000001, "zTau": 1.0}
    units = {"gSK_E2bar": "S/cm2", "zTau": "ms", "gSK_E2": "S/cm2"}
    ranges = {"gSK_E2bar": NONNEGATIVE, "zTau": POSITIVE}
    states = {"z": 0.0}
    ions = ("ca", "k")
    carries = "k"
    conductance_name = "gSK_E2"
    kd = 0.00043  # mM
    hill = 4.8

    def rates(self, v, params, env):
        c = jnp.maximum(env["cai"], 0.0) ** self.hill
        z_inf = c / (c + self.kd ** self.hill) * jnp.ones_like(v)
        return {"z": (z_inf, params["zTau"] * jnp.ones_like(v))}

    def conductance(self, states, params):
        return params["gSK_E2bar"] * states["z"]


class Ca_HVA(Ohmic):
    """High-voltage-activated Ca2+ current (Reuveni et al. 1993, J Neurosci 13: 4609).

    No temperature correction in the model. i = gCa_HVAbar m^2 h (v - eca).
    """

    name = "Ca_HVA"
    params = {"gCa_HVAbar": 0.00001}
    units = {"gCa_HVAbar": "S/cm2", "gCa_HVA": "S/cm2"}
    ranges = {"gCa_HVAbar": NONNEGATIVE}
    states = {"m": 0.0, "h": 1.0}
    ions = ("ca",)
    carries = "ca"
    conductance_name = "gCa_HVA"

    def alpha_beta(self, v, params, env):
        am = 0.055 * linexp(v + 27.0, 3.8)
        bm = 0.94 * jnp.exp(-(v + 75.0) / 17.0)
        ah = 0.000457 * jnp.exp(-(v + 13.0) / 50.0)
        bh = 0.0065 * sigmoid((v + 15.0) / 28.0)
        return {"m": (am, bm, 1.0), "h": (ah, bh, 1.0)}

    def conductance(self, states, params):
        return params["gCa_HVAbar"] * states["m"] ** 2 * states["h"]


class Ca_LVAst(Ohmic):
    """Low-voltage-activated (T-type) Ca2+ current (Avery & Johnston 1996, J Neurosci 16: 5567;
    Randall & Tsien 1997, Neuropharmacology 36: 879), shifted by -10 mV as in Hay 2011.

    i = gCa_LVAstbar m^2 h (v - eca).
    """

    name = "Ca_LVAst"
    params = {"gCa_LVAstbar": 0.00001}
    units = {"gCa_LVAstbar": "S/cm2", "gCa_LVAst": "S/cm2"}
    ranges = {"gCa_LVAstbar": NONNEGATIVE}
    states = {"m": 0.0, "h": 1.0}
    ions = ("ca",)
    carries = "ca"
    conductance_name = "gCa_LVAst"

    def rates(self, v, params, env):
        q = qt(env)
        u = v + 10.0
        m_inf = sigmoid((u + 30.0) / 6.0)
        m_tau = (5.0 + 20.0 * sigmoid(-(u + 25.0) / 5.0)) / q
        h_inf = sigmoid(-(u + 80.0) / 6.4)
        h_tau = (20.0 + 50.0 * sigmoid(-(u + 40.0) / 7.0)) / q
        return {"m": (m_inf, m_tau), "h": (h_inf, h_tau)}

    def conductance(self, states, params):
        return params["gCa_LVAstbar"] * states["m"] ** 2 * states["h"]


class Im(Ohmic):
    """Muscarinic (M-type) K+ current (Adams et al. 1982, J Physiol 330: 537).

    i = gImbar m (v - ek).
    """

    name = "Im"
    params = {"gImbar": 0.00001}
    units = {"gImbar": "S/cm2", "gIm": "S/cm2"}
    ranges = {"gImbar": NONNEGATIVE}
    states = {"m": 0.0}
    ions = ("k",)
    carries = "k"
    conductance_name = "gIm"

    def alpha_beta(self, v, params, env):
        am = 3.3e-3 * jnp.exp(0.1 * (v + 35.0))
        bm = 3.3e-3 * jnp.exp(-0.1 * (v + 35.0))
        return {"m": (am, bm, qt(env))}

    def conductance(self, states, params):
        return params["gImbar"] * states["m"]


class Ih(Ohmic):
    """Hyperpolarization-activated cation current (Kole, Hallermann & Stuart 2006, J Neurosci 26: 1677).

    Nonspecific, reversing at ehcn. No temperature correction in the model.
    i = gIhbar m (v - ehcn).
    """

    name = "Ih"
    nonspecific = "ihcn"
    params = {"gIhbar": 0.00001, "ehcn": -45.0}
    units = {"gIhbar": "S/cm2", "ehcn": "mV", "gIh": "S/cm2"}
    ranges = {"gIhbar": NONNEGATIVE}
    states = {"m": 0.0}
    ions = ()
    carries = ""
    conductance_name = "gIh"

    def alpha_beta(self, v, params, env):
        am = 0.00643 * linexp(-(v + 154.9), 11.9)
        bm = 0.193 * jnp.exp(v / 33.1)
        return {"m": (am, bm, 1.0)}

    def conductance(self, states, params):
        return params["gIhbar"] * states["m"]

    def reversal(self, params, env):
        return params["ehcn"]


class CaDynamics_E2(IonPool):
    """Submembrane calcium pool: influx into a shell, first-order decay to a floor.

    d cai / dt = -10000 gamma ica / (2 F depth) - (cai - minCai) / decay
    (ica in mA/cm2, depth in um, cai in mM; gamma the fraction of free calcium).
    Integrated exactly for ica held over the step (NEURON's cnexp).
    """

    name = "CaDynamics_E2"
    ion = "ca"
    ions = ("ca",)
    params = {"gamma": 0.05, "decay": 80.0, "depth": 0.1, "minCai": 1e-4}
    units = {"gamma": "1", "decay": "ms", "depth": "um", "minCai": "mM"}
    ranges = {"gamma": Range(0.0, 1.0), "decay": POSITIVE, "depth": POSITIVE, "minCai": NONNEGATIVE}
    states = {"cai": IONS["ca"].ci}

    def advance(self, v, states, params, env, dt):
        influx = -10000.0 * params["gamma"] * env["ica"] / (2.0 * FARADAY * params["depth"])
        cai_inf = params["minCai"] + influx * params["decay"]
        return {"cai": cai_inf + (states["cai"] - cai_inf) * jnp.exp(-dt / params["decay"])}
