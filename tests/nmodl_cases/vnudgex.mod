: A gate whose PROCEDURE moves v off a value, as the Hay et al. 2011 ModelDB files do
: (if (v == -27) {v = v + 0.0001}, away from a 0/0 in their rates): the moved v holds
: for the rest of the block that called it, and every block starts again from the
: segment's v. Here the move is large and at v_init (-70 mV), so that it shows; written
: for dendrax's NMODL import tests.
NEURON {
    SUFFIX vnudgex
    NONSPECIFIC_CURRENT i
    RANGE g, e
}

UNITS {
    (mA) = (milliamp)
    (mV) = (millivolt)
    (S) = (siemens)
}

PARAMETER {
    g = 0.001 (S/cm2)
    e = -40 (mV)
}

ASSIGNED {
    v (mV)
    i (mA/cm2)
    minf
    mtau (ms)
}

STATE { m }

BREAKPOINT {
    SOLVE states METHOD cnexp
    i = g*m*(v - e)
}

INITIAL {
    rates()
    m = minf
}

DERIVATIVE states {
    rates()
    mtau = 2 + exp(v/40)
    m' = (minf - m)/mtau
}

PROCEDURE rates() {
    if (v == -70) {
        v = v + 10
    }
    minf = 1/(1 + exp(-(v + 60)/6))
}
