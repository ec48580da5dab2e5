"""Validity maps: searches that locate where a theorem stops holding, against theory's boundary.

Each search is `spectral_sim.validity.search` over a box, deciding every sampled point with the
claim engine. Its located boundary is then compared with the boundary theory gives.

Four boundaries are mapped. The first is [P0]'s rate of residual attention with a fixed
reversible P (THEORY.md §3.1-3.2). The P matrices are Laplace kernels on random positions, drawn
as attention_clusters draws them.
- The measured quantity is the worst-case contraction per layer of the deviation from
  consensus under X + eps (P X - X): the pi-norm of the L-layer map, read from tokens that
  start at I - 1 pi^T (every direction at once).
- M = (1 - eps) I + eps P is self-adjoint in the pi inner product, so ||M^L||_pi = R^L exactly,
  with R = max_(i>=2) |1 - eps (1 - mu_i)|. The measured rate is R, with no transient from
  slower modes.
- R equals [P0]'s 1 - eps lambda_2 up to eps* = 2 / (2 - mu_2 - mu_n). Past it, the
  over-relaxed mode mu_n sets the rate.
- So R leaves 1 - eps lambda_2 by more than `rate_tol` exactly past
  eps_tol = (2 + rate_tol) / (2 - mu_2 - mu_n).
- The search must find that crossing within the resolution it reports.

And magnitude pruning of the gradient-flow model w_k(t) = w*_k (1 - e^(-lambda_k t)) in its
eigenbasis (THEORY.md §6.1):
- Keeping the K largest |w_k| equals keeping modes 1..K, so its damage equals the truncation
  damage `theory.compression.prune_loss`, iff a > s on the learned modes (w*_k = k^((s-a)/2)).
- The search over a locates where the two damages part. Theory's boundary is s.
- The exact crossing a_b, where the K largest |w_k(t)| stop being the first K, is computed from
  the same w(t) by bisection. It differs from s only by the learning factor's slope (below
  1e-9 here), which the claim's tolerance adds to the resolution.

One-pass SGD against its exact recursion `theory.linear.sgd` (THEORY.md §2.4, §8):
- The recursion gives E L exactly at every lr; it converges iff chi < 1, below the critical lr.
  What a check can see is the seed mean of n runs, and near chi = 1 the loss is heavy-tailed:
  the mean is carried by rare large runs that n seeds mostly miss.
- One search over [0.05, sgd_safe] x the critical lr checks THEORY.md §8's rule that the seed
  mean agrees up to half the critical lr. A second over [sgd_safe, 1.5] x it finds where the
  agreement ends (its last PASS and first FAIL, in the notes), and checks that past the
  critical lr the seed mean falls short of E L at every point: the boundary the recursion
  predicts for E L is one typical runs do not show.

The additive residual X + eps A(X) X under softmax attention (THEORY.md §3.2, §8), with its
(1 + eps)^l growth divided out. For a fixed P its rate is 1 - eps' lambda_2, eps' = eps /
(1 + eps); uniform attention (beta = 0) has lambda_2 = 1, so the substituted rate is
1 / (1 + eps). The search is over beta. Theory's boundary, to first order in beta:
- Write the tokens as x_i = m + delta_i, with m their mean. The row-normalised attention is
  A_ij = (1 + beta delta_i . delta_j) / n + O(beta^2): m cancels, however large (1 + eps)^l
  makes it.
- The deviation then moves by delta_i <- delta_i + eps beta C delta_i, C = (1/n) sum_j delta_j
  delta_j^T. Over layers L/2..L the growth-divided distance contracts at
  (1 + eps beta q) / (1 + eps), q = tr(C^2) / tr(C) of the initial tokens.
- So the substitution leaves the tolerance at beta_tol = soft_tol (1 + eps) / (eps E q). E q
  comes from SPREAD_DRAWS draws of `attention.init`.
- The search must find that crossing within its resolution. Where (1 + eps)^L is large
  (eps = 0.5, L = 40) the attention hardens onto one token common to every row. Each row
  then mixes in the same vector, and the deviation shrinks below first order: outside the
  claim's eps.
"""

import dataclasses
import functools
import sys
from typing import Any, cast

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from spectral_sim import PowerLaw, claims, simulate, sweep, theory, validity
from spectral_sim._types import Swept
from spectral_sim.diagnostics import compression
from spectral_sim.models import attention, linear
from spectral_sim.registry import scaled
from spectral_sim.report import Report

from .attention_clusters import kernel_p

# Magnitude pruning keeps the same K modes as truncation or not: the damages agree to float64
# rounding or differ by O(1) (6.7x truncation's just below a = s). PRUNE_TOL, relative, sits
# between the two (judgement of where "equal" ends; either side of it gives one crossing).
PRUNE_TOL = 1e-6
# E q of the initial tokens, from this many draws: its relative SE (about 4e-4 at 16 x 8 tokens)
# moves the first-order softmax boundary by that share, far inside the search's resolution.
SPREAD_DRAWS = 2**16
# The simulated rate is R to float64 rounding: L layers of an n x n map move it by about n u
# per layer, relative (u = 2^-53), so the PASS/FAIL crossing sits at eps_tol to ~1e-13. The
# claim's tolerance is the search's resolution, the half-gap the crossing is bracketed by
# (derived).


@dataclasses.dataclass(frozen=True)
class Config:
    n_tokens: int = 16
    """Tokens (and the size of P)."""
    bandwidth: tuple[float, ...] = (0.5, 1.0, 1.5)
    """Laplace-kernel bandwidths h of K_ij = exp(-|y_i - y_j| / h), y_i ~ N(0, I_2)."""
    n_kernels: int = 3
    """Random position draws (P matrices) per bandwidth."""
    eps_low: float = 0.5
    eps_high: float = 1.99
    """The box of residual steps searched (stable below 2 / (1 - mu_n) >= 2)."""
    rate_tol: float = 1e-3
    """The margin by which the rate may leave 1 - eps lambda_2 (absolute)."""
    layers: int = 20
    budget: int = 64
    """Evaluated points per search."""
    prune_s: tuple[float, ...] = (1.5, 2.5)
    """Spectral decays s of the pruning searches (one search over a per s)."""
    prune_span: float = 0.45
    """Each pruning search covers a in [s - prune_span, s + prune_span]."""
    prune_modes: int = 2000
    prune_keep: int = 20
    """K: the modes magnitude pruning keeps (K << k*(t) = t^(1/s): the learned modes)."""
    prune_time: float = 1e4
    sgd_s: tuple[float, ...] = (1.5, 2.0)
    """Spectral decays s (= a) of the one-pass SGD searches."""
    sgd_modes: int = 64
    sgd_batch: int = 8
    sgd_noise: float = 0.01
    sgd_steps: int = 200
    """The loss is recorded at sgd_steps / 2 and sgd_steps."""
    sgd_seeds: int = 1024
    sgd_budget: int = 64
    """Evaluated points per SGD search (the SGD runs are most of the experiment's cost)."""
    sgd_tol: float = 0.05
    """Relative tolerance of the seed mean against the recursion."""
    sgd_safe: float = 0.5
    """The rule checked: the seed mean agrees with the recursion up to sgd_safe x the critical
    lr (searched from 0.05 x). The boundary search covers [sgd_safe, 1.5] x the critical lr."""
    soft_eps: tuple[float, ...] = (0.1, 0.2)
    """Residual steps of the softmax searches over beta (one search per eps)."""
    soft_tokens: int = 16
    soft_dim: int = 8
    soft_layers: int = 40
    soft_tol: float = 1e-4
    """The margin by which the growth-divided rate may leave 1 / (1 + eps) (absolute). Small,
    so that beta_tol is: at soft_tol = 1e-3 the second order moved the crossing 10 % below
    first order at eps = 0.1, more than the resolution; at 1e-4 it stays within 0.4 of it."""
    soft_seeds: int = 64
    beta_low: float = 1e-5
    beta_high: float = 2.0
    seed: int = 0
    quick: bool = False
    """CPU-minute scale (`make run`, tests): fields left at their defaults take QUICK values."""
    paper: bool = False
    """The papers' scale (`--scale paper`, meant for a GPU): fields left at their defaults take
    PAPER values. The defaults are the full scale: at most 30 minutes on 2 CPU cores."""


QUICK = dict(bandwidth=(1.0,), n_kernels=2, budget=32, prune_s=(1.5,), sgd_s=(1.5,),
             sgd_seeds=512, sgd_steps=100, sgd_budget=16, soft_eps=(0.2,))  # fmt: skip
# The paper scale: [P0] and [P3] give no sizes; more tokens, draws, decays and points per search.
PAPER = dict(n_tokens=64, n_kernels=8, budget=256, prune_s=(1.25, 1.5, 2.0, 2.5, 3.0),
             sgd_s=(1.25, 1.5, 2.0, 3.0), sgd_modes=1024, sgd_seeds=4096,
             soft_seeds=256)  # fmt: skip


def check(cfg: Config) -> None:
    """Reject bad configs with the field name and valid range, before anything compiles."""
    if len(cfg.bandwidth) == 0 or min(cfg.bandwidth) <= 0:
        raise ValueError(f"bandwidth must list values > 0; got {cfg.bandwidth}")
    if not 0 < cfg.eps_low < cfg.eps_high < 2:
        raise ValueError(f"eps_low and eps_high must satisfy 0 < eps_low < eps_high < 2 (stable "
                         f"steps); got {cfg.eps_low}, {cfg.eps_high}")  # fmt: skip
    if not cfg.rate_tol > 0:
        raise ValueError(f"rate_tol must be > 0; got {cfg.rate_tol}")
    if len(cfg.prune_s) == 0 or min(cfg.prune_s) - cfg.prune_span <= 0:
        raise ValueError(f"prune_s must list values above prune_span = {cfg.prune_span} (a > 0 "
                         f"on the box); got {cfg.prune_s}")  # fmt: skip
    if not (cfg.prune_span > 0 and cfg.prune_time > 0):
        raise ValueError(f"prune_span and prune_time must be > 0; got {cfg.prune_span}, "
                         f"{cfg.prune_time}")  # fmt: skip
    if not 1 <= cfg.prune_keep < cfg.prune_modes:
        raise ValueError(f"prune_keep must be in [1, prune_modes); got {cfg.prune_keep}")
    if len(cfg.sgd_s) == 0 or min(cfg.sgd_s) <= 1:
        raise ValueError(f"sgd_s must list values > 1 (a summable spectrum); got {cfg.sgd_s}")
    if not 0.05 < cfg.sgd_safe < 1:
        raise ValueError(f"sgd_safe must be in (0.05, 1) (a share of the critical lr); got "
                         f"{cfg.sgd_safe}")  # fmt: skip
    if not (0 < cfg.sgd_tol < 1 and cfg.soft_tol > 0 and cfg.sgd_noise >= 0):
        raise ValueError(f"sgd_tol must be in (0, 1), soft_tol > 0 and sgd_noise >= 0; got "
                         f"{cfg.sgd_tol}, {cfg.soft_tol}, {cfg.sgd_noise}")  # fmt: skip
    if len(cfg.soft_eps) == 0 or min(cfg.soft_eps) <= 0:
        raise ValueError(f"soft_eps must list values > 0; got {cfg.soft_eps}")
    if not 0 < cfg.beta_low < cfg.beta_high:
        raise ValueError(f"beta_low and beta_high must satisfy 0 < beta_low < beta_high; got "
                         f"{cfg.beta_low}, {cfg.beta_high}")  # fmt: skip
    lows = dict(n_tokens=3, n_kernels=1, layers=1, budget=2 * validity.ROUNDS,
                sgd_budget=2 * validity.ROUNDS, sgd_modes=2,
                sgd_batch=1, sgd_steps=2, sgd_seeds=2, soft_tokens=2, soft_dim=1,
                soft_layers=4, soft_seeds=2)  # fmt: skip
    for name, low in lows.items():
        if getattr(cfg, name) < low:
            raise ValueError(f"{name} must be >= {low}; got {getattr(cfg, name)}")


def worst_case_rate(params: attention.Params, layers: int) -> dict:
    """R measured: the pi-norm of the `layers`-layer map on the deviation from consensus,
    (||Pi^1/2 M^L (I - 1 pi^T) Pi^-1/2||_2)^(1/L), the tokens starting at I - 1 pi^T."""
    assert params.P is not None  # attention="fixed" (the Params refuse it without P)
    pi = attention.stationary(params.P)
    x = jnp.eye(params.n_tokens) - pi[None, :]  # row i: token i's deviation of e_i
    state = attention.State(x, jnp.zeros((), jnp.int32))
    final = jax.lax.fori_loop(0, layers, lambda _, s: attention.step(params, s, None)[0], state)
    root = jnp.sqrt(pi)
    mapped = root[:, None] * final.x / root[None, :]
    return dict(rate=jnp.linalg.norm(mapped, ord=2) ** (1 / layers))


def gap_rate(params: attention.Params) -> jax.Array:
    """[P0]: the tokens contract at 1 - eps lambda_2."""
    assert params.P is not None
    return 1 - params.eps * theory.attention_gap(params.P)


_kernel = jax.jit(kernel_p, static_argnames=("n_tokens", "seed"))  # one program for every P
_limit = jax.jit(theory.attention.gap_rate_limit)
_critical = jax.jit(theory.linear.critical_lr)  # one program for every s


def _crossing(found: validity.ValidityMap, axis: str) -> tuple[float, float, int]:
    """The search's one crossing along `axis` and its resolution (NaN unless there is exactly
    one), and how many it found."""
    crossings = list(zip(found.boundary(axis), found.resolution(axis), strict=True))
    located, resolution = crossings[0] if len(crossings) == 1 else (np.nan, np.nan)
    return located, resolution, len(crossings)


def gap_rate_maps(cfg: Config, options: sweep.Options | None = None) -> xr.Dataset:
    """One search over eps per P: every sampled point's error |R - (1 - eps lambda_2)|, and the
    located crossing with its resolution beside eps* and eps_tol."""
    rows = []
    for bandwidth in cfg.bandwidth:
        for draw in range(cfg.n_kernels):
            P = _kernel(n_tokens=cfg.n_tokens, bandwidth=bandwidth, draw=draw, seed=cfg.seed)
            template = attention.Params(n_tokens=cfg.n_tokens, dim=cfg.n_tokens,
                                        attention="fixed", P=P, deviation=True)  # fmt: skip
            found = validity.search(
                lambda p, key: worst_case_rate(p, cfg.layers), template,
                {"eps": (cfg.eps_low, cfg.eps_high)}, gap_rate, observable="rate",
                tolerance=cfg.rate_tol, relative=False, n_seeds=1, budget=cfg.budget,
                seed=cfg.seed, options=_named(options, f"gap_rate_h{bandwidth:g}_d{draw}"),
            )  # fmt: skip
            eps_star = float(_limit(P))  # 2 / (2 - mu_2 - mu_n)
            located, resolution, crossings = _crossing(found, "eps")
            samples = found.samples
            rows.append(xr.Dataset(
                dict(
                    error=("sample", np.abs(samples.measured.values - samples.predicted.values)),
                    eps=("sample", samples.eps.values), origin=("sample", samples.origin.values),
                    located=((), located), resolution=((), resolution),
                    crossings=((), crossings), eps_star=((), eps_star),
                    eps_tol=((), eps_star * (2 + cfg.rate_tol) / 2),
                ),
            ).expand_dims(bandwidth=[bandwidth], draw=[draw]))  # fmt: skip
    return xr.combine_by_coords(rows)  # type: ignore[return-value]


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Pruning:
    """The GF model on `spectrum` at time t, magnitude-pruned to K modes in its eigenbasis."""

    spectrum: PowerLaw
    t: Swept = 1e4
    K: int = dataclasses.field(default=20, metadata=dict(static=True))


def magnitude_damage(params: Pruning, key) -> dict:
    """Loss increase from keeping the K largest |w_k(t)| (diagnostics.compression.prune)."""
    model = linear.Params(params.spectrum)
    q, theta = compression.trained(model, linear.gf(model, jnp.asarray([params.t]))[0])
    pruned = compression.prune(q, theta, K=params.K)
    return dict(damage=(compression.loss(q, pruned) - compression.loss(q, theta))[0])


def truncation_damage(params: Pruning) -> jax.Array:
    """THEORY.md §6.1: pruning is truncation, keeping modes 1..K."""
    return theory.compression.prune_loss(params.spectrum, t=params.t, K=params.K)


def magnitude_order_boundary(s: float, t: float, K: int, modes: int, low: float,
                             high: float) -> float:  # fmt: skip
    """The a above which the K largest |w_k(t)| = k^((s-a)/2) (1 - e^(-k^-s t)) are modes
    1..K (bisection to float64 resolution; the order only improves as a grows)."""
    k = np.arange(1, modes + 1, dtype=float)
    learned = -np.expm1(-(k**-s) * t)

    def ordered(a: float) -> bool:
        w = k ** ((s - a) / 2) * learned
        return bool(w[:K].min() >= w[K:].max())

    for _ in range(200):
        middle = (low + high) / 2
        low, high = (low, middle) if ordered(middle) else (middle, high)
    return high


def pruning_maps(cfg: Config, options: sweep.Options | None = None) -> xr.Dataset:
    """One search over a per s: where magnitude pruning's damage leaves truncation's (relative
    PRUNE_TOL), the located crossing with its resolution, beside s and the exact a_b."""
    rows = []
    for s in cfg.prune_s:
        low, high = s - cfg.prune_span, s + cfg.prune_span
        template = Pruning(PowerLaw(s=s, a=s, n_modes=cfg.prune_modes), t=cfg.prune_time,
                           K=cfg.prune_keep)  # fmt: skip
        found = validity.search(
            magnitude_damage, template, {"spectrum.a": (low, high)}, truncation_damage,
            observable="damage", tolerance=PRUNE_TOL, n_seeds=1, budget=cfg.budget,
            seed=cfg.seed, options=_named(options, f"pruning_s{s:g}"),
        )  # fmt: skip
        located, resolution, crossings = _crossing(found, "spectrum.a")
        exact = magnitude_order_boundary(s, cfg.prune_time, cfg.prune_keep, cfg.prune_modes,
                                         low, high)  # fmt: skip
        rows.append(xr.Dataset(dict(
            prune_located=((), located), prune_resolution=((), resolution),
            prune_crossings=((), crossings), prune_exact=((), exact),
        )).expand_dims(prune_s=[s]))  # fmt: skip
    return xr.combine_by_coords(rows)  # type: ignore[return-value]


def sgd_maps(cfg: Config, options: sweep.Options | None = None) -> xr.Dataset:
    """Per s, two searches over lr of one-pass SGD's seed mean against the exact recursion
    `theory.linear.sgd` (THEORY.md §2.4): the box [0.05, sgd_safe] x the critical lr, and
    [sgd_safe, 1.5] x it. Every point's seeds and predictions, lr in units of the critical lr."""
    steps = [cfg.sgd_steps // 2, cfg.sgd_steps]
    predict = functools.partial(theory.linear.sgd, steps=steps)  # one program for every search
    rows = []
    for s in cfg.sgd_s:
        template = linear.Params(PowerLaw(s=s, a=s, n_modes=cfg.sgd_modes), batch=cfg.sgd_batch,
                                 noise=cfg.sgd_noise)  # fmt: skip
        critical = float(_critical(template))
        boxes = dict(safe=(0.05, cfg.sgd_safe), beyond=(cfg.sgd_safe, 1.5))
        for box, (low, high) in boxes.items():
            found = validity.search(
                linear, template, {"lr": (low * critical, high * critical)}, predict,
                observable="loss", tolerance=cfg.sgd_tol, steps=steps, n_seeds=cfg.sgd_seeds,
                budget=cfg.sgd_budget, seed=cfg.seed, options=_named(options, f"sgd_s{s:g}_{box}"),
            )  # fmt: skip
            kept = _kept(found, "sgd", dict(sgd_lr=found.samples.lr / critical),
                         entries=("sgd_step", steps))  # fmt: skip
            rows.append(kept.expand_dims(sgd_s=[s], sgd_box=[box]))
    return cast(xr.Dataset, xr.merge(rows, join="outer", compat="no_conflicts"))


def token_spread(params: attention.Params, draws: int, seed: int) -> tuple[float, float]:
    """E q, q = tr(C^2) / tr(C) with C the covariance of the initial tokens (attention.init), and
    its standard error, from `draws` independent draws."""
    q = np.asarray(_spreads(params, jax.random.key(seed), draws))
    return float(q.mean()), float(q.std(ddof=1) / np.sqrt(draws))


@functools.partial(jax.jit, static_argnames="draws")
def _spreads(params: attention.Params, key, draws: int) -> jax.Array:
    x = jax.vmap(lambda k: attention.init(params, k).x)(jax.random.split(key, draws))
    deviation = x - x.mean(1, keepdims=True)
    c = jnp.einsum("bni,bnj->bij", deviation, deviation) / params.n_tokens
    return jnp.einsum("bij,bji->b", c, c) / jnp.einsum("bii->b", c)


def growth_divided_rate(params: attention.Params, key, layers: int) -> dict:
    """The late-half rate of X + eps A(X) X with its (1 + eps)^l growth divided out:
    (d_L / d_(L/2))^(1 / (L - L/2)) of the distance from consensus d_l / (1 + eps)^l."""
    obs = simulate.trajectory(attention, params, key, n_records=layers)[1]
    distance = obs.distance / (1 + params.eps) ** jnp.arange(1, layers + 1)
    half = layers // 2
    return dict(rate=(distance[-1] / distance[half - 1]) ** (1 / (layers - half)))


def substituted_rate(params: attention.Params) -> jax.Array:
    """THEORY.md §3.2's substitution for a fixed P, carried to softmax: 1 - eps' with
    eps' = eps / (1 + eps), the uniform attention's gap being 1."""
    return jnp.asarray(1 / (1 + params.eps))


def softmax_maps(cfg: Config, options: sweep.Options | None = None) -> xr.Dataset:
    """Per eps, a search over beta (log) of the substituted rate against the simulated one, with
    the first-order boundary beta_tol = soft_tol (1 + eps) / (eps E q)."""
    rows = []
    # E q of the initial tokens: attention.init does not read eps, so one estimate serves all
    tokens = attention.Params(n_tokens=cfg.soft_tokens, dim=cfg.soft_dim, residual="additive")
    spread, spread_se = token_spread(tokens, SPREAD_DRAWS, cfg.seed)
    for eps in cfg.soft_eps:
        template = attention.Params(n_tokens=cfg.soft_tokens, dim=cfg.soft_dim, eps=eps,
                                    residual="additive")  # fmt: skip
        found = validity.search(
            lambda p, key: growth_divided_rate(p, key, cfg.soft_layers), template,
            {"beta": (cfg.beta_low, cfg.beta_high, "log")}, substituted_rate, observable="rate",
            tolerance=cfg.soft_tol, relative=False, n_seeds=cfg.soft_seeds, budget=cfg.budget,
            seed=cfg.seed, options=_named(options, f"softmax_eps{eps:g}"),
        )  # fmt: skip
        located, resolution, crossings = _crossing(found, "beta")
        row = _kept(found, "soft", dict(soft_beta=found.samples.beta)).assign(
            soft_located=located, soft_resolution=resolution, soft_crossings=crossings,
            soft_spread=spread, soft_spread_se=spread_se,
            soft_boundary=cfg.soft_tol * (1 + eps) / (eps * spread),
        )  # fmt: skip
        rows.append(row.expand_dims(soft_eps=[eps]))
    return cast(xr.Dataset, xr.merge(rows, join="outer", compat="no_conflicts"))


def _kept(found: validity.ValidityMap, prefix: str, axis: dict,
          entries: tuple[str, list] | None = None) -> xr.Dataset:  # fmt: skip
    """A search's points under `prefix`_ names (dims prefix_sample, prefix_seed and the
    entry dim), with `axis` (its axis, renamed or rescaled) as a variable."""
    samples = found.samples
    sample, seed = f"{prefix}_sample", f"{prefix}_seed"
    renames = {"sample": sample, "seed": seed}
    coords: dict[str, Any] = {sample: np.arange(samples.sizes["sample"]),
                              seed: np.arange(samples.sizes["seed"])}  # fmt: skip
    if entries is not None:
        renames["entry0"] = entries[0]
        coords[entries[0]] = entries[1]
    kept = samples[["verdict", "ratio", "outputs", "prediction"]].reset_coords(drop=True)
    kept = kept.rename({k: v for k, v in renames.items() if k in kept.dims})
    kept = kept.assign_coords({k: v for k, v in coords.items() if k in kept.dims})
    kept = kept.rename({name: f"{prefix}_{name}" for name in kept.data_vars})
    return kept.assign({name: (sample, np.asarray(value)) for name, value in axis.items()})


def _named(options: sweep.Options | None, name: str) -> sweep.Options | None:
    """`options` with its chunk files in out/name: each search has rounds of its own."""
    if options is None or options.out is None:
        return options
    return dataclasses.replace(options, out=options.out / name)


# --- claims ------------------------------------------------------------------------------------


def _box(d: xr.Dataset) -> dict:
    return dict(measured=d.error, predicted=0.0, tolerance=d.attrs["rate_tol"])


def _located(d: xr.Dataset) -> dict:
    inside = d.eps_tol.where((d.eps_tol > d.attrs["eps_low"]) & (d.eps_tol < d.attrs["eps_high"]))
    if int(inside.notnull().sum()) == 0:
        raise claims.NotMeasured("no P has its eps_tol inside the box")
    return dict(measured=d.located, predicted=inside, tolerance=d.resolution)


def _pruning(d: xr.Dataset) -> dict:
    """The located flip against s, tolerance: the resolution plus |a_b - s| (exact)."""
    shift = np.abs(d.prune_exact - d.prune_s)
    return dict(measured=d.prune_located, predicted=d.prune_s,
                tolerance=d.prune_resolution + shift)  # fmt: skip


def _points(prefix: str, part: xr.Dataset) -> dict:
    """A family's points as one seed_mean claim: every point and entry, the seeds pooled by
    the search (NaN padding left out)."""
    outputs = part[f"{prefix}_outputs"]
    return dict(samples=outputs, predicted=part[f"{prefix}_prediction"],
                seed_dim=f"{prefix}_seed", observed=outputs.notnull())  # fmt: skip


def _sgd_safe(d: xr.Dataset) -> dict:
    return dict(_points("sgd", d.sel(sgd_box="safe")), tolerance=d.attrs["sgd_tol"],
                relative=True)  # fmt: skip


def _sgd_beyond(d: xr.Dataset) -> dict:
    """The boundary search's points at or past the critical lr (the others left out)."""
    part = d.sel(sgd_box="beyond")
    past = part.where(part.sgd_lr >= 1)
    if int(past.sgd_lr.notnull().sum()) == 0:
        raise claims.NotMeasured("no sampled lr at or past the critical lr")
    return dict(_points("sgd", past), tolerance=d.attrs["sgd_tol"], relative=True,
                side="below")  # fmt: skip


def _soft_box(d: xr.Dataset) -> dict:
    return dict(_points("soft", d), tolerance=d.attrs["soft_tol"])


def _soft_boundary(d: xr.Dataset) -> dict:
    return dict(measured=d.soft_located, predicted=d.soft_boundary, tolerance=d.soft_resolution)


CLAIMS = claims.Table(
    claims.Spec("validity.gap_rate_box", "P0; THEORY.md §3.1",
        "[P0] X + eps (P X - X) contracts at 1 - eps lambda_2 (worst case over the tokens, "
        "within {cfg.rate_tol}) at every eps of [{cfg.eps_low}, {cfg.eps_high}] searched, for "
        "every P (THEORY.md expects FAIL: past 2 / (2 - mu_2 - mu_n) mu_n sets the rate)",
        claims.exact, _box),
    claims.Spec("validity.gap_rate_boundary", "THEORY.md §3.1-3.2",
        "the search locates where the worst-case rate leaves 1 - eps lambda_2 by more than "
        "{cfg.rate_tol} at (2 + rate_tol) / (2 - mu_2 - mu_n), within the resolution it reports, "
        "for every P whose crossing lies inside the box ({cfg.budget} points per search)",
        claims.exact, _located, tolerance_kind="derived"),
    claims.Spec("validity.magnitude_pruning_boundary", "THEORY.md §6.1; P3",
        "magnitude pruning of the GF model to its K = {cfg.prune_keep} largest eigenbasis "
        "weights at t = {cfg.prune_time} has the truncation damage of [P3]'s pruning = spectral "
        "truncation exactly for a > s: the search over a locates the flip at a = s within its "
        "resolution plus the exact crossing's distance from s, at every s in {cfg.prune_s}",
        claims.exact, _pruning, tolerance_kind="derived"),
    claims.Spec("validity.sgd_recursion_safe", "THEORY.md §2.4, §8",
        "the seed mean of {cfg.sgd_seeds} one-pass SGD runs (B = {cfg.sgd_batch}, M = "
        "{cfg.sgd_modes}, sigma^2 = {cfg.sgd_noise}, a = s) equals the exact recursion's E L "
        "within {cfg.sgd_tol} (relative) at steps {cfg.sgd_steps} / 2 and {cfg.sgd_steps}, at "
        "every lr searched in [0.05, {cfg.sgd_safe}] x the critical lr, for every s in "
        "{cfg.sgd_s}",
        claims.seed_mean, _sgd_safe),
    claims.Spec("validity.sgd_recursion_critical", "THEORY.md §2.4, §8",
        "past the critical lr (chi >= 1, the mean-square stability limit) the seed mean of "
        "{cfg.sgd_seeds} runs falls short of the recursion's E L by more than {cfg.sgd_tol} "
        "(relative) at every lr searched in [1, 1.5] x the critical lr and both records: typical "
        "runs do not show the blow-up of the mean", claims.seed_mean, _sgd_beyond),
    claims.Spec("validity.softmax_additive_box", "THEORY.md §3.2, §8",
        "X + eps A(X) X under softmax attention (V = I, {cfg.soft_tokens} tokens of dimension "
        "{cfg.soft_dim}), (1 + eps)^l divided out, contracts at 1 / (1 + eps) (the fixed-P "
        "substitution eps -> eps / (1 + eps)) within {cfg.soft_tol} over layers "
        "{cfg.soft_layers} / 2 to {cfg.soft_layers}, at every beta in [{cfg.beta_low}, "
        "{cfg.beta_high}] and eps in {cfg.soft_eps} (THEORY.md expects FAIL: exact for a fixed P "
        "only)", claims.seed_mean, _soft_box),
    claims.Spec("validity.softmax_additive_boundary", "this experiment's first-order theory",
        "to first order in beta the growth-divided rate is (1 + eps beta q) / (1 + eps), q = "
        "tr(C^2) / tr(C) of the tokens' covariance C: the search locates where the substitution "
        "leaves {cfg.soft_tol} at beta = soft_tol (1 + eps) / (eps E q), within the resolution it "
        "reports, at every eps in {cfg.soft_eps}", claims.exact, _soft_boundary,
        tolerance_kind="derived"),
    config=Config,
)  # fmt: skip


# --- figures and run ---------------------------------------------------------------------------


def _sgd_edges(d: xr.Dataset) -> str:
    """Where the boundary search's agreement ends: its last PASS and first FAIL, in units of
    the critical lr."""
    part = d.sel(sgd_box="beyond")
    lr, verdict = part.sgd_lr.values, part.sgd_verdict.values
    passed, failed = lr[verdict == "PASS"], lr[verdict == "FAIL"]
    last = f"{passed.max():.3f}" if passed.size else "none"
    first = f"{failed.min():.3f}" if failed.size else "none"
    return (
        f"SGD, s = {float(d.sgd_s):g}: in units of the critical lr, the last PASS at {last}, "
        f"the first FAIL at {first} (INCONCLUSIVE between: the heavy-tailed loss)"
    )


def figures(data: xr.Dataset) -> dict:
    import matplotlib.figure

    figure = matplotlib.figure.Figure(figsize=(7, 4), layout="constrained")
    ax = figure.subplots()
    for j, (bandwidth, draw) in enumerate(
        (b, d) for b in data.bandwidth.values for d in data.draw.values
    ):
        one = data.sel(bandwidth=bandwidth, draw=draw)
        order = np.argsort(one.eps.values)
        error = np.maximum(one.error.values[order], 1e-17)
        ax.plot(one.eps.values[order], error, ".-", color=f"C{j}", ms=3, lw=0.8,
                label=f"h = {bandwidth:g}, draw {draw}")  # fmt: skip
        ax.axvline(float(one.eps_tol), color=f"C{j}", ls=":", lw=1)
    ax.axhline(float(data.attrs["rate_tol"]), color="k", lw=1, label="rate_tol")
    ax.set(yscale="log", xlabel="eps", ylabel="|R - (1 - eps lambda_2)|",
           title="worst-case rate against the gap rate (dotted: theory's eps_tol)")  # fmt: skip
    ax.legend(fontsize=7)
    return dict(gap_rate=figure, sgd=_verdict_figure(
        data.sgd_lr, data.sgd_ratio, data.sgd_verdict, "lr / critical lr", "linear",
        {"critical lr": 1.0}, "one-pass SGD: seed mean against the exact recursion"),
        softmax=_verdict_figure(
        data.soft_beta, data.soft_ratio, data.soft_verdict, "beta", "log",
        {f"first order, eps = {e:g}": float(b) for e, b in zip(
            data.soft_eps.values, data.soft_boundary.values, strict=True)},
        "softmax: X + eps A(X) X against 1 / (1 + eps)"))  # fmt: skip


def _verdict_figure(x, ratio, verdict, label: str, scale: str, marks: dict, title: str):
    """Every sampled point of a family of searches: error / tolerance (with z SE) against the
    axis, coloured by verdict, with vertical lines at `marks`."""
    import matplotlib.figure

    figure = matplotlib.figure.Figure(figsize=(7, 4), layout="constrained")
    ax = figure.subplots()
    x, ratio, verdict = (np.ravel(v.values) for v in (x, ratio, verdict))
    for name, colour in dict(PASS="tab:green", FAIL="tab:red", INCONCLUSIVE="tab:gray").items():
        on = verdict == name
        ax.scatter(x[on], np.minimum(ratio[on], 1e6), s=10, c=colour, label=name)
    for j, (name, at) in enumerate(marks.items()):
        ax.axvline(at, color=f"C{j + 4}", ls="--", lw=1, label=name)
    ax.axhline(1.0, color="k", lw=1)
    ax.set(xscale=scale, yscale="log", xlabel=label, ylabel="(error + z SE) / tolerance",
           title=title)  # fmt: skip
    ax.legend(fontsize=7)
    return figure


def run(cfg: Config, options: sweep.Options | None = None) -> Report:
    cfg = scaled(cfg, QUICK, PAPER)
    check(cfg)
    # float64: the crossings to ~1e-13, the softmax tokens' deviation from a mean grown by
    # (1 + eps)^L, and SGD's E L past the critical lr (at 1.5 x it, step 200, float32
    # overflows to inf).
    with jax.enable_x64(True):
        data = xr.merge([gap_rate_maps(cfg, options), pruning_maps(cfg, options),
                         sgd_maps(cfg, options), softmax_maps(cfg, options)])  # fmt: skip
    data = data.assign_attrs(rate_tol=cfg.rate_tol, eps_low=cfg.eps_low, eps_high=cfg.eps_high,
                             sgd_tol=cfg.sgd_tol, soft_tol=cfg.soft_tol)  # fmt: skip
    notes = [f"h = {float(d.bandwidth):g}, draw {int(d.draw)}: located {float(d.located):.6f} ± "
             f"{float(d.resolution):.2g} (crossings {int(d.crossings)}), eps_tol "
             f"{float(d.eps_tol):.6f}, eps* {float(d.eps_star):.6f}"
             for d in (data.sel(bandwidth=b, draw=w) for b in data.bandwidth.values
                       for w in data.draw.values)]  # fmt: skip
    notes += [f"pruning, s = {float(d.prune_s):g}: located {float(d.prune_located):.6f} ± "
              f"{float(d.prune_resolution):.2g} (crossings {int(d.prune_crossings)}), exact "
              f"a_b {float(d.prune_exact):.12f}"
              for d in (data.sel(prune_s=s) for s in data.prune_s.values)]  # fmt: skip
    notes += [_sgd_edges(data.sel(sgd_s=s)) for s in data.sgd_s.values]
    notes += [f"softmax additive, eps = {float(d.soft_eps):g}: located beta "
              f"{float(d.soft_located):.4g} ± {float(d.soft_resolution):.2g} (crossings "
              f"{int(d.soft_crossings)}), first-order {float(d.soft_boundary):.4g} (E q = "
              f"{float(d.soft_spread):.4f} ± {float(d.soft_spread_se):.1g})"
              for d in (data.sel(soft_eps=e) for e in data.soft_eps.values)]  # fmt: skip
    return Report(experiment="validity_maps", claims=CLAIMS.evaluate(data, config=cfg),
                  data=data, figures=figures(data), config=dataclasses.asdict(cfg),
                  seed=cfg.seed, notes=notes)  # fmt: skip


if __name__ == "__main__":  # the same as `spectral-sim run validity_maps [flags]`
    from spectral_sim import cli

    sys.exit(cli.main(["run", "validity_maps", *sys.argv[1:]]))
