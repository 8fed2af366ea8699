: Reference model for dendrax's tests (tests/test_channels_neuron.py), written for
: dendrax from the published equations: Kole, Hallermann & Stuart 2006 (J Neurosci 26:1677) as in Hay et al. 2011.
: Same kinetics as python/dendrax/mechanisms/hay.py, integrated with cnexp.
NEURON {
    SUFFIX Ih
    NONSPECIFIC_CURRENT ihcn
    RANGE gIhbar, ehcn, gIh
}
UNITS {
    (S) = (siemens)
    (mV) = (millivolt)
    (mA) = (milliamp)
}
PARAMETER {
    gIhbar = 0.00001 (S/cm2)
    ehcn = -45.0 (mV)
}
ASSIGNED {
    v (mV)
    gIh (S/cm2)
    ihcn (mA/cm2)
    mInf
    mTau (ms)
}
STATE { m }
BREAKPOINT {
    SOLVE states METHOD cnexp
    gIh = gIhbar * m
    ihcn = gIh * (v - ehcn)
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
    LOCAL ma, mb
    UNITSOFF
    : ma = 0.00643 (v + 154.9) / (exp((v + 154.9) / 11.9) - 1)
    ma = 0.001 * 6.43 * linexp(-(vm + 154.9), 11.9)
    mb = 0.001 * 193 * exp(vm / 33.1)
    mInf = ma / (ma + mb)
    mTau = 1 / (ma + mb)
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
