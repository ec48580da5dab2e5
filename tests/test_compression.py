import dataclasses
import json

import numpy as np
import pytest
from conftest import assert_within_budget, run_counted

from spectral_sim.experiments import compression

CLAIMS = {
    "compression.prune_exact",
    "compression.complementarity",
    "compression.complementarity_monotone",
    "compression.prune_linear_growth",
    "compression.prune_saturation",
    "compression.saliency",
    "compression.magnitude_a_gt_s",
    "compression.magnitude_a_lt_s",
    "compression.weight_basis",
    "compression.dithered",
    "compression.rounding_as_perturbation",
    "compression.rounding_as_pruning",
    "compression.bf16_rounding",
    "compression.fp8_rounding",
    "evolution.preconditioned_exact",
    "evolution.exponent",
    "evolution.frontier",
    "evolution.tail_dominance",
    "evolution.diagonal_rho",
    "evolution.diagonal_exponent",
}
# Smaller than --quick (seconds): one a > s and one a < s pair, two rho, two diagonal targets.
CONFIG = compression.Config(
    s=(1.5, 3.0), a=(2.0,), n_modes=128, n_times=8, n_keep=8, quant_steps=(0.03, 0.1),
    quant_times=(1e3,), n_seeds=32, n_dithers=8, rho=(1.0, 1.5), evo_modes=2**12,
    evo_steps=3000, diag_a=(2.0, 3.0), diag_modes=4096, diag_steps=20_000, n_records=30,
)  # fmt: skip


@pytest.fixture(scope="module")
def report():
    return run_counted(compression, CONFIG)


def test_compiles_within_its_budget(report):
    assert_within_budget("compression")


def test_report_has_every_claim_figure_and_saves(report, tmp_path):
    assert set(compression.CLAIMS.ids()) == CLAIMS
    assert {c.id for c in report.claims} == CLAIMS
    verdicts = {c.id: c.verdict for c in report.claims}
    # Exact identities and the flagged failure of magnitude pruning for a < s.
    for exact in ("prune_exact", "complementarity", "saliency", "magnitude_a_gt_s"):
        assert verdicts[f"compression.{exact}"] == "PASS", exact
    assert verdicts["compression.magnitude_a_lt_s"] == "FAIL"
    assert verdicts["compression.weight_basis"] == "FAIL"
    assert verdicts["evolution.preconditioned_exact"] == "PASS"
    path = report.save(tmp_path / "out")
    saved = json.loads((path / "report.json").read_text())
    assert {c["id"] for c in saved["claims"]} == CLAIMS
    for name in ("prune_heatmap.png", "evolution.png", "data.nc"):
        assert (path / name).exists()


def test_evolution_claims_pass_with_their_derived_tolerances(report):
    verdicts = {c.id: c.verdict for c in report.claims}
    for name in ("exponent", "frontier", "tail_dominance", "diagonal_rho"):
        assert verdicts[f"evolution.{name}"] == "PASS", name
    # every rho and diagonal target got a fit window of at least a factor 2 in time
    assert np.all(report.data.evo_t_hi >= 2 * report.data.evo_t_lo)
    assert np.all(report.data.diag_t_hi >= 2 * report.data.diag_t_lo)


def _evaluate(data, ids):
    """The claims `ids` decided on `data` (only their Specs: the bootstrap claims are slow)."""
    return {c.id: c for spec in compression.CLAIMS if spec.id in ids for c in spec.evaluate(data)}


def test_verdicts_are_computed_not_fixed(report):
    """Corrupt the measurements: the claims that passed must stop passing."""
    data = report.data.copy()
    data["prune_damage"] = data.prune_damage * 1.01
    data["evo_loss_slope"] = data.evo_loss_slope * 1.2
    data["dithered"] = data.dithered * 2.0
    names = ("compression.prune_exact", "evolution.exponent", "compression.dithered")
    claims = _evaluate(data, names)
    for name in names:
        assert claims[name].verdict == "FAIL", name


def test_claim_without_its_entries_is_not_measured(report):
    """At s = 3 only (a = 2 < s) there is nothing for the a > s claim: INCONCLUSIVE, kept."""
    (claim,) = _evaluate(report.data.sel(s=[3.0]), ["compression.magnitude_a_gt_s"]).values()
    assert claim.verdict == "INCONCLUSIVE" and claim.where.startswith("not measured")


# Claims THEORY.md expects to fail: magnitude pruning keeps the wrong modes for a < s (§6.1),
# and a random weight basis is not the eigenbasis.
EXPECTED_FAIL = {"compression.magnitude_a_lt_s", "compression.weight_basis"}
# Claims without power at the test's 32 random targets: the interval at the deciding entry is
# wider than the whole tolerance band (2 x 0.10), so a prediction moved by 2 tolerances cannot
# be told apart. Standard errors of the ratio at 32 seeds (t = 1e3): rounding vs tr Sigma 0.18,
# vs the pruning picture 0.16, fp8 0.13, bf16 1.2. (For bf16 that is a spread of 1.2 sqrt(32) =
# 6.7 pictures per target, while 1/2 sum lambda_k delta_k^2 lies in [0, 3] pictures as
# |delta_k| <= ulp_k / 2: the first-order term sum lambda_k delta_k (w_k - w*_k) of the
# unlearned modes, zero only in expectation, dominates.) At z = 2.2-2.5 the half-widths are
# 0.28-2.6 > 0.10; power would need about 32 (z SE / 0.10)^2 = 250 (fp8) to 22000 (bf16) seeds.
NO_POWER = {
    "compression.rounding_as_perturbation",
    "compression.rounding_as_pruning",
    "compression.bf16_rounding",
    "compression.fp8_rounding",
}


def test_claims_have_power(report):
    """Every prediction moved by twice its tolerance, either way, is caught (FAIL); the claims
    expected to hold are not FAIL; those without power at this scale are INCONCLUSIVE for want
    of seeds (their interval is wider than the tolerance band)."""
    for claim, minus, plus in compression.CLAIMS.power(report.data):
        if claim.id in NO_POWER:
            assert claim.verdict == "INCONCLUSIVE", claim
            assert claim.high - claim.low > 2 * claim.tolerance, claim
            assert claim.seeds_needed is not None and claim.seeds_needed > CONFIG.n_seeds, claim
            continue
        if claim.id not in EXPECTED_FAIL:
            assert claim.verdict != "FAIL", claim
        assert (minus.verdict, plus.verdict) == ("FAIL", "FAIL"), claim.id


@pytest.mark.parametrize(
    "change, field",
    [
        (dict(s=(0.0,)), "s"),
        (dict(a=(1.0,)), "a"),
        (dict(rho=(-1.0,)), "rho"),
        (dict(quant_steps=()), "quant_steps"),
        (dict(diag_lr=1.5), "diag_lr"),
        (dict(t_range=(10.0, 1.0)), "t_range"),
        (dict(n_seeds=1), "n_seeds"),
        (dict(rho=(1.0, 1.0)), "rho"),
    ],
)
def test_bad_config_names_the_field(change, field):
    with pytest.raises(ValueError, match=f"^{field} must"):
        compression.run(dataclasses.replace(CONFIG, **change))
