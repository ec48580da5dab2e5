"""Spectra of real data: s_data against s_eff ([P0]'s open problem), on scikit-learn's digits and
the tiny-Shakespeare text, measured and predicted from the measured spectrum (THEORY.md §2.7).

For each data set and feature map (raw inputs, i.e. the linear kernel, and RBF / Laplace /
arc-cosine kernels) the pool of P points is the population: its kernel spectrum lambda_k (of
K / P) and the target's power per mode v_k^2 give s_data and a_data (from v_k^2's tail sums,
which ridge's bias follows) with intervals, on the modes the curve probes (k from min to max n).
Kernel ridge's MSE over the pool (n points drawn from it) is compared with the omnibus prediction
from (lambda_k, v_k^2) (eigenlearning), its exponent with ERM's min(a - 1, 2s) and [P0]'s
(a - 1)/s; inverting the predictor on it (`fit.invert_ridge_curve`) gives s_eff; random ReLU
features and a small flax MLP likewise. [P0]'s "language has s ~ 1" is measured on the text's
bag-of-words and bigram covariances. Targets: digits, their parity (+-1); text blocks, their
standardised position in the corpus, which each play's vocabulary (its characters' names) reveals.
"""

import dataclasses
import sys

import jax
import numpy as np
import xarray as xr
from scipy.special import ndtri

from spectral_sim import claims, data, fit, sweep, theory
from spectral_sim.models import pool as pool_model
from spectral_sim.registry import scaled
from spectral_sim.report import Report
from spectral_sim.spectra import Empirical

SETS = ("digits", "words", "ngrams")
TEXT_SETS = ("words", "ngrams")
KERNELS = ("linear", *data.KERNELS)
NETWORKS = ("rf", "mlp")
# The omnibus predictor is a deterministic equivalent (relative error O(1/n)) for Gaussian
# features; nothing bounds its error for a kernel's (non-Gaussian) features on real data, so the
# margin is judgement: within 25 % of the seed-mean curve at every n, which moves the fitted
# exponent by at most ln(1.25) / ln(n_max / n_min) (0.08 over the default 16 -> 256).
OMNIBUS_MARGIN = 0.25
# Exponent claims (judgement): equal to within 0.1 (absolute) - a tenth of the "s ~ 1" scale P0
# argues on and half the gap between the ERM and one-pass exponents at s ~ 2.
EXPONENT_MARGIN = 0.1
# P0's "language has s ~ 1", and s_eff = s_data: equality within 10 % (judgement: P0 gives none).
S_MARGIN = 0.10
# The bootstrap over data points: fewer resamples than this give an SE with a relative error
# above 1/sqrt(2 (10 - 1)) = 24 %.
MIN_DATA_BOOT = 10


@dataclasses.dataclass(frozen=True)
class Config:
    sets: tuple[str, ...] = SETS
    kernels: tuple[str, ...] = KERNELS
    samples: tuple[int, ...] = (16, 23, 32, 45, 64, 91, 128, 181, 256)
    """Training-set sizes n: <= P/4 of every set (the with-replacement draws repeat few points)."""
    ridge: float = 1e-3
    """delta / sum_k lambda_k (scale-free)."""
    n_seeds: int = 64
    networks_on: tuple[str, ...] = ("digits",)
    """Sets where random features and the MLP train too (raw inputs; vs the arccos spectrum)."""
    rf_width: int = 2048
    mlp_width: int = 256
    mlp_steps: int = 1000
    mlp_lr: float = 3e-3
    network_seeds: int = 16
    spectrum_boot: int = 50
    data_boot: int = 40
    """Resamples of the bootstrap over data points behind the exponent claims: the pool's P
    points drawn with replacement, and for each resample its spectrum's s and a and every kernel's
    learning curve again (n_seeds seeds, one compiled program per kernel), so the measured
    exponent and its predictions move together. 40: the SE's relative error is 11 %."""
    invert_boot: int = 50
    """Seed resamples for the s_eff claims (0: not measured; else >= 50), each inverted anew: the
    full run's main cost (~3.6 s per 300-step inversion on one CPU core, 51 per curve)."""
    invert_steps: int = fit.LBFGS_STEPS
    text_block: int = 1024
    """Characters per text block (one row of the bag-of-words and bigram matrices)."""
    seed: int = 0
    quick: bool = False
    """CPU-minute scale (`make run`, tests): fields left at their defaults take QUICK values."""
    paper: bool = False
    """The papers' scale (`--scale paper`, meant for a GPU): fields left at their defaults take
    PAPER values. The defaults are the full scale: at most 30 minutes on 2 CPU cores."""


QUICK = dict(kernels=("linear", "arccos"), samples=(16, 32, 64, 128, 256), n_seeds=32,
             mlp_steps=500, network_seeds=8, spectrum_boot=20, data_boot=MIN_DATA_BOOT,
             invert_boot=0, invert_steps=100)  # fmt: skip
# The paper scale: the data sets are fixed, so only the resampling grows: four times the seeds and
# bootstrap resamples, a GPU's worth.
PAPER = dict(n_seeds=256, network_seeds=64, spectrum_boot=200, data_boot=200, invert_boot=200)


def check(cfg: Config) -> None:
    """Reject bad configs with the field name and valid range, before anything compiles."""
    for name, valid in dict(sets=SETS, kernels=KERNELS, networks_on=cfg.sets).items():
        values = getattr(cfg, name)
        if name != "networks_on" and len(values) == 0:
            raise ValueError(f"{name} must list at least one of {valid}")
        if len(set(values)) != len(values):
            raise ValueError(f"{name} must not repeat a value; got {values}")
        if not set(values) <= set(valid):
            raise ValueError(f"{name} must be drawn from {valid}; got {values}")
    if cfg.networks_on and "arccos" not in cfg.kernels:
        raise ValueError(f"networks_on needs 'arccos' in kernels (the networks are compared with "
                         f"its spectrum); got kernels {cfg.kernels}")  # fmt: skip
    if len(set(cfg.samples)) != len(cfg.samples) or len(cfg.samples) < 5 or min(cfg.samples) < 8:
        raise ValueError(f"samples must list >= 5 distinct sizes >= 8; got {cfg.samples}")
    for name, what in dict(ridge=" (delta / sum lambda)", mlp_lr="").items():
        if not 0 < getattr(cfg, name) < 1:
            raise ValueError(f"{name} must be in (0, 1){what}; got {getattr(cfg, name)}")
    if 0 < cfg.invert_boot < 50:
        raise ValueError(f"invert_boot must be 0 (no s_eff claims) or >= 50; got {cfg.invert_boot}")
    lows = dict(n_seeds=8, network_seeds=2, spectrum_boot=10, data_boot=MIN_DATA_BOOT,
                invert_boot=0, invert_steps=10,
                rf_width=16, mlp_width=4, mlp_steps=10, text_block=64)  # fmt: skip
    for name, low in lows.items():
        if getattr(cfg, name) < low:
            raise ValueError(f"{name} must be >= {low}; got {getattr(cfg, name)}")


# --- the data ----------------------------------------------------------------------------------


def inputs(name: str, cfg: Config) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) of a set: rows scaled to unit root-mean-square norm (kernels and ridge are
    invariant to it; the MLP sees O(1) inputs), targets centred."""
    if name == "digits":
        x, label = data.digits()
        y = np.where(label % 2 == 0, 1.0, -1.0)
    else:
        text = data.shakespeare()
        x = (data.word_counts(text, block=cfg.text_block, top=1024) if name == "words"
             else data.ngram_counts(text, n=2, block=cfg.text_block, top=512))  # fmt: skip
        position = np.arange(len(x)) / len(x)
        y = (position - position.mean()) / position.std()
    x = x[:, np.ptp(x, axis=0) > 0]  # constant pixels / unused n-grams carry nothing
    x = x / np.sqrt(np.mean(np.sum(x**2, axis=1)))
    return x, y - y.mean()


def kernel(x: np.ndarray, kind: str) -> np.ndarray:
    if kind == "linear":
        centred = x - x.mean(axis=0)
        return centred @ centred.T
    return data.kernel_matrix(x, kind=kind)


def _window(cfg: Config, rank: int) -> tuple[float, float]:
    """The modes the curve probes (>= 2 octaves), short of a low-rank spectrum's last half (its
    finite-size tail)."""
    k_hi = min(max(cfg.samples), rank / 2)
    return min(float(min(cfg.samples)), k_hi / 4), float(k_hi)


def _noise(y: np.ndarray, power: np.ndarray) -> float:
    """The target's power outside the kernel's range (low rank: the linear kernel)."""
    return max(float(np.mean(y**2) - power.sum()), 0.0)


def measure_spectrum(k: np.ndarray, y: np.ndarray, cfg: Config, n_modes: int) -> dict:
    """s_data (parametric bootstrap) and a_data (tail sums) on the curve's window of modes, the
    automatic window's s where one exists, geometric-vs-power comparison, participation, noise."""
    spectrum = data.kernel_spectrum(k, y)
    lam = np.asarray(spectrum.eigenvalues())
    power = np.asarray(spectrum.target_power())
    window = _window(cfg, lam.size)
    s = fit.spectrum_exponent(lam, n_samples=len(y), n_modes=max(n_modes, lam.size),
                              window=window, n_boot=cfg.spectrum_boot, seed=cfg.seed)  # fmt: skip
    a = fit.tail_exponent(power, window=window, n_boot=cfg.spectrum_boot * 4, seed=cfg.seed)
    try:
        auto = fit.spectrum_exponent(lam)
        s_auto, auto_lo, auto_hi = auto.exponent, *auto.window
    except ValueError:  # no constant-slope window of 2 octaves: curved
        s_auto, auto_lo, auto_hi = np.nan, np.nan, np.nan
    decay = fit.decay_comparison(lam, window=(int(window[0]), int(window[1])))
    return dict(
        lam=lam, power=power, s=s.exponent, s_lo=s.ci[0], s_hi=s.ci[1], prefactor=s.prefactor,
        a=a.exponent, a_lo=a.ci[0], a_hi=a.ci[1], s_auto=s_auto, auto_lo=auto_lo,
        auto_hi=auto_hi, rho=decay.rho, power_law_preferred=decay.preferred == "power law",
        participation=float(lam.sum() ** 2 / (lam**2).sum()),  # participation_ratio, on the host
        noise=_noise(y, power), window=window,
    )  # fmt: skip


def resampled_spectra(k: np.ndarray, y: np.ndarray, resamples: np.ndarray, window) -> dict:
    """The bootstrap over data points: per resample (a row of P pool indices) the spectrum of
    the resampled pool's kernel matrix and centred targets, its s and a fitted on the original's
    window (plain fits: the bias corrections of the point estimates shift every resample alike)
    and its noise."""
    out = dict(boot_s=[], boot_a=[], boot_noise=[])
    for index in resamples:
        target = y[index] - y[index].mean()
        spectrum = data.kernel_spectrum(k[np.ix_(index, index)], target)
        lam, power = np.asarray(spectrum.eigenvalues()), np.asarray(spectrum.target_power())
        out["boot_s"].append(fit.spectrum_exponent(lam, window=window).exponent)
        tail = fit.tail_exponent(power, window=window, n_boot=MIN_DATA_BOOT)
        out["boot_a"].append(tail.raw_exponent)
        out["boot_noise"].append(_noise(target, power))
    return {name: ("replicate", np.asarray(values)) for name, values in out.items()}


# --- learning curves -----------------------------------------------------------------------------


def curve(name: str, pool: pool_model.Pool, cfg: Config, options, resamples=None,
          **model) -> xr.Dataset:  # fmt: skip
    """MSE over the pool and its held-out points per n and seed (n traced: one compile). With
    common random numbers seed i trains on the first n of the same `capacity` draws (points,
    features, MLP init) at every n: nested sets, seeds independent replicates of the curve.
    `resamples` (rows of P pool indices): the curve of every resampled pool, a `replicate` dim,
    in the same program."""
    seeds = cfg.network_seeds if model["model"] != "kernel" else cfg.n_seeds
    table = None if resamples is None else jax.device_put(np.asarray(resamples))

    def make(n_samples, replicate=None):
        return pool_model.Params(pool, n_samples=n_samples, capacity=max(cfg.samples),
                                 resample=None if table is None else table[replicate],
                                 **model)  # fmt: skip

    axes = dict(n_samples=list(cfg.samples))
    if resamples is not None:
        axes["replicate"] = list(range(len(resamples)))
    grid = sweep.Grid(product=axes, n_seeds=seeds)
    out = (options or sweep.Options()).run(
        name, pool_model.fit, make, grid, seed=cfg.seed, common_random_numbers=True,
        config=dict(dataclasses.asdict(cfg), curve=name),
    )  # fmt: skip
    crn = dict(common_random_numbers=out.attrs["common_random_numbers"])  # the bootstrap's basis
    out = out[["mse", "heldout_mse"]].rename(n_samples="n").drop_attrs()
    return out.assign_coords(n=np.asarray(cfg.samples, float)).assign_attrs(crn)


# The profile of the inversion along s: s_data times these ratios (9.6 % apart: about the s_eff
# claim's margin S_MARGIN), which span the basins the inversions land in (s_eff / s_data from
# 0.05 to 2.5 at full scale).
PROFILE = np.geomspace(1 / 3, 3, 25)


def _inversion(mean: xr.DataArray, spec) -> dict | None:
    """The arguments of the omnibus predictor's inversion on a seed-mean curve less the noise;
    None unless that is positive (noise floor not subtracted cleanly). `spec`: s, a, noise,
    ridge, prefactor."""
    n, excess = mean.n.values, mean.values - float(spec["noise"])
    if not np.all(excess > 0):
        return None
    s0, a0 = float(spec["s"]), max(float(spec["a"]), 1.1)
    # Full rank leaves no noise (sigma^2 = 0, fixed; (s, a, C) fitted); low rank (linear) leaves
    # the target's power outside its range as noise, fitted too (its scale relative to the bias
    # is C's). The law is in units of the fitted prefactor A (lambda_k ~ A k^-s): ridge delta / A.
    noiseless = float(spec["noise"]) <= 1e-9
    starts = dict(s=(0.7 * s0, 1.4 * s0), a=(a0, 2 * a0 - 1), noise=(1.0 if noiseless else 1e-2,))
    if "profile" in spec:  # start in every basin of the profile instead (3: one compile)
        s, a = _basins(spec)
        if s.size:
            starts.update(s=tuple(np.resize(s, 3)), a=tuple(np.resize(np.maximum(a, 1.05), 3)))
    return dict(n=n, risk=excess, ridge=float(spec["ridge"]) / float(spec["prefactor"]),
                noise=0.0 if noiseless else None, starts=starts)  # fmt: skip


def _inverted(mean: xr.DataArray, spec, steps: int) -> tuple[float, float]:
    """(s_eff, a_eff) of the omnibus predictor fitted to a seed-mean curve less the noise; NaN
    unless that is positive."""
    args = _inversion(mean, spec)
    if args is None:
        return np.nan, np.nan
    inv = fit.invert_ridge_curve(**args, steps=steps)
    return float(inv.s), float(inv.a)


def _profile(mean: xr.DataArray, spec, steps: int) -> dict:
    """The inversion's objective at s = s_data x PROFILE (the best (a, sigma^2, C) with s held)
    and that a, as data variables over s_ratio; NaN where the excess is not positive."""
    args = _inversion(mean, spec)
    objective = a = np.full(PROFILE.size, np.nan)
    if args is not None:
        fitted = fit.profile_ridge_curve(**args, s=float(spec["s"]) * PROFILE, steps=steps)
        objective, a = np.asarray(fitted.objective), np.asarray(fitted.a)
    return dict(profile=("s_ratio", objective), profile_a=("s_ratio", a))


def _basin_index(spec) -> np.ndarray:
    """Where the profile has its local minima, the lowest objective first (at most 3)."""
    value = np.asarray(spec["profile"], float)
    value = np.where(np.isfinite(value), value, np.inf)
    padded = np.concatenate([[np.inf], value, [np.inf]])
    local = (value <= padded[:-2]) & (value <= padded[2:]) & np.isfinite(value)
    return np.flatnonzero(local)[np.argsort(value[local], kind="stable")][:3]


def _basins(spec) -> tuple[np.ndarray, np.ndarray]:
    """(s, a) at the profile's local minima, the lowest objective first (at most 3)."""
    order = _basin_index(spec)
    return float(spec["s"]) * PROFILE[order], np.asarray(spec["profile_a"], float)[order]


def _basin_note(spec) -> str:
    """The profile's basins: s (objective / the lowest)."""
    value, s = np.asarray(spec["profile"], float), float(spec["s"]) * PROFILE
    lowest = np.nanmin(value) if np.isfinite(value).any() else np.nan
    return ", ".join(f"s = {s[i]:.2f} ({value[i] / lowest:.2f}x)"
                     for i in _basin_index(spec)) or "none"  # fmt: skip


@jax.jit
def _omnibus(lam: jax.Array, power: jax.Array, n: jax.Array, ridge, noise) -> jax.Array:
    """The omnibus ridge risk of the spectrum (lam, power) at every n: one program per kernel
    (eager, the solver for kappa compiled at every n)."""
    empirical = Empirical(lam, power)
    return jax.vmap(lambda m: theory.ridge_risk(empirical, n=m, ridge=ridge, noise=noise))(n)


def _value(v):
    """A data variable's values ((dims, values) -> values)."""
    return v[1] if isinstance(v, tuple) else v


def _kernel_row(out: xr.Dataset, boot: xr.Dataset, spec: dict, cfg: Config) -> xr.Dataset:
    """One kernel's curve (dims n, seed) with the omnibus prediction, spectrum numbers and s_eff,
    and the data bootstrap's curves and spectrum numbers (dim replicate)."""
    risk = _omnibus(spec["lam"], spec["power"], out.n.values, spec["ridge"], spec["noise"])
    spec = spec | _profile(out.mse.mean("seed"), spec, cfg.invert_steps)
    s_eff, a_eff = _inverted(out.mse.mean("seed"), {k: _value(v) for k, v in spec.items()},
                             cfg.invert_steps)  # fmt: skip
    numbers = {k: v for k, v in spec.items() if k not in ("lam", "power", "window")}
    return out.assign(
        predicted=("n", np.asarray(risk) + spec["noise"]), eigenvalue=("mode", spec["lam"]),
        s_eff=s_eff, a_eff=a_eff, boot_mse=boot.mse, **numbers,
    ).assign_coords(mode=np.arange(1, spec["lam"].size + 1), s_ratio=PROFILE)  # fmt: skip


def _network_rows(name, pool, spec: dict, cfg: Config, options) -> xr.Dataset:
    """Random features and the MLP on the arc-cosine kernel's pool: curves (dims network, n,
    network_seed) and their s_eff, the variables prefixed network_."""
    extra = dict(rf=dict(ridge=spec["ridge"], width=cfg.rf_width),
                 mlp=dict(width=cfg.mlp_width, steps=cfg.mlp_steps, lr=cfg.mlp_lr))  # fmt: skip
    rows = []
    for model in NETWORKS:
        out = curve(f"{name}_{model}", pool, cfg, options, model=model, **extra[model])
        profile = _profile(out.mse.mean("seed"), spec, cfg.invert_steps)
        own = spec | {k: _value(v) for k, v in profile.items()}
        s_eff, a_eff = _inverted(out.mse.mean("seed"), own, cfg.invert_steps)
        out = out.assign(s_eff=s_eff, a_eff=a_eff, **profile).assign_coords(s_ratio=PROFILE)
        rows.append(out.expand_dims(network=[model]))
    rows = xr.concat(rows, "network", join="outer", combine_attrs="drop_conflicts")
    rows = rows.rename({k: f"network_{k}" for k in rows.data_vars}).rename(seed="network_seed")
    return rows.expand_dims(network_set=[name])


def measure(cfg: Config, options: sweep.Options | None = None) -> xr.Dataset:
    """Kernel ridge's curves with their predictions and spectra (dims set, kernel, n, seed;
    mode), and the networks' curves (dims network_set, network, n, network_seed)."""
    sets, networks = [], []
    for name in cfg.sets:
        x, y = inputs(name, cfg)
        if max(cfg.samples) > len(y) / 4:
            raise ValueError(f"samples must be <= P/4 = {len(y) // 4} for {name}; got "
                             f"{max(cfg.samples)}")  # fmt: skip
        # one bootstrap over the data points, the same resamples for every kernel of a set
        resamples = np.random.default_rng(cfg.seed).integers(0, len(y), (cfg.data_boot, len(y)))
        rows = []
        for kind in cfg.kernels:
            k = kernel(x, kind)
            spec = measure_spectrum(k, y, cfg, x.shape[1] if kind == "linear" else len(y))
            spec.update(ridge=cfg.ridge * float(spec["lam"].sum()), points=len(y))
            spec.update(resampled_spectra(k, y, resamples, spec["window"]))
            pool = pool_model.Pool(*jax.device_put((x, k, y)))  # no compile, unlike jnp.asarray
            model = dict(model="kernel", ridge=spec["ridge"])
            out = curve(f"{name}_{kind}", pool, cfg, options, **model)
            boot = curve(f"{name}_{kind}_boot", pool, cfg, options, resamples, **model)
            row = _kernel_row(out, boot, spec, cfg)
            rows.append(row.expand_dims(kernel=[kind]))
            if kind == "arccos" and name in cfg.networks_on:  # rf's infinite-width kernel
                networks.append(_network_rows(name, pool, spec, cfg, options))
        rows = xr.concat(rows, "kernel", join="outer", combine_attrs="drop_conflicts")
        sets.append(rows.expand_dims(set=[name]))
    # attrs: common_random_numbers survives where every curve has the same value
    ds = xr.merge([xr.concat(sets, "set", join="outer", combine_attrs="drop_conflicts"),
                   *networks], join="outer", combine_attrs="drop_conflicts")  # fmt: skip
    keep = ("spectrum_boot", "data_boot", "invert_boot", "invert_steps")  # the claims read them
    return ds.assign_attrs({k: getattr(cfg, k) for k in keep})


# --- claims ----------------------------------------------------------------------------------


def _se(spec: xr.Dataset, name: str) -> float:
    """The SE behind `name`'s 95 % interval (normal approximation: width / 2z); only for the
    parametric bootstraps of fit.spectrum_exponent / tail_exponent (independent draws)."""
    return float((float(spec[f"{name}_hi"]) - float(spec[f"{name}_lo"])) / (2 * ndtri(0.975)))


def _network_curve(network: str):
    """d -> (a network's MSE per n and seed on one network_set, the arccos kernel's spectrum
    with the network's own profile)."""

    def select(d):
        r = d.sel(network=network)
        spec = d.sel(set=d.network_set.item(), kernel="arccos")
        return (r.network_mse.rename(network_seed="seed"),
                spec.assign(profile=r.network_profile, profile_a=r.network_profile_a))  # fmt: skip

    return select


def _slope(mean: xr.DataArray, noise) -> xr.DataArray:
    """The exponent of mean - noise (a number, or one per curve): log-log least squares at
    every n, on the host; NaN unless the excess is positive. One per curve: a mean with more dims
    than n (the bootstrap's blocks of resampled means, a replicate dim) gives them all at once."""
    excess = (mean - noise).transpose(..., "n")
    return xr.DataArray(-fit.loglog_slope(excess.n.values, excess.values),
                        dims=excess.dims[:-1])  # fmt: skip


def _erm(s, a):
    """ERM's exponent min(a - 1, 2s), elementwise."""
    return np.minimum(np.asarray(a) - 1, 2 * np.asarray(s))


def _p0(s, a):
    """[P0]'s exponent (a - 1)/s, elementwise."""
    return (np.asarray(a) - 1) / np.asarray(s)


def _p0_closer(alpha, s, a):
    """|alpha - ERM's| - |alpha - P0's|: > 0 where alpha is closer to [P0]'s prediction."""
    return np.abs(alpha - _erm(s, a)) - np.abs(alpha - _p0(s, a))


def _exponent(statistic, side: claims.Side = "both"):
    """A curve's entry: statistic(alpha, s, a) of the seed-mean curve's exponent alpha and the
    spectrum's s and a, against 0: within EXPONENT_MARGIN, or (a side) its sign. SE: the
    statistic's spread over the bootstrap over data points, whose every resample has its own s,
    a and (a kernel) curve, so that the exponent and its predictions move together (the shared
    uncertainty of a cancels in alpha - (a - 1)). A network is not retrained per resample: its
    alpha is paired with a resample of its seeds instead. A diverged seed leaves it NaN."""

    def entry(mse: xr.DataArray, spec: xr.Dataset, network: bool, attrs) -> dict:
        if "replicate" not in spec.dims:
            raise claims.NotMeasured("no bootstrap over data points (data_boot)")
        alpha = float(_slope(mse.mean("seed"), float(spec.noise)))
        if not np.isfinite(alpha):
            raise claims.NotMeasured("the exponent of the seed-mean curve is undefined (the "
                                     "excess MSE is not positive at every n)")  # fmt: skip
        size, seeds = spec.sizes["replicate"], mse.sizes["seed"]
        if network:
            picks = np.random.default_rng(0).integers(0, seeds, (size, seeds))
            means = mse.transpose("n", "seed").values[:, picks].mean(-1)
            alpha_b = _slope(xr.DataArray(means, dims=("n", "replicate"), coords=dict(n=mse.n)),
                             float(spec.noise)).values  # fmt: skip
            curves = (f"a network's curve paired with a resample of its {seeds} seeds (not "
                      f"retrained per data resample: its own data variability is not in the "
                      f"SE)")  # fmt: skip
        else:
            alpha_b = _slope(spec.boot_mse.mean("seed"), spec.boot_noise).values
            curves = f"each with its own curve of {seeds} seeds"
        s_b, a_b = spec.boot_s.values, spec.boot_a.values
        apart = float(_erm(spec.s, spec.a) - _p0(spec.s, spec.a))
        if side != "both" and abs(apart) < EXPONENT_MARGIN:
            raise claims.NotMeasured(f"the predictions differ by {apart:.2g}, less than "
                                     f"{EXPONENT_MARGIN}")  # fmt: skip
        boot = statistic(alpha_b, s_b, a_b)
        if np.isfinite(boot).mean() < 0.9:
            raise claims.NotMeasured(f"{int(np.sum(~np.isfinite(boot)))} of {size} resamples "
                                     f"give no exponent (excess MSE not positive)")  # fmt: skip
        return dict(
            measured=statistic(alpha, float(spec.s), float(spec.a)) if np.isfinite(mse).all()
            else np.nan, stderr=float(np.nanstd(boot, ddof=1)),
            tolerance=EXPONENT_MARGIN if side == "both" else 0.0,
            replicates=f"bootstrap over the {int(spec.points)} data points ({size} resamples, "
            f"{curves})",
        )  # fmt: skip

    return _every_curve(entry, side)


def _s_eff(mse: xr.DataArray, spec: xr.Dataset, network: bool, attrs) -> dict:
    """A curve's entry: the s_eff that inverting the omnibus predictor on the seed-mean curve
    gives (from every basin of its profile) minus s_data, against 0 within S_MARGIN x s_data.
    SE: the seed bootstrap (joint across n: a seed's training sets are nested; each resample
    inverted anew) and, independent, in quadrature, s_data's parametric bootstrap. A diverged
    seed (left out of the bootstrap) leaves the difference NaN: no PASS."""
    n_boot = int(attrs["invert_boot"])
    if not n_boot:
        raise claims.NotMeasured("invert_boot = 0: no seed bootstrap of the inversion")
    steps = int(attrs.get("invert_steps", 0))
    fitted, se_fitted = claims.bootstrap(
        mse, lambda mean: _inverted(mean, spec, steps)[0], n_boot=n_boot
    )
    if not np.isfinite(float(fitted)):
        raise claims.NotMeasured("the s_eff of the seed-mean curve is undefined (the excess "
                                 "MSE is not positive at every n)")  # fmt: skip
    s = float(spec.s)
    return dict(
        measured=float(fitted) - s if np.isfinite(mse).all() else np.nan,
        tolerance=S_MARGIN * abs(s), stderr=float(np.hypot(se_fitted, _se(spec, "s"))),
        replicates=f"s_eff: {n_boot} bootstrap resamples of each curve's {mse.sizes['seed']} "
        f"seeds (joint over n), each inverted from every basin of the curve's profile along s "
        f"(the notes name the basins); prediction: parametric bootstraps of s "
        f"({attrs['spectrum_boot']})",
    )  # fmt: skip


def _every_curve(entry, side: claims.Side = "both"):
    """A measure over every learning curve of the run, one entry per curve (kernel ridge's at
    each set and kernel, then the networks'): entry(mse, spec, network, attrs) -> measured,
    stderr, tolerance and what the SE resamples. A curve it cannot measure (NotMeasured) is
    left out and named with why; the SE notes give every curve's measured value and SE."""

    def measure(d: xr.Dataset) -> dict:
        labels, rows, left_out = [], [], {}
        for name, model, mse, spec, _, _ in _curves(d):
            try:
                rows.append(entry(mse, spec, model in NETWORKS, d.attrs))
                labels.append(f"{name}/{model}")
            except claims.NotMeasured as why:
                left_out.setdefault(str(why), []).append(f"{name}/{model}")
        why = "; ".join(f"{', '.join(curves)}: {why}" for why, curves in left_out.items())
        if not rows:
            raise claims.NotMeasured(why)
        curve = dict(curve=labels)
        column = {key: xr.DataArray([float(r[key]) for r in rows], dims="curve", coords=curve)
                  for key in ("measured", "stderr", "tolerance")}  # fmt: skip
        per_curve = ", ".join(f"{label} {r['measured']:.3g} ± {r['stderr']:.2g}"
                              for label, r in zip(labels, rows, strict=True))  # fmt: skip
        notes = [*dict.fromkeys(r["replicates"] for r in rows), f"per curve: {per_curve}"]
        if left_out:
            notes.append(f"left out: {why}")
        return dict(column, predicted=0.0, side=side, replicates="; ".join(notes))

    return measure


def _language(name: str):
    def measure(d: xr.Dataset) -> dict:
        if name not in d.set.values or "linear" not in d.kernel.values:
            raise claims.NotMeasured(f"needs set {name} with the linear kernel (its covariance)")
        r = d.sel(set=name, kernel="linear")
        return dict(
            measured=r.s, stderr=_se(r, "s"), predicted=1.0, tolerance=S_MARGIN,
            replicates=f"parametric bootstrap of s: {d.attrs['spectrum_boot']} Gaussian sample "
            f"covariances of the {name} blocks with the fitted spectrum",
        )  # fmt: skip

    return measure


_EVERY_CURVE = (
    "every learning curve of the run, one entry each (kernel ridge at each set in {cfg.sets} "
    "and kernel in {cfg.kernels}; random features and the MLP on {cfg.networks_on}, predicted "
    "from the arc-cosine kernel's spectrum)"
)
_SE_NOTE = (
    "SE per curve: the spread of the same quantity over a bootstrap over the data points, "
    "which redraws the curve's exponent and the spectrum's s and a together; a data set is "
    "fixed, so one curve rarely settles a 0.1 margin, while the predictor's claim is that it "
    "holds on every curve: one that lies outside refutes it"
)
_CURVE_EXPONENT = "the exponent of the seed-mean excess-MSE curve"


def _spec(claim, source, statement, measure, kind: claims.ToleranceKind = "judgement"):
    return claims.Spec(f"real_data.{claim}", source, statement, claims.estimate, measure,
                       tolerance_kind=kind)  # fmt: skip


# The claims this experiment checks (`spectral-sim list` shows them; [Pn]: a paper's claim).
# Every margin is judgement (see OMNIBUS_MARGIN, EXPONENT_MARGIN, S_MARGIN).
CLAIMS = claims.Table(
    *(claims.Spec(
        f"real_data.{name}.language_s1", "P0: language has s ~ 1",
        f"[P0] the {name} covariance spectrum of tiny-Shakespeare (the linear kernel's) decays "
        f"as k^-s with s = 1 within {S_MARGIN:.0%} (s fitted on the modes the learning curves "
        f"probe, bias-corrected; SE from its parametric bootstrap, which does not include the "
        f"choice of window: the notes give the automatic window's s)",
        claims.estimate, _language(name),
    ) for name in TEXT_SETS),
    claims.Spec(
        "real_data.{set}.{kernel}.omnibus", "THEORY.md §2.7 (eigenlearning)",
        f"{{set}}, {{kernel}} kernel: kernel ridge's seed-mean test MSE over the pool equals the "
        f"omnibus prediction from the pool's measured spectrum and target power within "
        f"{OMNIBUS_MARGIN:.0%} at every training-set size n in {{cfg.samples}} (measured / "
        f"predicted; the seeds are independent draws of the nested training sets)",
        claims.seed_mean, lambda d: dict(samples=d.mse, predicted=d.predicted,  # every n an entry
                                         tolerance=OMNIBUS_MARGIN, relative=True),
        over=("set", "kernel"),
    ),
    _spec("erm_exponent", "THEORY.md §2.7",
          f"on {_EVERY_CURVE}: {_CURVE_EXPONENT} (least squares on log-log over every n in "
          f"{{cfg.samples}}) equals min(a - 1, 2s), (s, a) fitted to the pool's spectrum and "
          f"target power on the modes the curve probes, within {EXPONENT_MARGIN} (the claim is "
          f"on measured - predicted; {_SE_NOTE})",
          _exponent(lambda alpha, s, a: alpha - _erm(s, a))),
    _spec("p0_exponent", "P0: L ~ D^-(a-1)/s (s_data)",
          f"[P0] on {_EVERY_CURVE}: {_CURVE_EXPONENT} equals (a - 1)/s_data within "
          f"{EXPONENT_MARGIN} (the claim is on measured - predicted; {_SE_NOTE})",
          _exponent(lambda alpha, s, a: alpha - _p0(s, a))),
    # a sign, no margin: the data say which prediction is nearer, or that they cannot tell
    _spec("p0_vs_erm", "P0 against ERM, head to head",
          f"[P0] on {_EVERY_CURVE}, where the two predictions differ by at least "
          f"{EXPONENT_MARGIN} (the exponent claims' margin; nearer s = 1 they coincide and no "
          f"data tell them apart): {_CURVE_EXPONENT} is closer to (a - 1)/s_data than to ERM's "
          f"min(a - 1, 2s) (the claim is on |exponent - ERM's| - |exponent - P0's| > 0; "
          f"{_SE_NOTE})", _exponent(_p0_closer, side="above"), "derived"),
    _spec("s_eff", "P0's open problem: s_data -> s_eff",
          f"[P0] on {_EVERY_CURVE}: the s_eff that inverting the omnibus predictor on the "
          f"seed-mean excess-MSE curve gives equals s_data within {S_MARGIN:.0%} of s_data "
          f"(the claim is on s_eff - s_data; SE: the seed bootstrap of the inversion, jointly "
          f"over n, with s_data's parametric bootstrap)", _every_curve(_s_eff)),
    config=Config,
)  # fmt: skip


# --- figures and run -------------------------------------------------------------------------


def _curves(ds: xr.Dataset):
    """(set, model, MSE per n and seed, spectrum numbers, s_eff, a_eff) of every curve."""
    for name in ds.set.values:
        for kind in ds.kernel.values:
            d = ds.sel(set=name, kernel=kind)
            yield name, kind, d.mse, d, float(d.s_eff), float(d.a_eff)
        if "network_set" in ds.dims and name in ds.network_set.values:
            d = ds.sel(network_set=name)
            for network in ds.network.values:
                r = d.sel(network=network)
                yield (name, network, *_network_curve(network)(d), float(r.network_s_eff),
                       float(r.network_a_eff))  # fmt: skip


def figures(ds: xr.Dataset) -> dict:
    import matplotlib.figure
    import matplotlib.ticker

    sets, kinds = list(ds.set.values), list(ds.kernel.values)
    models = kinds + (list(ds.network.values) if "network" in ds.dims else [])
    figs = {k: matplotlib.figure.Figure(figsize=(4 * len(sets), 4), layout="constrained")
            for k in ("spectra", "curves", "profiles")}  # fmt: skip
    axes = {k: dict(zip(sets, np.atleast_1d(fig.subplots(1, len(sets))), strict=True))
            for k, fig in figs.items()}  # fmt: skip
    for name, model, mse, d, _, _ in _curves(ds):
        color, ax_c = f"C{models.index(model)}", axes["curves"][name]
        profile = d.profile / d.profile.min()
        axes["profiles"][name].plot(d.s * d.s_ratio, profile, ".-", color=color, label=model)
        axes["profiles"][name].plot(d.s, 1, "|", ms=12, color=color)
        sem = mse.std("seed", ddof=1) / np.sqrt(mse.sizes["seed"])
        ax_c.errorbar(mse.n, mse.mean("seed"), yerr=sem, fmt="o", ms=3, color=color, label=model)
        if model in kinds:
            ax_c.plot(d.n, d.predicted, "-", color=color, lw=1)
            axes["spectra"][name].loglog(d.mode, d.eigenvalue, color=color,
                                         label=f"{model}: s = {float(d.s):.2f}")  # fmt: skip
    for name in sets:
        ax_s, ax_c = axes["spectra"][name], axes["curves"][name]
        ax_s.axvspan(ds.n.values[0], ds.n.values[-1], color="grey", alpha=0.15)
        ax_s.set(xlabel="k", ylabel="λ_k of K / P", title=f"{name}: spectra (shaded: fit window)")
        ax_s.legend(fontsize=7)
        ax_c.set(xscale="log", yscale="log", xlabel="n", ylabel="test MSE over the pool",
                 title=f"{name}: measured (dots) vs omnibus (lines)")  # fmt: skip
        ax_c.legend(fontsize=7)
        axes["profiles"][name].set(
            xscale="log", yscale="log", xlabel="s (held)", ylabel="objective / its minimum",
            title=f"{name}: inversion's profile (|: s_data)")  # fmt: skip
        axes["profiles"][name].xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        axes["profiles"][name].legend(fontsize=7)
    return figs


def _table(ds: xr.Dataset) -> list[str]:
    lines = ["set / model: s_data [CI] a_data | seed-mean curve exponent vs min(a-1,2s), (a-1)/s "
             "| s_eff (seed-mean curve)"]  # fmt: skip
    for name, model, mse, spec, s_eff, a_eff in _curves(ds):
        s, a, network = float(spec.s), float(spec.a), model not in ds.kernel.values
        alpha = float(_slope(mse.mean("seed"), float(spec.noise)))
        lines.append(
            f"{name} / {model}{' (arccos spectrum)' if network else ''}: s = {s:.3f} "
            f"[{float(spec.s_lo):.3f}, {float(spec.s_hi):.3f}], "
            f"a = {a:.3f} | alpha = {alpha:.3f} vs {min(a - 1, 2 * s):.3f}, {(a - 1) / s:.3f} | "
            f"s_eff = {s_eff:.3f}, a_eff = {a_eff:.3f} (profile's basins: "
            f"{_basin_note(spec)}); auto-window s = "
            f"{float(spec.s_auto):.3f}, participation ratio {float(spec.participation):.1f}, "
            f"noise {float(spec.noise):.3g}"
        )
    return lines


def run(cfg: Config, options: sweep.Options | None = None) -> Report:
    cfg = scaled(cfg, QUICK, PAPER)
    check(cfg)
    with jax.enable_x64(True):  # kernel ridge solves and inversions need float64 (MLP: float32)
        ds = measure(cfg, options)
        verdicts = CLAIMS.evaluate(ds, config=cfg)
    return Report(experiment="real_spectra", claims=verdicts, data=ds, figures=figures(ds),
                  config=dataclasses.asdict(cfg), seed=cfg.seed, notes=_table(ds))  # fmt: skip


if __name__ == "__main__":  # the same as `spectral-sim run real_spectra [flags]`
    from spectral_sim import cli

    sys.exit(cli.main(["run", "real_spectra", *sys.argv[1:]]))
