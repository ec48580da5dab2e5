"""The compute-optimal frontier and the exponent maps (THEORY.md §1 rows 1-5, §2.5-2.8) against
THEORY's table, an independent quadrature, and a brute-force minimisation of the discrete loss."""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import RTOL, unchecked
from hypothesis import given, settings
from hypothesis import strategies as st
from jax.scipy.special import zeta
from scipy import integrate

from spectral_sim import PowerLaw, theory
from spectral_sim.theory import scaling

# THEORY.md §2.6's table: (s, a) -> tau*, K_L, K_N printed to 4 significant digits, and the
# loss exponent fitted to the brute-force frontier on C in [1e9, 1e12] (5 significant digits).
TABLE = {
    (1.5, 1.5): ((0.3168, 0.9322, 1.584), 0.19999),
    (2.0, 2.0): ((0.2915, 0.4394, 1.508), 0.33332),
    (3.0, 3.0): ((0.2539, 0.2006, 1.409), 0.49988),
    (3.0, 1.5): ((0.1703, 0.9255, 1.557), 0.12497),
    (3.0, 1.05): ((0.1464, 9.915, 1.617), 0.012497),
}


def _last_digit(printed: float, digits: int) -> float:
    """One unit in the last printed digit of a value shown with `digits` significant digits."""
    return 10.0 ** (np.floor(np.log10(abs(printed))) - digits + 1)


@pytest.mark.parametrize("s, a", list(TABLE))
def test_soft_optimum_reproduces_theory_table(s, a):
    optimum = theory.compute_optimal(s=s, a=a)
    for name, printed in zip(("tau_star", "k_loss", "k_n"), TABLE[s, a][0], strict=True):
        # The table rounds to 4 significant digits: an exact value lies within half a unit in
        # the last printed digit of it.
        assert float(getattr(optimum, name)) == pytest.approx(
            printed, abs=0.5 * _last_digit(printed, 4)
        ), name
    assert float(optimum.loss_exponent) == pytest.approx((a - 1) / (s + 1), rel=RTOL["float64"])
    assert float(optimum.n_exponent) == pytest.approx(1 / (s + 1), rel=RTOL["float64"])
    assert float(optimum.d_exponent) == pytest.approx(s / (s + 1), rel=RTOL["float64"])


@pytest.mark.parametrize("s, a", [(1.5, 1.5), (3.0, 3.0), (3.0, 1.05), (1.2, 4.0), (0.5, 1.3)])
def test_phi_matches_quadrature(s, a):
    """Phi in closed form (incomplete gamma) against adaptive quadrature of its definition."""
    tau = np.array([1e-3, 0.05, 0.3, 1.0, 5.0])

    def integrand(u, tau):
        return 0.5 * u**-a * np.exp(-2 * tau * u**-s)

    quadrature = []
    for value in tau:
        integral, error = integrate.quad(integrand, 0, 1, args=(value,), epsabs=0, epsrel=1e-13)
        assert error < 1e-12 * integral
        quadrature.append(integral + 1 / (2 * (a - 1)))
    # Both sides are accurate to ~1e-13 relative (quad's estimate above; the closed form to
    # 2e-14, scaling._train_over_tail), so they must agree at the identity tolerance.
    np.testing.assert_allclose(scaling.phi(tau, s, a), quadrature, rtol=RTOL["float64"])


@jax.jit
def _log_loss_at_fixed_compute(log_tau, s, a):
    """log L + (a-1)/(s+1) log C = (a-1)/(s+1) log tau + log Phi(tau) (THEORY.md §2.6)."""
    return (a - 1) / (s + 1) * log_tau + jnp.log(scaling.phi(jnp.exp(log_tau), s, a))


_slope_at_fixed_compute = jax.jit(jax.grad(_log_loss_at_fixed_compute))


@pytest.mark.parametrize("s, a", [(1.5, 1.5), (3.0, 1.05), (0.3, 5.0), (8.0, 1.2)])
def test_tau_star_minimises_the_loss_at_fixed_compute(s, a):
    """tau* is a stationary point of L(tau) at fixed C, and its global minimum."""
    optimum = theory.compute_optimal(s=s, a=a)
    log_tau_star = jnp.log(optimum.tau_star)
    # d log L / d log tau is O(1) a bracket's width away; at the root it is rounding-level.
    assert abs(float(_slope_at_fixed_compute(log_tau_star, s, a))) < 1e-12
    grid = jnp.append(jnp.linspace(log_tau_star - 8, log_tau_star + 8, 4000), log_tau_star)
    profile = _log_loss_at_fixed_compute(grid, s, a)
    # No grid point below the optimum, beyond the rounding of log L (~1e-15 relative).
    assert float(jnp.min(profile[:-1])) >= float(profile[-1]) - 1e-13
    assert float(jnp.exp(profile[-1])) == pytest.approx(float(optimum.k_loss), rel=RTOL["float64"])


# --- brute force: the discrete frontier -------------------------------------------------------

GOLDEN = (np.sqrt(5.0) - 1) / 2
# Golden-section steps in log N over a bracket of width log 16: 0.618^36 * 2.77 = 8e-8, below
# one mode for N < 1e7; the last 7 integers around the bracket are then compared directly.
GOLDEN_STEPS = 36
COMPUTE = np.geomspace(1e6, 1e12, 13)


@functools.partial(jax.jit, static_argnames="n_max")
def _discrete_frontier(compute, s, a, n_max):
    """argmin over integer N and min of the discrete L(N, C/N) of THEORY.md §2.6,
    1/2 sum_{k<=N} k^-a exp(-2 k^-s t) + 1/2 zeta(a, N + 1), vmapped over C. The bracket
    C^(1/(s+1)) * [1/4, 4] uses only the exponent, not the soft-rule constant K_N."""
    k = jnp.arange(1.0, n_max + 1)

    def loss(compute, n):
        kept = jnp.where(k <= n, jnp.exp(-a * jnp.log(k) - 2 * (compute / n) * k**-s), 0.0)
        return 0.5 * jnp.sum(kept) + 0.5 * zeta(a, n + 1)

    def one(compute):
        centre = jnp.log(compute) / (s + 1)

        def step(_, bracket):
            lo, hi = bracket
            left, right = hi - GOLDEN * (hi - lo), lo + GOLDEN * (hi - lo)
            go_left = loss(compute, jnp.round(jnp.exp(left))) <= loss(
                compute, jnp.round(jnp.exp(right))
            )
            return jnp.where(go_left, lo, left), jnp.where(go_left, right, hi)

        lo, _ = jax.lax.fori_loop(0, GOLDEN_STEPS, step, (centre - np.log(4), centre + np.log(4)))
        candidates = jnp.round(jnp.exp(lo)) + jnp.arange(-3.0, 4.0)
        losses = jax.vmap(functools.partial(loss, compute))(candidates)
        return candidates[jnp.argmin(losses)], jnp.min(losses)

    return jax.vmap(one)(compute)


@pytest.mark.slow_cases
@pytest.mark.parametrize("s, a", list(TABLE))
def test_discrete_frontier_matches_compute_optimal(s, a):
    optimum = theory.compute_optimal(s=s, a=a)
    n_max = int(4 * COMPUTE[-1] ** (1 / (s + 1))) + 8
    n_found, loss_found = map(np.asarray, _discrete_frontier(jnp.asarray(COMPUTE), s, a, n_max))
    n_star = np.asarray(optimum.n_star(COMPUTE))
    relative = loss_found / np.asarray(optimum.loss(COMPUTE)) - 1

    # The minimiser is inside the bracket, and the optimal allocation is K_N C^(1/(s+1)): the
    # 1/N correction below moves it by O(1) modes and rounding to an integer by 1/2 more
    # (measured: at most 0.9 modes for N* from 44 to 1e5).
    bracket = COMPUTE ** (1 / (s + 1))
    assert np.all((n_found > bracket / 3.9) & (n_found < 3.9 * bracket))
    np.testing.assert_array_less(np.abs(n_found - n_star), 2.0)

    # THEORY.md §2.6: at C = 1e12 the discrete L* is within 2e-4 of K_L C^-(a-1)/(s+1).
    assert abs(relative[-1]) < 2e-4

    # Why it is not closer: Euler-Maclaurin at k = N gives the discrete loss as the continuum
    # one plus 1/4 N^-a (e^(-2 tau) - 1) + O(N^-a-1), and at tau* the continuum loss is
    # N^(1-a) (s+1)(1 - e^(-2 tau*))/(2(a-1)) (scaling._stationarity), so (envelope theorem)
    # L*_discrete / L* - 1 = -(a-1)/(2(s+1)N*) = -loss_exponent/(2 N*) + O(N*^-2). The O(N*^-2)
    # rest (the next Euler-Maclaurin term [a(1-e^(-2 tau)) + 2 s tau e^(-2 tau)]/(24 N^2 Phi),
    # <= 0.23/N^2 for these rows; the lowering of the minimum by the first-order term's slope;
    # the restriction to integer N), measured at most 0.19/N*^2 in size, must stay below 1/N*^2.
    first_order = -np.asarray(optimum.loss_exponent) / (2 * n_star)
    np.testing.assert_array_less(np.abs(relative - first_order), 1 / n_star**2)

    # The fitted exponent on C in [1e9, 1e12] (7 points, equal steps h = ln(10)/2 in ln C).
    # The 1/N* term biases a slope by at most max |d(first_order)/d ln C| =
    # loss_exponent / (2 (s+1) N*(1e9)) (5e-4 relative at s = a = 3); the O(N*^-2) rest by at
    # most 12/(28 h) max|rest| = 0.372 / N*(1e9)^2 (least squares on 7 points).
    window = COMPUTE >= 1e9
    log_c = np.log(COMPUTE[window])
    fitted = -np.polyfit(log_c, np.log(loss_found[window]), 1)[0]
    exponent = float(optimum.loss_exponent)
    bias = exponent / (2 * (s + 1) * n_star[window][0])
    rest = 0.38 / n_star[window][0] ** 2
    assert abs(fitted - exponent) < bias + rest
    corrected = np.log(np.asarray(optimum.loss(COMPUTE[window])) * (1 + first_order[window]))
    assert abs(fitted + np.polyfit(log_c, corrected, 1)[0]) < rest
    # THEORY.md's fitted column, to one unit in its last (5th significant) digit: the table does
    # not give its C grid, and the fit moves with the weights of the biased small-C points.
    assert fitted == pytest.approx(TABLE[s, a][1], abs=_last_digit(TABLE[s, a][1], 5))


@pytest.mark.parametrize("s, a", [(1.5, 1.5), (3.0, 3.0), (2.0, 4.0)])
def test_hard_rule_constants_and_discrete_optimum(s, a):
    hard = theory.compute_optimal(s=s, a=a, rule="hard")
    soft = theory.compute_optimal(s=s, a=a)
    assert (float(hard.tau_star), float(hard.k_n)) == (1.0, 1.0)
    assert float(hard.k_loss) == pytest.approx(1 / (2 * (a - 1)), rel=RTOL["float64"])
    for name in ("loss_exponent", "n_exponent", "d_exponent"):  # §1 row 5: constants only
        assert float(getattr(hard, name)) == float(getattr(soft, name))
    # Brute force: hard L(N, t) = 1/2 zeta(a, min(N, floor(t^(1/s))) + 1) at t = C/N, minimised
    # over every integer N up to 4 C^(1/(s+1)).
    compute = 1e9
    n = np.arange(1, int(4 * compute ** (1 / (s + 1))))
    learned = np.minimum(n, np.floor((compute / n) ** (1 / s) + 1e-9))
    best = 0.5 * float(jnp.min(zeta(a, jnp.asarray(learned) + 1.0)))
    # The number of learned modes at the optimum is C^(1/(s+1)) up to one mode, and
    # 1/2 zeta(a, m + 1) = (m + 1/2)^(1-a)/(2(a-1)) (1 + O(m^-2)): within (a-1) 1.5/N* relative.
    n_star = compute ** (1 / (s + 1))
    assert best / float(hard.loss(compute)) - 1 == pytest.approx(0, abs=1.5 * (a - 1) / n_star)


def test_soft_hard_ratio_is_the_tail_dominance_limit():
    # THEORY.md §2.5: Gamma(1 + c) 2^-c = 0.5687 for s = a = 3 (4 digits: half a unit).
    assert float(theory.soft_hard_loss_ratio(3.0, 3.0)) == pytest.approx(0.5687, abs=5e-5)
    for s, a in [(1.5, 2.5), (2.0, 1.2)]:
        c = (a - 1) / s
        expected = float(jax.scipy.special.gamma(1 + c)) * 2**-c
        assert float(theory.soft_hard_loss_ratio(s, a)) == pytest.approx(expected, rel=1e-12)
        limit = theory.tail_dominance_limit(PowerLaw(s=s, a=a, n_modes=4))
        assert float(theory.soft_hard_loss_ratio(s, a)) == float(limit)


def test_continuum_loss_is_the_scaling_form_and_matches_the_discrete_sum():
    s, a, n, t = 2.0, 2.0, 2000.0, 3e6
    expected = n ** (1 - a) * float(scaling.phi(t * n**-s, s, a))
    assert float(theory.continuum_loss(n, t, s, a)) == pytest.approx(expected, rel=1e-14)
    k = np.arange(1, int(n) + 1)
    discrete = 0.5 * np.sum(k**-a * np.exp(-2 * t * k**-s)) + 0.5 * float(zeta(a, n + 1))
    tau = t * n**-s
    # Euler-Maclaurin at k = N (continuum_loss's docstring): first order in 1/N, and the
    # next term is O(N^-2) = 2.5e-7 relative here.
    first_order = -(1 - np.exp(-2 * tau)) / (4 * n * float(scaling.phi(tau, s, a)))
    assert discrete / expected - 1 == pytest.approx(first_order, abs=1 / n**2)


# --- exponents of other regimes and the notation maps ----------------------------------------


def test_rf_and_ridge_exponents():
    # §2.8: min(a - 1, s); §2.7: min(a - 1, 2s).
    assert float(theory.rf_saturation_exponent(1.5, 2.0)) == 1.0  # a - 1 < s: ideal truncation
    assert float(theory.rf_saturation_exponent(1.0, 3.0)) == 1.0  # a - 1 > s: saturates at s
    assert float(theory.ridge_data_exponent(2.0, 2.0)) == 1.0
    assert float(theory.ridge_data_exponent(1.0, 4.0)) == 2.0  # Tikhonov saturation at 2s
    np.testing.assert_array_equal(
        theory.ridge_data_exponent(jnp.array([0.5, 3.0]), jnp.array([4.0, 4.0])), [1.0, 3.0]
    )


def test_paper_formula_against_general_exponent():
    # §1 row 1: (s - 1)/(s + 1) is the a = s case; §2.6's (3, 1.05) row is 40x off.
    assert float(theory.paper_loss_exponent(3.0)) == 0.5
    general = theory.compute_optimal(s=3.0, a=1.05).loss_exponent
    assert float(theory.paper_loss_exponent(3.0) / general) == pytest.approx(40, rel=1e-12)


@given(s=st.floats(0.1, 10.0), a=st.floats(1.01, 10.0))
def test_notation_maps_round_trip(s, a):
    # Two or three flops each way: rounding below 1e-14 relative.
    plrf = theory.plrf_from_sa(s, a)
    np.testing.assert_allclose(theory.sa_from_plrf(*plrf), (s, a), rtol=1e-14)
    np.testing.assert_allclose(plrf, (s / 2, (a - s) / 2), rtol=1e-14, atol=1e-15)
    chinchilla = theory.chinchilla_from_sa(s, a)
    np.testing.assert_allclose(theory.sa_from_chinchilla(*chinchilla), (s, a), rtol=1e-14)


@given(s=st.floats(1.01, 10.0))
def test_paper_formula_is_the_isotropic_case(s):
    general = theory.compute_optimal(s=s, a=s, rule="hard").loss_exponent  # §0: a = s
    assert float(theory.paper_loss_exponent(s)) == pytest.approx(float(general), rel=1e-14)


@given(alpha=st.floats(0.05, 3.0), beta=st.floats(0.05, 3.0))
def test_chinchilla_optimum_is_compute_optimal_under_the_map(alpha, beta):
    """L = E + A N^-alpha + B D^-beta at C = N D has N* ~ C^(beta/(alpha+beta)) and
    L - E ~ C^-(alpha beta/(alpha+beta)): the same exponents as compute_optimal's (identity)."""
    s, a = theory.sa_from_chinchilla(alpha, beta)
    optimum = theory.compute_optimal(s=s, a=a, rule="hard")  # exponents only: no root finding
    assert float(optimum.n_exponent) == pytest.approx(beta / (alpha + beta), rel=1e-13)
    assert float(optimum.loss_exponent) == pytest.approx(alpha * beta / (alpha + beta), rel=1e-13)
    np.testing.assert_allclose(theory.chinchilla_from_sa(s, a), (alpha, beta), rtol=1e-14)


def test_chinchilla_fit_maps_to_theory_numbers():
    # THEORY.md §1 row 3: (0.34, 0.28) -> (s, a) = (1.21, 1.34), N* ~ C^0.45, L - E ~ C^-0.154,
    # each to half a unit in its last printed digit.
    s, a = theory.sa_from_chinchilla(0.34, 0.28)
    assert float(s) == pytest.approx(1.21, abs=5e-3)
    assert float(a) == pytest.approx(1.34, abs=5e-3)
    optimum = theory.compute_optimal(s=s, a=a)
    assert float(optimum.n_exponent) == pytest.approx(0.45, abs=5e-3)
    assert float(optimum.loss_exponent) == pytest.approx(0.154, abs=5e-4)


def test_plrf_phase_ia_example():
    # THEORY.md §2.6: (alpha, beta) = (1, 0.2) has d* ~ f^0.333 and loss ~ f^-0.467.
    s, a = theory.sa_from_plrf(1.0, 0.2)
    optimum = theory.compute_optimal(s=s, a=a)
    assert float(optimum.n_exponent) == pytest.approx(0.333, abs=5e-4)
    assert float(optimum.loss_exponent) == pytest.approx(0.467, abs=5e-4)


# --- jit, vmap, gradients, dtypes, bad input ---------------------------------------------


@pytest.mark.parametrize("rule", ["soft", "hard"])
def test_jit_vmap_over_a_grid_equals_scalar_calls(rule):
    s, a = (x.ravel() for x in np.meshgrid([0.7, 1.5, 3.0], [1.05, 2.0, 4.5]))
    run = jax.jit(jax.vmap(lambda s, a: theory.compute_optimal(s=s, a=a, rule=rule)))
    grid = run(jnp.asarray(s), jnp.asarray(a))
    chex.assert_shape(list(grid), (s.size,))
    for i in range(s.size):
        chex.assert_trees_all_close(
            jax.tree.map(lambda x, i=i: x[i], grid),
            theory.compute_optimal(s=float(s[i]), a=float(a[i]), rule=rule),
            rtol=RTOL["float64"],
        )
    # Elementwise: arrays of s and a give the same grid without a vmap.
    chex.assert_trees_all_close(
        theory.compute_optimal(s=s, a=a, rule=rule), grid, rtol=RTOL["float64"]
    )


def test_new_s_and_a_do_not_recompile():
    @jax.jit
    @chex.assert_max_traces(n=1)
    def constants(s, a):
        return theory.compute_optimal(s=s, a=a).k_loss

    constants(jnp.float64(2.0), jnp.float64(2.0))
    constants(jnp.float64(3.0), jnp.float64(1.5))


def test_gradients_carry_the_implicit_derivative_of_tau_star():
    def constants(s, a):
        optimum = theory.compute_optimal(s=s, a=a)
        return jnp.stack([optimum.tau_star, optimum.k_loss, optimum.k_n])

    point = np.array([2.0, 2.5])
    jacobian = np.stack(jax.jacfwd(constants, argnums=(0, 1))(*point), axis=-1)
    step = 1e-5
    # Central differences: truncation O(step^2 f''') ~ 1e-10, rounding eps/step ~ 2e-11.
    numeric = np.stack(
        [
            (np.asarray(constants(*(point + d))) - np.asarray(constants(*(point - d)))) / (2 * step)
            for d in step * np.eye(2)
        ],
        axis=-1,
    )
    np.testing.assert_allclose(jacobian, numeric, rtol=1e-8)


def test_float32_keeps_dtype():
    optimum = theory.compute_optimal(s=jnp.float32(2.0), a=jnp.float32(2.0))
    assert all(x.dtype == jnp.float32 for x in optimum)
    chex.assert_tree_all_finite(optimum)
    # float32's igammac is good to ~1e-6; the constants to a few ulps more.
    assert float(optimum.k_loss) == pytest.approx(0.43935334, rel=RTOL["float32"] * 10)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: theory.compute_optimal(s=0.0, a=2.0), r"^s must be finite and > 0"),
        (lambda: theory.compute_optimal(s=2.0, a=1.0), r"^a must be finite and > 1"),
        (lambda: theory.compute_optimal(s=np.array([1.0, -2.0]), a=2.0), r"^s must"),
        (lambda: theory.compute_optimal(s=2.0, a=2.0, rule="medium"), r"^rule must be"),
        (lambda: theory.soft_hard_loss_ratio(2.0, 0.5), r"^a must be finite and > 1"),
        (lambda: theory.rf_saturation_exponent(-1.0, 2.0), r"^s must"),
        (lambda: theory.ridge_data_exponent(1.0, 1.0), r"^a must"),
        (lambda: theory.paper_loss_exponent(0.0), r"^s must"),
        (lambda: theory.plrf_from_sa(2.0, float("nan")), r"^a must"),
        (lambda: theory.sa_from_plrf(0.0, 1.0), r"^alpha must be finite and > 0"),
        (lambda: theory.sa_from_plrf(0.1, 0.2), r"^alpha \+ beta must be finite and > 0.5"),
        (lambda: theory.sa_from_chinchilla(0.34, 0.0), r"^beta must be finite and > 0"),
        (lambda: theory.chinchilla_from_sa(0.0, 1.5), r"^s must"),
        (lambda: scaling.phi(-1.0, 2.0, 2.0), r"^tau must"),
        (lambda: theory.continuum_loss(10.0, 0.0, 2.0, 2.0), r"^t must be finite and > 0"),
    ],
)
def test_bad_input_raises_naming_the_field(call, message):
    with unchecked(), pytest.raises(ValueError, match=message):
        call()


@settings(max_examples=40, deadline=None)
@given(s=st.floats(1.05, 4.0), eps=st.floats(1e-9, 1e-6))
def test_plrf_loss_exponent_is_continuous_across_phase_boundaries(s, eps):
    """THEORY.md §2.6.1: eta is continuous across every boundary (Ia/II at a = s + 1, II/III at
    a = 2s); xi jumps only across IVa/IVb."""
    for boundary in (s + 1, 2 * s):
        if boundary <= 1:
            continue
        below = theory.plrf_compute_optimal(s, boundary - eps)
        above = theory.plrf_compute_optimal(s, boundary + eps)
        assert below.phase != above.phase
        assert above.loss_exponent == pytest.approx(below.loss_exponent, abs=10 * eps)


def test_plrf_phases_in_plrf_symbols():
    """The (s, a) formulas against the table's PLRF symbols (s = 2 alpha, a = 2 alpha + 2 beta):
    II xi = beta/(alpha+beta), eta = (2 alpha + 2 beta - 1)/(2(alpha+beta)); III eta = 1 - 1/(4
    alpha); Ib eta = alpha + beta - 1/2; IVb eta = alpha; Ia xi = 1/(2 alpha + 1)."""
    cases = {(2.0, 2.5): "Ia", (2.0, 3.5): "II", (2.0, 5.0): "III", (0.8, 1.5): "Ib",
             (0.3, 2.0): "Ic", (0.55, 2.0): "IVa", (0.8, 2.5): "IVb"}  # fmt: skip
    for (s, a), phase in cases.items():
        got = theory.plrf_compute_optimal(s, a)
        alpha, beta = (float(x) for x in theory.plrf_from_sa(s, a))
        assert got.phase == phase
        expected = {
            "Ia": (1 / (2 * alpha + 1), None),
            "II": (beta / (alpha + beta), (2 * alpha + 2 * beta - 1) / (2 * (alpha + beta))),
            "III": (0.5, 1 - 1 / (4 * alpha)),
            "Ib": (0.5, alpha + beta - 0.5),
            "IVb": (0.5, alpha),
        }.get(phase)
        if expected is None:
            continue
        xi, eta = expected
        assert got.d_exponent == pytest.approx(xi, rel=1e-12)
        if eta is not None:
            assert got.loss_exponent == pytest.approx(eta, rel=1e-12)
    with pytest.raises(ValueError, match="a > 1"):
        theory.plrf_compute_optimal(2.0, 1.0)
