"""The rolling-window update-Gram diagnostics (THEORY.md §5) against direct recomputation, the
signal-plus-noise closed forms and the Marchenko-Pastur null."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg
from conftest import unchecked

from spectral_sim import fit
from spectral_sim.diagnostics import gram


def _pushed(updates, W):
    window = gram.init(W, updates.shape[1], jnp.float64)
    step = jax.jit(gram.push)
    for u in updates:
        window = step(window, u)
    return window


def test_incremental_gram_equals_direct_recomputation():
    """After 2.5 W pushes the ring buffer's Gram is U U^T of the last W updates to 1e-10; in
    chronological order it matches the window oldest first."""
    rng = np.random.default_rng(0)
    W, P = 6, 50
    updates = rng.standard_normal((15, P))
    window = _pushed(updates, W)
    last = updates[-W:]
    np.testing.assert_allclose(gram.chronological(window), last @ last.T, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(window.gram, window.updates @ window.updates.T, rtol=1e-10)
    np.testing.assert_allclose(
        gram.centred(gram.chronological(window)),
        (last - last.mean(0)) @ (last - last.mean(0)).T, rtol=1e-10, atol=1e-10,
    )  # fmt: skip


@pytest.mark.parametrize("s, k_star", [((10.0, 6.0, 5.5), 3), ((10.0, 3.0, 2.8), 1)])
def test_k_star_of_a_signal_plus_noise_stream(s, k_star):
    """u_t = sum_i s_i c_i(t) v_i + xi_t: sigma_j^2 = s_j^2 + sigma_xi^2 (j <= r) and
    sigma_xi^2 beyond (THEORY.md §5.2), to within the fluctuations O(sigma_xi^2 sqrt(W/P)) and
    O(s sigma_xi / sqrt(P)): 0.016 and 0.05 at P = 40,000, W = 10, sigma_xi = 1, s <= 10; the
    test allows 4 x 0.05. k* sits at the signal edge or inside the block, as the closed-form
    ratios say."""
    rng = np.random.default_rng(1)
    W, P, r = 10, 40_000, 3
    C = np.linalg.qr(rng.standard_normal((W, r)))[0]
    V = np.linalg.qr(rng.standard_normal((P, r)))[0]
    U = C @ np.diag(s) @ V.T + rng.standard_normal((W, P)) / np.sqrt(P)
    edge = gram.spectral_edge(U)
    expected = np.concatenate([np.square(s) + 1, np.ones(W - r)])
    np.testing.assert_allclose(np.asarray(edge.singular_values) ** 2, expected, atol=0.05 * 4)
    ratios = np.sqrt(expected[:-1] / expected[1:])
    assert int(edge.k_star) == k_star == int(np.argmax(ratios)) + 1
    assert float(edge.gap_ratio) == pytest.approx(ratios.max(), rel=0.05)
    assert bool(edge.significant)  # far above 1 + 2 sqrt(W/P)


def test_centred_window_ignores_its_structural_zero_and_drops_the_drift():
    """A common drift d plus two signal directions and noise, pushed through a float32 window
    (tau = 1e-3), as in a training loop. Raw, the drift is the edge (k* = 1). Centred from the
    Gram matrix, the rank is W - 1 and sigma_W is float rounding of the drift's energy
    (eps ||d||^2 W ~ 3e-3, so sigma_W / sigma_1 ~ 1e-2 > tau, a spurious k* = W - 1 for this
    seed unless the structural zero is dropped): k* must be the signal block's edge, 2, with
    R* = sqrt(s_2^2 + 1) to 5 % (fluctuations O(s / sqrt(P)) as in the stream test)."""
    rng = np.random.default_rng(3)
    W, P = 10, 40_000
    courses = rng.standard_normal((W, 2))
    C = np.linalg.qr(courses - courses.mean(0))[0]  # orthogonal to the drift's constant course
    V = np.linalg.qr(rng.standard_normal((P, 3)))[0]
    U = 50 * np.ones((W, 1)) @ V[:, :1].T + C @ np.diag([6.0, 5.0]) @ V[:, 1:].T
    U = U + rng.standard_normal((W, P)) / np.sqrt(P)
    window = gram.init(W, P, jnp.float32)
    for u in U:
        window = gram.push(window, jnp.asarray(u, jnp.float32))
    assert int(gram.spectral_edge_from_gram(window.gram).k_star) == 1
    edge = gram.spectral_edge_from_gram(gram.centred(window.gram), P=P, centred=True)
    assert int(edge.k_star) == 2
    assert float(edge.gap_ratio) == pytest.approx(np.sqrt(26.0), rel=0.05)
    assert float(edge.null_ratio) == pytest.approx(gram.mp_edge(W - 1, P))
    direct = gram.spectral_edge(U, centre=True)  # float64, from the window itself
    assert int(direct.k_star) == 2


@pytest.mark.slow
def test_marchenko_pastur_null_edge():
    """Noise-only windows W = 400, P = 4000: sigma_1 / sigma_W over 20 draws against
    (1 + sqrt(W/P)) / (1 - sqrt(W/P)) = 1.925, within the Tracy-Widom finite-size scale
    W^(-2/3) (5 %) plus 4 SEM."""
    W, P = 400, 4000
    keys = jax.random.split(jax.random.key(2), 20)
    ratio = jax.vmap(
        lambda k: (lambda e: e.singular_values[0] / e.singular_values[-1])(
            gram.spectral_edge(jax.random.normal(k, (W, P)) / jnp.sqrt(P))
        )
    )(keys)
    edge = gram.mp_edge(W, P)
    assert abs(float(ratio.mean()) - edge) < W ** (-2 / 3) * edge + 4 * float(fit.sem(ratio))


def test_adiabatic_quantities_match_their_p_by_p_definitions():
    """A's numerator ||Sigma_(t+1) - Sigma_t||_F from W-sized inner products equals the P x P
    computation; A_rel divides by ||Sigma_t||_F; A_rot is the largest principal angle's sine
    between the top-k* right singular subspaces (scipy.linalg.subspace_angles)."""
    rng = np.random.default_rng(3)
    W, P = 5, 30
    updates = rng.standard_normal((W + 1, P)) * np.array([3, 2, 1, 1, 1, 1.0])[:, None]
    window = _pushed(updates, W)
    out = gram.adiabatic(window, lr=0.1, grad_norm2=2.0)
    old, new = updates[:W], updates[1:]
    d_sigma = new.T @ new - old.T @ old
    assert float(out["change"]) == pytest.approx(np.linalg.norm(d_sigma), rel=1e-10)
    assert float(out["paper"]) == pytest.approx(np.linalg.norm(d_sigma) / 0.2, rel=1e-10)
    assert float(out["rel"]) == pytest.approx(
        np.linalg.norm(d_sigma) / np.linalg.norm(old.T @ old), rel=1e-10
    )
    k = int(gram.spectral_edge(old).k_star)
    top = lambda u: np.linalg.svd(u, full_matrices=False)[2][:k].T  # noqa: E731
    angle = scipy.linalg.subspace_angles(top(old), top(new)).max()
    assert float(out["rot"]) == pytest.approx(np.sin(angle), rel=1e-8, abs=1e-10)


def test_push_runs_under_jit_and_vmap_on_pytrees():
    """A vmapped batch of windows fed by flattened parameter pytrees (a training loop's use)."""
    tree = dict(w=jnp.ones((4, 3)), b=jnp.arange(3.0))
    flat = gram.ravel(tree)
    assert flat.shape == (15,)
    windows = jax.vmap(lambda _: gram.init(3, 15, jnp.float64))(jnp.arange(4))
    step = jax.jit(jax.vmap(gram.push))
    for t in range(5):
        windows = step(windows, jnp.stack([flat * (t + i) for i in range(4)]))
    assert windows.gram.shape == (4, 3, 3) and int(windows.count[0]) == 5


def test_read_out_agrees_under_nested_vmap_and_batch_axes():
    """The read-out calls LAPACK one matrix at a time on CPU (a jaxlib thread-pool deadlock,
    gram._one_at_a_time); under two vmaps, with leading batch axes and with neither, it gives
    the same k*, R* and singular values as NumPy's eigvalsh (float64, 1e-10)."""
    rng = np.random.default_rng(5)
    U = rng.standard_normal((3, 2, 6, 40)) * np.array([4, 2, 1, 1, 1, 1.0])[:, None]
    grams = U @ np.swapaxes(U, -1, -2)
    nested = jax.jit(jax.vmap(jax.vmap(gram.spectral_edge_from_gram)))(grams)
    batched = gram.spectral_edge_from_gram(grams)
    single = gram.spectral_edge_from_gram(grams[1, 0])
    sigma = np.sqrt(np.linalg.eigvalsh(grams)[..., ::-1])
    for edge in (nested, batched):
        np.testing.assert_allclose(edge.singular_values, sigma, rtol=1e-10)
        np.testing.assert_array_equal(edge.k_star, nested.k_star)
    np.testing.assert_allclose(single.gap_ratio, nested.gap_ratio[1, 0], rtol=1e-10)
    assert int(single.k_star) == int(np.argmax(sigma[1, 0, :-1] / sigma[1, 0, 1:])) + 1


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: gram.init(1, 10), "W"),
        (lambda: gram.spectral_edge(np.ones((1, 5))), "W >= 2"),
        (lambda: gram.spectral_edge(np.ones((2, 5)), centre=True), "W >= 3"),
        (lambda: gram.spectral_edge(np.eye(3), tau=0.0), "tau"),
        (lambda: gram.mp_edge(10, 5), "P"),
    ],
)
def test_bad_input_is_rejected(call, message):
    with unchecked(), pytest.raises(ValueError, match=message):
        call()


def test_grokking_detector_on_hand_made_curves():
    """Three runs: train fits at step 100 and test follows at 3000 (an event, delay 2900);
    both together at 200 (no event: generalised while fitting); test never reaches 0.95."""
    from spectral_sim.diagnostics import grokking

    steps = np.arange(0, 5001, 100)
    train = np.stack([np.where(steps >= 100, 1.0, 0.5), np.where(steps >= 200, 1.0, 0.5),
                      np.where(steps >= 100, 1.0, 0.5)])  # fmt: skip
    test = np.stack([np.where(steps >= 3000, 0.99, 0.1), np.where(steps >= 200, 0.97, 0.1),
                     np.full(steps.shape, 0.6)])  # fmt: skip
    found = grokking.event(train, test, steps, threshold=0.95, delay=1000)
    np.testing.assert_array_equal(found.grokked, [True, False, False])
    np.testing.assert_array_equal(found.step, [3000, -1, -1])
    np.testing.assert_array_equal(found.delay, [2900, -1, -1])
    np.testing.assert_array_equal(found.fit_step, [100, 200, 100])
    # fitting to 0.99 first (train accuracy 0.97 from step 100, 1 from 1500 in the first run):
    # the plateau starts at 1500
    train[0] = np.where(steps >= 1500, 1.0, np.where(steps >= 100, 0.97, 0.5))
    found = grokking.event(train, test, steps, threshold=0.95, delay=1000, fit_threshold=0.99)
    np.testing.assert_array_equal(found.fit_step, [1500, 200, 100])
    np.testing.assert_array_equal(found.delay, [1500, -1, -1])
    for bad in (dict(threshold=1.5), dict(fit_threshold=0.0)):
        with pytest.raises(ValueError, match=next(iter(bad))):
            grokking.event(train, test, steps, **bad)
