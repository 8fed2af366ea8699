: A sodium channel in the layout of many 1990s ModelDB files: scratch variables in a
: file-level LOCAL, a SOLVE of a PROCEDURE that steps the gates itself with dt (no
: METHOD), and VERBATIM return 0; ENDVERBATIM closing that PROCEDURE.
NEURON {
    SUFFIX mainenx
    USEION na READ ena WRITE ina
    RANGE gbar
}
UNITS {
    (mA) = (milliamp)
    (mV) = (millivolt)
}
PARAMETER { gbar = 0.05 (mho/cm2) }
ASSIGNED {
    v (mV)
    ena (mV)
    ina (mA/cm2)
    minf
    hinf
    mtau (ms)
    htau (ms)
}
STATE { m h }
LOCAL mexp, hexp
BREAKPOINT {
    SOLVE states
    ina = gbar*m*m*m*h*(v - ena)
}
INITIAL {
    rates(v)
    m = minf
    h = hinf
}
PROCEDURE states() {
    rates(v)
    m = m + mexp*(minf - m)
    h = h + hexp*(hinf - h)
    VERBATIM
    return 0;
    ENDVERBATIM
}
PROCEDURE rates(vm (mV)) {
    LOCAL a, b
    a = 0.182*(vm + 35.013)/(1 - exp(-(vm + 35.013)/9))
    b = -0.124*(vm + 35.013)/(1 - exp((vm + 35.013)/9))
    mtau = 1/(a + b)
    minf = a*mtau
    a = 0.024*(vm + 50.013)/(1 - exp(-(vm + 50.013)/5))
    b = -0.0091*(vm + 75.013)/(1 - exp((vm + 75.013)/5))
    htau = 1/(a + b)
    hinf = 1/(1 + exp((vm + 65)/6.2))
    mexp = 1 - exp(-dt/mtau)
    hexp = 1 - exp(-dt/htau)
}
