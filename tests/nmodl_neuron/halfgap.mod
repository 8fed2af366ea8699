: One half of a gap junction, for NEURON-only reference runs (tests/neuron_network.py):
: i = g (v - vgap), vgap the other site's voltage, joined by h.setpointer. dendrax's
: GapJunction is this current; dendrax does not import the file (POINTER is outside its
: NMODL subset).
NEURON {
    POINT_PROCESS halfgap
    NONSPECIFIC_CURRENT i
    RANGE g, i
    POINTER vgap
}
UNITS {
    (mV) = (millivolt)
    (nA) = (nanoamp)
    (uS) = (microsiemens)
}
PARAMETER { g = 0.001 (uS) }
ASSIGNED {
    v (mV)
    vgap (mV)
    i (nA)
}
BREAKPOINT { i = g * (v - vgap) }
