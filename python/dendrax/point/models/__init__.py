"""Point-neuron models: NEST's iaf_psc_alpha, iaf_psc_exp, iaf_psc_delta, iaf_cond_exp,
iaf_cond_alpha, iaf_cond_beta, aeif_cond_exp, izhikevich and hh_psc_alpha with NEST's names,
defaults, units and order of operations, brainpy-style LIF, ExpIF and ALIF, and a
conductance-based LIF with AMPA, NMDA (Mg block) and GABA_A receptors (LIF_AMPA_NMDA).

Our own code, written from the models' equations and from the order of operations in NEST's
C++ (nest-simulator, models/<name>.cpp, NEST 3.10), which each class cites. What the NEST
models share:

* One update per step of size h = dt, in NEST's order; a spike is emitted at the end of the
  step (time t + h) and the membrane is reset in the same step, so a supra-threshold value
  is never seen.
* The refractory count is NEST's: t_ref rounded to tics (1 us) and then up to whole steps
  (``propagators.refractory_steps``); the state "refractory" counts the steps left.
* Inputs (see ``PointNeuron.update``): "ex" / "in" are the summed positive / negative weights
  of the spikes NEST reads in this step (its ring-buffer slot of the step), "current" the
  current (pA) of current generators read in this step; NEST applies it from the *next*
  step on (it is stored in the state "I_stim", NEST's y0 / I_stim / i_0), while I_e acts at
  once.
* A spike sent at time t_s over a connection with delay d is read in the step
  k = t_s/dt + D - 1 (from k dt to (k+1) dt; D the delay in steps as NEST rounds it,
  ``propagators.delay_steps``), so its effect shows first in
  the state at (k+1) dt = t_s + d; a dc_generator with start t0 is read from step
  t0/dt + D - 1 on and so moves the membrane from the step after.

The exact-integration models (iaf_psc_*) agree with NEST to ~1e-13 mV; the GSL models
(iaf_cond_exp, iaf_cond_alpha, iaf_cond_beta, aeif_cond_exp, hh_psc_alpha) reproduce NEST's
adaptive RKF45 run step for step (``propagators.rkf45_evolve``) and agree to round-off that
their sub-steps amplify (~1e-13 to 1e-8 mV, more near the step control's limits;
docs/point_neurons.md);
izhikevich is NEST's explicit scheme and agrees to rounding. tests/test_point_models.py and
tests/test_point_models_cond.py state and assert the tolerances (iaf_cond_beta with
tau_rise and tau_decay within ~1e-9 ms of each other: ~1e-6, NEST's normalisation being
ill-conditioned there). The brainpy-style models and LIF_AMPA_NMDA are checked against
closed forms (tests/test_point_models.py, tests/test_point_lif_receptors.py).

Thresholds go through ``PointNeuron.spike`` (a bool, or with a population's surrogate a 0/1
float carrying the surrogate gradient); resets are not differentiated through. The GSL
models integrate with ``lax.while_loop`` (adaptive sub-steps), which JAX can differentiate
in forward mode only.

Not expressible in this API (and so not modelled): iaf_psc_exp's stochastic threshold
(rho, delta) and its second current port (receptor 1, filtered current input); NEST's
ignore_and_spike mode.

aeif_cond_exp can fire more than once in one step when t_ref = 0, as NEST's: the update's flag
says it fired, its state "n_spikes" how often (``PointNeuron.spike_count``), and a network
delivers and records each spike; parrot_neuron repeats as many spikes as reach it in a step
(NEST's multiplicity). The other models fire at most once per step, as NEST's.
"""

from __future__ import annotations

from .aeif import AeifCondExp
from ..base import PointNeuron
from .brainpy import ALIF, LIF, ExpIF
from .hh_psc_alpha import HhPscAlpha
from .iaf_cond import IafCondAlpha, IafCondBeta, IafCondExp, beta_normalization
from .iaf_psc import IafPscAlpha, IafPscDelta, IafPscExp
from .izhikevich import Izhikevich
from .lif_receptors import LifAmpaNmda, mg_block

MODELS: dict[str, type[PointNeuron]] = {
    cls.name: cls for cls in (IafPscAlpha, IafPscExp, IafPscDelta, IafCondExp, IafCondAlpha,
                              IafCondBeta, AeifCondExp, HhPscAlpha, Izhikevich, LIF, ExpIF, ALIF,
                              LifAmpaNmda)}

__all__ = ["MODELS", "ALIF", "AeifCondExp", "ExpIF", "HhPscAlpha", "IafCondAlpha", "IafCondBeta", "IafCondExp",
           "IafPscAlpha", "IafPscDelta", "IafPscExp", "Izhikevich", "LIF", "LifAmpaNmda",
           "beta_normalization", "mg_block"]
