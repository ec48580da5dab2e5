"""The only time loop: run any Model (`init`, `step`) and record its observables at chosen steps.

Step t (t = 0, 1, ...) uses the key fold_in(run_key, t), so a trajectory does not depend on the
recording schedule: recording every step or every 100th gives the same states at common steps.
"""

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from spectral_sim._types import Array, Bool, Float, Int, Key, Model, Simulator, check_count

__all__ = ["divergence", "log_steps", "record_steps", "trajectory"]


def record_steps(
    n_records: int | None = None, every: int = 1, steps: Sequence[int] | np.ndarray | None = None
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
    model: Model | Simulator,
    params,
    key: Key[Array, ""] | None,
    *,
    n_records: int | None = None,
    every: int = 1,
    steps: Sequence[int] | np.ndarray | None = None,
):
    """Final state, and observables after `steps` updates (leading axis: records).

    Give either `n_records` and `every` (steps every, 2 every, ...) or an explicit static,
    increasing `steps` (e.g. `log_steps(10**5, 40)`). Only the recorded steps' observables are
    computed; the steps in between run in a loop whose observables are discarded. `key=None`
    is for deterministic models (their step receives None).
    """
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
    steps: Int[Array, " records"],
    limit: Float[Array, "*batch"] | float,
) -> tuple[Bool[Array, "*batch"], Int[Array, "*batch"]]:
    """Per run: whether the recorded loss ever became non-finite or exceeded `limit`, and the
    first recorded step at which it did (-1 if it never did)."""
    limit = jnp.broadcast_to(jnp.asarray(limit), loss.shape[:-1])
    bad = ~jnp.isfinite(loss) | (loss > limit[..., None])
    first = jnp.argmax(bad, axis=-1)
    diverged = jnp.any(bad, axis=-1)
    return diverged, jnp.where(diverged, jnp.asarray(steps)[first], -1)
