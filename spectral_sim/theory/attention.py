"""Contraction of residual attention towards consensus (THEORY.md §3): the spectrum and gap of a
fixed reversible attention matrix P, the exact per-layer rate of X <- X + eps (P X - X) and of
the additive form X <- X + eps P X, the condition under which the rate is 1 - eps lambda_2, the
consensus point pi^T X_0, the softmax asymptotic rate, the Dobrushin coefficient and the
rank-collapse bound of pure attention (Dong, Cordonnier and Loukas, arXiv 2103.03404).

P is row-stochastic with positive entries; the spectral functions assume it is reversible
(P = D^-1 K with K symmetric, THEORY.md §3.1), so its eigenvalues are real and come from `eigh`
of the symmetrised Pi^1/2 P Pi^-1/2. Everything is jittable and vmaps over stacks of P; the
checks of P run only on concrete arrays, before tracing.

These predictors are functions of the matrix P and the step eps, which they broadcast over
stacks of P themselves, not of the simulator's Params: `rate(params)` is the Params form of
the per-layer rate for `models.attention`. `stationary`, `dobrushin` and `check_attention` live
with the simulator, which needs them for its observables and checks, and are re-exported here.
"""

import math
from typing import Literal

import jax.numpy as jnp
import numpy as np

from spectral_sim._types import Array, ArrayLike, Float, Scalar
from spectral_sim.checks import check_count, check_range, concrete
from spectral_sim.models.attention import (
    STOCHASTIC_RTOL,
    Params,
    check_attention,
    dobrushin,
    stationary,
)

__all__ = [
    "attention_gap",
    "rate",
    "closed_classes",
    "attention_rate",
    "attention_spectrum",
    "check_attention",
    "consensus",
    "dobrushin",
    "gap_rate_limit",
    "kernel_attention",
    "rank_collapse_bound",
    "softmax_rate",
    "stationary",
]

Residual = Literal["mean_shift", "additive"]


def _check_eps(eps: object) -> None:
    check_range("eps", eps, gt=0)


def kernel_attention(kernel: Float[ArrayLike, "*batch n n"]) -> Float[Array, "*batch n n"]:
    """P = D^-1 K for a symmetric positive kernel K (D = diag of row sums): reversible, with
    stationary distribution pi_i proportional to D_ii (THEORY.md §3.1)."""
    k = concrete(kernel)
    if k is not None:
        if k.ndim < 2 or k.shape[-1] != k.shape[-2] or k.shape[-1] < 2:
            raise ValueError(f"kernel must be (..., n, n) with n >= 2; got shape {k.shape}")
        if not np.all(np.isfinite(k)) or np.any(k <= 0):
            raise ValueError("kernel must have finite, positive entries")
        if not np.allclose(k, np.swapaxes(k, -1, -2), rtol=1e-12, atol=0):
            raise ValueError("kernel must be symmetric (K = K^T)")
    kernel = jnp.asarray(kernel)
    return kernel / kernel.sum(-1, keepdims=True)


def attention_spectrum(P: Float[ArrayLike, "*batch n n"]) -> Float[Array, "*batch n"]:
    """The eigenvalues 1 = mu_1 > mu_2 >= ... >= mu_n > -1 of a reversible P, descending, from
    `eigh` of Pi^1/2 P Pi^-1/2 (symmetric exactly when P is reversible)."""
    check_attention(P)
    P = jnp.asarray(P)
    root = jnp.sqrt(stationary(P))
    symmetric = root[..., :, None] * P / root[..., None, :]
    symmetric = 0.5 * (symmetric + jnp.swapaxes(symmetric, -1, -2))  # rounding only
    return jnp.linalg.eigvalsh(symmetric)[..., ::-1]


def attention_gap(P: Float[ArrayLike, "*batch n n"]) -> Float[Array, "*batch"]:
    """lambda_2 = 1 - mu_2, the spectral gap of a reversible row-stochastic P (the
    second-smallest eigenvalue of the random-walk Laplacian I - P; THEORY.md §3.1)."""
    return 1 - attention_spectrum(P)[..., 1]


def attention_rate(
    P: Float[ArrayLike, "*batch n n"], *, eps: Scalar, residual: Residual = "mean_shift"
) -> Float[Array, "*batch"]:
    """The exact asymptotic contraction rate per layer of the deviation from consensus.

    residual="mean_shift": X <- X + eps (P X - X), rate max_{i>=2} |1 - eps (1 - mu_i)|
    (THEORY.md §3.1; ||X_L - X_inf||_pi <= rate^L ||X_0 - X_inf||_pi exactly).
    residual="additive": X <- X + eps P X, rate max_{i>=2} |1 + eps mu_i| / (1 + eps) after
    dividing out the (1 + eps)^L growth of the consensus mode (§3.2).
    """
    _check_eps(eps)
    mu = attention_spectrum(P)[..., 1:]
    eps = jnp.asarray(eps, mu.dtype)[..., None]
    if residual == "mean_shift":
        return jnp.max(jnp.abs(1 - eps * (1 - mu)), axis=-1)
    if residual == "additive":
        return jnp.max(jnp.abs(1 + eps * mu), axis=-1) / (1 + eps[..., 0])
    raise ValueError(f"residual must be 'mean_shift' or 'additive'; got {residual!r}")


def gap_rate_limit(P: Float[ArrayLike, "*batch n n"]) -> Float[Array, "*batch"]:
    """The largest eps for which attention_rate(P, eps) = 1 - eps lambda_2:
    2 / (2 - mu_2 - mu_n) (THEORY.md §3.1; always >= 2 / (2 + lambda_2)). Beyond it the most
    negative eigenvalue mu_n sets the rate (over-relaxation)."""
    mu = attention_spectrum(P)
    return 2 / (2 - mu[..., 1] - mu[..., -1])


def consensus(
    P: Float[ArrayLike, "*batch n n"], tokens: Float[ArrayLike, "*batch n d"]
) -> Float[Array, "*batch d"]:
    """The fixed point of the mean-shift update, every token at pi^T X_0 (pi^T X is invariant
    under X <- X + eps (P X - X) for a fixed P; THEORY.md §3.1)."""
    check_attention(P, reversible=False)
    pi = stationary(P)
    return jnp.einsum("...n,...nd->...d", pi, jnp.asarray(tokens))


def softmax_rate(eps: Scalar, residual: Residual = "mean_shift") -> Float[Array, "*batch"]:
    """The asymptotic rate of softmax self-attention (V = I) near consensus: A(X) -> 11^T / n,
    whose gap is 1, so the deviation contracts by 1 - eps per layer (THEORY.md §3.3). The
    additive value 1 - eps / (1 + eps) = 1 / (1 + eps) is the same linearisation at a uniform
    A; it needs the tokens' scale held fixed: unnormalised, X + eps A(X) X grows as (1 + eps)^l,
    which sharpens softmax(beta X X^T) towards hard attention, and the simulated tokens stop
    contracting (rate 1 after the growth is divided out; experiments/attention_clusters)."""
    _check_eps(eps)
    eps = jnp.asarray(eps, float)
    if residual == "mean_shift":
        return jnp.abs(1 - eps)
    if residual == "additive":
        return 1 / (1 + eps)
    raise ValueError(f"residual must be 'mean_shift' or 'additive'; got {residual!r}")


def rate(params: Params) -> Float[Array, ""]:
    """The per-layer contraction rate of the deviation from consensus for the simulator
    `models.attention` with these Params, with V = I (no `value`; draw is not "qkv"), layer by
    layer (integrator="layer"). Fixed P, without normalisation: exact, `attention_rate(P, eps=,
    residual=)`; softmax attention near consensus, for any Q and K (every score is equal there,
    so A(X) = 11^T / n): `softmax_rate(eps, residual)`. residual="none" is the layer X <- A X,
    the mean-shift rate at eps = 1. ValueError for the other static configurations."""
    if params.value is not None or params.draw == "qkv" or params.integrator != "layer":
        raise ValueError("rate needs V = I (no value, draw != 'qkv') and integrator='layer'")
    residual, eps = params.residual, params.eps
    if residual == "none":  # X <- A X = X + 1 (A X - X)
        residual, eps = "mean_shift", jnp.ones_like(jnp.asarray(eps))
    if params.attention == "softmax":
        return softmax_rate(eps, residual)
    if params.norm != "none":
        raise ValueError("the fixed-P rate is that of the linear layer: norm='none'")
    assert params.P is not None  # Params with attention="fixed" always carry P
    return attention_rate(params.P, eps=eps, residual=residual)


def closed_classes(P: Float[ArrayLike, "*batch n n"]) -> Array:
    """The number m of closed communicating classes of a nonnegative row-stochastic P: the
    clusters its fixed-P dynamics converge to (THEORY.md §3.1: a reducible P with m closed
    classes gives m clusters; an irreducible P gives m = 1, the single consensus point). From
    the reachability closure of P > 0 by repeated squaring."""
    array = concrete(P)
    if array is not None:
        if array.ndim < 2 or array.shape[-1] != array.shape[-2] or array.shape[-1] < 2:
            raise ValueError(f"P must be (..., n, n) with n >= 2 tokens; got shape {array.shape}")
        if not np.all(np.isfinite(array)) or np.any(array < 0):
            raise ValueError("P must have finite, nonnegative entries")
        sums = array.sum(-1)
        if np.max(np.abs(sums - 1)) > STOCHASTIC_RTOL:
            raise ValueError(f"P must be row-stochastic (row sums 1 within {STOCHASTIC_RTOL:g})")
    P = jnp.asarray(P)
    n = P.shape[-1]
    eye = jnp.broadcast_to(jnp.eye(n, dtype=P.dtype), P.shape)
    reach = jnp.minimum((P > 0).astype(P.dtype) + eye, 1.0)
    for _ in range(max(1, math.ceil(math.log2(n)))):
        reach = jnp.minimum(reach @ reach, 1.0)
    reach = reach > 0
    communicate = reach & jnp.swapaxes(reach, -1, -2)
    # i's class is closed iff everything i reaches also reaches i back.
    closed = jnp.all(~reach | communicate, axis=-1)
    first = jnp.argmax(communicate, axis=-1)
    first_member = first == jnp.broadcast_to(jnp.arange(n), first.shape)
    return jnp.sum(closed & first_member, axis=-1)


def rank_collapse_bound(
    residual: Float[ArrayLike, "*#batch"],
    *,
    layers: int,
    weight_norm: float | Float[ArrayLike, "*#batch"],
    heads: int = 1,
    gamma: float | Float[ArrayLike, "*#batch"] = 1.0,
) -> Float[Array, "*#batch"]:
    """The Dong-Cordonnier-Loukas bound (arXiv 2103.03404, Thm 2.2 and Cor. 2.3) on the
    residual of a pure self-attention network (no skip, no MLP) after `layers` layers:

        ||res(X_L)|| <= (4 gamma H w)^((3^L - 1) / 2) ||res(X_0)||^(3^L),

    res(X) = X - 1 x^T the distance to the nearest rank-one matrix with identical rows, in the
    composite norm sqrt(||.||_1 ||.||_inf) (`diagnostics.tokens.residual_norm`); w bounds
    ||W_QK||_1 ||W_V||_1,inf / sqrt(d_qk), which for softmax_row(beta (X Q)(X K)^T) X V is
    ||beta Q K^T||_1 ||V||_1,inf (= beta with Q = K = V = I); gamma is the paper's bounded term
    from the attention entries (their constant, not fixed in closed form; 1 by default). The
    bound is cubic per layer (doubly exponential in L) and only useful while
    4 gamma H w ||res||^2 < 1: near consensus the pure layer's residual map is
    r -> c r^3 (THEORY.md §3.3: the linear term 1 - eps vanishes at eps = 1)."""
    check_count("layers", layers, low=0)
    check_count("heads", heads)
    check_range("weight_norm", weight_norm, gt=0)
    check_range("gamma", gamma, gt=0)
    power = 3**layers
    constant = 4 * jnp.asarray(gamma, float) * heads * jnp.asarray(weight_norm, float)
    return constant ** ((power - 1) / 2) * jnp.asarray(residual, float) ** power
