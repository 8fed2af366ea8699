"""Export a simulation's recordings to NWB (Neurodata Without Borders) with pynwb.

``write_nwb(result, path, target=cell)`` writes one NWB file:

- membrane potential recordings ("v") -> ``acquisition``: one ``CurrentClampSeries``
  per recording, at an ``IntracellularElectrode`` for its location (device
  "dendrax simulation"); the data are the recorded mV values with
  ``conversion=1e-3`` and unit "volts" (``data[:] * conversion`` is the potential in V);
- voltage-clamp currents ("vclamp.i", nA) -> ``acquisition``: ``VoltageClampSeries``
  (unit "amperes", ``conversion=1e-9``) at the clamp's electrode;
- current-clamp currents ("iclamp.i", nA) -> ``stimulus``: ``CurrentClampStimulusSeries``
  (unit "amperes", ``conversion=1e-9``) at the stimulated site's electrode;
- every other recording (gates, ion currents, ``i_membrane``, synaptic states, ...) ->
  ``processing["dendrax"]``: a ``TimeSeries`` with the SI unit and conversion where one
  is obvious (mV -> volts 1e-3, nA -> amperes 1e-9, uS -> siemens 1e-6, ms -> seconds
  1e-3), otherwise the unit string as recorded ("1", "mA/cm2", "mM") with conversion 1;
- statistics kept without traces (``record(..., reduce="max")``) ->
  ``processing["dendrax"]["statistics"]``: a table with columns quantity, location,
  section, x, cell (-1 for a single cell), population and neuron (a point neuron's; ""
  and -1 for sites on cells), statistic, value, unit;
- recorded spike sources -> the ``units`` table: one unit per source, spike times in
  seconds, with columns "cell" (cell index) and "location";
- the run's settings (``result.meta``: dt, t_stop, v_init, celsius, method, dendrax
  version, model fingerprint) -> ``notes`` as JSON after the marker "dendrax settings (JSON): ", a readable
  summary in ``data_collection``, and ``was_generated_by`` [("dendrax", version)].

Every series keeps the recorded values unchanged (float64 stays float64) and names its
quantity and location in ``description``; its ``comments`` hold the dendrax label as
JSON ({"dendrax": {"quantity", "section", "x", "cell", "unit"}}; a point neuron's:
{"quantity", "population", "neuron", "unit"}), which ``read_nwb`` uses to give the
recordings back as dendrax labels.

pynwb is optional: ``pip install 'dendrax[nwb]'``; importing dendrax does not import it.
"""

from __future__ import annotations

import json
import pathlib
import uuid
from datetime import datetime

import numpy as np

from .quantities import is_number
from .version import __version__

__all__ = ["read_nwb", "write_nwb"]

INSTALL_HINT = "dendrax.nwb needs pynwb: pip install 'dendrax[nwb]' (or pip install pynwb)"
NOTES_MARKER = "dendrax settings (JSON): "
DEVICE = "dendrax simulation"
MODULE = "dendrax"
MODULE_DESCRIPTION = ("dendrax recordings other than membrane potential and clamp currents "
                      "(gates, ion currents, synaptic states, ...; see each series' "
                      "description) and the statistics of recordings kept without traces")

# recorded unit -> (NWB unit, conversion to it)
SI_UNITS = {"mV": ("volts", 1e-3), "V": ("volts", 1.0), "nA": ("amperes", 1e-9),
            "pA": ("amperes", 1e-12), "uS": ("siemens", 1e-6), "nS": ("siemens", 1e-9),
            "ms": ("seconds", 1e-3), "s": ("seconds", 1.0), "uV": ("volts", 1e-6),
            "nA um": ("ampere meters", 1e-15)}

QUANTITIES = {"v": "membrane potential", "vclamp.i": "voltage-clamp current",
              "iclamp.i": "current-clamp current", "i_membrane": "total membrane current",
              "i_cap": "capacitive current density"}


def _pynwb():
    try:
        import pynwb
    except ImportError as err:
        raise ImportError(INSTALL_HINT) from err
    return pynwb


def _default_unit(name: str) -> str:
    """The unit of a recording when the Result does not carry its units."""
    if name == "v":
        return "mV"
    if name in ("vclamp.i", "iclamp.i", "i_membrane") or name.endswith(".i"):
        return "nA"
    return "unknown"


def _location_name(target, loc) -> str:
    """NEURON-style name of ``loc``: "soma(0.5)", "cell[3].soma(0.5)"."""
    from .network import Network

    if hasattr(loc, "describe"):  # an extracellular readout's row (electrode, dipole axis)
        return loc.describe()
    named = getattr(target, "location_name", None)
    if named is None and _is_neuron(loc):  # a point neuron, or a plastic connection by kind
        pop = loc.population
        return f"{pop}[{loc.index}]" if isinstance(pop, str) else f"population {pop}[{loc.index}]"
    if named is not None:
        return named(loc)
    if isinstance(target, Network) and loc.cell is not None:
        cell = target.cells[loc.cell]
        if hasattr(cell, "location_name"):
            return f"cell[{loc.cell}].{cell.location_name(loc._replace(cell=None))}"
    base = f"sec{loc.section}({loc.x:g})"
    return base if loc.cell is None else f"cell[{loc.cell}].{base}"


def _is_neuron(loc) -> bool:
    """Whether a recording's site is a point neuron (or a plastic connection)."""
    return hasattr(loc, "population") and hasattr(loc, "index")


def _site(loc, name: str) -> dict:
    """A recording's site in its series' JSON label."""
    if hasattr(loc, "describe"):
        return {"readout": name}
    if _is_neuron(loc):
        return {"population": loc.population, "neuron": int(loc.index)}
    return {"section": int(loc.section), "x": float(loc.x), "cell": loc.cell}


def _quantity(name: str) -> str:
    if name in QUANTITIES:
        return QUANTITIES[name]
    mech, _, state = name.partition(".")
    if state:
        return f"{mech} state {state}"
    if name.startswith("i") and len(name) > 1:
        return f"{name[1:]} current density"
    return name


def _spike_locations(target, n_sources):
    """Where each recorded spike source is (a ``Location``, or a ``NeuronRef`` for a point
    neuron) in the order lowering numbers them, or None when ``target`` does not say (or
    says otherwise than the Result)."""
    from .cell import Cell, Location
    from .network import Network
    from .wiring import NeuronRef

    if isinstance(target, Cell):
        sites = [Location(s, x) for s, x, _ in target.spike_records]
    elif isinstance(target, Network):
        sites = [Location(s, x, c) for c, cell in enumerate(target.cells)
                 for s, x, _ in cell.spike_records]
        sites += [Location(s, x, c) for c, s, x, _ in target.wiring.spike_records]
        sites += [NeuronRef(p, i) for p, i in target.wiring.point_spike_records]
    else:
        return None
    return sites if len(sites) == n_sources else None


def _timing(t_ms: np.ndarray, dt, eps: float = np.finfo(float).eps):
    """pynwb timing keywords for samples at ``t_ms``: starting_time and rate (Hz) when
    they are evenly spaced (up to the rounding ``eps`` of the run's times: a float32 run's
    are float32), else timestamps (s)."""
    if t_ms.size >= 2:
        step = (t_ms[-1] - t_ms[0]) / (t_ms.size - 1)
        slack = 2 * eps * float(np.max(np.abs(t_ms)))  # two roundings of k dt
        if step > 0 and np.allclose(np.diff(t_ms), step, rtol=1e-6, atol=slack):
            if dt:  # every k steps of dt: the exact multiple
                k = round(step / dt)
                if k >= 1 and abs(k * dt - step) <= 1e-6 * step:
                    step = k * dt
            return {"starting_time": float(t_ms[0]) / 1e3, "rate": 1e3 / float(step)}
    return {"timestamps": t_ms / 1e3}


def _check_times(t_ms, traces, labels, result) -> None:
    """A ValueError unless the Result's times are finite and increasing, its traces one row
    per recording of one value per time, and its dt (meta) a finite step > 0: a Result
    built by hand had rows dropped, times cut short or written decreasing."""
    if t_ms.ndim != 1 or not np.all(np.isfinite(t_ms)) or np.any(np.diff(t_ms) <= 0):
        raise ValueError("the Result's t must be finite times in increasing order (ms), one "
                         f"axis; got shape {t_ms.shape}"
                         + ("" if t_ms.ndim != 1 else f", from {t_ms[:3]} ..."))
    if labels and traces.shape != (len(labels), t_ms.size):
        raise ValueError(f"the Result's traces have shape {traces.shape}: write_nwb needs one "
                         f"row per recording and one value per time, ({len(labels)}, "
                         f"{t_ms.size}) here")
    dt = (getattr(result, "meta", None) or {}).get("dt")
    if dt is not None and not (is_number(dt) and np.isfinite(dt) and dt > 0):
        raise ValueError(f"the Result's meta['dt'] must be a finite step > 0 (ms), got {dt!r}")


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, bool, int, float)) or value is None:
        return value
    arr = np.asarray(value)
    if arr.dtype.kind in "biuf":
        return arr.tolist()
    return str(value)


def _describe(target) -> str:
    from .cell import Cell
    from .network import Network

    if isinstance(target, Cell):
        mechs = ", ".join(target.mechanisms) or "none"
        return (f"dendrax.Cell: {len(target.morphology.sections)} sections, {target.n_nodes} "
                f"compartments, mechanisms: {mechs}")
    if isinstance(target, Network):
        return (f"dendrax.Network: {len(target)} cells, {target.n_connections} connections")
    return "dendrax model"


def write_nwb(result, path, *, target=None, session_description: str = "dendrax simulation",
              identifier: str | None = None, session_start_time: datetime | None = None,
              **metadata) -> pathlib.Path:
    """Write a simulation's recordings and spikes to an NWB file (overwriting ``path``).

    Args:
        result: the ``dendrax.Result`` of ``dendrax.simulate``.
        path: the file to write (conventionally ``*.nwb``); its folder must exist.
        target: the simulated ``dendrax.Cell`` or ``dendrax.Network`` (optional): names the
            locations ("soma(0.5)", "cell[3].soma(0.5)") and the spike sources' sites, and
            describes the model in the device. Without it locations are named
            "sec<k>(<x>)".
        session_description, identifier, session_start_time: ``NWBFile`` fields;
            identifier defaults to a new UUID, session_start_time to now (a naive datetime
            is taken as local time).
        **metadata: further ``pynwb.NWBFile`` fields (experimenter, lab, institution,
            keywords, source_script, notes, ...). Given ``notes`` come before the
            settings JSON.

    Returns:
        The path written, as a ``pathlib.Path``.

    Raises:
        ImportError: pynwb is not installed.
        TypeError: ``result`` is not a Result, or ``target`` not a Cell or Network.
        ValueError: the Result holds no recordings and no spike sources, or ``target`` is
            not the model it came from.
        FileNotFoundError: the folder of ``path`` does not exist.
    """
    from .cell import Cell
    from .network import Network
    from .result import Result

    if not isinstance(result, Result):
        raise TypeError(f"write_nwb needs the dendrax.Result of dendrax.simulate, got "
                        f"{type(result).__name__}")
    if np.ndim(result.t) != 1:
        raise ValueError(f"write_nwb writes one run; this Result holds a batch of runs (t "
                         f"{np.shape(result.t)}, from jax.vmap): take one run's first, e.g. "
                         "jax.tree_util.tree_map(lambda a: a[i], res)")
    if target is not None and not isinstance(target, (Cell, Network)):
        raise TypeError(f"target must be the simulated dendrax.Cell or dendrax.Network (or "
                        f"None), got {type(target).__name__}")
    if not isinstance(path, (str, pathlib.PurePath)):
        raise TypeError(f"path must be a str or pathlib.Path, got {type(path).__name__}")
    path = pathlib.Path(path)
    if path.is_dir():
        raise ValueError(f"{path} is a folder; give a file path such as {path / 'sim.nwb'}")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"cannot write {path}: the folder {path.parent} does not exist")
    labels = list(result.labels)
    spike_cells = list(result.spike_cells)
    stat_labels = list(getattr(result, "stat_labels", ()) or ())
    if not labels and not spike_cells and not stat_labels:
        raise ValueError("the Result holds no recordings and no spike sources: nothing to "
                         "write (record with .record(...) or .record_spikes() before simulate)")
    try:
        t_ms = np.asarray(result.t, dtype=np.float64)
        traces = np.asarray(result.traces)
        spikes = result.spikes if spike_cells else []
        stats = np.asarray(result.stats).ravel() if stat_labels else np.zeros(0)
    except Exception as err:  # a traced Result (inside jit/grad) has no values yet
        raise TypeError("write_nwb needs a Result with concrete values (not one traced inside "
                        "jax.jit or jax.grad)") from err
    _check_times(t_ms, traces, labels, result)
    units = getattr(result, "units", None)
    units = tuple(units) if units is not None else ("",) * len(labels)
    if len(units) != len(labels):
        raise ValueError(f"the Result has {len(labels)} recordings but {len(units)} units")
    units = tuple(u or _default_unit(n) for u, (n, _) in zip(units, labels))
    stat_units = tuple(getattr(result, "stat_units", ()) or ("",) * len(stat_labels))
    meta = _jsonable(dict(getattr(result, "meta", None) or {}))
    meta.setdefault("dendrax", __version__)

    if target is not None and "model" in meta:  # the labels alone fit other cells too
        from .lowering import lower

        if lower(target).layout.fingerprint != meta["model"]:
            raise ValueError(f"target ({_describe(target)}) is not the model this Result came "
                             "from (other sections, nodes or recordings): pass the Cell or "
                             "Network that was simulated, or no target")
    try:
        names = [_location_name(target, loc) for _, loc in labels]
        stat_names = [_location_name(target, loc) for _, loc, _ in stat_labels]
    except (IndexError, ValueError, AttributeError, TypeError) as err:
        raise ValueError(f"the recordings' locations are not on target ({_describe(target)}): "
                         f"pass the Cell or Network that was simulated") from err
    pynwb = _pynwb()
    from pynwb.base import TimeSeries
    from pynwb.icephys import (CurrentClampSeries, CurrentClampStimulusSeries,
                               IntracellularElectrode, VoltageClampSeries)

    if session_start_time is None:
        session_start_time = datetime.now().astimezone()
    elif not isinstance(session_start_time, datetime):
        raise TypeError(f"session_start_time must be a datetime, got "
                        f"{type(session_start_time).__name__}")
    elif session_start_time.tzinfo is None:
        session_start_time = session_start_time.astimezone()
    settings = NOTES_MARKER + json.dumps(meta, sort_keys=True)
    user_notes = metadata.pop("notes", None)
    notes = settings if not user_notes else f"{user_notes}\n\n{settings}"
    summary = "Simulated with dendrax " + str(meta.get("dendrax", __version__))
    parts = [f"{k} = {meta[k]}{u}" for k, u in (("method", ""), ("dt", " ms"), ("t_stop", " ms"),
                                                 ("v_init", " mV"), ("celsius", " degC"))
             if k in meta]
    if parts:
        summary += ": " + ", ".join(parts)
    metadata.setdefault("data_collection", summary + ".")
    if "was_generated_by" in _docval_names(pynwb.NWBFile):  # pynwb >= 2.8 (NWB 2.7)
        metadata.setdefault("was_generated_by", [["dendrax", str(meta["dendrax"])]])
    try:
        nwb = pynwb.NWBFile(session_description=session_description,
                            identifier=identifier or str(uuid.uuid4()),
                            session_start_time=session_start_time, notes=notes, **metadata)
    except TypeError as err:
        raise TypeError(f"write_nwb: a metadata field is not an NWBFile field or has the "
                        f"wrong type: {err}") from err

    t_kind = np.asarray(result.t).dtype
    timing = _timing(t_ms, meta.get("dt"),
                     np.finfo(t_kind).eps if t_kind.kind == "f" else np.finfo(float).eps)
    first_series = []  # the first series written shares its timestamps with the others

    def timed():
        if "timestamps" in timing and first_series:
            return {"timestamps": first_series[0]}
        return dict(timing)

    device = None
    electrodes: dict = {}

    def electrode(loc, loc_name):
        nonlocal device
        if device is None:
            desc = "simulated recording and stimulation sites"
            desc = f"{desc} of a {_describe(target)}" if target is not None else desc
            device = nwb.create_device(name=DEVICE, description=desc)
        if loc not in electrodes:
            kwargs = {"location": loc_name}
            if loc.cell is not None and "cell_id" in _docval_names(IntracellularElectrode):
                kwargs["cell_id"] = f"cell[{loc.cell}]"
            electrodes[loc] = IntracellularElectrode(
                name=f"electrode {loc_name}", device=device,
                description=f"dendrax recording site {loc_name} (section {loc.section}, "
                            f"x = {loc.x:g}" + ("" if loc.cell is None else f", cell {loc.cell}")
                            + ")", **kwargs)
            nwb.add_icephys_electrode(electrodes[loc])
        return electrodes[loc]

    used: set = set()
    module = None
    responses, stimuli = [], {}
    for k, ((name, loc), loc_name, unit) in enumerate(zip(labels, names, units)):
        series_name = f"{name} {loc_name}"
        while series_name in used:
            series_name += "'"
        used.add(series_name)
        data = traces[k]
        label_json = json.dumps({"dendrax": {"quantity": name, **_site(loc, loc_name),
                                             "unit": unit}})
        description = f"{_quantity(name)} ({name}, {unit}) at {loc_name}, simulated by dendrax"
        common = dict(name=series_name, data=data, description=description,
                      comments=label_json, **timed())
        if name == "v" and unit == "mV":
            series = CurrentClampSeries(electrode=electrode(loc, loc_name), conversion=1e-3,
                                        **common)
            nwb.add_acquisition(series)
            responses.append((loc, series))
        elif name == "vclamp.i" and unit == "nA":
            series = VoltageClampSeries(electrode=electrode(loc, loc_name), conversion=1e-9,
                                        **common)
            nwb.add_acquisition(series)
            responses.append((loc, series))
        elif name == "iclamp.i" and unit == "nA":
            series = CurrentClampStimulusSeries(electrode=electrode(loc, loc_name),
                                                conversion=1e-9, **common)
            nwb.add_stimulus(series)
            stimuli.setdefault(loc, series)
        else:
            if module is None:
                module = nwb.create_processing_module(name=MODULE,
                                                      description=MODULE_DESCRIPTION)
            si_unit, conversion = SI_UNITS.get(unit, (unit, 1.0))
            series = TimeSeries(unit=si_unit, conversion=conversion, **common)
            module.add(series)
        if not first_series:
            first_series.append(series)
    if stat_labels:  # record(..., reduce=...): one row per statistic
        from hdmf.common import DynamicTable

        if module is None:
            module = nwb.create_processing_module(name=MODULE, description=MODULE_DESCRIPTION)
        table = DynamicTable(name="statistics", description="statistics of recordings kept "
                             "without their traces (record(..., reduce=...)), in the recorded "
                             "units")
        for col, desc in (("quantity", "what was recorded"), ("location", "the site's name"),
                          ("section", "section index"), ("x", "position along the section"),
                          ("cell", "cell index (-1: a single cell)"),
                          ("population", "a point neuron's population index, or a plastic "
                           "connection's kind, as JSON ('' for sites on cells)"),
                          ("neuron", "the point neuron's (or connection's) index, -1 for "
                           "sites on cells"),
                          ("statistic", "max, min or mean over the run"),
                          ("value", "the statistic, in unit"), ("unit", "the recorded unit")):
            table.add_column(name=col, description=desc)
        for (name, loc, kind), loc_name, value, unit in zip(stat_labels, stat_names,
                                                            stats, stat_units):
            neuron = _is_neuron(loc)
            table.add_row(quantity=name, location=loc_name,
                          section=-1 if neuron else int(loc.section),
                          x=float("nan") if neuron else float(loc.x),
                          cell=-1 if neuron or loc.cell is None else int(loc.cell),
                          population=json.dumps(loc.population) if neuron else "",
                          neuron=int(loc.index) if neuron else -1,
                          statistic=str(kind), value=float(value),
                          unit=unit or _default_unit(name))
        module.add(table)
    # the icephys table: each response with the stimulus at its electrode, if recorded
    paired = set()
    for loc, series in responses:
        stim = stimuli.get(loc) if isinstance(series, CurrentClampSeries) else None
        nwb.add_intracellular_recording(electrode=electrodes[loc], response=series,
                                        **({"stimulus": stim} if stim is not None else {}))
        if stim is not None:
            paired.add(loc)
    for loc, stim in stimuli.items():
        if loc not in paired:
            nwb.add_intracellular_recording(electrode=electrodes[loc], stimulus=stim)

    if spike_cells:
        sites = _spike_locations(target, len(spike_cells))
        nwb.add_unit_column(name="cell", description="the neuron (Result.spike_cells): cells "
                                                     "0 .. C - 1 (0 for a single cell), then "
                                                     "point neurons C + k, k numbered over all "
                                                     "populations")
        nwb.add_unit_column(name="location", description="where spikes were detected (v "
                                                         "crossing the threshold upward)")
        for q, (times, c) in enumerate(zip(spikes, spike_cells)):
            if sites is None:
                where = f"neuron[{c}]"  # a cell or a point neuron: target= says which
            else:
                where = _location_name(target, sites[q])
            nwb.add_unit(spike_times=np.asarray(times, np.float64) / 1e3, cell=int(c),
                         location=where)

    with pynwb.NWBHDF5IO(str(path), mode="w") as io:
        io.write(nwb)
    return path


def _in_unit(ts, unit: str) -> np.ndarray:
    """A series' data in ``unit`` (its dendrax label's): as written when its conversion is
    the one write_nwb gives that unit, else through NWB's ``data * conversion + offset``
    (a file rewritten by another tool, e.g. as int16 with another conversion)."""
    data = np.asarray(ts.data[:])
    to_si = SI_UNITS.get(unit, (unit, 1.0))[1]
    conversion, offset = float(ts.conversion), float(getattr(ts, "offset", 0.0) or 0.0)
    if conversion == to_si and offset == 0.0:
        return data
    return (data.astype(np.float64) * conversion + offset) / to_si


def _docval_names(cls) -> set:
    return {a["name"] for a in getattr(cls.__init__, "__docval__", {}).get("args", [])}


def read_nwb(path) -> dict:
    """Read back a file written by ``write_nwb``.

    Returns:
        {"t": times (ms) of the recordings, "traces": {(quantity, Location): (data in the
        recorded unit, unit)}, "spikes": [spike times (ms) per unit], "spike_cells": [cell
        index per unit], "stats": {(quantity, Location, "max" | "min" | "mean"): (value,
        unit)}, "meta": the run's settings (dict)}. The traces are the stored
        values (bit for bit; a quantity recorded twice at one location is one entry, the
        same data); spike times went through seconds (to ~1 ulp).
    """
    pynwb = _pynwb()
    from .cell import Location
    from .wiring import NeuronRef

    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no NWB file at {path}")
    out = {"t": np.zeros(0), "traces": {}, "stats": {}, "spikes": [], "spike_cells": [],
           "meta": {}}
    try:
        io = pynwb.NWBHDF5IO(str(path), mode="r")
    except OSError as err:  # h5py's "file signature not found" and the like
        raise ValueError(f"{path} is not an NWB file (NWB files are HDF5; {err})") from None
    with io:
        try:
            nwb = io.read()
        except (TypeError, ValueError, KeyError) as err:  # HDF5, but not NWB (pynwb's words)
            raise ValueError(f"{path} could not be read as an NWB file ({err})") from None
        notes = nwb.notes or ""
        if NOTES_MARKER in notes:
            try:
                out["meta"] = json.loads(notes.split(NOTES_MARKER, 1)[1].strip())
            except ValueError as err:
                raise ValueError(f"{path}: the run settings in its notes are not valid JSON "
                                 f"({err})") from None
        series = list(nwb.acquisition.values()) + list(nwb.stimulus.values())
        if MODULE in nwb.processing:
            items = nwb.processing[MODULE].data_interfaces
            series += [v for k, v in items.items() if k != "statistics"]
            if "statistics" in items:
                rows = items["statistics"].to_dataframe()
                missing = {"quantity", "statistic", "value", "unit", "section", "x", "cell",
                           "population", "neuron"} - set(rows.columns)
                if missing:
                    raise ValueError(f"{path}: its statistics table lacks the columns "
                                     f"{sorted(missing)} (not written by dendrax.nwb.write_nwb)")
                for r in rows.itertuples():
                    if getattr(r, "population", ""):  # a point neuron's
                        loc = NeuronRef(json.loads(r.population), int(r.neuron))
                    else:
                        loc = Location(int(r.section), float(r.x),
                                       None if r.cell < 0 else int(r.cell))
                    out["stats"][(r.quantity, loc, r.statistic)] = (float(r.value), r.unit)
        for ts in series:
            try:
                label = json.loads(ts.comments)["dendrax"]
            except (TypeError, ValueError, KeyError):
                continue
            keys = ({"readout"} if "readout" in label  # extracellular: by name
                    else {"population", "neuron"} if "population" in label
                    else {"section", "x", "cell"}) | {"quantity", "unit"}
            if not isinstance(label, dict) or keys - set(label):
                raise ValueError(f"{path}: series {ts.name!r} has a dendrax label without "
                                 f"{sorted(keys - set(label)) if isinstance(label, dict) else keys}")
            loc = (label["readout"] if "readout" in label
                   else NeuronRef(label["population"], label["neuron"]) if "population" in label
                   else Location(label["section"], label["x"], label["cell"]))
            if isinstance(loc, Location) and not (
                    isinstance(loc.section, int) and is_number(loc.x) and 0 <= loc.x <= 1
                    and (loc.cell is None or isinstance(loc.cell, int))):
                raise ValueError(f"{path}: series {ts.name!r} has a dendrax label with a bad "
                                 f"location (section: an index, x: a number in [0, 1], cell: "
                                 f"an index or null): {label}")
            out["traces"][(label["quantity"], loc)] = (_in_unit(ts, label["unit"]),
                                                       label["unit"])
            if not out["t"].size:
                out["t"] = np.asarray(ts.get_timestamps(), np.float64) * 1e3
        if nwb.units is not None:
            table = nwb.units
            if len(table) and "cell" not in table.colnames:
                raise ValueError(f"{path}: its units table has no 'cell' column (not written by "
                                 "dendrax.nwb.write_nwb)")
            for i in range(len(table)):
                out["spikes"].append(np.asarray(table["spike_times"][i], np.float64) * 1e3)
                out["spike_cells"].append(int(table["cell"][i]))
    if not out["traces"] and not out["stats"] and not out["spikes"] and not out["meta"]:
        raise ValueError(f"{path} holds no dendrax recordings (was it written by "
                         "dendrax.nwb.write_nwb?)")
    return out
