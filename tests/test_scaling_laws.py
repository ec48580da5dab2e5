import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import RTOL, assert_within_budget, run_counted
from jax.scipy.special import zeta

from spectral_sim import PowerLaw, sweep, theory
from spectral_sim.experiments import scaling_laws
from spectral_sim.models import linear

CLAIMS = {
    "scaling.loss_exponent",
    "scaling.allocation_exponent",
    "scaling.paper_exponent_isotropic",
    "scaling.paper_exponent_general",
    "scaling.s_alone",
    "scaling.chinchilla_n_equals_d",
    "scaling.chinchilla_loss_exponent",
    "scaling.hard_truncation_gap",
    "scaling.soft_truncation_prefactor",
    "scaling.soft_allocation_exponent",
    "scaling.sgd_loss_exponent",
    "scaling.sgd_frontier_recursion",
    "scaling.rf_saturation",
    "scaling.rf_frontier_loss_exponent",
    "scaling.rf_frontier_width_exponent",
}


# Claims THEORY.md §1 rows 1-4 expects to FAIL: [P0]'s (s-1)/(s+1) for a != s, "s alone",
# "N ~ D" and the 50x hard-truncation gap.
EXPECTED_FAIL = {
    "scaling.paper_exponent_general",
    "scaling.s_alone",
    "scaling.chinchilla_n_equals_d",
    "scaling.hard_truncation_gap",
}
# Claims without power at this test scale (8 draws of F on M = 512 modes, widths <= 128): the
# interval reaches past the tolerance band, so the claim is undecided and a prediction moved by
# 2 tolerances is not always caught. rf_saturation: 1.505 +- 0.083 (SE), z SE = 0.16 > 0.1.
# rf_frontier_loss_exponent: 0.312 +- 0.009, 0.022 below 1/3 (pre-asymptotic), so |error| + z SE =
# 0.040 > 0.03 and the prediction moved down by 2 tolerances stays in reach.
# rf_frontier_width_exponent: 0.344 +- 0.031, z SE = 0.061 > 0.03. More draws do not help here
# (24 and 16 draws: 1.56 +- 0.055 and 0.306 +- 0.011, twice the runtime); at --quick (24 and 16
# draws, M = 2048) the first two have power, the third only when moved down.
NO_POWER = {
    "scaling.rf_saturation",
    "scaling.rf_frontier_loss_exponent",
    "scaling.rf_frontier_width_exponent",
}


# Smaller than --quick: 5 budgets over 2 decades, one SGD pair with 16 seeds, a 512-mode
# random-feature spectrum; every claim still has the pairs it needs. n_boot = 50 is the claim
# engine's smallest seed bootstrap.
CONFIG = scaling_laws.Config(
    pairs=((2.0, 2.0), (3.0, 3.0), (3.0, 1.5)), compute=(1e6, 1e8), n_compute=5, n_cols=9,
    sgd_pairs=((2.0, 2.0),), sgd_compute=(3e3, 1e5), sgd_n_compute=5, sgd_cols=5,
    n_seeds=16, n_boot=50, rf_pairs=((1.5, 3.5),), rf_features=(16, 32, 64), rf_modes=512,
    rf_seeds=8, rff_compute=(3e2, 3e4), rff_widths=(4, 128), rff_cols=12, rff_modes=512,
    rff_seeds=8, quick=True,
)  # fmt: skip


@pytest.fixture(scope="module")
def report():
    return run_counted(scaling_laws, CONFIG)


def test_compiles_within_its_budget(report):
    assert_within_budget("scaling_laws")


def _claims(data) -> dict:
    return {c.id: c for c in scaling_laws.CLAIMS.evaluate(data)}


def test_report_has_every_claim_and_saves(report, tmp_path):
    assert {c.id for c in report.claims} == CLAIMS
    assert all(c.verdict in ("PASS", "FAIL", "INCONCLUSIVE") for c in report.claims)
    # No divergence and every minimum interior at these sizes: the notes only give the hard
    # rule's K_L and the random-feature Monte Carlo against its deterministic equivalent.
    assert [note.split(" ")[0] for note in report.notes] == ["hard-truncation", "random"]
    path = report.save(tmp_path / "out")
    saved = json.loads((path / "report.json").read_text())
    assert {c["id"] for c in saved["claims"]} == CLAIMS
    for name in ("iso_compute", "exponents", "sgd_iso_compute"):
        assert (path / f"{name}.png").exists()
    assert (path / "data.nc").exists()


def test_deterministic_gf_verdicts(report):
    """The exact-GF claims are deterministic: the general exponents hold, [P0]'s a != s formula,
    's alone', 'N ~ D' and the 50x hard-truncation gap do not (THEORY.md §1 rows 1-4), at every
    pair (each pair is an entry)."""
    claims = {c.id: c for c in report.claims}
    for claim_id in ("loss_exponent", "allocation_exponent", "soft_truncation_prefactor",
                     "soft_allocation_exponent"):  # fmt: skip
        claim = claims[f"scaling.{claim_id}"]
        assert (claim.verdict, claim.entries, claim.tolerance_kind) == ("PASS", 4, "derived")
    assert claims["scaling.paper_exponent_isotropic"].entries == 2  # (2, 2) and (3, 3)
    for claim_id in ("paper_exponent_isotropic", "chinchilla_loss_exponent"):
        assert claims[f"scaling.{claim_id}"].verdict == "PASS"
    for claim_id in EXPECTED_FAIL:
        assert claims[claim_id].verdict == "FAIL"
    gap = claims["scaling.hard_truncation_gap"]
    # Within its own derived tolerance of 1 (identical exponents, THEORY.md §2.5).
    assert gap.measured == pytest.approx(1, abs=gap.tolerance)


def test_verdicts_are_computed_not_fixed(report):
    """Tilt the GF losses by C^0.05 and inflate the SGD losses by 50%: the loss-exponent and
    recursion claims must stop passing."""
    data = report.data.copy()
    data["gf_loss"] = data.gf_loss * data["compute"] ** 0.05
    data["sgd_loss"] = data.sgd_loss * 1.5
    claims = _claims(scaling_laws.with_frontiers(data))
    assert claims["scaling.loss_exponent"].verdict == "FAIL"
    assert claims["scaling.sgd_frontier_recursion"].verdict == "FAIL"


def test_recursion_claim_is_decided_by_its_worst_row(report):
    """Every row is an entry: one row 40 % off the recursion fails the claim, although the mean
    ratio over the 5 rows (1.08) is within its 10 %."""
    data = report.data.copy(deep=True)
    data["sgd_loss"][:, 2] = data.sgd_loss[:, 2] * 1.4
    claim = _claims(scaling_laws.with_frontiers(data))["scaling.sgd_frontier_recursion"]
    assert (claim.verdict, claim.entries) == ("FAIL", 5)
    assert "sgd_row = 2" in claim.where


def test_sgd_claims_need_lr_well_inside_stability(report):
    """THEORY.md §8: near chi = 1 the Monte Carlo is heavy-tailed, so the SGD claims are made only
    at lr <= 0.5 lr_c; at 0.9 lr_c they are not measured."""
    claims = _claims(report.data.assign_coords(sgd_lr_frac=0.9))
    for claim_id in ("scaling.sgd_loss_exponent", "scaling.sgd_frontier_recursion"):
        assert claims[claim_id].verdict == "INCONCLUSIVE"
        assert claims[claim_id].where.startswith("not measured: lr_frac = 0.9 > 0.5")


@pytest.mark.slow
def test_claims_have_power(report):
    """Every prediction moved by twice its tolerance, either way, is caught (FAIL), and the
    claims THEORY.md expects to hold are not FAIL; the claims without power at this scale are
    undecided, with the seeds that would decide them."""
    for claim, minus, plus in scaling_laws.CLAIMS.power(report.data):
        if claim.id in NO_POWER:
            assert (claim.verdict, claim.entries) == ("INCONCLUSIVE", 1), claim  # measured
            assert claim.seeds_needed, claim
            assert abs(claim.measured - claim.predicted) + claim.z * claim.stderr > claim.tolerance
            continue
        assert claim.id in EXPECTED_FAIL or claim.verdict != "FAIL", claim
        assert (minus.verdict, plus.verdict) == ("FAIL", "FAIL"), claim.id


def test_diverged_and_edge_rows_are_noted_not_plotted(report):
    data = report.data.copy(deep=True)
    data["sgd_loss"][0, 0, 2, 0] = np.inf  # one diverged run in the first SGD row
    n = data.n.isel(pair=0, row=0)
    data["gf_loss"][0, 0] = data.gf_loss.isel(pair=0, row=0) * (n / n.min()) ** 2  # edge minimum
    data = scaling_laws.with_frontiers(data)
    notes = scaling_laws.notes(data)
    assert any(note.startswith("SGD diverged") and "C=3e+03" in note for note in notes)
    assert any(
        note.startswith("GF soft (2, 2)") and "edge of the N range" in note for note in notes
    )
    claims = _claims(data)  # a diverged seed is left out, and the claims cannot pass
    for claim_id in ("scaling.sgd_loss_exponent", "scaling.sgd_frontier_recursion"):
        assert claims[claim_id].verdict != "PASS" and claims[claim_id].diverged, claim_id
    figures = scaling_laws.figures(data)
    sgd_labels = [line.get_label() for line in figures["sgd_iso_compute"].axes[0].get_lines()]
    first, second = (f"C = {c:.2g}" for c in data.sgd_compute.values[:2])
    assert first not in sgd_labels and second in sgd_labels
    lines = figures["iso_compute"].axes[0].get_lines()
    frontier = next(line for line in lines if line.get_gid() == "frontier-soft")
    assert len(frontier.get_xdata()) == data.sizes["row"] - 1  # the edge row is not plotted


def test_gf_point_is_the_discrete_formula():
    # THEORY.md §2.6: L(N, t) = 1/2 sum_{k<=N} k^-a e^(-2 k^-s t) + 1/2 zeta(a, N + 1).
    s, a, n, t, modes = 2.0, 1.5, 37.0, 1234.5, 64
    point = scaling_laws.Budget(
        linear.Params(PowerLaw(s=s, a=a, n_modes=modes), n_trainable=n), data=t
    )
    out = scaling_laws._gf_point(point, None)
    k = np.arange(1, n + 1)
    expected = 0.5 * np.sum(k**-a * np.exp(-2 * k**-s * t)) + 0.5 * float(zeta(a, n + 1))
    assert float(out["gf_loss"]) == pytest.approx(expected, rel=RTOL["float64"])
    learned = k[k**-s * t >= 1].max()  # the hard rule keeps the modes with lambda t >= 1
    expected_hard = 0.5 * float(zeta(a, learned + 1))
    assert float(out["hard_loss"]) == pytest.approx(expected_hard, rel=RTOL["float64"])


@pytest.mark.slow
def test_random_feature_frontier_is_the_nested_flow():
    """A point of the random-feature frontier sweep is gf_loss_given_features at t = C / d on
    the draw's first d Gaussian columns (column j of draw i from fold_in(fold_in(key, i), j)),
    plus the modes beyond M: the zero columns that pad d to its power-of-two bucket (d = 4 of 8,
    21 of 32) change nothing. The draws are a grid axis (chunks may split them): a draw is the
    same whatever the number of draws."""
    cfg = scaling_laws.Config(
        rff_pairs=((2.0, 2.0),), rff_compute=(1e2, 1e4), rff_n_compute=3, rff_widths=(4, 64),
        rff_cols=6, rff_modes=256, rff_seeds=2,
    )  # fmt: skip
    data = scaling_laws.random_feature_frontier(cfg, sweep.Options(progress=False))
    widths = data.rff_d.values
    assert widths.tolist() == [4, 7, 12, 21, 37, 64]
    spectrum = PowerLaw(s=2.0, a=2.0, n_modes=256)
    # draw 1 of the sweep's one seed (seed 0, common random numbers)
    key = jax.random.fold_in(jax.random.fold_in(jax.random.key(cfg.seed), 0), 1)
    columns = [jax.random.normal(jax.random.fold_in(key, j), (256,)) for j in range(64)]
    widest = jnp.stack(columns, axis=1)
    for j in (0, 3):
        d = int(widths[j])
        times = data.rff_compute.values / d
        expected = theory.random_features.gf_loss_given_features(
            spectrum, widest[:, :d] * d**-0.5, times
        ) + 0.5 * zeta(2.0, 257.0)
        np.testing.assert_allclose(data.rff_loss.values[0, :, j, 1], expected, rtol=RTOL["float64"])
    one = scaling_laws.random_feature_frontier(dataclasses.replace(cfg, rff_seeds=1),
                                               sweep.Options(progress=False))  # fmt: skip
    np.testing.assert_array_equal(one.rff_loss.values[..., 0], data.rff_loss.values[..., 0])


def test_frozen_modes_are_label_noise():
    """The SGD sweep's reduction (simulate_sgd): modes beyond M frozen at -w* are label noise
    zeta(a, M + 1), so the exact recursion on M modes plus their loss equals the recursion on a
    larger spectrum with the same trained modes (an identity, up to rounding)."""
    s, a, n, lr, batch, m, big = 2.0, 2.0, 20.0, 0.3, 4, 32, 512
    steps = np.array([1, 10, 100, 1000])
    small = linear.Params(
        PowerLaw(s=s, a=a, n_modes=m), lr=lr, batch=batch, n_trainable=n,
        noise=float(zeta(a, m + 1.0)),
    )  # fmt: skip
    large = linear.Params(
        PowerLaw(s=s, a=a, n_modes=big), lr=lr, batch=batch, n_trainable=n,
        noise=float(zeta(a, big + 1.0)),
    )  # fmt: skip
    reduced = theory.linear.loss(small, steps) + 0.5 * small.noise
    full = theory.linear.loss(large, steps) + 0.5 * large.noise
    np.testing.assert_allclose(reduced, full, rtol=1e-12)
    assert bool(jnp.all(jnp.isfinite(reduced)))


@pytest.mark.parametrize(
    "change, field",
    [
        (dict(pairs=((2.0, 1.0),)), "pairs"),
        (dict(pairs=()), "pairs"),
        (dict(sgd_pairs=((0.0, 2.0),)), "sgd_pairs"),
        (dict(compute=(1e9, 1e5)), "compute"),
        (dict(compute=(10.0, 1e8)), "compute"),  # too few modes for distinct integer N
        (dict(n_cols=2), "n_cols"),
        (dict(span=1.0), "span"),
        (dict(lr_frac=0.0), "lr_frac"),
        (dict(batch=0), "batch"),
        (dict(n_seeds=1), "n_seeds"),
        (dict(n_boot=49), "n_boot"),
        (dict(rf_features=(16, 16, 32)), "rf_features"),
        (dict(rf_features=(16, 32, 4096)), "rf_features"),
        (dict(rff_widths=(4, 4096)), "rff_widths"),
        (dict(rff_widths=(4, 5)), "rff_widths"),
        (dict(rff_compute=(1e5, 1e3)), "rff_compute"),
    ],
)
def test_bad_config_raises_before_running(change, field):
    cfg = dataclasses.replace(scaling_laws.Config(quick=True), **change)
    with pytest.raises(ValueError, match=field):
        scaling_laws.run(cfg)
