: a calcium pool with a buffer (non-linear KINETIC, a << flux, CONSERVE against a
: parameter) whose INITIAL reads cai: NEURON gives it the ion's cai0
NEURON {
    SUFFIX bufpoolx
    USEION ca READ ica WRITE cai
    RANGE depth, tau, Btot
}
UNITS {
    (mA) = (milliamp)
    (mM) = (milli/liter)
    (um) = (micron)
    FARADAY = (faraday) (coulombs)
}
PARAMETER { depth = 0.5 (um) tau = 50 (ms) cainf = 5e-5 (mM) Btot = 0.05 (mM)
            kon = 100 (/mM-ms) koff = 0.1 (/ms) }
ASSIGNED { ica (mA/cm2) }
STATE { cai (mM) B (mM) CaB (mM) }
BREAKPOINT { SOLVE kin METHOD sparse }
INITIAL {
    CaB = Btot*cai/(cai + koff/kon)
    B = Btot - CaB
}
KINETIC kin {
    ~ cai << (-(1e4)*ica/(2*FARADAY*depth) - (cai - cainf)/tau)
    ~ cai + B <-> CaB (kon, koff)
    CONSERVE B + CaB = Btot
}
