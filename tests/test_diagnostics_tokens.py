"""Token measurements (diagnostics.tokens) on configurations whose answers are known."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from spectral_sim import simulate
from spectral_sim.diagnostics import tokens
from spectral_sim.models import attention


def test_effective_rank_of_known_configurations():
    line = np.outer(np.arange(6.0), [1.0, 2.0, 0.5])  # tokens on a line
    assert float(tokens.effective_rank(line)) == pytest.approx(1.0, rel=1e-12)
    simplex = np.eye(4)  # centred: 3 equal singular values
    assert float(tokens.effective_rank(simplex)) == pytest.approx(3.0, rel=1e-12)
    assert float(tokens.effective_rank(np.ones((5, 3)))) == 0.0  # one point


def test_cluster_count_follows_single_linkage():
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    x = np.concatenate([c + 0.01 * rng.standard_normal((4, 2)) for c in centres])
    assert int(tokens.cluster_count(x, tol=1.0)) == 3
    assert int(tokens.cluster_count(x, tol=20.0)) == 1
    assert int(tokens.cluster_count(x, tol=1e-6)) == 12
    chain = np.arange(8.0)[:, None] * np.array([[1.0, 0.0]])  # neighbours 1 apart: one chain
    assert int(tokens.cluster_count(chain, tol=1.5)) == 1
    stacked = jnp.stack([jnp.asarray(x), jnp.asarray(x[::-1])])
    np.testing.assert_array_equal(jax.vmap(lambda y: tokens.cluster_count(y, 1.0))(stacked), 3)
    np.testing.assert_array_equal(tokens.cluster_count(stacked, 1.0), [3, 3])  # batch axes


def test_first_layer_and_rates_on_a_geometric_record():
    steps = np.arange(1, 51)
    distance = 3.0 * 0.9**steps
    assert float(tokens.asymptotic_rate(distance, steps, 20, 50)) == pytest.approx(0.9, rel=1e-12)
    np.testing.assert_allclose(tokens.contraction_ratios(distance), 0.9, rtol=1e-12)
    assert int(tokens.first_layer(distance < 1e-1, steps)) == 33  # 3 * 0.9^33 = 0.093
    assert int(tokens.first_layer(distance < 0, steps)) == -1
    with pytest.raises(ValueError, match="recorded steps"):
        tokens.asymptotic_rate(distance, steps, 50, 20)


def test_sphere_dynamics_collapse_to_one_cluster(key):
    """Softmax attention on the sphere (residual "none" is pure attention + projection): the
    tokens merge into clusters whose count never grows with depth."""
    params = attention.Params(n_tokens=12, dim=3, eps=0.5, beta=1.0, norm="sphere")
    steps = np.arange(0, 301, 50)
    x0 = attention.init(params, jax.random.split(key)[0]).x
    later = [simulate.trajectory(attention, params, key, steps=[int(t)])[0].x for t in steps[1:]]
    counts = [int(tokens.cluster_count(x, tol=1e-3)) for x in [x0, *later]]
    assert counts[0] == 12 and counts[-1] < 12
    assert all(b <= a for a, b in zip(counts, counts[1:], strict=False))


def test_residual_norm_of_known_configurations():
    """sqrt(max column sum x max row sum) of |X - 1 median^T|; zero on identical rows and
    unchanged by a common translation."""
    x = np.array([[0.0, 0.0], [1.0, 2.0], [3.0, -1.0]])  # medians (1, 0)
    r = np.abs(x - np.array([1.0, 0.0]))  # column sums (3, 3), row sums (1, 2, 3)
    assert float(tokens.residual_norm(x)) == pytest.approx(np.sqrt(3.0 * 3.0), rel=1e-12)
    assert r.sum(0).max() == 3.0
    shifted = x + np.array([5.0, -7.0])
    assert float(tokens.residual_norm(shifted)) == pytest.approx(3.0, rel=1e-12)
    assert float(tokens.residual_norm(np.ones((4, 3)))) == 0.0
