"""Claim verdicts (the equivalence test, its boundaries and validation) and Report save/load."""

import dataclasses
import json
import math

import jax.numpy as jnp
import matplotlib
import numpy as np
import pytest
import xarray as xr
from conftest import unchecked
from matplotlib.figure import Figure

from spectral_sim import claims, provenance
from spectral_sim import report as report_module
from spectral_sim.report import VERDICTS, Claim, Report

matplotlib.use("Agg")

NAN, INF = math.nan, math.inf


def claim(predicted=1.0, measured=1.0, stderr=0.0, tolerance=0.1, z=3.0, id="c"):
    return Claim(id, "THEORY.md 2.4", "a statement", predicted, measured, stderr, tolerance, z)


# Values are exact binary fractions so that the boundary cases are exact in floating point.
# band = z * stderr = 2 * 0.125 = 0.25 and error = |1.5 - 1| = 0.5 in the noisy rows.
@pytest.mark.parametrize(
    "predicted, measured, stderr, tolerance, z, expected",
    [
        # deterministic (stderr = 0): PASS iff error <= tolerance
        (1.0, 1.5, 0.0, 0.5, 3.0, "PASS"),  # boundary: error == tolerance
        (1.0, 1.5, 0.0, 0.25, 3.0, "FAIL"),
        (1.0, 1.0, 0.0, 0.0, 3.0, "PASS"),  # exact agreement, zero tolerance
        (1.0, 0.5, 0.0, 0.5, 3.0, "PASS"),  # |error| is symmetric
        # noisy: the interval error +/- band against the tolerance
        (1.0, 1.5, 0.125, 1.0, 2.0, "PASS"),  # [0.25, 0.75] inside [0, 1]
        (1.0, 1.5, 0.125, 0.75, 2.0, "PASS"),  # boundary: error + band == tolerance
        (1.0, 1.5, 0.125, 0.5, 2.0, "INCONCLUSIVE"),  # interval straddles the tolerance
        (1.0, 1.5, 0.125, 0.25, 2.0, "INCONCLUSIVE"),  # boundary: error - band == tolerance
        (1.0, 1.5, 0.125, 0.125, 2.0, "FAIL"),  # [0.25, 0.75] wholly above 0.125
        (1.0, 1.5, 0.125, 0.125, 4.0, "INCONCLUSIVE"),  # wider band: can no longer tell
        (1.0, 1.5, INF, 1.0, 3.0, "INCONCLUSIVE"),  # infinite uncertainty
        (1.0, 1.5, 0.125, INF, 3.0, "PASS"),  # infinite tolerance
        # non-finite: a diverged run or an undefined prediction
        (1.0, NAN, 0.0, 0.1, 3.0, "INCONCLUSIVE"),
        (1.0, INF, 0.0, 0.1, 3.0, "INCONCLUSIVE"),
        (-INF, 1.0, 0.0, 0.1, 3.0, "INCONCLUSIVE"),
        (1.0, 1.0, NAN, 0.1, 3.0, "INCONCLUSIVE"),  # stderr from a single seed
    ],
)
def test_verdict_truth_table(predicted, measured, stderr, tolerance, z, expected):
    c = claim(predicted, measured, stderr, tolerance, z)
    assert c.verdict == expected
    assert c.verdict in VERDICTS


def test_error_is_absolute_difference_and_scalars_become_python_floats():
    with unchecked():  # fields typed float; the conversion serves callers without the checks
        c = claim(predicted=np.float32(2.0), measured=jnp.asarray(1.25), stderr=np.array(0.5))
    assert c.error == 0.75
    for name in ("predicted", "measured", "stderr", "tolerance", "z", "error"):
        assert type(getattr(c, name)) is float
    assert c.to_dict()["verdict"] == c.verdict
    assert set(c.to_dict()) >= {"id", "source", "statement", "error", "verdict"}


def test_computed_fields_are_not_settable():
    with pytest.raises(TypeError):
        Claim("c", "s", "t", 1.0, 1.0, 0.0, 0.1, error=0.0)  # type: ignore[call-arg]
    with pytest.raises(dataclasses.FrozenInstanceError):
        claim().verdict = "PASS"  # type: ignore[misc]


@pytest.mark.parametrize(
    "kwargs, field",
    [
        (dict(stderr=-0.1), "stderr"),
        (dict(tolerance=-0.1), "tolerance"),
        (dict(tolerance=NAN), "tolerance"),
        (dict(z=0.0), "z"),
        (dict(z=-1.0), "z"),
        (dict(z=INF), "z"),
        (dict(measured=np.ones(2)), "measured"),
        (dict(predicted="1.0"), "predicted"),
    ],
)
def test_invalid_claims_name_the_field(kwargs, field):
    with unchecked(), pytest.raises(ValueError, match=field):
        claim(**kwargs)


def test_nan_claims_compare_equal():
    assert claim(measured=float("nan")) == claim(measured=np.float64("nan"))


@dataclasses.dataclass(frozen=True)
class Config:
    s: tuple[float, ...] = (1.5, 2.0)
    n_modes: int = 16
    limit: float = INF
    quick: bool = True


def make_report(**overrides) -> Report:
    data = xr.Dataset(
        {
            "loss": (("grid", "records"), np.arange(6.0).reshape(2, 3), {"units": "nats"}),
            "diverged": ("grid", np.array([False, True])),
        },
        coords={"grid": [0, 1], "records": [1, 10, 100], "s": ("grid", [1.5, 2.0])},
        attrs={"n_seeds": 4, "axes": "grid records"},
    )
    figure = Figure(figsize=(2, 2))
    figure.add_subplot().plot([1, 2, 3])
    kwargs = dict(
        experiment="toy",
        claims=[
            claim(measured=1.05, stderr=0.01, id="slope"),
            claim(measured=3.0, id="offset"),
            claim(measured=NAN, stderr=NAN, id="diverged"),
        ],
        data=data,
        figures={"loss_curves": figure},
        config=Config(),
        seed=7,
        notes=["grid point s=2.0 diverged at step 10"],
    )
    return Report(**(kwargs | overrides))  # type: ignore[arg-type]


def strict_json(text: str):
    def refuse(constant):
        raise ValueError(f"non-standard JSON constant {constant}")

    return json.loads(text, parse_constant=refuse)


def test_report_table_and_summary():
    r = make_report()
    assert r.summary() == {"PASS": 1, "FAIL": 1, "INCONCLUSIVE": 1}
    table = r.table()
    header = "| id | predicted | measured | ± stderr | error | tolerance | kind | holds | verdict"
    assert " ".join(table.splitlines()[0].split()).startswith(header)
    assert "| 1/1 |" in " ".join(table.split()) and "judgement" in table
    assert "1.05" in table and "nan" in table and "FAIL" in table
    assert "a statement" in table and "THEORY.md 2.4" in table
    assert "1.235" in make_report(claims=[claim(measured=1.23456)]).table()  # 4 significant


def test_report_validation():
    with pytest.raises(ValueError, match="unique"):
        make_report(claims=[claim(id="a"), claim(id="a")])
    with pytest.raises(ValueError, match="figure names"):
        make_report(figures={"a/b": Figure()})
    with pytest.raises(ValueError, match="config"):
        make_report(config=3)


def test_config_is_recorded_as_json_shaped_python():
    assert make_report().config == {"s": [1.5, 2.0], "n_modes": 16, "limit": INF, "quick": True}


def test_provenance_keys(monkeypatch):
    p = make_report().provenance()
    keys = {"package_version", "git_commit", "jax_version", "devices", "seed", "utc_time"}
    assert keys | {"python_version"} <= set(p)
    assert p["seed"] == 7 and p["devices"] and all(isinstance(d, str) for d in p["devices"])
    monkeypatch.setenv("PATH", "")  # git is missing
    assert make_report().provenance()["git_commit"] == "unknown"


def test_git_commit_outside_a_checkout(monkeypatch, tmp_path):
    monkeypatch.setattr(provenance, "_PACKAGE_DIR", tmp_path)
    assert provenance.git_commit() == "unknown"


def test_save_writes_every_file(tmp_path):
    r = make_report()
    out = r.save(tmp_path / "toy")
    assert out == tmp_path / "toy"
    for name in ("report.md", "report.json", "data.nc", "loss_curves.png"):
        assert (out / name).is_file()
    assert (out / "loss_curves.png").read_bytes().startswith(b"\x89PNG")
    record = strict_json((out / "report.json").read_text())
    assert set(record) == {"experiment", "config", "provenance", "claims"}
    fields = {"id", "source", "statement", "predicted", "measured", "stderr", "error"}
    for entry in record["claims"]:
        assert fields | {"tolerance", "verdict"} <= set(entry)
    assert record["claims"][2]["measured"] == "nan"
    assert record["config"]["limit"] == "inf"
    markdown = (out / "report.md").read_text()
    for text in ("# toy", "| slope", "diverged at step 10", "loss_curves.png", "git_commit"):
        assert text in markdown
    attrs = xr.load_dataset(out / "data.nc", engine="h5netcdf").attrs
    assert json.loads(attrs["report_provenance"])["seed"] == 7
    assert json.loads(attrs["report_config"])["n_modes"] == 16


def test_load_round_trips(tmp_path):
    r = make_report()
    back = Report.load(r.save(tmp_path))
    assert back.experiment == r.experiment
    assert back.claims == r.claims
    assert back.config == r.config
    assert back.notes == r.notes and back.seed == r.seed
    assert back.figures == {}
    xr.testing.assert_identical(back.data, r.data)
    assert back.saved_provenance is not None
    assert back.saved_provenance["seed"] == 7
    # A re-saved report keeps the provenance of the run that made it.
    again = strict_json((back.save(tmp_path / "again") / "report.json").read_text())
    assert again["provenance"] == strict_json((tmp_path / "report.json").read_text())["provenance"]


def test_attrs_netcdf_cannot_hold_are_converted(tmp_path):
    data = xr.Dataset(
        {"x": ("i", [1.0, 2.0], {"ok": True, "meta": {"a": 1}})},
        attrs={"flag": np.bool_(True), "none": None, "grid": (1, 2), "names": ["a", "b"]},
    )
    r = make_report(data=data, figures={})
    back = Report.load(r.save(tmp_path)).data
    assert back.attrs["flag"] == 1 and back.attrs["none"] == "null"
    assert list(back.attrs["grid"]) == [1, 2] and list(back.attrs["names"]) == ["a", "b"]
    assert back["x"].attrs["ok"] == 1 and json.loads(back["x"].attrs["meta"]) == {"a": 1}
    assert data.attrs["flag"] is np.bool_(True)  # the report's own data is left as it was


def test_pyplot_figures_are_closed_after_saving(tmp_path):
    import matplotlib.pyplot as plt

    figure = plt.figure(figsize=(2, 2))
    make_report(figures={"curve": figure}).save(tmp_path)
    assert (tmp_path / "curve.png").is_file()
    assert not plt.fignum_exists(figure.number)


def test_reproduction_summary_groups_claims_by_paper():
    from spectral_sim.report import reproduction_summary

    data = xr.Dataset({"x": ("n", np.arange(3.0))})
    claims = [
        Claim("a.one", "P1: alpha = beta log rho", "s", 1.0, 2.0, 0.0, 0.1),
        Claim("a.two", "THEORY.md §2.7", "s", 1.0, 1.0, 0.0, 0.1),
        Claim("a.three", "[P0] and P3 (both)", "s", 1.0, 1.05, 0.0, 0.1),
    ]
    text = reproduction_summary([Report("exp", claims, data)])
    sections = text.split("## ")
    by_title = {part.splitlines()[0]: part for part in sections[1:]}
    assert "a.one" in by_title["Paper P1"] and "a.one" not in by_title["Paper P0"]
    assert "a.three" in by_title["Paper P0"] and "a.three" in by_title["Paper P3"]
    assert "a.two" in by_title["Standard results (THEORY.md)"]
    assert "Paper P2" not in by_title  # no claim cites it
    assert "| [a.one](exp/report.md) | 1 | 2 | 0 | 0/1 | judgement | FAIL |" in text
    assert text.startswith("# Reproduction summary\n\n2 PASS, 1 FAIL, 0 INCONCLUSIVE in 1 ")


def test_paper_labels_are_data():
    """The sections come from a mapping (label -> title), PAPERS by default."""
    data = xr.Dataset({"x": ("n", np.arange(3.0))})
    claims_ = [Claim("a.one", "[Q1] item 2", "s", 1.0, 1.0, 0.0, 0.1),
               Claim("a.two", "P1 only", "s", 1.0, 1.0, 0.0, 0.1)]  # fmt: skip
    reports = [Report("exp", claims_, data)]
    assert list(report_module.PAPERS) == ["P0", "P1", "P2", "P3"]
    assert list(report_module.claims_by_paper(reports)) == [
        "Paper P1",
        "Standard results (THEORY.md)",
    ]
    custom = report_module.claims_by_paper(reports, papers={"Q1": "Paper Q1"})
    assert [[c.id for _, c in rows] for rows in custom.values()] == [["a.one"], ["a.two"]]
    assert list(custom) == ["Paper Q1", report_module.STANDARD_RESULTS]


def test_every_public_name_resolves():
    """report's `__all__` and the names it re-exports from claims and provenance (where the
    Claim record and the provenance now live) are the same objects."""
    for module in (report_module, claims, provenance):
        for name in module.__all__:
            assert getattr(module, name) is not None, f"{module.__name__}.{name}"
    assert report_module.Claim is claims.Claim and report_module.Verdict is claims.Verdict
    assert report_module.VERDICTS is claims.VERDICTS and report_module.band is claims.band
    assert report_module.provenance is provenance.provenance
    assert report_module.git_commit is provenance.git_commit
