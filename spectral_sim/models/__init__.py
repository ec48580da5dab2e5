"""Simulators, one system per file; each has Params and, per simulator of the system, one way to
build it: a factory returning a `Simulator` (`init(params, key)`, `step(params, state, key)`,
e.g. `linear.sgd()`), or the module's own `init` and `step`, run by `simulate.trajectory`; or a
one-shot function of `(params, key)` (`ridge.fit`). Models may import `diagnostics`, never
`simulate` or `theory`."""

from spectral_sim.models import (
    attention,
    evolution,
    linear,
    modular,
    momentum,
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
    "momentum",
    "pool",
    "random_features",
    "ridge",
    "self_improve",
    "update_stream",
]
