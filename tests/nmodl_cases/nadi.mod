: A sodium-like channel written for dendrax's NMODL import tests, solved by derivimplicit:
: activation m with Hodgkin-Huxley style rates, and a slow inactivation s whose equation is
: non-linear in s (a cooperative recovery term), so the implicit step needs Newton's method.
NEURON {
    SUFFIX nadi
    USEION na READ ena WRITE ina
    RANGE gbar, ks
}

UNITS {
    (mA) = (milliamp)
    (mV) = (millivolt)
    (S) = (siemens)
}

PARAMETER {
    gbar = 0.05 (S/cm2) <0,1e9>
    ks = 0.3 (/ms)
}

ASSIGNED {
    v (mV)
    celsius (degC)
    ena (mV)
    ina (mA/cm2)
    minf
    mtau (ms)
}

STATE { m s }

BREAKPOINT {
    SOLVE states METHOD derivimplicit
    ina = gbar*m*m*m*s*(v - ena)
}

INITIAL {
    rates(v)
    m = minf
    s = 1
}

DERIVATIVE states {
    rates(v)
    m' = (minf - m)/mtau
    s' = ks*0.01*(1 - s)*(1 + 4*s*s) - ks*0.1*s*m*m
}

PROCEDURE rates(v (mV)) {
    LOCAL qt
    qt = 2^((celsius - 22)/10)
    minf = 1/(1 + exp(-(v + 35)/7))
    mtau = (0.1 + 0.8*exp(-((v + 40)/20)^2))/qt
}
