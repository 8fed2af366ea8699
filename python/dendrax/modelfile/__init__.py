"""Saving and loading a built model: a documented, versioned JSON file (not pickle).

``save(target, path)`` writes a ``dendrax.Cell`` or ``dendrax.Network``; ``load(path)``
rebuilds it, bit for bit. The format: ``dendrax.modelfile.format``.
"""

from .format import FORMAT, VERSION, ModelFileError
from .read import load, loads
from .write import dumps, save

__all__ = ["save", "load", "dumps", "loads", "ModelFileError", "FORMAT", "VERSION"]
