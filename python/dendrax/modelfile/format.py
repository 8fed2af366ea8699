"""Saving and loading a built model: a documented, versioned JSON file (not pickle).

``save(target, path)`` writes a ``dendrax.Cell`` or ``dendrax.Network`` as one UTF-8 JSON
file (e.g. ``cell.dendrax.json``); ``load(path)`` rebuilds it, so that ``dendrax.simulate``
on the loaded model gives the same traces and spikes bit for bit and ``lower(loaded).params``
equals ``lower(original).params`` exactly. Floats are written as Python's shortest repr of
the float64 value, which reads back to the same bits; NaN and infinities are refused (JSON
cannot hold them portably), except that a point population's parameter may be +-infinity
where its model allows it (a generator's ``stop``, infinite by default), written as the
string "inf" or "-inf". Saving a model twice gives identical bytes.

Format ``dendrax-model``, version 4 (units are dendrax's, i.e. NEURON's; point populations'
parameters and the weights of connections onto point neurons are NEST's)::

    {
      "format": "dendrax-model",          # always this string
      "version": 4,                        # format version (a reader refuses newer ones and
                                           # reads versions 1 to 3, see below)
      "dendrax": "0.1.0",                  # the dendrax that wrote it (information only)
      "kind": "cell" | "network",
      "units": {...},                      # the units below (information only)
      "mechanisms": [                      # every channel, ion pool and synapse used
        {"group": "dendrax.channels" | "dendrax.synapses", "name": "hh",
         "kind": "channel" | "ion_pool" | "synapse" | "graded_synapse",
         "package": "dendrax", "entry_point": "dendrax.mechanisms.hh:HH",
         "nmodl_sha256": "4924c8dd..."}, ...],  # a mechanism generated from NMODL only: the
                                           # SHA-256 of its .mod text (dendrax.nmodl.sha256)
      "morphologies": [                    # distinct morphologies (cells refer by index)
        {"name": str, "sections": [
          {"region": "soma", "parent": -1, "parent_x": 1.0,
           "points": [[x, y, z, diameter], ...]}, ...]}, ...],   # um; P >= 2 points;
                                           # |x|, |y|, |z| <= 3.4028235e38, diameter in
                                           # [1.4e-45, 3.4028235e38] (float32, as NEURON's
                                           # pt3d holds them)
      "cells": [cell, ...],                # exactly one for kind "cell"
      "wiring": {...}                      # kind "network" only
    }

A cell (nodes are numbered as ``dendrax.morphology.compartments(morphology, nseg, ends)``
numbers them, the cell's own numbering, with ``ends`` the section ends where point
processes keep a zero-area node (``Cell.point_node``); ``nodes`` lists each node's section
and x, from which a reader takes those ends, and as a check)::

    {"morphology": 0, "nseg": [per section],
     "nodes": {"section": [N], "x": [N]},
     "values": {"cm": [N] uF/cm2, "Ra": [S] ohm cm, "L": [S] um, "diam": [P_total] um
                (every 3-D point, sections in order), "ions": {"ena": [N] mV,
                "nai0": [N] mM, "nao": [N] mM, ...}},
                # L and diam: null where the cell keeps its morphology's value (the
                # section's length from its points, the point's diameter), the number
                # where Cell.set changed it -- so the points are the geometry, as NEURON's
                # pt3d, and an edit of them is honoured, except where an explicit L or diam
                # overrides them (as sec.L = ... after pt3dadd in NEURON)
     "channels": [{"name": "hh", "nodes": [node indices where inserted],
                   "params": {"gnabar": [N], ...}}, ...],     # in insertion order
     "stimuli": {"iclamp": [{"node", "delay" ms, "dur" ms, "amp" nA}],
                 "waveform": [{"node", "t": [ms], "i": [nA]}],
                 "vclamp": [{"node", "amp": [3] mV, "dur": [3] ms, "rs" MOhm}],
                 "synapses": [{"name": "Exp2Syn", "items": [{"node", "values":
                              {param: value, "weight": uS, "delay": ms}, "times": [ms]}]}]},
     "recordings": [[name, location, reduce], ...],   # as Cell.recorded holds them: the
                      # recorded quantity ("v", "hh.m", ...), a location {"section", "x",
                      # "cell"} and null (a trace) or "max" / "min" / "mean"
     "spike_records": [{"section", "x", "threshold" mV}]}

The wiring of a network (point neurons are numbered over all populations, in order: the
k-th population's neurons follow the sizes of the populations before it)::

    {"sources": [[spike times, ms], ...],               # artificial spike sources
     "populations": [                                   # point populations, in order of creation
       {"name": "exc", "model": "iaf_psc_alpha",
        "group": "dendrax.point_neurons" | "generator",  # a plugin, or a built-in generator
        "package": "dendrax", "entry_point": "module:Class" (plugins only),
        "size": n, "values": {param: [n], ...},          # every parameter of the model
        "spike_times": [[ms, ...] per generator] (spike_generator) or null,
        "surrogate": {"name": "sigmoid", "slope": 1/mV} or null}, ...],  # surrogate gradient
     "blocks": [{"synapse": name, "graded": bool,      # onto point neurons "static",
                                                       # "stdp_synapse" or "tsodyks2_synapse"
                                                       # (built in: no mechanisms-table entry)
                 "pre_cell", "pre_section", "pre_x": [n] or null (for other sources),
                 "pre_source": [n] or null, "pre_neuron": [n] or null (point neurons),
                 "threshold": [n] mV or null (graded, or not from a cell),
                 "post_cell", "post_section", "post_x": [n] or null (onto point neurons),
                 "post_neuron": [n] or null,
                 "values": {param: [n], "weight": [n] uS (pA or nS onto point neurons),
                            "delay": [n] ms}}, ...],   # a plastic kind: every parameter
     "spike_records": [{"cell", "section", "x", "threshold"}],
     "recordings": [[cell, name, location, reduce], ...],
     "point_spike_records": [[population, neuron], ...],
     "point_recordings": [[population, name, neuron, reduce], ...]}
                       # or [plastic kind ("stdp_synapse"), state ("weight"), connection, reduce]:
                       # the connection numbered over all blocks of that kind, in order

Version 3 is version 4 without ``nmodl_sha256`` and with every L and diam written (none
null): there the values take precedence over the points. Version 2 is version 3 without
``surrogate`` and without plastic connections and their recordings (connections onto point
neurons are "static"). Version 1 is version 2 without ``populations``,
``point_spike_records``, ``point_recordings``, ``pre_neuron`` and ``post_neuron``. ``load``
still reads all three (and refuses in them what they cannot hold). A reader of version 2
would refuse what version 3 adds (the ``surrogate`` key, plastic kinds, a plastic kind in
place of a population index), a reader of version 3 what version 4 adds (``nmodl_sha256``,
null L and diam), hence the new numbers.

Mechanisms and point-neuron models are plugins (entry points): ``load`` finds each by its
registered name, preferring the package that provided it when the model was saved; a name no
installed package registers is an error naming it and that package. A mechanism saved with
``nmodl_sha256`` loads only where the mechanism found by that name was generated from the
same NMODL text (``dendrax.nmodl.mechanism_sha256``): another .mod file with the same SUFFIX
is an error naming both hashes. Generators ("poisson_generator", "spike_generator",
"dc_generator") and plastic synapse kinds (``dendrax.point.plasticity.PLASTIC``) are
dendrax's own, found by name.
"""


from __future__ import annotations

FORMAT = "dendrax-model"
VERSION = 4
CHANNELS, SYNAPSES = "dendrax.channels", "dendrax.synapses"
GENERATOR = "generator"  # the "group" of a population of a built-in generator
UNITS = {"length": "um", "diameter": "um", "time": "ms", "voltage": "mV", "cm": "uF/cm2",
         "Ra": "ohm cm", "concentration": "mM", "current (iclamp, waveform)": "nA",
         "synaptic weight": "uS", "vclamp rs": "MOhm",
         "channel parameters": "as each mechanism declares (densities in S/cm2)",
         "point populations": "NEST's (mV, ms, pF, pA, nS, Hz); weights onto them as "
                              "each model's weight_unit: pA (current-based), nS "
                              "(conductance-based), mV (iaf_psc_delta, izhikevich, "
                              "the brainpy-style models), none onto parrot_neuron"}


class ModelFileError(ValueError):
    """A model that cannot be saved, or a file that is not a valid dendrax model file."""
