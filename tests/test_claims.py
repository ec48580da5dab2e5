"""The claim engine: the decision rule against its brute-force definition, exact count intervals
against scipy, the seed bootstrap against the analytic SE of a mean, divergence, missing data,
tolerance provenance and the seeds that would settle an INCONCLUSIVE claim."""

import dataclasses
import math

import numpy as np
import pytest
import xarray as xr
from conftest import unchecked
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from spectral_sim import claims
from spectral_sim.report import Claim, Report


def samples(values: np.ndarray, **coords) -> xr.DataArray:
    """(entries..., seed) values as a DataArray; coords name the entry dims in order."""
    dims = [*coords, "seed"]
    return xr.DataArray(values, dims=dims, coords=coords)


def brute_force(values, predicted, tolerance, relative=False, alpha=0.05) -> str:
    """The rule as the docs state it, entry by entry in plain NumPy: mean +- t SEM, t Student's
    quantile at the simultaneous level with n - 1 degrees of freedom."""
    mean = values.mean(-1)
    sem = values.std(-1, ddof=1) / math.sqrt(values.shape[-1])
    if relative:
        mean, sem, predicted = mean / predicted, sem / abs(predicted), np.ones_like(mean)
    z = stats.t.ppf(1 - alpha / (2 * mean.size), values.shape[-1] - 1)
    error = np.abs(mean - predicted)
    if np.any(error - z * sem > tolerance):
        return "FAIL"
    if np.all(error + z * sem <= tolerance):
        return "PASS"
    return "INCONCLUSIVE"


@given(
    seed=st.integers(0, 2**31 - 1),
    m=st.integers(1, 6),
    n=st.integers(3, 40),
    offset=st.floats(-3.0, 3.0),
    spread=st.floats(0.01, 2.0),
    tolerance=st.floats(0.0, 3.0),
    relative=st.booleans(),
)
def test_decision_rule_equals_brute_force(seed, m, n, offset, spread, tolerance, relative):
    rng = np.random.default_rng(seed)
    values = rng.normal(offset * rng.uniform(0, 1, (m, 1)), spread, (m, n)) + 5.0
    predicted = 5.0 + rng.normal(0, 0.5, m)
    claim = claims.seed_mean(samples(values, point=np.arange(m)),
                             predicted=xr.DataArray(predicted, dims="point"), tolerance=tolerance,
                             relative=relative)  # fmt: skip
    assert claim.verdict == brute_force(values, predicted, tolerance, relative)
    assert claim.entries == m
    inside = None
    mean = values.mean(-1) / (predicted if relative else 1)
    sem = values.std(-1, ddof=1) / math.sqrt(n) / (np.abs(predicted) if relative else 1)
    z = stats.t.ppf(1 - 0.05 / (2 * m), n - 1)
    inside = np.abs(mean - (1 if relative else predicted)) + z * sem <= tolerance
    assert claim.holds == int(inside.sum())
    assert claim.z == pytest.approx(z)


def test_few_seeds_get_students_interval_not_the_normal_one():
    """Two seeds 0.01 apart around a mean 0.02 off the prediction: the normal z (1.96) would make
    the interval +-0.0098 and PASS within 0.03; Student's t with 1 degree of freedom (12.7) makes
    it +-0.064: the SEM of two seeds cannot show that. At 64 seeds t is within 2 % of z."""
    claim = claims.seed_mean(samples(np.array([1.015, 1.025])), predicted=1.0, tolerance=0.03)
    assert claim.stderr == pytest.approx(0.005)
    assert claim.z == pytest.approx(stats.t.ppf(0.975, 1)) and claim.z > 12
    assert claim.verdict == "INCONCLUSIVE"
    assert claims.t_family(1, 64) == pytest.approx(stats.norm.ppf(0.975), rel=0.02)


def test_one_precise_failing_entry_is_not_hidden_by_a_noisy_one():
    """The old "worst row" rule ranked by (error + z SE) / tolerance, so a noisy entry outranked
    a precise one clearly outside the tolerance and the claim read INCONCLUSIVE."""
    rng = np.random.default_rng(0)
    precise = 1.3 + rng.normal(0, 0.001, 100)  # 0.3 off, SE 1e-4: significantly outside 0.1
    noisy = 1.0 + rng.normal(0, 5.0, 100)  # SE 0.5: undecided
    claim = claims.seed_mean(samples(np.stack([precise, noisy]), point=["precise", "noisy"]),
                             predicted=1.0, tolerance=0.1)  # fmt: skip
    assert claim.verdict == "FAIL"
    assert claim.where == "point = precise"
    assert claim.holds == 0 and claim.entries == 2


@pytest.mark.parametrize("k, n", [(0, 24), (24, 24), (12, 12), (7, 30), (1, 1), (0, 1)])
@pytest.mark.parametrize("level", [0.95, 0.99])
def test_count_interval_is_clopper_pearson(k, n, level):
    low, high = claims._clopper_pearson(np.array([k]), np.array([n]), level)
    expected = stats.binomtest(k, n).proportion_ci(confidence_level=level, method="exact")
    assert low[0] == pytest.approx(expected.low, abs=1e-12)
    assert high[0] == pytest.approx(expected.high, abs=1e-12)


@pytest.mark.parametrize("k, n", [(24, 24), (12, 12), (0, 24)])
def test_all_or_none_is_not_an_exact_share(k, n):
    """24/24 only shows a share >= 0.86 at 95 %: "every run, within 0.05" is not yet shown."""
    hits = samples(np.arange(n) < k)
    predicted = 1.0 if k else 0.0
    claim = claims.share(hits, predicted=predicted, tolerance=0.05)
    assert claim.verdict == "INCONCLUSIVE"
    assert claim.stderr > 0
    interval = stats.binomtest(k, n).proportion_ci(method="exact")
    assert (claim.low, claim.high) == pytest.approx((interval.low, interval.high))
    # 0.05 needs the exact interval within 0.05 of the boundary: about 3.7 / 0.05 = 74 seeds.
    assert claim.seeds_needed is not None and 64 <= claim.seeds_needed <= 128
    bigger = claims.share(samples(np.arange(claim.seeds_needed) < (claim.seeds_needed if k else 0)),
                          predicted=predicted, tolerance=0.05)  # fmt: skip
    assert bigger.verdict == "PASS"


def test_share_fails_when_significantly_off_and_ignores_missing_outcomes():
    hits = np.r_[np.ones(10), np.zeros(30), np.full(5, np.nan)]
    claim = claims.share(samples(hits), predicted=1.0, tolerance=0.05)
    assert claim.verdict == "FAIL"
    assert claim.measured == 0.25 and claim.entries == 1
    with pytest.raises(ValueError, match="boolean"):
        claims.share(samples(np.array([0.0, 0.5, 1.0])), predicted=1.0, tolerance=0.1)


def test_bootstrap_se_of_a_mean_matches_the_analytic_se():
    rng = np.random.default_rng(1)
    n = 200
    values = rng.normal(0, 1, (3, n))
    claim = claims.seed_statistic(samples(values, x=[1, 2, 3]), lambda m: m.sum("x"),
                                  predicted=0.0, tolerance=10.0, n_boot=2000)  # fmt: skip
    analytic = values.sum(0).std(ddof=1) / math.sqrt(n)
    # The bootstrap SE is biased by sqrt((n - 1)/n) = 0.9975 and varies by about
    # 1/sqrt(2 n_boot) = 1.6 % between bootstrap draws: 6 % is about 4 of those.
    assert claim.stderr == pytest.approx(analytic, rel=0.06)
    assert claim.measured == pytest.approx(values.sum(0).mean())


def test_bootstrap_respects_common_random_numbers():
    """Two points of a curve that share their noise: their difference is exact per seed, so the
    SE of the difference is tiny, while pooling the points as if independent would not be."""
    rng = np.random.default_rng(2)
    common = rng.normal(0, 1, 64)
    values = np.stack([common, common + 0.5 + rng.normal(0, 1e-3, 64)])
    claim = claims.seed_statistic(samples(values, x=[0, 1]),
                                  lambda m: m.sel(x=1) - m.sel(x=0), predicted=0.5,
                                  tolerance=0.01)  # fmt: skip
    assert claim.stderr < 1e-3
    assert claim.verdict == "PASS"


def test_divergence_never_passes():
    values = np.random.default_rng(3).normal(1.0, 0.01, (2, 50))
    values[1, 7] = np.nan
    data = samples(values, point=[0, 1])
    claim = claims.seed_mean(data, predicted=1.0, tolerance=0.1)
    assert claim.verdict == "INCONCLUSIVE" and claim.diverged == 1
    assert claim.where == "point = 1"
    assert claims.seed_mean(data, predicted=1.0, tolerance=0.1, must_converge=True).verdict == (
        "FAIL"
    )
    flags = xr.zeros_like(data, dtype=bool)
    flags[0, 3] = True  # a finite blow-up flagged by the experiment
    flagged = claims.seed_mean(data.fillna(1.0), predicted=1.0, tolerance=0.1, diverged=flags)
    assert flagged.verdict == "INCONCLUSIVE" and flagged.diverged == 1
    statistic = claims.seed_statistic(data, lambda m: m.mean("point"), predicted=1.0,
                                      tolerance=0.1)  # fmt: skip
    assert statistic.verdict == "INCONCLUSIVE"


def test_identical_seeds_are_refused():
    with pytest.raises(ValueError, match="same value"):
        claims.seed_mean(samples(np.ones((2, 8)), point=[0, 1]), predicted=1.0, tolerance=0.1)
    with pytest.raises(ValueError, match="does not vary"):
        claims.seed_statistic(samples(np.ones((2, 8)), point=[0, 1]), lambda m: m.sum(),
                              predicted=1.0, tolerance=0.1)  # fmt: skip
    with pytest.raises(ValueError, match="stderr of 0"):
        claims.estimate(1.0, 0.0, predicted=1.0, tolerance=0.1, replicates="data bootstrap")


def test_entries_without_prediction_are_left_out_and_no_data_is_not_measured():
    values = np.random.default_rng(4).normal(1.0, 0.01, (3, 20))
    values[2] += 5  # far off, but not compared
    predicted = xr.DataArray([1.0, 1.0, np.nan], dims="point")
    claim = claims.seed_mean(samples(values, point=[0, 1, 2]), predicted=predicted,
                             tolerance=0.1)  # fmt: skip
    assert claim.verdict == "PASS" and claim.entries == 2
    none = claims.seed_mean(samples(values, point=[0, 1, 2]), predicted=np.nan, tolerance=0.1)
    assert none.verdict == "INCONCLUSIVE" and none.entries == 0
    assert "not measured" in none.where


def test_seeds_needed_decides_the_claim_at_the_same_mean_and_spread():
    base = np.random.default_rng(5).normal(0, 1, 40)
    base = (base - base.mean()) / base.std(ddof=1)  # mean 0, sd 1 exactly

    def claim(n):
        values = np.resize(base, n)
        values = (values - values.mean()) / values.std(ddof=1)
        return claims.seed_mean(samples(1.05 + 0.2 * values), predicted=1.0, tolerance=0.1)

    first = claim(40)
    assert first.verdict == "INCONCLUSIVE"
    # |d| = 0.05, half-width t(n - 1) SE = t * 0.2 / sqrt(n) <= 0.05 from n = 64 (0.04996;
    # 0.05037 at 63); the normal z would say 62.
    assert first.seeds_needed == 64
    assert claim(first.seeds_needed).verdict == "PASS"


def test_shift_moves_the_prediction_by_tolerances():
    values = np.random.default_rng(6).normal(1.0, 0.01, (4, 64))
    data = samples(values, point=np.arange(4))
    assert claims.seed_mean(data, predicted=1.0, tolerance=0.1).verdict == "PASS"
    for shift in (-2.0, 2.0):
        moved = claims.seed_mean(data, predicted=1.0, tolerance=0.1, shift=shift)
        assert moved.verdict == "FAIL"
        assert moved.predicted == pytest.approx(1.0 + shift * 0.1)


def test_judgement_margins_report_half_and_twice():
    values = np.random.default_rng(7).normal(1.07, 0.01, 64)
    judged = claims.seed_mean(samples(values), predicted=1.0, tolerance=0.1)
    assert (judged.verdict, judged.at_half, judged.at_twice) == ("PASS", "FAIL", "PASS")
    derived = claims.seed_mean(samples(values), predicted=1.0, tolerance=0.1,
                               tolerance_kind="derived")  # fmt: skip
    assert derived.at_half is None and derived.tolerance_kind == "derived"
    with unchecked(), pytest.raises(ValueError, match="tolerance_kind"):
        claims.seed_mean(samples(values), predicted=1.0, tolerance=0.1, tolerance_kind="guess")


def test_exact_and_estimate():
    measured = xr.DataArray([1.0, 1.001, np.inf], dims="s", coords=dict(s=[1, 2, 3]))
    assert claims.exact(measured[:2], predicted=1.0, tolerance=1e-3).verdict == "PASS"
    off = claims.exact(measured[:2], predicted=1.0, tolerance=1e-4)
    assert off.verdict == "FAIL" and off.where == "s = 2"
    assert claims.exact(measured, predicted=1.0, tolerance=1e-2).verdict == "INCONCLUSIVE"
    est = claims.estimate(1.1, 0.01, predicted=1.0, tolerance=0.05, replicates="data bootstrap")
    assert est.verdict == "FAIL" and "data bootstrap" in est.where


def test_table_declares_evaluates_and_never_drops_a_claim(tmp_path):
    rng = np.random.default_rng(8)
    data = xr.Dataset(dict(loss=(("set", "seed"), rng.normal(1.0, 0.01, (2, 32)))),
                      coords=dict(set=["a", "b"]))  # fmt: skip

    def missing(data):
        raise claims.NotMeasured("no runs reached the window")

    table = claims.Table(
        claims.Spec("toy.loss", "THEORY.md", "the loss is 1", claims.seed_mean,
                    lambda d: dict(samples=d.loss, predicted=1.0, tolerance=0.1)),
        claims.Spec("toy.{set}.loss", "THEORY.md", "the loss of {set} is 1", claims.seed_mean,
                    lambda d: dict(samples=d.loss, predicted=1.0, tolerance=0.1), over=("set",)),
        claims.Spec("toy.late", "P0", "late runs at beta in {0.1, 0.3}", claims.seed_mean, missing),
    )  # fmt: skip
    made = table.evaluate(data)
    assert [c.id for c in made] == ["toy.loss", "toy.a.loss", "toy.b.loss", "toy.late"]
    assert made[0].entries == 2 and made[1].statement == "the loss of a is 1"
    assert made[-1].verdict == "INCONCLUSIVE" and "no runs reached" in made[-1].where
    assert table.listing() == {
        "toy.loss": "the loss is 1 [seed_mean, judgement tolerance]",
        "toy.*.loss": "the loss of <set> is 1 [seed_mean, judgement tolerance]",
        "toy.late": "late runs at beta in {0.1, 0.3} [seed_mean, judgement tolerance]",
    }
    with pytest.raises(ValueError, match="unique"):
        claims.Table(table.specs[0], table.specs[0])
    (empty,) = table.specs[1].evaluate(data.isel(set=slice(0, 0)))
    assert empty.id == "toy.*.loss" and empty.verdict == "INCONCLUSIVE" and empty.entries == 0
    # Engine claims survive report.json with every field and their verdicts.
    saved = Report("toy", made, data).save(tmp_path)
    assert Report.load(saved).claims == made


@dataclasses.dataclass(frozen=True)
class Scales:
    """An experiment's Config: full-scale defaults; QUICK_SCALES is its --quick."""

    sphere_time: float = 1000.0
    beta: tuple[float, ...] = (0.5, 1.0)
    n_seeds: int = 64
    quick: bool = False


QUICK_SCALES = Scales(sphere_time=100.0, n_seeds=8, quick=True)


def _cluster_table() -> claims.Table:
    """Two claims naming Config fields: one plain, one an f-string over a dim (escaped braces)
    beside a literal set, which stays as it is."""
    tolerance = 0.1
    return claims.Table(
        claims.Spec("toy.cluster", "THEORY.md", "one cluster by t = {cfg.sphere_time} at every "
                    "beta in {cfg.beta} ({cfg.n_seeds} seeds)", claims.seed_mean,
                    lambda d: dict(samples=d.loss.isel(set=0), predicted=1.0, tolerance=0.1)),
        claims.Spec("toy.{set}.loss", "THEORY.md", f"the loss of {{set}} is 1 within {tolerance} "
                    f"by t = {{cfg.sphere_time}}, beta in {{0.1, 0.3}}", claims.seed_mean,
                    lambda d: dict(samples=d.loss, predicted=1.0, tolerance=0.1), over=("set",)),
        config=Scales,
    )  # fmt: skip


def test_a_report_states_the_config_the_run_used():
    rng = np.random.default_rng(11)
    data = xr.Dataset(dict(loss=(("set", "seed"), rng.normal(1.0, 0.01, (2, 32)))),
                      coords=dict(set=["a", "b"]))  # fmt: skip
    table = _cluster_table()
    quick = [c.statement for c in table.evaluate(data, config=QUICK_SCALES)]
    assert quick == ["one cluster by t = 100 at every beta in (0.5, 1) (8 seeds)",
                     "the loss of a is 1 within 0.1 by t = 100, beta in {0.1, 0.3}",
                     "the loss of b is 1 within 0.1 by t = 100, beta in {0.1, 0.3}"]  # fmt: skip
    full = table.evaluate(data, config=Scales())
    assert full[0].statement == "one cluster by t = 1000 at every beta in (0.5, 1) (64 seeds)"
    # A Report's config (report.json: tuples read back as lists) states the same.
    recorded = {"sphere_time": 100.0, "beta": [0.5, 1.0], "n_seeds": 8, "quick": True}
    assert [c.statement for c in table.evaluate(data, config=recorded)] == quick
    assert [c.statement for _, c, _ in table.power(data, config=recorded)] == quick
    # Without the run's config a statement names the field, never a value of one scale.
    unstated = "one cluster by t = sphere_time at every beta in beta (n_seeds seeds)"
    assert table.evaluate(data)[0].statement == unstated
    assert [c.verdict for c in full] == [c.verdict for c in table.evaluate(data)]


def test_listing_shows_the_config_field_at_both_scales():
    table = _cluster_table()
    assert table.listing(quick=QUICK_SCALES) == {
        "toy.cluster": "one cluster by t = sphere_time (1000; --quick 100) at every beta in beta "
                       "((0.5, 1)) (n_seeds (64; --quick 8) seeds) [seed_mean, judgement "
                       "tolerance]",
        "toy.*.loss": "the loss of <set> is 1 within 0.1 by t = sphere_time (1000; --quick 100), "
                      "beta in {0.1, 0.3} [seed_mean, judgement tolerance]",
    }  # fmt: skip
    # One scale: its values only; the default is the table's Config().
    assert table.listing()["toy.*.loss"].startswith("the loss of <set> is 1 within 0.1 by t = "
                                                    "sphere_time (1000), beta")  # fmt: skip
    assert "sphere_time (100)" in table.listing(QUICK_SCALES)["toy.*.loss"]
    bare = claims.Table(*table.specs)  # no Config known: the field's name
    assert bare.listing()["toy.cluster"].startswith("one cluster by t = sphere_time at every")


def test_a_statement_naming_a_field_the_config_lacks_is_refused_up_front():
    typo = claims.Spec("toy.typo", "THEORY.md", "by t = {cfg.sphere_tme}", claims.seed_mean,
                       lambda d: {})  # fmt: skip
    with pytest.raises(ValueError, match=r"claim 'toy.typo'.*\{cfg.sphere_tme\}.*Scales has no "
                                         r"field 'sphere_tme'"):  # fmt: skip
        claims.Table(typo, config=Scales)  # when the table is built (at import)
    table = claims.Table(typo)  # no Config given: refused when listed
    with pytest.raises(ValueError, match="claim 'toy.typo'.*sphere_tme"):
        table.listing(Scales(), QUICK_SCALES)
    with pytest.raises(ValueError, match="claim 'toy.typo'.*the config has no field"):
        table.evaluate(xr.Dataset(), config={"sphere_time": 1.0})
    with pytest.raises(ValueError, match="claim 'toy.{cfg.n}': a Config field.*not in the id"):
        claims.Spec("toy.{cfg.n}", "THEORY.md", "n", claims.seed_mean, lambda d: {})
    with unchecked(), pytest.raises(TypeError, match="Config class"):
        claims.Table(typo, config=Scales())  # type: ignore[arg-type]


def test_claim_refuses_a_verdict_its_fields_contradict():
    with pytest.raises(ValueError, match="PASS needs"):
        Claim("c", "s", "t", 1.0, 1.5, 0.0, 0.1, verdict="PASS")
    with pytest.raises(ValueError, match="PASS needs"):
        Claim("c", "s", "t", 1.0, 1.0, 0.0, 0.1, entries=3, holds=2, verdict="PASS")
    with pytest.raises(ValueError, match="FAIL needs"):
        Claim("c", "s", "t", 1.0, 1.0, 0.0, 0.1, verdict="FAIL")


def test_vectorised_bootstrap_equals_one_resample_at_a_time():
    """A statistic that works on a block of resamples (named dims) and the same statistic
    written positionally (called once per resample) give the same SE from the same draws."""
    rng = np.random.default_rng(9)
    x = samples(rng.random((2, 3, 40)) + 1, part=["n", "d"], s=[1.0, 2.0, 3.0])
    named = claims.bootstrap(x, lambda m: m.sel(part="n") / m.sel(part="d"), n_boot=300)

    def positional(m):
        assert m.ndim == 2  # one resample at a time
        return xr.DataArray(m.values[0] / m.values[1], dims="s", coords=dict(s=m.s))

    one_by_one = claims.bootstrap(x, positional, n_boot=300)
    np.testing.assert_allclose(named[1].values, one_by_one[1].values, rtol=1e-10)
    np.testing.assert_allclose(named[0].values, one_by_one[0].values, rtol=1e-12)


def test_one_sided_claims():
    """ "At least 0.05 below 1": a ratio of 0.5 holds, 0.99 fails, and the margin scales for the
    half / twice verdicts (0.96 holds at half the margin only)."""
    rng = np.random.default_rng(10)

    def ratio(value):
        return samples(value + rng.normal(0, 0.001, 64))

    below = dict(predicted=1.0, tolerance=0.05, side="below")
    assert claims.seed_mean(ratio(0.5), **below).verdict == "PASS"
    assert claims.seed_mean(ratio(0.99), **below).verdict == "FAIL"
    near = claims.seed_mean(ratio(0.96), **below)
    assert (near.verdict, near.at_half, near.at_twice) == ("FAIL", "PASS", "FAIL")
    assert "one-sided" in near.details()
    positive = claims.seed_mean(ratio(0.01), predicted=0.0, tolerance=0.0, side="above")
    assert positive.verdict == "PASS" and positive.seeds_needed is None
    with unchecked(), pytest.raises(ValueError, match="side"):
        claims.seed_mean(ratio(0.5), predicted=1.0, tolerance=0.05, side="left")  # type: ignore


def test_seeds_without_an_outcome_are_not_divergence():
    values = np.array([[0.2, np.nan, 0.3, 0.25, 0.22], [0.2, 0.21, np.nan, 0.3, 0.25]])
    data = samples(values, point=[0, 1])
    assert claims.seed_mean(data, predicted=0.25, tolerance=0.5).diverged == 2
    seen = xr.DataArray(np.isfinite(values), dims=("point", "seed"))
    claim = claims.seed_mean(data, predicted=0.25, tolerance=0.5, observed=seen)
    assert claim.diverged == 0 and claim.verdict == "PASS"
    values[0, 0] = np.inf  # an observed seed that blew up is still a divergence
    assert claims.seed_mean(samples(values, point=[0, 1]), predicted=0.25, tolerance=0.5,
                            observed=seen).diverged == 1  # fmt: skip


def test_a_diverged_seed_blocks_a_share_from_passing():
    hits = samples(np.zeros(200, bool))
    assert claims.share(hits, predicted=0.0, tolerance=0.05).verdict == "PASS"
    flags = xr.DataArray(np.arange(200) == 3, dims="seed")
    flagged = claims.share(hits, predicted=0.0, tolerance=0.05, diverged=flags)
    assert flagged.verdict == "INCONCLUSIVE" and flagged.diverged == 1


def test_an_entry_left_out_needs_no_tolerance():
    measured = xr.DataArray([1.0, 2.0], dims="x")
    claim = claims.exact(measured, predicted=xr.DataArray([1.0, np.nan], dims="x"),
                         tolerance=xr.DataArray([0.1, np.nan], dims="x"))  # fmt: skip
    assert claim.verdict == "PASS" and claim.entries == 1
    with pytest.raises(ValueError, match="tolerance must be >= 0"):
        claims.exact(measured, predicted=1.0, tolerance=xr.DataArray([0.1, np.nan], dims="x"))
