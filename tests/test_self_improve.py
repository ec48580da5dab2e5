"""The self-consuming loop simulator (models.self_improve): subsample, verifier, power-law data,
minimum-norm fits against NumPy's lstsq, the subsample draw and its cost, and bad input; the
closed forms are checked in test_self_improve_theory."""

import functools
import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import unchecked
from hypothesis import given
from hypothesis import strategies as st

from spectral_sim import PowerLaw, fit, simulate, theory
from spectral_sim.models import self_improve
from spectral_sim.theory import self_improve as closed


def _runs(params, seeds=4000, field="error"):
    def run(key):
        return getattr(
            simulate.trajectory(self_improve, params, key, n_records=params.generations)[1], field
        )

    return np.asarray(jax.jit(jax.vmap(run))(jax.random.split(jax.random.key(1), seeds)))


@pytest.mark.slow
def test_subsample_on_a_fixed_design_follows_kappa_n():
    """Accumulate-subsample on a fixed design at T / d = 33: kappa_n sigma^2 d / (T - d - 1)
    (THEORY.md §4.2 [A]) within its quoted finite-size error, 2 %, plus 4 SEM."""
    params = self_improve.Params(dim=3, samples=100, generations=10, regime="subsample",
                                 design="fixed")  # fmt: skip
    errors = _runs(params)
    predicted = np.asarray(closed.subsample_error(d=3, noise=1.0, generations=10, T=100))
    mean, sem = errors.mean(0), np.asarray(fit.sem(errors, axis=0))
    assert np.all(np.abs(mean - predicted) <= 0.02 * predicted + 4 * sem)
    accumulate = closed.fixed_design_error(
        regime="accumulate", d=3, noise=1.0, generations=10, T=100
    )
    assert mean[-1] > 1.5 * float(accumulate[-1])  # about 1.8x the accumulate limit


@pytest.mark.slow
def test_power_law_inputs_keep_the_isotropic_ols_risk():
    """OLS is affine-equivariant: on Sigma = diag(k^-1.5) the risk ||w - w*||^2_Sigma of the
    replace loop is n sigma^2 d / (T - d - 1), as for isotropic data."""
    spectrum = PowerLaw(s=1.5, a=2.0, n_modes=4)
    params = self_improve.Params(dim=4, samples=12, generations=5, spectrum=spectrum)
    risk = _runs(params, seeds=20_000, field="risk")
    predicted = np.asarray(
        theory.collapse_error(regime="replace", d=4, noise=1.0, generations=5, T=12)
    )
    sem = np.asarray(fit.sem(risk, axis=0))
    assert np.all(np.abs(risk.mean(0) - predicted) < fit.z_simultaneous(5) * sem)


@pytest.mark.slow
def test_a_verifier_is_the_external_signal():
    """Accumulate with a perfect verifier (threshold sigma) ends below the unverified loop and
    below generation 1; with accuracy 0 it keeps a fair-coin half of the synthetic rows."""
    base = dict(dim=4, samples=20, generations=8, regime="accumulate", verify=True)
    plain = _runs(self_improve.Params(**(base | dict(verify=False))))
    checked = _runs(self_improve.Params(**base, verifier=1.0, threshold=0.5))
    assert checked[:, -1].mean() < plain[:, -1].mean() - 5 * float(fit.sem(checked[:, -1]))
    assert checked[:, -1].mean() < checked[:, 0].mean()
    share = _runs(self_improve.Params(**base, verifier=0.0), seeds=500, field="accepted")
    # Generation 1 is real (all kept); afterwards a fair coin keeps Binomial(20, 1/2) / 20.
    assert share[:, 0] == pytest.approx(1.0)
    assert abs(share[:, 1:].mean() - 0.5) < 4 * np.sqrt(0.25 / (20 * share[:, 1:].size))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(n_real=30.0), "n_real"),
        (dict(verifier=1.5), "verifier"),
        (dict(noise=-1.0), "noise"),
        (dict(regime="recycle"), "regime"),
        (dict(design="random"), "design"),
        (dict(sizes=np.ones(3) * 10), "sizes"),
        (dict(sizes=np.full(4, 30.0)), "sizes"),
        (dict(n_samples=21.0), "n_samples"),
        (dict(n_samples=0.0), "n_samples"),
        (dict(n_samples=10.0, sizes=np.full(4, 10.0)), "not both"),
        (dict(spectrum=PowerLaw(s=1.0, a=2.0, n_modes=3)), "n_modes"),
        (dict(generations=0), "generations"),
        (dict(learner="adam"), "learner"),
        (dict(learner="sgd", lr=0.0), "lr"),
        (dict(learner="sgd", ridge=0.1), "ridge"),
    ],
)
def test_bad_input_is_rejected_before_tracing(kwargs, message):
    with unchecked(), pytest.raises(ValueError, match=message):
        self_improve.Params(**(dict(dim=5, samples=20, generations=4) | kwargs))


def test_sgd_generation_one_is_the_exact_one_pass_recursion():
    """learner='sgd' trains from w = 0 by one pass over T rows: generation 1's risk is twice
    theory.sgd_loss (the exact one-pass SGD recursion, B = 1) at T steps; later generations,
    fitted to their predecessor's labels, only get worse (replace)."""
    spectrum = PowerLaw(s=1.5, a=2.0, n_modes=6)
    params = self_improve.Params(
        dim=6, samples=40, generations=4, spectrum=spectrum, learner="sgd", lr=0.3, noise=0.1
    )
    risk = _runs(params, seeds=20_000, field="risk")
    loss = theory.sgd_loss(spectrum, lr=0.3, batch=1, noise=0.1, steps=np.array([40]))
    exact = 2 * float(loss[0])
    sem = np.asarray(fit.sem(risk, axis=0))
    assert abs(risk[:, 0].mean() - exact) < fit.z_simultaneous(1) * sem[0]
    assert np.all(np.diff(risk.mean(0)) > 3 * sem[1:])


@pytest.mark.slow
def test_sgd_accumulate_passes_over_every_row_so_far():
    """With accumulate, generation n's SGD pass sees n T rows: its first generation equals the
    replace loop's (same draws), and the buffer holds every row drawn."""
    base = dict(dim=3, samples=8, generations=3, learner="sgd", lr=0.2)
    state = self_improve.init(self_improve.Params(**base, regime="accumulate"), jax.random.key(0))
    assert state.buffer.shape == (24, 4)  # generations x samples rows of (x, y)
    acc = _runs(self_improve.Params(**base, regime="accumulate"), seeds=50)
    rep = _runs(self_improve.Params(**base, regime="replace"), seeds=50)
    np.testing.assert_allclose(acc[:, 0], rep[:, 0], rtol=1e-12)
    assert not np.allclose(acc[:, 1], rep[:, 1])


# --- minimum-norm least squares against NumPy ------------------------------------------------

EPS = np.finfo(np.float64).eps


def _range_condition(x: np.ndarray) -> float:
    """sigma_max^2 / sigma_min^2 over the nonzero singular values of x: the condition number of
    X^T X on its range, which bounds the relative error of a fit from the normal equations."""
    sigma = np.linalg.svd(x, compute_uv=False)
    sigma = sigma[sigma > sigma[0] * max(x.shape) * EPS]
    return float((sigma[0] / sigma[-1]) ** 2)


@pytest.mark.parametrize(
    "rows, distinct, zero",
    [(3, 3, 0), (6, 6, 0), (10, 10, 0), (12, 4, 0), (40, 7, 0), (30, 12, 10), (9, 9, 5)],
    ids=["T<d", "T=d-4", "T=d", "repeated", "many-repeated", "weight0", "T<d+weight0"],
)
def test_min_norm_is_numpy_lstsq(rows, distinct, zero):
    """min_norm(X^T W X, X^T W y) is np.linalg.lstsq's minimum-norm solution on the rows of
    weight 1 (float64, d = 10): fewer rows than d, as many, rows repeated (a fixed design's
    subsample) and rows of weight 0 with arbitrary values, which must change nothing. A fit from
    the normal equations is within a few d kappa eps of the exact one (kappa: the condition
    number of X^T X on its range), lstsq's within d sqrt(kappa) eps: 100 d kappa eps bounds both
    with room; a wrong null-space component would be O(1)."""
    rng = np.random.default_rng(rows * 100 + distinct)
    d = 10
    base = rng.standard_normal((distinct, d))
    x = base[rng.integers(0, distinct, rows)]
    x[:distinct] = base  # every distinct row once at least
    y = rng.standard_normal(rows)
    weight = np.ones(rows)
    weight[rng.permutation(rows)[:zero]] = 0.0
    x[weight == 0] *= 1e3  # large values: a weight-0 row must add exactly nothing
    gram, moment = (x * weight[:, None]).T @ x, x.T @ (weight * y)
    got = np.asarray(self_improve.min_norm(jnp.asarray(gram), jnp.asarray(moment), rows))
    kept = weight > 0
    expected = np.linalg.lstsq(x[kept], y[kept], rcond=None)[0]
    tolerance = 100 * d * _range_condition(x[kept]) * EPS
    assert np.linalg.norm(got - expected) <= tolerance * np.linalg.norm(expected)


def test_min_norm_with_a_ridge_is_the_ridge_solution():
    """G + delta I is positive definite: no pivot is dropped and K^-2 gives its inverse (T < d,
    so the ridge solution differs from the minimum-norm one)."""
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((4, 8)), rng.standard_normal(4)
    gram = x.T @ x + 0.3 * np.eye(8)
    got = self_improve.min_norm(jnp.asarray(gram), jnp.asarray(x.T @ y), 4)
    np.testing.assert_allclose(got, np.linalg.solve(gram, x.T @ y), rtol=1e-10)


def _replay(params: self_improve.Params, key) -> tuple[np.ndarray, float]:
    """The loop in NumPy (float64), each generation fitted by np.linalg.lstsq, on the
    simulator's own random numbers (its `_bits`, `_normal` and `_choose`, with the keys
    simulate.trajectory gives init and step t): the fits of every generation, (generations, d),
    and the largest condition number (`_range_condition`) of the rows they fitted."""
    n, d, regime = params.samples, params.dim, params.regime
    init_key, run_key = jax.random.split(key)
    w_star = np.full(d, d**-0.5)
    design = None
    if params.design == "fixed":
        words = self_improve._bits(jnp.float64, init_key, n * d)
        design = np.asarray(self_improve._normal(words, jnp.float64)).reshape(n, d)
    w, xs, ys, fits = w_star, [], [], []
    for g in range(params.generations):
        key_g = jax.random.fold_in(run_key, g)
        bits = self_improve._bits(jnp.float64, key_g, self_improve._words(params))
        if design is None:
            x = np.asarray(self_improve._normal(bits[: n * d], jnp.float64)).reshape(n, d)
            words = bits[n * d :]
        else:
            x, words = design, bits
        noise = np.sqrt(params.noise) * np.asarray(self_improve._normal(words[:n], jnp.float64))
        real = (g == 0) | ((regime == "mix") & (np.arange(n) < params.n_real))
        y = np.where(real, x @ w_star, x @ w) + noise
        fit_x, fit_y = x, y
        if regime in ("accumulate", "subsample"):
            xs.append(x)
            ys.append(y)
            fit_x, fit_y = np.concatenate(xs), np.concatenate(ys)
        if regime == "subsample":
            count = jnp.asarray(len(fit_y), jnp.int32)
            chosen = self_improve._choose(bits[-n:], count, jnp.asarray(n, jnp.int32),
                                          n * params.generations)  # fmt: skip
            fit_x, fit_y = fit_x[np.asarray(chosen)], fit_y[np.asarray(chosen)]
        w = np.linalg.lstsq(fit_x, fit_y, rcond=None)[0]
        fits.append((w, _range_condition(fit_x)))
    return np.stack([f[0] for f in fits]), max(f[1] for f in fits)


@pytest.mark.slow_cases
@pytest.mark.parametrize("design", ["fresh", "fixed"])
@pytest.mark.parametrize("regime", ["replace", "accumulate", "subsample", "mix"])
@pytest.mark.parametrize("samples", [4, 6], ids=["T<d", "T=d"])
def test_every_loop_fits_t_at_most_d_rows_as_lstsq_does(regime, design, samples):
    """T <= d rows per generation (d = 6), every loop and design: each generation's fit equals
    np.linalg.lstsq's on the rows it fitted (replayed in NumPy from the simulator's random
    numbers). Rounding differences (each fit within 100 d kappa eps of exact, as in
    test_min_norm_is_numpy_lstsq) add up over the generations without growing: labels pass
    through a projection. So 100 d G kappa eps ||w||, kappa the largest condition number met."""
    params = self_improve.Params(dim=6, samples=samples, generations=5, noise=0.5, regime=regime,
                                 design=design, n_real=2.0 if regime == "mix" else 0.0)  # fmt: skip
    key = jax.random.key(7)
    init_key, run_key = jax.random.split(key)
    state = self_improve.init(params, init_key)
    step = jax.jit(functools.partial(self_improve.step, params))
    fits = []
    for g in range(params.generations):
        state, obs = step(state, jax.random.fold_in(run_key, g))
        assert np.isfinite(obs.error)
        fits.append(np.asarray(state.w))
    expected, kappa = _replay(params, key)
    tolerance = 100 * params.dim * params.generations * kappa * EPS
    err = np.linalg.norm(np.stack(fits) - expected, axis=1) / np.linalg.norm(expected, axis=1)
    assert np.all(err <= tolerance), (err, tolerance)


@pytest.mark.slow
def test_t_equal_to_d_stays_finite_in_float32():
    """The case that gave 300 of 300 non-finite runs: subsample on a fixed design with
    T = d = 10, 100 generations, float32 (repeated rows make X^T X singular), and replace, which
    refused T = d. Every run stays finite and in float32."""
    for regime in ("subsample", "replace", "accumulate"):
        params = simulate.float32(self_improve.Params(dim=10, samples=10, generations=100,
                                                      regime=regime, design="fixed"))  # fmt: skip
        errors = _runs(params, seeds=64)
        assert errors.dtype == np.float32 and np.all(np.isfinite(errors)), regime


# --- the subsample draw ----------------------------------------------------------------------


@pytest.mark.slow_cases
@pytest.mark.parametrize("count, size", [(7, 3), (9, 2), (8, 7), (16, 3)])
def test_subsample_draws_every_subset_equally_often(count, size):
    """Floyd's algorithm with pointer doubling draws a uniform size-subset of range(count)
    (8 slots, the unused ones ignored; count past them too): 40,000 draws, every subset's
    frequency within z_simultaneous(subsets, both word widths) binomial standard errors of the
    uniform share, in 64- and 32-bit words (the normal approximation holds: >= 70 expected
    draws per subset)."""
    n = 40_000
    subsets = list(itertools.combinations(range(count), size))
    p = 1 / len(subsets)
    z_max = fit.z_simultaneous(2 * len(subsets))
    for unsigned in (jnp.uint64, jnp.uint32):
        bits = jax.random.bits(jax.random.key(count * 10 + size), (n, 8), unsigned)
        draw = jax.vmap(lambda b: self_improve._choose(b, jnp.int32(count), jnp.int32(size), 64))
        chosen = np.sort(np.asarray(jax.jit(draw)(bits))[:, :size], axis=1)
        assert np.all(np.diff(chosen, axis=1) > 0) and chosen.min() >= 0 and chosen.max() < count
        index = {s: i for i, s in enumerate(subsets)}
        counts = np.bincount([index[tuple(row)] for row in chosen], minlength=len(subsets))
        z = (counts - n * p) / math.sqrt(n * p * (1 - p))
        assert np.all(np.abs(z) < z_max), (unsigned, z)


@given(count=st.integers(1, 5_000), size=st.integers(1, 16), seed=st.integers(0, 2**31 - 1))
def test_subsample_draws_distinct_rows_of_the_buffer(count, size, seed):
    """The first min(size, count) numbers are distinct and in range(count), for any count (the
    buffer's fill) and any size up to the 16 slots."""
    size = min(size, count)
    bits = jax.random.bits(jax.random.key(seed), (16,), jnp.uint64)
    chosen = np.asarray(_choose_jit(bits, jnp.int32(count), jnp.int32(size)))[:size]
    assert len(set(chosen.tolist())) == size and chosen.min() >= 0 and chosen.max() < count


@jax.jit
def _choose_jit(bits, count, size):
    return self_improve._choose(bits, count, size, 5_000)


def _sort_widths(jaxpr) -> list[int]:
    """The lengths of the arrays every `sort` in a jaxpr (and in the loops' and branches'
    jaxprs inside it) sorts."""
    widths = []
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "sort":
            widths += [v.aval.shape[-1] for v in eqn.invars]
        for value in eqn.params.values():
            for sub in value if isinstance(value, tuple | list) else (value,):
                inner = getattr(sub, "jaxpr", sub)
                if hasattr(inner, "eqns"):
                    widths += _sort_widths(inner)
    return widths


@pytest.mark.slow_cases
@pytest.mark.parametrize("design", ["fixed", "fresh"])
def test_a_subsample_generation_costs_the_same_at_any_buffer_length(design):
    """Subsample keeps generations x samples rows, but a generation draws `samples` slot numbers
    and reads only those rows: the compiled step's flops are the same for 10 and 1,000
    generations, and nothing wider than samples is sorted. (The loop it replaces formed X^T W X
    over, and sorted, the whole buffer: 34 times the flops at 1,000 generations.)"""
    flops = []
    for generations in (10, 1000):
        params = self_improve.Params(dim=5, samples=20, generations=generations,
                                     regime="subsample", design=design)  # fmt: skip
        state = self_improve.init(params, jax.random.key(0))
        step = functools.partial(self_improve.step, params)
        compiled = jax.jit(step).lower(state, jax.random.key(1)).compile()
        flops.append(compiled.cost_analysis()["flops"])
        widths = _sort_widths(jax.make_jaxpr(step)(state, jax.random.key(1)).jaxpr)
        assert widths and max(widths) <= params.samples
    assert flops[1] == flops[0]
