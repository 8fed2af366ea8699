: a high-voltage calcium current, ohmic on eca (drives the pools of capoolx and bufpoolx)
NEURON {
    SUFFIX cahvx
    USEION ca READ eca WRITE ica
    RANGE gbar, minf, mtau
}
UNITS { (mA) = (milliamp) (mV) = (millivolt) (S) = (siemens) }
PARAMETER { gbar = 0.003 (S/cm2) }
ASSIGNED { v (mV) eca (mV) ica (mA/cm2) minf mtau (ms) }
STATE { m }
BREAKPOINT {
    SOLVE states METHOD cnexp
    ica = gbar*m*m*(v - eca)
}
INITIAL { rates(v) m = minf }
DERIVATIVE states { rates(v) m' = (minf - m)/mtau }
PROCEDURE rates(v (mV)) {
    minf = 1/(1 + exp(-(v + 20)/6))
    mtau = 0.5 + 2/(1 + exp((v + 30)/10))
}
