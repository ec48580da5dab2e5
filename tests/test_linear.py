"""The linear-regression simulators against their exact predictors (THEORY.md §2.2-2.5)."""

import functools
import math
import warnings

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import RTOL, unchecked
from hypothesis import given
from hypothesis import strategies as st
from jax.scipy.special import zeta

from spectral_sim import PowerLaw, simulate, theory
from spectral_sim._types import Simulator
from spectral_sim.models import linear

N_SEEDS = 1024
STEPS = simulate.log_steps(400, 15)
SGD_CASES = [  # s, a, fraction of the critical lr, batch, noise, n_trainable, schedule
    (2.0, 2.0, 0.5, 1, 0.01, math.inf, None),
    (1.5, 2.5, 0.4, 4, 0.0, math.inf, None),
    (3.0, 2.0, 0.5, 2, 0.01, 8.0, None),
    (2.0, 2.0, 0.5, 1, 0.0, math.inf, optax.cosine_decay_schedule(1.0, 400)),
]
# |simulated mean - exact recursion| / SEM per record: P(|z| > 5) = 5.7e-7 for N(0, 1), so
# 4 cases x 15 records give about 3e-5 false alarms per run. The learning rates stay at or
# below half the mean-square critical rate, where the loss has a finite variance and the SEM is
# meaningful (close to chi = 1 the loss is heavy-tailed and z-scores are not normal).
Z_MAX = 5.0


def _run(model, params, keys, steps=STEPS):
    one = functools.partial(simulate.trajectory, model, steps=steps)
    return jax.jit(jax.vmap(one, in_axes=(None, 0)))(params, keys)


@pytest.mark.slow_cases
@pytest.mark.parametrize("s, a, frac, batch, noise, n_trainable, schedule", SGD_CASES)
def test_sgd_matches_exact_recursion(s, a, frac, batch, noise, n_trainable, schedule, key):
    spectrum = PowerLaw(s=s, a=a, n_modes=32)
    lr = frac * theory.sgd_critical_lr(spectrum, batch=batch, n_trainable=n_trainable)
    params = linear.Params(spectrum, lr=lr, noise=noise, n_trainable=n_trainable, batch=batch)
    model = linear if schedule is None else linear.scheduled(schedule)
    _, obs = _run(model, params, jax.random.split(key, N_SEEDS))
    expected = theory.linear.loss(params, STEPS, schedule)
    sem = obs.loss.std(axis=0, ddof=1) / jnp.sqrt(N_SEEDS)
    assert jnp.max(jnp.abs(obs.loss.mean(axis=0) - expected) / sem) < Z_MAX


def test_frozen_modes_never_move(key):
    params = linear.Params(PowerLaw(s=2.0, a=2.0, n_modes=16), lr=0.3, batch=2, n_trainable=5.0)
    state, _ = simulate.trajectory(linear, params, key, n_records=3, every=10)
    np.testing.assert_array_equal(state.v[5:], -params.spectrum.target()[5:])
    assert np.all(state.v[:5] != -params.spectrum.target()[:5])


def test_public_sgd_loss_equals_params_form():
    spectrum = PowerLaw(s=2.0, a=2.5, n_modes=20)
    params = linear.Params(spectrum, lr=0.2, noise=0.1, batch=3)
    steps = np.array([7, 0, 3, 7])  # any order, repeats and 0 allowed
    direct = theory.sgd_loss(spectrum, lr=0.2, batch=3, noise=0.1, steps=steps)
    np.testing.assert_allclose(direct, theory.linear.loss(params, steps), rtol=RTOL["float64"])
    assert direct[1] == pytest.approx(0.5 * float(jnp.sum(spectrum.target_power())))
    assert direct[0] == direct[3]


def test_gd_simulator_matches_closed_form(key):
    spectrum = PowerLaw(s=1.5, a=2.0, n_modes=64)
    for lr, n_trainable in [(0.7, math.inf), (1.9, 20.0)]:
        params = linear.Params(spectrum, lr=lr, n_trainable=n_trainable)
        _, obs = simulate.trajectory(linear.gd, params, key, steps=STEPS)
        expected = theory.gd_loss(spectrum, lr=lr, steps=STEPS, n_trainable=n_trainable)
        np.testing.assert_allclose(obs.loss, expected, rtol=RTOL["float64"])


def test_gd_above_two_over_lambda_max_diverges(key):
    spectrum = PowerLaw(s=2.0, a=2.0, n_modes=16)
    params = linear.Params(spectrum, lr=2.1)
    with pytest.warns(RuntimeWarning, match=r"GD: lr = 2.1 is past the stability limit") as caught:
        _, obs = simulate.trajectory(linear.gd, params, key, steps=[10, 100, 1000])
    assert len(caught) == 1
    assert obs.loss[2] > obs.loss[1] > obs.loss[0]
    diverged, step = simulate.divergence(obs.loss, jnp.array([10, 100, 1000]), limit=1e3)
    # Mode 1 grows by |1 - 2.1|^2 = 1.21 per step: 1/2 1.21^10 = 3.4 < 1e3 < 1/2 1.21^100.
    assert bool(diverged) and int(step) == 100


def test_gf_simulator_matches_closed_form():
    spectrum = PowerLaw(s=2.0, a=3.0, n_modes=100)
    t = jnp.array([0.0, 0.5, 10.0, 1e4])
    _, obs = linear.gf(linear.Params(spectrum), t)
    np.testing.assert_allclose(obs.loss, theory.gf_loss(spectrum, t), rtol=RTOL["float64"])


def test_gd_converges_to_gf_at_first_order():
    """GD at step n is GF at time lr n up to O(lr): fit the convergence order (DESIGN §7c)."""
    spectrum = PowerLaw(s=2.0, a=2.0, n_modes=256)
    time = 50.0
    lrs = np.array([0.2, 0.1, 0.05, 0.025])
    errors = [
        abs(
            theory.gd_loss(spectrum, lr=lr, steps=[round(time / lr)])[0]
            - theory.gf_loss(spectrum, jnp.array([time]))[0]
        )
        for lr in lrs
    ]
    slope = np.polyfit(np.log(lrs), np.log(errors), 1)[0]
    # Order 1 with an O(lr) correction to the coefficient: over a factor 8 in lr the fitted
    # slope stays within 0.05 of 1 (measured 1.0 to 3 decimals at these lrs).
    assert slope == pytest.approx(1.0, abs=0.05)


def test_optax_sgd_reproduces_plain_sgd(key):
    params = linear.Params(PowerLaw(s=2.0, a=2.0, n_modes=32), lr=0.3, noise=0.01, batch=2)
    _, plain = simulate.trajectory(linear, params, key, n_records=5, every=7)
    _, via_optax = simulate.trajectory(linear.with_optimizer(), params, key, n_records=5, every=7)
    np.testing.assert_allclose(via_optax.loss, plain.loss, rtol=RTOL["float64"])


@pytest.mark.slow_cases
@pytest.mark.parametrize(
    "name, model",
    [
        ("sgd", linear),
        ("gd", linear.gd),
        ("scheduled", linear.scheduled(optax.linear_schedule(1.0, 0.1, 100))),
        ("momentum", linear.with_optimizer(lambda p: optax.sgd(p.lr, momentum=0.9))),
        ("adam", linear.with_optimizer(lambda p: optax.adam(p.lr))),
    ],
)
def test_float32_models_keep_dtype_and_learn(name, model, key):
    spectrum = PowerLaw(s=jnp.float32(2.0), a=jnp.float32(2.0), n_modes=64)
    lr = 0.01 if name in ("adam", "momentum") else 0.3
    params = linear.Params(spectrum, lr=lr, noise=0.01, batch=4)
    state, obs = _run(model, params, jax.random.split(key, 8), steps=[1, 300])
    assert obs.loss.dtype == jnp.float32 and state.v.dtype == jnp.float32
    chex.assert_tree_all_finite(obs)
    # Every model must reduce the loss from its start, 1/2 sum v_k^2 = 0.82 at 64 modes.
    assert jnp.all(obs.loss[:, 1] < 0.5 * jnp.sum(spectrum.target_power()))


# --- stability ---------------------------------------------------------------------------


def test_critical_lr_solves_chi_equals_one():
    spectrum = PowerLaw(s=1.5, a=2.0, n_modes=200)
    for batch in (1, 8):
        lr = theory.sgd_critical_lr(spectrum, batch=batch)
        chi = theory.sgd_stability(spectrum, lr=lr, batch=batch)
        assert chi == pytest.approx(1.0, rel=1e-10)
    beyond = 2.0 / (1 + 1 / 8)  # 2 - lr lambda_1 (1 + 1/B) <= 0: chi is infinite
    assert theory.sgd_stability(spectrum, lr=beyond, batch=8) == jnp.inf


def test_recursion_converges_to_loss_limit():
    spectrum = PowerLaw(s=2.0, a=2.0, n_modes=16)
    for n_trainable in (math.inf, 6.0):
        kwargs = dict(lr=0.3, batch=2, noise=0.1, n_trainable=n_trainable)
        limit = theory.sgd_loss_limit(spectrum, **kwargs)
        # The slowest trained mode contracts by about (1 - lr lambda)^2 >= 0.997 per step, so
        # 3e4 steps leave a relative transient below e^-70: an identity at float64 precision.
        late = theory.sgd_loss(spectrum, steps=[30_000], **kwargs)[0]
        assert late == pytest.approx(float(limit), rel=RTOL["float64"])


def test_recursion_grows_beyond_critical_lr():
    spectrum = PowerLaw(s=2.0, a=2.0, n_modes=32)
    lr_c = float(theory.sgd_critical_lr(spectrum, batch=1))
    assert theory.sgd_loss_limit(spectrum, lr=1.01 * lr_c, batch=1, noise=0.1) == jnp.inf
    below = theory.sgd_loss(spectrum, lr=0.99 * lr_c, batch=1, noise=0.1, steps=[5000, 50_000])
    with pytest.warns(RuntimeWarning, match=r"SGD: lr = .* past the stability limit \(chi"):
        above = theory.sgd_loss(spectrum, lr=1.2 * lr_c, batch=1, noise=0.1, steps=[100, 1000])
    limit = theory.sgd_loss_limit(spectrum, lr=0.99 * lr_c, batch=1, noise=0.1)
    assert below[0] < below[1] <= limit and above[1] > 1e10 * above[0]


@pytest.mark.parametrize(
    "call, field",
    [
        (lambda spec: theory.gd_loss(spec, lr=0.5, steps=-3), "steps"),
        (lambda spec: theory.gd_loss(spec, lr=0.5, steps=2.5), "steps"),
        (lambda spec: theory.gd_loss(spec, lr=0.5, steps=[1, float("nan")]), "steps"),
        (lambda spec: theory.gf_loss(spec, t=-1.0), "t"),
        (lambda spec: theory.gf_loss(spec, t=[0.0, float("inf")]), "t"),
    ],
)
def test_predictors_refuse_negative_or_fractional_times(call, field):
    with unchecked(), pytest.raises(ValueError, match=f"^{field} must be"):
        call(PowerLaw(s=2.0, a=2.0, n_modes=8))


def test_gd_past_its_stability_edge_warns_naming_lr():
    spectrum = PowerLaw(s=2.0, a=2.0, n_modes=8)  # lambda_max = 1: the edge is lr = 2
    with pytest.warns(RuntimeWarning, match=r"GD: lr = 1e\+09 is past the stability limit"):
        assert theory.gd_loss(spectrum, lr=1e9, steps=[10])[0] > 1e100
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # below the edge: silent, and silent under jit
        theory.gd_loss(spectrum, lr=1.9, steps=[10])
        jax.jit(lambda lr: theory.gd_loss(spectrum, lr=lr, steps=[10]))(5.0)


def test_divergence_is_flagged_per_grid_point(key):
    spectrum = PowerLaw(s=2.0, a=2.0, n_modes=32)
    lr_c = theory.sgd_critical_lr(spectrum, batch=1)
    params = jax.vmap(lambda lr: linear.Params(spectrum, lr=lr))(jnp.array([0.5, 3.0]) * lr_c)
    steps = jnp.array([10, 100, 1000])
    run = functools.partial(simulate.trajectory, linear, key=key, steps=[10, 100, 1000])
    _, obs = jax.jit(jax.vmap(run))(params)
    diverged, step = simulate.divergence(obs.loss, steps, limit=1e3 * obs.loss[:, 0])
    np.testing.assert_array_equal(diverged, [False, True])
    assert int(step[1]) in (100, 1000)


# --- gradient flow: tail, asymptote, exponent, frontier ---------------------------------


def test_truncation_tail_at_zero_is_hurwitz_zeta():
    spectrum = PowerLaw(s=2.0, a=1.7, n_modes=300)
    expected = 0.5 * zeta(1.7, 301.0)
    # Euler-Maclaurin to f''' leaves O(m^-5) relative error: 3e-13 at m = 301.
    np.testing.assert_allclose(theory.truncation_tail(spectrum, jnp.zeros(1)), expected, rtol=1e-10)


@pytest.mark.parametrize("s, a", [(2.0, 2.0), (1.5, 1.3), (3.0, 4.0)])
def test_infinite_spectrum_loss_matches_brute_force(s, a):
    t = jnp.array([0.0, 1.0, 30.0, 1e3])
    small = PowerLaw(s=s, a=a, n_modes=200)
    big = PowerLaw(s=s, a=a, n_modes=2**20)
    # Brute force: 2^20 explicit modes plus the rest to first order in its decay,
    # 1/2 sum_{k>N} k^-a (1 - 2 t k^-s); the second order is below 1/2 (2 t N^-s)^2 ~ 1e-11
    # relative to the rest.
    n = 2.0**20 + 1
    rest = 0.5 * zeta(a, n) - t * zeta(a + s, n)
    brute = theory.gf_loss(big, t) + rest
    np.testing.assert_allclose(theory.gf_loss(small, t, tail=True), brute, rtol=1e-9)


def test_asymptote_accuracy_stated_in_theory():
    """THEORY.md §2.2: for s = a = 2 the Gamma asymptote is off by 3% at t = 1, 3e-4 at
    t = 10 and below 2e-5 for t >= 100 once the finite-M tail is added."""
    spectrum = PowerLaw(s=2.0, a=2.0, n_modes=4096)
    t = jnp.array([1.0, 10.0, 100.0, 1e4])
    relative = theory.gf_loss_asymptote(spectrum, t) / theory.gf_loss(spectrum, t, tail=True) - 1
    assert abs(relative[0]) == pytest.approx(0.03, abs=0.005)
    assert abs(relative[1]) == pytest.approx(3e-4, abs=1e-4)
    assert jnp.all(jnp.abs(relative[2:]) < 2e-5)


@pytest.mark.parametrize("s, a", [(1.5, 2.0), (2.0, 2.0), (3.0, 1.5)])
def test_gf_loss_exponent(s, a):
    spectrum = PowerLaw(s=s, a=a, n_modes=2048)
    t = jnp.geomspace(1e3, 1e7, 30)
    slope = np.polyfit(np.log(t), np.log(theory.gf_loss(spectrum, t, tail=True)), 1)[0]
    # Asymptote relative error delta <= 1e-4 on the window moves a slope fitted over
    # ln(1e4) = 9.2 by at most 2 delta / 9.2 = 2e-5.
    assert slope == pytest.approx(-(a - 1) / s, abs=2e-5)


def test_learning_frontier_is_floor_of_t_to_one_over_s():
    spectrum = PowerLaw(s=2.0, a=2.0, n_modes=10_000)
    t = jnp.array([10.0, 1000.5, 3e6])
    lam_star, k_star = theory.learning_frontier(spectrum, t)
    np.testing.assert_allclose(lam_star, 1 / t)
    np.testing.assert_array_equal(k_star, np.floor(np.sqrt(np.asarray(t))))


@pytest.mark.parametrize("s, a", [(2.0, 2.0), (3.0, 3.0), (1.5, 2.5)])
def test_tail_dominance_ratio_limit(s, a):
    spectrum = PowerLaw(s=s, a=a, n_modes=2**16)
    k_star = 400.0
    ratio = theory.tail_dominance_ratio(spectrum, jnp.array([k_star**s + 0.5]))[0]
    # The hard tail sum starts at floor(k*) + 1: its continuum error is (a - 1)/k* to first
    # order plus the Euler-Maclaurin endpoint (a - 1)/(2 k*); the missing modes beyond M
    # change both sums by less than (k*/M)^(a-1) relative.
    tolerance = 1.5 * (a - 1) / k_star + (k_star / spectrum.n_modes) ** (a - 1)
    assert ratio == pytest.approx(float(theory.tail_dominance_limit(spectrum)), rel=tolerance)
    assert theory.tail_dominance_limit(PowerLaw(s=3.0, a=3.0, n_modes=8)) == pytest.approx(
        0.5687, abs=1e-4
    )


# --- properties and bad input ------------------------------------------------------------


@given(s=st.floats(1.1, 3.0), a=st.floats(1.1, 4.0), frac=st.floats(0.05, 0.9))
def test_sgd_loss_is_at_least_gd_loss(s, a, frac):
    """Without label noise the SGD recursion adds non-negative terms to GD's, mode by mode."""
    sgd, gd = _sgd_and_gd(s, a, frac)
    assert jnp.all(sgd >= gd * (1 - 1e-12))


@jax.jit
def _sgd_and_gd(s, a, frac):  # one compile for every hypothesis example
    spectrum = PowerLaw(s=s, a=a, n_modes=24)
    lr = frac * theory.sgd_critical_lr(spectrum, batch=2)
    steps = np.array([1, 10, 100])
    sgd = theory.sgd_loss(spectrum, lr=lr, batch=2, steps=steps)
    return sgd, theory.gd_loss(spectrum, lr=lr, steps=steps)


@given(lr=st.floats(0.01, 1.0))
def test_gd_loss_decreases_below_one_over_lambda_max(lr):
    losses = theory.gd_loss(PowerLaw(s=2.0, a=2.0, n_modes=32), lr=lr, steps=jnp.arange(30))
    assert jnp.all(jnp.diff(losses) <= 0)


@pytest.mark.parametrize(
    "call, field",
    [
        (lambda sp: theory.sgd_loss(sp, lr=0.0, batch=1, steps=[1]), "lr"),
        (lambda sp: theory.sgd_loss(sp, lr=0.1, batch=0, steps=[1]), "batch"),
        (lambda sp: theory.sgd_loss(sp, lr=0.1, batch=1, noise=-1.0, steps=[1]), "noise"),
        (lambda sp: theory.sgd_loss(sp, lr=0.1, batch=1, steps=[-1]), "steps"),
        (lambda sp: theory.gd_loss(sp, lr=-0.1, steps=[1]), "lr"),
        (lambda sp: theory.sgd_stability(sp, lr=0.1, batch=1, n_trainable=0.0), "n_trainable"),
        (lambda sp: linear.Params(sp, lr=0.1, batch=2.0), "batch"),
    ],
)
def test_bad_input_raises_naming_the_field(call, field):
    with unchecked(), pytest.raises(ValueError, match=field):
        call(PowerLaw(s=2.0, a=2.0, n_modes=8))


def test_infinite_spectrum_predictors_need_a_above_one():
    spectrum = PowerLaw(s=2.0, a=1.0, n_modes=8)
    for predictor in (theory.gf_loss_asymptote, theory.truncation_tail):
        with pytest.raises(ValueError, match=r"PowerLaw.a must be finite and > 1"):
            predictor(spectrum, jnp.ones(1))


# --- Params forms and simulator factories --------------------------------------------------

# A grid of Params that differ in every traced field (batch is static: one per grid).
GRID = [
    linear.Params(PowerLaw(s=s, a=a, n_modes=24), lr=lr, noise=noise, n_trainable=n, batch=2)
    for s, a, lr, noise, n in [
        (1.5, 2.0, 0.1, 0.0, math.inf),
        (2.0, 2.5, 0.3, 0.01, math.inf),
        (3.0, 1.5, 0.2, 0.1, 8.0),
        (2.5, 3.0, 0.05, 0.02, 3.0),
    ]
]


def _stack(points):
    """The Params as one pytree whose leaves carry a leading grid axis."""
    return jax.tree.map(lambda *leaves: jnp.stack(leaves), *points)


@pytest.mark.slow_cases
@pytest.mark.parametrize(
    "form",
    [
        functools.partial(theory.linear.gf, t=jnp.array([0.0, 1.0, 30.0])),
        functools.partial(theory.linear.gd, steps=jnp.array([0, 5, 50])),
        functools.partial(theory.linear.sgd, steps=np.array([0, 5, 50])),
        theory.linear.stability,
        theory.linear.sgd_limit,
        theory.linear.critical_lr,
    ],
    ids=["gf", "gd", "sgd", "stability", "sgd_limit", "critical_lr"],
)
def test_params_forms_vmap_over_a_stacked_grid(form):
    """One vmap over the stacked grid equals the point-by-point evaluation. Both run the same
    float64 operations, but batching may reorder a reduction (a sum over modes), so they agree
    to rounding: 1e-10 relative, not bit for bit."""
    batched = jax.vmap(form)(_stack(GRID))
    one_by_one = jnp.stack([form(p) for p in GRID])
    np.testing.assert_allclose(batched, one_by_one, rtol=RTOL["float64"])


def test_keyword_forms_are_the_params_forms():
    spectrum = PowerLaw(s=2.0, a=2.5, n_modes=20)
    params = linear.Params(spectrum, lr=0.2, noise=0.1, batch=3, n_trainable=12.0)
    kwargs = dict(lr=0.2, batch=3, n_trainable=12.0)
    t, steps = jnp.array([0.5, 20.0]), np.array([3, 30])
    pairs = [
        (theory.gf_loss(spectrum, t), theory.linear.gf(linear.Params(spectrum), t)),
        (theory.gd_loss(spectrum, lr=0.2, steps=steps, n_trainable=12.0),
         theory.linear.gd(params, steps)),
        (theory.sgd_loss(spectrum, noise=0.1, steps=steps, **kwargs),
         theory.linear.sgd(params, steps)),
        (theory.sgd_stability(spectrum, **kwargs), theory.linear.stability(params)),
        (theory.sgd_loss_limit(spectrum, noise=0.1, **kwargs), theory.linear.sgd_limit(params)),
        (theory.sgd_critical_lr(spectrum, batch=3, n_trainable=12.0),
         theory.linear.critical_lr(params)),
    ]  # fmt: skip
    for keyword, params_form in pairs:
        np.testing.assert_array_equal(keyword, params_form)
    assert theory.linear.loss is theory.linear.sgd


def test_gf_params_form_is_the_gf_simulators_loss():
    """With frozen modes too: the same closed form, evaluated two ways."""
    params = linear.Params(PowerLaw(s=2.0, a=3.0, n_modes=50), n_trainable=10.0)
    t = jnp.array([0.0, 0.5, 10.0, 1e4])
    np.testing.assert_allclose(
        linear.gf(params, t)[1].loss, theory.linear.gf(params, t), rtol=RTOL["float64"]
    )


@pytest.mark.slow
def test_factories_build_the_simulators(key):
    """sgd(), optimizer(), gd() return plain Simulators; the older spellings are the same."""
    params = linear.Params(PowerLaw(s=2.0, a=2.0, n_modes=16), lr=0.3, noise=0.01, batch=2)
    schedule = optax.linear_schedule(1.0, 0.1, 20)
    assert linear.sgd() == Simulator(linear.init, linear.step, linear.draw, linear.step_with)
    assert type(linear.gd()) is Simulator and linear.gd() == linear.gd
    assert linear.scheduled is linear.sgd and linear.with_optimizer is linear.optimizer
    for old, new in [
        (linear, linear.sgd()),
        (linear.gd, linear.gd()),
        (linear.scheduled(schedule), linear.sgd(schedule)),
        (linear.with_optimizer(), linear.optimizer()),
    ]:
        expected = simulate.trajectory(old, params, key, steps=[1, 10, 20])[1].loss
        got = simulate.trajectory(new, params, key, steps=[1, 10, 20])[1].loss
        np.testing.assert_array_equal(got, expected)
