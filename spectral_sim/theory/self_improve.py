"""Self-consuming regression loops (THEORY.md §4): the exact errors E_n = E||w_n - w*||^2 of OLS
generations on isotropic Gaussian data, generation 1 fitted to real labels y = x.w* + xi and
generation n >= 2 to fresh inputs labelled by w_(n-1) plus fresh noise xi ~ N(0, sigma^2).

    replace     E_n = n sigma^2 d / (T - d - 1)                          (T > d + 1)
    accumulate  E_n = sigma^2 d sum_(i<=n) 1 / (i (i T - d - 1))
                    <= (pi^2/6) sigma^2 d / (T - d - 1)
    mix         E_n = c E_(n-1) + sigma^2 d / (T - d - 1),  T = T_real + T_synth,
                c = E||(X^T X)^-1 X_s^T X_s||_F^2 / d  (exact below; -> (T_synth / T)^2)
    growing     E_n = sigma^2 d sum_(i<=n) 1 / (T_i - d - 1)

With a fixed design (the same X_0 every generation) replace is unchanged and accumulate becomes
sigma^2 d / (T - d - 1) sum_(i<=n) 1 / i^2, which attains the pi^2/6 bound. With T < d - 1 the
minimum-norm fits project onto the T-dimensional row space (rho = T / d, c = T / (d - T - 1)):

    replace, fresh  E_n = ||w*||^2 (1 - rho^n) + sigma^2 c sum_(i<n) rho^i
    replace, fixed  E_n = ||w*||^2 (1 - rho) + n sigma^2 c
    accumulate, fixed     ||w*||^2 (1 - rho) + sigma^2 c sum_(i<=n) 1 / i^2

Everything is jittable; the sample sizes may be traced floats, d and generations are static.

`risk(params)` is the Params form: the prediction for the simulator `models.self_improve` with
the same Params, jax.vmap-able over a stacked grid of them, which picks the closed form its
static fields call for. The keyword forms (`collapse_error`, `fixed_design_error`, ...) are the
general ones, which it calls: their sample sizes are real, traced arguments, as is the Params'
`n_samples` (its `samples` is a static shape).
"""

import math
from collections.abc import Sequence
from typing import Literal

import jax.numpy as jnp
import numpy as np

from spectral_sim._types import Array, ArrayLike, Count, Float, Scalar
from spectral_sim.checks import check_count, check_one_of, check_range, concrete
from spectral_sim.models.self_improve import Params
from spectral_sim.spectra import Spectrum
from spectral_sim.theory.ridge import kappa, ridge_risk

__all__ = [
    "REGIMES",
    "accumulate_bound",
    "collapse_error",
    "downstream_trace",
    "fixed_design_error",
    "mix_fixed_point",
    "mixing_coefficient",
    "mixing_coefficient_limit",
    "overparameterised_error",
    "ridge_downstream_error",
    "risk",
    "subsample_error",
]

REGIMES = ("replace", "accumulate", "mix", "growing")
Regime = Literal["replace", "accumulate", "mix", "growing"]


def _check_ols(name: str, T: object, d: int) -> None:
    """OLS on T samples has a finite error iff T > d + 1."""
    check_range(name, T, gt=d + 1)


def mixing_coefficient(d: int, T_real: Count, T_synth: Count) -> Float[Array, ""]:
    """c = E||S^-1 B||_F^2 / d, S = A + B, A ~ W_d(T_real, I), B ~ W_d(T_synth, I), exactly.

    U = S^-1/2 B S^-1/2 is independent of S ~ W_d(T, I), and E[S_ij (S^-1)_kl] =
    (T d_ij d_kl - d_ik d_jl - d_il d_jk) / (T - d - 1), so c d = ((T - 1) x - y) / (T - d - 1)
    with x = E tr U^2, y = E (tr U)^2. Those follow from B = S^1/2 U S^1/2 and the Wishart
    second moments of B and S:
        (T^2 + T) x + T y = T_s^2 d + T_s d^2 + T_s d,    2 T x + T^2 y = T_s^2 d^2 + 2 T_s d.
    c = 0 without synthetic samples, 1 without real ones, and -> (T_synth / T)^2 as T / d grows.
    """
    check_count("d", d)
    check_range("T_real", T_real, ge=0)
    check_range("T_synth", T_synth, ge=0)
    T_r, T_s = jnp.asarray(T_real, float), jnp.asarray(T_synth, float)
    T = T_r + T_s
    _check_ols("T_real + T_synth", concrete(T), d)
    b_trace2 = T_s**2 * d + T_s * d**2 + T_s * d  # E tr B^2
    b_trace_sq = T_s**2 * d**2 + 2 * T_s * d  # E (tr B)^2
    # Solve [[T^2 + T, T], [2 T, T^2]] [x, y] = [E tr B^2, E (tr B)^2].
    det = (T**2 + T) * T**2 - 2 * T**2
    x = (T**2 * b_trace2 - T * b_trace_sq) / det
    y = ((T**2 + T) * b_trace_sq - 2 * T * b_trace2) / det
    return ((T - 1) * x - y) / ((T - d - 1) * d)


def mixing_coefficient_limit(T_real: Count, T_synth: Count) -> Float[Array, ""]:
    """The large-T / d limit (T_synth / (T_real + T_synth))^2 of the mixing coefficient."""
    T_r, T_s = jnp.asarray(T_real, float), jnp.asarray(T_synth, float)
    return (T_s / (T_r + T_s)) ** 2


def collapse_error(
    *,
    regime: Regime,
    d: int,
    noise: Scalar,
    generations: int,
    T: Count | None = None,
    T_real: Count | None = None,
    T_synth: Count | None = None,
    T_seq: Sequence[float] | Float[ArrayLike, " generations"] | None = None,
) -> Float[Array, " generations"]:
    """E||w_n - w*||^2 for n = 1..generations, OLS on isotropic Gaussian data (THEORY.md §4.2).

    regime "replace" and "accumulate" use T samples per generation; "mix" uses T_real fresh real
    plus T_synth synthetic samples per generation (generation 1 fits T_real + T_synth real
    ones); "growing" replaces with T_seq[n - 1] samples at generation n."""
    check_count("d", d)
    check_count("generations", generations)
    check_range("noise", noise, ge=0)
    sigma2 = jnp.asarray(noise, float)
    n = jnp.arange(1, generations + 1, dtype=float)
    if regime in ("replace", "accumulate"):
        if T is None:
            raise ValueError(f"regime={regime!r} needs T, the samples per generation")
        _check_ols("T", T, d)
        T = jnp.asarray(T, float)
        if regime == "replace":
            return n * sigma2 * d / (T - d - 1)
        return sigma2 * d * jnp.cumsum(1 / (n * (n * T - d - 1)))
    if regime == "mix":
        if T_real is None or T_synth is None:
            raise ValueError("regime='mix' needs T_real and T_synth, the samples per generation")
        c = mixing_coefficient(d, T_real, T_synth)
        fresh = sigma2 * d / (jnp.asarray(T_real, float) + jnp.asarray(T_synth, float) - d - 1)
        # E_n = c E_(n-1) + fresh from E_0 = 0: fresh (1 - c^n) / (1 - c), written as a sum so
        # that c = 1 (no real samples) is the replace line.
        powers = c ** jnp.arange(generations, dtype=float)
        return fresh * jnp.cumsum(powers)
    if regime == "growing":
        if T_seq is None:
            raise ValueError("regime='growing' needs T_seq, the sample size of each generation")
        sizes = jnp.asarray(T_seq, float)
        if sizes.shape != (generations,):
            raise ValueError(f"T_seq must have one size per generation ({generations}); got "
                             f"shape {sizes.shape}")  # fmt: skip
        _check_ols("T_seq", concrete(sizes), d)
        return sigma2 * d * jnp.cumsum(1 / (sizes - d - 1))
    raise ValueError(f"regime must be one of {REGIMES}; got {regime!r}")


def accumulate_bound(*, d: int, noise: Scalar, T: Count) -> Float[Array, ""]:
    """(pi^2 / 6) sigma^2 d / (T - d - 1): the accumulate error's bound over all generations
    (Gerstgrasser et al. 2024; attained by the fixed design)."""
    check_count("d", d)
    check_range("noise", noise, ge=0)
    _check_ols("T", T, d)
    return math.pi**2 / 6 * jnp.asarray(noise, float) * d / (jnp.asarray(T, float) - d - 1)


def mix_fixed_point(*, d: int, noise: Scalar, T_real: Count, T_synth: Count) -> Float[Array, ""]:
    """lim E_n = sigma^2 d / ((T - d - 1)(1 - c)) of the mixing loop (finite iff T_real > 0)."""
    c = mixing_coefficient(d, T_real, T_synth)
    T = jnp.asarray(T_real, float) + jnp.asarray(T_synth, float)
    return jnp.asarray(noise, float) * d / ((T - d - 1) * (1 - c))


def fixed_design_error(
    *, regime: Literal["replace", "accumulate"], d: int, noise: Scalar, generations: int, T: Count
) -> Float[Array, " generations"]:
    """The same loops on one fixed design X_0 (THEORY.md §4.2): replace is unchanged; accumulate
    (n stacked copies of X_0) gives sigma^2 d / (T - d - 1) sum_(i<=n) 1 / i^2."""
    if regime == "replace":
        return collapse_error(regime="replace", d=d, noise=noise, generations=generations, T=T)
    if regime != "accumulate":
        raise ValueError(f"regime must be 'replace' or 'accumulate'; got {regime!r}")
    check_count("d", d)
    check_count("generations", generations)
    check_range("noise", noise, ge=0)
    _check_ols("T", T, d)
    n = np.arange(1, generations + 1, dtype=float)
    first = jnp.asarray(noise, float) * d / (jnp.asarray(T, float) - d - 1)
    return first * jnp.cumsum(jnp.asarray(1 / n**2))


def subsample_error(
    *, d: int, noise: Scalar, generations: int, T: Count
) -> Float[Array, " generations"]:
    """Accumulate-subsample on a fixed design (T rows drawn without replacement from the n T
    stacked rows; THEORY.md §4.2 [A], leading order in d / T): kappa_n sigma^2 d / (T - d - 1),
    kappa_n = sum_(c<=n) 1/c^2 + sum_(m=1)^(n-1) (m - 1) / (m (m + 1)^2) + (n - 1) / n, which tends
    to pi^2/2 - 2 = 2.93. THEORY.md quotes its finite-size error at n = 10: 1-2 % for
    T / d >= 30, 7 % at T / d = 10, 38 % at T / d = 3.2."""
    check_count("d", d)
    check_count("generations", generations)
    check_range("noise", noise, ge=0)
    _check_ols("T", T, d)
    n = np.arange(1, generations + 1, dtype=float)
    m = np.arange(1, generations, dtype=float)
    middle = np.concatenate([[0.0], np.cumsum((m - 1) / (m * (m + 1) ** 2))])
    kappa = np.cumsum(1 / n**2) + middle + (n - 1) / n
    return jnp.asarray(kappa) * jnp.asarray(noise, float) * d / (jnp.asarray(T, float) - d - 1)


def overparameterised_error(
    *,
    design: Literal["fresh", "fixed"],
    regime: Literal["replace", "accumulate"],
    d: int,
    noise: Scalar,
    generations: int,
    T: Count,
    signal: Scalar = 1.0,
) -> Float[Array, " generations"]:
    """E||w_n - w*||^2 for n = 1..generations of minimum-norm fits to T <= d + 1 isotropic
    Gaussian rows, ||w*||^2 = signal: replace on a fresh or a fixed design, accumulate on a fixed
    one. THEORY.md §4.2 gives the noise-free forms [E]; the noise terms follow the same way. The
    fit of T < d rows is P w + X^+ xi, with P the projection onto the row space of X (uniformly
    random, E P = rho I, rho = T / d) and E||X^+ xi||^2 = sigma^2 E tr (X X^T)^-1 = sigma^2 c,
    c = T / (d - T - 1) (inverse Wishart). Fresh replace: e_n = P_n e_(n-1) - (I - P_n) w* +
    X_n^+ xi_n has orthogonal terms, so E_n = rho E_(n-1) + (1 - rho) signal + sigma^2 c. Fixed
    replace: e_n = -(I - P) w* + X^+ (xi_1 + ... + xi_n). Fixed accumulate fits X^+ to the mean
    label, the recursion of the fixed-design accumulate form with X^+ in place of X^-1. The
    noise term is infinite (+inf) for d - 1 <= T <= d + 1 and sigma^2 > 0; T >= d then fits
    w* exactly without noise (rho = 1)."""
    check_one_of("design", design, ("fresh", "fixed"))
    check_one_of("regime", regime, ("replace", "accumulate"))
    if design == "fresh" and regime == "accumulate":
        raise ValueError("overparameterised_error covers replace (either design) and accumulate "
                         "on a fixed design; got design='fresh', regime='accumulate'")  # fmt: skip
    check_count("d", d)
    check_count("generations", generations)
    check_range("noise", noise, ge=0)
    check_range("signal", signal, ge=0)
    check_range("T", T, ge=1, le=d + 1)
    T = jnp.asarray(T, float)
    sigma2 = jnp.asarray(noise, float)
    rho = jnp.minimum(T / d, 1.0)
    n = np.arange(1, generations + 1, dtype=float)
    if design == "fresh":
        kept = rho ** jnp.asarray(n)
        powers = jnp.cumsum(rho ** jnp.arange(generations, dtype=float))  # sum_(i<n) rho^i
    else:
        kept = jnp.full(generations, rho)
        powers = jnp.asarray(n if regime == "replace" else np.cumsum(1 / n**2))
    c = T / jnp.where(T < d - 1, d - T - 1, 1.0)
    noisy = jnp.where(T < d - 1, sigma2 * c, jnp.where(sigma2 > 0, jnp.inf, 0.0))
    return jnp.asarray(signal, float) * (1 - kept) + noisy * powers


def risk(params: Params) -> Float[Array, " generations"]:
    """E||w_n - w*||^2_Sigma for n = 1..generations of the simulator `models.self_improve` with
    the same Params: its Obs.risk, and its Obs.error too for isotropic data (spectrum None). OLS
    is affine-equivariant, so the isotropic closed forms hold for any spectrum (THEORY.md §4.2).

    They cover learner="ols" without a verifier, with T = n_samples (traced) or samples: on a
    fresh design, regime "replace" (`collapse_error`; "growing" when `sizes` is given),
    "accumulate" and "mix" (T_real = n_real, T_synth = T - n_real), exact ([E]); on a fixed
    design, "replace" and "accumulate" (`fixed_design_error`, [E]) and "subsample"
    (`subsample_error`, [A]). Those need T > d + 1. For T <= d + 1 the minimum-norm fits of
    isotropic data follow `overparameterised_error` in replace and fixed-design accumulate (+inf
    where the mean error diverges); the other loops, and any spectrum (a minimum-norm fit is not
    affine-equivariant), give NaN there. Other static fields raise ValueError; a ridge other
    than 0 (traced) gives NaN."""
    if params.learner != "ols" or params.verify:
        raise ValueError("risk has closed forms for learner='ols' without a verifier only")
    d, noise, generations = params.dim, params.noise, params.generations
    fresh, regime, sizes = params.design == "fresh", params.regime, params.sizes
    T = jnp.asarray(params.samples if params.n_samples is None else params.n_samples, float)
    large = jnp.maximum(T, d + 2)  # T within the OLS forms' range; T <= d + 1 is replaced below
    if fresh and regime == "replace" and sizes is not None:
        out = collapse_error(regime="growing", d=d, noise=noise, generations=generations,
                             T_seq=sizes)  # fmt: skip
    elif sizes is not None:
        raise ValueError(f"risk has closed forms with sizes for design='fresh', regime='replace' "
                         f"only; got design={params.design!r}, regime={regime!r}")  # fmt: skip
    elif fresh and regime in ("replace", "accumulate"):
        out = collapse_error(regime=regime, d=d, noise=noise, generations=generations, T=large)
    elif fresh and regime == "mix":
        out = collapse_error(regime="mix", d=d, noise=noise, generations=generations,
                             T_real=params.n_real, T_synth=large - params.n_real)  # fmt: skip
    elif not fresh and regime in ("replace", "accumulate"):
        out = fixed_design_error(regime=regime, d=d, noise=noise, generations=generations,
                                 T=large)  # fmt: skip
    elif not fresh and regime == "subsample":
        out = subsample_error(d=d, noise=noise, generations=generations, T=large)
    else:
        raise ValueError(f"risk has no closed form for design={params.design!r}, "
                         f"regime={regime!r}")  # fmt: skip
    if sizes is None:
        small = jnp.full(generations, jnp.nan)
        covered = regime == "replace" or not fresh  # fresh accumulate has no such form
        if params.spectrum is None and covered and regime in ("replace", "accumulate"):
            small = overparameterised_error(
                design=params.design, regime=regime, d=d, noise=noise, generations=generations,
                T=jnp.minimum(T, d + 1),
            )  # fmt: skip
        out = jnp.where(T > d + 1, out, small)
    return jnp.where(jnp.asarray(params.ridge) == 0, out, jnp.nan)


def downstream_trace(spectrum: Spectrum, *, T: Count, ridge: Scalar) -> Float[Array, ""]:
    """E tr(Sigma A Sigma^-1 A^T), A = (X^T X + delta I)^-1 X^T X on T samples of N(0, Sigma)
    (THEORY.md §4.2 [DE]): df2(kappa) [1 + kappa^2 tr((Sigma + kappa)^-2) / (T - df2(kappa))],
    df2 = sum_k lambda_k^2 / (lambda_k + kappa)^2, kappa from `theory.ridge.kappa`. It is d at
    delta = 0 with T > d (A = I)."""
    lam = spectrum.eigenvalues()
    k = kappa(spectrum, n=T, ridge=ridge)
    df2 = jnp.sum(lam**2 / (lam + k) ** 2)
    return df2 * (1 + k**2 * jnp.sum(1 / (lam + k) ** 2) / (jnp.asarray(T, float) - df2))


def ridge_downstream_error(
    spectrum: Spectrum,
    *,
    T: Count,
    ridge: Scalar,
    noise: Scalar,
    generations: int,
    T_gen: Count,
    noise_gen: Scalar,
) -> Float[Array, " gens"]:
    """E_test(n) = E||w_ridge - w*||^2_Sigma for n = 0..generations (Dohmatob, Feng, Kempe 2024;
    THEORY.md §4.2): n OLS generators, each fitted on T_gen fresh samples (noise_gen) labelled by
    the one before (the first by w*), then ridge delta on T downstream samples (noise) labelled
    by the last. E_test(n) = E_test(0) + n noise_gen / (T_gen - d - 1) E tr(Sigma A Sigma^-1 A^T):
    the increment is exact ([E]); E_test(0) (`ridge_risk`) and the trace (`downstream_trace`)
    are deterministic equivalents ([DE])."""
    check_count("generations", generations, low=0)
    check_range("noise_gen", noise_gen, ge=0)
    _check_ols("T_gen", T_gen, spectrum.n_modes)
    real = ridge_risk(spectrum, n=T, ridge=ridge, noise=noise)
    step = jnp.asarray(noise_gen, float) / (jnp.asarray(T_gen, float) - spectrum.n_modes - 1)
    n = jnp.arange(generations + 1, dtype=float)
    return real + n * step * downstream_trace(spectrum, T=T, ridge=ridge)
