"""What a column simulation returns: ``Signals``, arrays over [time, ...] with a unit (or
"proxy") for each, JSON round trip included.

Time: ``t`` [time] = dt, 2 dt, ..., duration (ms), the end of every step; row k of every
signal belongs to t[k] (the state after step k; a spike in row k happened in that step,
at its end, as NEST's grid-based neurons spike).
"""

from __future__ import annotations

import json
from pathlib import Path

import jax
import numpy as np

SIGNALS = ("V_m", "spikes", "I_syn", "source", "LFP", "CSD", "EEG", "MEG", "EMM", "MUA")


@jax.tree_util.register_pytree_node_class
class Signals:
    """The recorded and derived signals of a column run (a pytree: jit and grad pass it).

    Attributes:
        t: [time] ms.
        V_m: [time, neurons] mV, the membrane potential (multicompartment: at the soma).
        spikes: [time, neurons] the neuron's spikes in the step: 1.0 or 0.0 (adex with
            t_ref = 0 can fire several times in one step: their number).
        I_syn: [time, neurons] the synaptic input current (docs/columns.md: per emitter).
        source: [time, neurons] the source proxy, -I_syn: the net current leaving the
            neuron at its synapses' return path, sign as a CSD (positive: a source).
        LFP: [time, electrodes] LFP-proxy, or (multicompartment, mode "LFP") the
            extracellular potential in uV.
        CSD: [time, interior electrodes] CSD-proxy, or the CSD in uA/mm^3.
        EEG: [time, sensors] EEG-proxy, or the four-sphere EEG in uV.
        MEG: [time, sensors] MEG-proxy, or the magnetic field (unit in ``units``).
        EMM: [time, columns] mean |source| per column (proxy).
        MUA: [time, column-layers] population rate (Hz) per layer (proxy).
        units: {name: unit or "proxy"} for every signal present (and "t": "ms").
        meta: the run: dt_ms, duration_ms, seed, family, preset, probe name, modes,
            and row labels ("rows": {signal: [...]}) of the electrode / sensor signals.

    Signals not probed are None.
    """

    def __init__(self, t, *, units, meta=None, **arrays):
        unknown = set(arrays) - set(SIGNALS)
        if unknown:
            raise ValueError(f"unknown signals {sorted(unknown)}; signals: {list(SIGNALS)}")
        self.t = t
        for name in SIGNALS:
            setattr(self, name, arrays.get(name))
        self.units = dict(units)
        self.meta = dict(meta or {})

    # --- pytree ---------------------------------------------------------------------------
    def tree_flatten(self):
        children = (self.t, *(getattr(self, n) for n in SIGNALS))
        aux = (tuple(sorted(self.units.items())), json.dumps(self.meta, sort_keys=True))
        return children, aux

    @classmethod
    def tree_unflatten(cls, aux, children):
        return cls(children[0], units=dict(aux[0]), meta=json.loads(aux[1]),
                   **dict(zip(SIGNALS, children[1:])))

    # --- access ---------------------------------------------------------------------------
    @property
    def present(self) -> tuple:
        """The names of the signals that were probed."""
        return tuple(n for n in SIGNALS if getattr(self, n) is not None)

    def __getitem__(self, name):
        if name not in SIGNALS and name != "t":
            raise KeyError(f"unknown signal {name!r}; signals: {list(SIGNALS)}")
        return getattr(self, name)

    def require(self, name: str, mode: str):
        """The signal, or a ValueError saying which probe mode produces it."""
        x = getattr(self, name)
        if x is None:
            raise ValueError(f"this run has no {name} signal: add the probe mode {mode!r} "
                             f"(probes: {self.meta.get('modes', [])})")
        return x

    def __repr__(self):
        shapes = ", ".join(f"{n}{tuple(np.shape(getattr(self, n)))} {self.units.get(n, '')}"
                           for n in self.present)
        return f"Signals({shapes})"

    # --- JSON ---------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """Plain data: "t", every signal (nested lists, or None), "units", "meta"."""
        out = {"t": np.asarray(self.t).tolist()}
        for n in SIGNALS:
            x = getattr(self, n)
            out[n] = None if x is None else np.asarray(x).tolist()
        out["units"] = dict(self.units)
        out["meta"] = dict(self.meta)
        return out

    def save_json(self, path) -> Path:
        """Write ``to_dict()`` as JSON; ``Signals.load_json`` reads it back."""
        path = Path(path)
        path.write_text(json.dumps(self.to_dict()))
        return path

    @classmethod
    def from_dict(cls, data: dict) -> "Signals":
        if not isinstance(data, dict):
            raise ValueError(f"not a Signals dict: got {type(data).__name__}")
        missing = {"t", "units"} - set(data)
        if missing:
            raise ValueError(f"not a Signals dict: missing {sorted(missing)}")
        if not isinstance(data["units"], dict) or not isinstance(data.get("meta", {}) or {}, dict):
            raise ValueError("not a Signals dict: units and meta must be objects (name -> value)")
        t = np.asarray(data["t"], float)
        if t.ndim != 1 or t.size < 1 or not np.all(np.isfinite(t)) or np.any(np.diff(t) <= 0):
            raise ValueError("not a Signals dict: t must be increasing, finite times (ms)")
        arrays = {}
        for n in SIGNALS:
            x = None if data.get(n) is None else np.asarray(data[n], float)
            if x is not None and (x.ndim != 2 or x.shape[0] != t.size):
                raise ValueError(f"not a Signals dict: {n} has shape {x.shape}; expected "
                                 f"[{t.size} times, rows]")
            arrays[n] = x
        return cls(t, units=data["units"], meta=data.get("meta"), **arrays)

    @classmethod
    def load_json(cls, path) -> "Signals":
        """Signals from a file written by ``save_json``."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ValueError(f"{path}: not a Signals JSON file ({err})") from None
        try:
            return cls.from_dict(data)
        except ValueError as err:
            raise ValueError(f"{path}: {err}") from None


def load_signals(path) -> Signals:
    """``Signals.load_json(path)``."""
    return Signals.load_json(path)
