"""Compression predictors (THEORY.md §6) against the compression operations applied to the
exact GF simulator, by Monte Carlo where they are expectations."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import RTOL
from hypothesis import given
from hypothesis import strategies as st

from spectral_sim import PowerLaw, theory
from spectral_sim.diagnostics import compression
from spectral_sim.models import linear

N_SEEDS = 4096
# |Monte Carlo mean - expectation| / SEM: P(|z| > 5) = 5.7e-7 for N(0, 1); a handful of
# comparisons per run keeps false alarms below 1e-5.
Z_MAX = 5.0
TIMES = np.array([0.0, 1.0, 30.0, 1e3, 1e5])
KEEP = np.array([0, 1, 5, 40, 255, 256])


def _gf(spectrum, t):
    """(Quadratic, theta) of the exact GF model at times t (leading records axis)."""
    params = linear.Params(spectrum)
    state, _ = linear.gf(params, jnp.asarray(t))
    return compression.trained(params, linear.State(state.v, state.t))


@pytest.mark.parametrize("s, a", [(2.0, 2.0), (1.5, 3.0), (3.0, 1.5)])
def test_prune_loss_is_the_truncated_models_loss_change(s, a):
    spectrum = PowerLaw(s=s, a=a, n_modes=256)
    q, theta = _gf(spectrum, TIMES)
    truncated = jax.vmap(lambda k: compression.truncate(q, theta, K=k))(jnp.asarray(KEEP))
    measured = compression.loss(q, truncated) - compression.loss(q, theta)[None]  # K, t
    predicted = theory.prune_loss(spectrum, t=TIMES[None], K=KEEP[:, None])
    # The simulated weights carry an absolute rounding error eps |w*_k|, so losses that
    # cancel down to ~1e-29 are only resolved to eps L(0) in absolute terms.
    atol = 1e-15 * float(jnp.sum(spectrum.target_power()))
    np.testing.assert_allclose(measured, predicted, rtol=RTOL["float64"], atol=atol)
    # Complementarity [E]: L + Delta L_prune is the pruned model's closed-form loss.
    np.testing.assert_allclose(
        compression.loss(q, truncated),
        theory.pruned_loss(spectrum, t=TIMES[None], K=KEEP[:, None]),
        rtol=RTOL["float64"],
        atol=atol,
    )
    total = theory.gf_loss(spectrum, TIMES)[None] + predicted
    np.testing.assert_allclose(
        total, theory.pruned_loss(spectrum, t=TIMES[None], K=KEEP[:, None]), rtol=RTOL["float64"]
    )


def test_complementarity_sum_decreases_to_the_tail_energy():
    spectrum = PowerLaw(s=2.0, a=2.0, n_modes=512)
    t = np.geomspace(1e-2, 1e7, 60)
    K = jnp.array([3, 30, 300])
    total = np.asarray(theory.pruned_loss(spectrum, t=t[:, None], K=K[None]))
    damage = np.asarray(theory.prune_loss(spectrum, t=t[:, None], K=K[None]))
    assert np.all(np.diff(total, axis=0) <= 0) and np.all(np.diff(damage, axis=0) >= 0)
    k = np.arange(1, 513)
    tail = np.array([0.5 * np.sum(k[k > K_] ** -2.0) for K_ in np.asarray(K)])
    # At t = 1e7 the kept modes' loss is below 1/2 sum_k exp(-2 t k^-2) k^-2 over k <= 300,
    # i.e. exp(-2e7 / 9e4) ~ 1e-97: the sum equals the tail energy to rounding.
    np.testing.assert_allclose(total[-1], tail, rtol=RTOL["float64"])


@pytest.mark.parametrize("s, a", [(2.0, 2.0), (1.5, 3.0)])
def test_prune_loss_regimes_within_their_bounds(s, a):
    """Early regime K >> k*: 1 - exp(-x) lies in [x - x^2/2, x] (x = 2 lambda t) and the sum
    over k > K lies between the integrals from K + 1 and from K, so
    Delta L / (t K^(1-e) / (e-1)), e = a + s, lies in
    [(1 - t lambda_(K+1)) ((1 + 1/K)^(1-e) - (M/K)^(1-e)), 1].
    Late regime K << k*: 1/2 sum_{k>K} k^-a exp(-2 lambda t) <= L(t) gives
    Delta L / (K^(1-a) / (2 (a-1))) in [(1 + 1/K)^(1-a) - (M/K)^(1-a) - 2 (a-1) K^(a-1) L(t), 1].
    Both intervals shrink to 1 in their regime, so a wrong constant or exponent falls out."""
    M = 2**16
    spectrum = PowerLaw(s=s, a=a, n_modes=M)
    K = np.array([100.0, 300.0, 1000.0])
    e = a + s
    t = 1e-2 * K**s  # k* = 0.1^(1/s) K << K
    early = np.asarray(theory.prune_loss(spectrum, t=t, K=K))
    ratio = early / np.asarray(theory.compression.prune_loss_early(spectrum, t=t, K=K))
    low = (1 - t * (K + 1) ** -s) * ((1 + 1 / K) ** (1 - e) - (M / K) ** (1 - e))
    assert np.all(ratio <= 1) and np.all(ratio >= low), (ratio, low)
    assert np.all(np.diff(np.abs(1 - ratio)) < 0)  # converges as K grows

    t = 1e2 * K**s  # k* = 100^(1/s) K >> K
    late = np.asarray(theory.prune_loss(spectrum, t=t, K=K))
    ratio = late / np.asarray(theory.compression.prune_loss_late(spectrum, K=K))
    loss = np.asarray(theory.gf_loss(spectrum, t))
    low = (1 + 1 / K) ** (1 - a) - (M / K) ** (1 - a) - 2 * (a - 1) * K ** (a - 1) * loss
    assert np.all(ratio <= 1) and np.all(ratio >= low), (ratio, low)


@given(
    s=st.floats(0.5, 3.0), a=st.floats(0.5, 4.0), scale=st.floats(1e-3, 10.0), seed=st.integers(0)
)
def test_perturbation_identity_is_exact(s, a, scale, seed):
    spectrum = PowerLaw(s=s, a=a, n_modes=64)
    kw, kd = jax.random.split(jax.random.key(seed % 2**31))
    w = jax.random.normal(kw, (3, 64), jnp.float64)
    delta = scale * jax.random.normal(kd, (3, 64), jnp.float64)
    q = compression.Quadratic(spectrum)
    direct = compression.loss(q, w + delta) - compression.loss(q, w)
    identity = theory.perturbation_loss(spectrum, w=w, delta=delta)
    scale_ = np.maximum(np.abs(direct), np.asarray(compression.loss(q, w)))
    np.testing.assert_array_less(np.abs(direct - identity), RTOL["float64"] * scale_ + 1e-300)


@pytest.mark.parametrize("t, step", [(1e2, 0.05), (1e4, 0.5)])
def test_dithered_quantization_matches_expectation(t, step, key):
    spectrum = PowerLaw(s=2.0, a=3.0, n_modes=128)
    q, theta = _gf(spectrum, [t])
    keys = jax.random.split(key, N_SEEDS)
    change = jax.vmap(lambda k: compression.loss(q, compression.dither(theta[0], k, step=step)))(
        keys
    ) - compression.loss(q, theta[0])
    expected = theory.dithered_quantization_loss(spectrum, step=step)
    z = (change.mean() - expected) / (change.std(ddof=1) / np.sqrt(N_SEEDS))
    assert abs(float(z)) < Z_MAX


@pytest.mark.parametrize("t", [3.0, 3e3])
def test_relative_noise_matches_the_relative_error_law(t, key):
    spectrum = PowerLaw(s=1.5, a=2.0, n_modes=128)
    q, theta = _gf(spectrum, [t])
    u = 0.01
    keys = jax.random.split(key, N_SEEDS)
    noisy = jax.vmap(lambda k: compression.relative_noise(theta[0], k, u=u))(keys)
    change = compression.loss(q, noisy) - compression.loss(q, theta[0])
    expected = theory.relative_perturbation_loss(spectrum, t=t, u=u)
    z = (change.mean() - expected) / (change.std(ddof=1) / np.sqrt(N_SEEDS))
    assert abs(float(z)) < Z_MAX


def test_relative_error_law_grows_and_saturates():
    spectrum = PowerLaw(s=2.0, a=2.0, n_modes=256)
    t = np.geomspace(1e-2, 1e8, 50)
    law = np.asarray(theory.relative_perturbation_loss(spectrum, t=t, u=0.1, c=0.5))
    assert np.all(np.diff(law) >= 0) and law[-1] > 100 * law[0]  # saturated at the end
    saturation = 0.5 * 0.5 * 0.1**2 * float(jnp.sum(spectrum.target_power()))
    np.testing.assert_allclose(law[-1], saturation, rtol=RTOL["float64"])


@pytest.mark.parametrize(
    "call, field",
    [
        (lambda sp: theory.prune_loss(sp, t=1.0, K=17), "K"),
        (lambda sp: theory.prune_loss(sp, t=1.0, K=-1), "K"),
        (lambda sp: theory.pruned_loss(sp, t=-1.0, K=3), "t"),
        (lambda sp: theory.dithered_quantization_loss(sp, step=0.0), "step"),
        (lambda sp: theory.relative_perturbation_loss(sp, t=1.0, u=-0.1), "u"),
        (lambda sp: theory.compression.prune_loss_late(sp, K=0), "K"),
        (lambda sp: theory.compression.prune_loss_early(sp, t=-1.0, K=2), "t"),
    ],
)
def test_bad_input_names_the_field(call, field):
    with pytest.raises(ValueError, match=f"^{field} must"):
        call(PowerLaw(s=2.0, a=2.0, n_modes=16))


def test_predictors_jit_and_vmap_over_exponents():
    def damage(s):
        return theory.prune_loss(PowerLaw(s=s, a=2.0, n_modes=64), t=10.0, K=4)

    s = jnp.array([1.5, 2.0, 3.0])
    batched = jax.jit(jax.vmap(damage))(s)
    np.testing.assert_allclose(batched, [damage(float(x)) for x in s], rtol=RTOL["float64"])
