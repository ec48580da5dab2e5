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
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

import experiments
from spectral_sim import fit, simulate, sweep
from spectral_sim.diagnostics import grokking
from spectral_sim.models import modular
from spectral_sim.report import Claim, Report

# "Every event" / "no event": a share of 1 (or 0) within COUNT_TOL; 0.05 also holds P2's
# revised 1/24 = 0.042 without weight decay.
COUNT_TOL = 0.05
# "A ~ 1" at a transition: log10 A within a decade of 0; "A << 1" on a plateau: log10 A in
# [-3, -1] (at least a decade below 1).
DECADE = 1.0
# k* "= 1" or "= 2": the seed mean of each run's modal k* within half a step.
K_TOL = 0.5

OBS = ("train_accuracy", "test_accuracy", "train_loss", "test_loss", "k_star", "gap_ratio",
       "centred_k_star", "centred_gap_ratio", "adiabatic", "adiabatic_rel", "adiabatic_rot",
       "update_norm")  # fmt: skip
WINDOWS = ("raw", "centred")


# The claims this experiment checks, for `spectral-sim list`: id pattern (fnmatch) -> what
# is tested ([Pn]: a paper's claim). The tests check that every claim a run makes is here.
CLAIMS = {
    "spectral_edge.grokking_*_decay": "[P2] runs grok with weight decay and not without",
    "spectral_edge.precedes_*": "[P2] gap dynamics of the update Gram precede every grokking event",
    "spectral_edge.beyond_null_*": "events are preceded more often than random times of the run",
    "spectral_edge.k_star_*": "[P2] the gap position k* is 2 under AdamW, 1 under Muon",
    "spectral_edge.adiabatic_*": "[P2] the adiabatic ratio A ~ 1 at a transition, << 1 on plateaus",
}


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
    """Events, change points and leads per run; the random-time null per run."""
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
    return data.assign(out)


def _phase_medians(data: xr.Dataset, cfg: Config, name: str) -> dict[str, np.ndarray]:
    """Per resolvable event: the median of `name` on the plateau [fit, e - horizon), the
    transition [e - horizon, e] and after the event (e, end]."""
    steps = data.step.values[None, :]
    values = data[name].values.reshape(-1, steps.shape[1])
    event = data.event_step.values.reshape(-1, 1)
    fit = data.fit_step.values.reshape(-1, 1)
    keep = data.resolvable.values.ravel()
    phases = dict(plateau=(steps >= fit) & (steps < event - cfg.horizon),
                  transition=(steps >= event - cfg.horizon) & (steps <= event),
                  after=steps > event)  # fmt: skip
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an empty phase's median is NaN
        for phase, mask in phases.items():
            out[phase] = np.nanmedian(np.where(mask, values, np.nan), axis=-1)[keep]
    return out


def _modal_k(k_star: np.ndarray, fitted: np.ndarray) -> np.ndarray:
    """Each run's most frequent k* over the records where it has fitted (NaN if never)."""
    out = np.full(k_star.shape[0], np.nan)
    for run in range(k_star.shape[0]):
        values = k_star[run][fitted[run]]
        if values.size:
            out[run] = np.bincount(values.astype(int)).argmax()
    return out


def _share(hits: np.ndarray) -> tuple[float, float]:
    """A share and its binomial standard error (0 at 0 or 1: then the count is exact)."""
    n = max(hits.size, 1)
    p = float(hits.mean()) if hits.size else np.nan
    return p, float(np.sqrt(p * (1 - p) / n))


def _mean(values: np.ndarray) -> tuple[float, float]:
    """The mean of the finite values and its SEM (NaN with fewer than two)."""
    values = values[np.isfinite(values)]
    if values.size < 2:
        return (float(values.mean()) if values.size else np.nan), np.nan
    return float(values.mean()), float(fit.sem(jnp.asarray(values)))


def claims(data: xr.Dataset, cfg: Config) -> list[Claim]:
    decay = data.sel(weight_decay=cfg.weight_decay)
    plain = data.sel(weight_decay=0.0)
    out = []
    for label, runs, predicted, revision in (
        ("with", decay, 1.0, "24/24"),
        ("without", plain, 0.0, "0/24, revised 1/24"),
    ):
        share, se = _share(runs.grokked.values[~runs.nonfinite.values])
        out.append(Claim(
            id=f"spectral_edge.grokking_{label}_decay", source="P2 (abstract)",
            statement=f"[P2] {revision} runs grok {label} weight decay: the share of "
            f"{runs.sizes['seed']} runs with an event (test >= {cfg.threshold:g} at least "
            f"{cfg.delay} steps after train) within {cfg.steps} steps is {predicted:g}",
            predicted=predicted, measured=share, stderr=se, tolerance=COUNT_TOL,
        ))  # fmt: skip
    resolvable = decay.resolvable.values
    for window in WINDOWS:
        lead = decay[f"{window}_lead"].values[resolvable]
        hit, hit_se = _share(np.isfinite(lead))
        out.append(Claim(
            id=f"spectral_edge.precedes_{window}", source="P2 (abstract); THEORY.md §5.1",
            statement=f"[P2] gap dynamics precede every grokking event: share of the "
            f"{resolvable.sum()} events with a change point of log R* ({window} window) in the "
            f"{cfg.horizon} steps before it",
            predicted=1.0, measured=hit, stderr=hit_se, tolerance=COUNT_TOL,
        ))  # fmt: skip
        null, null_se = _mean(decay[f"{window}_null_rate"].values[resolvable])
        out.append(Claim(
            id=f"spectral_edge.beyond_null_{window}", source="THEORY.md §5; this experiment",
            statement=f"events are preceded more often than random times of the same runs "
            f"({window} window): hit share - null share lies in (0, 1] (PASS: significantly "
            f"positive)",
            predicted=0.5, measured=hit - null, stderr=float(np.hypot(hit_se, null_se)),
            tolerance=0.5,
        ))  # fmt: skip
    fitted = decay.train_accuracy.values >= cfg.threshold
    early = decay.step.values <= cfg.muon_steps
    adamw_k = _modal_k(decay.k_star.values[:, early], fitted[:, early])
    muon_fitted = data.muon_train_accuracy.values >= cfg.threshold
    muon_k = _modal_k(data.muon_k_star.values, muon_fitted)
    for name, k, predicted in (("adamw", adamw_k, 2.0), ("muon", muon_k, 1.0)):
        mean, se = _mean(k)
        out.append(Claim(
            id=f"spectral_edge.k_star_{name}", source="P2 (abstract)",
            statement=f"[P2] k* = {predicted:g} under {name} (raw window, W = {cfg.window}): "
            f"seed mean of each run's modal k* after it fits, first {cfg.muon_steps} steps",
            predicted=predicted, measured=mean, stderr=se, tolerance=K_TOL,
        ))  # fmt: skip
    phases = _phase_medians(data.sel(weight_decay=cfg.weight_decay), cfg, "adiabatic")
    for phase, predicted, statement in (
        ("transition", 0.0, "A ~ 1 at a transition: log10 of the median A over the horizon "
         "before each event within a decade of 0"),
        ("plateau", -2.0, "A << 1 on the plateau (fit to event - horizon): log10 of the median "
         "A in [-3, -1]"),
    ):  # fmt: skip
        mean, se = _mean(np.log10(phases[phase]))
        out.append(Claim(
            id=f"spectral_edge.adiabatic_{phase}", source="P2 (abstract); THEORY.md §5.4",
            statement=f"[P2] {statement} (A = ||dSigma||_F / (eta ||g||^2), AdamW lr {cfg.lr:g})",
            predicted=predicted, measured=mean, stderr=se, tolerance=DECADE,
        ))  # fmt: skip
    return out


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
            mean, se = _mean(lead)
            boot = np.random.default_rng(cfg.seed).choice(lead, (2000, lead.size))
            low, high = np.percentile(np.median(boot, -1), [2.5, 97.5])
            out.append(
                f"{window} window: lead time mean {mean:.0f} +- {se:.0f} steps, median "
                f"{np.median(lead):.0f} (bootstrap 95% {low:.0f}-{high:.0f}); null "
                f"rate {null.mean():.2f}; change points per run {changes.mean():.1f}"
            )
    for phase_name in ("adiabatic", "adiabatic_rel", "adiabatic_rot"):
        phases = _phase_medians(decay, cfg, phase_name)
        text = ", ".join(f"{k} {np.nanmedian(v):.3g}" for k, v in phases.items() if v.size)
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
        claims=claims(data, cfg),
        data=data,
        figures=figures(data, cfg),
        config=dataclasses.asdict(cfg),
        seed=cfg.seed,
        notes=notes(data, cfg),
    )


if __name__ == "__main__":  # the same as `spectral-sim run spectral_edge [flags]`
    from spectral_sim import cli

    sys.exit(cli.main(["run", "spectral_edge", *sys.argv[1:]]))
