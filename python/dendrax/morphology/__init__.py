"""Morphologies: the section tree, readers, and NEURON's compartmentalisation.

* :class:`Morphology`, :class:`Section` -- the data model (``morphology.py``);
* :func:`read_swc` -- NEURON Import3d-exact SWC reader (``swc.py``);
* :func:`read_morphology` -- dispatch to registered readers by format (``readers.py``);
* :func:`compartments`, :func:`node_index`, :func:`dropped_end`, :func:`nseg_d_lambda`,
  :func:`nseg_max_length` -- NEURON's node tree, areas and axial resistances; a cell's
  segmentation from its settings (:func:`resolve_nseg`, :func:`refuse_zero_length`), the
  node renumbering when an end node is kept (:func:`renumbering`), path lengths
  (:func:`path_distances`) (``segmentation.py``);
* :func:`frustum_table`, :func:`geometry_jax`, :func:`mean_diameters` -- the same geometry
  (and NEURON's ``seg.diam``) as differentiable JAX functions of diameters and section
  lengths (``geometry.py``).
"""

from .geometry import (FrustumTable, concatenate_tables, frustum_table, geometry_jax,
                       mean_diameters)
from .morphology import Morphology, MorphologyError, Section
from .readers import known_formats, read_morphology
from .segmentation import (Compartments, compartments, dropped_end, node_index,
                           nseg_d_lambda, nseg_max_length, path_distances, refuse_zero_length,
                           renumbering, resolve_nseg)
from .swc import read_swc

__all__ = [
    "Morphology", "Section", "MorphologyError",
    "read_swc", "read_morphology", "known_formats",
    "Compartments", "compartments", "dropped_end", "node_index", "nseg_d_lambda",
    "nseg_max_length", "resolve_nseg", "refuse_zero_length", "renumbering", "path_distances",
    "FrustumTable", "concatenate_tables", "frustum_table", "geometry_jax", "mean_diameters",
]
