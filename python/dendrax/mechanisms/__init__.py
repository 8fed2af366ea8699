"""Mechanisms: the base API and the registry of channels and synapses by name."""

from .base import FARADAY, IONS, Channel, GradedSynapse, Ion, IonPool, Mechanism, Synapse, nernst
from .registry import available, channel, synapse

__all__ = ["Channel", "GradedSynapse", "Ion", "IonPool", "Mechanism", "Synapse", "IONS", "FARADAY",
           "nernst",
           "available", "channel", "synapse"]
