TITLE a linear KINETIC scheme that also sets the conductance BREAKPOINT uses

NEURON {
    SUFFIX kingkx
    NONSPECIFIC_CURRENT i
    RANGE gbar, gk
}

PARAMETER { gbar = 0.002 (S/cm2) }

ASSIGNED {
    v (mV)
    i (mA/cm2)
    gk (S/cm2)
    a (/ms)
    b (/ms)
}

STATE { C O }

INITIAL {
    SOLVE scheme STEADYSTATE sparse
    gk = gbar*O
}

BREAKPOINT {
    SOLVE scheme METHOD sparse
    i = gk*(v + 70)
}

KINETIC scheme {
    a = 0.5*exp((v + 60)/10)
    b = 0.5*exp(-(v + 60)/10)
    ~ C <-> O (a, b)
    CONSERVE C + O = 1
    gk = gbar*O  : at the new states, as NEURON's sparse leaves it
}
