"""Measurements of trajectories: functions of recorded states and observables,
jittable and vmappable, kept apart from the simulators that produce them. Models import them
(the modular model's Gram window, the views models register with `compression.trained`), so
nothing here imports `spectral_sim.models`."""

from spectral_sim.diagnostics import compression, gram, grokking, tokens
from spectral_sim.diagnostics.gram import spectral_edge

__all__ = ["compression", "gram", "grokking", "spectral_edge", "tokens"]
