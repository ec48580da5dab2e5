import dataclasses
import json

import jax.numpy as jnp
import numpy as np
import pytest
from conftest import RTOL, assert_within_budget, run_counted

from spectral_sim import Empirical, theory
from spectral_sim.experiments import latent_number
from spectral_sim.models import ridge

# Smaller than --quick: two rho, a short double-descent grid, 512 draws.
CONFIG = latent_number.Config(
    rho=(1.5, 4.0),
    n_times=100,
    n_samples=20,
    features=(4, 10, 19, 21, 30, 60),
    n_seeds=512,
)
# P1's claims are wrong (THEORY.md §1 rows 9, 10): the exponent is 1 at every rho (ratio 1, not
# ln 4 / ln 1.5 = 3.4) and below n the variance is n / (n - N - 1) times P1's sigma^2 N/n
# (1.33x at N = 4, 2.2x at N = 10 for n = 20, outside 10 %).
EXPECTED_FAIL = {"latent.p1_alpha_log_rho", "latent.p1_leading_order"}
# Deterministic (exact flow, float32 GD) against derived bounds: these must PASS outright.
EXACT = {"latent.exponent", "latent.level", "latent.ripple", "latent.gd_exponent"}
# No power at test scale, by construction: the peak is located from the two N with a finite-
# variance risk (|N - n| > 3) nearest n on each side, here 4, 10 and 30, 60 (19 and 21 have an
# infinite mean), where even the exact risk's fitted vertex is at 42.5, not 20; the claim is
# then not measured (test_peak_claim_locates_the_peak covers it on a grid that resolves it).
NOT_MEASURED = {"latent.peak"}


@pytest.fixture(scope="module")
def report():
    return run_counted(latent_number, CONFIG)


def test_compiles_within_its_budget(report):
    assert_within_budget("latent_number")


def by_id(claims) -> dict:
    return {c.id: c for c in claims}


def test_report_has_every_claim_figure_and_saves(report, tmp_path):
    ids = set(latent_number.CLAIMS.ids())
    claims = by_id(report.claims)
    assert set(claims) == ids and len(ids) == 8
    # Every rho is an entry; the Monte Carlo entries leave out |N - n| <= 3 (19 and 21), and
    # P1's variance claim the N above n.
    assert {claims[f"latent.{i}"].entries for i in ("exponent", "level", "ripple")} == {2}
    assert claims["latent.double_descent_exact"].entries == 4  # N = 4, 10, 30, 60
    assert claims["latent.p1_leading_order"].entries == 2  # N = 4, 10
    path = report.save(tmp_path / "out")
    saved = json.loads((path / "report.json").read_text())
    assert {c["id"] for c in saved["claims"]} == ids
    for name in ("geometric.png", "double_descent.png", "data.nc"):
        assert (path / name).exists()


def test_verdicts_are_computed_not_fixed(report):
    """Scale the exact-flow exponents by log rho (P1's law): the exponent claim must fail and
    P1's claim pass; halve the Monte Carlo risks: the double-descent claim must fail."""
    data = report.data.copy()
    data["geo_exponent"] = np.log(data.rho) / np.log(data.rho.min())
    claims = by_id(latent_number.CLAIMS.evaluate(data))
    assert claims["latent.exponent"].verdict == "FAIL"
    assert claims["latent.p1_alpha_log_rho"].verdict == "PASS"
    data = report.data.copy()
    data["dd_risk"] = data.dd_risk * 0.5
    claims = by_id(latent_number.CLAIMS.evaluate(data))
    assert claims["latent.double_descent_exact"].verdict == "FAIL"


def test_claims_have_power(report):
    """Every prediction moved by twice its tolerance, either way, is caught (FAIL); the claims
    THEORY.md expects to hold are not FAIL, P1's are."""
    for claim, minus, plus in latent_number.CLAIMS.power(report.data):
        if claim.id in NOT_MEASURED:
            assert claim.verdict == "INCONCLUSIVE" and claim.entries == 0, claim
            assert "cannot locate the peak" in claim.where and "42.5" in claim.where, claim
            continue
        assert (minus.verdict, plus.verdict) == ("FAIL", "FAIL"), claim.id
        if claim.id in EXPECTED_FAIL:
            assert claim.verdict == "FAIL", claim
        elif claim.id in EXACT:
            assert claim.verdict == "PASS", claim
        else:
            assert claim.verdict != "FAIL", claim


def test_peak_claim_locates_the_peak(report):
    """On a grid with finite-variance points near n = 20 (14, 16 | 24, 26) and seeds drawn as
    the exact risk times a mean-one exponential factor, the fitted vertex is the exact curve's
    (20.9: the pole's shape tilts a parabola), inside n +/- 4 (half of 24 - 16), and a
    prediction moved by 2 tolerances either way is caught."""
    features = np.array([4, 14, 16, 19, 21, 24, 26, 60])
    exact = theory.ols_risk(n=20.0, d=jnp.asarray(features, float), noise=CONFIG.noise,
                           w_norm2=CONFIG.w_norm2)  # fmt: skip
    # Exponential factors: relative SD 1, about the Monte Carlo risk's at |N - n| = 4 to 10
    # (0.6 at N = 30, 0.8 at 34, 1.2 at 36 for n = 40 in the --quick run).
    noise = np.random.default_rng(0).exponential(1.0, (features.size, 512))
    risk = np.where(np.isfinite(exact)[:, None], np.asarray(exact)[:, None] * noise, 1e3)
    data = report.data.drop_dims(["dd_features", "dd_seed"]).assign(
        dd_risk=(("dd_features", "dd_seed"), risk), dd_exact=("dd_features", np.asarray(exact)),
        dd_p1=("dd_features", CONFIG.noise * features / 20.0),
    ).assign_coords(dd_features=features)  # fmt: skip
    ((claim, minus, plus),) = [
        row for row in latent_number.CLAIMS.power(data) if row[0].id == "latent.peak"
    ]
    assert claim.tolerance == 4.0 and claim.predicted == 20.0
    # The vertex's bootstrap SE over 512 such seeds is about 0.1 (0.09 to 0.12 over draws 0-2):
    # the vertex must lie within 3 SE (0.3) of the exact curve's 20.86, its SE below 3 x 0.1.
    assert claim.measured == pytest.approx(20.86, abs=0.3)
    assert 0 < claim.stderr < 0.3
    assert (claim.verdict, minus.verdict, plus.verdict) == ("PASS", "FAIL", "FAIL")


@pytest.mark.parametrize(
    "change, field",
    [
        (dict(rho=(1.0,)), "rho"),
        (dict(rho=(2.0, 2.0)), "rho"),
        (dict(features=()), "features"),
        (dict(gd_lr=3.0), "gd_lr"),
        (dict(n_seeds=2), "n_seeds"),
    ],
)
def test_bad_config_names_the_field(change, field):
    with pytest.raises(ValueError, match=f"^{field} must"):
        latent_number.run(dataclasses.replace(CONFIG, **change))


@pytest.mark.parametrize("n_features, n_max", [(4, 60), (19, 60), (20, 60), (21, 60), (60, 60),
                                                (4, 12)])  # fmt: skip
def test_the_padded_design_is_min_norm_on_its_first_n_features(n_features, n_max, key):
    """One program for every N: the draw padded to n_max columns (the inactive ones zero) fits
    what ridge.estimate fits at ridge 0 on the active columns alone, OLS below n = 20 and the
    min-norm interpolator above, and puts weight 0 on the rest (an identity: RTOL); n_max <= n
    takes the OLS form alone."""
    design = latent_number.Design(
        jnp.asarray(0.25), jnp.asarray(1.0), jnp.asarray(float(n_features)), n_max
    )
    x, y, w_star, active = latent_number._draw(design, 20, key)
    assert np.all(np.asarray(x)[:, n_features:] == 0)
    assert np.allclose(np.asarray(w_star)[:n_features], np.sqrt(1.0 / n_features))
    params = ridge.Params(Empirical(jnp.ones(n_features), jnp.ones(n_features)), ridge=0.0,
                          n_samples=20)  # fmt: skip
    reference = ridge.estimate(params, x[:, :n_features], y)
    fitted = np.asarray(latent_number._min_norm(x, y, active))
    np.testing.assert_allclose(fitted[:n_features], reference, rtol=RTOL["float64"], atol=1e-12)
    assert np.all(fitted[n_features:] == 0)
