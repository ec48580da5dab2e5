"""Scaling laws over model size and data: Chinchilla-style L(N, D) = E + A N^-alpha + B D^-beta
fits (Hoffmann et al. 2022, Approach 3) with bootstrap intervals from one vmapped call over
resamples and restarts, and the compute-optimal frontier (N*, D*, L* per compute budget and
their exponents) of an iso-compute sweep."""

import functools
from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from spectral_sim._types import Array, ArrayLike, Bool, Float, Real
from spectral_sim.checks import check_count
from spectral_sim.fit._common import (
    GRADIENT_TOL,
    LBFGS_STEPS,
    best_of_starts,
    check_points,
    ols_fits,
    resample_counts,
)
from spectral_sim.fit.curves import PowerLawFit, power_law

__all__ = ["CHINCHILLA_GRID", "HUBER_DELTA", "ChinchillaFit", "Frontier", "chinchilla", "frontier"]


# --- L(N, D) = E + A N^-alpha + B D^-beta ("Approach 3" of Hoffmann et al. 2022) --------------

HUBER_DELTA = 1e-3  # Hoffmann et al. and the replication (Besiroglu et al. 2024)
# Hoffmann et al.'s grid of starting points (their Appendix D.2), in the log-sum-exp
# parameters (a, b, e, alpha, beta) with A = e^a, B = e^b, E = e^e.
CHINCHILLA_GRID = dict(
    a=(0.0, 5.0, 10.0, 15.0, 20.0, 25.0),
    b=(0.0, 5.0, 10.0, 15.0, 20.0, 25.0),
    e=(-1.0, -0.5, 0.0, 0.5, 1.0),
    alpha=(0.0, 0.5, 1.0, 1.5, 2.0),
    beta=(0.0, 0.5, 1.0, 1.5, 2.0),
)


class ChinchillaFit(NamedTuple):
    """L(N, D) = E + A N^-alpha + B D^-beta; `*_ci` are (low, high) percentile bootstrap
    intervals at `level` (NaN without bootstrap); `objective` the summed Huber loss at the
    optimum; `converged` whether its gradient norm fell below GRADIENT_TOL."""

    E: Float[Array, ""]
    A: Float[Array, ""]
    B: Float[Array, ""]
    alpha: Float[Array, ""]
    beta: Float[Array, ""]
    E_ci: Float[Array, "2"]
    A_ci: Float[Array, "2"]
    B_ci: Float[Array, "2"]
    alpha_ci: Float[Array, "2"]
    beta_ci: Float[Array, "2"]
    objective: Float[Array, ""]
    converged: Bool[Array, ""]
    level: float


def _huber(r, delta):
    return jnp.where(jnp.abs(r) <= delta, 0.5 * r**2, delta * (jnp.abs(r) - 0.5 * delta))


def _chinchilla_objective(theta, log_n, log_d, log_l, weight, delta):
    """Summed (not averaged: the replication traced Hoffmann et al.'s early stop to averaging)
    Huber loss of log L against LSE(a - alpha log N, b - beta log D, e)."""
    a, b, e, alpha, beta = theta
    terms = jnp.stack([a - alpha * log_n, b - beta * log_d, jnp.broadcast_to(e, log_n.shape)])
    predicted = jax.scipy.special.logsumexp(terms, axis=0)
    return weight @ _huber(predicted - log_l, delta)


@functools.partial(jax.jit, static_argnames=("steps",))
def _chinchilla_fits(starts, log_n, log_d, log_l, weights, delta, steps):
    """Best of the starts for each row of weights (one bootstrap resample each): one compiled
    optimisation over resamples x starts (`best_of_starts`)."""
    objective = functools.partial(_chinchilla_objective, log_n=log_n, log_d=log_d, log_l=log_l,
                                  delta=delta)  # fmt: skip
    return best_of_starts(objective, starts, weights, steps)


def _chinchilla_starts(grid: dict, dtype) -> Float[Array, "starts 5"]:
    mesh = np.meshgrid(*(grid[k] for k in ("a", "b", "e", "alpha", "beta")), indexing="ij")
    return jnp.asarray(np.stack([m.ravel() for m in mesh], axis=-1), dtype)


def chinchilla(
    N: Float[ArrayLike, " n"] | Sequence[float],
    D: Float[ArrayLike, " n"] | Sequence[float],
    L: Float[ArrayLike, " n"] | Sequence[float],
    *,
    n_boot: int = 0,
    boot_restarts: int = 1,
    level: float = 0.95,
    seed: int = 0,
    grid: dict | None = None,
    delta: float = HUBER_DELTA,
    steps: int = LBFGS_STEPS,
) -> ChinchillaFit:
    """Fit L = E + A N^-alpha + B D^-beta as Hoffmann et al.'s Approach 3: Huber loss (delta)
    on log L against LSE(a - alpha log N, b - beta log D, e), L-BFGS from every point of
    `grid` (default CHINCHILLA_GRID, 4500 starts), best start kept.

    With `n_boot`, percentile intervals at `level` from n_boot resamples of the points (drawn
    from `seed`), each refitted from the full-data optimum and `boot_restarts - 1` further
    grid points, all in one vmapped call.
    """
    n, d, loss = check_points(("N", "D", "L"), N, D, L, n_params=5)
    check_count("n_boot", n_boot, low=0)
    check_count("boot_restarts", boot_restarts)
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1); got {level!r}")
    dtype = jnp.result_type(float)
    starts = _chinchilla_starts(grid or CHINCHILLA_GRID, dtype)
    data = [jnp.asarray(np.log(x), dtype) for x in (n, d, loss)]
    theta, value, gradient = _chinchilla_fits(
        starts, *data, jnp.ones((1, n.size), dtype), delta, steps
    )
    ci = jnp.full((5, 2), jnp.nan, dtype)
    if n_boot:
        spread = starts[:: max(1, starts.shape[0] // boot_restarts)][: boot_restarts - 1]
        boot_starts = jnp.concatenate([theta, spread])
        weights = resample_counts(seed, n_boot, n.size, dtype)
        boot = _chinchilla_fits(boot_starts, *data, weights, delta, steps)[0]
        tail = 100 * (1 - level) / 2
        ci = jnp.percentile(_natural(boot), jnp.array([tail, 100 - tail]), axis=0).T
    return ChinchillaFit(
        *_natural(theta)[0], *ci, objective=value[0], converged=gradient[0] < GRADIENT_TOL,
        level=level,
    )  # fmt: skip


def _natural(theta: Float[Array, "fits 5"]) -> Float[Array, "fits 5"]:
    """(a, b, e, alpha, beta) -> (E, A, B, alpha, beta)."""
    a, b, e, alpha, beta = theta.T
    return jnp.stack([jnp.exp(e), jnp.exp(a), jnp.exp(b), alpha, beta], axis=-1)


# --- the compute-optimal frontier -----------------------------------------------------------


class Frontier(NamedTuple):
    """Per compute budget C (rows of an iso-compute sweep): the loss-minimising model size N*,
    data D* = C / N* and loss L*, with percentile bootstrap intervals over seeds (`*_ci`, rows x
    (low, high); NaN without seeds or bootstrap); `interior` is False where the minimum sat on
    the edge of the row's N range (N* is then only a bound). The allocation and loss exponents
    are power-law fits over the interior rows: N* ~ C^n_exponent, D* ~ C^d_exponent,
    L* ~ C^-loss_exponent."""

    compute: Float[Array, " rows"]
    n_star: Float[Array, " rows"]
    d_star: Float[Array, " rows"]
    loss_star: Float[Array, " rows"]
    n_star_ci: Float[Array, "rows 2"]
    loss_star_ci: Float[Array, "rows 2"]
    interior: Bool[Array, " rows"]
    n_exponent: PowerLawFit
    d_exponent: PowerLawFit
    loss_exponent: PowerLawFit


def _vertices(log_n: np.ndarray, loss: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, ...]:
    """Every row's minimum for every seed weighting (rows of `weights`), refined by the parabola
    in log N through the smallest loss and its neighbours: log N*, L* and whether the minimum is
    interior, each (weightings, rows). NumPy on the host, like the fits of the exponents."""
    mean = np.moveaxis(loss @ weights.T, -1, 0) / weights.sum(1)[:, None, None]  # w, rows, cols
    log_n = np.broadcast_to(log_n, mean.shape)
    i = np.argmin(mean, axis=-1)[..., None]
    interior = (i > 0) & (i < mean.shape[-1] - 1)
    near = np.clip(i, 1, mean.shape[-1] - 2) + np.arange(-1, 2)
    x, y = np.take_along_axis(log_n, near, -1), np.take_along_axis(mean, near, -1)
    u = x - x[..., 1:2]
    vandermonde = np.stack([u**2, u, np.ones_like(u)], axis=-1)  # the parabola through all three
    a, b, c = np.moveaxis(np.linalg.solve(vandermonde, y[..., None])[..., 0], -1, 0)[..., None]
    with np.errstate(divide="ignore", invalid="ignore"):
        shift = np.where(a > 0, np.clip(-b / (2 * a), u[..., :1], u[..., 2:]), 0.0)
    best_x = np.where(interior, x[..., 1:2] + shift, np.take_along_axis(log_n, i, -1))
    best_y = np.where(interior, a * shift**2 + b * shift + c, np.take_along_axis(mean, i, -1))
    return best_x[..., 0], best_y[..., 0], interior[..., 0]


def frontier(
    n: Real[ArrayLike, "rows cols"],
    loss: Float[ArrayLike, "rows cols *seeds"],
    compute: Float[ArrayLike, " rows"],
    *,
    n_boot: int = 0,
    level: float = 0.95,
    seed: int = 0,
) -> Frontier:
    """The compute-optimal frontier of an iso-compute sweep: row r holds model sizes n[r] (any
    increasing values) trained at data C_r / n, with losses loss[r] (and a trailing seeds axis,
    averaged; with `n_boot`, seeds are resampled for intervals of N*, L* and the exponents).
    Each row's minimum is refined by a parabola in log N; the exponents are fitted over the rows
    whose minimum is interior (in the full-sample fit, for every resample)."""
    n_np, compute_np = np.asarray(n, float), np.asarray(compute, float)
    loss_np = np.asarray(loss, float)
    if loss_np.ndim == 2:
        loss_np = loss_np[..., None]
    if n_np.ndim != 2 or loss_np.shape[:2] != n_np.shape or compute_np.shape != n_np.shape[:1]:
        raise ValueError(
            f"need n (rows, cols), loss (rows, cols[, seeds]) and compute (rows,); got "
            f"{n_np.shape}, {np.shape(loss)}, {compute_np.shape}"
        )
    if n_np.shape[1] < 3:
        raise ValueError(f"each row needs >= 3 model sizes to bracket a minimum; got {n_np.shape}")
    for name, a in (("n", n_np), ("loss", loss_np), ("compute", compute_np)):
        if not np.all(np.isfinite(a)) or np.any(a <= 0):
            raise ValueError(f"{name} must be finite and > 0 (a diverged run cannot be fitted)")
    if np.any(np.diff(n_np, axis=1) <= 0):
        raise ValueError("each row of n must be strictly increasing")
    check_count("n_boot", n_boot, low=0)
    seeds, host = loss_np.shape[-1], np.dtype(jnp.result_type(float))
    weights = np.ones((1, seeds), host)
    if n_boot and seeds > 1:
        counts = np.asarray(resample_counts(seed, n_boot, seeds, host))
        weights = np.concatenate([weights, counts])
    log_n, best, interior = _vertices(np.log(n_np).astype(host), loss_np.astype(host), weights)
    n_star, loss_star, inside = np.exp(log_n[0]), best[0], interior[0]
    q = [50 * (1 - level), 100 - 50 * (1 - level)]
    if weights.shape[0] > 1:
        n_ci = np.percentile(np.exp(log_n[1:]), q, axis=0).T
        loss_ci = np.percentile(best[1:], q, axis=0).T
    else:
        n_ci = loss_ci = np.full((compute_np.size, 2), np.nan)
    if inside.sum() < 3:
        raise ValueError(
            f"only {int(inside.sum())} rows have an interior minimum; widen the N range of the "
            "rows so that the frontier is bracketed"
        )
    c_in = compute_np[inside]
    fits = [
        power_law(c_in, v) for v in (1 / n_star[inside], n_star[inside] / c_in, loss_star[inside])
    ]  # N* ~ C^xi is fitted as 1/N* ~ C^-xi, so every exponent is reported with its sign
    if weights.shape[0] > 1:  # seed-bootstrap intervals: every resample's rows refitted at once
        log_c = np.log(c_in).astype(host)
        log_n_in = log_n[1:, inside]
        targets = (-log_n_in, log_n_in - log_c[None], np.log(best[1:, inside]))
        ones = np.ones((1, c_in.size), host)
        fits = [
            fitted._replace(
                exponent_ci=jax.device_put(np.percentile(
                    [ols_fits(log_c, y, ones)[0][0] for y in target], q).astype(host)),
                level=level,
            )
            for fitted, target in zip(fits, targets, strict=True)
        ]  # fmt: skip
    arrays = (compute_np, n_star, compute_np / n_star, loss_star, n_ci, loss_ci, inside)
    return Frontier(*(jax.device_put(x) for x in arrays), *fits)
