"""spectral_sim: jitted, vmapped simulators of learning dynamics on spectra, beside the analytic
predictors of the same configs, and experiments that end in a verdict table."""

from spectral_sim import models, simulate, theory
from spectral_sim.provenance import VERSION as __version__
from spectral_sim.simulate import trajectory
from spectral_sim.spectra import Empirical, Geometric, PowerLaw, Spectrum

__all__ = [
    "Empirical",
    "Geometric",
    "PowerLaw",
    "Spectrum",
    "__version__",
    "models",
    "simulate",
    "theory",
    "trajectory",
]
