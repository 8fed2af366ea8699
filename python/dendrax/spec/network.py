"""A network as text (``NetworkSpec``): ``[[cell]]``, ``[[population]]``,
``[[connection]]`` and ``[[gap_junction]]`` tables, ``[simulation]`` and ``[record]``."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from .cell import CellSpec
from .parse import (SpecError, check_keys, default_site, get_number, get_strings,
                    parse_cell_location, parse_cells, parse_location)

NETWORK_KEYS = ("cell", "population", "connection", "gap_junction", "simulation", "record",
                "out")
POPULATION_KEYS = ("model", "n", "name", "params", "spike_times")
NETWORK_CELL_KEYS = ("model", "swc", "nseg", "Ra", "cm", "mechanisms", "set", "iclamp", "count")
CONNECTION_KEYS = ("pre", "post", "synapse", "weight", "delay", "threshold", "p", "seed",
                   "params", "pre_loc", "post_loc", "one_to_one")
GAP_JUNCTION_KEYS = ("a", "b", "g", "a_loc", "b_loc")
SIMULATION_KEYS = ("t_stop", "dt", "v_init", "celsius", "method")
SIMULATION_DEFAULTS = {"t_stop": 100.0, "dt": 0.025, "v_init": -65.0, "celsius": 6.3,
                       "method": "backward_euler"}
METHODS = ("backward_euler", "crank_nicolson")
RECORD_KEYS = ("spikes", "v", "spike_threshold", "V_m")
POPULATION_REF = re.compile(r"^(?P<name>[A-Za-z_]\w*)(\[(?P<sel>[^\]]*)\])?$")


def is_network(cfg: Mapping) -> bool:
    """Whether a loaded TOML describes a network: it has ``[[cell]]`` or ``[[population]]``
    tables (arrays)."""
    return isinstance(cfg.get("cell"), list) or isinstance(cfg.get("population"), list)


def parse_population(value, populations: Mapping, what: str):
    """``"exc"`` or ``"exc[0:10]"`` (Python's slice of the population) -> (name, indices);
    None when ``value`` names no population (a cell index or range)."""
    if not isinstance(value, str):
        return None
    m = POPULATION_REF.match(value.strip())
    if not m or m.group("name") not in populations:
        if m and not value.strip()[0].isdigit() and ":" not in value:
            raise SpecError(f"{what}: no population named {m.group('name')!r}; populations: "
                            f"{sorted(populations)}")
        return None
    name, sel = m.group("name"), m.group("sel")
    n = populations[name]
    if sel is None:
        return name, np.arange(n)
    try:
        parts = [int(p) if p.strip() else None for p in sel.split(":")]
        index = np.arange(n)[slice(*parts)] if len(parts) > 1 else np.atleast_1d(np.arange(n)[parts[0]])
    except (ValueError, IndexError, TypeError):
        raise SpecError(f"{what}: bad selection {value!r} of {name} ({n} neurons); use e.g. "
                        f"\"{name}[0:10]\" or \"{name}[3]\"") from None
    if not index.size:
        raise SpecError(f"{what}: {value!r} selects no neuron of {name} ({n} neurons)")
    return name, index


@dataclass
class NetworkSpec:
    """A network as text (see docs/cli.md, "Networks").

    Attributes:
        cells: (CellSpec, count) per ``[[cell]]`` table; cells are numbered in table order.
        connections: the ``[[connection]]`` tables, checked.
        gap_junctions: the ``[[gap_junction]]`` tables, checked: pairs of cells (a, b) and
            their sites, each joined by a junction of conductance g (uS).
        simulation: t_stop, dt, v_init, celsius, method.
        record: spikes (True, False, or cell indices), v (``"cell N LOCATION"`` strings),
            spike_threshold (mV), V_m ((population, neuron indices) to record).
        out: the output folder, or None.
        populations: the ``[[population]]`` tables, checked (model, n, name, params,
            spike_times).
    """

    cells: list
    connections: list = field(default_factory=list)
    simulation: dict = field(default_factory=lambda: dict(SIMULATION_DEFAULTS))
    record: dict = field(default_factory=dict)
    out: str | None = None
    populations: list = field(default_factory=list)
    gap_junctions: list = field(default_factory=list)

    @classmethod
    def from_dict(cls, cfg: Mapping) -> "NetworkSpec":
        """A spec from a loaded network TOML (``[[cell]]``, ``[[connection]]``,
        ``[simulation]``, ``[record]``, ``out``)."""
        check_keys(cfg, NETWORK_KEYS, "a network config (the top level)")
        tables = cfg.get("cell", [])
        pops = cfg.get("population", [])
        if not isinstance(tables, list) or not isinstance(pops, list) or not (tables or pops):
            raise SpecError("a network needs [[cell]] tables (model = \"ball_and_stick\" or "
                            "swc = \"...\", count = N) or [[population]] tables (model = "
                            "\"iaf_psc_alpha\", n = N)")
        populations = [cls._population(t, k) for k, t in enumerate(pops)]
        names = [p["name"] for p in populations]
        if len(set(names)) != len(names):
            raise SpecError(f"[[population]] names must differ, got {names}")
        sizes = {p["name"]: p["n"] for p in populations}
        cells = []
        for k, table in enumerate(tables):
            where = f"[[cell]] {k}"
            check_keys(table, NETWORK_CELL_KEYS, where)
            count = get_number(table, "count", 1, positive=True, integer=True, prefix=f"{where} ")
            spec = CellSpec.from_dict({key: v for key, v in table.items() if key != "count"},
                                      where, keys=NETWORK_CELL_KEYS[:-1])
            cells.append((spec, count))
        n_cells = sum(count for _, count in cells)
        connections = cfg.get("connection", [])
        if not isinstance(connections, list):
            raise SpecError("connections are [[connection]] tables (an array of tables)")
        connections = [cls._connection(c, k, n_cells, sizes) for k, c in enumerate(connections)]
        gaps = cfg.get("gap_junction", [])
        if not isinstance(gaps, list):
            raise SpecError("gap junctions are [[gap_junction]] tables (an array of tables)")
        gaps = [cls._gap_junction(t, k, n_cells) for k, t in enumerate(gaps)]

        sim_table = cfg.get("simulation", {})
        check_keys(sim_table, SIMULATION_KEYS, "[simulation]")
        simulation = dict(SIMULATION_DEFAULTS)
        for key in ("t_stop", "dt", "v_init", "celsius"):
            simulation[key] = get_number(sim_table, key, SIMULATION_DEFAULTS[key],
                                         positive=key in ("t_stop", "dt"), prefix="[simulation] ")
        simulation["method"] = sim_table.get("method", SIMULATION_DEFAULTS["method"])
        if simulation["method"] not in METHODS:
            raise SpecError(f"[simulation] method must be one of {METHODS}, got "
                            f"{simulation['method']!r}")

        rec = cfg.get("record", {})
        check_keys(rec, RECORD_KEYS, "[record]")
        record = {"spikes": rec.get("spikes", True),
                  "spike_threshold": get_number(rec, "spike_threshold", 10.0,
                                                prefix="[record] ")}
        if record["spikes"] is not True and record["spikes"] is not False:
            record["spikes"] = parse_cells(record["spikes"], n_cells, "[record] spikes")
        v = get_strings(rec, "v", "[record]")
        if v is None:  # default: the soma of the first cell of every [[cell]] table
            starts = np.cumsum([0] + [count for _, count in cells[:-1]]) if cells else []
            v = [f"cell {int(s)}" for s in starts]  # at its soma (parse.default_site)
        record["v"] = v
        record["V_m"] = [parse_population(t, sizes, "[record] V_m")
                         for t in (get_strings(rec, "V_m", "[record]") or [])]
        if None in record["V_m"]:
            raise SpecError("[record] V_m takes populations, e.g. [\"exc[0:3]\"]")
        out = cfg.get("out")
        if out is not None and not isinstance(out, str):
            raise SpecError(f"out must be a folder name, got {out!r}")
        return cls(cells, connections, simulation, record, out, populations, gaps)

    @staticmethod
    def _population(table, k: int) -> dict:
        where = f"[[population]] {k}"
        if not isinstance(table, Mapping):
            raise SpecError(f"{where} must be a table")
        check_keys(table, POPULATION_KEYS, where)
        if not isinstance(table.get("model"), str):
            raise SpecError(f"{where} needs model = \"<name>\" (e.g. \"iaf_psc_alpha\", "
                            "\"poisson_generator\")")
        n = get_number(table, "n", None, positive=True, integer=True, prefix=f"{where} ")
        if n is None:
            raise SpecError(f"{where} needs n = <number of neurons>")
        name = table.get("name", f"{table['model']}_{k}")
        if not isinstance(name, str) or not name.isidentifier():
            raise SpecError(f"{where} name must be an identifier, got {name!r}")
        params = table.get("params", {})
        if not isinstance(params, Mapping):
            raise SpecError(f"{where} params must be a table of name = value")
        for key, value in params.items():
            if not isinstance(value, (int, float, list)) or isinstance(value, bool):
                raise SpecError(f"{where} params.{key} must be a number or a list of numbers, "
                                f"got {value!r}")
        return {"model": table["model"], "n": int(n), "name": name, "params": dict(params),
                "spike_times": table.get("spike_times"), "where": where}

    @staticmethod
    def _connection(table, k: int, n_cells: int, sizes: Mapping = {}) -> dict:
        where = f"[[connection]] {k}"
        check_keys(table, CONNECTION_KEYS, where)
        ends = {key: parse_population(table.get(key), sizes, f"{where} {key}")
                for key in ("pre", "post")}
        points = any(e is not None for e in ends.values())
        for key in ("pre", "post") + (() if points else ("synapse",)):
            if key not in table:
                raise SpecError(f"{where} needs {key} (pre and post: a cell index, a range "
                                f"\"0:50\", a list, or a population \"exc\" / \"exc[0:10]\"; "
                                f"synapse: e.g. \"Exp2Syn\")")
        synapse = table.get("synapse", "static")
        if not isinstance(synapse, str):
            raise SpecError(f"{where} synapse must be a name such as \"Exp2Syn\", got "
                            f"{synapse!r}")
        if synapse == "GapJunction":
            raise SpecError(f"{where}: a GapJunction connection would place one half of a gap "
                            "junction (a one-way coupling); join two cells with a "
                            "[[gap_junction]] table (a, b, g)")
        conn = {key: ends[key] if ends[key] is not None else
                parse_cells(table[key], n_cells, f"{where} {key}") for key in ("pre", "post")}
        one_to_one = table.get("one_to_one", False)
        if not isinstance(one_to_one, bool):
            raise SpecError(f"{where} one_to_one must be true or false, got {one_to_one!r}")
        conn.update(synapse=synapse, where=where, kwargs={}, points=points, one_to_one=one_to_one)
        for key in ("weight", "delay", "threshold"):
            if key in table:
                conn["kwargs"][key] = get_number(table, key, prefix=f"{where} ")
        if conn["kwargs"].get("delay", 0.0) < 0:
            raise SpecError(f"{where} delay must be >= 0 ms, got {conn['kwargs']['delay']}")
        params = table.get("params", {})
        if not isinstance(params, Mapping):
            raise SpecError(f"{where} params must be a table of name = value, got {params!r}")
        for key in params:
            if key in conn["kwargs"]:
                raise SpecError(f"{where}: {key} is given twice (as a key and in params)")
            conn["kwargs"][key] = get_number(params, key, prefix=f"{where} params.")
        conn["p"] = None
        if "p" in table:
            conn["p"] = get_number(table, "p", prefix=f"{where} ")
            if not 0.0 <= conn["p"] <= 1.0:
                raise SpecError(f"{where} p must lie in [0, 1], got {conn['p']}")
        conn["seed"] = get_number(table, "seed", 0, integer=True, prefix=f"{where} ")
        for key in ("pre_loc", "post_loc"):
            value = table.get(key)
            if value is not None and not isinstance(value, str):
                raise SpecError(f"{where} {key} must be a location such as \"dend[0](0.5)\", "
                                f"got {value!r}")
            conn[key] = value
        return conn

    @staticmethod
    def _gap_junction(table, k: int, n_cells: int) -> dict:
        where = f"[[gap_junction]] {k}"
        if not isinstance(table, Mapping):
            raise SpecError(f"{where} must be a table")
        check_keys(table, GAP_JUNCTION_KEYS, where)
        for key in ("a", "b", "g"):
            if key not in table:
                raise SpecError(f"{where} needs a, b (the cells it joins: an index, a range "
                                f"\"0:10\" or a list, paired in order) and g (uS)")
        a, b = (parse_cells(table[key], n_cells, f"{where} {key}") for key in ("a", "b"))
        if not a or not b:
            raise SpecError(f"{where}: a and b must name at least one cell each")
        if len(a) == 1:
            a = a * len(b)
        if len(b) == 1:
            b = b * len(a)
        if len(a) != len(b):
            raise SpecError(f"{where}: a and b pair cells in order, so they must name as many "
                            f"cells (or one), got {len(a)} and {len(b)}")
        g = get_number(table, "g", prefix=f"{where} ")
        if not g >= 0:
            raise SpecError(f"{where} g must be >= 0 uS, got {g}")
        locs = {}
        for key in ("a_loc", "b_loc"):
            value = table.get(key)  # None: each cell's soma (parse.default_site)
            if value is not None and not isinstance(value, str):
                raise SpecError(f"{where} {key} must be a location such as \"dend[0](0.5)\", "
                                f"got {value!r}")
            locs[key] = value
        return {"a": a, "b": b, "g": g, "where": where, **locs}

    @property
    def n_cells(self) -> int:
        return sum(count for _, count in self.cells)

    def table_of(self) -> np.ndarray:
        """[n_cells] the ``[[cell]]`` table each cell comes from."""
        return np.repeat(np.arange(len(self.cells)), [count for _, count in self.cells])

    def build(self):
        """The ``dendrax.network.Network``: its cells (copies of each table's cell), its
        connections and its recordings (spikes, v)."""
        from ..network import Network

        cells = []
        for spec, count in self.cells:
            template = spec.build(defaults=False)
            cells.append(template)
            cells.extend(template.copy() for _ in range(count - 1))
        net = Network(cells)
        pops = {}
        for p in self.populations:
            try:
                pops[p["name"]] = net.population(p["model"], p["n"], name=p["name"],
                                                 spike_times=p["spike_times"], **p["params"])
            except (ValueError, TypeError) as err:
                raise SpecError(f"{p['where']}: {err}") from None
        table = self.table_of()
        first = np.searchsorted(table, np.arange(len(self.cells)))  # first cell of each table
        for n, conn in enumerate(self.connections):
            if conn["points"]:
                self._connect_points(net, conn, pops, n)
            else:
                self._connect(net, conn, table, first)
        for gap in self.gap_junctions:
            for a, b in zip(gap["a"], gap["b"]):
                try:
                    net.gap_junction(
                        parse_location(net.cell(a), gap["a_loc"] or default_site(net.cell(a))),
                        parse_location(net.cell(b), gap["b_loc"] or default_site(net.cell(b))),
                        g=gap["g"])
                except (ValueError, IndexError) as err:
                    raise SpecError(f"{gap['where']}: cells {a} and {b}: {err}") from None
        if self.record["spikes"] is not False:
            if self.cells:
                chosen = range(len(net)) if self.record["spikes"] is True else \
                    self.record["spikes"]
                somaless = {c for c in chosen if "soma" not in net.cell(c).regions()}
                thr = self.record["spike_threshold"]
                if len(somaless) < len(chosen):
                    net.record_spikes(None if self.record["spikes"] is True and not somaless
                                      else [c for c in chosen if c not in somaless],
                                      threshold=thr)
                if somaless:  # at section 0's middle (parse.default_site)
                    net.record_spikes(sorted(somaless), threshold=thr,
                                      loc=parse_location(net.cell(min(somaless)), "0(0.5)")
                                      ._replace(cell=None))
            if self.record["spikes"] is True:
                from ..point import Generator

                for pop in pops.values():
                    if not isinstance(pop.model, Generator):
                        net.record_spikes(pop)
        for text in self.record["v"]:
            net.record("v", parse_cell_location(net, text, "[record] v"))
        for name, index in self.record.get("V_m", []):
            try:
                net.record("V_m", pops[name][index])
            except (ValueError, IndexError) as err:
                raise SpecError(f"[record] V_m: {err}") from None
        return net

    @staticmethod
    def _connect_points(net, conn, pops, n) -> None:
        """A connection table with a population at one end (NEST's rules: all to all, one to
        one, or each pair with probability p)."""
        where = conn["where"]

        def end(value):
            if isinstance(value, tuple):
                return pops[value[0]][value[1]]
            if len(value) != 1:
                raise SpecError(f"{where}: a connection with a population takes one cell "
                                f"(its soma), got {len(value)} cells")
            return parse_location(net.cell(value[0]), default_site(net.cell(value[0])))

        kwargs = dict(conn["kwargs"])
        if conn["p"] is not None:
            kwargs.update(p=conn["p"], key=_fold(conn["seed"], n))
        try:
            net.connect(end(conn["pre"]), end(conn["post"]), conn["synapse"],
                        one_to_one=conn["one_to_one"], **kwargs)
        except (ValueError, IndexError) as err:
            raise SpecError(f"{where}: {err}") from None

    @staticmethod
    def _connect(net, conn, table, first) -> None:
        where = conn["where"]

        def loc_of(text, cell_index, key):
            # a location on the cell's own morphology, without the cell index (applied to
            # every cell of the group)
            cell = net.cell(int(cell_index))
            if text is None:
                if "soma" in cell.regions():
                    return None  # the soma of each (Network's default)
                text = default_site(cell)
            try:
                loc = parse_location(cell, text)
            except (ValueError, IndexError) as err:
                raise SpecError(f"{where} {key}: {err}") from None
            return type(loc)(loc[0], loc[1])

        def grouped(cells, text, key):
            # cells of one [[cell]] table share their morphology: a location per table
            locs, out = {}, {}
            for c in cells:
                t = int(table[c])
                if t not in locs:
                    locs[t] = loc_of(text, first[t], key)
                out.setdefault(locs[t], []).append(c)
            return list(out.items())

        n = 0
        for pre_loc, pre in grouped(conn["pre"], conn["pre_loc"], "pre_loc"):
            for post_loc, post in grouped(conn["post"], conn["post_loc"], "post_loc"):
                kwargs = dict(conn["kwargs"])
                if pre_loc is not None:
                    kwargs["pre_loc"] = pre_loc
                if post_loc is not None:
                    kwargs["post_loc"] = post_loc
                try:
                    if conn["p"] is None:
                        net.fully_connect(pre, post, conn["synapse"], **kwargs)
                    else:
                        # one group: the seed itself, as net.sparse_connect(..., key=seed)
                        key = conn["seed"] if n == 0 else _fold(conn["seed"], n)
                        net.sparse_connect(pre, post, conn["synapse"], p=conn["p"], key=key,
                                           **kwargs)
                except (ValueError, IndexError, KeyError) as err:
                    msg = err.args[0] if isinstance(err, KeyError) and err.args else err
                    raise SpecError(f"{where}: {msg}") from None
                n += 1


def _fold(seed: int, n: int):
    import jax

    return jax.random.fold_in(jax.random.PRNGKey(seed), n)
