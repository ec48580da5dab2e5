"""Self-consuming regression loops against their closed forms and P0's convergence claims.

Generations of OLS on isotropic Gaussian data, generation 1 on real labels and every later one on
labels from its predecessor (THEORY.md §4): the replace, accumulate and mix (fresh real rows each
generation) loops at fixed compute per generation; replace with growing sample sizes T_n
(growing compute); accumulate with a verifier that knows w*. Every error sequence is compared
with its exact closed form (`theory.collapse_error`) at every grid point and generation, and
P0's two claims are stated as propositions about the simulated sequences:
- "converges at fixed compute": the late slope of E_n vanishes (relative to E_1);
- "keeps improving with growing compute, no ceiling": the ratio of seed means E_G / E_1 at the
  last generation lies in [0, 1 - margin] (a seed bootstrap of the ratio).
The same propositions are measured on finite-compute one-pass SGD generations on power-law data
(a fresh model per generation, `sgd_samples` steps, or n x sgd_samples with growing compute),
whose generation 1 is checked against the exact one-pass SGD recursion.
"""

import dataclasses
import functools
import sys

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from spectral_sim import PowerLaw, claims, fit, simulate, sweep, theory
from spectral_sim.models import self_improve
from spectral_sim.registry import scaled
from spectral_sim.report import Report

# Margins are judgement (none derived or from a paper). Closed-form claims: the seed-mean E_n
# agrees with its exact closed form [E] within 5 % (relative); float32 rounding is far below it.
CLOSED_FORM_MARGIN = 0.05
# "Converges": over the last half of the generations the least-squares slope of E_n is 0 within
# CONVERGED x E_1 per generation. A linear sequence (replace) keeps increments of E_1; the
# accumulate loop's are sigma^2 d / (n (n T - d - 1)) <= E_1 / n^2, below 0.04 E_1 past n = 5;
# the mix loop's, c^(n-1) E_1, below 0.01 E_1 past n = 4 at c <= 0.3.
CONVERGED = 0.05
# "Improves on generation 1": E_G / E_1 <= 1 - IMPROVED, at least 5 % below generation 1.
IMPROVED = 0.05


@dataclasses.dataclass(frozen=True)
class Config:
    dim: int = 10
    samples: tuple[int, ...] = (30, 60, 120)
    """T, the samples per generation (T > dim + 3 keeps the OLS error's variance finite)."""
    noise: float = 1.0
    generations: int = 10
    mix_real: float = 0.5
    """The share of each mix generation's rows that are fresh real data."""
    growth: tuple[str, ...] = ("linear", "geometric")
    """Growing-compute schedules: T_n = n T ("linear", sum 1/T_n diverges) or T 2^(n-1)."""
    growth_samples: int = 30
    growth_generations: int = 6
    growth_seeds: int = 4000
    """Seeds of the growing runs (up to T 2^(G-1) rows per generation: memory, not time, binds)."""
    verifier: tuple[float, ...] = (0.0, 0.5, 0.9, 1.0)
    """Verifier accuracies of the verified accumulate loop."""
    verifier_samples: int = 50
    threshold: float = 1.0
    """The verifier keeps a synthetic sample iff |y - x.w*| <= threshold sigma."""
    sgd_s: float = 1.5
    """The SGD loops run on power-law data, lambda_k = k^-s, lambda_k w*_k^2 = k^-a."""
    sgd_a: float = 2.0
    sgd_lr: float = 0.3
    sgd_samples: int = 30
    """SGD steps (one pass, batch 1) per generation at fixed compute: compute = steps x dim."""
    n_seeds: int = 16000
    seed: int = 0
    quick: bool = False
    """CPU-minute scale (`make run`, tests): fields left at their defaults take QUICK values."""
    paper: bool = False
    """The papers' scale (`--scale paper`, meant for a GPU): fields left at their defaults take
    PAPER values. The defaults are the full scale: at most 30 minutes on 2 CPU cores."""


QUICK = dict(
    samples=(30, 120), generations=8, growth_generations=5, verifier=(0.0, 1.0), n_seeds=4000
)
# The paper scale: the published model-collapse protocol's 100 generations.
PAPER = dict(generations=100)


def check(cfg: Config) -> None:
    """Reject bad configs with the field name and valid range, before anything compiles."""
    if cfg.dim < 1:
        raise ValueError(f"dim must be >= 1; got {cfg.dim}")
    if not cfg.samples or min(cfg.samples) <= cfg.dim + 3:
        raise ValueError(f"samples must list sizes > dim + 3 = {cfg.dim + 3} (finite OLS error "
                         f"variance); got {cfg.samples}")  # fmt: skip
    for name in ("growth_samples", "verifier_samples"):
        if getattr(cfg, name) <= cfg.dim + 3:
            raise ValueError(f"{name} must be > dim + 3 = {cfg.dim + 3}; got {getattr(cfg, name)}")
    if not cfg.noise > 0:
        raise ValueError(f"noise must be > 0; got {cfg.noise}")
    if not 0 <= cfg.mix_real <= 1:
        raise ValueError(f"mix_real must lie in [0, 1]; got {cfg.mix_real}")
    if any(g not in ("linear", "geometric") for g in cfg.growth):
        raise ValueError(f"growth must list 'linear' or 'geometric'; got {cfg.growth}")
    if any(not 0 <= p <= 1 for p in cfg.verifier):
        raise ValueError(f"verifier accuracies must lie in [0, 1]; got {cfg.verifier}")
    for name, low in dict(generations=4, growth_generations=2, n_seeds=2, growth_seeds=2).items():
        if getattr(cfg, name) < low:
            raise ValueError(f"{name} must be >= {low}; got {getattr(cfg, name)}")
    if not cfg.threshold > 0:
        raise ValueError(f"threshold must be > 0; got {cfg.threshold}")


def schedule(kind: str, samples: int, generations: int) -> np.ndarray:
    """T_n for n = 1..generations: n T ("linear") or T 2^(n - 1) ("geometric")."""
    n = np.arange(1, generations + 1)
    return (n * samples if kind == "linear" else samples * 2.0 ** (n - 1)).astype(float)


# The closed forms and figure bands, compiled once per regime or shape rather than once per
# jnp operation (eagerly, each operation is a program of its own: 54 of the 79 programs of a
# --quick run).
_collapse_error = jax.jit(theory.collapse_error, static_argnames=("regime", "d", "generations"))
_accumulate_bound = jax.jit(theory.self_improve.accumulate_bound, static_argnames=("d",))
_sgd_loss = jax.jit(theory.sgd_loss, static_argnames=("batch", "steps"))  # steps: a tuple
_sem = jax.jit(fit.sem, static_argnames=("axis",))


def _trajectory(params, key):
    """The per-generation records; sweeps simulate in float32 (docs/guide/numerics.md), the
    closed forms are float64."""
    return simulate.trajectory(
        self_improve, simulate.float32(params), key, n_records=params.generations
    )[1]


def _errors(params, key):
    obs = _trajectory(params, key)
    return dict(error=obs.error, accepted=obs.accepted)


def _sweep(cfg: Config, options: sweep.Options | None, name: str, simulate_fn, make,
           n_seeds: int, dim="generation", generations=None, outputs=("error", "accepted"),
           **product) -> xr.Dataset:  # fmt: skip
    """`simulate_fn(make(**point), key)` over the grid `product`, records along `dim`."""
    generations = generations or cfg.generations
    return (options or sweep.Options()).run(
        name, simulate_fn, make, sweep.Grid(product=product, n_seeds=n_seeds), seed=cfg.seed,
        config=dataclasses.asdict(cfg), dims={k: (dim,) for k in outputs},
        coords={dim: list(range(1, generations + 1))},
    )  # fmt: skip


def simulate_loops(cfg: Config, options: sweep.Options | None = None) -> xr.Dataset:
    """Replace, accumulate and mix at fixed T per generation: errors per (regime, T, seed,
    generation) beside the closed form."""
    regimes = ["replace", "accumulate", "mix"]

    def make(regime, samples):
        """One program per regime: every run has max(T) rows, the first `samples` drawn (T
        static gave one per (regime, T): 9 at full scale). n_samples is a float field."""
        n_real = cfg.mix_real * samples if regime == "mix" else 0.0
        return self_improve.Params(dim=cfg.dim, samples=max(cfg.samples), n_samples=1.0 * samples,
                                   generations=cfg.generations, noise=cfg.noise, regime=regime,
                                   n_real=n_real)  # fmt: skip

    def closed_form(regime, T):
        sizes = dict(T_real=cfg.mix_real * T, T_synth=(1 - cfg.mix_real) * T)
        return _collapse_error(regime=regime, d=cfg.dim, noise=cfg.noise,
                               generations=cfg.generations,
                               **(sizes if regime == "mix" else dict(T=T)))  # fmt: skip

    data = _sweep(cfg, options, "loops", _errors, make, cfg.n_seeds, regime=regimes,
                  samples=cfg.samples).drop_vars("accepted")  # fmt: skip
    predicted = np.stack([np.stack([closed_form(r, T) for T in cfg.samples]) for r in regimes])
    return data.assign(theory=(("regime", "samples", "generation"), predicted))


def simulate_growing(cfg: Config, options: sweep.Options | None = None) -> xr.Dataset:
    """Replace with growing T_n (growing compute per generation) beside the closed form."""
    generations = cfg.growth_generations
    table = np.stack([schedule(g, cfg.growth_samples, generations) for g in cfg.growth])

    def make(schedule_index):  # traced: sweep axes are numbers; the names come back below
        return self_improve.Params(
            dim=cfg.dim, samples=int(table.max()), generations=generations, noise=cfg.noise,
            sizes=jnp.asarray(table)[schedule_index],
        )  # fmt: skip

    data = _sweep(cfg, options, "growing", _errors, make, cfg.growth_seeds, "growth_generation",
                  generations, schedule_index=list(range(len(cfg.growth))))  # fmt: skip
    data = data.drop_vars("accepted").rename(schedule_index="growth")
    data = data.assign_coords(growth=list(cfg.growth))
    predicted = [np.asarray(_collapse_error(regime="growing", d=cfg.dim, noise=cfg.noise,
                                            generations=generations, T_seq=sizes))
                 for sizes in table]  # fmt: skip
    data = data.rename(error="growth_error", nonfinite="growth_nonfinite", seed="growth_seed")
    return data.assign(growth_theory=(("growth", "growth_generation"), np.stack(predicted)),
                       growth_sizes=(("growth", "growth_generation"), table))  # fmt: skip


SGD_LOOPS = ("replace", "subsample", "growing")


def simulate_sgd(cfg: Config, options: sweep.Options | None = None) -> xr.Dataset:
    """One-pass SGD generations on power-law data: replace and subsample (accumulate, then T rows
    without replacement) at T steps per generation, and replace with T_n = n T steps."""
    spectrum = PowerLaw(s=cfg.sgd_s, a=cfg.sgd_a, n_modes=cfg.dim)
    n = np.arange(1, cfg.generations + 1)
    fixed = np.full(cfg.generations, cfg.sgd_samples, float)
    table = np.stack([fixed, fixed, (n * cfg.sgd_samples).astype(float)])  # SGD_LOOPS' order

    def make(loop):
        regime = "subsample" if loop == "subsample" else "replace"
        samples = cfg.sgd_samples * (cfg.generations if loop == "growing" else 1)
        return self_improve.Params(
            dim=cfg.dim, samples=samples, generations=cfg.generations, noise=cfg.noise,
            regime=regime, learner="sgd", lr=cfg.sgd_lr, spectrum=spectrum,
            sizes=jnp.asarray(table[SGD_LOOPS.index(loop)]),
        )  # fmt: skip

    def run(params, key):
        return dict(sgd_risk=_trajectory(params, key).risk)

    data = _sweep(cfg, options, "sgd", run, make, cfg.n_seeds, outputs=("sgd_risk",),
                  loop=list(SGD_LOOPS))  # fmt: skip
    exact = 2 * float(_sgd_loss(spectrum, lr=cfg.sgd_lr, batch=1, noise=cfg.noise,
                                steps=(cfg.sgd_samples,))[0])  # fmt: skip
    return data.rename(nonfinite="sgd_nonfinite").assign(sgd_first_theory=exact)


def simulate_verifier(cfg: Config, options: sweep.Options | None = None) -> xr.Dataset:
    """Accumulate with a verifier of accuracy p: errors and the share of rows it keeps."""

    def make(verifier):
        return self_improve.Params(dim=cfg.dim, samples=cfg.verifier_samples,
                                   generations=cfg.generations, noise=cfg.noise,
                                   regime="accumulate", verify=True, verifier=verifier,
                                   threshold=cfg.threshold)  # fmt: skip

    data = _sweep(cfg, options, "verifier", _errors, make, cfg.n_seeds,
                  verifier=list(cfg.verifier))  # fmt: skip
    return data.rename(error="verified_error", accepted="verified_accepted",
                       nonfinite="verifier_nonfinite")  # fmt: skip


# --- claims ------------------------------------------------------------------------------------
# seed_statistic claims see a run the sweep flagged non-finite as NaN (`.where(~nonfinite)`): it
# then drops that seed from the bootstrap and the claim cannot PASS.


def _slope_weights(n_generations: int) -> np.ndarray:
    """w with sum_n w_n E_n = the least-squares slope of E_n over generations G/2..G (w = 0
    before). A linear combination propagates a NaN point, where xarray's polyfit would skip it
    and fit a diverged run's finite part."""
    n = np.arange(1.0, n_generations + 1)
    late = n >= n_generations // 2
    x = np.where(late, n - n[late].mean(), 0.0)
    return x / (x**2).sum()


def _over_first(weights: np.ndarray, dim: str = "generation"):
    """The statistic sum_n w_n E_n / E_1 of a seed-mean curve along `dim`, in NumPy (the seed
    bootstrap calls it a thousand times per claim)."""

    def statistic(mean: xr.DataArray) -> xr.DataArray:
        mean = mean.transpose(..., dim)
        return mean[..., 0].copy(data=mean.values @ weights / mean.values[..., 0])

    return statistic


def _gain(n_generations: int, dim: str = "generation"):
    """E_G / E_1 of a seed-mean curve."""
    return _over_first(np.eye(n_generations)[-1], dim)


def _relative(samples, predicted, diverged, **kwargs) -> dict:
    """Every entry's seed mean / closed form against 1, within CLOSED_FORM_MARGIN."""
    return dict(samples=samples, predicted=predicted, tolerance=CLOSED_FORM_MARGIN, relative=True,
                diverged=diverged, **kwargs)  # fmt: skip


def _closed_form(d: xr.Dataset, regime: str) -> dict:
    d = d.sel(regime=regime)
    return _relative(d.error, d.theory, d.nonfinite)


def _converges(d: xr.Dataset) -> dict:
    """Per seed, the late slope of E_n / E_1 (E_1 the exact closed form, a constant, so the seed
    mean of the per-seed slopes is the slope of the seed-mean curve), at every T."""
    weights = xr.DataArray(_slope_weights(d.sizes["generation"]), dims="generation")
    slope = d.error.dot(weights) / d.theory.isel(generation=0, drop=True)
    return dict(samples=slope, predicted=0.0, tolerance=CONVERGED, diverged=d.nonfinite,
                must_converge=True)  # fmt: skip


def _converges_sgd(d: xr.Dataset) -> dict:
    """Both the late slope and E_1 are noisy here: a ratio of seed means, bootstrapped jointly."""
    risk = d.sgd_risk.where(~d.sgd_nonfinite).sel(loop=["subsample"])
    return dict(samples=risk, statistic=_over_first(_slope_weights(d.sizes["generation"])),
                predicted=0.0, tolerance=CONVERGED, must_converge=True)  # fmt: skip


# One-sided: E_G / E_1 at least IMPROVED below 1 (the half / twice verdicts scale IMPROVED).
_IMPROVES = dict(predicted=1.0, tolerance=IMPROVED, side="below")


def _improves(d: xr.Dataset) -> dict:
    error = d.growth_error.where(~d.growth_nonfinite)
    statistic = _gain(d.sizes["growth_generation"], "growth_generation")
    return dict(samples=error, seed_dim="growth_seed", statistic=statistic, **_IMPROVES)


def _improves_sgd(d: xr.Dataset) -> dict:
    risk = d.sgd_risk.where(~d.sgd_nonfinite).sel(loop=["growing"])
    return dict(samples=risk, statistic=_gain(d.sizes["generation"]), **_IMPROVES)


def _verifier(d: xr.Dataset) -> dict:
    """At the most accurate verifier of the run."""
    best = float(d.verifier.max())
    if best == 0:
        raise claims.NotMeasured("no verifier accuracy > 0 (accuracy 0 keeps rows on a coin)")
    error = d.verified_error.where(~d.verifier_nonfinite).sel(verifier=[best])
    return dict(samples=error, statistic=_gain(d.sizes["generation"]), **_IMPROVES)


_SOURCE = "THEORY.md §4.2 [E]"
_WITHIN = f"within {CLOSED_FORM_MARGIN:.0%} (relative)"
_EVERY = (f"at every (T, generation) (d = {{cfg.dim}}, T in {{cfg.samples}}, generations "
          f"1..{{cfg.generations}}), {_WITHIN}")  # fmt: skip
_P0_FIXED = "P0 (fixed compute); THEORY.md §4.3"
_P0_GROWING = "P0 (growing compute); THEORY.md §4.3"
_BAND = (f"at most {1 - IMPROVED:g} (one-sided: PASS means significantly at least {IMPROVED:.0%} "
         f"below generation 1)")  # fmt: skip
# The claims this experiment checks (`spectral-sim list` shows them; [Pn]: a paper's claim).
CLAIMS = claims.Table(
    claims.Spec("self_improvement.replace", f"{_SOURCE}; Dohmatob, Feng, Kempe 2024",
        f"replace loop: the seed-mean E_n equals n sigma^2 d / (T - d - 1) {_EVERY}",
        claims.seed_mean, functools.partial(_closed_form, regime="replace")),
    claims.Spec("self_improvement.accumulate", f"{_SOURCE}; Gerstgrasser et al. 2024",
        f"accumulate loop: the seed-mean E_n equals sigma^2 d sum_(i <= n) 1/(i (i T - d - 1)) "
        f"{_EVERY}",
        claims.seed_mean, functools.partial(_closed_form, regime="accumulate")),
    claims.Spec("self_improvement.mix", f"{_SOURCE} (exact finite-T c)",
        f"mix loop (a share {{cfg.mix_real}} of each generation's rows real): the seed-mean E_n "
        f"equals c E_(n-1) + sigma^2 d / (T - d - 1), c exact at finite T, {_EVERY}",
        claims.seed_mean, functools.partial(_closed_form, regime="mix")),
    claims.Spec("self_improvement.growing", _SOURCE,
        f"replace loop with growing T_n (n T, T 2^(n-1), T = {{cfg.growth_samples}}; d = "
        f"{{cfg.dim}}): the seed-mean E_n equals sigma^2 d sum_(i <= n) 1/(T_i - d - 1) at every "
        f"(schedule, generation), {_WITHIN}",
        claims.seed_mean, lambda d: _relative(d.growth_error, d.growth_theory,
                                              d.growth_nonfinite, seed_dim="growth_seed")),
    claims.Spec("self_improvement.p0_converges_{regime}", _P0_FIXED,
        f"[P0] at fixed compute per generation the {{regime}} loop converges: the seed-mean "
        f"least-squares slope of E_n / E_1 (E_1 exact) over generations G/2..G (G = "
        f"{{cfg.generations}}) is 0 within {CONVERGED} per generation at every T (a diverged run "
        f"fails it)",
        claims.seed_mean, _converges, over=("regime",)),
    claims.Spec("self_improvement.p0_improves_with_compute", _P0_GROWING,
        f"[P0] with growing compute per generation (T_n = n T, T 2^(n-1), T = "
        f"{{cfg.growth_samples}}) the replace loop improves on generation 1, read as: the ratio "
        f"of seed means E_G / E_1 at the last generation G = {{cfg.growth_generations}} is "
        f"{_BAND} for every schedule (P0's 'no ceiling', "
        f"E_n -> 0, is a limit no finite G tests; this is its testable part)",
        claims.seed_statistic, _improves),
    claims.Spec("self_improvement.sgd_generation_one", "THEORY.md §2.4 [E] (exact one-pass SGD)",
        f"one-pass SGD generation 1 (batch 1, power-law data): the seed-mean risk equals "
        f"2 x theory.sgd_loss {_WITHIN}",
        claims.seed_mean, lambda d: _relative(  # generation 1, the real-label run, of replace
            d.sgd_risk.sel(loop="replace").isel(generation=0), d.sgd_first_theory,
            d.sgd_nonfinite.sel(loop="replace"))),
    claims.Spec("self_improvement.p0_converges_sgd", _P0_FIXED,
        f"[P0] at fixed compute (the same SGD steps every generation, fitted to a subsample of "
        f"all data so far) the loop converges: the least-squares slope of the seed-mean E_n over "
        f"generations G/2..G (G = {{cfg.generations}}), over the seed-mean E_1, is 0 within "
        f"{CONVERGED} per generation (a diverged run fails it)",
        claims.seed_statistic, _converges_sgd),
    claims.Spec("self_improvement.p0_improves_with_compute_sgd", _P0_GROWING,
        f"[P0] with growing compute (n T SGD steps at generation n, T = {{cfg.sgd_samples}}) the "
        f"SGD loop improves on generation 1: the ratio of seed means E_G / E_1 at the last "
        f"generation G = {{cfg.generations}} is {_BAND}",
        claims.seed_statistic, _improves_sgd),
    claims.Spec("self_improvement.verifier", "THEORY.md §4.3; Feng et al. 2024",
        f"with the most accurate verifier of the run (it keeps a synthetic row iff "
        f"|y - x.w*| <= {{cfg.threshold}} sigma) the accumulate loop ends below generation 1: "
        f"the ratio of seed means E_G / E_1 at the last generation G = {{cfg.generations}} is "
        f"{_BAND}",
        claims.seed_statistic, _verifier),
    config=Config,
)  # fmt: skip


# --- notes, figures and run --------------------------------------------------------------------


def _ratio(curve: xr.DataArray) -> float:
    return float(curve.isel(generation=-1) / curve.isel(generation=0))


def notes(data: xr.Dataset, cfg: Config) -> list[str]:
    """Non-finite runs (diverged: a claim on them cannot PASS; never plotted) and the verifier's
    sweep over accuracies (seed means over the finite runs)."""
    out = []
    for name in ("nonfinite", "growth_nonfinite", "verifier_nonfinite", "sgd_nonfinite"):
        if bool((flag := data[name]).any()):
            out.append(f"{name}: {int(flag.sum())} of {flag.size} runs went non-finite (diverged)")
    verified = data.verified_error.where(~data.verifier_nonfinite).mean("seed")
    for p in verified.verifier.values:
        kept = float(data.verified_accepted.sel(verifier=p).isel(generation=slice(1, None)).mean())
        out.append(f"verifier accuracy {p:g}: E_G / E_1 = {_ratio(verified.sel(verifier=p)):.3f}, "
                   f"synthetic rows kept {kept:.1%}")  # fmt: skip
    risk = data.sgd_risk.where(~data.sgd_nonfinite).mean("seed")
    out += [f"SGD loop ({loop}): E_G / E_1 = {_ratio(risk.sel(loop=loop)):.3f}"
            for loop in data.loop.values]  # fmt: skip
    for g in data.growth.values:
        sizes = data.growth_sizes.sel(growth=g).values
        out.append(f"growing ({g}): T_n = {', '.join(f'{t:g}' for t in sizes)}")
    return out


def figures(data: xr.Dataset, cfg: Config) -> dict:
    import matplotlib.figure

    panels = ["replace", "accumulate", "mix", "growing", "verifier", "sgd"]
    figure = matplotlib.figure.Figure(figsize=(4.2 * len(panels), 3.8), layout="constrained")
    axes = figure.subplots(1, len(panels))
    generation = data.generation.values
    for ax, regime in zip(axes[:3], panels[:3], strict=True):
        for j, T in enumerate(data.samples.values):
            if bool(data.nonfinite.sel(regime=regime, samples=T).any()):
                continue  # listed in the notes
            _band(ax, generation, data.error.sel(regime=regime, samples=T), f"C{j}", f"T = {T}")
            ax.plot(data.generation, data.theory.sel(regime=regime, samples=T), "k--", lw=0.8)
        if regime == "accumulate":
            for T in data.samples.values:
                bound = float(_accumulate_bound(d=cfg.dim, noise=cfg.noise, T=T))
                ax.axhline(bound, color="0.6", ls=":", lw=0.8)
        ax.set(title=f"{regime} (closed form dashed)", ylabel="E_n", yscale="log")
    ax = axes[3]
    for j, g in enumerate(data.growth.values):
        runs = data.growth_error.sel(growth=g).rename(growth_seed="seed")
        _band(ax, data.growth_generation.values, runs, f"C{j}", str(g))
        ax.plot(data.growth_generation, data.growth_theory.sel(growth=g), "k--", lw=0.8)
    ax.set(title=f"replace, growing T_n (T_1 = {cfg.growth_samples})", ylabel="E_n")
    ax = axes[4]
    for j, p in enumerate(data.verifier.values):
        _band(ax, generation, data.verified_error.sel(verifier=p), f"C{j}", f"p = {p:g}")
    ax.set(title=f"accumulate + verifier (T = {cfg.verifier_samples})", ylabel="E_n",
           yscale="log")  # fmt: skip
    ax = axes[5]
    for j, loop in enumerate(data.loop.values):
        if bool(data.sgd_nonfinite.sel(loop=loop).any()):
            continue  # listed in the notes
        _band(ax, generation, data.sgd_risk.sel(loop=loop), f"C{j}", str(loop))
    ax.axhline(float(data.sgd_first_theory), color="k", ls="--", lw=0.8)
    ax.set(title=f"one-pass SGD, {cfg.sgd_samples} steps (x n growing)",
           ylabel="risk E_n (exact generation 1 dashed)", yscale="log")  # fmt: skip
    for ax in axes:
        ax.set(xlabel="generation n")
        ax.legend(fontsize=6)
    return dict(error_by_generation=figure)


def _band(ax, x, runs: xr.DataArray, color: str, label: str) -> None:
    """Seed mean with a +-SEM band."""
    mean = runs.mean("seed").values
    sem = np.asarray(_sem(runs.values, axis=runs.dims.index("seed")))
    ax.fill_between(x, mean - sem, mean + sem, color=color, alpha=0.3, lw=0)
    ax.plot(x, mean, color=color, lw=1.5, label=label)


def run(cfg: Config, options: sweep.Options | None = None) -> Report:
    cfg = scaled(cfg, QUICK, PAPER)
    check(cfg)
    data = xr.merge([simulate_loops(cfg, options), simulate_growing(cfg, options),
                     simulate_verifier(cfg, options), simulate_sgd(cfg, options)],
                    combine_attrs="drop_conflicts")  # fmt: skip
    return Report(experiment="self_improvement", claims=CLAIMS.evaluate(data, config=cfg),
                  data=data, figures=figures(data, cfg), config=dataclasses.asdict(cfg),
                  seed=cfg.seed, notes=notes(data, cfg))  # fmt: skip


if __name__ == "__main__":  # the same as `spectral-sim run self_improvement [flags]`
    from spectral_sim import cli

    sys.exit(cli.main(["run", "self_improvement", *sys.argv[1:]]))
