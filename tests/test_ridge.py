"""Finite-data ridge (THEORY.md §2.7, §2.9): the closed-form simulator against the omnibus
deterministic equivalent and the exact isotropic OLS risk, the equivalent's exact limits, and GD
on the empirical loss against its closed form."""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import RTOL, unchecked
from hypothesis import given
from hypothesis import strategies as st

from spectral_sim import Empirical, PowerLaw, simulate, theory
from spectral_sim.models import ridge

N_SEEDS = 1024
# |Monte Carlo mean - prediction| / SEM: P(|z| > 5) = 5.7e-7 for N(0, 1), so the 6 Monte Carlo
# comparisons below give about 3e-6 false alarms per run. 1024 draws make the mean of the
# (skewed, inverse-Wishart-like) risk normal to well within that; every case keeps |n - M| >= 32
# so the risk has finite higher moments and the SEM is meaningful.
Z_MAX = 5.0
# The omnibus formula is a deterministic equivalent with O(1/n) relative error. Its size is
# exact for isotropic design: E0 - 1 = M/(n - M) against the exact M/(n - M - 1) (and
# n/(M - n) against n/(M - n - 1) for the min-norm interpolator; the bias is exact there), a
# relative gap of 1/(|n - M| - 1). For the power laws below, 2e5 draws measured relative gaps
# (Monte Carlo above the DE in every case) times min(n, |n - M|) of 0.52, 0.24 and 0.42 (in
# RIDGE_CASES order), and 1.04 at (s, a, M, n) = (1.2, 2.5, 128, 96), 32 samples short of the
# threshold. The allowance is DE_SLACK / min(n, |n - M|), 1.5x the worst measured.
DE_SLACK = 1.5
RIDGE_CASES = [  # s, a, n_modes, n_samples, ridge, noise
    (1.5, 2.0, 128, 32, 0.0, 0.1),  # ridgeless, n < M: the min-norm interpolator
    (1.5, 2.0, 128, 64, 0.1, 0.5),
    (2.0, 1.5, 64, 128, 0.01, 0.2),  # n > M
]


# One jit per helper: a new ridge, noise, n (for the theory) or spectrum exponent reuses the
# compiled program; only shapes (n_modes, n_samples, dtype) recompile.
_fit_many = jax.jit(jax.vmap(ridge.fit, in_axes=(None, 0)))
_equivalent = jax.jit(theory.ridge_equivalent)
_kappa = jax.jit(theory.kappa)
_gd_weights = jax.jit(theory.ridge.gd_weights)


@functools.partial(jax.jit, static_argnames="steps")
def _gd_run(params, key, steps):
    return simulate.trajectory(ridge, params, key, steps=steps)


def _monte_carlo(params, key, n_seeds=N_SEEDS):
    """Per observable of `ridge.fit`: (mean, SEM) over n_seeds independent data draws."""
    out = _fit_many(params, jax.random.split(key, n_seeds))
    return jax.tree.map(
        lambda x: (x.mean(axis=0), x.std(axis=0, ddof=1) / n_seeds**0.5),
        out,
        is_leaf=lambda x: isinstance(x, jax.Array),
    )


def _as_empirical(spectrum):
    """The same spectrum as arrays: every Monte Carlo case then has one pytree structure, and
    cases with equal (n_modes, n_samples) share one compiled program."""
    return Empirical(spectrum.eigenvalues(), spectrum.target_power())


@pytest.mark.slow_cases
@pytest.mark.parametrize("s, a, n_modes, n, delta, noise", RIDGE_CASES)
def test_ridge_fit_matches_omnibus_equivalent(s, a, n_modes, n, delta, noise, key):
    spectrum = _as_empirical(PowerLaw(s=s, a=a, n_modes=n_modes))
    params = ridge.Params(spectrum, ridge=delta, noise=noise, n_samples=n)
    mean, sem = _monte_carlo(params, key).risk
    parts = _equivalent(spectrum, n=n, ridge=delta, noise=noise)
    expected = parts.bias + parts.variance
    allowance = DE_SLACK / min(n, abs(n - n_modes)) * expected
    assert abs(mean - expected) < Z_MAX * sem + allowance


@pytest.mark.parametrize("n, d, noise, w_norm2", [(128, 64, 0.5, 0.0), (32, 128, 0.5, 1.0)])
def test_ols_risk_matches_monte_carlo(n, d, noise, w_norm2, key):
    """Isotropic design (THEORY.md §2.9 is exact): OLS below the threshold, min-norm above
    (shapes shared with RIDGE_CASES)."""
    # Not jnp.full: its weak dtype would miss the compiled program of the RIDGE_CASES shape.
    spectrum = Empirical(jnp.ones(d), w_norm2 / d * jnp.ones(d))
    params = ridge.Params(spectrum, noise=noise, n_samples=n)
    mean, sem = _monte_carlo(params, key).risk
    expected = theory.ols_risk(n=n, d=d, noise=noise, w_norm2=w_norm2)
    assert abs(mean - expected) / sem < Z_MAX


def test_ols_risk_regimes():
    risk = jax.vmap(functools.partial(theory.ols_risk, n=50.0, noise=2.0, w_norm2=3.0))
    d = jnp.array([10.0, 48.9, 49.0, 50.0, 51.0, 51.1, 100.0])
    expected = [
        2 * 10 / 39,  # sigma^2 d / (n - d - 1)
        2 * 48.9 / 0.1,
        np.inf,  # n - 1 <= d <= n + 1
        np.inf,
        np.inf,
        2 * 50 / 0.1 + 3 * (1 - 50 / 51.1),  # sigma^2 n / (d - n - 1) + |w*|^2 (1 - n/d)
        2 * 50 / 49 + 3 * (1 - 50 / 100),
    ]
    np.testing.assert_allclose(risk(d=d), expected, rtol=RTOL["float64"])


# --- exact limits of the equivalent -----------------------------------------------------------

M_ISO = 40


def _isotropic(w_norm2=1.0):
    return Empirical(jnp.ones(M_ISO), jnp.full(M_ISO, w_norm2 / M_ISO))


@pytest.mark.parametrize("n", [41.0, 60.0, 400.0])
def test_ridgeless_underparametrised_isotropic_is_exact_ols_leading_order(n):
    """delta = 0, n > M: kappa = 0, E0 = n / (n - M), risk = sigma^2 M / (n - M), which is the
    exact OLS risk sigma^2 M / (n - M - 1) times (n - M - 1)/(n - M): the DE's O(1/n) bias."""
    parts = _equivalent(_isotropic(), n=n, ridge=0.0, noise=0.3)
    assert parts.kappa == 0.0 and parts.bias == 0.0
    np.testing.assert_allclose(parts.overfitting, n / (n - M_ISO), rtol=RTOL["float64"])
    np.testing.assert_allclose(parts.variance, 0.3 * M_ISO / (n - M_ISO), rtol=RTOL["float64"])
    exact = theory.ols_risk(n=n, d=M_ISO, noise=0.3)
    ratio = (n - M_ISO - 1) / (n - M_ISO)
    if n > M_ISO + 1:
        np.testing.assert_allclose(parts.variance, ratio * exact, rtol=RTOL["float64"])


@pytest.mark.parametrize("n", [5.0, 20.0, 38.0])
def test_ridgeless_overparametrised_isotropic(n):
    """delta = 0, n < M: kappa = M/n - 1, L = n/M, bias ||w*||^2 (1 - n/M) exactly as the
    min-norm risk, variance sigma^2 n/(M - n) against the exact sigma^2 n/(M - n - 1)."""
    parts = _equivalent(_isotropic(2.0), n=n, ridge=0.0, noise=0.3)
    np.testing.assert_allclose(parts.kappa, M_ISO / n - 1, rtol=RTOL["float64"])
    np.testing.assert_allclose(parts.bias, 2.0 * (1 - n / M_ISO), rtol=RTOL["float64"])
    np.testing.assert_allclose(parts.variance, 0.3 * n / (M_ISO - n), rtol=RTOL["float64"])
    exact = theory.ols_risk(n=n, d=M_ISO, noise=0.3, w_norm2=2.0)
    ratio = (M_ISO - n) / (M_ISO - n - 1)
    np.testing.assert_allclose(parts.bias + ratio * parts.variance, exact, rtol=RTOL["float64"])


@pytest.mark.parametrize("n, delta", [(10.0, 0.5), (40.0, 3.0), (90.0, 1e-3)])
def test_isotropic_kappa_is_the_quadratic_root(n, delta):
    """n = M/(1 + kappa) + delta/kappa <=> n kappa^2 + (n - M - delta) kappa - delta = 0."""
    b = n - M_ISO - delta
    expected = (-b + np.sqrt(b**2 + 4 * n * delta)) / (2 * n)
    got = _kappa(_isotropic(), n=n, ridge=delta)
    np.testing.assert_allclose(got, expected, rtol=RTOL["float64"])


def test_threshold_is_infinite_and_noise_free_interpolation_exact():
    parts = _equivalent(_isotropic(), n=float(M_ISO), noise=0.1)
    assert parts.variance == jnp.inf and parts.bias == 0.0
    noiseless = _equivalent(_isotropic(), n=float(M_ISO), noise=0.0)
    assert noiseless.bias + noiseless.variance == 0.0


M_HYP = 64


@jax.jit
def _kappa_and_risk(s, a, n, delta):
    spectrum = PowerLaw(s=s, a=a, n_modes=M_HYP)
    k = theory.kappa(spectrum, n=n, ridge=delta)
    lam = spectrum.eigenvalues()
    lhs = jnp.sum(lam / (lam + k)) + delta / k
    return k, lhs, theory.ridge_equivalent(spectrum, n=n, ridge=delta, noise=0.1)


@given(
    s=st.floats(0.3, 3.0),
    a=st.floats(0.5, 4.0),
    n=st.floats(0.5, 500.0),
    delta=st.one_of(st.just(0.0), st.floats(1e-8, 1e3)),
)
def test_kappa_solves_its_equation(s, a, n, delta):
    k, lhs, parts = _kappa_and_risk(s, a, n, delta)
    if delta == 0 and n >= M_HYP:
        assert k == 0.0  # ridgeless, enough samples: the kappa -> 0 limit
    else:
        assert k > 0
        np.testing.assert_allclose(lhs, n, rtol=RTOL["float64"])
    if not (delta == 0 and n == M_HYP):
        assert parts.overfitting >= 1 and parts.bias >= 0 and parts.variance >= 0
        chex.assert_tree_all_finite(parts)


def test_kappa_derivatives_match_finite_differences():
    """kappa's custom JVP (implicit function theorem) against central differences; with
    h = 1e-5 x the O(h^2) truncation and eps/h rounding are both below 1e-8 relative."""
    tol = 1e-7

    @jax.jit
    def k(s, n, delta):
        return theory.kappa(PowerLaw(s=s, a=2.0, n_modes=M_HYP), n=n, ridge=delta)

    gradient = jax.jit(jax.grad(k, argnums=(0, 1, 2)))
    point = (1.5, 20.0, 0.3)
    grads = gradient(*point)
    for i, grad in enumerate(grads):
        h = 1e-5 * point[i]
        up = list(point)
        down = list(point)
        up[i] += h
        down[i] -= h
        np.testing.assert_allclose(grad, (k(*up) - k(*down)) / (2 * h), rtol=tol)
    # Pinned at kappa = 0 (delta = 0, n >= M) the derivative is 0, not NaN.
    assert gradient(1.5, 100.0, 0.0)[1] == 0.0


def test_equivalent_vmaps_over_a_grid_without_retracing():
    spectrum = PowerLaw(s=1.5, a=2.0, n_modes=M_HYP)

    @jax.jit
    @chex.assert_max_traces(n=1)
    def grid(n, delta):
        return jax.vmap(lambda n, d: theory.ridge_risk(spectrum, n=n, ridge=d, noise=0.1))(n, delta)

    n = jnp.array([8.0, 30.0, 100.0])
    delta = jnp.array([0.0, 0.1, 2.0])
    got = grid(n, delta)
    grid(2 * n, delta + 1)  # new values, same compiled program
    parts = [_equivalent(spectrum, n=m, ridge=d, noise=0.1) for m, d in zip(n, delta, strict=True)]
    pointwise = [p.bias + p.variance for p in parts]
    np.testing.assert_allclose(got, pointwise, rtol=RTOL["float64"])


# --- gradient descent on the empirical loss ---------------------------------------------------

# Shared by the GD tests so that each (n_modes, n_samples) compiles one program: spectra,
# ridge, noise and lr are traced.
GD_STEPS = (1, 10, 100, 1000, 20_000)
GD_CASES = [(64, 0.0), (16, 0.0), (16, 2.0)]  # n_samples (n_modes = 32), ridge


@pytest.mark.parametrize("n, delta", GD_CASES)
def test_gd_matches_closed_form(n, delta, key):
    """Identity: the simulated iterates are V diag((1 - (1 - lr mu)^t)/mu) V^T X^T y / n."""
    spectrum = PowerLaw(s=1.5, a=2.0, n_modes=32)
    params = ridge.Params(spectrum, ridge=delta, noise=0.1, lr=0.3, n_samples=n)
    state, obs = _gd_run(params, key, GD_STEPS)
    w = _gd_weights(state.x, state.y, lr=params.lr, steps=jnp.array(GD_STEPS), ridge=delta)
    expected = jax.vmap(ridge.observe, in_axes=(None, 0))(params, w)
    np.testing.assert_allclose(obs.risk, expected.risk, rtol=RTOL["float64"])
    np.testing.assert_allclose(obs.loss, 0.5 * obs.risk, rtol=RTOL["float64"])
    scale = jnp.linalg.norm(w[-1])
    assert jnp.linalg.norm(state.w - w[-1]) < RTOL["float64"] * scale


@pytest.mark.parametrize("n, delta", GD_CASES)
def test_gd_converges_to_ridge_estimate(n, delta, key):
    """From w = 0 GD stays in X's row space, so it converges to the ridge estimator, and at
    delta = 0 with n < M to the min-norm interpolator (the kernel-form solve)."""
    spectrum = PowerLaw(s=0.5, a=1.0, n_modes=32)  # well conditioned: fast convergence
    params = ridge.Params(spectrum, ridge=delta, noise=0.1, lr=0.3, n_samples=n)
    steps = GD_STEPS[-1]
    state, _ = _gd_run(params, key, GD_STEPS)
    x = state.x
    small = x.T @ x if n >= x.shape[1] else x @ x.T  # nonzero part of X^T X's spectrum
    mu = (jnp.linalg.eigvalsh(small) + delta) / n
    # The slowest row-space mode decays as |1 - lr mu|^t; require it below the tolerance so the
    # comparison is an identity up to rounding.
    transient = jnp.max(jnp.abs(1 - params.lr * mu)) ** steps
    assert transient < 1e-2 * RTOL["float64"]
    expected = ridge.estimate(params, x, state.y)
    assert jnp.linalg.norm(state.w - expected) < RTOL["float64"] * jnp.linalg.norm(expected)


def test_fit_vmaps_over_params_and_keys(key):
    spectrum = PowerLaw(s=1.5, a=2.0, n_modes=32)
    grid = jax.vmap(lambda d: ridge.Params(spectrum, ridge=d, noise=0.1, n_samples=16))(
        jnp.array([0.0, 10.0, 10.0])
    )
    keys = jax.random.split(key, 4)
    risk = jax.jit(jax.vmap(_fit_many, in_axes=(0, None)))(grid, keys).risk
    chex.assert_shape(risk, (3, 4))
    # Common random numbers across grid points: equal Params give equal risks, and the ridge
    # changes them.
    np.testing.assert_array_equal(risk[1], risk[2])
    assert np.all(risk[0] != risk[1]) and np.all(np.diff(risk[1]) != 0)


def test_float32_keeps_dtype_and_is_finite(key):
    spectrum = PowerLaw(s=jnp.float32(1.5), a=jnp.float32(2.0), n_modes=32)
    params = ridge.Params(spectrum, ridge=0.1, noise=0.1, lr=0.3, n_samples=16)
    fitted = _fit_many(params, key[None])
    state, obs = _gd_run(params, key, (1, 200))
    risk = jax.jit(theory.ridge.risk)(params)
    for leaf in (fitted.risk, state.x, state.w, obs.loss, obs.risk, risk):
        assert leaf.dtype == jnp.float32
    chex.assert_tree_all_finite((fitted, state, obs, risk))
    assert obs.loss[1] < obs.loss[0] < 0.5 * jnp.sum(spectrum.target_power())
    # The float32 bisection and formula agree with float64 to float32's identity tolerance.
    parts = _equivalent(PowerLaw(s=1.5, a=2.0, n_modes=32), n=16, ridge=0.1, noise=0.1)
    np.testing.assert_allclose(risk, parts.bias + parts.variance, rtol=RTOL["float32"])


@pytest.mark.parametrize(
    "build, field",
    [
        (lambda sp: ridge.Params(sp, ridge=-0.1), "ridge"),
        (lambda sp: ridge.Params(sp, noise=-1.0), "noise"),
        (lambda sp: ridge.Params(sp, lr=0.0), "lr"),
        (lambda sp: ridge.Params(sp, n_samples=0), "n_samples"),
        (lambda sp: ridge.Params(sp, n_samples=3.0), "n_samples"),
        (lambda sp: theory.ridge_risk(sp, n=0.0), "n"),
        (lambda sp: theory.ridge_risk(sp, n=10.0, ridge=-1.0), "ridge"),
        (lambda sp: theory.ridge_risk(sp, n=10.0, noise=-1.0), "noise"),
        (lambda sp: theory.ols_risk(n=10.0, d=-1.0), "d"),
        (lambda sp: theory.ols_risk(n=10.0, d=5.0, w_norm2=jnp.nan), "w_norm2"),
    ],
)
def test_bad_input_raises_before_tracing(build, field):
    with unchecked(), pytest.raises(ValueError, match=f"^{field} must"):
        build(PowerLaw(s=1.5, a=2.0, n_modes=8))


# --- Params forms ----------------------------------------------------------------------------


def _stack(points):
    """The Params as one pytree whose leaves carry a leading grid axis."""
    return jax.tree.map(lambda *leaves: jnp.stack(leaves), *points)


# n_samples is static (a shape): one per grid; ridge 0 and > 0, noise 0 and > 0, both sides of
# the interpolation threshold n = M.
RIDGE_GRID = [
    ridge.Params(PowerLaw(s=s, a=a, n_modes=m), ridge=delta, noise=noise, lr=0.1, n_samples=40)
    for m in (8, 64)
    for s, a, delta, noise in [(1.5, 2.0, 0.0, 0.1), (2.0, 2.5, 0.3, 0.0), (3.0, 1.5, 1e-3, 1.0)]
]


@pytest.mark.parametrize(
    "form", [theory.ridge.risk, theory.ridge.equivalent, theory.ridge.ols],
    ids=["risk", "equivalent", "ols"],
)  # fmt: skip
@pytest.mark.slow_cases
def test_params_forms_vmap_over_a_stacked_grid(form):
    """One vmap over each stacked grid (one per n_modes, a static field) equals the point-by-point
    evaluation: the same float64 operations, up to the order of batched reductions, so 1e-10
    relative (NaN where `ols` does not apply, on both sides)."""
    for m in (8, 64):
        points = [p for p in RIDGE_GRID if p.spectrum.n_modes == m]
        batched = jax.vmap(form)(_stack(points))
        one_by_one = jax.tree.map(lambda *x: jnp.stack(x), *[form(p) for p in points])
        chex.assert_trees_all_close(batched, one_by_one, rtol=RTOL["float64"], atol=0.0)


def test_params_forms_are_the_keyword_forms():
    params = ridge.Params(PowerLaw(s=2.0, a=2.5, n_modes=32), ridge=0.1, noise=0.2, n_samples=20)
    kwargs = dict(n=20, ridge=0.1, noise=0.2)
    np.testing.assert_array_equal(
        theory.ridge.risk(params), theory.ridge_risk(params.spectrum, **kwargs)
    )
    assert theory.ridge.equivalent(params) == theory.ridge_equivalent(params.spectrum, **kwargs)


def test_ols_params_form_applies_where_the_exact_risk_does():
    """Isotropic Sigma (any multiple of I) at ridge 0: ols_risk with ||w*||^2_Sigma; below the
    threshold any Sigma; NaN for ridge > 0 or an anisotropic Sigma above it."""
    isotropic = Empirical(jnp.full(30, 2.0), jnp.full(30, 1 / 30))
    over = ridge.Params(isotropic, noise=0.5, n_samples=20)
    expected = theory.ols_risk(n=20, d=30, noise=0.5, w_norm2=1.0)
    np.testing.assert_allclose(theory.ridge.ols(over), expected, rtol=RTOL["float64"])
    under = ridge.Params(PowerLaw(s=2.0, a=2.0, n_modes=8), noise=0.5, n_samples=20)
    assert float(theory.ridge.ols(under)) == pytest.approx(0.5 * 8 / 11, rel=RTOL["float64"])
    for bad in (
        ridge.Params(PowerLaw(s=2.0, a=2.0, n_modes=30), noise=0.5, n_samples=20),
        ridge.Params(isotropic, ridge=0.1, noise=0.5, n_samples=20),
    ):
        assert np.isnan(theory.ridge.ols(bad))
