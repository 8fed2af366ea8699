: a calcium-gated potassium channel: a KINETIC scheme reading cai, started at its
: STEADYSTATE (at the cai the pool's INITIAL set)
NEURON {
    SUFFIX kcax
    USEION k READ ek WRITE ik
    USEION ca READ cai
    RANGE gbar
}
UNITS { (mA) = (milliamp) (mV) = (millivolt) (S) = (siemens) (mM) = (milli/liter) }
PARAMETER { gbar = 0.005 (S/cm2) kon = 50 (/mM-ms) koff = 0.02 (/ms) }
ASSIGNED { v (mV) ek (mV) ik (mA/cm2) cai (mM) a (/ms) b (/ms) }
STATE { C0 C1 O }
BREAKPOINT { SOLVE kin METHOD sparse  ik = gbar*O*(v - ek) }
INITIAL { SOLVE kin STEADYSTATE sparse }
KINETIC kin {
    a = 0.5*exp((v + 20)/25)
    b = 0.2*exp(-(v + 20)/25)
    ~ C0 <-> C1 (kon*cai, koff)
    ~ C1 <-> O (a, b)
    CONSERVE C0 + C1 + O = 1
}
