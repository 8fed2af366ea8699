: Reference model for dendrax's tests (tests/test_channels_neuron.py), written for
: dendrax from the published equations: Korngreen & Sakmann 2000 (J Physiol 525:621), shifted -10 mV, as in Hay et al. 2011.
: Same kinetics as python/dendrax/mechanisms/hay.py, integrated with cnexp.
NEURON {
    SUFFIX K_Pst
    USEION k READ ek WRITE ik
    RANGE gK_Pstbar, gK_Pst
}
UNITS {
    (S) = (siemens)
    (mV) = (millivolt)
    (mA) = (milliamp)
}
PARAMETER {
    gK_Pstbar = 0.00001 (S/cm2)
}
ASSIGNED {
    v (mV)
    gK_Pst (S/cm2)
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
    gK_Pst = gK_Pstbar * m * m * h
    ik = gK_Pst * (v - ek)
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
    mInf = 1 / (1 + exp(-(u + 1) / 12))
    if (u < -50) {
        mTau = (1.25 + 175.03 * exp(-u * -0.026)) / qt
    } else {
        mTau = (1.25 + 13 * exp(-u * 0.026)) / qt
    }
    hInf = 1 / (1 + exp(-(u + 54) / -11))
    hTau = (360 + (1010 + 24 * (u + 55)) * exp(-((u + 75) / 48)^2)) / qt
    UNITSON
}
