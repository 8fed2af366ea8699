: Reference model for dendrax's tests (tests/test_channels_neuron.py), written for
: dendrax from the published equations: Korngreen & Sakmann 2000 (J Physiol 525:621), shifted -10 mV, as in Hay et al. 2011.
: Same kinetics as python/dendrax/mechanisms/hay.py, integrated with cnexp.
NEURON {
    SUFFIX K_Tst
    USEION k READ ek WRITE ik
    RANGE gK_Tstbar, gK_Tst
}
UNITS {
    (S) = (siemens)
    (mV) = (millivolt)
    (mA) = (milliamp)
}
PARAMETER {
    gK_Tstbar = 0.00001 (S/cm2)
}
ASSIGNED {
    v (mV)
    gK_Tst (S/cm2)
    celsius (degC)
    ek (mV)
    ik (mA/cm2)
    mInf
    mTau (ms)
    hInf
    hTau (ms)
}
STATE { m h }
BREAKPOINT {
    SOLVE states METHOD cnexp
    gK_Tst = gK_Tstbar * m * m * m * m * h
    ik = gK_Tst * (v - ek)
}
DERIVATIVE states {
    rates(v)
    m' = (mInf - m) / mTau
    h' = (hInf - h) / hTau
}
INITIAL {
    rates(v)
    m = mInf
    h = hInf
}
PROCEDURE rates(vm (mV)) {
    LOCAL qt, u
    UNITSOFF
    qt = 2.3^((celsius - 21) / 10)
    u = vm + 10
    mInf = 1 / (1 + exp(-(u + 0) / 19))
    mTau = (0.34 + 0.92 * exp(-((u + 71) / 59)^2)) / qt
    hInf = 1 / (1 + exp(-(u + 66) / -10))
    hTau = (8 + 49 * exp(-((u + 73) / 23)^2)) / qt
    UNITSON
}
