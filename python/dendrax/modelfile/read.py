"""Reading a model file: ``load`` and ``loads``, each part checked as it is read (the format:
``dendrax.modelfile.format``; a model's cells: ``read_cells``; a network's wiring:
``read_wiring``)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..network import Network
from .format import FORMAT, VERSION, ModelFileError
from .read_cells import read_cell, read_mechanisms, read_morphology
from .read_wiring import read_wiring
from .reader import Reader


def load(path):
    """Read a dendrax model file written by ``save``: a ``dendrax.Cell`` or a
    ``dendrax.Network`` that simulates exactly as the saved one did.

    Raises:
        ModelFileError (a ValueError), naming the file and the problem: not JSON, not a
            dendrax model file, a newer format version, a missing or malformed entry
            (named by its place in the file, e.g. ``cells[0].values.cm``), a wrong-length
            array, a connection to a point neuron that does not exist, an unknown plastic
            synapse kind or surrogate, a parameter out of its range, a 3-D point beyond
            float32 (as NEURON's pt3d holds it), a mechanism or point-neuron model that no
            installed package registers (naming it and the package that provided it), or
            a mechanism saved with the SHA-256 of its NMODL text where the one found by
            its name was made from other text (naming both hashes).
        FileNotFoundError: no such file.
    """
    path = os.fspath(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ModelFileError(f"{path}: not a dendrax model file (not UTF-8 text: {err})") from None
    return loads(text, path)


def loads(text: str, path: str = "<string>"):
    """The model in ``text`` (the contents of a model file; ``path`` names it in errors)."""
    r = Reader(path)

    def constant(name):
        raise ValueError(f"{name} is not allowed (a model file holds finite numbers only)")

    try:
        doc = json.loads(text, parse_constant=constant)
    except json.JSONDecodeError as err:
        raise ModelFileError(f"{path}: not a dendrax model file: not valid JSON ({err})") from None
    except ValueError as err:
        raise ModelFileError(f"{path}: {err}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        got = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
        raise ModelFileError(f"{path}: not a dendrax model file: \"format\" is {got!r}, "
                             f"expected {FORMAT!r}")
    version = doc.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        r.fail("version", f"expected a positive integer format version, got {version!r}")
    r.version = version
    if version > VERSION:
        r.fail("version", f"the file has format version {version}, written by dendrax "
                          f"{doc.get('dendrax', '?')}; this dendrax reads versions up to "
                          f"{VERSION}: upgrade dendrax to load it")
    r.keys(doc, "", {"format", "version", "dendrax", "kind", "mechanisms", "morphologies",
                     "cells"}, {"units", "wiring"})
    kind = doc["kind"]
    if kind not in ("cell", "network"):
        r.fail("kind", f"expected 'cell' or 'network', got {kind!r}")
    mechs = read_mechanisms(r, doc["mechanisms"])
    morphs = [read_morphology(r, m, f"morphologies[{i}]")
              for i, m in enumerate(r.list(doc["morphologies"], "morphologies"))]
    cells_doc = r.list(doc["cells"], "cells")
    if kind == "cell" and len(cells_doc) != 1:
        r.fail("cells", f"a file of kind 'cell' holds exactly one cell, got {len(cells_doc)}")
    templates: dict = {}
    cells = [r.named(f"cells[{i}]", read_cell, r, c, f"cells[{i}]", morphs, mechs, templates,
                     i if kind == "network" else None)
             for i, c in enumerate(cells_doc)]
    if kind == "cell":
        if "wiring" in doc:
            r.fail("wiring", "a file of kind 'cell' has no wiring")
        return r.named("cells[0]", _in_range, cells[0])
    if "wiring" not in doc:
        r.fail("", "missing key 'wiring' (a file of kind 'network')")
    net = Network(cells)
    r.named("wiring", read_wiring, r, doc["wiring"], "wiring", net, mechs)
    return r.named("", _in_range, net)


def _in_range(target):
    """``target``, after the checks simulate makes of its values (cm > 0, conductances
    >= 0, ...): a file cannot bring in what Cell.set refuses."""
    from ..checks import check_values
    from ..lowering import lower

    model, params, layout = lower(target)
    check_values(model, layout, params)
    return target
