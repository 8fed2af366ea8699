: Reference model for dendrax's tests (tests/test_channels_neuron.py), written for
: dendrax from the published equations: Magistretti & Alonso 1999 (J Gen Physiol 114:491) as in Hay et al. 2011.
: Same kinetics as python/dendrax/mechanisms/hay.py, integrated with cnexp.
NEURON {
    SUFFIX Nap_Et2
    USEION na READ ena WRITE ina
    RANGE gNap_Et2bar, gNap_Et2
}
UNITS {
    (S) = (siemens)
    (mV) = (millivolt)
    (mA) = (milliamp)
}
PARAMETER {
    gNap_Et2bar = 0.00001 (S/cm2)
}
ASSIGNED {
    v (mV)
    gNap_Et2 (S/cm2)
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
    gNap_Et2 = gNap_Et2bar * m * m * m * h
    ina = gNap_Et2 * (v - ena)
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
    mInf = 1 / (1 + exp((vm + 52.6) / -4.6))
    ma = 0.182 * linexp(vm + 38, 6)
    mb = 0.124 * linexp(-vm - 38, 6)
    mTau = 6 * (1 / (ma + mb)) / qt
    hInf = 1 / (1 + exp((vm + 48.8) / 10))
    : ha = -2.88e-6 (v + 17) / (1 - exp((v + 17) / 4.63)), hb = 6.94e-6 (v + 64.4) / (1 - exp(-(v + 64.4) / 2.63))
    ha = 2.88e-6 * linexp(-vm - 17, 4.63)
    hb = 6.94e-6 * linexp(vm + 64.4, 2.63)
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
