"""The only time loop: run any Simulator (`init`, `step`), or a model module that is one, and
record its observables at chosen steps.

Step t (t = 0, 1, ...) uses the key fold_in(run_key, t), so a trajectory does not depend on the
recording schedule: recording every step or every 100th gives the same states at common steps.
"""

import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from spectral_sim._types import Array, ArrayLike, Bool, Float, Int, Key, Model, Simulator
from spectral_sim.checks import check_count

__all__ = [
    "BLOCK", "BLOCK_MIN_DRAWS", "Simulator", "as_simulator", "divergence", "float32", "log_steps",
    "record_steps", "trajectory",
]  # fmt: skip


BLOCK = 64
"""The most steps whose random inputs `trajectory` draws at once, for a Simulator with `draw`
and `step_with`; it draws blocks of BLOCK / 2 to BLOCK steps, of the size that covers the most
steps between records."""
BLOCK_MIN_DRAWS = 2**20
"""`trajectory` draws in blocks only for a run that draws at least this many random numbers in
all: the blocked program holds the step twice more and takes about 1.5x as long to compile, which
a short run (a test, a --quick point) would not win back."""


def _block(gaps: np.ndarray) -> int:
    """The block size in [BLOCK / 2, BLOCK] whose whole blocks cover the most of the gaps' steps
    between records (each gap's last step is recorded, so gap - 1 of them); the largest on ties."""
    free = np.maximum(gaps - 1, 0)
    return max(range(BLOCK // 2, BLOCK + 1), key=lambda b: (int(np.sum(free // b * b)), b))


def as_simulator(model: Any) -> Simulator:
    """`model` as a Simulator: a Simulator as it is, a model module (`models.linear`,
    `models.ridge`, ...) or any other object with `init` and `step` functions as
    Simulator(model.init, model.step), with its `draw` and `step_with` where it has both;
    TypeError naming `model` otherwise."""
    if isinstance(model, Simulator):
        return Simulator(*model)  # a subclass (models.linear.gd) as a plain one
    if not callable(getattr(model, "init", None)) or not callable(getattr(model, "step", None)):
        name = getattr(model, "__name__", type(model).__name__)
        raise TypeError(f"{name} is not a model: a model is a Simulator or a module with "
                        f"init(params, key) and step(params, state, key)")  # fmt: skip
    split = [getattr(model, name, None) for name in ("draw", "step_with")]
    if not all(callable(f) for f in split):  # both or neither
        split = [None, None]
    return Simulator(model.init, model.step, *split)


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
    steps_between = np.diff(schedule, prepend=0)
    gaps = jnp.asarray(steps_between, jnp.int32)
    init_key, run_key = (None, None) if key is None else jax.random.split(key)

    def step_key(t) -> Any:
        return None if run_key is None else jax.random.fold_in(run_key, t)

    split = None  # (draw, step_with, block size) where this run draws in blocks
    if run_key is not None and model.draw is not None and model.step_with is not None:
        drawn = jax.eval_shape(model.draw, params, step_key(0))
        per_step = sum(math.prod(leaf.shape) for leaf in jax.tree.leaves(drawn))
        if per_step * int(schedule[-1]) >= BLOCK_MIN_DRAWS:
            split = (model.draw, model.step_with, _block(steps_between))

    def advance(t, state):
        return model.step(params, state, step_key(t))[0]

    def advance_to(t, end, state):
        """The state after the steps t, ..., end - 1 (observables discarded)."""
        if split is None:
            return jax.lax.fori_loop(t, end, advance, state)
        draw, step_with, size = split

        def block(b, state):  # steps t + b size, ...: their draws made at once, then applied
            first = t + b * size
            drawn = jax.vmap(lambda u: draw(params, step_key(u)))(first + jnp.arange(size))
            return jax.lax.scan(lambda s, d: (step_with(params, s, d)[0], None), state, drawn)[0]

        blocks = (end - t) // size
        state = jax.lax.fori_loop(0, blocks, block, state)
        return jax.lax.fori_loop(t + blocks * size, end, advance, state)

    every_step = bool(np.all(steps_between == 1))  # nothing between records: no inner loop

    def record(carry, gap):
        t, state = carry
        if not every_step:
            state = advance_to(t, t + gap - 1, state)
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
