: A calcium pool written for dendrax's NMODL import tests in the layout of Mainen & Sejnowski's
: cad.mod (J Neurosci 1996): a STATE ca, copied to cai by the DERIVATIVE block (cai = ca), a
: rectified influx into a shell and first-order decay, solved by derivimplicit.
NEURON {
    SUFFIX cadx
    USEION ca READ ica, cai WRITE cai
    RANGE ca
    GLOBAL depth, cainf, taur
}
UNITS {
    (molar) = (1/liter)
    (mM) = (millimolar)
    (um) = (micron)
    (mA) = (milliamp)
    (msM) = (ms mM)
    FARADAY = (faraday) (coulomb)
}
PARAMETER {
    depth = .1 (um)
    taur = 200 (ms)
    cainf = 100e-6 (mM)
}
STATE { ca (mM) }
INITIAL { ca = cainf  cai = ca }
ASSIGNED { ica (mA/cm2) drive_channel (mM/ms) cai (mM) }
BREAKPOINT { SOLVE state METHOD derivimplicit }
DERIVATIVE state {
    drive_channel = - (10000) * ica / (2 * FARADAY * depth)
    if (drive_channel <= 0.) { drive_channel = 0. }
    ca' = drive_channel + (cainf - ca)/taur
    cai = ca
}
