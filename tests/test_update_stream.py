"""Synthetic signal-plus-noise update windows (THEORY.md §5.2-5.3): the spectral-edge
diagnostics recover the closed-form singular values and k*, and Wedin's bound holds."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from spectral_sim import theory
from spectral_sim.diagnostics import gram
from spectral_sim.models import update_stream


def _windows(params, n):
    return jax.jit(jax.vmap(lambda k: update_stream.window(params, k)))(
        jax.random.split(jax.random.key(0), n)
    )


@pytest.mark.slow_cases
@pytest.mark.parametrize("s", [(10.0, 6.0, 5.5), (10.0, 3.0, 2.8), (4.0,)])
def test_detector_recovers_k_star_and_the_singular_values(s):
    """50 windows (W = 10, P = 20,000): every k* equals the closed form's, and the mean
    sigma_j^2 is within the fluctuation scale O(s sigma_xi / sqrt(P)) x 4 = 0.3 of
    s_j^2 + sigma_xi^2."""
    params = update_stream.Params(s=jnp.asarray(s), noise=1.0, W=10, P=20_000)
    windows = _windows(params, 50)
    edge = jax.vmap(gram.spectral_edge)(windows.U)
    k_star, ratio = theory.update_stream.gap(params)
    assert np.all(np.asarray(edge.k_star) == int(k_star))
    predicted = np.asarray(theory.update_stream.singular_values(params)) ** 2
    np.testing.assert_allclose(np.asarray(edge.singular_values**2).mean(0), predicted, atol=0.3)
    assert float(np.median(edge.gap_ratio)) == pytest.approx(float(ratio), rel=0.05)


@pytest.mark.slow  # Monte Carlo over draws (8 s)
def test_wedin_bound_holds_on_every_draw():
    """sin of the largest principal angle between the top-k right singular subspace of U and
    V[:, :k] never exceeds ||Xi||_op / (sigma_k(U) - s_(k+1)), for k = 1..r, over 100 draws of a
    noisy window (P = 2,000, sigma_xi = 3, where the bound is far from vacuous but not loose)."""
    params = update_stream.Params(s=jnp.asarray([8.0, 5.0, 4.0]), noise=3.0, W=8, P=2000)
    windows = _windows(params, 100)
    for k in (1, 2, 3):

        def check(w, k=k):
            _, sigma, vt = jnp.linalg.svd(w.U, full_matrices=False)
            overlap = jnp.linalg.svd(vt[:k] @ w.V[:, :k], compute_uv=False)
            sine = jnp.sqrt(jnp.maximum(1 - overlap.min() ** 2, 0.0))
            noise_op = jnp.linalg.svd(w.noise, compute_uv=False)[0]
            bound = theory.update_stream.wedin_bound(sigma, params.s, noise_op, k)
            return sine, bound

        sine, bound = jax.vmap(check)(windows)
        assert np.all(np.asarray(sine) <= np.asarray(bound) * (1 + 1e-9)), k
        assert np.isfinite(np.asarray(bound)).mean() > 0.5  # the check is not vacuous


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(s=jnp.ones(10), W=10), "s must list"),
        (dict(s=jnp.ones(2), W=1), "W"),
        (dict(s=jnp.ones(2), W=10, P=5), "P"),
        (dict(s=jnp.ones(2), noise=-1.0), "noise"),
    ],
)
def test_bad_input_is_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        update_stream.Params(**kwargs)


@pytest.mark.parametrize("form", [theory.update_stream.singular_values, theory.update_stream.gap])
def test_params_forms_vmap_over_a_stacked_grid(form):
    """Strengths s and noise vary along the grid; one vmap equals the point-by-point evaluation:
    the same float64 operations (a sort, square roots, a ratio), batched, so 1e-10 relative
    (the rounding allowance of identities, docs/guide/numerics.md)."""
    grid = [([5.0, 2.0], 1.0), ([1.0, 3.0], 0.5), ([4.0, 4.0], 2.0)]
    points = [update_stream.Params(s=jnp.asarray(s), noise=noise, W=6, P=100) for s, noise in grid]
    stacked = jax.tree.map(lambda *leaves: jnp.stack(leaves), *points)
    batched = jax.vmap(form)(stacked)
    one_by_one = jax.tree.map(lambda *x: jnp.stack(x), *[form(p) for p in points])
    for got, expected in zip(jax.tree.leaves(batched), jax.tree.leaves(one_by_one), strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-10)
