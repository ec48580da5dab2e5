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
"""

import dataclasses
import sys

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from spectral_sim import claims, sweep, theory, validity
from spectral_sim.models import attention
from spectral_sim.registry import scaled
from spectral_sim.report import Report

from .attention_clusters import kernel_p

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
    seed: int = 0
    quick: bool = False
    """CPU-minute scale (`make run`, tests): fields left at their defaults take QUICK values."""
    paper: bool = False
    """The papers' scale (`--scale paper`, meant for a GPU): fields left at their defaults take
    PAPER values. The defaults are the full scale: at most 30 minutes on 2 CPU cores."""


QUICK = dict(bandwidth=(1.0,), n_kernels=2, budget=32)
# The paper scale: [P0] gives no sizes; more tokens, draws and points per search.
PAPER = dict(n_tokens=64, n_kernels=8, budget=256)


def check(cfg: Config) -> None:
    """Reject bad configs with the field name and valid range, before anything compiles."""
    if len(cfg.bandwidth) == 0 or min(cfg.bandwidth) <= 0:
        raise ValueError(f"bandwidth must list values > 0; got {cfg.bandwidth}")
    if not 0 < cfg.eps_low < cfg.eps_high < 2:
        raise ValueError(f"eps_low and eps_high must satisfy 0 < eps_low < eps_high < 2 (stable "
                         f"steps); got {cfg.eps_low}, {cfg.eps_high}")  # fmt: skip
    if not cfg.rate_tol > 0:
        raise ValueError(f"rate_tol must be > 0; got {cfg.rate_tol}")
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
_spectrum = jax.jit(theory.attention.attention_spectrum)


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
            mu = np.asarray(_spectrum(P))
            crossings = list(zip(found.boundary("eps"), found.resolution("eps"), strict=True))
            located, resolution = crossings[0] if len(crossings) == 1 else (np.nan, np.nan)
            samples = found.samples
            rows.append(xr.Dataset(
                dict(
                    error=("sample", np.abs(samples.measured.values - samples.predicted.values)),
                    eps=("sample", samples.eps.values), origin=("sample", samples.origin.values),
                    located=((), located), resolution=((), resolution),
                    crossings=((), len(crossings)),
                    eps_star=((), 2 / (2 - mu[1] - mu[-1])),
                    eps_tol=((), (2 + cfg.rate_tol) / (2 - mu[1] - mu[-1])),
                ),
            ).expand_dims(bandwidth=[bandwidth], draw=[draw]))  # fmt: skip
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
        data = gap_rate_maps(cfg, options)
    data = data.assign_attrs(rate_tol=cfg.rate_tol, eps_low=cfg.eps_low, eps_high=cfg.eps_high)
    notes = [f"h = {float(d.bandwidth):g}, draw {int(d.draw)}: located {float(d.located):.6f} ± "
             f"{float(d.resolution):.2g} (crossings {int(d.crossings)}), eps_tol "
             f"{float(d.eps_tol):.6f}, eps* {float(d.eps_star):.6f}"
             for d in (data.sel(bandwidth=b, draw=w) for b in data.bandwidth.values
                       for w in data.draw.values)]  # fmt: skip
    return Report(experiment="validity_maps", claims=CLAIMS.evaluate(data, config=cfg),
                  data=data, figures=figures(data), config=dataclasses.asdict(cfg),
                  seed=cfg.seed, notes=notes)  # fmt: skip


if __name__ == "__main__":  # the same as `spectral-sim run validity_maps [flags]`
    from spectral_sim import cli

    sys.exit(cli.main(["run", "validity_maps", *sys.argv[1:]]))
