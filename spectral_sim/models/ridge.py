"""Finite-data linear regression on n samples, in the eigenbasis (THEORY.md §2.7, §2.9).

Data: rows x = sqrt(lambda) * g, g ~ N(0, I_M); labels y = X w* + xi, xi ~ N(0, sigma^2 I_n).
Estimators minimise the regularised empirical loss
    L_hat(w) = (1/2n) ||X w - y||^2 + (delta/2n) ||w||^2     (delta is not divided by n),
and are scored by the excess risk ||w - w*||^2_Sigma = sum_k lambda_k (w_k - w*_k)^2 (no 1/2).

- `fit(params, key)`: one data draw, closed-form ridge w = (X^T X + delta I)^-1 X^T y
  (at delta = 0 and n < M the min-norm interpolator);
- `init` / `step`: multi-pass full-batch GD on L_hat from w = 0 on one fixed draw,
  w <- w - (lr/n) [X^T (X w - y) + delta w], run by `simulate.trajectory`.
"""

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp

from spectral_sim._types import Array, Float, Key, Swept
from spectral_sim.checks import all_of, check_spectrum
from spectral_sim.diagnostics import compression
from spectral_sim.spectra import Spectrum

__all__ = [
    "Obs",
    "Params",
    "State",
    "estimate",
    "fit",
    "init",
    "observe",
    "sample",
    "step",
]


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Params:
    """Finite-data regression: spectrum, ridge delta (not divided by n), label-noise variance
    sigma^2, GD learning rate, and the number of samples n (static: it sets X's shape)."""

    spectrum: Spectrum
    ridge: Swept = 0.0
    noise: Swept = 0.0
    lr: Swept = 0.1
    n_samples: int = dataclasses.field(default=64, metadata=dict(static=True))

    def __post_init__(self):
        check_spectrum("spectrum", self.spectrum)
        with all_of() as check:
            check.range("ridge", self.ridge, ge=0)
            check.range("noise", self.noise, ge=0)
            check.range("lr", self.lr, gt=0)
            check.count("n_samples", self.n_samples)


class State(NamedTuple):
    """x: the design (samples x modes), drawn once; y: its labels; w: the GD iterate."""

    x: Float[Array, "samples modes"]
    y: Float[Array, " samples"]
    w: Float[Array, " modes"]


class Obs(NamedTuple):
    """loss: population excess loss 1/2 sum_k lambda_k (w_k - w*_k)^2;
    risk: the same without the 1/2, E||w - w*||^2_Sigma's integrand (THEORY.md §0)."""

    loss: Float[Array, ""]
    risk: Float[Array, ""]


def observe(params: Params, w: Float[Array, " modes"]) -> Obs:
    """Population loss and risk of the weights w."""
    risk = (w - params.spectrum.target()) ** 2 @ params.spectrum.eigenvalues()
    return Obs(loss=0.5 * risk, risk=risk)


def sample(
    params: Params, key: Key[Array, ""]
) -> tuple[Float[Array, "samples modes"], Float[Array, " samples"]]:
    """n Gaussian rows x = sqrt(lambda) * g and labels y = x . w* + xi."""
    lam = params.spectrum.eigenvalues()
    kx, kn = jax.random.split(key)
    x = jax.random.normal(kx, (params.n_samples, lam.shape[-1]), lam.dtype) * jnp.sqrt(lam)[None]
    xi = jnp.sqrt(params.noise) * jax.random.normal(kn, (params.n_samples,), lam.dtype)
    return x, x @ params.spectrum.target() + xi


def estimate(
    params: Params, x: Float[Array, "samples modes"], y: Float[Array, " samples"]
) -> Float[Array, " modes"]:
    """Ridge w = (X^T X + delta I)^-1 X^T y, in the primal (M x M) form when n >= M and in the
    kernel form X^T (X X^T + delta I)^-1 y when n < M: the two are equal for delta > 0, and at
    delta = 0 the kernel form is the min-norm interpolator (X^T X is singular there)."""
    n, m = x.shape
    if n >= m:  # static: shapes are known at trace time
        gram = x.T @ x + params.ridge * jnp.eye(m, dtype=x.dtype)
        return jnp.linalg.solve(gram, x.T @ y)
    kernel = x @ x.T + params.ridge * jnp.eye(n, dtype=x.dtype)
    return x.T @ jnp.linalg.solve(kernel, y)


def fit(params: Params, key: Key[Array, ""]) -> Obs:
    """Closed-form ridge on one data draw; vmap over keys for Monte Carlo and over Params for
    grids (THEORY.md §2.7 gives E risk to leading order, §2.9 exactly for isotropic OLS)."""
    return observe(params, estimate(params, *sample(params, key)))


def init(params: Params, key: Key[Array, ""]) -> State:
    """Draw the n samples once (they are reused by every GD step) and start from w = 0."""
    x, y = sample(params, key)
    return State(x, y, jnp.zeros(x.shape[-1], x.dtype))


def step(params: Params, state: State, key: Key[Array, ""] | None) -> tuple[State, Obs]:
    """One full-batch GD step on L_hat; deterministic given the draw, so the key is unused.

    Stable iff lr < 2 / mu_max, mu_max the top eigenvalue of (X^T X + delta I)/n; the fixed
    point is `estimate` (for delta = 0, n < M: the min-norm interpolator, since w stays in the
    row space of X)."""
    del key
    x, y, w = state
    grad = (x.T @ (x @ w - y) + params.ridge * w) / params.n_samples
    w = w - params.lr * grad
    return State(x, y, w), observe(params, w)


def _trained(params: Params, state: State) -> tuple[compression.Quadratic, Float[Array, " modes"]]:
    """The GD iterate w on the population loss (`diagnostics.compression.trained`)."""
    return compression.Quadratic(params.spectrum), state.w


compression.register(Params, (State,), _trained)
