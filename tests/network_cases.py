"""The cells the network tests (tests/test_network_*.py) build networks of, and their
time step."""

from __future__ import annotations

import dendrax as dx


DT = 0.025


def hh_cell(nseg=(1, 2)):
    """HH ball-and-stick (soma 20 x 20 um, dendrite 150 x 2 um)."""
    cell = dx.Cell.ball_and_stick(nseg=list(nseg), Ra=100.0, cm=1.0, dend_length=150.0,
                                  dend_diam=2.0)
    cell.insert("hh")
    return cell


def one_compartment(g=1e-3, e=-65.0, diam=20.0, length=20.0):
    """A passive single compartment (lateral area pi diam length um2)."""
    cell = dx.Cell.from_sections([{"length": length, "diam": diam, "parent": -1,
                                   "region": "soma"}], Ra=100.0, cm=1.0)
    cell.insert("pas").set("pas.g", g).set("pas.e", e)
    return cell
