: a calcium pool whose INITIAL sets cai (away from cai0): the channels' INITIAL after it
: and the first steps see that value, as NEURON's
NEURON {
    SUFFIX capoolx
    USEION ca READ ica WRITE cai
    RANGE depth, tau, cainf
}
UNITS {
    (mA) = (milliamp)
    (mM) = (milli/liter)
    (um) = (micron)
    FARADAY = (faraday) (kilocoulombs)
}
PARAMETER { depth = 0.2 (um) tau = 40 (ms) cainf = 1e-4 (mM) }
ASSIGNED { ica (mA/cm2) drive (mM/ms) }
STATE { cai (mM) }
BREAKPOINT { SOLVE st METHOD cnexp }
INITIAL { cai = cainf }
DERIVATIVE st {
    drive = -(10000)*ica/(2*FARADAY*depth)
    if (drive <= 0) { drive = 0 }
    cai' = drive/18 + (cainf - cai)/tau
}
