"""Spectrum exponents: lambda_k ~ A k^-s from (empirical) eigenvalues, bias-corrected by a
parametric bootstrap over sample covariances; the target's exponent a in v_k^2 ~ k^-a from its
power per mode or from its tail sums; and power-law against geometric decay of a spectrum."""

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from scipy.special import ndtri

from spectral_sim._types import Array, ArrayLike, Float
from spectral_sim.checks import check_count

__all__ = [
    "BINS_PER_OCTAVE", "MIN_OCTAVES", "SPECTRUM_RTOL", "DecayComparison", "SpectrumFit",
    "decay_comparison", "spectrum_exponent", "tail_exponent", "target_exponent",
]  # fmt: skip


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
    grams = (_resampled_gram(lam, key, i, n_samples, n_boot) for i in range(n_boot))
    return np.stack([np.linalg.eigvalsh(np.asarray(gram))[::-1] for gram in grams])


@functools.partial(jax.jit, static_argnames=("n_samples", "n_boot"))
def _resampled_gram(lam: Array, key: Array, index, n_samples: int, n_boot: int) -> Array:
    """`_sample_gram` from the index-th of n_boot keys split from `key`: splitting and indexing
    inside the one program (eagerly, each is a program of its own)."""
    return _sample_gram(lam, jax.random.split(key, n_boot)[index], n_samples)


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
    population = jax.device_put(prefactor * np.arange(1, d + 1, dtype=float) ** -s_hat)
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
