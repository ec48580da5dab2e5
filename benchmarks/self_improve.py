"""The model-collapse linear-regression grid of Gerstgrasser et al. 2024 / Schaeffer et al. 2025
(replace, accumulate and accumulate-subsample loops of OLS on isotropic Gaussian data) as one
sweep call: 5 sample sizes x 3 noise levels x 3 regimes x 100 seeds x 10 generations, d = 10,
float32, against a per-run NumPy loop with one `pinv` per generation (the way that study ran it;
a subset of runs is timed and scaled, and the output says so).

`python -m benchmarks.self_improve [--quick]`: readable lines, then one JSON object as the last
line; a full run merges it into benchmarks/results/<machine>.json.
"""

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks._common import best_of, environment, finish, publish
from spectral_sim import runtime, simulate, sweep
from spectral_sim.models import self_improve

DIM = 10
REGIMES = ("replace", "accumulate", "subsample")
SAMPLES = {False: (20, 50, 100, 200, 500), True: (20, 50)}


def _numpy_seconds(samples, noises, generations: int, runs: int) -> float:
    """`runs` loops (cycling through the grid) in NumPy float32: fresh X each generation,
    labels from the previous fit, w = pinv(X) y on the regime's rows."""
    rng = np.random.default_rng(0)
    grid = [(r, t, s) for r in REGIMES for t in samples for s in noises]
    start = time.perf_counter()
    for i in range(runs):
        regime, T, noise = grid[i % len(grid)]
        w_star = np.full(DIM, DIM**-0.5, np.float32)
        w = w_star
        xs, ys = [], []
        for n in range(generations):
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


def _timed(make, grid, generations: int) -> tuple[float, float, int]:
    """(warm seconds, seconds of the first call with its compilation, non-finite runs)."""

    def run(params, key):
        params = jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), params)
        return simulate.trajectory(self_improve, params, key, n_records=generations)[1].error

    def call():
        return sweep.run(run, make, grid, progress=False)

    start = time.perf_counter()
    data = call()
    cold = time.perf_counter() - start
    return best_of(call, repeats=3, warmup=False), cold, int(data.nonfinite.sum())


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 sizes x 10 seeds x 5 generations")
    args = parser.parse_args(argv)
    samples = SAMPLES[args.quick]
    noises = (0.1, 0.5, 1.0)
    seeds, generations = (10, 5) if args.quick else (100, 10)
    grid = sweep.Grid(
        product=dict(regime=list(REGIMES), samples=list(samples), noise=list(noises)),
        n_seeds=seeds,
    )
    runs = len(REGIMES) * len(samples) * len(noises) * seeds

    def per_size(regime, samples, noise):
        """T static: one program per (regime, T), each drawing exactly T rows."""
        return self_improve.Params(
            dim=DIM, samples=samples, generations=generations, noise=noise, regime=regime
        )

    def traced_size(regime, samples, noise):
        """T traced: every run draws max(T) rows and keeps its first T (`sizes`), one program
        per regime."""
        return self_improve.Params(
            dim=DIM, samples=max(samples_all), generations=generations, noise=noise,
            regime=regime, sizes=jnp.full(generations, samples),
        )  # fmt: skip

    samples_all = samples
    static, static_cold, bad_static = _timed(per_size, grid, generations)
    traced, traced_cold, bad_traced = _timed(traced_size, grid, generations)
    timed = 45 if args.quick else 450
    t_numpy = _numpy_seconds(samples, noises, generations, timed) * runs / timed
    nonfinite = bad_static + bad_traced
    print(f"model-collapse grid: {runs} runs x {generations} generations (d = {DIM}, float32)")
    print(f"  one sweep call, T static ({len(REGIMES) * len(samples)} programs): {static:.2f} s "
          f"warm, {static_cold:.1f} s with compilation")  # fmt: skip
    print(f"  one sweep call, T traced ({len(REGIMES)} programs): {traced:.2f} s warm, "
          f"{traced_cold:.1f} s with compilation")  # fmt: skip
    print(
        f"  per-run NumPy loop (pinv per generation): {t_numpy:.1f} s ({timed} runs timed, scaled "
        f"to {runs}); speed-up {t_numpy / static:.1f}x warm (T static), "
        f"{t_numpy / traced_cold:.2f}x cold (T traced)"
    )
    print(f"  non-finite runs: {nonfinite}")
    out = dict(
        benchmark="self_improve_grid", runs=runs, generations=generations, dim=DIM,
        samples=list(samples), noise=list(noises), seconds=static,
        seconds_with_compile=static_cold, traced_seconds=traced,
        traced_seconds_with_compile=traced_cold, numpy_seconds=t_numpy, numpy_runs_timed=timed,
        speedup_vs_numpy=t_numpy / static, speedup_vs_numpy_cold=t_numpy / traced_cold,
        nonfinite=nonfinite, quick=args.quick, **environment(),
    )  # fmt: skip
    publish(out)
    finish([out], args.quick)
    return out


if __name__ == "__main__":
    # float32 sweeps as users run them; no compilation cache, so compile times are measured
    runtime.configure(x64=False, compilation_cache=False)
    main()
