: A three-state Markov potassium channel C <-> O <-> I written for dendrax's NMODL import
: tests: voltage-dependent rates, a KINETIC scheme with CONSERVE solved by sparse, the
: initial state at steady state (SOLVE ... STEADYSTATE sparse).
NEURON {
    SUFFIX kin3
    USEION k READ ek WRITE ik
    RANGE gbar, a0, b0, ki, kr
}

UNITS {
    (mA) = (milliamp)
    (mV) = (millivolt)
    (S) = (siemens)
}

PARAMETER {
    gbar = 0.01 (S/cm2) <0,1e9>
    a0 = 0.2 (/ms)
    b0 = 0.05 (/ms)
    ki = 0.02 (/ms)
    kr = 0.005 (/ms)
}

ASSIGNED {
    v (mV)
    ek (mV)
    ik (mA/cm2)
    a (/ms)
    b (/ms)
}

STATE { C O I }

BREAKPOINT {
    SOLVE kin METHOD sparse
    ik = gbar*O*(v - ek)
}

INITIAL {
    SOLVE kin STEADYSTATE sparse
}

KINETIC kin {
    rates(v)
    ~ C <-> O (a, b)
    ~ O <-> I (ki, kr)
    CONSERVE C + O + I = 1
}

PROCEDURE rates(v (mV)) {
    a = a0*exp((v + 40)/15)
    b = b0*exp(-(v + 40)/20)
}
