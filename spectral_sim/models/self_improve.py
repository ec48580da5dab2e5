"""Self-consuming regression loops (THEORY.md §4), one generation per step of
`simulate.trajectory`: generation n fits ridge / OLS, w_n = (X^T W X + delta I)^-1 X^T W y
(learner="ols"), or trains a fresh model from w = 0 by one pass of SGD over its rows,
w <- w - lr (x.w - y) x (learner="sgd": compute per generation = rows x features), on samples
x ~ N(0, Sigma) whose labels come from the truth w* at generation 1 and from the previous
generation's w_(n-1) afterwards, plus fresh label noise N(0, sigma^2).

Data regimes (static `regime`):
- "replace": fit only the newest generation's samples;
- "accumulate": fit every sample drawn so far;
- "subsample": fit `samples` rows drawn without replacement from everything drawn so far;
- "mix": replace, with the first `n_real` rows of every generation labelled by the truth.
`sizes[n - 1]` (<= `samples`) sets how many rows generation n draws (growing T_n, or growing
compute: an OLS generation costs T_n d^2). `design="fixed"` draws the same inputs X_0 every
generation. `verify=True` passes each synthetic sample through a verifier that knows w*: with
probability `verifier` it keeps the sample iff |y - x.w*| <= threshold sigma, otherwise it keeps it
on a fair coin; real samples always pass.

Sigma is `spectrum.eigenvalues()` with w* = `spectrum.target()` (power law), or the identity
with w* = 1/sqrt(d) when `spectrum` is None. Accumulate keeps the running X^T W X and X^T W y;
subsample buffers generations x samples rows, so `generations` (static) bounds its runs.
"""

import dataclasses
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp

from spectral_sim._types import Array, Float, Key, Leaf, Swept
from spectral_sim.checks import all_of, check_spectrum, concrete
from spectral_sim.spectra import Spectrum

__all__ = ["Obs", "Params", "State", "init", "step", "target", "variances"]

REGIMES = ("replace", "accumulate", "subsample", "mix")


def _static(default):
    return dataclasses.field(default=default, metadata=dict(static=True))


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Params:
    """dim features, `samples` rows per generation (the buffer width), `generations` (the buffer
    length); noise sigma^2, ridge delta (0: OLS), n_real, verifier and threshold are traced."""

    dim: int = _static(10)
    samples: int = _static(100)
    generations: int = _static(10)
    noise: Swept = 1.0
    ridge: Swept = 0.0
    n_real: Swept = 0.0
    verifier: Swept = 0.0
    threshold: Swept = 1.0
    sizes: Float[Leaf, "*grid generations"] | None = None
    regime: Literal["replace", "accumulate", "subsample", "mix"] = _static("replace")
    design: Literal["fresh", "fixed"] = _static("fresh")
    verify: bool = _static(False)
    learner: Literal["ols", "sgd"] = _static("ols")
    lr: Swept = 0.1
    spectrum: Spectrum | None = None

    def __post_init__(self):
        if self.spectrum is not None:
            check_spectrum("spectrum", self.spectrum)
        with all_of() as check:
            dim = check.count("dim", self.dim)
            samples = check.count("samples", self.samples)
            generations = check.count("generations", self.generations)
            check.range("noise", self.noise, ge=0)
            check.range("ridge", self.ridge, ge=0)
            if samples:
                check.range("n_real", self.n_real, ge=0, le=self.samples)
            check.range("verifier", self.verifier, ge=0, le=1)
            check.range("threshold", self.threshold, gt=0)
            check.one_of("regime", self.regime, REGIMES)
            check.one_of("learner", self.learner, ("ols", "sgd"))
            check.range("lr", self.lr, gt=0)
            check.one_of("design", self.design, ("fresh", "fixed"))
            if self.spectrum is not None and dim:
                check.that(self.spectrum.n_modes == self.dim, f"spectrum.n_modes must equal dim "
                           f"= {self.dim}; got {self.spectrum.n_modes}")  # fmt: skip
            sizes = concrete(self.sizes)
            if sizes is not None and generations and samples:  # leading axes: a stacked grid
                if check.that(sizes.shape[-1:] == (self.generations,), f"sizes must hold one "
                              f"size per generation ({self.generations}); got shape "
                              f"{sizes.shape}"):  # fmt: skip
                    check.range("sizes", sizes, ge=1, le=self.samples)
            ols = concrete(self.ridge)
            if self.learner == "sgd" and ols is not None:
                check.that(not ols.any(), "ridge applies to learner='ols'; learner='sgd' takes "
                           f"ridge = 0; got {ols.max():g}")  # fmt: skip
            if self.learner == "ols" and ols is not None and not ols.any() and dim and samples:
                smallest = self.samples if sizes is None else sizes.min()
                if self.regime in ("replace", "mix"):
                    check.that(smallest > self.dim, f"OLS (ridge = 0) needs more rows per "
                               f"generation than dim = {self.dim}; got {smallest:g} (samples or "
                               f"sizes)")  # fmt: skip


class State(NamedTuple):
    """w: the latest generation's fit; gram, moment: sum X^T W X and X^T W y over the rows drawn
    so far (accumulate); x, y, weight: those rows themselves (subsample only, weight 0 for rows
    not drawn yet; empty otherwise); t: generations done; design: the fixed design's key."""

    w: Float[Array, " d"]
    gram: Float[Array, "d d"]
    moment: Float[Array, " d"]
    x: Float[Array, "rows d"]
    y: Float[Array, " rows"]
    weight: Float[Array, " rows"]
    t: Array
    design: Key[Array, ""]


class Obs(NamedTuple):
    """error ||w_n - w*||^2; risk ||w_n - w*||^2_Sigma (the excess test risk; equal to error
    for isotropic data); accepted: the share of this generation's drawn rows the verifier kept
    (1 without one)."""

    error: Float[Array, ""]
    risk: Float[Array, ""]
    accepted: Float[Array, ""]


def variances(params: Params, dtype: Any = float) -> Float[Array, " d"]:
    """The eigenvalues of Sigma (the identity without a spectrum)."""
    if params.spectrum is None:
        return jnp.ones(params.dim, dtype)
    return jnp.asarray(params.spectrum.eigenvalues(), dtype)


def target(params: Params, dtype: Any = float) -> Float[Array, " d"]:
    """w*: the spectrum's target, or 1/sqrt(d) in every coordinate (||w*|| = 1)."""
    if params.spectrum is None:
        return jnp.full(params.dim, params.dim**-0.5, dtype)
    return jnp.asarray(params.spectrum.target(), dtype)


def init(params: Params, key: Key[Array, ""]) -> State:
    """Empty buffers and w_0 = w* (generation 1 is labelled by the truth)."""
    buffered = params.regime == "subsample" or (
        params.learner == "sgd" and params.regime == "accumulate"
    )
    rows = params.samples * params.generations if buffered else 0
    dtype = jnp.result_type(params.noise)  # float32 when the sweep casts the Params
    return State(
        w=target(params, dtype), gram=jnp.zeros((params.dim, params.dim), dtype),
        moment=jnp.zeros(params.dim, dtype), x=jnp.zeros((rows, params.dim), dtype),
        y=jnp.zeros(rows, dtype), weight=jnp.zeros(rows, dtype), t=jnp.zeros((), jnp.int32),
        design=jax.random.fold_in(key, 1),
    )  # fmt: skip


def _draw(params: Params, state: State, key: Key[Array, ""]):
    """This generation's inputs, labels and weights (drawn rows that pass the verifier)."""
    k_x, k_noise, k_check, k_coin = jax.random.split(key, 4)
    k_x = state.design if params.design == "fixed" else k_x
    dtype = state.w.dtype
    scale = jnp.sqrt(variances(params, dtype))[None, :]
    x = jax.random.normal(k_x, (params.samples, params.dim), dtype) * scale
    truth = x @ target(params, dtype)
    row = jnp.arange(params.samples)
    first = state.t == 0
    real = (
        first | (row < params.n_real) if params.regime == "mix" else jnp.full_like(row, first, bool)
    )
    sigma = jnp.sqrt(jnp.asarray(params.noise, dtype))
    y = jnp.where(real, truth, x @ state.w) + sigma * jax.random.normal(k_noise, row.shape, dtype)
    drawn = row < _size(params, state.t)
    keep = drawn
    if params.verify:
        close = jnp.abs(y - truth) <= params.threshold * sigma
        checked = jax.random.uniform(k_check, row.shape) < params.verifier
        coin = jax.random.uniform(k_coin, row.shape) < 0.5
        keep = drawn & (real | jnp.where(checked, close, coin))
    return x, y, keep.astype(dtype), drawn.astype(dtype)


def _size(params: Params, t) -> Array:
    """The rows generation t + 1 draws: sizes[t], or `samples`."""
    return jnp.asarray(params.samples if params.sizes is None else jnp.asarray(params.sizes)[t])


def _subsample(params: Params, weight, key, size) -> Float[Array, " rows"]:
    """`size` of the buffered rows drawn so far, without replacement."""
    rows = weight.shape[0]
    scores = jnp.where(weight > 0, jax.random.uniform(key, (rows,)), -1.0)
    index = jnp.clip(rows - jnp.asarray(size).astype(jnp.int32), 0, rows - 1)
    threshold = jnp.sort(scores)[index]  # the size-th largest score
    return jnp.where((scores >= threshold) & (weight > 0), weight, 0.0)


def _sgd(params: Params, x, y, weight) -> Float[Array, " d"]:
    """One pass of SGD from w = 0 over the rows, in order (weight-0 rows make no step)."""

    def update(w, row):
        xi, yi, wi = row
        return w - params.lr * wi * (xi @ w - yi) * xi, None

    return jax.lax.scan(update, jnp.zeros(params.dim, x.dtype), (x, y, weight))[0]


def step(params: Params, state: State, key: Key[Array, ""]) -> tuple[State, Obs]:
    """One generation: draw, label, verify, fit on the regime's rows."""
    k_draw, k_sub = jax.random.split(key)
    x, y, keep, drawn = _draw(params, state, k_draw)
    gram, moment = (x * keep[:, None]).T @ x, x.T @ (keep * y)
    if params.regime == "accumulate":
        gram, moment = state.gram + gram, state.moment + moment
    state = state._replace(gram=gram, moment=moment)
    rows_x, rows_y, rows_w = x, y, keep  # the rows this generation fits
    if state.x.shape[0]:  # buffered: subsample, or SGD over everything accumulated
        offset = state.t * params.samples
        state = state._replace(
            x=jax.lax.dynamic_update_slice(state.x, x, (offset, jnp.zeros_like(offset))),
            y=jax.lax.dynamic_update_slice(state.y, y, (offset,)),
            weight=jax.lax.dynamic_update_slice(state.weight, keep, (offset,)),
        )
        rows_x, rows_y, rows_w = state.x, state.y, state.weight
        if params.regime == "subsample":
            rows_w = _subsample(params, state.weight, k_sub, _size(params, state.t))
            gram = (rows_x * rows_w[:, None]).T @ rows_x
            moment = rows_x.T @ (rows_w * rows_y)
    if params.learner == "sgd":
        w = _sgd(params, rows_x, rows_y, rows_w)
    else:
        ridge = jnp.asarray(params.ridge, gram.dtype) * jnp.eye(params.dim, dtype=gram.dtype)
        w = jnp.linalg.solve(gram + ridge, moment)
    delta = w - target(params, w.dtype)
    obs = Obs(
        jnp.sum(delta**2), jnp.sum(variances(params, w.dtype) * delta**2),
        jnp.sum(keep) / jnp.sum(drawn),
    )  # fmt: skip
    return state._replace(w=w, t=state.t + 1), obs
