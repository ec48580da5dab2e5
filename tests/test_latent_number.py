import dataclasses
import json

import pytest

import experiments
from experiments import latent_number

CLAIMS = {
    "latent.exponent",
    "latent.p1_alpha_log_rho",
    "latent.level",
    "latent.ripple",
    "latent.gd_exponent",
    "latent.double_descent_exact",
    "latent.p1_leading_order",
    "latent.peak",
}
# Smaller than --quick: two rho, a short double-descent grid, 512 draws.
CONFIG = latent_number.Config(
    rho=(1.5, 4.0),
    n_times=100,
    n_samples=20,
    features=(4, 10, 19, 21, 30, 60),
    n_seeds=512,
)


@pytest.fixture(scope="module")
def report():
    return latent_number.run(CONFIG)


def test_report_has_every_claim_figure_and_saves(report, tmp_path):
    assert {c.id for c in report.claims} == CLAIMS
    verdicts = {c.id: c.verdict for c in report.claims}
    for exact in ("exponent", "level", "ripple", "gd_exponent"):
        assert verdicts[f"latent.{exact}"] == "PASS", exact
    assert verdicts["latent.p1_alpha_log_rho"] == "FAIL"
    assert verdicts["latent.p1_leading_order"] == "FAIL"
    path = report.save(tmp_path / "out")
    saved = json.loads((path / "report.json").read_text())
    assert {c["id"] for c in saved["claims"]} == CLAIMS
    for name in ("geometric.png", "double_descent.png", "data.nc"):
        assert (path / name).exists()


def test_verdicts_are_computed_not_fixed(report):
    """Scale the exact-flow exponents by log rho (P1's law): the exponent claim must fail and
    P1's claim pass; halve the Monte Carlo risks: the double-descent claim must fail."""
    import numpy as np

    geo = report.data.copy()
    geo["geo_exponent"] = np.log(geo.rho) / np.log(geo.rho.min())
    claims = {c.id: c for c in latent_number.claims(geo, report.data, CONFIG)}
    assert claims["latent.exponent"].verdict == "FAIL"
    assert claims["latent.p1_alpha_log_rho"].verdict == "PASS"
    dd = report.data.copy()
    dd["dd_risk"] = dd.dd_risk * 0.5
    claims = {c.id: c for c in latent_number.claims(report.data, dd, CONFIG)}
    assert claims["latent.double_descent_exact"].verdict == "FAIL"


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


def test_every_claim_is_declared_for_list(report):
    """`spectral-sim list` shows the module's CLAIMS: each claim the run made must match one."""
    assert experiments.undeclared("latent_number", [c.id for c in report.claims]) == []
