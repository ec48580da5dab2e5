"""spectral_sim.gallery: docs/results.md and the experiment pages written from saved reports."""

import math
import pathlib
import re

import matplotlib
import numpy as np
import pytest
import xarray as xr

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from PIL import Image  # noqa: E402

from spectral_sim import gallery, registry  # noqa: E402
from spectral_sim.report import Claim, Report  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent


@pytest.fixture
def results(tmp_path) -> pathlib.Path:
    """Two saved reports: `learning_curves` (a PASS and a P0 FAIL, one wide figure) and
    `latent_number` (no figures), plus a stray copy that the gallery must leave out."""
    fig, ax = plt.subplots(figsize=(20, 4), dpi=100)  # 2000 px wide
    ax.plot([0, 1], [0, 1])
    claims = [
        Claim("lc.pass", "THEORY.md §2", "exact", 1.0, 1.0, 0.0, 0.01),
        Claim("lc.fail", "P0: a claim", "wrong", 1.0, 2.0, 0.0, 0.01),
    ]
    data = xr.Dataset({"x": ("n", np.arange(3.0))})
    config = dict(quick=True)
    Report("learning_curves", claims, data, {"curves": fig}, config).save(
        tmp_path / "learning_curves"
    )
    extra = [Claim("extra.c", "P2 (abstract)", "unsure", 1.0, 1.0, 1.0, 0.1)]
    Report("latent_number", extra, data, config=config).save(tmp_path / "latent_number")
    Report("learning_curves", claims, data, config=config).save(tmp_path / "lc_copy")
    return tmp_path


def test_section_counts_every_claim_and_shows_every_figure(results, tmp_path):
    saved = gallery.load_all(results)
    assert [r.experiment for r, _ in saved] == ["latent_number", "learning_curves"]  # by name
    target = tmp_path / "page" / "figures"
    target.mkdir(parents=True)
    (target / "learning_curves_stale.png").write_bytes(b"")
    (target / "hand_made.png").write_bytes(b"")
    figures = gallery.copy_figures(results, saved, target)
    assert sorted(p.name for p in target.iterdir()) == [
        "hand_made.png",
        "learning_curves_curves.png",
    ]
    with Image.open(target / "learning_curves_curves.png") as image:
        assert image.width == gallery.WIDTH
    text = gallery.section(saved, figures, target.parent)
    assert "Quick-scale run of 2 experiments" in text and "1 PASS, 1 FAIL, 1 INCONCLUSIVE" in text
    assert (
        "| learning_curves | 2 | 1 | 1 | 0 |" in text
        and "| latent_number | 1 | 0 | 0 | 1 |" in text
    )
    assert "| Paper P0 | 1 | 0 | 1 | 0 |" in text and "| Paper P2 | 1 | 0 | 0 | 1 |" in text
    assert "| Standard results (THEORY.md) | 1 | 1 | 0 | 0 |" in text
    assert "![learning_curves: curves](figures/learning_curves_curves.png)" in text
    assert gallery._short("0123456789abcdef+dirty") == "0123456789ab+dirty"  # not a clean commit


def docs_folder(root: pathlib.Path, *names: str) -> pathlib.Path:
    """A docs/ with results.md and experiments/<name>.md pages, each with its markers."""
    docs = root / "docs"
    (docs / "experiments").mkdir(parents=True)
    results = f"# Results\n\nkept\n\n{gallery.BEGIN}\nold text\n{gallery.END}\n"
    (docs / "results.md").write_text(results)
    for name in names:
        (docs / "experiments" / f"{name}.md").write_text(
            f"# {name}\n\nprose\n\n{gallery.PAGE_BEGIN}\nold text\n{gallery.END}\n\nmore prose\n"
        )
    return docs


def test_summary_rewrites_only_the_marked_part(results, tmp_path):
    docs = docs_folder(tmp_path)
    assert gallery.main(["summary", str(results), str(docs)]) == 0
    text = (docs / "results.md").read_text()
    assert text.startswith("# Results\n\nkept\n\n") and text.endswith(f"{gallery.END}\n")
    assert "old text" not in text and "| latent_number | 1 |" in text
    assert (docs / "figures" / "learning_curves_curves.png").is_file()


def test_a_page_without_markers_is_refused_before_anything_is_written(results, tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "results.md").write_text("# Title\n")
    with pytest.raises(ValueError, match="results:begin"):
        gallery.main(["summary", str(results), str(docs)])
    assert not (docs / "figures").exists()
    with pytest.raises(ValueError, match="no saved reports"):
        gallery.load_all(tmp_path / "nothing")


@pytest.fixture
def full_runs(tmp_path) -> pathlib.Path:
    """A full-scale run of `learning_curves` (a PASS, a FAIL with notes, one wide figure)."""
    fig, ax = plt.subplots(figsize=(20, 4), dpi=100)
    ax.plot([0, 1], [0, 1])
    claims = [
        Claim("lc.pass", "THEORY.md §2", "exact", 1.0, 1.0, 0.0, 0.01, where="s = 2"),
        Claim("lc.unsure", "P0: a claim", "a | b", 1.0, 1.5, 0.4, 0.1, seeds_needed=4096),
    ]
    data = xr.Dataset({"x": ("n", np.arange(3.0))})
    Report("learning_curves", claims, data, {"curves": fig}, dict(quick=False),
           notes=["one run diverged"]).save(tmp_path / "runs" / "learning_curves")  # fmt: skip
    return tmp_path / "runs"


def test_pages_keep_the_report_and_write_the_page_from_it(full_runs, tmp_path):
    docs = docs_folder(tmp_path, "learning_curves")
    assert gallery.main(["pages", str(full_runs), str(docs)]) == 0
    kept = docs / "reports" / "learning_curves"
    assert sorted(p.name for p in kept.iterdir()) == ["curves.png", "report.json"]
    with Image.open(kept / "curves.png") as image:
        assert image.width == gallery.WIDTH
    page = (docs / "experiments" / "learning_curves.md").read_text()
    assert page.startswith("# learning_curves\n\nprose\n\n") and page.endswith("more prose\n")
    assert "Full-scale run at commit" in page and "1 PASS, 0 FAIL, 1 INCONCLUSIVE" in page
    assert "| `lc.unsure` | 1 | 1.5 | 0.4 | 0.1 (judgement) | — | 0/1 | INCONCLUSIVE |" in page
    assert "*About 4,096 seeds would decide it.*" in page and "a \\| b" not in page
    assert "- one run diverged" in page  # the notes, kept in report.json without data.nc
    assert "![learning_curves: curves](../reports/learning_curves/curves.png)" in page
    assert gallery.load_saved(kept).notes == ["one run diverged"]
    rendered = page
    assert gallery.main(["pages", str(docs / "reports"), str(docs)]) == 0  # re-render: the same
    assert (docs / "experiments" / "learning_curves.md").read_text() == rendered


def test_full_keeps_every_setup_and_writes_the_full_results_page(full_runs, tmp_path):
    """`full`: the experiment pages as `pages` writes them, a run of another setup
    (<name>_<variant>) kept beside its experiment's, and docs/results-full.md with each run's
    commit, the setups' claims side by side and each run's block; re-rendering from the kept
    reports gives the same page."""
    data = xr.Dataset({"x": ("n", np.arange(3.0))})
    claims = [Claim("lc.pass", "THEORY.md §2", "exact", 1.0, 1.5, 0.01, 0.01),
              Claim("lc.only_here", "P2 (abstract)", "new", 1.0, 1.0, 0.0, 0.1)]  # fmt: skip
    Report("learning_curves", claims, data, config=dict(quick=False, model="other")).save(
        full_runs / "learning_curves_other"
    )
    docs = docs_folder(tmp_path, "learning_curves")
    page = docs / "results-full.md"
    page.write_text(f"# Full\n\nprose\n\n{gallery.FULL_BEGIN}\nold\n{gallery.END}\n")
    assert gallery.main(["full", str(full_runs), str(docs)]) == 0
    assert sorted(p.name for p in (docs / "reports").iterdir()) == [
        "learning_curves",
        "learning_curves_other",
    ]
    text = page.read_text()
    assert text.startswith("# Full\n\nprose\n\n") and "\nold\n" not in text
    assert "2 full-scale runs of 1 experiments: 2 PASS, 1 FAIL, 1 INCONCLUSIVE." in text
    commit = gallery._short(gallery.load_saved(full_runs / "learning_curves")
                            .saved_provenance["git_commit"])  # fmt: skip
    assert f"| [learning_curves_other](#learning_curves_other) | {commit} |" in text
    assert ("| `lc.pass` | PASS (1 ± 0) | FAIL (1.5 ± 0.01) |" in text
            and "| `lc.only_here` | — | PASS (1 ± 0) |" in text)  # fmt: skip
    assert text.index("## learning_curves\n") < text.index("## learning_curves_other\n")
    assert "![learning_curves: curves](reports/learning_curves/curves.png)" in text
    assert "Full-scale run at commit" in (docs / "experiments" / "learning_curves.md").read_text()
    rendered = text
    assert gallery.main(["full", str(docs / "reports"), str(docs)]) == 0
    assert page.read_text() == rendered


def test_pages_refuse_a_quick_run(results, tmp_path):
    docs = docs_folder(tmp_path, "learning_curves", "latent_number")
    with pytest.raises(ValueError, match="ran with --quick"):
        gallery.main(["pages", str(results), str(docs)])
    assert not (docs / "reports").exists()


def test_the_results_page_gallery_is_whole():
    """The committed docs/results.md (written by `make figures`): its images are in the
    repository and docs/figures holds nothing it does not show."""
    page = ROOT / "docs" / "results.md"
    text = page.read_text()
    gallery.splice(text, "")  # exactly one pair of markers
    section = text.split(gallery.BEGIN)[1].split(gallery.END)[0]
    images = re.findall(r"!\[[^]]*\]\(([^)]+)\)", section)
    assert images, "run `make figures`"
    for image in images:
        assert (page.parent / image).is_file(), f"{image} is missing: run `make figures`"
    assert {(page.parent / i).resolve() for i in images} == {
        p.resolve() for p in (ROOT / "docs" / "figures").glob("*.png")
    }


def test_every_experiment_page_shows_its_kept_report():
    """Each registered experiment has a page whose table is what `make pages` writes from its
    report kept in docs/reports/ (or nothing, where no full run is kept): no hand-copied table."""
    for name in registry.names():
        page = ROOT / "docs" / "experiments" / f"{name}.md"
        text = page.read_text()
        gallery.splice(text, "", gallery.PAGE_BEGIN)
        block = text.split(gallery.PAGE_BEGIN)[1].split(gallery.END)[0].strip("\n")
        kept = ROOT / "docs" / "reports" / name
        if not (kept / "report.json").is_file():
            assert block == "", f"{page.name} has a table but no kept report"
            continue
        report = gallery.load_saved(kept)
        assert not dict(report.config).get("quick"), f"{name}'s kept report is a quick run"
        figures = {f.stem: f for f in sorted(kept.glob("*.png"))}
        expected = gallery.experiment_block(report, figures, record=kept / "report.json",
                                            relative_to=page.parent)  # fmt: skip
        rerun = "run `make pages FULL=docs/reports`"
        assert block == expected, f"{page.name} differs from its kept report: {rerun}"


def test_the_full_results_page_shows_every_kept_run():
    """The committed docs/results-full.md is what `make full` writes from docs/reports/ (no
    hand-copied number), and every run kept there is on it."""
    page = ROOT / "docs" / "results-full.md"
    text = page.read_text()
    gallery.splice(text, "", gallery.FULL_BEGIN)
    block = text.split(gallery.FULL_BEGIN)[1].split(gallery.END)[0].strip("\n")
    kept = gallery.load_kept(ROOT / "docs" / "reports")
    assert block == gallery.full_section(kept, ROOT / "docs" / "reports", page.parent)
    for name, report, _ in kept:
        assert f"## {name}\n" in block and not dict(report.config).get("quick")


def test_every_undecided_claim_says_why():
    """results-full.md lists each INCONCLUSIVE claim with its reason: not measured (why), a
    diverged seed, seeds (how many), or an SE that seeds do not shrink; decided claims are not
    listed."""
    seeds = Claim("a.seeds", "s", "x", 1.0, 1.04, 0.01, 0.05, z=2.0, seeds_needed=256)
    fixed = Claim("a.fixed", "s", "x", 0.0, 0.05, 0.05, 0.1, z=2.0)
    missing = Claim(
        "a.none", "s", "x", math.nan, math.nan, math.nan, 0.0, where="not measured: no data"
    )
    diverged = Claim("a.div", "s", "x", 1.0, 1.0, 0.01, 0.1, entries=2, holds=1, diverged=1)
    decided = Claim("a.pass", "s", "x", 1.0, 1.0, 0.01, 0.1)
    assert {c.verdict for c in (seeds, fixed, missing, diverged)} == {"INCONCLUSIVE"}
    report = Report("attention_clusters", [seeds, fixed, missing, diverged, decided],
                    xr.Dataset())  # fmt: skip
    lines = gallery.undecided([("run", report, [])])
    assert lines[0] == "**4 INCONCLUSIVE, and why:**" and len(lines) == 4 + 4
    why = {c.id: gallery.why_undecided(c) for c in (seeds, fixed, missing, diverged)}
    assert why["a.seeds"] == ("seeds: the interval [1.02, 1.06] straddles 1 ± 0.05; about 256 "
                              "seeds would decide it")  # fmt: skip
    assert "does not shrink with seeds" in why["a.fixed"] and "[-0.05, 0.15]" in why["a.fixed"]
    assert why["a.none"] == "not measured: no data"
    assert why["a.div"] == "1 entries with a diverged seed"
    assert gallery.undecided([("run", Report("x", [decided], xr.Dataset()), [])]) == [
        "Every claim is decided."
    ]
