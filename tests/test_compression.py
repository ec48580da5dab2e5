import dataclasses
import json

import numpy as np
import pytest

import experiments
from experiments import compression

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
    return compression.run(CONFIG)


def test_report_has_every_claim_figure_and_saves(report, tmp_path):
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


def test_verdicts_are_computed_not_fixed(report):
    """Corrupt the measurements: the claims that passed must stop passing."""
    data = report.data.copy()
    data["prune_damage"] = data.prune_damage * 1.01
    data["evo_loss_slope"] = data.evo_loss_slope * 1.2
    data["dithered"] = data.dithered * 2.0
    claims = {c.id: c for c in compression.claims(data, data, data, data, CONFIG)}
    for name in ("compression.prune_exact", "evolution.exponent", "compression.dithered"):
        assert claims[name].verdict == "FAIL", name


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


def test_every_claim_is_declared_for_list(report):
    """`spectral-sim list` shows the module's CLAIMS: each claim the run made must match one."""
    assert experiments.undeclared("compression", [c.id for c in report.claims]) == []
