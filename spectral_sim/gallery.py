"""The docs pages written from saved reports (what `make figures` and `make pages` run).

    python -m spectral_sim.gallery summary results docs   # a quick run: docs/results.md
    python -m spectral_sim.gallery pages runs/full docs   # full runs: docs/experiments/<name>.md
    python -m spectral_sim.gallery full results-full docs # the same, and docs/results-full.md

`summary` writes the verdict counts per experiment and per paper, every claim, and a gallery of
the figures (downscaled into docs/figures/) into docs/results.md. `pages` keeps each full-scale
report (report.json with its notes, and its figures, downscaled) under docs/reports/<name>/ and
writes each experiment page's table of claims from it. `full` does what `pages` does, keeps the
other runs saved beside them too (a run of an experiment in another setup, saved as
results-full/<name>_<variant>, e.g. spectral_edge_transformer) and writes docs/results-full.md
from every report kept under docs/reports/: the counts, each run's section naming the commit it
ran at, and the claims of an experiment's setups side by side. Each page changes only between
its `<!-- results:begin ... -->` and `<!-- results:end -->` markers; nothing else in docs/ is
touched.
"""

import argparse
import json
import math
import os
import pathlib
import sys
import types
from collections.abc import Mapping, Sequence

import xarray as xr

from spectral_sim import registry
from spectral_sim.report import (
    VERDICTS,
    Claim,
    Report,
    claims_by_paper,
    claims_table,
    count_verdicts,
    counts_line,
)  # fmt: skip

__all__ = [
    "BEGIN", "END", "copy_figures", "experiment_block", "full", "load_all", "load_kept",
    "load_saved", "main", "pages", "section", "side_by_side", "splice", "summary", "undecided",
    "why_undecided",
]  # fmt: skip

BEGIN = "<!-- results:begin (written by `make figures` from results/; do not edit by hand) -->"
END = "<!-- results:end -->"
PAGE_BEGIN = (
    "<!-- results:begin (written by `make pages` from docs/reports/; do not edit by hand) -->"
)
FULL_BEGIN = (
    "<!-- results:begin (written by `make full` from docs/reports/; do not edit by hand) -->"
)
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
        report = load_saved(directory)
        if report.experiment != name:
            raise ValueError(f"{directory} holds a report of {report.experiment!r}, not {name!r}")
        saved.append((report, sorted(f.stem for f in directory.glob("*.png"))))
    if not saved:
        raise ValueError(f"no saved reports under {root}; run `make run` (or `make figures`)")
    return saved


def load_saved(directory: pathlib.Path) -> Report:
    """The report saved in `directory`: `Report.load` where the run's data.nc is there, else
    report.json alone (a page's kept copy: claims, config, provenance and its notes)."""
    if (directory / "data.nc").is_file():
        return Report.load(directory)
    record = json.loads((directory / "report.json").read_text())
    return Report(experiment=record["experiment"],
                  claims=[Claim.from_dict(claim) for claim in record["claims"]],
                  data=xr.Dataset(), config=record["config"], notes=record.get("notes", []),
                  saved_provenance=record["provenance"])  # fmt: skip


def _downscale(source: pathlib.Path, target: pathlib.Path) -> None:
    from PIL import Image

    with Image.open(source) as image:
        if image.width > WIDTH:
            height = round(image.height * WIDTH / image.width)
            image = image.resize((WIDTH, height), Image.Resampling.LANCZOS)
        image.save(target, optimize=True)


def copy_figures(root: pathlib.Path, saved: Sequence[tuple[Report, list[str]]],
                 target: pathlib.Path) -> dict[tuple[str, str], pathlib.Path]:  # fmt: skip
    """Each report's figures as target/<experiment>_<figure>.png, at most WIDTH pixels wide;
    stale <experiment>_*.png files of these experiments are removed, other files kept."""
    target.mkdir(parents=True, exist_ok=True)
    written = {}
    for report, figures in saved:
        for figure in figures:
            path = target / f"{report.experiment}_{figure}.png"
            _downscale(root / report.experiment / f"{figure}.png", path)
            written[(report.experiment, figure)] = path
    ours = {p for report, _ in saved for p in target.glob(f"{report.experiment}_*.png")}
    for stale in ours - set(written.values()):
        stale.unlink()
    return written


def _short(commit: str) -> str:
    """The first 12 hex digits of a commit, keeping a "+dirty" mark."""
    return commit[:12] + ("+dirty" if commit.endswith("+dirty") else "")


def _scale(report: Report) -> str:
    return f"{registry.scale(types.SimpleNamespace(**dict(report.config))).capitalize()}-scale"


def _gallery(
    figures: Mapping[tuple[str, str], pathlib.Path], relative_to: pathlib.Path
) -> list[str]:
    """The figures as a table of COLUMNS images, each captioned "experiment: figure"."""
    if not figures:
        return []
    lines = ["| " + " | ".join([" "] * COLUMNS) + " |", "|" + "---|" * COLUMNS]
    cells = [
        f"![{name}: {figure}]({os.path.relpath(path, relative_to)})<br>{name}: {figure}"
        for (name, figure), path in figures.items()
    ]
    cells += [" "] * (-len(cells) % COLUMNS)
    for i in range(0, len(cells), COLUMNS):
        lines.append("| " + " | ".join(cells[i : i + COLUMNS]) + " |")
    return lines


def section(saved: Sequence[tuple[Report, list[str]]], figures: dict,
            relative_to: pathlib.Path) -> str:  # fmt: skip
    """The Markdown between docs/results.md's markers: counts, every claim (folded), the
    gallery. `figures` maps (experiment, figure) to a file; links are relative to `relative_to`
    (the page's directory)."""
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
    lines += ["</details>", "", *_gallery(figures, relative_to)]
    return "\n".join(lines)


def _number(value: float) -> str:
    return "nan" if math.isnan(value) else f"{value:.4g}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def experiment_block(report: Report, figures: Mapping[str, pathlib.Path], *,
                     record: pathlib.Path, relative_to: pathlib.Path) -> str:  # fmt: skip
    """The Markdown between an experiment page's markers: the run's scale, commit and counts,
    every claim (deciding entry, entries held, verdict), each claim's statement and what would
    decide it, the report's notes, and its figures. `record` is the kept report.json; links
    are relative to `relative_to` (the page's directory)."""
    provenance = report.saved_provenance or {}
    date = str(provenance.get("utc_time", "?"))[:10]
    lines = [
        f"{_scale(report)} run at commit {_short(provenance.get('git_commit', '?'))} ({date}, "
        f"JAX {provenance.get('jax_version', '?')}, {', '.join(provenance.get('devices', ['?']))}"
        f"): {report.summary_line()}. The run's config, provenance and every number are in "
        f"[report.json]({os.path.relpath(record, relative_to)}).",
        "",
        "| claim | predicted | measured | ± stderr | tolerance | deciding entry | holds "
        "| verdict |",
        "|---|---:|---:|---:|---:|---|---:|---|",
    ]
    for c in report.claims:
        tolerance = f"{_number(c.tolerance)} ({c.tolerance_kind})"
        lines.append(f"| `{c.id}` | {_number(c.predicted)} | {_number(c.measured)} | "
                     f"{_number(c.stderr)} | {tolerance} | {_cell(c.where) or '—'} | "
                     f"{c.holds}/{c.entries} | {c.verdict} |")  # fmt: skip
    lines += ["", "What each claim states (source in brackets):", ""]
    for c in report.claims:
        settle = ""
        if c.verdict == "INCONCLUSIVE" and c.seeds_needed:
            settle = f" *About {c.seeds_needed:,} seeds would decide it.*"
        lines.append(f"- `{c.id}` ({c.source}): {c.statement}.{settle}")
    if report.notes:
        lines += ["", f"<details><summary>Notes of the run ({len(report.notes)})</summary>", "",
                  *(f"- {note}" for note in report.notes), "", "</details>"]  # fmt: skip
    gallery = _gallery({(report.experiment, f): p for f, p in figures.items()}, relative_to)
    return "\n".join(lines + ([""] + gallery if gallery else []))


def splice(text: str, body: str, begin: str = BEGIN) -> str:
    """`text` with the part between `begin` and END replaced by `body`."""
    if text.count(begin) != 1 or text.count(END) != 1 or text.index(begin) > text.index(END):
        raise ValueError(f"the page needs exactly one {begin!r} line before one {END!r} line")
    head, rest = text.split(begin)
    tail = rest.split(END)[1]
    return f"{head}{begin}\n{body}\n{END}{tail}"


def summary(results: pathlib.Path, docs: pathlib.Path) -> str:
    """Rewrite docs/results.md's marked part and docs/figures/ from the quick run saved under
    `results`; returns what was written, in one line."""
    page = docs / "results.md"
    text = page.read_text()
    splice(text, "")  # the markers are checked before anything is written
    saved = load_all(results)
    figures = copy_figures(results, saved, docs / "figures")
    page.write_text(splice(text, section(saved, figures, page.parent)))
    return f"{page}: {len(saved)} experiments, {len(figures)} figures in {docs / 'figures'}"


def pages(runs: pathlib.Path, docs: pathlib.Path) -> str:
    """For each experiment with a full-scale run saved under runs/<name>: keep its report.json
    (with the notes) and figures under docs/reports/<name>/ and rewrite the marked part of
    docs/experiments/<name>.md from them. `runs` may be docs/reports itself (re-render)."""
    saved = load_all(runs)
    quick = [report.experiment for report, _ in saved if dict(report.config).get("quick")]
    if quick:
        raise ValueError(f"{quick} under {runs} ran with --quick; the experiment pages show "
                         f"full-scale runs (spectral-sim run NAME --out {runs}/NAME)")  # fmt: skip
    texts = {}
    for report, _ in saved:
        page = docs / "experiments" / f"{report.experiment}.md"
        texts[page] = page.read_text()
        splice(texts[page], "", PAGE_BEGIN)  # every page's markers before anything is written
    for report, figure_names in saved:
        kept = _keep(runs / report.experiment, docs / "reports" / report.experiment, report,
                     figure_names)  # fmt: skip
        page = docs / "experiments" / f"{report.experiment}.md"
        body = experiment_block(report, {f: kept / f"{f}.png" for f in figure_names},
                                record=kept / "report.json", relative_to=page.parent)  # fmt: skip
        page.write_text(splice(texts[page], body, PAGE_BEGIN))
    return f"{docs / 'experiments'}: {len(saved)} pages from {runs}"


def _keep(source: pathlib.Path, kept: pathlib.Path, report: Report,
          figure_names: Sequence[str]) -> pathlib.Path:  # fmt: skip
    """The run saved in `source` kept in `kept`: its report.json with the notes, its figures
    downscaled (a no-op where `source` is `kept`)."""
    kept.mkdir(parents=True, exist_ok=True)
    if source.resolve() != kept.resolve():
        record = json.loads((source / "report.json").read_text())
        record["notes"] = report.notes
        (kept / "report.json").write_text(json.dumps(record, indent=1) + "\n")
        for stale in kept.glob("*.png"):
            stale.unlink()
        for figure in figure_names:
            _downscale(source / f"{figure}.png", kept / f"{figure}.png")
    return kept


def _variants(root: pathlib.Path) -> list[pathlib.Path]:
    """The run directories under `root` holding a report, each experiment's own (root/<name>)
    first and then its other setups (root/<name>_<variant>), experiments in registry order."""
    order = {name: i for i, name in enumerate(registry.names())}

    def key(directory: pathlib.Path) -> tuple:
        base = max((n for n in order if directory.name.startswith(n)), key=len, default="")
        return (order.get(base, len(order)), directory.name != base, directory.name)

    runs = [d for d in root.iterdir() if (d / "report.json").is_file()]
    return sorted(runs, key=key)


def load_kept(root: pathlib.Path) -> list[tuple[str, Report, list[str]]]:
    """Every run kept under `root` (docs/reports): (directory name, report, figure names)."""
    return [(d.name, load_saved(d), sorted(f.stem for f in d.glob("*.png")))
            for d in _variants(root)]  # fmt: skip


def side_by_side(runs: Sequence[tuple[str, Report]]) -> list[str]:
    """A table of the claims of one experiment's runs in different setups: per claim id, each
    run's verdict with its measured value and stderr ("—" where a run lacks the claim)."""
    ids = list(dict.fromkeys(c.id for _, report in runs for c in report.claims))
    found = [{c.id: c for c in report.claims} for _, report in runs]
    lines = ["| claim | " + " | ".join(f"`{name}`" for name, _ in runs) + " |",
             "|---|" + "---|" * len(runs)]  # fmt: skip
    for claim in ids:
        cells = [f"{c.verdict} ({_number(c.measured)} ± {_number(c.stderr)})"
                 if (c := row.get(claim)) else "—" for row in found]  # fmt: skip
        lines.append(f"| `{claim}` | " + " | ".join(cells) + " |")
    return lines


def why_undecided(claim: Claim) -> str:
    """Why an INCONCLUSIVE claim is undecided, in words: nothing measured (and why), a diverged
    run, more seeds (how many the current standard errors need), or an interval that straddles
    an edge of the tolerance band with no seed count to move it (a bias or a fixed data set)."""
    if claim.where.startswith("not measured"):
        return claim.where
    if claim.diverged:
        return f"{claim.diverged} entries with a diverged seed"
    interval = f"[{_number(claim.low)}, {_number(claim.high)}]"
    band = f"{_number(claim.predicted)} ± {_number(claim.tolerance)}"
    if claim.seeds_needed is not None:
        return (
            f"seeds: the interval {interval} straddles {band}; about {claim.seeds_needed} "
            f"seeds would decide it"
        )
    return (
        f"the interval {interval} straddles {band} ({claim.entries - (claim.holds or 0)} of "
        f"{claim.entries} entries undecided); its SE does not shrink with seeds (a fixed "
        f"data set, or the replicates its deciding entry names)"
    )


def undecided(kept: Sequence[tuple[str, Report, list[str]]]) -> list[str]:
    """A table of every INCONCLUSIVE claim of the kept runs with `why_undecided`."""
    rows = [(name, c) for name, report, _ in kept for c in report.claims
            if c.verdict == "INCONCLUSIVE"]  # fmt: skip
    if not rows:
        return ["Every claim is decided."]
    lines = [
        f"**{len(rows)} INCONCLUSIVE, and why:**",
        "",
        "| run | claim | why |",
        "|---|---|---|",
    ]
    lines += [f"| {name} | `{c.id}` | {_cell(why_undecided(c))} |" for name, c in rows]
    return lines


def full_section(kept: Sequence[tuple[str, Report, list[str]]], root: pathlib.Path,
                 relative_to: pathlib.Path) -> str:  # fmt: skip
    """docs/results-full.md's marked part from the runs kept under `root`: the counts per run
    (with its commit), every INCONCLUSIVE claim with why, the side-by-side tables of
    experiments run in several setups, and each run's `experiment_block`."""
    total = count_verdicts(c for _, r, _ in kept for c in r.claims)
    lines = [f"{len(kept)} full-scale runs of {len({r.experiment for _, r, _ in kept})} "
             f"experiments: {counts_line(total)}.", "",
             "| run | commit | date | claims | " + " | ".join(VERDICTS) + " |",
             "|---|---|---|---:|" + "---:|" * len(VERDICTS)]  # fmt: skip
    for name, report, _ in kept:
        provenance, counts = report.saved_provenance or {}, report.summary()
        lines.append(f"| [{name}](#{name}) | {_short(provenance.get('git_commit', '?'))} | "
                     f"{str(provenance.get('utc_time', '?'))[:10]} | {len(report.claims)} | "
                     + " | ".join(str(counts[v]) for v in VERDICTS) + " |")  # fmt: skip
    if missing := [n for n in registry.names() if n not in {r.experiment for _, r, _ in kept}]:
        lines += ["", f"No full-scale run kept yet: {', '.join(missing)}."]
    lines += ["", *undecided(kept)]
    by_experiment: dict[str, list[tuple[str, Report]]] = {}
    for name, report, _ in kept:
        by_experiment.setdefault(report.experiment, []).append((name, report))
    for experiment, runs in by_experiment.items():
        if len(runs) > 1:
            lines += ["", f"**{experiment} in {len(runs)} setups, side by side** (verdict, "
                      f"measured ± stderr):", "", *side_by_side(runs)]  # fmt: skip
    for name, report, figure_names in kept:
        figures = {f: root / name / f"{f}.png" for f in figure_names}
        block = experiment_block(report, figures, record=root / name / "report.json",
                                 relative_to=relative_to)  # fmt: skip
        lines += ["", f"## {name}", "", block]
    return "\n".join(lines)


def full(runs: pathlib.Path, docs: pathlib.Path) -> str:
    """`pages`, the other setups' runs under `runs` kept under docs/reports/ too, then
    docs/results-full.md rewritten from every run kept there."""
    page = docs / "results-full.md"
    text = page.read_text()
    splice(text, "", FULL_BEGIN)  # the markers are checked before anything is written
    done = pages(runs, docs)
    names = set(registry.names())
    for directory in _variants(runs):
        if directory.name not in names:
            report = load_saved(directory)
            figures = sorted(f.stem for f in directory.glob("*.png"))
            _keep(directory, docs / "reports" / directory.name, report, figures)
    kept = load_kept(docs / "reports")
    page.write_text(splice(text, full_section(kept, docs / "reports", page.parent), FULL_BEGIN))
    return f"{done}; {page}: {len(kept)} runs"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m spectral_sim.gallery", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    commands = parser.add_subparsers(dest="command", required=True)
    for name, what in (("summary", "a quick run (spectral-sim run all --quick)"),
                       ("pages", "full runs, or docs/reports to re-render"),
                       ("full", "make full's runs, or docs/reports to re-render")):  # fmt: skip
        command = commands.add_parser(name, help=f"write docs from {what}")
        command.add_argument("results", type=pathlib.Path, help=f"the saved reports: {what}")
        command.add_argument("docs", type=pathlib.Path, help="the docs folder")
    args = parser.parse_args(argv)
    command = dict(summary=summary, pages=pages, full=full)[args.command]
    print(command(args.results, args.docs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
