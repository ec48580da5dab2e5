"""Attention contraction predictors (THEORY.md §3.1-3.3) against brute-force linear algebra on
fixed P built from random symmetric kernels, in float64."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import unchecked
from hypothesis import given, settings
from hypothesis import strategies as st

from spectral_sim import models, theory
from spectral_sim.diagnostics import tokens
from spectral_sim.theory import attention

# Exact identities computed two ways (eigh of the symmetrised P vs general eig of the update
# matrix): agreement to ~1e-13 measured; the bar is 1e-8 relative.
RTOL = 1e-8


def _kernel_attention(seed: int, n: int = 12, d: int = 3, beta: float = 1.0) -> np.ndarray:
    """P = D^-1 K with K = exp(-beta ||x_i - x_j||^2) on random positions: reversible, positive."""
    x = np.random.default_rng(seed).standard_normal((n, d))
    kernel = np.exp(-beta * ((x[:, None] - x[None]) ** 2).sum(-1))
    return np.asarray(attention.kernel_attention(kernel))


def _second_modulus(update: np.ndarray) -> float:
    """The largest |eigenvalue| of the update matrix after the consensus eigenvalue."""
    moduli = np.sort(np.abs(np.linalg.eigvals(update)))[::-1]
    return float(moduli[1])


@pytest.mark.slow_cases
@pytest.mark.parametrize("seed", range(4))
def test_gap_and_rate_are_the_update_matrix_eigenvalues(seed):
    P = _kernel_attention(seed)
    mu = np.sort(np.linalg.eigvals(P).real)[::-1]
    assert float(theory.attention_gap(P)) == pytest.approx(1 - mu[1], rel=RTOL)
    n = P.shape[0]
    for eps in (0.1, 0.5, 1.0, 1.6):
        mean_shift = (1 - eps) * np.eye(n) + eps * P
        expected = _second_modulus(mean_shift)
        got = float(theory.attention_rate(P, eps=eps))
        assert got == pytest.approx(expected, rel=RTOL)
        additive = (np.eye(n) + eps * P) / (1 + eps)
        got = float(theory.attention_rate(P, eps=eps, residual="additive"))
        assert got == pytest.approx(_second_modulus(additive), rel=RTOL)
        # THEORY.md §3.2: the additive rate is the mean-shift rate at eps / (1 + eps).
        assert got == pytest.approx(float(theory.attention_rate(P, eps=eps / (1 + eps))), rel=RTOL)


@pytest.mark.slow_cases
@pytest.mark.parametrize("seed", range(4))
def test_the_rate_is_one_minus_eps_gap_exactly_up_to_the_limit(seed):
    P = _kernel_attention(seed, beta=0.05)  # near-uniform attention: mu_n close to 0
    gap, limit = float(theory.attention_gap(P)), float(attention.gap_rate_limit(P))
    assert limit >= 2 / (2 + gap)  # THEORY.md's sufficient condition
    for eps in (0.5 * limit, limit):
        assert float(theory.attention_rate(P, eps=eps)) == pytest.approx(1 - eps * gap, rel=RTOL)
    beyond = 1.05 * limit
    assert float(theory.attention_rate(P, eps=beyond)) > (1 - beyond * gap) + 1e-6


def test_simulated_contraction_matches_the_rate():
    """THEORY.md §3.4: iterate the deviation, projecting out the consensus mode each layer, and
    read the rate from late layers; with a well-separated second mode it converges to r."""
    P = _kernel_attention(7, n=10)
    eps = 0.7
    pi = np.asarray(attention.stationary(P))
    x = np.random.default_rng(1).standard_normal((10, 4))
    deviation = x - np.asarray(attention.consensus(P, x))[None]
    norms = []
    for _ in range(1000):
        deviation = deviation + eps * (P @ deviation - deviation)
        deviation -= np.outer(np.ones(10), pi @ deviation)
        norms.append(np.sqrt(pi @ (deviation**2).sum(-1)))
    measured = (norms[-1] / norms[899]) ** (1 / 100)
    mu = np.asarray(attention.attention_spectrum(P))
    # The window [900, 1000] still carries (r_2 / r)^900 of the next mode (r_2 the second
    # largest |1 - eps (1 - mu_i)|): below 1e-8 here (checked), so the estimate is r to ~1e-9.
    rates = np.sort(np.abs(1 - eps * (1 - mu[1:])))[::-1]
    assert (rates[1] / rates[0]) ** 900 < 1e-8
    assert measured == pytest.approx(float(theory.attention_rate(P, eps=eps)), rel=1e-7)


@pytest.mark.slow
@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), eps=st.floats(0.01, 1.9), n=st.integers(2, 9))
def test_consensus_is_invariant_under_the_fixed_p_update(seed, eps, n):
    P = _kernel_attention(seed, n=n)
    x = np.random.default_rng(seed).standard_normal((n, 2))
    moved = x + eps * (P @ x - x)
    np.testing.assert_allclose(
        attention.consensus(P, moved), attention.consensus(P, x), rtol=1e-9, atol=1e-12
    )


@pytest.mark.slow
@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(2, 9), eps=st.floats(0.0, 1.0))
def test_the_dobrushin_bound_never_fails(seed, n, eps):
    """diam(M X) <= tau(M) diam(X) for any row-stochastic M (not only reversible ones), and
    tau((1 - eps) I + eps A) <= 1 - eps (1 - tau(A))."""
    rng = np.random.default_rng(seed)
    weights = rng.exponential(size=(n, n)) ** 3  # spread-out rows
    A = weights / weights.sum(-1, keepdims=True)
    x = rng.standard_normal((n, 3))

    def diameter(y):
        return np.max(np.linalg.norm(y[:, None] - y[None], axis=-1))

    tau = float(attention.dobrushin(A))
    assert diameter(A @ x) <= tau * diameter(x) * (1 + 1e-12) + 1e-15
    residual = (1 - eps) * np.eye(n) + eps * A
    assert float(attention.dobrushin(residual)) <= 1 - eps * (1 - tau) + 1e-12


def test_softmax_rate_and_vmap():
    assert float(attention.softmax_rate(0.3)) == pytest.approx(0.7)
    assert float(attention.softmax_rate(0.3, "additive")) == pytest.approx(1 / 1.3)
    stack = jnp.stack([_kernel_attention(s) for s in range(3)])
    batched = jax.vmap(lambda p: theory.attention_rate(p, eps=0.4))(stack)
    one_by_one = [float(theory.attention_rate(p, eps=0.4)) for p in np.asarray(stack)]
    np.testing.assert_allclose(batched, one_by_one, rtol=1e-12)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda P: theory.attention_gap(P * 1.1), "row-stochastic"),
        (lambda P: theory.attention_gap(np.where(np.eye(12) > 0, 0.0, P)), "positive"),
        (lambda P: theory.attention_gap(P[:1, :1]), "n >= 2"),
        (lambda P: theory.attention_rate(P, eps=0.0), "eps"),
        (lambda P: theory.attention_rate(P, eps=0.5, residual="skip"), "residual"),
        (lambda P: attention.kernel_attention(np.triu(np.ones((3, 3))) + 1), "symmetric"),
    ],
)
def test_bad_input_is_rejected(call, message):
    with unchecked(), pytest.raises(ValueError, match=message):
        call(_kernel_attention(0))


def test_non_reversible_p_is_rejected_by_the_spectral_functions():
    rng = np.random.default_rng(0)
    weights = rng.exponential(size=(5, 5))
    P = weights / weights.sum(-1, keepdims=True)  # generic: not reversible
    with pytest.raises(ValueError, match="reversible"):
        theory.attention_gap(P)
    assert np.isfinite(float(attention.consensus(P, np.ones((5, 1)))[0]))


@pytest.mark.slow
def test_closed_classes_count_the_clusters_of_a_reducible_p():
    """Two closed blocks and one transient token that feeds both: 2 clusters; the fixed-P
    dynamics indeed end in two points (the transient token goes to a pi-mix of them)."""
    block = np.full((2, 2), 0.5)
    P = np.zeros((5, 5))
    P[:2, :2], P[2:4, 2:4] = block, block
    P[4] = [0.2, 0.2, 0.2, 0.2, 0.2]
    assert int(attention.closed_classes(P)) == 2
    assert int(attention.closed_classes(_kernel_attention(0))) == 1  # positive: irreducible
    corner = np.asarray(_kernel_attention(0))[:5, :5]
    stacked = np.stack([P, corner / corner.sum(-1, keepdims=True)])
    np.testing.assert_array_equal(attention.closed_classes(stacked), [2, 1])  # batch axes
    pair = np.stack([_kernel_attention(0), _kernel_attention(1)])
    np.testing.assert_allclose(  # leading batch axes, as the docstring promises
        attention.attention_gap(pair),
        [attention.attention_gap(_kernel_attention(seed)) for seed in (0, 1)],
        rtol=1e-12,
    )
    x = np.random.default_rng(0).standard_normal((5, 2))
    for _ in range(200):
        x = x + 0.5 * (P @ x - x)
    np.testing.assert_allclose(x[0], x[1], atol=1e-12)
    np.testing.assert_allclose(x[2], x[3], atol=1e-12)
    assert np.linalg.norm(x[0] - x[2]) > 1e-3
    with pytest.raises(ValueError, match="nonnegative"):
        attention.closed_classes(-P)


def test_rank_collapse_bound_is_cubic_per_layer():
    """Cor. 2.3 is Thm 2.2 iterated: bound(L = 2) = bound(bound(L = 1), L = 1), and L = 0 is the
    residual itself."""
    kwargs = dict(weight_norm=0.3, heads=2, gamma=0.5)
    r = np.array([0.1, 0.5, 1.2])
    np.testing.assert_allclose(theory.attention.rank_collapse_bound(r, layers=0, **kwargs), r)
    one = theory.attention.rank_collapse_bound(r, layers=1, **kwargs)
    np.testing.assert_allclose(one, 4 * 0.5 * 2 * 0.3 * r**3, rtol=1e-14)
    two = theory.attention.rank_collapse_bound(one, layers=1, **kwargs)
    np.testing.assert_allclose(
        theory.attention.rank_collapse_bound(r, layers=2, **kwargs), two, rtol=1e-12
    )
    with pytest.raises(ValueError, match="layers"):
        theory.attention.rank_collapse_bound(r, layers=-1, weight_norm=1.0)
    with pytest.raises(ValueError, match="weight_norm"):
        theory.attention.rank_collapse_bound(r, layers=1, weight_norm=0.0)


def test_pure_attention_collapses_at_cubic_order_inside_the_bound():
    """Pure softmax attention (no skip, V = I): log r_(l+1) - log r_l grows threefold per layer
    (r -> c r^3), and every layer stays under the Dong-Cordonnier-Loukas bound with w = beta,
    gamma = 1. Layers whose residual is within 1e-9 of the round-off floor (~1e-16 x token size)
    are left out."""
    beta = 0.2
    params = models.attention.Params(n_tokens=8, dim=4, beta=beta, residual="none")
    state = models.attention.init(params, jax.random.split(jax.random.key(0))[0])
    residual = [float(tokens.residual_norm(state.x))]
    for _ in range(3):
        state, _ = models.attention.step(params, state, None)
        residual.append(float(tokens.residual_norm(state.x)))
    r = np.array(residual)
    assert r[-1] > 1e-9  # the three layers stay clear of the floor
    steps = np.diff(np.log(r))
    order = steps[1:] / steps[:-1]
    # r_(l+1) = c_l r_l^3 with c_l -> c: the order's error is log(c_(l+1)/c_l) / log-step, which
    # shrinks with r_l (measured 3.10, then 3.009 here); the last must be within 1e-2 of 3.
    assert order[-1] == pytest.approx(3.0, abs=1e-2)
    bound = theory.attention.rank_collapse_bound(r[:-1], layers=1, weight_norm=beta)
    assert np.all(r[1:] <= np.asarray(bound))


def test_rate_of_the_simulators_params():
    """rate(Params) is attention_rate of the fixed P (residual "none": the mean-shift rate at
    eps = 1) and softmax_rate for softmax attention; configurations it does not cover raise."""
    P = _kernel_attention(2, n=6)
    for residual, expected in [
        ("mean_shift", theory.attention_rate(P, eps=0.4)),
        ("additive", theory.attention_rate(P, eps=0.4, residual="additive")),
        ("none", theory.attention_rate(P, eps=1.0)),
    ]:
        params = models.attention.Params(n_tokens=6, dim=2, eps=0.4, attention="fixed", P=P,
                                         residual=residual)  # fmt: skip
        assert float(attention.rate(params)) == pytest.approx(float(expected), rel=RTOL)
    softmax = models.attention.Params(n_tokens=6, dim=2, eps=0.4, residual="additive")
    assert float(attention.rate(softmax)) == pytest.approx(1 / 1.4, rel=RTOL)
    for bad in (dict(value=np.eye(2)), dict(draw="qkv"), dict(norm="sphere", integrator="rk4")):
        with pytest.raises(ValueError, match="rate"):
            attention.rate(models.attention.Params(n_tokens=6, dim=2, **bad))
    with pytest.raises(ValueError, match="norm='none'"):
        attention.rate(models.attention.Params(n_tokens=6, dim=2, attention="fixed", P=P,
                                               norm="sphere"))  # fmt: skip


def test_rate_vmaps_over_a_stacked_grid():
    """eps and the fixed P vary along the grid; one vmap equals the point-by-point evaluation:
    the same float64 eigendecompositions, batched, so 1e-10 relative (as identities)."""
    points = [
        models.attention.Params(n_tokens=6, dim=2, eps=eps, attention="fixed",
                                P=_kernel_attention(seed, n=6))
        for seed, eps in [(0, 0.2), (1, 0.5), (2, 0.9)]
    ]  # fmt: skip
    stacked = jax.tree.map(lambda *leaves: jnp.stack(leaves), *points)
    one_by_one = jnp.stack([attention.rate(p) for p in points])
    np.testing.assert_allclose(jax.vmap(attention.rate)(stacked), one_by_one, rtol=1e-10)


def test_a_concrete_p_closed_over_by_a_jitted_function_is_still_checked_and_predicted():
    """A predictor jitted around a concrete P (validity's gradient ascent closes over the
    template's) checks P's reversibility eagerly and returns what the eager call returns."""
    P = _kernel_attention(0)
    eager = float(theory.attention_gap(P))
    assert float(jax.jit(lambda eps: eps * theory.attention_gap(P))(1.0)) == pytest.approx(eager)
    lazy = P.copy()
    lazy[0, 1:] = lazy[0, 1:] * 2  # rows no longer sum to 1: refused inside the trace too
    with pytest.raises(ValueError, match="row-stochastic"):
        jax.jit(lambda eps: eps * theory.attention_gap(lazy))(1.0)
