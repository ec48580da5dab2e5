"""Two realisations of the generalised spectral evolution (THEORY.md §2.10) on the population loss
L(w) = 1/2 sum_k lambda_k (w_k - w*_k)^2, from w = 0 (or near it):

- `preconditioned`: GD with the preconditioner lambda^(rho - 1), w <- w - lr lambda^rho (w - w*),
  whose flow w_k(t) = w*_k (1 - exp(-lambda_k^rho t)) has g = lambda^rho t exactly: a known
  elasticity rho (`flow` gives it at any time);
- `diagonal`: GD on the diagonal linear network w = u * v from u = v = init, the simplest
  feature-learning model; its elasticity is measured, not put in (its flow is logistic per mode,
  `theory.evolution.diagonal_loss`).

Both record the loss and the frontier k*: where the learned fraction w_k / w*_k crosses 1/2,
interpolated in ln k between the last mode above 1/2 and the next (a continuous count of the
modes more than half learned; the integer count jitters by up to 1/k* in ln k*).
"""

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp

from spectral_sim._types import Array, Float, Key, Simulator, Swept
from spectral_sim.checks import all_of, check_range, check_spectrum, concrete, warn_unstable
from spectral_sim.diagnostics import compression
from spectral_sim.spectra import Spectrum

__all__ = [
    "Factors", "Obs", "Params", "State", "diagonal", "flow", "frontier", "observe",
    "preconditioned",
]  # fmt: skip


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Params:
    """Spectrum; elasticity rho of the preconditioned model; initial scale of the diagonal
    network's factors; GD learning rate. All traced (sweepable)."""

    spectrum: Spectrum
    rho: Swept = 1.0
    init: Swept = 1e-3
    lr: Swept = 0.5

    def __post_init__(self):
        check_spectrum("spectrum", self.spectrum)
        with all_of() as check:
            check.range("rho", self.rho, gt=0)
            check.range("init", self.init, gt=0)
            check.range("lr", self.lr, gt=0)


class State(NamedTuple):
    """w: the weights in the eigenbasis."""

    w: Float[Array, " modes"]


class Factors(NamedTuple):
    """u, v: the diagonal network's factors, w = u * v."""

    u: Float[Array, " modes"]
    v: Float[Array, " modes"]


class Obs(NamedTuple):
    """loss: 1/2 sum_k lambda_k (w_k - w*_k)^2; k_star: the interpolated half-learned frontier."""

    loss: Float[Array, ""]
    k_star: Float[Array, ""]


def frontier(fraction: Float[Array, " modes"]) -> Float[Array, ""]:
    """n = #{k : fraction_k >= 1/2} (fraction decreasing in k), refined to n ((n + 1)/n)^r:
    the crossing of 1/2 between modes n and n + 1, interpolated linearly in ln k on the logit
    ln(f / (1 - f)), which is smooth where f itself saturates (a sharp logistic transition, as
    in the diagonal network, spans about one mode at k* ~ 10); 0 if no mode and n_modes if
    every mode is past 1/2."""
    n_modes = fraction.shape[-1]
    n = jnp.sum((fraction >= 0.5).astype(jnp.int32), axis=-1)
    index = jnp.clip(n, 1, n_modes - 1)
    eps = jnp.finfo(fraction.dtype).eps
    f = jnp.clip(fraction[jnp.stack([index - 1, index])], eps, 1 - eps)
    above, below = jnp.log(f) - jnp.log1p(-f)  # logits; the crossing is at logit 0
    r = jnp.clip(above / jnp.where(above > below, above - below, 1.0), 0.0, 1.0)
    k = index.astype(fraction.dtype)
    inside = k * ((k + 1) / k) ** r
    return jnp.where(n == 0, 0.0, jnp.where(n == n_modes, float(n_modes), inside))


def observe(params: Params, w: Float[Array, " modes"]) -> Obs:
    """Loss and frontier of the weights w."""
    lam, target = params.spectrum.eigenvalues(), params.spectrum.target()
    return Obs(0.5 * (w - target) ** 2 @ lam, frontier(w / target))


# --- preconditioned GD: g = lambda^rho t -----------------------------------------------------


def _init(params: Params, key: Key[Array, ""] | None) -> State:
    """w = 0; warns once when a concrete lr is at or past the stability limit,
    lr lambda_max^rho >= 2."""
    del key
    lam = params.spectrum.eigenvalues()
    if concrete(params.lr) is not None:
        edge = params.lr * jnp.max(lam**params.rho)
        warn_unstable("preconditioned GD", params.lr, edge, 2.0, "lr lambda_max^rho")
    return State(jnp.zeros_like(lam))


def _step(params: Params, state: State, key: Key[Array, ""] | None) -> tuple[State, Obs]:
    """w <- w - lr lambda^(rho-1) grad L; stable iff lr lambda_max^rho < 2."""
    del key
    lam = params.spectrum.eigenvalues()
    w = state.w - params.lr * lam**params.rho * (state.w - params.spectrum.target())
    return State(w), observe(params, w)


preconditioned = Simulator(_init, _step)
"""Preconditioned full-batch GD on the population loss (deterministic; the key is unused)."""


def flow(params: Params, t: Float[Array, " records"]) -> tuple[State, Obs]:
    """The preconditioned gradient flow at times t, w_k(t) = w*_k (1 - exp(-lambda_k^rho t)),
    with a leading records axis: GD at step n approaches it at t = lr n as lr -> 0. ValueError
    unless t >= 0 (finite)."""
    check_range("t", t, ge=0)
    lam = params.spectrum.eigenvalues()
    t = jnp.asarray(t, lam.dtype)
    w = -jnp.expm1(-jnp.multiply.outer(t, lam**params.rho)) * params.spectrum.target()[None]
    return State(w), jax.vmap(observe, in_axes=(None, 0))(params, w)


# --- the diagonal linear network -------------------------------------------------------------


def _diagonal_init(params: Params, key: Key[Array, ""] | None) -> Factors:
    del key
    u = jnp.full_like(params.spectrum.eigenvalues(), params.init)
    return Factors(u, u)


def _diagonal_step(
    params: Params, state: Factors, key: Key[Array, ""] | None
) -> tuple[Factors, Obs]:
    """Simultaneous GD on u and v: dL/du = lambda (u v - w*) v, dL/dv = lambda (u v - w*) u."""
    del key
    residual = params.spectrum.eigenvalues() * (state.u * state.v - params.spectrum.target())
    u = state.u - params.lr * residual * state.v
    v = state.v - params.lr * residual * state.u
    return Factors(u, v), observe(params, u * v)


diagonal = Simulator(_diagonal_init, _diagonal_step)
"""Full-batch GD on the diagonal network w = u * v (deterministic; the key is unused). Near the
target the rate is 2 lr lambda_k w*_k, so it is stable for lr max_k(lambda_k w*_k) < 1."""


def _trained(
    params: Params, state: State | Factors
) -> tuple[compression.Quadratic, Float[Array, " modes"]]:
    """The weights w (u * v for the diagonal network) on the population loss
    (`diagnostics.compression.trained`)."""
    weights = state.w if isinstance(state, State) else state.u * state.v
    return compression.Quadratic(params.spectrum), weights


compression.register(Params, (State, Factors), _trained)
