: A synapse opened by pulses of transmitter, written for dendrax's NMODL import tests in the
: layout of Destexhe, Mainen & Sejnowski's (1994) event-driven kinetic synapses: a spike
: opens a pulse of duration Cdur and sends itself an event (net_send) flagged with the
: spike's number, which closes the pulse unless a later spike extended it; per connection:
: whether a pulse is on, the spikes counted, the fraction open at the last change and its
: time.
NEURON {
    POINT_PROCESS pulsex
    RANGE g, Cmax, Cdur, Alpha, Beta, Erev, synon
    NONSPECIFIC_CURRENT i
}

UNITS {
    (nA) = (nanoamp)
    (mV) = (millivolt)
    (umho) = (micromho)
    (mM) = (milli/liter)
}

PARAMETER {
    Cmax = 1 (mM)
    Cdur = 1 (ms)
    Alpha = 1.1 (/ms mM)
    Beta = 0.19 (/ms)
    Erev = 0 (mV)
}

ASSIGNED {
    v (mV)
    i (nA)
    g (umho)
    Rinf
    Rtau (ms)
    synon
}

STATE {
    Ron
    Roff
}

INITIAL {
    Rinf = Cmax*Alpha / (Cmax*Alpha + Beta)
    Rtau = 1 / ((Alpha * Cmax) + Beta)
    synon = 0
}

BREAKPOINT {
    SOLVE release METHOD cnexp
    g = (Ron + Roff)*1(umho)
    i = g*(v - Erev)
}

DERIVATIVE release {
    Ron' = (synon*Rinf - Ron)/Rtau
    Roff' = -Beta*Roff
}

NET_RECEIVE(weight, on, nspike, r0, t0 (ms)) {
    if (flag == 0) {
        nspike = nspike + 1
        if (!on) {
            r0 = r0*exp(-Beta*(t - t0))
            t0 = t
            on = 1
            synon = synon + weight
            Ron = Ron + r0
            Roff = Roff - r0
        }
        net_send(Cdur, nspike)
    }
    if (flag == nspike) {
        r0 = weight*Rinf + (r0 - weight*Rinf)*exp(-(t - t0)/Rtau)
        t0 = t
        synon = synon - weight
        Ron = Ron - r0
        Roff = Roff + r0
        on = 0
    }
}
