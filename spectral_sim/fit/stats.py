"""Standard errors of seed means, and the normal quantile of m simultaneous comparisons (the
z of every claim's interval)."""

import jax.numpy as jnp
import numpy as np

from spectral_sim._types import Array, ArrayLike, Float

__all__ = ["sem", "z_simultaneous"]


def sem(x: Float[ArrayLike, "..."], axis: int = 0) -> Float[Array, "..."]:
    """Standard error of the mean along `axis` (sample std with ddof = 1 over sqrt(n))."""
    n = np.shape(x)[axis]
    return jnp.std(x, axis=axis, ddof=1) / jnp.sqrt(n)


def z_simultaneous(m: int, alpha: float = 0.05) -> float:
    """Two-sided normal quantile for m comparisons at family-wise level alpha (Bonferroni).

    From the upper tail in float64 (SciPy), so it stays finite for any m even when JAX runs in
    float32 (1 - alpha / 2m rounds to 1 in float32 beyond m ~ 1e6)."""
    from scipy.stats import norm

    return float(norm.isf(alpha / (2 * max(m, 1))))
