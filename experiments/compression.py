"""Compression and generalised spectral evolution: pruning, quantisation, elasticity, frontier.

Tests [P3]'s claims on the GF-trained linear model and two simulators of its generalised evolution
(THEORY.md §2.10, §6): pruning damage over (K, t) against the exact truncation formula and its two
regimes; the complementarity identity; quantisation as perturbation (dithered) and as pruning
(deterministic rounding); magnitude vs saliency pruning for a > s, a < s and in a random weight
basis; preconditioned GD's loss exponent (a - 1)/(s rho), frontier and tail-dominance constant for
several rho; the elasticity and exponent of the diagonal network w = u * v (feature learning).
"""

import dataclasses
import functools
import itertools
import sys

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr
from jax.scipy.special import zeta

from spectral_sim import Empirical, PowerLaw, claims, fit, simulate, sweep, theory
from spectral_sim._types import Float, Leaf
from spectral_sim.diagnostics import compression
from spectral_sim.models import evolution, linear
from spectral_sim.registry import scaled
from spectral_sim.report import Report

U64, U32 = 2.0**-53, 2.0**-24  # unit roundoff: float64 (pruning identities), float32 (evolution)
# Evolution fit windows: k*(t) >= K_LO keeps the smooth sum's discreteness error below 1e-3
# (THEORY.md §2.2), and the modes beyond M carry at most TAIL_SHARE of the loss. A multiplicative
# deviation within [-eps, eps] of a power law moves a least-squares slope over log-spaced points
# by at most 3 eps / ln(t_hi / t_lo) (1.5 eps / ln for a one-sided one, e.g. linear growth's).
K_LO, TAIL_SHARE = 10.0, 0.01
# GD at lr = 1 is the flow up to (1 - x)^(2n) = exp(-2 n x - n x^2 - ...): at the frontier,
# x ~ 1/t, a relative error ~ 1/t. Windows start where it is below GD_SHARE (t >= 1/GD_SHARE).
GD_SHARE = 0.01
# Per-step margin of float32 preconditioned GD against its closed form (judgement): 2 u32, as if
# every step's roundings (of w - w*, the update, w) added up on every mode. A worst-case picture,
# not a bound: w's rounding is contracted by (1 - lr lambda^rho) on the learned modes but weighs
# more there relative to their deviation, and the loss's float32 dot product adds up to M u32.
GD_ROUNDING = 2 * U32
# The diagonal network's loss adds the modes beyond M as at init: mode M + 1 learns at most this.
TAIL_LEARNED = 1e-3
# Equivalence margin of the quantisation claims (judgement, not derived): a picture of the mean
# damage must hold within 10 %; the report also decides at 5 % and 20 %.
QUANT_MARGIN = 0.10
# Float formats whose round-to-nearest is checked against the high-resolution picture: an error
# uniform on half the format's spacing at each weight, E Delta L = sum_k lambda_k ulp_k^2 / 24.
FLOAT_FORMATS = dict(bf16="bfloat16", fp8="float8_e4m3fn")


@dataclasses.dataclass(frozen=True)
class Config:
    s: tuple[float, ...] = (1.5, 3.0)
    a: tuple[float, ...] = (2.0, 3.5)
    """Pruning and quantisation grid (s, a): contains a > s and a < s."""
    n_modes: int = 1024
    t_range: tuple[float, float] = (0.1, 1e6)
    n_times: int = 30
    n_keep: int = 40
    """About this many log-spaced K in [1, n_modes], plus K = 0."""
    quant_steps: tuple[float, ...] = (0.01, 0.1, 0.3, 1.0)
    quant_times: tuple[float, ...] = (1e4, 1e6)
    """Trained models (post-training quantisation); at t = 1e2 the unlearned modes' cross term
    makes the damage too noisy to resolve a 10 % margin with 4096 targets."""
    n_seeds: int = 10752
    """Random-target draws of the quantisation Monte Carlo per point. A sweep chunk holds every
    seed of at least 2 points: 12,288 needed 2.2 GB, past the default 2 GB budget. The float
    formats draw their own targets at each Delta, so they have len(quant_steps) x n_seeds:
    43,008 (bf16_rounding's seeds_needed at 10,752 of them: 38,063)."""
    n_dithers: int = 16
    """Dither draws per target."""
    rho: tuple[float, ...] = (0.75, 1.0, 1.25, 1.5)
    evo_s: float = 2.0
    evo_a: float = 2.0
    evo_modes: int = 2**15
    evo_steps: int = 20_000
    """Preconditioned GD at lr = 1 (stable: lr lambda_max^rho = 1 < 2)."""
    diag_a: tuple[float, ...] = (1.5, 2.0, 3.0)
    """Diagonal-network targets at s = evo_s: predicted rho (s + a)/(2s) = 0.875, 1, 1.25."""
    diag_init: float = 1e-3
    diag_lr: float = 0.5
    diag_modes: int = 4096
    diag_steps: int = 200_000
    n_records: int = 60
    seed: int = 0
    quick: bool = False
    """CPU-minute scale (`make run`, tests): fields left at their defaults take QUICK values."""
    paper: bool = False
    """The papers' scale (`--scale paper`, meant for a GPU): fields left at their defaults take
    PAPER values. The defaults are the full scale: at most 30 minutes on 2 CPU cores."""


QUICK = dict(n_modes=512, n_seeds=1024, evo_modes=2**14, evo_steps=10_000, diag_modes=2048,
             diag_steps=40_000, n_records=40)  # fmt: skip
# The paper scale: the sources give no sizes; four times the modes of every spectrum and twice the
# seeds, a GPU's worth.
PAPER = dict(n_modes=4096, n_seeds=43008, evo_modes=2**17, diag_modes=16384)


def check(cfg: Config) -> None:
    """Reject bad configs with the field name and valid range, before anything compiles."""
    for name in ("s", "a", "quant_steps", "quant_times", "rho", "diag_a"):
        if len(getattr(cfg, name)) == 0:
            raise ValueError(f"{name} must list at least one value")
    for name in ("s", "a", "quant_steps", "quant_times", "rho", "diag_a"):
        values = getattr(cfg, name)
        if len(set(values)) != len(values):
            raise ValueError(f"{name} must not repeat a value; got {values}")
    for name in ("s", "quant_steps", "quant_times", "rho"):
        if min(getattr(cfg, name)) <= 0:
            raise ValueError(f"{name} must be > 0; got {getattr(cfg, name)}")
    for name, values in dict(a=cfg.a, diag_a=cfg.diag_a, evo_a=(cfg.evo_a,)).items():
        if min(values) <= 1:
            raise ValueError(f"{name} must be > 1 (finite signal energy); got {values}")
    if cfg.evo_s <= 0:
        raise ValueError(f"evo_s must be > 0; got {cfg.evo_s}")
    if not 0 < cfg.t_range[0] < cfg.t_range[1]:
        raise ValueError(f"t_range must be (t_lo, t_hi) with 0 < t_lo < t_hi; got {cfg.t_range}")
    if not 0 < cfg.diag_init < 1:
        raise ValueError(f"diag_init must be in (0, 1); got {cfg.diag_init}")
    if not 0 < cfg.diag_lr < 1:
        raise ValueError(f"diag_lr must be in (0, 1) (GD on u * v is stable below 1); got "
                         f"{cfg.diag_lr}")  # fmt: skip
    lows = dict(n_modes=16, n_times=5, n_keep=5, n_seeds=8, n_dithers=1, evo_modes=1024,
                evo_steps=100, diag_modes=256, diag_steps=1000, n_records=10)  # fmt: skip
    for name, low in lows.items():
        if getattr(cfg, name) < low:
            raise ValueError(f"{name} must be >= {low}; got {getattr(cfg, name)}")


# --- pruning of the GF model (exact, float64) ------------------------------------------------


def _gf_weights(spectrum, t):
    """(Quadratic, theta) of the exact GF simulator at times t (leading records axis)."""
    params = linear.Params(spectrum)
    state, _ = linear.gf(params, jnp.asarray(t))
    return compression.trained(params, linear.State(state.v, state.t))


def _rounding(spectrum, t, K):
    """Float64 rounding bound on |simulated - exact| for the GF loss, a truncation damage, the
    pruned loss or a sum of them, at (K, t) (broadcast as in `theory.prune_loss`).

    A simulated loss l = 1/2 sum_k lambda_k d_k^2, a dot product of M positive terms, is within
    M u l of its terms' sum in any order; squaring and scaling add a few u per term. Its
    deviations d_k = fl(fl(v_k + w*_k) - w*_k) are within u |w*_k| + 4 u |v_k| of v_k = -w*_k
    exp(-lambda_k t) (exp and product, the rounded weight, the difference), so d_k^2 is within
    2 u |v_k w*_k| + 8 u v_k^2 + u^2 w*_k^2 of v_k^2: l is within (M + 12) u l + u C + u^2 L(0)
    of exact, C = sum_k lambda_k |v_k w*_k| = 2 L(t/2). The predictors (expm1, exp, one sum) are
    within (M + 4) u. A damage (two simulated losses against a predictor) or the complementarity
    sum (three against one) involves at most four values, each at most the pruned loss P(K, t):
    the bound is 4 [(M + 12) u P + 2 u L(t/2) + u^2 L(0)]."""
    pruned = theory.pruned_loss(spectrum, t=t, K=K)
    half = theory.pruned_loss(spectrum, t=t / 2, K=spectrum.n_modes)  # L(t/2)
    initial = 0.5 * jnp.sum(spectrum.target_power())
    return 4 * ((spectrum.n_modes + 12) * U64 * pruned + 2 * U64 * half + U64**2 * initial)


def _rotation_rounding(q, rotated, theta, loss):
    """Float64 rounding bound on a loss `loss` (dims (K, t)) evaluated in the random weight
    basis, beyond `_rounding`'s: phi = fl(O^T theta) and fl(O phi) are each within
    gamma_M || |O| ||_2 ||theta|| <= M^1.5 u ||theta|| of exact (2-norms; || |O| ||_2 <=
    ||O||_F = sqrt(M)), and O's defect ||O^T O - I||_F moves O O^T theta by at most that times
    ||theta||: the deviations are within e = (2 M^1.5 u + defect) ||theta||, so by
    Cauchy-Schwarz the loss is within sqrt(2 lambda_1 l) e + lambda_1 e^2 / 2 of exact, plus its
    own dot product's (M + 12) u l."""
    n_modes = theta.shape[-1]
    defect = jnp.linalg.norm(rotated.features.T @ rotated.features - jnp.eye(n_modes))
    e = (2 * n_modes**1.5 * U64 + defect) * jnp.linalg.norm(theta, axis=-1)[None]  # per t
    lam_max = jnp.max(q.spectrum.eigenvalues())
    return jnp.sqrt(2 * lam_max * loss) * e + lam_max * e**2 / 2 + (n_modes + 12) * U64 * loss


@jax.jit
def _pruned(spectrum: PowerLaw, t: jax.Array, keep: jax.Array, key: jax.Array) -> dict:
    """`pruning`'s arrays at one (s, a): one program for every (s, a) (they are traced)."""
    q, theta = _gf_weights(spectrum, t)
    rotated, phi = compression.rotate(q, theta, key)
    base = compression.loss(q, theta)

    def damage(K):
        def pruned(model, w, **how):
            return compression.loss(model, compression.prune(model, w, K=K, **how)) - base

        return dict(truncated=compression.loss(q, compression.truncate(q, theta, K=K)),
                    magnitude=pruned(q, theta), saliency=pruned(q, theta, criterion="saliency"),
                    weight_basis=pruned(rotated, phi, basis="weight"))  # fmt: skip

    parts = jax.vmap(damage)(keep)
    grid = dict(t=t[None], K=keep[:, None])
    rounding = _rounding(spectrum, **grid)
    rotation = _rotation_rounding(q, rotated, theta, parts["weight_basis"] + base[None])
    return dict(
        gf_loss=base, pruned_loss=parts["truncated"], prune_damage=parts["truncated"] - base[None],
        prune_theory=theory.prune_loss(spectrum, **grid),
        pruned_theory=theory.pruned_loss(spectrum, **grid), prune_rounding=rounding,
        magnitude_damage=parts["magnitude"], saliency_damage=parts["saliency"],
        weight_basis_damage=parts["weight_basis"], weight_basis_rounding=rounding + rotation,
    )  # fmt: skip


def pruning(cfg: Config) -> xr.Dataset:
    """Per (s, a, K, t): truncation damage and pruned loss against prune_loss / pruned_loss,
    magnitude and saliency pruning damage in the eigenbasis and magnitude pruning in a random
    orthonormal weight basis, with their float64 rounding bounds; the GF loss per (s, a, t)."""
    t = np.geomspace(*cfg.t_range, cfg.n_times)
    keep = np.unique(np.r_[0, np.round(np.geomspace(1, cfg.n_modes, cfg.n_keep))]).astype(int)
    key = jax.random.key(cfg.seed)
    out = []
    for s, a in itertools.product(cfg.s, cfg.a):
        arrays = _pruned(PowerLaw(s=s, a=a, n_modes=cfg.n_modes), t, keep, key)
        per_kt = {k: (("K", "t"), np.asarray(v)) for k, v in arrays.items() if k != "gf_loss"}
        out.append(xr.Dataset(dict(gf_loss=("t", np.asarray(arrays["gf_loss"])), **per_kt),
                              coords=dict(K=keep, t=t)).expand_dims(s=[s], a=[a]))  # fmt: skip
    return xr.combine_by_coords(out)  # type: ignore[return-value]


LATE = (1e2, 1e3, 1e4)  # times t / K^s of the saturation regime: k*(t) = t^(1/s) >> K


@functools.partial(jax.jit, static_argnames=("K",))
def _regime(spectrum: PowerLaw, t: jax.Array, K: int) -> dict:
    """`regimes`' arrays at one (s, a), t = early then LATE times: the damage of truncating to
    K, its rounding bound, the tail energy, L(t) and the late asymptote (one program)."""
    q, theta = _gf_weights(spectrum, t)
    truncated = compression.loss(q, compression.truncate(q, theta, K=K))
    return dict(
        damage=truncated - compression.loss(q, theta), rounding=_rounding(spectrum, t=t, K=K),
        tail=0.5 * jnp.sum(spectrum.target_power()[K:]),  # 1/2 sum_(K<k<=M) v_k^2
        loss=theory.gf_loss(spectrum, t[-len(LATE) :]),
        asymptote=theory.compression.prune_loss_late(spectrum, K=K),
    )  # fmt: skip


def regimes(cfg: Config) -> xr.Dataset:
    """Per (s, a), at K = n_modes / 8: Delta L over t in [1e-3, 1e-2] K^s (k* << K, linear), its
    fitted exponent and the bound t lambda_(K+1) on its deviation from linear; Delta L / tail
    energy 1/2 sum_(K<k<=M) v_k^2 at t = LATE K^s (k* >> K, saturated) with the bound L(t) / tail
    on its deficit; the float64 rounding bounds relative to the damage (early, max) and the tail."""
    K = cfg.n_modes // 8
    out = []
    for s, a in itertools.product(cfg.s, cfg.a):
        t = np.r_[np.geomspace(1e-3, 1e-2, 10), LATE] * K**s
        arrays = {k: np.asarray(v) for k, v in _regime(PowerLaw(s=s, a=a, n_modes=cfg.n_modes),
                                                        t, K=K).items()}  # fmt: skip
        damage, rounding, tail = arrays["damage"], arrays["rounding"], float(arrays["tail"])
        early, late = slice(0, 10), slice(10, None)
        out.append(xr.Dataset(dict(
            early_damage=("early", damage[early]), early_t=("early", t[early]),
            early_slope=((), float(fit.power_law(t[early], damage[early]).exponent)),
            # 1 - exp(-x) in [x - x^2/2, x]: at most t lambda_(K+1) below linear in t
            early_bound=((), float(t[early][-1] * (K + 1) ** -s)),
            early_rounding=((), float(np.max(rounding[early] / damage[early]))),
            late_ratio=("late", damage[late] / tail),
            # tail - Delta L = 1/2 sum_(k>K) v_k^2 exp(-2 lambda_k t) <= L(t)
            late_bound=("late", arrays["loss"] / tail),
            late_rounding=("late", rounding[late] / tail),
            late_asymptote=((), float(arrays["asymptote"]) / tail),
        ), coords=dict(late=list(LATE))).expand_dims(s=[s], a=[a]))  # fmt: skip
    return xr.combine_by_coords(out)  # type: ignore[return-value]


# --- quantisation: random-target Monte Carlo -------------------------------------------------


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class QuantPoint:
    s: Float[Leaf, ""]
    a: Float[Leaf, ""]
    t: Float[Leaf, ""]
    step: Float[Leaf, ""]


def quantization(cfg: Config, options: sweep.Options | None = None) -> xr.Dataset:
    """Per (s, a, t, step) and seed: a GF model with target w*_k = k^((s-a)/2) |xi_k|, xi ~ N(0, 1)
    (E v_k^2 = k^-a, mantissas spread), trained to t and quantised with step Delta: the damage of
    rounding, the mean damage of n_dithers subtractive dithers (the dither's cross term is noisy),
    the pruning and perturbation pictures and the modes rounding zeroes; per float format, the
    damage of rounding into it, its high-resolution picture, the relative-error law at c = 1,
    (u^2/2) sum_k v_k^2 (1 - exp(-lambda_k t))^2 (ratio: implied c), the modes flushed. A float
    format ignores Delta, so each Delta point draws its own targets for the formats (the key
    folded with Delta's bits): the len(quant_steps) copies are that many times n_seeds
    independent targets (`_pooled_steps`)."""

    def run(point: QuantPoint, key):
        kx, kd = jax.random.split(key)
        dither_keys = jax.random.split(kd, cfg.n_dithers)
        k = jnp.arange(1, cfg.n_modes + 1, dtype=point.s.dtype)
        lam = k**-point.s
        xi = jax.random.normal(kx, (cfg.n_modes,), lam.dtype)
        spectrum = Empirical(lam, k**-point.a * xi**2)
        q, theta = _gf_weights(spectrum, point.t[None])
        theta = theta[0]
        base = compression.loss(q, theta)
        zeroed = jnp.abs(theta) < point.step / 2
        pruned = compression.loss(q, jnp.where(zeroed, 0.0, theta)) - base
        high_res = point.step**2 / 24 * jnp.sum(jnp.where(zeroed, 0.0, lam))
        out = {}
        bits = jax.lax.bitcast_convert_type(point.step.astype(jnp.float32), jnp.uint32)
        xf = jax.random.normal(jax.random.fold_in(kx, bits), (cfg.n_modes,), lam.dtype)
        targets = Empirical(lam, k**-point.a * xf**2)
        qf, theta_f = _gf_weights(targets, point.t[None])
        theta_f = theta_f[0]
        for name, format in FLOAT_FORMATS.items():
            rounded = compression.round_to(theta_f, format=format)
            out[name] = compression.loss(qf, rounded) - compression.loss(qf, theta_f)
            spacing = compression.ulp(theta_f, format=format)
            out[f"{name}_ulp_picture"] = theory.dithered_quantization_loss(targets, step=spacing)
            u = compression.unit_roundoff(format)
            out[f"{name}_unit_law"] = theory.relative_perturbation_loss(targets, t=point.t, u=u,
                                                                        c=1.0)  # fmt: skip
            out[f"{name}_zeroed"] = jnp.sum((rounded == 0).astype(lam.dtype))

        def dithered(key):  # mapped sequentially over dithers: memory per seed stays O(M)
            return compression.loss(q, compression.dither(theta, key, step=point.step))

        return dict(
            **out,
            rounding=compression.loss(q, compression.quantize(theta, step=point.step)) - base,
            dithered=jnp.mean(jax.lax.map(dithered, dither_keys)) - base,
            pruning_picture=pruned + high_res,
            perturbation_picture=theory.dithered_quantization_loss(spectrum, step=point.step),
            zeroed=jnp.sum(zeroed.astype(lam.dtype)),
        )

    def make(s, a, t, step):
        return QuantPoint(*(jnp.asarray(x, jnp.float64) for x in (s, a, t, step)))

    axes = dict(s=cfg.s, a=cfg.a, t=cfg.quant_times, step=cfg.quant_steps)
    grid = sweep.Grid(product=axes, n_seeds=cfg.n_seeds)
    data = (options or sweep.Options()).run("quantization", run, make, grid, seed=cfg.seed,
                                            config=dataclasses.asdict(cfg))  # fmt: skip
    return data.drop_vars("nonfinite").rename(t="quant_t", step="quant_step")


# --- generalised evolution: preconditioned GD and the diagonal network ----------------------


def evolution_runs(cfg: Config, options: sweep.Options | None = None) -> xr.Dataset:
    """Loss and frontier curves of preconditioned GD (dims rho, step) and of the diagonal network
    (dims diag_a, diag_step), simulated in float32, with the exact predictions beside them."""
    options = options or sweep.Options()
    steps = simulate.log_steps(cfg.evo_steps, cfg.n_records)

    def precond(params, key):
        obs = simulate.trajectory(
            evolution.preconditioned, simulate.float32(params), key, steps=steps
        )[1]
        exact = theory.evolution.preconditioned_gd_loss(
            params.spectrum, rho=params.rho, lr=params.lr, steps=jnp.asarray(steps)
        )
        return dict(evo_loss=obs.loss, evo_k_star=obs.k_star, evo_exact=exact)

    template = evolution.Params(PowerLaw(s=cfg.evo_s, a=cfg.evo_a, n_modes=cfg.evo_modes), lr=1.0)
    kwargs = dict(seed=cfg.seed, config=dataclasses.asdict(cfg))
    precond_data = options.run(
        "preconditioned", precond, sweep.make_from(template), sweep.Grid(product=dict(rho=cfg.rho)),
        dims={k: ("step",) for k in ("evo_loss", "evo_k_star", "evo_exact")},
        coords=dict(step=list(steps)), **kwargs,
    )  # fmt: skip

    diag_steps = simulate.log_steps(cfg.diag_steps, cfg.n_records)

    def diagonal(params, key):
        obs = simulate.trajectory(
            evolution.diagonal, simulate.float32(params), key, steps=diag_steps
        )[1]
        t = params.lr * jnp.asarray(diag_steps, jnp.result_type(params.lr, float))
        exact = theory.diagonal_loss(params.spectrum, t=t, init=params.init)
        frontier = theory.evolution.diagonal_frontier(params.spectrum, t=t, init=params.init)
        return dict(diag_loss=obs.loss, diag_k_star=obs.k_star, diag_exact=exact,
                    diag_exact_k_star=frontier)  # fmt: skip

    template = evolution.Params(PowerLaw(s=cfg.evo_s, a=cfg.diag_a[0], n_modes=cfg.diag_modes),
                                init=cfg.diag_init, lr=cfg.diag_lr)  # fmt: skip
    names = ("diag_loss", "diag_k_star", "diag_exact", "diag_exact_k_star")
    diag_data = options.run(
        "diagonal", diagonal, sweep.make_from(template),
        sweep.Grid(product={"spectrum.a": cfg.diag_a}),
        dims={k: ("diag_step",) for k in names}, coords=dict(diag_step=list(diag_steps)), **kwargs,
    ).rename({"spectrum.a": "diag_a"})  # fmt: skip
    merged = [d.drop_vars(["nonfinite", "seed"]).squeeze("seed") for d in (precond_data, diag_data)]
    return xr.merge(merged, combine_attrs="drop").astype(float)


@jax.jit
def _evolution_theory(spectrum: PowerLaw, rho: jax.Array, end: jax.Array) -> dict:
    """The preconditioned flow's predictions at one rho (traced: one program for every rho):
    the energy beyond the frontier and k* at the fit window's end, the loss exponent and the
    tail-dominance limit."""
    _, frontier_end = theory.evolution_frontier(spectrum, t=end, rho=rho)
    return dict(tail=theory.evolution.evolution_tail_loss(spectrum, t=end, rho=rho),
                frontier_end=frontier_end, exponent=theory.evolution_exponent(spectrum, rho=rho),
                tail_limit=theory.evolution_tail_limit(spectrum, rho=rho))  # fmt: skip


_zeta = jax.jit(zeta)  # Hurwitz zeta(a, m) = sum_(k>=m) k^-a: one program for every call


def evolution_fits(cfg: Config, evo: xr.Dataset) -> xr.Dataset:
    """Per rho (preconditioned GD) and per diag_a (diagonal network): fit windows, the fitted
    loss and frontier slopes, the tail-dominance ratio at the window's end and the predictions."""
    s = cfg.evo_s
    evo_rows, diag_rows = [], []
    spectrum = PowerLaw(s=s, a=cfg.evo_a, n_modes=cfg.evo_modes)
    beyond = 0.5 * float(_zeta(cfg.evo_a, cfg.evo_modes + 1.0))  # unlearned modes past M
    for rho in evo.rho.values:
        run = evo.sel(rho=rho)
        t = run.step.values * 1.0  # lr = 1
        loss, k_star = run.evo_loss.values, run.evo_k_star.values
        # window: k* >= K_LO, modes beyond M <= TAIL_SHARE of the loss, GD's lr / t <= GD_SHARE
        inside = (k_star >= K_LO) & (beyond / (loss + beyond) <= TAIL_SHARE) & (t * GD_SHARE >= 1.0)
        if inside.sum() < 3:
            raise ValueError(f"rho = {rho}: fewer than 3 records in the fit window; raise "
                             f"evo_steps or evo_modes")  # fmt: skip
        t_fit, end = t[inside], t[inside][-1]
        predicted = {k: float(v) for k, v in _evolution_theory(spectrum, rho, end).items()}
        evo_rows.append(dict(
            t_lo=t_fit[0], t_hi=end, loss_slope=-fit.loglog_slope(t_fit, loss[inside]),
            frontier_slope=fit.loglog_slope(t_fit, k_star[inside]), k_lo=k_star[inside][0],
            tail_ratio=loss[inside][-1] / predicted["tail"],
            tail_k_star=predicted["frontier_end"], exponent=predicted["exponent"],
            tail_limit=predicted["tail_limit"],
            exact_error=float(np.max(np.abs(loss / run.evo_exact.values - 1))),
        ))  # fmt: skip

    for a in evo.diag_a.values:
        run = evo.sel(diag_a=a)
        t = cfg.diag_lr * run.diag_step.values
        k_star = run.diag_k_star.values
        # Modes beyond M are still at init: by the logistic flow mode M + 1 has learned the
        # fraction f = 1 / (1 + (w*/init^2 - 1) exp(-2 lambda w* t)) of its target, decreasing in
        # k, so adding their energy 1/2 zeta(a, M + 1) gives the infinite spectrum's loss to a
        # relative 2 f of that tail, kept below TAIL_LEARNED. GD shifts a logistic transition by
        # ~lr r / 2 relative (r = 2 lambda w* ~ ln(w*/init^2) / t at the frontier): <= GD_SHARE.
        m = cfg.diag_modes + 1.0
        w_m, rate_m = m ** ((s - a) / 2), 2 * m ** ((s + a) / -2)
        learned = 1 / (1 + (w_m / cfg.diag_init**2 - 1) * np.exp(-rate_m * t))
        loss = run.diag_loss.values + 0.5 * float(_zeta(float(a), m))
        log_max = np.log(max(1.0, m ** ((s - a) / 2)) / cfg.diag_init**2)
        gd_shift = cfg.diag_lr * log_max / (2 * np.maximum(t, 1e-300))
        inside = (k_star >= K_LO) & (learned <= TAIL_LEARNED) & (gd_shift <= GD_SHARE)
        if inside.sum() < 3:
            raise ValueError(f"diag_a = {a}: fewer than 3 records in the fit window; raise "
                             f"diag_steps or diag_modes")  # fmt: skip
        k_fit = k_star[inside]
        slope = fit.loglog_slope(t[inside], k_fit)
        # ln t_k = ln(L_k / 2) + ((s + a)/2) ln k with L_k = ln(w*_k / init^2 - 1) =
        # ln(1/init^2) + ((s - a)/2) ln k - ...: the local elasticity is
        # [(s + a)/2 + (s - a)/(2 L_k)] / s, off the leading order by |s - a| / (2 s L_k).
        log_term = np.log(k_fit ** ((s - a) / 2) / cfg.diag_init**2 - 1)
        diag_rows.append(dict(
            t_lo=t[inside][0], t_hi=t[inside][-1], k_lo=k_fit[0], k_hi=k_fit[-1],
            rho_measured=1 / (s * slope), loss_slope=-fit.loglog_slope(t[inside], loss[inside]),
            rho_leading=float(theory.evolution.diagonal_rho(PowerLaw(s=s, a=a))),
            log_correction=float(np.max(np.abs(s - a) / (2 * s * log_term))),
        ))  # fmt: skip
    tables = (("evo", "rho", evo_rows), ("diag", "diag_a", diag_rows))
    return xr.merge([xr.Dataset({f"{p}_{k}": (dim, [r[k] for r in rows]) for k in rows[0]},
                                coords={dim: evo[dim].values})
                     for p, dim, rows in tables])  # fmt: skip


# --- claims ----------------------------------------------------------------------------------


def _prune_exact(d: xr.Dataset) -> dict:
    return dict(measured=d.prune_damage, predicted=d.prune_theory, tolerance=d.prune_rounding)


def _complementarity(d: xr.Dataset) -> dict:
    return dict(measured=d.gf_loss + d.prune_damage, predicted=d.pruned_theory,
                tolerance=d.prune_rounding)  # fmt: skip


def _monotone(d: xr.Dataset) -> dict:
    """Per step between records, the move against the claimed direction (0 if none): each end is
    within prune_rounding of exact, so an exactly monotone curve moves against it by at most the
    sum of the two bounds."""
    against = xr.concat(
        [(-d.prune_damage.diff("t")).clip(min=0.0),
         (d.gf_loss + d.prune_damage).diff("t").clip(min=0.0)],
        dim=xr.DataArray(["damage rises", "loss + damage falls"], dims="curve"),
    )  # fmt: skip
    tolerance = (d.prune_rounding + d.prune_rounding.shift(t=1)).isel(t=slice(1, None))
    return dict(measured=against, predicted=0.0, tolerance=tolerance)


def _linear_growth(d: xr.Dataset) -> dict:
    """1 - exp(-x) >= x - x^2/2 puts Delta L between (1 - t lambda_(K+1)) and 1 times its linear
    growth t sum_(k>K) lambda_k v_k^2 (early_bound): a one-sided deviation, moving the fitted
    slope by at most 1.5 eps / ln(t_hi / t_lo) (header); float64 rounding (two-sided) adds
    3 early_rounding / ln(t_hi / t_lo)."""
    span = xr.ufuncs.log(d.early_t.isel(early=-1) / d.early_t.isel(early=0))
    return dict(measured=-d.early_slope, predicted=xr.ones_like(d.early_slope),
                tolerance=(1.5 * d.early_bound + 3 * d.early_rounding) / span)  # fmt: skip


def _saturation(d: xr.Dataset) -> dict:
    """tail - Delta L = 1/2 sum_(k>K) v_k^2 exp(-2 lambda_k t) lies in [0, L(t)]: the ratio lies
    in [1 - late_bound, 1], widened by the rounding bound on each side."""
    return dict(measured=d.late_ratio, predicted=1 - d.late_bound / 2,
                tolerance=d.late_bound / 2 + d.late_rounding)  # fmt: skip


def _excess(criterion: str, a_gt_s: bool | None):
    """Criterion minus truncation damage over the initial loss 1/2 sum v_k^2 (a ratio of damages
    is ill-conditioned: the truncation damage at K near M is ~1e-17, a difference of two losses
    of order 1), at K < M (K = M prunes nothing), only a > s / a < s per a_gt_s. Where the
    criterion keeps modes 1..K both damages are within the rounding bound (plus the rotation's
    for the weight basis) of the same exact value."""

    def measure(d: xr.Dataset) -> dict:
        mask = d.K < d.attrs["n_modes"]
        if a_gt_s is not None:
            mask = mask & ((d.a > d.s) == a_gt_s)
        if not mask.any():
            where = "" if a_gt_s is None else f" at a {'>' if a_gt_s else '<'} s"
            raise claims.NotMeasured(f"no K < M{where}")
        initial = d.pruned_theory.sel(K=0)
        rounding = d.prune_rounding + d.get(f"{criterion}_rounding", d.prune_rounding)
        excess = (d[f"{criterion}_damage"] - d.prune_damage) / initial
        return dict(measured=excess, predicted=xr.zeros_like(excess).where(mask),
                    tolerance=rounding / initial)  # fmt: skip

    return measure


def _quant(name: str, picture: str):
    """The seed mean of `name` relative to `picture` (the same at every seed: tr Sigma is fixed)."""

    def measure(d: xr.Dataset) -> dict:
        if "seed" not in d.dims:
            raise claims.NotMeasured("no quantisation seeds")
        return dict(samples=d[name], predicted=d[picture].mean("seed"), relative=True,
                    tolerance=QUANT_MARGIN)  # fmt: skip

    return measure


def _pooled_steps(x: xr.DataArray) -> xr.DataArray:
    """A float format's samples with every Delta copy's targets as seeds (dim seed): each Delta
    point draws its own targets for the formats, which ignore Delta."""
    return x.rename(seed="target").stack(seed=("quant_step", "target"), create_index=False)


def _quant_ratio(name: str, picture: str, float_format: bool = False):
    """mean(name) / mean(picture) over seeds (the picture varies with the target: the seeds are
    resampled jointly) against 1; `float_format`: over every Delta copy's targets."""

    def measure(d: xr.Dataset) -> dict:
        if "seed" not in d.dims:
            raise claims.NotMeasured("no quantisation seeds")
        pair = xr.DataArray(["num", "den"], dims="part")
        parts = xr.concat([d[name], d[picture]], dim=pair)
        if float_format:
            parts = _pooled_steps(parts)

        def ratio(mean: xr.DataArray) -> xr.DataArray:  # one resample, or a block of them
            return mean.isel(part=0, drop=True) / mean.isel(part=1, drop=True)

        return dict(samples=parts.transpose("part", ..., "seed"), statistic=ratio,
                    predicted=1.0, tolerance=QUANT_MARGIN)  # fmt: skip

    return measure


def _preconditioned_exact(d: xr.Dataset) -> dict:
    """GD_ROUNDING x the last step n, relative, at every record."""
    return dict(measured=d.evo_loss, predicted=d.evo_exact, relative=True,
                tolerance=GD_ROUNDING * float(d.step.max()))  # fmt: skip


def _span(d: xr.Dataset, prefix: str) -> xr.DataArray:
    return xr.ufuncs.log(d[f"{prefix}_t_hi"] / d[f"{prefix}_t_lo"])


def _exponent(d: xr.Dataset) -> dict:
    """3 eps / ln(t_hi / t_lo) (header), eps: the modes beyond M (TAIL_SHARE), GD against the
    flow (GD_SHARE) and the smooth sum's discreteness at k* >= K_LO (1e-3, THEORY.md §2.2)."""
    tolerance = 3 * (TAIL_SHARE + GD_SHARE + 1e-3) / _span(d, "evo")
    return dict(measured=d.evo_loss_slope, predicted=d.evo_exponent, tolerance=tolerance)


def _frontier(d: xr.Dataset) -> dict:
    """The interpolated frontier's ln k* is off by at most s rho / (4 k^2) (tests/
    test_evolution.py), and GD's discretisation moves the crossing by ~1/t relative, below
    GD_SHARE: the 3 eps / ln(t_hi / t_lo) bound with that eps."""
    s, rho = d.attrs["evo_s"], d.rho
    tolerance = 3 * (s * rho / (4 * d.evo_k_lo**2) + GD_SHARE) / _span(d, "evo")
    return dict(measured=d.evo_frontier_slope, predicted=1 / (s * rho), tolerance=tolerance)


def _tail_dominance(d: xr.Dataset) -> dict:
    """floor(k*) makes the hard tail sum's continuum error (a - 1)/k* plus the Euler-Maclaurin
    endpoint (a - 1)/(2 k*); the window keeps the modes beyond M below TAIL_SHARE of the loss."""
    limit = d.evo_tail_limit
    tolerance = limit * (1.5 * (d.attrs["evo_a"] - 1) / d.evo_tail_k_star + TAIL_SHARE)
    return dict(measured=d.evo_tail_ratio, predicted=limit, tolerance=tolerance)


def _diagonal_rho(d: xr.Dataset) -> dict:
    """The log correction (diag_log_correction), plus the slope error from the logit
    interpolation (ln k* off by at most beta / (4 k^2), beta = s rho) and GD's shift, bounded
    by 3 eps / ln(t_hi / t_lo) and propagated to rho = 1 / (s slope) (d rho = rho^2 s d slope)."""
    s, rho = d.attrs["evo_s"], d.diag_rho_measured
    interp = 3 * (s * rho / (4 * d.diag_k_lo**2) + GD_SHARE) / _span(d, "diag")
    return dict(measured=rho, predicted=d.diag_rho_leading,
                tolerance=d.diag_log_correction + rho**2 * s * interp)  # fmt: skip


def _diagonal_exponent(d: xr.Dataset) -> dict:
    """The loss is a staircase while a transition spans about one mode: the hard tail's
    relative jump (a - 1)/k* at the window's start bounds its deviation from a power law; with
    the tail beyond M (2 TAIL_LEARNED) and GD's shift, 3 eps / ln(t_hi / t_lo)."""
    s, a = d.attrs["evo_s"], d.diag_a
    tolerance = 3 * (2 * TAIL_LEARNED + GD_SHARE + (a - 1) / d.diag_k_lo) / _span(d, "diag")
    return dict(measured=d.diag_loss_slope, predicted=(a - 1) / (s * d.diag_rho_measured),
                tolerance=tolerance)  # fmt: skip


def _derived(id: str, source: str, measure, statement: str) -> claims.Spec:
    """An exact claim whose tolerance is derived (beside its `measure`)."""
    return claims.Spec(id, source, statement, claims.exact, measure, tolerance_kind="derived")


_PRUNE = "P3 pruning = spectral truncation; THEORY.md §6.1"
_EXCESS = ("(damage minus truncation damage, relative to the initial loss, is 0 within float64 "
           "rounding) at every (s, a, K, t) with K < M (M = {cfg.n_modes} modes)")  # fmt: skip
_SAME_K = f"in the eigenbasis costs what truncation to the same K costs {_EXCESS}"
_RANDOM = "in expectation over random targets w*_k = k^((s-a)/2) |xi_k|, at every (s, a, t, Delta)"
_RATIO = f"within {QUANT_MARGIN:.0%} (ratio of the two seed means)"

# The claims this experiment checks (`spectral-sim list` shows them; [Pn]: a paper's claim).
CLAIMS = claims.Table(
    _derived("compression.prune_exact", f"{_PRUNE} [E]", _prune_exact,
             "[P3] eigenbasis truncation of the GF model to K modes costs 1/2 sum_(k>K) v_k^2 "
             "(1 - exp(-2 lambda_k t)) within float64 rounding, at every (s, a, K, t)"),
    _derived("compression.complementarity", "P3 complementarity; THEORY.md §6.3 [E]",
             _complementarity,
             "[P3] test loss + pruning damage = 1/2 sum_(k<=K) v_k^2 exp(-2 lambda_k t) + "
             "1/2 sum_(k>K) v_k^2 within float64 rounding, at every (s, a, K, t)"),
    _derived("compression.complementarity_monotone", "THEORY.md §6.3", _monotone,
             "at fixed K the pruning damage rises and test loss + damage falls in t: no step "
             "between consecutive records goes against its direction by more than float64 "
             "rounding, at every (s, a, K) and step"),
    _derived("compression.prune_linear_growth", "THEORY.md §6.1 (K >> k*)", _linear_growth,
             "pruning damage at K = M/8 >> k*(t) (M = {cfg.n_modes} modes) grows linearly in "
             "t: its exponent fitted over t in [1e-3, 1e-2] K^s is 1 within the bound from "
             "1 - exp(-x) >= x - x^2/2, at every (s, a)"),
    _derived("compression.prune_saturation", "THEORY.md §6.1 (K << k*)", _saturation,
             "pruning damage at K = M/8 << k*(t) (M = {cfg.n_modes} modes) saturates at the "
             "tail energy 1/2 sum_(K<k<=M) v_k^2: Delta L / tail lies in [1 - L(t) / tail, 1] "
             "(the unlearned kept modes' loss bounds the deficit; shown as its midpoint ± "
             "half-width), at every (s, a) and t = 1e2, 1e3, 1e4 K^s"),
    _derived("compression.saliency", f"{_PRUNE} (OBD)", _excess("saliency", None),
             f"[P3] saliency (OBD) pruning {_SAME_K}"),
    _derived("compression.magnitude_a_gt_s", _PRUNE, _excess("magnitude", True),
             f"[P3] magnitude pruning {_SAME_K} and a > s"),
    _derived("compression.magnitude_a_lt_s", _PRUNE, _excess("magnitude", False),
             f"[P3] magnitude pruning {_SAME_K} and a < s (THEORY.md expects FAIL: the learned "
             f"w*_k grow with k)"),
    _derived("compression.weight_basis", _PRUNE, _excess("weight_basis", None),
             f"[P3] magnitude pruning in a random orthonormal weight basis costs what eigenbasis "
             f"truncation to the same K costs {_EXCESS}, the rotation's rounding included "
             f"(THEORY.md expects FAIL)"),
    claims.Spec("compression.dithered", "THEORY.md §6.2 [E]",
                f"subtractively dithered quantisation (per random target, the mean over its "
                f"dithers) costs (Delta^2/24) tr Sigma within {QUANT_MARGIN:.0%} {_RANDOM}",
                claims.seed_mean, _quant("dithered", "perturbation_picture")),
    claims.Spec("compression.rounding_as_perturbation", "P3 quantization = spectral perturbation",
                f"[P3] deterministic rounding to step Delta costs (Delta^2/24) tr Sigma within "
                f"{QUANT_MARGIN:.0%} {_RANDOM}",
                claims.seed_mean, _quant("rounding", "perturbation_picture")),
    claims.Spec("compression.rounding_as_pruning", "THEORY.md §6.2",
                f"deterministic rounding costs the exact damage of zeroing |w_k| < Delta/2 plus "
                f"(Delta^2/24) lambda_k on the other modes {_RATIO} {_RANDOM}",
                claims.seed_statistic, _quant_ratio("rounding", "pruning_picture")),
    *(claims.Spec(f"compression.{name}_rounding", "THEORY.md §6.2 (quantisation = perturbation)",
                  f"round-to-nearest into {format} costs sum_k lambda_k ulp(w_k)^2 / 24 (an error "
                  f"uniform on half the format's spacing) {_RATIO} in expectation over random "
                  f"targets (each Delta point draws its own for the formats: len(quant_steps) x "
                  f"{{cfg.n_seeds}} per point), at every (s, a, t)", claims.seed_statistic,
                  _quant_ratio(name, f"{name}_ulp_picture", float_format=True))
      for name, format in FLOAT_FORMATS.items()),
    claims.Spec("evolution.preconditioned_exact", "THEORY.md §2.10 [E]",
                "preconditioned GD (float32) follows 1/2 sum v_k^2 (1 - lambda_k^rho)^(2n) within "
                "2 n u32 relative (u32 = 2^-24, n = {cfg.evo_steps}, the last step), at every "
                "record of every rho",
                claims.exact, _preconditioned_exact),
    _derived("evolution.exponent", "P3; THEORY.md §2.10 [A]", _exponent,
             "[P3] L(t) ~ t^-(a-1)/(s rho) under g = lambda^rho t (preconditioned GD, the loss "
             "exponent fitted over each rho's window), at every rho"),
    _derived("evolution.frontier", "P3 learning frontier; THEORY.md §2.10", _frontier,
             "[P3] the half-learned frontier moves as k*(t) ~ t^(1/(s rho)) (fitted slope over "
             "each rho's window), at every rho"),
    _derived("evolution.tail_dominance", "P3 Prop. 2; THEORY.md §2.10", _tail_dominance,
             "[P3] L(t) / (1/2 sum_(k>k*) k^-a) -> Gamma(1+c) 2^-c, c = (a-1)/(s rho), at the end "
             "of each rho's fit window"),
    _derived("evolution.diagonal_rho", "THEORY.md §2.10 (our derivation for w = u * v)",
             _diagonal_rho,
             "the diagonal network's elasticity, measured from the frontier's motion, is "
             "(s + a)/(2s) to leading order in 1/ln(1/init^2) (u = v = init = {cfg.diag_init} "
             "at the start), at every target exponent a"),
    _derived("evolution.diagonal_exponent", "P3 (the exponent depends only on rho)",
             _diagonal_exponent,
             "[P3] the diagonal network's loss decays as t^-(a-1)/(s rho) with its measured rho, "
             "i.e. L ~ k*^(1-a) as tail dominance says, at every target exponent a"),
    config=Config,
)  # fmt: skip


def notes(quant: xr.Dataset, fits: xr.Dataset, n_modes: int) -> list[str]:
    """What the verdicts rest on: modes zeroed by rounding, the fit windows."""

    def extent(x: xr.DataArray, spec: str = ".1f") -> str:
        return f"{float(x.min()):{spec}} to {float(x.max()):{spec}}"

    out = []
    for name, format in FLOAT_FORMATS.items():
        mean = {v: _pooled_steps(quant[f"{name}{v}"]).mean("seed")
                for v in ("", "_unit_law", "_zeroed")}  # fmt: skip
        implied = mean[""] / mean["_unit_law"]
        out.append(f"{format}: flushes {extent(mean['_zeroed'])} modes to 0 "
                   f"on average; implied c of the relative-error law (THEORY.md §6.2) "
                   f"{extent(implied, '.3f')} (log-uniform mantissas: "
                   f"{compression.LOG_UNIFORM_C:.3f})")  # fmt: skip
    out.append(f"deterministic rounding zeroes {extent(quant.zeroed.mean('seed'))} of the "
               f"{n_modes} modes on average, depending on (s, a, t, Delta)")  # fmt: skip
    for rho in fits.rho.values:
        d = fits.sel(rho=rho)
        out.append(f"preconditioned rho = {rho:g}: fit window t in [{float(d.evo_t_lo):.3g}, "
                   f"{float(d.evo_t_hi):.3g}], loss exponent {float(d.evo_loss_slope):.4f} "
                   f"(predicted {float(d.evo_exponent):.4f}), frontier slope "
                   f"{float(d.evo_frontier_slope):.4f}")  # fmt: skip
    for a in fits.diag_a.values:
        d = fits.sel(diag_a=a)
        out.append(f"diagonal network a = {a:g}: k* in [{float(d.diag_k_lo):.1f}, "
                   f"{float(d.diag_k_hi):.1f}], measured rho {float(d.diag_rho_measured):.4f} "
                   f"(leading order {float(d.diag_rho_leading):.4f}, log correction up to "
                   f"{float(d.diag_log_correction):.4f}), loss exponent "
                   f"{float(d.diag_loss_slope):.4f}")  # fmt: skip
    return out


# --- figures and run -------------------------------------------------------------------------


def figures(prune: xr.Dataset, evo: xr.Dataset, cfg: Config) -> dict:
    import matplotlib.figure

    pairs = list(itertools.product(prune.s.values, prune.a.values))
    heat = matplotlib.figure.Figure(figsize=(4.2 * len(pairs), 3.8), layout="constrained")
    axes = np.atleast_1d(heat.subplots(1, len(pairs), squeeze=False)[0])
    for ax, (s, a) in zip(axes, pairs, strict=True):
        damage = prune.prune_damage.sel(s=s, a=a).sel(K=prune.K[prune.K > 0])
        shown = np.log10(np.maximum(damage.values, 1e-300))
        mesh = ax.pcolormesh(damage.t, damage.K, shown, vmin=max(shown.max() - 12, shown.min()),
                             shading="nearest", cmap="viridis")  # fmt: skip
        t = damage.t.values
        ax.plot(t, np.minimum(t ** (1 / s), cfg.n_modes), "w--", lw=1, label="k*(t) = t^(1/s)")
        ax.set(xscale="log", yscale="log", xlabel="training time t", ylabel="kept modes K",
               title=f"log10 ΔL_prune, s = {s:g}, a = {a:g}")  # fmt: skip
        ax.legend(fontsize=7, loc="lower right")
        heat.colorbar(mesh, ax=ax)

    curves = matplotlib.figure.Figure(figsize=(13, 4), layout="constrained")
    ax_loss, ax_front, ax_diag = curves.subplots(1, 3)
    step = evo.step.values
    for j, rho in enumerate(evo.rho.values):
        run, color = evo.sel(rho=rho), f"C{j}"
        ax_loss.plot(step, run.evo_loss, color=color, lw=1.5, label=f"ρ = {rho:g} (GD, float32)")
        ax_loss.plot(step, run.evo_exact, color="k", ls=":", lw=1)
        # the frontier: where the half-learned count passes K_LO and 10 K_LO
        for k in (K_LO, 10 * K_LO):
            hit = np.nonzero(run.evo_k_star.values >= k)[0]
            if hit.size:
                ax_loss.plot(step[hit[0]], run.evo_loss.values[hit[0]], "o", color=color, ms=4)
        ax_front.plot(step, run.evo_k_star, color=color, lw=1.5, label=f"ρ = {rho:g}")
        ax_front.plot(step, (step / np.log(2)) ** (1 / (cfg.evo_s * rho)), color="k", ls=":", lw=1)
    ax_loss.set(xscale="log", yscale="log", xlabel="step (t = step)", ylabel="loss",
                title="preconditioned GD: loss (dots: k* = 10, 100)")  # fmt: skip
    ax_front.set(xscale="log", yscale="log", xlabel="step", ylabel="frontier k*(t)",
                 title="half-learned frontier; dotted (t/ln 2)^(1/(sρ))")  # fmt: skip
    t_diag = cfg.diag_lr * evo.diag_step.values
    for j, a in enumerate(evo.diag_a.values):
        run = evo.sel(diag_a=a)
        ax_diag.plot(t_diag, run.diag_loss, color=f"C{j}", lw=1.5, label=f"a = {a:g}")
        ax_diag.plot(t_diag, run.diag_exact, color="k", ls=":", lw=1)
    ax_diag.set(xscale="log", yscale="log", xlabel="time t = lr step", ylabel="loss",
                title=f"diagonal net w = u·v, s = {cfg.evo_s:g} (dotted: logistic)")  # fmt: skip
    for ax in (ax_loss, ax_front, ax_diag):
        ax.legend(fontsize=7)
    return dict(prune_heatmap=heat, evolution=curves)


def run(cfg: Config, options: sweep.Options | None = None) -> Report:
    cfg = scaled(cfg, QUICK, PAPER)
    check(cfg)
    # The exact claims resolve 1e-9 and need float64 whatever the caller's setting; the
    # evolution sweeps cast their Params to float32 themselves.
    with jax.enable_x64(True):
        prune = pruning(cfg)
        reg = regimes(cfg)
        quant = quantization(cfg, options)  # sweeps (resumable)
        evo = evolution_runs(cfg, options)
        fits = evolution_fits(cfg, evo)
    data = xr.merge([prune, reg, quant, evo, fits], combine_attrs="drop")
    data.attrs.update(n_modes=cfg.n_modes, evo_s=cfg.evo_s, evo_a=cfg.evo_a)  # for the claims
    return Report(experiment="compression", claims=CLAIMS.evaluate(data, config=cfg), data=data,
                  figures=figures(prune, evo, cfg), config=dataclasses.asdict(cfg), seed=cfg.seed,
                  notes=notes(quant, fits, cfg.n_modes))  # fmt: skip


if __name__ == "__main__":  # the same as `spectral-sim run compression [flags]`
    from spectral_sim import cli

    sys.exit(cli.main(["run", "compression", *sys.argv[1:]]))
