: Two gates started by their x0 (NEURON's start value of a STATE x, here declared in
: PARAMETER: h0 GLOBAL, m0 RANGE), a third by its START in STATE (nocmodl's n0, %g'd; it
: started at 0), with an INITIAL that sets none, written for dendrax's NMODL import tests.
NEURON {
    SUFFIX startx
    NONSPECIFIC_CURRENT i
    RANGE g, e, m0, hinf
}

UNITS {
    (mA) = (milliamp)
    (mV) = (millivolt)
    (S) = (siemens)
}

PARAMETER {
    g = 0.001 (S/cm2)
    e = -50 (mV)
    h0 = 0.8
    m0 = 0.1
}

ASSIGNED {
    v (mV)
    i (mA/cm2)
    hinf
}

STATE { m h n START 0.123456789 }

BREAKPOINT {
    SOLVE states METHOD cnexp
    i = g*m*h*(v - e) + g*n*(v + 80)
}

INITIAL {
    hinf = 1/(1 + exp((v + 60)/5))
}

DERIVATIVE states {
    hinf = 1/(1 + exp((v + 60)/5))
    m' = (1/(1 + exp(-(v + 60)/5)) - m)/3
    h' = (hinf - h)/20
    n' = (0.5 - n)/30
}
