"""Measurements of trajectories: functions of recorded states and observables,
jittable and vmappable, kept apart from the simulators that produce them."""

from spectral_sim.diagnostics import compression, gram, grokking, tokens
from spectral_sim.diagnostics.gram import spectral_edge

__all__ = ["compression", "gram", "grokking", "spectral_edge", "tokens"]
