"""Linear regression on a spectrum, in the eigenbasis, tracked through the deviation v = w - w*.

Data x = sqrt(lambda) * g with g ~ N(0, I), labels y = x . w* + xi, xi ~ N(0, noise); the
population loss is L(v) = 1/2 sum_k lambda_k v_k^2 (THEORY.md §2.1). Only the first
`n_trainable` modes are trained (ideal-feature truncation); the rest stay at v_k = -w*_k.

- `init` / `step`: one-pass minibatch SGD, v <- v - (lr / B) X^T (X v - xi), fresh samples;
- `scheduled(schedule)`: the same with lr_t = lr * schedule(t), any schedule (e.g. optax's);
- `with_optimizer(make)`: the same gradient driven by any optax optimizer;
- `gd`: full-batch GD on the population loss, v <- v - lr Lambda v;
- `gf(params, t)`: exact gradient flow at arbitrary times, v(t) = -w* exp(-lambda t).
"""

import dataclasses
import math
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from spectral_sim._types import Array, Float, Int, Key, Scalar, Simulator, check_count, check_range
from spectral_sim.spectra import Spectrum

__all__ = [
    "Obs",
    "Params",
    "State",
    "gd",
    "gf",
    "init",
    "loss",
    "scheduled",
    "step",
    "trainable",
    "with_optimizer",
]


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Params:
    """One-pass SGD on linear regression: spectrum, learning rate, label-noise variance sigma^2,
    number of trainable modes (traced, a mask: sweep it without recompiling), batch size."""

    spectrum: Spectrum
    lr: Scalar = 0.1
    noise: Scalar = 0.0
    n_trainable: Scalar = math.inf
    batch: int = dataclasses.field(default=1, metadata=dict(static=True))

    def __post_init__(self):
        check_range("lr", self.lr, gt=0)
        check_range("noise", self.noise, ge=0)
        check_range("n_trainable", self.n_trainable, ge=1, finite=False)
        check_count("batch", self.batch)


class State(NamedTuple):
    """v: deviation w - w* per mode; t: number of updates done (for schedules)."""

    v: Float[Array, " modes"]
    t: Int[Array, ""]


class Obs(NamedTuple):
    """loss: population excess loss 1/2 sum_k lambda_k v_k^2 after the step."""

    loss: Float[Array, ""]


def trainable(params: Params) -> Float[Array, " modes"]:
    """1 for the trained modes k <= n_trainable, 0 for the frozen tail."""
    lam = params.spectrum.eigenvalues()
    k = jnp.arange(1, lam.shape[-1] + 1, dtype=lam.dtype)
    return (k <= params.n_trainable).astype(lam.dtype)


def loss(params: Params, v: Float[Array, " modes"]) -> Float[Array, ""]:
    """L = 1/2 sum_k lambda_k v_k^2."""
    return 0.5 * v**2 @ params.spectrum.eigenvalues()


def init(params: Params, key: Key[Array, ""]) -> State:
    """w = 0, so v = -w*."""
    del key
    return State(-params.spectrum.target(), jnp.zeros((), jnp.int32))


def _gradient(params: Params, v: Float[Array, " modes"], key: Key[Array, ""]):
    """Minibatch gradient of 1/2 mean (x . w - y)^2 on fresh Gaussian samples, trained modes."""
    lam = params.spectrum.eigenvalues()
    kx, kn = jax.random.split(key)
    x = jax.random.normal(kx, (params.batch, lam.shape[-1]), lam.dtype) * jnp.sqrt(lam)[None]
    xi = jnp.sqrt(params.noise) * jax.random.normal(kn, (params.batch,), lam.dtype)
    return trainable(params) * (x.T @ (x @ v - xi)) / params.batch


def _sgd_step(params: Params, state: State, key: Key[Array, ""], lr) -> tuple[State, Obs]:
    v = state.v - lr * _gradient(params, state.v, key)
    return State(v, state.t + 1), Obs(loss(params, v))


def step(params: Params, state: State, key: Key[Array, ""]) -> tuple[State, Obs]:
    """One SGD step at constant learning rate."""
    return _sgd_step(params, state, key, params.lr)


def scheduled(schedule: Callable[[Int[Array, ""]], Float[Array, ""]]) -> Simulator:
    """One-pass SGD with lr_t = params.lr * schedule(t), t = 0, 1, ... (e.g.
    `optax.cosine_decay_schedule(1.0, 1000)`); lr stays a traced, sweepable scale."""

    def scheduled_step(params: Params, state: State, key: Key[Array, ""]):
        return _sgd_step(params, state, key, params.lr * schedule(state.t))

    return Simulator(init, scheduled_step)


class OptState(NamedTuple):
    v: Float[Array, " modes"]
    opt_state: optax.OptState
    t: Int[Array, ""]


def with_optimizer(
    make: Callable[[Params], optax.GradientTransformation] = lambda p: optax.sgd(p.lr),
) -> Simulator:
    """One-pass SGD gradients fed to the optax optimizer `make(params)` (built inside the traced
    step, so hyperparameters read from params stay sweepable), e.g.
    `with_optimizer(lambda p: optax.adam(p.lr))`. Frozen modes receive no update."""

    def opt_init(params: Params, key: Key[Array, ""]) -> OptState:
        v = init(params, key).v
        return OptState(v, make(params).init(v), jnp.zeros((), jnp.int32))

    def opt_step(params: Params, state: OptState, key: Key[Array, ""]):
        grad = _gradient(params, state.v, key)
        updates, opt_state = make(params).update(grad, state.opt_state, state.v)
        v = state.v + trainable(params) * jnp.asarray(updates)
        return OptState(v, opt_state, state.t + 1), Obs(loss(params, v))

    return Simulator(opt_init, opt_step)


def _gd_step(params: Params, state: State, key: Key[Array, ""]) -> tuple[State, Obs]:
    del key
    lam = params.spectrum.eigenvalues()
    v = state.v - params.lr * trainable(params) * lam * state.v
    return State(v, state.t + 1), Obs(loss(params, v))


gd = Simulator(init, _gd_step)
"""Full-batch gradient descent on the population loss (deterministic; the key is unused)."""


def gf(params: Params, t: Float[Array, " records"]) -> tuple[State, Obs]:
    """Exact gradient flow from w = 0 at times t: v_k(t) = -w*_k exp(-lambda_k t) on trained
    modes. Returns the states and observables with a leading records axis."""
    lam = params.spectrum.eigenvalues()
    t = jnp.asarray(t, lam.dtype)
    decay = jnp.exp(-jnp.multiply.outer(t, lam * trainable(params)))
    v = -decay * params.spectrum.target()[None]
    return State(v, jnp.zeros(t.shape, jnp.int32)), Obs(loss(params, v))
