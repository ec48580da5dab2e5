"""The residual-attention token simulator (THEORY.md §3) against the exact fixed-P rates, the
softmax asymptotic rate 1 - eps, and the invariants of its normalisations."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import unchecked

from spectral_sim import simulate, theory
from spectral_sim.models import attention
from spectral_sim.theory.attention import kernel_attention


def _fixed_p(n: int = 10, seed: int = 3) -> jax.Array:
    x = np.random.default_rng(seed).standard_normal((n, 2))
    return kernel_attention(np.exp(-0.3 * ((x[:, None] - x[None]) ** 2).sum(-1)))


def _rate(distance: np.ndarray, first: int, last: int) -> float:
    """THEORY.md §3.4: (||D_last|| / ||D_first||)^(1 / (last - first)), layers counted from 1."""
    return float((distance[last - 1] / distance[first - 1]) ** (1 / (last - first)))


@pytest.mark.slow_cases
@pytest.mark.parametrize("residual", ["mean_shift", "additive"])
def test_fixed_p_contracts_at_the_exact_rate(residual, key):
    P, eps = _fixed_p(), 0.6
    params = attention.Params(
        n_tokens=10, dim=3, eps=eps, attention="fixed", P=P, residual=residual, deviation=True
    )
    _, obs = jax.jit(lambda p, k: simulate.trajectory(attention, p, k, n_records=1000))(params, key)
    distance = np.asarray(obs.distance)
    assert np.all(np.isfinite(distance)) and distance[-1] > 0  # no round-off floor
    measured = _rate(distance, 900, 1000)  # deviation=True divides out additive growth
    # The next mode's share left in the window is (r_2 / r)^900 < 1e-8 (checked), so the
    # late-window estimate is the exact rate to ~1e-8.
    mu = np.asarray(theory.attention.attention_spectrum(P))[1:]
    moduli = np.sort(np.abs(1 - eps * (1 - mu) if residual == "mean_shift" else 1 + eps * mu))
    assert (moduli[-2] / moduli[-1]) ** 900 < 1e-8
    expected = float(theory.attention_rate(P, eps=eps, residual=residual))
    assert measured == pytest.approx(expected, rel=1e-7)


def test_fixed_p_keeps_the_consensus_point(key):
    P = _fixed_p()
    params = attention.Params(n_tokens=10, dim=3, eps=0.3, attention="fixed", P=P)
    x0 = attention.init(params, jax.random.split(key)[0]).x
    final, obs = simulate.trajectory(attention, params, key, n_records=300)
    np.testing.assert_allclose(
        theory.attention.consensus(P, final.x), theory.attention.consensus(P, x0), atol=1e-12
    )
    assert np.all(np.diff(np.asarray(obs.distance)) < 0)  # ||.||_pi contracts every layer


def test_softmax_attention_contracts_at_one_minus_eps_near_consensus(key):
    """THEORY.md §3.3: near consensus the deviation contracts by exactly 1 - eps per layer, to
    first order in the deviation. The second-order share is O(distance): 3e-5 relative measured
    from a distance of 1e-6, so the window starts where the distance is below 1e-8 and ends
    while it is above 1e-13, clear of the round-off floor (1e-16 of tokens of size ~1)."""
    eps = 0.2
    params = attention.Params(n_tokens=8, dim=4, eps=eps, beta=0.5)
    _, obs = simulate.trajectory(attention, params, key, n_records=160)
    distance = np.asarray(obs.distance)
    first = int(np.argmax(distance < 1e-8)) + 1  # layers counted from 1
    last = int(np.flatnonzero(distance > 1e-13)[-1]) + 1
    assert last - first >= 10
    assert _rate(distance, first, last) == pytest.approx(1 - eps, rel=1e-5)
    # Early layers contract more slowly than the asymptotic rate (THEORY.md §3.3).
    assert _rate(distance, 1, 5) > 1 - eps


@pytest.mark.parametrize("norm", ["sphere", "layernorm"])
def test_normalisations_hold_every_layer(norm, key):
    params = attention.Params(n_tokens=6, dim=5, eps=0.5, beta=2.0, norm=norm, residual="none")
    final, obs = simulate.trajectory(attention, params, key, n_records=20)
    x = np.asarray(final.x)
    if norm == "sphere":
        np.testing.assert_allclose(np.linalg.norm(x, axis=-1), 1.0, rtol=1e-12)
    else:
        np.testing.assert_allclose(x.mean(-1), 0.0, atol=1e-12)
        np.testing.assert_allclose(x.var(-1), 1.0, rtol=1e-9)
    assert np.all(np.isfinite(np.asarray(obs.diameter)))


def test_sweepable_over_eps_and_beta(key):
    """eps and beta are traced: one compiled program vmaps over them."""
    params = attention.Params(n_tokens=6, dim=2)

    def final_distance(eps, beta):
        p = attention.Params(n_tokens=6, dim=2, eps=eps, beta=beta)
        return simulate.trajectory(attention, p, key, n_records=30)[1].distance[-1]

    grid = jax.jit(jax.vmap(final_distance))(jnp.array([0.1, 0.3]), jnp.array([1.0, 1.0]))
    alone = final_distance(0.3, 1.0)
    np.testing.assert_allclose(grid[1], alone, rtol=1e-10)
    assert grid[1] < grid[0]  # a larger residual step contracts faster
    assert params.attention == "softmax"


def test_heads_generalise_the_single_identity_head(key):
    """Q = K = I and V = I as one explicit head reproduce the default layer; two identical
    heads average to one; a scaled query acts as a larger beta."""
    base = attention.Params(n_tokens=6, dim=3, eps=0.3, beta=0.7)
    eye = np.eye(3)
    explicit = attention.Params(
        n_tokens=6, dim=3, eps=0.3, beta=0.7, query=eye, keys=eye, value=eye
    )
    doubled = attention.Params(
        n_tokens=6, dim=3, eps=0.3, beta=0.7, query=np.stack([eye, eye]),
        keys=np.stack([eye, eye]), value=np.stack([eye, eye]),
    )  # fmt: skip
    scaled = attention.Params(n_tokens=6, dim=3, eps=0.3, beta=0.35, query=2 * eye, keys=eye)
    runs = [
        np.asarray(simulate.trajectory(attention, p, key, n_records=20)[1].distance)
        for p in (base, explicit, doubled, scaled)
    ]
    for other in runs[1:]:
        np.testing.assert_allclose(other, runs[0], rtol=1e-12)


@pytest.mark.slow
def test_sphere_flow_integrators_converge_at_their_order(key):
    """At a fixed time T = 2 the Euler error halves and the RK4 error falls 16x when dt halves
    (against RK4 at dt = 1/640 as the reference); tokens stay on the sphere."""

    def final(integrator, dt):
        params = attention.Params(
            n_tokens=5, dim=3, eps=dt, beta=2.0, norm="sphere", integrator=integrator
        )
        state = simulate.trajectory(attention, params, key, n_records=1, every=round(2 / dt))[0]
        return np.asarray(state.x)

    reference = final("rk4", 1 / 640)
    np.testing.assert_allclose(np.linalg.norm(reference, axis=-1), 1.0, rtol=1e-12)
    for integrator, order in (("euler", 1), ("rk4", 4)):
        coarse, fine = (np.abs(final(integrator, dt) - reference).max() for dt in (0.1, 0.05))
        assert coarse / fine == pytest.approx(2.0**order, rel=0.25), integrator


@pytest.mark.parametrize("residual", ["mean_shift", "additive", "none"])
def test_the_dobrushin_bound_holds_layer_by_layer(residual, key):
    """THEORY.md §3.3: for softmax attention (V = I, no normalisation) diam(X_l) <= tau(M_l)
    diam(X_(l-1)) at every layer, M_l the layer's mixing matrix (times 1 + eps for the additive
    form); early layers of a wide-spread start are far from the bound's worst case."""
    eps = 0.4
    params = attention.Params(n_tokens=8, dim=3, eps=eps, beta=1.5, residual=residual)
    x0 = attention.init(params, jax.random.split(key)[0]).x
    _, obs = simulate.trajectory(attention, params, key, n_records=40)
    diameter = np.concatenate([[float(np.max(np.linalg.norm(x0[:, None] - x0[None], axis=-1)))],
                               np.asarray(obs.diameter)])  # fmt: skip
    scale = 1 + eps if residual == "additive" else 1.0
    bound = scale * np.asarray(obs.tau) * diameter[:-1]
    # Relative rounding, plus an absolute floor once the tokens have merged (diameter ~1e-16).
    assert np.all(diameter[1:] <= bound * (1 + 1e-12) + 1e-14 * diameter[0])
    assert np.all((np.asarray(obs.tau) >= 0) & (np.asarray(obs.tau) <= 1 + 1e-12))


def test_stationary_keeps_the_tiny_weights_of_a_nearly_reducible_softmax():
    """A softmax A(X) at beta = 2, d = 8 (the attention_clusters sweep's) is nearly reducible:
    its pi spans 17 orders of magnitude. A linear solve for pi returned negative pi_i (-1.6e-9
    for 9.2e-10 here; so in 25 of the sweep's 256 seeds) and `attention_gap`'s sqrt(pi) was NaN.
    A is D^-1 K with K = exp(beta X X^T) symmetric: pi is proportional to the row sums D."""
    params = attention.Params(n_tokens=8, dim=8, beta=2.0)
    x = jnp.asarray(np.random.default_rng(29).standard_normal((8, 8)))
    A = attention.weights(params, x)[0]
    log_rows = jax.scipy.special.logsumexp(2.0 * x @ x.T, axis=-1)
    exact = np.exp(log_rows - jax.scipy.special.logsumexp(log_rows))
    assert exact.min() < 1e-16
    pi = np.asarray(attention.stationary(A))
    np.testing.assert_allclose(pi, exact, rtol=1e-12)
    np.testing.assert_allclose(pi @ np.asarray(A), pi, rtol=1e-12)
    attention.check_attention(A)  # reversible: pi_i A_ij = pi_j A_ji
    assert np.isfinite(float(theory.attention_gap(A)))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(eps=0.0), "eps"),
        (dict(beta=-1.0), "beta"),
        (dict(n_tokens=1), "n_tokens"),
        (dict(attention="fixed"), "needs P"),
        (dict(attention="fixed", P=np.full((3, 3), 1 / 3)), "shape"),
        (dict(attention="fixed", P=np.full((4, 4), 0.3)), "row-stochastic"),
        (dict(value=np.eye(3)), "value"),
        (dict(query=np.eye(2)), "together"),
        (dict(query=np.ones((2, 3)), keys=np.ones((2, 4))), "one shape"),
        (dict(query=np.ones((3, 3)), keys=np.ones((3, 3))), "query"),
        (dict(query=np.ones((2, 2, 3)), keys=np.ones((2, 2, 3)), value=np.ones((3, 2, 2))), "head"),
        (dict(residual="skip"), "residual"),
        (dict(norm="batch"), "norm"),
        (dict(deviation=True), "deviation"),
        (dict(integrator="rk4"), "sphere"),
        (dict(integrator="midpoint", norm="sphere"), "integrator"),
        (dict(draw="qv"), "draw"),
        (dict(draw="qk", heads=0), "heads"),
        (dict(draw="qk", key_dim=0), "key_dim"),
        (dict(draw="qk", attention="fixed", P=np.full((4, 4), 0.25)), "softmax"),
        (dict(draw="qk", query=np.eye(2), keys=np.eye(2)), "do not also give"),
    ],
)
def test_bad_input_is_rejected_before_tracing(kwargs, message):
    with unchecked(), pytest.raises(ValueError, match=message):
        attention.Params(**(dict(n_tokens=4, dim=2) | kwargs))


@pytest.mark.slow
def test_drawn_weights_are_per_run_and_reproducible(key):
    """draw='qkv' draws Q, K, V of the declared shapes in init, from the run's key: the same key
    gives the same run, another key other weights; drawn weights act as given ones."""
    params = attention.Params(n_tokens=6, dim=3, eps=0.3, draw="qkv", heads=2, key_dim=5)
    state = attention.init(params, jax.random.split(key)[0])  # the key trajectory() passes on
    assert state.query.shape == state.keys.shape == (2, 3, 5)
    assert state.value.shape == (2, 3, 3)
    assert attention.init(attention.Params(n_tokens=6, dim=3, draw="qk"), key).value is None
    # Entries N(0, 1/dim): the sample variance of 2 x 3 x 5 query entries is within 4 SE of 1/3.
    variance = float(np.var(np.asarray(state.query)) * 3)
    assert abs(variance - 1) < 4 * np.sqrt(2 / 30)
    other = attention.init(params, jax.random.fold_in(key, 7))
    assert not np.allclose(other.query, state.query)

    def run(p, k):
        return simulate.trajectory(attention, p, k, n_records=10)[1].distance

    np.testing.assert_array_equal(run(params, key), run(params, key))
    given = attention.Params(
        n_tokens=6, dim=3, eps=0.3, query=state.query, keys=state.keys, value=state.value
    )
    np.testing.assert_allclose(run(given, key), run(params, key), rtol=1e-12)
    seeds = jax.vmap(lambda k: run(params, k))(jax.random.split(key, 3))
    assert len({float(d[-1]) for d in seeds}) == 3  # vmapped seeds: three different draws
