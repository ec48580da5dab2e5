"""Generalised spectral evolution ([P3]; THEORY.md §2.10):
L(t) = 1/2 sum_k v_k^2 exp(-2 g(lambda_k, t)) with g = scale * lambda^p t^q,
elasticity rho = (d ln g / d ln lambda) / (d ln g / d ln t) = p/q,
learning frontier g(lambda*, t) = 1, loss exponent (a - 1)/(s rho) and tail-dominance constant.

Also the exact gradient flow of the diagonal linear network w = u * v (u = v = alpha at t = 0) on
the same quadratic loss, the simplest model whose elasticity is not put in by hand:
dw_k/dt = -2 lambda_k w_k (w_k - w*_k), a logistic curve per mode.

Params forms: the predictors of `models.evolution`'s simulators take its Params first and the
record axis second, and are named after the simulator: `flow(params, t)` (the loss of
`models.evolution.flow`), `preconditioned(params, steps)` (of `preconditioned`) and
`diagonal(params, t)` (the diagonal network's gradient flow, which `diagonal` approaches at
t = lr n). Each is jax.vmap-able over a stacked grid of Params. The keyword forms
(`evolution_loss`, `preconditioned_gd_loss`, `diagonal_loss`) build the Params and call them:
g = scale lambda^(rho q) t^q is the flow of elasticity rho q at time scale t^q. The frontiers,
tail energies, asymptotes, exponents and limits, which no simulator records as such, take the
spectrum, `rho` and optionally the time exponent `q` and `scale` (so p = rho q).

All are jittable and vmappable over the spectrum's traced fields, rho, q and scale.
"""

import jax.numpy as jnp
from jax.scipy.special import gamma

from spectral_sim._types import Array, ArrayLike, Float, Real, Scalar
from spectral_sim.checks import check_range, warn_unstable
from spectral_sim.models.evolution import Params
from spectral_sim.spectra import PowerLaw, Spectrum
from spectral_sim.theory.linear import gf_exponent

__all__ = [
    "diagonal",
    "diagonal_frontier",
    "diagonal_loss",
    "diagonal_rho",
    "evolution_asymptote",
    "evolution_exponent",
    "evolution_frontier",
    "evolution_loss",
    "evolution_tail_limit",
    "evolution_tail_loss",
    "flow",
    "preconditioned",
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


def flow(params: Params, t: Float[ArrayLike, "*records"]) -> Float[Array, "*records"]:
    """L(t) = 1/2 sum_k v_k^2 exp(-2 lambda_k^rho t) ([E], THEORY.md §2.10): the loss of
    `models.evolution.flow` with the same Params, the evolution g = lambda^rho t of elasticity
    rho (init and lr do not enter)."""
    check_range("t", t, ge=0)
    t, lam = _outer(t, params.spectrum.eigenvalues())
    return 0.5 * jnp.exp(-2 * lam**params.rho * t) @ params.spectrum.target_power()


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
    gradient flow; `models.evolution.preconditioned` realises g = lambda^rho t exactly. It is
    `flow(Params(spectrum, rho=rho q), scale t^q)`."""
    _check(rho, q, scale)
    check_range("t", t, ge=0)
    t = jnp.asarray(t, spectrum.eigenvalues().dtype)
    return flow(Params(spectrum, rho=rho * q), scale * t**q)


def preconditioned(params: Params, steps: Real[ArrayLike, "*records"]) -> Float[Array, "*records"]:
    """L_n = 1/2 sum_k v_k^2 (1 - lr lambda_k^rho)^(2n) ([E]): the loss of
    `models.evolution.preconditioned` with the same Params after n = `steps` updates from w = 0.
    It tends to `flow(params, lr n)` as lr -> 0 and is stable iff lr lambda_max^rho < 2 (past
    that, a RuntimeWarning naming lr). ValueError unless steps are integers >= 0."""
    check_range("steps", steps, ge=0, integer=True)
    edge = params.lr * jnp.max(params.spectrum.eigenvalues() ** params.rho)
    warn_unstable("preconditioned GD", params.lr, edge, 2.0, "lr lambda_max^rho")
    steps, lam = _outer(steps, params.spectrum.eigenvalues())
    decay = (1 - params.lr * lam**params.rho) ** 2
    return 0.5 * decay**steps @ params.spectrum.target_power()


def preconditioned_gd_loss(
    spectrum: Spectrum, *, rho: Scalar, lr: Scalar, steps: Real[ArrayLike, "*records"]
) -> Float[Array, "*records"]:
    """L_n = 1/2 sum_k v_k^2 (1 - lr lambda_k^rho)^(2n): GD with preconditioner lambda^(rho - 1)
    after n steps from w = 0 ([E]): `preconditioned(Params(spectrum, rho=rho, lr=lr), steps)`.
    It tends to `evolution_loss(t = lr n)` as lr -> 0 and is stable iff lr lambda_max^rho < 2."""
    return preconditioned(Params(spectrum, rho=rho, lr=lr), steps)


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
    return jnp.asarray(gf_exponent(spectrum) / rho)


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
    c = gf_exponent(spectrum) / p
    tau = scale * jnp.asarray(t, jnp.result_type(c, float)) ** q
    return gamma(c) * (2 * tau) ** -c / (2 * spectrum.s * p)


def evolution_tail_limit(spectrum: PowerLaw, *, rho: Scalar, q: Scalar = 1.0) -> Float[Array, ""]:
    """Gamma(1 + c) 2^-c with c = (a - 1)/(s rho q): the limit of L(t) / evolution_tail_loss
    as k*(t) -> inf on an infinite spectrum ([P3] Prop. 2 with its constant; §2.10). It depends on
    p = rho q, not on rho alone; for q = 1 it is `tail_dominance_limit(spectrum, rho)`."""
    check_range("rho", rho, gt=0)
    check_range("q", q, gt=0)
    c = gf_exponent(spectrum) / (rho * q)
    return gamma(1 + c) * 2.0**-c


# --- the diagonal linear network -------------------------------------------------------------


def diagonal(params: Params, t: Float[ArrayLike, "*records"]) -> Float[Array, "*records"]:
    """Exact GF loss of the diagonal network w = u * v from u = v = params.init on
    L = 1/2 sum lambda_k (w_k - w*_k)^2 (w*_k > 0): each mode follows the logistic curve
        w_k(t) = w*_k / (1 + (w*_k / init^2 - 1) exp(-2 lambda_k w*_k t))     ([E]).
    `models.evolution.diagonal` (GD) approaches it at t = lr n with O(lr) error."""
    check_range("t", t, ge=0)
    lam, target = params.spectrum.eigenvalues(), params.spectrum.target()
    t, lam = _outer(t, lam)
    rate = lam * target.reshape(lam.shape)
    odds = (target / params.init**2 - 1).reshape(lam.shape)
    # w - w* = -w* odds e / (1 + odds e), e = exp(-2 rate t)
    decay = odds * jnp.exp(-2 * rate * t)
    return 0.5 * (decay / (1 + decay)) ** 2 @ params.spectrum.target_power()


def diagonal_loss(
    spectrum: Spectrum, *, t: Float[ArrayLike, "*records"], init: Scalar
) -> Float[Array, "*records"]:
    """Exact GF loss of w = u * v from u = v = init on L = 1/2 sum lambda_k (w_k - w*_k)^2
    (w*_k > 0; [E], logistic per mode): `diagonal(Params(spectrum, init=init), t)`."""
    return diagonal(Params(spectrum, init=init), t)


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
