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

import warnings
from dataclasses import replace

import numpy as np

from . import connection_rules as rules
from . import morphology as morph_lib
from .cell import Cell, synapse_mechanism, synapse_values
from .extracellular import fields
from .extracellular.geometry import check_position, rotation_matrix, soma_centre
from .locations import (CellIndex, CellView, Location, SectionRef, locations_in,
                        refuse_other_network, untagged)
from .lowering import lower
from .mechanisms.base import GradedSynapse
from .names import REDUCTIONS
from .populations import (Neurons, Population, neurons, plastic_onto_cells_refused,
                          point_connections, population_spec)
from .quantities import is_number, magnitude, real_array
from .recordables import synapse_pick
from .wiring import NETCON_THRESHOLD, Block, NeuronRef, Source, Wiring

__all__ = ["Network", "NetCell", "Population", "Neurons", "NeuronRef", "Source",
           "NETCON_THRESHOLD"]


def _real(name: str, value) -> float:
    """``value`` as a float, or a ValueError naming the argument (not numpy's)."""
    if not is_number(value):
        raise ValueError(f"{name} must be a number, got {value!r}")
    return float(value)


def _tagged(x, index: int):
    """x with every Location in it (however deep in lists and tuples) on cell ``index``."""
    if isinstance(x, Location):
        return x._replace(cell=index)
    if isinstance(x, (list, tuple)):
        return type(x)(_tagged(item, index) for item in x)
    return x


class NetCell(CellView):
    """Cell ``index`` of a network: every method of the ``Cell`` (insert, set, iclamp,
    record, ...), with locations (``soma``, ``section(k)(x)``) that carry the cell index."""

    def __init__(self, network: "Network", index: int):
        self.network, self.index = network, index
        self.cell = network.cells[index]

    @property
    def _tag(self) -> CellIndex:
        """The cell index its locations carry: this network's."""
        return CellIndex(self.index, id(self.network))

    def section(self, k: int) -> SectionRef:
        return replace(self.cell.section(k), cell=self._tag)

    def soma(self, x: float = 0.5) -> Location:
        return self.cell.soma(x)._replace(cell=self._tag)

    def segments(self, where=None) -> list[Location]:
        return [loc._replace(cell=self._tag) for loc in self.cell.segments(where)]

    def _check_own(self, args) -> None:
        """A ValueError for a location in ``args`` on another cell or another network's."""
        for item in locations_in(args):
            refuse_other_network(item, self.network)
            if item.cell not in (None, self.index):
                raise ValueError(f"{item} is on cell {item.cell}, not on cell {self.index}")

    def record(self, name: str = "v", loc=None, *, reduce: str | None = None) -> "NetCell":
        """``Cell.record``; a quantity of a synapse kind the network's connections place
        (not the cell's own, e.g. "Exp2Syn[1].g") is recorded by the network
        (``Network.record``), which knows them."""
        kinds = {b.synapse for b in self.network.wiring.blocks} - set(self.cell.stimuli.spikes)
        kind = synapse_pick(name)[0].partition(".")[0] if isinstance(name, str) else None
        if kind not in kinds:
            return self.__getattr__("record")(name, loc, reduce=reduce)
        self._check_own(loc)
        where = self.soma() if loc is None else _tagged(loc, self._tag)
        self.network.record(name, where, reduce=reduce)
        return self

    def __getattr__(self, name):
        attr = getattr(self.cell, name)
        if not callable(attr):
            return attr

        def call(*args, **kwargs):
            self._check_own((*args, *kwargs.values()))
            # the cell's own methods take its own locations (it may sit in other networks
            # at other indices)
            return attr(*untagged(args), **{k: untagged(v) for k, v in kwargs.items()})

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
    def replicate(cls, cell: Cell, n: int, *, positions=None, rotations=None) -> "Network":
        """A network of ``n`` independent copies of ``cell`` (geometry shared, values copied),
        optionally placed in space: ``positions`` [n, 3] (um) and ``rotations`` ([n, 3]
        angles or [n, 3, 3] matrices), as ``add(..., position=, rotation=)``."""
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"n must be a positive integer, got {n!r}")
        net = cls([cell.copy() for _ in range(int(n))])
        for what, value in (("positions", positions), ("rotations", rotations)):
            if value is not None and len(value) != n:
                raise ValueError(f"{what} needs one entry per cell ({n}), got {len(value)}")
        if positions is not None or rotations is not None:
            for i in range(int(n)):
                net.place(i, None if positions is None else positions[i],
                          None if rotations is None else rotations[i])
        return net

    # --- what lowering reads ------------------------------------------------
    @property
    def cells(self) -> tuple:
        return tuple(self._cells)

    @property
    def revision(self):
        return (self._revision, tuple(c.revision for c in self._cells))

    def __len__(self) -> int:
        return len(self._cells)

    @property
    def populations(self) -> list:
        """The point populations (``Population`` handles), in order of creation."""
        return [Population(self, k) for k in range(len(self.wiring.populations))]

    def cell(self, i: int) -> NetCell:
        """Cell ``i`` (its locations carry the cell index: ``net.cell(i).soma(0.5)``)."""
        n = len(self._cells)
        whole = is_number(i) and np.asarray(i).dtype.kind in "iu"  # ints, 0-d JAX ints too
        if not whole:
            raise IndexError(f"cell index must be a whole number, got {i!r}")
        if not -n <= i < n:
            raise IndexError(f"cell {i!r} out of range: the network has {n} cells")
        return NetCell(self, int(i) % n)

    def add(self, cell: Cell, position=None, rotation=None) -> NetCell:
        """Add a cell; returns its view. ``position`` [3] (um): where the cell's soma centre
        goes (LFPy's ``set_pos``: the mean of the soma segments' midpoints); ``rotation``:
        3 angles (radians, about x, then y, then z, as LFPy's ``set_rotation``) or a
        [3, 3] matrix, about the soma centre. Both only matter for extracellular readouts
        (``record_extracellular``, ``record_dipole``); None: as in the morphology."""
        if isinstance(cell, NetCell):
            cell = cell.cell
        if not isinstance(cell, Cell):
            raise TypeError(f"Network.add takes a dendrax.Cell, got {type(cell).__name__}")
        if any(c is cell for c in self._cells):
            raise ValueError("this Cell is already in the network; add cell.copy() for a copy")
        self._cells.append(cell)
        self._revision += 1
        if position is not None or rotation is not None:
            self.place(len(self._cells) - 1, position, rotation)
        return self.cell(len(self._cells) - 1)

    def place(self, i: int, position=None, rotation=None) -> "Network":
        """Put cell ``i`` at ``position`` (soma centre, um) with ``rotation`` (see ``add``)."""

        i = self.cell(i).index
        pos = None if position is None else check_position(magnitude(position, "um", "position"))
        rot = None if rotation is None else rotation_matrix(rotation)
        self.wiring.placements[i] = (pos, rot)
        self._revision += 1
        return self

    def position(self, i: int) -> np.ndarray:
        """[3] where cell ``i``'s soma centre is (um), placed or as in its morphology."""

        i = self.cell(i).index
        pos = self.wiring.placements.get(i, (None, None))[0]
        return pos if pos is not None else soma_centre(self._cells[i])

    # --- sources --------------------------------------------------------------
    def spike_source(self, times) -> Source:
        """An artificial spike source firing at ``times`` (ms; one number or a 1-D list, in
        any order), as NEURON's VecStim."""
        times = real_array(magnitude(times, "ms", "spike times"), "spike times")
        if np.ndim(times) > 1:
            raise ValueError(f"spike times of one source are a 1-D list (ms), got shape "
                             f"{np.shape(times)}: one spike_source per train")
        times = np.sort(np.ravel(times))
        if not np.all(np.isfinite(times)) or np.any(times < 0):
            raise ValueError(f"spike times must be finite and >= 0 ms, got {times}")
        self.wiring.sources.append(times)
        self._revision += 1
        return Source(len(self.wiring.sources) - 1, id(self))

    def poisson_source(self, rate: float, key, *, start: float = 0.0, stop: float) -> Source:
        """A Poisson spike train of ``rate`` (Hz) from ``start`` to ``stop`` (ms), drawn from the
        JAX PRNG ``key`` (or an int seed): the same key gives the same train."""
        rate, start, stop = (_real(k, magnitude(v, u, k)) for k, v, u in
                             (("rate", rate, "Hz"), ("start", start, "ms"), ("stop", stop, "ms")))
        if not (np.isfinite(rate) and rate >= 0):
            raise ValueError(f"rate must be a finite number >= 0 Hz, got {rate!r}")
        if not (np.isfinite(start) and np.isfinite(stop)):
            raise ValueError(f"start and stop must be finite (ms; the train is drawn up front), "
                             f"got start={start}, stop={stop}")
        if not 0 <= start <= stop:
            raise ValueError(f"need 0 <= start <= stop (ms), got start={start}, stop={stop}")
        mean = rate * (stop - start) * 1e-3
        if mean > 1e8:
            raise ValueError(f"rate x duration = {mean:.3g} spikes expected from one source: "
                             "check the rate (Hz) and the times (ms)")
        n_max = int(mean + 10.0 * np.sqrt(mean) + 20)
        gaps = rules.rng(key).exponential(1e3 / rate, n_max) if rate > 0 else np.zeros(0)
        times = start + np.cumsum(gaps)
        return self.spike_source(times[times < stop])

    # --- point neurons ---------------------------------------------------------
    def population(self, model, n: int, *, name: str | None = None, spike_times=None,
                   surrogate=None, **params) -> Population:
        """A population of ``n`` point neurons or generators (docs/point_neurons.md).

        Args:
            model: a registered point-neuron model with NEST's name ("iaf_psc_alpha",
                "iaf_psc_exp", ...; ``dendrax plugins`` lists them), a generator
                ("poisson_generator", "spike_generator", "dc_generator"), or a
                ``dendrax.point.PointNeuron`` subclass.
            n: number of neurons.
            name: the population's name (default "<model>_<k>"); its parameters are
                ``params["populations"][name]``.
            spike_times: spike_generator only: the spike times (ms) of each generator (one
                list, or n lists).
            surrogate: for training: a surrogate gradient for the spikes (a name such as
                "fast_sigmoid" or a ``dendrax.point.surrogate.Surrogate``); the spikes then
                carry gradients (``dendrax.point.surrogate``). Values are unchanged.
            **params: the model's parameters in NEST's names and units (scalars or one
                value per neuron), e.g. ``I_e=376.0`` (pA), ``rate=8000.0`` (Hz).
        """
        spec = population_spec(self.wiring.populations, model, n, name, spike_times,
                               surrogate, params)
        self.wiring.populations.append(spec)
        self._revision += 1
        return Population(self, len(self.wiring.populations) - 1)

    def _connect_points(self, pre, post, synapse, weight, delay, threshold, params, rule, p, key):
        """Connections with a point population at either end (NEST's Connect rules)."""
        block = point_connections(self.wiring.populations, self._cell_of, pre, post, synapse,
                                  weight, delay, threshold, params, rule, p, key)
        if block.post_cell is not None:  # point neurons onto cells' synapses
            self._keep_post_ends(block.post_cell, block.post_section, block.post_x)
        if any(r[0] == block.synapse for r in self.wiring.point_recordings):
            warnings.warn(f"these {block.synapse} connections are not among those recorded: "
                          f"net.record(name, {block.synapse!r}) records the connections made "
                          "before it; call it again to record these too", stacklevel=3)
        self.wiring.blocks.append(block)
        self._revision += 1
        return self

    # --- connections ------------------------------------------------------------
    def connect(self, pre, post, synapse: str = "static", *, weight=None, delay=None,
                threshold=None, p: float | None = None, key=None,
                one_to_one: bool = False, all_to_all: bool = False, indegree: int | None = None,
                **params) -> "Network":
        """Connect ``pre`` to ``post`` with synapses of kind ``synapse``.

        Between cells: one synapse at ``post`` driven from ``pre``. With a point population
        (or ``pop[i:j]``) at either end, NEST's rules: all to all (the default), one to one
        (``one_to_one=True``), each pair with probability ``p``, or ``indegree`` sources
        drawn for every target (NEST's fixed_indegree; ``key``: a JAX PRNG key or an int
        seed); onto point neurons the synapse is "static" (weight in the target model's
        ``weight_unit``: pA, nS or mV; negative: inhibitory), "stdp_synapse" or
        "tsodyks2_synapse".

        Args:
            pre: a location on a cell (``net.cell(0).soma(0.5)``), a ``Source``, a
                population or some of its neurons.
            post: a location on a cell (``net.cell(1).section(1)(0.1)``), a population or
                some of its neurons.
            synapse: "static" onto point neurons; else a registered synapse name ("Exp2Syn",
                "IonotropicSynapse", ...), or a ``Synapse`` / ``GradedSynapse`` class or instance.
            weight: uS for conductance synapses on cells; pA / nS onto point neurons
                (required for event-driven synapses; scalar or one per connection).
            delay: ms from the spike (or, for graded synapses, the presynaptic voltage)
                to its effect, >= 0 (>= dt onto point neurons, as NEST). Default: 1 ms for
                spikes (NEURON's NetCon, NEST's default), 0 for graded synapses (as Jaxley).
            threshold: mV; spikes are detected when a cell's v rises above it (default
                NEURON's NetCon threshold, 10 mV; only where ``pre`` is on a cell).
            **params: the synapse's parameters (e.g. tau1, tau2, e).
        """
        for flag, value in (("one_to_one", one_to_one), ("all_to_all", all_to_all)):
            if not isinstance(value, (bool, np.bool_)):
                raise ValueError(f"{flag} must be True or False, got {value!r}")
        points = any(isinstance(x, (Population, Neurons)) for x in (pre, post))
        if points:
            rule = "one_to_one" if one_to_one else "pairwise_bernoulli" if p is not None \
                else "fixed_indegree" if indegree is not None else "all_to_all"
            if one_to_one + (p is not None) + all_to_all + (indegree is not None) > 1:
                raise ValueError("choose one rule: all_to_all, one_to_one, p or indegree")
            if key is not None and rule not in ("pairwise_bernoulli", "fixed_indegree"):
                raise ValueError("key= draws the random rules (p= or indegree=); "
                                 f"{rule} connects without it")
            if threshold is not None and isinstance(pre, (Population, Neurons)):
                raise ValueError("threshold= detects spikes on cells; a point population's "
                                 "neurons spike by their own model")
            threshold = NETCON_THRESHOLD if threshold is None else threshold
            return self._connect_points(pre, post, synapse, weight,
                                        1.0 if delay is None else delay, threshold, params,
                                        rule, indegree if indegree is not None else p, key)
        if isinstance(synapse, str) and synapse in ("static", "static_synapse"):
            raise ValueError("a 'static' connection (the default synapse) is one onto point "
                             "neurons; onto a cell give the synapse to place there, e.g. "
                             "net.connect(pre, post, 'Exp2Syn', weight=0.001)")
        if p is not None or key is not None or one_to_one or all_to_all or indegree is not None:
            raise ValueError("p, key, indegree, one_to_one and all_to_all are rules between populations; "
                             "between cells use fully_connect / sparse_connect / connect_matrix")
        threshold = NETCON_THRESHOLD if threshold is None else threshold
        if isinstance(pre, Source):
            if pre.network is not None and pre.network != id(self):
                raise ValueError(f"{pre} was made by another network: a spike source feeds the "
                                 "network whose spike_source / poisson_source made it")
            return self._block(synapse, None, None, None, [pre.index], [self._cell_of(post)],
                               [post.section], [post.x], weight, delay, threshold, params)
        return self._block(synapse, [self._cell_of(pre)], [pre.section], [pre.x], None,
                           [self._cell_of(post)], [post.section], [post.x], weight, delay,
                           threshold, params)

    def gap_junction(self, a: Location, b: Location, *, g, synapse="GapJunction") -> "Network":
        """Join the sites ``a`` and ``b`` (locations on cells, ``net.cell(i).soma(0.5)``) by an
        electrical synapse of conductance ``g`` (uS): a current g (v_a - v_b) leaves ``a``
        and enters ``b``. It places two halves, ``GapJunction`` at ``b`` reading ``a`` and at
        ``a`` reading ``b`` (as NEURON's pair of half-gap point processes joined by
        ``ParallelContext.source_var`` / ``target_var`` or ``setpointer``): each half is
        implicit in its own site's voltage and takes the other's at the start of the step.
        ``g`` is one number or one per half ([2]: the half at ``b``, then at ``a``); the
        halves are two entries of ``params["synapses"]["GapJunction"]["g"]``. ``synapse``:
        another graded synapse class for both halves (e.g. a rectifying junction)."""
        if np.ndim(g) > 0 and np.shape(g) != (2,):
            raise ValueError(f"g is one number or one per half ([2]: the half at b, then at a), "
                             f"got shape {np.shape(g)}")
        ca, cb = self._cell_of(a), self._cell_of(b)
        if ca == cb and self._point_site(ca, a) == self._point_site(cb, b):
            raise ValueError(f"a gap junction joins two different sites; {a} and {b} are the "
                             "same node")
        if not isinstance(synapse_mechanism(synapse), GradedSynapse):
            raise ValueError(f"a gap junction's halves are graded synapses (a current of v and "
                             f"v_pre, such as 'GapJunction'); {synapse!r} is not one")
        return self._block(synapse, [ca, cb], [a.section, b.section], [a.x, b.x], None,
                           [cb, ca], [b.section, a.section], [b.x, a.x], None, 0.0,
                           NETCON_THRESHOLD, {"g": g})

    def _point_site(self, c: int, loc: Location) -> tuple:
        """Where a point process at ``loc`` of cell ``c`` sits: its node, or a section end
        that gets a node of its own once something is placed there (NEURON's zero-area
        node at a terminal x = 1 or the root's x = 0)."""
        cell = self._cells[c]
        if morph_lib.dropped_end(cell.compartments, loc.section, loc.x):
            return ("end", loc.section, float(loc.x))
        return ("node", cell.node(loc))

    def fully_connect(self, pre, post, synapse: str, *, pre_loc: Location | None = None,
                      post_loc: Location | None = None, **kwargs) -> "Network":
        """Connect every cell of ``pre`` to every cell of ``post`` (iterables of cell
        indices), from ``pre_loc`` to ``post_loc`` of each (a location without a cell,
        e.g. ``cell.section(1)(0.5)``; default: the soma centre). Parameters as
        ``connect``; each may be a scalar or an array with one value per connection
        (pre-major order)."""
        pre, post = _indices(pre, "pre"), _indices(post, "post")
        i, j = rules.all_to_all(pre.size, post.size)
        return self._pairs(pre[i], post[j], synapse,
                           pre_loc, post_loc, kwargs)

    def sparse_connect(self, pre, post, synapse: str, *, p: float, key,
                       pre_loc: Location | None = None, post_loc: Location | None = None,
                       **kwargs) -> "Network":
        """Connect each (pre, post) pair independently with probability ``p``, drawn from
        the JAX PRNG ``key`` (or an int seed). Otherwise as ``fully_connect``."""
        if not is_number(p) or not 0.0 <= p <= 1.0:
            raise ValueError(f"p must be a probability in [0, 1], got {p!r}")
        pre, post = _indices(pre, "pre"), _indices(post, "post")
        i, j = rules.pairwise_bernoulli(pre.size, post.size, p, key)
        return self._pairs(pre[i], post[j], synapse, pre_loc, post_loc, kwargs)

    def connect_matrix(self, matrix, synapse: str, *, pre=None, post=None,
                       pre_loc: Location | None = None, post_loc: Location | None = None,
                       **kwargs) -> "Network":
        """Connect pre cell ``pre[i]`` to post cell ``post[j]`` wherever ``matrix[i, j]`` is
        nonzero (default pre, post: all cells). For event synapses without a ``weight``
        argument the matrix entries are the weights (uS)."""
        m = np.asarray(matrix)
        if m.dtype.kind not in "biuf":
            raise ValueError(f"matrix must hold numbers (weights) or booleans, got {m.dtype}")
        pre = np.arange(len(self)) if pre is None else _indices(pre, "pre")
        post = np.arange(len(self)) if post is None else _indices(post, "post")
        if m.shape != (pre.size, post.size):
            raise ValueError(f"matrix has shape {m.shape}; expected ({pre.size}, {post.size}) "
                             "(pre cells x post cells)")
        if not np.all(np.isfinite(m)):
            raise ValueError("matrix has non-finite entries")
        i, j = np.nonzero(m)
        graded = isinstance(synapse_mechanism(synapse), GradedSynapse)
        if graded and m.dtype != bool and np.any(m[i, j] != 1):
            raise ValueError(f"{synapse} is a graded synapse, which has no weight: give a matrix "
                             "of booleans (or 0 and 1) for where to connect, and its "
                             "conductance as a parameter (e.g. gS=...)")
        if not graded and "weight" not in kwargs and m.dtype != bool:
            kwargs["weight"] = m[i, j].astype(float)
        return self._pairs(pre[i], post[j], synapse, pre_loc, post_loc, kwargs)

    def _pairs(self, pre, post, synapse, pre_loc, post_loc, kwargs):
        pre_s, pre_x = self._site(pre, pre_loc)
        post_s, post_x = self._site(post, post_loc)
        weight = kwargs.pop("weight", None)
        delay = kwargs.pop("delay", None)
        threshold = kwargs.pop("threshold", NETCON_THRESHOLD)
        return self._block(synapse, pre, pre_s, pre_x, None, post, post_s, post_x, weight, delay,
                           threshold, kwargs)

    def _site(self, cells, loc):
        """Section and x [n] of ``loc`` on each of ``cells`` (default each one's soma centre)."""
        n = len(self._cells)
        if cells.size and (cells.min() < -n or cells.max() >= n):
            raise IndexError(f"cell indices must lie in [-{n}, {n}) (negative ones count from "
                             f"the end), got {cells.min()}..{cells.max()}")
        cells %= max(n, 1)
        if loc is None:
            unique, inverse = np.unique(cells, return_inverse=True)
            soma = np.array([self._cells[c].soma().section for c in unique], int)
            return soma[inverse.ravel()], np.full(cells.size, 0.5)
        if not isinstance(loc, Location):
            raise ValueError(f"expected a Location such as cell.soma(0.5), got {loc!r}")
        if loc.cell is not None:
            raise ValueError(f"{loc} is on cell {loc.cell}, but the location is placed on each "
                             "connected cell: give one without a cell, e.g. "
                             "dx.Location(section, x) or template.section(k)(x)")
        sections = np.empty(cells.size, int)
        for c in np.unique(cells):  # an IndexError where a cell lacks the section, a
            cell = self._cells[c]  # ValueError for an x outside [0, 1]
            k = cell.section(loc.section).index
            cell.node(Location(k, loc.x))
            sections[cells == c] = k
        return sections, np.full(cells.size, float(loc.x))

    def _cell_of(self, loc) -> int:
        if not isinstance(loc, Location):
            raise ValueError(f"expected a location such as net.cell(0).soma(0.5), got {loc!r}")
        if loc.cell is None:
            raise ValueError(f"{loc} does not say which cell it is on: use net.cell(i).soma(0.5) "
                             "or net.cell(i).section(k)(x)")
        refuse_other_network(loc, self)
        c = self.cell(loc.cell).index
        self._cells[c].node(loc)  # validates section and x
        return c

    def _block(self, synapse, pre_cell, pre_section, pre_x, pre_source, post_cell, post_section,
               post_x, weight, delay, threshold, params):
        mech = synapse_mechanism(plastic_onto_cells_refused(synapse))
        synapse = mech.name
        graded = isinstance(mech, GradedSynapse)
        post_cell = np.asarray(post_cell, int)
        n = post_cell.size
        if graded:
            if not (threshold is NETCON_THRESHOLD
                    or (np.ndim(threshold) == 0 and threshold == NETCON_THRESHOLD)):
                raise ValueError(f"{synapse} is a graded synapse: it has no spike threshold")
            if weight is not None:
                raise ValueError(f"{synapse} is a graded synapse: it has no weight (set its "
                                 f"conductance parameter, e.g. gS)")
            if pre_cell is None:
                raise ValueError(f"{synapse} is a graded synapse: its presynaptic side must be "
                                 "a location on a cell, not a spike source")
            extra = {"delay": 0.0 if delay is None else delay}  # Jaxley's: no delay
        else:
            if weight is None:
                raise ValueError(f"{synapse} connections need a weight (uS)")
            extra = {"weight": weight, "delay": 1.0 if delay is None else delay}
        values = {k: _per_connection(f"{synapse} {k}", v, n)
                  for k, v in synapse_values(mech, params, **extra).items()}
        if pre_source is not None:
            pre_source = np.asarray(pre_source, int)
            if pre_source.min(initial=0) < 0 or pre_source.max(initial=-1) >= len(self.wiring.sources):
                raise ValueError("unknown spike source")
        thr = None
        if not graded:  # checked from a spike source too, where it plays no part (NEURON's)
            thr = _per_connection("threshold", real_array(magnitude(threshold, "mV", "threshold"),
                                                          "threshold"), n)
            if not np.all(np.isfinite(thr)):
                raise ValueError(f"threshold must be finite, got {threshold!r}")
            if pre_cell is None:
                thr = None
        self._keep_post_ends(post_cell, np.asarray(post_section, int), np.asarray(post_x, float))
        as_arr = lambda a, t: None if a is None else np.asarray(a, t)  # noqa: E731
        self.wiring.blocks.append(Block(
            synapse, mech, graded, as_arr(pre_cell, int), as_arr(pre_section, int),
            as_arr(pre_x, float), pre_source, thr, post_cell, np.asarray(post_section, int),
            np.asarray(post_x, float), values))
        self._revision += 1
        return self

    def _keep_post_ends(self, cells, sections, xs) -> None:
        """Let each cell keep NEURON's zero-area node at the section ends where synapses go
        (a terminal x = 1 or the root's x = 0; ``Cell.point_node``): cells [n], sections [n],
        xs [n]."""
        ends = (xs == 0.0) | (xs == 1.0)
        for c, k, x in sorted({(int(c), int(k), float(x)) for c, k, x in
                               zip(cells[ends], sections[ends], xs[ends])}):
            self._cells[c].point_node(Location(k, x))

    @property
    def n_connections(self) -> int:
        return sum(b.size for b in self.wiring.blocks)

    # --- recordings ----------------------------------------------------------------
    def record_spikes(self, cells=None, *, threshold: float = NETCON_THRESHOLD,
                      loc: Location | None = None) -> "Network":
        """Record the spike times of ``cells`` (default all) at ``loc`` (default each soma
        centre), as NEURON's ``NetCon.record``: ``res.spikes[k]`` for the k-th recorded.
        ``cells`` may be a point population or some of its neurons (``pop[:100]``): their
        spikes on the grid, as NEST's spike_recorder."""
        if isinstance(cells, (list, tuple)) and cells and all(
                isinstance(c, (Population, Neurons)) for c in cells):
            for c in cells:  # several populations (or selections), each as one
                self.record_spikes(c, threshold=threshold, loc=loc)
            return self
        if isinstance(cells, (Population, Neurons)):
            if loc is not None or threshold != NETCON_THRESHOLD:
                raise ValueError("threshold and loc are a detailed cell's (NEURON's NetCon); "
                                 "a point neuron's spikes are its model's: record_spikes(pop) "
                                 "takes neither")
            nrn = neurons(self.wiring.populations, cells)
            from .point import Generator

            model = self.wiring.populations[nrn.population].model
            if isinstance(model, Generator):
                raise ValueError(f"{model.name} is a generator: its spikes are not recorded (as "
                                 "NEST's); connect it to a parrot_neuron population and record "
                                 "that")
            self.wiring.point_spike_records.extend((nrn.population, int(i)) for i in nrn.index)
            self._revision += 1
            return self
        cells = np.arange(len(self)) if cells is None else _indices(
            [cells] if np.ndim(cells) == 0 else cells, "cells")
        threshold = magnitude(threshold, "mV", "threshold")
        if not np.isfinite(_real("threshold", threshold)):
            raise ValueError(f"threshold must be finite, got {threshold!r}")
        secs, xs = self._site(cells, loc)
        for c, s, x in zip(cells.tolist(), secs.tolist(), xs.tolist()):
            self.wiring.spike_records.append((c, s, x, float(threshold)))
        self._revision += 1
        return self

    def record(self, name: str = "v", loc=None, *, reduce: str | None = None) -> "Network":
        """Record ``name`` (as ``Cell.record``: "v", a state, a current, a synapse's "i" or
        "g", ...) at ``loc``, a location on a cell (``net.cell(2).soma(0.5)``) or a list of
        them; ``reduce`` "max" / "min" / "mean" keeps only that statistic. ``loc`` may also
        be a population (its neurons' states) or a plastic synapse kind ("stdp_synapse":
        every connection of it made so far, a trace each).

        A synapse's quantity ("Exp2Syn.g") names the one synapse of that kind at ``loc``'s
        node; where several share it (``fully_connect`` onto one soma, two gap junction
        halves at one site), "Exp2Syn[k].g" records the k-th of them, counted from 0 in the
        order they were placed there (a cell's own synapses, then connections in the order
        made; ``gap_junction(a, b)`` places the half at b, then at a), as NEURON records
        each synapse object; the plain name is refused there when the run is lowered."""
        if reduce not in REDUCTIONS:
            raise ValueError(f"reduce must be one of {REDUCTIONS}, got {reduce!r}")
        if isinstance(loc, str):  # a plastic synapse kind: every connection of it
            from .point.plasticity import PLASTIC

            if loc not in PLASTIC or not any(b.synapse == loc for b in self.wiring.blocks):
                raise ValueError(f"no {loc!r} connections to record; plastic kinds: "
                                 f"{sorted(PLASTIC)}")
            if name not in PLASTIC[loc].states:
                raise ValueError(f"{loc} records {list(PLASTIC[loc].states)}, not {name!r}")
            n = sum(b.size for b in self.wiring.blocks if b.synapse == loc)
            self.wiring.point_recordings.extend((loc, name, k, reduce) for k in range(n))
            self._revision += 1
            return self
        if isinstance(loc, (Population, Neurons)):
            nrn = neurons(self.wiring.populations, loc)
            model = self.wiring.populations[nrn.population].model
            if name not in model.recordables:
                raise ValueError(f"{model.name} cannot record {name!r}; it records "
                                 f"{list(model.recordables)}")
            self.wiring.point_recordings.extend((nrn.population, name, int(i), reduce)
                                                for i in nrn.index)
            self._revision += 1
            return self
        locs = list(loc) if isinstance(loc, (list, tuple)) and not isinstance(loc, Location) \
            else [loc]
        kinds = {b.synapse: b.mech for b in self.wiring.blocks}
        for one in locs:
            c = self._cell_of(one)
            self._cells[c].check_record(name, one, synapses=kinds)
            if name == "i_membrane":  # an end's node, as Cell.record
                self._cells[c].point_node(one._replace(cell=None))
            self.wiring.recordings.append((c, name, one, reduce))
        self._revision += 1
        return self

    def record_extracellular(self, electrodes, name: str = "lfp", cells=None) -> "Network":
        """Record the extracellular potential at ``electrodes`` (``dendrax.Electrodes``)
        made by the membrane currents of ``cells`` (indices; default all), each placed as
        ``add``/``replicate``/``place`` put it, inside the run: ``res[name]`` [E, n_t], uV."""

        fields.check_name(name, self._field_names())
        rec = fields.FieldRecord(name, "lfp", fields.check_electrodes(electrodes),
                                 self._field_cells(cells))
        self.wiring.fields.append(rec)
        self._revision += 1
        return self

    def record_dipole(self, name: str = "dipole", cells=None, *, per_cell: bool = False) -> "Network":
        """Record the current dipole moment (nA um) of ``cells`` (default all) inside the run:
        ``res[name]`` [3, n_t] summed over them, or with ``per_cell`` one moment per cell,
        [3 C, n_t] (rows 3 k + axis for the k-th cell: ``res[name].reshape(C, 3, -1)``)."""

        fields.check_name(name, self._field_names())
        if not isinstance(per_cell, (bool, np.bool_)):
            raise ValueError(f"per_cell must be True or False, got {per_cell!r}")
        self.wiring.fields.append(fields.FieldRecord(name, "dipole", None, self._field_cells(cells),
                                                     bool(per_cell)))
        self._revision += 1
        return self

    def _field_names(self) -> list:
        return [r.name for r in self.wiring.fields] + [r.name for c in self._cells
                                                        for r in c.field_records]

    def _field_cells(self, cells):
        if cells is None:
            return None
        idx = _indices([cells] if np.ndim(cells) == 0 else cells, "cells")
        if not idx.size:
            raise ValueError("cells is empty: give cell indices or None for all")
        out = tuple(self.cell(int(i)).index for i in idx)
        if len(set(out)) < len(out):  # a cell counted twice would double its field
            raise ValueError(f"cells lists a cell more than once: {idx.tolist()}")
        return out

    def location_name(self, loc) -> str:
        """NEURON-style name of a location on a cell of the network: "cell[3].soma(0.5)";
        of a point neuron: "<population>[i]"."""
        if isinstance(loc, NeuronRef):
            if isinstance(loc.population, str):  # a plastic connection
                return f"{loc.population}[{loc.index}]"
            return f"{self.wiring.populations[loc.population].name}[{loc.index}]"
        c = self._cell_of(loc)
        return f"cell[{c}].{self._cells[c].location_name(loc)}"

    @property
    def params(self) -> dict:
        """The params pytree of ``dendrax.lower(net)`` (see ``dendrax.lowering``)."""

        return lower(self).params

    def param_slots(self, name: str, where=None):
        """Where parameter ``name`` at ``where`` lives in ``net.params`` (``Layout.slots``)."""
        items = where if isinstance(where, (list, tuple)) and not isinstance(where, Location) \
            else [where]
        for item in items:
            if isinstance(item, NetCell) and item.network is not self:
                raise ValueError(f"{item!r} is a cell of another network: use this network's "
                                 "net.cell(i)")
            if isinstance(item, (Location, SectionRef)):
                refuse_other_network(item, self)
        return lower(self).layout.slots(name, where)

    def __repr__(self):
        return f"Network({len(self)} cells, {self.n_connections} connections)"


def _per_connection(name: str, value, n: int) -> np.ndarray:
    """[n] floats of a scalar or of one value per connection; a ValueError naming the
    parameter otherwise."""
    v = np.asarray(value, float)
    try:
        return np.broadcast_to(v, (n,)).copy()
    except ValueError:
        raise ValueError(f"{name}: give one number or one per connection ({n}), got shape "
                         f"{v.shape}") from None


def _indices(values, what: str) -> np.ndarray:
    """int [n] cell indices from an iterable; a ValueError for anything that is not a whole
    number (a float would be truncated, a boolean read as 0 or 1)."""
    if np.ndim(values) == 0 and not isinstance(values, (list, tuple, range)):
        try:
            values = list(values)  # any other iterable (a generator, a set)
        except TypeError:
            raise ValueError(f"{what}: give a list of cell indices, got {values!r}") from None
    arr = np.asarray(list(values) if not isinstance(values, np.ndarray) else values)
    if arr.size and (arr.dtype.kind not in "iu" or arr.ndim != 1):
        if arr.dtype.kind == "f" and arr.ndim == 1 and np.all(np.isfinite(arr)) \
                and np.all(arr % 1 == 0):
            return arr.astype(int)
        raise ValueError(f"{what} must be cell indices (whole numbers), got {values!r}")
    return arr.astype(int).reshape(-1)
