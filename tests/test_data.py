"""Real-data pipelines end to end on small slices: digits and tiny-Shakespeare features, kernel
matrices and their spectra, and the input checks."""

import numpy as np
import pytest
from conftest import unchecked

from spectral_sim import data, fit


@pytest.fixture(scope="module")
def digits():
    x, y = data.digits()
    return x[:, np.ptp(x, axis=0) > 0], y


@pytest.mark.slow
def test_digits_covariance_spectrum_end_to_end(digits):
    x, y = digits
    assert x.shape == (1797, 61) and set(np.unique(y)) == set(range(10))
    spectrum = data.spectrum(x, (y == 3).astype(float))
    lam = np.asarray(spectrum.eigenvalues())
    assert np.all(np.diff(lam) <= 0) and lam.size == 61
    result = fit.spectrum_exponent(lam, n_samples=x.shape[0], n_modes=x.shape[1], n_boot=20)
    assert 0.5 < result.exponent < 3.0 and result.ci[0] < result.exponent < result.ci[1]


@pytest.mark.parametrize("kind", data.KERNELS)
def test_kernel_matrices_are_positive_semidefinite_and_their_spectra_normalised(digits, kind):
    """K / n's eigenvalues sum to the mean diagonal k(x, x) (trace / n), every one >= 0 up to
    rounding, and the target's power sums to the centred labels' mean square (Parseval over
    the kept modes, <= it)."""
    x, y = digits
    k = data.kernel_matrix(x[:300], kind=kind)
    assert np.allclose(k, k.T)
    eigenvalues = np.linalg.eigvalsh(k)
    assert eigenvalues.min() > -1e-9 * eigenvalues.max()
    labels = (y[:300] == 3).astype(float)
    spectrum = data.kernel_spectrum(k, labels)
    assert float(np.sum(spectrum.eigenvalues())) == pytest.approx(np.trace(k) / 300, rel=1e-6)
    centred = labels - labels.mean()
    assert float(np.sum(spectrum.target_power())) <= np.mean(centred**2) * (1 + 1e-9)


def test_rbf_bandwidth_and_arccos_formula():
    x = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    rbf = data.kernel_matrix(x, kind="rbf", bandwidth=1.0)
    assert rbf[0, 1] == pytest.approx(np.exp(-1.0))  # |x - x'|^2 = 2
    arccos = data.kernel_matrix(x, kind="arccos")
    # orthogonal unit vectors: t = pi/2, k = (1 + 0) / pi
    assert arccos[0, 1] == pytest.approx(1 / np.pi)
    assert arccos[0, 0] == pytest.approx(1.0)  # t = 0: |x|^2


@pytest.mark.slow
def test_shakespeare_features_end_to_end():
    text = data.shakespeare()[:200_000]
    for x in (data.ngram_counts(text, n=2, block=256, top=256), data.word_counts(text)):
        x = x[:, np.ptp(x, axis=0) > 0]
        lam = np.asarray(data.spectrum(x).eigenvalues())
        result = fit.spectrum_exponent(lam, n_samples=x.shape[0], n_modes=x.shape[1], n_boot=20)
        assert 0.2 < result.exponent < 3.0
    counts = data.ngram_counts("abab" * 10, n=2, block=8, top=3)
    np.testing.assert_array_equal(counts[0], [4, 3])  # "ab" x4, "ba" x3 in "abababab"


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: data.spectrum(np.array([[1.0, np.nan], [2.0, 3.0]])), "^x must be finite"),
        (
            lambda: data.spectrum(np.array([[1.0, 5.0], [2.0, 5.0], [3.0, 5.0]])),
            "^x must not have constant features",
        ),
        (lambda: data.ngram_counts(""), "^text must be a non-empty string"),
        (lambda: data.ngram_counts("abc", block=8), "^text must hold at least 2 blocks"),
        (lambda: data.kernel_matrix(np.eye(3), kind="poly"), "^kind must be one of"),
        (lambda: data.kernel_spectrum(np.ones((3, 2))), "^k must be a symmetric"),
        (lambda: data.shakespeare("/nonexistent.txt"), "^path must name"),
        (lambda: fit.spectrum_exponent(np.arange(1.0, 6.0)), "^eigenvalues must be a 1-d array"),
    ],
)
def test_bad_input_gets_a_clear_error(call, message):
    with unchecked(), pytest.raises((ValueError, FileNotFoundError), match=message):
        call()


def test_chinchilla_runs_ship_with_the_package():
    runs = data.chinchilla()
    assert len(runs) == 245 and list(runs.columns) == ["N", "C", "D", "loss"]
    np.testing.assert_allclose(runs.D, runs.C / (6 * runs.N))  # the file's README: D = C/(6N)
    assert (runs.loss > 1.5).all() and (runs.loss < 8).all()
    assert data.DATA.parent.name == "spectral_sim"  # package data, not the repository's folder
