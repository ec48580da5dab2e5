"""Grokking events in recorded accuracy curves: the test accuracy reaches a threshold well after
the train accuracy did. Pure, vmappable over runs (leading axes)."""

from typing import NamedTuple

import jax.numpy as jnp

from spectral_sim._types import Array, ArrayLike, Bool, Float, Int
from spectral_sim.checks import check_range
from spectral_sim.diagnostics.tokens import first_layer

__all__ = ["Event", "event"]


class Event(NamedTuple):
    """grokked: whether the run has an event; step: the recorded step at which the test accuracy
    first reached the threshold (-1 without an event); fit_step: where the train accuracy first
    did (-1 if never); delay: step - fit_step (-1 without an event)."""

    grokked: Bool[Array, "*batch"]
    step: Int[Array, "*batch"]
    fit_step: Int[Array, "*batch"]
    delay: Int[Array, "*batch"]


def event(
    train_accuracy: Float[ArrayLike, "*batch records"],
    test_accuracy: Float[ArrayLike, "*batch records"],
    steps: Int[ArrayLike, " records"],
    *,
    threshold: float = 0.95,
    delay: int = 1000,
    fit_threshold: float | None = None,
) -> Event:
    """A grokking event: the test accuracy first reaches `threshold` at least `delay` steps after
    the train accuracy first reached `fit_threshold` (default: `threshold`; the grokking
    literature fits to 0.99 first); a run that generalises together with fitting is not one.
    The event's `delay` is the plateau's length."""
    fit_threshold = threshold if fit_threshold is None else fit_threshold
    check_range("threshold", threshold, gt=0, le=1)
    check_range("fit_threshold", fit_threshold, gt=0, le=1)
    check_range("delay", delay, ge=0)
    steps = jnp.asarray(steps)
    fit_step = first_layer(jnp.asarray(train_accuracy) >= fit_threshold, steps)
    test_step = first_layer(jnp.asarray(test_accuracy) >= threshold, steps)
    grokked = (fit_step >= 0) & (test_step >= 0) & (test_step - fit_step >= delay)
    return Event(
        grokked, jnp.where(grokked, test_step, -1), fit_step,
        jnp.where(grokked, test_step - fit_step, -1),
    )  # fmt: skip
