: Reference model for dendrax's tests (tests/test_channels_neuron.py), written for
: dendrax from the published equations: Koehler et al. 1996 (Science 273:1709) as in Hay et al. 2011.
: Same kinetics as python/dendrax/mechanisms/hay.py, integrated with cnexp.
NEURON {
    SUFFIX SK_E2
    USEION k READ ek WRITE ik
    USEION ca READ cai
    RANGE gSK_E2bar, zTau, gSK_E2
}
UNITS {
    (S) = (siemens)
    (mV) = (millivolt)
    (mA) = (milliamp)
}
PARAMETER {
    gSK_E2bar = 0.000001 (S/cm2)
    zTau = 1 (ms)
}
ASSIGNED {
    v (mV)
    gSK_E2 (S/cm2)
    ek (mV)
    ik (mA/cm2)
    cai (mM)
    zInf
}
STATE { z }
BREAKPOINT {
    SOLVE states METHOD cnexp
    gSK_E2 = gSK_E2bar * z
    ik = gSK_E2 * (v - ek)
}
DERIVATIVE states {
    rates(cai)
    z' = (zInf - z) / zTau
}
INITIAL {
    rates(cai)
    z = zInf
}
PROCEDURE rates(c (mM)) {
    UNITSOFF
    if (c > 0) {
        zInf = 1 / (1 + (0.00043 / c)^4.8)
    } else {
        zInf = 0
    }
    UNITSON
}
