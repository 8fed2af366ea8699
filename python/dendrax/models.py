"""Bundled models generated in code (no data files)."""

from __future__ import annotations

from .cell import Cell


def branched_neuron(*, nseg="d_lambda", amp: float = 0.8) -> Cell:
    """The default cell of ``dendrax simulate``: a small branched neuron that fires.

    A soma (20 x 20 um), an axon (400 x 1 um), two basal dendrites (150 x 1.5 um)
    and an apical trunk (250 x 3 um) forking into two tuft branches (200 x 1.5 um);
    HH in every section, Ra = 100 ohm cm, cm = 1 uF/cm2, segments by the d_lambda
    rule, a 0.8 nA step at the soma from 5 to 85 ms (a train of spikes), v
    recorded at the soma, the axon's end and the tuft.
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
    cell = Cell.from_sections(sections, nseg=nseg, Ra=100.0, cm=1.0)
    cell.insert("hh")
    cell.iclamp(cell.soma(0.5), delay=5.0, dur=80.0, amp=amp)
    cell.record("v", cell.soma(0.5))
    cell.record("v", cell.section(1)(1.0))
    cell.record("v", cell.section(5)(0.5))
    return cell
