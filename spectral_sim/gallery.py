"""The README's results section, written from saved reports (what `make figures` runs): the
verdict counts per experiment and per paper, every claim, and a gallery of the figures, copied
(downscaled) next to the page that shows them.

    python -m spectral_sim.gallery results README.md docs/figures

replaces the text between the README's `<!-- results:begin ... -->` and `<!-- results:end -->`
markers; nothing else in the file changes.
"""

import argparse
import os
import pathlib
import sys
from collections.abc import Sequence

from spectral_sim import registry
from spectral_sim.report import (
    VERDICTS,
    Report,
    claims_by_paper,
    claims_table,
    count_verdicts,
    counts_line,
)  # fmt: skip

__all__ = ["BEGIN", "END", "copy_figures", "main", "section", "splice"]

BEGIN = "<!-- results:begin (written by `make figures` from results/; do not edit by hand) -->"
END = "<!-- results:end -->"
WIDTH = 900  # pixels: gallery images are downscaled to this width to keep the repository small
COLUMNS = 2


def load_all(root: pathlib.Path) -> list[tuple[Report, list[str]]]:
    """The reports `spectral-sim run all` saved under `root` (root/<name> for each registered
    experiment, in the registry's order), each with its figure names. Other directories (a
    run copied or saved elsewhere under `root`) are left out."""
    saved = []
    for name in registry.names():
        directory = root / name
        if not (directory / "report.json").is_file():
            continue
        report = Report.load(directory)
        if report.experiment != name:
            raise ValueError(f"{directory} holds a report of {report.experiment!r}, not {name!r}")
        saved.append((report, sorted(f.stem for f in directory.glob("*.png"))))
    if not saved:
        raise ValueError(f"no saved reports under {root}; run `make run` (or `make figures`)")
    return saved


def copy_figures(root: pathlib.Path, saved: Sequence[tuple[Report, list[str]]],
                 target: pathlib.Path) -> dict[tuple[str, str], pathlib.Path]:  # fmt: skip
    """Each report's figures as target/<experiment>_<figure>.png, at most WIDTH pixels wide;
    stale <experiment>_*.png files of these experiments are removed, other files kept."""
    from PIL import Image

    target.mkdir(parents=True, exist_ok=True)
    written = {}
    for report, figures in saved:
        for figure in figures:
            path = target / f"{report.experiment}_{figure}.png"
            with Image.open(root / report.experiment / f"{figure}.png") as image:
                if image.width > WIDTH:
                    height = round(image.height * WIDTH / image.width)
                    image = image.resize((WIDTH, height), Image.Resampling.LANCZOS)
                image.save(path, optimize=True)
            written[(report.experiment, figure)] = path
    ours = {p for report, _ in saved for p in target.glob(f"{report.experiment}_*.png")}
    for stale in ours - set(written.values()):
        stale.unlink()
    return written


def _short(commit: str) -> str:
    """The first 12 hex digits of a commit, keeping a "+dirty" mark."""
    return commit[:12] + ("+dirty" if commit.endswith("+dirty") else "")


def section(saved: Sequence[tuple[Report, list[str]]], figures: dict,
            relative_to: pathlib.Path) -> str:  # fmt: skip
    """The Markdown between the markers: counts, every claim (folded), the gallery. `figures`
    maps (experiment, figure) to a file; links are relative to `relative_to` (the page's
    directory)."""
    reports = [report for report, _ in saved]
    commits = sorted({_short((r.saved_provenance or {}).get("git_commit", "?")) for r in reports})
    quick = all(bool(dict(r.config).get("quick")) for r in reports)
    total = count_verdicts(c for r in reports for c in r.claims)
    lines = [
        f"{'Quick-scale' if quick else 'Full-scale'} run of {len(reports)} experiments at commit "
        f"{', '.join(commits)}: {counts_line(total)}.",
        "",
        "| experiment | claims | " + " | ".join(VERDICTS) + " |",
        "|---|---:|" + "---:|" * len(VERDICTS),
    ]
    for report in reports:
        counts = report.summary()
        lines.append(f"| {report.experiment} | {len(report.claims)} | "
                     + " | ".join(str(counts[v]) for v in VERDICTS) + " |")  # fmt: skip
    groups = claims_by_paper(reports)
    lines += ["", "| source | claims | " + " | ".join(VERDICTS) + " |",
              "|---|---:|" + "---:|" * len(VERDICTS)]  # fmt: skip
    for title, rows in groups.items():
        counts = count_verdicts(c for _, c in rows)
        lines.append(f"| {title} | {len(rows)} | "
                     + " | ".join(str(counts[v]) for v in VERDICTS) + " |")  # fmt: skip
    lines += ["", "<details><summary>Every claim: predicted, measured, verdict</summary>", ""]
    for title, rows in groups.items():
        lines += [f"**{title}**", "", *claims_table(rows, link=False), ""]
    lines += ["</details>", "", "| " + " | ".join([" "] * COLUMNS) + " |",
              "|" + "---|" * COLUMNS]  # fmt: skip
    cells = [
        f"![{name}: {figure}]({os.path.relpath(path, relative_to)})<br>{name}: {figure}"
        for (name, figure), path in figures.items()
    ]
    cells += [" "] * (-len(cells) % COLUMNS)
    for i in range(0, len(cells), COLUMNS):
        lines.append("| " + " | ".join(cells[i : i + COLUMNS]) + " |")
    return "\n".join(lines)


def splice(text: str, body: str) -> str:
    """`text` with the part between BEGIN and END replaced by `body`."""
    if text.count(BEGIN) != 1 or text.count(END) != 1 or text.index(BEGIN) > text.index(END):
        raise ValueError(f"the page needs exactly one {BEGIN!r} line before one {END!r} line")
    head, rest = text.split(BEGIN)
    tail = rest.split(END)[1]
    return f"{head}{BEGIN}\n{body}\n{END}{tail}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m spectral_sim.gallery", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    parser.add_argument("results", type=pathlib.Path, help="the reports (spectral-sim run all)")
    parser.add_argument("page", type=pathlib.Path, help="the Markdown page to update")
    parser.add_argument("figures", type=pathlib.Path, help="where the gallery's PNGs go")
    args = parser.parse_args(argv)
    text = args.page.read_text()
    splice(text, "")  # the markers are checked before anything is written
    saved = load_all(args.results)
    figures = copy_figures(args.results, saved, args.figures)
    body = section(saved, figures, args.page.parent)
    args.page.write_text(splice(text, body))
    print(f"{args.page}: {len(saved)} experiments, {len(figures)} figures in {args.figures}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
