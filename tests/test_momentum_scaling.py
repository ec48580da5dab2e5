import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import assert_within_budget, run_counted
from jax.scipy.special import zeta

from spectral_sim import PowerLaw, theory
from spectral_sim.experiments import momentum_scaling

# Two (s, a) pairs, 600 seeds of 32 modes (and of 8 random features) for 300 steps per method,
# exponents on 1,000 modes at four pairs (one per region), frontiers at two: the quick scale.
CONFIG = momentum_scaling.Config(quick=True)


@pytest.fixture(scope="module")
def report():
    return run_counted(momentum_scaling, CONFIG)


def test_compiles_within_its_budget(report):
    assert_within_budget("momentum_scaling")


def test_the_exact_predictor_and_the_exponent_claims_pass(report, tmp_path):
    """The exact E L (and E[L | F] on random features) is the seed mean within 10 % at every
    record of every method; SGD-M has SGD's exponent; DANA's is larger by more than the margin,
    and so is its compute-optimal exponent."""
    claims = {c.id: c for c in report.claims}
    passing = ("momentum.exact", "momentum.exact_features", "momentum.sgdm_exponent",
               "momentum.dana_outscales", "momentum.dana_frontier")  # fmt: skip
    assert set(claims) == {*passing, "momentum.effective_lr_rule"}
    assert all(claims[c].verdict == "PASS" for c in passing), report.table()
    data = report.data
    assert set(data.method.values) == {"heavy_ball", "nesterov", "dana"}
    above = data.exponent.where(data.pair_s > 1, drop=True)
    s, a = above.pair_s, above.pair_a
    # SGD's exponent: the bias term's (a - 1)/s, or past alpha = beta the noise term's 2 - 1/s
    # (the finite band reaches them within 0.042, at (1.5, 5))
    theory = np.minimum((a - 1) / s, 2 - 1 / s)
    assert np.all(np.abs(above.sel(fit_method="sgd") - theory) < 0.05)
    assert set(data.pair_region.values) == {"2 beta < 1", "2 beta > 1, beta < alpha",
                                            "beta >= alpha", "2 alpha < 1"}  # fmt: skip
    report.save(tmp_path / "out")
    assert (tmp_path / "out" / "exponents.png").is_file()
    assert (tmp_path / "out" / "frontier.png").is_file()
    assert sum(note.startswith("s=") for note in report.notes) == data.sizes["pair"] + 1
    assert sum(note.startswith("frontier") for note in report.notes) == data.sizes["frontier_pair"]


def test_sgd_is_on_p0s_frontier_and_dana_reaches_its_own_from_below(report):
    """SGD's frontier exponents are [P0]'s (a - 1)/(s + 1) and 1/(s + 1) within 0.01 (exact
    curves: the finite rows put them 0.002 to 0.004 off); DANA's loss exponent lies above SGD's
    and below the effective-time value (a - 1) q/(s + q), q = 2 - 1/s, which the window reaches
    from below (the gamma2 offset)."""
    data = report.data
    f = data.frontier_exponent
    s, a = data.frontier_s, data.frontier_a
    sgd, dana = f.sel(frontier_method="sgd"), f.sel(frontier_method="dana")
    assert np.all(np.abs(sgd.sel(frontier_law="loss") - (a - 1) / (s + 1)) < 0.01)
    assert np.all(np.abs(sgd.sel(frontier_law="size") - 1 / (s + 1)) < 0.01)
    q = 2 - 1 / s
    loss = dana.sel(frontier_law="loss")
    assert np.all((loss > sgd.sel(frontier_law="loss")) & (loss < (a - 1) * q / (s + q)))


def test_a_padded_spectrum_is_exact_and_sgd_is_the_recursion():
    """frontier_curves runs m trained modes on a spectrum padded to `size`, the target power past
    it as label noise: the same E L at any padding (float64 rounding), and SGD's row is the SGD
    recursion of `theory.sgd_loss` on that spectrum."""
    with jax.enable_x64(True):
        steps = (1, 10, 100, 1000)
        names = momentum_scaling.METHODS
        index = np.array([names.index("sgd"), names.index("dana")])
        args = [np.array(v, float) for v in ([1.5, 1.5], [2.0, 2.0], [10.0, 10.0])] + [index]
        small, large = (np.asarray(momentum_scaling.frontier_curves(*args, size=n, batch=4,
                                                                    steps=steps))
                        for n in (16, 64))  # fmt: skip
        np.testing.assert_allclose(small, large, rtol=1e-10)
        spectrum = PowerLaw(s=1.5, a=2.0, n_modes=16)
        tail = float(zeta(2.0, 17.0))
        lr = 0.375 * min(2 / 5, 1 / float(jnp.sum(spectrum.eigenvalues()[:10])))
        sgd = theory.sgd_loss(spectrum, lr=lr, batch=4, noise=tail, n_trainable=10, steps=steps)
        np.testing.assert_allclose(small[0], np.asarray(sgd) + tail / 2, rtol=1e-12)


def test_regions_of_the_phase_plane():
    region = momentum_scaling.region
    assert region(0.8, 2.0) == "2 alpha < 1"
    assert region(1.5, 2.0) == "2 beta < 1"
    assert region(2.0, 3.5) == "2 beta > 1, beta < alpha"
    assert region(1.5, 5.0) == region(1.5, 3.0) == "beta >= alpha"


def test_the_folk_rule_fails_early_and_near_the_limit_and_holds_late_at_small_rates(report):
    """On the exact curves: heavy ball at (lr, beta) against SGD at lr / (1 - beta). The
    momentum transient puts the early records far off (FAIL); from step RULE_LATE on the rule
    holds within 10 % at 0.1 x the critical lr for every beta, and fails at 0.9 x it, where
    heavy ball's chi is below SGD's."""
    assert {c.id: c for c in report.claims}["momentum.effective_lr_rule"].verdict == "FAIL"
    data = report.data
    error = np.abs(data.rule_heavy / data.rule_sgd - 1)
    late = error.where(data.rule_step >= momentum_scaling.RULE_LATE).max("rule_step")
    assert np.all(late.sel(rule_frac=0.1) <= momentum_scaling.RULE_TOL)
    assert np.all(late.sel(rule_frac=0.9) > momentum_scaling.RULE_TOL)
    assert sum(note.startswith("effective-lr rule") for note in report.notes) == 4


def test_the_fit_band_brackets_the_frontier():
    """The band's losses are the tail beyond k* = M / 10 and beyond K_LO (decreasing in k*)."""
    low, high = momentum_scaling.fit_band(2.0, 1000)
    assert low == pytest.approx(100.0**-1 / 2) and high == pytest.approx(10.0**-1 / 2)


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (dict(pairs=((0.0, 2.0),)), ["pairs", "s > 0"]),
        (dict(pairs=()), ["pairs"]),
        (dict(region_pairs=((1.5, 1.0),)), ["region_pairs", "a > 1"]),
        (dict(frontier_pairs=((0.8, 2.0),)), ["frontier_pairs", "s > 1"]),
        (dict(frontier_compute=(1e6, 1e4)), ["frontier_compute", "low < high"]),
        (dict(frontier_cols=2), ["frontier_cols", ">= 3"]),
        (dict(frontier_span=1.0), ["frontier_span", "> 1"]),
        (dict(n_seeds=1), ["n_seeds", ">= 2"]),
        (dict(fit_modes=10), ["fit_modes", ">= 100"]),
        (dict(noise=-1.0), ["noise", ">= 0"]),
    ],
)
def test_bad_configs_are_refused_before_anything_runs(change, words):
    with pytest.raises(ValueError) as raised:
        momentum_scaling.check(dataclasses.replace(momentum_scaling.Config(), **change))
    for word in words:
        assert word in str(raised.value)
