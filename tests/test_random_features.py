"""Random features (THEORY.md §2.4, §2.8): the SGD simulator against the exact conditional
recursion given F, and the approximation-error equivalent against Monte Carlo over F."""

import dataclasses
import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import RTOL, unchecked

from spectral_sim import Empirical, PowerLaw, simulate, theory
from spectral_sim.models import random_features as rf

STEPS = tuple(simulate.log_steps(400, 12).tolist())
N_SEEDS = 1024
SGD_CASES = [  # s, a, n_modes, n_features, batch, noise
    (1.5, 2.0, 64, 32, 2, 0.05),  # N < M: a nonzero approximation floor F0
    (2.0, 1.5, 32, 48, 1, 0.0),  # N > M: K has N - M null modes, F0 = 0
]
# |simulated mean - exact recursion| / SEM per record: P(|z| > 5) = 5.7e-7 for N(0, 1), so
# 2 cases x 12 records give about 1.4e-5 false alarms per run. The learning rate is half the
# critical rate of the conditional problem, where the loss has finite variance.
Z_MAX = 5.0


@functools.partial(jax.jit, static_argnames="steps")
def _sgd_runs(params, keys, steps=STEPS):
    one = functools.partial(simulate.trajectory, rf, steps=steps)
    return jax.vmap(one, in_axes=(None, 0))(params, keys)


@functools.partial(jax.jit, static_argnames="steps")
def _tuned_theory(params, steps):
    """Params at half the critical SGD rate of the conditional problem (eigenvalues mu of
    K = F^T Sigma F, THEORY.md §2.4), the exact conditional loss at `steps` for them, and the
    approximation floor F0, all for the Params' own F."""
    opt = theory.random_features.optimum(params.spectrum, rf.features(params))
    conditional = Empirical(jnp.where(opt.mu > 0, opt.mu, 1e-300), jnp.zeros_like(opt.mu))
    lr = 0.5 * theory.sgd_critical_lr(conditional, batch=params.batch)
    params = dataclasses.replace(params, lr=lr)
    return params, theory.random_features.loss(params, steps), opt.floor


@jax.jit
def _projection_residual(spectrum, features):
    """Brute force u^T (I - P_Z) u, u = Sigma^1/2 w*, Z = Sigma^1/2 F, by a QR of Z."""
    root = jnp.sqrt(spectrum.eigenvalues())
    u = root * spectrum.target()
    q, _ = jnp.linalg.qr(root[:, None] * features)
    residual = u - q @ (q.T @ u)
    return residual @ residual


@pytest.mark.slow_cases
@pytest.mark.parametrize("s, a, n_modes, n_features, batch, noise", SGD_CASES)
def test_sgd_matches_exact_conditional_loss(s, a, n_modes, n_features, batch, noise, key):
    spectrum = PowerLaw(s=s, a=a, n_modes=n_modes)
    params = rf.Params(spectrum, noise=noise, feature_seed=3, n_features=n_features, batch=batch)
    params, expected, floor = _tuned_theory(params, (0, *STEPS))
    _, obs = _sgd_runs(params, jax.random.split(key, N_SEEDS))
    sem = obs.loss.std(axis=0, ddof=1) / jnp.sqrt(N_SEEDS)
    assert jnp.max(jnp.abs(obs.loss.mean(axis=0) - expected[1:]) / sem) < Z_MAX
    # At theta = 0 the loss is 1/2 w*^T Sigma w* = 1/2 sum_k v_k^2 whatever F is (identity),
    # and it is learned, not just matched: it falls most of the way to the floor F0.
    energy = 0.5 * jnp.sum(spectrum.target_power())
    np.testing.assert_allclose(expected[0], energy, rtol=RTOL["float64"])
    assert floor <= expected[-1] < floor + 0.25 * (energy - floor)


@pytest.mark.slow_cases
@pytest.mark.parametrize("n_modes, n_features", [(48, 20), (20, 48)])
def test_approx_error_given_features_is_the_projection_residual(n_modes, n_features):
    """Identity: 2 F0 from K's eigendecomposition = u^T (I - P_Z) u by QR; 0 once N >= M."""
    spectrum = PowerLaw(s=1.5, a=2.0, n_modes=n_modes)
    features = rf.features(rf.Params(spectrum, feature_seed=11, n_features=n_features))
    got = jax.jit(theory.random_features.approx_error_given_features)(spectrum, features)
    energy = jnp.sum(spectrum.target_power())
    if n_features >= n_modes:
        assert abs(got) < RTOL["float64"] * energy
    else:
        expected = _projection_residual(spectrum, features)
        np.testing.assert_allclose(got, expected, rtol=RTOL["float64"])


@pytest.mark.slow_cases
@pytest.mark.parametrize("n_modes, n_features", [(48, 16), (16, 24)])
def test_gf_loss_given_features_is_the_flow(n_modes, n_features):
    """Identity: the eigenbasis formula against theta(t) = (I - expm(-K t)) theta* evaluated
    in the original coordinates, L = 1/2 (F theta - w*)^T Sigma (F theta - w*)."""
    spectrum = PowerLaw(s=1.5, a=2.0, n_modes=n_modes)
    features = rf.features(rf.Params(spectrum, feature_seed=3, n_features=n_features))
    times = jnp.array([0.0, 0.3, 4.0, 50.0])
    got = theory.random_features.gf_loss_given_features(spectrum, features, times)
    lam, target = spectrum.eigenvalues(), spectrum.target()
    kernel = features.T @ (lam[:, None] * features)
    theta_star = jnp.linalg.pinv(kernel, hermitian=True) @ (features.T @ (lam * target))

    def direct(t):
        theta = theta_star - jax.scipy.linalg.expm(-kernel * t) @ theta_star
        deviation = features @ theta - target
        return 0.5 * deviation**2 @ lam

    expected = jnp.stack([direct(t) for t in times])
    # pinv and expm against eigh: agreement to ~1e-12 relative of the initial loss.
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-11 * float(expected[0]))
    assert float(got[0]) == pytest.approx(0.5 * float(jnp.sum(spectrum.target_power())), rel=1e-12)


N_DRAWS = 2048
# THEORY.md §2.8 quotes Monte Carlo agreement within 1.7% for the first-order equivalent. The gap
# is a one-sided bias (Monte Carlo above the DE) falling roughly like N^-0.7. Measured with 2e4
# draws at M = 128: +1.1% at (s, a, N) = (1.5, 2.0, 64) and +0.9% at (2.0, 1.5, 32), the two
# cases below; but +3.4% at (1.5, 2.0, 16), +5% to +12% at N = 8, and +2.1% at (2.0, 3.0, 64)
# where a - 1 > s (the saturated regime). So 1.7% holds only for N of several tens and
# a - 1 <= s; the allowance is THEORY's 1.7%, on cases inside that range.
DE_RTOL = 0.017
# P(|z| > 5) = 5.7e-7 per case for the Monte Carlo part of the tolerance.
Z_MAX_DE = 5.0


@pytest.mark.slow_cases
@pytest.mark.parametrize("s, a, n_features", [(1.5, 2.0, 64), (2.0, 1.5, 32)])
def test_rf_approx_error_matches_monte_carlo_over_features(s, a, n_features):
    spectrum = PowerLaw(s=s, a=a, n_modes=128)

    @jax.jit
    def draws(seeds):
        def one(seed):  # feature_seed is a traced sweep axis: one compiled program
            params = rf.Params(spectrum, feature_seed=seed, n_features=n_features)
            return _projection_residual(spectrum, rf.features(params))

        return jax.vmap(one)(seeds)

    errors = draws(jnp.arange(N_DRAWS))
    mean, sem = errors.mean(), errors.std(ddof=1) / np.sqrt(N_DRAWS)
    expected = theory.rf_approx_error(spectrum, n_features=n_features)
    assert abs(mean - expected) < Z_MAX_DE * sem + DE_RTOL * expected


def test_rf_approx_error_limits():
    spectrum = PowerLaw(s=1.5, a=2.0, n_modes=64)
    widths = jnp.array([1e-6, 1.0, 8.0, 32.0, 63.0, 64.0, 200.0])
    errors = jax.jit(jax.vmap(lambda d: theory.rf_approx_error(spectrum, n_features=d)))(widths)
    energy = jnp.sum(spectrum.target_power())
    # kappa_d -> inf as d -> 0 (nothing learned): kappa_d ~ sum lambda / d, so the error falls
    # short of the energy by about d sum v^2 lambda / sum lambda < 1e-6 relative here.
    assert errors[0] == pytest.approx(float(energy), rel=1e-6)
    # 0 once d >= M (F spans everything).
    assert np.all(np.diff(errors[:5]) < 0) and errors[5] == 0.0 and errors[6] == 0.0
    # It is the ridgeless ridge bias at n = d, without the E0 factor.
    kappa = theory.kappa(spectrum, n=8.0)
    lam = spectrum.eigenvalues()
    direct = spectrum.target_power() @ (kappa / (lam + kappa))
    np.testing.assert_allclose(errors[2], direct, rtol=RTOL["float64"])
    np.testing.assert_allclose(
        theory.random_features.approx_error(rf.Params(spectrum, n_features=8)),
        direct,
        rtol=RTOL["float64"],
    )


@pytest.mark.slow
def test_feature_seed_is_its_own_axis(key):
    """Trajectory seeds vary only the SGD stream; feature_seed alone sets F, and sweeping it
    reuses one compiled program."""
    spectrum = PowerLaw(s=1.5, a=2.0, n_modes=16)

    @jax.jit
    @chex.assert_max_traces(n=1)
    def final_features(seeds, keys):
        def one(seed, key):
            params = rf.Params(spectrum, lr=0.1, feature_seed=seed, n_features=8)
            return simulate.trajectory(rf, params, key, steps=[3])[0]

        return jax.vmap(one)(seeds, keys)

    keys = jax.random.split(key, 3)
    same = final_features(jnp.array([5, 5, 9]), keys)
    np.testing.assert_array_equal(same.features[0], same.features[1])
    assert np.any(same.features[0] != same.features[2])
    assert np.any(same.theta[0] != same.theta[1])  # different SGD streams
    final_features(jnp.array([1, 2, 3]), keys)  # a new seed sweep, no retrace


@pytest.mark.slow
def test_float32_keeps_dtype_and_is_finite(key):
    spectrum = PowerLaw(s=jnp.float32(1.5), a=jnp.float32(2.0), n_modes=32)
    params = rf.Params(spectrum, lr=0.2, noise=0.01, n_features=16, batch=4)
    state, obs = _sgd_runs(params, jax.random.split(key, 4), steps=(1, 300))
    error = jax.jit(theory.random_features.approx_error)(params)
    for leaf in (state.features, state.theta, obs.loss, error):
        assert leaf.dtype == jnp.float32
    chex.assert_tree_all_finite((state, obs, error))
    assert jnp.all(obs.loss[:, 1] < obs.loss[:, 0])


@pytest.mark.parametrize(
    "build, field",
    [
        (lambda sp: rf.Params(sp, lr=0.0), "lr"),
        (lambda sp: rf.Params(sp, noise=-0.1), "noise"),
        (lambda sp: rf.Params(sp, feature_seed=-1), "feature_seed"),
        (lambda sp: rf.Params(sp, feature_seed=1.5), "feature_seed"),
        (lambda sp: rf.Params(sp, n_features=0), "n_features"),
        (lambda sp: rf.Params(sp, batch=0), "batch"),
        (lambda sp: theory.rf_approx_error(sp, n_features=0.0), "n_features"),
    ],
)
def test_bad_input_raises_before_tracing(build, field):
    with unchecked(), pytest.raises(ValueError, match=f"^{field} must"):
        build(PowerLaw(s=1.5, a=2.0, n_modes=8))


# --- Params forms ----------------------------------------------------------------------------

RF_GRID = [
    rf.Params(PowerLaw(s=s, a=a, n_modes=24), lr=lr, noise=noise, feature_seed=seed,
              n_features=12, batch=2)
    for s, a, lr, noise, seed in [(1.5, 2.0, 0.1, 0.0, 0), (2.0, 2.5, 0.3, 0.01, 5),
                                  (3.0, 1.5, 0.2, 0.1, 7)]
]  # fmt: skip


@pytest.mark.parametrize(
    "form",
    [theory.random_features.approx_error,
     functools.partial(theory.random_features.sgd, steps=np.array([0, 5, 50]))],
    ids=["approx_error", "sgd"],
)  # fmt: skip
@pytest.mark.slow_cases
def test_params_forms_vmap_over_a_stacked_grid(form):
    """One vmap over the stacked grid (feature_seed included: each point draws its own F)
    equals the point-by-point evaluation: the same float64 operations, up to the order of
    batched reductions and eigendecompositions, so 1e-10 relative."""
    stacked = jax.tree.map(lambda *leaves: jnp.stack(leaves), *RF_GRID)
    batched = jax.vmap(form)(stacked)
    one_by_one = jnp.stack([form(p) for p in RF_GRID])
    np.testing.assert_allclose(batched, one_by_one, rtol=RTOL["float64"])


def test_sgd_is_the_given_features_form_for_the_simulators_own_features():
    params = RF_GRID[1]
    steps = np.array([3, 30])
    expected = theory.sgd_loss_given_features(params, rf.features(params), steps)
    np.testing.assert_array_equal(theory.random_features.sgd(params, steps), expected)
    assert theory.random_features.loss is theory.random_features.sgd
