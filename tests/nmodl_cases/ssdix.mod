: a DERIVATIVE non-linear in its states, started by SOLVE ... STEADYSTATE derivimplicit,
: which NEURON runs as one step of 1e-9 ms: the states stay where INITIAL put them
NEURON {
    SUFFIX ssdix
    NONSPECIFIC_CURRENT i
    RANGE gbar, e
}
UNITS { (mA) = (milliamp) (mV) = (millivolt) (S) = (siemens) }
PARAMETER { gbar = 0.001 (S/cm2) e = 0 (mV) }
ASSIGNED { v (mV) i (mA/cm2) a (/ms) }
STATE { p q }
BREAKPOINT { SOLVE states METHOD derivimplicit  i = gbar*p*q*(v - e) }
INITIAL { p = 0.5 q = 0.5 SOLVE states STEADYSTATE derivimplicit }
DERIVATIVE states {
    a = 0.2/(1 + exp(-(v + 50)/6))
    p' = a*(1 - p) - 0.05*p*p
    q' = 0.1*(1 - q)*p - 0.02*q
}
