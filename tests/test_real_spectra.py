import dataclasses
import json

import numpy as np
import pytest

import experiments
from experiments import real_spectra

# A small slice: the text in 4096-character blocks (272 blocks, so n <= 68), two kernels, random
# features and the MLP on the same blocks, few seeds and short fits.
CONFIG = real_spectra.Config(
    sets=("words",),
    kernels=("linear", "arccos"),
    samples=(8, 12, 16, 24, 32, 48),
    n_seeds=16,
    networks_on=("words",),
    rf_width=256,
    mlp_width=16,
    mlp_steps=50,
    network_seeds=2,
    spectrum_boot=10,
    invert_boot=2,
    invert_steps=20,
    text_block=4096,
)


@pytest.fixture(scope="module")
def report():
    return real_spectra.run(CONFIG)


def test_report_has_every_claim_figure_and_saves(report, tmp_path):
    rows = [f"real_data.words.{m}" for m in ("linear", "arccos", "rf", "mlp")]
    expected = {"real_data.words.language_s1"}
    expected |= {f"{r}.{c}" for r in rows for c in ("erm_exponent", "p0_exponent", "s_eff")}
    expected |= {f"{r}.omnibus" for r in rows[:2]}
    assert {c.id for c in report.claims} == expected
    data = report.data
    assert data.sizes["row"] == 4 and data.sizes["n"] == len(CONFIG.samples)
    assert np.all(np.isfinite(data.mse)) and np.all(data.mse > 0)
    # the spectrum's numbers exist and are positive exponents
    assert np.all(data.s > 0) and np.all(np.isfinite(data.a))
    path = report.save(tmp_path / "out")
    saved = json.loads((path / "report.json").read_text())
    assert {c["id"] for c in saved["claims"]} == expected
    for name in ("spectra.png", "curves.png", "data.nc"):
        assert (path / name).exists()


def test_omnibus_claim_follows_the_measurement(report):
    """Replace a measured curve by its prediction: the omnibus claim must pass; by twice it:
    fail."""
    data = report.data.copy()
    data["mse"] = data.predicted.copy()
    data["mse_sem"] = data.mse_sem * 0 + 1e-6
    claims = {c.id: c for c in real_spectra.claims(data, CONFIG)}
    assert claims["real_data.words.linear.omnibus"].verdict == "PASS"
    data["mse"] = 2 * data.predicted
    claims = {c.id: c for c in real_spectra.claims(data, CONFIG)}
    assert claims["real_data.words.linear.omnibus"].verdict == "FAIL"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("sets", ("mnist",)),
        ("kernels", ("rbf", "rbf")),
        ("networks_on", ("digits",)),
        ("samples", (16, 32, 64)),
        ("ridge", 0.0),
        ("n_seeds", 2),
        ("mlp_lr", 2.0),
    ],  # fmt: skip
)
def test_bad_config_names_the_field(field, value):
    cfg = dataclasses.replace(
        real_spectra.Config(sets=("words",), networks_on=()), **{field: value}
    )
    with pytest.raises(ValueError, match=field):
        real_spectra.check(cfg)


def test_samples_beyond_a_quarter_of_the_pool_are_refused():
    cfg = dataclasses.replace(CONFIG, samples=(8, 16, 32, 64, 128))
    with pytest.raises(ValueError, match="samples must be <= P/4"):
        real_spectra.run(cfg)


def test_every_claim_is_declared_for_list(report):
    """`spectral-sim list` shows the module's CLAIMS: each claim the run made must match one."""
    assert experiments.undeclared("real_spectra", [c.id for c in report.claims]) == []
