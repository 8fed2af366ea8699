"""Describing a network of cells: connections, spike sources, what is recorded.

A ``Network`` holds cells (``dendrax.Cell`` descriptions, each with its own
morphology and mechanisms) and the wiring between them. Connections are kept as
blocks of arrays (one block per ``connect`` / builder call), never as
per-connection Python objects, so 100,000 connections build in a fraction of a
second. ``dendrax.lower`` turns a network into one forest of compartments (one
Hines solve per step) with one vectorised update per mechanism type.

Two kinds of synapses connect cells:

* event-driven (``Exp2Syn`` and any ``Synapse``), as NEURON's NetCon: a spike is
  detected when the presynaptic v rises above ``threshold`` (mV) and reaches the
  synapse ``delay`` ms later with ``weight`` (uS);
* graded (``IonotropicSynapse``, ``TanhRateSynapse``, any ``GradedSynapse``): the
  synaptic current is a smooth function of the presynaptic v (read ``delay`` ms
  late), so gradients flow through it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import NamedTuple

import numpy as np

from .cell import REDUCTIONS, Cell, Location, SectionRef, check_name, synapse_values
from .mechanisms import registry
from .mechanisms.base import GradedSynapse, Synapse, check_mechanism

NETCON_THRESHOLD = 10.0  # mV, NEURON's default NetCon threshold


def _rng(key) -> np.random.Generator:
    """A numpy generator seeded by a JAX PRNG key (typed or raw) or an int: the same key
    gives the same draws."""
    if isinstance(key, (int, np.integer)):
        return np.random.default_rng(int(key))
    import jax

    if jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
        key = jax.random.key_data(key)
    return np.random.default_rng(np.asarray(key).astype(np.uint64).ravel().tolist())


def _synapse(synapse):
    """A synapse by registered name, or a Synapse / GradedSynapse class or instance (to try
    one before packaging it)."""
    if isinstance(synapse, str):
        return registry.synapse(synapse)
    kind = GradedSynapse if isinstance(synapse, GradedSynapse) or (
        isinstance(synapse, type) and issubclass(synapse, GradedSynapse)) else Synapse
    mech = check_mechanism(synapse, kind)
    check_name(mech.name)
    return mech


class Source(NamedTuple):
    """An artificial spike source of a network (``spike_source``, ``poisson_source``)."""

    index: int


@dataclass(frozen=True, eq=False)
class Block:
    """Connections made by one call, as arrays of equal length n.

    Attributes:
        synapse: the synapse kind's registered name; mech: its instance; graded: its family.
        pre_cell, pre_section, pre_x: int/float [n] presynaptic sites (None for artificial
            sources, then pre_source [n] holds their indices).
        threshold: float [n] spike threshold (mV) of event connections.
        post_cell, post_section, post_x: [n] postsynaptic sites.
        values: parameter name -> float [n] (synapse parameters, weight, delay).
    """

    synapse: str
    mech: object
    graded: bool
    pre_cell: np.ndarray | None
    pre_section: np.ndarray | None
    pre_x: np.ndarray | None
    pre_source: np.ndarray | None
    threshold: np.ndarray | None
    post_cell: np.ndarray
    post_section: np.ndarray
    post_x: np.ndarray
    values: dict

    @property
    def size(self) -> int:
        return int(self.post_cell.shape[0])


@dataclass
class Wiring:
    """Everything of a network beyond its cells (what lowering reads)."""

    blocks: list = field(default_factory=list)
    sources: list = field(default_factory=list)  # spike times (ms) of each artificial source
    spike_records: list = field(default_factory=list)  # (cell, section, x, threshold)
    recordings: list = field(default_factory=list)  # (cell, name, Location, reduce)


class NetCell:
    """Cell ``index`` of a network: every method of the ``Cell`` (insert, set, iclamp,
    record, ...), with locations (``soma``, ``section(k)(x)``) that carry the cell index."""

    def __init__(self, network: "Network", index: int):
        self.network, self.index = network, index
        self.cell = network.cells[index]

    def section(self, k: int) -> SectionRef:
        return replace(self.cell.section(k), cell=self.index)

    def soma(self, x: float = 0.5) -> Location:
        return self.cell.soma(x)._replace(cell=self.index)

    def segments(self, where=None) -> list[Location]:
        return [loc._replace(cell=self.index) for loc in self.cell.segments(where)]

    def __getattr__(self, name):
        attr = getattr(self.cell, name)
        if not callable(attr):
            return attr

        def call(*args, **kwargs):
            for a in (*args, *kwargs.values()):
                for item in (a if isinstance(a, list) else [a]):
                    if isinstance(item, (Location, SectionRef)) and item.cell not in (None, self.index):
                        raise ValueError(f"{item} is on cell {item.cell}, not on cell {self.index}")
            return attr(*args, **kwargs)

        return call

    def __repr__(self):
        return f"NetCell({self.index}, {self.cell.n_nodes} nodes)"


class Network:
    """Cells and the connections between them.

    Args:
        cells: distinct ``dendrax.Cell`` objects (different morphologies and mechanism
            sets allowed). The network keeps references: changing a cell later changes
            the network. For n copies of one cell use ``Network.replicate``.
    """

    def __init__(self, cells=()):
        cells = list(cells)
        for c in cells:
            if not isinstance(c, Cell):
                raise TypeError(f"a Network holds dendrax.Cell objects, got {type(c).__name__}")
        if len({id(c) for c in cells}) != len(cells):
            raise ValueError("the same Cell object appears twice; use Network.replicate(cell, n) "
                             "or cell.copy() for copies of one cell")
        self._cells = cells
        self.wiring = Wiring()
        self._revision = 0

    @classmethod
    def replicate(cls, cell: Cell, n: int) -> "Network":
        """A network of ``n`` independent copies of ``cell`` (geometry shared, values copied)."""
        if not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"n must be a positive integer, got {n!r}")
        return cls([cell.copy() for _ in range(int(n))])

    # --- what lowering reads ------------------------------------------------
    @property
    def cells(self) -> tuple:
        return tuple(self._cells)

    @property
    def revision(self):
        return (self._revision, tuple(c.revision for c in self._cells))

    def __len__(self) -> int:
        return len(self._cells)

    def cell(self, i: int) -> NetCell:
        """Cell ``i`` (its locations carry the cell index: ``net.cell(i).soma(0.5)``)."""
        n = len(self._cells)
        if not isinstance(i, (int, np.integer)) or not -n <= i < n:
            raise IndexError(f"cell {i!r} out of range: the network has {n} cells")
        return NetCell(self, int(i) % n)

    def add(self, cell: Cell) -> NetCell:
        """Add a cell; returns its view."""
        if any(c is cell for c in self._cells):
            raise ValueError("this Cell is already in the network; add cell.copy() for a copy")
        self._cells.append(cell)
        self._revision += 1
        return self.cell(len(self._cells) - 1)

    # --- sources --------------------------------------------------------------
    def spike_source(self, times) -> Source:
        """An artificial spike source firing at ``times`` (ms), as NEURON's VecStim."""
        times = np.sort(np.asarray(times, float).ravel())
        if not np.all(np.isfinite(times)) or np.any(times < 0):
            raise ValueError(f"spike times must be finite and >= 0 ms, got {times}")
        self.wiring.sources.append(times)
        self._revision += 1
        return Source(len(self.wiring.sources) - 1)

    def poisson_source(self, rate: float, key, *, start: float = 0.0, stop: float) -> Source:
        """A Poisson spike train of ``rate`` (Hz) from ``start`` to ``stop`` (ms), drawn from the
        JAX PRNG ``key`` (or an int seed): the same key gives the same train."""
        if not (np.isfinite(rate) and rate >= 0):
            raise ValueError(f"rate must be a finite number >= 0 Hz, got {rate!r}")
        if not (np.isfinite(start) and np.isfinite(stop) and 0 <= start <= stop):
            raise ValueError(f"need 0 <= start <= stop (ms), got start={start}, stop={stop}")
        mean = rate * (stop - start) * 1e-3
        n_max = int(mean + 10.0 * np.sqrt(mean) + 20)
        gaps = _rng(key).exponential(1e3 / rate, n_max) if rate > 0 else np.zeros(0)
        times = start + np.cumsum(gaps)
        return self.spike_source(times[times < stop])

    # --- connections ------------------------------------------------------------
    def connect(self, pre, post: Location, synapse: str, *, weight=None, delay=1.0,
                threshold=NETCON_THRESHOLD, **params) -> "Network":
        """One synapse of kind ``synapse`` at ``post`` driven from ``pre``.

        Args:
            pre: a location on a cell (``net.cell(0).soma(0.5)``) or a ``Source``.
            post: a location on a cell (``net.cell(1).section(1)(0.1)``).
            synapse: a registered synapse name ("Exp2Syn", "IonotropicSynapse", ...), or a
                ``Synapse`` / ``GradedSynapse`` class or instance.
            weight: uS for conductance synapses (event-driven synapses only; required).
            delay: ms from the spike (or, for graded synapses, the presynaptic voltage)
                to its effect, >= 0.
            threshold: mV; spikes are detected when pre's v rises above it (event-driven).
            **params: the synapse's parameters (e.g. tau1, tau2, e).
        """
        if isinstance(pre, Source):
            return self._block(synapse, None, None, None, [pre.index], [self._cell_of(post)],
                               [post.section], [post.x], weight, delay, threshold, params)
        return self._block(synapse, [self._cell_of(pre)], [pre.section], [pre.x], None,
                           [self._cell_of(post)], [post.section], [post.x], weight, delay,
                           threshold, params)

    def fully_connect(self, pre, post, synapse: str, *, pre_loc: Location | None = None,
                      post_loc: Location | None = None, **kwargs) -> "Network":
        """Connect every cell of ``pre`` to every cell of ``post`` (iterables of cell
        indices), from ``pre_loc`` to ``post_loc`` of each (a location without a cell,
        e.g. ``cell.section(1)(0.5)``; default: the soma centre). Parameters as
        ``connect``; each may be a scalar or an array with one value per connection
        (pre-major order)."""
        pre, post = np.asarray(list(pre), int), np.asarray(list(post), int)
        return self._pairs(np.repeat(pre, post.size), np.tile(post, pre.size), synapse,
                           pre_loc, post_loc, kwargs)

    def sparse_connect(self, pre, post, synapse: str, *, p: float, key,
                       pre_loc: Location | None = None, post_loc: Location | None = None,
                       **kwargs) -> "Network":
        """Connect each (pre, post) pair independently with probability ``p``, drawn from
        the JAX PRNG ``key`` (or an int seed). Otherwise as ``fully_connect``."""
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p must lie in [0, 1], got {p!r}")
        pre, post = np.asarray(list(pre), int), np.asarray(list(post), int)
        i, j = np.nonzero(_rng(key).random((pre.size, post.size)) < p)
        return self._pairs(pre[i], post[j], synapse, pre_loc, post_loc, kwargs)

    def connect_matrix(self, matrix, synapse: str, *, pre=None, post=None,
                       pre_loc: Location | None = None, post_loc: Location | None = None,
                       **kwargs) -> "Network":
        """Connect pre cell ``pre[i]`` to post cell ``post[j]`` wherever ``matrix[i, j]`` is
        nonzero (default pre, post: all cells). For event synapses without a ``weight``
        argument the matrix entries are the weights (uS)."""
        m = np.asarray(matrix)
        pre = np.arange(len(self)) if pre is None else np.asarray(list(pre), int)
        post = np.arange(len(self)) if post is None else np.asarray(list(post), int)
        if m.shape != (pre.size, post.size):
            raise ValueError(f"matrix has shape {m.shape}; expected ({pre.size}, {post.size}) "
                             "(pre cells x post cells)")
        if not np.all(np.isfinite(m)):
            raise ValueError("matrix has non-finite entries")
        i, j = np.nonzero(m)
        graded = isinstance(_synapse(synapse), GradedSynapse)
        if not graded and "weight" not in kwargs and m.dtype != bool:
            kwargs["weight"] = m[i, j].astype(float)
        return self._pairs(pre[i], post[j], synapse, pre_loc, post_loc, kwargs)

    def _pairs(self, pre, post, synapse, pre_loc, post_loc, kwargs):
        pre_s, pre_x = self._site(pre, pre_loc)
        post_s, post_x = self._site(post, post_loc)
        weight = kwargs.pop("weight", None)
        delay = kwargs.pop("delay", 1.0)
        threshold = kwargs.pop("threshold", NETCON_THRESHOLD)
        return self._block(synapse, pre, pre_s, pre_x, None, post, post_s, post_x, weight, delay,
                           threshold, kwargs)

    def _site(self, cells, loc):
        """Section and x [n] of ``loc`` on each of ``cells`` (default each one's soma centre)."""
        n = len(self._cells)
        if cells.size and (cells.min() < -n or cells.max() >= n):
            raise IndexError(f"cell indices must lie in [0, {n}), got {cells.min()}..{cells.max()}")
        cells %= max(n, 1)
        if loc is None:
            unique, inverse = np.unique(cells, return_inverse=True)
            soma = np.array([self._cells[c].soma().section for c in unique], int)
            return soma[inverse.ravel()], np.full(cells.size, 0.5)
        if not isinstance(loc, Location):
            raise ValueError(f"expected a Location such as cell.soma(0.5), got {loc!r}")
        for c in np.unique(cells):
            self._cells[c].section(loc.section)  # IndexError where a cell lacks the section
        return np.full(cells.size, loc.section, int), np.full(cells.size, float(loc.x))

    def _cell_of(self, loc) -> int:
        if not isinstance(loc, Location):
            raise ValueError(f"expected a location such as net.cell(0).soma(0.5), got {loc!r}")
        if loc.cell is None:
            raise ValueError(f"{loc} does not say which cell it is on: use net.cell(i).soma(0.5) "
                             "or net.cell(i).section(k)(x)")
        c = self.cell(loc.cell).index
        self._cells[c].node(loc)  # validates section and x
        return c

    def _block(self, synapse, pre_cell, pre_section, pre_x, pre_source, post_cell, post_section,
               post_x, weight, delay, threshold, params):
        mech = _synapse(synapse)
        synapse = mech.name
        graded = isinstance(mech, GradedSynapse)
        post_cell = np.asarray(post_cell, int)
        n = post_cell.size
        if graded:
            if weight is not None:
                raise ValueError(f"{synapse} is a graded synapse: it has no weight (set its "
                                 f"conductance parameter, e.g. gS)")
            if pre_cell is None:
                raise ValueError(f"{synapse} is a graded synapse: its presynaptic side must be "
                                 "a location on a cell, not a spike source")
            extra = {"delay": delay}
        else:
            if weight is None:
                raise ValueError(f"{synapse} connections need a weight (uS)")
            extra = {"weight": weight, "delay": delay}
        try:
            values = synapse_values(mech, params, **extra)
            values = {k: np.broadcast_to(np.asarray(v, float), (n,)).copy() for k, v in values.items()}
        except ValueError as err:
            if "broadcast" not in str(err):
                raise
            raise ValueError(f"{synapse}: every parameter must be a scalar or have one value per "
                             f"connection ({n})") from None
        if pre_source is not None:
            pre_source = np.asarray(pre_source, int)
            if pre_source.min(initial=0) < 0 or pre_source.max(initial=-1) >= len(self.wiring.sources):
                raise ValueError("unknown spike source")
        thr = None
        if not graded and pre_cell is not None:
            thr = np.broadcast_to(np.asarray(threshold, float), (n,)).copy()
            if not np.all(np.isfinite(thr)):
                raise ValueError(f"threshold must be finite, got {threshold!r}")
        as_arr = lambda a, t: None if a is None else np.asarray(a, t)  # noqa: E731
        self.wiring.blocks.append(Block(
            synapse, mech, graded, as_arr(pre_cell, int), as_arr(pre_section, int),
            as_arr(pre_x, float), pre_source, thr, post_cell, np.asarray(post_section, int),
            np.asarray(post_x, float), values))
        self._revision += 1
        return self

    @property
    def n_connections(self) -> int:
        return sum(b.size for b in self.wiring.blocks)

    # --- recordings ----------------------------------------------------------------
    def record_spikes(self, cells=None, *, threshold: float = NETCON_THRESHOLD,
                      loc: Location | None = None) -> "Network":
        """Record the spike times of ``cells`` (default all) at ``loc`` (default each soma
        centre), as NEURON's ``NetCon.record``: ``res.spikes[k]`` for the k-th recorded."""
        cells = np.arange(len(self)) if cells is None else np.asarray(
            [cells] if np.isscalar(cells) else list(cells), int)
        if not np.isfinite(threshold):
            raise ValueError(f"threshold must be finite, got {threshold!r}")
        secs, xs = self._site(cells, loc)
        for c, s, x in zip(cells.tolist(), secs.tolist(), xs.tolist()):
            self.wiring.spike_records.append((c, s, x, float(threshold)))
        self._revision += 1
        return self

    def record(self, name: str = "v", loc=None, *, reduce: str | None = None) -> "Network":
        """Record ``name`` (as ``Cell.record``: "v", a state, a current, a synapse's "i" or
        "g", ...) at ``loc``, a location on a cell (``net.cell(2).soma(0.5)``) or a list of
        them; ``reduce`` "max" / "min" / "mean" keeps only that statistic."""
        if reduce not in REDUCTIONS:
            raise ValueError(f"reduce must be one of {REDUCTIONS}, got {reduce!r}")
        locs = list(loc) if isinstance(loc, (list, tuple)) and not isinstance(loc, Location) \
            else [loc]
        kinds = {b.synapse: b.mech for b in self.wiring.blocks}
        for one in locs:
            c = self._cell_of(one)
            self._cells[c].check_record(name, one, synapses=kinds)
            self.wiring.recordings.append((c, name, one, reduce))
        self._revision += 1
        return self

    def location_name(self, loc: Location) -> str:
        """NEURON-style name of a location on a cell of the network: "cell[3].soma(0.5)"."""
        c = self._cell_of(loc)
        return f"cell[{c}].{self._cells[c].location_name(loc)}"

    @property
    def params(self) -> dict:
        """The params pytree of ``dendrax.lower(net)`` (see ``dendrax.lowering``)."""
        from .lowering import lower

        return lower(self).params

    def param_slots(self, name: str, where=None):
        """Where parameter ``name`` at ``where`` lives in ``net.params`` (``Layout.slots``)."""
        from .lowering import lower

        return lower(self).layout.slots(name, where)

    def __repr__(self):
        return f"Network({len(self)} cells, {self.n_connections} connections)"
