"""Statistics for verdicts, one module per kind of fit:

- `curves`: power laws y ~ (E +) A x^-alpha of a curve, on a chosen or automatic window;
- `scaling`: Chinchilla-style L(N, D) = E + A N^-alpha + B D^-beta fits (Hoffmann et al. 2022,
  Approach 3) and the compute-optimal frontier of an iso-compute sweep;
- `spectrum`: exponents of spectra and targets (lambda_k ~ A k^-s, v_k^2 ~ k^-a) and power law
  against geometric decay;
- `invert`: (s, a, sigma^2, C) of the omnibus ridge predictor from an observed learning curve,
  and its profile along s;
- `stats`: standard errors of seed means and the z multiplier for m simultaneous comparisons.

The fits with an optimiser share one L-BFGS (at most `LBFGS_STEPS` steps, stopping once the
gradient norm is below `GRADIENT_TOL`: converged), and their bootstrap intervals are one vmapped
call over resamples and restarts. Every name below is importable from `spectral_sim.fit` itself.
"""

from spectral_sim.fit import curves, invert, scaling, spectrum, stats
from spectral_sim.fit._common import GRADIENT_TOL, LBFGS_STEPS
from spectral_sim.fit.curves import (
    FLOOR_STARTS,
    WINDOW_MIN_POINTS,
    WINDOW_RTOL,
    PowerLawFit,
    loglog_slope,
    power_law,
)
from spectral_sim.fit.invert import (
    INVERT_STARTS,
    InvertedCurve,
    ProfiledCurve,
    invert_ridge_curve,
    profile_ridge_curve,
)
from spectral_sim.fit.scaling import (
    CHINCHILLA_GRID,
    HUBER_DELTA,
    ChinchillaFit,
    Frontier,
    chinchilla,
    frontier,
)
from spectral_sim.fit.spectrum import (
    BINS_PER_OCTAVE,
    MIN_OCTAVES,
    SPECTRUM_RTOL,
    DecayComparison,
    SpectrumFit,
    decay_comparison,
    spectrum_exponent,
    tail_exponent,
    target_exponent,
)
from spectral_sim.fit.stats import sem, z_simultaneous

__all__ = [
    "BINS_PER_OCTAVE", "CHINCHILLA_GRID", "FLOOR_STARTS", "GRADIENT_TOL", "HUBER_DELTA",
    "INVERT_STARTS", "LBFGS_STEPS", "MIN_OCTAVES", "SPECTRUM_RTOL", "WINDOW_MIN_POINTS",
    "WINDOW_RTOL", "ChinchillaFit", "DecayComparison", "Frontier", "InvertedCurve",
    "PowerLawFit", "ProfiledCurve", "SpectrumFit", "chinchilla", "curves", "decay_comparison",
    "frontier", "invert", "invert_ridge_curve", "loglog_slope", "power_law",
    "profile_ridge_curve", "scaling", "sem", "spectrum",
    "spectrum_exponent", "stats", "tail_exponent", "target_exponent", "z_simultaneous",
]  # fmt: skip
