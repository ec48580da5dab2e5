"""spectral_sim.gallery: the README's results section written from saved reports."""

import pathlib
import re

import matplotlib
import numpy as np
import pytest
import xarray as xr

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from PIL import Image  # noqa: E402

from spectral_sim import gallery  # noqa: E402
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


def test_main_rewrites_only_the_marked_part(results, tmp_path):
    page = tmp_path / "README.md"
    page.write_text(f"# Title\n\nkept\n\n{gallery.BEGIN}\nold text\n{gallery.END}\n\nalso kept\n")
    assert gallery.main([str(results), str(page), str(tmp_path / "figs")]) == 0
    text = page.read_text()
    assert text.startswith("# Title\n\nkept\n\n") and text.endswith(f"{gallery.END}\n\nalso kept\n")
    assert "old text" not in text and "| latent_number | 1 |" in text
    assert (tmp_path / "figs" / "learning_curves_curves.png").is_file()


def test_a_page_without_markers_is_refused_before_anything_is_written(results, tmp_path):
    page = tmp_path / "README.md"
    page.write_text("# Title\n")
    with pytest.raises(ValueError, match="results:begin"):
        gallery.main([str(results), str(page), str(tmp_path / "figs")])
    assert not (tmp_path / "figs").exists()
    with pytest.raises(ValueError, match="no saved reports"):
        gallery.load_all(tmp_path / "nothing")


def test_the_readme_gallery_is_whole():
    """The committed section (written by `make figures`): its images are in the repository and
    docs/figures holds nothing it does not show."""
    text = (ROOT / "README.md").read_text()
    gallery.splice(text, "")  # exactly one pair of markers
    section = text.split(gallery.BEGIN)[1].split(gallery.END)[0]
    images = re.findall(r"!\[[^]]*\]\(([^)]+)\)", section)
    assert images, "run `make figures`"
    for image in images:
        assert (ROOT / image).is_file(), f"{image} is missing: run `make figures`"
    assert {ROOT / i for i in images} == set((ROOT / "docs" / "figures").glob("*.png"))
