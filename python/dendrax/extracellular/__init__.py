"""Physical extracellular readouts: potentials (LFP), current dipole moments, EEG, MEG, CSD.

All in JAX and differentiable; units: um, nA, S/m, uV, nA um, fT, uA/mm^3
(docs/extracellular.md).

* ``geometry.py``: where each compartment is (LFPy's segment geometry) and cell placement;
* ``electrodes.py``: ``Electrodes`` and the line-/point-source transfer matrices;
* ``dipole.py``: current dipole moments, the four-sphere EEG model, MEG;
* ``csd.py``: current source density from a laminar array (standard, delta iCSD);
* ``fields.py``: readouts recorded inside a run (``Cell.record_extracellular``, ...).
"""

from .csd import CSD_METHODS, csd, delta_matrix
from .dipole import (MU0, RADII, SIGMAS, current_dipole_moment, dipole_matrix, eeg_four_sphere,
                     meg)
from .electrodes import METHODS, Electrodes, line_source_matrix, point_source_matrix
from .fields import DipoleRef, ElectrodeRef, FieldRecord
from .geometry import (SegmentGeometry, placed_geometry, rotation_matrix, segment_geometry,
                       soma_centre)

__all__ = ["CSD_METHODS", "METHODS", "MU0", "RADII", "SIGMAS", "DipoleRef", "ElectrodeRef",
           "Electrodes", "FieldRecord", "SegmentGeometry", "csd", "current_dipole_moment",
           "delta_matrix", "dipole_matrix", "eeg_four_sphere", "line_source_matrix", "meg",
           "placed_geometry", "point_source_matrix", "rotation_matrix", "segment_geometry",
           "soma_centre"]
