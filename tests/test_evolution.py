"""Generalised spectral evolution (THEORY.md §2.10): the preconditioned-GD and diagonal-network
simulators against their closed forms, and the evolution predictors' exponents and constants."""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import RTOL
from jax.scipy.special import zeta

from spectral_sim import PowerLaw, fit, simulate, theory
from spectral_sim.models import evolution

STEPS = simulate.log_steps(2000, 12)
# Fit windows for exponents: k*(t) >= K_LO keeps the discreteness error of the smooth sum below
# 1e-3 (THEORY.md §2.2), and the modes beyond M carry about TAIL_SHARE of the loss (up to a
# factor 1/limit < 2 at the window's end); a multiplicative deviation within [-eps, eps] of a
# pure power law moves a least-squares slope over log-spaced points on ln(t_hi/t_lo) by at most
# 3 eps / ln(t_hi / t_lo).
K_LO = 10.0
TAIL_SHARE = 0.01


def _run(model, params, steps=STEPS):
    run = functools.partial(simulate.trajectory, model, key=None, steps=steps)
    return jax.jit(run)(params)


@pytest.mark.parametrize("rho", [0.5, 1.0, 1.5])
def test_preconditioned_gd_matches_its_closed_form(rho):
    params = evolution.Params(PowerLaw(s=2.0, a=2.5, n_modes=64), rho=rho, lr=0.7)
    _, obs = _run(evolution.preconditioned, params)
    expected = theory.evolution.preconditioned_gd_loss(
        params.spectrum, rho=rho, lr=0.7, steps=STEPS
    )
    # The state is w, so w - w* carries an absolute rounding error eps |w*_k|: losses that
    # have decayed to ~1e-24 are resolved to eps L(0) in absolute terms.
    atol = 1e-15 * float(jnp.sum(params.spectrum.target_power()))
    np.testing.assert_allclose(obs.loss, expected, rtol=RTOL["float64"], atol=atol)


@pytest.mark.slow_cases
@pytest.mark.parametrize("rho", [0.5, 1.5])
def test_flow_is_the_evolution_loss_and_gd_converges_to_it_at_first_order(rho):
    spectrum = PowerLaw(s=2.0, a=2.0, n_modes=64)
    t = jnp.asarray([1.0, 10.0, 100.0])
    _, obs = evolution.flow(evolution.Params(spectrum, rho=rho), t)
    np.testing.assert_allclose(
        obs.loss, theory.evolution_loss(spectrum, t=t, rho=rho), rtol=RTOL["float64"]
    )
    # GD at lr approaches the flow at t = lr n with error O(lr): halving lr halves it, so the
    # fitted order log2(error(lr) / error(lr/2)) is 1 (0.1 covers the O(lr^2) remainder).
    errors = []
    for lr in (0.1, 0.05, 0.025):
        steps = np.asarray(t / lr).round().astype(int)
        _, gd = _run(evolution.preconditioned, evolution.Params(spectrum, rho=rho, lr=lr), steps)
        errors.append(float(jnp.max(jnp.abs(gd.loss - obs.loss))))
    order = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    np.testing.assert_allclose(order, 1.0, atol=0.1)


def test_rho_one_is_gradient_flow():
    spectrum = PowerLaw(s=1.5, a=2.5, n_modes=128)
    t = jnp.geomspace(0.1, 1e4, 9)
    np.testing.assert_allclose(
        theory.evolution_loss(spectrum, t=t, rho=1.0), theory.gf_loss(spectrum, t), rtol=1e-12
    )


@pytest.mark.parametrize("s, a, rho, q", [(2.0, 2.0, 0.75, 1.0), (1.5, 2.5, 1.5, 1.0),
                                          (2.0, 3.0, 1.0, 0.5), (2.0, 2.0, 0.5, 2.0)])  # fmt: skip
def test_evolution_exponent_and_tail_dominance(s, a, rho, q):
    """Fitted slope of the exact evolution loss against (a - 1)/(s rho), whatever q; the
    tail-dominance ratio at the window's end against Gamma(1 + c) 2^-c, c = (a-1)/(s rho q),
    within the hard tail's discreteness error 1.5 (a - 1)/k* plus TAIL_SHARE (as in
    experiments/learning_curves.py)."""
    M = 2**18
    spectrum = PowerLaw(s=s, a=a, n_modes=M)
    p = rho * q
    k_hi = (TAIL_SHARE ** (1 / (a - 1))) * M  # (k*/M)^(a-1) ~ the tail share beyond M
    t = np.geomspace(K_LO ** (s * p), k_hi ** (s * p), 30) ** (1 / q)
    loss = np.asarray(theory.evolution_loss(spectrum, t=t, rho=rho, q=q))
    slope = fit.power_law(t, loss)
    tolerance = 3 * (2 * TAIL_SHARE + 1e-3) / np.log(t[-1] / t[0])
    expected = float(theory.evolution_exponent(spectrum, rho=rho))
    assert abs(float(slope.exponent) - expected) < tolerance
    _, k_star = theory.evolution_frontier(spectrum, t=t[-1], rho=rho, q=q)
    k_star = float(k_star)
    t_mid = (k_star + 0.5) ** (s * p / q)  # mid-way between jumps of the hard tail
    ratio = float(
        theory.evolution_loss(spectrum, t=t_mid, rho=rho, q=q)
        / theory.evolution.evolution_tail_loss(spectrum, t=t_mid, rho=rho, q=q)
    )
    limit = float(theory.evolution_tail_limit(spectrum, rho=rho, q=q))
    assert abs(ratio - limit) < limit * (1.5 * (a - 1) / k_star + TAIL_SHARE)


def test_evolution_asymptote_matches_the_sum():
    """The Gamma-function asymptote against the exact sum deep in the window: relative error
    below 1e-3 once k* >= 10 (Poisson summation; THEORY.md §2.2) once the modes beyond M, still
    unlearned at these times (exp(-2 M^(-s rho) t) > 0.998), are added as 1/2 zeta(a, M + 1)."""
    spectrum = PowerLaw(s=2.0, a=2.0, n_modes=2**18)
    t = np.array([1e3, 1e5])  # k* = t^(1/(s rho)) = 100, 2154 at rho = 0.75
    tail = 0.5 * float(zeta(2.0, 2**18 + 1))
    exact = theory.evolution_loss(spectrum, t=t, rho=0.75) + tail
    asymptote = theory.evolution.evolution_asymptote(spectrum, t=t, rho=0.75)
    np.testing.assert_allclose(exact, asymptote, rtol=1e-3)


def test_frontier_counts_modes_above_lambda_star():
    spectrum = PowerLaw(s=2.0, a=2.0, n_modes=1000)
    lam_star, k_star = theory.evolution_frontier(spectrum, t=jnp.array([100.0, 1e4]), rho=0.5)
    np.testing.assert_allclose(lam_star, [1e-4, 1e-8], rtol=1e-12)
    np.testing.assert_array_equal(k_star, [100, 1000])  # lambda_k >= lambda* iff k <= t^(1/(s rho))


@pytest.mark.parametrize("a", [1.5, 2.0, 3.0])
def test_diagonal_network_converges_to_its_logistic_flow(a):
    """GD on (u, v) approaches the exact logistic flow at t = lr n with O(lr) error."""
    spectrum = PowerLaw(s=2.0, a=a, n_modes=32)
    t = jnp.asarray([5.0, 50.0, 500.0])
    exact = theory.diagonal_loss(spectrum, t=t, init=0.05)
    errors = []
    for lr in (0.04, 0.02, 0.01):
        steps = np.asarray(t / lr).round().astype(int)
        params = evolution.Params(spectrum, init=0.05, lr=lr)
        _, obs = _run(evolution.diagonal, params, steps)
        errors.append(float(jnp.max(jnp.abs(obs.loss - exact))))
    order = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    np.testing.assert_allclose(order, 1.0, atol=0.1)


def test_diagonal_frontier_matches_the_simulated_one():
    """k* from the half-learning times t_k against the simulated count of modes past half their
    target; GD at lr = 0.01 shifts t_k by O(lr t_k) relative, i.e. by at most one mode here."""
    spectrum = PowerLaw(s=2.0, a=2.0, n_modes=64)
    steps = simulate.log_steps(200_000, 8, first=1000)
    params = evolution.Params(spectrum, init=1e-2, lr=0.01)
    _, obs = _run(evolution.diagonal, params, steps)
    predicted = theory.evolution.diagonal_frontier(spectrum, t=0.01 * steps, init=1e-2)
    assert np.max(np.abs(np.asarray(obs.k_star) - np.asarray(predicted))) <= 1


def test_float32_preserved_and_finite():
    spectrum = PowerLaw(s=jnp.float32(2.0), a=jnp.float32(2.0), n_modes=32)
    params = evolution.Params(spectrum, rho=jnp.float32(0.5), init=jnp.float32(0.01),
                              lr=jnp.float32(0.5))  # fmt: skip
    for model in (evolution.preconditioned, evolution.diagonal):
        state, obs = _run(model, params)
        chex.assert_type(jax.tree.leaves((state, obs)), jnp.float32)
        chex.assert_tree_all_finite((state, obs))


@pytest.mark.parametrize(
    "call, field",
    [
        (lambda sp: evolution.Params(sp, rho=0.0), "rho"),
        (lambda sp: evolution.Params(sp, init=-1.0), "init"),
        (lambda sp: theory.evolution_loss(sp, t=1.0, rho=-0.5), "rho"),
        (lambda sp: theory.evolution_loss(sp, t=1.0, rho=1.0, q=0.0), "q"),
        (lambda sp: theory.evolution_exponent(sp, rho=0.0), "rho"),
        (lambda sp: theory.diagonal_loss(sp, t=1.0, init=0.0), "init"),
    ],
)
def test_bad_input_names_the_field(call, field):
    with pytest.raises(ValueError, match=f"^{field} must"):
        call(PowerLaw(s=2.0, a=2.0, n_modes=16))


def test_sweeping_rho_does_not_recompile():
    spectrum = PowerLaw(s=2.0, a=2.0, n_modes=16)

    @jax.jit
    @chex.assert_max_traces(n=1)
    def loss(params):
        return simulate.trajectory(evolution.preconditioned, params, None, steps=STEPS)[1].loss

    for rho in (0.5, 0.75, 1.25):
        loss(evolution.Params(spectrum, rho=jnp.asarray(rho), lr=jnp.asarray(0.5)))


@pytest.mark.parametrize("rho", [0.5, 1.5])
def test_interpolated_frontier_tracks_the_continuum(rho):
    """On the flow, mode k is half learned when k^(-s rho) t = ln 2, so the continuous frontier
    is (t / ln 2)^(1/(s rho)). Linear interpolation in x = ln k of g = logit f misplaces the
    crossing by about h^2/8 |g''| / |g'| (h = ln(1 + 1/k) <= 1/k); with y = t e^(-s rho x),
    g = ln(e^y - 1) has |g''/g'| = s rho |1 - y e^y / (e^y - 1)| ~ 0.4 s rho at y = ln 2, so
    s rho / (8 k^2) bounds it; 2x that is allowed."""
    s = 2.0
    spectrum = PowerLaw(s=s, a=2.0, n_modes=4096)
    t = jnp.geomspace(10.0 ** (s * rho), 1000.0 ** (s * rho), 7) * np.log(2)
    _, obs = evolution.flow(evolution.Params(spectrum, rho=rho), t)
    continuum = np.asarray((t / np.log(2)) ** (1 / (s * rho)))
    relative = np.abs(np.asarray(obs.k_star) / continuum - 1)
    assert np.all(relative <= 2 * s * rho / (8 * continuum**2)), relative


@pytest.mark.parametrize("a", [1.5, 3.0])
def test_interpolated_frontier_tracks_the_logistic_crossing(a):
    """The diagonal network's logistic flow: mode k is half learned when
    2 k^(-(s+a)/2) t = ln(w*_k / init^2 - 1), solved for continuous k by bisection. Its logit
    2 t e^(-beta x) - L(x), beta = (s + a)/2, has |g''/g'| ~ beta, so the interpolation error is
    about beta / (8 k^2); 2x that is allowed. (Interpolating f itself misses by more: the
    transition spans about one mode at k* ~ 10.)"""
    s, init = 2.0, 1e-3
    k = np.arange(1, 4097, dtype=float)
    w_star, rate = k ** ((s - a) / 2), 2 * k ** (-(s + a) / 2)
    for t in np.geomspace(2e3, 2e5, 9):
        fraction = 1 / (1 + (w_star / init**2 - 1) * np.exp(-rate * t))
        lo, hi = 1.0, 4096.0
        for _ in range(100):  # the continuous crossing: rate(m) t = ln(w*(m) / init^2 - 1)
            m = (lo + hi) / 2
            above = 2 * m ** (-(s + a) / 2) * t >= np.log(m ** ((s - a) / 2) / init**2 - 1)
            lo, hi = (m, hi) if above else (lo, m)
        measured = float(evolution.frontier(jnp.asarray(fraction)))
        assert abs(np.log(measured / lo)) <= 2 * (s + a) / 2 / (8 * lo**2), (t, measured, lo)


# --- Params forms ----------------------------------------------------------------------------

EVOLUTION_GRID = [
    evolution.Params(PowerLaw(s=s, a=a, n_modes=32), rho=rho, init=init, lr=lr)
    for s, a, rho, init, lr in [(1.5, 2.0, 0.5, 1e-3, 0.5), (2.0, 2.5, 1.0, 0.05, 0.2),
                                (3.0, 3.0, 1.5, 0.01, 0.7)]
]  # fmt: skip


@pytest.mark.parametrize(
    "form",
    [functools.partial(theory.evolution.flow, t=jnp.array([0.0, 1.0, 100.0])),
     functools.partial(theory.evolution.preconditioned, steps=jnp.array([0.0, 10.0, 1000.0])),
     functools.partial(theory.evolution.diagonal, t=jnp.array([0.0, 5.0, 500.0]))],
    ids=["flow", "preconditioned", "diagonal"],
)  # fmt: skip
def test_params_forms_vmap_over_a_stacked_grid(form):
    """One vmap over the stacked grid equals the point-by-point evaluation: the same float64
    operations, up to the order of batched reductions, so 1e-10 relative."""
    stacked = jax.tree.map(lambda *leaves: jnp.stack(leaves), *EVOLUTION_GRID)
    batched = jax.vmap(form)(stacked)
    one_by_one = jnp.stack([form(p) for p in EVOLUTION_GRID])
    np.testing.assert_allclose(batched, one_by_one, rtol=RTOL["float64"])


def test_params_forms_are_the_simulators_and_the_keyword_forms():
    """flow(params, t) is the loss of models.evolution.flow; the keyword forms build the Params,
    evolution_loss's (q, scale) as the flow of elasticity rho q at time scale t^q (which
    reorders one product: 1e-10 relative)."""
    params = evolution.Params(PowerLaw(s=2.0, a=2.5, n_modes=64), rho=0.75, init=0.02, lr=0.3)
    spectrum, t, steps = params.spectrum, jnp.array([0.5, 5.0, 50.0]), jnp.array([1.0, 30.0])
    _, obs = evolution.flow(params, t)
    np.testing.assert_allclose(theory.evolution.flow(params, t), obs.loss, rtol=RTOL["float64"])
    np.testing.assert_allclose(
        theory.evolution_loss(spectrum, t=t, rho=0.5, q=1.5, scale=2.0),
        theory.evolution.flow(evolution.Params(spectrum, rho=0.75), 2.0 * t**1.5),
        rtol=RTOL["float64"],
    )
    np.testing.assert_array_equal(
        theory.evolution.preconditioned_gd_loss(spectrum, rho=0.75, lr=0.3, steps=steps),
        theory.evolution.preconditioned(params, steps),
    )
    np.testing.assert_array_equal(
        theory.diagonal_loss(spectrum, t=t, init=0.02), theory.evolution.diagonal(params, t)
    )
