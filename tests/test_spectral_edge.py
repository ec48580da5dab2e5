"""The spectral-edge experiment: its change-point rule, leads and random-time null on hand-made
series, and an end-to-end run small enough for the suite."""

import dataclasses
import json

import numpy as np
import pytest

import experiments
from experiments import spectral_edge
from spectral_sim import sweep

CLAIMS = {
    "spectral_edge.grokking_with_decay",
    "spectral_edge.grokking_without_decay",
    "spectral_edge.precedes_raw",
    "spectral_edge.beyond_null_raw",
    "spectral_edge.precedes_centred",
    "spectral_edge.beyond_null_centred",
    "spectral_edge.k_star_adamw",
    "spectral_edge.k_star_muon",
    "spectral_edge.adiabatic_transition",
    "spectral_edge.adiabatic_plateau",
}

# Far below --quick (p = 11, 3 seeds per arm, 1500 steps): the pipeline end to end, not grokking.
CONFIG = spectral_edge.Config(
    p=11, width=8, hidden=32, steps=1500, n_seeds=3, muon_seeds=2, muon_steps=600, delay=200,
    horizon=300, baseline=10, recent=5, smooth=3,
)  # fmt: skip


@pytest.fixture(scope="module")
def report():
    return spectral_edge.run(CONFIG, sweep.Options(progress=False))


def test_report_has_every_claim_and_saves(report, tmp_path):
    assert {c.id for c in report.claims} == CLAIMS
    path = report.save(tmp_path / "out")
    saved = json.loads((path / "report.json").read_text())
    assert {c["id"] for c in saved["claims"]} == CLAIMS
    for name in ("tracks.png", "summary.png", "data.nc"):
        assert (path / name).exists(), name
    assert report.data.k_star.dims == ("weight_decay", "seed", "step")
    assert np.all(report.data.step.values >= CONFIG.window + 1)  # A is defined at every record


def _ripple(n: int) -> np.ndarray:
    return 0.01 * np.sin(np.arange(n))


def test_change_point_rule_finds_one_step_and_nothing_in_a_ripple():
    """A level step of 1 in a ripple of amplitude 0.01: one rising edge, where the trailing
    median of 3 has moved (record step + 1); none before the rule is defined; none in the
    ripple alone (its window means differ by < 3 baseline sd)."""
    n, at = 150, 90
    series = _ripple(n) + (np.arange(n) >= at)
    fired = spectral_edge.change_points(np.stack([series, _ripple(n)]), CONFIG)
    assert fired.shape == (2, n)
    assert np.flatnonzero(fired[0]).tolist() == [at + 1]
    assert not fired[1].any()
    first = CONFIG.smooth + CONFIG.baseline + CONFIG.recent - 2
    step = np.zeros(n)
    step[first - 1 :] = 1.0  # a step before the rule is defined is never reported
    assert not spectral_edge.change_points(step[None], CONFIG)[0, :first].any()


def test_leads_null_and_claims_on_hand_made_runs(report):
    """Every run fits at step 100 and generalises at 1200 (an event); the centred log R* steps up
    at 900, the raw one only ripples. Centred: every event preceded, lead 1200 - (first change
    point), null rate = share of eligible times t with that change point in [t - horizon, t];
    raw: no event preceded. The verdicts follow from these numbers."""
    data = report.data.copy(deep=True)
    steps = data.step.values
    shape = data.train_accuracy.shape
    ones = np.ones(shape, np.float32)
    data["train_accuracy"][:] = ones * (steps >= 100)
    data["test_accuracy"][:] = ones * (steps >= 1200)
    data["gap_ratio"][:] = ones * np.exp(_ripple(steps.size))
    data["centred_gap_ratio"][:] = ones * np.exp(_ripple(steps.size) + (steps >= 900))
    data = spectral_edge.analyse(data, CONFIG)
    assert bool(data.grokked.all()) and bool(data.resolvable.all())
    assert not data.raw_change.any()
    changes = np.flatnonzero(data.centred_change.values[0, 0])
    assert changes.size == 1 and steps[changes[0]] in (900, 910)
    lead = 1200 - steps[changes[0]]
    np.testing.assert_array_equal(data.centred_lead.values, lead)
    first = steps[CONFIG.smooth + CONFIG.baseline + CONFIG.recent - 2] + CONFIG.horizon
    eligible = steps[steps >= first]
    covered = (eligible >= steps[changes[0]]) & (eligible <= steps[changes[0]] + CONFIG.horizon)
    np.testing.assert_allclose(data.centred_null_rate.values, covered.mean())
    assert np.isnan(data.raw_lead.values).all()
    verdicts = {c.id: c.verdict for c in spectral_edge.claims(data, CONFIG)}
    assert verdicts["spectral_edge.precedes_centred"] == "PASS"
    assert verdicts["spectral_edge.beyond_null_centred"] == "PASS"  # 1 - 31/103 = 0.70 > 0
    assert verdicts["spectral_edge.precedes_raw"] == "FAIL"
    assert verdicts["spectral_edge.grokking_with_decay"] == "PASS"
    assert verdicts["spectral_edge.grokking_without_decay"] == "FAIL"


@pytest.mark.parametrize(
    "change, field",
    [
        (dict(p=2), "p"),
        (dict(train_fraction=1.0), "train_fraction"),
        (dict(window=2), "window"),
        (dict(steps=300), "steps"),
        (dict(muon_steps=10**6), "muon_steps"),
        (dict(threshold=0.0), "threshold"),
        (dict(n_seeds=1), "n_seeds"),
    ],
)
def test_bad_config_is_rejected_before_running(change, field):
    with pytest.raises(ValueError, match=field):
        spectral_edge.check(dataclasses.replace(CONFIG, **change))


def test_every_claim_is_declared_for_list(report):
    """`spectral-sim list` shows the module's CLAIMS: each claim the run made must match one."""
    assert experiments.undeclared("spectral_edge", [c.id for c in report.claims]) == []
