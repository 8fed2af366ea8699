TITLE statements before SOLVE in BREAKPOINT (a magnesium block, as Destexhe's nmda5.mod)

COMMENT
Written for dendrax's NMODL import tests: BREAKPOINT computes a voltage-dependent block
before its SOLVE, NEURON runs such statements with the currents (at v, and at v + 0.001 for
di/dv); the SOLVE'd block does not read what they set.
ENDCOMMENT

NEURON {
    SUFFIX presolvex
    NONSPECIFIC_CURRENT i
    RANGE gbar, e, mg, B, g
}

UNITS {
    (mA) = (milliamp)
    (mV) = (millivolt)
    (S) = (siemens)
    (mM) = (milli/liter)
}

PARAMETER {
    gbar = 0.002 (S/cm2)
    e = 0 (mV)
    mg = 1 (mM)
}

ASSIGNED {
    v (mV)
    i (mA/cm2)
    B
    g (S/cm2)
}

STATE { m }

INITIAL { m = 1/(1 + exp(-(v + 40)/8)) }

BREAKPOINT {
    LOCAL ex
    ex = exp(0.062 * -v)
    B = 1 / (1 + ex * (mg / 3.57))
    SOLVE states METHOD cnexp
    g = gbar * m * B
    i = g * (v - e)
}

DERIVATIVE states {
    m' = (1/(1 + exp(-(v + 40)/8)) - m) / 4
}
