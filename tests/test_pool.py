"""Learning curves on a finite pool (models.pool): kernel ridge against the omnibus predictor given
the pool's spectrum, interpolation, random features against their arc-cosine kernel limit, the
MLP fitting its draws, and bad input."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import RTOL, unchecked

from spectral_sim import data, theory
from spectral_sim.models import pool

N_SEEDS = 512
# |Monte Carlo mean - prediction| / SEM beyond 4 has probability 6e-5 under N(0, 1).
Z_MAX = 4.0
# The omnibus formula's O(1/n) error: tests/test_ridge.py measured relative gaps times
# min(n, |n - M|) of at most 1.04 on power laws and allows DE_SLACK / min(n, |n - M|).
DE_SLACK = 1.5


def _gaussian_pool(size: int, dim: int, noise: float, seed: int = 0) -> pool.Pool:
    rng = np.random.default_rng(seed)
    lam = np.arange(1, dim + 1, dtype=float) ** -1.5
    x = rng.standard_normal((size, dim)) * np.sqrt(lam)
    y = x @ rng.standard_normal(dim) + np.sqrt(noise) * rng.standard_normal(size)
    x, y = x - x.mean(axis=0), y - y.mean()
    return pool.Pool(jnp.asarray(x), jnp.asarray(x @ x.T), jnp.asarray(y))


def _fit(params: pool.Params, n_seeds: int) -> pool.Obs:
    keys = jax.random.split(jax.random.key(1), n_seeds)
    return jax.jit(jax.vmap(pool.fit, in_axes=(None, 0)))(params, keys)


@pytest.mark.slow
@pytest.mark.parametrize("n", [16, 48])  # 9 s each
def test_kernel_ridge_on_a_gaussian_pool_matches_the_omnibus_predictor(n):
    """The pool is the population: the linear kernel's spectrum (K / P) and target power give
    the predicted test MSE over the pool (sigma^2: the target's power outside the kernel's
    range). With-replacement draws repeat a point with probability ~ n / P (< 2 %, within the
    slack's margin over the measured 1.04)."""
    dim, noise = 32, 0.1
    the_pool = _gaussian_pool(3000, dim, noise)
    spectrum = data.kernel_spectrum(np.asarray(the_pool.kernel), np.asarray(the_pool.y))
    sigma2 = float(jnp.mean(the_pool.y**2) - jnp.sum(spectrum.target_power()))
    ridge = 1e-3 * float(jnp.sum(spectrum.eigenvalues()))
    obs = _fit(pool.Params(the_pool, n_samples=n, capacity=n, ridge=ridge), N_SEEDS)
    predicted = float(theory.ridge_risk(spectrum, n=n, ridge=ridge, noise=sigma2)) + sigma2
    mean, sem = float(obs.mse.mean()), float(obs.mse.std(ddof=1)) / np.sqrt(N_SEEDS)
    slack = DE_SLACK / min(n, abs(n - dim)) * predicted
    assert abs(mean - predicted) <= Z_MAX * sem + slack, (mean, predicted, sem)


@pytest.mark.slow
def test_masked_draws_are_kernel_ridge_on_the_first_n():
    """The (capacity x capacity) masked solve equals the plain n x n kernel ridge on the first n
    draws, and a traced n vmaps over a whole curve in one program."""
    the_pool = _gaussian_pool(120, 16, 0.2)
    params = pool.Params(the_pool, n_samples=10, capacity=32, ridge=0.05)
    key = jax.random.key(7)
    obs = pool.fit(params, key)
    index = np.asarray(jax.random.randint(jax.random.split(key)[0], (32,), 0, 120))[:10]
    k, y = np.asarray(the_pool.kernel), np.asarray(the_pool.y)
    predicted = k[:, index] @ np.linalg.solve(k[np.ix_(index, index)] + 0.05 * np.eye(10), y[index])
    np.testing.assert_allclose(float(obs.mse), np.mean((predicted - y) ** 2), rtol=RTOL["float64"])
    curve = jax.vmap(lambda n: pool.fit(dataclasses.replace(params, n_samples=n), key))(
        jnp.arange(1, 33)
    )
    assert curve.mse.shape == (32,) and float(curve.mse[9]) == pytest.approx(float(obs.mse))


def test_kernel_ridge_interpolates_its_draws():
    the_pool = _gaussian_pool(200, 64, 0.5)
    obs = _fit(pool.Params(the_pool, n_samples=32, capacity=32, ridge=1e-12), 4)
    assert float(obs.train_mse.max()) < 1e-12
    assert float(obs.heldout_mse.min()) > 0.1  # the noise cannot be interpolated away


@pytest.mark.slow
def test_random_features_tend_to_their_arccos_kernel():
    """sqrt(2/M) relu(W x) has E[phi(x) . phi(x')] = the arc-cosine kernel of order 1: at width
    M = 2^15 the Gram matrix's relative error is ~ M^-1/2 = 0.6 %, and the ridge fits (same draws:
    the draw key does not depend on the model) differ by about as much."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((150, 6))
    y = np.sin(x[:, 0]) + 0.5 * x[:, 1] * x[:, 2]
    arccos = data.kernel_matrix(x, kind="arccos")
    the_pool = pool.Pool(jnp.asarray(x), jnp.asarray(arccos), jnp.asarray(y - y.mean()))
    ridge = 1e-2 * float(np.trace(arccos))
    kernel = _fit(pool.Params(the_pool, n_samples=40, capacity=40, ridge=ridge), 4)
    features = _fit(
        pool.Params(the_pool, model="rf", n_samples=40, capacity=40, ridge=ridge, width=2**15), 4
    )
    np.testing.assert_allclose(features.mse, kernel.mse, rtol=0.05)
    narrow = _fit(
        pool.Params(the_pool, model="rf", n_samples=40, capacity=40, ridge=ridge, width=8), 4
    )
    assert np.max(np.abs(narrow.mse / kernel.mse - 1)) > 0.05  # the check can fail


@pytest.mark.slow
def test_mlp_fits_its_training_draws():
    the_pool = _gaussian_pool(300, 8, 0.0)
    params = pool.Params(
        the_pool, model="mlp", n_samples=64, capacity=64, width=64, steps=300, lr=1e-2
    )
    obs = _fit(params, 2)
    assert float(obs.train_mse.max()) < 0.05 * float(jnp.mean(the_pool.y**2))
    assert obs.mse.dtype == the_pool.y.dtype


def test_a_resample_is_the_resampled_pool():
    """resample = every index is the pool itself; a bootstrap resample gives the same training
    draws, fit and errors as the pool built from the resampled points (targets centred on them),
    so a bootstrap over data points needs no copy of the pool per resample."""
    the_pool = _gaussian_pool(60, 4, 0.2)
    params = pool.Params(the_pool, n_samples=12, capacity=16, ridge=0.01)
    rtol = RTOL[str(the_pool.y.dtype)]
    plain = _fit(params, 4)
    same = _fit(dataclasses.replace(params, resample=jnp.arange(60)), 4)
    np.testing.assert_allclose(np.stack(same), np.stack(plain), rtol=rtol)
    index = np.random.default_rng(3).integers(0, 60, 60)
    x, y = np.asarray(the_pool.x)[index], np.asarray(the_pool.y)[index]
    built = pool.Pool(jnp.asarray(x), jnp.asarray(x @ x.T), jnp.asarray(y - y.mean()))
    resampled = _fit(dataclasses.replace(params, resample=jnp.asarray(index)), 4)
    copied = _fit(dataclasses.replace(params, pool=built), 4)
    # held out differs by design: a copy of a drawn point counts as drawn here, not there
    for field in ("mse", "train_mse"):
        np.testing.assert_allclose(getattr(resampled, field), getattr(copied, field), rtol=rtol)
    assert not np.allclose(resampled.mse, plain.mse)


@pytest.mark.parametrize(
    ("field", "change"),
    [
        ("model", dict(model="cnn")),
        ("n_samples", dict(n_samples=300)),
        ("ridge", dict(ridge=-1.0)),
        ("width", dict(width=0)),
        ("n_samples", dict(n_samples=0)),
        ("lr", dict(lr=0.0)),
        ("resample", dict(resample=jnp.arange(19))),
        ("resample", dict(resample=jnp.arange(20) + 1)),
    ],  # fmt: skip
)
def test_bad_params_name_the_field(field, change):
    the_pool = _gaussian_pool(20, 4, 0.1)
    with unchecked(), pytest.raises(ValueError, match=field):
        pool.Params(the_pool, **change)


def test_pool_shapes_must_agree():
    with unchecked(), pytest.raises(ValueError, match="Pool"):
        pool.Pool(jnp.zeros((5, 2)), jnp.zeros((4, 4)), jnp.zeros(5))
