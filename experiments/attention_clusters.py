"""Residual attention: token contraction rates and clusters against [P0]'s (1 - eps lambda_2)^L.

Four sweeps (THEORY.md §1 row 6, §3):
- a fixed reversible P = D^-1 K (Laplace kernel on random positions), residual X + eps (P X - X)
  (mean shift) or X + eps P X (additive), eps from well inside to beyond the range where the
  exact rate max_(i>=2) |1 - eps (1 - mu_i)| equals 1 - eps lambda_2; rates of the deviation from
  consensus (projected every layer, §3.4), a plain run for the consensus point pi^T X_0;
- softmax self-attention (V = I), three residual forms: the late-window rate against 1 - eps
  (1 / (1 + eps) additive) and the naive 1 - eps lambda_2(A(X_0)); Dobrushin layer by layer;
- pure attention (no skip), Q/K/V identity or drawn per seed: Dong, Cordonnier and Loukas's
  cubic residual map and bound;
- the sphere dynamics of Geshkovski, Letrouit, Polyanskiy and Rigollet (RK4): clusters against
  time over (beta, n, d), metastable multi-cluster states included.

Rates are read to ~1e-6, below float32's resolution of a contracting deviation: this experiment
simulates in float64 (inside `jax.enable_x64`) whatever the global setting.
"""

import dataclasses
import functools
import operator
import sys

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from spectral_sim import claims, simulate, sweep, theory
from spectral_sim._types import Simulator
from spectral_sim.diagnostics import tokens
from spectral_sim.models import attention
from spectral_sim.registry import scaled
from spectral_sim.report import Report

# --- fixed P: rates on [window_first, window_last], the latter the last layer above FLOOR ------
FLOOR = 1e-140  # the distance squares the deviation: float64 underflows below ~1e-154
# The window starts once the next-slowest mode's norm share (rho_next / r)^l is below WINDOW_Q;
# modes within relative DEGENERATE of the slowest count as it. `_rate_tolerance` bounds the rate's
# error from these, ENERGY_RATIO (initial energy ratio of two modes: a Gaussian X_0's chi-square(3)
# mode energies at dim = 3 exceed it with probability 1.7e-6 per pair) and UNIT_ROUNDOFF.
WINDOW_Q, DEGENERATE, ENERGY_RATIO, UNIT_ROUNDOFF = 1e-4, 5e-7, 1e4, 2.0**-53

# --- softmax: rates on the window where D_LO < distance < D_HI ----------------------------------
# Near consensus the contraction is 1 - eps plus a share linear in the distance (3e-5 relative at
# distance 1e-6 for beta = 0.5: a coefficient of 30, growing with beta), below SECOND_ORDER
# max(1, beta) D_HI on the window (SECOND_ORDER = 100 read off that measurement). The distance's
# rounding error <= ROUND (tokens of size ~1) is resolved to ROUND / D_LO, so a rate over W
# layers is off by <= ROUND / (D_LO W). The sum is the rate claims' tolerance; SECOND_ORDER and
# ROUND are estimates, not bounds: judgement.
D_HI, D_LO, ROUND, SECOND_ORDER = 1e-9, 1e-12, 1e-15, 100.0
WINDOW = f"{D_LO:g} < distance < {D_HI:g}"
MIN_WINDOW = 5  # layers; shorter windows are reported unresolved
# The additive form's tokens grow as (1 + eps)^l, sharpening softmax(beta X X^T): most runs freeze
# (hard attention), their growth-divided distance never reaching the window, and are read on the
# run's second half: a run contracting at 1 / (1 + eps) from mid-run shows it there to LATE_TOL =
# 10 x the mean-shift runs' late-half pre-asymptotic drift (<= 1e-4 measured; judgement). A run
# reaching the window is read there: once its tokens merge its late half sits on the float64
# floor (rates 0, inf, NaN or ~0.93).
LATE_TOL = 1e-3
# Dobrushin check: relative rounding plus, for merged tokens, a floor in units of their size
# diameter_0 (1 + eps)^l (additive tokens grow by up to 1 + eps per layer: a merged diameter is a
# rounding error of that size, 1e-8 at l = 110, eps = 0.2, where a floor fixed at 1e-14
# diameter_0 failed the bound in 20 % of 128 runs).
DOBRUSHIN_RTOL, DOBRUSHIN_ATOL = 1e-12, 1e-14

# --- pure attention: the order of r -> c r^3 from the last triple above the rounding floor ------
# A residual is resolved while r_l > RESIDUAL_FLOOR n max|X_l|: 1e6 above its tokens' rounding.
RESIDUAL_FLOOR = 1e-10
# p_l = log(r_(l+2)/r_(l+1)) / log(r_(l+1)/r_l) = 3 + log(c_(l+1)/c_l) / log(r_(l+1)/r_l): the
# correction shrinks with r (3.10, 3.009, 3.0008 on successive triples at beta = 0.2) and varies
# in sign between draws (+-0.1 on second triples), so the claim is on the per-seed mean over runs
# with >= 2 resolved triples (a seed's runs share X_0 and Q/K/V across beta: common random
# numbers), within ORDER_TOL of 3 (judgement: the second-triple correction's size).
ORDER_TOL, PURE_LAYERS = 0.1, 8


@dataclasses.dataclass(frozen=True)
class Config:
    n_tokens: int = 16
    """Tokens of the fixed-P runs (dimension `dim`)."""
    dim: int = 3
    bandwidth: tuple[float, ...] = (0.5, 1.0, 1.5)
    """Laplace-kernel bandwidths h of K_ij = exp(-|y_i - y_j| / h), y_i ~ N(0, I_2)."""
    n_kernels: int = 4
    """Random position draws (P matrices) per bandwidth."""
    eps_frac: tuple[float, ...] = (0.2, 0.5, 0.7, 0.8, 0.9, 0.97)
    """Residual steps as fractions of the mean-shift stability limit 2 / (1 - mu_n)."""
    layers: int = 2500
    softmax_eps: tuple[float, ...] = (0.1, 0.25, 0.5)
    softmax_beta: tuple[float, ...] = (0.5, 2.0)
    softmax_tokens: tuple[int, ...] = (8, 32)
    softmax_dim: tuple[int, ...] = (2, 8)
    softmax_layers: int = 600
    n_seeds: int = 256
    """Softmax runs per point: the share claims (dobrushin) need n/n to clear 0.95 at the
    simultaneous level over 72 points, n >= 155 (the 8-seed run's seeds_needed: 256)."""
    pure_beta: tuple[float, ...] = (0.1, 0.3)
    """Pure-attention inverse temperatures (larger beta: metastable clusters, not cubic)."""
    pure_tokens: int = 8
    pure_dim: int = 4
    pure_seeds: int = 256
    """Pure-attention runs per point (rank_collapse_bound's seeds_needed: 128 at 32 seeds, 256
    at 128)."""
    sphere_beta: tuple[float, ...] = (0.5, 1.0, 4.0, 9.0, 16.0, 25.0)
    sphere_tokens: tuple[int, ...] = (16, 32)
    sphere_dim: tuple[int, ...] = (2, 3, 8)
    sphere_time: float = 1000.0
    sphere_dt: float = 0.1
    sphere_records: int = 40
    sphere_seeds: int = 128
    """Sphere runs per point (sphere_consensus's seeds_needed at 16 seeds: 128)."""
    cluster_tol: float = 1e-3
    """Tokens closer than this (chord distance) are one cluster (single linkage)."""
    consensus_beta: float = 1.0
    """Sphere runs with beta <= this (and d >= 3) must end in one cluster."""
    metastable_beta: float = 9.0
    """Sphere runs with beta >= this (and d >= 3) probe metastable multi-cluster states."""
    seed: int = 0
    quick: bool = False
    """CPU-minute scale (`make run`, tests): fields left at their defaults take QUICK values."""
    paper: bool = False
    """The papers' scale (`--scale paper`, meant for a GPU): fields left at their defaults take
    PAPER values. The defaults are the full scale: at most 30 minutes on 2 CPU cores."""


QUICK = dict(
    bandwidth=(0.5, 1.0), n_kernels=2, eps_frac=(0.3, 0.8, 0.97), layers=1500,
    softmax_tokens=(8,), softmax_dim=(2, 8), softmax_layers=400, n_seeds=4,
    sphere_beta=(1.0, 4.0, 16.0), sphere_tokens=(16,), sphere_dim=(2, 3),
    sphere_time=100.0, sphere_records=20, sphere_seeds=8, pure_seeds=32,
)  # fmt: skip
# The paper scale: the sources give no sizes; token counts to 64 and four times the seeds, a GPU's
# worth.
PAPER = dict(
    softmax_tokens=(8, 32, 64), n_seeds=1024, sphere_tokens=(16, 32, 64), sphere_seeds=512,
    pure_seeds=1024,
)  # fmt: skip


def check(cfg: Config) -> None:
    """Reject bad configs with the field name and valid range, before anything compiles."""
    lists = ("bandwidth", "eps_frac", "softmax_eps", "softmax_beta", "softmax_tokens",
             "softmax_dim", "pure_beta", "sphere_beta", "sphere_tokens", "sphere_dim")  # fmt: skip
    for name in lists:
        if len(getattr(cfg, name)) == 0:
            raise ValueError(f"{name} must list at least one value")
    positive = ("bandwidth", "softmax_eps", "pure_beta", "sphere_time", "sphere_dt", "cluster_tol")
    for name in positive:
        if not np.min(getattr(cfg, name)) > 0:
            raise ValueError(f"{name} must be > 0; got {getattr(cfg, name)}")
    if not (0 < min(cfg.eps_frac) and max(cfg.eps_frac) < 1):
        raise ValueError(f"eps_frac must lie in (0, 1) (stable steps); got {cfg.eps_frac}")
    if max(cfg.softmax_eps) >= 1:
        raise ValueError(f"softmax_eps must lie in (0, 1); got {cfg.softmax_eps}")
    lows = dict(softmax_beta=0, sphere_beta=0, softmax_tokens=2, sphere_tokens=2, softmax_dim=1,
                sphere_dim=2, n_tokens=2, dim=1, n_kernels=1, layers=50, softmax_layers=50,
                n_seeds=1, sphere_records=2, sphere_seeds=1)  # fmt: skip
    for name, low in lows.items():
        if np.min(getattr(cfg, name)) < low:
            raise ValueError(f"{name} must be >= {low}; got {getattr(cfg, name)}")
    if cfg.sphere_time < 10 * cfg.sphere_dt:
        raise ValueError(f"sphere_time must be >= 10 sphere_dt; got {cfg.sphere_time}")


def _at(values: np.ndarray, layer: np.ndarray) -> np.ndarray:
    """values[..., layer - 1] per run: layers count from 1 (clipped into range)."""
    index = np.clip(layer, 1, values.shape[-1])[..., None] - 1
    return np.take_along_axis(values, index, -1)[..., 0]


# --- fixed P -----------------------------------------------------------------------------------


def kernel_p(n_tokens: int, bandwidth, draw, seed: int = 0) -> jax.Array:
    """P = D^-1 K, K_ij = exp(-|y_i - y_j| / h) the Laplace kernel on n positions y_i ~ N(0, I_2)
    from (seed, draw): reversible, eigenvalues real in [0, 1] (K is positive definite), spread
    out (a Gaussian kernel's pile up at 0: the over-relaxed next mode unresolvably close)."""
    y = jax.random.normal(jax.random.fold_in(jax.random.key(seed), draw), (n_tokens, 2))
    distance = jnp.sqrt(((y[:, None] - y[None]) ** 2).sum(-1))
    return theory.attention.kernel_attention(jnp.exp(-distance / bandwidth))


@functools.partial(jax.jit, static_argnames=("n_tokens", "seed"))
def _fixed_p(n_tokens: int, bandwidth, draw, eps_frac, seed: int) -> tuple[jax.Array, jax.Array]:
    """`kernel_p` and the step eps_frac x 2 / (1 - mu_n) it takes, as one program: the sweep
    builds the Params of concrete grid points while it plans (eagerly, every operation compiled
    on its own) and traces the same function inside its program."""
    P = kernel_p(n_tokens, bandwidth, draw, seed=seed)
    return P, eps_frac * 2 / (1 - theory.attention.attention_spectrum(P)[-1])  # mu_n


def simulate_fixed(cfg: Config, options: sweep.Options | None = None) -> xr.Dataset:
    """Per (bandwidth, draw, eps_frac, residual): the deviation's distance to consensus at every
    layer, the exact rate, the gap, the eps limit of the gap form, the next-slowest modulus and,
    for the mean-shift form, the consensus-point error of a plain (unprojected) run."""

    def make(bandwidth, draw, eps_frac, residual):
        P, eps = _fixed_p(cfg.n_tokens, bandwidth, draw, eps_frac, cfg.seed)
        return attention.Params(n_tokens=cfg.n_tokens, dim=cfg.dim, eps=eps, attention="fixed",
                                P=P, residual=residual, deviation=True)  # fmt: skip

    def run(params, key):
        distance = simulate.trajectory(attention, params, key, n_records=cfg.layers)[1].distance
        mu = theory.attention.attention_spectrum(params.P)[1:]
        eps, mean_shift = params.eps, params.residual == "mean_shift"
        moduli = jnp.abs(1 - eps * (1 - mu)) if mean_shift else jnp.abs(1 + eps * mu) / (1 + eps)
        rate = theory.attention_rate(params.P, eps=eps, residual=params.residual)
        slower = jnp.where(moduli < rate * (1 - DEGENERATE), moduli, 0.0).max()
        out = dict(
            distance=distance, rate_exact=rate, rate_next=slower, eps=eps,
            gap=theory.attention_gap(params.P), gap_limit=theory.attention.gap_rate_limit(params.P),
        )  # fmt: skip
        if mean_shift:
            plain = dataclasses.replace(params, deviation=False)
            x0 = attention.init(plain, jax.random.split(key)[0]).x
            final = simulate.trajectory(attention, plain, key, n_records=1, every=cfg.layers)[0]
            drift = theory.attention.consensus(params.P, final.x - x0)
            out["consensus_error"] = jnp.linalg.norm(drift) / jnp.linalg.norm(x0)
        else:  # not measured: the additive consensus grows as (1 + eps)^L (set to NaN below)
            out["consensus_error"] = jnp.zeros((), distance.dtype)
        return out

    axes = dict(bandwidth=cfg.bandwidth, draw=list(range(cfg.n_kernels)), eps_frac=cfg.eps_frac,
                residual=["mean_shift", "additive"])  # fmt: skip
    data = (options or sweep.Options()).run(
        "fixed", run, make, sweep.Grid(product=axes), seed=cfg.seed,
        config=dataclasses.asdict(cfg), dims=dict(distance=("layer",)),
        coords=dict(layer=list(range(1, cfg.layers + 1))),
    ).squeeze("seed", drop=True)  # fmt: skip
    consensus = data.consensus_error.where(data.residual == "mean_shift")
    data = data.rename(nonfinite="fixed_nonfinite").assign(consensus_error=consensus)
    return _fixed_rates(data.assign_attrs(n_tokens=cfg.n_tokens))


def _fixed_rates(data: xr.Dataset) -> xr.Dataset:
    """The late-window rate of each run: from the first layer where the next-slowest mode's norm
    share (rho_next / r)^l (exact spectrum) is below WINDOW_Q to the last layer above FLOOR; NaN
    where that leaves fewer than MIN_WINDOW layers."""
    distance = data.distance.values
    alive = np.where(np.isfinite(distance) & (distance > FLOOR), data.layer.values, 0)
    last = alive.max(-1)
    with np.errstate(divide="ignore"):
        needed = np.log(WINDOW_Q) / np.log(data.rate_next.values / data.rate_exact.values)
    first = np.maximum(np.ceil(needed), 1).astype(int)
    resolved = (last - first >= MIN_WINDOW) & ~data.fixed_nonfinite.values
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = (_at(distance, last) / _at(distance, first)) ** (1 / (last - first))
    dims = data.distance.dims[:-1]
    return data.assign(
        rate=(dims, np.where(resolved, rate, np.nan)), resolved=(dims, resolved),
        window_first=(dims, first), window_last=(dims, last),
    )  # fmt: skip


# --- softmax attention -------------------------------------------------------------------------


def simulate_softmax(cfg: Config, options: sweep.Options | None = None) -> xr.Dataset:
    """Softmax self-attention (V = I, no normalisation) per (residual, eps, beta, n, d) and seed:
    each layer's distance, diameter and Dobrushin coefficient, diameter_0 and the naive rate."""

    def make(residual, eps, beta, n_tokens, dim):
        return attention.Params(n_tokens=n_tokens, dim=dim, eps=eps, beta=beta, residual=residual)

    def run(params, key):
        x0 = attention.init(params, jax.random.split(key)[0]).x
        obs = simulate.trajectory(attention, params, key, n_records=cfg.softmax_layers)[1]
        gap0 = theory.attention_gap(attention.weights(params, x0)[0])
        residual = "additive" if params.residual == "additive" else "mean_shift"
        return dict(
            softmax_distance=obs.distance, softmax_diameter=obs.diameter, tau=obs.tau,
            diameter0=jnp.max(jnp.linalg.norm(x0[:, None] - x0[None], axis=-1)),
            naive_rate=1 - params.eps * gap0,
            softmax_theory=theory.attention.softmax_rate(params.eps, residual),
        )  # fmt: skip

    axes = dict(residual=["mean_shift", "additive", "none"], eps=cfg.softmax_eps,
                beta=cfg.softmax_beta, n_tokens=cfg.softmax_tokens,
                dim=cfg.softmax_dim)  # fmt: skip
    data = (options or sweep.Options()).run(
        "softmax", run, make, sweep.Grid(product=axes, n_seeds=cfg.n_seeds), seed=cfg.seed,
        config=dataclasses.asdict(cfg),
        dims={k: ("softmax_layer",) for k in ("softmax_distance", "softmax_diameter", "tau")},
        coords=dict(softmax_layer=list(range(1, cfg.softmax_layers + 1))),
    )  # fmt: skip
    return _softmax_rates(data.rename(
        nonfinite="softmax_nonfinite", residual="softmax_residual", eps="softmax_eps",
        beta="softmax_beta", n_tokens="softmax_tokens", dim="softmax_dim"))  # fmt: skip


def _softmax_rates(data: xr.Dataset) -> xr.Dataset:
    """Per run: the rate on the window D_LO < distance < D_HI (NaN when it spans fewer than
    MIN_WINDOW layers) and its tolerance ROUND / (D_LO W) + SECOND_ORDER max(1, beta) D_HI. The
    additive form's distance is divided by its (1 + eps)^l growth first (THEORY.md §3.2)."""
    growth = xr.where(data.softmax_residual == "additive", 1 + data.softmax_eps, 1.0)
    scaled = data.softmax_distance / growth**data.softmax_layer
    distance = scaled.transpose(*data.softmax_distance.dims).values
    layer = data.softmax_layer.values
    below = distance < D_HI
    first = np.where(below.any(-1), layer[np.argmax(below, -1)], 0)
    above = np.where(distance > D_LO, layer, 0).max(-1)
    width = above - first
    resolved = (first > 0) & (width >= MIN_WINDOW) & ~data.softmax_nonfinite.values
    half = len(layer) // 2
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = (_at(distance, above) / _at(distance, first)) ** (1 / width)
        late = (distance[..., -1] / distance[..., half - 1]) ** (1 / (len(layer) - half))
    dims = data.naive_rate.dims
    window = xr.DataArray(np.maximum(width, 1), dims=dims)
    tolerance = ROUND / (D_LO * window) + SECOND_ORDER * np.maximum(1, data.softmax_beta) * D_HI
    return data.assign(
        softmax_rate_measured=(dims, np.where(resolved, rate, np.nan)),
        softmax_resolved=(dims, resolved), softmax_tolerance=tolerance.transpose(*dims),
        softmax_late_rate=(dims, np.where(data.softmax_nonfinite.values, np.nan, late)),
    )  # fmt: skip


def dobrushin_holds(data: xr.Dataset) -> xr.DataArray:
    """Per run and layer: diameter_l <= scale tau_l diameter_(l-1) (scale 1 + eps for the
    additive form), up to rounding of tokens of size diameter_0 scale^l (THEORY.md §3.1)."""
    layer = data.softmax_layer
    before = xr.where(layer == layer.values[0], data.diameter0,
                      data.softmax_diameter.shift(softmax_layer=1))  # fmt: skip
    scale = xr.where(data.softmax_residual == "additive", 1 + data.softmax_eps, 1.0)
    floor = DOBRUSHIN_ATOL * data.diameter0 * scale**layer
    return data.softmax_diameter <= scale * data.tau * before * (1 + DOBRUSHIN_RTOL) + floor


# --- pure attention ----------------------------------------------------------------------------


def simulate_pure(cfg: Config, options: sweep.Options | None = None) -> xr.Dataset:
    """Pure attention X <- A(X) X V, Q = K = V = I or drawn per seed: each layer's residual
    ||X_l - 1 m^T||_1,inf and Dong-Cordonnier-Loukas's w = ||beta Q K^T||_1 ||V||_1,inf."""

    def make(beta, draw):
        return attention.Params(n_tokens=cfg.pure_tokens, dim=cfg.pure_dim, beta=beta,
                                residual="none", draw=draw)  # fmt: skip

    def measure(x):
        return tokens.residual_norm(x), jnp.abs(x).max()

    def run(params, key):
        def layer(state, _):
            state = attention.step(params, state, None)[0]
            return state, measure(state.x)

        state = attention.init(params, jax.random.split(key)[0])
        _, (residual, scale) = jax.lax.scan(layer, state, None, length=PURE_LAYERS)
        r0, scale0 = measure(state.x)
        eye = jnp.eye(params.dim, dtype=state.x.dtype)
        drawn = (state.query, state.keys, state.value)
        query, keys, value = (eye if w is None else w[0] for w in drawn)
        qk = jnp.abs(params.beta * query @ keys.T).sum(0).max()  # ||.||_1: max column sum
        v = jnp.sqrt(jnp.abs(value).sum(0).max() * jnp.abs(value).sum(1).max())
        return dict(
            pure_residual=jnp.concatenate([r0[None], residual]),
            pure_scale=jnp.concatenate([scale0[None], scale]), weight_norm=qk * v,
        )  # fmt: skip

    axes = dict(beta=cfg.pure_beta, draw=["none", "qkv"])
    data = (options or sweep.Options()).run(
        "pure", run, make, sweep.Grid(product=axes, n_seeds=cfg.pure_seeds), seed=cfg.seed,
        config=dataclasses.asdict(cfg),
        dims=dict(pure_residual=("pure_layer",), pure_scale=("pure_layer",)),
        coords=dict(pure_layer=list(range(PURE_LAYERS + 1))),
    )  # fmt: skip
    return data.rename(nonfinite="pure_nonfinite", beta="pure_beta", draw="weights",
                       seed="pure_seed").assign_attrs(pure_tokens=cfg.pure_tokens)  # fmt: skip


def _pure_resolved(data: xr.Dataset) -> np.ndarray:
    """Per run and layer: the residual lies above the rounding floor of its tokens."""
    floor = RESIDUAL_FLOOR * data.attrs["pure_tokens"] * data.pure_scale.values
    return data.pure_residual.values > floor


def _pure_pairs(data: xr.Dataset) -> tuple:
    """Per run and pair of successive layers: r_l, r_(l+1), w and whether both are resolved."""
    r, ok = data.pure_residual.values, _pure_resolved(data)
    return r[..., :-1], r[..., 1:], data.weight_norm.values[..., None], ok[..., :-1] & ok[..., 1:]


def pure_orders(data: xr.Dataset) -> tuple[np.ndarray, np.ndarray]:
    """Per run: the order p of r -> c r^3 from its last resolved triple of layers (NaN when
    there is none) and the number of resolved triples."""
    ok = _pure_resolved(data)
    with np.errstate(divide="ignore", invalid="ignore"):
        steps = np.diff(np.log(data.pure_residual.values), axis=-1)
        order = steps[..., 1:] / steps[..., :-1]
    valid = ok[..., 2:] & ok[..., 1:-1] & ok[..., :-2]
    last = np.where(valid, np.arange(valid.shape[-1]), -1).max(-1)
    picked = np.take_along_axis(order, np.maximum(last, 0)[..., None], -1)[..., 0]
    return np.where(last >= 0, picked, np.nan), valid.sum(-1)


_collapse_bound = jax.jit(theory.attention.rank_collapse_bound, static_argnames=("layers", "heads"))


def pure_bound_holds(data: xr.Dataset) -> np.ndarray:
    """r_(l+1) <= rank_collapse_bound(r_l, layers=1, w) with gamma = 1, for the resolved layers
    inside the bound's local regime 4 w r_l^2 < 1 (elsewhere NaN)."""
    r, r_next, w, ok = _pure_pairs(data)
    bound = np.asarray(_collapse_bound(r, layers=1, weight_norm=w))
    return np.where(ok & (4 * w * r**2 < 1), r_next <= bound, np.nan)


# --- sphere dynamics ---------------------------------------------------------------------------


def _step_with_tokens(params, state, key):
    state, obs = attention.step(params, state, key)
    return state, (obs, state.x)


# The attention model whose observables also carry the tokens (for cluster counts).
WITH_TOKENS = Simulator(attention.init, _step_with_tokens)


def simulate_sphere(cfg: Config, options: sweep.Options | None = None) -> xr.Dataset:
    """Continuous-time sphere dynamics (RK4, dt = sphere_dt) for every (beta, n, d) and seed:
    the number of clusters at tolerance cluster_tol at log-spaced times."""
    steps = simulate.log_steps(round(cfg.sphere_time / cfg.sphere_dt), cfg.sphere_records)

    def make(beta, n_tokens, dim):
        return attention.Params(n_tokens=n_tokens, dim=dim, eps=cfg.sphere_dt, beta=beta,
                                norm="sphere", integrator="rk4")  # fmt: skip

    def run(params, key):
        obs, x = simulate.trajectory(WITH_TOKENS, params, key, steps=steps)[1]
        return dict(clusters=tokens.cluster_count(x, cfg.cluster_tol), sphere_diameter=obs.diameter)

    axes = dict(beta=cfg.sphere_beta, n_tokens=cfg.sphere_tokens, dim=cfg.sphere_dim)
    data = (options or sweep.Options()).run(
        "sphere", run, make, sweep.Grid(product=axes, n_seeds=cfg.sphere_seeds), seed=cfg.seed,
        config=dataclasses.asdict(cfg), dims=dict(clusters=("time",), sphere_diameter=("time",)),
        coords=dict(time=list(np.asarray(steps) * cfg.sphere_dt)),
    )  # fmt: skip
    return data.rename(nonfinite="sphere_nonfinite", beta="sphere_beta", n_tokens="sphere_tokens",
                       dim="sphere_dim", seed="sphere_seed")  # fmt: skip


# --- claims ------------------------------------------------------------------------------------

# "Every run" is a share of seeds within COUNT_TOL of 1 (judgement, as in learning_curves).
COUNT_TOL = 0.05
EVERY = f"is 1 within {COUNT_TOL} at every"
LIMIT = "2 / (2 - mu_2 - mu_n)"  # the largest eps at which the gap form is the exact rate
MEAN_SHIFT = "X + eps (P X - X)"


def _rate_tolerance(d: xr.Dataset) -> xr.DataArray:
    """The error bound of a fixed-P rate measured over W = window_last - window_first layers.

    Slowest-mode energy a_1^2, others a_i^2 <= ENERGY_RATIO a_1^2, each starting the window at
    norm share q_i <= WINDOW_Q: log distance = l log r + 1/2 log(1 + sum_i (a_i/a_1)^2 q_i^2), so
    the n - 2 other modes bias log r by <= (n - 2) ENERGY_RATIO WINDOW_Q^2 / (2 W); modes within
    DEGENERATE of r move it by < DEGENERATE (a weighted mean of log-rates); rounding, relative
    n u per layer, moves the distance ratio by <= 2 L n u, log r by that / W. Error: r x sum."""
    n, layers = d.attrs["n_tokens"], d.sizes["layer"]
    width = np.maximum(d.window_last - d.window_first, 1)
    per_width = (n - 2) * ENERGY_RATIO * WINDOW_Q**2 / 2 + 2 * layers * n * UNIT_ROUNDOFF
    return d.rate_exact * (DEGENERATE + per_width / width)


def _gap_form(d: xr.Dataset) -> xr.DataArray:
    return 1 - d.eps * d.gap


def _fixed(predict, residual: str | None = None, where=None, why: str = ""):
    """Measure of a fixed-P rate claim: each resolved run of `residual` (all if None) where
    `where` holds is an entry (a non-finite run stays in, as a divergence: eps_frac < 1 is a
    stable step), predicted by `predict`; the others get a NaN prediction."""

    def measure(d: xr.Dataset) -> dict:
        d = d if residual is None else d.sel(residual=residual)
        counted = (d.resolved | d.fixed_nonfinite) & (True if where is None else where(d))
        if not counted.any():
            raise claims.NotMeasured(f"no resolved fixed-P run{why}")
        return dict(measured=d.rate, predicted=predict(d).where(counted),
                    tolerance=_rate_tolerance(d), must_converge=True)  # fmt: skip

    return measure


def _consensus_point(d: xr.Dataset) -> dict:
    """Each layer's P X sums n terms rounded to relative u: pi^T X drifts by <= n u ||X_l|| per
    layer, and ||X_l|| stays at ||X_0|| (the map keeps pi^T X and contracts the rest in the
    pi-norm, up to sqrt(pi_max / pi_min) = 1.3 to 1.7 for the default kernels): L n u relative."""
    shift = d.sel(residual="mean_shift")
    tolerance = shift.sizes["layer"] * shift.attrs["n_tokens"] * UNIT_ROUNDOFF
    return dict(measured=shift.consensus_error, predicted=0.0, tolerance=tolerance,
                must_converge=True)  # fmt: skip


def _softmax(predicted: str):
    """Measure of a mean-shift softmax rate claim: each run that reaches the window is an entry
    (a non-finite one too, as a divergence), predicted by `predicted`; the others get NaN."""

    def measure(d: xr.Dataset) -> dict:
        sel = d.sel(softmax_residual="mean_shift")
        counted = sel.softmax_resolved | sel.softmax_nonfinite
        if not counted.any():
            raise claims.NotMeasured(f"no mean-shift softmax run reaches {WINDOW}")
        return dict(measured=sel.softmax_rate_measured, predicted=sel[predicted].where(counted),
                    tolerance=sel.softmax_tolerance, must_converge=True)  # fmt: skip

    return measure


def _softmax_additive(d: xr.Dataset) -> dict:
    """Every additive run: its window rate where it reaches consensus, else its late-half rate
    (see LATE_TOL), each with its tolerance."""
    sel = d.sel(softmax_residual="additive")
    measured = sel.softmax_rate_measured.where(sel.softmax_resolved, sel.softmax_late_rate)
    tolerance = sel.softmax_tolerance.where(sel.softmax_resolved, LATE_TOL)
    return dict(measured=measured, predicted=sel.softmax_theory, tolerance=tolerance)


def _dobrushin(d: xr.Dataset) -> dict:
    """A seed succeeds when its run keeps the bound at every layer (a non-finite run does not)."""
    holds = dobrushin_holds(d).all("softmax_layer") & ~d.softmax_nonfinite
    return dict(successes=holds, predicted=1.0, tolerance=COUNT_TOL)


def _pure_cubic(d: xr.Dataset) -> dict:
    """The order averaged within each seed over its runs (beta, weights) with >= 2 resolved
    triples; a seed with none is left out, one with a non-finite run is a divergence."""
    orders, triples = pure_orders(d)
    grid = ["pure_beta", "weights"]
    order = d.weight_norm.copy(data=orders).where(triples >= 2)
    diverged = d.pure_nonfinite.any(grid)
    counted = (order.notnull().any(grid) | diverged).values
    if counted.sum() < 2:
        raise claims.NotMeasured(f"{counted.sum()} seeds have a run with two resolved triples")
    per_seed = order.mean(grid).where(~diverged)
    return dict(samples=per_seed.isel(pure_seed=np.flatnonzero(counted)), seed_dim="pure_seed",
                predicted=3.0, tolerance=ORDER_TOL, must_converge=True)  # fmt: skip


def _rank_collapse_bound(d: xr.Dataset) -> dict:
    """A seed succeeds at (beta, weights) when the bound holds at every resolved layer of its run
    in the local regime (no outcome when it has none; a non-finite run fails)."""
    dims = (*d.weight_norm.dims, "pure_step")
    holds = xr.DataArray(pure_bound_holds(d), dims=dims, coords=d.weight_norm.coords)
    return dict(successes=xr.where(d.pure_nonfinite, 0.0, holds.min("pure_step")),
                seed_dim="pure_seed", predicted=1.0, tolerance=COUNT_TOL)  # fmt: skip


def _one_cluster(attr: str, compare, sign: str):
    """Measure of a sphere claim at d >= 3 and beta `sign` the data's `attr`: a seed succeeds
    when its run ends in one cluster (a non-finite run does not)."""

    def measure(d: xr.Dataset) -> dict:
        beta = d.attrs[attr]
        where = (d.sphere_dim >= 3) & compare(d.sphere_beta, beta)
        if not where.any():
            raise claims.NotMeasured(f"no sphere run with d >= 3 and beta {sign} {beta:g}")
        final = d.clusters.isel(time=-1)
        predicted = xr.ones_like(final.isel(sphere_seed=0, drop=True), dtype=float).where(where)
        return dict(successes=(final == 1) & ~d.sphere_nonfinite, seed_dim="sphere_seed",
                    predicted=predicted, tolerance=COUNT_TOL)  # fmt: skip

    return measure


# The claims this experiment checks (`spectral-sim list` shows them; [Pn]: a paper's claim).
CLAIMS = claims.Table(
    claims.Spec("attention.exact_rate", "THEORY.md §3.1-3.2 [E]",
        "fixed reversible P: the late-window rate equals the exact max_(i>=2) |1 - eps (1 - mu_i)| "
        "(mean shift) or max |1 + eps mu_i| / (1 + eps) (additive) within its derived error bound, "
        "at every resolved run of every (bandwidth, draw, eps_frac, residual)",
        claims.exact, _fixed(lambda d: d.rate_exact), tolerance_kind="derived"),
    claims.Spec("attention.gap_rate_inside", "P0; THEORY.md §1 row 6",
        f"[P0] {MEAN_SHIFT} contracts at 1 - eps lambda_2, at every resolved run with "
        f"eps <= {LIMIT}", claims.exact, _fixed(_gap_form, "mean_shift",
        lambda d: d.eps <= d.gap_limit, f" with eps <= {LIMIT}"), tolerance_kind="derived"),
    claims.Spec("attention.gap_rate_outside", "P0; THEORY.md §1 row 6",
        f"[P0] {MEAN_SHIFT} contracts at 1 - eps lambda_2 also at every resolved run with "
        f"eps > {LIMIT} (over-relaxed: mu_n sets the rate)", claims.exact, _fixed(_gap_form,
        "mean_shift", lambda d: d.eps > d.gap_limit, f" with eps > {LIMIT}"),
        tolerance_kind="derived"),
    claims.Spec("attention.additive_rate", "THEORY.md §3.2",
        "X + eps P X, (1 + eps)^L divided out, contracts at 1 - eps' lambda_2, eps' = eps / "
        "(1 + eps), at every resolved additive run",
        claims.exact, _fixed(lambda d: 1 - d.eps / (1 + d.eps) * d.gap, "additive"),
        tolerance_kind="derived"),
    claims.Spec("attention.additive_naive", "P0; THEORY.md §3.2",
        "[P0] X + eps P X contracts at 1 - eps lambda_2 with the raw eps, at every resolved "
        "additive run", claims.exact, _fixed(_gap_form, "additive"), tolerance_kind="derived"),
    claims.Spec("attention.consensus_point", "THEORY.md §3.1 [E]",
        f"fixed P, {MEAN_SHIFT}: every token ends at the single point pi^T X_0 "
        "(||pi^T (X_L - X_0)|| / ||X_0|| = 0 to float64 rounding L n u: L = {cfg.layers} layers, "
        "n = {cfg.n_tokens} tokens, u = 2^-53) at every mean-shift run",
        claims.exact, _consensus_point, tolerance_kind="derived"),
    claims.Spec("attention.softmax_rate", "THEORY.md §3.3, §8",
        f"softmax attention X + eps (A(X) X - X) (V = I) contracts asymptotically at 1 - eps in "
        f"every run that reaches consensus, i.e. the window {WINDOW} within {{cfg.softmax_layers}} "
        f"layers (runs that do not, e.g. at the larger beta and d, are left out and listed in the "
        f"notes), at every (eps, beta, n, d, seed)", claims.exact, _softmax("softmax_theory")),
    claims.Spec("attention.softmax_additive",
        "THEORY.md §3.2 carried over to softmax attention; §8",
        f"softmax attention X + eps A(X) X (V = I), (1 + eps)^l divided out, contracts at "
        f"1 / (1 + eps) = 1 - eps' with eps' = eps / (1 + eps) in every run, at every (eps, "
        f"beta, n, d, seed): its rate on the window {WINDOW} where it reaches consensus, else on "
        f"the second half of the run", claims.exact, _softmax_additive),
    claims.Spec("attention.softmax_first_layer", "P0 (naive); THEORY.md §3.3",
        "softmax attention contracts asymptotically at 1 - eps lambda_2(A(X_0)), the first "
        "layer's gap, in every run that reaches consensus", claims.exact, _softmax("naive_rate")),
    claims.Spec("attention.dobrushin", "THEORY.md §3.1, §3.3",
        f"diam(X_l) <= tau(M_l) diam(X_(l-1)) (times 1 + eps for the additive form; rounding "
        f"allowance {DOBRUSHIN_RTOL:g} relative + {DOBRUSHIN_ATOL:g} diam(X_0) (1 + eps)^l, the "
        f"tokens' size) at every layer of softmax attention: the share of seeds whose run keeps "
        f"it at every layer {EVERY} (residual, eps, beta, n, d)", claims.share, _dobrushin),
    claims.Spec("attention.pure_cubic", "Dong, Cordonnier, Loukas 2021 (arXiv 2103.03404)",
        f"pure attention (no skip) shrinks its residual as r -> c r^3 (doubly exponential): the "
        f"order at the last resolved triple of layers is 3 within {ORDER_TOL:g}, seed mean of the "
        f"within-seed average over the runs with two or more triples (Q = K = V = I and drawn per "
        f"seed), at every beta of {{cfg.pure_beta}} (larger beta leaves the local cubic regime: "
        f"metastable clusters keep the residual from collapsing)",
        claims.seed_mean, _pure_cubic),
    claims.Spec("attention.rank_collapse_bound", "Dong, Cordonnier, Loukas 2021, Thm 2.2",
        f"r_(l+1) <= 4 gamma w r_l^3 with gamma = 1 at every pure-attention layer in the bound's "
        f"local regime 4 w r_l^2 < 1 (residual about the column medians): the share of seeds "
        f"whose run keeps it at every such layer {EVERY} (beta, weights)",
        claims.share, _rank_collapse_bound),
    claims.Spec("attention.sphere_consensus", "THEORY.md §3.3; Geshkovski et al. 2023",
        f"sphere dynamics (V = I) end in one cluster by t = {{cfg.sphere_time}}: the share of "
        f"seeds {EVERY} (beta, n, d) with d >= 3 and beta <= {{cfg.consensus_beta}}",
        claims.share, _one_cluster("consensus_beta", operator.le, "<=")),
    claims.Spec("attention.sphere_large_beta", "THEORY.md §3.1, §3.3; Geshkovski et al.",
        f"sphere dynamics at large beta also reach the single consensus point by t = "
        f"{{cfg.sphere_time}}: the share of seeds ending in one cluster {EVERY} (beta, n, d) with "
        f"d >= 3 and beta >= {{cfg.metastable_beta}} (a share below 1: metastable multi-cluster "
        f"states still there at that time)",
        claims.share, _one_cluster("metastable_beta", operator.ge, ">=")),
    config=Config,
)  # fmt: skip


# --- notes, figures and run --------------------------------------------------------------------


def notes(data: xr.Dataset, cfg: Config) -> list[str]:
    """Diverged and unresolved runs (reported, not plotted), the rank-collapse constant the
    runs imply, and the cluster counts over beta that the verdicts summarise."""
    out = [f"{name}: {int(flag.sum())} of {flag.size} runs went non-finite (excluded)"
           for name in ("fixed", "softmax", "pure", "sphere")
           if bool((flag := data[f"{name}_nonfinite"]).any())]  # fmt: skip
    unresolved = int((~data.resolved & ~data.fixed_nonfinite).sum())
    if unresolved:
        out.append(f"fixed P: {unresolved} of {data.resolved.size} runs left out of the rate "
                   f"claims: the next-slowest mode stays above {WINDOW_Q:g} of the slowest until "
                   f"fewer than {MIN_WINDOW} layers remain before the deviation falls below "
                   f"{FLOOR:g}")  # fmt: skip
    softmax = data.sel(softmax_residual="mean_shift")
    unresolved = ~softmax.softmax_resolved & ~softmax.softmax_nonfinite
    grid = unresolved.dims[:-1]
    for point in unresolved.sum("seed").stack(point=grid):
        if int(point):
            at = {k: point[k].item() for k in grid}
            where = ", ".join(f"{k.removeprefix('softmax_')}={v:g}" for k, v in at.items())
            last = float(softmax.softmax_distance.sel(at).isel(softmax_layer=-1).median())
            out.append(f"softmax mean shift {where}: {int(point)} of {unresolved.sizes['seed']} "
                       f"runs never reach the window {WINDOW} in {data.sizes['softmax_layer']} "
                       f"layers (median final distance {last:.3g}; left out)")  # fmt: skip
    merged = data.sel(softmax_residual="additive").softmax_resolved
    out.append(f"softmax additive: {int(merged.sum())} of {merged.size} runs reach consensus (the "
               f"window {D_LO:g} < distance / (1 + eps)^l < {D_HI:g}; rate read there), the others "
               f"are read on their late half")  # fmt: skip
    r, r_next, w, ok = _pure_pairs(data)
    with np.errstate(divide="ignore", invalid="ignore"):
        constant = r_next / (w * r**3)
    if ok.any():
        out.append(f"pure attention: r_(l+1) / (w r_l^3) <= {constant[ok].max():.3g} over the "
                   f"resolvable layers, so the Dong-Cordonnier-Loukas bound holds here with "
                   f"gamma >= {constant[ok].max() / 4:.3g}")  # fmt: skip
    final = data.clusters.isel(time=-1).where(~data.sphere_nonfinite)
    mean = final.mean(["sphere_seed", "sphere_tokens"])
    for dim in mean.sphere_dim.values:
        counts = ", ".join(f"beta={b:g}: {float(mean.sel(sphere_beta=b, sphere_dim=dim)):.2f}"
                           for b in mean.sphere_beta.values)  # fmt: skip
        out.append(f"sphere d={dim}: mean clusters at t={float(data.time[-1]):g}: {counts}")
    return out


def figures(data: xr.Dataset, cfg: Config) -> dict:
    import matplotlib.colors
    import matplotlib.figure

    distance = matplotlib.figure.Figure(figsize=(11, 4), layout="constrained")
    left, right = distance.subplots(1, 2)
    run = data.sel(residual="mean_shift").isel(bandwidth=0, draw=0)
    layer = data.layer.values
    for j, frac in enumerate(run.eps_frac.values):
        point = run.sel(eps_frac=frac)
        if not bool(point.resolved):
            continue  # unresolved or diverged: listed in the notes
        d = np.where(point.distance.values > FLOOR, point.distance.values, np.nan)  # underflow
        eps, gap = float(point.eps), float(point.gap)
        left.plot(layer, d / d[0], color=f"C{j}", lw=2, label=f"eps = {eps:.3g} (measured)")
        left.plot(layer, float(point.rate_exact) ** (layer - 1), color="k", ls="--", lw=0.8)
        left.plot(layer, np.abs(1 - eps * gap) ** (layer - 1), color=f"C{j}", ls=":", lw=1.5)
    left.set(yscale="log", xlabel="layer L", ylabel="||X_L - X_inf||_pi / ||X_1 - X_inf||_pi",
             ylim=(FLOOR, 2))  # fmt: skip
    left.set_title("fixed P: measured, exact rate^L (--), [P0] (1 - eps λ2)^L (:)", fontsize=9)
    left.legend(fontsize=6)
    sm = data.sel(softmax_residual="mean_shift").isel(softmax_beta=0, softmax_tokens=0,
                                                      softmax_dim=0, seed=0)  # fmt: skip
    layer = data.softmax_layer.values
    for j, eps in enumerate(sm.softmax_eps.values):
        point = sm.sel(softmax_eps=eps)
        if bool(point.softmax_nonfinite):
            continue
        d = point.softmax_distance.values
        d = np.where(d > 10 * ROUND, d, np.nan)  # the rounding floor is not data
        right.plot(layer, d, color=f"C{j}", lw=2, label=f"eps = {eps:g}")
        right.plot(layer, d[0] * float(point.naive_rate) ** (layer - 1), color=f"C{j}", ls=":")
        if bool(point.softmax_resolved):  # 1 - eps drawn through the measurement window
            anchor = int(np.nanargmin(np.abs(np.log(d / np.sqrt(D_HI * D_LO)))))
            right.plot(layer, d[anchor] * (1 - eps) ** (layer - layer[anchor]), color="k",
                       ls="--", lw=0.8)  # fmt: skip
    right.set(yscale="log", xlabel="layer L", ylabel="distance to consensus", ylim=(ROUND, 10))
    right.set_title(f"softmax, beta = {float(sm.softmax_beta):g}, n = {int(sm.softmax_tokens)}, "
                    f"d = {int(sm.softmax_dim)}: (1 - eps)^L (--), first-layer λ2 (:)",
                    fontsize=9)  # fmt: skip
    right.legend(fontsize=6)

    rates = matplotlib.figure.Figure(figsize=(5, 4.5), layout="constrained")
    ax = rates.subplots()
    shift = data.sel(residual="mean_shift").where(data.sel(residual="mean_shift").resolved)
    inside = shift.eps <= shift.gap_limit
    for mask, label, marker in ((inside, "eps inside the limit", "o"), (~inside, "outside", "x")):
        ax.scatter(shift.rate.where(mask).values.ravel(),
                   (1 - shift.eps * shift.gap).where(mask).values.ravel(),
                   marker=marker, s=14, label=f"[P0] 1 - eps λ2, {label}")  # fmt: skip
    ax.scatter(shift.rate.values.ravel(), shift.rate_exact.values.ravel(), s=4, color="k",
               label="exact max |1 - eps (1 - mu_i)|")  # fmt: skip
    ax.axline((0, 0), slope=1, color="0.6", lw=0.8)
    ax.set(xlabel="measured rate", ylabel="predicted rate", xlim=(-0.05, 1.05))
    ax.set_title("fixed P, mean-shift residual", fontsize=9)
    ax.legend(fontsize=6)

    dims, betas = data.sphere_dim.values, data.sphere_beta.values
    clusters = matplotlib.figure.Figure(figsize=(4.2 * len(dims), 3.8), layout="constrained")
    axes = np.atleast_1d(clusters.subplots(1, len(dims), squeeze=False)[0])
    counts = data.clusters.where(~data.sphere_nonfinite).isel(sphere_tokens=-1).mean("sphere_seed")
    n = int(data.sphere_tokens.values[-1])
    image = None
    for ax, dim in zip(axes, dims, strict=True):
        grid = counts.sel(sphere_dim=dim).transpose("sphere_beta", "time").values
        image = ax.pcolormesh(data.time.values, np.arange(len(betas)), grid, shading="nearest",
                              norm=matplotlib.colors.LogNorm(1, n), cmap="viridis")  # fmt: skip
        ax.set(xscale="log", xlabel="time t (layers x dt)", ylabel="beta",
               yticks=np.arange(len(betas)), yticklabels=[f"{b:g}" for b in betas])  # fmt: skip
        ax.set_title(f"sphere dynamics, n = {n}, d = {dim}", fontsize=9)
    if image is not None:
        clusters.colorbar(image, ax=axes, label=f"mean clusters (tol {cfg.cluster_tol:g})")
    return dict(distance=distance, fixed_rates=rates, clusters=clusters)


def run(cfg: Config, options: sweep.Options | None = None) -> Report:
    cfg = scaled(cfg, QUICK, PAPER)
    check(cfg)
    with jax.enable_x64(True):  # rates to ~1e-6 need float64 (module docstring)
        data = xr.merge([simulate_fixed(cfg, options), simulate_softmax(cfg, options),
                         simulate_pure(cfg, options), simulate_sphere(cfg, options)],
                        combine_attrs="drop_conflicts")  # fmt: skip
    # the sphere claims' beta ranges travel with the data the claims are decided on
    data = data.assign_attrs(consensus_beta=cfg.consensus_beta, metastable_beta=cfg.metastable_beta)
    return Report(experiment="attention_clusters", claims=CLAIMS.evaluate(data, config=cfg),
                  data=data, figures=figures(data, cfg), config=dataclasses.asdict(cfg),
                  seed=cfg.seed, notes=notes(data, cfg))  # fmt: skip


if __name__ == "__main__":  # the same as `spectral-sim run attention_clusters [flags]`
    from spectral_sim import cli

    sys.exit(cli.main(["run", "attention_clusters", *sys.argv[1:]]))
