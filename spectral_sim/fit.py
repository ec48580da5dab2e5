"""Statistics for verdicts: power-law fits y ~ A x^-alpha in log-log space, standard errors of
seed means, and the z multiplier for m simultaneous comparisons."""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import ndtri

from spectral_sim._types import Array, ArrayLike, Float

__all__ = ["PowerLawFit", "power_law", "sem", "z_simultaneous"]


class PowerLawFit(NamedTuple):
    """y ~ prefactor * x^-exponent; stderr is the OLS standard error of the exponent (it reflects
    curvature, not noise, when y is deterministic)."""

    exponent: Float[Array, ""]
    prefactor: Float[Array, ""]
    stderr: Float[Array, ""]


def power_law(x: Float[ArrayLike, " n"], y: Float[ArrayLike, " n"]) -> PowerLawFit:
    """Least-squares fit of log y = log A - alpha log x on the given points (>= 3, all > 0)."""
    x_np, y_np = np.asarray(x), np.asarray(y)
    if x_np.shape != y_np.shape or x_np.ndim != 1 or x_np.size < 3:
        raise ValueError(
            f"x and y must be 1-d of equal length >= 3; got shapes {x_np.shape}, {y_np.shape}"
        )
    if not (np.all(np.isfinite(x_np)) and np.all(np.isfinite(y_np))):
        raise ValueError("x and y must be finite (a diverged run cannot be fitted)")
    if np.any(x_np <= 0) or np.any(y_np <= 0):
        raise ValueError("x and y must be > 0 for a power-law fit")
    return _power_law(jnp.asarray(x), jnp.asarray(y))


@jax.jit
def _power_law(x, y) -> PowerLawFit:
    lx, ly = jnp.log(x), jnp.log(y)
    dx = lx - lx.mean()
    slope = dx @ (ly - ly.mean()) / (dx @ dx)
    intercept = ly.mean() - slope * lx.mean()
    residual = ly - intercept - slope * lx
    stderr = jnp.sqrt(residual @ residual / (x.shape[0] - 2) / (dx @ dx))
    return PowerLawFit(-slope, jnp.exp(intercept), stderr)


def sem(x: Float[Array, "..."], axis: int = 0) -> Float[Array, "..."]:
    """Standard error of the mean along `axis` (sample std with ddof = 1 over sqrt(n))."""
    n = x.shape[axis]
    return jnp.std(x, axis=axis, ddof=1) / jnp.sqrt(n)


def z_simultaneous(m: int, alpha: float = 0.05) -> float:
    """Two-sided normal quantile for m comparisons at family-wise level alpha (Bonferroni)."""
    return float(ndtri(1 - alpha / (2 * max(m, 1))))
