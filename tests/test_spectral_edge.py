"""The spectral-edge experiment: its change-point rule, leads and random-time null on hand-made
series, and an end-to-end run small enough for the suite."""

import dataclasses
import json

import numpy as np
import pytest
import xarray as xr
from conftest import assert_within_budget, run_counted

from spectral_sim import claims
from spectral_sim.experiments import spectral_edge

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
    return run_counted(spectral_edge, CONFIG)


def test_compiles_within_its_budget(report):
    assert_within_budget("spectral_edge")


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


# 80 copies of the fixture's runs (not independent, but the claims only count them): an exact
# n/n clears 1 - COUNT_TOL = 0.95 from n = 72 (0.025^(1/n) >= 0.95), so 80/80 can PASS.
HAND_SEEDS = 80


def _hand_made(report):
    """Every run fits at step 100 and generalises at 1200 (an event); the raw log R* only
    ripples; the centred one steps up at 900 and, in odd seeds, also at 500 (a change point
    outside the event's horizon that raises that run's null rate)."""
    data = report.data.isel(seed=np.arange(HAND_SEEDS) % CONFIG.n_seeds)
    data = data.assign_coords(seed=np.arange(HAND_SEEDS)).copy(deep=True)
    steps = data.step.values
    ones = np.ones(data.train_accuracy.shape, np.float32)
    odd = (data.seed.values % 2 == 1)[None, :, None]
    data["train_accuracy"][:] = ones * (steps >= 100)
    data["test_accuracy"][:] = ones * (steps >= 1200)
    data["gap_ratio"][:] = ones * np.exp(_ripple(steps.size))
    centred = _ripple(steps.size) + (steps >= 900) + odd * (steps >= 500)
    data["centred_gap_ratio"][:] = ones * np.exp(centred)
    return spectral_edge.analyse(data, CONFIG)


def test_leads_null_and_claims_on_hand_made_runs(report):
    """Centred: every event preceded, lead 1200 - (the change point at 900), null rate = share
    of eligible times t with a change point in [t - horizon, t]; raw: no event preceded and no
    change point anywhere. The verdicts follow from these numbers."""
    data = _hand_made(report)
    steps = data.step.values
    assert bool(data.grokked.all()) and bool(data.resolvable.all())
    assert not data.raw_change.any()
    first = steps[CONFIG.smooth + CONFIG.baseline + CONFIG.recent - 2] + CONFIG.horizon
    eligible = steps[steps >= first]
    for seed in (0, 1):
        changes = steps[np.flatnonzero(data.centred_change.values[0, seed])]
        assert changes.size == 1 + seed and changes[-1] in (900, 910)
        assert seed == 0 or changes[0] in (500, 510)
        assert float(data.centred_lead[0, seed]) == 1200 - changes[-1]
        covered = np.zeros(eligible.size, bool)
        for change in changes:
            covered |= (eligible >= change) & (eligible <= change + CONFIG.horizon)
        np.testing.assert_allclose(data.centred_null_rate.values[:, seed::2], covered.mean())
    assert np.isnan(data.raw_lead.values).all()
    claims = {c.id.removeprefix("spectral_edge."): c for c in spectral_edge.CLAIMS.evaluate(data)}
    verdicts = {name: c.verdict for name, c in claims.items()}
    assert verdicts["grokking_with_decay"] == "PASS"  # 80/80: exact lower bound 0.955
    assert verdicts["grokking_without_decay"] == "FAIL"  # 80/80 against 0
    assert verdicts["precedes_centred"] == "PASS"
    assert verdicts["precedes_raw"] == "FAIL"  # 0/80
    # d = 1 - 31/103 (even seeds) or 1 - 62/103 (odd): mean 0.55 +- 0.017 inside [0, 1].
    assert verdicts["beyond_null_centred"] == "PASS"
    assert claims["beyond_null_centred"].measured == pytest.approx(1 - 46.5 / 103, abs=0.02)
    # Raw: no change point at all, so every run's d is 0 - 0: no spread, no standard error.
    assert verdicts["beyond_null_raw"] == "INCONCLUSIVE"
    assert "no spread" in claims["beyond_null_raw"].where


def test_hand_made_passes_have_power(report):
    """The claims that PASS on the hand-made runs are caught (FAIL) when their prediction moves
    by 2 tolerances either way."""
    data = _hand_made(report)
    passing = {"grokking_with_decay", "precedes_centred", "beyond_null_centred"}
    checked = set()
    for claim, minus, plus in spectral_edge.CLAIMS.power(data):
        name = claim.id.removeprefix("spectral_edge.")
        if name in passing:
            assert claim.verdict == "PASS", claim
            assert (minus.verdict, plus.verdict) == ("FAIL", "FAIL"), name
            checked.add(name)
    assert checked == passing


# At test scale (1,500 steps at p = 11, 3 seeds per arm, 2 Muon seeds) no run groks, so:
# - the claims about events have nothing to measure (INCONCLUSIVE "not measured");
# - grokking_with_decay FAILs (0/3; the scale, not the theory) and k_star_adamw FAILs (every
#   run's modal raw k* is 1, not P2's 2: THEORY.md §8); both are far enough off to have power;
# - grokking_without_decay (0/3) and k_star_muon (2/2) cannot have power: their exact 95 %
#   intervals [0, 0.71] and [0.16, 1] are wider than the band of +-0.05. The exact bound of n/n
#   is 0.025^(1/n) (of 0/n: 1 - 0.025^(1/n)), within 0.05 of the edge only from n = 72, and the
#   engine searches powers of two above n: 128 seeds. Only the far side of a moved prediction
#   FAILs.
NO_EVENT = {"precedes_raw", "precedes_centred", "beyond_null_raw", "beyond_null_centred",
            "adiabatic_transition", "adiabatic_plateau"}  # fmt: skip
EXPECTED_FAIL = {"grokking_with_decay", "k_star_adamw"}
NO_POWER = {"grokking_without_decay", "k_star_muon"}


def test_claims_have_power(report):
    seen = set()
    for claim, minus, plus in spectral_edge.CLAIMS.power(report.data):
        name = claim.id.removeprefix("spectral_edge.")
        seen.add(name)
        if name in NO_EVENT:
            assert claim.verdict == "INCONCLUSIVE", name
            assert claim.where.startswith("not measured"), (name, claim.where)
        elif name in NO_POWER:
            assert claim.verdict == "INCONCLUSIVE" and claim.seeds_needed == 128, claim
            assert sorted([minus.verdict, plus.verdict]) == ["FAIL", "INCONCLUSIVE"], name
        else:
            assert (minus.verdict, plus.verdict) == ("FAIL", "FAIL"), name
            assert (claim.verdict == "FAIL") == (name in EXPECTED_FAIL), claim
    assert seen == NO_EVENT | EXPECTED_FAIL | NO_POWER


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
        (dict(weight_decay=0.0), "weight_decay"),
    ],
)
def test_bad_config_is_rejected_before_running(change, field):
    with pytest.raises(ValueError, match=field):
        spectral_edge.check(dataclasses.replace(CONFIG, **change))


def test_count_seeds_is_where_an_all_or_none_share_first_decides():
    """COUNT_SEEDS runs that all succeed PASS "every run within COUNT_TOL" under the engine's
    exact interval; one run fewer cannot (the count claims' full and paper scales use it)."""

    def every_run(n: int) -> str:
        successes = xr.DataArray(np.ones(n), dims="seed")
        return claims.share(successes, predicted=1.0, tolerance=spectral_edge.COUNT_TOL).verdict

    assert every_run(spectral_edge.COUNT_SEEDS) == "PASS"
    assert every_run(spectral_edge.COUNT_SEEDS - 1) == "INCONCLUSIVE"
