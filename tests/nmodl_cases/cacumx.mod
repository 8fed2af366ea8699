: A calcium pool in the manner of Migliore's cacumm.mod, written for dendrax's NMODL
: import tests: a NONSPECIFIC_CURRENT that is always 0 ("a dummy current needed to force a
: BREAKPOINT"), a running maximum of cai kept in BREAKPOINT (NEURON runs it with the
: currents, at the step's start), and a resting current taken from ica in INITIAL (0 at
: NEURON's first finitialize); and an accumulator, which shows how often NEURON runs
: that BREAKPOINT.
NEURON {
    SUFFIX cacumx
    USEION ca READ ica WRITE cai
    NONSPECIFIC_CURRENT i
    RANGE depth, tau, cai0, cmax, irest, acc
}
UNITS {
    (mM) = (milli/liter)
    (mA) = (milliamp)
    F = (faraday) (coulombs)
}
PARAMETER {
    depth = 0.1 (um)
    irest = 0 (mA/cm2)
    tau = 100 (ms)
    cai0 = 50e-6 (mM)
}
ASSIGNED {
    ica (mA/cm2)
    cmax
    acc
    i (mA/cm2)
}
STATE { cai (mM) }
INITIAL {
    cai = cai0
    irest = ica
    cmax = cai
    acc = 0
}
BREAKPOINT {
    SOLVE integrate METHOD derivimplicit
    if (cai > cmax) { cmax = cai }
    acc = acc + cai  : NEURON runs it twice a step (its di/dv), and twice in finitialize
    i = 0
}
DERIVATIVE integrate {
    cai' = (irest - ica)/depth/F/2 * (1e4) + (cai0 - cai)/tau
}
