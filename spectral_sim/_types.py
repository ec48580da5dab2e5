"""Shared type vocabulary: jaxtyping aliases, the axis names, keys, the Simulator type (and Model,
what `simulate.trajectory` runs), and the concrete-value checks that every Params class runs
before tracing.

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
    "check_count",
    "check_range",
    "concrete",
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


Model = Simulator | ModuleType
"""What `simulate.trajectory` runs: a Simulator, or a model module whose `init` and `step` are
one (`models.linear`, `models.ridge`, ...); `simulate.as_simulator` turns either into a
Simulator."""


def concrete(value: object) -> np.ndarray | None:
    """`value` as a NumPy array if it is a concrete number or a list of them, else None
    (tracers, placeholders, non-numbers).

    Params dataclasses are rebuilt by JAX on every unflatten, with tracers under jit/vmap and
    sometimes with non-array placeholders; validation only applies to concrete numbers.
    """
    if isinstance(value, int | float | np.ndarray | np.generic | jax.Array | list | tuple):
        try:  # tracers refuse conversion (TracerArrayConversionError is a TypeError)
            array = np.asarray(value)
        except (TypeError, ValueError, jax.errors.ConcretizationTypeError):
            return None  # a tracer, or a ragged list
        return array if array.dtype.kind in "biufc" else None
    return None


def check_count(name: str, value: object, *, low: int = 1) -> None:
    """Raise ValueError naming `name` unless `value` is a Python (or NumPy) integer >= low: the
    static, shape-setting fields (n_modes, batch, n_samples, ...)."""
    if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}; got {value!r}")


def check_range(
    name: str,
    value: object,
    *,
    gt: float | None = None,
    ge: float | None = None,
    lt: float | None = None,
    le: float | None = None,
    finite: bool = True,
) -> None:
    """Raise ValueError naming `name`, its bad value and the valid range, if `value` is concrete
    and any element lies outside the range (NaN always, +-inf unless finite=False); a no-op on
    tracers. A string (`PowerLaw(s="2")`) is a TypeError naming `name`."""
    if isinstance(value, str | bytes):
        raise TypeError(f"{name} must be a number; got the string {value!r}")
    array = concrete(value)
    if array is None:
        return
    ok = ~np.isnan(array) if array.dtype.kind in "fc" else np.ones(array.shape, bool)
    if finite and array.dtype.kind in "fc":
        ok &= np.isfinite(array)
    bounds = []
    if gt is not None:
        ok &= array > gt
        bounds.append(f"> {gt:g}")
    if ge is not None:
        ok &= array >= ge
        bounds.append(f">= {ge:g}")
    if lt is not None:
        ok &= array < lt
        bounds.append(f"< {lt:g}")
    if le is not None:
        ok &= array <= le
        bounds.append(f"<= {le:g}")
    if not np.all(ok):
        bad = array[~ok] if array.ndim else array
        shown = np.asarray(bad).ravel()[:3].tolist()
        what = " and ".join((["finite"] if finite else []) + bounds)
        raise ValueError(f"{name} must be {what}; got {shown if array.ndim else bad}")
