import dataclasses
import json

import numpy as np
import pytest
from conftest import assert_within_budget, run_counted

from spectral_sim.experiments import learning_curves

CLAIMS = {
    "learning_curves.gf_exponent",
    "learning_curves.sgd_recursion",
    "learning_curves.sgd_stability",
    "learning_curves.sgd_blowup",
    "learning_curves.tail_dominance",
}


# Smaller than --quick: one batch size, 128 seeds (0/n within 0.05 needs n > 90), seconds.
CONFIG = learning_curves.Config(
    s=(2.0,), a=(2.0,), lr_frac=(0.5, 0.9, 1.1, 2.0), batch=(2,), noise=(0.0,), n_modes=32,
    n_steps=200, n_records=8, n_seeds=128, gf_modes=2**15, quick=True,
)  # fmt: skip


@pytest.fixture(scope="module")
def report():
    return run_counted(learning_curves, CONFIG)


def test_compiles_within_its_budget(report):
    assert_within_budget("learning_curves")


def test_report_has_every_claim_and_diverged_points(report, tmp_path):
    assert {c.id for c in report.claims} == CLAIMS
    assert all(c.verdict in ("PASS", "FAIL", "INCONCLUSIVE") for c in report.claims)
    # 2 x the critical lr must diverge, flagged with its step, and never be plotted.
    assert report.data.sgd_diverged.sel(lr_frac=2.0).all()
    assert not report.data.sgd_diverged.sel(lr_frac=0.5).any()
    assert any("SGD diverged" in note and "lr_frac=2" in note for note in report.notes)
    path = report.save(tmp_path / "out")
    saved = json.loads((path / "report.json").read_text())
    assert {c["id"] for c in saved["claims"]} == CLAIMS
    assert (path / "loss_curves.png").exists() and (path / "data.nc").exists()


def test_verdicts_are_computed_not_fixed(report):
    """Corrupt the simulated losses by 50%: the recursion claim must stop passing; flip every
    run's divergence flag: the stability claim fails."""
    data = report.data.copy()
    data["sgd_loss"] = data.sgd_loss * 1.5
    claims = {c.id: c for c in learning_curves.CLAIMS.evaluate(data)}
    assert claims["learning_curves.sgd_recursion"].verdict == "FAIL"
    data["sgd_diverged"] = ~data.sgd_diverged
    claims = {c.id: c for c in learning_curves.CLAIMS.evaluate(data)}
    assert claims["learning_curves.sgd_stability"].verdict == "FAIL"
    assert claims["learning_curves.sgd_blowup"].verdict == "FAIL"


def test_claims_have_power(report):
    """Every prediction moved by twice its tolerance, either way, is caught (FAIL), and the
    claims expected to hold (all four, THEORY.md §2) are not FAIL."""
    for claim, minus, plus in learning_curves.CLAIMS.power(report.data):
        assert claim.verdict != "FAIL", claim
        assert (minus.verdict, plus.verdict) == ("FAIL", "FAIL"), claim.id


def test_stability_claim_needs_a_bracket_of_the_critical_lr(report):
    coarse = report.data.sel(lr_frac=[0.5, 2.0])
    (claim,) = [c for c in learning_curves.CLAIMS.evaluate(coarse) if "stability" in c.id]
    assert claim.verdict == "INCONCLUSIVE" and "within 10% below" in claim.where


def test_gf_exponent_fit_matches_theory(report):
    exponent = float(report.data.gf_exponent.sel(s=2.0, a=2.0))
    assert exponent == pytest.approx(0.5, abs=2e-3)
    assert np.all(report.data.gf_time.diff("window") > 0)


@pytest.mark.parametrize(
    "change, field",
    [
        (dict(s=(0.0,)), "s"),
        (dict(a=(1.0,)), "a"),
        (dict(lr_frac=()), "lr_frac"),
        (dict(batch=(0,)), "batch"),
        (dict(noise=(-1.0,)), "noise"),
        (dict(n_seeds=1), "n_seeds"),
    ],
)
def test_bad_config_raises_before_running(change, field):
    cfg = dataclasses.replace(learning_curves.Config(quick=True), **change)
    with pytest.raises(ValueError, match=field):
        learning_curves.run(cfg)
