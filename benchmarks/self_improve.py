"""The model-collapse linear-regression grid of Gerstgrasser et al. 2024 / Schaeffer et al. 2025
(replace, accumulate and accumulate-subsample loops of least squares on isotropic Gaussian
data, d = 10, float32) as sweep calls, against per-run NumPy loops with one `pinv` per
generation (the way those studies ran it; a subset of runs is timed and scaled, and the output
says so). Two protocols:

- published: 5 sample sizes T (10 to 200, so T = d too) x 3 noise levels x 3 regimes x 100 seeds
  x 100 generations on a fixed design X_0 (the same inputs every generation), T traced: one
  program per regime, rows padded to the largest T;
- short: 5 T (20 to 500) x 3 noise levels x 3 regimes x 100 seeds x 10 generations on a fresh
  design, with T static (one program per regime and T) and T traced (one per regime).

`python -m benchmarks.self_improve [--quick]`: readable lines, then one JSON object as the last
line; a full run merges it into benchmarks/results/<machine>.json.
"""

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks._common import best_of, environment, finish, one_blas_thread, publish
from spectral_sim import runtime, simulate, sweep
from spectral_sim.models import self_improve

DIM = 10
REGIMES = ("replace", "accumulate", "subsample")
NOISES = (0.1, 0.5, 1.0)
PUBLISHED = {False: (10, 20, 50, 100, 200), True: (10, 20)}
SHORT = {False: (20, 50, 100, 200, 500), True: (20, 50)}


def _numpy_seconds(samples, generations: int, runs: int, design: str) -> float:
    """`runs` loops (cycling through the grid) in NumPy float32: inputs X drawn once (fixed
    design) or every generation (fresh), labels from the previous fit, w = pinv(X) y on the
    regime's rows."""
    rng = np.random.default_rng(0)
    grid = [(r, t, s) for r in REGIMES for t in samples for s in NOISES]
    start = time.perf_counter()
    for i in range(runs):
        regime, T, noise = grid[i % len(grid)]
        w_star = np.full(DIM, DIM**-0.5, np.float32)
        w = w_star
        x = rng.standard_normal((T, DIM)).astype(np.float32)
        xs, ys = [], []
        for n in range(generations):
            if design == "fresh" and n:
                x = rng.standard_normal((T, DIM)).astype(np.float32)
            y = x @ (w_star if n == 0 else w) + np.sqrt(noise) * rng.standard_normal(T)
            xs.append(x)
            ys.append(y.astype(np.float32))
            if regime == "replace":
                fit_x, fit_y = x, ys[-1]
            else:
                fit_x, fit_y = np.concatenate(xs), np.concatenate(ys)
                if regime == "subsample":
                    rows = rng.choice(len(fit_y), T, replace=False)
                    fit_x, fit_y = fit_x[rows], fit_y[rows]
            w = np.linalg.pinv(fit_x) @ fit_y
    return time.perf_counter() - start


def _numpy_one_thread(samples, generations: int, runs: int, design: str) -> float:
    """`_numpy_seconds` with one BLAS thread: NumPy at its best here, against the published
    code as it runs (default threads)."""
    call = f"_numpy_seconds({tuple(samples)}, {generations}, {runs}, {design!r})"
    return one_blas_thread("self_improve", call)


def _timed(make, grid, generations: int) -> tuple[float, float, int, int]:
    """(warm seconds, seconds of the first call with its compilation, non-finite runs, compile
    groups)."""

    def run(params, key):
        params = jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), params)
        return simulate.trajectory(self_improve, params, key, n_records=generations)[1].error

    def call():
        return sweep.run(run, make, grid, progress=False)

    start = time.perf_counter()
    data = call()
    cold = time.perf_counter() - start
    warm = best_of(call, repeats=3, warmup=False)
    return warm, cold, int(data.nonfinite.sum()), int(data.attrs["compile_groups"])


def _grid(samples, seeds: int) -> sweep.Grid:
    return sweep.Grid(
        product=dict(regime=list(REGIMES), samples=list(samples), noise=list(NOISES)),
        n_seeds=seeds,
    )


def published(quick: bool) -> dict:
    """The published protocol: 100 generations on a fixed design, T traced."""
    samples = PUBLISHED[quick]
    seeds, generations = (10, 5) if quick else (100, 100)
    runs = len(REGIMES) * len(samples) * len(NOISES) * seeds

    def make(regime, samples, noise):
        """One program per regime: every run has max(T) rows, the first `samples` drawn."""
        return self_improve.Params(
            dim=DIM, samples=max(PUBLISHED[quick]), generations=generations, noise=noise,
            regime=regime, design="fixed", n_samples=samples,
        )  # fmt: skip

    warm, cold, nonfinite, groups = _timed(make, _grid(samples, seeds), generations)
    timed = 18 if quick else 135  # 3 runs of each of the 45 configurations
    t_numpy = _numpy_seconds(samples, generations, timed, "fixed") * runs / timed
    t_single = _numpy_one_thread(samples, generations, timed, "fixed") * runs / timed
    print(f"model-collapse grid, published protocol: {runs} runs x {generations} generations on a "
          f"fixed design (d = {DIM}, T in {samples}, float32)")  # fmt: skip
    print(f"  one sweep call, T traced ({groups} programs): {warm:.2f} s warm, {cold:.1f} s with "
          f"compilation")  # fmt: skip
    print(
        f"  per-run NumPy loop (pinv per generation): {t_numpy:.1f} s ({timed} runs timed, "
        f"scaled to {runs}); speed-up {t_numpy / warm:.0f}x warm, {t_numpy / cold:.1f}x cold"
    )
    print(f"  the same with one BLAS thread: {t_single:.1f} s; speed-up {t_single / warm:.0f}x "
          f"warm, {t_single / cold:.1f}x cold")  # fmt: skip
    print(f"  non-finite runs: {nonfinite}")
    return dict(
        runs=runs, generations=generations, samples=list(samples), design="fixed",
        compile_groups=groups, seconds=warm, seconds_with_compile=cold, numpy_seconds=t_numpy,
        numpy_runs_timed=timed, speedup_vs_numpy=t_numpy / warm,
        speedup_vs_numpy_cold=t_numpy / cold, numpy_one_thread_seconds=t_single,
        speedup_vs_numpy_one_thread=t_single / warm,
        speedup_vs_numpy_one_thread_cold=t_single / cold, nonfinite=nonfinite,
    )  # fmt: skip


def short(quick: bool) -> dict:
    """The short protocol: 10 generations on a fresh design, T static and T traced."""
    samples = SHORT[quick]
    seeds, generations = (10, 5) if quick else (100, 10)
    grid = _grid(samples, seeds)
    runs = len(REGIMES) * len(samples) * len(NOISES) * seeds

    def per_size(regime, samples, noise):
        """T static: one program per (regime, T), each drawing exactly T rows."""
        return self_improve.Params(
            dim=DIM, samples=samples, generations=generations, noise=noise, regime=regime
        )

    def traced_size(regime, samples, noise):
        """T traced: every run draws max(T) rows and keeps its first T, one program per
        regime."""
        return self_improve.Params(
            dim=DIM, samples=max(SHORT[quick]), generations=generations, noise=noise,
            regime=regime, n_samples=samples,
        )  # fmt: skip

    static, static_cold, bad_static, static_groups = _timed(per_size, grid, generations)
    traced, traced_cold, bad_traced, traced_groups = _timed(traced_size, grid, generations)
    timed = 45 if quick else 450
    t_numpy = _numpy_seconds(samples, generations, timed, "fresh") * runs / timed
    nonfinite = bad_static + bad_traced
    print(f"model-collapse grid, short protocol: {runs} runs x {generations} generations on a "
          f"fresh design (d = {DIM}, T in {samples}, float32)")  # fmt: skip
    print(f"  one sweep call, T static ({static_groups} programs): {static:.2f} s warm, "
          f"{static_cold:.1f} s with compilation")  # fmt: skip
    print(f"  one sweep call, T traced ({traced_groups} programs): {traced:.2f} s warm, "
          f"{traced_cold:.1f} s with compilation")  # fmt: skip
    print(
        f"  per-run NumPy loop (pinv per generation): {t_numpy:.1f} s ({timed} runs timed, scaled "
        f"to {runs}); speed-up {t_numpy / static:.1f}x warm (T static), "
        f"{t_numpy / traced_cold:.2f}x cold (T traced)"
    )
    print(f"  non-finite runs: {nonfinite}")
    return dict(
        runs=runs, generations=generations, dim=DIM, samples=list(samples), noise=list(NOISES),
        seconds=static, seconds_with_compile=static_cold, traced_seconds=traced,
        traced_seconds_with_compile=traced_cold, numpy_seconds=t_numpy, numpy_runs_timed=timed,
        speedup_vs_numpy=t_numpy / static, speedup_vs_numpy_cold=t_numpy / traced_cold,
        nonfinite=nonfinite,
    )  # fmt: skip


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 sizes x 10 seeds x 5 generations")
    args = parser.parse_args(argv)
    paper = published(args.quick)
    brief = short(args.quick)
    # nonfinite: the runs of both protocols that ended non-finite
    out = dict(benchmark="self_improve_grid", **brief, published=paper, quick=args.quick)
    out.update(nonfinite=brief["nonfinite"] + paper["nonfinite"], **environment())
    publish(out)
    finish([out], args.quick)
    return out


if __name__ == "__main__":
    # float32 sweeps as users run them; no compilation cache, so compile times are measured
    runtime.configure(x64=False, compilation_cache=False)
    main()
