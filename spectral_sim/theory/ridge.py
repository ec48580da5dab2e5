"""Finite-data ridge and ridgeless regression (THEORY.md §2.7, §2.9) and exact GD on the empirical
loss given the data. Risks are E||w_hat - w*||^2_Sigma = E sum_k lambda_k (w_k - w*_k)^2, without
the 1/2 of the `*_loss` functions; the ridge delta is not divided by n.

The omnibus deterministic equivalent ([DE], Bordelon-Canatar-Pehlevan 2020, Simon et al. 2021):
    n = sum_k lambda_k / (lambda_k + kappa) + delta / kappa,    L_k = lambda_k / (lambda_k + kappa),
    E0 = n / (n - sum_k L_k^2),    risk = E0 sum_k (1 - L_k)^2 v_k^2 + (E0 - 1) sigma^2.

Params forms: `risk(params)`, `equivalent(params)` and `ols(params)` predict the simulator
`models.ridge.fit` with the same Params and are jax.vmap-able over a stacked grid of them. The
keyword forms `ridge_risk(spectrum, n=, ridge=, noise=)`, `ridge_equivalent`, `kappa` and
`ols_risk` are the general ones here, and the Params forms call them: their sample size n is a
real, traced argument (a learning curve vmaps over it), while the Params' n_samples is a static
shape. `gd_weights` takes the data themselves.

Everything is jittable, vmappable over the spectrum's traced fields and the scalars (n may be a
traced float), and differentiable: kappa carries its implicit-function derivative.
"""

import functools
from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp

from spectral_sim._types import Array, ArrayLike, Count, Float, Int, Real, Scalar
from spectral_sim.checks import all_of, check_range, warn_unstable
from spectral_sim.models.ridge import Params
from spectral_sim.spectra import Spectrum

__all__ = [
    "ITERATIONS",
    "RidgeEquivalent",
    "equivalent",
    "gd_weights",
    "kappa",
    "ols",
    "ols_risk",
    "ridge_equivalent",
    "ridge_risk",
    "risk",
]

# Bisection steps in log kappa. The bracket lies inside float64's range, |log kappa| < 745, so
# 100 halvings shrink it below 1490 * 2^-100 = 1e-27: the root is found to machine precision.
ITERATIONS = 100


# --- kappa: the self-consistent effective regularisation -------------------------------------


def _equation(lam, n, ridge, kappa):
    """g(kappa) = sum_k lambda_k / (lambda_k + kappa) + delta / kappa - n, decreasing in kappa."""
    return jnp.sum(lam / (lam + kappa)) + ridge / kappa - n


@functools.partial(jax.custom_jvp, nondiff_argnums=(3,))
def _solve_kappa(lam, n, ridge, iterations):
    """The root of g by fixed-iteration bisection in log kappa, inside the bracket
        max(delta / n, max(M - n, 0) / sum_k lambda_k^-1) <= kappa <= (sum_k lambda_k + delta) / n.
    The upper end holds because g < (sum lambda + delta)/kappa - n; each lower candidate makes
    g >= 0 on its own (delta/kappa >= n, resp. sum lambda/(lambda + kappa) >= M - kappa sum
    1/lambda >= n). The lower end is 0 only for delta = 0 and n >= M: then no positive root
    exists, the ridgeless limit is kappa -> 0 (all L_k = 1), and 0 is returned."""
    m = lam.shape[-1]
    upper = (jnp.sum(lam) + ridge) / n
    lower = jnp.maximum(ridge / n, jnp.maximum(m - n, 0) / jnp.sum(1 / lam))
    pinned = lower <= 0

    def bisect(_, bracket):
        lo, hi = bracket
        mid = (lo + hi) / 2
        root_above = _equation(lam, n, ridge, jnp.exp(mid)) > 0
        return jnp.where(root_above, mid, lo), jnp.where(root_above, hi, mid)

    start = (jnp.log(jnp.where(pinned, upper, lower)), jnp.log(upper))
    lo, hi = jax.lax.fori_loop(0, iterations, bisect, start)
    return jnp.where(pinned, 0.0, jnp.exp((lo + hi) / 2))


@_solve_kappa.defjvp
def _solve_kappa_jvp(iterations, primals, tangents):
    """Implicit differentiation of g(kappa; lambda, n, delta) = 0:
    dkappa = -(dg/dlambda . dlambda + dg/dn dn + dg/ddelta ddelta) / (dg/dkappa); zero while
    kappa is pinned at 0."""
    lam, n, ridge = primals
    dlam, dn, dridge = tangents
    kappa = _solve_kappa(lam, n, ridge, iterations)
    safe = jnp.where(kappa > 0, kappa, 1.0)
    dg_dkappa = -jnp.sum(lam / (lam + safe) ** 2) - ridge / safe**2
    dg = jnp.sum(safe / (lam + safe) ** 2 * dlam) + dridge / safe - dn
    return kappa, jnp.where(kappa > 0, -dg / dg_dkappa, 0.0)


def kappa(
    spectrum: Spectrum,
    *,
    n: Count,
    ridge: Scalar = 0.0,
    iterations: int = ITERATIONS,
) -> Float[Array, ""]:
    """kappa > 0 solving n = sum_k lambda_k / (lambda_k + kappa) + delta / kappa (THEORY.md §2.7);
    0 in the ridgeless limit delta = 0 with n >= M. With delta = 0 and n = d this is also the
    random-feature kappa_d of §2.8."""
    check_range("n", n, gt=0)
    check_range("ridge", ridge, ge=0)
    lam = spectrum.eigenvalues()
    # Float scalars in the spectrum's dtype, so the custom JVP sees float tangents.
    n, ridge = jnp.asarray(n, lam.dtype), jnp.asarray(ridge, lam.dtype)
    return _solve_kappa(lam, n, ridge, iterations)


# --- the omnibus risk ------------------------------------------------------------------------


class RidgeEquivalent(NamedTuple):
    """The pieces of the omnibus formula; risk = bias + variance."""

    kappa: Float[Array, ""]  # effective regularisation
    overfitting: Float[Array, ""]  # E0 = n / (n - sum_k L_k^2) >= 1
    bias: Float[Array, ""]  # E0 sum_k (1 - L_k)^2 v_k^2
    variance: Float[Array, ""]  # (E0 - 1) sigma^2


def ridge_equivalent(
    spectrum: Spectrum,
    *,
    n: Count,
    ridge: Scalar = 0.0,
    noise: Scalar = 0.0,
    iterations: int = ITERATIONS,
) -> RidgeEquivalent:
    """kappa, E0, bias and variance of ridge with n samples (THEORY.md §2.7, [DE]: relative
    error O(1/n); e.g. isotropic OLS, exact sigma^2 M/(n - M - 1), comes out as sigma^2 M/(n - M)).
    At delta = 0, n = M (interpolation threshold) E0 and the variance are infinite."""
    check_range("noise", noise, ge=0)
    lam, power = spectrum.eigenvalues(), spectrum.target_power()
    k = kappa(spectrum, n=n, ridge=ridge, iterations=iterations)
    n = jnp.asarray(n, lam.dtype)
    learn = lam / (lam + k)  # L_k
    miss = k / (lam + k)  # 1 - L_k without the cancellation for well-learned modes
    learned = jnp.sum(learn**2)
    overfitting = n / (n - learned)
    residual = jnp.sum(miss**2 * power)
    # 0 * inf at the threshold is an exact 0: no residual / no noise means no error.
    bias = jnp.where(residual > 0, overfitting * residual, 0.0)
    variance = jnp.where(noise > 0, (overfitting - 1) * noise, 0.0)
    return RidgeEquivalent(k, overfitting, bias, variance)


def ridge_risk(
    spectrum: Spectrum,
    *,
    n: Count,
    ridge: Scalar = 0.0,
    noise: Scalar = 0.0,
    iterations: int = ITERATIONS,
) -> Float[Array, ""]:
    """E||w_hat - w*||^2_Sigma ~ E0 sum_k (1 - L_k)^2 v_k^2 + (E0 - 1) sigma^2 for
    w_hat = (X^T X + delta I)^-1 X^T y on n samples (THEORY.md §2.7, [DE]). Add sigma^2 for the
    test MSE."""
    parts = ridge_equivalent(spectrum, n=n, ridge=ridge, noise=noise, iterations=iterations)
    return parts.bias + parts.variance


def equivalent(params: Params, *, iterations: int = ITERATIONS) -> RidgeEquivalent:
    """`ridge_equivalent` for the simulator `models.ridge.fit` with the same Params: kappa, E0,
    bias and variance on n_samples samples ([DE]; lr does not enter)."""
    return ridge_equivalent(params.spectrum, n=params.n_samples, ridge=params.ridge,
                            noise=params.noise, iterations=iterations)  # fmt: skip


def risk(params: Params) -> Float[Array, ""]:
    """`ridge_risk` for the simulator `models.ridge.fit` with the same Params: its expected
    Obs.risk ([DE]; lr does not enter)."""
    return ridge_risk(params.spectrum, n=params.n_samples, ridge=params.ridge, noise=params.noise)


def ols_risk(
    *,
    n: float | Real[ArrayLike, "*#grid"],
    d: float | Real[ArrayLike, "*#grid"],
    noise: float | Float[ArrayLike, "*#grid"] = 0.0,
    w_norm2: float | Float[ArrayLike, "*#grid"] = 0.0,
) -> Float[Array, "*#grid"]:
    """Exact risk of ridgeless least squares with isotropic Gaussian design, d features, n
    samples (THEORY.md §2.9, [E]; Hastie-Montanari-Rosset-Tibshirani 2022, Belkin-Hsu-Xu 2020):
        d < n - 1:  sigma^2 d / (n - d - 1)                           (OLS),
        d > n + 1:  sigma^2 n / (d - n - 1) + ||w*||^2 (1 - n / d)    (min-norm interpolator),
    and infinite in between. For any Sigma with d < n - 1 the OLS risk is the same. Elementwise:
    the arguments broadcast against each other."""
    for name, value in (("n", n), ("d", d)):
        check_range(name, value, gt=0)
    check_range("noise", noise, ge=0)
    check_range("w_norm2", w_norm2, ge=0)
    n, d, noise, w_norm2 = jnp.broadcast_arrays(*map(jnp.asarray, (n, d, noise, w_norm2)))
    under, over = d < n - 1, d > n + 1
    # Safe denominators keep the unselected branch (and its gradient) finite.
    under_risk = noise * d / jnp.where(under, n - d - 1, 1.0)
    over_risk = noise * n / jnp.where(over, d - n - 1, 1.0) + w_norm2 * (1 - n / d)
    return jnp.where(under, under_risk, jnp.where(over, over_risk, jnp.inf))


def ols(params: Params) -> Float[Array, ""]:
    """`ols_risk` for the simulator `models.ridge.fit` with the same Params, exact ([E]) where it
    applies: ridge = 0, and Sigma isotropic (any multiple of I: then
    w_norm2 = ||w*||^2_Sigma = sum_k v_k^2) unless d = n_modes < n - 1, where OLS's risk does not
    depend on Sigma. NaN elsewhere (traced conditions: a grid may mix them); lr does not enter."""
    lam, power = params.spectrum.eigenvalues(), params.spectrum.target_power()
    d = params.spectrum.n_modes
    value = ols_risk(n=params.n_samples, d=d, noise=params.noise, w_norm2=jnp.sum(power))
    isotropic = jnp.all(lam == lam[0])
    applies = (jnp.asarray(params.ridge) == 0) & (isotropic | (d < params.n_samples - 1))
    return jnp.where(applies, value, jnp.nan)


# --- gradient descent on the empirical loss, given the data ----------------------------------


def gd_weights(
    x: Float[Array, "samples modes"],
    y: Float[Array, " samples"],
    *,
    lr: Scalar,
    steps: Int[ArrayLike, " records"] | Sequence[int],
    ridge: Scalar = 0.0,
) -> Float[Array, "records modes"]:
    """Exact GD iterates from w = 0 on L_hat(w) = (1/2n)(||X w - y||^2 + delta ||w||^2), the
    simulator `models.ridge` ([E]): with (X^T X + delta I)/n = V diag(mu) V^T,
        w_t = V diag((1 - (1 - lr mu_i)^t) / mu_i) V^T X^T y / n,
    whose limit for lr < 2/mu_max is the ridge estimator (at delta = 0, n < M: min-norm); past
    that limit the iterates grow geometrically, with a RuntimeWarning naming lr. ValueError
    unless lr > 0, ridge >= 0 and steps are integers >= 0."""
    with all_of() as check:
        check.range("lr", lr, gt=0)
        check.range("ridge", ridge, ge=0)
        check.range("steps", steps, ge=0, integer=True)
    n, m = x.shape
    mu, vecs = jnp.linalg.eigh((x.T @ x + ridge * jnp.eye(m, dtype=x.dtype)) / n)
    warn_unstable("GD", lr, lr * jnp.max(mu), 2.0, "lr mu_max")
    moment = vecs.T @ (x.T @ y) / n
    t = jnp.atleast_1d(jnp.asarray(steps, mu.dtype))
    rate = lr * mu
    # 1 - (1 - rate)^t via expm1/log1p where 0 <= rate < 1: keeps the relative accuracy of the
    # slow modes (rate << 1/t), which the plain power loses to rounding of 1 - rate.
    smooth = -jnp.expm1(jnp.multiply.outer(t, jnp.log1p(-jnp.where(rate < 1, rate, 0.0))))
    rough = 1 - jnp.power((1 - rate)[None], t[:, None])
    grown = jnp.where((rate < 1)[None], smooth, rough)
    # mu_i = 0 (null space of X when n < M) has the limit lr t, and V^T X^T y = 0 there anyway.
    nonzero = (mu != 0)[None]
    factor = jnp.where(nonzero, grown / jnp.where(mu != 0, mu, 1.0)[None], lr * t[:, None])
    return (factor * moment[None]) @ vecs.T
