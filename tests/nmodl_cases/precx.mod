TITLE PARAMETER defaults with more than six significant digits

COMMENT
Written for dendrax's NMODL import tests: nocmodl writes a PARAMETER's default (RANGE or
GLOBAL) with printf's %g, so NEURON runs g = 0.000123457, e = -61.2346, k = 15.873; the
CONSTANT and the numbers in expressions keep every digit. dendrax used the full literals
(2.5e-5 mV off on a leak, 0.07 mV on Solinas' Golgi cell). gm is a PARAMETER that
BREAKPOINT sets (as Migliore's cal2.mod's ggk): NEURON records it, and never reads the
value it was given.
ENDCOMMENT

NEURON {
    SUFFIX precx
    NONSPECIFIC_CURRENT i
    RANGE g, e, gm
    GLOBAL k
}

UNITS {
    (mA) = (milliamp)
    (mV) = (millivolt)
    (S) = (siemens)
}

CONSTANT { c1 = 1.23456789 }

PARAMETER {
    g = 0.00123456789 (S/cm2)
    e = -61.23456789 (mV)
    k = 15.87301587302
    gm (S/cm2)
}

ASSIGNED {
    v (mV)
    i (mA/cm2)
}

STATE { m }

INITIAL { m = 1/(1 + exp(-(v + 50.123456789)/7)) }

BREAKPOINT {
    SOLVE states METHOD cnexp
    gm = g * m
    i = gm * (v - e)
}

DERIVATIVE states {
    m' = (1/(1 + exp(-(v + 50.123456789)/7)) - m) / (k * c1)
}
