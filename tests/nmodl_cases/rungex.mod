TITLE gates solved by NEURON's 4th-order Runge-Kutta (METHOD runge)

COMMENT
Written for dendrax's NMODL import tests: two coupled gates, one non-linear in a state
(so that runge differs from the other methods), and a conductance the DERIVATIVE block
sets, which BREAKPOINT uses: NEURON computes it at the new states, once the step is done
(not at the step's last stage); so is minf, recorded as NEURON records it.
ENDCOMMENT

NEURON {
    SUFFIX rungex
    NONSPECIFIC_CURRENT i
    RANGE gbar, gk, minf
}

PARAMETER { gbar = 0.004 (S/cm2) }

ASSIGNED {
    v (mV)
    i (mA/cm2)
    gk (S/cm2)
    minf
}

STATE { m s }

INITIAL {
    m = 0.2
    s = 0.1
    gk = gbar*m*s
}

BREAKPOINT {
    SOLVE gates METHOD runge
    i = gk*(v + 80)
}

DERIVATIVE gates {
    minf = 1/(1 + exp(-(v + 50)/6))
    m' = (minf - m)/2
    s' = (m*m*(1 - s) - 0.3*s*s)/(3 + 40*dt)  : dt: dt / 2 under Crank-Nicolson, as NEURON's
    gk = gbar*m*s
}
