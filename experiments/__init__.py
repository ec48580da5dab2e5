"""spectral_sim's own experiments, one module per question, installed as
`spectral_sim.experiments` and registered in the entry-point group `spectral_sim.experiments`
(see `spectral_sim.registry` for the protocol each module follows); `spectral-sim run NAME` runs
one.
"""

__all__ = ["listed"]


def listed(values) -> str:
    """The values of an array or DataArray as "v1, v2, ..." for a claim's statement."""
    return ", ".join(f"{float(v):g}" for v in getattr(values, "values", values))
