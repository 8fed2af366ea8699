TITLE a gate solved by forward Euler that also sets the conductance BREAKPOINT uses

NEURON {
    SUFFIX eulgkx
    NONSPECIFIC_CURRENT i
    RANGE gbar, gk
}

PARAMETER { gbar = 0.002 (S/cm2) }

ASSIGNED {
    v (mV)
    i (mA/cm2)
    gk (S/cm2)
}

STATE { m }

INITIAL {
    m = 0.5
    gk = gbar*m
}

BREAKPOINT {
    SOLVE gate METHOD euler
    i = gk*(v + 70)
}

DERIVATIVE gate {
    m' = (1/(1 + exp(-(v + 60)/5)) - m)/(2 + 40*dt)  : dt: dt/2 under Crank-Nicolson
    gk = gbar*m  : at the step's start, as NEURON's euler leaves it
}
