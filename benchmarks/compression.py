"""Compression and evolution workloads: (1) the pruning-damage heat map of the compression
experiment, Delta L over (K, t) for a GF model with M modes, as one jitted vmap over K against a
per-(K, t) NumPy loop of the same truncation; (2) preconditioned GD on M modes for several rho at
once through the sweep engine, as mode-updates per second against a per-rho NumPy loop.

`python -m benchmarks.compression [--quick]`: readable lines, then one JSON object per workload
(the last lines); a full run merges them into benchmarks/results/<machine>.json.
"""

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks._common import best_of, environment, finish, publish
from spectral_sim import PowerLaw, runtime, simulate, sweep
from spectral_sim.diagnostics import compression
from spectral_sim.models import evolution, linear


def _heatmap(n_modes: int, n_keep: int, n_times: int) -> dict:
    spectrum = PowerLaw(s=jnp.float32(2.0), a=jnp.float32(2.5), n_modes=n_modes)
    t = np.geomspace(0.1, 1e6, n_times).astype(np.float32)
    keep = np.unique(np.round(np.geomspace(1, n_modes, n_keep))).astype(np.int32)
    params = linear.Params(spectrum)

    @jax.jit
    def damage(t, keep):
        state, _ = linear.gf(params, t)
        q, theta = compression.trained(params, linear.State(state.v, state.t))
        base = compression.loss(q, theta)
        return (
            jax.vmap(lambda k: compression.loss(q, compression.truncate(q, theta, K=k)))(keep)
            - base[None]
        )

    seconds = best_of(lambda: damage(t, keep).block_until_ready())
    lam = np.arange(1, n_modes + 1, dtype=np.float32) ** -2.0
    target = np.arange(1, n_modes + 1, dtype=np.float32) ** -0.25  # k^((s - a)/2)
    start = time.perf_counter()
    out = np.empty((keep.size, t.size), np.float32)
    for j, time_ in enumerate(t):  # the usual form: a model per time, a copy per K
        w = target * -np.expm1(-lam * time_)
        base = 0.5 * np.sum(lam * (w - target) ** 2)
        for i, k in enumerate(keep):
            pruned = w.copy()
            pruned[k:] = 0.0
            out[i, j] = 0.5 * np.sum(lam * (pruned - target) ** 2) - base
    t_numpy = time.perf_counter() - start
    # float32 cancellation in w - w* leaves absolute errors ~ eps L(0): compare on that scale
    error = float(np.max(np.abs(np.asarray(damage(t, keep)) - out)) / np.max(out))
    print(f"pruning heat map: M = {n_modes}, {keep.size} K x {n_times} t")
    print(f"  one jitted vmap: {seconds * 1e3:.2f} ms; NumPy loop: {t_numpy * 1e3:.1f} ms; "
          f"speed-up {t_numpy / seconds:.1f}x (max difference {error:.1e} of the largest "
          "damage)")  # fmt: skip
    return dict(benchmark="compression_heatmap", n_modes=n_modes, n_keep=int(keep.size),
                n_times=n_times, seconds=seconds, numpy_seconds=t_numpy,
                speedup_vs_numpy=t_numpy / seconds, max_relative_difference=error)  # fmt: skip


def _preconditioned(n_modes: int, steps: int, rhos: np.ndarray) -> dict:
    template = evolution.Params(PowerLaw(s=2.0, a=2.0, n_modes=n_modes), lr=1.0)

    def run(params, key):
        params = jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), params)
        return dict(loss=simulate.trajectory(evolution.preconditioned, params, key,
                                             n_records=1, every=steps)[1].loss)  # fmt: skip

    grid = sweep.Grid(product=dict(rho=list(rhos)))

    def call():
        return sweep.run(run, sweep.make_from(template), grid, progress=False)

    seconds = best_of(call, repeats=3)
    rate = rhos.size * steps * n_modes / seconds
    lam = np.arange(1, n_modes + 1, dtype=np.float32) ** -2.0
    timed = max(1, rhos.size // 4)
    start = time.perf_counter()
    for rho in rhos[:timed]:
        w = np.zeros(n_modes, np.float32)
        gain = (lam**rho).astype(np.float32)
        for _ in range(steps):
            w -= gain * (w - 1.0)
    t_numpy = (time.perf_counter() - start) * rhos.size / timed
    print(f"preconditioned GD: {rhos.size} rho x {steps} steps x {n_modes} modes")
    print(
        f"  one sweep call: {seconds:.2f} s = {rate / 1e9:.2f} G mode-updates/s; per-rho NumPy "
        f"loop: {t_numpy:.2f} s ({timed} timed, scaled); speed-up {t_numpy / seconds:.1f}x"
    )
    return dict(benchmark="compression_preconditioned", n_modes=n_modes, steps=steps,
                n_rho=int(rhos.size), seconds=seconds, mode_updates_per_second=rate,
                numpy_seconds=t_numpy, numpy_rho_timed=timed,
                speedup_vs_numpy=t_numpy / seconds)  # fmt: skip


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke sizes")
    args = parser.parse_args(argv)
    if args.quick:
        results = [_heatmap(256, 10, 8), _preconditioned(1024, 200, np.array([0.75, 1.5]))]
    else:
        results = [_heatmap(4096, 40, 30),
                   _preconditioned(2**15, 5000, np.linspace(0.5, 1.5, 8))]  # fmt: skip
    for result in results:
        result.update(quick=args.quick, **environment())
        publish(result)
    finish(results, args.quick)
    return results


if __name__ == "__main__":
    # float32 sweeps as users run them; no compilation cache, so compile times are measured
    runtime.configure(x64=False, compilation_cache=False)
    main()
