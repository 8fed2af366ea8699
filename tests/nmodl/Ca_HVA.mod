: Reference model for dendrax's tests (tests/test_channels_neuron.py), written for
: dendrax from the published equations: Reuveni et al. 1993 (J Neurosci 13:4609) as in Hay et al. 2011.
: Same kinetics as python/dendrax/mechanisms/hay.py, integrated with cnexp.
NEURON {
    SUFFIX Ca_HVA
    USEION ca READ eca WRITE ica
    RANGE gCa_HVAbar, gCa_HVA
}
UNITS {
    (S) = (siemens)
    (mV) = (millivolt)
    (mA) = (milliamp)
}
PARAMETER {
    gCa_HVAbar = 0.00001 (S/cm2)
}
ASSIGNED {
    v (mV)
    gCa_HVA (S/cm2)
    celsius (degC)
    eca (mV)
    ica (mA/cm2)
    mInf
    mTau (ms)
    hInf
    hTau (ms)
}
STATE { m h }
BREAKPOINT {
    SOLVE states METHOD cnexp
    gCa_HVA = gCa_HVAbar * m * m * h
    ica = gCa_HVA * (v - eca)
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
    LOCAL ma, mb, ha, hb
    UNITSOFF
    : ma = 0.055 (-27 - v) / (exp((-27 - v) / 3.8) - 1)
    ma = 0.055 * linexp(vm + 27, 3.8)
    mb = 0.94 * exp((-75 - vm) / 17)
    mInf = ma / (ma + mb)
    mTau = 1 / (ma + mb)
    ha = 0.000457 * exp((-13 - vm) / 50)
    hb = 0.0065 / (exp((-vm - 15) / 28) + 1)
    hInf = ha / (ha + hb)
    hTau = 1 / (ha + hb)
    UNITSON
}
FUNCTION linexp(x, k) {
    : x / (1 - exp(-x / k)), continued through x = 0
    if (fabs(x / k) < 1e-6) {
        linexp = k * (1 + x / k / 2 + x * x / k / k / 12)
    } else {
        linexp = x / (1 - exp(-x / k))
    }
}
