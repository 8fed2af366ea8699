"""The time course of a run's inputs, computed on the host: NEURON's step count and
half-step clock, waveforms played as ``Vector.play(continuous=1)``, the spike trains of
train-fed synapses and spike_generator spikes per step.

``drive(layout, n_steps, dt)`` gives what ``dendrax.simulation.schedule`` turns into the
time loop's per-step inputs. Times in ms, currents in nA.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from .point.propagators import TICS_PER_MS

HOC_FLOAT_EPSILON = 1e-11  # hoc's tolerance in comparisons (float_epsilon)


def step_count(t_stop: float, dt: float) -> int:
    """The number of steps of dt NEURON's run() takes to t_stop (ms): it steps while
    t < t_stop - dt/2 in hoc, whose comparisons allow float_epsilon (1e-11), so to the step
    nearest t_stop; on a half step to the earlier one, but where its clock (dt/2 added twice
    a step) has fallen behind by more than 1e-11 ms (from ~7000 steps of 0.025 ms on) to
    the later one, as NEURON's."""
    limit = t_stop - dt / 2 - HOC_FLOAT_EPSILON  # NEURON steps while its t is below this
    n = max(math.ceil(limit / dt), 0)  # with an exact clock
    # NEURON's clock is off by at most ~one rounding of t per half step: only a t_stop
    # that close to a half step needs it (it takes time in proportion to the run)
    drift = 4.0 * n * np.finfo(float).eps * max(abs(t_stop), dt)
    off_grid = abs(limit - round(limit / dt) * dt)  # from the nearest step, either side
    if n < 2 or n > MAX_CLOCKED_STEPS or off_grid > drift + dt * 1e-9:
        return n
    margin = int(drift / dt) + 2
    k = max(n - margin, 0)
    t = clock(k, dt)
    while t < limit:  # the steps NEURON takes from step k on
        t = (t + 0.5 * dt) + 0.5 * dt
        k += 1
    return k


# beyond this many steps the run is refused anyway (its step counter is int32)
MAX_CLOCKED_STEPS = 2**31 - 1


def clock(n_steps: int, dt: float) -> float:
    """NEURON's t after n_steps steps of dt (ms): dt/2 added 2 n_steps times, bit for bit
    (in blocks, so that a long run's clock takes no long array)."""
    t, half, left = 0.0, 0.5 * dt, 2 * n_steps
    while left:
        k = min(left, 1 << 20)
        t = float(np.cumsum(np.concatenate([[t], np.full(k, half)]))[-1])
        left -= k
    return t


def half_step_times(n_steps: int, dt: float) -> np.ndarray:
    """t_n + dt/2 of steps n = 0 .. n_steps - 1 [n_steps] (ms) as NEURON computes them: it
    advances t by dt/2 twice a step (t = 0, dt/2, dt/2 + dt/2, ...), so these are its
    times bit for bit (the time loop accumulates t the same way)."""
    half = np.cumsum(np.concatenate([[0.0], np.full(2 * n_steps, 0.5 * dt)]))
    return np.ascontiguousarray(half[1::2])


def play(tq: np.ndarray, t: np.ndarray, i: np.ndarray) -> np.ndarray:
    """A waveform (times t [k] ms, values i [k]) at times tq, as NEURON's
    ``Vector.play(..., continuous=1)``: linear between points (equal times make a step),
    i[0] before t[0], and from t[-1] on the last segment extended (the mean of the last two
    values where their times are equal, as NEURON's interpolation divides by nothing)."""
    out = np.interp(tq, t, i)
    if t.size > 1:
        past = tq >= t[-1]
        if t[-1] == t[-2]:
            out[past] = 0.5 * (i[-2] + i[-1])
        else:
            out[past] = i[-1] + (tq[past] - t[-1]) * ((i[-1] - i[-2]) / (t[-1] - t[-2]))
    return out


def at_start(t: np.ndarray, i: np.ndarray) -> float:
    """What NEURON's IClamp shows at t = 0 under a waveform (times t [k] ms, values i [k]):
    finitialize delivers the play events at t <= 0 one by one, each setting the value
    ``Vector.play(continuous=1)`` interpolates at its time with the search state the
    events before it left (so with points at equal times, not always the last one's
    value); 0, the amp before the play, where the waveform begins later."""
    n, upper, last, value = len(t), 0, 0, 0.0
    for k in range(n):
        tt = t[k]
        if tt > 0.0:
            break
        last = upper
        upper = min(upper + 1, n - 1)  # the next event
        if tt >= t[upper]:
            last = upper
            if last == 0:
                value = float(i[0])
                continue
        elif tt <= t[0]:
            value = float(i[0])
            last = 0
            continue
        else:
            while tt < t[last]:
                last -= 1
            while tt >= t[last]:
                last += 1
        t0, t1, x0, x1 = t[last - 1], t[last], i[last - 1], i[last]
        value = float(0.5 * (x0 + x1) if t0 == t1 else x0 + (tt - t0) / (t1 - t0) * (x1 - x0))
    return value


def drive(layout, n_steps: int, dt: float) -> dict:
    """Per-step inputs of a ``Layout`` (``dendrax.lowering``): waveform currents at t + dt/2 [n_steps, W]
    (and at t = 0, "waveform0" [W]), the delivery times NEURON compares event times with
    [n_steps] (only where spike trains feed synapses, else None: a long run keeps no
    per-step host array it does not need), the spike trains of train-fed synapses (padded
    with +inf) per event placement [r, k], and spike_generator spikes per step [n_steps, G]."""
    wave = []
    if layout.waveforms:
        t_mid = half_step_times(n_steps, dt)
        wave = [play(t_mid, t, i) for t, i in layout.waveforms]
        for (t, i), w in zip(layout.waveforms, wave):
            if n_steps and t_mid[-1] > t[-1] and w[-1] != i[-1]:
                warnings.warn(
                    f"a waveform ends at t = {t[-1]:g} ms, before the run does "
                    f"({n_steps * dt:g} ms): as NEURON's Vector.play(continuous=1), its last "
                    f"segment goes on ({w[-1]:.6g} nA at the end, not {i[-1]:g}); add a point "
                    "at the run's end to hold a value", stacklevel=3)
    t_deliver = None
    if any(len(g) for g in layout.trains):
        # NEURON delivers an event at the start of the step from t_n when t_e <= t_n + dt/2:
        # ties at half-step boundaries fall as NEURON's rounding makes them fall
        t_deliver = half_step_times(n_steps, dt)
    trains = []
    for group in layout.trains:
        k = max([len(t) for t in group] + [1])
        trains.append(np.stack([np.pad(t, (0, k - len(t)), constant_values=np.inf) for t in group])
                      if group else np.zeros((0, 1)))
    # spike_generator members: spikes per step. NEST takes times on the grid only (in its
    # tics: round(t * 1000) a multiple of round(dt * 1000)) and puts a spike at t on step t / dt
    members = [t for p in layout.populations for t in p.spike_times]
    generators = np.zeros((n_steps, len(members)))
    tics_per_step = round(dt * TICS_PER_MS)
    for k, times in enumerate(members):
        tics = np.floor(np.asarray(times, float) * TICS_PER_MS + 0.5)
        off = tics % tics_per_step != 0
        if np.any(off):
            raise ValueError(f"spike_generator member {k}: the spike time {times[off][0]:g} ms is "
                             f"not on the grid of dt = {dt:g} ms (NEST refuses it: 'not "
                             "representable in current resolution'); give multiples of dt")
        steps = (tics // tics_per_step).astype(int)
        np.add.at(generators, (steps[(steps >= 0) & (steps < n_steps)], k), 1.0)
    if np.any(generators > 1):  # the spike ring holds one spike per source and step
        step, k = np.argwhere(generators > 1)[0]
        raise ValueError(f"spike_generator member {k}: {int(generators[step, k])} spikes fall on "
                         f"one step (t = {step * dt:g} ms, dt = {dt:g} ms); dendrax sends at "
                         "most one spike per generator and step (NEST would send them with a "
                         "multiplicity): space the times by at least dt")
    return {"waveform": np.stack(wave, 1) if wave else np.zeros((n_steps, 0)),
            "waveform0": np.asarray([at_start(t, i) for t, i in layout.waveforms], float),
            "t_deliver": t_deliver, "trains": tuple(trains), "generators": generators}
