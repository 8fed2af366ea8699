: A double-exponential synapse written for dendrax's NMODL import tests, in the layout of
: NEURON's Exp2Syn: a conductance B - A with rise tau1 and decay tau2 (ms), a factor computed
: in INITIAL so that one event of weight w (uS) peaks at w, and NET_RECEIVE incrementing both
: (B by the state_discontinuity of older ModelDB files: an assignment in NEURON 9).
NEURON {
    POINT_PROCESS Exp2Synx
    RANGE tau1, tau2, e, i
    NONSPECIFIC_CURRENT i
    RANGE g
}

UNITS {
    (nA) = (nanoamp)
    (mV) = (millivolt)
    (uS) = (microsiemens)
}

PARAMETER {
    tau1 = 0.1 (ms) <1e-9,1e9>
    tau2 = 10 (ms) <1e-9,1e9>
    e = 0 (mV)
}

ASSIGNED {
    v (mV)
    i (nA)
    g (uS)
    factor
}

STATE {
    A (uS)
    B (uS)
}

INITIAL {
    LOCAL tp
    if (tau1/tau2 > 0.9999) {
        tau1 = 0.9999*tau2
    }
    if (tau1/tau2 < 1e-9) {
        tau1 = tau2*1e-9
    }
    A = 0
    B = 0
    tp = (tau1*tau2)/(tau2 - tau1) * log(tau2/tau1)
    factor = -exp(-tp/tau1) + exp(-tp/tau2)
    factor = 1/factor
}

BREAKPOINT {
    SOLVE state METHOD cnexp
    g = B - A
    i = g*(v - e)
}

DERIVATIVE state {
    A' = -A/tau1
    B' = -B/tau2
}

NET_RECEIVE(weight (uS)) {
    A = A + weight*factor
    state_discontinuity(B, B + weight*factor)
}
