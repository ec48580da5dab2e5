"""Power laws of a curve: y ~ A x^-alpha by least squares on log y (NumPy, on the host), or
y ~ E + A x^-alpha with a floor by L-BFGS (one jitted, vmapped call over resamples and starts), on
a chosen or automatic window of constant local slope, with bootstrap intervals."""

import functools
from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from spectral_sim._types import Array, ArrayLike, Bool, Float
from spectral_sim.checks import check_count
from spectral_sim.fit._common import (
    GRADIENT_TOL,
    LBFGS_STEPS,
    check_points,
    lbfgs,
    ols_fits,
    resample_counts,
)

__all__ = [
    "FLOOR_STARTS", "WINDOW_MIN_POINTS", "WINDOW_RTOL", "PowerLawFit", "loglog_slope", "power_law",
]  # fmt: skip


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
    x: Float[ArrayLike, " n"] | Sequence[float],
    y: Float[ArrayLike, " n"] | Sequence[float],
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
    (drawn from `seed`), all refitted at once (least squares on the host, the floor fit in one
    vmapped call).
    """
    x_np, y_np = check_points(("x", "y"), x, y, n_params=3 if floor else 2)
    check_count("n_boot", n_boot, low=0)
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1); got {level!r}")
    inside = _window(x_np, y_np, window)
    if inside.sum() < 3:
        raise ValueError(f"window {window} keeps {int(inside.sum())} points; a fit needs >= 3")
    x_np, y_np = x_np[inside], y_np[inside]
    dtype = jnp.result_type(float)
    host = np.dtype(dtype)  # float64, or float32 when JAX runs without x64
    lx, ly = np.log(x_np).astype(host), np.log(y_np).astype(host)
    weights = np.ones((1, x_np.size), host)
    if n_boot:
        counts = np.asarray(resample_counts(seed, n_boot, x_np.size, dtype))
        weights = np.concatenate([weights, counts])
    if floor:
        alpha, prefactor, e, gradient = map(np.asarray, _floor_fits(lx, ly, weights, steps))
        converged = gradient[0] < GRADIENT_TOL
    else:  # least squares on the host: a compile per window size would cost more than the fit
        alpha, prefactor = ols_fits(lx, ly, weights)
        e, converged = np.zeros_like(alpha), np.True_
    nan = np.full(2, np.nan, host)
    exponent_ci, floor_ci = nan, nan
    if n_boot:
        q = np.array([50 * (1 - level), 100 - 50 * (1 - level)])
        exponent_ci = np.percentile(alpha[1:], q).astype(host)
        floor_ci = np.percentile(e[1:], q).astype(host) if floor else nan
    used = (float(x_np.min()), float(x_np.max()))

    def array(value) -> Array:  # a JAX array as before; device_put compiles nothing
        return jax.device_put(np.asarray(value, host))

    return PowerLawFit(
        array(alpha[0]), array(prefactor[0]), array(_ols_stderr(lx, ly)), array(e[0]),
        array(exponent_ci), array(floor_ci), used, jax.device_put(converged), level,
    )  # fmt: skip


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
        return lbfgs(functools.partial(objective, w=w), x0, steps)

    theta, value, gradient = jax.vmap(jax.vmap(one, in_axes=(0, None)), in_axes=(None, 0))(
        starts, weights
    )
    best = jnp.argmin(jnp.where(jnp.isfinite(value), value, jnp.inf), axis=1)
    theta = jax.vmap(lambda t, i: t[i])(theta, best)
    gradient = jax.vmap(lambda g, i: g[i])(gradient, best)
    return theta[:, 1], jnp.exp(theta[:, 0]), jnp.exp(theta[:, 2]), gradient


def _ols_stderr(lx: np.ndarray, ly: np.ndarray) -> float:
    """The OLS standard error of the log-log slope (on the host)."""
    dx = lx - lx.mean()
    slope = dx @ (ly - ly.mean()) / (dx @ dx)
    residual = ly - ly.mean() - slope * dx
    return float(np.sqrt(residual @ residual / (lx.size - 2) / (dx @ dx)))


def loglog_slope(
    x: Float[ArrayLike, " n"] | Sequence[float],
    y: Float[ArrayLike, "*batch n"] | Sequence[float],
) -> float | np.ndarray:
    """d ln y / d ln x by least squares over all points, in NumPy on the host: for loops that
    refit many small curves (a bootstrap over seeds) without a compile per shape. y may hold a
    batch of curves along its leading axes (their slopes, an array; one curve: a float). NaN
    for a curve unless every x and its every y is positive."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if x.ndim != 1 or y.shape[-1:] != x.shape or x.size < 2:
        raise ValueError(f"x and y must be curves of >= 2 equal-length points; got "
                         f"{x.shape} and {y.shape}")  # fmt: skip
    ok = np.all(x > 0) & np.all(y > 0, axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_x, log_y = np.log(x), np.log(y)
        dx = log_x - log_x.mean()
        slope = (log_y - log_y.mean(-1, keepdims=True)) @ dx / (dx @ dx)
    slope = np.where(ok, slope, np.nan)
    return float(slope) if y.ndim == 1 else slope
