: A sodium channel written for dendrax's NMODL import tests that reads an ion dendrax does
: not know, in the manner of BBP's NaTg.mod (Van Geit 2015): USEION ttx READ ttxo, ttxi as
: a flag for TTX block (ttxi == 0.015625 and ttxo > 1e-12 close it). NEURON gives a new
: ion 1 mM inside and out; dendrax makes ttxo and ttxi parameters of the mechanism.
NEURON {
    SUFFIX ttxnax
    USEION na READ ena WRITE ina
    USEION ttx READ ttxo, ttxi VALENCE 1
    RANGE gbar
}
UNITS {
    (mA) = (milliamp)
    (mV) = (millivolt)
    (S) = (siemens)
}
PARAMETER { gbar = 0.1 (S/cm2) }
ASSIGNED {
    v (mV)
    ena (mV)
    ina (mA/cm2)
    ttxo (mM)
    ttxi (mM)
    minf mtau (ms) hinf htau (ms)
}
STATE { m h }
BREAKPOINT {
    SOLVE states METHOD cnexp
    ina = gbar * m * m * m * h * (v - ena)
}
INITIAL {
    rates(v)
    m = minf
    h = hinf
}
DERIVATIVE states {
    rates(v)
    m' = (minf - m) / mtau
    h' = (hinf - h) / htau
}
PROCEDURE rates(v (mV)) {
    if (ttxi == 0.015625 && ttxo > 1e-12) {
        minf = 0
        mtau = 1e-12
        hinf = 1
        htau = 1e-12
    } else {
        minf = 1 / (1 + exp(-(v + 38) / 6))
        mtau = 0.1 + 0.4 * exp(-((v + 38) / 20) ^ 2)
        hinf = 1 / (1 + exp((v + 66) / 6))
        htau = 0.5 + 8 * exp(-((v + 66) / 20) ^ 2)
    }
}
