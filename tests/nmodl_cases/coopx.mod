: first-order reactions whose opening rate depends on the open state through a LOCAL:
: nocmodl solves the scheme as linear, one iteration with the rates at the step's start
NEURON {
    SUFFIX coopx
    USEION k READ ek WRITE ik
    RANGE gbar
}
UNITS { (mA) = (milliamp) (mV) = (millivolt) (S) = (siemens) }
PARAMETER { gbar = 0.002 (S/cm2) coop = 20 }
ASSIGNED { v (mV) ek (mV) ik (mA/cm2) }
STATE { C O }
BREAKPOINT { SOLVE kin METHOD sparse  ik = gbar*O*(v - ek) }
INITIAL { C = 1 O = 0 }
KINETIC kin {
    LOCAL a
    a = 0.05*exp((v + 30)/10)*(1 + coop*O)
    ~ C <-> O (a, 0.2)
    CONSERVE C + O = 1
}
