"""Compression of the gradient-flow model w_k(t) = w*_k (1 - exp(-lambda_k t)) (THEORY.md §6):
pruning as spectral truncation, quantisation as a perturbation w -> w + delta, and the
complementarity of test loss and pruning damage. Losses carry the factor 1/2.

Times `t` and mode counts `K` broadcast against each other (t of shape (R, 1) and K of shape
(Q,) give an (R, Q) heat map); everything is jittable and vmappable over the spectrum's traced
fields. These predictors take the spectrum rather than a simulator's Params: their other inputs
(K, w, delta, step, u) describe the compression applied by `diagnostics.compression`, not a
simulator, and the model they compress is the gradient flow of `models.linear.gf`.
"""

import jax.numpy as jnp

from spectral_sim._types import Array, ArrayLike, Float, Real, Scalar
from spectral_sim.checks import check_range
from spectral_sim.spectra import PowerLaw, Spectrum
from spectral_sim.theory.linear import gf_exponent

__all__ = [
    "dithered_quantization_loss",
    "perturbation_loss",
    "prune_loss",
    "prune_loss_early",
    "prune_loss_late",
    "pruned_loss",
    "relative_perturbation_loss",
]


def _check_modes(spectrum: Spectrum, K: object) -> None:
    check_range("K", K, ge=0, le=spectrum.n_modes)


def _grid(spectrum: Spectrum, *values: ArrayLike):
    """The values broadcast against each other with a trailing modes axis of size 1, so that
    they combine with lam[None, ..., :] under strict rank promotion."""
    lam = spectrum.eigenvalues()
    arrays = jnp.broadcast_arrays(*(jnp.asarray(x, lam.dtype) for x in values))
    shape = arrays[0].shape
    k = jnp.arange(1, lam.shape[-1] + 1, dtype=lam.dtype).reshape((1,) * len(shape) + (-1,))
    lam = lam.reshape(k.shape)
    power = spectrum.target_power().reshape(k.shape)
    return lam, power, k, [x[..., None] for x in arrays]


def prune_loss(
    spectrum: Spectrum, *, t: Float[ArrayLike, "..."], K: Real[ArrayLike, "..."]
) -> Float[Array, "..."]:
    """Loss increase from keeping eigen-modes 1..K of the GF model at time t and zeroing the rest
    ([P3] pruning = spectral truncation; THEORY.md §6.1, [E]):

        Delta L_prune(K, t) = 1/2 sum_{k > K} v_k^2 (1 - exp(-2 lambda_k t)).
    """
    _check_modes(spectrum, K)
    check_range("t", t, ge=0)
    lam, power, k, (t, K) = _grid(spectrum, t, K)
    return 0.5 * jnp.sum(jnp.where(k > K, power * -jnp.expm1(-2 * lam * t), 0.0), axis=-1)


def pruned_loss(
    spectrum: Spectrum, *, t: Float[ArrayLike, "..."], K: Real[ArrayLike, "..."]
) -> Float[Array, "..."]:
    """The pruned model's loss, the right-hand side of the complementarity identity
    (THEORY.md §6.3, [E]):

        L(t) + Delta L_prune(K, t)
            = 1/2 sum_{k <= K} v_k^2 exp(-2 lambda_k t) + 1/2 sum_{k > K} v_k^2.

    At fixed K it decreases monotonically in t to the tail energy 1/2 sum_{k > K} v_k^2.
    """
    _check_modes(spectrum, K)
    check_range("t", t, ge=0)
    lam, power, k, (t, K) = _grid(spectrum, t, K)
    return 0.5 * jnp.sum(power * jnp.where(k > K, 1.0, jnp.exp(-2 * lam * t)), axis=-1)


def prune_loss_early(
    spectrum: PowerLaw, *, t: Float[ArrayLike, "..."], K: Real[ArrayLike, "..."]
) -> Float[Array, "..."]:
    """The K >> k*(t) regime of `prune_loss` (THEORY.md §6.1, [A]): every pruned mode is still
    in its linear phase, Delta L ~ t sum_{k > K} lambda_k v_k^2 ~ t K^(1-a-s) / (a + s - 1),
    which grows linearly with training time (infinite spectrum)."""
    gf_exponent(spectrum)  # checks: a PowerLaw with a > 1 (an infinite spectrum)
    check_range("K", K, ge=1, le=spectrum.n_modes)  # the asymptote is infinite at K = 0
    check_range("t", t, ge=0)
    dtype = jnp.result_type(spectrum.s, float)
    t, K = jnp.broadcast_arrays(jnp.asarray(t, dtype), jnp.asarray(K, dtype))
    exponent = spectrum.a + spectrum.s - 1
    return t * K**-exponent / exponent


def prune_loss_late(spectrum: PowerLaw, *, K: Real[ArrayLike, "..."]) -> Float[Array, "..."]:
    """The K << k*(t) regime of `prune_loss` (THEORY.md §6.1, [A]): the pruned modes are all
    learned, Delta L ~ 1/2 sum_{k > K} k^-a ~ K^(1-a) / (2 (a - 1)), independent of t."""
    gf_exponent(spectrum)  # checks: a PowerLaw with a > 1 (an infinite spectrum)
    check_range("K", K, ge=1, le=spectrum.n_modes)  # the asymptote is infinite at K = 0
    K = jnp.asarray(K, jnp.result_type(spectrum.s, float))
    return K ** (1 - spectrum.a) / (2 * (spectrum.a - 1))


def perturbation_loss(
    spectrum: Spectrum,
    *,
    w: Float[ArrayLike, "*batch modes"],
    delta: Float[ArrayLike, "*batch modes"],
) -> Float[Array, "*batch"]:
    """Exact loss change of w -> w + delta in the eigenbasis (THEORY.md §6.2, [E]):

        Delta L = sum_k lambda_k delta_k (w_k - w*_k) + 1/2 sum_k lambda_k delta_k^2.

    The cross term vanishes in expectation for a zero-mean delta independent of w (dithering,
    random noise); for deterministic rounding it does not.
    """
    lam, target = spectrum.eigenvalues(), spectrum.target()
    w, delta = jnp.broadcast_arrays(jnp.asarray(w, lam.dtype), jnp.asarray(delta, lam.dtype))
    target = target.reshape((1,) * (w.ndim - 1) + target.shape[-1:])
    return (delta * (w - target) + 0.5 * delta**2) @ lam


def dithered_quantization_loss(
    spectrum: Spectrum, *, step: Scalar | Float[ArrayLike, " modes"]
) -> Float[Array, ""]:
    """Expected loss change of subtractively dithered uniform quantisation with step Delta,
    E Delta L = (Delta^2 / 24) tr Sigma ([E], THEORY.md §6.2): the error is uniform on
    [-Delta/2, Delta/2], independent of w, with variance Delta^2 / 12 per coordinate. It holds in
    any orthonormal weight basis (tr Sigma is basis-free) and at any training time.

    A per-mode `step` (shape (modes,)) gives sum_k lambda_k Delta_k^2 / 24: e.g. the spacing of a
    float format at each weight (`diagnostics.compression.ulp`), the high-resolution picture of
    rounding into that format."""
    check_range("step", step, gt=0)
    lam = spectrum.eigenvalues()
    step = jnp.asarray(step, lam.dtype)
    return (jnp.broadcast_to(step, lam.shape) ** 2 @ lam) / 24


def relative_perturbation_loss(
    spectrum: Spectrum, *, t: Float[ArrayLike, "..."], u: Scalar, c: Scalar = 1.0
) -> Float[Array, "..."]:
    """Expected loss change of a relative error delta_k with E delta_k^2 = c u^2 w_k^2, zero mean
    and independent of w (floating-point-like), on the GF model at time t (THEORY.md §6.2):

        E Delta L = (c u^2 / 2) sum_k lambda_k w*_k^2 (1 - exp(-lambda_k t))^2,

    increasing in t and saturating at (c u^2 / 2) ||w*||^2_Sigma. Round-to-nearest into a float
    format with unit roundoff u at high resolution has c = 1 / (3 E (1 + f)^2) for mantissa
    fraction f; log-uniform mantissas give c = 2 ln 2 / 9 (`diagnostics.compression.LOG_UNIFORM_C`).
    """
    check_range("u", u, gt=0)
    check_range("c", c, gt=0)
    check_range("t", t, ge=0)
    lam, power, _, (t,) = _grid(spectrum, t)
    return 0.5 * c * u**2 * jnp.sum(power * jnp.expm1(-lam * t) ** 2, axis=-1)
