"""Spectra of real data: s_data against s_eff ([P0]'s open problem), on scikit-learn's digits and
the tiny-Shakespeare text, measured and predicted from the measured spectrum (THEORY.md §2.7).

For each data set and feature map (raw inputs, i.e. the linear kernel, and RBF / Laplace /
arc-cosine kernels) the pool of P points is the population: its kernel spectrum lambda_k (of
K / P) and the target's power per mode v_k^2 give s_data and a_data with intervals, fitted on the
modes the learning curve probes (k from the smallest to the largest training-set size; a from
the tail sums of v_k^2, which ridge's bias follows). Kernel
ridge is trained on n points drawn from the pool and its mean squared error over the pool is
compared with the omnibus prediction from (lambda_k, v_k^2) alone (eigenlearning); the curve's
fitted exponent is compared with ERM's min(a - 1, 2s) and with [P0]'s (a - 1)/s; inverting the
omnibus predictor on the measured curve (`fit.invert_ridge_curve`) gives s_eff. Random ReLU
features and a small flax MLP give the same curves for comparison. [P0]'s "language has
s ~ 1" is measured on the text's bag-of-words and character-bigram covariance spectra.

Targets: digits, the parity of the digit (+-1); text blocks, their position in the corpus
(standardised), which the vocabulary of each play (its characters' names) reveals.
"""

import dataclasses
import sys

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

import experiments
from spectral_sim import data, fit, sweep, theory
from spectral_sim.models import pool as pool_model
from spectral_sim.report import Claim, Report
from spectral_sim.spectra import Empirical, participation_ratio

SETS = ("digits", "words", "ngrams")
KERNELS = ("linear", *data.KERNELS)
NETWORKS = ("rf", "mlp")
# The omnibus predictor is a deterministic equivalent (relative error O(1/n)) for Gaussian
# features; a kernel's features on real data are not Gaussian, and nothing bounds the error
# a priori. The claim is eigenlearning's: the measured spectrum predicts the curve to within
# 25 % at every n, which moves the curve's fitted exponent by at most
# ln(1.25) / ln(n_max / n_min) (0.08 over the default 16 -> 256).
OMNIBUS_MARGIN = 0.25
# Exponent claims: equal to within 0.1 (absolute) - a tenth of the "s ~ 1" scale P0 argues on
# and half the gap between the ERM and one-pass exponents at s ~ 2.
EXPONENT_MARGIN = 0.1
# P0's "language has s ~ 1", and s_eff = s_data, read as equality within 10 %.
S_MARGIN = 0.10
FAMILY_ALPHA = 0.05


# The claims this experiment checks, for `spectral-sim list`: id pattern (fnmatch) -> what
# is tested ([Pn]: a paper's claim). The tests check that every claim a run makes is here.
CLAIMS = {
    "real_data.*.language_s1": "[P0] language data has a covariance spectrum with s ~ 1",
    "real_data.*.*.omnibus": "the omnibus predictor from the measured spectrum gives the MSE",
    "real_data.*.*.erm_exponent": "the learning curve decays as n^-min(a-1, 2s) (measured s, a)",
    "real_data.*.*.p0_exponent": "[P0] the learning curve's exponent is (a - 1)/s_data",
    "real_data.*.*.s_eff": "[P0] the s_eff fitted to the learning curve equals s_data",
}


@dataclasses.dataclass(frozen=True)
class Config:
    sets: tuple[str, ...] = SETS
    kernels: tuple[str, ...] = KERNELS
    samples: tuple[int, ...] = (16, 23, 32, 45, 64, 91, 128, 181, 256)
    """Training-set sizes n: at most P/4 of every set (the with-replacement draws then repeat
    few points)."""
    ridge: float = 1e-3
    """delta / sum_k lambda_k (scale-free)."""
    n_seeds: int = 64
    networks_on: tuple[str, ...] = ("digits",)
    """The sets on which random features and the MLP are trained as well (on the raw inputs)."""
    rf_width: int = 2048
    mlp_width: int = 256
    mlp_steps: int = 1000
    mlp_lr: float = 3e-3
    network_seeds: int = 16
    spectrum_boot: int = 50
    invert_boot: int = 16
    """Bootstrap resamples of each curve's inversion (0: no interval, s_eff claims
    INCONCLUSIVE)."""
    invert_steps: int = fit.LBFGS_STEPS
    text_block: int = 1024
    """Characters per text block (one row of the bag-of-words and bigram matrices)."""
    seed: int = 0
    quick: bool = False
    """CPU-minute scale (`make run`, tests): fields left at their defaults take QUICK values."""


QUICK = dict(
    kernels=("linear", "arccos"), samples=(16, 32, 64, 128, 256), n_seeds=32, mlp_steps=500,
    network_seeds=8, spectrum_boot=20, invert_boot=0, invert_steps=100,
)  # fmt: skip


def check(cfg: Config) -> None:
    """Reject bad configs with the field name and valid range, before anything compiles."""
    for name, valid in dict(sets=SETS, kernels=KERNELS, networks_on=SETS).items():
        values = getattr(cfg, name)
        if name != "networks_on" and len(values) == 0:
            raise ValueError(f"{name} must list at least one of {valid}")
        if len(set(values)) != len(values):
            raise ValueError(f"{name} must not repeat a value; got {values}")
        if not set(values) <= set(valid):
            raise ValueError(f"{name} must be drawn from {valid}; got {values}")
    if not set(cfg.networks_on) <= set(cfg.sets):
        raise ValueError(f"networks_on must be among sets {cfg.sets}; got {cfg.networks_on}")
    if len(cfg.samples) < 5 or len(set(cfg.samples)) != len(cfg.samples):
        raise ValueError(f"samples must list >= 5 distinct sizes; got {cfg.samples}")
    if min(cfg.samples) < 8:
        raise ValueError(f"samples must be >= 8; got {cfg.samples}")
    if not 0 < cfg.ridge < 1:
        raise ValueError(f"ridge must be in (0, 1) (delta / sum lambda); got {cfg.ridge}")
    if not 0 < cfg.mlp_lr < 1:
        raise ValueError(f"mlp_lr must be in (0, 1); got {cfg.mlp_lr}")
    lows = dict(n_seeds=8, network_seeds=2, spectrum_boot=10, invert_boot=0, invert_steps=10,
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
        if name == "words":
            x = data.word_counts(text, block=cfg.text_block, top=1024)
        else:
            x = data.ngram_counts(text, n=2, block=cfg.text_block, top=512)
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


def measure_spectrum(k: np.ndarray, y: np.ndarray, cfg: Config, n_modes: int) -> dict:
    """s_data (parametric bootstrap) and a_data (tail sums) on the curve's window of modes, the
    automatic
    window's s where one exists, geometric-vs-power comparison, participation ratio, noise."""
    spectrum = data.kernel_spectrum(k, y)
    lam = np.asarray(spectrum.eigenvalues())
    power = np.asarray(spectrum.target_power())
    # the modes the curve probes, short of the last half of a low-rank spectrum (its
    # finite-size tail), over at least 2 octaves
    k_hi = min(max(cfg.samples), lam.size / 2)
    window = (min(float(min(cfg.samples)), k_hi / 4), float(k_hi))
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
        participation=float(participation_ratio(lam)),
        noise=max(float(np.mean(y**2) - power.sum()), 0.0),
    )  # fmt: skip


# --- learning curves -----------------------------------------------------------------------------


def curve(name: str, pool: pool_model.Pool, cfg: Config, options, **model) -> xr.Dataset:
    """Mean squared errors over the pool for every n and seed (n traced: one compile)."""
    seeds = cfg.network_seeds if model["model"] != "kernel" else cfg.n_seeds

    def make(n_samples):
        return pool_model.Params(pool, n_samples=n_samples, capacity=max(cfg.samples), **model)

    grid = sweep.Grid(product=dict(n_samples=list(cfg.samples)), n_seeds=seeds)
    out = (options or sweep.Options()).run(
        name, pool_model.fit, make, grid, seed=cfg.seed,
        config=dict(dataclasses.asdict(cfg), curve=name),
    )  # fmt: skip
    return out


def _summary(out: xr.Dataset) -> dict:
    mse = out.mse
    return dict(
        mse=mse.mean("seed").values,
        mse_sem=(mse.std("seed", ddof=1) / np.sqrt(out.sizes["seed"])).values,
        heldout=out.heldout_mse.mean("seed").values,
        diverged=int(out.nonfinite.sum()) if "nonfinite" in out else 0,
    )


def _inverted(n: np.ndarray, excess: np.ndarray, ridge: float, spec: dict, cfg: Config) -> dict:
    """s_eff, a_eff of the omnibus predictor fitted to an excess-risk curve; NaN where the curve
    is not positive (a noise floor not subtracted cleanly)."""
    nan = dict(s_eff=np.nan, s_eff_lo=np.nan, s_eff_hi=np.nan, a_eff=np.nan)
    if not np.all(excess > 0):
        return nan
    s0, a0 = spec["s"], max(spec["a"], 1.1)
    # A kernel of full rank leaves no noise (sigma^2 = 0, fixed: (s, a, C) are fitted); a
    # low-rank one (linear) leaves the target's power outside its range as noise, fitted with
    # the rest (its scale relative to the bias is C's). The power law is in units of the
    # fitted prefactor A (lambda_k ~ A k^-s), so the ridge is delta / A.
    noiseless = spec["noise"] <= 1e-9
    starts = dict(
        s=(0.7 * s0, 1.4 * s0), a=(a0, 2 * a0 - 1), noise=(1.0,) if noiseless else (1e-2,)
    )
    inv = fit.invert_ridge_curve(
        n, excess, ridge=ridge / spec["prefactor"], noise=0.0 if noiseless else None,
        n_boot=cfg.invert_boot, seed=cfg.seed, starts=starts, steps=cfg.invert_steps,
    )  # fmt: skip
    s_ci = np.asarray(inv.s_ci)
    return dict(s_eff=float(inv.s), s_eff_lo=float(s_ci[0]), s_eff_hi=float(s_ci[1]),
                a_eff=float(inv.a))  # fmt: skip


def measure(cfg: Config, options: sweep.Options | None = None) -> xr.Dataset:
    """Every (set, model) row: the spectrum's numbers, the measured curve, the omnibus
    prediction, the curve's exponent and s_eff (dims: row, n)."""
    n = np.asarray(cfg.samples, float)
    rows = []
    for name in cfg.sets:
        x, y = inputs(name, cfg)
        if max(cfg.samples) > len(y) / 4:
            raise ValueError(f"samples must be <= P/4 = {len(y) // 4} for {name}; got "
                             f"{max(cfg.samples)}")  # fmt: skip
        models = [("kernel", k) for k in cfg.kernels]
        if name in cfg.networks_on:
            models += [("rf", "arccos"), ("mlp", "arccos")]  # the kernels of their infinite width
        measured = {}  # kind -> (kernel matrix, spectrum): rf and mlp share arccos's
        for model, kind in models:
            if kind not in measured:
                k = kernel(x, kind)
                modes = x.shape[1] if kind == "linear" else len(y)
                measured[kind] = k, measure_spectrum(k, y, cfg, modes)
            k, spec = measured[kind]
            ridge = cfg.ridge * float(spec["lam"].sum())
            pool = pool_model.Pool(jnp.asarray(x), jnp.asarray(k), jnp.asarray(y))
            extra = dict(
                kernel=dict(ridge=ridge),
                rf=dict(ridge=ridge, width=cfg.rf_width),
                mlp=dict(width=cfg.mlp_width, steps=cfg.mlp_steps, lr=cfg.mlp_lr),
            )
            label = kind if model == "kernel" else model
            out = _summary(curve(f"{name}_{label}", pool, cfg, options, model=model,
                                 **extra[model]))  # fmt: skip
            empirical = Empirical(jnp.asarray(spec["lam"]), jnp.asarray(spec["power"]))
            predicted = np.array(
                [
                    float(theory.ridge_risk(empirical, n=m, ridge=ridge, noise=spec["noise"]))
                    for m in n
                ]
            )
            predicted = predicted + spec["noise"]
            excess = out["mse"] - spec["noise"]
            exponent = fit.power_law(n, excess) if np.all(excess > 0) else None
            row = dict(
                set=name, model=label, kernel=kind,
                **{k: v for k, v in spec.items() if k != "power"},
                ridge=ridge, predicted=predicted, **out,
                alpha=np.nan if exponent is None else float(exponent.exponent),
                alpha_se=np.nan if exponent is None else float(exponent.stderr),
                **_inverted(n, excess, ridge, spec, cfg),
            )  # fmt: skip
            rows.append(row)
    curves = ("predicted", "mse", "mse_sem", "heldout")
    variables = {k: ("row", [r[k] for r in rows]) for k in rows[0] if k not in (*curves, "lam")}
    variables |= {k: (("row", "n"), np.stack([r[k] for r in rows])) for k in curves}
    modes = max(r["lam"].size for r in rows)
    lam = np.full((len(rows), modes), np.nan)
    for i, r in enumerate(rows):
        lam[i, : r["lam"].size] = r["lam"]
    variables["eigenvalue"] = (("row", "mode"), lam)
    coords = dict(row=np.arange(len(rows)), n=n, mode=np.arange(1, modes + 1))
    return xr.Dataset(variables, coords=coords)


# --- claims ----------------------------------------------------------------------------------


def _ci_se(lo, hi, level: float = 0.95) -> float:
    """A standard error from a two-sided interval (normal approximation)."""
    from scipy.special import ndtri

    return float((hi - lo) / (2 * ndtri(0.5 + level / 2)))


def claims(ds: xr.Dataset, cfg: Config) -> list[Claim]:
    out = []
    z_n = fit.z_simultaneous(ds.sizes["n"], FAMILY_ALPHA)
    for name in cfg.sets:
        if name != "digits":
            r = ds.sel(row=(ds.set == name) & (ds.model == "linear")).isel(row=0)
            out.append(Claim(
                id=f"real_data.{name}.language_s1", source="P0: language has s ~ 1",
                statement=f"the {name} covariance spectrum of tiny-Shakespeare decays as k^-s with "
                f"s ~ 1 (fit on modes {cfg.samples[0]}-{cfg.samples[-1]}, parametric bootstrap; "
                "tolerance 10 %)",
                predicted=1.0, measured=float(r.s), stderr=_ci_se(float(r.s_lo), float(r.s_hi)),
                tolerance=S_MARGIN,
            ))  # fmt: skip
    for i in ds.row.values:
        r = ds.sel(row=i)
        name, label = str(r.set.values), str(r.model.values)
        prefix = f"real_data.{name}.{label}"
        what = f"{name}, {label}" + ("" if label in KERNELS else f" ({r.kernel.values} spectrum)")
        if label in KERNELS:
            ratio = r.mse / r.predicted
            worst = int(
                np.argmax(np.abs(ratio.values - 1) + z_n * (r.mse_sem / r.predicted).values)
            )
            out.append(Claim(
                id=f"{prefix}.omnibus", source="THEORY.md §2.7 (eigenlearning)",
                statement=f"{what}: the omnibus predictor from the pool's measured spectrum and "
                f"target power gives kernel ridge's test MSE within {OMNIBUS_MARGIN:.0%} "
                f"(measured / predicted, worst n = {int(r.n[worst])} of {experiments.listed(r.n)})",
                predicted=1.0, measured=float(ratio[worst]),
                stderr=float(r.mse_sem[worst] / r.predicted[worst]), tolerance=OMNIBUS_MARGIN,
                z=z_n,
            ))  # fmt: skip
        s, a = float(r.s), float(r.a)
        se_a = _ci_se(float(r.a_lo), float(r.a_hi))
        se_s = _ci_se(float(r.s_lo), float(r.s_hi))
        alpha, se_alpha = float(r.alpha), float(r.alpha_se)
        erm = min(a - 1, 2 * s)
        out.append(Claim(
            id=f"{prefix}.erm_exponent", source="THEORY.md §2.7",
            statement=f"{what}: the learning curve's excess MSE decays as n^-min(a-1, 2s) with "
            f"(s, a) measured from the spectrum on the same window",
            predicted=erm, measured=alpha, stderr=float(np.hypot(se_a, se_alpha)),
            tolerance=EXPONENT_MARGIN,
        ))  # fmt: skip
        p0 = (a - 1) / s
        se_p0 = abs(p0) * float(np.hypot(se_a / max(a - 1, 1e-9), se_s / s))
        out.append(Claim(
            id=f"{prefix}.p0_exponent", source="P0: L ~ D^-(a-1)/s (s_data)",
            statement=f"{what}: the learning curve's exponent is (a - 1)/s_data",
            predicted=p0, measured=alpha, stderr=float(np.hypot(se_p0, se_alpha)),
            tolerance=EXPONENT_MARGIN,
        ))  # fmt: skip
        se_eff = _ci_se(float(r.s_eff_lo), float(r.s_eff_hi))
        out.append(Claim(
            id=f"{prefix}.s_eff", source="P0's open problem: s_data -> s_eff",
            statement=f"{what}: the s_eff that inverting the omnibus predictor on the measured "
            "curve gives equals s_data (within 10 %; bootstrap intervals of both)",
            predicted=s, measured=float(r.s_eff), stderr=float(np.hypot(se_eff, se_s)),
            tolerance=S_MARGIN * s,
        ))  # fmt: skip
    return out


# --- figures and run -------------------------------------------------------------------------


def figures(ds: xr.Dataset, cfg: Config) -> dict:
    import matplotlib.figure

    spectra = matplotlib.figure.Figure(figsize=(4 * len(cfg.sets), 4), layout="constrained")
    curves = matplotlib.figure.Figure(figsize=(4 * len(cfg.sets), 4), layout="constrained")
    for ax_s, ax_c, name in zip(np.atleast_1d(spectra.subplots(1, len(cfg.sets))),
                                np.atleast_1d(curves.subplots(1, len(cfg.sets))), cfg.sets,
                                strict=True):  # fmt: skip
        rows = ds.sel(row=ds.set == name)
        for j, i in enumerate(rows.row.values):
            r = ds.sel(row=i)
            label = str(r.model.values)
            ax_c.errorbar(r.n, r.mse, yerr=r.mse_sem, fmt="o", ms=3, color=f"C{j}", label=label)
            if label in KERNELS:
                ax_c.plot(r.n, r.predicted, "-", color=f"C{j}", lw=1)
                ax_s.loglog(r.mode, r.eigenvalue, color=f"C{j}",
                            label=f"{label}: s = {float(r.s):.2f}")  # fmt: skip
        ax_s.axvspan(cfg.samples[0], cfg.samples[-1], color="grey", alpha=0.15)
        ax_s.set(xlabel="k", ylabel="λ_k of K / P", title=f"{name}: spectra (shaded: fit window)")
        ax_s.legend(fontsize=7)
        ax_c.set(xscale="log", yscale="log", xlabel="n", ylabel="test MSE over the pool",
                 title=f"{name}: measured (dots) vs omnibus (lines)")  # fmt: skip
        ax_c.legend(fontsize=7)
    return dict(spectra=spectra, curves=curves)


def _table(ds: xr.Dataset) -> list[str]:
    lines = [
        "set / model: s_data [CI] a_data | curve exponent vs min(a-1,2s), (a-1)/s | s_eff [CI]"
    ]
    for i in ds.row.values:
        r = ds.sel(row=i)
        s, a = float(r.s), float(r.a)
        lines.append(
            f"{r.set.values} / {r.model.values}: s = {s:.3f} [{float(r.s_lo):.3f}, "
            f"{float(r.s_hi):.3f}], a = {a:.3f} | alpha = {float(r.alpha):.3f} vs "
            f"{min(a - 1, 2 * s):.3f}, {(a - 1) / s:.3f} | s_eff = {float(r.s_eff):.3f} "
            f"[{float(r.s_eff_lo):.3f}, {float(r.s_eff_hi):.3f}], a_eff = {float(r.a_eff):.3f}; "
            f"auto-window s = {float(r.s_auto):.3f}, participation ratio "
            f"{float(r.participation):.1f}, noise {float(r.noise):.3g}"
        )
    return lines


def run(cfg: Config, options: sweep.Options | None = None) -> Report:
    cfg = experiments.quick(cfg, QUICK)
    check(cfg)
    with jax.enable_x64(True):  # kernel ridge solves need float64; the MLP casts to float32
        ds = measure(cfg, options)
    return Report(
        experiment="real_spectra",
        claims=claims(ds, cfg),
        data=ds,
        figures=figures(ds, cfg),
        config=dataclasses.asdict(cfg),
        seed=cfg.seed,
        notes=_table(ds),
    )


if __name__ == "__main__":  # the same as `spectral-sim run real_spectra [flags]`
    from spectral_sim import cli

    sys.exit(cli.main(["run", "real_spectra", *sys.argv[1:]]))
