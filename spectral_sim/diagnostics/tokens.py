"""Measurements of token configurations X in R^{n x d} and of their distance-to-consensus
records (THEORY.md §3.4): effective rank, clusters at a tolerance, the first layer with one
cluster, per-layer contraction ratios, the late-window asymptotic rate and the rank-collapse
residual of Dong, Cordonnier and Loukas."""

import math

import jax.numpy as jnp
import numpy as np

from spectral_sim._types import Array, ArrayLike, Bool, Float, Int
from spectral_sim.checks import check_range

__all__ = [
    "asymptotic_rate",
    "cluster_count",
    "contraction_ratios",
    "effective_rank",
    "first_layer",
    "residual_norm",
]


def effective_rank(
    x: Float[ArrayLike, "*batch n d"], centre: bool = True
) -> Float[Array, "*batch"]:
    """exp(entropy of sigma / sum sigma) over the singular values of X (Roy and Vetterli 2007),
    with the token mean removed first when `centre`: 1 for tokens on a line through their mean,
    min(n - 1, d) for tokens spread evenly; 0 when every token is at one point."""
    x = jnp.asarray(x)
    if centre:
        x = x - x.mean(-2, keepdims=True)
    sigma = jnp.linalg.svd(x, compute_uv=False)
    total = sigma.sum(-1, keepdims=True)
    p = sigma / jnp.where(total > 0, total, 1.0)
    entropy = -jnp.sum(jnp.where(p > 0, p * jnp.log(jnp.where(p > 0, p, 1.0)), 0.0), axis=-1)
    return jnp.where(total[..., 0] > 0, jnp.exp(entropy), 0.0)


def cluster_count(x: Float[ArrayLike, "*batch n d"], tol: float) -> Int[Array, "*batch"]:
    """The number of clusters at tolerance `tol`: connected components of the graph joining
    tokens closer than tol (single linkage), by repeated squaring of the adjacency."""
    check_range("tol", tol, gt=0)
    x = jnp.asarray(x)
    n = x.shape[-2]
    distance = jnp.linalg.norm(x[..., :, None, :] - x[..., None, :, :], axis=-1)
    reach = (distance < tol).astype(x.dtype)
    for _ in range(max(1, math.ceil(math.log2(n)))):  # paths of length up to 2^k
        reach = jnp.minimum(reach @ reach, 1.0)
    first_member = jnp.argmax(reach > 0, axis=-1)  # the smallest index in each token's cluster
    return jnp.sum(first_member == jnp.broadcast_to(jnp.arange(n), first_member.shape), axis=-1)


def first_layer(
    condition: Bool[ArrayLike, "*batch records"], steps: Int[ArrayLike, " records"]
) -> Int[Array, "*batch"]:
    """The first recorded step at which `condition` holds (e.g. cluster_count == 1), -1 if it
    never does."""
    condition = jnp.asarray(condition)
    hit = jnp.argmax(condition, axis=-1)
    return jnp.where(condition.any(-1), jnp.asarray(steps)[hit], -1)


def contraction_ratios(
    distance: Float[ArrayLike, "*batch layers"],
) -> Float[Array, "*batch layers-1"]:
    """distance_(l+1) / distance_l per recorded layer (the per-layer contraction)."""
    distance = jnp.asarray(distance)
    return distance[..., 1:] / distance[..., :-1]


def asymptotic_rate(
    distance: Float[ArrayLike, "*batch records"], steps, first: int, last: int
) -> Float[Array, "*batch"]:
    """(||D_last|| / ||D_first||)^(1 / (last - first)) between two recorded layers (THEORY.md
    §3.4): read it late in a run whose consensus mode is projected out; a subdominant mode with
    rate r_2 biases it by about (r_2 / r)^first."""
    steps = np.asarray(steps)
    if first not in steps or last not in steps or not first < last:
        raise ValueError(f"first < last must both be recorded steps; got {first}, {last}")
    i, j = int(np.flatnonzero(steps == first)[0]), int(np.flatnonzero(steps == last)[0])
    distance = jnp.asarray(distance)
    return (distance[..., j] / distance[..., i]) ** (1 / (last - first))


def residual_norm(x: Float[ArrayLike, "*batch n d"]) -> Float[Array, "*batch"]:
    """||X - 1 m^T||_1,inf = sqrt(||R||_1 ||R||_inf) (max column sum times max row sum of |R|),
    the residual of Dong, Cordonnier and Loukas (arXiv 2103.03404) with m the column medians,
    the minimiser of the ||.||_1 factor: an upper bound on their minimum over m (the two
    factors' minimisers differ), and zero exactly when every token is at one point."""
    x = jnp.asarray(x)
    r = jnp.abs(x - jnp.median(x, axis=-2, keepdims=True))
    return jnp.sqrt(r.sum(-2).max(-1) * r.sum(-1).max(-1))
