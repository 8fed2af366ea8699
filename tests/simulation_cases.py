"""What the simulation tests (tests/test_simulation_*.py, test_network_runs.py) share: an HH
ball-and-stick with an IClamp at the soma, recording v at the soma and near the dendrite's
end; counting the time loops compiled."""

from contextlib import contextmanager

import jax

import dendrax as dx


def hh_ball_and_stick(amp=0.3):
    cell = dx.Cell.ball_and_stick(nseg=[1, 5], Ra=100.0, cm=1.0, dend_length=150.0, dend_diam=2.0)
    cell.insert("hh")
    cell.iclamp(cell.soma(0.5), delay=1.0, dur=10.0, amp=amp)
    cell.record("v", cell.soma(0.5)).record("v", cell.section(1)(0.9))
    return cell


@contextmanager
def loop_compiles():
    """A list that gets an entry for each time loop (``dendrax.simulation``'s ``_advance``)
    compiled in the ``with`` block."""
    seen = []

    def listener(name, secs, **kwargs):
        if name == "/jax/core/compile/backend_compile_duration" and \
                kwargs.get("fun_name") == "jit(_advance)":
            seen.append(secs)

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        yield seen
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
