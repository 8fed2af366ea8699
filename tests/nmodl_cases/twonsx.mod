TITLE two nonspecific currents, recorded each by its name

COMMENT
Written for dendrax's NMODL import tests: NEURON records i and il of this mechanism
separately (seg.twonsx.i, seg.twonsx.il); dendrax recorded their sum as "twonsx.i".
ENDCOMMENT

NEURON {
    SUFFIX twonsx
    NONSPECIFIC_CURRENT i, il
    RANGE g, gl, el
}

UNITS {
    (mA) = (milliamp)
    (mV) = (millivolt)
    (S) = (siemens)
}

PARAMETER {
    g = 0.003 (S/cm2)
    gl = 2e-4 (S/cm2)
    el = -60 (mV)
}

ASSIGNED {
    v (mV)
    i (mA/cm2)
    il (mA/cm2)
}

STATE { m }

INITIAL { m = 1/(1 + exp(-(v + 55)/7)) }

BREAKPOINT {
    SOLVE states METHOD cnexp
    i = g * m * (v + 85)
    il = gl * (v - el)
}

DERIVATIVE states {
    m' = (1/(1 + exp(-(v + 55)/7)) - m) / 5
}
