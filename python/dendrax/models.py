"""Bundled models generated in code (no data files)."""

from __future__ import annotations

import numpy as np

from .cell import Cell


def branched_neuron(*, nseg="d_lambda", amp: float = 0.8, record: bool = True,
                    Ra: float = 100.0, cm: float = 1.0) -> Cell:
    """The default cell of ``dendrax simulate``: a small branched neuron that fires.

    A soma (20 x 20 um), an axon (400 x 1 um), two basal dendrites (150 x 1.5 um)
    and an apical trunk (250 x 3 um) forking into two tuft branches (200 x 1.5 um);
    HH in every section, Ra = 100 ohm cm, cm = 1 uF/cm2 (by default), segments by the
    d_lambda rule (at that Ra and cm), a 0.8 nA step at the soma from 5 to 85 ms (a
    train of spikes), and (with ``record``) v recorded at the soma, the axon's end and
    the tuft.
    """
    sections = [
        {"length": 20.0, "diam": 20.0, "parent": -1, "region": "soma"},
        {"length": 400.0, "diam": 1.0, "parent": 0, "parent_x": 0.0, "region": "axon"},
        {"length": 150.0, "diam": 1.5, "parent": 0, "parent_x": 0.0, "region": "dend"},
        {"length": 150.0, "diam": 1.5, "parent": 0, "parent_x": 0.0, "region": "dend"},
        {"length": 250.0, "diam": 3.0, "parent": 0, "parent_x": 1.0, "region": "apic"},
        {"length": 200.0, "diam": 1.5, "parent": 4, "parent_x": 1.0, "region": "apic"},
        {"length": 200.0, "diam": 1.5, "parent": 4, "parent_x": 1.0, "region": "apic"},
    ]
    cell = Cell.from_sections(sections, nseg=nseg, Ra=Ra, cm=cm)
    cell.insert("hh")
    cell.iclamp(cell.soma(0.5), delay=5.0, dur=80.0, amp=amp)
    if record:
        cell.record("v", cell.soma(0.5))
        cell.record("v", cell.section(1)(1.0))
        cell.record("v", cell.section(5)(0.5))
    return cell


# Hay et al. (2011) layer-5 pyramidal cell densities by region (S/cm2 unless noted),
# after the published model's biophysics; "apic" conductances marked as functions of
# the normalised / absolute path distance from the soma are filled in by l5pc_like.
HAY_DENSITIES = {
    "all": {"pas.e": -90.0, "ek": -85.0, "ena": 50.0},
    "soma": {"pas.g": 0.0000338, "Ih.gIhbar": 0.0002, "CaDynamics_E2.decay": 460.0,
             "CaDynamics_E2.gamma": 0.000501, "Ca_LVAst.gCa_LVAstbar": 0.00343,
             "Ca_HVA.gCa_HVAbar": 0.000992, "SKv3_1.gSKv3_1bar": 0.693,
             "SK_E2.gSK_E2bar": 0.0441, "K_Tst.gK_Tstbar": 0.0812,
             "K_Pst.gK_Pstbar": 0.00223, "Nap_Et2.gNap_Et2bar": 0.00172,
             "NaTs2_t.gNaTs2_tbar": 0.983},
    "axon": {"pas.g": 0.0000325, "Ih.gIhbar": 0.0001, "CaDynamics_E2.decay": 277.300774,
             "CaDynamics_E2.gamma": 0.000525, "Ca_LVAst.gCa_LVAstbar": 0.000812,
             "Ca_HVA.gCa_HVAbar": 0.000222, "SKv3_1.gSKv3_1bar": 0.473,
             "SK_E2.gSK_E2bar": 0.0012, "K_Tst.gK_Tstbar": 0.0812,
             "K_Pst.gK_Pstbar": 0.973, "Nap_Et2.gNap_Et2bar": 0.00689,
             "NaTa_t.gNaTa_tbar": 3.137},
    "dend": {"cm": 2.0, "pas.g": 0.0000467, "Ih.gIhbar": 0.0002},
    "apic": {"cm": 2.0, "pas.g": 0.0000589, "CaDynamics_E2.decay": 122.0,
             "CaDynamics_E2.gamma": 0.000509, "SK_E2.gSK_E2bar": 0.0012,
             "SKv3_1.gSKv3_1bar": 0.000261, "NaTs2_t.gNaTs2_tbar": 0.0213,
             "Im.gImbar": 0.0000675},
}
HAY_CHANNELS = {
    "soma": ["Ca_LVAst", "Ca_HVA", "SKv3_1", "SK_E2", "K_Tst", "K_Pst", "Nap_Et2", "NaTs2_t",
             "CaDynamics_E2", "Ih"],
    "axon": ["Ca_LVAst", "Ca_HVA", "SKv3_1", "SK_E2", "K_Tst", "K_Pst", "Nap_Et2", "NaTa_t",
             "CaDynamics_E2", "Ih"],
    "dend": ["Ih"],
    "apic": ["Ih", "SK_E2", "Ca_LVAst", "Ca_HVA", "SKv3_1", "NaTs2_t", "Im", "CaDynamics_E2"],
}
HOT_ZONE = (685.0, 885.0)  # um from the soma: Ca channels 100x (LVA) and 10x (HVA) denser


def hay_apical_profile(distance, max_distance):
    """Distance-dependent apical densities (S/cm2) of the Hay model: Ih grows
    exponentially with normalised distance; Ca_LVAst and Ca_HVA are high in the hot zone."""
    distance = np.asarray(distance, float)
    hot = (distance > HOT_ZONE[0]) & (distance < HOT_ZONE[1])
    return {
        "Ih.gIhbar": 0.0002 * (-0.8696 + 2.0870 * np.exp(3.6161 * distance / max_distance)),
        "Ca_LVAst.gCa_LVAstbar": 0.0187 * np.where(hot, 1.0, 0.01),
        "Ca_HVA.gCa_HVAbar": 0.000555 * np.where(hot, 1.0, 0.1),
    }


def l5pc_like(morphology, *, nseg="d_lambda") -> Cell:
    """The Hay et al. 2011 channel set and densities by region on any morphology.

    Ra = 100 ohm cm, cm = 1 (2 in dendrites), pas everywhere (e_pas -90 mV),
    ek = -85, ena = 50 mV; Ih and the apical Ca hot zone (685-885 um) depend on
    the path distance from the soma. Simulate at celsius = 34 and v_init = -80.
    Regions missing from the morphology are skipped.
    """
    cell = Cell(morphology, nseg=nseg, Ra=100.0, cm=1.0)
    regions = set(cell.regions())
    cell.insert("pas")
    for region, channels in HAY_CHANNELS.items():
        if region in regions:
            for name in channels:
                cell.insert(name, where=region)
    for name, value in HAY_DENSITIES["all"].items():
        cell.set(name, value)
    for region in ("soma", "axon", "dend", "apic"):
        if region in regions:
            for name, value in HAY_DENSITIES[region].items():
                cell.set(name, value, where=region)
    if "apic" in regions:
        distance = cell.distance()
        apical = cell.nodes("apic")
        for name, values in hay_apical_profile(distance[apical], distance[apical].max()).items():
            cell.set(name, values, where="apic")  # one value per apical node, in nodes() order
    return cell
