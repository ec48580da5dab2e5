"""Inverting the omnibus ridge predictor: (s, a, sigma^2, C) recovered from learning curves."""

import numpy as np
import pytest

from spectral_sim import PowerLaw, fit, theory

N = np.unique(np.geomspace(8, 1000, 12).round())
STARTS = dict(s=(1.2, 3.0), a=(1.5, 3.5), noise=(1e-8, 1e-2))
M = 128


def _curve(s, a, noise, ridge=1e-3):
    spectrum = PowerLaw(s=s, a=a, n_modes=M)
    return np.array([float(theory.ridge_risk(spectrum, n=n, ridge=ridge, noise=noise)) for n in N])


@pytest.mark.slow_cases
@pytest.mark.parametrize("s, a, noise", [(1.5, 2.5, 0.01), (2.5, 2.0, 0.0)])
def test_exact_curves_are_inverted_exactly(s, a, noise):
    """On its own curve the predictor's parameters are recovered to the optimiser's precision
    (the objective reaches ~1e-20 in float64), from starts away from them; 1e-6 relative."""
    result = fit.invert_ridge_curve(N, 3.0 * _curve(s, a, noise), ridge=1e-3, n_modes=M,
                                    steps=150, starts=STARTS)  # fmt: skip
    assert bool(result.converged) and float(result.objective) < 1e-12
    np.testing.assert_allclose([result.s, result.a, result.scale], [s, a, 3.0], rtol=1e-6)
    assert float(result.noise) == pytest.approx(noise, abs=1e-6)


@pytest.mark.slow  # coverage of bootstrap intervals (8 s)
def test_noisy_curves_bootstrap_intervals_cover():
    """2 % multiplicative noise on the curve: the point-bootstrap intervals cover (s, a)."""
    rng = np.random.default_rng(0)
    risk = _curve(1.5, 2.5, 0.01) * np.exp(0.02 * rng.standard_normal(N.size))
    result = fit.invert_ridge_curve(N, risk, ridge=1e-3, n_modes=M, steps=100, n_boot=16,
                                    starts=STARTS)  # fmt: skip
    assert float(result.s_ci[0]) <= 1.5 <= float(result.s_ci[1])
    assert float(result.a_ci[0]) <= 2.5 <= float(result.a_ci[1])
    assert float(result.a_ci[1] - result.a_ci[0]) < 1.0  # informative


@pytest.mark.parametrize(
    "kwargs, field",
    [
        (dict(risk=-np.ones(N.size)), "risk"),
        (dict(ridge=-1.0), "ridge"),
        (dict(starts=dict(s=(1.0,), a=(0.5,), noise=(1e-3,))), "starts"),
    ],
)
def test_bad_input_names_the_field(kwargs, field):
    args = {"n": N, "risk": np.ones(N.size)} | kwargs
    with pytest.raises(ValueError, match=f"^{field} must"):
        fit.invert_ridge_curve(args.pop("n"), args.pop("risk"), **args)


@pytest.mark.slow
def test_the_profile_is_lowest_at_the_curves_own_s():
    """Along s, the best fit with s held: on the predictor's own curve the objective is ~0 at
    the true s (to the optimiser's precision) and grows away from it on both sides; the fit at
    the true s recovers a and C (1e-5 relative), and the inversion's optimum is the profile's."""
    s, a, noise = 1.5, 2.5, 0.0
    risk = 3.0 * _curve(s, a, noise)
    grid = np.array([0.75, 1.0, 1.25, 1.5, 1.8, 2.25, 3.0])
    profile = fit.profile_ridge_curve(N, risk, grid, ridge=1e-3, noise=0.0, n_modes=M,
                                      steps=150, starts=STARTS)  # fmt: skip
    objective = np.asarray(profile.objective)
    np.testing.assert_allclose(profile.s, grid, rtol=1e-12)  # held
    best = int(np.argmin(objective))
    assert grid[best] == s and objective[best] < 1e-12
    assert np.all(np.diff(objective[: best + 1]) < 0) and np.all(np.diff(objective[best:]) > 0)
    np.testing.assert_allclose([profile.a[best], profile.scale[best]], [a, 3.0], rtol=1e-5)
    assert np.all(np.asarray(profile.noise) == 0.0)  # fixed, as given


def test_the_profile_names_a_bad_grid():
    with pytest.raises(ValueError, match="^s must"):
        fit.profile_ridge_curve(N, np.ones(N.size), np.array([1.0, -2.0]))
