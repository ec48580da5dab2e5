"""One-pass stochastic momentum (Gen-Mom-SGD) on linear regression in the eigenbasis: the data,
labels, loss and trained modes of `models.linear`, and the update of Paquette, Ferbach,
Paquette, Gidel, Everett (2025),

    y_t = (1 - Delta(t)) y_(t-1) + gamma1(t) g_t,    v_(t+1) = v_t - gamma2(t) g_t - gamma3(t) y_t,

with g_t the minibatch gradient on fresh samples (`linear.gradient`) and v = w - w*, from
w = 0, y = 0. Each of gamma1, gamma2, gamma3, Delta is its Params constant times a schedule's
multiplier at t (`sgd(schedule)`; constant without one):

- SGD: gamma1 = gamma3 = 0 (then y never enters);
- heavy ball (optax.sgd(lr, momentum=beta)): gamma1 = 1, gamma2 = 0, gamma3 = lr,
  Delta = 1 - beta; Nesterov (nesterov=True): gamma2 = lr, gamma3 = lr beta (`heavy_ball`);
- DANA: gamma3 and Delta decaying in t (`dana`), the constants scaled with the model size and
  the data complexity (THEORY.md has no section on it; the `momentum_scaling` experiment does).

`theory.momentum.sgd(params, steps, schedule)` is the exact expected loss of the same simulator.
"""

import dataclasses
import math
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from spectral_sim._types import Array, ArrayLike, Float, Int, Key, Leaf, Scalar, Simulator, Swept
from spectral_sim.checks import all_of, check_leaf, check_spectrum, concrete, warn_unstable
from spectral_sim.diagnostics import compression
from spectral_sim.models import linear, random_features
from spectral_sim.spectra import Spectrum

__all__ = [
    "FeatureParams",
    "FeatureState",
    "Obs",
    "Params",
    "Rates",
    "State",
    "coefficients",
    "dana",
    "draw",
    "feature_model",
    "heavy_ball",
    "init",
    "linear_params",
    "random_features_params",
    "rates",
    "sgd",
    "stability",
    "step",
    "step_with",
    "tabulated",
]


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Params:
    """Gen-Mom-SGD on linear regression: spectrum, the constants gamma1, gamma2, gamma3, delta
    (Delta) of the update, label-noise variance sigma^2, trainable modes (a traced mask, as in
    `linear.Params`), batch size (static)."""

    spectrum: Spectrum
    gamma1: Swept = 1.0
    gamma2: Swept = 0.0
    gamma3: Swept = 0.1
    delta: Swept = 0.1
    noise: Swept = 0.0
    n_trainable: Swept = math.inf
    batch: int = dataclasses.field(default=1, metadata=dict(static=True))

    def __post_init__(self):
        check_spectrum("spectrum", self.spectrum)
        names = ("gamma1", "gamma2", "gamma3", "delta", "noise", "n_trainable")
        for name in names:
            check_leaf(name, getattr(self, name))
        with all_of() as check:
            for name in names[:5]:
                check.range(name, getattr(self, name), ge=0)
            check.range("n_trainable", self.n_trainable, ge=1, finite=False)
            check.count("batch", self.batch)


def heavy_ball(
    spectrum: Spectrum,
    *,
    lr: Swept,
    momentum: Swept,
    nesterov: bool = False,
    batch: int = 1,
    noise: Swept = 0.0,
    n_trainable: Swept = math.inf,
) -> Params:
    """The Params of optax.sgd(lr, momentum, nesterov): trace y <- momentum y + g, step lr y
    (heavy ball) or lr (g + momentum y) (Nesterov)."""
    gamma2, gamma3 = (lr, lr * momentum) if nesterov else (0.0 * lr, lr)
    return Params(spectrum, gamma1=1.0, gamma2=gamma2, gamma3=gamma3, delta=1.0 - momentum,
                  noise=noise, n_trainable=n_trainable, batch=batch)  # fmt: skip


class Rates(NamedTuple):
    """gamma1, gamma2, gamma3 and Delta at one step (or a schedule's multipliers of them)."""

    gamma1: Float[ArrayLike, ""]
    gamma2: Float[ArrayLike, ""]
    gamma3: Float[ArrayLike, ""]
    delta: Float[ArrayLike, ""]


Schedule = Callable[[Int[ArrayLike, ""]], Rates]
"""t -> the multipliers of (gamma1, gamma2, gamma3, delta) at step t = 0, 1, ..."""


def rates(
    params: "Params | FeatureParams", t: Int[ArrayLike, ""], schedule: Schedule | None = None
) -> Rates:
    """gamma1, gamma2, gamma3, Delta at step t: the Params' constants times the schedule's."""
    constant = Rates(params.gamma1, params.gamma2, params.gamma3, params.delta)
    if schedule is None:
        return constant
    return Rates(*(c * m for c, m in zip(constant, schedule(t), strict=True)))


def coefficients(params: Params, t, schedule: Schedule | None = None):
    """(a, b, c, gamma1) at step t: with n = g - lam v, each mode moves as v <- (1 - a lam) v -
    b y - a n, y <- c y + gamma1 lam v + gamma1 n, a = gamma2 + gamma3 gamma1, b = gamma3 (1 -
    Delta), c = 1 - Delta."""
    gamma1, gamma2, gamma3, delta = rates(params, t, schedule)
    c = 1 - delta
    return gamma2 + gamma3 * gamma1, gamma3 * c, c, gamma1


def _blocks(params: Params):
    """Per mode (constant rates): the 3 x 3 map A_k of (P, Q, R) = (E v^2, E v y, E y^2) with
    the mode's own gradient noise, its response f_k to the shared sum_j lam_j P_j + sigma^2, and
    whether the block alone is stable (the mean map M's Jury conditions and its own noise ratio
    [(I - M (x) M)^-1 (a^2, -a gamma1, gamma1^2)]_P lam^2 / B < 1). With gamma1 = 0 the buffer
    never moves (y = 0): it is left out (b = c = 0)."""
    lam = params.spectrum.eigenvalues()
    a, b, c, gamma1 = (jnp.asarray(x) for x in coefficients(params, 0))
    moving = jnp.asarray(gamma1) != 0
    b, c = jnp.where(moving, b, 0.0), jnp.where(moving, c, 0.0)
    m, one = 1 - a * lam, jnp.ones_like(lam)
    mean = jnp.stack([  # rows P', Q', R' of M [[P, Q], [Q, R]] M^T; columns P, Q, R
        jnp.stack([m**2, -2 * b * m, b**2 * one], -1),
        jnp.stack([gamma1 * lam * m, m * c - b * gamma1 * lam, -b * c * one], -1),
        jnp.stack([(gamma1 * lam) ** 2, 2 * c * gamma1 * lam, c**2 * one], -1),
    ], -2)  # fmt: skip
    direction = jnp.stack([a**2 * one, -a * gamma1 * one, gamma1**2 * one], -1)
    own = lam**2 / params.batch  # the noise's weight on the mode's own P
    eye = jnp.eye(3, dtype=lam.dtype)[None]
    ratio = own * jnp.linalg.solve(eye - mean, direction[..., None])[..., 0, 0]
    det, trace = m * c + b * gamma1 * lam, m + c
    stable = (jnp.abs(det) < 1) & (jnp.abs(trace) < 1 + det) & (ratio < 1)
    block = mean.at[..., :, 0].add(direction * own[:, None])
    return block, direction * (lam / params.batch)[:, None], stable


def stability(params: Params) -> Float[Array, ""]:
    """chi = sum_k lam_k [(I - A_k)^-1 f_k]_P over trained modes (constant rates): stable in mean
    square iff chi < 1; inf where a trained mode's own block is unstable (THEORY of
    `theory.momentum`). Equals `linear.stability` when gamma1 = gamma3 = 0. The noise does not
    enter."""
    block, shared, stable = _blocks(params)
    lam = params.spectrum.eigenvalues()
    on = linear.trainable(linear_params(params)) > 0
    eye = jnp.eye(3, dtype=lam.dtype)[None]
    response = jnp.linalg.solve(eye - block, shared[..., None])[..., 0, 0]
    chi = jnp.sum(jnp.where(on, lam * response, 0.0))
    return jnp.where(jnp.any(on & ~stable), jnp.inf, chi)


def dana(kappa3: Scalar = 0.0, delay: Scalar = 1.0) -> Schedule:
    """DANA's schedule: gamma3 (1 + t)^-kappa3 and Delta = delta delay / (delay + t); gamma1 and
    gamma2 constant. kappa3 = 0 is DANA-constant, kappa3 = 1 / (2 alpha) (alpha = s / 2 for
    lambda_k = k^-s) DANA-decaying. Delta ~ delta delay / t late either way; with delta = 1 and
    delay = the paper's delta, Delta = delta / (delta + t) starts at 1 (the buffer is the
    gradient) where delta / (1 + t) starts above 1 and flips the buffer's sign for its first
    delta / 2 steps."""

    def schedule(t):
        t = jnp.asarray(t, jnp.result_type(float))
        return Rates(1.0, 1.0, (1 + t) ** -kappa3, delay / (delay + t))

    return schedule


def tabulated(**arrays: Float[ArrayLike, " steps"]) -> Schedule:
    """A schedule read from arrays indexed by t (the last value past their end), by name:
    gamma1, gamma2, gamma3, delta; a rate not given keeps multiplier 1."""
    unknown = sorted(set(arrays) - set(Rates._fields))
    if unknown:
        raise ValueError(f"tabulated takes the rates {list(Rates._fields)}; got {unknown}")
    tables = {name: jnp.asarray(value) for name, value in arrays.items()}

    def schedule(t):
        return Rates(*(tables[n][jnp.minimum(t, tables[n].shape[0] - 1)] if n in tables else 1.0
                       for n in Rates._fields))  # fmt: skip

    return schedule


class State(NamedTuple):
    """v: deviation w - w* per mode; y: the momentum buffer; t: updates done."""

    v: Float[Array, " modes"]
    y: Float[Array, " modes"]
    t: Int[Array, ""]


class Obs(NamedTuple):
    """loss: population excess loss 1/2 sum_k lambda_k v_k^2 after the step."""

    loss: Float[Array, ""]


def linear_params(params: Params) -> linear.Params:
    """The `models.linear.Params` of the same regression: its samples, gradient, loss and trained
    modes."""
    return linear.Params(params.spectrum, noise=params.noise, n_trainable=params.n_trainable,
                         batch=params.batch)  # fmt: skip


def _start(params: Params, key: Key[Array, ""] | None) -> State:
    del key
    v = -params.spectrum.target()
    return State(v, jnp.zeros_like(v), jnp.zeros((), jnp.int32))


def init(params: Params, key: Key[Array, ""] | None) -> State:
    """w = 0 (v = -w*) and y = 0. Warns once (RuntimeWarning) when concrete constant rates are
    past the mean-square stability limit, `stability(params)` >= 1."""
    if concrete(params.gamma3) is not None:
        warn_unstable("Gen-Mom-SGD (lr: gamma3)", params.gamma3, stability(params), 1.0, "chi")
    return _start(params, key)


def draw(params: Params, key: Key[Array, ""]):
    """The step's samples and label noise (`linear.draw`)."""
    return linear.draw(linear_params(params), key)


def _update(params: "Params | FeatureParams", t, schedule: Schedule | None, x, y, g):
    """The Gen-Mom-SGD update of (x, y) at step t on the gradient g: y <- (1 - Delta) y +
    gamma1 g, x <- x - gamma2 g - gamma3 y (the new y), for the linear and the readout models."""
    gamma1, gamma2, gamma3, delta = (jnp.asarray(r) for r in rates(params, t, schedule))
    y = (1 - delta) * y + gamma1 * g
    return x - gamma2 * g - gamma3 * y, y


def _step_with(params: Params, state: State, drawn, schedule: Schedule | None):
    the_linear = linear_params(params)
    g = linear.gradient(the_linear, state.v, drawn)
    v, y = _update(params, state.t, schedule, state.v, state.y, g)
    return State(v, y, state.t + 1), Obs(linear.loss(the_linear, v))


def step_with(params: Params, state: State, drawn) -> tuple[State, Obs]:
    """One update with constant rates on the inputs `draw` made."""
    return _step_with(params, state, drawn, None)


def step(params: Params, state: State, key: Key[Array, ""]) -> tuple[State, Obs]:
    """One update with constant rates."""
    return step_with(params, state, draw(params, key))


def sgd(schedule: Schedule | None = None) -> Simulator:
    """Gen-Mom-SGD with the Params' constant rates (the module's own `init`, `step`) or with
    rates = constants x `schedule(t)` (e.g. `dana(kappa3)`, `tabulated(...)`)."""
    if schedule is None:
        return Simulator(init, step, draw, step_with)

    def scheduled_with(params: Params, state: State, drawn):
        return _step_with(params, state, drawn, schedule)

    def scheduled_step(params: Params, state: State, key: Key[Array, ""]):
        return scheduled_with(params, state, draw(params, key))

    return Simulator(_start, scheduled_step, draw, scheduled_with)


# --- the random-feature model ----------------------------------------------------------------


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class FeatureParams:
    """Gen-Mom-SGD on the readout theta of `models.random_features` (f(x) = theta . F^T x, F from
    feature_seed): its spectrum, feature_seed, n_features and batch, and the rates of `Params`."""

    spectrum: Spectrum
    gamma1: Swept = 1.0
    gamma2: Swept = 0.0
    gamma3: Swept = 0.1
    delta: Swept = 0.1
    noise: Swept = 0.0
    feature_seed: int | Int[Leaf, "*grid"] = 0
    n_features: int = dataclasses.field(default=64, metadata=dict(static=True))
    batch: int = dataclasses.field(default=1, metadata=dict(static=True))

    def __post_init__(self):
        names = ("gamma1", "gamma2", "gamma3", "delta")
        for name in names:
            check_leaf(name, getattr(self, name))
        with all_of() as check:
            for name in names:
                check.range(name, getattr(self, name), ge=0)
        random_features_params(self)  # the model's own checks: spectrum, noise, seed, sizes


def random_features_params(params: FeatureParams) -> random_features.Params:
    """The `models.random_features.Params` of the same model (its F, samples and loss)."""
    return random_features.Params(params.spectrum, noise=params.noise,
                                  feature_seed=params.feature_seed,
                                  n_features=params.n_features, batch=params.batch)  # fmt: skip


class FeatureState(NamedTuple):
    """features: F, fixed for the run; theta: the readout; y: the momentum buffer; t."""

    features: Float[Array, "modes dim"]
    theta: Float[Array, " dim"]
    y: Float[Array, " dim"]
    t: Int[Array, ""]


def feature_model(schedule: Schedule | None = None) -> Simulator:
    """Gen-Mom-SGD on the random-feature readout from theta = 0, y = 0, with the rates of
    `rates(params, t, schedule)`; the loss is `random_features.loss`."""

    def feature_init(params: FeatureParams, key: Key[Array, ""] | None) -> FeatureState:
        start = random_features.init(random_features_params(params), key)
        t = jnp.zeros((), jnp.int32)
        return FeatureState(start.features, start.theta, jnp.zeros_like(start.theta), t)

    def feature_draw(params: FeatureParams, key: Key[Array, ""]):
        return random_features.draw(random_features_params(params), key)

    def feature_with(params: FeatureParams, state: FeatureState, drawn):
        model = random_features_params(params)
        readout = random_features.State(state.features, state.theta)
        z, r = random_features.residual(model, readout, drawn)
        theta, y = _update(params, state.t, schedule, state.theta, state.y, z.T @ r / params.batch)
        new = FeatureState(state.features, theta, y, state.t + 1)
        return new, Obs(random_features.loss(model, random_features.State(new.features, theta)))

    def feature_step(params: FeatureParams, state: FeatureState, key: Key[Array, ""]):
        return feature_with(params, state, feature_draw(params, key))

    return Simulator(feature_init, feature_step, feature_draw, feature_with)


def _trained(params: Params, state: State) -> tuple[compression.Quadratic, Float[Array, "..."]]:
    """The weights w = v + w* on the population loss (`diagnostics.compression.trained`)."""
    target = params.spectrum.target()
    return compression.Quadratic(params.spectrum), state.v + target.reshape(
        (1,) * (state.v.ndim - 1) + target.shape)  # fmt: skip


compression.register(Params, (State,), _trained)
