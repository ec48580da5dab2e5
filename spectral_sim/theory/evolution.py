"""Generalised spectral evolution ([P3]; THEORY.md §2.10):
L(t) = 1/2 sum_k v_k^2 exp(-2 g(lambda_k, t)) with g = scale * lambda^p t^q,
elasticity rho = (d ln g / d ln lambda) / (d ln g / d ln t) = p/q,
learning frontier g(lambda*, t) = 1, loss exponent (a - 1)/(s rho) and tail-dominance constant.

Also the exact gradient flow of the diagonal linear network w = u * v (u = v = alpha at t = 0) on
the same quadratic loss, the simplest model whose elasticity is not put in by hand:
dw_k/dt = -2 lambda_k w_k (w_k - w*_k), a logistic curve per mode.

Functions take `rho` and optionally the time exponent `q` and `scale` (so p = rho q); all are
jittable and vmappable over the spectrum's traced fields, rho, q and scale.
"""

import jax.numpy as jnp
from jax.scipy.special import gamma

from spectral_sim._types import Array, ArrayLike, Float, Scalar, check_range
from spectral_sim.spectra import PowerLaw, Spectrum
from spectral_sim.theory.linear import _exponent_c

__all__ = [
    "diagonal_frontier",
    "diagonal_loss",
    "diagonal_rho",
    "evolution_asymptote",
    "evolution_exponent",
    "evolution_frontier",
    "evolution_loss",
    "evolution_tail_limit",
    "evolution_tail_loss",
    "preconditioned_gd_loss",
]


def _check(rho, q, scale) -> None:
    check_range("rho", rho, gt=0)
    check_range("q", q, gt=0)
    check_range("scale", scale, gt=0)


def _outer(t: ArrayLike, lam: Array) -> tuple[Array, Array]:
    """t with a trailing modes axis and lam with t's rank (strict rank promotion)."""
    t = jnp.asarray(t, lam.dtype)
    return t[..., None], lam.reshape((1,) * t.ndim + lam.shape[-1:])


def evolution_loss(
    spectrum: Spectrum,
    *,
    t: Float[ArrayLike, "*records"],
    rho: Scalar,
    q: Scalar = 1.0,
    scale: Scalar = 1.0,
) -> Float[Array, "*records"]:
    """L(t) = 1/2 sum_k v_k^2 exp(-2 scale lambda_k^(rho q) t^q), exact for the evolution
    g = scale lambda^p t^q with elasticity rho = p/q (THEORY.md §2.10). rho = q = scale = 1 is
    gradient flow; `models.evolution.preconditioned` realises g = lambda^rho t exactly."""
    _check(rho, q, scale)
    check_range("t", t, ge=0)
    lam = spectrum.eigenvalues()
    t, lam = _outer(t, lam)
    g = scale * lam ** (rho * q) * t**q
    return 0.5 * jnp.exp(-2 * g) @ spectrum.target_power()


def preconditioned_gd_loss(
    spectrum: Spectrum, *, rho: Scalar, lr: Scalar, steps: Float[ArrayLike, "*records"]
) -> Float[Array, "*records"]:
    """L_n = 1/2 sum_k v_k^2 (1 - lr lambda_k^rho)^(2n): GD with preconditioner lambda^(rho - 1)
    after n steps from w = 0 ([E]; `models.evolution.preconditioned`). It tends to
    `evolution_loss(t = lr n)` as lr -> 0 and is stable iff lr lambda_max^rho < 2."""
    check_range("rho", rho, gt=0)
    check_range("lr", lr, gt=0)
    check_range("steps", steps, ge=0)
    lam = spectrum.eigenvalues()
    steps, lam = _outer(steps, lam)
    return 0.5 * ((1 - lr * lam**rho) ** 2) ** steps @ spectrum.target_power()


def evolution_frontier(
    spectrum: Spectrum,
    *,
    t: Float[ArrayLike, "*records"],
    rho: Scalar,
    q: Scalar = 1.0,
    scale: Scalar = 1.0,
) -> tuple[Float[Array, "*records"], Float[Array, "*records"]]:
    """The learning frontier lambda*(t) = (scale t^q)^(-1/p) where g(lambda*, t) = 1, and
    k*(t) = #{k : lambda_k >= lambda*(t)}, which grows as t^(1/(s rho)) on a power law."""
    _check(rho, q, scale)
    check_range("t", t, gt=0)
    lam = spectrum.eigenvalues()
    t = jnp.asarray(t, lam.dtype)
    lam_star = (scale * t**q) ** (-1 / (rho * q))
    row, lam = _outer(lam_star, lam)
    return lam_star, jnp.sum((lam >= row).astype(lam.dtype), axis=-1)


def evolution_tail_loss(
    spectrum: Spectrum,
    *,
    t: Float[ArrayLike, "*records"],
    rho: Scalar,
    q: Scalar = 1.0,
    scale: Scalar = 1.0,
) -> Float[Array, "*records"]:
    """1/2 sum_{k > k*(t)} v_k^2, the energy beyond the frontier ([P3] Prop. 2's tail)."""
    lam_star, _ = evolution_frontier(spectrum, t=t, rho=rho, q=q, scale=scale)
    row, lam = _outer(lam_star, spectrum.eigenvalues())
    return 0.5 * (lam < row).astype(lam.dtype) @ spectrum.target_power()


def evolution_exponent(spectrum: PowerLaw, *, rho: Scalar) -> Float[Array, ""]:
    """(a - 1)/(s rho): L(t) ~ t^-(a-1)/(s rho) for any time exponent q ([A], §2.10)."""
    check_range("rho", rho, gt=0)
    return jnp.asarray(_exponent_c(spectrum) / rho)


def evolution_asymptote(
    spectrum: PowerLaw,
    *,
    t: Float[ArrayLike, "*records"],
    rho: Scalar,
    q: Scalar = 1.0,
    scale: Scalar = 1.0,
) -> Float[Array, "*records"]:
    """L(t) ~ Gamma(c) (2 tau)^-c / (2 s p) with p = rho q, c = (a - 1)/(s p), tau = scale t^q
    (the integral of 1/2 x^-a exp(-2 x^(-s p) tau) over x; infinite spectrum, k*(t) >> 1, [A])."""
    _check(rho, q, scale)
    check_range("t", t, gt=0)
    p = rho * q
    c = _exponent_c(spectrum) / p
    tau = scale * jnp.asarray(t, jnp.result_type(c, float)) ** q
    return gamma(c) * (2 * tau) ** -c / (2 * spectrum.s * p)


def evolution_tail_limit(spectrum: PowerLaw, *, rho: Scalar, q: Scalar = 1.0) -> Float[Array, ""]:
    """Gamma(1 + c) 2^-c with c = (a - 1)/(s rho q): the limit of L(t) / evolution_tail_loss
    as k*(t) -> inf on an infinite spectrum ([P3] Prop. 2 with its constant; §2.10). It depends on
    p = rho q, not on rho alone; for q = 1 it is `tail_dominance_limit(spectrum, rho)`."""
    check_range("rho", rho, gt=0)
    check_range("q", q, gt=0)
    c = _exponent_c(spectrum) / (rho * q)
    return gamma(1 + c) * 2.0**-c


# --- the diagonal linear network -------------------------------------------------------------


def diagonal_loss(
    spectrum: Spectrum, *, t: Float[ArrayLike, "*records"], init: Scalar
) -> Float[Array, "*records"]:
    """Exact GF loss of w = u * v from u = v = init on L = 1/2 sum lambda_k (w_k - w*_k)^2
    (w*_k > 0): each mode follows the logistic curve
        w_k(t) = w*_k / (1 + (w*_k / init^2 - 1) exp(-2 lambda_k w*_k t))     ([E])."""
    check_range("init", init, gt=0)
    check_range("t", t, ge=0)
    lam, target = spectrum.eigenvalues(), spectrum.target()
    t, lam = _outer(t, lam)
    rate = lam * target.reshape(lam.shape)
    odds = (target / init**2 - 1).reshape(lam.shape)
    # w - w* = -w* odds e / (1 + odds e), e = exp(-2 rate t)
    decay = odds * jnp.exp(-2 * rate * t)
    return 0.5 * (decay / (1 + decay)) ** 2 @ spectrum.target_power()


def diagonal_frontier(
    spectrum: Spectrum, *, t: Float[ArrayLike, "*records"], init: Scalar
) -> Float[Array, "*records"]:
    """k*(t) = #{k : w_k(t) >= w*_k / 2}: mode k crosses half its target at
    t_k = ln(w*_k / init^2 - 1) / (2 lambda_k w*_k) (0 for modes that start above half)."""
    check_range("init", init, gt=0)
    check_range("t", t, ge=0)
    lam, target = spectrum.eigenvalues(), spectrum.target()
    half = jnp.log(jnp.maximum(target / init**2 - 1, 1.0)) / (2 * lam * target)
    t, half = _outer(t, half)
    return jnp.sum((half <= t).astype(half.dtype), axis=-1)


def diagonal_rho(spectrum: PowerLaw) -> Float[Array, ""]:
    """Leading-order elasticity of the diagonal network, (s + a)/(2 s): its learning rate per mode
    is lambda_k w*_k = k^-(s+a)/2 = lambda_k^((s+a)/(2s)), so k*(t) ~ t^(2/(s+a)) up to the slowly
    varying ln(w*_k / init^2) (exactly constant when a = s). Our derivation, not [P3]'s."""
    if not isinstance(spectrum, PowerLaw):
        raise TypeError(f"diagonal_rho needs a PowerLaw spectrum; got {type(spectrum).__name__}")
    return jnp.asarray((spectrum.s + spectrum.a) / (2 * spectrum.s))
