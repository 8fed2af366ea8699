: A calcium pool written for dendrax's NMODL import tests: influx into a shell, first-order
: decay (cnexp), and a BREAKPOINT that clamps cai after the SOLVE into [0, ceiling], in the
: manner of Traub et al.'s (2005) cad.mod. A pool has no current: NEURON runs those
: statements in its state update, after the SOLVE, every step.
NEURON {
    SUFFIX ceilx
    USEION ca READ ica WRITE cai
    RANGE ceiling, beta
}
UNITS {
    (mM) = (milli/liter)
    (mA) = (milliamp)
}
PARAMETER {
    ceiling = 2e-4 (mM)
    beta = 0.02 (/ms)
    phi = 260 (mM cm2/mA/ms)
}
ASSIGNED { ica (mA/cm2) }
STATE { cai (mM) }
INITIAL { cai = 5e-5 }
BREAKPOINT {
    SOLVE dynamics METHOD cnexp
    if (cai < 0) { cai = 0 }
    if (cai > ceiling) { cai = ceiling }
}
DERIVATIVE dynamics { cai' = -phi * ica - beta * (cai - 5e-5) }
