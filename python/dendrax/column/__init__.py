"""Cortical columns from a declarative configuration (docs/columns.md).

    import dendrax.column as dc
    cfg = (dc.configuration().runtime(seed=0, duration_ms=500.0, dt_ms=0.1)
           .column("A", ["L2/3", "L4", "L5", "L6"], 200).cell_types({"E": 0.8, "I": 0.2})
           .set_emitter("izhikevich", "cortical_eig").probes(["SPK", "Vm", "LFP-proxy"]))
    model = dc.construct(cfg)
    sig = model.simulate()                       # Signals: V_m, spikes, LFP, ... with units
    out = model.compute_readout(sig, [dc.readout_spec("rate", "spike_rate_hz")])

Modules, one idea each: ``config`` (the immutable, chainable Configuration), ``emitters``
(neuron models and presets), ``geometry`` (laminar positions, electrodes), ``construction``
(lowering into a dendrax Network, running), ``proxies`` (the proxies' linear maps),
``signals`` (Signals and JSON), ``readouts``, ``objectives``, ``fitting``, ``detailed``
(multicompartment columns with physical extracellular signals), ``plots`` and ``cli``.
"""

from .config import Configuration, configuration
from .construction import Model, SimulationSpec, construct, simulate, simulation
from .emitters import FAMILIES, PRESETS
from .fitting import FitResult, fit
from .objectives import Objective, objective
from .readouts import METRICS, ReadoutResult, ReadoutSpec, compute_readout, readout_spec
from .signals import Signals, load_signals

__all__ = ["Configuration", "FAMILIES", "FitResult", "METRICS", "Model", "Objective", "PRESETS",
           "ReadoutResult", "ReadoutSpec", "Signals", "SimulationSpec", "compute_readout",
           "configuration", "construct", "fit", "load_signals", "objective", "readout_spec",
           "simulate", "simulation"]
