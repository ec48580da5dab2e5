"""Spectral edge and grokking: does the update-Gram gap move before every grokking event?

[P2] claims that the spectral gap of the rolling window of parameter updates, at
k* = argmax sigma_j / sigma_(j+1), controls phase transitions: gap dynamics precede every grokking
event with weight decay (24/24) and none happen without (0/24, revised to 1/24); k* = 1 under
Muon and 2 under AdamW on the same model; the adiabatic parameter A = ||dG||_F / (eta g^2) is ~1
at a transition and << 1 on a plateau (THEORY.md §1 rows 11-12, §5). Three sweeps of
`models.modular` (a o b mod p, full batch):

- AdamW with and without weight decay, `n_seeds` each: grokking events (test accuracy reaching
  `threshold` at least `delay` steps after the train accuracy did, `diagnostics.grokking`);
- the same model under Muon, for k*;
- for every event, the change-point rule below on log R* of the raw and the row-centred
  window, and the same rule at every eligible time of the same runs (the random-time null).

The change-point rule is fixed in the Config before any run is looked at: log R* is smoothed by a
trailing median of `smooth` records; at record i the mean of the last `recent` smoothed values
is compared with the mean and standard deviation of the `baseline` values before them; a change
point is a record where |recent mean - baseline mean| first exceeds `z` baseline standard
deviations (a rising edge). An event at step e is "preceded" if a change point lies in
[e - horizon, e]; its lead time is e minus the earliest such change point. The null rate is the
share of eligible record times t (uniform random times) with a change point in [t - horizon, t].
"""

import dataclasses
import sys
import warnings
from functools import partial
from typing import Any, Literal

import jax
import numpy as np
import xarray as xr

import experiments
from spectral_sim import claims, simulate, sweep
from spectral_sim.diagnostics import grokking
from spectral_sim.models import modular
from spectral_sim.report import Report

# "Every run" / "no run" / "every event": a share of 1 (or 0) within COUNT_TOL (judgement; P2
# states 24/24 and 0/24, revised 1/24, not a margin). An exact n/n clears 1 - COUNT_TOL only
# from n = 72 seeds (0.025^(1/n) >= 0.95), so with fewer the count claims are INCONCLUSIVE at best.
COUNT_TOL = 0.05
# "A ~ 1" at a transition: log10 A within a decade of 0; "A << 1" on a plateau: log10 A in
# [-3, -1] (at least a decade below 1). Both margins are ours (judgement).
DECADE = 1.0
# "Events are preceded more often than random times of the same runs" is d > 0 for the per-run
# d = (event preceded: 0 or 1) - (the run's null rate), and d <= 1 always: the band [0, 1]
# (predicted 0.5, tolerance 0.5) is the claim itself, no margin chosen. PASS: the seed mean of d
# is significantly positive; FAIL: significantly negative.
NULL_BAND = 0.5
# P2's k* per optimiser (raw window).
K_STAR = dict(adamw=2, muon=1)

OBS = ("train_accuracy", "test_accuracy", "train_loss", "test_loss", "k_star", "gap_ratio",
       "centred_k_star", "centred_gap_ratio", "adiabatic", "adiabatic_rel", "adiabatic_rot",
       "update_norm")  # fmt: skip
WINDOWS = ("raw", "centred")
PHASES = ("plateau", "transition", "after")


@dataclasses.dataclass(frozen=True)
class Config:
    p: int = 31
    op: Literal["+", "-", "*"] = "+"
    model: Literal["mlp", "transformer"] = "mlp"
    """The network of models.modular."""
    train_fraction: float = 0.5
    width: int = 32
    hidden: int = 128
    window: int = 10
    """W, the updates in the Gram window."""
    lr: float = 3e-3
    weight_decay: float = 1.0
    """AdamW's decoupled weight decay of the runs with decay (the others have 0)."""
    steps: int = 10000
    every: int = 10
    """Record every `every` steps (the window itself moves every step)."""
    n_seeds: int = 24
    """Seeds with weight decay, and as many without."""
    muon_lr: float = 1e-2
    muon_weight_decay: float = 0.1
    muon_seeds: int = 12
    muon_steps: int = 3000
    """Muon runs; AdamW's k* is read from the decay runs over the same first muon_steps."""
    threshold: float = 0.95
    delay: int = 1000
    """A grokking event: test accuracy >= threshold at least `delay` steps after train did."""
    smooth: int = 5
    recent: int = 10
    baseline: int = 30
    z: float = 3.0
    horizon: int = 1000
    """The change-point rule (module docstring), in records (smooth, recent, baseline), baseline
    standard deviations (z) and steps (horizon)."""
    seed: int = 0
    quick: bool = False
    """CPU-minute scale (`make run`, tests): fields left at their defaults take QUICK values."""


# p = 23 with 70 % of the pairs groks at 1,800-3,900 steps (p = 31 with 50 %: 4,200-7,700).
QUICK = dict(p=23, train_fraction=0.7, steps=5000, n_seeds=12, muon_seeds=6, muon_steps=2000)


def check(cfg: Config) -> None:
    """Reject bad configs with the field name and valid range, before anything compiles."""
    modular.Params(p=cfg.p, op=cfg.op, model=cfg.model, width=cfg.width, hidden=cfg.hidden,
                   window=cfg.window, train_fraction=cfg.train_fraction, lr=cfg.lr,
                   weight_decay=cfg.weight_decay)  # fmt: skip
    modular.Params(lr=cfg.muon_lr, weight_decay=cfg.muon_weight_decay)
    if cfg.weight_decay <= 0:
        raise ValueError(f"weight_decay must be > 0 (the runs without decay are the other arm); "
                         f"got {cfg.weight_decay}")  # fmt: skip
    counts = dict(every=1, n_seeds=2, muon_seeds=2, smooth=1, recent=1, baseline=2, horizon=1)
    for name, low in counts.items():
        if getattr(cfg, name) < low:
            raise ValueError(f"{name} must be >= {low}; got {getattr(cfg, name)}")
    if not 0 < cfg.threshold <= 1:
        raise ValueError(f"threshold must lie in (0, 1]; got {cfg.threshold}")
    if cfg.delay < 0 or cfg.z <= 0:
        raise ValueError(f"delay must be >= 0 and z > 0; got {cfg.delay}, {cfg.z}")
    first = _first_defined(cfg) * cfg.every
    if cfg.steps < first + cfg.horizon + cfg.every or cfg.steps % cfg.every:
        raise ValueError(
            f"steps must be a multiple of every ({cfg.every}) and >= "
            f"{first + cfg.horizon + cfg.every} "
            f"(the rule's first defined step plus the horizon); got {cfg.steps}"
        )
    if cfg.muon_steps > cfg.steps or cfg.muon_steps < 2 * cfg.every:
        raise ValueError(
            f"muon_steps must lie in [{2 * cfg.every}, steps = {cfg.steps}]; got {cfg.muon_steps}"
        )


def _record_steps(cfg: Config, steps: int) -> np.ndarray:
    """every, 2 every, ... steps, from the first step whose window change is defined (the window
    full and one more update: A is NaN before, which the sweep would flag as divergence)."""
    first = -(-(cfg.window + 1) // cfg.every) * cfg.every
    return np.arange(first, steps + 1, cfg.every)


def _params(cfg: Config, **changes) -> modular.Params:
    base = dict(p=cfg.p, op=cfg.op, model=cfg.model, width=cfg.width, hidden=cfg.hidden,
                window=cfg.window, train_fraction=cfg.train_fraction, lr=cfg.lr)  # fmt: skip
    return modular.Params(**(base | changes))  # pyright: ignore[reportArgumentType]


def _simulate(steps: np.ndarray, names: tuple[str, ...]):
    """The sweep's simulate: the observables `names` at the record `steps` (the others are
    never computed: XLA drops what no output needs)."""

    def run(params, key):
        obs = simulate.trajectory(modular, params, key, steps=steps)[1]
        return {name: getattr(obs, name) for name in names}

    return run


def simulate_decay(cfg: Config, options: sweep.Options | None = None) -> xr.Dataset:
    """AdamW with and without weight decay: the recorded curves per (decay, seed, step)."""
    steps = _record_steps(cfg, cfg.steps)
    return (options or sweep.Options()).run(
        "decay", _simulate(steps, OBS),
        lambda weight_decay: _params(cfg, weight_decay=weight_decay),
        sweep.Grid(product=dict(weight_decay=[cfg.weight_decay, 0.0]), n_seeds=cfg.n_seeds),
        seed=cfg.seed, config=dataclasses.asdict(cfg), dims={name: ("step",) for name in OBS},
        coords=dict(step=steps.tolist()),
    )  # fmt: skip


def simulate_muon(cfg: Config, options: sweep.Options | None = None) -> xr.Dataset:
    """The same model under Muon: k* and R* per (seed, step)."""
    steps = _record_steps(cfg, cfg.muon_steps)
    keep = ("train_accuracy", "test_accuracy", "k_star", "centred_k_star", "gap_ratio")
    data = (options or sweep.Options()).run(
        "muon", _simulate(steps, keep),
        lambda lr: _params(cfg, optimizer="muon", lr=lr, weight_decay=cfg.muon_weight_decay),
        sweep.Grid(product=dict(lr=[cfg.muon_lr]), n_seeds=cfg.muon_seeds), seed=cfg.seed,
        config=dataclasses.asdict(cfg), dims={name: ("step",) for name in keep},
        coords=dict(step=steps.tolist()),
    ).squeeze("lr", drop=True)  # fmt: skip
    renamed = {name: f"muon_{name}" for name in keep} | dict(
        nonfinite="muon_nonfinite", seed="muon_seed", step="muon_step"
    )
    return data[[*keep, "nonfinite"]].rename(renamed)


# --- the change-point rule, events, leads and the null -----------------------------------------


def _first_defined(cfg: Config) -> int:
    """The first record index at which the rule is defined (the records before it fill the
    smoothing, baseline and recent windows)."""
    return cfg.smooth + cfg.baseline + cfg.recent - 2


def change_points(series: np.ndarray, cfg: Config) -> np.ndarray:
    """Rising edges of the rule (module docstring) along the last axis; False where undefined."""
    windows = np.lib.stride_tricks.sliding_window_view
    smoothed = np.median(windows(series, cfg.smooth, axis=-1), axis=-1)  # record i: smooth - 1 + i
    span = cfg.baseline + cfg.recent
    blocks = windows(smoothed, span, axis=-1)
    base, recent = blocks[..., : cfg.baseline], blocks[..., cfg.baseline :]
    spread = base.std(-1, ddof=1)
    shifted = np.abs(recent.mean(-1) - base.mean(-1)) > cfg.z * np.maximum(spread, 1e-12)
    fired = shifted & ~np.concatenate([np.zeros_like(shifted[..., :1]), shifted[..., :-1]], -1)
    pad = np.zeros((*series.shape[:-1], _first_defined(cfg)), bool)
    return np.concatenate([pad, fired], axis=-1)


def _preceded(fired: np.ndarray, steps: np.ndarray, at: np.ndarray, horizon: int) -> np.ndarray:
    """For change points `fired` (runs, records) and times `at` (runs, times): the earliest change
    point's lead in [t - horizon, t], NaN without one."""
    window = (steps[None, None, :] <= at[..., None]) & (steps[None, None, :] >= at[..., None]
                                                         - horizon)  # fmt: skip
    hits = window & fired[:, None, :]
    first = np.where(hits, steps[None, None, :], np.inf).min(-1)
    return np.where(np.isfinite(first), at - first, np.nan)


def analyse(data: xr.Dataset, cfg: Config) -> xr.Dataset:
    """Events, change points and leads per run; the random-time null per run; the per-run
    quantities of the claims (`_per_run`)."""
    steps = data.step.values
    found = grokking.event(data.train_accuracy.values, data.test_accuracy.values, steps,
                           threshold=cfg.threshold, delay=cfg.delay)  # fmt: skip
    grokked = np.asarray(found.grokked) & ~data.nonfinite.values
    event = np.asarray(found.step)
    first = steps[_first_defined(cfg)] + cfg.horizon  # earliest time the horizon is defined
    resolvable = grokked & (event >= first)
    out: dict[str, Any] = dict(grokked=(("weight_decay", "seed"), grokked),
               event_step=(("weight_decay", "seed"), np.where(grokked, event, -1)),
               fit_step=(("weight_decay", "seed"), np.asarray(found.fit_step)),
               resolvable=(("weight_decay", "seed"), resolvable))  # fmt: skip
    eligible = steps >= first
    for window, name in zip(WINDOWS, ("gap_ratio", "centred_gap_ratio"), strict=True):
        log_gap = np.log(data[name].values)
        fired = change_points(log_gap.reshape(-1, len(steps)), cfg)
        runs = fired.shape[0]
        lead = _preceded(fired, steps, event.reshape(runs, 1), cfg.horizon)[:, 0]
        null = _preceded(fired, steps, np.broadcast_to(steps[eligible], (runs, eligible.sum())),
                         cfg.horizon)  # fmt: skip
        shape = grokked.shape
        out[f"{window}_change"] = (("weight_decay", "seed", "step"), fired.reshape(log_gap.shape))
        out[f"{window}_lead"] = (("weight_decay", "seed"), np.where(resolvable, lead.reshape(shape),
                                                                    np.nan))  # fmt: skip
        out[f"{window}_null_rate"] = (("weight_decay", "seed"),
                                      np.isfinite(null).mean(-1).reshape(shape))  # fmt: skip
    return _per_run(data.assign(out), cfg)


def _phase_medians(data: xr.Dataset, cfg: Config, name: str) -> dict[str, np.ndarray]:
    """Per run (weight_decay, seed): the median of `name` on the plateau [fit, e - horizon), the
    transition [e - horizon, e] and after the event (e, end]; NaN for a run without a
    resolvable event or with an empty phase."""
    steps = data.step.values
    event = data.event_step.values[..., None]
    fit_step = data.fit_step.values[..., None]
    phases = dict(plateau=(steps >= fit_step) & (steps < event - cfg.horizon),
                  transition=(steps >= event - cfg.horizon) & (steps <= event),
                  after=steps > event)  # fmt: skip
    keep = data.resolvable.values
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an empty phase's median is NaN
        for phase, mask in phases.items():
            median = np.nanmedian(np.where(mask, data[name].values, np.nan), axis=-1)
            out[phase] = np.where(keep, median, np.nan)
    return out


def _modal_k(k_star: np.ndarray, fitted: np.ndarray) -> np.ndarray:
    """Each run's most frequent k* (runs on the leading axes, records last) over the records
    where it has fitted (NaN if never)."""
    flat, mask = k_star.reshape(-1, k_star.shape[-1]), fitted.reshape(-1, k_star.shape[-1])
    out = np.full(flat.shape[0], np.nan)
    for run in range(flat.shape[0]):
        values = flat[run][mask[run]]
        if values.size:
            out[run] = np.bincount(values.astype(int)).argmax()
    return out.reshape(k_star.shape[:-1])


def _per_run(data: xr.Dataset, cfg: Config) -> xr.Dataset:
    """The per-run quantities the claims read: each run's modal raw k* after it fits (AdamW over
    its first muon_steps, like Muon; NaN if it never fits or went non-finite) and the median A
    of each phase of its resolvable event (plateau, transition, after)."""
    fitted = data.train_accuracy.values >= cfg.threshold
    early = data.step.values <= cfg.muon_steps
    adamw = _modal_k(data.k_star.values[..., early], fitted[..., early])
    muon = _modal_k(data.muon_k_star.values, data.muon_train_accuracy.values >= cfg.threshold)
    phases = _phase_medians(data, cfg, "adiabatic")
    runs = ("weight_decay", "seed")
    out: dict[str, Any] = {f"{phase}_adiabatic": (runs, phases[phase]) for phase in phases}
    out["modal_k_star"] = (runs, np.where(data.nonfinite.values, np.nan, adamw))
    out["muon_modal_k_star"] = ("muon_seed", np.where(data.muon_nonfinite.values, np.nan, muon))
    return data.assign(out)


# --- claims --------------------------------------------------------------------------------------


def _decay_runs(d: xr.Dataset) -> xr.Dataset:
    """The AdamW runs with weight decay (check() makes it the arm with the larger decay)."""
    return d.sel(weight_decay=d.weight_decay.values.max())


def _with_outcome(values: xr.DataArray, what: str) -> xr.DataArray:
    """The runs (seeds) of `values` that have an outcome (not NaN: e.g. no resolvable event);
    NotMeasured with fewer than two, or when all are equal (no spread to give an SE)."""
    kept = values.isel(seed=np.flatnonzero(values.notnull().values))
    if kept.sizes["seed"] < 2:
        raise claims.NotMeasured(f"{kept.sizes['seed']} runs with {what}")
    if float(kept.max() - kept.min()) == 0:
        value = float(kept[0])
        raise claims.NotMeasured(f"all {kept.sizes['seed']} runs with {what} give {value:.3g}: "
                                 f"no spread for a standard error")  # fmt: skip
    return kept


def _grokking(d: xr.Dataset, *, decay: bool) -> dict:
    """Per run: grokked or not (no outcome if it went non-finite), at the arm with (or
    without) weight decay."""
    arm = d.weight_decay > 0 if decay else d.weight_decay == 0
    return dict(successes=d.grokked.where(~d.nonfinite), tolerance=COUNT_TOL,
                predicted=xr.full_like(d.weight_decay, float(decay)).where(arm))  # fmt: skip


def _precedes(d: xr.Dataset, *, window: str) -> dict:
    """Per run with weight decay and a resolvable event: a change point in the horizon before
    it or not (no outcome without a resolvable event)."""
    hit = d[f"{window}_lead"].notnull().where(d.resolvable)
    return dict(successes=hit, tolerance=COUNT_TOL,
                predicted=xr.ones_like(d.weight_decay).where(d.weight_decay > 0))  # fmt: skip


def _beyond_null(d: xr.Dataset, *, window: str) -> dict:
    """Per run with weight decay and a resolvable event: d = preceded (0/1) - its null rate."""
    runs = _decay_runs(d)
    hit = runs[f"{window}_lead"].notnull().astype(float)
    difference = (hit - runs[f"{window}_null_rate"]).where(runs.resolvable)
    return dict(samples=_with_outcome(difference, "a resolvable event"), predicted=NULL_BAND,
                tolerance=NULL_BAND)  # fmt: skip


def _k_star(d: xr.Dataset, *, optimiser: str) -> dict:
    """Per run: its modal k* equals P2's value or not (no outcome if it never fitted); AdamW
    at both weight-decay arms (two entries)."""
    modal, seed_dim = ((d.muon_modal_k_star, "muon_seed") if optimiser == "muon"
                       else (d.modal_k_star, "seed"))  # fmt: skip
    return dict(successes=(modal == K_STAR[optimiser]).where(modal.notnull()), seed_dim=seed_dim,
                predicted=1.0, tolerance=COUNT_TOL)  # fmt: skip


def _adiabatic(d: xr.Dataset, *, phase: str, predicted: float) -> dict:
    """Per run with weight decay and a resolvable event: log10 of its median A in `phase`."""
    log_a = xr.ufuncs.log10(_decay_runs(d)[f"{phase}_adiabatic"])
    return dict(samples=_with_outcome(log_a, f"a resolvable event and a {phase}"),
                predicted=predicted, tolerance=DECADE)  # fmt: skip


_EVENT = ("a grokking event (test accuracy >= `threshold` at least `delay` steps after train "
          "accuracy did, within `steps`)")  # fmt: skip
_RESOLVABLE = ("of the resolvable events (at least `horizon` steps after the change-point rule's "
               "first defined record) of the AdamW runs with weight decay")  # fmt: skip
_A = "A = ||dSigma||_F / (eta ||g||^2), AdamW at `lr`"

# The claims this experiment checks (`spectral-sim list` shows them; [Pn]: a paper's claim).
CLAIMS = claims.Table(
    claims.Spec(
        "spectral_edge.grokking_with_decay", "P2 (abstract)",
        f"[P2] 24/24 runs grok with weight decay: the share of AdamW runs with weight decay that "
        f"have {_EVENT} is 1 within {COUNT_TOL} (exact interval; a run that went non-finite has "
        f"no outcome)",
        claims.share, partial(_grokking, decay=True),
    ),
    claims.Spec(
        "spectral_edge.grokking_without_decay", "P2 (abstract)",
        f"[P2] 0/24 (revised 1/24) runs grok without weight decay: the share of AdamW runs "
        f"without weight decay that have {_EVENT} is 0 within {COUNT_TOL} (exact interval; a run "
        f"that went non-finite has no outcome)",
        claims.share, partial(_grokking, decay=False),
    ),
    *(claims.Spec(
        f"spectral_edge.precedes_{window}", "P2 (abstract); THEORY.md §5.1",
        f"[P2] gap dynamics precede every grokking event: {_RESOLVABLE}, the share with a "
        f"change point of log R* ({window} window) in the `horizon` steps before the event is 1 "
        f"within {COUNT_TOL} (exact interval; a run without a resolvable event has no outcome)",
        claims.share, partial(_precedes, window=window),
    ) for window in WINDOWS),
    *(claims.Spec(
        f"spectral_edge.beyond_null_{window}", "THEORY.md §5; this experiment",
        f"events are preceded more often than random times of the same runs ({window} window): "
        f"per run with a resolvable event (weight decay), d = (event preceded: 1 or 0) - (share "
        f"of its eligible record times t with a change point in [t - horizon, t]); the seed mean "
        f"of d lies in the band [0, 1] (predicted 0.5 ± 0.5), so PASS means significantly "
        f"positive and FAIL significantly negative",
        claims.seed_mean, partial(_beyond_null, window=window), tolerance_kind="derived",
    ) for window in WINDOWS),
    claims.Spec(
        "spectral_edge.k_star_adamw", "P2 (abstract)",
        f"[P2] k* = {K_STAR['adamw']} under AdamW: at each weight-decay arm, the share of AdamW "
        f"runs whose modal raw-window k* (W = `window`, over the records after train accuracy >= "
        f"`threshold`, first `muon_steps` steps) is {K_STAR['adamw']} is 1 within {COUNT_TOL} "
        f"(exact interval; a run that never fits has no outcome)",
        claims.share, partial(_k_star, optimiser="adamw"),
    ),
    claims.Spec(
        "spectral_edge.k_star_muon", "P2 (abstract)",
        f"[P2] k* = {K_STAR['muon']} under Muon: the share of Muon runs whose modal raw-window k* "
        f"(W = `window`, over the records after train accuracy >= `threshold`, `muon_steps` "
        f"steps) is {K_STAR['muon']} is 1 within {COUNT_TOL} (exact interval; a run that never "
        f"fits has no outcome)",
        claims.share, partial(_k_star, optimiser="muon"),
    ),
    claims.Spec(
        "spectral_edge.adiabatic_transition", "P2 (abstract); THEORY.md §5.4",
        f"[P2] A ~ 1 at a transition: per run with a resolvable event (weight decay), log10 of "
        f"its median A over the `horizon` steps before the event; the seed mean lies within "
        f"{DECADE:g} decade of 0 ({_A})",
        claims.seed_mean, partial(_adiabatic, phase="transition", predicted=0.0),
    ),
    claims.Spec(
        "spectral_edge.adiabatic_plateau", "P2 (abstract); THEORY.md §5.4",
        f"[P2] A << 1 on the plateau: per run with a resolvable event (weight decay), log10 of "
        f"its median A from the fit to `horizon` steps before the event; the seed mean lies in "
        f"[-3, -1] ({_A})",
        claims.seed_mean, partial(_adiabatic, phase="plateau", predicted=-2.0),
    ),
)  # fmt: skip


def notes(data: xr.Dataset, cfg: Config) -> list[str]:
    out = []
    for name in ("nonfinite", "muon_nonfinite"):
        if bool(data[name].any()):
            out.append(f"{name}: {int(data[name].sum())} runs went non-finite (excluded)")
    decay = data.sel(weight_decay=cfg.weight_decay)
    grokked = decay.grokked.values
    unresolved = int((grokked & ~decay.resolvable.values).sum())
    if unresolved:
        out.append(f"{unresolved} events came before the rule's first defined step + horizon "
                   f"(excluded from leads)")  # fmt: skip
    events = decay.event_step.values[grokked]
    if events.size:
        delays = events - decay.fit_step.values[grokked]
        out.append(f"events: {events.size}; event step median {np.median(events):.0f} "
                   f"(range {events.min()}-{events.max()}); delay after fit median "
                   f"{np.median(delays):.0f} steps")  # fmt: skip
    resolvable = decay.resolvable.values
    for window in WINDOWS:
        lead = decay[f"{window}_lead"].values[resolvable]
        lead = lead[np.isfinite(lead)]
        null = decay[f"{window}_null_rate"].values[resolvable]
        changes = decay[f"{window}_change"].values.sum(-1)
        if lead.size:
            mean, se = (
                lead.mean(),
                lead.std(ddof=1) / np.sqrt(lead.size) if lead.size > 1 else np.nan,
            )
            boot = np.random.default_rng(cfg.seed).choice(lead, (2000, lead.size))
            low, high = np.percentile(np.median(boot, -1), [2.5, 97.5])
            out.append(
                f"{window} window: lead time mean {mean:.0f} +- {se:.0f} steps, median "
                f"{np.median(lead):.0f} (bootstrap 95% {low:.0f}-{high:.0f}); null "
                f"rate {null.mean():.2f}; change points per run {changes.mean():.1f}"
            )
    for phase_name in ("adiabatic", "adiabatic_rel", "adiabatic_rot"):
        phases = _phase_medians(decay, cfg, phase_name)
        text = ", ".join(f"{k} {np.nanmedian(v):.3g}" for k, v in phases.items()
                         if np.isfinite(v).any())  # fmt: skip
        if text:
            out.append(f"{phase_name} (median over events of per-phase medians): {text}")
    fitted = decay.train_accuracy.values >= cfg.threshold
    muon_fitted = data.muon_train_accuracy.values >= cfg.threshold
    for label, k, mask in (("AdamW raw", decay.k_star, fitted),
                           ("AdamW centred", decay.centred_k_star, fitted),
                           ("Muon raw", data.muon_k_star, muon_fitted),
                           ("Muon centred", data.muon_centred_k_star, muon_fitted)):  # fmt: skip
        values = k.values[mask].astype(int)
        counts = np.bincount(values, minlength=cfg.window)[1:]
        share = ", ".join(f"{j + 1}: {c / max(values.size, 1):.0%}" for j, c in
                          enumerate(counts) if c)  # fmt: skip
        out.append(f"k* after fit, {label}: {share}")
    muon_fit = float((data.muon_train_accuracy.isel(muon_step=-1) >= cfg.threshold).mean())
    out.append(f"Muon runs fitting their training pairs by step {cfg.muon_steps}: {muon_fit:.0%}")
    return out


def figures(data: xr.Dataset, cfg: Config) -> dict:
    import matplotlib.figure

    decay = data.sel(weight_decay=cfg.weight_decay)
    grokked = np.flatnonzero(decay.resolvable.values)[:3]
    examples = [(cfg.weight_decay, int(s)) for s in grokked] + [(0.0, 0)]
    figure = matplotlib.figure.Figure(figsize=(4.2 * len(examples), 10),
                                                layout="constrained")  # fmt: skip
    axes = figure.subplots(4, len(examples), sharex=True, squeeze=False)
    steps = data.step.values
    for col, (wd, seed) in enumerate(examples):
        run = data.sel(weight_decay=wd).isel(seed=seed)
        ax = axes[0, col]
        ax.plot(steps, run.train_accuracy, label="train")
        ax.plot(steps, run.test_accuracy, label="test")
        ax.set(title=f"weight decay {wd:g}, seed {seed}", ylabel="accuracy")
        ax.legend(fontsize=7)
        ax = axes[1, col]
        for j, window in enumerate(WINDOWS):
            name = "gap_ratio" if window == "raw" else "centred_gap_ratio"
            ax.plot(steps, run[name], color=f"C{j}", lw=0.7, label=f"R* {window}")
            changes = steps[run[f"{window}_change"].values]
            ax.plot(changes, np.exp(np.log(run[name].values)[run[f"{window}_change"].values]),
                    "v", color=f"C{j}", ms=5)  # fmt: skip
        ax.set(yscale="log", ylabel="gap ratio R* (v: change points)")
        ax.legend(fontsize=7)
        ax = axes[2, col]
        ax.plot(steps, run.k_star, lw=0.7, label="raw")
        ax.plot(steps, run.centred_k_star, lw=0.7, label="centred")
        ax.set(ylabel="k*")
        ax.legend(fontsize=7)
        ax = axes[3, col]
        for name in ("adiabatic", "adiabatic_rel", "adiabatic_rot"):
            ax.plot(steps, run[name], lw=0.7, label=name)
        ax.set(yscale="log", xlabel="step", ylabel="A variants")
        ax.legend(fontsize=7)
        if bool(run.grokked):
            for ax in axes[:, col]:
                event = int(run.event_step)
                ax.axvline(event, color="k", ls="--", lw=0.8)
                ax.axvspan(event - cfg.horizon, event, color="0.85", zorder=0)
    summary = matplotlib.figure.Figure(figsize=(12, 3.8), layout="constrained")
    axes = summary.subplots(1, 3)
    resolvable = decay.resolvable.values
    for j, window in enumerate(WINDOWS):
        lead = decay[f"{window}_lead"].values[resolvable]
        axes[0].hist(lead[np.isfinite(lead)], bins=20, range=(0, cfg.horizon), alpha=0.6,
                     label=window, color=f"C{j}")  # fmt: skip
        hit = np.isfinite(lead).mean() if lead.size else np.nan
        null = decay[f"{window}_null_rate"].values[resolvable].mean() if lead.size else np.nan
        axes[1].bar([2 * j, 2 * j + 1], [hit, null], color=[f"C{j}", "0.6"])
    axes[0].set(xlabel="lead time (steps)", ylabel="events", title="earliest change point")
    axes[0].legend(fontsize=7)
    axes[1].set(xticks=[0, 1, 2, 3], xticklabels=["raw\nevents", "raw\nnull", "centred\nevents",
                                                   "centred\nnull"], ylabel="share preceded",
                title=f"change point within {cfg.horizon} steps")  # fmt: skip
    fitted = decay.train_accuracy.values >= cfg.threshold
    bins = np.arange(0.5, cfg.window + 0.5)
    axes[2].hist([decay.k_star.values[fitted], data.muon_k_star.values[
        data.muon_train_accuracy.values >= cfg.threshold]], bins=bins, density=True,
        label=["AdamW", "Muon"])  # fmt: skip
    axes[2].set(xlabel="k* (raw window)", ylabel="share of records after fit",
                title="k* by optimiser")  # fmt: skip
    axes[2].legend(fontsize=7)
    return dict(tracks=figure, summary=summary)


def run(cfg: Config, options: sweep.Options | None = None) -> Report:
    cfg = experiments.quick(cfg, QUICK)
    check(cfg)
    with jax.enable_x64(False):  # float32 training whatever the caller's setting (optax's
        # internals would otherwise round differently under x64, and the runs would differ)
        data = xr.merge([simulate_decay(cfg, options), simulate_muon(cfg, options)],
                        combine_attrs="drop_conflicts")  # fmt: skip
    data = analyse(data, cfg)
    return Report(
        experiment="spectral_edge",
        claims=CLAIMS.evaluate(data),
        data=data,
        figures=figures(data, cfg),
        config=dataclasses.asdict(cfg),
        seed=cfg.seed,
        notes=notes(data, cfg),
    )


if __name__ == "__main__":  # the same as `spectral-sim run spectral_edge [flags]`
    from spectral_sim import cli

    sys.exit(cli.main(["run", "spectral_edge", *sys.argv[1:]]))
