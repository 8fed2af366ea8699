: A calcium pool written for dendrax's NMODL import tests that reads the segment's diam:
: influx into a shell of depth under the membrane of a cylinder of diameter diam (the
: shell's volume per membrane area is depth (diam - depth) / diam), first-order decay.
NEURON {
    SUFFIX caddiamx
    USEION ca READ ica WRITE cai
    RANGE depth, taur, cainf
}
UNITS {
    (mM) = (milli/liter)
    (um) = (micron)
    (mA) = (milliamp)
    FARADAY = (faraday) (coulomb)
}
PARAMETER {
    depth = 0.5 (um)
    taur = 50 (ms)
    cainf = 5e-5 (mM)
}
ASSIGNED { ica (mA/cm2) diam (um) }
STATE { cai (mM) }
INITIAL { cai = cainf }
BREAKPOINT { SOLVE state METHOD cnexp }
DERIVATIVE state {
    cai' = -(10000) * ica * diam / (2 * FARADAY * depth * (diam - depth)) + (cainf - cai)/taur
}
