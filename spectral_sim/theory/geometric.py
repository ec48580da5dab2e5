"""Gradient flow on a geometric spectrum lambda_k = rho^-k with w*_k = 1 ([P1]'s "latent number";
THEORY.md §2.11): L(t) = 1/2 sum_k rho^-k exp(-2 rho^-k t) = t^-1 F(ln t mod ln rho).

With u_k = 2 rho^-k t, t L(t) = 1/4 sum_k u_k exp(-u_k) samples g(x) = e^x exp(-e^x) on a lattice
of spacing ln rho in x = ln u; by Poisson summation the sum is
(1/ln rho) sum_m Gamma(1 - 2 pi i m / ln rho) e^(2 pi i m x_0 / ln rho). So the exponent is 1 for
every rho, the level is 1/(4 ln rho), and the log-periodic ripple has relative amplitude
2 |Gamma(1 + 2 pi i m / ln rho)| in harmonic m, |Gamma(1 + i y)|^2 = pi y / sinh(pi y) ([E] for
the two-sided lattice; a finite spectrum adds edge terms when t nears rho or rho^M).

These are formulas of rho alone, not of a simulator's Params: the finite-M loss itself is
`theory.linear.gf(linear.Params(Geometric(rho, n_modes)), t)`.
"""

import jax.numpy as jnp

from spectral_sim._types import Array, Float, Scalar
from spectral_sim.checks import check_range

__all__ = ["geometric_level", "geometric_ripple"]


def geometric_level(rho: Scalar) -> Float[Array, ""]:
    """The period average of t L(t): 1 / (4 ln rho). It diverges as rho -> 1, where the spectrum
    stops being normalisable; the exponent does not change."""
    check_range("rho", rho, gt=1)
    return 1 / (4 * jnp.log(jnp.asarray(rho, float)))


def geometric_ripple(rho: Scalar, harmonic: int = 1) -> Float[Array, ""]:
    """Relative amplitude of harmonic m of the log-periodic ripple of t L(t):
    2 |Gamma(1 + 2 pi i m / ln rho)| = 2 sqrt(pi y / sinh(pi y)), y = 2 pi m / ln rho.
    (2e-5 peak to peak at rho = 2, 1.7 % at rho = 4: THEORY.md §2.11.)"""
    check_range("rho", rho, gt=1)
    y = 2 * jnp.pi * harmonic / jnp.log(jnp.asarray(rho, float))
    # pi y / sinh(pi y) = 2 pi y e^(-pi y) / (1 - e^(-2 pi y)), stable for large y
    return 2 * jnp.sqrt(2 * jnp.pi * y * jnp.exp(-jnp.pi * y) / -jnp.expm1(-2 * jnp.pi * y))
