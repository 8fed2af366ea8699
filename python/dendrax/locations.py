"""Where things are on cells: a ``Location`` (NEURON's sec(x)), a ``SectionRef`` (a
section, called with x), and ``CellView``, what a network's cell view is to the modules
that read locations (lowering, trainables). Description and lowering both import these;
neither imports the other's module for them."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import NamedTuple

from .quantities import is_number


class Location(NamedTuple):
    """A point on a section: section index and x in [0, 1] (NEURON's sec(x)); in a
    network, ``cell`` is the index of the cell (None: the cell it is used with)."""

    section: int
    x: float
    cell: int | None = None


@dataclass(frozen=True)
class SectionRef:
    """A section of a cell; call it with x to get a Location, like NEURON's sec(x)."""

    index: int
    region: str
    cell: int | None = None

    def __call__(self, x: float = 0.5) -> Location:
        if not is_number(x):
            raise ValueError(f"x must be a number in [0, 1], got {x!r}")
        if not 0.0 <= x <= 1.0:
            raise ValueError(f"x must lie in [0, 1], got {x}")
        return Location(self.index, float(x), self.cell)


class CellIndex(int):
    """The index of a network's cell as its locations carry it (``net.cell(2).soma(0.5)``):
    an int (equal to, hashed and printed as the plain index) that also knows which
    network made it (``network``: its id), so that another network can refuse it. A copy
    or pickle is the plain int."""

    network: int

    def __new__(cls, index: int, network: int):
        self = super().__new__(cls, index)
        self.network = network
        return self

    def __repr__(self):
        return int.__repr__(self)

    __str__ = __repr__

    def __reduce__(self):
        return int, (int(self),)


def refuse_other_network(loc, network) -> None:
    """A ValueError where ``loc`` (a Location or SectionRef) was made by a network other
    than ``network`` (by its ``net.cell(i)``)."""
    owner = getattr(loc.cell, "network", None)
    if owner is not None and owner != id(network):
        raise ValueError(f"{loc!r} is on a cell of another network: use this network's "
                         f"net.cell({int(loc.cell)}) for its locations")


class CellView:
    """Cell ``index`` of a network (``Network.cell(i)``, a ``NetCell``): ``where=`` arguments
    accept it for the whole cell."""

    index: int


def locations_in(x):
    """The Locations and SectionRefs in x, however deep in lists and tuples."""
    if isinstance(x, (Location, SectionRef)):
        yield x
    elif isinstance(x, (list, tuple)):
        for item in x:
            yield from locations_in(item)


def untagged(x):
    """x with the cell index of every Location and SectionRef in it (however deep in
    lists and tuples) removed: what a cell's own methods take."""
    if isinstance(x, Location):
        return x._replace(cell=None)
    if isinstance(x, SectionRef):
        return replace(x, cell=None)
    if isinstance(x, (list, tuple)):
        return type(x)(untagged(item) for item in x)
    return x
