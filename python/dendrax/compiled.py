"""What is compiled for a model, kept while a model equal to it is alive.

JAX keeps what a module-level ``jax.jit`` compiled for the life of the process: a sweep
over cell structures kept ~55 MB and ~145 memory mappings per structure (its geometry,
compiled op by op, its initial state and time loop), until it ran out of memory or of the
65530 mappings Linux allows a process (where XLA crashes); now ~1 MB.
Here the jitted functions of a structure belong to an entry that lives while a model
equal to it does (``Model.__eq__``: the same structure; a cell holds its model), and as
long as it is among the ``RECENT`` last used: a loop that builds the same cell anew each
time compiles once. When an entry goes, so does its compiled code.
"""

from __future__ import annotations

import collections
import dataclasses
import threading
import weakref
from typing import Callable

RECENT = 8  # entries kept after their models died, the last used
_LOCK = threading.RLock()  # re-entrant: a model's finalizer may run in a garbage collection
#                            that functions() itself started

_ENTRIES: dict = {}  # model (the entry's own copy) -> _Entry
_RECENT: collections.OrderedDict = collections.OrderedDict()  # id(entry) -> entry, last used last


class _Entry:
    def __init__(self, model):
        self.model = model  # a copy, equal to its users' models but not one of them
        self.functions: dict = {}  # build -> what it built
        self.users: set[int] = set()  # ids of the live models that use it


def functions(model, build: Callable):
    """``build(model)`` (jitted functions of ``model``), built once per structure and
    ``build``, and kept while a model equal to ``model`` lives or while it is among the
    ``RECENT`` structures last used."""
    with _LOCK:
        entry = _ENTRIES.get(model)
        if entry is None:
            own = dataclasses.replace(model)  # its fields only, not what a model caches
            entry = _ENTRIES[own] = _Entry(own)
        if id(model) not in entry.users:
            entry.users.add(id(model))
            weakref.finalize(model, _release, entry, id(model)).atexit = False
        _RECENT[id(entry)] = entry
        _RECENT.move_to_end(id(entry))
        while len(_RECENT) > RECENT:
            _, old = _RECENT.popitem(last=False)
            _drop_if_unused(old)
        if build not in entry.functions:
            entry.functions[build] = build(entry.model)
        return entry.functions[build]


def kept(model) -> bool:
    """Whether functions are kept for ``model``'s structure."""
    return model in _ENTRIES


def _release(entry: _Entry, uid: int) -> None:
    with _LOCK:
        entry.users.discard(uid)
        _drop_if_unused(entry)


def _drop_if_unused(entry: _Entry) -> None:
    if not entry.users and id(entry) not in _RECENT and _ENTRIES.get(entry.model) is entry:
        del _ENTRIES[entry.model]
