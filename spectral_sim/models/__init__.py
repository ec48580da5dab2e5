"""Simulators, one system per file; each has Params, `init(params, key)` and
`step(params, state, key)` (or factories returning such a pair), run by `simulate.trajectory`."""

from spectral_sim.models import linear, random_features, ridge

__all__ = ["linear", "random_features", "ridge"]
