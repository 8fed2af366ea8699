: Reference model for dendrax's tests (tests/test_channels_neuron.py), written for
: dendrax from the published equations: Colbert & Pan 2002 (Nat Neurosci 5:533) as in Hay et al. 2011 (PLoS Comput Biol 7:e1002107).
: Same kinetics as python/dendrax/mechanisms/hay.py, integrated with cnexp.
NEURON {
    SUFFIX NaTs2_t
    USEION na READ ena WRITE ina
    RANGE gNaTs2_tbar, gNaTs2_t
}
UNITS {
    (S) = (siemens)
    (mV) = (millivolt)
    (mA) = (milliamp)
}
PARAMETER {
    gNaTs2_tbar = 0.00001 (S/cm2)
}
ASSIGNED {
    v (mV)
    gNaTs2_t (S/cm2)
    celsius (degC)
    ena (mV)
    ina (mA/cm2)
    mInf
    mTau (ms)
    hInf
    hTau (ms)
}
STATE { m h }
BREAKPOINT {
    SOLVE states METHOD cnexp
    gNaTs2_t = gNaTs2_tbar * m * m * m * h
    ina = gNaTs2_t * (v - ena)
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
    LOCAL qt, ma, mb, ha, hb
    UNITSOFF
    qt = 2.3^((celsius - 21) / 10)
    : ma = 0.182 (v + 32) / (1 - exp(-(v + 32) / 6)), mb = 0.124 (-v - 32) / (1 - exp((v + 32) / 6))
    ma = 0.182 * linexp(vm + 32, 6)
    mb = 0.124 * linexp(-vm - 32, 6)
    mInf = ma / (ma + mb)
    mTau = (1 / (ma + mb)) / qt
    : ha = -0.015 (v + 60) / (1 - exp((v + 60) / 6)), hb = -0.015 (-v - 60) / (1 - exp((-v - 60) / 6))
    ha = 0.015 * linexp(-vm - 60, 6)
    hb = 0.015 * linexp(vm + 60, 6)
    hInf = ha / (ha + hb)
    hTau = (1 / (ha + hb)) / qt
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
