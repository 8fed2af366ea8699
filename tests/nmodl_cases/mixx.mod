: comparisons and logic as numbers ((v < -20) + (v < 0) is 2 below -20 mV), a CONSTANT
: named like the generated code's names, a '->' unit factor and dt outside the SOLVE
NEURON { SUFFIX mixx NONSPECIFIC_CURRENT i RANGE g }
UNITS { (mA) = (milliamp) (mV) = (millivolt) (S) = (siemens) mvgt = (millivolt) -> (volt) }
CONSTANT { c1 = 2 }
PARAMETER { g = 1e-4 (S/cm2) }
ASSIGNED { v (mV) i (mA/cm2) }
STATE { xa xb }
BREAKPOINT {
    SOLVE st METHOD cnexp
    i = g*((v < -20) + (v < 0) + (v > 0 && v < 20) + !(v < 30))*(v + 60)*(dt/0.025)*(1000*mvgt)
}
INITIAL { xa = f1(v)*(dt/0.025)  xb = f2(v) }
DERIVATIVE st { xa' = (f1(v) - xa)/5  xb' = (f2(v) - xb)/5 }
FUNCTION f1(x) {
    if (x < 0) { f1 = 1 } else { f1 = 2 }
    f1 = f1 + c1
}
FUNCTION f2(x) {
    f2 = c1
    if (x < -50) { f2 = f2 + 10 }
}
