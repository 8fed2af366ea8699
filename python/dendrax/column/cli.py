"""``dendrax column config.toml``: run a configured column, write a raster, LFP / CSD heat
maps, the readouts (JSON) and, with ``save_signals = true``, the Signals (JSON).

The TOML file holds the configuration's tables (``dendrax.column.config.from_dict``:
[runtime], [[column]], [cell_types], [emitter], [connectivity], [drive], [probes]) plus
``[[readout]]`` tables (name, metric and the selection keywords of ``readout_spec``) and
top-level ``out`` (the output folder, default "column_out") and ``save_signals``.
docs/columns.md documents the format.
"""

from __future__ import annotations

import json
from pathlib import Path

from .config import TOP_KEYS, from_dict

EXTRA_KEYS = ("readout", "out", "save_signals")
READOUT_KEYS = ("column", "layer", "cell_type", "t_start_ms", "t_stop_ms")  # readout_spec's


def load(path):
    """(Configuration, readout specs, out folder, save_signals) from a TOML file."""
    from ..spec import load_toml
    from .readouts import readout_spec

    data = load_toml(path)
    unknown = set(data) - set(TOP_KEYS) - set(EXTRA_KEYS)
    if unknown:
        raise ValueError(f"{path}: unknown keys {sorted(unknown)}; valid: "
                         f"{list(TOP_KEYS) + list(EXTRA_KEYS)}")
    cfg = from_dict({k: v for k, v in data.items() if k in TOP_KEYS})
    readouts = data.get("readout", [])
    if not isinstance(readouts, list) or not all(isinstance(r, dict) for r in readouts):
        raise ValueError(f"{path}: readouts are an array of tables, [[readout]] each, got "
                         f"{readouts!r}")
    specs = []
    for r in readouts:
        r = dict(r)
        if "name" not in r or "metric" not in r:
            raise ValueError(f"{path}: every [[readout]] needs name and metric, got {r}")
        extra = set(r) - {"name", "metric", *READOUT_KEYS}
        if extra:
            raise ValueError(f"{path}: [[readout]] {r['name']!r} has unknown keys {sorted(extra)};"
                             f" valid: {['name', 'metric', *READOUT_KEYS]}")
        specs.append(readout_spec(r.pop("name"), r.pop("metric"), **r))
    out, save = data.get("out", "column_out"), data.get("save_signals", False)
    if not isinstance(out, str) or not out:
        raise ValueError(f"{path}: out must be a folder name (a string), got {out!r}")
    if not isinstance(save, bool):
        raise ValueError(f"{path}: save_signals must be true or false, got {save!r}")
    return cfg, specs, Path(out), save


def run(path, out=None, quiet: bool = False) -> int:
    """Run the column of a TOML file; returns the exit status (0)."""
    from . import plots
    from .construction import construct
    from .readouts import check_selection

    cfg, specs, folder, save_signals = load(path)
    folder = Path(out) if out is not None else folder
    folder.mkdir(parents=True, exist_ok=True)
    model = construct(cfg)
    for spec in specs:  # before the run: a bad selection costs no simulation
        check_selection(model.geometry, spec)
    sig = model.simulate()
    written = []
    if sig.spikes is not None:
        written.append(plots.raster(sig, model.geometry, folder / "raster.png"))
    for name in ("LFP", "CSD"):
        if getattr(sig, name) is not None:
            written.append(plots.heatmap(sig, name, folder / f"{name.lower()}.png"))
    result = model.compute_readout(sig, specs)
    ro = folder / "readouts.json"
    ro.write_text(json.dumps({**result.to_dict(), "signal_units": sig.units,
                              "configuration": cfg.to_dict()}, indent=1))
    written.append(ro)
    if save_signals:
        written.append(sig.save_json(folder / "signals.json"))
    if not quiet:
        vals = ", ".join(f"{k} = {v:.4g} {result.units[k]}" for k, v in result.results.items())
        print(f"column: {sum(c.n for c in cfg.columns)} neurons, {cfg.duration_ms:g} ms; "
              f"{vals or 'no readouts'}; wrote {', '.join(str(p) for p in written)}")
    return 0
