"""The ions NEURON knows by default (na, k, ca), their default concentrations and
reversal potentials, the physical constants and the Nernst equation as NEURON computes it."""

from __future__ import annotations

from dataclasses import dataclass

import jax.numpy as jnp


@dataclass(frozen=True)
class Ion:
    """An ion species: valence and NEURON's default reversal and concentrations."""

    name: str
    charge: int
    e: float  # mV, used while no pool changes the concentrations
    ci: float  # mM, inside
    co: float  # mM, outside


# NEURON's defaults (nrn/src/nrnoc: na_ion, k_ion, ca_ion)
IONS: dict[str, Ion] = {
    "na": Ion("na", 1, 50.0, 10.0, 140.0),
    "k": Ion("k", 1, -77.0, 54.4, 2.5),
    "ca": Ion("ca", 2, 132.4579341637009, 5e-5, 2.0),
}

FARADAY = 96485.33212331001  # C/mol (CODATA 2018, as NEURON 9)
GAS_CONSTANT = 8.31446261815324  # J/(K mol)


def nernst(ci, co, charge: int, celsius):
    """Reversal potential in mV of an ion with concentrations ci, co (mM).

    As NEURON's nrn_nernst: +1e6 mV when ci <= 0 and -1e6 mV when co <= 0 (a
    pool driven below zero), never NaN.
    """
    ktf = 1000.0 * GAS_CONSTANT * (celsius + 273.15) / FARADAY
    ok = (ci > 0) & (co > 0)
    e = ktf / charge * jnp.log(jnp.where(ok, co, 1.0) / jnp.where(ok, ci, 1.0))
    return jnp.where(ci <= 0, 1e6, jnp.where(co <= 0, -1e6, e))
