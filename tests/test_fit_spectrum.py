"""Spectrum estimation (fit.spectrum_exponent, decay_comparison, target_exponent) on synthetic
spectra with known s, a and rho: exact recovery, bias and interval coverage on sample
covariances."""

import numpy as np
import pytest
from scipy.stats import binom

from spectral_sim import Empirical, fit

N_REPS = 20
LEVEL = 0.95
# The fewest of N_REPS nominal-95 % intervals that must cover the truth: P(X < 15) for
# X ~ Binomial(20, 0.95) is 2.6e-3, so a correct interval fails this once in ~400 seeds.
MIN_COVERED = 15


def _sample_eigenvalues(lam: np.ndarray, n: int, rng) -> np.ndarray:
    x = rng.standard_normal((n, lam.size)) * np.sqrt(lam)
    x -= x.mean(axis=0)
    return np.linalg.eigvalsh(x.T @ x / n if lam.size <= n else x @ x.T / n)


def test_min_covered_is_the_binomial_bound():
    assert binom.cdf(MIN_COVERED - 1, N_REPS, LEVEL) < 3e-3


@pytest.mark.parametrize("s", [1.1, 2.0, 3.0])
def test_exact_power_law_is_recovered_on_its_whole_range(s):
    k = np.arange(1, 1001, dtype=float)
    result = fit.spectrum_exponent(3.0 * k**-s)
    assert result.exponent == pytest.approx(s, abs=1e-10)
    assert result.prefactor == pytest.approx(3.0, rel=1e-9)
    assert result.window[0] == 1.0 and result.window[1] > 900
    assert result.method == "ols" and result.bias == 0.0


@pytest.mark.parametrize("s, n, d", [(1.5, 300, 150), (2.0, 200, 300)])
@pytest.mark.slow  # bias and coverage over many draws (13 s)
def test_sample_spectra_bias_and_coverage(s, n, d):
    """Bias-corrected estimates average to s within 3 standard errors of their mean plus the
    residual bias of the bootstrap correction (evaluated at s_hat, not s: O(sd) at most), and
    the parametric-bootstrap intervals cover s at least MIN_COVERED times in N_REPS. d > n
    (the second case) needs n_modes = d."""
    rng = np.random.default_rng(0)
    lam = np.arange(1, d + 1, dtype=float) ** -s
    estimates, covered = [], 0
    for rep in range(N_REPS):
        result = fit.spectrum_exponent(
            _sample_eigenvalues(lam, n, rng), n_samples=n, n_modes=d, n_boot=40, seed=rep
        )
        estimates.append(result.exponent)
        covered += result.ci[0] <= s <= result.ci[1]
        assert result.method == "parametric bootstrap" and result.window[1] < min(n, d)
    estimates = np.array(estimates)
    sd = estimates.std(ddof=1)
    assert abs(estimates.mean() - s) <= 3 * sd / np.sqrt(N_REPS) + sd
    assert covered >= MIN_COVERED


@pytest.mark.slow  # bias over many draws (5 s)
def test_naive_fit_over_every_mode_is_biased_and_the_window_is_not():
    """The finite-size tail: fitting all min(n, d) sample eigenvalues overestimates s."""
    rng = np.random.default_rng(1)
    s, n, d = 1.5, 400, 400
    eigenvalues = _sample_eigenvalues(np.arange(1, d + 1, dtype=float) ** -s, n, rng)
    naive = fit.spectrum_exponent(eigenvalues, window=(1, d - 1))
    windowed = fit.spectrum_exponent(eigenvalues, n_samples=n, n_boot=60)
    assert naive.exponent > s + 0.1
    assert windowed.ci[0] <= s <= windowed.ci[1]


def test_decay_comparison_tells_geometric_from_power_law():
    rng = np.random.default_rng(2)
    k = np.arange(1, 61, dtype=float)
    geometric = fit.decay_comparison(_sample_eigenvalues(1.3**-k, 2000, rng), window=(1, 40))
    assert geometric.preferred == "geometric"
    assert geometric.rho == pytest.approx(1.3, rel=0.05)  # sampling noise ~ sqrt(2/n) per mode
    power = fit.decay_comparison(_sample_eigenvalues(k**-2.0, 2000, rng), window=(1, 40))
    assert power.preferred == "power law" and power.s == pytest.approx(2.0, rel=0.05)
    exact = fit.decay_comparison(1.5**-k)
    assert exact.rho == pytest.approx(1.5, rel=1e-12) and exact.geometric_rss < 1e-20


def test_target_exponent_exact_and_from_data():
    k = np.arange(1, 513, dtype=float)
    assert fit.target_exponent(k**-2.5).exponent == pytest.approx(2.5, abs=1e-10)
    rng = np.random.default_rng(3)
    n, d, s, a = 4000, 300, 1.5, 2.5
    lam = np.arange(1, d + 1, dtype=float) ** -s
    w_star = np.arange(1, d + 1, dtype=float) ** ((s - a) / 2) * rng.choice([-1.0, 1.0], d)
    x = rng.standard_normal((n, d)) * np.sqrt(lam)
    spectrum = Empirical.from_data(x, x @ w_star + 0.01 * rng.standard_normal(n))
    result = fit.target_exponent(np.asarray(spectrum.target_power()))
    assert result.ci[0] <= a <= result.ci[1]


@pytest.mark.parametrize(
    "call, field",
    [
        (lambda: fit.spectrum_exponent(np.r_[np.ones(10), np.nan]), "eigenvalues"),
        (lambda: fit.spectrum_exponent(np.ones(5)), "eigenvalues"),
        (lambda: fit.spectrum_exponent(np.arange(1, 50.0) ** -2, window=(0, 10)), "window"),
        (lambda: fit.spectrum_exponent(np.arange(1, 50.0) ** -2, n_samples=1), "n_samples"),
        (lambda: fit.spectrum_exponent(np.arange(1, 50.0) ** -2, n_modes=3), "n_modes"),
        (lambda: fit.decay_comparison(np.arange(1, 50.0) ** -2, window=(5, 6)), "window"),
        (lambda: fit.target_exponent(-np.ones(20)), "target_power"),
    ],
)
def test_bad_input_names_the_field(call, field):
    with pytest.raises(ValueError, match=f"^{field} must"):
        call()


def test_effective_dimensions():
    from spectral_sim import spectra

    assert float(spectra.participation_ratio(np.ones(37))) == pytest.approx(37.0)
    assert float(spectra.participation_ratio(np.r_[1.0, np.zeros(9)])) == pytest.approx(1.0)
    # Pure noise of variance 1 (n = 400, d = 100): every sample eigenvalue sits below the MP
    # edge (1 + 1/2)^2 up to Tracy-Widom fluctuations of order n^(-2/3) ~ 0.02; three spikes
    # of variance 10 sit far above it.
    rng = np.random.default_rng(4)
    lam = np.r_[10.0, 10.0, 10.0, np.ones(97)]
    sample = _sample_eigenvalues(lam, 400, rng)
    assert int(spectra.signal_modes(sample, noise=1.0, n_samples=400)) == 3
    with pytest.raises(ValueError, match="^noise must"):
        spectra.signal_modes(sample, noise=0.0, n_samples=400)


@pytest.mark.slow  # bias and coverage over many draws (8 s)
def test_tail_exponent_bias_and_coverage():
    """v_k^2 = k^-a chi^2_1 (Gaussian coefficients), 1000 modes, window 16-256: over 40
    replications the bias-corrected a is within 3 standard errors of its mean of the truth
    (measured bias <= 0.02 against a spread of 0.08) and the 95 % interval covers a in >= 80 %
    (a binomial 40-draw lower bound far below the measured 0.925-0.975)."""
    rng = np.random.default_rng(0)
    for a in (1.3, 2.5):
        fits = [
            fit.tail_exponent(np.arange(1, 1001.0) ** -a * rng.chisquare(1, 1000),
                              window=(16, 256), n_boot=100, seed=rep)
            for rep in range(40)
        ]  # fmt: skip
        estimates = np.array([f.exponent for f in fits])
        assert abs(estimates.mean() - a) <= 3 * estimates.std(ddof=1) / np.sqrt(40), a
        assert np.mean([f.ci[0] <= a <= f.ci[1] for f in fits]) >= 0.8, a
    exact = fit.tail_exponent(np.arange(1, 1001.0) ** -1.7, window=(16, 256), n_boot=10)
    # the finite sum is modelled; the midpoint rule's O(k^-2) error at k >= 16 moves a by < 1e-3
    assert exact.raw_exponent == pytest.approx(1.7, abs=1e-3)
    with pytest.raises(ValueError, match="window"):
        fit.tail_exponent(np.ones(100), window=(16, 20))
