"""Covariance spectra in the eigenbasis: eigenvalues lambda_k and target power
v_k^2 = lambda_k w*_k^2, k = 1..n_modes (THEORY.md §0).

Every spectrum is a frozen pytree: exponents and arrays are traced leaves (sweepable without
recompiling), the mode count is static (it sets shapes).
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from spectral_sim._types import Array, ArrayLike, Float, Int, Scalar, Swept
from spectral_sim.checks import all_of, check_count, check_leaf, check_range

__all__ = [
    "Empirical", "Geometric", "PowerLaw", "Spectrum", "eigh_descending", "participation_ratio",
    "signal_modes",
]  # fmt: skip


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class PowerLaw:
    """lambda_k = k^-s and target power v_k^2 = lambda_k w*_k^2 = k^-a, k = 1..n_modes.

    Not normalised. Finite trace needs s > 1 only as n_modes -> inf, finite signal energy a > 1;
    predictors that take n_modes -> inf check a > 1 themselves.
    """

    s: Swept  # traced: sweepable without recompiling
    a: Swept
    n_modes: int = dataclasses.field(default=1024, metadata=dict(static=True))

    def __post_init__(self):
        check_leaf("PowerLaw.s", self.s)
        check_leaf("PowerLaw.a", self.a)
        with all_of() as check:
            check.range("PowerLaw.s", self.s, gt=0)
            check.range("PowerLaw.a", self.a)
            check.count("PowerLaw.n_modes", self.n_modes)

    def modes(self) -> Float[Array, " modes"]:
        """k = 1..n_modes in the spectrum's float dtype."""
        return jnp.arange(1, self.n_modes + 1, dtype=jnp.result_type(self.s, float))

    def eigenvalues(self) -> Float[Array, " modes"]:
        return self.modes() ** -self.s

    def target_power(self) -> Float[Array, " modes"]:
        return self.modes() ** -self.a

    def target(self) -> Float[Array, " modes"]:
        """w*_k = k^((s - a)/2) (positive sign convention)."""
        return self.modes() ** ((self.s - self.a) / 2)


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Geometric:
    """lambda_k = rho^-k, unit target weights w*_k = 1 (THEORY.md §2.11): v_k^2 = lambda_k."""

    rho: Swept
    n_modes: int = dataclasses.field(default=64, metadata=dict(static=True))

    def __post_init__(self):
        check_leaf("Geometric.rho", self.rho)
        with all_of() as check:
            check.range("Geometric.rho", self.rho, gt=0)
            check.count("Geometric.n_modes", self.n_modes)

    def eigenvalues(self) -> Float[Array, " modes"]:
        k = jnp.arange(1, self.n_modes + 1, dtype=jnp.result_type(self.rho, float))
        return self.rho**-k

    def target_power(self) -> Float[Array, " modes"]:
        return self.eigenvalues()

    def target(self) -> Float[Array, " modes"]:
        return jnp.ones_like(self.eigenvalues())


@jax.tree_util.register_pytree_node_class
class Empirical:
    """Given eigenvalues lambda_k > 0 and target power v_k^2 >= 0 (any order, as given).

    Build it from arrays, `Empirical(eigenvalues, target_power)`, or from data with
    `Empirical.from_data(x, y)`. Both arrays are traced leaves; n_modes is their length.
    """

    __slots__ = ("_lam", "_power")

    def __init__(self, eigenvalues: Float[Array, " modes"], target_power: Float[Array, " modes"]):
        with all_of() as check:
            check.range("Empirical.eigenvalues", eigenvalues, gt=0)
            check.range("Empirical.target_power", target_power, ge=0)
            lam_shape = getattr(eigenvalues, "shape", None)
            power_shape = getattr(target_power, "shape", None)
            if lam_shape is not None and power_shape is not None:
                check.that(lam_shape == power_shape and len(lam_shape) >= 1,
                           f"Empirical.target_power must have the eigenvalues' shape (..., modes) "
                           f"= {lam_shape}; got {power_shape}")  # fmt: skip
        object.__setattr__(self, "_lam", eigenvalues)
        object.__setattr__(self, "_power", target_power)

    def __setattr__(self, name, value):
        raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")

    def __repr__(self) -> str:
        return f"Empirical(n_modes={self.n_modes})"

    def tree_flatten(self):
        return (self._lam, self._power), None

    @classmethod
    def tree_unflatten(cls, aux, children):
        del aux
        obj = object.__new__(cls)
        object.__setattr__(obj, "_lam", children[0])
        object.__setattr__(obj, "_power", children[1])
        return obj

    @property
    def n_modes(self) -> int:
        return self._lam.shape[-1]

    def eigenvalues(self) -> Float[Array, " modes"]:
        return jnp.asarray(self._lam)

    def target_power(self) -> Float[Array, " modes"]:
        return jnp.asarray(self._power)

    def target(self) -> Float[Array, " modes"]:
        return jnp.sqrt(self.target_power() / self.eigenvalues())

    @classmethod
    def from_data(
        cls,
        x: Float[ArrayLike, "samples dim"],
        y: Float[ArrayLike, " samples"] | None = None,
        *,
        center: bool = True,
        rtol: float = 1e-10,
    ) -> "Empirical":
        """Covariance eigendecomposition of x (descending), target projected on the eigenbasis.

        With labels y, w* is the least-squares coefficient and v_k^2 = (u_k . X^T y / n)^2 /
        lambda_k; without, the isotropic prior E w*_k^2 = 1 is used (v_k^2 = lambda_k).
        Directions with lambda_k <= rtol * lambda_1 (rank deficiency) are dropped.
        """
        data = np.asarray(x, dtype=float)
        if data.ndim != 2 or data.shape[0] < 2:
            raise ValueError(f"x must be a (samples >= 2, dim) matrix; got shape {data.shape}")
        if not np.all(np.isfinite(data)):
            raise ValueError("x must be finite")
        n = data.shape[0]
        xc = data - data.mean(axis=0) if center else data
        lam, vecs = eigh_descending(xc.T @ xc / n, rtol=rtol)
        if y is None:
            power = lam
        else:
            labels = np.asarray(y, dtype=float)
            if labels.shape != (n,):
                raise ValueError(f"y must have shape ({n},); got {labels.shape}")
            yc = labels - labels.mean() if center else labels
            power = (vecs.T @ (xc.T @ yc) / n) ** 2 / lam
        return cls(jnp.asarray(lam), jnp.asarray(power))


def eigh_descending(matrix: np.ndarray, *, rtol: float = 1e-10) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (descending) and eigenvectors (columns) of a symmetric matrix, without the
    directions whose eigenvalue is <= rtol times the largest (rank deficiency)."""
    lam, vecs = np.linalg.eigh(matrix)
    order = np.argsort(lam)[::-1]
    lam, vecs = lam[order], vecs[:, order]
    keep = lam > rtol * lam[0]
    return lam[keep], vecs[:, keep]


Spectrum = PowerLaw | Geometric | Empirical


def participation_ratio(eigenvalues: Float[ArrayLike, "*batch modes"]) -> Float[Array, "*batch"]:
    """Effective dimension (sum lambda)^2 / sum lambda^2: 1 for a single mode, n_modes for a flat
    spectrum."""
    lam = jnp.asarray(eigenvalues)
    return jnp.sum(lam, axis=-1) ** 2 / jnp.sum(lam**2, axis=-1)


def signal_modes(
    eigenvalues: Float[ArrayLike, "*batch modes"],
    *,
    noise: Scalar,
    n_samples: int,
    n_modes: int | None = None,
) -> Int[Array, "*batch"]:
    """The number of sample-covariance eigenvalues above the Marchenko-Pastur edge
    noise (1 + sqrt(d / n))^2 of isotropic noise of variance `noise` per coordinate, d = n_modes
    (default: the number of eigenvalues) and n = n_samples: the modes distinguishable from
    noise."""
    check_range("noise", noise, gt=0)
    check_count("n_samples", n_samples)
    lam = jnp.asarray(eigenvalues)
    d = lam.shape[-1] if n_modes is None else n_modes
    check_count("n_modes", d)
    edge = noise * (1 + (d / n_samples) ** 0.5) ** 2
    return jnp.sum(lam > edge, axis=-1)
