"""One cell as text (``CellSpec``): a bundled model or a morphology file, segmentation,
mechanisms, parameter assignments, current clamps and recordings, as the strings the
command line takes."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, fields
from typing import Mapping

import numpy as np

from ..quantities import decimal
from .parse import (SpecError, check_keys, default_site, get_number, get_strings,
                    parse_location, parse_where, split_where)

MODELS = ("branched_neuron", "ball_and_stick")
CELL_KEYS = ("model", "swc", "nseg", "Ra", "cm", "mechanisms", "set", "iclamp", "record")
LIST_KEYS = ("mechanisms", "set", "iclamp", "record")
DEFAULT_ICLAMP = "0.5,5,80"  # at the soma (parse.default_site)


@dataclass
class CellSpec:
    """One cell as text: a bundled ``model`` (``MODELS``) or an ``swc`` file, and the
    command line's strings for the rest.

    Attributes:
        model: "branched_neuron" (the default when there is no swc) or "ball_and_stick".
        swc: a morphology file (any registered format).
        nseg: an int, a list of ints (one per section) or "d_lambda"; default: the
            model's own (d_lambda for branched_neuron), else 1.
        Ra, cm: ohm cm and uF/cm2 for every section (default the model's, else 35.4 and 1).
        mechanisms: ``"NAME[@where]"``; default ``["hh"]`` except for branched_neuron
            (which has HH already).
        set: ``"NAME=VALUE[@where]"``.
        iclamp: ``"AMP,DELAY,DUR[@location]"`` (nA, ms, ms; location default soma(0.5)).
        record: ``"NAME[@location]"``.
        labels: how errors name each field (e.g. ``{"nseg": "--nseg"}``); default
            ``"[cell] <field>"``.
    """

    model: str | None = None
    swc: str | None = None
    nseg: object = None
    Ra: float | None = None
    cm: float | None = None
    mechanisms: list | None = None
    set: list | None = None
    iclamp: list | None = None
    record: list | None = None
    labels: dict = field(default_factory=dict, repr=False, compare=False)

    # --- reading --------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, table: Mapping, where: str = "[cell]", *, keys=CELL_KEYS,
                  strict: bool = True) -> "CellSpec":
        """A spec from a TOML table. ``keys``: those read; any other key is an error with
        ``strict``, else ignored (for tables shared with other settings). ``where`` names
        the table in errors."""
        if not isinstance(table, Mapping):
            raise SpecError(f"{where} must be a table, got {table!r}")
        if strict:
            check_keys(table, keys, where)
        values: dict = {}
        for key in keys:
            if key not in table:
                continue
            value = table[key]
            if key in LIST_KEYS:
                value = get_strings(table, key, where)
            elif key in ("model", "swc"):
                if not isinstance(value, str):
                    raise SpecError(f"{where} {key} must be a string, got {value!r}")
            elif key in ("Ra", "cm"):
                value = get_number(table, key, positive=True, prefix=f"{where} ")
            values[key] = value
        spec = cls(**values, labels={k: f"{where} {k}" for k in keys})
        spec.check()
        return spec

    @classmethod
    def from_options(cls, opts) -> "CellSpec":
        """A spec from ``dendrax simulate``'s options (an argparse Namespace or an object
        with ``swc nseg Ra cm mechanism set iclamp record``)."""
        get = lambda k: getattr(opts, k, None)  # noqa: E731
        spec = cls(swc=get("swc"), nseg=get("nseg"), Ra=get("Ra"), cm=get("cm"),
                   mechanisms=get("mechanism"), set=get("set"), iclamp=get("iclamp"),
                   record=get("record"),
                   labels={"swc": "SWC", "nseg": "--nseg", "Ra": "--Ra", "cm": "--cm",
                           "mechanisms": "--mechanism", "set": "--set", "iclamp": "--iclamp",
                           "record": "--record", "model": "model"})
        spec.check()
        return spec

    def merged(self, other: "CellSpec") -> "CellSpec":
        """This spec with every field that ``other`` sets (not None) taken from ``other``."""
        out = copy.copy(self)
        out.labels = dict(self.labels)
        for f in fields(self):
            if f.name != "labels" and getattr(other, f.name) is not None:
                setattr(out, f.name, getattr(other, f.name))
                if f.name in other.labels:
                    out.labels[f.name] = other.labels[f.name]
        return out

    def label(self, key: str) -> str:
        return self.labels.get(key, f"[cell] {key}")

    def check(self) -> "CellSpec":
        """Check the values that need no cell (model, nseg, numbers, string lists)."""
        if self.model is not None and self.swc is not None:
            where = self.label("model").rpartition(" ")[0] or "a cell"
            raise SpecError(f"{where} takes either model or swc, not both")
        if self.model is not None and self.model not in MODELS:
            raise SpecError(f"{self.label('model')} must be one of {MODELS} (or give swc), got "
                            f"{self.model!r}")
        self.nseg = self._nseg()
        for key in ("Ra", "cm"):
            value = getattr(self, key)
            if value is not None and not (isinstance(value, (int, float))
                                          and not isinstance(value, bool)
                                          and np.isfinite(value) and value > 0):
                raise SpecError(f"{self.label(key)} must be a positive number, got {value!r}")
        for key in LIST_KEYS:
            value = getattr(self, key)
            if isinstance(value, str):
                setattr(self, key, [value])
            elif value is not None and not (isinstance(value, (list, tuple))
                                            and all(isinstance(v, str) for v in value)):
                raise SpecError(f"{self.label(key)} must be a string or a list of strings, "
                                f"got {value!r}")
        return self

    def _nseg(self):
        nseg = self.nseg
        bad = SpecError(f"{self.label('nseg')} must be an integer, a list of integers (one per "
                        f"section) or 'd_lambda', got {nseg!r}")
        if nseg is None or nseg == "d_lambda":
            return nseg
        if isinstance(nseg, bool):
            raise bad
        if isinstance(nseg, str):
            try:
                nseg = int(nseg)
            except ValueError:
                raise bad from None
        if isinstance(nseg, float) and nseg == int(nseg):
            nseg = int(nseg)
        if isinstance(nseg, int):
            if nseg < 1:
                raise SpecError(f"{self.label('nseg')} must be >= 1, got {nseg}")
            return nseg
        if isinstance(nseg, (list, tuple)) and nseg and all(
                isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in nseg):
            return list(nseg)
        raise bad

    # --- building -------------------------------------------------------------------------
    @property
    def kind(self) -> str:
        """"swc", or the bundled model's name."""
        return "swc" if self.swc is not None else (self.model or "branched_neuron")

    def build(self, *, defaults: bool = True):
        """The Cell.

        With ``defaults`` (a cell simulated on its own), a cell without iclamps gets the
        model's own step (branched_neuron) or ``0.5,5,80@soma(0.5)``, and one without
        recordings the model's own or v at the soma. Without (a network's cell), there is no
        default stimulus (branched_neuron's own step is set to 0 nA) and no recording.
        """
        from .. import models
        from ..cell import Cell

        kind = self.kind
        bundled = kind == "branched_neuron"
        if bundled:
            # user recordings replace the bundled cell's own
            cell = models.branched_neuron(nseg=self.nseg or "d_lambda",
                                          amp=0.8 if defaults else 0.0,
                                          record=defaults and not self.record,
                                          Ra=100.0 if self.Ra is None else self.Ra,
                                          cm=1.0 if self.cm is None else self.cm)
        else:
            kwargs = {"nseg": self.nseg or 1, "Ra": 35.4 if self.Ra is None else self.Ra,
                      "cm": 1.0 if self.cm is None else self.cm}
            if kind == "ball_and_stick":
                cell = Cell.ball_and_stick(**kwargs)
            else:
                from ..morphology import read_morphology

                cell = Cell(read_morphology(self.swc), **kwargs)
        mechanisms = self.mechanisms if self.mechanisms is not None else ([] if bundled else ["hh"])
        for text in mechanisms:
            name, where = split_where(text)
            cell.insert(name, where=parse_where(cell, where))
        for text in self.set or []:
            assignment, where = split_where(text)
            name, eq, value = assignment.partition("=")
            try:
                value = decimal(value)
            except ValueError:
                eq = ""
            if not eq:
                raise SpecError(f"{self.label('set')} takes name=value[@where], got {text!r}")
            try:
                cell.set(name.strip(), value, where=parse_where(cell, where))
            except ValueError as err:
                raise SpecError(str(err)) from None
        iclamps = self.iclamp
        if iclamps is None:
            iclamps = [DEFAULT_ICLAMP] if defaults and not bundled else []
        for text in iclamps:
            values, where = split_where(text)
            try:
                amp, delay, dur = (decimal(v) for v in values.split(","))
            except ValueError:
                raise SpecError(f"{self.label('iclamp')} takes amp,delay,dur[@location], got "
                                f"{text!r}") from None
            cell.iclamp(parse_location(cell, where or default_site(cell)), delay=delay, dur=dur,
                        amp=amp)
        if self.record:
            for text in self.record:
                name, where = split_where(text)
                cell.record(name, parse_location(cell, where or default_site(cell)))
        elif defaults and not bundled:
            cell.record("v", parse_location(cell, default_site(cell)))
        return cell
