"""Registering mechanisms loaded from NMODL at run time, as if a package provided them.

dendrax finds mechanisms by name through entry points (``dendrax.plugins``). A class
``dendrax.nmodl.load`` creates is offered the same way: this module puts one finder on
``sys.meta_path`` whose distribution, "dendrax-nmodl-loaded", lists the loaded classes as
entry points of ``dendrax.channels`` / ``dendrax.synapses`` -- so ``cell.insert("hhx")``,
``cell.synapse("Exp2Synx", ...)``, saved model files and ``dendrax plugins`` see them like
installed plugins, in this process only.
"""

from __future__ import annotations

import sys
import warnings
from importlib import metadata
from importlib.abc import MetaPathFinder
from pathlib import Path

from .. import plugins

PACKAGE = "dendrax-nmodl-loaded"
_loaded: dict[tuple[str, str], str] = {}  # (group, name) -> "module:attribute"


class _Distribution(metadata.Distribution):
    def read_text(self, filename):
        if filename == "METADATA":
            return f"Metadata-Version: 2.1\nName: {PACKAGE}\nVersion: 0\n"
        if filename == "entry_points.txt":
            out = []
            for group in ("dendrax.channels", "dendrax.synapses"):
                names = {n: v for (g, n), v in _loaded.items() if g == group}
                if names:
                    out.append(f"[{group}]")
                    out += [f"{n} = {v}" for n, v in names.items()]
            return "\n".join(out) + "\n"
        return None

    def locate_file(self, path):
        return Path(path)


class _Finder(MetaPathFinder):
    """Finds no modules; lists one distribution, the loaded NMODL mechanisms."""

    def find_spec(self, fullname, path=None, target=None):
        return None

    def find_distributions(self, context=metadata.DistributionFinder.Context()):
        if _loaded and context.name in (None, PACKAGE):
            yield _Distribution()


_finder = _Finder()


def register(cls, *, point: bool) -> bool:
    """Offer ``cls`` under its ``name`` in ``dendrax.synapses`` (point) or
    ``dendrax.channels``; False (with a warning) when another package provides that name."""
    group = "dendrax.synapses" if point else "dendrax.channels"
    name = cls.name
    others = [p for p in plugins.providers(group).get(name, ()) if p.package != PACKAGE]
    if others:
        warnings.warn(f"dendrax.nmodl: {name!r} is already provided by "
                      f"{', '.join(repr(p.package) for p in others)}; the class loaded from "
                      "NMODL is not registered under that name (insert the returned class "
                      "itself, or rename the SUFFIX)", RuntimeWarning, stacklevel=3)
        return False
    before = _loaded.get((group, name))
    if before is not None:  # reloading the same file (edited) replaces it quietly
        module, _, attr = before.partition(":")
        old = getattr(sys.modules.get(module), attr, None)
        source = getattr(old, "nmodl_source", None)
        if source != getattr(cls, "nmodl_source", None):
            warnings.warn(f"dendrax.nmodl: {name!r} (loaded from {source}) is replaced by the "
                          f"one from {getattr(cls, 'nmodl_source', None)}; cells that "
                          "inserted the first keep it", RuntimeWarning, stacklevel=3)
    if _finder not in sys.meta_path:
        sys.meta_path.append(_finder)
    _loaded[group, name] = f"{cls.__module__}:{cls.__qualname__}"
    plugins.clear_cache()
    return True


def unregister(name: str | None = None) -> None:
    """Forget one loaded mechanism (by name) or all of them."""
    for key in [k for k in _loaded if name is None or k[1] == name]:
        del _loaded[key]
    plugins.clear_cache()


def registered() -> dict[str, str]:
    """name -> "module:attribute" of every mechanism registered from NMODL."""
    return {n: v for (_, n), v in _loaded.items()}
