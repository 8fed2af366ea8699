: A synapse with short-term depression and facilitation written for dendrax's NMODL import
: tests, in the layout of the Tsodyks-Markram NEURON files (ModelDB 3815's tmgsyn): each
: connection keeps the fraction of resources in use (y) and recovering (z), the
: utilization u and the time of its last event tsyn (NET_RECEIVE's arguments after the
: weight, started by the INITIAL inside NET_RECEIVE) and updates them from the time since
: that event (t, the event's time).
NEURON {
    POINT_PROCESS stpx
    RANGE e, i, tau_1, tau_rec, tau_facil, U, u0, x
    NONSPECIFIC_CURRENT i
}

UNITS {
    (nA) = (nanoamp)
    (mV) = (millivolt)
    (umho) = (micromho)
}

PARAMETER {
    e = 0 (mV)
    tau_1 = 3 (ms) <1e-9, 1e9>
    tau_rec = 100 (ms) <1e-9, 1e9>
    tau_facil = 50 (ms) <0, 1e9>
    U = 0.1 (1) <0, 1>
    u0 = 0.05 (1) <0, 1>
}

ASSIGNED {
    v (mV)
    i (nA)
    x
}

STATE {
    g (umho)
}

INITIAL {
    g = 0
}

BREAKPOINT {
    SOLVE state METHOD cnexp
    i = g*(v - e)
}

DERIVATIVE state {
    g' = -g/tau_1
}

NET_RECEIVE(weight (umho), y, z, u, tsyn (ms)) {
    INITIAL {
        y = 0
        z = 0
        u = u0
        tsyn = t
    }
    z = z*exp(-(t - tsyn)/tau_rec)
    z = z + (y*(exp(-(t - tsyn)/tau_1) - exp(-(t - tsyn)/tau_rec)) / ((tau_1/tau_rec) - 1))
    y = y*exp(-(t - tsyn)/tau_1)
    x = 1 - y - z
    if (tau_facil > 0) {
        u = u*exp(-(t - tsyn)/tau_facil)
        u = u + U*(1 - u)
    } else {
        u = U
    }
    g = g + weight*x*u
    y = y + x*u
    tsyn = t
}
