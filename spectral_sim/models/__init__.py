"""Simulators, one system per file; each has Params, `init(params, key)` and
`step(params, state, key)` (or factories returning such a pair), run by `simulate.trajectory`."""

from spectral_sim.models import (
    attention,
    evolution,
    linear,
    modular,
    pool,
    random_features,
    ridge,
    self_improve,
    update_stream,
)

__all__ = [
    "attention",
    "evolution",
    "linear",
    "modular",
    "pool",
    "random_features",
    "ridge",
    "self_improve",
    "update_stream",
]
