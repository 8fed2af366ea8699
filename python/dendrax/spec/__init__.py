"""Cells and networks from specs: plain dicts (as loaded from TOML) or command-line options.

One place turns text into models for every front end (``dendrax simulate``,
``dendrax fit``, scripts):

* ``CellSpec`` describes one cell: a bundled model or a morphology file,
  segmentation, mechanisms, parameter assignments, current clamps and
  recordings, all as the strings the command line takes
  (``"hh@dend"``, ``"hh.gnabar=0.2@soma"``, ``"0.5,5,80@soma(0.5)"``,
  ``"v@apic[2](1)"``). ``CellSpec.from_dict`` reads a TOML table,
  ``CellSpec.from_options`` the options of ``dendrax simulate``;
  ``build()`` makes the ``Cell``.
* ``NetworkSpec`` describes a network: ``[[cell]]`` tables (a ``CellSpec`` and
  a ``count`` of copies each), ``[[connection]]`` tables, ``[simulation]`` and
  ``[record]``; ``NetworkSpec.from_dict`` reads it, ``build()`` makes the
  ``Network`` with its recordings.
* The parsers the specs use are public too: ``parse_location``,
  ``parse_where``, ``split_where``, ``parse_cells``, ``parse_cell_location``,
  and ``load_toml``, ``check_keys``, ``did_you_mean``, ``get_number``, ``get_strings`` for config
  files.

Every bad value raises ``SpecError`` (a ``ValueError``) with a one-line
message naming the option or TOML key it came from.
"""

from .cell import CELL_KEYS, MODELS, CellSpec
from .network import CONNECTION_KEYS, NETWORK_CELL_KEYS, NetworkSpec, is_network
from .parse import (SpecError, check_keys, default_site, did_you_mean, get_number, get_strings,
                    load_toml, parse_cell_location, parse_cells, parse_location, parse_where,
                    split_where)

__all__ = [
    "CELL_KEYS", "CONNECTION_KEYS", "MODELS", "NETWORK_CELL_KEYS", "CellSpec", "NetworkSpec",
    "SpecError", "check_keys", "default_site", "did_you_mean", "get_number", "get_strings", "is_network", "load_toml",
    "parse_cell_location", "parse_cells", "parse_location", "parse_where", "split_where",
]
