"""Reading a morphology file of any registered format.

Readers are plugins: callables ``reader(path) -> Morphology`` registered under a format
name in the entry-point group ``dendrax.morphology_readers`` (dendrax registers ``swc``
itself). A third-party package adds a format by declaring, in its pyproject.toml::

    [project.entry-points."dendrax.morphology_readers"]
    asc = "mypackage.asc:read_asc"
"""

from __future__ import annotations

import os
from pathlib import Path

from .. import plugins
from .morphology import Morphology, MorphologyError

__all__ = ["read_morphology", "known_formats"]

GROUP = "dendrax.morphology_readers"


def known_formats() -> list[str]:
    """Names of the registered morphology formats, sorted."""
    return sorted(plugins.providers(GROUP))


def read_morphology(path: str | os.PathLike, format: str | None = None) -> Morphology:
    """Read a morphology file with the reader registered for its format.

    Args:
        path: the file.
        format: a registered format name (e.g. "swc"); by default the file's suffix,
            lower-cased, without the dot.

    Returns:
        The :class:`Morphology` the reader builds.

    Raises:
        FileNotFoundError: no such file.
        MorphologyError: unknown format (the message lists the known ones), a file the
            reader rejects, or a reader plugin that fails to load.
        TypeError: the reader returned something other than a Morphology.
    """
    p = Path(path)
    if not p.is_file():
        what = "is a directory, not a file" if p.is_dir() else "does not exist"
        raise FileNotFoundError(f"morphology file {str(p)!r} {what}")
    known = known_formats()
    if format is None:
        fmt = p.suffix.lower().lstrip(".")
        if not fmt:
            raise MorphologyError(f"cannot tell the format of {str(p)!r} (no file suffix); "
                                  f"pass format=... (Python) or give the file its suffix "
                                  f"(e.g. .swc), one of: {', '.join(known) or 'none'}")
    else:
        fmt = str(format).lower().lstrip(".")
    if fmt not in known:
        raise MorphologyError(f"unknown morphology format {fmt!r} for {str(p)!r}; known "
                              f"formats: {', '.join(known) or 'none'} (readers are "
                              f"registered in the entry-point group {GROUP!r})")
    try:
        reader = plugins.load(GROUP, fmt)
    except plugins.PluginError as err:
        raise MorphologyError(f"cannot read {str(p)!r}: {err}") from err
    entry = plugins.resolve(GROUP, fmt)
    result = reader(p)
    if not isinstance(result, Morphology):
        raise TypeError(f"morphology reader {fmt!r} ({entry.value} from package "
                        f"{entry.package!r}) returned {type(result).__name__}, "
                        "not a dendrax.morphology.Morphology")
    return result
