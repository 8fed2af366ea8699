"""NMODL import: NEURON ``.mod`` files as differentiable dendrax mechanisms.

    import dendrax.nmodl
    NaTa_t = dendrax.nmodl.load("NaTa_t.mod")   # a Channel subclass, registered as "NaTa_t"
    cell.insert(NaTa_t)                         # or cell.insert("NaTa_t")

``load`` parses the file with NEURON's own NMODL framework (``neuron.nmodl``, installed by
``pip install 'dendrax[nmodl]'``), describes it (``describe``), writes the Python source of
a mechanism class (``codegen``) and executes it: the class is a ``Channel`` (SUFFIX with
currents), an ``IonPool`` (SUFFIX writing a concentration such as cai) or a ``Synapse``
(POINT_PROCESS with NET_RECEIVE), whose methods run NEURON's numerical schemes (cnexp,
derivimplicit, sparse) in JAX: jit-compiled, differentiable in every PARAMETER.

``check(path)`` says whether a file is supported, and what is not. ``source(path)`` is the
generated Python, which ``dendrax nmodl FILES -o DIR`` packages as an installable plugin.
``sha256(path)`` is the hash of a file's NMODL text that a saved model file records of a
mechanism made from it (``mechanism_sha256(mech)``), so that loading the model refuses a
different file with the same SUFFIX.
Constructs outside the supported subset (VERBATIM, POINTER, WATCH, net_send outside NET_RECEIVE, ...) raise
``NmodlError`` naming each construct and its line.
"""

from __future__ import annotations

import hashlib
import sys
import types

from .describe import describe
from .source import read
from .description import NmodlError

__all__ = ["load", "check", "source", "sha256", "mechanism_sha256", "NmodlError", "describe"]

_count = 0


def source(path_or_text) -> str:
    """The Python module source of the mechanism in an NMODL file (a path, or the text)."""
    from .codegen import generate

    text, name = read(path_or_text)
    return generate(describe(text, name))


def exec_source(code: str, module_name: str):
    """A module object from generated source (registered in sys.modules, so entry points
    and pickling find it)."""
    module = types.ModuleType(module_name)
    module.__file__ = f"<dendrax.nmodl {module_name}>"
    sys.modules[module_name] = module
    exec(compile(code, module.__file__, "exec"), module.__dict__)
    return module


def load(path_or_text, *, register: bool = True):
    """The mechanism class of an NMODL file (a path, or the NMODL text itself).

    Returns a subclass of ``Channel``, ``IonPool`` or ``Synapse`` named as the SUFFIX or
    POINT_PROCESS. With ``register`` it is also registered under that name for
    ``cell.insert(name)`` / ``cell.synapse(name, ...)`` in this process (see
    ``dendrax.nmodl.registry``); a name another installed package already provides is left
    to that package, with a warning (insert the returned class instead).

    Raises:
        NmodlError: a construct dendrax does not support (each named, with its line), or a
            syntax error (with the parser's message and line).
        ImportError: NEURON's NMODL framework is not installed (``dendrax[nmodl]``).
    """
    from .codegen import generate
    from .naming import identifier

    global _count
    text, name = read(path_or_text)
    d = describe(text, name)
    code = generate(d)
    _count += 1
    module = exec_source(code, f"dendrax.nmodl.loaded._{_count}_{identifier(d.name)}")
    cls = next(v for v in module.__dict__.values()
               if isinstance(v, type) and getattr(v, "name", None) == d.name
               and v.__module__ == module.__name__)
    cls.nmodl_source = name  # the file it came from ("<text>" for text)
    if register:
        from .registry import register as _register

        _register(cls, point=d.point)
    return cls


def check(path_or_text) -> list[tuple[int, str]]:
    """What dendrax cannot import from an NMODL file: (line, message) for each problem, [] when
    the whole file is supported."""
    try:
        source(path_or_text)
    except NmodlError as err:
        return list(err.problems)
    return []


def sha256(path_or_text) -> str:
    """The SHA-256 (64 hexadecimal digits) of an NMODL file's text (a path, or the text
    itself), with line endings as LF: what a model file records of a mechanism made from
    it (``mechanism_sha256``). Any edit of the text, a comment's too, changes it."""
    text, _ = read(path_or_text)
    return text_sha256(text)


def text_sha256(text: str) -> str:
    """The SHA-256 of NMODL text, its UTF-8 bytes with CRLF and CR line endings read as
    LF (so a file checked out on Windows hashes as on Linux)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def mechanism_sha256(mechanism) -> str | None:
    """The ``sha256`` of the NMODL text a mechanism (a class or an instance) was generated
    from -- by ``load`` or in a package ``dendrax nmodl -o DIR`` wrote, whose module keeps
    the text as ``NMODL`` -- or None for a mechanism not generated from NMODL."""
    cls = mechanism if isinstance(mechanism, type) else type(mechanism)
    text = getattr(sys.modules.get(cls.__module__), "NMODL", None)
    return text_sha256(text) if isinstance(text, str) else None
