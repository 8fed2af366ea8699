"""Stimulation devices as NEST has them: generators of spikes and currents.

A generator is a population member without a membrane: it sends spikes or a current to
the neurons it is connected to, through connections with a weight and a delay, as NEST's
devices do (``poisson_generator``, ``spike_generator``, ``dc_generator``).
NEST's activity window: a generator is active in the step from t to t + dt when
start < t + dt <= stop (its ``start``, ``stop`` in ms; ``stop`` inf by default).
"""

from __future__ import annotations

from typing import ClassVar

from ..ranges import NONNEGATIVE, POSITIVE


class Generator:
    """A stimulation device. Attributes as ``PointNeuron``'s: name, params (NEST's names and
    units), units, ranges."""

    name: ClassVar[str]
    params: ClassVar[dict[str, float]] = {}
    units: ClassVar[dict[str, str]] = {}
    ranges: ClassVar[dict] = {}
    states: ClassVar[tuple[str, ...]] = ()
    recordables: ClassVar[tuple[str, ...]] = ()


class PoissonGenerator(Generator):
    """NEST's ``poisson_generator``: every target receives its own independent Poisson
    spike train of ``rate`` (Hz): in each active step, a Poisson number of spikes with
    mean rate * dt (the spike's multiplicity multiplies the weight)."""

    name = "poisson_generator"
    params = {"rate": 0.0, "start": 0.0, "stop": float("inf")}
    units = {"rate": "Hz", "start": "ms", "stop": "ms"}
    ranges = {"rate": NONNEGATIVE, "start": NONNEGATIVE, "stop": NONNEGATIVE}


class SpikeGenerator(Generator):
    """NEST's ``spike_generator``: spikes at given times (ms, on the dt grid: NEST rounds
    them to the nearest step) sent to every target; ``spike_times`` is one list per
    generator (a spike at t reaches a target's update that ends at t + delay)."""

    name = "spike_generator"
    params = {}


class DCGenerator(Generator):
    """NEST's ``dc_generator``: a constant current ``amplitude`` (pA) while active, into
    every target (times the connection's weight, as NEST scales current events)."""

    name = "dc_generator"
    params = {"amplitude": 0.0, "start": 0.0, "stop": float("inf")}
    units = {"amplitude": "pA", "start": "ms", "stop": "ms"}
    ranges = {"start": NONNEGATIVE, "stop": NONNEGATIVE}


class NoiseGenerator(Generator):
    """NEST's ``noise_generator``: a Gaussian current, ``mean`` + ``std`` N(0, 1) pA, drawn
    anew every ``dt`` ms (piecewise constant; a multiple of the step) and independently for
    every target, while active (NEST's window for current devices), times the connection's
    weight. (NEST's sinusoidal modulation of the std, std_mod, is not modelled.)"""

    name = "noise_generator"
    params = {"mean": 0.0, "std": 0.0, "dt": 1.0, "start": 0.0, "stop": float("inf")}
    units = {"mean": "pA", "std": "pA", "dt": "ms", "start": "ms", "stop": "ms"}
    ranges = {"std": NONNEGATIVE, "dt": POSITIVE, "start": NONNEGATIVE, "stop": NONNEGATIVE}


GENERATORS = {g.name: g for g in (PoissonGenerator, SpikeGenerator, DCGenerator, NoiseGenerator)}
