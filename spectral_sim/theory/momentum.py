"""Exact expected loss of one-pass stochastic momentum (Gen-Mom-SGD, `models.momentum`) on linear
regression with Gaussian data, for any schedules of gamma1, gamma2, gamma3 and Delta.

Per mode k, (v, y) moves as (v, y) <- M (v, y) + u n with the mean map and the noise direction

    M = [[1 - a lam, -b], [gamma1 lam, c]],   u = (-a, gamma1),
    a = gamma2 + gamma3 gamma1,  b = gamma3 (1 - Delta),  c = 1 - Delta,

and n = g - lam v the gradient's zero-mean part. For Gaussian x (the fourth-moment argument of
the SGD recursion, THEORY.md §2.4) E n^2 = (lam^2 E v^2 + lam (sum_j lam_j E v_j^2 +
sigma^2)) / B, uncorrelated with v and y, so the three second moments P = E v^2, Q = E v y,
R = E y^2 close exactly:

    [[P, Q], [Q, R]] <- M [[P, Q], [Q, R]] M^T + E n^2 u u^T.

With gamma1 = gamma3 = 0 this is the SGD recursion, term for term (`theory.linear.sgd`).

Stability (constant rates): the map is positive on the cone of 2 x 2 PSD moment matrices, so it
is stable in mean square iff every mode's block is (|det M| < 1, |tr M| < 1 + det M and its own
noise term below 1) and chi = sum_k lam_k [(I - A_k)^-1 f_k]_P < 1, where A_k is the block and
f_k its response to the shared sum (Krein-Rutman: the first crossing of spectral radius 1 is a
real eigenvalue with a PSD eigenvector). chi is `theory.linear.stability` when momentum is off,
and the limit loss is sigma^2 chi / (2 (1 - chi)) as for SGD.
"""

import math
from collections.abc import Sequence
from typing import NamedTuple

import jax.numpy as jnp

from spectral_sim._types import Array, ArrayLike, Float, Int, Scalar, Simulator
from spectral_sim.checks import concrete, warn_unstable
from spectral_sim.models import linear, random_features
from spectral_sim.models.momentum import (
    FeatureParams,
    Params,
    Schedule,
    coefficients,
    heavy_ball,
    linear_params,
    random_features_params,
    stability,
)
from spectral_sim.spectra import Spectrum
from spectral_sim.theory import linear as linear_theory
from spectral_sim.theory import random_features as random_features_theory

__all__ = ["Moments", "features", "limit", "loss", "momentum_loss", "momentum_stability",
           "recursion", "sgd", "stability"]  # fmt: skip


class Moments(NamedTuple):
    """Per mode P = E v^2, Q = E v y, R = E y^2; energy: sum_k lam_k P_k (twice the loss);
    t: updates done."""

    P: Float[Array, " modes"]
    Q: Float[Array, " modes"]
    R: Float[Array, " modes"]
    energy: Float[Array, ""]
    t: Int[Array, ""]


def recursion(schedule: Schedule | None) -> Simulator:
    """The exact moment recursion as a deterministic Simulator for simulate.trajectory; frozen
    modes keep P = w*^2, Q = R = 0 and still feed the sum."""

    def init(params: Params, key) -> Moments:
        del key
        P = params.spectrum.target() ** 2
        zero = jnp.zeros_like(P)
        return Moments(P, zero, zero, jnp.sum(params.spectrum.eigenvalues() * P),
                       jnp.zeros((), jnp.int32))  # fmt: skip

    def step(params: Params, state: Moments, key):
        del key
        lam = params.spectrum.eigenvalues()
        a, b, c, gamma1 = coefficients(params, state.t, schedule)
        P, Q, R = state.P, state.Q, state.R
        spread = lam**2 * P + lam * (state.energy + params.noise)  # B E n^2
        noise = spread / params.batch
        mean_v = 1 - a * lam  # M's first row is (mean_v, -b), its second (gamma1 lam, c)
        # SGD's own arrangement first (a^2 / B before the product), so that with gamma1 = gamma3
        # = 0 (b = 0) every rounding is the SGD recursion's
        new_P = mean_v**2 * P + a**2 / params.batch * spread - 2 * b * mean_v * Q + b**2 * R
        new_Q = (mean_v * (c * Q + gamma1 * lam * P) - b * (c * R + gamma1 * lam * Q)
                 - a * gamma1 * noise)  # fmt: skip
        new_R = c**2 * R + 2 * c * gamma1 * lam * Q + gamma1**2 * (lam**2 * P + noise)
        on = linear.trainable(linear_params(params)) > 0
        P, Q, R = (jnp.where(on, new, old) for new, old in ((new_P, P), (new_Q, Q), (new_R, R)))
        energy = jnp.sum(lam * P)
        return Moments(P, Q, R, energy, state.t + 1), 0.5 * energy

    return Simulator(init, step)


def sgd(
    params: Params,
    steps: Int[ArrayLike, " records"] | Sequence[int],
    schedule: Schedule | None = None,
) -> Float[Array, " records"]:
    """Exact expected loss E L after `steps` updates (concrete integers >= 0, any order, repeats
    allowed) of the simulator `models.momentum.sgd(schedule)` with the same Params. With
    constant rates past the mean-square stability limit (`stability(params)` >= 1) the loss
    grows without bound, with a RuntimeWarning."""
    if schedule is None and concrete(params.gamma3) is not None:
        warn_unstable("Gen-Mom-SGD (lr: gamma3)", params.gamma3, stability(params), 1.0, "chi")
    return linear_theory.recorded(recursion(schedule), params, steps)


loss = sgd
"""`sgd(params, steps, schedule)`: the loss of `models.momentum`."""


def limit(params: Params) -> Float[Array, ""]:
    """The limiting loss at constant rates, sigma^2 chi / (2 (1 - chi)) plus the frozen modes'
    1/2 sum w*^2 lam (the recursion's fixed point), inf if unstable."""
    chi = stability(params)
    frozen = 0.5 * jnp.sum((1 - linear.trainable(linear_params(params)))
                           * params.spectrum.target_power())  # fmt: skip
    value = frozen + chi * (2 * frozen + params.noise) / (2 * (1 - chi))
    return jnp.where(chi < 1, value, jnp.inf)


def features(
    params: FeatureParams,
    steps: Int[ArrayLike, " records"] | Sequence[int],
    schedule: Schedule | None = None,
) -> Float[Array, " records"]:
    """Exact E[L(theta_t) | F] of `models.momentum.feature_model(schedule)` with the same Params
    ([E]): the readout's regression in K's eigenbasis (`theory.random_features.readout`, the
    unseen part of the target as label noise) run by `sgd`, plus its floor F0."""
    model = random_features_params(params)
    problem = random_features_theory.readout(params.spectrum, random_features.features(model),
                                             params.noise)  # fmt: skip
    readout = Params(problem.spectrum, gamma1=params.gamma1, gamma2=params.gamma2,
                     gamma3=params.gamma3, delta=params.delta, noise=problem.noise,
                     batch=params.batch)  # fmt: skip
    return problem.floor + sgd(readout, steps, schedule)


def momentum_loss(
    spectrum: Spectrum,
    *,
    lr: Scalar,
    momentum: Scalar,
    batch: int = 1,
    noise: Scalar = 0.0,
    steps: Int[ArrayLike, " records"] | Sequence[int],
    nesterov: bool = False,
) -> Float[Array, " records"]:
    """Exact expected loss of optax.sgd(lr, momentum, nesterov) on one-pass minibatch gradients
    (1/2 convention, as the other `*_loss` predictors): `sgd(heavy_ball(...), steps)`."""
    params = heavy_ball(spectrum, lr=lr, momentum=momentum, nesterov=nesterov, batch=batch,
                        noise=noise)  # fmt: skip
    return sgd(params, steps)


def momentum_stability(
    spectrum: Spectrum,
    *,
    lr: Scalar,
    momentum: Scalar,
    batch: int = 1,
    nesterov: bool = False,
    n_trainable=math.inf,
) -> Float[Array, ""]:
    """chi of optax.sgd(lr, momentum, nesterov), stable iff chi < 1:
    `stability(heavy_ball(...))`."""
    params = heavy_ball(spectrum, lr=lr, momentum=momentum, nesterov=nesterov, batch=batch,
                        n_trainable=n_trainable)  # fmt: skip
    return stability(params)
