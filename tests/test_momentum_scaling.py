import dataclasses

import numpy as np
import pytest
from conftest import assert_within_budget, run_counted

from spectral_sim.experiments import momentum_scaling

# Two (s, a) pairs, 300 seeds of 64 modes for 300 steps per method, exponents on 1,000 modes:
# the quick scale.
CONFIG = momentum_scaling.Config(quick=True)


@pytest.fixture(scope="module")
def report():
    return run_counted(momentum_scaling, CONFIG)


def test_compiles_within_its_budget(report):
    assert_within_budget("momentum_scaling")


def test_the_exact_predictor_and_the_exponent_claims_pass(report, tmp_path):
    """The exact E L is the seed mean within 10 % at every record of every method; SGD-M has
    SGD's exponent; DANA's is larger by more than the margin."""
    claims = {c.id: c for c in report.claims}
    assert set(claims) == {"momentum.exact", "momentum.sgdm_exponent", "momentum.dana_outscales",
                           "momentum.effective_lr_rule"}  # fmt: skip
    passing = ("momentum.exact", "momentum.sgdm_exponent", "momentum.dana_outscales")
    assert all(claims[c].verdict == "PASS" for c in passing), report.table()
    data = report.data
    assert set(data.method.values) == {"heavy_ball", "nesterov", "dana"}
    sgd = data.exponent.sel(fit_method="sgd")
    theory = (data.pair_a - 1) / data.pair_s  # GF's exponent, which SGD's approaches
    assert np.all(np.abs(sgd - theory) < 0.05)
    report.save(tmp_path / "out")
    assert (tmp_path / "out" / "exponents.png").is_file()
    assert sum(note.startswith("s=") for note in report.notes) == data.sizes["pair"]


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
        (dict(pairs=((0.5, 2.0),)), ["pairs", "s > 1"]),
        (dict(pairs=()), ["pairs"]),
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
