"""A cortical column's declarative configuration: immutable and chainable.

``configuration()`` (or ``Configuration()``) starts from defaults; every method returns a
new ``Configuration`` and leaves the old one unchanged, so configurations can be shared
and varied::

    cfg = (configuration().runtime(seed=1, duration_ms=500.0, dt_ms=0.1)
           .column("A", ["L2/3", "L4", "L5", "L6"], 200)
           .cell_types({"E": 0.8, "I": 0.2})
           .connectivity(p_EE=0.1, w_EE=1.0)
           .set_emitter("izhikevich", "cortical_eig")
           .probes(["SPK", "Vm", "LFP-proxy"]))

Every argument is checked when it is given; a bad one raises a ``ValueError`` naming it
and the valid choices. docs/columns.md documents every keyword.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Mapping

from ..quantities import is_number
from .emitters import CURRENT_UNIT, WEIGHT_UNIT, check_emitter

CELL_TYPES = ("E", "I")
PAIRS = ("EE", "EI", "IE", "II")  # presynaptic type, then postsynaptic type
DTYPES = ("float64", "float32")

PROXY_MODES = ("SPK", "Vm", "MUA-proxy", "source-proxy", "LFP-proxy", "CSD-proxy", "EEG-proxy",
               "MEG-proxy", "EMM")
PHYSICAL_MODES = ("LFP", "CSD", "EEG", "MEG")
MODES = PROXY_MODES + PHYSICAL_MODES

# connectivity defaults per emitter family: probability, weights (family's weight unit)
CONNECTIVITY_DEFAULTS = {
    "izhikevich": {"w_EE": 1.0, "w_EI": 1.0, "w_IE": 2.0, "w_II": 2.0},
    "lif": {"w_EE": 87.8, "w_EI": 87.8, "w_IE": 351.2, "w_II": 351.2},
    "adex": {"w_EE": 1.0, "w_EI": 1.0, "w_IE": 4.0, "w_II": 4.0},
    "multicompartment": {"w_EE": 0.002, "w_EI": 0.002, "w_IE": 0.004, "w_II": 0.004},
}
CONNECTIVITY_KEYS = ("p", "p_EE", "p_EI", "p_IE", "p_II", "w_EE", "w_EI", "w_IE", "w_II",
                     "delay_ms", "inter_layer", "layer_pairs", "inter_column", "plasticity",
                     "autapses")
# drive defaults per family: noise mean and std per type (family's current unit), Poisson
# background rate (Hz) and weight (family's weight unit)
DRIVE_DEFAULTS = {
    "izhikevich": {"mean": {"E": 3.0, "I": 2.0}, "std": {"E": 5.0, "I": 2.0}},
    "lif": {"mean": {"E": 360.0, "I": 360.0}, "std": {"E": 100.0, "I": 100.0}},
    "adex": {"mean": {"E": 560.0, "I": 560.0}, "std": {"E": 150.0, "I": 150.0}},
    "multicompartment": {"mean": {"E": 0.0, "I": 0.0}, "std": {"E": 0.0, "I": 0.0},
                         "rate_hz": 400.0, "weight": 0.0015},
}
DRIVE_KEYS = ("mean", "std", "noise_dt_ms", "rate_hz", "weight")


def _real(name, value, what="a number") -> float:
    """``value`` as a float where it is one real number (``quantities.is_number``): not a
    bool, nor a string that reads as one (TOML's "0.5" is a string: it was taken as 0.5)."""
    if not is_number(value):
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return float(value)


def _number(name, value, *, low=-math.inf, high=math.inf, low_open=False):
    value = _real(name, value)
    if not math.isfinite(value) or value < low or value > high or (low_open and value == low):
        rng = f"{'(' if low_open else '['}{low}, {high}]"
        raise ValueError(f"{name} must lie in {rng}, got {value!r}")
    return value


def whole(name, value, *, low=0, high=None, what="") -> int:
    """``value`` as an int: a whole number (Python's or numpy's, not bool) in [low, high);
    a ValueError naming ``name`` and the range otherwise."""
    import numbers

    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low or (
            high is not None and value >= high):
        rng = f">= {low}" if high is None else f"in [{low}, {high})"
        raise ValueError(f"{name} must be an integer {rng}{what}, got {value!r}")
    return int(value)


def _per_type(name, value, *, low=-math.inf):
    """A scalar (both types) or a mapping {"E": x, "I": y} -> {"E": x, "I": y} floats."""
    if isinstance(value, Mapping):
        bad = set(value) - set(CELL_TYPES)
        if bad:
            raise ValueError(f"{name}: unknown cell types {sorted(bad)}; cell types: "
                             f"{list(CELL_TYPES)}")
        return {k: _number(f"{name}[{k!r}]", v, low=low) for k, v in value.items()}
    x = _number(name, value, low=low)
    return {k: x for k in CELL_TYPES}


@dataclass(frozen=True)
class ColumnSpec:
    """One column.

    Attributes:
        name: its name.
        layers: ((layer name, fraction of the column's neurons), ...) from the top (pia) down.
        n: number of neurons.
        depth_um: cortical thickness (um): layers are stacked with equal thickness from
            z = depth_um (pia) down to z = 0 (white matter); cells' apical axis is +z.
        radius_um: cells lie uniformly in a disc of this radius around the column's axis.
        center_um: (x, y) of the axis (um).
    """

    name: str
    layers: tuple
    n: int
    depth_um: float
    radius_um: float
    center_um: tuple

    @property
    def layer_names(self) -> tuple:
        return tuple(name for name, _ in self.layers)


@dataclass(frozen=True)
class ProbeSpec:
    """What a simulation records and computes (``Configuration.probes``)."""

    modes: tuple = ("SPK", "Vm")
    name: str = "probe"
    electrodes: int = 16


@dataclass(frozen=True)
class Configuration:
    """A column model's configuration (immutable; every method returns a new one).

    Attributes (read them; change them with the methods): seed, dtype, duration_ms, dt_ms,
    columns (``ColumnSpec`` tuple), types ({"E": fraction or count, ...}), family, preset,
    connectivity_kwargs, drive_kwargs, probe (``ProbeSpec``).
    """

    seed: int = 0
    dtype: str = "float64"
    duration_ms: float = 1000.0
    dt_ms: float = 0.1
    columns: tuple = ()
    types: Mapping = field(default_factory=lambda: MappingProxyType({"E": 0.8, "I": 0.2}))
    family: str = "izhikevich"
    preset: str = "cortical_eig"
    connectivity_kwargs: Mapping = field(default_factory=lambda: MappingProxyType({}))
    drive_kwargs: Mapping = field(default_factory=lambda: MappingProxyType({}))
    probe: ProbeSpec = ProbeSpec()

    # --- chainable setters ------------------------------------------------------------
    def runtime(self, seed: int | None = None, dtype: str | None = None,
                duration_ms: float | None = None, dt_ms: float | None = None) -> "Configuration":
        """Run settings: ``seed`` (int: connections, positions and noise), ``dtype``
        ("float64" or "float32"), ``duration_ms`` (> 0) and ``dt_ms`` (> 0, at most the
        duration). Arguments left None keep their values."""
        new = {}
        if seed is not None:
            new["seed"] = whole("seed", seed, high=2 ** 32)  # a run's key (dendrax.simulate)
        if dtype is not None:
            if dtype not in DTYPES:
                raise ValueError(f"unknown dtype {dtype!r}; choose one of {list(DTYPES)}")
            new["dtype"] = dtype
        if duration_ms is not None:
            new["duration_ms"] = check_duration(duration_ms)
        if dt_ms is not None:
            new["dt_ms"] = _number("dt_ms", dt_ms, low=0.0, low_open=True)
        cfg = replace(self, **new)
        check_steps(cfg.duration_ms, cfg.dt_ms)
        return cfg

    def column(self, name: str, layers, n: int, *, depth_um: float = 1500.0,
               radius_um: float = 150.0, center_um=None) -> "Configuration":
        """Add a column named ``name`` (several columns allowed) of ``n`` neurons in
        ``layers``: a list of layer names from the pia down (neurons split equally), or a
        mapping {layer: fraction of the neurons} (fractions summing to 1) or {layer: count}
        (counts summing to n). Optional: ``depth_um`` (cortical thickness), ``radius_um``,
        ``center_um`` (x, y) of its axis (default: 1000 um apart along x)."""
        if not isinstance(name, str) or not name or any(c in name for c in "[]. \t"):
            raise ValueError(f"a column's name must be a non-empty string without spaces, "
                             f"dots or brackets, got {name!r}")
        if any(c.name == name for c in self.columns):
            raise ValueError(f"a column named {name!r} exists already; columns: "
                             f"{[c.name for c in self.columns]}")
        n = whole("n", n, low=1, what=" (neurons)")
        if isinstance(layers, str):
            layers = [layers]
        if not isinstance(layers, (Mapping, list, tuple)):
            raise ValueError(f"layers must be a layer name, a list of them or a mapping "
                             f"{{layer: fraction or count}}, got {layers!r}")
        if isinstance(layers, Mapping):
            items = list(layers.items())
            if not items:
                raise ValueError("layers: give at least one layer")
            vals = [_number(f"layers[{k!r}]", v, low=0.0) for k, v in items]
            # whole numbers summing to n > 1 cannot be fractions (those sum to 1): counts
            if all(float(v).is_integer() for v in vals) and sum(vals) == n and n > 1:
                fracs = [v / n for v in vals]
            elif abs(sum(vals) - 1.0) > 1e-9:
                raise ValueError(f"layer fractions must sum to 1 (or counts to n = {n}), got "
                                 f"{dict(items)} (sum {sum(vals):g})")
            else:
                fracs = vals
            names = [k for k, _ in items]
        else:
            names = list(layers)
            if not names:
                raise ValueError("layers: give at least one layer")
            fracs = [1.0 / len(names)] * len(names)
        for k in names:
            if not isinstance(k, str) or not k:
                raise ValueError(f"layer names must be non-empty strings, got {k!r}")
        if len(set(names)) != len(names):
            raise ValueError(f"layer names repeat: {names}")
        depth = _number("depth_um", depth_um, low=0.0, low_open=True)
        radius = _number("radius_um", radius_um, low=0.0)
        if center_um is None:
            center = (1000.0 * len(self.columns), 0.0)
        else:
            if isinstance(center_um, (str, bytes)) or not hasattr(center_um, "__len__"):
                raise ValueError(f"center_um is (x, y) in um, got {center_um!r}")
            center = tuple(_number("center_um", c) for c in center_um)
            if len(center) != 2:
                raise ValueError(f"center_um is (x, y) in um, got {center_um!r}")
        spec = ColumnSpec(name, tuple(zip(names, fracs)), int(n), depth, radius, center)
        return replace(self, columns=self.columns + (spec,))

    def cell_types(self, types: Mapping) -> "Configuration":
        """The share of each cell type ("E" excitatory, "I" inhibitory) in every layer:
        fractions summing to 1 ({"E": 0.8, "I": 0.2}) or counts per column
        ({"E": 160, "I": 40}, summing to each column's n)."""
        if not isinstance(types, Mapping) or not types:
            raise ValueError(f"cell_types takes a mapping such as {{'E': 0.8, 'I': 0.2}}, got "
                             f"{types!r}")
        bad = set(types) - set(CELL_TYPES)
        if bad:
            raise ValueError(f"unknown cell types {sorted(bad)}; cell types: {list(CELL_TYPES)}")
        vals = {k: _number(f"cell_types[{k!r}]", v, low=0.0) for k, v in types.items()}
        total = sum(vals.values())
        counts = all(float(v).is_integer() for v in vals.values()) and total > 1
        if not counts and abs(total - 1.0) > 1e-9:
            raise ValueError(f"cell-type fractions must sum to 1 (or be whole counts), got "
                             f"{dict(types)} (sum {total:g})")
        return replace(self, types=MappingProxyType(vals))

    def connectivity(self, **kwargs) -> "Configuration":
        """Recurrent connections (keywords, merged into earlier calls'):

        * ``p``: connection probability of every ordered pair of neurons (default 0.1);
          ``p_EE``, ``p_EI``, ``p_IE``, ``p_II`` per type pair (presynaptic first).
        * ``w_EE``, ``w_EI``, ``w_IE``, ``w_II``: weight magnitudes (>= 0) in the emitter's
          weight unit (izhikevich mV, lif pA, adex nS, multicompartment uS); connections
          from "I" neurons are inhibitory.
        * ``delay_ms``: delay of every connection (default 1.5 ms; >= dt).
        * ``inter_layer``: factor on p between different layers of a column (default 0.5);
          ``layer_pairs``: {"pre->post": factor} for given layer pairs (overrides it;
          "L4->L4" changes a layer's own p).
        * ``inter_column``: factor on p between neurons of different columns (default 0).
        * ``plasticity``: True makes E->E connections NEST's ``stdp_synapse`` (point
          emitters only; default False).
        * ``autapses``: allow a neuron to connect to itself (default False).
        """
        unknown = set(kwargs) - set(CONNECTIVITY_KEYS)
        if unknown:
            raise ValueError(f"unknown connectivity keywords {sorted(unknown)}; valid: "
                             f"{list(CONNECTIVITY_KEYS)}")
        out = dict(self.connectivity_kwargs)
        for k, v in kwargs.items():
            if k == "p" or k.startswith("p_"):
                out[k] = _number(k, v, low=0.0, high=1.0)
            elif k.startswith("w_"):
                out[k] = _number(k, v, low=0.0)
            elif k == "delay_ms":
                out[k] = _number(k, v, low=0.0, low_open=True)
            elif k in ("inter_layer", "inter_column"):
                out[k] = _number(k, v, low=0.0)
            elif k == "layer_pairs":
                if not isinstance(v, Mapping):
                    raise ValueError(f"layer_pairs is a mapping {{'L4->L2/3': factor}}, got {v!r}")
                pairs = {}
                for key, f in v.items():
                    if not isinstance(key, str) or key.count("->") != 1:
                        raise ValueError(f"layer_pairs keys are 'pre->post' layer names, got "
                                         f"{key!r}")
                    pairs[key] = _number(f"layer_pairs[{key!r}]", f, low=0.0)
                out[k] = MappingProxyType(pairs)
            else:  # plasticity, autapses
                if not isinstance(v, bool):
                    raise ValueError(f"{k} is True or False, got {v!r}")
                out[k] = v
        return replace(self, connectivity_kwargs=MappingProxyType(out))

    def drive(self, **kwargs) -> "Configuration":
        """External input (keywords, merged into earlier calls'; scalars or {"E": x, "I": y}):

        * ``mean``, ``std``: a Gaussian noise current into every neuron, drawn anew every
          ``noise_dt_ms`` (default 1 ms) independently per neuron (NEST's noise_generator;
          multicompartment: an IClamp of ``mean`` nA at the soma, std must be 0), in the
          emitter's current unit (point: NEST's pA; multicompartment: nA).
        * ``rate_hz``, ``weight``: an independent Poisson spike train into every neuron
          (point: weight in the emitter's weight unit; multicompartment: Exp2Syn on the
          apical tuft and basal dendrites, weight uS).
        """
        unknown = set(kwargs) - set(DRIVE_KEYS)
        if unknown:
            raise ValueError(f"unknown drive keywords {sorted(unknown)}; valid: {list(DRIVE_KEYS)}")
        out = dict(self.drive_kwargs)
        for k, v in kwargs.items():
            if k == "noise_dt_ms":
                out[k] = _number(k, v, low=0.0, low_open=True)
            elif k == "mean":
                out[k] = MappingProxyType(_per_type(k, v))
            else:
                out[k] = MappingProxyType(_per_type(k, v, low=0.0))
        return replace(self, drive_kwargs=MappingProxyType(out))

    def set_emitter(self, family: str, preset: str | None = None) -> "Configuration":
        """The neuron model: ``family`` "izhikevich", "lif", "adex" or "multicompartment"
        and one of its presets (``dendrax.column.emitters``; default: the family's first)."""
        family, preset = check_emitter(family, preset)
        return replace(self, family=family, preset=preset)

    def probes(self, modes, name: str = "probe", *, electrodes: int = 16) -> "Configuration":
        """What to record and compute (replaces earlier probes): ``modes``, a list of
        SPK, Vm, MUA-proxy, source-proxy, LFP-proxy, CSD-proxy, EEG-proxy, MEG-proxy, EMM
        (any emitter) and LFP, CSD, EEG, MEG (physical: multicompartment only); ``name``
        labels them; ``electrodes``: number of laminar electrodes on each column's axis."""
        if isinstance(modes, str):
            modes = [modes]
        if not isinstance(modes, (list, tuple)) or not all(isinstance(m, str) for m in modes):
            raise ValueError(f"probes takes a list of modes of {list(MODES)}, got {modes!r}")
        modes = tuple(dict.fromkeys(modes))
        unknown = [m for m in modes if m not in MODES]
        if unknown:
            raise ValueError(f"unknown probe modes {unknown}; valid: {list(MODES)}")
        if not modes:
            raise ValueError(f"probes: give at least one mode of {list(MODES)}")
        if not isinstance(name, str) or not name:
            raise ValueError(f"a probe's name is a non-empty string, got {name!r}")
        if isinstance(electrodes, bool) or not isinstance(electrodes, int) or electrodes < 3:
            raise ValueError(f"electrodes must be an integer >= 3 (the CSD needs 3), got "
                             f"{electrodes!r}")
        return replace(self, probe=ProbeSpec(modes, name, int(electrodes)))

    # --- derived ------------------------------------------------------------------------
    @property
    def layers(self) -> tuple:
        """Every layer name of every column, in order, without repeats."""
        return tuple(dict.fromkeys(k for c in self.columns for k in c.layer_names))

    def connectivity_values(self) -> dict:
        """Every connectivity keyword with its value (the defaults filled in)."""
        out = {"p": 0.1, "delay_ms": 1.5, "inter_layer": 0.5, "layer_pairs": {},
               "inter_column": 0.0, "plasticity": False, "autapses": False,
               **CONNECTIVITY_DEFAULTS[self.family]}
        out.update(self.connectivity_kwargs)
        for pair in PAIRS:
            out.setdefault(f"p_{pair}", out["p"])
        out["layer_pairs"] = dict(out["layer_pairs"])
        return out

    def drive_values(self) -> dict:
        """Every drive keyword with its value (the defaults filled in)."""
        base = DRIVE_DEFAULTS[self.family]
        out = {"mean": dict(base["mean"]), "std": dict(base["std"]), "noise_dt_ms": 1.0,
               "rate_hz": {k: base.get("rate_hz", 0.0) for k in CELL_TYPES},
               "weight": {k: base.get("weight", 0.0) for k in CELL_TYPES}}
        for k, v in self.drive_kwargs.items():
            out[k] = {**out[k], **v} if isinstance(v, Mapping) else v
        return out

    @property
    def weight_unit(self) -> str:
        return WEIGHT_UNIT[self.family]

    @property
    def current_unit(self) -> str:
        return CURRENT_UNIT[self.family]

    def validate(self) -> "Configuration":
        """Checks that need the whole configuration (construct calls it): at least one
        column, layers named in layer_pairs exist, type counts match each column's n,
        physical probes only with multicompartment cells, and the delay at least dt."""
        if not self.columns:
            raise ValueError("the configuration has no column: add one with "
                             ".column(name, layers, n)")
        con = self.connectivity_values()
        layers = self.layers
        for key in con["layer_pairs"]:
            for layer in key.split("->"):
                if layer.strip() not in layers:
                    raise ValueError(f"layer_pairs[{key!r}]: unknown layer {layer.strip()!r}; "
                                     f"layers: {list(layers)}")
        total = sum(self.types.values())
        if abs(total - 1.0) > 1e-9:
            for c in self.columns:
                if int(round(total)) != c.n:
                    raise ValueError(f"cell_types counts {dict(self.types)} sum to {total:g}, "
                                     f"but column {c.name!r} has n = {c.n}; give fractions "
                                     "or counts summing to n")
        physical = [m for m in self.probe.modes if m in PHYSICAL_MODES]
        if physical and self.family != "multicompartment":
            raise ValueError(
                f"probe modes {physical} are physical extracellular signals: they need "
                f"membrane currents in space, which point neurons ({self.family!r}) do not "
                "have. Use set_emitter('multicompartment', 'l5pc_like') for physical "
                "LFP/CSD/EEG/MEG, or the proxies "
                f"{[m + '-proxy' for m in physical]} (labelled 'proxy')")
        both = [m for m in physical if f"{m}-proxy" in self.probe.modes]
        if both:
            raise ValueError(f"probe modes {both} and their proxies fill the same signals: "
                             "choose the physical signal or its proxy")
        if self.family == "multicompartment":
            bad = [m for m in self.probe.modes if m in ("source-proxy", "EMM")]
            if bad:
                raise ValueError(f"probe modes {bad} are defined for point-neuron emitters "
                                 "(the synaptic current per neuron); for multicompartment "
                                 "columns use LFP, CSD, EEG, MEG (physical) or the V_m proxies")
            if con["plasticity"]:
                raise ValueError("plasticity=True needs a point-neuron emitter (NEST's "
                                 "stdp_synapse); multicompartment columns are static")
            if any(v != 0.0 for v in self.drive_values()["std"].values()):
                raise ValueError("drive std must be 0 for multicompartment columns (the "
                                 "drive current is an IClamp of `mean` nA)")
        if con["delay_ms"] < self.dt_ms - 1e-12:
            raise ValueError(f"delay_ms = {con['delay_ms']} is shorter than dt_ms = "
                             f"{self.dt_ms}; delays onto point neurons are at least one step")
        return self

    def to_dict(self) -> dict:
        """The configuration as plain data (what ``from_dict`` and the TOML file read)."""
        return {
            "runtime": {"seed": self.seed, "dtype": self.dtype, "duration_ms": self.duration_ms,
                        "dt_ms": self.dt_ms},
            "column": [{"name": c.name, "layers": dict(c.layers), "n": c.n,
                        "depth_um": c.depth_um, "radius_um": c.radius_um,
                        "center_um": list(c.center_um)} for c in self.columns],
            "cell_types": dict(self.types),
            "emitter": {"family": self.family, "preset": self.preset},
            "connectivity": {k: (dict(v) if isinstance(v, Mapping) else v)
                             for k, v in self.connectivity_kwargs.items()},
            "drive": {k: (dict(v) if isinstance(v, Mapping) else v)
                      for k, v in self.drive_kwargs.items()},
            "probes": {"modes": list(self.probe.modes), "name": self.probe.name,
                       "electrodes": self.probe.electrodes},
        }


TOP_KEYS = ("runtime", "column", "cell_types", "emitter", "connectivity", "drive", "probes")


def from_dict(data: Mapping) -> Configuration:
    """A Configuration from plain data (the tables of docs/columns.md's TOML format)."""
    unknown = set(data) - set(TOP_KEYS)
    if unknown:
        raise ValueError(f"unknown configuration sections {sorted(unknown)}; valid: "
                         f"{list(TOP_KEYS)}")
    cfg = Configuration()
    if "runtime" in data:
        cfg = cfg.runtime(**_only(data["runtime"], ("seed", "dtype", "duration_ms", "dt_ms"),
                                  "runtime"))
    cols = data.get("column", [])
    if not isinstance(cols, (Mapping, list)):
        raise ValueError(f"columns are tables, [[column]] each, got {cols!r}")
    for c in [cols] if isinstance(cols, Mapping) else cols:
        c = _only(c, ("name", "layers", "n", "depth_um", "radius_um", "center_um"), "column")
        for k in ("name", "layers", "n"):
            if k not in c:
                raise ValueError(f"a [[column]] needs {k!r}")
        cfg = cfg.column(c.pop("name"), c.pop("layers"), c.pop("n"), **c)
    if "cell_types" in data:
        cfg = cfg.cell_types(data["cell_types"])
    if "emitter" in data:
        e = _only(data["emitter"], ("family", "preset"), "emitter")
        if "family" not in e:
            raise ValueError("[emitter] needs 'family'")
        cfg = cfg.set_emitter(e["family"], e.get("preset"))
    for section in ("connectivity", "drive"):  # their keywords are checked by the methods
        if section in data and not isinstance(data[section], Mapping):
            raise ValueError(f"[{section}] must be a table, got {data[section]!r}")
    if "connectivity" in data:
        cfg = cfg.connectivity(**data["connectivity"])
    if "drive" in data:
        cfg = cfg.drive(**data["drive"])
    if "probes" in data:
        p = _only(data["probes"], ("modes", "name", "electrodes"), "probes")
        if "modes" not in p:
            raise ValueError("[probes] needs 'modes'")
        cfg = cfg.probes(p.pop("modes"), **p)
    return cfg


def _only(table, keys, where) -> dict:
    if not isinstance(table, Mapping):
        raise ValueError(f"[{where}] must be a table, got {table!r}")
    unknown = set(table) - set(keys)
    if unknown:
        raise ValueError(f"[{where}]: unknown keys {sorted(unknown)}; valid: {list(keys)}")
    return dict(table)


def configuration() -> Configuration:
    """A new configuration with the defaults (no column yet; add one with ``.column``)."""
    return Configuration()


def check_duration(duration_ms) -> float:
    """duration_ms as a float > 0, or a ValueError saying so."""
    d = _real("duration_ms", duration_ms, "a number > 0 (ms)")
    if not math.isfinite(d) or d <= 0:
        raise ValueError(f"duration_ms must be a number > 0 (ms), got {duration_ms!r}")
    return d


def check_steps(duration_ms: float, dt_ms: float) -> int:
    """The number of steps; a ValueError unless duration_ms is a whole multiple of dt_ms."""
    n = duration_ms / dt_ms
    if n < 1 or abs(n - round(n)) > 1e-6 * max(1.0, n):
        raise ValueError(f"duration_ms ({duration_ms}) must be a whole multiple (>= 1) of "
                         f"dt_ms ({dt_ms})")
    return int(round(n))


def probability_too_high(pair: str, p_max: float, *, within: bool, between: bool) -> str:
    """The message for connection probabilities above 1, naming the factors at fault: the
    layer factor (within a column) and/or inter_column (between columns)."""
    times = " / ".join(w for w, on in (("its layer factor", within), ("inter_column", between))
                       if on)
    factors = " / ".join(w for w, on in (("the layer_pairs / inter_layer factor", within),
                                          ("inter_column", between)) if on)
    return (f"connection probability {pair} times {times} exceeds 1 (max {p_max:g}); lower "
            f"p_{pair} or {factors}")
