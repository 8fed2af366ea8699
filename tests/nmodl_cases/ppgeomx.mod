: A point process reading its segment's geometry, written for dendrax's NMODL import
: tests: a leak whose conductance scales with the segment's membrane area and diameter
: (NEURON's area and diam in a POINT_PROCESS), both recorded.
NEURON {
    POINT_PROCESS ppgeomx
    NONSPECIFIC_CURRENT i
    RANGE g, e, a, d
}

UNITS {
    (nA) = (nanoamp)
    (mV) = (millivolt)
    (uS) = (microsiemens)
}

PARAMETER {
    g = 1e-3 (uS)
    e = -40 (mV)
}

ASSIGNED {
    v (mV)
    i (nA)
    area (um2)
    diam (um)
    a (um2)
    d (um)
}

BREAKPOINT {
    a = area
    d = diam
    i = g * (v - e) * (a / 1000) * (d / 10)
}
