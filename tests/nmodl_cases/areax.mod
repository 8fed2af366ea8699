: A leak written for dendrax's NMODL import tests that reads its segment's area: its
: conductance density scales with the membrane area (um2) relative to aref.
NEURON {
    SUFFIX areax
    NONSPECIFIC_CURRENT i
    RANGE g, e, aref
}
UNITS { (mA) = (milliamp) (mV) = (millivolt) (S) = (siemens) (um) = (micron) }
PARAMETER { g = 1e-4 (S/cm2) e = -60 (mV) aref = 1000 (um2) }
ASSIGNED { v (mV) i (mA/cm2) area (um2) }
BREAKPOINT { i = g*(area/aref)*(v - e) }
