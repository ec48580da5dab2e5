"""Geometric spectra (THEORY.md §2.11): the Poisson-summation level and ripple of t L(t) against
the exact finite sum."""

import jax.numpy as jnp
import numpy as np
import pytest

from spectral_sim import Geometric, theory
from spectral_sim.theory import geometric


@pytest.mark.slow_cases
@pytest.mark.parametrize("rho", [1.3, 2.0, 4.0, 8.0])
def test_level_and_ripple_match_the_exact_sum(rho):
    """Over whole periods of ln t, far from both ends of the spectrum, the sample mean of
    t L(t) is the level up to the second harmonic (aliasing needs harmonic >= 64 here) and half
    its range is the first harmonic's amplitude up to the second harmonic and the sampling of
    the peak (1 - cos(pi / 64) < 1.3e-3 relative)."""
    n_modes = int(np.ceil(40 * np.log(10) / np.log(rho)))
    spectrum = Geometric(rho=rho, n_modes=n_modes)
    t = 100.0 * rho ** (np.arange(3 * 64) / 64)  # three periods, 64 points each
    scaled = t * np.asarray(theory.gf_loss(spectrum, jnp.asarray(t)))
    level = float(geometric.geometric_level(rho))
    ripple = float(geometric.geometric_ripple(rho))
    second = float(geometric.geometric_ripple(rho, harmonic=2))
    assert abs(scaled.mean() / level - 1) <= second + 1e-12
    measured = (scaled.max() - scaled.min()) / (2 * scaled.mean())
    assert abs(measured - ripple) <= second + 1.3e-3 * ripple + 1e-12


def test_theory_md_values():
    """THEORY.md §2.11: ripple 2e-5 peak to peak at rho = 2 and 1.7 % at rho = 4."""
    assert 2 * float(geometric.geometric_ripple(2.0)) == pytest.approx(2e-5, rel=0.02)
    assert 2 * float(geometric.geometric_ripple(4.0)) == pytest.approx(0.017, rel=0.05)


def test_rho_must_exceed_one():
    with pytest.raises(ValueError, match="^rho must"):
        geometric.geometric_level(1.0)
