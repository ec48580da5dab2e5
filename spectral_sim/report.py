"""Reports: a Report bundles an experiment's claims (`spectral_sim.claims.Claim`, each a
theory's prediction against a measurement, decided by `spectral_sim.claims`) with the dataset,
figures, config and provenance (`spectral_sim.provenance`) of the run that made them, and saves
them as report.md, report.json, data.nc and PNGs. Across experiments, `reproduction_summary`
writes SUMMARY.md with the claims grouped by the paper their source cites (`PAPERS`).

`Claim`, `Verdict`, `VERDICTS` and `provenance` are importable from here too.
"""

import dataclasses
import json
import math
import os
import pathlib
import re
import sys
import types
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

# `X as X`: names report held before claims and provenance took them over, still importable here
from spectral_sim.claims import SIDES as SIDES
from spectral_sim.claims import VERDICTS, Claim, Verdict
from spectral_sim.claims import Side as Side
from spectral_sim.claims import band as band
from spectral_sim.provenance import git_commit as git_commit
from spectral_sim.provenance import provenance

if TYPE_CHECKING:  # matplotlib is imported only when a figure is saved: keeps imports fast
    from matplotlib.figure import Figure

__all__ = [
    "PAPERS", "STANDARD_RESULTS", "VERDICTS", "Claim", "Report", "Verdict", "claims_by_paper",
    "claims_table", "count_verdicts", "counts_line", "provenance", "reproduction_summary",
]  # fmt: skip

# Dataset attrs that save() adds to data.nc and load() removes again, so data round-trips.
_ATTR_PREFIX = "report_"
_FIGURE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def _plain(value: Any) -> Any:
    """`value` as JSON-shaped Python (dict with str keys, list, str, int, float, bool, None).

    Dataclasses become dicts, tuples and arrays lists, NumPy/JAX scalars Python numbers, and
    anything else its str(). Non-finite floats stay floats here (see `_strict_json`).
    """
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(item) for item in value]
    if value is None or isinstance(value, str | bool):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value)
    if hasattr(value, "__array__") and hasattr(value, "shape"):  # NumPy or JAX arrays
        return _plain(np.asarray(value).tolist())
    return str(value)


def _strict_json(value: Any) -> Any:
    """`_plain` output with non-finite floats as the strings "nan", "inf", "-inf" (strict JSON)."""
    if isinstance(value, dict):
        return {key: _strict_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_strict_json(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


def _from_strict_json(value: Any) -> Any:
    """Inverse of `_strict_json`: the strings "nan", "inf", "-inf" become floats again."""
    if isinstance(value, dict):
        return {key: _from_strict_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_from_strict_json(item) for item in value]
    if value in ("nan", "inf", "-inf"):
        return float(value)
    return value


def _dumps(value: Any, indent: int | None = None) -> str:
    return json.dumps(_strict_json(_plain(value)), indent=indent, allow_nan=False)


def _netcdf_attr(value: Any) -> Any:
    """An attribute value netCDF can hold: str, a number, or a 1-d numeric array or str list.

    bool becomes int; None, dicts, and mixed, empty or nested lists become JSON strings.
    """
    plain = _plain(value)  # NumPy/JAX arrays and scalars become Python lists and numbers
    if isinstance(plain, str | int | float):  # bool is an int
        return int(plain) if isinstance(plain, bool) else plain
    if isinstance(plain, list) and plain:
        if all(isinstance(item, str) for item in plain):
            return plain
        if all(isinstance(item, int | float) and not isinstance(item, bool) for item in plain):
            return np.asarray(plain)
    return _dumps(value)


def _netcdf_attrs(attrs: Mapping[Any, Any]) -> dict[str, Any]:
    return {str(key): _netcdf_attr(value) for key, value in attrs.items()}


def _format_number(value: float) -> str:
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.4g}"


def count_verdicts(claims: Iterable[Claim]) -> dict[Verdict, int]:
    """How many of `claims` got each verdict (every verdict present, zeros included)."""
    verdicts = [c.verdict for c in claims]
    return {verdict: verdicts.count(verdict) for verdict in VERDICTS}


def counts_line(counts: Mapping[Verdict, int]) -> str:
    """e.g. "3 PASS, 1 FAIL, 0 INCONCLUSIVE"."""
    return ", ".join(f"{count} {verdict}" for verdict, count in counts.items())


@dataclasses.dataclass
class Report:
    """An experiment's result: its claims (the verdict table), dataset, figures and config.

    `config` may be given as a dataclass (the experiment's Config) or a mapping; it is stored
    as JSON-shaped Python (tuples become lists), exactly as report.json records it. `notes` are
    free-text findings shown in report.md (e.g. which grid points diverged). `saved_provenance`
    is set by `load` and reused by `save`, so a re-saved report keeps its original provenance.
    """

    experiment: str
    claims: list[Claim]
    data: xr.Dataset
    figures: "dict[str, Figure]" = dataclasses.field(default_factory=dict)
    config: Any = dataclasses.field(default_factory=dict)
    seed: int = 0
    notes: list[str] = dataclasses.field(default_factory=list)
    saved_provenance: dict[str, Any] | None = dataclasses.field(default=None, repr=False)

    def __post_init__(self):
        if not self.experiment:
            raise ValueError("experiment must be a non-empty name")
        self.claims = list(self.claims)
        if not all(isinstance(claim, Claim) for claim in self.claims):
            raise ValueError("claims must be a list of Claim")
        ids = [claim.id for claim in self.claims]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"claim ids must be unique; repeated: {duplicates}")
        if not isinstance(self.data, xr.Dataset):
            raise ValueError(f"data must be an xarray.Dataset; got {type(self.data).__name__}")
        bad = [name for name in self.figures if not _FIGURE_NAME.fullmatch(name)]
        if bad:
            raise ValueError(f"figure names must be plain file stems ([A-Za-z0-9_.-]); got {bad}")
        if not isinstance(self.config, Mapping) and not dataclasses.is_dataclass(self.config):
            raise ValueError(f"config must be a dataclass or a mapping; got {self.config!r}")
        self.config = _plain(self.config)
        self.seed = int(self.seed)
        self.notes = [str(note) for note in self.notes]

    def summary(self) -> dict[Verdict, int]:
        """How many claims got each verdict (every verdict present, zeros included)."""
        return count_verdicts(self.claims)

    def summary_line(self) -> str:
        """e.g. "3 PASS, 1 FAIL, 0 INCONCLUSIVE"."""
        return counts_line(self.summary())

    def table(self) -> str:
        """The verdict table in markdown, aligned for a terminal, then each claim's statement."""
        if not self.claims:
            return "(no claims)"
        header = ["id", "predicted", "measured", "± stderr", "error", "tolerance", "kind",
                  "holds", "verdict"]  # fmt: skip
        rows = [
            [c.id]
            + [_format_number(v) for v in (c.predicted, c.measured, c.stderr)]
            + [_format_number(v) for v in (c.error, c.tolerance)]
            + [c.tolerance_kind, f"{c.holds}/{c.entries}", c.verdict]
            for c in self.claims
        ]
        widths = [max(len(row[j]) for row in [header, *rows]) for j in range(len(header))]
        numeric = [False, True, True, True, True, True, False, True, False]

        def line(cells: list[str]) -> str:
            padded = [
                cell.rjust(w) if right else cell.ljust(w)
                for cell, w, right in zip(cells, widths, numeric, strict=True)
            ]
            return "| " + " | ".join(padded) + " |"

        rule = (
            "|"
            + "|".join(
                "-" * (w + 1) + ":" if right else "-" * (w + 2)
                for w, right in zip(widths, numeric, strict=True)
            )
            + "|"
        )
        lines = [line(header), rule, *(line(row) for row in rows), ""]
        lines += [f"- {c.id} [{c.source}]: {c.statement} ({c.details()})" for c in self.claims]
        lines += [
            "",
            "Each claim is checked at m entries (grid points, records, data sets), each with an "
            "interval at the simultaneous level 1 - 0.05/m: FAIL if any interval lies outside "
            "predicted ± tolerance, PASS if every one lies inside, else INCONCLUSIVE. `holds` is "
            "h/m, the entries significantly inside; the row shows the deciding entry.",
        ]
        return "\n".join(lines)

    def provenance(self) -> dict[str, Any]:
        """Where and how this report was made: versions, git commit, devices, seed, time."""
        return provenance(self.seed)

    def _markdown(self, provenance: Mapping[str, Any]) -> str:
        parts = [f"# {self.experiment}", "", f"**{self.summary_line()}**", ""]
        parts += ["## Verdicts", "", self.table(), ""]
        if self.notes:
            parts += ["## Notes", "", *(f"- {note}" for note in self.notes), ""]
        if self.figures:
            parts += ["## Figures", "", *(f"![{n}]({n}.png)" for n in self.figures), ""]
        parts += ["## Config", "", "```json", _dumps(self.config, indent=2), "```", ""]
        parts += ["## Provenance", ""]
        parts += [f"- {key}: {_plain(value)}" for key, value in provenance.items()]
        return "\n".join(parts) + "\n"

    def save(self, directory: str | os.PathLike) -> pathlib.Path:
        """Write report.md, report.json, data.nc and one PNG per figure into `directory`.

        Figures are closed after saving. Returns the directory.
        """
        out = pathlib.Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        provenance = self.saved_provenance or self.provenance()
        record = {
            "experiment": self.experiment,
            "config": self.config,
            "provenance": provenance,
            "claims": [claim.to_dict() for claim in self.claims],
        }
        (out / "report.json").write_text(_dumps(record, indent=2) + "\n")
        (out / "report.md").write_text(self._markdown(provenance))
        self._save_data(out / "data.nc", provenance)
        for name, figure in self.figures.items():
            figure.savefig(out / f"{name}.png", dpi=120)
            if "matplotlib.pyplot" in sys.modules:  # only pyplot figures are held open globally
                sys.modules["matplotlib.pyplot"].close(figure)
        return out

    def _save_data(self, path: pathlib.Path, provenance: Mapping[str, Any]) -> None:
        data = self.data.copy(deep=False)  # new attrs dicts; the arrays are shared, not copied
        for variable in data.variables.values():
            variable.attrs = _netcdf_attrs(variable.attrs)
        data.attrs = _netcdf_attrs(data.attrs) | {
            _ATTR_PREFIX + "experiment": self.experiment,
            _ATTR_PREFIX + "config": _dumps(self.config),
            _ATTR_PREFIX + "provenance": _dumps(provenance),
            _ATTR_PREFIX + "notes": _dumps(self.notes),
        }
        data.to_netcdf(path, engine="h5netcdf")

    @classmethod
    def load(cls, directory: str | os.PathLike) -> "Report":
        """The report saved in `directory` (claims, config, data, notes, provenance; no figures)."""
        path = pathlib.Path(directory)
        record = json.loads((path / "report.json").read_text())
        data = xr.load_dataset(path / "data.nc", engine="h5netcdf")  # in memory; file closed
        notes = json.loads(data.attrs.get(_ATTR_PREFIX + "notes", "[]"))
        for key in [key for key in data.attrs if key.startswith(_ATTR_PREFIX)]:
            del data.attrs[key]
        provenance = _from_strict_json(record["provenance"])
        return cls(
            experiment=record["experiment"],
            claims=[Claim.from_dict(claim) for claim in record["claims"]],
            data=data,
            config=_from_strict_json(record["config"]),
            seed=provenance.get("seed", 0),
            notes=notes,
            saved_provenance=provenance,
        )


PAPERS: Mapping[str, str] = types.MappingProxyType({
    "P0": "Paper P0", "P1": "Paper P1", "P2": "Paper P2", "P3": "Paper P3",
})  # fmt: skip
"""The papers the reproduction summary groups claims by, in order: the label a claim's `source`
cites (as a word: "[P1] item 5", "P0: language ...") -> the title of its section. A claim
citing several papers is listed under each; one citing none goes under `STANDARD_RESULTS`."""

STANDARD_RESULTS = "Standard results (THEORY.md)"
"""The section of claims whose source cites none of `PAPERS` (only THEORY.md or the
literature)."""


def claims_by_paper(
    reports: Sequence[Report], papers: Mapping[str, str] = PAPERS
) -> dict[str, list[tuple[str, Claim]]]:
    """(experiment, claim) pairs by section title: under `papers[label]` for each paper label
    the claim's source cites, else under `STANDARD_RESULTS`; in the order of `papers`, then
    the standard results. Empty sections are left out."""
    groups: dict[str, list[tuple[str, Claim]]] = {
        t: [] for t in (*papers.values(), STANDARD_RESULTS)
    }
    for report in reports:
        for claim in report.claims:
            cited = [title for label, title in papers.items()
                     if re.search(rf"\b{re.escape(label)}\b", claim.source)]  # fmt: skip
            for title in cited or [STANDARD_RESULTS]:
                groups[title].append((report.experiment, claim))
    return {title: rows for title, rows in groups.items() if rows}


def claims_table(rows: Sequence[tuple[str, Claim]], link: bool = True) -> list[str]:
    """Markdown table lines: claim, predicted, measured, stderr, entries held, tolerance kind,
    verdict; with `link`, each id links to <experiment>/report.md."""
    lines = ["| claim | predicted | measured | ± stderr | holds | tolerance | verdict |",
             "|---|---:|---:|---:|---:|---|---|"]  # fmt: skip
    for name, c in rows:
        claim = f"[{c.id}]({name}/report.md)" if link else f"`{c.id}`"
        lines.append(f"| {claim} | {_format_number(c.predicted)} | {_format_number(c.measured)} "
                     f"| {_format_number(c.stderr)} | {c.holds}/{c.entries} "
                     f"| {c.tolerance_kind} | {c.verdict} |")  # fmt: skip
    return lines


def reproduction_summary(reports: Sequence[Report]) -> str:
    """SUMMARY.md of a `run all`: every claim, grouped by the paper its source cites
    (`claims_by_paper`: `PAPERS`, else `STANDARD_RESULTS`), with predicted, measured ± stderr and
    verdict, each id linking to its experiment's report.md (reports saved side by side), then
    each experiment's figures."""
    counts = count_verdicts(c for r in reports for c in r.claims)
    lines = ["# Reproduction summary", "",
             counts_line(counts) + f" in {len(reports)} experiments."
             " Each id links to its experiment's report; THEORY.md §1 says what is expected.",
             ""]  # fmt: skip
    for title, rows in claims_by_paper(reports).items():
        lines += [f"## {title}", "", *claims_table(rows), ""]
    lines += ["## Figures", ""]
    for report in reports:
        figures = ", ".join(f"[{f}]({report.experiment}/{f}.png)" for f in report.figures)
        lines.append(f"- {report.experiment}: {figures or '(none)'}")
    return "\n".join(lines) + "\n"
