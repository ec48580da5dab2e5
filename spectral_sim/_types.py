"""Shared type vocabulary: jaxtyping aliases, the axis names, keys, the Simulator type (and Model,
what `simulate.trajectory` runs). The input checks are `spectral_sim.checks`.

Axis vocabulary: grid seeds records steps tokens modes dim batch gens window.
"""

from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING, Any, NamedTuple

import jax
import numpy as np
from jaxtyping import Array, ArrayLike, Bool, Float, Int, Key, Real

__all__ = [
    "Array",
    "ArrayLike",
    "Bool",
    "Count",
    "Float",
    "Int",
    "Key",
    "Leaf",
    "Model",
    "Real",
    "Scalar",
    "Simulator",
    "Swept",
]

# A swept scalar: a Python number at the call site, a traced 0-d array under jit / vmap.
Scalar = float | Float[Array, ""]

# A count (a sample size, a number of kept modes): a Scalar, or an integer one; the predictors
# treat it as real.
Count = float | Real[ArrayLike, ""]

# An array field of a pytree dataclass (a Params): a JAX array or a tracer, and at run time also
# a NumPy array or number, or what JAX rebuilds the dataclass with when it abstracts it (its
# __init__ runs on every unflatten): eval_shape's ShapeDtypeStruct, the ArgInfo of
# jit(f).trace / .lower. Statically it is what the code reads from the field, as for any JAX
# pytree.
if TYPE_CHECKING:
    Leaf = Array
else:
    Leaf = Array | np.ndarray | np.generic | jax.ShapeDtypeStruct | jax.stages.ArgInfo

# A Params field holding a swept scalar: a Scalar at one point, with the grid's leading axes (the
# same on every leaf of one Params) when the Params is a stacked grid, which jax.vmap and the
# sweep unstack into Scalars again.
Swept = float | Float[Leaf, "*grid"]


class Simulator(NamedTuple):
    """An iterated simulator: `init(params, key) -> state`, `step(params, state, key) ->
    (state, obs)`, params first, key last (None for deterministic ones). Model modules build
    theirs with factories (`models.linear.sgd()`, `models.linear.optimizer(make)`, ...)."""

    init: Callable[[Any, Any], Any]  # (params, key or None) -> state
    step: Callable[[Any, Any, Any], tuple[Any, Any]]  # (params, state, key or None)
    # Optional, together: the step split into its random draws and their use, so that
    # `simulate.trajectory` can draw many steps at once (the same values: step(params, state,
    # key) is step_with(params, state, draw(params, key))).
    draw: Callable[[Any, Any], Any] | None = None  # (params, key) -> the step's random inputs
    step_with: Callable[[Any, Any, Any], tuple[Any, Any]] | None = None  # (params, state, drawn)


Model = Simulator | ModuleType
"""What `simulate.trajectory` runs: a Simulator, or a model module whose `init` and `step` are
one (`models.linear`, `models.ridge`, ...); `simulate.as_simulator` turns either into a
Simulator."""
