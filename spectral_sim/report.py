"""Verdict tables: each Claim compares a theory's prediction with a measurement, and a Report
bundles the claims with the dataset, figures, config and provenance of the run that made them.

Verdicts are an equivalence test: with band = z * stderr, PASS when the whole interval
|measured - predicted| +/- band lies within the tolerance, FAIL when it lies wholly outside.
"""

import dataclasses
import datetime
import json
import math
import os
import pathlib
import platform
import re
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import xarray as xr

if TYPE_CHECKING:  # matplotlib is imported only when a figure is saved: keeps imports fast
    from matplotlib.figure import Figure

__all__ = [
    "PAPERS", "VERDICTS", "Claim", "Report", "Verdict", "claims_by_paper", "claims_table",
    "count_verdicts", "counts_line", "provenance", "reproduction_summary",
]  # fmt: skip

Verdict = Literal["PASS", "FAIL", "INCONCLUSIVE"]
VERDICTS: tuple[Verdict, ...] = ("PASS", "FAIL", "INCONCLUSIVE")
Side = Literal["both", "below", "above"]
SIDES: tuple[Side, ...] = ("both", "below", "above")


def band(predicted: Any, tolerance: Any, side: Side = "both") -> tuple[Any, Any]:
    """(low, high): where a measurement must lie for a claim to hold. "both": predicted ±
    tolerance; "below": at least `tolerance` below the prediction, (-inf, predicted -
    tolerance]; "above": at least `tolerance` above it, [predicted + tolerance, inf).
    Works elementwise on arrays."""
    predicted, tolerance = np.asarray(predicted, float), np.asarray(tolerance, float)
    inf = np.full(np.broadcast(predicted, tolerance).shape, np.inf)
    if side == "below":
        return -inf, predicted - tolerance
    if side == "above":
        return predicted + tolerance, inf
    return predicted - tolerance, predicted + tolerance


# Dataset attrs that save() adds to data.nc and load() removes again, so data round-trips.
_ATTR_PREFIX = "report_"
_FIGURE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_PACKAGE_DIR = pathlib.Path(__file__).resolve().parent


def _as_float(name: str, value: object) -> float:
    """A Python float from a number or 0-d array (NumPy or JAX); ValueError naming `name`."""
    try:
        array = np.asarray(value)
    except Exception as error:  # e.g. a tracer: claims are made from concrete results
        raise ValueError(f"{name} must be a concrete number; got {value!r}") from error
    if array.shape != () or array.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be a real scalar; got {value!r}")
    out = float(array)
    # One NaN object for every NaN, so that claims compare equal field by field (Python compares
    # tuple items by identity before ==), e.g. after a save/load round trip of a diverged run.
    return math.nan if math.isnan(out) else out


@dataclasses.dataclass(frozen=True)
class Claim:
    """One row of a verdict table: a theory's `predicted` value against a `measured` one.

    Claims are made by `spectral_sim.claims`, which decides a claim checked at several entries
    (grid points, records, data sets) and shows it at its deciding entry (`where`): `entries`
    (m) were compared, `holds` (h) of them significantly inside the tolerance, `diverged` had
    a diverged seed. `[low, high]` is the deciding entry's interval at the simultaneous level
    (measured -/+ z stderr when NaN, i.e. not given; an exact binomial interval for counts).
    `source` cites where the prediction comes from; `tolerance` is the largest
    |measured - predicted| at which the claim still holds, and `tolerance_kind` where it comes
    from ("derived" in code, "paper", or "judgement", for which `at_half` / `at_twice` give the
    verdict at half / twice the margin). `seeds_needed` says at how many seeds the current
    standard errors would decide an INCONCLUSIVE claim.

    The verdict, computed from these fields unless the engine gives it:

    - INCONCLUSIVE if predicted or the interval is non-finite (e.g. a diverged run);
    - FAIL if the interval lies wholly outside the band [predicted - tolerance, predicted +
      tolerance] (for a one-sided claim, `side` "below" / "above": at least `tolerance` below /
      above the prediction);
    - PASS if it lies wholly inside and every entry holds (h = m, none diverged);
    - INCONCLUSIVE otherwise: the measurement's uncertainty is larger than the gap it must
      resolve.

    A verdict the engine gives is checked against the same fields: PASS needs the deciding
    interval inside and h = m, FAIL an interval outside (or a diverged entry).
    """

    id: str
    source: str
    statement: str
    predicted: float
    measured: float
    stderr: float
    tolerance: float
    z: float = 3.0
    low: float = math.nan  # NaN: measured - z stderr
    high: float = math.nan
    tolerance_kind: Literal["derived", "paper", "judgement"] = "judgement"
    entries: int = 1
    holds: int | None = None
    seeds_needed: int | None = None
    where: str = ""
    diverged: int = 0
    at_half: Verdict | None = None
    at_twice: Verdict | None = None
    side: Side = "both"
    verdict: Verdict = None  # type: ignore[assignment]  # None: computed from the fields
    error: float = dataclasses.field(init=False)

    def __post_init__(self):
        for name in ("predicted", "measured", "stderr", "tolerance", "z"):
            object.__setattr__(self, name, _as_float(name, getattr(self, name)))
        # NaN stderr is allowed (e.g. one seed, or a diverged run): it makes the claim
        # INCONCLUSIVE rather than stopping the experiment that reports it.
        if self.stderr < 0:
            raise ValueError(f"stderr must be >= 0 (or NaN); got {self.stderr!r} ({self.id})")
        if not self.tolerance >= 0:
            raise ValueError(f"tolerance must be >= 0; got {self.tolerance!r} ({self.id})")
        if not 0 < self.z < math.inf:
            raise ValueError(f"z must be finite and > 0; got {self.z!r} ({self.id})")
        if self.side not in SIDES:
            raise ValueError(f"side must be one of {SIDES}; got {self.side!r} ({self.id})")
        if self.tolerance_kind not in ("derived", "paper", "judgement"):
            raise ValueError(f"tolerance_kind must be derived, paper or judgement; got "
                             f"{self.tolerance_kind!r} ({self.id})")  # fmt: skip
        band = self.z * self.stderr
        for name, default in (("low", self.measured - band), ("high", self.measured + band)):
            value = _as_float(name, getattr(self, name))
            object.__setattr__(self, name, _as_float(name, default) if math.isnan(value) else value)
        if self.entries < 0 or self.diverged < 0:
            raise ValueError(f"entries and diverged must be >= 0 ({self.id})")
        if self.holds is None:
            if self.entries != 1:
                raise ValueError(f"holds must be given for a claim over {self.entries} entries "
                                 f"({self.id})")  # fmt: skip
            object.__setattr__(self, "holds", int(self._inside()))
        if not 0 <= self.holds <= self.entries:  # type: ignore[operator]
            raise ValueError(f"holds must be in [0, entries]; got {self.holds} ({self.id})")
        for name in ("at_half", "at_twice"):
            if getattr(self, name) not in (None, *VERDICTS):
                raise ValueError(f"{name} must be a verdict or None ({self.id})")
        error = abs(self.measured - self.predicted)
        object.__setattr__(self, "error", math.nan if math.isnan(error) else error)
        decided = self._decide()
        if self.verdict is None:
            object.__setattr__(self, "verdict", decided)
        elif self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}; got {self.verdict!r}")
        elif self.verdict == "PASS" and decided != "PASS":
            raise ValueError(f"claim {self.id!r}: PASS needs the interval inside the tolerance "
                             f"at every entry ({self.holds} of {self.entries} hold)")  # fmt: skip
        elif self.verdict == "FAIL" and not (self._outside() or self.diverged):
            raise ValueError(f"claim {self.id!r}: FAIL needs the deciding interval outside "
                             f"the tolerance (or a diverged entry)")  # fmt: skip

    def _finite(self) -> bool:
        return all(math.isfinite(v) for v in (self.predicted, self.low, self.high))

    def _inside(self) -> bool:
        lo, hi = band(self.predicted, self.tolerance, self.side)
        return self._finite() and bool(lo <= self.low and self.high <= hi)

    def _outside(self) -> bool:
        lo, hi = band(self.predicted, self.tolerance, self.side)
        return self._finite() and bool(self.low > hi or self.high < lo)

    def _decide(self) -> Verdict:
        if math.isnan(self.stderr) or not self._finite():
            return "INCONCLUSIVE"
        if self._outside():
            return "FAIL"
        if self._inside() and self.holds == self.entries and not self.diverged:
            return "PASS"
        return "INCONCLUSIVE"

    def details(self) -> str:
        """Where it was decided, over how many entries, and what would settle it, in words."""
        parts = [f"deciding entry: {self.where}" if self.where else ""]
        if self.side != "both":
            parts.append(f"one-sided: holds if measured is at least the tolerance "
                         f"{self.side} the prediction")  # fmt: skip
        if self.entries != 1:
            parts.append(f"holds at {self.holds} of {self.entries} entries")
        if self.diverged:
            parts.append(f"{self.diverged} entries with a diverged seed")
        parts.append(f"tolerance: {self.tolerance_kind}")
        if self.at_half is not None:
            parts.append(f"at half the margin {self.at_half}, at twice {self.at_twice}")
        if self.seeds_needed is not None:
            parts.append(f"about {self.seeds_needed} seeds would decide it")
        return "; ".join(p for p in parts if p)

    def to_dict(self) -> dict[str, Any]:
        """All fields, computed ones included, as plain Python values (floats may be non-finite)."""
        return {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> "Claim":
        """The claim recorded by `to_dict` (or in report.json); the verdict is checked against
        the recorded fields (older records without the engine's fields are recomputed)."""

        # report.json writes non-finite numbers as "nan" / "inf" / "-inf"; null also means NaN.
        def number(name: str, default: float | None = None) -> float | None:
            value = record.get(name, default)
            return math.nan if value is None else float(value)

        optional = {name: record[name] for name in ("tolerance_kind", "entries", "holds",
                    "seeds_needed", "where", "diverged", "at_half", "at_twice", "side")
                    if name in record}  # fmt: skip
        engine = "entries" in record
        claim = cls(
            id=record["id"],
            source=record["source"],
            statement=record["statement"],
            predicted=number("predicted"),  # type: ignore[arg-type]
            measured=number("measured"),  # type: ignore[arg-type]
            stderr=number("stderr"),  # type: ignore[arg-type]
            tolerance=number("tolerance"),  # type: ignore[arg-type]
            z=number("z", 3.0),  # type: ignore[arg-type]
            low=number("low") if engine and "low" in record else math.nan,  # type: ignore[arg-type]
            high=number("high") if engine and "high" in record else math.nan,  # type: ignore[arg-type]
            verdict=record.get("verdict") if engine else None,  # type: ignore[arg-type]
            **optional,
        )
        if "verdict" in record and record["verdict"] != claim.verdict:
            raise ValueError(
                f"claim {claim.id!r}: recorded verdict {record['verdict']!r} differs from the "
                f"recomputed {claim.verdict!r}"
            )
        return claim


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


def _git(*args: str) -> str | None:
    """stdout of a git command run in the package's directory, or None if git fails or is absent."""
    try:
        done = subprocess.run(
            ["git", *args],
            cwd=_PACKAGE_DIR,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
            # `git status` may otherwise take the index lock while someone else commits.
            env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"},
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip()


def git_commit() -> str:
    """HEAD of the checkout the package runs from, "+dirty" if it has changes, else "unknown".

    "unknown" also when the package is not tracked there (e.g. installed into a virtual
    environment that happens to sit inside some other checkout).
    """
    commit = _git("rev-parse", "HEAD")
    if not commit or _git("ls-files", "--error-unmatch", "__init__.py") is None:
        return "unknown"
    return commit + ("+dirty" if _git("status", "--porcelain") else "")


def _device_names() -> list[str]:
    import jax

    names = []
    for device in jax.devices():
        name = f"{device.platform}:{device.id}"
        kind = str(getattr(device, "device_kind", device.platform))
        names.append(name if kind.lower() == device.platform else f"{name} ({kind})")
    return names


def provenance(seed: int) -> dict[str, Any]:
    """Where and how a result was made: package and JAX versions, git commit, devices (and
    process count), x64, seed, UTC time, Python version."""
    import jax

    from spectral_sim import __version__

    return {
        "package_version": __version__,
        "git_commit": git_commit(),
        "jax_version": jax.__version__,
        "devices": _device_names(),
        "process_count": jax.process_count(),
        "x64": bool(jax.config.jax_enable_x64),  # pyright: ignore[reportAttributeAccessIssue]
        "matmul_precision": str(jax.config.jax_default_matmul_precision),  # pyright: ignore
        "seed": int(seed),
        "utc_time": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "python_version": platform.python_version(),
    }


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


PAPERS = ("P0", "P1", "P2", "P3")


def _papers(source: str) -> list[str]:
    """The papers P0-P3 a claim's source cites (e.g. "[P1] item 5", "P0: language ...")."""
    return [p for p in PAPERS if re.search(rf"\b{p}\b", source)]


def claims_by_paper(reports: Sequence[Report]) -> dict[str, list[tuple[str, Claim]]]:
    """(experiment, claim) pairs by the paper P0-P3 each claim's source cites, titled "Paper Pn";
    claims citing none go under "Standard results (THEORY.md)". Empty groups are left out."""
    groups: dict[str, list[tuple[str, Claim]]] = {p: [] for p in (*PAPERS, "THEORY.md")}
    for report in reports:
        for claim in report.claims:
            for paper in _papers(claim.source) or ["THEORY.md"]:
                groups[paper].append((report.experiment, claim))
    return {
        "Standard results (THEORY.md)" if paper == "THEORY.md" else f"Paper {paper}": rows
        for paper, rows in groups.items()
        if rows
    }


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
    """SUMMARY.md of a `run all`: every claim, grouped by the paper its source cites (claims
    citing only THEORY.md go under "Standard results"), with predicted, measured ± stderr and
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
