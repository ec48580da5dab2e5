import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import RTOL, unchecked
from hypothesis import given
from hypothesis import strategies as st

from spectral_sim import Empirical, Geometric, PowerLaw


@pytest.mark.parametrize(
    "spectrum",
    [PowerLaw(s=1.5, a=2.5, n_modes=50), Geometric(rho=1.7, n_modes=20)],
    ids=["power_law", "geometric"],
)
def test_target_power_is_lambda_times_target_squared(spectrum):
    lam, power, target = spectrum.eigenvalues(), spectrum.target_power(), spectrum.target()
    chex.assert_shape([lam, power, target], (spectrum.n_modes,))
    np.testing.assert_allclose(lam * target**2, power, rtol=RTOL["float64"])


def test_power_law_values():
    spectrum = PowerLaw(s=2.0, a=3.0, n_modes=4)
    np.testing.assert_allclose(spectrum.eigenvalues(), [1, 1 / 4, 1 / 9, 1 / 16], rtol=1e-15)
    np.testing.assert_allclose(spectrum.target_power(), [1, 1 / 8, 1 / 27, 1 / 64], rtol=1e-15)
    # w*_k = k^((s - a)/2): the isotropic prior a = s gives unit weights.
    np.testing.assert_allclose(PowerLaw(s=2.0, a=2.0, n_modes=5).target(), 1.0, rtol=1e-15)


@given(s=st.floats(0.1, 5.0), a=st.floats(-2.0, 6.0))
def test_power_law_eigenvalues_positive_and_decreasing(s, a):
    lam = PowerLaw(s=s, a=a, n_modes=64).eigenvalues()
    assert np.all(lam > 0) and np.all(np.diff(lam) < 0)


def test_exponents_are_traced_and_mode_count_static():
    spectra = jax.vmap(lambda s, a: PowerLaw(s=s, a=a, n_modes=8))(
        jnp.array([1.5, 2.0, 3.0]), jnp.array([2.0, 2.0, 3.5])
    )
    lam = jax.vmap(PowerLaw.eigenvalues)(spectra)
    chex.assert_shape(lam, (3, 8))
    np.testing.assert_allclose(lam[1], PowerLaw(s=2.0, a=2.0, n_modes=8).eigenvalues())
    assert jax.tree.leaves(spectra)[0].shape == (3,)


def test_empirical_from_arrays_and_from_data(key):
    kx, kw = jax.random.split(key)
    scale = jnp.sqrt(PowerLaw(s=1.0, a=1.0, n_modes=6).eigenvalues())
    x = jax.random.normal(kx, (2000, 6)) * scale[None]
    w = jax.random.normal(kw, (6,))
    spectrum = Empirical.from_data(x, x @ w)
    xc = np.asarray(x)
    xc = xc - xc.mean(axis=0)
    covariance = xc.T @ xc / x.shape[0]
    np.testing.assert_allclose(
        spectrum.eigenvalues(), np.linalg.eigvalsh(covariance)[::-1], rtol=RTOL["float64"]
    )
    # Noise-free labels: the target energy sum_k v_k^2 is w^T Sigma_hat w, basis-independently.
    np.testing.assert_allclose(
        jnp.sum(spectrum.target_power()), w @ covariance @ w, rtol=RTOL["float64"]
    )
    rebuilt = Empirical(spectrum.eigenvalues(), spectrum.target_power())
    np.testing.assert_allclose(rebuilt.target(), spectrum.target(), rtol=RTOL["float64"])
    assert rebuilt.n_modes == 6
    # Without labels the isotropic prior is used: v_k^2 = lambda_k.
    np.testing.assert_allclose(Empirical.from_data(x).target_power(), spectrum.eigenvalues())


def test_empirical_is_a_pytree():
    spectrum = Empirical(jnp.array([1.0, 0.5]), jnp.array([0.2, 0.1]))
    doubled = jax.tree.map(lambda leaf: 2 * leaf, spectrum)
    np.testing.assert_allclose(doubled.eigenvalues(), [2.0, 1.0])
    assert jax.jit(lambda sp: sp.target_power().sum())(spectrum) == pytest.approx(0.3)


@pytest.mark.parametrize(
    "build, field",
    [
        (lambda: PowerLaw(s=0.0, a=2.0, n_modes=8), "PowerLaw.s"),
        (lambda: PowerLaw(s=-1.0, a=2.0, n_modes=8), "PowerLaw.s"),
        (lambda: PowerLaw(s=1.0, a=float("nan"), n_modes=8), "PowerLaw.a"),
        (lambda: PowerLaw(s=1.0, a=2.0, n_modes=0), "PowerLaw.n_modes"),
        (lambda: PowerLaw(s=1.0, a=2.0, n_modes=2.5), "PowerLaw.n_modes"),
        (lambda: Geometric(rho=0.0, n_modes=8), "Geometric.rho"),
        (lambda: Geometric(rho=2.0, n_modes=-1), "Geometric.n_modes"),
        (lambda: Empirical(jnp.array([1.0, -1.0]), jnp.array([1.0, 1.0])), "eigenvalues"),
        (lambda: Empirical(jnp.array([1.0, 1.0]), jnp.array([1.0, -1.0])), "target_power"),
        (lambda: Empirical(jnp.array([1.0, 1.0]), jnp.array([1.0])), "target_power"),
    ],
)
def test_bad_spectrum_raises_naming_the_field(build, field):
    with unchecked(), pytest.raises(ValueError, match=field):
        build()


def test_grid_with_one_bad_point_is_rejected():
    with pytest.raises(ValueError, match=r"PowerLaw.s must be finite and > 0; got \[-0.5\]"):
        PowerLaw(s=jnp.array([1.0, -0.5, 2.0]), a=2.0, n_modes=8)


@pytest.mark.parametrize(
    "build, field",
    [
        (lambda: PowerLaw(s="2", a=2.0, n_modes=10), "PowerLaw.s"),
        (lambda: PowerLaw(s=2.0, a="2", n_modes=10), "PowerLaw.a"),
        (lambda: Geometric(rho="1.5", n_modes=10), "Geometric.rho"),
    ],
)
def test_a_string_for_a_number_is_a_type_error_naming_the_field(build, field):
    with unchecked(), pytest.raises(TypeError, match=f"^{field} must be a number"):
        build()
