"""Compression operations on trained linear, ridge, random-feature and evolution models, and the
import layering that keeps diagnostics free of the models that import them."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import RTOL
from hypothesis import given
from hypothesis import strategies as st

from spectral_sim import PowerLaw, simulate, theory
from spectral_sim.diagnostics import compression
from spectral_sim.models import evolution, linear, random_features, ridge

SPECTRUM = PowerLaw(s=2.0, a=2.5, n_modes=24)
N_SEEDS = 4096
# |Monte Carlo mean - expectation| / SEM: P(|z| > 5) = 5.7e-7 for N(0, 1).
Z_MAX = 5.0


@pytest.fixture(scope="module")
def models():
    """(name, params, final state, the model's own recorded loss) for each core model."""
    key = jax.random.key(0)
    out = []
    lin = linear.Params(SPECTRUM, lr=0.3, batch=4)
    state, obs = simulate.trajectory(linear, lin, key, n_records=1, every=200)
    out.append(("linear", lin, state, obs.loss[-1]))
    rid = ridge.Params(SPECTRUM, ridge=0.1, n_samples=16)
    state, obs = simulate.trajectory(ridge, rid, key, n_records=1, every=100)
    out.append(("ridge", rid, state, obs.loss[-1]))
    rf = random_features.Params(SPECTRUM, lr=0.2, n_features=12, batch=2)
    state, obs = simulate.trajectory(random_features, rf, key, n_records=1, every=200)
    out.append(("random_features", rf, state, obs.loss[-1]))
    evo = evolution.Params(SPECTRUM, rho=0.5, init=0.05, lr=0.3)
    for model in (evolution.preconditioned, evolution.diagonal):
        state, obs = simulate.trajectory(model, evo, None, n_records=1, every=100)
        out.append(("evolution", evo, state, obs.loss[-1]))
    return out


@pytest.mark.slow
def test_trained_reproduces_each_models_loss(models):
    for name, params, state, recorded in models:
        q, theta = compression.trained(params, state)
        np.testing.assert_allclose(compression.loss(q, theta), recorded, rtol=RTOL["float64"])
        assert (q.features is None) == (name != "random_features")


def test_trained_rejects_other_states():
    with pytest.raises(TypeError, match="trained"):
        compression.trained(linear.Params(SPECTRUM), ridge.State(*(jnp.zeros(2),) * 3))


def test_operations_on_random_features(models):
    """Truncation in H's eigenbasis keeps rank K, is the identity at K = dim and zero at K = 0;
    its loss change obeys the perturbation identity delta^T grad + 1/2 delta^T H delta."""
    _, params, state, _ = models[2]
    q, theta = compression.trained(params, state)
    h, vectors = compression.eigenbasis(q)
    assert np.all(np.diff(np.asarray(h)) <= 1e-12)
    np.testing.assert_allclose(compression.truncate(q, theta, K=12), theta, rtol=1e-10)
    np.testing.assert_array_equal(compression.truncate(q, theta, K=0), 0.0)
    kept = compression.truncate(q, theta, K=5)
    np.testing.assert_allclose((kept @ vectors)[5:], 0.0, atol=1e-12)
    delta = kept - theta
    hess = compression.hessian(q)
    grad = jax.grad(lambda th: compression.loss(q, th))(theta)
    identity = delta @ grad + 0.5 * delta @ hess @ delta
    change = compression.loss(q, kept) - compression.loss(q, theta)
    np.testing.assert_allclose(change, identity, rtol=1e-9)


def test_dithered_quantization_of_random_features_costs_trace_h(models, key):
    """E Delta L = (Delta^2 / 24) tr(F^T Sigma F) for the readout's dithered quantisation."""
    _, params, state, _ = models[2]
    q, theta = compression.trained(params, state)
    step = 0.1
    dithered = jax.vmap(lambda k: compression.dither(theta, k, step=step))(
        jax.random.split(key, N_SEEDS)
    )
    change = compression.loss(q, dithered) - compression.loss(q, theta)
    expected = step**2 / 24 * jnp.trace(compression.hessian(q))
    z = (change.mean() - expected) / (change.std(ddof=1) / np.sqrt(N_SEEDS))
    assert abs(float(z)) < Z_MAX


def test_rotation_preserves_the_loss_and_dither_cost(key):
    q = compression.Quadratic(SPECTRUM)
    theta = jax.random.normal(key, (24,))
    rotated, phi = compression.rotate(q, theta, jax.random.key(1))
    np.testing.assert_allclose(
        compression.loss(rotated, phi), compression.loss(q, theta), rtol=RTOL["float64"]
    )
    np.testing.assert_allclose(
        jnp.trace(compression.hessian(rotated)),
        jnp.sum(SPECTRUM.eigenvalues()),
        rtol=RTOL["float64"],
    )
    # Spectral truncation is basis-free: truncating phi in H's eigenbasis is truncating theta.
    np.testing.assert_allclose(
        compression.loss(rotated, compression.truncate(rotated, phi, K=7)),
        compression.loss(q, compression.truncate(q, theta, K=7)),
        rtol=1e-9,
    )


@pytest.mark.parametrize("s, a", [(2.0, 3.0), (3.0, 1.5)])
def test_saliency_is_truncation_and_magnitude_is_only_when_a_exceeds_s(s, a):
    """On the GF model saliency lambda_k w_k^2 = k^-a (1 - exp(-lambda_k t))^2 decreases in k for
    any (s, a), so keeping the K most salient modes is keeping modes 1..K; |w_k| decreases in k
    iff a > s (THEORY.md §6.1). For a < s the learned modes' |w_k| = k^((s-a)/2) rises, so
    magnitude pruning at K < k*(t) = 300^(1/s) ~ 6.7 keeps the wrong modes; beyond k* the
    unlearned tail |w_k| ~ t k^(-(a+s)/2) decreases again and the kept sets coincide."""
    spectrum = PowerLaw(s=s, a=a, n_modes=200)
    params = linear.Params(spectrum)
    state, _ = linear.gf(params, jnp.asarray([300.0]))
    q, theta = compression.trained(params, linear.State(state.v[0], state.t[0]))
    for K in (3, 20, 150):
        truncated = compression.truncate(q, theta, K=K)
        salient = compression.prune(q, theta, K=K, criterion="saliency")
        np.testing.assert_array_equal(salient, truncated)
        magnitude = compression.prune(q, theta, K=K, criterion="magnitude")
        if a > s or K > 300 ** (1 / s):
            np.testing.assert_array_equal(magnitude, truncated)
        else:
            assert compression.loss(q, magnitude) > compression.loss(q, truncated)


def test_weight_basis_pruning_of_a_rotated_model_is_not_truncation(key):
    spectrum = PowerLaw(s=2.0, a=3.0, n_modes=64)
    params = linear.Params(spectrum)
    state, _ = linear.gf(params, jnp.asarray([100.0]))
    q, theta = compression.trained(params, linear.State(state.v[0], state.t[0]))
    rotated, phi = compression.rotate(q, theta, key)
    base = compression.loss(q, compression.truncate(q, theta, K=8))
    for criterion in ("magnitude", "saliency"):
        pruned = compression.prune(rotated, phi, K=8, criterion=criterion, basis="weight")
        assert compression.loss(rotated, pruned) > 2 * base


@given(x=st.lists(st.floats(-10.0, 10.0), min_size=1, max_size=20), step=st.floats(0.01, 3.0))
def test_quantize_rounds_to_the_grid_and_zeroes_below_half_a_step(x, step):
    theta = jnp.asarray(x)
    out = np.asarray(compression.quantize(theta, step=step))
    assert np.all(np.abs(out - np.asarray(x)) <= step / 2 * (1 + 1e-12))
    np.testing.assert_allclose(out / step, np.round(out / step), atol=1e-9)
    assert np.all(out[np.abs(np.asarray(x)) < step / 2 * (1 - 1e-12)] == 0)


@pytest.mark.slow_cases
@pytest.mark.parametrize("format", compression.FLOAT_FORMATS)
def test_round_to_is_round_to_nearest_with_saturation(format):
    dtype = jnp.dtype(getattr(jnp, format))
    info = jnp.finfo(dtype)
    u = compression.unit_roundoff(format)
    assert u == float(info.eps) / 2
    x = jnp.geomspace(float(info.smallest_normal), float(info.max) / 2, 500)
    out = compression.round_to(x, format=format)
    assert out.dtype == x.dtype
    assert float(jnp.max(jnp.abs(out - x) / x)) <= u * (1 + 1e-12)
    np.testing.assert_array_equal(compression.round_to(out, format=format), out)  # idempotent
    assert np.all(np.abs(out - x) <= compression.ulp(x, format=format) / 2)
    # from float32 (exactly representable in float64, so one rounding either way) the
    # emulation equals the hardware cast
    x32 = jnp.asarray(x, jnp.float32)
    cast = jnp.clip(x32, -float(info.max), float(info.max)).astype(dtype).astype(jnp.float32)
    np.testing.assert_array_equal(compression.round_to(x32, format=format), cast)
    relative = np.asarray(compression.ulp(x, format=format) / x)  # x in [2^e, 2^(e+1))
    assert np.all((relative > u * (1 - 1e-12)) & (relative <= 2 * u * (1 + 1e-12)))
    big = compression.round_to(jnp.array([-10 * float(info.max), 10 * float(info.max)]),
                               format=format)  # fmt: skip
    np.testing.assert_array_equal(big, [-float(info.max), float(info.max)])
    tiny = compression.round_to(jnp.array([float(info.smallest_subnormal) / 3]), format=format)
    np.testing.assert_array_equal(tiny, 0.0)  # flushed: pruning


def test_operations_vmap_over_k_and_keys_in_float32(key):
    q = compression.Quadratic(PowerLaw(s=jnp.float32(2.0), a=jnp.float32(2.0), n_modes=16))
    theta = jnp.ones(16, jnp.float32)
    kept = jax.jit(jax.vmap(lambda k: compression.prune(q, theta, K=k)))(jnp.arange(17))
    np.testing.assert_array_equal(kept.sum(axis=-1), np.arange(17))
    noisy = jax.vmap(lambda k: compression.relative_noise(theta, k, u=0.01))(
        jax.random.split(key, 3)
    )
    chex.assert_type((kept, noisy, compression.round_to(theta, format="bfloat16")), jnp.float32)


@pytest.mark.parametrize(
    "call, field",
    [
        (lambda q, th: compression.truncate(q, th, K=17), "K"),
        (lambda q, th: compression.prune(q, th, K=-1), "K"),
        (lambda q, th: compression.prune(q, th, K=2, criterion="size"), "criterion"),
        (lambda q, th: compression.prune(q, th, K=2, basis="neuron"), "basis"),
        (lambda q, th: compression.quantize(th, step=0.0), "step"),
        (lambda q, th: compression.dither(th, jax.random.key(0), step=-1.0), "step"),
        (lambda q, th: compression.round_to(th, format="fp4"), "format"),
        (lambda q, th: compression.relative_noise(th, jax.random.key(0), u=0.0), "u"),
    ],
)
def test_bad_input_names_the_field(call, field):
    q = compression.Quadratic(PowerLaw(s=2.0, a=2.0, n_modes=16))
    with pytest.raises(ValueError, match=f"^{field} must"):
        call(q, jnp.ones(16))


def test_theory_and_operations_agree_on_the_dither_predictor():
    """theory.dithered_quantization_loss is (Delta^2/24) tr H with H = Sigma."""
    q = compression.Quadratic(SPECTRUM)
    np.testing.assert_allclose(
        theory.dithered_quantization_loss(SPECTRUM, step=0.3),
        0.3**2 / 24 * jnp.trace(compression.hessian(q)),
        rtol=RTOL["float64"],
    )


def test_per_mode_steps_broadcast_over_batched_theta(key):
    theta = jax.random.normal(key, (3, 24))
    step = compression.ulp(theta[0], format="bfloat16")
    np.testing.assert_array_equal(
        compression.quantize(theta, step=step)[1], compression.quantize(theta[1], step=step)
    )
    assert compression.dither(theta, key, step=step).shape == (3, 24)


def test_round_to_rounds_float64_once():
    """1 + 2^-8 + 2^-30 is above the midpoint 1 + 2^-8 between bfloat16's 1 and 1 + 2^-7, so
    it rounds up; a cast through float32 would first drop 2^-30 and then round the tie to
    even (down to 1)."""
    out = compression.round_to(jnp.array([1 + 2**-8 + 2**-30]), format="bfloat16")
    np.testing.assert_array_equal(out, [1 + 2**-7])


def test_per_mode_dither_steps_cost_their_weighted_sum(key):
    """A per-mode step (e.g. a float format's spacing at each weight) costs
    sum_k lambda_k Delta_k^2 / 24 in expectation."""
    q = compression.Quadratic(SPECTRUM)
    theta = SPECTRUM.target() * 0.9
    step = compression.ulp(theta, format="float8_e4m3fn")
    change = jax.vmap(lambda k: compression.loss(q, compression.dither(theta, k, step=step)))(
        jax.random.split(key, N_SEEDS)
    ) - compression.loss(q, theta)
    expected = theory.dithered_quantization_loss(SPECTRUM, step=step)
    np.testing.assert_allclose(expected, jnp.sum(SPECTRUM.eigenvalues() * step**2) / 24)
    z = (change.mean() - expected) / (change.std(ddof=1) / np.sqrt(N_SEEDS))
    assert abs(float(z)) < Z_MAX
