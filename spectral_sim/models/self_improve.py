"""Self-consuming regression loops (THEORY.md §4), one generation per step of
`simulate.trajectory`: generation n fits ridge / least squares, w_n = (X^T W X + delta I)^+ X^T W y
(learner="ols": the minimum-norm solution, so T <= d rows and repeated rows are fitted too), or
trains a fresh model from w = 0 by one pass of SGD over its rows, w <- w - lr (x.w - y) x
(learner="sgd": compute per generation = rows x features), on samples x ~ N(0, Sigma) whose labels
come from the truth w* at generation 1 and from the previous generation's w_(n-1) afterwards,
plus fresh label noise N(0, sigma^2).

Data regimes (static `regime`):
- "replace": fit only the newest generation's samples;
- "accumulate": fit every sample drawn so far;
- "subsample": fit T rows drawn without replacement from everything drawn so far;
- "mix": replace, with the first `n_real` rows of every generation labelled by the truth.
Generation n draws T rows: `sizes[n - 1]` (growing T_n, or growing compute: an OLS generation
costs T_n d^2), else `n_samples` (T traced: a grid over T shares one compiled program), else
`samples`, which is also the static width of every row array (rows past T have weight 0).
`design="fixed"` draws the same inputs X_0 every generation. `verify=True` passes each synthetic
sample through a verifier that knows w*: with probability `verifier` it keeps the sample iff
|y - x.w*| <= threshold sigma, otherwise it keeps it on a fair coin; real samples always pass.

Sigma is `spectrum.eigenvalues()` with w* = `spectrum.target()` (power law), or the identity
with w* = 1/sqrt(d) when `spectrum` is None.

Cost per generation does not grow with the generations done, except where the loop itself reads
every row so far (SGD over an accumulated buffer):
- accumulate keeps the running X^T W X and X^T W y;
- subsample keeps the kept rows so far in a buffer of `generations` x `samples` slots (a fixed
  design keeps only their labels and row numbers), draws T slot numbers (Floyd's algorithm) and
  gathers only those rows;
- a fixed design fitted by OLS without a verifier (replace, accumulate) eigendecomposes its Gram
  X_0^T D X_0 once: every generation fits the same rows, so w_n needs only X_0^T D y.
Each generation takes its random numbers from one flat draw of random bits: under a sweep's two
vmaps every threefry call compiles on its own (one call in a generation's step compiled in
1.1 s, three in 6.1 s; JAX 0.10.2 on a 2-core CPU).
"""

import dataclasses
import math
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp

from spectral_sim._types import Array, Float, Int, Key, Leaf, Swept
from spectral_sim.checks import all_of, check_spectrum, concrete
from spectral_sim.spectra import Spectrum

__all__ = ["Obs", "Params", "State", "init", "min_norm", "step", "target", "variances"]

REGIMES = ("replace", "accumulate", "subsample", "mix")


def _static(default):
    return dataclasses.field(default=default, metadata=dict(static=True))


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Params:
    """dim features, `samples` rows per generation at most (the width of the row arrays),
    `generations` (the buffer length); noise sigma^2, ridge delta (0: least squares), n_samples
    (T), n_real, verifier and threshold are traced."""

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
    n_samples: Swept | None = None

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
                if self.n_samples is not None:
                    check.range("n_samples", self.n_samples, ge=1, le=self.samples)
            check.range("verifier", self.verifier, ge=0, le=1)
            check.range("threshold", self.threshold, gt=0)
            check.one_of("regime", self.regime, REGIMES)
            check.one_of("learner", self.learner, ("ols", "sgd"))
            check.range("lr", self.lr, gt=0)
            check.one_of("design", self.design, ("fresh", "fixed"))
            if self.spectrum is not None and dim:
                check.that(self.spectrum.n_modes == self.dim, f"spectrum.n_modes must equal dim "
                           f"= {self.dim}; got {self.spectrum.n_modes}")  # fmt: skip
            check.that(self.sizes is None or self.n_samples is None, "give sizes (one size per "
                       "generation) or n_samples (one for all), not both")  # fmt: skip
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


class State(NamedTuple):
    """w: the latest generation's fit. gram, moment: X^T W X and X^T W y of the rows it fitted
    (accumulate: summed over every generation; a fixed design fitted through its
    eigendecomposition keeps its Gram X_0^T D X_0 in gram, D the drawn rows). design: X_0
    (no rows with a fresh design); eigen, basis: the eigenvalues (those below `min_norm`'s cutoff
    set to 0) and eigenvectors of its Gram, where it is fitted through them (empty otherwise).
    buffer, count: the kept rows so far (subsample; SGD on accumulate), in the order drawn, and
    how many there are: a row holds the inputs x (fresh design) or the row's number in X_0
    (fixed design, an integer in a float), then the label y, so that drawing a row is one
    gather. t: generations done."""

    w: Float[Array, " d"]
    gram: Float[Array, "d d"]
    moment: Float[Array, " d"]
    design: Float[Array, "design d"]
    eigen: Float[Array, " eigen"]
    basis: Float[Array, "d eigen"]
    buffer: Float[Array, "rows width"]
    count: Int[Array, ""]
    t: Int[Array, ""]


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


# --- minimum-norm least squares -------------------------------------------------------------


def _cutoff(gram: Array, rows: int) -> Array:
    """The pivot (or eigenvalue) below which a direction of X^T W X counts as exactly singular.
    Each Gram entry sums `rows` products, so it carries rounding errors up to about rows eps
    |G|: the Schur complement left in a direction that repeated rows or too few rows make
    singular measured at most 0.5 rows eps max_k G_kk (2,000 Gaussian Grams per case, rank 3 to
    9 of d = 10 from 10 to 1,000 rows, float32 and float64). The cutoff 4 rows eps max_k G_kk is
    8 times that; a genuine direction that small is below the resolution of the normal
    equations anyway (their relative error is eps times the condition number), and dropping it
    is what a pseudo-inverse's relative cutoff does."""
    return 4 * rows * jnp.finfo(gram.dtype).eps * jnp.max(jnp.diagonal(gram))


def _pivoted_cholesky(gram: Array, rows: int) -> tuple[Array, Array]:
    """L (d x d) with gram = L L^T and kept: which of its columns are pivots above the cutoff
    (the others are 0): Cholesky with the largest remaining diagonal as the pivot, stopped at
    the cutoff, as LAPACK's xPSTRF does. Written with vector operations (d steps), which XLA
    batches across a vmapped grid: LAPACK's eigh took 13 us per 10 x 10 matrix on a 2-core CPU,
    six times this whole solve (2 us, batched over 1,500), and ran past the grid's time
    budget on its own at one per generation."""
    d = gram.shape[-1]
    tol = _cutoff(gram, rows)

    def eliminate(k, carry):
        schur, factor, kept, free = carry
        diagonal = jnp.where(free, jnp.diagonal(schur), -jnp.inf)
        pick = jnp.arange(d) == jnp.argmax(diagonal)  # one-hot: no gather under vmap
        pivot = jnp.max(diagonal)
        ok = pivot > tol  # once a pivot fails, every later one (no larger) fails too
        scale = jax.lax.rsqrt(jnp.where(ok, pivot, 1))
        column = jnp.where(free & ok, schur @ pick.astype(gram.dtype) * scale, 0)
        return (schur - jnp.outer(column, column), factor.at[:, k].set(column),
                kept.at[k].set(ok), free & ~pick)  # fmt: skip

    start = (gram, jnp.zeros_like(gram), jnp.zeros(d, bool), jnp.ones(d, bool))
    _, factor, kept, _ = jax.lax.fori_loop(0, d, eliminate, start)
    return factor, kept


def _inverse(matrix: Array) -> Array:
    """The inverse of a symmetric positive definite matrix by Gauss-Jordan elimination, in d
    vector steps like the factorisation; no pivoting: every pivot of a positive definite matrix
    is positive."""

    def eliminate(k, a):
        row = a[k].at[k].set(1) / a[k, k]
        column = a[:, k].at[k].set(0)
        return (a.at[:, k].set(0) - jnp.outer(column, row)).at[k].set(row)

    return jax.lax.fori_loop(0, matrix.shape[-1], eliminate, matrix)


def min_norm(
    gram: Float[Array, "d d"], moment: Float[Array, " d"], rows: int
) -> Float[Array, " d"]:
    """The minimum-norm least-squares fit w = G^+ m from the normal equations G = X^T W X and
    m = X^T W y of `rows` weighted rows (weight-0 rows add nothing to either): the pseudo-inverse
    solution, which fits T <= d rows and repeated rows as np.linalg.lstsq does. With
    G = L L^T (pivoted Cholesky, r pivots above `_cutoff`) and K = L^T L on those pivots,
    G^+ = L K^-2 L^T. A ridge is G + delta I (positive definite: K^-2 then gives its inverse)."""
    factor, kept = _pivoted_cholesky(gram, rows)
    inverse = _inverse(factor.T @ factor + jnp.diag(~kept).astype(gram.dtype))
    return factor @ (inverse @ (inverse @ (factor.T @ moment)))


# --- random numbers -------------------------------------------------------------------------


def _bits(dtype: Any, key: Key[Array, ""], n: int) -> Array:
    """n random words, 32 bits wide for float32 runs and 64 for float64 (a uniform float needs
    its mantissa's worth), as one flat array: threefry compiles a two-dimensional draw about six
    times slower under vmap than a flat one."""
    unsigned = jnp.uint64 if jnp.dtype(dtype).itemsize == 8 else jnp.uint32
    return jax.random.bits(key, (n,), unsigned)


def _uniform(bits: Array, dtype: Any) -> Array:
    """U(0, 1) on the grid (i + 1/2) 2^-m, m the float's mantissa bits (the top bits of each
    word): strictly inside (0, 1) and symmetric about 1/2."""
    mantissa = jnp.finfo(dtype).nmant
    top = bits >> (8 * bits.dtype.itemsize - mantissa)
    return (top.astype(dtype) + 0.5) * 2.0**-mantissa


def _normal(bits: Array, dtype: Any) -> Array:
    """N(0, 1) by the inverse error function, as jax.random.normal draws it."""
    return math.sqrt(2) * jax.lax.erf_inv(2 * _uniform(bits, dtype) - 1)


def _choose(bits: Array, count: Array, size: Array, rows: int) -> Int[Array, " samples"]:
    """`size` distinct numbers drawn uniformly from range(count) (size <= count <= rows) in the
    first `size` entries (the others are meaningless), in O(samples log samples) work whatever
    count is: Floyd's algorithm. Step k < size (top = count - size + k) draws t uniform on
    [0, top] and takes t, or top if t is taken already. t is taken iff an earlier step drew the
    same t (found by sorting), or the step whose top is t (link = t - count + size < k) took its
    top; those chains of links resolve by pointer doubling, in as many rounds as the longest
    chain needs (log2 of its length). Each word's remainder is uniform within top / 2^32 of
    uniform (2^-64 for 64-bit words)."""
    slots = bits.shape[0]
    k = jnp.arange(slots)
    top = count - size + k
    t = (bits % jnp.maximum(top + 1, 1).astype(bits.dtype)).astype(top.dtype)
    t = jnp.where(k < size, t, rows)  # the unused steps sort last
    wide = jax.dtypes.canonicalize_dtype(jnp.int64)
    if (rows + 1) * slots <= jnp.iinfo(wide).max:  # one sort key (t, k): 6 times faster than two
        order = jnp.sort(t.astype(wide) * slots + k)
        drawn, order = (order // slots).astype(t.dtype), (order % slots).astype(k.dtype)
    else:
        drawn, order = jax.lax.sort((t, k), num_keys=1, is_stable=True)
    repeat = jnp.zeros(slots, bool).at[order].set(jnp.insert(drawn[1:] == drawn[:-1], 0, False))
    link = t - count + size
    chained = (link >= 0) & (link < k)

    def double(carry):
        taken, chained, pointer = carry
        return taken | (chained & taken[pointer]), chained & chained[pointer], pointer[pointer]

    start = (repeat, chained, jnp.where(chained, link, k))
    taken = jax.lax.while_loop(lambda carry: jnp.any(carry[1]), double, start)[0]
    # In the order of t (the used steps first): ascending but for the few tops taken, so that
    # reading the rows from a large buffer goes mostly forward.
    return jnp.where(taken[order], top[order], drawn)


# --- the loop ---------------------------------------------------------------------------------


def _size(params: Params, t) -> Array:
    """The rows generation t + 1 draws: sizes[t], n_samples or samples."""
    if params.sizes is not None:
        return jnp.asarray(params.sizes)[t]
    return jnp.asarray(params.samples if params.n_samples is None else params.n_samples)


def _eigen(params: Params) -> bool:
    """Whether every generation fits the same weighted rows of a fixed design (OLS without a
    verifier, replace or accumulate, one size for all): then the fit goes through the
    eigendecomposition of X_0^T D X_0, computed once."""
    return (params.design == "fixed" and params.learner == "ols" and not params.verify
            and params.regime in ("replace", "accumulate") and params.sizes is None)  # fmt: skip


def _buffered(params: Params) -> bool:
    return params.regime == "subsample" or (
        params.learner == "sgd" and params.regime == "accumulate"
    )


def init(params: Params, key: Key[Array, ""]) -> State:
    """Empty buffers, w_0 = w* (generation 1 is labelled by the truth) and, with a fixed design,
    X_0 (and its Gram's eigendecomposition where the fit goes through it)."""
    d, dtype = params.dim, jnp.result_type(params.noise)  # float32 when the sweep casts Params
    n_design = params.samples if params.design == "fixed" else 0
    design = jnp.zeros((0, d), dtype)
    if n_design:
        design = _normal(_bits(dtype, key, n_design * d), dtype).reshape(n_design, d)
        design = design * jnp.sqrt(variances(params, dtype))[None, :]
    gram, eigen, basis = jnp.zeros((d, d), dtype), jnp.zeros(0, dtype), jnp.zeros((d, 0), dtype)
    if _eigen(params):
        drawn = (jnp.arange(params.samples) < _size(params, 0)).astype(dtype)
        gram = (design * drawn[:, None]).T @ design
        eigen, basis = jnp.linalg.eigh(gram)
        eigen = jnp.where(eigen > _cutoff(gram, params.samples), eigen, 0)
    rows = params.samples * params.generations if _buffered(params) else 0
    return State(
        w=target(params, dtype), gram=gram, moment=jnp.zeros(d, dtype), design=design,
        eigen=eigen, basis=basis, buffer=jnp.zeros((rows, 2 if n_design else d + 1), dtype),
        count=jnp.zeros((), jnp.int32), t=jnp.zeros((), jnp.int32),
    )  # fmt: skip


def _draw(params: Params, state: State, bits: Array):
    """This generation's inputs, labels, weights (drawn rows that pass the verifier) and drawn
    rows, from its random words (inputs, noise, then the verifier's two uniforms per row)."""
    dtype, n, d = state.w.dtype, params.samples, params.dim
    if params.design == "fixed":
        x = state.design
    else:
        scale = jnp.sqrt(variances(params, dtype))[None, :]
        x = _normal(bits[: n * d], dtype).reshape(n, d) * scale
        bits = bits[n * d :]
    row = jnp.arange(n)
    real = state.t == 0
    if params.regime == "mix":
        real = real | (row < params.n_real)
    sigma = jnp.sqrt(jnp.asarray(params.noise, dtype))
    noise = sigma * _normal(bits[:n], dtype)
    if params.regime == "mix" or params.verify:
        truth = x @ target(params, dtype)
        y = jnp.where(real, truth, x @ state.w) + noise
    else:  # w_0 = w*: generation 1 is labelled by the truth
        truth, y = None, x @ state.w + noise
    drawn = row < _size(params, state.t)
    keep = drawn
    if params.verify:
        assert truth is not None
        close = jnp.abs(y - truth) <= params.threshold * sigma
        checked = _uniform(bits[n : 2 * n], dtype) < params.verifier
        coin = _uniform(bits[2 * n : 3 * n], dtype) < 0.5
        keep = drawn & (real | jnp.where(checked, close, coin))
    return x, y, keep, drawn.astype(dtype)


def _words(params: Params) -> int:
    """Random words per generation: inputs, noise, verifier, subsample draw."""
    n = params.samples
    inputs = n * params.dim if params.design == "fresh" else 0
    return inputs + n + (2 * n if params.verify else 0) + (n if _buffered(params) else 0)


def _store(params: Params, state: State, x, y, keep) -> State:
    """Append the kept rows to the buffer, in order, after the `count` stored so far. Without a
    verifier they are the first T rows: the whole block goes in at `count` (rows past T land
    where the next generation writes), a contiguous copy instead of a scatter."""
    if params.design == "fixed":
        inputs = jnp.arange(params.samples, dtype=x.dtype)[:, None]  # exact below 2^24 rows
    else:
        inputs = x
    rows = jnp.concatenate([inputs, y[:, None]], axis=1)
    kept = jnp.cumsum(keep, dtype=jnp.int32)
    count = state.count + kept[-1]
    if not params.verify:
        return state._replace(buffer=jax.lax.dynamic_update_slice_in_dim(
            state.buffer, rows, state.count, axis=0), count=count)  # fmt: skip
    slot = jnp.where(keep, state.count + kept - 1, state.buffer.shape[0])  # past the end: dropped
    return state._replace(buffer=state.buffer.at[slot].set(rows, mode="drop"), count=count)


def _gather(params: Params, state: State, slot) -> tuple[Array, Array]:
    """The buffered rows at `slot` (inputs, labels)."""
    rows = state.buffer.at[slot].get(mode="clip")
    if params.design == "fixed":
        return state.design[rows[:, 0].astype(jnp.int32)], rows[:, 1]
    return rows[:, :-1], rows[:, -1]


def _fit_rows(params: Params, state: State, x, y, keep, bits):
    """The rows this generation fits, with their weights: the new ones (replace, mix, OLS
    accumulate), every buffered one (SGD accumulate) or `size` drawn from the buffer without
    replacement (subsample; in buffer order for SGD, whose pass is ordered)."""
    if not _buffered(params):
        return state, x, y, keep.astype(x.dtype)
    state = _store(params, state, x, y, keep)
    slots = jnp.arange(state.buffer.shape[0])
    if params.regime == "accumulate":
        rows_x, rows_y = _gather(params, state, slots)
        return state, rows_x, rows_y, (slots < state.count).astype(x.dtype)
    size = jnp.minimum(_size(params, state.t), state.count).astype(jnp.int32)
    chosen = _choose(bits, state.count, size, slots.size)
    first = jnp.arange(params.samples) < size
    if params.learner == "sgd":
        chosen = jnp.sort(jnp.where(first, chosen, slots.size))
    rows_x, rows_y = _gather(params, state, chosen)
    return state, rows_x, rows_y, first.astype(x.dtype)


def _sgd(params: Params, x, y, weight) -> Float[Array, " d"]:
    """One pass of SGD from w = 0 over the rows, in order (weight-0 rows make no step)."""

    def update(w, row):
        xi, yi, wi = row
        return w - params.lr * wi * (xi @ w - yi) * xi, None

    return jax.lax.scan(update, jnp.zeros(params.dim, x.dtype), (x, y, weight))[0]


def _ridge(params: Params, dtype) -> Array:
    return jnp.asarray(params.ridge, dtype) * jnp.eye(params.dim, dtype=dtype)


def _eigen_step(params: Params, state: State, bits) -> State:
    """A fixed design's generation through its Gram G = X_0^T D X_0 = V diag(lambda) V^T: the
    labels y = X_0 w + sigma xi enter only as X_0^T D y = G w + sigma X_0^T D xi, and the n
    generations accumulated so far fit (n G + delta I)^+ sum X_0^T D y."""
    dtype = state.w.dtype
    drawn = (jnp.arange(params.samples) < _size(params, state.t)).astype(dtype)
    sigma = jnp.sqrt(jnp.asarray(params.noise, dtype))
    noise = sigma * _normal(bits[: params.samples], dtype)
    moment = state.gram @ state.w + state.design.T @ (drawn * noise)
    n = 1
    if params.regime == "accumulate":
        moment, n = state.moment + moment, state.t + 1
    scale = n * state.eigen + jnp.asarray(params.ridge, dtype)
    inverse = jnp.where(scale > 0, 1 / jnp.where(scale > 0, scale, 1), 0)
    w = state.basis @ (inverse * (state.basis.T @ moment))
    return state._replace(w=w, moment=moment)


def step(params: Params, state: State, key: Key[Array, ""]) -> tuple[State, Obs]:
    """One generation: draw, label, verify, fit on the regime's rows."""
    dtype = state.w.dtype
    bits = _bits(dtype, key, _words(params))
    if _eigen(params):
        state, accepted = _eigen_step(params, state, bits), jnp.ones((), dtype)
    else:
        x, y, keep, drawn = _draw(params, state, bits)
        weight = keep.astype(dtype)
        accepted = jnp.sum(weight) / jnp.sum(drawn)
        state, rows_x, rows_y, rows_w = _fit_rows(
            params, state, x, y, keep, bits[-params.samples :]
        )
        if params.learner == "sgd":
            w = _sgd(params, rows_x, rows_y, rows_w)
        else:
            gram, moment = (rows_x * rows_w[:, None]).T @ rows_x, rows_x.T @ (rows_w * rows_y)
            if params.regime == "accumulate":
                gram, moment = state.gram + gram, state.moment + moment
            state = state._replace(gram=gram, moment=moment)
            w = min_norm(gram + _ridge(params, dtype), moment, params.samples)
        state = state._replace(w=w)
    delta = state.w - target(params, dtype)
    obs = Obs(jnp.sum(delta**2), jnp.sum(variances(params, dtype) * delta**2), accepted)
    return state._replace(t=state.t + 1), obs
