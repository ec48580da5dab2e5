"""The closed forms of THEORY.md §4.2 against Monte Carlo runs of models.self_improve (z-scores
with the computed SEM, Bonferroni over every generation of every regime) and their invariants."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
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


@pytest.mark.parametrize("case", list(CASES))
def test_closed_forms_match_monte_carlo(case):
    """Every generation within z_simultaneous(all generations of all cases) SEMs (T - d - 3 = 4
    > 0, so the OLS error has a finite variance and the SEM is meaningful)."""
    kwargs, predict = CASES[case]
    mean, sem = _monte_carlo(self_improve.Params(dim=D, samples=T, generations=G, **kwargs))
    z = (mean - np.asarray(predict())) / sem
    assert np.all(np.abs(z) < fit.z_simultaneous(len(CASES) * G)), (case, z)


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
    with pytest.raises(ValueError, match=message):
        theory.collapse_error(**(base | kwargs))
