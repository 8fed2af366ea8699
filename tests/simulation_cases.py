"""What the simulation tests (tests/test_simulation_*.py) share: an HH ball-and-stick with
an IClamp at the soma, recording v at the soma and near the dendrite's end."""

import dendrax as dx


def hh_ball_and_stick(amp=0.3):
    cell = dx.Cell.ball_and_stick(nseg=[1, 5], Ra=100.0, cm=1.0, dend_length=150.0, dend_diam=2.0)
    cell.insert("hh")
    cell.iclamp(cell.soma(0.5), delay=1.0, dur=10.0, amp=amp)
    cell.record("v", cell.soma(0.5)).record("v", cell.section(1)(0.9))
    return cell
