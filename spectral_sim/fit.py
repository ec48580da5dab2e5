"""Statistics for verdicts: power-law fits y ~ (E +) A x^-alpha on a chosen or automatic window,
Chinchilla-style L(N, D) = E + A N^-alpha + B D^-beta fits (Hoffmann et al. 2022, Approach 3),
both with bootstrap intervals computed as one vmapped call over resamples and restarts; standard
errors of seed means and the z multiplier for m simultaneous comparisons."""

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.scipy.special import ndtri

from spectral_sim._types import Array, ArrayLike, Bool, Float, check_count

__all__ = [
    "ChinchillaFit", "DecayComparison", "Frontier", "InvertedCurve", "PowerLawFit", "SpectrumFit",
    "chinchilla", "decay_comparison", "frontier", "invert_ridge_curve", "power_law", "sem",
    "spectrum_exponent", "target_exponent", "z_simultaneous",
]  # fmt: skip


HUBER_DELTA = 1e-3  # Hoffmann et al. and the replication (Besiroglu et al. 2024)
LBFGS_STEPS = 300
# A fit has converged when the gradient of the summed Huber objective is below this: its
# residuals are ~1e-2 in log L, so a gradient of 1e-6 moves no parameter's estimate visibly.
GRADIENT_TOL = 1e-6


class PowerLawFit(NamedTuple):
    """y ~ floor + prefactor * x^-exponent on the x-range `window`. `stderr` is the OLS
    standard error of the exponent (no floor; it reflects curvature, not noise, when y is
    deterministic); `exponent_ci` / `floor_ci` are percentile bootstrap intervals at `level`
    (NaN without bootstrap); `converged` is False when the floor fit's gradient did not vanish."""

    exponent: Float[Array, ""]
    prefactor: Float[Array, ""]
    stderr: Float[Array, ""]
    floor: Float[Array, ""]
    exponent_ci: Float[Array, "2"]
    floor_ci: Float[Array, "2"]
    window: tuple[float, float]
    converged: Bool[Array, ""]
    level: float


# Auto window: the widest run of consecutive points whose local log-log slopes all lie within
# WINDOW_RTOL (relative) of the run's fitted exponent, at least WINDOW_MIN_POINTS long. Finite-
# size regions (k* near 1, or near the number of modes) bend the curve and fall outside it.
WINDOW_RTOL = 0.05
WINDOW_MIN_POINTS = 5
# Starting floors of the E + A x^-alpha fit, as fractions of min(y).
FLOOR_STARTS = (0.0, 0.3, 0.6, 0.9)


def power_law(
    x: Float[ArrayLike, " n"],
    y: Float[ArrayLike, " n"],
    *,
    window: tuple[float, float] | str | None = None,
    floor: bool = False,
    n_boot: int = 0,
    level: float = 0.95,
    seed: int = 0,
    steps: int = LBFGS_STEPS,
) -> PowerLawFit:
    """Fit y ~ A x^-alpha (least squares on log y), or y ~ E + A x^-alpha with `floor`.

    `window` = (x_lo, x_hi) keeps the points inside it, "auto" picks the widest window of
    constant local slope (WINDOW_RTOL), None keeps all; the result says which window was used.
    With `n_boot`, percentile intervals at `level` from n_boot resamples of the window's points
    (drawn from `seed`), all refitted in one vmapped call.
    """
    x_np, y_np = _check_points(("x", "y"), x, y, n_params=3 if floor else 2)
    check_count("n_boot", n_boot, low=0)
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1); got {level!r}")
    inside = _window(x_np, y_np, window)
    if inside.sum() < 3:
        raise ValueError(f"window {window} keeps {int(inside.sum())} points; a fit needs >= 3")
    x_np, y_np = x_np[inside], y_np[inside]
    dtype = jnp.result_type(float)
    lx, ly = jnp.asarray(np.log(x_np), dtype), jnp.asarray(np.log(y_np), dtype)
    weights = jnp.ones((1, x_np.size), dtype)
    if n_boot:
        weights = jnp.concatenate([weights, _resample_counts(seed, n_boot, x_np.size, dtype)])
    if floor:
        alpha, prefactor, e, gradient = _floor_fits(lx, ly, weights, steps)
        converged = gradient[0] < GRADIENT_TOL
    else:
        alpha, prefactor = _ols_fits(lx, ly, weights)
        e, converged = jnp.zeros_like(alpha), jnp.asarray(True)
    stderr = _ols_stderr(jnp.asarray(x_np, dtype), jnp.asarray(y_np, dtype))
    nan = jnp.full(2, jnp.nan, dtype)
    exponent_ci, floor_ci = nan, nan
    if n_boot:
        q = jnp.array([50 * (1 - level), 100 - 50 * (1 - level)])
        exponent_ci = jnp.percentile(alpha[1:], q)
        floor_ci = jnp.percentile(e[1:], q) if floor else nan
    used = (float(x_np.min()), float(x_np.max()))
    return PowerLawFit(
        alpha[0], prefactor[0], stderr, e[0], exponent_ci, floor_ci, used, converged, level
    )


def _resample_counts(seed: int, n_boot: int, size: int, dtype) -> Float[Array, "boot n"]:
    """How often each of `size` points appears in each of n_boot bootstrap resamples (drawn
    from key(seed)): weights that refit every resample in one vmapped call."""
    draws = jax.random.randint(jax.random.key(seed), (n_boot, size), 0, size)
    return jax.vmap(lambda i: jnp.bincount(i, length=size))(draws).astype(dtype)


def _window(x: np.ndarray, y: np.ndarray, window) -> np.ndarray:
    if window is None:
        return np.ones(x.size, bool)
    if isinstance(window, str):
        if window != "auto":
            raise ValueError(f"window must be (x_lo, x_hi), 'auto' or None; got {window!r}")
        return _auto_window(x, y)
    lo, hi = window
    if not 0 < lo < hi:
        raise ValueError(f"window must be (x_lo, x_hi) with 0 < x_lo < x_hi; got {window!r}")
    return (x >= lo) & (x <= hi)


def _auto_window(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The widest (in log x) run of consecutive points, in x order, whose local slopes stay
    within WINDOW_RTOL of the run's least-squares slope."""
    order = np.argsort(x)
    lx, ly = np.log(x[order]), np.log(y[order])
    local = np.diff(ly) / np.diff(lx)
    best, span = None, -1.0
    for i in range(lx.size):
        for j in range(i + WINDOW_MIN_POINTS - 1, lx.size):
            slope = np.polyfit(lx[i : j + 1], ly[i : j + 1], 1)[0]
            if np.all(np.abs(local[i:j] - slope) <= WINDOW_RTOL * abs(slope)):
                if lx[j] - lx[i] > span:
                    best, span = (i, j), lx[j] - lx[i]
    if best is None:
        raise ValueError(
            f"no window of >= {WINDOW_MIN_POINTS} points where the local slope is constant "
            f"within {WINDOW_RTOL:.0%}; pass window=(x_lo, x_hi)"
        )
    inside = np.zeros(x.size, bool)
    inside[order[best[0] : best[1] + 1]] = True
    return inside


@jax.jit
def _ols_fits(lx, ly, weights):
    """Weighted least squares of log y on log x, one row of weights per fit."""

    def one(w):
        mx, my = w @ lx / w.sum(), w @ ly / w.sum()
        slope = (w * (lx - mx)) @ (ly - my) / ((w * (lx - mx)) @ (lx - mx))
        return -slope, jnp.exp(my - slope * mx)

    return jax.vmap(one)(weights)


@functools.partial(jax.jit, static_argnames=("steps",))
def _floor_fits(lx, ly, weights, steps):
    """E + A x^-alpha by L-BFGS on the squared log residuals, parameters (log A, alpha, log E),
    from the floors FLOOR_STARTS * min(y) with alpha, A from the log-log fit of y - E."""
    y_min = jnp.exp(ly.min())

    def start(fraction):
        e = fraction * y_min
        slope, intercept = jnp.polyfit(lx, jnp.log(jnp.exp(ly) - e), 1)
        return jnp.stack([intercept, -slope, jnp.log(jnp.maximum(e, 1e-12 * y_min))])

    starts = jax.vmap(start)(jnp.asarray(FLOOR_STARTS, ly.dtype))

    def objective(theta, w):
        log_a, alpha, log_e = theta
        predicted = jnp.logaddexp(log_a - alpha * lx, log_e)
        return w @ (predicted - ly) ** 2

    def one(x0, w):
        return _lbfgs(functools.partial(objective, w=w), x0, steps)

    theta, value, gradient = jax.vmap(jax.vmap(one, in_axes=(0, None)), in_axes=(None, 0))(
        starts, weights
    )
    best = jnp.argmin(jnp.where(jnp.isfinite(value), value, jnp.inf), axis=1)
    theta = jax.vmap(lambda t, i: t[i])(theta, best)
    gradient = jax.vmap(lambda g, i: g[i])(gradient, best)
    return theta[:, 1], jnp.exp(theta[:, 0]), jnp.exp(theta[:, 2]), gradient


@jax.jit
def _ols_stderr(x, y) -> Float[Array, ""]:
    """The OLS standard error of the log-log slope."""
    lx, ly = jnp.log(x), jnp.log(y)
    dx = lx - lx.mean()
    slope = dx @ (ly - ly.mean()) / (dx @ dx)
    residual = ly - ly.mean() - slope * dx
    return jnp.sqrt(residual @ residual / (x.shape[0] - 2) / (dx @ dx))


def sem(x: Float[Array, "..."], axis: int = 0) -> Float[Array, "..."]:
    """Standard error of the mean along `axis` (sample std with ddof = 1 over sqrt(n))."""
    n = x.shape[axis]
    return jnp.std(x, axis=axis, ddof=1) / jnp.sqrt(n)


def z_simultaneous(m: int, alpha: float = 0.05) -> float:
    """Two-sided normal quantile for m comparisons at family-wise level alpha (Bonferroni).

    From the upper tail in float64 (SciPy), so it stays finite for any m even when JAX runs in
    float32 (1 - alpha / 2m rounds to 1 in float32 beyond m ~ 1e6)."""
    from scipy.stats import norm

    return float(norm.isf(alpha / (2 * max(m, 1))))


# --- L(N, D) = E + A N^-alpha + B D^-beta ("Approach 3" of Hoffmann et al. 2022) --------------

# Hoffmann et al.'s grid of starting points (their Appendix D.2), in the log-sum-exp
# parameters (a, b, e, alpha, beta) with A = e^a, B = e^b, E = e^e.
CHINCHILLA_GRID = dict(
    a=(0.0, 5.0, 10.0, 15.0, 20.0, 25.0),
    b=(0.0, 5.0, 10.0, 15.0, 20.0, 25.0),
    e=(-1.0, -0.5, 0.0, 0.5, 1.0),
    alpha=(0.0, 0.5, 1.0, 1.5, 2.0),
    beta=(0.0, 0.5, 1.0, 1.5, 2.0),
)


class ChinchillaFit(NamedTuple):
    """L(N, D) = E + A N^-alpha + B D^-beta; `*_ci` are (low, high) percentile bootstrap
    intervals at `level` (NaN without bootstrap); `objective` the summed Huber loss at the
    optimum; `converged` whether its gradient norm fell below GRADIENT_TOL."""

    E: Float[Array, ""]
    A: Float[Array, ""]
    B: Float[Array, ""]
    alpha: Float[Array, ""]
    beta: Float[Array, ""]
    E_ci: Float[Array, "2"]
    A_ci: Float[Array, "2"]
    B_ci: Float[Array, "2"]
    alpha_ci: Float[Array, "2"]
    beta_ci: Float[Array, "2"]
    objective: Float[Array, ""]
    converged: Bool[Array, ""]
    level: float


def _huber(r, delta):
    return jnp.where(jnp.abs(r) <= delta, 0.5 * r**2, delta * (jnp.abs(r) - 0.5 * delta))


def _chinchilla_objective(theta, log_n, log_d, log_l, weight, delta):
    """Summed (not averaged: the replication traced Hoffmann et al.'s early stop to averaging)
    Huber loss of log L against LSE(a - alpha log N, b - beta log D, e)."""
    a, b, e, alpha, beta = theta
    terms = jnp.stack([a - alpha * log_n, b - beta * log_d, jnp.broadcast_to(e, log_n.shape)])
    predicted = jax.scipy.special.logsumexp(terms, axis=0)
    return weight @ _huber(predicted - log_l, delta)


def _lbfgs(fun, x0, steps: int):
    """Minimise fun from x0 with optax L-BFGS (zoom line search) for a fixed number of steps;
    returns the minimiser, the value and the gradient norm there."""
    optimizer = optax.lbfgs()
    value_and_grad = optax.value_and_grad_from_state(fun)

    def body(carry, _):
        x, state = carry
        value, grad = value_and_grad(x, state=state)
        updates, state = optimizer.update(grad, state, x, value=value, grad=grad, value_fn=fun)
        return (optax.apply_updates(x, updates), state), None

    (x, _), _ = jax.lax.scan(body, (x0, optimizer.init(x0)), None, length=steps)
    value, grad = jax.value_and_grad(fun)(x)
    return x, value, jnp.linalg.norm(grad)


@functools.partial(jax.jit, static_argnames=("steps",))
def _chinchilla_fits(starts, log_n, log_d, log_l, weights, delta, steps):
    """Best of the starts for each row of weights (one bootstrap resample each): one compiled
    optimisation over resamples x starts (`_over_lanes`)."""

    def one(lane):
        x0, weight = lane
        fun = functools.partial(
            _chinchilla_objective, log_n=log_n, log_d=log_d, log_l=log_l, weight=weight,
            delta=delta,
        )  # fmt: skip
        return _lbfgs(fun, x0, steps)

    shape = (weights.shape[0], starts.shape[0])
    lanes = (
        jnp.broadcast_to(starts, (*shape, starts.shape[1])).reshape(-1, starts.shape[1]),
        jnp.broadcast_to(weights[:, None], (*shape, weights.shape[1])).reshape(
            -1, weights.shape[1]
        ),
    )
    out = _over_lanes(one, lanes)
    theta, value, gradient = jax.tree.map(lambda x: x.reshape(*shape, *x.shape[1:]), out)
    value = jnp.where(jnp.isfinite(value), value, jnp.inf)
    best = jnp.argmin(value, axis=1)
    pick = jax.vmap(lambda x, i: x[i])
    return pick(theta, best), pick(value, best), pick(gradient, best)


def _over_lanes(fun, lanes):
    """fun over the leading axis of `lanes`: vmapped on accelerators; on CPU one lane after
    another (`lax.map`), because a vmapped L-BFGS runs every lane's line search for as long as
    the slowest lane's, which made it 2x slower there (500 starts: 6.6 s vs 3.2 s measured)."""
    if jax.default_backend() == "cpu":
        return jax.lax.map(fun, lanes)
    return jax.vmap(fun)(lanes)


def _chinchilla_starts(grid: dict, dtype) -> Float[Array, "starts 5"]:
    mesh = np.meshgrid(*(grid[k] for k in ("a", "b", "e", "alpha", "beta")), indexing="ij")
    return jnp.asarray(np.stack([m.ravel() for m in mesh], axis=-1), dtype)


def _check_points(names: tuple[str, ...], *arrays, n_params: int) -> list[np.ndarray]:
    """1-d, equal length, more points than parameters, finite, > 0; ValueError naming the
    offending input."""
    out = [np.asarray(a, dtype=float) for a in arrays]
    for name, a in zip(names, out, strict=True):
        if a.ndim != 1 or a.shape != out[0].shape:
            raise ValueError(f"{name} must be 1-d with the length of {names[0]}; got {a.shape}")
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{name} has NaN or inf at {np.flatnonzero(~np.isfinite(a))[:5]}")
        if np.any(a <= 0):
            raise ValueError(f"{name} must be > 0 everywhere (the fit is in log space)")
    if out[0].size <= n_params:
        raise ValueError(
            f"a {n_params}-parameter fit needs more than {n_params} points; got {out[0].size}"
        )
    return out


def chinchilla(
    N: Float[ArrayLike, " n"],
    D: Float[ArrayLike, " n"],
    L: Float[ArrayLike, " n"],
    *,
    n_boot: int = 0,
    boot_restarts: int = 1,
    level: float = 0.95,
    seed: int = 0,
    grid: dict | None = None,
    delta: float = HUBER_DELTA,
    steps: int = LBFGS_STEPS,
) -> ChinchillaFit:
    """Fit L = E + A N^-alpha + B D^-beta as Hoffmann et al.'s Approach 3: Huber loss (delta)
    on log L against LSE(a - alpha log N, b - beta log D, e), L-BFGS from every point of
    `grid` (default CHINCHILLA_GRID, 4500 starts), best start kept.

    With `n_boot`, percentile intervals at `level` from n_boot resamples of the points (drawn
    from `seed`), each refitted from the full-data optimum and `boot_restarts - 1` further
    grid points, all in one vmapped call.
    """
    n, d, loss = _check_points(("N", "D", "L"), N, D, L, n_params=5)
    check_count("n_boot", n_boot, low=0)
    check_count("boot_restarts", boot_restarts)
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1); got {level!r}")
    dtype = jnp.result_type(float)
    starts = _chinchilla_starts(grid or CHINCHILLA_GRID, dtype)
    data = [jnp.asarray(np.log(x), dtype) for x in (n, d, loss)]
    theta, value, gradient = _chinchilla_fits(
        starts, *data, jnp.ones((1, n.size), dtype), delta, steps
    )
    ci = jnp.full((5, 2), jnp.nan, dtype)
    if n_boot:
        spread = starts[:: max(1, starts.shape[0] // boot_restarts)][: boot_restarts - 1]
        boot_starts = jnp.concatenate([theta, spread])
        weights = _resample_counts(seed, n_boot, n.size, dtype)
        boot = _chinchilla_fits(boot_starts, *data, weights, delta, steps)[0]
        tail = 100 * (1 - level) / 2
        ci = jnp.percentile(_natural(boot), jnp.array([tail, 100 - tail]), axis=0).T
    return ChinchillaFit(
        *_natural(theta)[0], *ci, objective=value[0], converged=gradient[0] < GRADIENT_TOL,
        level=level,
    )  # fmt: skip


def _natural(theta: Float[Array, "fits 5"]) -> Float[Array, "fits 5"]:
    """(a, b, e, alpha, beta) -> (E, A, B, alpha, beta)."""
    a, b, e, alpha, beta = theta.T
    return jnp.stack([jnp.exp(e), jnp.exp(a), jnp.exp(b), alpha, beta], axis=-1)


# --- the compute-optimal frontier -----------------------------------------------------------


class Frontier(NamedTuple):
    """Per compute budget C (rows of an iso-compute sweep): the loss-minimising model size N*,
    data D* = C / N* and loss L*, with percentile bootstrap intervals over seeds (`*_ci`, rows x
    (low, high); NaN without seeds or bootstrap); `interior` is False where the minimum sat on
    the edge of the row's N range (N* is then only a bound). The allocation and loss exponents
    are power-law fits over the interior rows: N* ~ C^n_exponent, D* ~ C^d_exponent,
    L* ~ C^-loss_exponent."""

    compute: Float[Array, " rows"]
    n_star: Float[Array, " rows"]
    d_star: Float[Array, " rows"]
    loss_star: Float[Array, " rows"]
    n_star_ci: Float[Array, "rows 2"]
    loss_star_ci: Float[Array, "rows 2"]
    interior: Bool[Array, " rows"]
    n_exponent: PowerLawFit
    d_exponent: PowerLawFit
    loss_exponent: PowerLawFit


def _vertex(log_n: Float[Array, " n"], loss: Float[Array, " n"]):
    """The minimum of a row refined by the parabola in log N through the smallest loss and its
    neighbours: (log N*, L*, whether the minimum is interior)."""
    i = jnp.argmin(loss)
    interior = (i > 0) & (i < loss.shape[0] - 1)
    j = jnp.clip(i, 1, loss.shape[0] - 2)
    x = jax.lax.dynamic_slice(log_n, (j - 1,), (3,))
    y = jax.lax.dynamic_slice(loss, (j - 1,), (3,))
    a, b, c = jnp.polyfit(x - x[1], y, 2)
    shift = jnp.where(a > 0, jnp.clip(-b / (2 * a), x[0] - x[1], x[2] - x[1]), 0.0)
    refined = (x[1] + shift, a * shift**2 + b * shift + c)
    return (
        jnp.where(interior, refined[0], log_n[i]),
        jnp.where(interior, refined[1], loss[i]),
        interior,
    )


@jax.jit
def _frontier_rows(log_n, loss, weights):
    """Vertices of every row for every seed weighting (rows x seeds losses)."""

    def one(w):
        mean = loss @ w / w.sum()
        return jax.vmap(_vertex)(log_n, mean)

    return jax.vmap(one)(weights)


def frontier(
    n: Float[ArrayLike, "rows cols"],
    loss: Float[ArrayLike, "rows cols *seeds"],
    compute: Float[ArrayLike, " rows"],
    *,
    n_boot: int = 0,
    level: float = 0.95,
    seed: int = 0,
) -> Frontier:
    """The compute-optimal frontier of an iso-compute sweep: row r holds model sizes n[r] (any
    increasing values) trained at data C_r / n, with losses loss[r] (and a trailing seeds axis,
    averaged; with `n_boot`, seeds are resampled for intervals of N*, L* and the exponents).
    Each row's minimum is refined by a parabola in log N; the exponents are fitted over the rows
    whose minimum is interior (in the full-sample fit, for every resample)."""
    n_np, compute_np = np.asarray(n, float), np.asarray(compute, float)
    loss_np = np.asarray(loss, float)
    if loss_np.ndim == 2:
        loss_np = loss_np[..., None]
    if n_np.ndim != 2 or loss_np.shape[:2] != n_np.shape or compute_np.shape != n_np.shape[:1]:
        raise ValueError(
            f"need n (rows, cols), loss (rows, cols[, seeds]) and compute (rows,); got "
            f"{n_np.shape}, {np.shape(loss)}, {compute_np.shape}"
        )
    if n_np.shape[1] < 3:
        raise ValueError(f"each row needs >= 3 model sizes to bracket a minimum; got {n_np.shape}")
    for name, a in (("n", n_np), ("loss", loss_np), ("compute", compute_np)):
        if not np.all(np.isfinite(a)) or np.any(a <= 0):
            raise ValueError(f"{name} must be finite and > 0 (a diverged run cannot be fitted)")
    if np.any(np.diff(n_np, axis=1) <= 0):
        raise ValueError("each row of n must be strictly increasing")
    check_count("n_boot", n_boot, low=0)
    seeds, dtype = loss_np.shape[-1], jnp.result_type(float)
    weights = jnp.ones((1, seeds), dtype)
    if n_boot and seeds > 1:
        weights = jnp.concatenate([weights, _resample_counts(seed, n_boot, seeds, dtype)])
    log_n, best, interior = _frontier_rows(
        jnp.asarray(np.log(n_np), dtype), jnp.asarray(loss_np, dtype), weights
    )
    n_star, loss_star = np.exp(np.asarray(log_n[0])), np.asarray(best[0])
    inside = np.asarray(interior[0])
    q = [50 * (1 - level), 100 - 50 * (1 - level)]
    if weights.shape[0] > 1:
        n_ci = np.percentile(np.exp(np.asarray(log_n[1:])), q, axis=0).T
        loss_ci = np.percentile(np.asarray(best[1:]), q, axis=0).T
    else:
        n_ci = loss_ci = np.full((compute_np.size, 2), np.nan)
    if inside.sum() < 3:
        raise ValueError(
            f"only {int(inside.sum())} rows have an interior minimum; widen the N range of the "
            "rows so that the frontier is bracketed"
        )
    c_in = compute_np[inside]
    fits = [
        power_law(c_in, v) for v in (1 / n_star[inside], n_star[inside] / c_in, loss_star[inside])
    ]  # N* ~ C^xi is fitted as 1/N* ~ C^-xi, so every exponent is reported with its sign
    if weights.shape[0] > 1:  # seed-bootstrap intervals: every resample's rows refitted at once
        log_c = jnp.asarray(np.log(c_in), dtype)
        ones = jnp.ones((1, c_in.size), dtype)
        log_n_in = log_n[1:, inside]
        targets = (-log_n_in, log_n_in - log_c[None], jnp.log(best[1:, inside]))
        fits = [
            fitted._replace(
                exponent_ci=jnp.percentile(
                    jax.vmap(lambda y: _ols_fits(log_c, y, ones)[0][0])(target), jnp.asarray(q)
                ),
                level=level,
            )
            for fitted, target in zip(fits, targets, strict=True)
        ]
    return Frontier(
        jnp.asarray(compute_np), jnp.asarray(n_star), jnp.asarray(compute_np / n_star),
        jnp.asarray(loss_star), jnp.asarray(n_ci), jnp.asarray(loss_ci), jnp.asarray(inside),
        *fits,
    )  # fmt: skip


# --- spectra: lambda_k ~ A k^-s from (empirical) eigenvalues -----------------------------------

# Eigenvalues are averaged (geometrically) in log-spaced bins of k, BINS_PER_OCTAVE per octave, so
# every octave weighs the same in the fit. The auto window is the widest run of bins, at least
# MIN_OCTAVES long, whose one-octave slopes (between bins BINS_PER_OCTAVE apart: single
# eigenvalues fluctuate by ~sqrt(2/n) each, too much for adjacent-bin slopes) stay within
# SPECTRUM_RTOL of the run's fitted exponent; a sample covariance's finite-size tail, which bends
# down once k nears min(n, d), falls outside it.
BINS_PER_OCTAVE = 4
SPECTRUM_RTOL = 0.15
MIN_OCTAVES = 2.0


class SpectrumFit(NamedTuple):
    """lambda_k ~ prefactor k^-exponent on the modes window = (k_lo, k_hi).

    With `n_samples` (eigenvalues of a sample covariance of n_samples rows) the interval is a
    parametric bootstrap: Gaussian data with the fitted spectrum, resampled and refitted on the
    same window; `bias` is the bootstrap mean minus the fit, `exponent` the bias-corrected
    estimate 2 s_hat - mean(s*) and `ci` the basic bootstrap interval. Without it the eigenvalues
    are taken as exact, `bias` = 0 and `ci` is the OLS interval on the binned points (it measures
    curvature, not noise). `raw_exponent` is the fit itself."""

    exponent: float
    prefactor: float
    ci: tuple[float, float]
    raw_exponent: float
    bias: float
    window: tuple[float, float]
    n_bins: int
    method: str
    level: float


def _eigenvalues(eigenvalues: ArrayLike, name: str = "eigenvalues") -> np.ndarray:
    lam = np.asarray(eigenvalues, dtype=float)
    if lam.ndim != 1 or lam.size < 8:
        raise ValueError(f"{name} must be a 1-d array of >= 8 values; got shape {lam.shape}")
    if not np.all(np.isfinite(lam)):
        raise ValueError(f"{name} must be finite")
    lam = np.sort(lam)[::-1]
    if lam[0] <= 0:
        raise ValueError(f"{name} must have a positive largest value; got {lam[0]}")
    return lam[lam > 1e-12 * lam[0]]  # rank deficiency: numerically zero directions


def _binned(lam: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Geometric means of k and of lambda_k in log-spaced bins of k (one mode per bin at the
    top, where bins are narrower than one mode)."""
    k = np.arange(1, lam.size + 1, dtype=float)
    grid = 2.0 ** np.arange(0, np.log2(lam.size) + 1e-9, 1 / BINS_PER_OCTAVE)
    edges = np.unique(np.r_[np.round(grid).astype(int), lam.size + 1])
    logs = [(np.log(k[a - 1 : b - 1]).mean(), np.log(lam[a - 1 : b - 1]).mean())
            for a, b in zip(edges[:-1], edges[1:], strict=True)]  # fmt: skip
    lk, ll = np.array(logs).T
    return lk, ll


def _spectrum_window(lk: np.ndarray, ll: np.ndarray) -> tuple[int, int]:
    """Indices (i, j) of the widest run of bins spanning >= MIN_OCTAVES whose one-octave slopes
    stay within SPECTRUM_RTOL of the run's fitted slope."""
    best, span = None, -1.0
    for i in range(lk.size):
        for j in range(i + BINS_PER_OCTAVE, lk.size):
            width = lk[j] - lk[i]
            if width < MIN_OCTAVES * np.log(2) or width <= span:
                continue
            slope = np.polyfit(lk[i : j + 1], ll[i : j + 1], 1)[0]
            lo = np.arange(i, j + 1 - BINS_PER_OCTAVE)
            local = (ll[lo + BINS_PER_OCTAVE] - ll[lo]) / (lk[lo + BINS_PER_OCTAVE] - lk[lo])
            if np.all(np.abs(local - slope) <= SPECTRUM_RTOL * abs(slope)):
                best, span = (i, j), width
    if best is None:
        raise ValueError(
            f"no window of >= {MIN_OCTAVES:g} octaves where the spectrum's one-octave slope is "
            f"constant within {SPECTRUM_RTOL:.0%}; pass window=(k_lo, k_hi)"
        )
    return best


def _bins_inside(lk: np.ndarray, ll: np.ndarray, window, size: int) -> np.ndarray:
    """The bins of an explicit window (k_lo, k_hi) or of the auto window."""
    if isinstance(window, str):
        if window != "auto":
            raise ValueError(f"window must be (k_lo, k_hi) or 'auto'; got {window!r}")
        i, j = _spectrum_window(lk, ll)
        inside = np.zeros(lk.size, bool)
        inside[i : j + 1] = True
        return inside
    lo, hi = window
    if not 1 <= lo < hi <= size:
        raise ValueError(
            f"window must be (k_lo, k_hi) with 1 <= k_lo < k_hi <= {size}; got {window!r}"
        )
    inside = (lk >= np.log(lo)) & (lk <= np.log(hi))
    if inside.sum() < 3:
        raise ValueError(f"window {window} holds {int(inside.sum())} bins; a fit needs >= 3")
    return inside


def _slope(lk: np.ndarray, ll: np.ndarray) -> tuple[float, float, float]:
    """OLS of ll on lk: (-slope, prefactor, stderr of the slope)."""
    slope, intercept = np.polyfit(lk, ll, 1)
    residual = ll - (intercept + slope * lk)
    dx = lk - lk.mean()
    stderr = np.sqrt(residual @ residual / max(lk.size - 2, 1) / (dx @ dx))
    return -slope, float(np.exp(intercept)), float(stderr)


@functools.partial(jax.jit, static_argnames=("n_samples",))
def _sample_gram(lam: Array, key: Array, n_samples: int) -> Array:
    """A matrix whose non-zero eigenvalues are those of the centred sample covariance of
    n_samples Gaussian rows with covariance diag(lam). For d < n_samples the scatter matrix is
    Lambda^1/2 W Lambda^1/2 with W ~ Wishart_d(n - 1, I), drawn by Bartlett's decomposition
    W = L L^T (L lower triangular, L_ii^2 ~ chi^2_{n-i}, L_ij ~ N(0, 1) below): d^2 draws and
    a d^3 product instead of n d of each. Otherwise the n x n Gram of the drawn rows."""
    d = lam.shape[0]
    if d < n_samples:
        k_normal, k_chi = jax.random.split(key)
        below = jnp.tril(jax.random.normal(k_normal, (d, d), lam.dtype), -1)
        dof = (n_samples - 1 - jnp.arange(d)).astype(lam.dtype)
        diagonal = jnp.sqrt(jax.random.chisquare(k_chi, dof, (d,), lam.dtype))
        factor = jnp.sqrt(lam)[:, None] * (below + jnp.diag(diagonal))
        return factor @ factor.T / n_samples
    x = jax.random.normal(key, (n_samples, d), lam.dtype) * jnp.sqrt(lam)[None]
    x = x - x.mean(axis=0, keepdims=True)
    return x @ x.T / n_samples


@functools.partial(jax.jit, static_argnames=("n_samples", "n_boot"))
def _sample_eigenvalues_mapped(lam: Array, key: Array, n_samples: int, n_boot: int) -> Array:
    def one(key):
        return jnp.linalg.eigvalsh(_sample_gram(lam, key, n_samples))[::-1]

    return jax.lax.map(one, jax.random.split(key, n_boot))


def _sample_eigenvalues(lam: Array, key: Array, n_samples: int, n_boot: int) -> np.ndarray:
    """Eigenvalues (descending) of n_boot sample covariances (`_sample_gram`), min(d, n_samples)
    each. On CPU the Gram matrices are drawn by JAX and decomposed by NumPy's LAPACK one at a
    time (2.5x faster than jaxlib's eigvalsh there, and one matrix in memory at a time); on
    accelerators in one compiled loop."""
    if jax.default_backend() != "cpu":
        return np.asarray(_sample_eigenvalues_mapped(lam, key, n_samples, n_boot))
    keys = jax.random.split(key, n_boot)
    return np.stack([np.linalg.eigvalsh(np.asarray(_sample_gram(lam, k, n_samples)))[::-1]
                     for k in keys])  # fmt: skip


def spectrum_exponent(
    eigenvalues: Float[ArrayLike, " modes"],
    *,
    n_samples: int | None = None,
    n_modes: int | None = None,
    window: tuple[float, float] | str = "auto",
    n_boot: int = 200,
    level: float = 0.95,
    seed: int = 0,
) -> SpectrumFit:
    """Fit lambda_k ~ A k^-s to eigenvalues (any order; numerically zero ones dropped).

    `window` = (k_lo, k_hi) or "auto" (see SPECTRUM_RTOL). `n_samples`: the eigenvalues come from
    a sample covariance of that many rows, so the estimate is bias-corrected and its interval a
    parametric bootstrap over n_boot resamples (THEORY.md §0: fit on a window where
    1 << k << min(n, d)); `n_modes` is the data's dimension d (default: the number of
    eigenvalues; give it when d > n, where only n are non-zero). Without `n_samples`, the
    eigenvalues are treated as exact.
    """
    lam = _eigenvalues(eigenvalues)
    if n_samples is not None:
        check_count("n_samples", n_samples, low=2)
        check_count("n_boot", n_boot, low=10)
    if n_modes is not None:
        check_count("n_modes", n_modes, low=lam.size)
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1); got {level!r}")
    lk, ll = _binned(lam)
    inside = _bins_inside(lk, ll, window, lam.size)
    s_hat, prefactor, stderr = _slope(lk[inside], ll[inside])
    used = (float(np.exp(lk[inside][0])), float(np.exp(lk[inside][-1])))
    if n_samples is None:
        half = float(ndtri(0.5 + level / 2)) * stderr
        return SpectrumFit(float(s_hat), prefactor, (float(s_hat - half), float(s_hat + half)),
                           float(s_hat), 0.0, used, int(inside.sum()), "ols", level)  # fmt: skip
    d = lam.size if n_modes is None else n_modes
    population = jnp.asarray(prefactor * np.arange(1, d + 1, dtype=float) ** -s_hat)
    key = jax.random.key(seed)
    resampled = _sample_eigenvalues(population, key, n_samples, n_boot)
    # the resamples' bins must be the original's: same number of modes (pad a short one)
    rows = np.full((n_boot, lam.size), np.nan)
    width = min(lam.size, resampled.shape[1])
    rows[:, :width] = resampled[:, :width]
    rows = np.where(np.isfinite(rows) & (rows > 0), rows, 1e-300)
    stars = np.array([_slope(*(a[inside] for a in _binned(row)))[0] for row in rows])
    corrected, ci, bias = _basic_bootstrap(float(s_hat), stars, level)
    return SpectrumFit(corrected, prefactor, ci, float(s_hat), bias, used, int(inside.sum()),
                       "parametric bootstrap", level)  # fmt: skip


def _basic_bootstrap(estimate: float, stars: np.ndarray, level: float):
    """(bias-corrected estimate, basic bootstrap interval at `level`, bias) of a parametric
    bootstrap: bias = mean(stars) - estimate; interval (2 estimate - q_hi, 2 estimate - q_lo)."""
    bias = float(stars.mean() - estimate)
    q_lo, q_hi = np.percentile(stars, [50 * (1 - level), 100 - 50 * (1 - level)])
    return estimate - bias, (float(2 * estimate - q_hi), float(2 * estimate - q_lo)), bias


class DecayComparison(NamedTuple):
    """Power law lambda_k ~ A k^-s against geometric decay lambda_k ~ C rho^-k on the same modes
    window = (k_lo, k_hi): least squares on log lambda_k, one point per mode. Both models have
    two parameters, so the smaller residual sum of squares is also the AIC / BIC choice."""

    s: float
    rho: float
    power_rss: float
    geometric_rss: float
    preferred: str
    window: tuple[int, int]


def decay_comparison(
    eigenvalues: Float[ArrayLike, " modes"], *, window: tuple[int, int] | None = None
) -> DecayComparison:
    """Fit both decays to the eigenvalues (sorted descending; numerically zero ones dropped) on
    modes window = (k_lo, k_hi), all modes by default ([P1]'s latent number is rho)."""
    lam = _eigenvalues(eigenvalues)
    lo, hi = (1, lam.size) if window is None else window
    if not 1 <= lo < hi <= lam.size or hi - lo < 2:
        raise ValueError(
            f"window must be (k_lo, k_hi) with 1 <= k_lo, k_hi - k_lo >= 2, k_hi <= {lam.size}; "
            f"got {window!r}"
        )
    k = np.arange(lo, hi + 1, dtype=float)
    ll = np.log(lam[lo - 1 : hi])

    def rss(x):
        coef = np.polyfit(x, ll, 1)
        residual = ll - np.polyval(coef, x)
        return coef[0], float(residual @ residual)

    power_slope, power_rss = rss(np.log(k))
    geometric_slope, geometric_rss = rss(k)
    preferred = "power law" if power_rss <= geometric_rss else "geometric"
    return DecayComparison(-float(power_slope), float(np.exp(-geometric_slope)), power_rss,
                           geometric_rss, preferred, (lo, hi))  # fmt: skip


def target_exponent(
    target_power: Float[ArrayLike, " modes"],
    *,
    window: tuple[float, float] | str = "auto",
    level: float = 0.95,
) -> SpectrumFit:
    """a in v_k^2 ~ k^-a from the target's power per mode, in the eigenbasis order (e.g.
    `Empirical.from_data(x, y).target_power()`), fitted like `spectrum_exponent` on log-binned
    geometric means: the per-mode noise of v_k^2 is multiplicative (a chi-square factor), so it
    shifts log v_k^2 by a constant and leaves the slope alone. Zero entries are dropped. The
    interval is the binned OLS one (`method` "ols")."""
    power = np.asarray(target_power, dtype=float)
    if power.ndim != 1 or power.size < 8 or not np.all(np.isfinite(power)) or np.any(power < 0):
        raise ValueError(
            f"target_power must be a 1-d array of >= 8 finite values >= 0; got shape {power.shape}"
        )
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1); got {level!r}")
    positive = power > 0
    if positive.sum() < 8:
        raise ValueError(f"target_power has {int(positive.sum())} positive values; need >= 8")
    k = np.arange(1, power.size + 1, dtype=float)
    # geometric means over log bins of k, skipping zeros
    grid = 2.0 ** np.arange(0, np.log2(power.size) + 1e-9, 1 / BINS_PER_OCTAVE)
    edges = np.unique(np.r_[np.round(grid).astype(int), power.size + 1])
    logs = [(np.log(k[a - 1 : b - 1][positive[a - 1 : b - 1]]).mean(),
             np.log(power[a - 1 : b - 1][positive[a - 1 : b - 1]]).mean())
            for a, b in zip(edges[:-1], edges[1:], strict=True)
            if positive[a - 1 : b - 1].any()]  # fmt: skip
    lk, ll = np.array(logs).T
    inside = _bins_inside(lk, ll, window, power.size)
    a_hat, prefactor, stderr = _slope(lk[inside], ll[inside])
    half = float(ndtri(0.5 + level / 2)) * stderr
    used = (float(np.exp(lk[inside][0])), float(np.exp(lk[inside][-1])))
    return SpectrumFit(float(a_hat), prefactor, (float(a_hat - half), float(a_hat + half)),
                       float(a_hat), 0.0, used, int(inside.sum()), "ols", level)  # fmt: skip


def _tail_model(k: np.ndarray, end: float, a: float) -> np.ndarray:
    """log of sum_{j >= k}^{end} j^-a, up to a constant, as the midpoint integral
    ((k - 1/2)^(1-a) - (end + 1/2)^(1-a)) / (a - 1) (relative error O(k^-2)), and its a -> 1
    limit log((end + 1/2) / (k - 1/2))."""
    lo, hi = k - 0.5, end + 0.5
    if abs(a - 1) < 1e-9:
        return np.log(np.log(hi / lo))
    return np.log((lo ** (1 - a) - hi ** (1 - a)) / (a - 1))


def _tail_fit(lk: np.ndarray, log_tail: np.ndarray, end: float) -> tuple[float, float]:
    """(a, log C) minimising the squared error of log T(k) = log C + _tail_model (C profiled)."""
    from scipy.optimize import minimize_scalar

    k = np.exp(lk)

    def sse(a):
        residual = log_tail - _tail_model(k, end, a)
        return float(np.sum((residual - residual.mean()) ** 2))

    result = minimize_scalar(sse, bounds=(0.0, 10.0), method="bounded",
                             options=dict(xatol=1e-10))  # fmt: skip
    a = float(result.x)  # pyright: ignore[reportAttributeAccessIssue]
    return a, float(np.mean(log_tail - _tail_model(k, end, a)))


def tail_exponent(
    target_power: Float[ArrayLike, " modes"],
    *,
    window: tuple[float, float],
    n_boot: int = 200,
    level: float = 0.95,
    seed: int = 0,
) -> SpectrumFit:
    """a in v_k^2 ~ C k^-a from the tail sums T(k) = sum_{j >= k} v_j^2 on modes window =
    (k_lo, k_hi): what ridge's bias sees (bias(n) ~ T(n), THEORY.md §2.7), and far less noisy
    than single modes, whose v_k^2 scatter by a chi-square factor. The model is the finite sum
    T(k) = C ((k-1/2)^(1-a) - (M+1/2)^(1-a)) / (a - 1) over the M modes given, so a short spectrum's
    end does not bend the fit. The interval is a parametric bootstrap: v_j^2 = C j^-a chi^2_1
    (Gaussian coefficients of the target on the eigenbasis), refitted n_boot times; `bias` is
    the bootstrap mean minus the fit and `exponent` the bias-corrected value."""
    power = np.asarray(target_power, dtype=float)
    if power.ndim != 1 or power.size < 8 or not np.all(np.isfinite(power)) or np.any(power < 0):
        raise ValueError(
            f"target_power must be a 1-d array of >= 8 finite values >= 0; got shape {power.shape}"
        )
    check_count("n_boot", n_boot, low=10)
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1); got {level!r}")
    lo, hi = window
    if not 1 <= lo < hi <= power.size or hi / lo < 2:
        raise ValueError(f"window must be (k_lo, k_hi) with 1 <= k_lo, k_hi >= 2 k_lo, k_hi <= "
                         f"{power.size}; got {window!r}")  # fmt: skip
    k = np.unique(np.round(np.geomspace(lo, hi, 4 * int(np.ceil(np.log2(hi / lo))) + 1)))
    index = k.astype(int) - 1
    end = float(power.size)

    def fitted(p):
        tail = np.cumsum(p[::-1])[::-1][index]
        return _tail_fit(np.log(k), np.log(np.maximum(tail, 1e-300)), end)

    a_hat, log_c = fitted(power)
    modes = np.arange(1, power.size + 1, dtype=float)
    # the fitted C is the prefactor of v_j^2 = C j^-a
    mean = np.exp(log_c) * modes**-a_hat
    rng = np.random.default_rng(seed)
    stars = np.array([fitted(mean * rng.chisquare(1, power.size))[0] for _ in range(n_boot)])
    corrected, ci, bias = _basic_bootstrap(a_hat, stars, level)
    return SpectrumFit(corrected, float(np.exp(log_c)), ci, a_hat, bias,
                       (float(k[0]), float(k[-1])), int(k.size), "tail sums, chi-square bootstrap",
                       level)  # fmt: skip


# --- inverting a theory: (s, a, sigma^2, C) of the omnibus ridge risk from a learning curve ----

# Starting points of the inversion: every (s, a, sigma^2), with C = 1 (a noiseless curve needs a
# start near sigma^2 = 0: from 1e-2 the fit settles in a wrong (s, a)).
INVERT_STARTS = dict(s=(1.2, 2.0, 3.5), a=(1.5, 2.5, 4.0), noise=(1e-8, 1e-2))


class InvertedCurve(NamedTuple):
    """The (s, a, sigma^2, C) for which C * ridge_risk(PowerLaw(s, a), n, ridge, sigma^2) fits an
    observed excess-risk curve best (least squares on log risk); `*_ci` percentile bootstrap
    intervals over resampled points (NaN without bootstrap); `objective` the summed squared log
    residual at the optimum; `converged` whether its gradient norm fell below GRADIENT_TOL."""

    s: Float[Array, ""]
    a: Float[Array, ""]
    noise: Float[Array, ""]
    scale: Float[Array, ""]
    s_ci: Float[Array, "2"]
    a_ci: Float[Array, "2"]
    objective: Float[Array, ""]
    converged: Bool[Array, ""]
    level: float


def _natural_curve(theta: Array) -> Array:
    """(log s, log(a - 1), log sigma^2, log C) -> (s, a, sigma^2, C)."""
    return jnp.stack([jnp.exp(theta[0]), 1 + jnp.exp(theta[1]), jnp.exp(theta[2]),
                      jnp.exp(theta[3])])  # fmt: skip


@functools.partial(jax.jit, static_argnames=("n_modes", "steps"))
def _invert_fits(starts, n, log_risk, weights, ridge, noise, n_modes, steps):
    from spectral_sim.spectra import PowerLaw
    from spectral_sim.theory.ridge import ridge_risk

    def predicted(theta):
        s, a, fitted, scale = _natural_curve(theta)
        spectrum = PowerLaw(s=s, a=a, n_modes=n_modes)
        # a fixed noise (>= 0) leaves theta[2] without gradient: L-BFGS keeps its start
        one = functools.partial(ridge_risk, spectrum, ridge=ridge,
                                noise=jnp.where(noise >= 0, noise, fitted))  # fmt: skip
        return jnp.log(scale) + jnp.log(jax.vmap(lambda m: one(n=m))(n))

    def one(lane):
        x0, weight = lane
        return _lbfgs(lambda theta: weight @ (predicted(theta) - log_risk) ** 2, x0, steps)

    shape = (weights.shape[0], starts.shape[0])
    lanes = (
        jnp.broadcast_to(starts, (*shape, starts.shape[1])).reshape(-1, starts.shape[1]),
        jnp.broadcast_to(weights[:, None], (*shape, weights.shape[1])).reshape(
            -1, weights.shape[1]
        ),
    )
    theta, value, gradient = jax.tree.map(
        lambda x: x.reshape(*shape, *x.shape[1:]), _over_lanes(one, lanes)
    )
    value = jnp.where(jnp.isfinite(value), value, jnp.inf)
    best = jnp.argmin(value, axis=1)
    pick = jax.vmap(lambda x, i: x[i])
    return pick(theta, best), pick(value, best), pick(gradient, best)


def invert_ridge_curve(
    n: Float[ArrayLike, " points"],
    risk: Float[ArrayLike, " points"],
    *,
    ridge: float = 0.0,
    noise: float | None = None,
    n_modes: int = 512,
    n_boot: int = 0,
    boot_restarts: int = 1,
    level: float = 0.95,
    seed: int = 0,
    steps: int = LBFGS_STEPS,
    starts: dict[str, tuple[float, ...]] | None = None,
) -> InvertedCurve:
    """Measure (s_eff, a_eff) by inverting the omnibus ridge predictor (THEORY.md §2.7): fit
    C * ridge_risk(PowerLaw(s, a, n_modes), n, ridge, sigma^2) to an observed excess-risk curve
    (samples n, risk), differentiating through the kappa solve, from every start in
    INVERT_STARTS or `starts` (the same keys; L-BFGS, optax). `noise` fixes sigma^2 where it
    is known (e.g. 0 for a noiseless target) instead of fitting it. With `n_boot`, percentile
    intervals from n_boot resamples of the points, each refitted from the full-data optimum and
    `boot_restarts - 1` further starts (as `chinchilla`)."""
    n_np, risk_np = _check_points(("n", "risk"), n, risk, n_params=4)
    check_count("n_modes", n_modes, low=8)
    check_count("n_boot", n_boot, low=0)
    check_count("boot_restarts", boot_restarts)
    if ridge < 0:
        raise ValueError(f"ridge must be >= 0; got {ridge!r}")
    if noise is not None and not noise >= 0:
        raise ValueError(f"noise must be >= 0 (or None: fitted); got {noise!r}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1); got {level!r}")
    dtype = jnp.result_type(float)
    starts = INVERT_STARTS if starts is None else starts
    if set(starts) != set(INVERT_STARTS) or min(min(v) for v in starts.values()) <= 0:
        raise ValueError(f"starts must give positive values for {sorted(INVERT_STARTS)}; got "
                         f"{starts!r}")  # fmt: skip
    if min(starts["a"]) <= 1:
        raise ValueError(f"starts must have a > 1; got {starts['a']}")
    grid = np.array(np.meshgrid(*(starts[k] for k in INVERT_STARTS), indexing="ij"))
    grid = grid.reshape(3, -1).T
    x0 = jnp.asarray(np.column_stack([np.log(grid[:, 0]), np.log(grid[:, 1] - 1),
                                      np.log(grid[:, 2]), np.zeros(len(grid))]), dtype)  # fmt: skip
    data = (jnp.asarray(n_np, dtype), jnp.asarray(np.log(risk_np), dtype))
    fixed = (jnp.asarray(ridge, dtype), jnp.asarray(-1.0 if noise is None else noise, dtype))
    theta, value, gradient = _invert_fits(
        x0, *data, jnp.ones((1, n_np.size), dtype), *fixed, n_modes, steps
    )
    natural = _natural_curve(theta[0])
    nan = jnp.full(2, jnp.nan, dtype)
    s_ci, a_ci = nan, nan
    if n_boot:
        spread = x0[:: max(1, x0.shape[0] // boot_restarts)][: boot_restarts - 1]
        weights = _resample_counts(seed, n_boot, n_np.size, dtype)
        boot = _invert_fits(jnp.concatenate([theta, spread]), *data, weights, *fixed, n_modes,
                            steps)[0]  # fmt: skip
        boot = jax.vmap(_natural_curve)(boot)
        q = jnp.array([50 * (1 - level), 100 - 50 * (1 - level)])
        s_ci, a_ci = jnp.percentile(boot[:, 0], q), jnp.percentile(boot[:, 1], q)
    s, a, fitted, scale = natural
    if noise is not None:
        fitted = jnp.asarray(noise, dtype)
    return InvertedCurve(s, a, fitted, scale, s_ci, a_ci, value[0], gradient[0] < GRADIENT_TOL,
                         level)  # fmt: skip
