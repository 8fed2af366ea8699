: An Ih channel written for dendrax's NMODL import tests that carries its current on an
: ion dendrax does not know, in the manner of Poirazi's and Migliore's h.mod files:
: USEION h READ eh WRITE ih VALENCE 1. NEURON makes h a new ion (eh 0 mV unless set);
: dendrax makes eh a parameter of the mechanism and ih a nonspecific current. Its
: PARAMETER eh = -45, as in Saraga's Ih file, is not used, as in NEURON (the name is the
: ion's: 0 mV until set).
NEURON {
    SUFFIX hpx
    USEION h READ eh WRITE ih VALENCE 1
    RANGE gbar, ghd
}
UNITS {
    (mA) = (milliamp)
    (mV) = (millivolt)
    (S) = (siemens)
}
PARAMETER {
    gbar = 2e-4 (S/cm2)
    vhalf = -81 (mV)
    eh = -45 (mV)
}
ASSIGNED {
    v (mV)
    ih (mA/cm2)
    ghd (S/cm2)
    linf
    ltau (ms)
}
STATE { l }
BREAKPOINT {
    SOLVE states METHOD cnexp
    ghd = gbar * l
    ih = ghd * (v - eh)
}
INITIAL {
    rates(v)
    l = linf
}
DERIVATIVE states {
    rates(v)
    l' = (linf - l) / ltau
}
PROCEDURE rates(v (mV)) {
    linf = 1 / (1 + exp((v - vhalf) / 8))
    ltau = 20 + 200 * exp(-((v + 75) / 25) ^ 2)
}
