"""One-pass SGD grid throughput: one compiled jit(vmap) call over configs x seeds, against a
per-config jitted loop and a plain NumPy loop of the same algorithm (float32, eigenbasis).

Prints one JSON object per workload as its last line and writes them all to
benchmarks/results/<machine>.json.
"""

import json
import time

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks._common import best_of, machine, write_results
from spectral_sim import PowerLaw, runtime, simulate
from spectral_sim.models import linear

N_MODES, BATCH, N_STEPS, N_SEEDS = 256, 4, 500, 32
S_GRID = np.linspace(1.5, 3.0, 8)
LR_GRID = np.linspace(0.1, 0.5, 4)


def _params(s, lr):
    spectrum = PowerLaw(s=jnp.float32(s), a=jnp.float32(2.0), n_modes=N_MODES)
    return linear.Params(spectrum, lr=jnp.float32(lr), noise=jnp.float32(0.01), batch=BATCH)


def _one(params, key):
    return simulate.trajectory(linear, params, key, n_records=10, every=N_STEPS // 10)[1].loss


def main() -> list[dict]:
    s, lr = (g.ravel() for g in np.meshgrid(S_GRID, LR_GRID))
    keys = jax.random.split(jax.random.key(0), N_SEEDS)
    grid = jax.vmap(_params)(jnp.asarray(s, jnp.float32), jnp.asarray(lr, jnp.float32))
    over_seeds = jax.vmap(_one, in_axes=(None, 0))
    batched = jax.jit(jax.vmap(over_seeds, in_axes=(0, None)))
    per_config = jax.jit(over_seeds)

    t_batched = best_of(lambda: batched(grid, keys).block_until_ready())
    configs = list(zip(s, lr, strict=True))
    t_loop = best_of(lambda: [per_config(_params(*c), keys).block_until_ready() for c in configs])
    t_numpy = _numpy_loop(s[:2], lr[:2]) * len(s) / 2  # 2 configs, scaled to the grid
    runs = len(s) * N_SEEDS
    flops = runs * N_STEPS * 4 * BATCH * N_MODES  # two matvecs of B x M per step
    result = dict(
        benchmark="sgd_grid",
        machine=machine(),
        devices=[str(d) for d in jax.devices()],
        configs=len(s),
        seeds=N_SEEDS,
        steps=N_STEPS,
        modes=N_MODES,
        batch=BATCH,
        seconds_batched=t_batched,
        runs_per_second=runs / t_batched,
        gflops_per_second=flops / t_batched / 1e9,
        speedup_vs_jit_loop=t_loop / t_batched,
        speedup_vs_numpy=t_numpy / t_batched,
    )
    return [result]


def _numpy_loop(s_values, lr_values) -> float:
    """The same SGD, one config and one seed at a time, in NumPy float32."""
    rng = np.random.default_rng(0)
    k = np.arange(1, N_MODES + 1, dtype=np.float32)
    start = time.perf_counter()
    for s, lr in zip(s_values, lr_values, strict=True):
        lam, target = k**-s, k ** ((s - 2.0) / 2)
        for _ in range(N_SEEDS):
            v = -target.astype(np.float32)
            for _ in range(N_STEPS):
                x = rng.standard_normal((BATCH, N_MODES), dtype=np.float32) * np.sqrt(lam)
                xi = np.float32(0.1) * rng.standard_normal(BATCH, dtype=np.float32)
                v = v - np.float32(lr / BATCH) * (x.T @ (x @ v - xi))
    return time.perf_counter() - start


if __name__ == "__main__":
    # float32 sweeps as users run them; no compilation cache, so compile times are measured
    runtime.configure(x64=False, compilation_cache=False)
    results = main()
    write_results(results)
    for result in results:
        print(json.dumps(result))
