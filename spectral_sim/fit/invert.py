"""Inverting a theory: the (s, a, sigma^2, C) for which the omnibus ridge predictor
(`spectral_sim.theory.ridge.ridge_risk`) fits an observed learning curve, differentiating
through its kappa solve, with bootstrap intervals over resampled points."""

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from spectral_sim._types import Array, ArrayLike, Bool, Float
from spectral_sim.checks import check_count
from spectral_sim.fit._common import (
    GRADIENT_TOL,
    LBFGS_STEPS,
    best_of_starts,
    check_points,
    resample_counts,
)
from spectral_sim.spectra import PowerLaw
from spectral_sim.theory.ridge import ridge_risk

__all__ = ["INVERT_STARTS", "InvertedCurve", "invert_ridge_curve"]


# Starting points of the inversion: every (s, a, sigma^2), with C = 1 (a noiseless curve needs a
# start near sigma^2 = 0: from 1e-2 the fit settles in a wrong (s, a)).
INVERT_STARTS = dict(s=(1.2, 2.0, 3.5), a=(1.5, 2.5, 4.0), noise=(1e-8, 1e-2))


class InvertedCurve(NamedTuple):
    """The (s, a, sigma^2, C) for which C * ridge_risk(PowerLaw(s, a), n, ridge, sigma^2) fits an
    observed excess-risk curve best (least squares on log risk); `*_ci` percentile bootstrap
    intervals over resampled points (NaN without bootstrap); `objective` the summed squared log
    residual at the optimum; `converged` whether its gradient norm fell below GRADIENT_TOL."""

    s: Float[Array, ""]
    a: Float[Array, ""]
    noise: Float[Array, ""]
    scale: Float[Array, ""]
    s_ci: Float[Array, "2"]
    a_ci: Float[Array, "2"]
    objective: Float[Array, ""]
    converged: Bool[Array, ""]
    level: float


def _natural_curve(theta: Array) -> Array:
    """(log s, log(a - 1), log sigma^2, log C) -> (s, a, sigma^2, C)."""
    return jnp.stack([jnp.exp(theta[0]), 1 + jnp.exp(theta[1]), jnp.exp(theta[2]),
                      jnp.exp(theta[3])])  # fmt: skip


@functools.partial(jax.jit, static_argnames=("n_modes", "steps"))
def _invert_fits(starts, n, log_risk, weights, ridge, noise, n_modes, steps):
    """Best of the starts for each row of weights (one bootstrap resample each): least squares
    of log(C ridge_risk) against log risk, one compiled optimisation (`best_of_starts`); the
    optima also as (s, a, sigma^2, C)."""

    def predicted(theta):
        s, a, fitted, scale = _natural_curve(theta)
        spectrum = PowerLaw(s=s, a=a, n_modes=n_modes)
        # a fixed noise (>= 0) leaves theta[2] without gradient: L-BFGS keeps its start
        one = functools.partial(ridge_risk, spectrum, ridge=ridge,
                                noise=jnp.where(noise >= 0, noise, fitted))  # fmt: skip
        return jnp.log(scale) + jnp.log(jax.vmap(lambda m: one(n=m))(n))

    def objective(theta, weight):
        return weight @ (predicted(theta) - log_risk) ** 2

    theta, value, gradient = best_of_starts(objective, starts, weights, steps)
    return theta, jax.vmap(_natural_curve)(theta), value, gradient


def invert_ridge_curve(
    n: Float[ArrayLike, " points"],
    risk: Float[ArrayLike, " points"],
    *,
    ridge: float = 0.0,
    noise: float | None = None,
    n_modes: int = 512,
    n_boot: int = 0,
    boot_restarts: int = 1,
    level: float = 0.95,
    seed: int = 0,
    steps: int = LBFGS_STEPS,
    starts: dict[str, tuple[float, ...]] | None = None,
) -> InvertedCurve:
    """Measure (s_eff, a_eff) by inverting the omnibus ridge predictor (THEORY.md §2.7): fit
    C * ridge_risk(PowerLaw(s, a, n_modes), n, ridge, sigma^2) to an observed excess-risk curve
    (samples n, risk), differentiating through the kappa solve, from every start in
    INVERT_STARTS or `starts` (the same keys; L-BFGS, optax). `noise` fixes sigma^2 where it
    is known (e.g. 0 for a noiseless target) instead of fitting it. With `n_boot`, percentile
    intervals from n_boot resamples of the points, each refitted from the full-data optimum and
    `boot_restarts - 1` further starts (as `chinchilla`)."""
    n_np, risk_np = check_points(("n", "risk"), n, risk, n_params=4)
    check_count("n_modes", n_modes, low=8)
    check_count("n_boot", n_boot, low=0)
    check_count("boot_restarts", boot_restarts)
    if ridge < 0:
        raise ValueError(f"ridge must be >= 0; got {ridge!r}")
    if noise is not None and not noise >= 0:
        raise ValueError(f"noise must be >= 0 (or None: fitted); got {noise!r}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1); got {level!r}")
    host = np.dtype(jnp.result_type(float))  # float64, or float32 without x64
    starts = INVERT_STARTS if starts is None else starts
    if set(starts) != set(INVERT_STARTS) or min(min(v) for v in starts.values()) <= 0:
        raise ValueError(f"starts must give positive values for {sorted(INVERT_STARTS)}; got "
                         f"{starts!r}")  # fmt: skip
    if min(starts["a"]) <= 1:
        raise ValueError(f"starts must have a > 1; got {starts['a']}")
    grid = np.array(np.meshgrid(*(starts[k] for k in INVERT_STARTS), indexing="ij"))
    grid = grid.reshape(3, -1).T
    x0 = np.column_stack([np.log(grid[:, 0]), np.log(grid[:, 1] - 1), np.log(grid[:, 2]),
                          np.zeros(len(grid))]).astype(host)  # fmt: skip
    # NumPy in, NumPy out: the compiled fit is the only program (an eager JAX operation on its
    # inputs or results would compile one more each)
    data = (n_np.astype(host), np.log(risk_np).astype(host))
    fixed = (host.type(ridge), host.type(-1.0 if noise is None else noise))
    theta, natural, value, gradient = map(np.asarray, _invert_fits(
        x0, *data, np.ones((1, n_np.size), host), *fixed, n_modes, steps))  # fmt: skip
    s_ci = a_ci = np.full(2, np.nan, host)
    if n_boot:
        spread = x0[:: max(1, x0.shape[0] // boot_restarts)][: boot_restarts - 1]
        weights = np.asarray(resample_counts(seed, n_boot, n_np.size, host))
        boot = np.asarray(_invert_fits(np.concatenate([theta, spread]), *data, weights, *fixed,
                                       n_modes, steps)[1])  # fmt: skip
        q = [50 * (1 - level), 100 - 50 * (1 - level)]
        s_ci, a_ci = (np.percentile(boot[:, i], q).astype(host) for i in (0, 1))
    s, a, fitted, scale = natural[0]
    if noise is not None:
        fitted = host.type(noise)
    put = jax.device_put  # JAX arrays as before, without a compile per field (jnp.asarray's)
    return InvertedCurve(put(s), put(a), put(fitted), put(scale), put(s_ci), put(a_ci),
                         put(value[0]), put(gradient[0] < GRADIENT_TOL), level)  # fmt: skip
