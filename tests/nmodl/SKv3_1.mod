: Reference model for dendrax's tests (tests/test_channels_neuron.py), written for
: dendrax from the published equations: Rettig et al. 1992 (EMBO J 11:2473) as in Hay et al. 2011.
: Same kinetics as python/dendrax/mechanisms/hay.py, integrated with cnexp.
NEURON {
    SUFFIX SKv3_1
    USEION k READ ek WRITE ik
    RANGE gSKv3_1bar, gSKv3_1
}
UNITS {
    (S) = (siemens)
    (mV) = (millivolt)
    (mA) = (milliamp)
}
PARAMETER {
    gSKv3_1bar = 0.00001 (S/cm2)
}
ASSIGNED {
    v (mV)
    gSKv3_1 (S/cm2)
    celsius (degC)
    ek (mV)
    ik (mA/cm2)
    mInf
    mTau (ms)
}
STATE { m }
BREAKPOINT {
    SOLVE states METHOD cnexp
    gSKv3_1 = gSKv3_1bar * m
    ik = gSKv3_1 * (v - ek)
}
DERIVATIVE states {
    rates(v)
    m' = (mInf - m) / mTau
}
INITIAL {
    rates(v)
    m = mInf
}
PROCEDURE rates(vm (mV)) {
    UNITSOFF
    mInf = 1 / (1 + exp((vm - 18.7) / -9.7))
    mTau = 0.2 * 20 / (1 + exp((vm + 46.56) / -44.14))
    UNITSON
}
