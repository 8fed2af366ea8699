"""What a simulation returns: ``Result``, a pytree of traces, statistics and spikes with
their labels, units and the run's settings."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from .quantities import is_number


@jax.tree_util.register_pytree_node_class
class Result:
    """What a simulation recorded (a pytree: ``jax.jit`` can return it).

    Attributes:
        t: [n_t] times in ms (0, k dt, ..., t_stop; k = record_every; a resumed run's from
            t_start + k dt).
        traces: [n_traces, n_t] in the recorded quantity's units (``units``).
        labels: (name, Location) of each trace (in a network, each Location carries its
            cell index), grouped: each cell's own recordings (cell 0's first), the
            network's recordings of cells (``Network.record``), those of point neurons and
            plastic connections, then extracellular readouts; within a group in the order
            added. Read a trace by its label (``res[name, loc]``) rather than by position.
        units: the unit of each trace ("mV", "nA", "mA/cm2", "uS", "mM", "1"; extracellular
            readouts: "uV" for potentials, "nA um" for current dipole moments).
        stats: [n_stats] the statistics asked for with ``record(..., reduce=...)``.
        stat_labels: (name, Location, "max" | "min" | "mean") of each statistic.
        stat_units: the unit of each statistic.
        raster: [n_steps, Q] bool: whether recorded spike source q fired at step n (t = n dt;
            a resumed run's rows from its ``first_step``); int32, how many times, where a
            recorded source can fire more than once in one step (``PointNeuron.spike_count``:
            aeif_cond_exp with t_ref = 0, as NEST's, which records one event per firing, and
            parrot_neuron), in one piece or streamed.
        spike_cells: [Q] the neuron of each recorded spike source: cells 0 .. C - 1, then
            point neurons C + k (k numbered over all populations).
        spike_shift: [Q] steps from a raster row to the spike's time (1 for point neurons,
            which spike at the end of their update: row n means t = (n + 1) dt).
        meta: the run's settings: dt, t_stop, v_init, celsius, method, record_every, the
            dendrax version and "model", a fingerprint of the simulated description
            (``Layout.fingerprint``: its sections, nodes and recordings); a resumed run's
            also "t_start", where it took over (its samples and raster start after it).
        state: the simulation state at t_stop (``dendrax.state.State``), which
            ``simulate(..., resume=res)`` goes on from. A Result returned from ``jax.jit`` or
            ``jax.vmap`` carries it too (per member: v, gates, spike buffers, plastic
            weights); return ``res.traces`` where only the traces are needed.
    """

    def __init__(self, t, traces, labels, raster=None, spike_cells=(), *, units=None, stats=None,
                 stat_labels=(), stat_units=(), meta=None, spike_times=None, spike_shift=None,
                 state=None, counts=False):
        self.t, self.traces, self.labels, self.state = t, traces, list(labels), state
        self.units = tuple(units) if units is not None else tuple(
            "mV" if name == "v" else "" for name, _ in self.labels)
        self.stats = jnp.zeros(0) if stats is None else stats
        self.stat_labels, self.stat_units = list(stat_labels), tuple(stat_units)
        self.meta = dict(meta or {})
        self.spike_cells = tuple(int(c) for c in spike_cells)
        self.spike_shift = tuple(int(k) for k in (spike_shift if spike_shift is not None
                                                  else [0] * len(self.spike_cells)))
        self._spike_times = spike_times
        self._counts = bool(counts)  # spike_times' raster holds counts (as the run's would)
        if raster is None and spike_times is None:
            raster = jnp.zeros((max(len(t) - 1, 0), 0), bool)
        self._raster = raster

    def tree_flatten(self):
        aux = (tuple(self.labels), self.spike_cells, self.units, tuple(self.stat_labels),
               self.stat_units, tuple(sorted(self.meta.items())), self.spike_shift)
        return (self.t, self.traces, self.raster, self.stats, self.state), aux

    @classmethod
    def tree_unflatten(cls, aux, children):
        obj = cls.__new__(cls)
        obj.t, obj.traces, obj._raster, obj.stats, obj.state = children
        obj.labels, obj.spike_cells, obj.units = list(aux[0]), aux[1], aux[2]
        obj.stat_labels, obj.stat_units, obj.meta = list(aux[3]), aux[4], dict(aux[5])
        obj.spike_shift = aux[6]
        obj._spike_times = None
        return obj

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, key):
        """res[i]; res[name, location] as recorded (e.g. res["v", cell.soma(0.5)]), a trace;
        res[name, location, "max" | "min" | "mean"], a statistic; res[name], every trace
        recorded under that name, [rows, n_t] in the order of ``labels`` (e.g. res["lfp"]: one
        row per electrode, uV). A Result of ``jax.vmap`` keeps its batch axes in front:
        [*batch, n_t] per trace."""
        if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
            n = len(self.labels)
            if not -n <= key < n:  # JAX would clamp it to the last (or first) trace
                raise IndexError(f"trace {key} out of range: {n} traces were recorded "
                                 f"(indices 0 to {n - 1}, or negative from the end)")
            return self.traces[..., key, :]
        if isinstance(key, str):
            rows = [i for i, lab in enumerate(self.labels) if lab[0] == key]
            if not rows:
                raise KeyError(f"nothing was recorded as {key!r}; recorded names: "
                               f"{sorted({lab[0] for lab in self.labels})}")
            return self.traces[..., np.asarray(rows), :]
        key = tuple(key) if isinstance(key, list) else key
        if not isinstance(key, tuple) or len(key) not in (2, 3):
            raise KeyError(f"res[...] takes a trace index, a recorded name, (name, location) or "
                           f"(name, location, statistic), got {key!r}")
        labels, values = (self.labels, self.traces) if len(key) == 2 else (self.stat_labels,
                                                                         self.stats)

        def row(i):  # a trace [..., n_t] or a statistic [...], batch axes first
            return values[..., i, :] if len(key) == 2 else values[..., i]

        key = (key[0], _one_neuron(key[1]), *key[2:])
        if key in labels:
            return row(labels.index(key))
        if hasattr(key[1], "_replace") and getattr(key[1], "cell", 0) is None:
            hits = [i for i, lab in enumerate(labels)
                    if lab[0] == key[0] and lab[1]._replace(cell=None) == key[1] and lab[2:] == key[2:]]
            if len(hits) == 1:
                return row(hits[0])
            if hits:
                cells = sorted({labels[i][1].cell for i in hits})
                raise KeyError(f"{key!r} was recorded on cells {cells}: give the cell's location, "
                               f"e.g. net.cell({cells[0]}).soma(0.5)")
        raise KeyError(f"{key!r} was not recorded; recorded: traces {self.labels}, "
                       f"statistics {self.stat_labels}")

    @property
    def dt(self) -> float:
        """The time step (ms)."""
        if "dt" in self.meta:
            return float(self.meta["dt"])
        t = np.asarray(self.t)
        return float(t[1] - t[0]) if t.size > 1 else 0.0

    @property
    def first_step(self) -> int:
        """The step the run started from: 0, or a resumed run's t_start / dt."""
        return int(round(float(self.meta.get("t_start", 0.0)) / self.dt)) if self.meta else 0

    @property
    def raster(self):
        """[n_steps, Q] bool: whether recorded spike source q fired at step n (t = n dt; a
        resumed run's rows from its first step); int32 counts where a recorded source can
        fire more than once in one step (``PointNeuron.spike_count``; a spike time repeated
        in ``spikes``)."""
        if self._raster is None:  # a run streamed in pieces keeps spike times only
            n_steps = int(round(float(self.meta["t_stop"]) / self.dt)) - self.first_step
            repeated = self._counts or any(np.any(np.diff(t) == 0) for t in self._spike_times)
            raster = np.zeros((n_steps, len(self._spike_times)), np.int32 if repeated else bool)
            for q, times in enumerate(self._spike_times):
                rows = np.round(times / self.dt).astype(int) - self.spike_shift[q] - self.first_step
                if repeated:
                    np.add.at(raster[:, q], rows, 1)
                else:
                    raster[rows, q] = True
            self._raster = raster
        return self._raster

    def rates(self, t_start: float | None = None, t_stop: float | None = None) -> np.ndarray:
        """Mean firing rate (Hz) of each recorded source between t_start and t_stop (ms;
        default the whole run: 0, or a resumed run's t_start, to its end): spikes in the
        window / duration. A cell's window is [t_start, t_stop) (it spikes at the start of a
        step, NEURON's NetCon), a point neuron's (t_start, t_stop] (at the end of its update,
        NEST's recording window), so the rates of a run's resumed parts add up."""
        end = float(self.meta.get("t_stop", np.asarray(self.t)[-1]))
        begin = float(self.meta.get("t_start", 0.0))
        t_start = begin if t_start is None else t_start
        t_stop = end if t_stop is None else t_stop
        for name, value in (("t_start", t_start), ("t_stop", t_stop)):
            if not is_number(value) or \
                    not begin * (1 - 1e-12) <= value <= end * (1 + 1e-12):
                raise ValueError(f"rates: {name} must be a time within the run, {begin:g} to "
                                 f"{end:g} ms, got {value!r} (outside it no spike is seen, so "
                                 "the rate would be diluted)")
        if not t_stop > t_start:
            raise ValueError(f"need t_stop > t_start, got {t_start}, {t_stop}")
        return np.array([np.sum((s > t_start) & (s <= t_stop)) if shift else
                         np.sum((s >= t_start) & (s < t_stop))
                         for s, shift in zip(self.spikes, self.spike_shift)],
                        float) * 1e3 / (t_stop - t_start)

    def isis(self) -> list:
        """Inter-spike intervals (ms) of each recorded source."""
        return [np.diff(s) for s in self.spikes]

    @property
    def spikes(self) -> list:
        """Spike times (ms) of each recorded source, in the order recorded: a list of
        numpy arrays (NEURON's NetCon.record: the time of the step at whose start v was
        first found above threshold). A point neuron that fired k times in one step
        (``raster`` holds counts) has that step's time k times, as NEST's spike_recorder
        lists one event per firing."""
        if self._spike_times is not None:
            return list(self._spike_times)
        raster = np.asarray(self.raster)
        if raster.ndim != 2:
            raise ValueError(f"this Result holds a batch of runs (raster {raster.shape}, from "
                             "jax.vmap): take one run's first, e.g. "
                             "jax.tree_util.tree_map(lambda a: a[i], res)")
        steps = np.arange(raster.shape[0]) + self.first_step
        if raster.dtype == bool:
            return [(steps[raster[:, q]] + self.spike_shift[q]) * self.dt
                    for q in range(raster.shape[1])]
        return [(np.repeat(steps, raster[:, q]) + self.spike_shift[q]) * self.dt
                for q in range(raster.shape[1])]


def _one_neuron(where):
    """A point neuron as recordings label it, (population, neuron), from ``pop[i]`` (a
    ``Neurons`` of one) or a population of one; anything else as it is."""
    if hasattr(where, "spec") and hasattr(where, "all"):  # a Population
        where = where.all
    if hasattr(where, "population") and np.ndim(getattr(where, "index", 0)) == 1:  # Neurons
        ids = np.asarray(where.index)
        if ids.size != 1:
            raise KeyError(f"res[name, neurons] reads one neuron's trace; got {ids.size} "
                           "neurons: give one, e.g. pop[0] (res[name] gives every row)")
        return (int(where.population), int(ids[0]))
    return where
