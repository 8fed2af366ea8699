: A depressing synapse written for dendrax's NMODL import tests, in the layout of BMTK's
: stp2syn: BREAKPOINT sets the release fraction P from the vesicles available (n), and
: NET_RECEIVE reads P as the last BREAKPOINT left it (the previous step's states: two events
: in one step read the same P).
NEURON {
    POINT_PROCESS relx
    RANGE e, i, p0, tau_1, tau_r, P
    NONSPECIFIC_CURRENT i
}

UNITS {
    (nA) = (nanoamp)
    (mV) = (millivolt)
    (uS) = (microsiemens)
}

PARAMETER {
    e = 0 (mV)
    p0 = 0.4
    tau_1 = 4 (ms)
    tau_r = 300 (ms)
}

ASSIGNED {
    v (mV)
    i (nA)
    P
}

STATE {
    n
    g (uS)
}

INITIAL {
    n = 1
    g = 0
}

BREAKPOINT {
    SOLVE state METHOD cnexp
    i = g*(v - e)
    P = n*p0
}

DERIVATIVE state {
    g' = -g/tau_1
    n' = (1 - n)/tau_r
}

NET_RECEIVE(weight (uS)) {
    g = g + weight*P
    n = n - n*p0
}
