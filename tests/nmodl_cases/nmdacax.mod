: An NMDA-like synapse carrying calcium, written for dendrax's NMODL import tests: a
: double-exponential conductance with a magnesium block (as nmdax.mod) whose current is
: split into a calcium part (a fraction fca, driven by eca and reduced as cai rises) and
: a nonspecific rest; its decay follows a Q10 of the temperature. A POINT_PROCESS with
: USEION ca READ eca, cai WRITE ica: NEURON adds its ica (nA) to the segment's calcium
: current density as ica * 100 / area, which a pool integrates.
NEURON {
    POINT_PROCESS nmdacax
    USEION ca READ eca, cai WRITE ica
    NONSPECIFIC_CURRENT i
    RANGE tau1, tau2, e, mg, fca, kd, q10, g, i, ica
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
    fca = 0.2
    kd = 2e-3 (mM)
    q10 = 1.5
}

ASSIGNED {
    v (mV)
    i (nA)
    ica (nA)
    eca (mV)
    cai (mM)
    g (uS)
    factor
    qt
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
    qt = q10^((celsius - 22)/10)
}

BREAKPOINT {
    SOLVE state METHOD cnexp
    g = (B - A) / (1 + exp(-0.062 * v) * mg / 3.57)
    ica = fca * g * (v - eca) * kd / (kd + cai)
    i = (1 - fca) * g * (v - e)
}

DERIVATIVE state {
    A' = -A * qt / tau1
    B' = -B * qt / tau2
}

NET_RECEIVE(weight (uS)) {
    A = A + weight*factor
    B = B + weight*factor
}
