: A leak with a gate whose constants carry units inside expressions ("-65 (mV)", "2 (ms)"),
: written for dendrax's NMODL import tests (nocmodl uses such numbers as written).
NEURON {
    SUFFIX leakunit
    NONSPECIFIC_CURRENT i
    RANGE gbar
}

UNITS {
    (mA) = (milliamp)
    (mV) = (millivolt)
    (S) = (siemens)
}

PARAMETER {
    gbar = 0.001 (S/cm2)
}

ASSIGNED {
    v (mV)
    i (mA/cm2)
    winf
    wtau (ms)
}

STATE { w }

BREAKPOINT {
    SOLVE states METHOD cnexp
    i = gbar * w * (v - (-65 (mV)))
}

INITIAL {
    rates(v)
    w = winf
}

DERIVATIVE states {
    rates(v)
    w' = (winf - w) / wtau
}

PROCEDURE rates(v (mV)) {
    winf = 1 / (1 + exp(-(v - (-50 (mV))) / 8 (mV)))
    wtau = 2 (ms) + 10 (ms) / (1 + exp((v + 40) / 5))
}
