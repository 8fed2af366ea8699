: Reference model for dendrax's tests (tests/test_channels_neuron.py), written for
: dendrax from the published equations: Adams et al. 1982 (J Physiol 330:537) as in Hay et al. 2011.
: Same kinetics as python/dendrax/mechanisms/hay.py, integrated with cnexp.
NEURON {
    SUFFIX Im
    USEION k READ ek WRITE ik
    RANGE gImbar, gIm
}
UNITS {
    (S) = (siemens)
    (mV) = (millivolt)
    (mA) = (milliamp)
}
PARAMETER {
    gImbar = 0.00001 (S/cm2)
}
ASSIGNED {
    v (mV)
    gIm (S/cm2)
    celsius (degC)
    ek (mV)
    ik (mA/cm2)
    mInf
    mTau (ms)
}
STATE { m }
BREAKPOINT {
    SOLVE states METHOD cnexp
    gIm = gImbar * m
    ik = gIm * (v - ek)
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
    LOCAL qt, ma, mb
    UNITSOFF
    qt = 2.3^((celsius - 21) / 10)
    ma = 3.3e-3 * exp(2.5 * 0.04 * (vm + 35))
    mb = 3.3e-3 * exp(-2.5 * 0.04 * (vm + 35))
    mInf = ma / (ma + mb)
    mTau = (1 / (ma + mb)) / qt
    UNITSON
}
