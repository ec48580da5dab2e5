"""Validity maps: searches that locate where a theorem stops holding, against theory's boundary.

Each search is `spectral_sim.validity.search` over a box, deciding every sampled point with the
claim engine. Its located boundary is then compared with the boundary theory gives.

This version maps one boundary: [P0]'s rate of residual attention with a fixed reversible P
(THEORY.md §3.1-3.2). The P matrices are Laplace kernels on random positions, drawn as
attention_clusters draws them.
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
"""

import dataclasses
import sys

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from spectral_sim import PowerLaw, claims, sweep, theory, validity
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
    seed: int = 0
    quick: bool = False
    """CPU-minute scale (`make run`, tests): fields left at their defaults take QUICK values."""
    paper: bool = False
    """The papers' scale (`--scale paper`, meant for a GPU): fields left at their defaults take
    PAPER values. The defaults are the full scale: at most 30 minutes on 2 CPU cores."""


QUICK = dict(bandwidth=(1.0,), n_kernels=2, budget=32, prune_s=(1.5,))
# The paper scale: [P0] and [P3] give no sizes; more tokens, draws, decays and points per search.
PAPER = dict(n_tokens=64, n_kernels=8, budget=256, prune_s=(1.25, 1.5, 2.0, 2.5, 3.0))


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
    lows = dict(n_tokens=3, n_kernels=1, layers=1, budget=2 * validity.ROUNDS)
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
    config=Config,
)  # fmt: skip


# --- figures and run ---------------------------------------------------------------------------


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
    return dict(gap_rate=figure)


def run(cfg: Config, options: sweep.Options | None = None) -> Report:
    cfg = scaled(cfg, QUICK, PAPER)
    check(cfg)
    with jax.enable_x64(True):  # the crossing to ~1e-13: float64
        data = xr.merge([gap_rate_maps(cfg, options), pruning_maps(cfg, options)])
    data = data.assign_attrs(rate_tol=cfg.rate_tol, eps_low=cfg.eps_low, eps_high=cfg.eps_high)
    notes = [f"h = {float(d.bandwidth):g}, draw {int(d.draw)}: located {float(d.located):.6f} ± "
             f"{float(d.resolution):.2g} (crossings {int(d.crossings)}), eps_tol "
             f"{float(d.eps_tol):.6f}, eps* {float(d.eps_star):.6f}"
             for d in (data.sel(bandwidth=b, draw=w) for b in data.bandwidth.values
                       for w in data.draw.values)]  # fmt: skip
    notes += [f"pruning, s = {float(d.prune_s):g}: located {float(d.prune_located):.6f} ± "
              f"{float(d.prune_resolution):.2g} (crossings {int(d.prune_crossings)}), exact "
              f"a_b {float(d.prune_exact):.12f}"
              for d in (data.sel(prune_s=s) for s in data.prune_s.values)]  # fmt: skip
    return Report(experiment="validity_maps", claims=CLAIMS.evaluate(data, config=cfg),
                  data=data, figures=figures(data), config=dataclasses.asdict(cfg),
                  seed=cfg.seed, notes=notes)  # fmt: skip


if __name__ == "__main__":  # the same as `spectral-sim run validity_maps [flags]`
    from spectral_sim import cli

    sys.exit(cli.main(["run", "validity_maps", *sys.argv[1:]]))
