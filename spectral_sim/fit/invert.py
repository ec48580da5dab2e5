"""Inverting a theory: the (s, a, sigma^2, C) for which the omnibus ridge predictor
(`spectral_sim.theory.ridge.ridge_risk`) fits an observed learning curve, differentiating
through its kappa solve, with bootstrap intervals over resampled points; and its profile along
s (the best fit at each fixed s), which shows every basin rather than the one a fit lands in."""

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

__all__ = ["INVERT_STARTS", "InvertedCurve", "ProfiledCurve", "invert_ridge_curve",
           "profile_ridge_curve"]  # fmt: skip


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


class ProfiledCurve(NamedTuple):
    """The profile of the inversion along s: at each s given, the (a, sigma^2, C) fitting the
    curve best with s held there, and that fit's `objective` (summed squared log residual)."""

    s: Float[Array, " grid"]
    a: Float[Array, " grid"]
    noise: Float[Array, " grid"]
    scale: Float[Array, " grid"]
    objective: Float[Array, " grid"]


def _objective(n, log_risk, ridge, noise, n_modes, fix_s: bool = False):
    """theta, weight -> the weighted squared log residual of C ridge_risk(PowerLaw(s, a)).
    `fix_s`: s without gradient (L-BFGS keeps its start), as a fixed noise (>= 0) leaves
    theta[2]."""

    def predicted(theta):
        if fix_s:
            theta = theta.at[0].set(jax.lax.stop_gradient(theta[0]))
        s, a, fitted, scale = _natural_curve(theta)
        spectrum = PowerLaw(s=s, a=a, n_modes=n_modes)
        # a fixed noise (>= 0) leaves theta[2] without gradient: L-BFGS keeps its start
        one = functools.partial(ridge_risk, spectrum, ridge=ridge,
                                noise=jnp.where(noise >= 0, noise, fitted))  # fmt: skip
        return jnp.log(scale) + jnp.log(jax.vmap(lambda m: one(n=m))(n))

    def objective(theta, weight):
        return weight @ (predicted(theta) - log_risk) ** 2

    return objective


@functools.partial(jax.jit, static_argnames=("n_modes", "steps"))
def _invert_fits(starts, n, log_risk, weights, ridge, noise, n_modes, steps):
    """Best of the starts for each row of weights (one bootstrap resample each): least squares
    of log(C ridge_risk) against log risk, one compiled optimisation (`best_of_starts`); the
    optima also as (s, a, sigma^2, C)."""
    objective = _objective(n, log_risk, ridge, noise, n_modes)
    theta, value, gradient = best_of_starts(objective, starts, weights, steps)
    return theta, jax.vmap(_natural_curve)(theta), value, gradient


@functools.partial(jax.jit, static_argnames=("n_modes", "steps"))
def _profile_fits(starts, n, log_risk, ridge, noise, n_modes, steps):
    """starts (grid, starts, 4), each grid row's starts at one s: per row the best fit with s
    held, as (s, a, sigma^2, C) and its objective."""
    objective = _objective(n, log_risk, ridge, noise, n_modes, fix_s=True)
    weights = jnp.ones((1, n.size), n.dtype)
    theta, value, _ = jax.vmap(lambda x0: best_of_starts(objective, x0, weights, steps))(starts)
    return jax.vmap(_natural_curve)(theta[:, 0]), value[:, 0]


def _checked(n, risk, ridge, noise, n_modes, starts):
    """The inputs of an inversion, checked: (n, risk) as host arrays, the starts' grid."""
    n_np, risk_np = check_points(("n", "risk"), n, risk, n_params=4)
    check_count("n_modes", n_modes, low=8)
    if ridge < 0:
        raise ValueError(f"ridge must be >= 0; got {ridge!r}")
    if noise is not None and not noise >= 0:
        raise ValueError(f"noise must be >= 0 (or None: fitted); got {noise!r}")
    starts = INVERT_STARTS if starts is None else starts
    if set(starts) != set(INVERT_STARTS) or min(min(v) for v in starts.values()) <= 0:
        raise ValueError(f"starts must give positive values for {sorted(INVERT_STARTS)}; got "
                         f"{starts!r}")  # fmt: skip
    if min(starts["a"]) <= 1:
        raise ValueError(f"starts must have a > 1; got {starts['a']}")
    grid = np.array(np.meshgrid(*(starts[k] for k in INVERT_STARTS), indexing="ij"))
    return n_np, risk_np, grid.reshape(3, -1).T


def _log_starts(grid: np.ndarray, host) -> np.ndarray:
    """(s, a, sigma^2) starts -> theta = (log s, log(a - 1), log sigma^2, log C = 0)."""
    return np.column_stack([np.log(grid[:, 0]), np.log(grid[:, 1] - 1), np.log(grid[:, 2]),
                            np.zeros(len(grid))]).astype(host)  # fmt: skip


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
    n_np, risk_np, grid = _checked(n, risk, ridge, noise, n_modes, starts)
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1); got {level!r}")
    check_count("n_boot", n_boot, low=0)
    check_count("boot_restarts", boot_restarts)
    host = np.dtype(jnp.result_type(float))  # float64, or float32 without x64
    x0 = _log_starts(grid, host)
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


def profile_ridge_curve(
    n: Float[ArrayLike, " points"],
    risk: Float[ArrayLike, " points"],
    s: Float[ArrayLike, " grid"],
    *,
    ridge: float = 0.0,
    noise: float | None = None,
    n_modes: int = 512,
    steps: int = LBFGS_STEPS,
    starts: dict[str, tuple[float, ...]] | None = None,
) -> ProfiledCurve:
    """The profile of `invert_ridge_curve` along s: at every s of the grid `s` (> 0), the best
    fit of C * ridge_risk(PowerLaw(s, a, n_modes), n, ridge, sigma^2) to the curve with s held
    there, over (a, sigma^2, C) from every start of `starts`' a and noise. Its minimum over a
    fine enough grid is the inversion's global optimum; a second basin of similar objective
    says the curve cannot tell those s apart. One compiled optimisation for the whole grid."""
    n_np, risk_np, grid = _checked(n, risk, ridge, noise, n_modes, starts)
    values = np.asarray(s, dtype=float)
    if values.ndim != 1 or values.size < 1 or not np.all(np.isfinite(values) & (values > 0)):
        raise ValueError(f"s must be a 1-d grid of values > 0; got {values!r}")
    host = np.dtype(jnp.result_type(float))
    rest = np.unique(grid[:, 1:], axis=0)  # the (a, sigma^2) starts; s comes from the grid
    x0 = np.stack([_log_starts(np.column_stack([np.full(len(rest), v), rest]), host)
                   for v in values])  # fmt: skip
    data = (n_np.astype(host), np.log(risk_np).astype(host))
    fixed = (host.type(ridge), host.type(-1.0 if noise is None else noise))
    natural, value = map(np.asarray, _profile_fits(x0, *data, *fixed, n_modes, steps))
    fitted = natural[:, 2] if noise is None else np.full(values.size, noise, host)
    put = jax.device_put
    return ProfiledCurve(put(natural[:, 0]), put(natural[:, 1]), put(fitted), put(natural[:, 3]),
                         put(value))  # fmt: skip
