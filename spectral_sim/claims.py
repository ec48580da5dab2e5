"""The claim engine: every verdict of spectral_sim is decided here, by one rule.

A claim compares a prediction with a measurement at m *entries* (grid points, records, data
sets; every dim of the samples but `seed`). Each entry gets an interval for its measurement at
the simultaneous level 1 - family_alpha / m (two-sided Bonferroni), and the claim is

- FAIL if any entry's interval lies wholly outside [predicted - tolerance, predicted + tolerance];
- PASS only if every entry's interval lies wholly inside it (and no seed diverged);
- INCONCLUSIVE otherwise: the data cannot tell at this noise. For a seed-based claim the report
  says how many seeds the current standard errors would need to decide it.

A one-sided claim (`side="below"` / `"above"`: at least `tolerance` below / above the
prediction) replaces the band by a half-line.

The interval depends on what is measured, and its standard error only ever comes from
independent replicates (seeds):

- `seed_mean`: the mean over seeds, ± t SEM, t Student's quantile with n - 1 degrees of freedom
  (n seeds) at the simultaneous level: the SEM of a few seeds is itself uncertain, and the
  normal z would make 2-seed intervals 6x too narrow (a pooled quantity is averaged within each
  seed first, by the caller, so the seeds stay the replicates);
- `share`: a count of k successes in n seeds, with the exact Clopper-Pearson interval
  (0/n and n/n are not exact);
- `seed_statistic`: any function of the seed-mean curve (an exponent, a rate, a ratio of
  curves), ± z times the spread of its bootstrap over seeds, resampled jointly across the
  curve so that common random numbers are respected;
- `exact`: a deterministic quantity (a closed form, a quadrature), compared without noise;
- `estimate`: a value whose standard error an estimator computed from independent replicates
  other than seeds (e.g. a bootstrap over data points), named in `replicates`.

Divergence (a NaN/inf seed, or a `diverged` flag) never supports a PASS: an entry with a
diverged seed cannot hold, and with `must_converge=True` it is a FAIL. An entry whose prediction
is NaN is not compared (a claim restricted to part of a grid says so with NaN). A claim with no
data is INCONCLUSIVE "not measured", never dropped.

Every claim says where its tolerance comes from (`tolerance_kind`): "derived" (computed in code,
with the derivation beside it), "paper" (the margin the source states) or "judgement" (a margin
we chose; the report then also gives the verdict at half and at twice the margin).

An experiment declares its claims once, as a `Table` of `Spec`s; `Table.evaluate(data,
config=cfg)` decides them from the experiment's dataset and `spectral-sim list` reads the same
table. A statement never bakes in a number of one scale: it names the Config field, as
{cfg.<field>}, which a report fills with the run's value and the listing shows at both scales.
`shift=k` moves every prediction by k tolerances: the power check that a wrong predictor is caught.

Every rule returns a `Claim`, the record of one decided claim (one row of a verdict table; a
`spectral_sim.report.Report` bundles an experiment's claims with its data). A Claim checks that
its verdict agrees with its fields, so one made by hand or read back from report.json obeys the
same rule.
"""

import contextlib
import dataclasses
import functools
import itertools
import math
import re
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Literal, get_args

import numpy as np
import xarray as xr
from scipy import stats

from spectral_sim import fit

__all__ = [
    "FAMILY_ALPHA", "SIDES", "TOLERANCE_KINDS", "VERDICTS", "Claim", "NotMeasured", "Side",
    "Spec", "Table", "ToleranceKind", "Verdict", "band", "bootstrap", "estimate", "exact",
    "not_measured", "seed_mean", "seed_statistic", "share", "t_family", "z_family",
]  # fmt: skip

ToleranceKind = Literal["derived", "paper", "judgement"]
TOLERANCE_KINDS: tuple[str, ...] = get_args(ToleranceKind)
Verdict = Literal["PASS", "FAIL", "INCONCLUSIVE"]
VERDICTS: tuple[Verdict, ...] = ("PASS", "FAIL", "INCONCLUSIVE")
Side = Literal["both", "below", "above"]
SIDES: tuple[Side, ...] = ("both", "below", "above")
FAMILY_ALPHA = 0.05
# Seeds needed to decide an INCONCLUSIVE claim are searched up to this many (beyond it: None).
_MAX_SEEDS = 2**24


# --- the Claim record ------------------------------------------------------------------------


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

    Claims are made by the rules of this module, which decide a claim checked at several entries
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
    tolerance_kind: ToleranceKind = "judgement"
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
        if self.tolerance_kind not in TOLERANCE_KINDS:
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


class NotMeasured(Exception):
    """Raised by a Spec's `measure` when the data hold nothing for its claim (the reason is the
    message); the claim is then INCONCLUSIVE "not measured"."""


def z_family(m: int | np.integer, family_alpha: float = FAMILY_ALPHA) -> float:
    """The two-sided normal quantile that makes m intervals hold jointly at level
    1 - family_alpha (Bonferroni): Phi^-1(1 - family_alpha / (2 m)); `fit.z_simultaneous`."""
    return fit.z_simultaneous(int(m), family_alpha)


def t_family(m: int | np.integer, n: Any, family_alpha: float = FAMILY_ALPHA) -> np.ndarray:
    """Student's t quantile at the same simultaneous level as `z_family(m)`, for means of n
    replicates (n - 1 degrees of freedom; NaN for n < 2), elementwise over n. It tends to z as n
    grows (1.7 % above it at 64 seeds, m = 1)."""
    df = np.asarray(n, dtype=float) - 1
    with np.errstate(invalid="ignore"):
        return np.where(df >= 1, stats.t.ppf(1 - family_alpha / (2 * int(m)), np.maximum(df, 1)),
                        np.nan)  # fmt: skip


# --- the decision rule -------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Entries:
    """Flat per-entry arrays of one claim (all of length m, the compared entries)."""

    measured: np.ndarray
    low: np.ndarray  # the simultaneous interval of `measured`
    high: np.ndarray
    stderr: np.ndarray
    predicted: np.ndarray
    tolerance: np.ndarray
    diverged: np.ndarray  # bool: a seed of this entry diverged
    labels: list[str]
    n_seeds: np.ndarray | None = None  # replicates per entry, for seeds_needed
    side: Side = "both"


def _status(e: _Entries, shift: float = 0.0, scale: float = 1.0) -> tuple[np.ndarray, ...]:
    """Per entry: (inside, outside, predicted, tolerance, band low, band high) with the
    prediction moved by shift x tolerance and the tolerance scaled by `scale`."""
    tolerance = e.tolerance * scale
    predicted = e.predicted + shift * e.tolerance
    lo, hi = band(predicted, tolerance, e.side)
    finite = np.isfinite(e.low) & np.isfinite(e.high)
    with np.errstate(invalid="ignore"):
        inside = finite & (e.low >= lo) & (e.high <= hi)
        outside = finite & ((e.low > hi) | (e.high < lo))
    return inside & ~e.diverged, outside & ~e.diverged, predicted, tolerance, lo, hi


def _verdict(inside, outside, diverged, must_converge: bool) -> Verdict:
    if outside.any() or (must_converge and diverged.any()):
        return "FAIL"
    return "PASS" if inside.all() and inside.size else "INCONCLUSIVE"


def _decide(e: _Entries, *, z: Any, kind: ToleranceKind, must_converge: bool, shift: float,
            id: str, source: str, statement: str, seeds_needed=None) -> Claim:  # fmt: skip
    """The claim over entries `e`: the verdict by the rule above, shown at its deciding entry
    (`z`: the intervals' multiplier, one or per entry)."""
    inside, outside, predicted, tolerance, lo, hi = _status(e, shift)
    verdict = _verdict(inside, outside, e.diverged, must_converge)
    # The deciding entry: the most significant FAIL, else the entry closest to leaving (or
    # farthest outside) its tolerance band, diverged entries first when they block a PASS.
    unit = np.where(tolerance > 0, tolerance, 1.0)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        reach = np.maximum(e.high - hi, lo - e.low) / unit
        beyond = np.maximum(e.low - hi, lo - e.high) / unit
    if verdict == "FAIL" and outside.any():
        i = int(np.nanargmax(np.where(outside, beyond, -np.inf)))
    elif verdict != "PASS" and e.diverged.any():
        i = int(np.argmax(e.diverged))
    else:
        undecided = ~inside if verdict == "INCONCLUSIVE" else np.ones_like(inside)
        i = int(np.argmax(np.where(undecided, np.nan_to_num(reach, nan=np.inf), -np.inf)))
    at = {}
    if kind == "judgement":
        for name, scale in (("at_half", 0.5), ("at_twice", 2.0)):
            inside_s, outside_s, *_ = _status(e, shift, scale)
            at[name] = _verdict(inside_s, outside_s, e.diverged, must_converge)
    needed = seeds_needed(e, shift) if (verdict == "INCONCLUSIVE" and seeds_needed) else None
    return Claim(
        id=id, source=source, statement=statement, predicted=float(predicted[i]),
        measured=float(e.measured[i]), stderr=float(e.stderr[i]), tolerance=float(tolerance[i]),
        z=_multiplier(z, i, e.measured.size), low=float(e.low[i]), high=float(e.high[i]),
        tolerance_kind=kind,
        entries=int(inside.size), holds=int(inside.sum()), seeds_needed=needed,
        where=e.labels[i], diverged=int(e.diverged.sum()), side=e.side, verdict=verdict, **at,
    )  # fmt: skip


def _multiplier(z: Any, i: int, m: int) -> float:
    """Entry i's interval multiplier; where it has none (fewer than 2 seeds: no interval), the
    normal one of the family."""
    value = float(np.broadcast_to(np.asarray(z, dtype=float), (m,))[i])
    return value if np.isfinite(value) else z_family(m)


def _seeds_needed(e: _Entries, shift: float, t_level: float | None = None) -> int | None:
    """Seeds at which the current standard errors (SE ~ 1/sqrt(n)) would decide the claim:
    the fewest that make one entry significantly outside, else the most that any entry needs
    to be significantly inside. None if no number of seeds would (an entry on the boundary).
    With `t_level` the intervals are Student's (t quantile at that level, n - 1 degrees of
    freedom, shrinking with n too), else their multiplier stays."""
    if e.n_seeds is None or e.diverged.any():
        return None
    *_, lo, hi = _status(e, shift)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        gap = np.minimum(np.abs(e.measured - lo), np.abs(e.measured - hi))  # to the nearest edge
        if t_level is None:
            half = (e.high - e.low) / 2  # z SE at the current seeds
            needed = np.ceil(e.n_seeds * (half / gap) ** 2)
        else:
            needed = _t_seeds(e.stderr * np.sqrt(e.n_seeds), gap, t_level)
    outside = (e.measured < lo) | (e.measured > hi)
    if outside.any():
        value = np.nanmin(np.where(outside, needed, np.inf))
    else:
        value = np.nanmax(needed)
    return int(value) if np.isfinite(value) and value <= _MAX_SEEDS else None


def _t_seeds(sd: np.ndarray, gap: np.ndarray, level: float) -> np.ndarray:
    """The fewest N >= 2 with t_level(N - 1) sd / sqrt(N) <= gap, per entry (bisection: the
    half-width falls with N); inf where even _MAX_SEEDS is not enough."""

    def fits(n):
        return stats.t.ppf(level, n - 1) * sd / np.sqrt(n) <= gap

    low, high = np.full(sd.shape, 2.0), np.full(sd.shape, float(_MAX_SEEDS))
    for _ in range(int(np.ceil(np.log2(_MAX_SEEDS)))):
        middle = np.floor((low + high) / 2)
        good = fits(middle)
        low, high = np.where(good, low, middle), np.where(good, middle, high)
    return np.where(fits(low), low, np.where(fits(high), high, np.inf))


# --- entries from data -------------------------------------------------------------------------


def _label(coords: Mapping[str, Any]) -> str:
    def value(v):
        v = v.item() if hasattr(v, "item") else v
        return f"{v:g}" if isinstance(v, float) else str(v)

    return ", ".join(f"{d} = {value(v)}" for d, v in coords.items())


def _entry_labels(template: xr.DataArray) -> list[str]:
    """ "dim = value, ..." for every entry of `template` (row-major; "" for a scalar)."""
    dims = list(template.dims)
    values = [
        template[d].values if d in template.coords else np.arange(template.sizes[d]) for d in dims
    ]
    return [_label(dict(zip(map(str, dims), combo, strict=True)))
            for combo in itertools.product(*values)]  # fmt: skip


def _broadcast(name: str, value: Any, like: xr.DataArray) -> np.ndarray:
    """`value` (a number or a DataArray over some of like's dims) as a float array shaped like
    `like`; ValueError naming `name` for a dim `like` does not have."""
    if isinstance(value, xr.DataArray):
        extra = set(value.dims) - set(like.dims)
        if extra:
            raise ValueError(f"{name} has dims {sorted(map(str, extra))} that the samples' "
                             f"entries {list(like.dims)} do not have")  # fmt: skip
        value = value.broadcast_like(like).transpose(*like.dims)
    array = np.broadcast_to(np.asarray(value, dtype=float), like.shape)
    return np.array(array, dtype=float)


def _samples(name: str, samples: Any, seed_dim: str) -> xr.DataArray:
    if not isinstance(samples, xr.DataArray):
        raise ValueError(f"{name} must be an xarray.DataArray with a {seed_dim!r} dim; got "
                         f"{type(samples).__name__}")  # fmt: skip
    if seed_dim not in samples.dims:
        raise ValueError(f"{name} must have the seed dim {seed_dim!r}; got dims "
                         f"{list(samples.dims)}")  # fmt: skip
    return samples.transpose(..., seed_dim)


def _check_common(id: str, tolerance_kind: str, family_alpha: float) -> None:
    if tolerance_kind not in TOLERANCE_KINDS:
        raise ValueError(f"tolerance_kind must be one of {TOLERANCE_KINDS}; got "
                         f"{tolerance_kind!r} ({id})")  # fmt: skip
    if not 0 < family_alpha < 1:
        raise ValueError(f"family_alpha must be in (0, 1); got {family_alpha!r} ({id})")


def _tolerance(id: str, value: np.ndarray) -> np.ndarray:
    """The tolerances of the compared entries (an entry left out may have none)."""
    if not np.all(value >= 0):  # also refuses NaN
        raise ValueError(f"tolerance must be >= 0 at every entry; got {value.ravel()[:4]} ({id})")
    return value


def not_measured(*, id: str, source: str = "", statement: str = "", why: str = "no data",
                 tolerance: float = math.nan, tolerance_kind: ToleranceKind = "judgement"
                 ) -> Claim:  # fmt: skip
    """An INCONCLUSIVE claim with nothing measured (it stays in the report, saying why)."""
    return Claim(
        id=id, source=source, statement=statement, predicted=math.nan, measured=math.nan,
        stderr=math.nan, tolerance=tolerance if math.isfinite(tolerance) else 0.0,
        tolerance_kind=tolerance_kind, entries=0, holds=0, where=f"not measured: {why}",
        verdict="INCONCLUSIVE",
    )  # fmt: skip


def _targets(like: xr.DataArray, predicted: Any, tolerance: Any) -> tuple[Any, Any, list[str]]:
    """Per entry of `like`, flattened: the prediction, the tolerance and the entry's label."""
    return (_broadcast("predicted", predicted, like).ravel(),
            _broadcast("tolerance", tolerance, like).ravel(), _entry_labels(like))  # fmt: skip


def _included(predicted: np.ndarray) -> np.ndarray:
    """Entries compared: those with a prediction (NaN marks an entry the claim leaves out)."""
    return ~np.isnan(predicted)


# --- the rules -----------------------------------------------------------------------------------


def seed_mean(
    samples: xr.DataArray,
    *,
    predicted: Any,
    tolerance: Any,
    seed_dim: str = "seed",
    relative: bool = False,
    family_alpha: float = FAMILY_ALPHA,
    tolerance_kind: ToleranceKind = "judgement",
    id: str = "claim",
    source: str = "",
    statement: str = "",
    diverged: xr.DataArray | None = None,
    observed: xr.DataArray | None = None,
    must_converge: bool = False,
    side: Side = "both",
    shift: float = 0.0,
) -> Claim:
    """The seed mean of `samples` equals `predicted` within `tolerance` at every entry.

    `samples` has a `seed_dim`; every other dim is an entry. `predicted` and `tolerance` are
    numbers or DataArrays over (some of) the entry dims; NaN `predicted` leaves an entry out.
    With `relative=True` the claim is about mean / predicted - 1 (shown as the ratio against 1).
    A NaN/inf seed, or a True in `diverged` (same dims as `samples`, e.g. a loss blow-up),
    marks its entry diverged (the mean is then over the other seeds). A False in `observed`
    marks a seed with no outcome at that entry (e.g. a run with no event to measure): it is
    left out without counting as a divergence. The SEM is the standard deviation of the seeds
    used / sqrt(their number); an entry whose seeds are all equal is refused (they are not
    independent replicates: use `exact` for a deterministic quantity). `side` "below" /
    "above" makes the claim one-sided: the mean is at least `tolerance` below / above
    `predicted` (`tolerance` 0: a sign).
    """
    _check_common(id, tolerance_kind, family_alpha)
    samples = _samples("samples", samples, seed_dim)
    values = np.asarray(samples.values, dtype=float)
    bad = ~np.isfinite(values)
    if observed is not None:  # a seed without an outcome is neither a value nor a divergence
        seen = _samples("observed", observed, seed_dim).broadcast_like(samples)
        seen = seen.transpose(*samples.dims).values.astype(bool)
        values, bad = np.where(seen, values, np.nan), bad & seen
    if diverged is not None:
        flags = _samples("diverged", diverged, seed_dim).broadcast_like(samples)
        bad |= flags.transpose(*samples.dims).values.astype(bool)
    entry = samples.isel({seed_dim: 0}, drop=True)
    pred, tol, labels = _targets(entry, predicted, tolerance)
    values, bad = values.reshape(-1, samples.sizes[seed_dim]), bad.reshape(-1, values.shape[-1])
    keep = _included(pred)
    labels = list(itertools.compress(labels, keep))
    if not keep.any():
        return not_measured(id=id, source=source, statement=statement, why="no entry has a "
                            "prediction", tolerance_kind=tolerance_kind)  # fmt: skip
    values, bad, pred, tol = values[keep], bad[keep], pred[keep], _tolerance(id, tol[keep])
    n = (~bad & ~np.isnan(values)).sum(-1)
    if values.shape[-1] < 2:
        raise ValueError(f"samples need >= 2 seeds for a standard error; got "
                         f"{values.shape[-1]} ({id})")  # fmt: skip
    clean = np.where(bad, np.nan, values)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"), _quiet():
        mean = np.nanmean(clean, -1)
        sem = np.nanstd(clean, -1, ddof=1) / np.sqrt(n)
    zero = (sem == 0) & (n >= 2)
    if zero.any():
        where = labels[int(np.argmax(zero))] or "the only entry"
        raise ValueError(f"claim {id!r}: every seed gives the same value at {where}; a "
                         f"stochastic measurement has SE > 0 (use claims.exact for a "
                         f"deterministic one)")  # fmt: skip
    if relative:
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            mean, sem = mean / pred, sem / np.abs(pred)
        pred = np.ones_like(pred)
    t = t_family(pred.size, n, family_alpha)
    e = _Entries(measured=mean, low=mean - t * sem, high=mean + t * sem, stderr=sem,
                 predicted=pred, tolerance=tol, diverged=np.asarray(bad.any(-1)), labels=labels,
                 n_seeds=n, side=side)  # fmt: skip
    level = 1 - family_alpha / (2 * pred.size)
    return _decide(e, z=t, kind=tolerance_kind, must_converge=must_converge, shift=shift,
                   id=id, source=source, statement=statement,
                   seeds_needed=functools.partial(_seeds_needed, t_level=level))  # fmt: skip


def _clopper_pearson(k: np.ndarray, n: np.ndarray, level: float) -> tuple[np.ndarray, ...]:
    """The exact two-sided interval of a binomial share k / n at confidence `level`."""
    tail = (1 - level) / 2
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        low = np.where(k > 0, stats.beta.ppf(tail, k, n - k + 1), 0.0)
        high = np.where(k < n, stats.beta.ppf(1 - tail, k + 1, n - k), 1.0)
    return low, high


def share(
    successes: xr.DataArray,
    *,
    predicted: Any,
    tolerance: Any,
    seed_dim: str = "seed",
    family_alpha: float = FAMILY_ALPHA,
    tolerance_kind: ToleranceKind = "judgement",
    id: str = "claim",
    source: str = "",
    statement: str = "",
    diverged: xr.DataArray | None = None,
    side: Side = "both",
    shift: float = 0.0,
) -> Claim:
    """The share of seeds with a success equals `predicted` within `tolerance` at every entry.

    `successes` is boolean (or 0/1, with NaN for a seed that has no outcome, e.g. a run with no
    event to test); each entry's k of n gets the exact Clopper-Pearson interval at the
    simultaneous level 1 - family_alpha / m. The shown stderr is that interval's half-width / z.
    A True in `diverged` (same dims) leaves that seed out and marks its entry diverged (it
    cannot PASS). `side` as in `seed_mean`.
    """
    _check_common(id, tolerance_kind, family_alpha)
    successes = _samples("successes", successes, seed_dim)
    values = np.asarray(successes.values, dtype=float)
    flagged = np.zeros(values.shape, bool)
    if diverged is not None:
        flags = _samples("diverged", diverged, seed_dim).broadcast_like(successes)
        flagged = flags.transpose(*successes.dims).values.astype(bool)
        values = np.where(flagged, np.nan, values)
    observed = np.isfinite(values)
    if np.any(observed & (values != 0) & (values != 1)):
        raise ValueError(f"successes must be boolean (0/1, NaN for no outcome) ({id})")
    entry = successes.isel({seed_dim: 0}, drop=True)
    pred, tol, labels = _targets(entry, predicted, tolerance)
    k = np.where(observed, values, 0).reshape(pred.size, -1).sum(-1)
    n = observed.reshape(pred.size, -1).sum(-1)
    flagged = np.asarray(flagged.reshape(pred.size, -1).any(-1))
    keep = _included(pred) & ((n > 0) | flagged)
    if not keep.any():
        return not_measured(id=id, source=source, statement=statement, why="no outcome "
                            "observed", tolerance_kind=tolerance_kind)  # fmt: skip
    labels = list(itertools.compress(labels, keep))
    k, n, pred, tol, flagged = (
        k[keep],
        n[keep],
        pred[keep],
        _tolerance(id, tol[keep]),
        flagged[keep],
    )
    level = 1 - family_alpha / pred.size
    with np.errstate(invalid="ignore", divide="ignore"):
        low, high = _clopper_pearson(k, n, level)
        low, high = np.where(n > 0, low, np.nan), np.where(n > 0, high, np.nan)
        measured = k / n
    z = z_family(pred.size, family_alpha)
    e = _Entries(measured=measured, low=low, high=high, stderr=(high - low) / (2 * z),
                 predicted=pred, tolerance=tol, diverged=flagged, labels=labels, n_seeds=n,
                 side=side)  # fmt: skip

    def needed(e: _Entries, shift: float) -> int | None:
        """Seeds at which the same share, k = round(p n), would decide the claim."""
        assert e.n_seeds is not None
        p = e.measured
        for seeds in 2 ** np.arange(int(np.log2(max(e.n_seeds.max(), 1))) + 1, 25):
            ks = np.round(p * seeds)
            lo, hi = _clopper_pearson(ks, np.full_like(ks, seeds), level)
            trial = dataclasses.replace(e, low=lo, high=hi)
            inside, outside, *_ = _status(trial, shift)
            if outside.any() or inside.all():
                return int(seeds)
        return None

    return _decide(e, z=z, kind=tolerance_kind, must_converge=False, shift=shift, id=id,
                   source=source, statement=statement, seeds_needed=needed)  # fmt: skip


def bootstrap(samples: xr.DataArray, statistic: Callable[[xr.DataArray], Any], *,
              seed_dim: str = "seed", n_boot: int = 1000,
              boot_seed: int = 0) -> tuple[xr.DataArray, xr.DataArray]:  # fmt: skip
    """`statistic(seed mean)` and its standard error over `n_boot` resamples of the seeds, the
    same resample across every other dim (common random numbers respected). Seeds with a
    NaN/inf value anywhere are left out (as in `seed_statistic`)."""
    measured, stderr, _, _ = _bootstrap(_samples("samples", samples, seed_dim), statistic,
                                        seed_dim, n_boot, boot_seed)  # fmt: skip
    return measured, stderr


_BOOT_DIM = "bootstrap"
_BOOT_BLOCK = 100  # resamples per vectorised call (bounds memory at entries x 100 means)


def _bootstrap(samples, statistic, seed_dim, n_boot, boot_seed):
    """(statistic of the seed mean, bootstrap SE, seeds used, whether every seed was finite).

    Each resample's seed mean is a weighted sum (counts / n) over the seeds. The statistic is
    tried once on a block of resampled means with an extra leading `bootstrap` dim; if that
    gives the same values as calling it resample by resample (checked on two), the blocks are
    used, else it is called once per resample."""
    finite = np.asarray(np.isfinite(samples.values)).reshape(-1, samples.sizes[seed_dim]).all(0)
    clean = samples.isel({seed_dim: np.flatnonzero(finite)})
    n = clean.sizes[seed_dim]
    if n < 2:
        nan = xr.DataArray(np.nan)
        return nan, nan, n, False

    def apply(mean: xr.DataArray) -> xr.DataArray:
        with np.errstate(all="ignore"), _quiet():
            out = statistic(mean)
        return out if isinstance(out, xr.DataArray) else xr.DataArray(np.asarray(out, float))

    measured = apply(clean.mean(seed_dim))
    picks = np.random.default_rng(boot_seed).integers(0, n, (n_boot, n))
    weights = np.stack([np.bincount(pick, minlength=n) for pick in picks]) / n
    template = clean.isel({seed_dim: 0}, drop=True)

    def means(block: np.ndarray) -> xr.DataArray:  # (resamples, *entry dims)
        values = np.tensordot(block, clean.values, axes=([1], [clean.ndim - 1]))
        return xr.DataArray(values, dims=(_BOOT_DIM, *template.dims), coords=template.coords)

    first = means(weights[:_BOOT_BLOCK])
    try:
        vectorised = apply(first).transpose(_BOOT_DIM, *measured.dims)
        one_by_one = np.stack([apply(first.isel({_BOOT_DIM: i})).values for i in (0, 1)])
        fast = np.allclose(vectorised.values[:2], one_by_one, rtol=1e-10, equal_nan=True)
    except Exception:  # a statistic written for one resample at a time: call it so
        fast = False
    blocks = range(0, n_boot, _BOOT_BLOCK)
    if fast:
        boot = np.concatenate([apply(means(weights[i : i + _BOOT_BLOCK]))
                               .transpose(_BOOT_DIM, *measured.dims).values
                               for i in blocks])  # fmt: skip
    else:
        boot = np.stack([apply(means(weights[i : i + 1]).isel({_BOOT_DIM: 0})).values
                         for i in range(n_boot)])  # fmt: skip
    with _quiet():
        stderr = np.nanstd(np.where(np.isfinite(boot), boot, np.nan), 0, ddof=1)
    stderr = np.where(np.isfinite(boot).mean(0) >= 0.9, stderr, np.nan)  # too many failed fits
    return measured, measured.copy(data=stderr), n, bool(finite.all())


def seed_statistic(
    samples: xr.DataArray,
    statistic: Callable[[xr.DataArray], Any],
    *,
    predicted: Any,
    tolerance: Any,
    seed_dim: str = "seed",
    n_boot: int = 1000,
    family_alpha: float = FAMILY_ALPHA,
    tolerance_kind: ToleranceKind = "judgement",
    id: str = "claim",
    source: str = "",
    statement: str = "",
    boot_seed: int = 0,
    diverged: xr.DataArray | None = None,
    must_converge: bool = False,
    side: Side = "both",
    shift: float = 0.0,
) -> Claim:
    """`statistic(seed mean of samples)` equals `predicted` within `tolerance` at every entry.

    `statistic` maps the seed-mean DataArray (every dim of `samples` but the seed dim) to a
    number or a DataArray whose dims are the entries (e.g. an exponent fitted along a curve,
    per grid point). Its standard error is the spread over `n_boot` bootstrap resamples of the
    seeds, the same resample for every point of the curve (common random numbers respected).
    A seed with a NaN/inf value anywhere (or a True anywhere in `diverged`, same dims) is
    diverged: it is left out, and the claim cannot PASS (FAIL with `must_converge`). `side` as
    in `seed_mean`.
    """
    _check_common(id, tolerance_kind, family_alpha)
    if n_boot < 50:
        raise ValueError(f"n_boot must be >= 50 for a bootstrap standard error; got {n_boot}")
    samples = _samples("samples", samples, seed_dim)
    if diverged is not None:
        flags = _samples("diverged", diverged, seed_dim).broadcast_like(samples)
        samples = samples.where(~flags.transpose(*samples.dims).astype(bool))
    measured, stderr, n, all_finite = _bootstrap(samples, statistic, seed_dim, n_boot, boot_seed)
    if n < 2:
        return not_measured(
            id=id,
            source=source,
            statement=statement,
            why=f"{n} seeds without divergence",
            tolerance_kind=tolerance_kind,
        )
    stderr = stderr.values
    pred, tol, labels = _targets(measured, predicted, tolerance)
    keep = _included(pred)
    if not keep.any():
        return not_measured(id=id, source=source, statement=statement, why="no entry has a "
                            "prediction", tolerance_kind=tolerance_kind)  # fmt: skip
    labels = list(itertools.compress(labels, keep))
    value, stderr = measured.values.ravel()[keep], stderr.ravel()[keep]
    if np.any(stderr == 0):
        where = labels[int(np.argmax(stderr == 0))] or "the only entry"
        raise ValueError(f"claim {id!r}: the statistic does not vary over seed resamples at "
                         f"{where}; a fitted quantity of seeds has SE > 0")  # fmt: skip
    z = z_family(keep.sum(), family_alpha)
    e = _Entries(measured=value, low=value - z * stderr, high=value + z * stderr, stderr=stderr,
                 predicted=pred[keep], tolerance=_tolerance(id, tol[keep]),
                 diverged=np.full(value.shape, not all_finite), labels=labels,
                 n_seeds=np.full(value.shape, n), side=side)  # fmt: skip
    return _decide(e, z=z, kind=tolerance_kind, must_converge=must_converge, shift=shift,
                   id=id, source=source, statement=statement,
                   seeds_needed=_seeds_needed)  # fmt: skip


def exact(
    measured: Any,
    *,
    predicted: Any,
    tolerance: Any,
    relative: bool = False,
    tolerance_kind: ToleranceKind = "derived",
    id: str = "claim",
    source: str = "",
    statement: str = "",
    must_converge: bool = False,
    side: Side = "both",
    shift: float = 0.0,
) -> Claim:
    """A deterministic `measured` (a number or a DataArray of entries: a closed form, an exact
    simulator, a quadrature) equals `predicted` within `tolerance` at every entry, without
    noise. A non-finite value is a divergence. `side` as in `seed_mean`."""
    _check_common(id, tolerance_kind, FAMILY_ALPHA)
    if not isinstance(measured, xr.DataArray):
        measured = xr.DataArray(np.asarray(measured, dtype=float))
    value = np.asarray(measured.values, dtype=float).ravel()
    pred, tol, labels = _targets(measured, predicted, tolerance)
    keep = _included(pred)
    if not keep.any():
        return not_measured(id=id, source=source, statement=statement, why="no entry has a "
                            "prediction", tolerance_kind=tolerance_kind)  # fmt: skip
    labels = list(itertools.compress(labels, keep))
    value, pred, tol = value[keep], pred[keep], _tolerance(id, tol[keep])
    if relative:
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            value = value / pred
        pred = np.ones_like(pred)
    e = _Entries(
        measured=value,
        low=value,
        high=value,
        stderr=np.zeros_like(value),
        predicted=pred,
        tolerance=tol,
        diverged=~np.isfinite(value),
        labels=labels,
        side=side,
    )
    return _decide(e, z=3.0, kind=tolerance_kind, must_converge=must_converge, shift=shift,
                   id=id, source=source, statement=statement)  # fmt: skip


def estimate(
    measured: Any,
    stderr: Any,
    *,
    predicted: Any,
    tolerance: Any,
    replicates: str,
    family_alpha: float = FAMILY_ALPHA,
    tolerance_kind: ToleranceKind = "judgement",
    id: str = "claim",
    source: str = "",
    statement: str = "",
    side: Side = "both",
    shift: float = 0.0,
) -> Claim:
    """`measured` ± z `stderr` against `predicted` at every entry, for an estimator whose
    standard error comes from independent replicates other than seeds; `replicates` names
    them (e.g. "bootstrap over the 1797 images") and is shown with the claim. A fit's residual
    error is not such a standard error. SE 0 is refused."""
    _check_common(id, tolerance_kind, family_alpha)
    if not replicates:
        raise ValueError(f"replicates must say what the standard error resamples ({id})")
    if not isinstance(measured, xr.DataArray):
        measured = xr.DataArray(np.asarray(measured, dtype=float))
    value = np.asarray(measured.values, dtype=float).ravel()
    se = _broadcast("stderr", stderr, measured).ravel()
    pred, tol, labels = _targets(measured, predicted, tolerance)
    keep = _included(pred)
    if not keep.any():
        return not_measured(id=id, source=source, statement=statement, why="no entry has a "
                            "prediction", tolerance_kind=tolerance_kind)  # fmt: skip
    if np.any(se[keep] == 0):
        raise ValueError(f"claim {id!r}: an estimated stderr of 0 ({replicates})")
    labels = list(itertools.compress(labels, keep))
    value, se, pred, tol = value[keep], se[keep], pred[keep], _tolerance(id, tol[keep])
    z = z_family(pred.size, family_alpha)
    e = _Entries(
        measured=value,
        low=value - z * se,
        high=value + z * se,
        stderr=se,
        predicted=pred,
        tolerance=tol,
        diverged=~np.isfinite(value),
        labels=labels,
        side=side,
    )
    claim = _decide(e, z=z, kind=tolerance_kind, must_converge=False, shift=shift, id=id,
                    source=source, statement=statement)  # fmt: skip
    return dataclasses.replace(claim, where=f"{claim.where}; SE: {replicates}".lstrip("; "))


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence NumPy's RuntimeWarnings (all-NaN slices, degrees of freedom) in a block."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


# --- declared claims -----------------------------------------------------------------------------

# A statement names a field of the experiment's Config as {cfg.<field>} ({{cfg.<field>}} inside
# an f-string), never a number of one scale: a report shows the value the run used, `spectral-sim
# list` the field with its value at full scale and, where it differs, at --quick:
# "by t = {cfg.sphere_time}" reads "by t = 100" in a quick run's report and "by t = sphere_time
# (1000; --quick 100)" in the listing.
_CONFIG_FIELD = re.compile(r"\{cfg\.([A-Za-z_]\w*)\}")


def _shown(value: Any) -> str:
    """A Config value as a statement shows it: floats by :g, sequences as (v1, v2, ...)."""
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, tuple | list):
        return f"({', '.join(map(_shown, value))})"
    return str(value)


def _config_fields(config: Any) -> Mapping[str, Any]:
    """field -> value of a Config instance, or the mapping itself (e.g. a Report's config)."""
    if isinstance(config, type):
        raise TypeError(f"config must be a Config instance or a mapping of its fields, not the "
                        f"class {config.__name__}")  # fmt: skip
    if dataclasses.is_dataclass(config):
        return {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}
    return config


@dataclasses.dataclass(frozen=True)
class Spec:
    """One claim, declared once: its id, source, statement, how its tolerance was set, the rule
    that decides it and how to read its evidence from the experiment's data.

    `measure(data)` returns the rule's keyword arguments (samples, predicted, tolerance, ...;
    not the id/source/statement/tolerance_kind, which the Spec supplies), or raises
    `NotMeasured`. With `over` (names of data dims), the claim is made once per coordinate
    of those dims: `id` and `statement` are format strings over them (e.g.
    "real_data.{set}.omnibus") and `measure` gets the data selected there. The statement names
    a value of the experiment's Config as {cfg.<field>} (e.g. "one cluster by t =
    {cfg.sphere_time}"), filled with the run's value when the claim is decided.
    """

    id: str
    source: str
    statement: str
    rule: Callable[..., Claim]
    measure: Callable[[Any], Mapping[str, Any]]
    tolerance_kind: ToleranceKind = "judgement"
    over: tuple[str, ...] = ()

    def __post_init__(self):
        if self.tolerance_kind not in TOLERANCE_KINDS:
            raise ValueError(f"tolerance_kind must be one of {TOLERANCE_KINDS}; got "
                             f"{self.tolerance_kind!r} ({self.id})")  # fmt: skip
        for name in ("id", "source"):
            if _CONFIG_FIELD.search(getattr(self, name)):
                raise ValueError(f"claim {self.id!r}: a Config field ({{cfg.<field>}}) may be "
                                 f"named in the statement only, not in the {name}")  # fmt: skip

    @property
    def pattern(self) -> str:
        """The id with every {field} as * (the form `spectral-sim list` shows)."""
        return re.sub(r"\{[^}]*\}", "*", self.id)

    @property
    def config_fields(self) -> tuple[str, ...]:
        """The Config fields the statement names ({cfg.<field>}), in order of appearance."""
        return tuple(dict.fromkeys(_CONFIG_FIELD.findall(self.statement)))

    def check_config(self, config: Any) -> None:
        """ValueError naming this claim if its statement names a field `config` (a Config class
        or instance, or a mapping of fields) does not have."""
        if dataclasses.is_dataclass(config):
            owner = config.__name__ if isinstance(config, type) else type(config).__name__
            names = {f.name for f in dataclasses.fields(config)}
        else:
            owner, names = "the config", set(config)
        for name in self.config_fields:
            if name not in names:
                raise ValueError(f"claim {self.id!r}: its statement names {{cfg.{name}}}, but "
                                 f"{owner} has no field {name!r}")  # fmt: skip

    def stated(self, config: Any = None) -> str:
        """The statement with each {cfg.<field>} as its value in `config` (the Config the run
        used, or a mapping of its fields); without a config, as the field's name."""
        if config is None:
            return _CONFIG_FIELD.sub(lambda m: m[1], self.statement)
        self.check_config(config)
        values = _config_fields(config)
        return _CONFIG_FIELD.sub(lambda m: _shown(values[m[1]]), self.statement)

    def _one(self, data: Any, shift: float, id: str, statement: str) -> Claim:
        try:
            kwargs = dict(self.measure(data))
        except NotMeasured as why:
            return not_measured(id=id, source=self.source, statement=statement, why=str(why),
                                tolerance_kind=self.tolerance_kind)  # fmt: skip
        return self.rule(**kwargs, id=id, source=self.source, statement=statement,
                         tolerance_kind=self.tolerance_kind, shift=shift)  # fmt: skip

    def evaluate(self, data: Any, *, shift: float = 0.0, config: Any = None) -> list[Claim]:
        """The claim(s) decided on `data` (one per coordinate of `over`), stated with the values
        of `config`, the Config the run used (see `stated`)."""
        statement = self.stated(config)
        if not self.over:
            return [self._one(data, shift, self.id, statement)]
        missing = [d for d in self.over if d not in getattr(data, "dims", ())]
        if missing:
            return [not_measured(id=self.pattern, source=self.source, statement=statement,
                                 why=f"the data have no dim {missing}",
                                 tolerance_kind=self.tolerance_kind)]  # fmt: skip
        out = []
        if any(data.sizes[d] == 0 for d in self.over):
            return [not_measured(id=self.pattern, source=self.source, statement=statement,
                                 why=f"no coordinates along {list(self.over)}",
                                 tolerance_kind=self.tolerance_kind)]  # fmt: skip
        for combo in itertools.product(*(data[d].values for d in self.over)):
            where = {d: v.item() if hasattr(v, "item") else v
                     for d, v in zip(self.over, combo, strict=True)}  # fmt: skip
            out.append(self._one(data.sel(where), shift, _fill(self.id, where),
                                 _fill(statement, where)))  # fmt: skip
        return out


def _fill(text: str, values: Mapping[str, Any]) -> str:
    """`text` with each {name} of `values` replaced (other braces, e.g. a set, stay as they are)."""
    for name, value in values.items():
        text = text.replace("{" + name + "}", str(value))
    return text


@dataclasses.dataclass(frozen=True)
class Table:
    """An experiment's claims: `evaluate(data, config=cfg)` decides every one (in order).

    `config`, the experiment's Config class, is what the statements' {cfg.<field>} name: each is
    checked against it when the table is built, so a misspelt field fails at import, not when a
    run ends.
    """

    specs: tuple[Spec, ...]
    config: type | None = None

    def __init__(self, *specs: Spec, config: type | None = None):
        ids = [spec.id for spec in specs]
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        if repeated:
            raise ValueError(f"claim ids must be unique; repeated: {repeated}")
        if config is not None:
            if not (isinstance(config, type) and dataclasses.is_dataclass(config)):
                raise TypeError(f"config must be the experiment's Config class; got {config!r}")
            for spec in specs:
                spec.check_config(config)
        object.__setattr__(self, "specs", tuple(specs))
        object.__setattr__(self, "config", config)

    def __iter__(self) -> Iterator[Spec]:
        return iter(self.specs)

    def __len__(self) -> int:
        return len(self.specs)

    def evaluate(self, data: Any, *, shift: float = 0.0, config: Any = None) -> list[Claim]:
        """Every claim decided on `data`; `shift=k` moves each prediction by k tolerances.
        `config` is the Config the run used (or a mapping of its fields, e.g. a Report's
        config): each {cfg.<field>} of a statement shows its value (without it: the field's
        name)."""
        return [claim for spec in self.specs
                for claim in spec.evaluate(data, shift=shift, config=config)]  # fmt: skip

    def power(
        self, data: Any, shift: float = 2.0, *, config: Any = None
    ) -> list[tuple[Claim, Claim, Claim]]:
        """Each claim with its verdicts when every prediction is moved down and up by `shift`
        tolerances: a claim with power catches such a wrong predictor (FAIL both ways)."""
        moved = [self.evaluate(data, shift=k, config=config) for k in (0.0, -shift, shift)]
        return list(zip(*moved, strict=True))

    def listing(self, config: Any = None, quick: Any = None) -> dict[str, str]:
        """id pattern -> "statement [rule, tolerance kind]" (what `spectral-sim list` shows).

        Each {cfg.<field>} shows as the field with its value in `config` (default: the table's
        Config(), the full scale) and in `quick` (the --quick config) where that differs:
        "t = sphere_time (1000; --quick 100)". Each {dim} of `over` shows as <dim>.
        """
        if config is None and self.config is not None:
            config = self.config()
        for spec in self.specs:
            for scale in (config, quick):
                if scale is not None:
                    spec.check_config(scale)
        full = None if config is None else _config_fields(config)
        fast = None if quick is None else _config_fields(quick)

        def show(match: re.Match) -> str:
            name = match[1]
            if full is None:
                return name
            value = _shown(full[name])
            if fast is None or _shown(fast[name]) == value:
                return f"{name} ({value})"
            return f"{name} ({value}; --quick {_shown(fast[name])})"

        out = {}
        for spec in self.specs:
            statement = _CONFIG_FIELD.sub(show, spec.statement)
            statement = _fill(statement, {name: f"<{name}>" for name in spec.over})
            rule = getattr(spec.rule, "__name__", "rule")
            out[spec.pattern] = f"{statement} [{rule}, {spec.tolerance_kind} tolerance]"
        return out

    def ids(self) -> Sequence[str]:
        return [spec.id for spec in self.specs]
