import dataclasses
import json

import numpy as np
import pytest

import experiments
from experiments import attention_clusters
from spectral_sim import sweep

CLAIMS = {
    "attention.exact_rate",
    "attention.gap_rate_inside",
    "attention.gap_rate_outside",
    "attention.additive_rate",
    "attention.additive_naive",
    "attention.consensus_point",
    "attention.softmax_rate",
    "attention.softmax_additive",
    "attention.softmax_first_layer",
    "attention.dobrushin",
    "attention.pure_cubic",
    "attention.rank_collapse_bound",
    "attention.sphere_consensus",
    "attention.sphere_large_beta",
}

# Smaller than --quick: one kernel bandwidth and draw, one softmax (n, d), few seeds; every
# claim still has the runs it needs.
CONFIG = attention_clusters.Config(
    bandwidth=(1.0,), n_kernels=1, eps_frac=(0.3, 0.97), layers=1500, softmax_eps=(0.2, 0.5),
    softmax_beta=(0.5,), softmax_tokens=(8,), softmax_dim=(2,), softmax_layers=300, n_seeds=2,
    pure_beta=(0.3,), pure_seeds=8, sphere_beta=(1.0, 16.0), sphere_tokens=(8,),
    sphere_dim=(3,), sphere_time=60.0, sphere_records=8, sphere_seeds=4,
)  # fmt: skip


@pytest.fixture(scope="module")
def report():
    return attention_clusters.run(CONFIG, sweep.Options(progress=False))


def test_report_has_every_claim_and_saves(report, tmp_path):
    assert {c.id for c in report.claims} == CLAIMS
    path = report.save(tmp_path / "out")
    saved = json.loads((path / "report.json").read_text())
    assert {c["id"] for c in saved["claims"]} == CLAIMS
    for name in ("distance", "fixed_rates", "clusters"):
        assert (path / f"{name}.png").exists()
    assert (path / "data.nc").exists()


def test_deterministic_verdicts(report):
    """THEORY.md §1 row 6, §3: the exact rates and 1 - eps lambda_2 inside its eps range hold,
    [P0]'s form outside it and with the additive residual's raw eps does not; softmax contracts
    at 1 - eps, not at the first layer's gap; Dobrushin and the consensus point hold."""
    verdicts = {c.id: c.verdict for c in report.claims}
    for claim_id in ("exact_rate", "gap_rate_inside", "additive_rate", "consensus_point",
                     "softmax_rate", "dobrushin", "sphere_consensus"):  # fmt: skip
        assert verdicts[f"attention.{claim_id}"] == "PASS", claim_id
    for claim_id in ("gap_rate_outside", "additive_naive", "softmax_first_layer"):
        assert verdicts[f"attention.{claim_id}"] == "FAIL", claim_id
    exact = next(c for c in report.claims if c.id == "attention.exact_rate")
    assert exact.error < 1e-8  # far inside RATE_TOL: the window resolves the slowest mode


def test_verdicts_are_computed_not_fixed(report):
    """Tilt the fixed-P deviations by 1.001^layer and the softmax ones by 1.01^layer, and
    inflate one layer's diameter: the rate and Dobrushin claims must stop passing."""
    data = report.data.copy(deep=True)
    data["distance"] = data.distance * 1.001**data.layer
    data = attention_clusters._fixed_rates(data.drop_vars(["rate", "resolved"]))
    data["softmax_distance"] = data.softmax_distance * 1.01**data.softmax_layer
    data = attention_clusters._softmax_rates(data)
    data["softmax_diameter"][0, 0, 0, 0, 0, 0, 3] *= 10
    claims = {c.id: c for c in attention_clusters.claims(data, CONFIG)}
    for claim_id in ("exact_rate", "gap_rate_inside", "softmax_rate", "dobrushin"):
        assert claims[f"attention.{claim_id}"].verdict == "FAIL", claim_id


def test_diverged_and_unresolved_runs_are_noted(report):
    data = report.data.copy(deep=True)
    data["fixed_nonfinite"][...] = False
    data["fixed_nonfinite"][0, 0, 0, 0] = True
    notes = attention_clusters.notes(data, CONFIG)
    assert any(note.startswith("fixed: 1 of") for note in notes)
    rates = attention_clusters._fixed_rates(data.drop_vars(["rate", "resolved"]))
    assert not bool(rates.resolved[0, 0, 0, 0]) and np.isnan(float(rates.rate[0, 0, 0, 0]))


@pytest.mark.parametrize(
    "change, field",
    [
        (dict(bandwidth=()), "bandwidth"),
        (dict(eps_frac=(0.5, 1.2)), "eps_frac"),
        (dict(softmax_eps=(1.5,)), "softmax_eps"),
        (dict(softmax_beta=(-1.0,)), "softmax_beta"),
        (dict(sphere_tokens=(1,)), "sphere_tokens"),
        (dict(sphere_dim=(1,)), "sphere_dim"),
        (dict(layers=10), "layers"),
        (dict(cluster_tol=0.0), "cluster_tol"),
        (dict(sphere_time=0.5), "sphere_time"),
    ],
)
def test_bad_config_raises_before_running(change, field):
    with pytest.raises(ValueError, match=field):
        attention_clusters.run(dataclasses.replace(CONFIG, **change))


def test_every_claim_is_declared_for_list(report):
    """`spectral-sim list` shows the module's CLAIMS: each claim the run made must match one."""
    assert experiments.undeclared("attention_clusters", [c.id for c in report.claims]) == []
