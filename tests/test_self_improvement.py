import dataclasses
import json

import pytest

import experiments
from experiments import self_improvement
from spectral_sim import sweep

CLAIMS = {
    "self_improvement.replace",
    "self_improvement.accumulate",
    "self_improvement.mix",
    "self_improvement.growing",
    "self_improvement.p0_converges_replace",
    "self_improvement.p0_converges_accumulate",
    "self_improvement.p0_converges_mix",
    "self_improvement.p0_improves_with_compute",
    "self_improvement.verifier",
    "self_improvement.sgd_generation_one",
    "self_improvement.p0_converges_sgd",
    "self_improvement.p0_improves_with_compute_sgd",
}

# Smaller than --quick: one T, 6 generations, 2000 seeds (1000 growing); every claim still has
# its runs.
CONFIG = self_improvement.Config(
    samples=(40,),
    generations=6,
    growth_generations=4,
    growth_seeds=1000,
    verifier=(0.0, 1.0),
    n_seeds=2000,
)


@pytest.fixture(scope="module")
def report():
    return self_improvement.run(CONFIG, sweep.Options(progress=False))


def test_report_has_every_claim_and_saves(report, tmp_path):
    assert {c.id for c in report.claims} == CLAIMS
    path = report.save(tmp_path / "out")
    saved = json.loads((path / "report.json").read_text())
    assert {c["id"] for c in saved["claims"]} == CLAIMS
    assert (path / "error_by_generation.png").exists() and (path / "data.nc").exists()


def test_p0_verdicts(report):
    """THEORY.md §1 rows 7-8, §4.3: the replace loop does not converge and growing compute does
    not beat generation 1; the accumulate loop converges (to a worse error); a verifier, an
    external signal, does beat generation 1."""
    verdicts = {c.id: c.verdict for c in report.claims}
    assert verdicts["self_improvement.p0_converges_replace"] == "FAIL"
    assert verdicts["self_improvement.p0_converges_accumulate"] == "PASS"
    assert verdicts["self_improvement.p0_improves_with_compute"] == "FAIL"
    assert verdicts["self_improvement.verifier"] == "PASS"
    assert verdicts["self_improvement.p0_improves_with_compute_sgd"] == "FAIL"
    assert verdicts["self_improvement.sgd_generation_one"] in ("PASS", "INCONCLUSIVE")
    for regime in ("replace", "accumulate", "growing"):
        assert verdicts[f"self_improvement.{regime}"] in ("PASS", "INCONCLUSIVE"), regime


def test_verdicts_are_computed_not_fixed(report):
    """Inflate the accumulate errors by 20 % and flatten replace's growth: the closed-form and
    convergence claims must turn."""
    data = report.data.copy(deep=True)
    data["error"].loc[dict(regime="accumulate")] *= 1.2
    replace = data.error.sel(regime="replace")
    data["error"].loc[dict(regime="replace")] = replace.isel(generation=0).broadcast_like(replace)
    claims = {c.id: c for c in self_improvement.claims(data, CONFIG)}
    assert claims["self_improvement.accumulate"].verdict == "FAIL"
    assert claims["self_improvement.p0_converges_replace"].verdict == "PASS"


@pytest.mark.parametrize(
    "change, field",
    [
        (dict(samples=(12,)), "samples"),
        (dict(mix_real=1.5), "mix_real"),
        (dict(growth=("cubic",)), "growth"),
        (dict(verifier=(2.0,)), "verifier"),
        (dict(generations=2), "generations"),
        (dict(noise=0.0), "noise"),
    ],
)
def test_bad_config_raises_before_running(change, field):
    with pytest.raises(ValueError, match=field):
        self_improvement.run(dataclasses.replace(CONFIG, **change))


def test_every_claim_is_declared_for_list(report):
    """`spectral-sim list` shows the module's CLAIMS: each claim the run made must match one."""
    assert experiments.undeclared("self_improvement", [c.id for c in report.claims]) == []
