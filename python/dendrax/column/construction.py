"""Lowering a column configuration into a ``dendrax.Network`` and running it.

``construct(cfg) -> Model``: the neurons (one point population per column and cell type,
named "<column>_<type>", neurons ordered by layer from the pia down; or detailed cells),
the recurrent connections drawn from the configuration's seed, the drive, the recordings
the probes need, the geometry and the proxies' linear maps (``basis_spec``).
``Model.simulate`` / ``simulate(model, ...)`` run it and return ``Signals``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import jax
import jax.numpy as jnp
import numpy as np

from . import geometry as geo
from .config import (CELL_TYPES, PAIRS, Configuration, check_duration, check_steps,
                     probability_too_high, whole)
from .emitters import point_emitter
from .proxies import apply, bases
from .signals import Signals

NEEDS_V = ("Vm", "LFP-proxy", "CSD-proxy")
NEEDS_SOURCE = ("source-proxy", "EEG-proxy", "MEG-proxy", "EMM")


@dataclass(frozen=True)
class SimulationSpec:
    """Run settings (``simulation(duration_ms, dt_ms, seed)``); None: the configuration's."""

    duration_ms: float | None = None
    dt_ms: float | None = None
    seed: int | None = None


def check_noise_dt(cfg, dt: float) -> None:
    """A ValueError unless the drive's noise step is a whole multiple of dt (ms)."""
    noise_dt = cfg.drive_values()["noise_dt_ms"]
    steps = noise_dt / dt
    if abs(steps - round(steps)) > 1e-9 or steps < 1 - 1e-9:
        raise ValueError(f"drive noise_dt_ms ({noise_dt}) must be a whole multiple of dt_ms "
                         f"({dt})")


def simulation(duration_ms: float | None = None, dt_ms: float | None = None,
               seed: int | None = None) -> SimulationSpec:
    """Run settings to pass to ``simulate(model, spec)`` / ``Model.simulate(spec)``: the
    duration (ms, > 0), step (ms) and seed of the noise (the network itself is drawn from
    the configuration's seed when constructed). None keeps the configuration's value."""
    if duration_ms is not None:
        check_duration(duration_ms)
    if dt_ms is not None:
        check_dt(dt_ms)
    if seed is not None:
        whole("seed", seed, high=2 ** 32)
    return SimulationSpec(duration_ms, dt_ms, seed)


def check_dt(dt_ms) -> float:
    """dt_ms as a float; a ValueError unless it is a finite number > 0 (ms)."""
    if isinstance(dt_ms, bool) or not isinstance(dt_ms, (int, float, np.number)) or not (
            np.isfinite(dt_ms) and dt_ms > 0):
        raise ValueError(f"dt_ms must be a finite number > 0 (ms), got {dt_ms!r}")
    return float(dt_ms)


def check_precision(cfg) -> None:
    """A ValueError where the configuration's dtype is "float64" and JAX's 64-bit mode is
    off (the run would be float32)."""
    if cfg.dtype == "float64" and not jax.config.jax_enable_x64:
        raise ValueError("the configuration's dtype is 'float64' but JAX's 64-bit mode is "
                         "off: call jax.config.update('jax_enable_x64', True) first, or "
                         "choose .runtime(dtype='float32')")


class Model:
    """A constructed column model.

    Attributes:
        cfg: the ``Configuration`` it was built from.
        geometry: ``dendrax.column.geometry.Geometry`` (laminar positions of cells and
            electrodes, sensors).
        basis_spec: {proxy name: ``BasisSpec``}, the linear maps behind the proxies.
        network: the ``dendrax.Network`` it runs.
        populations: the point populations' names, in neuron order (point emitters).
    """

    def __init__(self, cfg: Configuration, *, surrogate=None):
        cfg.validate()
        self.cfg = cfg
        self.geometry = geo.build(cfg)
        self.basis_spec = bases(self.geometry)
        self.surrogate = surrogate
        if cfg.family == "multicompartment":
            from .detailed import build_detailed

            self._detailed = build_detailed(self)
            self.network, self.populations = self._detailed.network, ()
        else:
            self._detailed = None
            self._build_points()

    # --- point-neuron columns ---------------------------------------------------------------
    def _build_points(self):
        import dendrax as dx

        cfg, g = self.cfg, self.geometry
        net = dx.Network()
        con, drive = cfg.connectivity_values(), cfg.drive_values()
        dt = cfg.dt_ms
        check_noise_dt(cfg, dt)
        rng = np.random.default_rng([cfg.seed, 11])
        pops, idx, labels = [], [], []  # populations; global neuron indices; static blocks
        for ci, c in enumerate(cfg.columns):
            for t in CELL_TYPES:
                mine = np.flatnonzero((g.column == ci) & (g.cell_type == t))
                if not mine.size:
                    continue
                em = point_emitter(cfg.family, cfg.preset, t)
                pop = net.population(em.model, int(mine.size), name=f"{c.name}_{t}",
                                     surrogate=self.surrogate, **em.params)
                pops.append((pop, t, ci))
                idx.append(mine)
        self.populations = tuple(p.name for p, _, _ in pops)
        # drive: one noise generator (and one Poisson generator) per population
        self._noise = {}
        for pop, t, _ in pops:
            noise = net.population("noise_generator", 1, name=f"{pop.name}_noise",
                                   mean=drive["mean"][t], std=drive["std"][t],
                                   dt=drive["noise_dt_ms"])
            net.connect(noise, pop, weight=1.0, delay=dt)
            labels.append(("drive", len(pop), 1.0))
            self._noise[pop.name] = (noise.name, t)
            if drive["rate_hz"][t] > 0 and drive["weight"][t] > 0:
                bg = net.population("poisson_generator", 1, name=f"{pop.name}_background",
                                    rate=drive["rate_hz"][t])
                net.connect(bg, pop, weight=drive["weight"][t], delay=dt)
                labels.append(("background", len(pop), 1.0))
        # recurrent connections
        layer_of = g.layer
        for a, (pre, t_pre, c_pre) in enumerate(pops):
            for b, (post, t_post, c_post) in enumerate(pops):
                pair = t_pre + t_post
                p = np.full((len(pre), len(post)), con[f"p_{pair}"])
                if c_pre != c_post:
                    p = p * con["inter_column"]
                else:
                    lp, lq = layer_of[idx[a]], layer_of[idx[b]]
                    factor = np.where(lp[:, None] == lq[None, :], 1.0, con["inter_layer"])
                    for key, f in con["layer_pairs"].items():
                        src, dst = (s.strip() for s in key.split("->"))
                        factor = np.where((lp[:, None] == src) & (lq[None, :] == dst), f, factor)
                    p = p * factor
                if np.any(p > 1.0):
                    raise ValueError(probability_too_high(pair, p.max(), within=c_pre == c_post,
                                                          between=c_pre != c_post))
                draw = rng.random(p.shape) < p
                if a == b and not con["autapses"]:
                    np.fill_diagonal(draw, False)
                i, j = np.nonzero(draw)
                if not i.size:
                    continue
                w = con[f"w_{pair}"]
                sign = -1.0 if t_pre == "I" else 1.0
                plastic = con["plasticity"] and pair == "EE"
                net.connect(pre[i], post[j], "stdp_synapse" if plastic else "static",
                            one_to_one=True, weight=sign * w, delay=con["delay_ms"])
                if not plastic:
                    labels.append((pair, int(i.size), sign))
        # recordings, in neuron order
        modes = self.cfg.probe.modes
        self._rows = {}
        rec = ["spike"]
        if any(m in modes for m in NEEDS_V):
            rec.append("V_m")
        if any(m in modes for m in NEEDS_SOURCE):
            rec.append("I_syn")
        order = np.concatenate(idx)
        inverse = np.empty_like(order)
        inverse[order] = np.arange(order.size)
        k = 0
        for name in rec:
            for pop, _, _ in pops:
                net.record(name, pop)
            self._rows[name] = k + inverse  # trace row of neuron j
            k += order.size
        self.network = net
        self._static = labels
        pair_index, signs = [], []
        for label, size, sign in labels:
            pair_index.append(np.full(size, PAIRS.index(label) if label in PAIRS else -1))
            signs.append(np.full(size, sign))
        self._pair_index = np.concatenate(pair_index) if pair_index else np.zeros(0, int)
        self._sign = np.concatenate(signs) if signs else np.zeros(0)

    # --- parameters (for fitting) -------------------------------------------------------------
    def tunable(self) -> dict:
        """The configuration's tunable values: {"weights": {"EE": w, ...} (emitter's weight
        unit), "drive": {"E": mean, "I": mean} (emitter's current unit)}."""
        con, drive = self.cfg.connectivity_values(), self.cfg.drive_values()
        return {"weights": {p: float(con[f"w_{p}"]) for p in PAIRS},
                "drive": {t: float(drive["mean"][t]) for t in CELL_TYPES}}

    def params_with(self, values: dict, base=None):
        """The network's params pytree with ``values`` (as ``tunable()``, possibly traced,
        possibly partial) written in: every static recurrent weight of a pair and every
        population's noise mean. Differentiable."""
        if self._detailed is not None:
            return self._detailed.params_with(values, base)
        p = self.network.params if base is None else base
        p = {**p, "synapses": dict(p["synapses"]), "populations": dict(p["populations"])}
        if "weights" in values and self._pair_index.size:
            w = jnp.stack([jnp.asarray(values["weights"].get(k, self.tunable()["weights"][k]))
                           for k in PAIRS])
            old = p["synapses"]["static"]
            idx = jnp.asarray(np.maximum(self._pair_index, 0))
            new = jnp.where(jnp.asarray(self._pair_index >= 0), jnp.asarray(self._sign) * w[idx],
                            old["weight"])
            p["synapses"]["static"] = {**old, "weight": new}
        if "drive" in values:
            for pop, (noise, t) in self._noise.items():
                if t in values["drive"]:
                    old = p["populations"][noise]
                    p["populations"][noise] = {**old, "mean": jnp.broadcast_to(
                        jnp.asarray(values["drive"][t], dtype=jnp.result_type(float)),
                        old["mean"].shape)}
        return p

    # --- running ----------------------------------------------------------------------------
    def run(self, params=None, duration_ms=None, dt_ms=None, seed=None) -> Signals:
        """``simulate`` with an explicit params pytree (traceable: jit and differentiate)."""
        cfg = self.cfg
        duration = cfg.duration_ms if duration_ms is None else check_duration(duration_ms)
        dt = cfg.dt_ms if dt_ms is None else check_dt(dt_ms)
        if seed is not None:
            whole("seed", seed, high=2 ** 32)
        check_steps(duration, dt)
        if dt != cfg.dt_ms:  # what construct checked, for this dt: the delay, the noise step
            replace(cfg, dt_ms=dt).validate()  # (the run's duration is checked above)
            if self._detailed is None:
                check_noise_dt(cfg, dt)
        seed = cfg.seed if seed is None else seed
        if self._detailed is not None:
            return self._detailed.run(params, duration, dt, seed)
        import dendrax as dx

        res = dx.simulate(self.network, duration, dt, params=params, key=seed)
        tr = res.traces
        get = lambda name: tr[self._rows[name], 1:].T if name in self._rows else None  # noqa: E731
        t = np.arange(1, tr.shape[1]) * dt
        return self.derive(t, spikes=get("spike"), V_m=get("V_m"), I_syn=get("I_syn"),
                           dt=dt, duration=duration, seed=seed)

    def derive(self, t, *, spikes, V_m, I_syn, dt, duration, seed, physical=None) -> Signals:
        """Signals of the probed modes from the recorded spikes, V_m and I_syn
        [time, neurons] (and, for detailed cells, the physical signals)."""
        modes, B, cfg = self.cfg.probe.modes, self.basis_spec, self.cfg
        physical = physical or {}
        out = {}
        units = {"t": "ms"}
        if "SPK" in modes:
            out["spikes"], units["spikes"] = spikes, "1"
        if "Vm" in modes:
            out["V_m"], units["V_m"] = V_m, "mV"
        if "MUA-proxy" in modes:
            out["MUA"] = apply(B["MUA-proxy"], spikes) * (1e3 / dt)
            units["MUA"] = "proxy"
        if I_syn is not None:
            source = -I_syn
            if "source-proxy" in modes:
                out["I_syn"], units["I_syn"] = I_syn, cfg.current_unit if cfg.family != \
                    "izhikevich" else "mV/ms"
                out["source"], units["source"] = source, "proxy"
            if "EEG-proxy" in modes or "MEG-proxy" in modes:
                dip = apply(B["dipole-proxy"], source)
                if "EEG-proxy" in modes:
                    out["EEG"], units["EEG"] = apply(B["EEG-proxy"], dip), "proxy"
                if "MEG-proxy" in modes:
                    out["MEG"], units["MEG"] = apply(B["MEG-proxy"], dip), "proxy"
            if "EMM" in modes:
                out["EMM"], units["EMM"] = apply(B["EMM"], jnp.abs(source)), "proxy"
        if "LFP-proxy" in modes or "CSD-proxy" in modes:
            lfp = apply(B["LFP-proxy"], V_m)
            if "LFP-proxy" in modes:
                out["LFP"], units["LFP"] = lfp, "proxy"
            if "CSD-proxy" in modes:
                out["CSD"], units["CSD"] = apply(B["CSD-proxy"], lfp), "proxy"
        for name, (x, unit) in physical.items():
            out[name], units[name] = x, unit
        rows = {"LFP": list(B["LFP-proxy"].rows), "CSD": list(B["CSD-proxy"].rows),
                "EEG": list(B["EEG-proxy"].rows), "MEG": list(B["MEG-proxy"].rows),
                "EMM": list(B["EMM"].rows), "MUA": list(B["MUA-proxy"].rows)}
        meta = {"dt_ms": float(dt), "duration_ms": float(duration), "seed": int(seed),
                "family": cfg.family, "preset": cfg.preset, "probe": cfg.probe.name,
                "modes": list(modes), "rows": {k: v for k, v in rows.items() if k in out},
                "dtype": cfg.dtype}
        return Signals(t, units=units, meta=meta, **out)

    def simulate(self, duration_ms=None, dt_ms=None, seed=None) -> Signals:
        """Run the model (``duration_ms`` may be a ``simulation(...)`` spec); returns
        ``Signals`` (numpy arrays). The configuration's dtype is used: "float64" needs JAX's
        64-bit mode on (``jax.config.update("jax_enable_x64", True)``)."""
        if isinstance(duration_ms, SimulationSpec):
            duration_ms, dt_ms, seed = duration_ms.duration_ms, duration_ms.dt_ms, \
                duration_ms.seed
        if duration_ms is not None:
            check_duration(duration_ms)
        check_precision(self.cfg)
        if self.cfg.dtype == "float32" and jax.config.jax_enable_x64:
            import warnings

            from ..stdrun import PrecisionWarning

            big = float(np.finfo(np.float32).max)
            with jax.enable_x64(False), warnings.catch_warnings():
                warnings.simplefilter("ignore", PrecisionWarning)  # float32 was asked for
                params = jax.tree_util.tree_map(
                    lambda a: np.clip(np.asarray(a), -big, big).astype(np.float32)
                    if np.asarray(a).dtype == np.float64 else a, self._base_params())
                sig = self.run(params, duration_ms, dt_ms, seed)
                return jax.tree_util.tree_map(lambda a: np.asarray(a), sig)
        sig = self.run(None, duration_ms, dt_ms, seed)
        return jax.tree_util.tree_map(lambda a: np.asarray(a), sig)

    def _base_params(self):
        return self._detailed.base_params() if self._detailed is not None else \
            self.network.params

    def compute_readout(self, signals: Signals, specs):
        """Readouts of ``signals`` (``dendrax.column.readouts``): a ``ReadoutResult``."""
        from .readouts import compute_readout

        return compute_readout(self, signals, specs)

    def __repr__(self):
        cols = ", ".join(f"{c.name}: {c.n}" for c in self.cfg.columns)
        return f"Model({self.cfg.family}/{self.cfg.preset}, columns {cols}; " \
               f"probes {list(self.cfg.probe.modes)})"


def construct(cfg: Configuration, *, surrogate=None) -> Model:
    """Build the model of a configuration (checks it as a whole first). ``surrogate``
    (e.g. "fast_sigmoid") gives the spikes a surrogate gradient (``fit`` sets it)."""
    if not isinstance(cfg, Configuration):
        raise TypeError(f"construct takes a dendrax.column.Configuration, got "
                        f"{type(cfg).__name__}")
    return Model(cfg, surrogate=surrogate)


def simulate(model: Model, duration_ms=None, dt_ms=None, seed=None) -> Signals:
    """``model.simulate(duration_ms, dt_ms, seed)``."""
    if not isinstance(model, Model):
        raise TypeError(f"simulate takes a Model from construct(cfg), got {type(model).__name__}")
    return model.simulate(duration_ms, dt_ms, seed)
