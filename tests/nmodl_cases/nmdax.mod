: An NMDA-like synapse written for dendrax's NMODL import tests: a double-exponential
: conductance (as Exp2Synx) times a voltage-dependent magnesium block (Jahr & Stevens 1990,
: J Neurosci 10: 3178), with the blocked conductance g a RANGE variable that BREAKPOINT
: sets: what NEURON records as syn._ref_g (not di/dv: the block depends on v).
NEURON {
    POINT_PROCESS nmdax
    RANGE tau1, tau2, e, mg, i, g, block
    NONSPECIFIC_CURRENT i
}

UNITS {
    (nA) = (nanoamp)
    (mV) = (millivolt)
    (uS) = (microsiemens)
    (mM) = (milli/liter)
}

PARAMETER {
    tau1 = 2 (ms) <1e-9,1e9>
    tau2 = 50 (ms) <1e-9,1e9>
    e = 0 (mV)
    mg = 1 (mM)
}

ASSIGNED {
    v (mV)
    i (nA)
    g (uS)
    block
    factor
}

STATE {
    A (uS)
    B (uS)
}

INITIAL {
    LOCAL tp
    A = 0
    B = 0
    tp = (tau1*tau2)/(tau2 - tau1) * log(tau2/tau1)
    factor = -exp(-tp/tau1) + exp(-tp/tau2)
    factor = 1/factor
}

BREAKPOINT {
    SOLVE state METHOD cnexp
    block = 1 / (1 + exp(-0.062 * v) * mg / 3.57)
    g = (B - A) * block
    i = g * (v - e)
}

DERIVATIVE state {
    A' = -A/tau1
    B' = -B/tau2
}

NET_RECEIVE(weight (uS)) {
    A = A + weight*factor
    B = B + weight*factor
}
