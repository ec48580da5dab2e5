"""Random features f(x) = theta . (F^T x), F in R^{M x N}: the finite-width approximation error
(THEORY.md §2.8) and the exact expected one-pass SGD loss given F (§2.4, last bullet).

Given F, z = F^T x ~ N(0, K) with K = F^T Sigma F, and y = z . theta* + e + xi where
theta* = K^+ F^T Sigma w* and e ~ N(0, 2 F0) is independent of z (jointly Gaussian, uncorrelated),
F0 = 1/2 (F theta* - w*)^T Sigma (F theta* - w*). In K's eigenbasis (K = Q diag(mu) Q^T) the SGD
is therefore linear regression with eigenvalues mu, target power mu (Q^T theta*)^2 and label
noise sigma^2 + 2 F0, and L(theta) = F0 + 1/2 (theta - theta*)^T K (theta - theta*).

Params forms: `sgd(params, steps)` (also `loss`) and `approx_error(params)` predict the simulator
`models.random_features` with the same Params (its own F, from params.feature_seed) and are
jax.vmap-able over a stacked grid of them. The keyword form `rf_approx_error(spectrum,
n_features=)` is the general one, which `approx_error` calls: its width is a real, traced
argument, while the Params' n_features is a static shape. The `*_given_features` functions take
a feature matrix F of the caller's.
"""

from collections.abc import Sequence
from typing import NamedTuple

import jax.numpy as jnp

from spectral_sim._types import Array, ArrayLike, Float, Int, Scalar
from spectral_sim.checks import check_range
from spectral_sim.models import linear, random_features
from spectral_sim.models.random_features import Params
from spectral_sim.spectra import Empirical, Spectrum
from spectral_sim.theory import linear as linear_theory
from spectral_sim.theory.ridge import ITERATIONS, kappa

__all__ = [
    "Optimum",
    "Readout",
    "approx_error",
    "approx_error_given_features",
    "gf_loss_given_features",
    "loss",
    "optimum",
    "readout",
    "rf_approx_error",
    "sgd",
    "sgd_loss_given_features",
]


def rf_approx_error(
    spectrum: Spectrum, *, n_features: Scalar, iterations: int = ITERATIONS
) -> Float[Array, ""]:
    """E_F u^T (I - P_Z) u ~ sum_k v_k^2 kappa_d / (lambda_k + kappa_d), u = Sigma^1/2 w*,
    Z = Sigma^1/2 F, with kappa_d solving d = sum_k lambda_k / (lambda_k + kappa_d), d = N
    (THEORY.md §2.8, [DE]: the first-order resolvent equivalent, Monte Carlo agreement <= 1.7%;
    no E0 factor). Zero once N >= M. This is twice the best reachable `*_loss`."""
    check_range("n_features", n_features, gt=0)
    lam = spectrum.eigenvalues()
    k = kappa(spectrum, n=n_features, iterations=iterations)
    return spectrum.target_power() @ (k / (lam + k))


def approx_error(params: Params) -> Float[Array, ""]:
    """`rf_approx_error` for the simulator's Params (width n_features; [DE], the expectation over
    F, so feature_seed, lr, noise and batch do not enter)."""
    return rf_approx_error(params.spectrum, n_features=params.n_features)


class Optimum(NamedTuple):
    """The population optimum of the readout given F, in the eigenbasis of K = F^T Sigma F."""

    mu: Float[Array, " dim"]  # eigenvalues of K (ascending); rank-deficient ones set to 0
    vectors: Float[Array, "dim dim"]  # Q, columns the eigenvectors of K
    theta: Float[Array, " dim"]  # Q^T theta*, theta* = K^+ F^T Sigma w* (0 on null modes)
    floor: Float[Array, ""]  # F0 = 1/2 (F theta* - w*)^T Sigma (F theta* - w*)


def optimum(spectrum: Spectrum, features: Float[Array, "modes dim"]) -> Optimum:
    """theta*, its loss F0 and K's eigendecomposition for the features F ([E])."""
    lam, target = spectrum.eigenvalues(), spectrum.target()
    kernel = features.T @ (lam[:, None] * features)
    mu, vectors = jnp.linalg.eigh(kernel)
    # Eigenvalues below the rank tolerance (numpy's matrix_rank rule) are rounding noise of the
    # null space (N > M gives at least N - M of them): z has no component there.
    tol = jnp.finfo(mu.dtype).eps * max(features.shape) * jnp.max(mu)
    keep = mu > tol
    moment = vectors.T @ (features.T @ (lam * target))  # Q^T F^T Sigma w*
    theta = jnp.where(keep, moment / jnp.where(keep, mu, 1.0), 0.0)
    deviation = features @ (vectors @ theta) - target
    floor = 0.5 * deviation**2 @ lam
    return Optimum(jnp.where(keep, mu, 0.0), vectors, theta, floor)


def approx_error_given_features(
    spectrum: Spectrum, features: Float[Array, "modes dim"]
) -> Float[Array, ""]:
    """u^T (I - P_Z) u = min_theta ||F theta - w*||^2_Sigma = 2 F0 for this F ([E])."""
    return 2 * optimum(spectrum, features).floor


def gf_loss_given_features(
    spectrum: Spectrum, features: Float[Array, "modes dim"], times: Float[ArrayLike, " times"]
) -> Float[Array, " times"]:
    """Exact loss of gradient flow on the readout from theta = 0 at `times` given F ([E]):
    theta(t) - theta* = -e^(-K t) theta*, so L(t) = F0 + 1/2 sum_j mu_j (Q^T theta*)_j^2
    e^(-2 mu_j t). The modes of `spectrum` are all there is (add 1/2 zeta(a, M + 1) for the
    modes beyond a PowerLaw's M, which no feature sees). ValueError unless times >= 0 (finite)."""
    check_range("times", times, ge=0)
    opt = optimum(spectrum, features)
    times = jnp.asarray(times, opt.mu.dtype)
    decay = jnp.exp(-2 * opt.mu[:, None] * times[None])
    return opt.floor + 0.5 * (opt.mu * opt.theta**2) @ decay


def sgd_loss_given_features(
    params: Params,
    features: Float[Array, "modes dim"],
    steps: Int[ArrayLike, " records"] | Sequence[int],
) -> Float[Array, " records"]:
    """Exact E[L(theta_t) | F] of one-pass SGD from theta = 0 at `steps` (concrete integers >= 0,
    any order; THEORY.md §2.4, [E]): F0 plus the exact SGD recursion of `theory.linear` on
    eigenvalues mu, target power mu (Q^T theta*)^2 and label noise sigma^2 + 2 F0."""
    spectrum, noise, floor = readout(params.spectrum, features, params.noise)
    the_readout = linear.Params(spectrum, lr=params.lr, noise=noise, batch=params.batch)
    return floor + linear_theory.sgd(the_readout, steps)


class Readout(NamedTuple):
    """The readout's training problem given F, as linear regression in K's eigenbasis."""

    spectrum: Empirical  # eigenvalues mu of K, target power mu (Q^T theta*)^2
    noise: Float[Array, ""]  # sigma^2 + 2 F0: the part of y no feature sees acts as label noise
    floor: Float[Array, ""]  # F0, added to the readout's loss


def readout(spectrum: Spectrum, features: Float[Array, "modes dim"], noise: Scalar) -> Readout:
    """Training the readout on z = F^T x is linear regression with Gaussian features of
    covariance K = F^T Sigma F: in K's eigenbasis, eigenvalues mu, target power mu (Q^T
    theta*)^2, and the residual y - z . theta* (Gaussian, independent of z) as extra label
    noise 2 F0 ([E]); its loss is F0 plus that regression's."""
    opt = optimum(spectrum, features)
    live = opt.mu > 0
    # Null modes never move (z has no component there) and carry no target power; a tiny
    # positive eigenvalue keeps them valid for `Empirical` and inert in the recursion.
    mu = jnp.where(live, opt.mu, jnp.finfo(opt.mu.dtype).tiny)
    power = jnp.where(live, opt.mu * opt.theta**2, 0.0)
    extra = noise + 2 * jnp.maximum(opt.floor, 0.0)
    return Readout(Empirical(mu, power), extra, opt.floor)


def sgd(
    params: Params, steps: Int[ArrayLike, " records"] | Sequence[int]
) -> Float[Array, " records"]:
    """Exact E[L(theta_t) | F] of the simulator `models.random_features` with the same Params at
    `steps` ([E]): `sgd_loss_given_features` for its own F (drawn from params.feature_seed)."""
    return sgd_loss_given_features(params, random_features.features(params), steps)


loss = sgd
"""`sgd(params, steps)` under its older name."""
