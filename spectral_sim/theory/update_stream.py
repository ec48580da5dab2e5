"""Predictions for the synthetic update windows of `models.update_stream` (THEORY.md §5.2-5.3):
the limiting singular values sqrt(s_j^2 + sigma_xi^2) (j <= r) and sigma_xi beyond, the k* and
gap ratio they imply, and Wedin's sin-Theta bound on the recovered top-k right singular
subspace.

`singular_values(params)` and `gap(params)` take the simulator's Params (jax.vmap-able over a
stacked grid of them); `wedin_bound` takes one drawn window's singular values and noise norm.
"""

import jax.numpy as jnp

from spectral_sim._types import Array, Float, Int
from spectral_sim.checks import check_range
from spectral_sim.models.update_stream import Params

__all__ = ["gap", "singular_values", "wedin_bound"]


def singular_values(params: Params) -> Float[Array, " W"]:
    """sigma_j = sqrt(s_j^2 + sigma_xi^2) for the r signal directions (sorted), sigma_xi for the
    W - r others: the P >> W limit of the window's singular values."""
    s = jnp.sort(jnp.asarray(params.s))[::-1]
    noise2 = jnp.asarray(params.noise, s.dtype) ** 2
    tail = jnp.full(params.W - s.shape[0], jnp.sqrt(noise2), s.dtype)
    return jnp.concatenate([jnp.sqrt(s**2 + noise2), tail])


def gap(params: Params) -> tuple[Int[Array, ""], Float[Array, ""]]:
    """(k*, R*) of the limiting singular values (k* 1-based)."""
    sigma = singular_values(params)
    ratios = sigma[:-1] / sigma[1:]
    j = jnp.argmax(ratios)
    return j + 1, ratios[j]


def wedin_bound(
    singular_values_u: Float[Array, " W"], s: Float[Array, " r"], noise_op: Float[Array, ""], k
) -> Float[Array, ""]:
    """Wedin: ||sin Theta(V_hat_k, V_k)|| <= ||Xi||_op / (sigma_k(U) - s_(k+1)) (s_(r+1) = 0),
    for the top-k right singular subspace of U = C S V^T + Xi against V's first k columns;
    infinite (vacuous) when the denominator is not positive. ValueError unless k is an integer
    in [1, W]."""
    check_range("k", k, ge=1, le=jnp.shape(singular_values_u)[-1], integer=True)
    s = jnp.sort(jnp.asarray(s))[::-1]
    following = jnp.where(k < s.shape[0], s[jnp.minimum(k, s.shape[0] - 1)], 0.0)
    denominator = jnp.asarray(singular_values_u)[k - 1] - following
    return jnp.where(
        denominator > 0, noise_op / jnp.where(denominator > 0, denominator, 1), jnp.inf
    )
