"""The only time loop: run any Simulator (`init`, `step`), or a model module that is one, and
record its observables at chosen steps.

Step t (t = 0, 1, ...) uses the key fold_in(run_key, t), so a trajectory does not depend on the
recording schedule: recording every step or every 100th gives the same states at common steps.
"""

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from spectral_sim._types import Array, ArrayLike, Bool, Float, Int, Key, Model, Simulator
from spectral_sim.checks import check_count

__all__ = [
    "Simulator", "as_simulator", "divergence", "float32", "log_steps", "record_steps", "trajectory",
]  # fmt: skip


def as_simulator(model: Any) -> Simulator:
    """`model` as a Simulator: a Simulator as it is, a model module (`models.linear`,
    `models.ridge`, ...) or any other object with `init` and `step` functions as
    Simulator(model.init, model.step); TypeError naming `model` otherwise."""
    if isinstance(model, Simulator):
        return Simulator(model.init, model.step)  # a subclass (models.linear.gd) as a plain one
    if not callable(getattr(model, "init", None)) or not callable(getattr(model, "step", None)):
        name = getattr(model, "__name__", type(model).__name__)
        raise TypeError(f"{name} is not a model: a model is a Simulator or a module with "
                        f"init(params, key) and step(params, state, key)")  # fmt: skip
    return Simulator(model.init, model.step)


def float32(params: Any) -> Any:
    """`params` (any pytree, e.g. a Params) with every floating leaf cast to float32: how sweeps
    simulate, whatever the process's x64 setting, while the predictors keep the caller's width
    (docs/guide/numerics.md). Integer and boolean leaves keep their dtype."""

    def cast(leaf):
        leaf = jnp.asarray(leaf)
        return leaf.astype(jnp.float32) if jnp.issubdtype(leaf.dtype, jnp.floating) else leaf

    return jax.tree.map(cast, params)


def record_steps(
    n_records: int | None = None,
    every: int = 1,
    steps: Sequence[int] | Int[ArrayLike, " records"] | None = None,
) -> np.ndarray:
    """The static, strictly increasing record steps (numbers of updates done, >= 1)."""
    if steps is None:
        if n_records is None:
            raise ValueError("give either n_records (and every) or steps")
        check_count("n_records", n_records)
        check_count("every", every)
        return every * np.arange(1, n_records + 1)
    out = np.asarray(steps)
    if out.ndim != 1 or out.size < 1 or out.dtype.kind not in "iu":
        raise ValueError(f"steps must be a non-empty 1-d sequence of integers; got {steps!r}")
    if out[0] < 1 or np.any(np.diff(out) < 1):
        raise ValueError(f"steps must be strictly increasing integers >= 1; got {out.tolist()}")
    return out


def log_steps(last: int, n_records: int, first: int = 1) -> np.ndarray:
    """About n_records log-spaced distinct integer steps from `first` to `last` (both kept)."""
    if not 1 <= first <= last:
        raise ValueError(f"need 1 <= first <= last; got first={first}, last={last}")
    grid = np.geomspace(first, last, n_records)
    return np.unique(np.round(grid).astype(np.int64))


def trajectory(
    model: Model,
    params,
    key: Key[Array, ""] | None,
    *,
    n_records: int | None = None,
    every: int = 1,
    steps: Sequence[int] | Int[ArrayLike, " records"] | None = None,
):
    """Final state, and observables after `steps` updates (leading axis: records).

    Give either `n_records` and `every` (steps every, 2 every, ...) or an explicit static,
    increasing `steps` (e.g. `log_steps(10**5, 40)`). Only the recorded steps' observables are
    computed; the steps in between run in a loop whose observables are discarded. `key=None`
    is for deterministic models (their step receives None). `model` is a Simulator or a model
    module (see `as_simulator`).
    """
    model = as_simulator(model)
    schedule = record_steps(n_records, every, steps)
    gaps = jnp.asarray(np.diff(schedule, prepend=0), jnp.int32)
    init_key, run_key = (None, None) if key is None else jax.random.split(key)

    def step_key(t) -> Any:
        return None if run_key is None else jax.random.fold_in(run_key, t)

    def advance(t, state):
        return model.step(params, state, step_key(t))[0]

    def record(carry, gap):
        t, state = carry
        state = jax.lax.fori_loop(t, t + gap - 1, advance, state)
        state, obs = model.step(params, state, step_key(t + gap - 1))
        return (t + gap, state), obs

    carry = (jnp.zeros((), jnp.int32), model.init(params, init_key))
    (_, state), obs = jax.lax.scan(record, carry, gaps)
    return state, obs


def divergence(
    loss: Float[Array, "*batch records"],
    steps: Int[ArrayLike, " records"],
    limit: Float[Array, "*batch"] | float,
) -> tuple[Bool[Array, "*batch"], Int[Array, "*batch"]]:
    """Per run: whether the recorded loss ever became non-finite or exceeded `limit`, and the
    first recorded step at which it did (-1 if it never did)."""
    limit = jnp.broadcast_to(jnp.asarray(limit), loss.shape[:-1])
    bad = ~jnp.isfinite(loss) | (loss > limit[..., None])
    first = jnp.argmax(bad, axis=-1)
    diverged = jnp.any(bad, axis=-1)
    return diverged, jnp.where(diverged, jnp.asarray(steps)[first], -1)
