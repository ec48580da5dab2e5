"""Linear regression on a spectrum, in the eigenbasis, tracked through the deviation v = w - w*.

Data x = sqrt(lambda) * g with g ~ N(0, I), labels y = x . w* + xi, xi ~ N(0, noise); the
population loss is L(v) = 1/2 sum_k lambda_k v_k^2 (THEORY.md §2.1). Only the first
`n_trainable` modes are trained (ideal-feature truncation); the rest stay at v_k = -w*_k.

One factory per simulator over the same Params, each returning a `Simulator` for
`simulate.trajectory`:

- `sgd(schedule=None)`: one-pass minibatch SGD, v <- v - (lr_t / B) X^T (X v - xi) on fresh
  samples, lr_t = lr, or lr * schedule(t) for any schedule (e.g. optax's);
- `optimizer(make)`: the same minibatch gradients driven by the optax optimizer `make(params)`;
- `gd()`: full-batch GD on the population loss, v <- v - lr Lambda v.

`gf(params, t)` is not a simulator but its deterministic limit, exact gradient flow at arbitrary
times, v(t) = -w* exp(-lambda t), evaluated without a time loop (`theory.linear.gf` is its loss).
Constant-rate SGD and GD warn once, from their `init`, when a concrete lr is past their stability
limit (SGD's `stability(params)` >= 1, GD's lr lambda_max >= 2).

Older spellings stay: the module itself is constant-rate SGD (`init`, `step`: what `sgd()`
returns), `scheduled(schedule)` is `sgd(schedule)`, `with_optimizer(make)` is `optimizer(make)`,
and `gd` is also the simulator itself (`simulate.trajectory(linear.gd, ...)`).
"""

import dataclasses
import math
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from spectral_sim._types import Array, Float, Int, Key, Simulator, Swept
from spectral_sim.checks import (
    all_of,
    check_leaf,
    check_range,
    check_spectrum,
    concrete,
    warn_unstable,
)
from spectral_sim.diagnostics import compression
from spectral_sim.spectra import Spectrum

__all__ = [
    "Obs",
    "OptState",
    "Params",
    "State",
    "draw",
    "gd",
    "gf",
    "gradient",
    "init",
    "loss",
    "optimizer",
    "scheduled",
    "sgd",
    "stability",
    "step",
    "step_with",
    "trainable",
    "with_optimizer",
]


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Params:
    """One-pass SGD on linear regression: spectrum, learning rate, label-noise variance sigma^2,
    number of trainable modes (traced, a mask: sweep it without recompiling), batch size."""

    spectrum: Spectrum
    lr: Swept = 0.1
    noise: Swept = 0.0
    n_trainable: Swept = math.inf
    batch: int = dataclasses.field(default=1, metadata=dict(static=True))

    def __post_init__(self):
        check_spectrum("spectrum", self.spectrum)
        for name in ("lr", "noise", "n_trainable"):
            check_leaf(name, getattr(self, name))
        with all_of() as check:
            check.range("lr", self.lr, gt=0)
            check.range("noise", self.noise, ge=0)
            check.range("n_trainable", self.n_trainable, ge=1, finite=False)
            check.count("batch", self.batch)


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


def loss(params: Params, v: Float[Array, "*batch modes"]) -> Float[Array, "*batch"]:
    """L = 1/2 sum_k lambda_k v_k^2."""
    return 0.5 * v**2 @ params.spectrum.eigenvalues()


def stability(params: Params) -> Float[Array, ""]:
    """chi = (lr/B) sum_k lambda_k / (2 - lr lambda_k (1 + 1/B)) over trained modes: the SGD of
    `sgd()` is stable in mean square iff chi < 1 (inf when some denominator is <= 0; THEORY.md
    §2.4). The noise does not enter."""
    lam = params.spectrum.eigenvalues()
    denominator = 2 - params.lr * lam * (1 + 1 / params.batch)
    on = trainable(params) > 0
    chi = params.lr / params.batch * jnp.sum(jnp.where(on, lam / denominator, 0.0))
    return jnp.where(jnp.any(on & (denominator <= 0)), jnp.inf, chi)


def _start(params: Params, key: Key[Array, ""] | None) -> State:
    del key
    return State(-params.spectrum.target(), jnp.zeros((), jnp.int32))


def init(params: Params, key: Key[Array, ""] | None) -> State:
    """w = 0, so v = -w*. Warns once (RuntimeWarning naming lr) when a concrete lr is past the
    constant-rate SGD's mean-square stability limit, `stability(params)` >= 1."""
    if concrete(params.lr) is not None:
        warn_unstable("SGD", params.lr, stability(params), 1.0, "chi")
    return _start(params, key)


def draw(
    params: Params, key: Key[Array, ""]
) -> tuple[Float[Array, "batch modes"], Float[Array, " batch"]]:
    """The step's random inputs: standard normals g for the minibatch's samples x = g sqrt(lambda)
    and z for their label noise xi = sigma z."""
    lam = params.spectrum.eigenvalues()
    kx, kn = jax.random.split(key)
    g = jax.random.normal(kx, (params.batch, lam.shape[-1]), lam.dtype)
    return g, jax.random.normal(kn, (params.batch,), lam.dtype)


def gradient(params: Params, v: Float[Array, " modes"], drawn):
    """Minibatch gradient of 1/2 mean (x . w - y)^2 on fresh Gaussian samples, trained modes."""
    lam = params.spectrum.eigenvalues()
    g, z = drawn
    x = g * jnp.sqrt(lam)[None]
    xi = jnp.sqrt(params.noise) * z
    return trainable(params) * (x.T @ (x @ v - xi)) / params.batch


def _sgd_step(params: Params, state: State, drawn, lr) -> tuple[State, Obs]:
    v = state.v - lr * gradient(params, state.v, drawn)
    return State(v, state.t + 1), Obs(loss(params, v))


def step_with(params: Params, state: State, drawn) -> tuple[State, Obs]:
    """One SGD step at constant learning rate on the inputs `draw` made."""
    return _sgd_step(params, state, drawn, params.lr)


def step(params: Params, state: State, key: Key[Array, ""]) -> tuple[State, Obs]:
    """One SGD step at constant learning rate."""
    return step_with(params, state, draw(params, key))


def sgd(schedule: Callable[[Int[Array, ""]], Float[Array, ""]] | None = None) -> Simulator:
    """One-pass minibatch SGD, at the constant rate params.lr (`init`, `step`) or, with a
    `schedule`, at lr_t = params.lr * schedule(t), t = 0, 1, ... (e.g.
    `optax.cosine_decay_schedule(1.0, 1000)`); lr stays a traced, sweepable scale."""
    if schedule is None:
        return Simulator(init, step, draw, step_with)

    def scheduled_with(params: Params, state: State, drawn):
        return _sgd_step(params, state, drawn, params.lr * schedule(state.t))

    def scheduled_step(params: Params, state: State, key: Key[Array, ""]):
        return scheduled_with(params, state, draw(params, key))

    return Simulator(_start, scheduled_step, draw, scheduled_with)


scheduled = sgd
"""`sgd(schedule)` under its older name."""


class OptState(NamedTuple):
    """v: deviation w - w* per mode; opt_state: the optax optimizer's state; t: updates done."""

    v: Float[Array, " modes"]
    opt_state: optax.OptState
    t: Int[Array, ""]


def optimizer(
    make: Callable[[Params], optax.GradientTransformation] = lambda p: optax.sgd(p.lr),
) -> Simulator:
    """One-pass SGD gradients fed to the optax optimizer `make(params)` (built inside the traced
    step, so hyperparameters read from params stay sweepable), e.g.
    `optimizer(lambda p: optax.adam(p.lr))`. Frozen modes receive no update."""

    def opt_init(params: Params, key: Key[Array, ""]) -> OptState:
        v = _start(params, key).v
        return OptState(v, make(params).init(v), jnp.zeros((), jnp.int32))

    def opt_with(params: Params, state: OptState, drawn):
        grad = gradient(params, state.v, drawn)
        updates, opt_state = make(params).update(grad, state.opt_state, state.v)
        v = state.v + trainable(params) * jnp.asarray(updates)
        return OptState(v, opt_state, state.t + 1), Obs(loss(params, v))

    def opt_step(params: Params, state: OptState, key: Key[Array, ""]):
        return opt_with(params, state, draw(params, key))

    return Simulator(opt_init, opt_step, draw, opt_with)


with_optimizer = optimizer
"""`optimizer(make)` under its older name."""


def _gd_init(params: Params, key: Key[Array, ""] | None) -> State:
    """`init` of GD, which warns once when a concrete lr is at or past 2 / lambda_max."""
    if concrete(params.lr) is not None:
        lam = jnp.where(trainable(params) > 0, params.spectrum.eigenvalues(), 0.0)
        warn_unstable("GD", params.lr, params.lr * jnp.max(lam), 2.0, "lr lambda_max")
    return _start(params, key)


def _gd_step(params: Params, state: State, key: Key[Array, ""] | None) -> tuple[State, Obs]:
    del key
    lam = params.spectrum.eigenvalues()
    v = state.v - params.lr * trainable(params) * lam * state.v
    return State(v, state.t + 1), Obs(loss(params, v))


class _GD(Simulator):
    """The GD simulator that is also its own factory: `gd()` returns it as a plain Simulator,
    like `sgd()` and `optimizer()`, and `gd` itself still runs (`trajectory(linear.gd, ...)`)."""

    __slots__ = ()

    def __call__(self) -> Simulator:
        return Simulator(self.init, self.step)


gd = _GD(_gd_init, _gd_step)
"""`gd()`: full-batch gradient descent on the population loss (deterministic; the key is
unused). `gd` without the call is the same simulator. Its `init` warns once (RuntimeWarning
naming lr) when a concrete lr is at or past the stability limit 2 / lambda_max."""


def gf(params: Params, t: Float[Array, " records"]) -> tuple[State, Obs]:
    """Exact gradient flow from w = 0 at times t: v_k(t) = -w*_k exp(-lambda_k t) on trained
    modes. Returns the states and observables with a leading records axis. Deterministic and
    loop-free, so not a Simulator: GD at step n approaches it at t = lr n. ValueError unless
    t >= 0 (finite)."""
    check_range("t", t, ge=0)
    lam = params.spectrum.eigenvalues()
    t = jnp.asarray(t, lam.dtype)
    decay = jnp.exp(-jnp.multiply.outer(t, lam * trainable(params)))
    v = -decay * params.spectrum.target()[None]
    return State(v, jnp.zeros(t.shape, jnp.int32)), Obs(loss(params, v))


def _trained(
    params: Params, state: State | OptState
) -> tuple[compression.Quadratic, Float[Array, "*batch modes"]]:
    """The weights w = v + w* on the population loss (`diagnostics.compression.trained`)."""
    target = params.spectrum.target()
    weights = state.v + target.reshape((1,) * (state.v.ndim - 1) + target.shape)
    return compression.Quadratic(params.spectrum), weights


compression.register(Params, (State, OptState), _trained)
