"""Compression of trained models that are linear in their parameters theta (THEORY.md §6):

    L(theta) = 1/2 (A theta - w*)^T Sigma (A theta - w*),   Sigma = diag(lambda),
    Hessian H = A^T Sigma A,

with A = I for the linear and ridge models (theta = w in the eigenbasis) and A = F for random
features (theta the readout, one weight per neuron). `trained(params, state)` builds the pair
(Quadratic, theta) from any core simulator's state (each of those model modules `register`s how;
diagnostics do not import models, which import diagnostics); the operations return compressed
parameters theta', and `loss(q, theta') - loss(q, theta)` is the damage (`theory.compression`
predicts it):

- `truncate`: keep the top-K eigen-directions of H (spectral truncation, PCA / low-rank pruning);
- `prune`: keep the K coordinates with the largest magnitude |theta_j| or saliency
  1/2 H_jj theta_j^2 (Optimal Brain Damage), in the eigenbasis of H or in the weight basis;
- `quantize` (deterministic rounding to a grid of step Delta), `dither` (subtractive dither),
  `round_to` (round-to-nearest into bfloat16 / float16 / float8, emulated by casting; `ulp`
  gives the format's spacing at each weight) and
  `relative_noise` (delta = u theta xi, xi ~ N(0, 1)).

`rotate` re-expresses a model in a random orthonormal weight basis, so that "weight basis" means
something for the linear model too (its parameters otherwise are the eigen-coordinates).
Everything is jittable and vmappable over theta, keys and K (K is a traced mask).
"""

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from spectral_sim._types import Array, ArrayLike, Count, Float, Key, Real, Scalar
from spectral_sim.checks import check_range
from spectral_sim.spectra import Spectrum

__all__ = [
    "FLOAT_FORMATS",
    "LOG_UNIFORM_C",
    "Quadratic",
    "dither",
    "eigenbasis",
    "hessian",
    "loss",
    "prune",
    "quantize",
    "register",
    "relative_noise",
    "rotate",
    "round_to",
    "trained",
    "truncate",
    "ulp",
    "unit_roundoff",
]

FLOAT_FORMATS = ("bfloat16", "float16", "float8_e4m3fn", "float8_e5m2")
"""The float formats `round_to` emulates (ml_dtypes names, as in jax.numpy)."""

LOG_UNIFORM_C = 2 * math.log(2) / 9
"""c in E delta^2 = c u^2 E w^2 for round-to-nearest at unit roundoff u when the mantissa fraction f
of w is log-uniform (Benford) and independent of its exponent e: the error is uniform on half an
ulp = 2^e 2u, so E delta^2 = 4^e u^2 / 3 whatever f, while w^2 = 4^e (1 + f)^2 with
E (1 + f)^2 = 3 / (2 ln 2); hence c = 2 ln 2 / 9 = 0.154. (The mean relative error
E[delta^2 / w^2] = u^2 / (8 ln 2) is a different average: losses sum lambda_k delta_k^2.)"""

CRITERIA = ("magnitude", "saliency")
BASES = ("eigen", "weight")


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Quadratic:
    """The population loss of a model linear in its parameters: the spectrum (Sigma, w*) and the
    map A from parameters to eigenbasis weights (modes x dim; None for the identity)."""

    spectrum: Spectrum
    features: Float[Array, "modes dim"] | None = None


# Per Params class: the State classes it is registered with and the map to (Quadratic, theta).
_TRAINED: dict[type, tuple[tuple[type, ...], Callable[[Any, Any], tuple[Quadratic, Array]]]] = {}


def register(
    params_type: type,
    state_types: tuple[type, ...],
    view: Callable[[Any, Any], tuple[Quadratic, Float[Array, "*batch dim"]]],
) -> None:
    """Make `trained(params, state)` answer `view(params, state)` for a model's Params and any of
    its `state_types`: how a simulator linear in its parameters joins (models.linear, ridge,
    random_features and evolution register at import, so this module need not import them)."""
    _TRAINED[params_type] = (state_types, view)


def trained(params, state) -> tuple[Quadratic, Float[Array, "*batch dim"]]:
    """(Quadratic, theta) of a core simulator's final state: `models.linear` (theta = v + w*),
    `models.ridge` (w), `models.random_features` (the readout; A = F) or `models.evolution`
    (w, or u * v for the diagonal network); any model that `register`s a view."""
    state_types, view = _TRAINED.get(type(params), ((), None))
    if view is None or not isinstance(state, state_types):
        models = ", ".join(sorted({f"{t.__module__}.{t.__qualname__}" for t in _TRAINED}))
        raise TypeError(
            f"trained() takes the Params and final State of a registered model ({models}); got "
            f"{type(params).__name__} and {type(state).__name__}"
        )
    return view(params, state)


def _lift(vector: Real[Array, " dim"], like: Array) -> Array:
    """A per-coordinate vector reshaped to broadcast against `like` (*batch, dim) under strict
    rank promotion."""
    return vector.reshape((1,) * (like.ndim - 1) + vector.shape[-1:])


def _weights(q: Quadratic, theta: Float[Array, "*batch dim"]) -> Float[Array, "*batch modes"]:
    return theta if q.features is None else theta @ q.features.T


def loss(q: Quadratic, theta: Float[Array, "*batch dim"]) -> Float[Array, "*batch"]:
    """L(theta) = 1/2 sum_k lambda_k ((A theta)_k - w*_k)^2."""
    weights = _weights(q, theta)
    deviation = weights - _lift(q.spectrum.target(), weights)
    return 0.5 * deviation**2 @ q.spectrum.eigenvalues()


def hessian(q: Quadratic) -> Float[Array, "dim dim"]:
    """H = A^T Sigma A (dense; for A = I prefer the spectrum's eigenvalues)."""
    lam = q.spectrum.eigenvalues()
    if q.features is None:
        return jnp.diag(lam)
    return q.features.T @ (lam[:, None] * q.features)


def eigenbasis(q: Quadratic) -> tuple[Float[Array, " dim"], Float[Array, "dim dim"]]:
    """H's eigenvalues h_1 >= h_2 >= ... and orthonormal eigenvectors (columns), by eigh."""
    h, vectors = jnp.linalg.eigh(hessian(q))
    return h[::-1], vectors[:, ::-1]


def rotate(
    q: Quadratic, theta: Float[Array, "*batch dim"], key: Key[Array, ""]
) -> tuple[Quadratic, Float[Array, "*batch dim"]]:
    """The same model and loss in a Haar-random orthonormal weight basis O: theta = O phi, so
    A' = A O and phi = O^T theta (e.g. a linear model in input coordinates); one O for all of
    theta's leading axes."""
    dim = theta.shape[-1]
    basis = jax.random.orthogonal(key, dim, dtype=theta.dtype)
    features = basis if q.features is None else q.features @ basis
    return Quadratic(q.spectrum, features), theta @ basis


def _check_k(theta: Array, K: object) -> None:
    check_range("K", K, ge=0, le=theta.shape[-1])


def _keep_top(score: Float[Array, "*batch dim"], K) -> Float[Array, "*batch dim"]:
    """1 on the K largest scores (ties by position), 0 elsewhere; K may be traced."""
    rank = jnp.argsort(jnp.argsort(-score, axis=-1, stable=True), axis=-1, stable=True)
    return (rank < _lift(jnp.asarray(K)[..., None], score)).astype(score.dtype)


def _in_eigenbasis(q: Quadratic, theta, fn):
    """Apply fn(h, c) -> c' to theta's coordinates c in H's eigenbasis; map back."""
    if q.features is None:
        return fn(q.spectrum.eigenvalues(), theta)
    h, vectors = eigenbasis(q)
    return fn(h, theta @ vectors) @ vectors.T


def truncate(
    q: Quadratic, theta: Float[Array, "*batch dim"], *, K: Count
) -> Float[Array, "*batch dim"]:
    """Keep the top-K eigen-directions of H and zero the rest: spectral truncation. For A = I
    these are modes 1..K in the spectrum's order (descending for PowerLaw, Geometric and
    `Empirical.from_data`), exactly `theory.prune_loss`'s truncation."""
    _check_k(theta, K)

    def keep(h, c):
        index = _lift(jnp.arange(1, c.shape[-1] + 1, dtype=c.dtype), c)
        return jnp.where(index <= _lift(jnp.asarray(K)[..., None], c), c, 0.0)

    return _in_eigenbasis(q, theta, keep)


def prune(
    q: Quadratic,
    theta: Float[Array, "*batch dim"],
    *,
    K: Count,
    criterion: str = "magnitude",
    basis: str = "eigen",
) -> Float[Array, "*batch dim"]:
    """Keep the K coordinates with the largest score and zero the rest. criterion: "magnitude"
    (|c_j|) or "saliency" (1/2 H_jj c_j^2, Optimal Brain Damage); basis: "eigen" (coordinates c
    in H's eigenbasis, H_jj = h_j) or "weight" (c = theta itself: neuron pruning for random
    features, weight pruning in a rotated linear model)."""
    _check_k(theta, K)
    if criterion not in CRITERIA:
        raise ValueError(f"criterion must be one of {CRITERIA}; got {criterion!r}")
    if basis not in BASES:
        raise ValueError(f"basis must be one of {BASES}; got {basis!r}")

    def keep(curvature, c):
        score = jnp.abs(c) if criterion == "magnitude" else 0.5 * _lift(curvature, c) * c**2
        return c * _keep_top(score, K)

    if basis == "eigen":
        return _in_eigenbasis(q, theta, keep)
    curvature = jnp.diagonal(hessian(q)) if q.features is not None else q.spectrum.eigenvalues()
    return keep(curvature, theta)


def _step(step, theta: Array) -> Array:
    """A scalar step, or a per-coordinate (dim,) step lifted to theta's rank."""
    step = jnp.asarray(step, theta.dtype)
    return step if step.ndim == 0 else _lift(step, theta)


def quantize(
    theta: Float[ArrayLike, "*batch dim"], *, step: Scalar | Float[ArrayLike, " dim"]
) -> Float[Array, "*batch dim"]:
    """Deterministic uniform quantisation Delta * round(theta / Delta) (round half to even): it
    zeroes every |theta_j| < Delta / 2, i.e. prunes the small coordinates (THEORY.md §6.2).
    `step` is a scalar or one step per coordinate."""
    check_range("step", step, gt=0)
    theta = jnp.asarray(theta)
    step = _step(step, theta)
    return step * jnp.round(theta / step)


def dither(
    theta: Float[ArrayLike, "*batch dim"],
    key: Key[Array, ""],
    *,
    step: Scalar | Float[ArrayLike, " dim"],
) -> Float[Array, "*batch dim"]:
    """Subtractively dithered quantisation Delta * round((theta + d) / Delta) - d with
    d ~ U[-Delta/2, Delta/2] known to the decoder: the error is uniform on [-Delta/2, Delta/2]
    and independent of theta, so E Delta L = (Delta^2/24) tr H (`dithered_quantization_loss`).
    `step` is a scalar or one step per coordinate."""
    check_range("step", step, gt=0)
    theta = jnp.asarray(theta)
    step = _step(step, theta)
    d = step * (jax.random.uniform(key, theta.shape, theta.dtype) - 0.5)
    return step * jnp.round((theta + d) / step) - d


def _format(format: str):
    if format not in FLOAT_FORMATS:
        raise ValueError(f"format must be one of {FLOAT_FORMATS}; got {format!r}")
    return jnp.dtype(getattr(jnp, format))


def unit_roundoff(format: str) -> float:
    """u = 2^-(mantissa bits + 1), half the spacing of the format's numbers in [1, 2)."""
    return float(jnp.finfo(_format(format)).eps) / 2


def _spacing_exponent(theta: Array, info) -> Array:
    """k with ulp = 2^k: the binade exponent of |theta| (from frexp, exact) floored at the
    format's smallest normal binade, minus the mantissa bits."""
    _, exponent = jnp.frexp(jnp.abs(theta))  # |theta| = m 2^exponent, m in [1/2, 1)
    return jnp.maximum(exponent - 1, info.minexp) - info.nmant


def ulp(theta: Float[ArrayLike, "*batch dim"], *, format: str) -> Float[Array, "*batch dim"]:
    """The spacing of `format`'s numbers at |theta|: 2^e * eps for |theta| in [2^e, 2^(e+1))
    in the normal range, the smallest subnormal below it (and at 0). Round-to-nearest moves
    theta by at most ulp / 2. (Spacings below theta's own dtype's normal range flush to 0 on
    CPU, e.g. bfloat16's below 2^-119 in float32; `round_to` does not need them.)"""
    info = jnp.finfo(_format(format))
    theta = jnp.asarray(theta)
    return jnp.ldexp(jnp.ones_like(theta), _spacing_exponent(theta, info))


def round_to(theta: Float[ArrayLike, "*batch dim"], *, format: str) -> Float[Array, "*batch dim"]:
    """Round-to-nearest-even into `format`, computed in theta's dtype as
    ldexp(round(ldexp(theta, -k)), k) with ulp = 2^k (exact power-of-two scaling: no double
    rounding through float32, no subnormal spacings): the storage of a quantised checkpoint.
    Values beyond the format's largest finite number saturate to it (float8_e4m3fn has no
    infinity); values below half its smallest subnormal flush to 0, which is pruning."""
    info = jnp.finfo(_format(format))
    theta = jnp.asarray(theta)
    k = _spacing_exponent(theta, info)
    big = float(info.max)
    return jnp.clip(jnp.ldexp(jnp.round(jnp.ldexp(theta, -k)), k), -big, big)


def relative_noise(
    theta: Float[ArrayLike, "*batch dim"], key: Key[Array, ""], *, u: Scalar
) -> Float[Array, "*batch dim"]:
    """theta (1 + u xi), xi ~ N(0, 1): a floating-point-like relative error with c = 1,
    E Delta L = (u^2/2) sum_k lambda_k w_k^2 (`relative_perturbation_loss`, for A = I)."""
    check_range("u", u, gt=0)
    theta = jnp.asarray(theta)
    return theta * (1 + u * jax.random.normal(key, theta.shape, theta.dtype))
