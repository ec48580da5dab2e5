"""The closed forms of THEORY.md §4.2 against Monte Carlo runs of models.self_improve (z-scores
with the computed SEM, Bonferroni over every generation of every regime) and their invariants."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import unchecked
from hypothesis import given, settings
from hypothesis import strategies as st

from spectral_sim import fit, simulate, theory
from spectral_sim.models import self_improve
from spectral_sim.theory import self_improve as closed

D, T, G, SEEDS = 5, 12, 8, 20_000
SIZES = (8.0, 9.0, 10.0, 12.0, 12.0, 12.0, 12.0, 12.0)


def _monte_carlo(params: self_improve.Params, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    def run(key):
        return simulate.trajectory(self_improve, params, key, n_records=G)[1].error

    errors = jax.jit(jax.vmap(run))(jax.random.split(jax.random.key(seed), SEEDS))
    return np.asarray(errors.mean(0)), np.asarray(fit.sem(errors, axis=0))


CASES = {
    "replace": (dict(regime="replace"), lambda: theory.collapse_error(
        regime="replace", d=D, noise=1.0, generations=G, T=T)),
    "accumulate": (dict(regime="accumulate"), lambda: theory.collapse_error(
        regime="accumulate", d=D, noise=1.0, generations=G, T=T)),
    "mix": (dict(regime="mix", n_real=6.0), lambda: theory.collapse_error(
        regime="mix", d=D, noise=1.0, generations=G, T_real=6, T_synth=6)),
    "growing": (dict(regime="replace", sizes=np.array(SIZES)), lambda: theory.collapse_error(
        regime="growing", d=D, noise=1.0, generations=G, T_seq=SIZES)),
    "fixed_replace": (dict(regime="replace", design="fixed"), lambda: closed.fixed_design_error(
        regime="replace", d=D, noise=1.0, generations=G, T=T)),
    "fixed_accumulate": (dict(regime="accumulate", design="fixed"),
                         lambda: closed.fixed_design_error(
                             regime="accumulate", d=D, noise=1.0, generations=G, T=T)),
}  # fmt: skip


@pytest.mark.slow_cases
@pytest.mark.parametrize("case", list(CASES))
def test_closed_forms_match_monte_carlo(case):
    """Every generation within z_simultaneous(all generations of all cases) SEMs (T - d - 3 = 4
    > 0, so the OLS error has a finite variance and the SEM is meaningful)."""
    kwargs, predict = CASES[case]
    mean, sem = _monte_carlo(self_improve.Params(dim=D, samples=T, generations=G, **kwargs))
    z = (mean - np.asarray(predict())) / sem
    assert np.all(np.abs(z) < fit.z_simultaneous(len(CASES) * G)), (case, z)


@pytest.mark.slow  # Monte Carlo, 20,000 draws per case (13 s)
def test_mixing_coefficient_is_exact():
    """c = E||S^-1 B||_F^2 / d against 20,000 direct draws per (d, T_real, T_synth), and its
    exact endpoints and large-T limit."""
    cases = [(5, 10, 10), (10, 15, 30), (4, 20, 6)]
    z_max = fit.z_simultaneous(len(cases))
    for i, (d, t_real, t_synth) in enumerate(cases):
        keys = jax.random.split(jax.random.key(i), 20_000)

        def draw(key, d=d, t_real=t_real, t_synth=t_synth):
            a, b = jax.random.split(key)
            real = jax.random.normal(a, (t_real, d))
            synth = jax.random.normal(b, (t_synth, d))
            m = jnp.linalg.solve(real.T @ real + synth.T @ synth, synth.T @ synth)
            return jnp.sum(m**2) / d

        values = jax.jit(jax.vmap(draw))(keys)
        exact = float(closed.mixing_coefficient(d, t_real, t_synth))
        assert abs(float(values.mean()) - exact) < z_max * float(fit.sem(values)), (d, exact)
        assert exact > float(closed.mixing_coefficient_limit(t_real, t_synth))  # finite-T excess
    assert float(closed.mixing_coefficient(6, 0, 20)) == pytest.approx(1.0, rel=1e-12)
    assert float(closed.mixing_coefficient(6, 20, 0)) == 0.0
    big = float(closed.mixing_coefficient(4, 3e6, 1e6))
    assert big == pytest.approx(0.0625, rel=1e-5)  # -> (T_synth / T)^2, O(d / T) away


def test_regimes_agree_where_they_coincide():
    """mix without real rows is replace; growing with a constant size is replace; the mixing
    sequence tends to its fixed point."""
    replace = theory.collapse_error(regime="replace", d=4, noise=0.5, generations=6, T=20)
    mix = theory.collapse_error(regime="mix", d=4, noise=0.5, generations=6, T_real=0, T_synth=20)
    grow = theory.collapse_error(regime="growing", d=4, noise=0.5, generations=6, T_seq=[20] * 6)
    np.testing.assert_allclose(mix, replace, rtol=1e-12)
    np.testing.assert_allclose(grow, replace, rtol=1e-12)
    long = theory.collapse_error(regime="mix", d=4, noise=0.5, generations=400, T_real=10,
                                 T_synth=10)  # fmt: skip
    limit = closed.mix_fixed_point(d=4, noise=0.5, T_real=10, T_synth=10)
    assert float(long[-1]) == pytest.approx(float(limit), rel=1e-10)


@settings(max_examples=60, deadline=None)
@given(d=st.integers(1, 30), extra=st.floats(1.01, 200.0), noise=st.floats(0.01, 10.0))
def test_accumulate_is_non_decreasing_and_bounded(d, extra, noise):
    """E_n = sigma^2 d sum 1/(i (i T - d - 1)) increases and stays below (pi^2/6) E_1."""
    T = d + 1 + extra
    errors = np.asarray(
        theory.collapse_error(regime="accumulate", d=d, noise=noise, generations=50, T=T)
    )
    bound = float(closed.accumulate_bound(d=d, noise=noise, T=T))
    assert np.all(np.diff(errors) >= 0)
    assert errors[-1] <= bound * (1 + 1e-12)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(regime="replace", T=6), "T"),
        (dict(regime="accumulate", T=12, noise=-1.0), "noise"),
        (dict(regime="replace", T=12, generations=0), "generations"),
        (dict(regime="mix", T_real=2, T_synth=3), "T_real"),
        (dict(regime="mix", T_real=-1, T_synth=12), "T_real"),
        (dict(regime="mix"), "T_real and T_synth"),
        (dict(regime="growing", T_seq=[12, 12]), "T_seq"),
        (dict(regime="growing", T_seq=[12, 12, 5]), "T_seq"),
        (dict(regime="recycle", T=12), "regime"),
    ],
)
def test_bad_input_is_rejected(kwargs, message):
    base = dict(d=5, noise=1.0, generations=3)
    with unchecked(), pytest.raises(ValueError, match=message):
        theory.collapse_error(**(base | kwargs))


@pytest.mark.slow  # Monte Carlo, 20,000 paired draws (13 s)
def test_ridge_downstream_of_ols_generators():
    """Dohmatob-Feng-Kempe's loop on Sigma = diag(k^-1.5), d = 12: n OLS generators on T0 = 40
    samples (sigma0^2 = 1), then ridge (delta = 0.05) on T = 30 samples (sigma^2 = 0.25).
    The increment E_test(n) - E_test(0) is exact: matched by 20,000 paired draws (same downstream
    data, labels from w_n or from w*) within z SEM. The trace's deterministic equivalent is
    O(1/T): THEORY.md quotes <= 0.3 %, this T = 30 measures 0.38 % high, so 1 % plus z SEM; and
    E_test(n) within 5 %, the [DE] ridge risk's O(1/T) bias at T = 30."""
    from spectral_sim import PowerLaw

    d, t0, t, delta, n = 12, 40, 30, 0.05, 3
    spectrum = PowerLaw(s=1.5, a=2.0, n_modes=d)
    lam, w_star = spectrum.eigenvalues(), spectrum.target()

    def draw(key):
        keys = jax.random.split(key, 2 * n + 3)
        w = w_star
        for i in range(n):
            x = jax.random.normal(keys[2 * i], (t0, d)) * jnp.sqrt(lam)[None, :]
            y = x @ w + jax.random.normal(keys[2 * i + 1], (t0,))
            w = jnp.linalg.solve(x.T @ x, x.T @ y)
        x = jax.random.normal(keys[-3], (t, d)) * jnp.sqrt(lam)[None, :]
        xi = 0.5 * jax.random.normal(keys[-2], (t,))
        gram = x.T @ x + delta * jnp.eye(d)
        a = jnp.linalg.solve(gram, x.T @ x)

        def risk(target):
            e = jnp.linalg.solve(gram, x.T @ (x @ target + xi)) - w_star
            return e @ (lam * e)

        return risk(w), risk(w_star), jnp.trace((lam[:, None] * a) / lam[None, :] @ a.T)

    synthetic, real, trace = jax.jit(jax.vmap(draw))(jax.random.split(jax.random.key(5), 20_000))
    z = fit.z_simultaneous(3)
    step = 1.0 / (t0 - d - 1)
    increment = synthetic - real
    assert abs(float(increment.mean()) - n * step * float(trace.mean())) < z * float(
        fit.sem(increment - n * step * trace)
    )
    de_trace = float(closed.downstream_trace(spectrum, T=t, ridge=delta))
    assert abs(float(trace.mean()) - de_trace) < 0.01 * de_trace + z * float(fit.sem(trace))
    predicted = closed.ridge_downstream_error(
        spectrum, T=t, ridge=delta, noise=0.25, generations=n, T_gen=t0, noise_gen=1.0
    )
    assert predicted.shape == (n + 1,)
    assert abs(float(synthetic.mean()) / float(predicted[-1]) - 1) < 0.05 + z * float(
        fit.sem(synthetic)
    ) / float(predicted[-1])


# --- the Params form -------------------------------------------------------------------------


@pytest.mark.parametrize("case", list(CASES))
def test_risk_picks_the_closed_form_of_the_params(case):
    """risk(Params) is the closed form each case above pairs with its simulator by hand."""
    kwargs, predict = CASES[case]
    params = self_improve.Params(dim=D, samples=T, generations=G, **kwargs)
    np.testing.assert_array_equal(closed.risk(params), predict())


@pytest.mark.parametrize(
    "kwargs",
    [dict(regime="replace"), dict(regime="accumulate", design="fixed"),
     dict(regime="subsample", design="fixed"), dict(regime="replace", sizes=np.array(SIZES))],
    ids=["replace", "fixed_accumulate", "fixed_subsample", "growing"],
)  # fmt: skip
def test_risk_vmaps_over_a_stacked_grid(kwargs):
    """noise and ridge (traced) vary along the grid, sizes too where given; one vmap equals the
    point-by-point evaluation: the same float64 operations, up to the order of batched sums, so
    1e-10 relative (NaN for ridge > 0, on both sides)."""
    points = []
    for i, (noise, ridge) in enumerate([(1.0, 0.0), (0.3, 0.0), (2.0, 0.5)]):
        if "sizes" in kwargs:
            kwargs = kwargs | dict(sizes=np.minimum(np.array(SIZES) + i, T))
        points.append(self_improve.Params(dim=D, samples=T, generations=G, noise=noise,
                                          ridge=ridge, **kwargs))  # fmt: skip
    stacked = jax.tree.map(lambda *leaves: jnp.stack(leaves), *points)
    batched = jax.vmap(closed.risk)(stacked)
    one_by_one = jnp.stack([closed.risk(p) for p in points])
    np.testing.assert_allclose(batched, one_by_one, rtol=1e-10)
    assert np.all(np.isnan(batched[2])) and np.all(np.isfinite(batched[:2]))


def test_mix_risk_vmaps_over_n_real():
    """mix's T_real = n_real is traced: a grid over it is one vmap (1e-10 relative, as above)."""
    points = [self_improve.Params(dim=D, samples=T, generations=G, regime="mix", n_real=n)
              for n in (0.0, 6.0, 12.0)]  # fmt: skip
    stacked = jax.tree.map(lambda *leaves: jnp.stack(leaves), *points)
    one_by_one = jnp.stack([closed.risk(p) for p in points])
    np.testing.assert_allclose(jax.vmap(closed.risk)(stacked), one_by_one, rtol=1e-10)


@pytest.mark.parametrize(
    "kwargs",
    [dict(learner="sgd"), dict(verify=True), dict(regime="subsample"),
     dict(regime="mix", design="fixed"), dict(regime="accumulate", sizes=np.array(SIZES))],
)  # fmt: skip
def test_risk_refuses_what_no_closed_form_covers(kwargs):
    with pytest.raises(ValueError, match="risk has"):
        closed.risk(self_improve.Params(dim=D, samples=T, generations=G, **kwargs))


# --- T <= d + 1: minimum-norm fits -----------------------------------------------------------

OVER = [("fresh", "replace"), ("fixed", "replace"), ("fixed", "accumulate")]


@pytest.mark.slow_cases
@pytest.mark.parametrize("noise", [0.0, 1.0])
@pytest.mark.parametrize("design, regime", OVER)
def test_overparameterised_forms_match_monte_carlo(design, regime, noise):
    """T = 4 rows in d = 10 (20,000 runs, 8 generations): the minimum-norm loops against
    overparameterised_error, within z_simultaneous(every generation of every case) SEMs
    (d - T - 3 = 3 > 0: the error has a finite variance). Without noise a fixed design keeps
    the projection of w* on its rows; a fresh one loses (1 - T / d) of what is left each time."""
    params = self_improve.Params(dim=10, samples=4, generations=G, noise=noise, regime=regime,
                                 design=design)  # fmt: skip
    mean, sem = _monte_carlo(params, seed=3)
    predicted = closed.overparameterised_error(design=design, regime=regime, d=10, noise=noise,
                                               generations=G, T=4)  # fmt: skip
    np.testing.assert_array_equal(closed.risk(params), predicted)
    z = (mean - np.asarray(predicted)) / sem
    assert np.all(np.abs(z) < fit.z_simultaneous(2 * len(OVER) * G)), z


@pytest.mark.parametrize("case", [c for c in CASES if c != "growing"])
def test_risk_reads_n_samples(case):
    """n_samples is T: the same prediction as a Params whose static samples is T (bit for bit:
    the same operations on the same numbers)."""
    kwargs, _ = CASES[case]
    padded = self_improve.Params(dim=D, samples=3 * T, generations=G, n_samples=float(T),
                                 **kwargs)  # fmt: skip
    exact = self_improve.Params(dim=D, samples=T, generations=G, **kwargs)
    np.testing.assert_array_equal(closed.risk(padded), closed.risk(exact))


def test_risk_vmaps_over_n_samples_across_d():
    """A traced T grid through d (d = 5): T = 2 follows overparameterised_error, T = 4, 5, 6
    (d - 1 <= T <= d + 1) diverge (+inf) with noise, T = 12 is the OLS form; loops without a
    minimum-norm form give NaN for T <= d + 1. One vmap equals the point-by-point evaluation
    (1e-10 relative, as above)."""
    sizes = (2.0, 4.0, 5.0, 6.0, 12.0)
    for regime, design in [("replace", "fresh"), ("accumulate", "fixed"), ("accumulate", "fresh")]:
        points = [self_improve.Params(dim=D, samples=T, generations=G, regime=regime,
                                      design=design, n_samples=n) for n in sizes]  # fmt: skip
        stacked = jax.tree.map(lambda *leaves: jnp.stack(leaves), *points)
        batched = np.asarray(jax.vmap(closed.risk)(stacked))
        np.testing.assert_allclose(batched, np.stack([closed.risk(p) for p in points]),
                                   rtol=1e-10)  # fmt: skip
        np.testing.assert_allclose(batched[-1], closed.risk(points[-1]), rtol=1e-10)
        if (regime, design) == ("accumulate", "fresh"):
            assert np.all(np.isnan(batched[:-1]))
            continue
        over = closed.overparameterised_error(design=design, regime=regime, d=D, noise=1.0,
                                              generations=G, T=2)  # fmt: skip
        np.testing.assert_allclose(batched[0], over, rtol=1e-10)
        assert np.all(np.isposinf(batched[1:4]))


def test_noise_free_fits_of_d_rows_recover_w_star():
    """Without noise, T >= d rows fit w* exactly (rho = 1): zero error, not the +inf of the
    noisy mean."""
    for design, regime in OVER:
        errors = closed.overparameterised_error(design=design, regime=regime, d=D, noise=0.0,
                                                generations=G, T=D)  # fmt: skip
        np.testing.assert_array_equal(errors, np.zeros(G))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(T=7), "T"),
        (dict(T=0), "T"),
        (dict(design="fresh", regime="accumulate"), "accumulate"),
        (dict(design="random"), "design"),
        (dict(regime="subsample"), "regime"),
        (dict(signal=-1.0), "signal"),
    ],
)
def test_overparameterised_error_rejects_bad_input(kwargs, message):
    base = dict(design="fixed", regime="replace", d=5, noise=1.0, generations=3, T=2)
    with unchecked(), pytest.raises(ValueError, match=message):
        closed.overparameterised_error(**(base | kwargs))
