"""``dendrax fit config.toml``: fit cell parameters to voltage traces from a TOML file.

The config names the cell, the stimuli and recordings, the parameters to fit
(with bounds and sharing), the target traces (an .npz, or "synthetic": parameter
values to simulate the target from) and the optimizer. It writes the fitted
values (``fitted.json``), the loss per step (``history.csv``) and a plot of it
(``history.png``). See docs/training.md for an annotated example.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..timecourse import step_count
from ..spec import CellSpec, SpecError, check_keys, get_number, load_toml, parse_where

KEYS = {
    None: {"cell", "stimulus", "param", "target", "optimizer", "out"},
    "cell": {"model", "swc", "nseg", "Ra", "cm", "mechanisms", "set"},
    "stimulus": {"iclamp", "amps", "record", "t_stop", "dt", "v_init", "celsius", "method",
                 "checkpoint"},
    "param": {"name", "where", "share", "lower", "upper", "label"},
    "target": {"synthetic", "npz"},
    "optimizer": {"name", "steps", "learning_rate", "seed", "start", "warmup"},
}


def _load(path) -> dict:
    cfg = load_toml(path)
    _check_keys(cfg, None)
    for table in ("cell", "stimulus", "target", "optimizer"):
        if not isinstance(cfg.get(table, {}), dict):
            raise SpecError(f"[{table}] must be a table")
        _check_keys(cfg.get(table, {}), table)
    params = cfg.get("param")
    if not params or not isinstance(params, list):
        raise SpecError("no parameters to fit: add [[param]] tables with a name "
                        "(e.g. name = \"hh.gnabar\", lower = 0.05, upper = 0.3)")
    for p in params:
        _check_keys(p, "param")
        if "name" not in p:
            raise SpecError(f"[[param]] needs a name, got {p}")
        if not isinstance(p["name"], str):
            raise SpecError(f"[[param]] name must be a string such as \"hh.gnabar\", got "
                            f"{p['name']!r}")
    return cfg


def _check_keys(table, name):
    check_keys(table, KEYS[name], f"[{name}]" if name else "the top level")


def _number(table, key, default, *, positive=False, integer=False, section=""):
    return get_number(table, key, default, positive=positive, integer=integer, prefix=section)


def _check_npz_run(path, data, cell, sim, dt) -> None:
    """What a ``dendrax simulate`` .npz says of its run (its labels, and meta's celsius,
    v_init, method, dt) against the fit's: a target recorded elsewhere or otherwise is
    refused, not fitted."""
    import json

    if "labels" in data:
        ours = [f"{name}@{cell.location_name(loc)}" for name, loc in cell.recordings]
        theirs = [str(x) for x in data["labels"]]
        if theirs != ours:
            raise SpecError(f"{path}: its traces are {theirs}, the fit records {ours} (in this "
                             "order: [stimulus] record)")
    if "meta" in data:
        try:
            meta = json.loads(str(data["meta"]))
        except ValueError:
            return
        for key, ours in (("celsius", sim["celsius"]), ("v_init", sim["v_init"]),
                          ("method", sim["method"]), ("dt", dt)):
            theirs = meta.get(key) if isinstance(meta, dict) else None
            if theirs is not None and (theirs != ours if isinstance(ours, str)
                                       else not np.isclose(float(theirs), ours)):
                raise SpecError(f"{path}: its run had {key} = {theirs}, the fit's [stimulus] has "
                                 f"{ours}")


def build(cfg) -> dict:
    """The cell, trainables, stimulus batch, target and settings from a loaded config."""
    import jax.numpy as jnp

    from .trainable import Trainables
    from .transforms import Identity, Sigmoid, Softplus

    c, s = cfg.get("cell", {}), cfg.get("stimulus", {})
    spec = CellSpec.from_dict(c, "[cell]", keys=sorted(KEYS["cell"])).merged(
        CellSpec.from_dict(s, "[stimulus]", keys=("iclamp", "record"), strict=False))
    cell = spec.build()
    if len(cell.params["stimuli"]["iclamp"]["amp"]) == 0:
        raise SpecError("[stimulus] needs at least one iclamp (\"AMP,DELAY,DUR@location\")")
    t_stop = _number(s, "t_stop", 20.0, positive=True, section="[stimulus] ")
    dt = _number(s, "dt", 0.025, positive=True, section="[stimulus] ")
    sim = {"v_init": _number(s, "v_init", -65.0, section="[stimulus] "),
           "celsius": _number(s, "celsius", 6.3, section="[stimulus] "),
           "method": s.get("method", "backward_euler")}
    if "checkpoint" in s:
        sim["checkpoint"] = _number(s, "checkpoint", None, positive=True, integer=True,
                                    section="[stimulus] ")
    n_clamps = len(cell.params["stimuli"]["iclamp"]["amp"])
    amps = s.get("amps", [list(np.asarray(cell.params["stimuli"]["iclamp"]["amp"]))])
    flat = [x for a in (amps if isinstance(amps, list) else [amps])
            for x in (a if isinstance(a, list) else [a])]
    if not isinstance(amps, list) or any(isinstance(x, bool) for x in flat):
        raise SpecError(f"[stimulus] amps must be a list of numbers (nA) or of lists with one "
                        f"amplitude per iclamp, got {s['amps']!r}")
    try:
        amps = np.asarray([a if isinstance(a, list) else [a] * n_clamps for a in amps], float)
    except (TypeError, ValueError):
        raise SpecError(f"[stimulus] amps must be a list of numbers (nA) or of lists with one "
                         f"amplitude per iclamp, got {s['amps']!r}") from None
    if amps.ndim == 2 and amps.size and not np.isfinite(amps).all():
        raise SpecError(f"[stimulus] amps must be finite (nA), got {s['amps']!r}")
    if amps.ndim != 2 or amps.shape[1] != n_clamps or amps.shape[0] == 0:
        raise SpecError(f"[stimulus] amps: each entry needs {n_clamps} amplitude(s) (one per "
                         f"iclamp), got {s['amps']!r}")

    tr = Trainables(cell)
    for p in cfg["param"]:
        lower, upper = p.get("lower"), p.get("upper")
        for k in ("lower", "upper"):
            if k in p:
                _number(p, k, None, section=f"[[param]] {p['name']}: ")
        if lower is not None and upper is not None:
            if not lower < upper:
                raise SpecError(f"[[param]] {p['name']}: need lower < upper, got {lower}, {upper}")
            transform = Sigmoid(lower, upper)
        elif lower is not None:
            transform = Softplus(lower)
        elif upper is not None:
            raise SpecError(f"[[param]] {p['name']}: an upper bound needs a lower bound too")
        else:
            transform = Identity()
        share = p.get("share", "cell")
        if isinstance(share, list):  # an item may itself list several selections
            share = [[parse_where(cell, str(x)) for x in w] if isinstance(w, list)
                     else parse_where(cell, str(w)) for w in share]
        where = p.get("where")
        where = None if where is None else parse_where(cell, str(where))
        tr.add(p["name"], where, share=share, transform=transform, label=p.get("label"))

    t = cfg.get("target")
    if not t or len(t) != 1:
        raise SpecError("[target] needs exactly one of synthetic = {name = value, ...} or "
                         "npz = \"traces.npz\"")
    n_t = step_count(t_stop, dt) + 1
    shape = (len(amps), len(cell.recordings), n_t)
    if "npz" in t:
        if not isinstance(t["npz"], str):
            raise SpecError(f"[target] npz must be a path (a string), got {t['npz']!r}")
        try:
            with np.load(t["npz"]) as data:
                if "traces" not in data:
                    raise SpecError(f"{t['npz']} has no array 'traces' (it has {sorted(data)})")
                target = np.asarray(data["traces"], float)
                if "t" in data:
                    tt = np.asarray(data["t"], float)
                    if len(tt) != n_t or not np.allclose(np.diff(tt), dt) or \
                            not np.isclose(tt[0], 0.0, atol=1e-9 * dt):
                        step = float(np.median(np.diff(tt))) if len(tt) > 1 else float("nan")
                        raise SpecError(f"{t['npz']}: its t ({len(tt)} samples from "
                                         f"{tt[0] if len(tt) else float('nan'):g} ms, every "
                                         f"{step:g} ms) does not match t_stop {t_stop:g} ms at "
                                         f"dt {dt:g} ms ({n_t} samples from 0, every {dt:g} ms)")
                _check_npz_run(t["npz"], data, cell, sim, dt)
        except (OSError, ValueError) as err:  # numpy: "pickled (object) data" for non-npz
            if isinstance(err, SpecError):
                raise
            raise SpecError(f"cannot read target {t['npz']} as an .npz file of traces: "
                            f"{err}") from None
        target = target[None] if target.ndim == 2 else target
        if target.shape != shape:
            raise SpecError(f"target traces have shape {target.shape[-target.ndim:]}; expected "
                             f"{shape} (stimuli, recordings, time samples) or {shape[1:]}")
        truth = None
    else:
        truth = _flatten(t["synthetic"]) if isinstance(t["synthetic"], dict) else None
        if not truth:
            raise SpecError("[target] synthetic must be a table of name[@where] = value")
        params = cell.params
        for key, value in truth.items():
            name, _, where = key.partition("@")
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise SpecError(f"[target] synthetic {key}: the value must be a number, got {value!r}")
            slots = cell.param_slots(name.strip(), parse_where(cell, where.strip() or None))
            node = params
            for k in slots.path[:-1]:
                node = node[k]
            node[slots.path[-1]] = node[slots.path[-1]].at[slots.index].set(float(value))
        target = None
        synthetic_params = params
    o = cfg.get("optimizer", {})
    settings = {
        "name": o.get("name", "adam"),
        "steps": _number(o, "steps", 100, positive=True, integer=True, section="[optimizer] "),
        "learning_rate": _number(o, "learning_rate", 0.05, positive=True, section="[optimizer] "),
        "seed": _number(o, "seed", 0, integer=True, section="[optimizer] "),
        "start": o.get("start", "random"),
        "warmup": _number(o, "warmup", 0, integer=True, section="[optimizer] "),
    }
    if settings["warmup"] < 0:
        raise SpecError(f"[optimizer] warmup must be >= 0 Adam steps, got {settings['warmup']}")
    if settings["name"] not in ("adam", "lbfgs"):
        raise SpecError(f"[optimizer] name must be adam or lbfgs, got {settings['name']!r}")
    if settings["start"] not in ("random", "cell"):
        raise SpecError(f"[optimizer] start must be random (inside the bounds) or cell, got "
                         f"{settings['start']!r}")
    out = cfg.get("out", "dendrax_fit")
    if not isinstance(out, str) or not out:
        raise SpecError(f"out must be a folder's path (a string), got {out!r}")
    built = {"cell": cell, "trainables": tr, "amps": jnp.asarray(amps), "t_stop": t_stop,
             "dt": dt, "sim": sim, "truth": truth, "optimizer": settings,
             "out": Path(out)}
    built["target"] = (jnp.asarray(target) if target is not None
                       else _simulate(built, synthetic_params, checkpoint=False))
    return built


def _flatten(table, prefix=""):
    """TOML reads hh.gnabar = 0.1 as {"hh": {"gnabar": 0.1}}: back to {"hh.gnabar": 0.1}."""
    out = {}
    for k, v in table.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _simulate(b, params, checkpoint=True):
    from .batch import simulate_batch

    sim = b["sim"] if checkpoint else {k: v for k, v in b["sim"].items() if k != "checkpoint"}
    return simulate_batch(b["cell"], {"stimuli": {"iclamp": {"amp": b["amps"]}}}, b["t_stop"],
                          b["dt"], base=params, **sim)


def run(path, *, out=None, quiet=False) -> int:
    """Run a fit from the TOML config at ``path``; write the results; return 0."""
    import jax
    import jax.numpy as jnp
    import optax

    from .fit import fit, plot_history

    b = build(_load(path))
    out = Path(out) if out is not None else b["out"]
    tr, o = b["trainables"], b["optimizer"]
    target = b["target"]
    if not np.all(np.isfinite(np.asarray(target))):
        raise SpecError("the target traces are not finite (a synthetic target that blew up?)")

    def loss(theta):
        v = _simulate(b, tr.apply(theta))
        return jnp.mean((v - target) ** 2)

    theta0 = tr.sample(jax.random.PRNGKey(o["seed"])) if o["start"] == "random" else tr.init()
    start, history = theta0, []
    if o["warmup"]:  # bounded Adam steps first: L-BFGS alone may leap onto a flat sigmoid end
        warm = fit(loss, theta0, optimizer=optax.adam(o["learning_rate"]), steps=o["warmup"],
                   progress=not quiet)
        start, history = warm.theta, [warm.history]
    opt = (optax.adam(optax.cosine_decay_schedule(o["learning_rate"], o["steps"], alpha=0.05))
           if o["name"] == "adam" else optax.lbfgs())
    res = fit(loss, start, optimizer=opt, steps=o["steps"], progress=not quiet)
    if o["warmup"] and warm.best_loss < res.best_loss:
        res.best_theta, res.best_loss = warm.best_theta, warm.best_loss
    res.history = np.concatenate(history + [res.history])
    out.mkdir(parents=True, exist_ok=True)
    fitted = {
        "fitted": tr.table(res.best_theta),
        "start": tr.table(theta0),
        "loss": res.best_loss if np.isfinite(res.best_loss) else None,  # JSON has no inf
        "final_loss": float(res.history[-1]) if res.history.size else None,
        "steps": int(res.history.size),
        "stopped": res.stopped,
        "units": "loss: mean squared difference of the recorded traces (mV^2)",
    }
    if b["truth"] is not None:
        fitted["synthetic"] = b["truth"]
    (out / "fitted.json").write_text(json.dumps(fitted, indent=2) + "\n")
    np.savetxt(out / "history.csv", np.column_stack([np.arange(res.history.size), res.history]),
               delimiter=",", header="step,loss", comments="", fmt=["%d", "%.10g"])
    plot_history(res.history, out / "history.png", title=f"dendrax fit: {Path(path).name}")
    values = "; ".join(f"{k} = " + ", ".join(f"{v:.4g}" if len(g) == 1 else f"{n}: {v:.4g}"
                                              for n, v in g.items())
                       for k, g in fitted["fitted"].items())
    print(f"fitted {len(tr)} parameter(s) in {fitted['steps']} steps: loss {res.best_loss:.4g} mV^2; "
          f"{values}. Wrote {out / 'fitted.json'}, {out / 'history.csv'}, {out / 'history.png'}")
    return 0
