"""Sweep-engine throughput as fractions of this machine's peaks, all measured in the same run
(float32): `python -m benchmarks.sweep [--quick] [--only W1,W2,W3,W4,scaling]`.

- W1: random-feature SGD (M = 1024 modes, N = 256 features, B = 32) through `sweep.run`:
  GFLOP/s over the measured float32 matmul peak, against a NumPy and a per-config `jax.jit`
  loop, and where the time goes (normal draws, the x @ F matmul, recording) per PRNG.
- W2: eigenbasis SGD (10^4 modes, B = 1, 1024 configs): state bytes/s over copy bandwidth.
- W3: predictors on a 10^4-point grid: the exact GF loss (exp/s: compute bound) and the exact
  SGD recursion (state bytes/s: bandwidth bound).
- W4: the exact momentum recursion (`theory.momentum.sgd`): 10^4 modes x 10^4 steps over a
  1,000-point (lr, beta) grid of heavy ball: state bytes/s over copy bandwidth.
- scaling: W1's cost from 16 to 1024 configs, peak RSS, the planner's bytes per chunk.

Each workload prints readable lines and then, as its last line, one JSON object; a full run
merges them into benchmarks/results/<machine>.json. No timed assertions: every number printed
is a ratio or a rate measured in this run, on this machine.
"""

import argparse
import contextlib
import dataclasses
import functools
import math
import os
import resource
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks._common import best_of, environment, finish, publish
from spectral_sim import PowerLaw, runtime, simulate, sweep, theory
from spectral_sim._types import Simulator
from spectral_sim.models import linear, momentum, random_features

RF_MODES, RF_FEATURES, RF_BATCH = 1024, 256, 32
N_SEEDS = 4
BUFFER = 8  # blocks of normals drawn once and cycled by the RNG-free variants
# (impl, jax_threefry_partitionable) pairs timed in W1. threefry4x32 is left out: on JAX 0.10.2
# its draws under vmap run orders of magnitude slower than its unbatched draws (minutes for a
# few 32 x 1024 blocks), so a W1 sweep with it does not finish in this benchmark's budget.
# rbg and unsafe_rbg are left out because the sweep engine refuses them (their vmapped draws
# depend on the batch); timed outside the engine they reached 55% of peak, below threefry2x32
# with partitionable=False.
PRNGS = (
    ("threefry2x32", True),
    ("threefry2x32", False),
    ("philox2x32", True),
    ("philox4x32", True),
)
WORKLOADS = ("W1", "W2", "W3", "W4", "scaling")


@dataclasses.dataclass(frozen=True)
class Sizes:
    """Workload sizes. FULL keeps each workload under about two minutes on a 2-core CPU; QUICK is
    a smoke run of the same code paths in under a minute."""

    w1_axis: int = 4  # values of s and of lr: axis^2 points x N_SEEDS seeds
    w1_steps: int = 1000
    w1_records: int = 4
    w1_breakdown_steps: int = 200  # the time breakdown and PRNG comparison (per-step costs)
    w1_numpy_configs: int = 2
    w1_jit_loop_configs: int = 8
    w2_modes: int = 10_000
    w2_axis: int = 16
    w2_steps: int = 500
    w2_records: int = 4
    w2_cache_chunk: int = 64  # points (x 4 seeds): 10 MiB of state at 10^4 modes, in the cache
    w3_modes: int = 10_000
    w3_axis: int = 100  # axis^2 configs for both predictors
    w3_records: int = 100
    w3_chunk: int = 256  # a cache-sized chunk for the SGD recursion, against the default
    w4_modes: int = 10_000
    w4_steps: int = 10_000
    w4_configs: tuple[int, int] = (40, 25)  # (lr values, beta values): 1,000 points
    scaling_configs: tuple[int, ...] = (16, 64, 256, 1024)
    scaling_steps: int = 100
    repeats: int = 2
    breakdown_repeats: int = 3  # W1's PRNG comparison: best of 3 against this VM's noise
    # (rows, inner, columns) of the float32 matmuls whose best rate is the peak: squares, and
    # W1's own x @ F for its 64 configs (2048 x 1024 @ 1024 x 256)
    matmul_shapes: tuple[tuple[int, int, int], ...] = (
        (1024, 1024, 1024),
        (2048, 2048, 2048),
        (4096, 4096, 4096),
        (2048, 1024, 256),
    )
    copy_mib: int = 1024  # larger than the last-level cache, so the copy streams from DRAM


FULL = Sizes()
QUICK = Sizes(
    w1_axis=2,
    w1_steps=100,
    w1_breakdown_steps=40,
    w1_numpy_configs=1,
    w1_jit_loop_configs=2,
    w2_modes=2000,
    w2_axis=4,
    w2_steps=100,
    w3_modes=1000,
    w3_axis=16,
    w3_records=20,
    w3_chunk=64,
    w4_modes=1000,
    w4_steps=200,
    w4_configs=(4, 4),
    scaling_configs=(16, 64),
    scaling_steps=20,
    repeats=1,
    breakdown_repeats=1,
    matmul_shapes=((1024, 1024, 1024), (512, 1024, 256)),
    copy_mib=256,
)


# --- this machine's peaks -------------------------------------------------------------------


class Peaks:
    """Peak rates measured once per run and shared by the workloads."""

    def __init__(self, sizes: Sizes):
        self.sizes = sizes

    @functools.cached_property
    def matmul_gflops(self) -> float:
        """Best float32 GFLOP/s (2 r k c flops) of a jitted r x k @ k x c matmul over the shapes
        tried, best of 5 each; XLA's CPU dot uses every core."""
        matmul = jax.jit(jnp.matmul)
        best = 0.0
        for rows, inner, columns in self.sizes.matmul_shapes:
            a = jax.random.normal(jax.random.key(1), (rows, inner), jnp.float32)
            b = jax.random.normal(jax.random.key(2), (inner, columns), jnp.float32)
            seconds = best_of(lambda a=a, b=b: matmul(a, b).block_until_ready(), 5)
            best = max(best, 2 * rows * inner * columns / seconds / 1e9)
        return best

    @functools.cache  # noqa: B019 (one Peaks per run)
    def copy_gbps(self, n_bytes: int) -> float:
        """STREAM-like scale kernel x <- c x on an n_bytes float32 array, in place (the input is
        donated, so the output needs no freshly faulted pages): GB/s with bytes = read + write."""
        scale = jax.jit(lambda x, c: x * c, donate_argnums=0)
        factor = jnp.float32(1.0)
        buffer = [jnp.ones(n_bytes // 4, jnp.float32)]

        def once():
            buffer[0] = scale(buffer[0], factor).block_until_ready()

        return 2 * n_bytes / best_of(once, 10) / 1e9

    @property
    def dram_gbps(self) -> float:
        return self.copy_gbps(self.sizes.copy_mib * 2**20)

    @functools.cached_property
    def exp_per_second(self) -> float:
        """float32 exp/s of XLA's exp at its best: x <- exp(-x) 50 times in place on a 4 MiB
        (cache-resident) array, and a fused exp-and-sum; the faster of the two."""
        n, inner = 2**20, 50
        loop = jax.jit(
            lambda x: jax.lax.fori_loop(0, inner, lambda i, y: jnp.exp(-y), x), donate_argnums=0
        )
        summed = jax.jit(lambda x, c: jnp.sum(jnp.exp(-c * x)))
        buffer = [jnp.linspace(0.0, 1.0, n, dtype=jnp.float32)]
        x = jnp.linspace(0.0, 1.0, 16 * n, dtype=jnp.float32)

        def once():
            buffer[0] = loop(buffer[0]).block_until_ready()

        in_place = n * inner / best_of(once, 5)
        fused = x.size / best_of(lambda: summed(x, jnp.float32(2.0)).block_until_ready(), 5)
        return max(in_place, fused)


# --- shared pieces ---------------------------------------------------------------------------


def _loss_run(model, steps: int, n_records: int) -> Callable:
    """simulate(params, key) for the sweep: the observables at n_records evenly spaced steps.
    A new function object per call: the sweep caches compiled programs by function, and a
    cached program does not follow a change of jax_threefry_partitionable."""
    every = steps // n_records

    def run(params, key):
        return simulate.trajectory(model, params, key, n_records=n_records, every=every)[1]

    return run


def _run_sweep(run: Callable, make: Callable, grid: sweep.Grid, **kwargs):
    return sweep.run(run, make, grid, progress=False, **kwargs)


def _time_sweep(run, make, grid, repeats: int, **kwargs) -> tuple[float, Any]:
    """Best-of-`repeats` seconds of a whole `sweep.run`, after one untimed run that compiles
    and fits the chunk to the budget; and the last run's dataset."""
    data = _run_sweep(run, make, grid, **kwargs)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        data = _run_sweep(run, make, grid, **kwargs)
        times.append(time.perf_counter() - start)
    return min(times), data


def _grid(axis_s: int, axis_lr: int, s=(1.25, 3.0), lr=(0.05, 0.4)) -> sweep.Grid:
    """axis_s x axis_lr points (s linear, lr log-spaced) with N_SEEDS seeds each."""
    return sweep.Grid(
        product=dict(
            s=np.linspace(*s, axis_s).round(4).tolist(), lr=np.geomspace(*lr, axis_lr).tolist()
        ),
        n_seeds=N_SEEDS,
    )


def _n_configs(grid: sweep.Grid) -> int:
    return math.prod(grid.dims.values()) * grid.n_seeds


@contextlib.contextmanager
def _prng(impl: str, partitionable: bool):
    """Run the block with this default PRNG implementation; restore the previous one after."""
    old = (jax.config.jax_default_prng_impl, jax.config.jax_threefry_partitionable)  # pyright: ignore
    jax.config.update("jax_default_prng_impl", impl)
    jax.config.update("jax_threefry_partitionable", partitionable)
    try:
        yield
    finally:
        jax.config.update("jax_default_prng_impl", old[0])
        jax.config.update("jax_threefry_partitionable", old[1])


def _prng_label(impl: str, partitionable: bool) -> str:
    return impl if partitionable or not impl.startswith("threefry") else f"{impl}-nonpartitionable"


def _vmap_faithful() -> bool:
    """Whether the default PRNG's draws under vmap equal its per-key draws. The sweep promises
    results that do not depend on chunking or devices; a PRNG that fails this breaks it."""
    keys = jax.random.split(jax.random.key(0), 3)

    def draw(key):
        return jax.random.normal(key, (4,))

    return bool(np.array_equal(jax.vmap(draw)(keys), np.stack([draw(k) for k in keys])))


class Pregenerated(NamedTuple):
    """A model's state plus BUFFER blocks of standard normals drawn once at init and cycled
    by the step counter: the RNG-free variant of a step (same shapes, same arithmetic)."""

    inner: Any
    normals: jax.Array  # (BUFFER, batch, modes)
    noise: jax.Array  # (BUFFER, batch)
    t: jax.Array


def _pregenerated(init: Callable, update: Callable) -> Simulator:
    """A Simulator whose step reads x's normals and xi's normals from the buffer instead of
    drawing them; `update(params, inner, x, xi) -> (inner, obs)` is the model's arithmetic."""

    def pre_init(params, key):
        kx, kn = jax.random.split(key)
        dtype = params.spectrum.eigenvalues().dtype
        shape = (BUFFER, params.batch, params.spectrum.n_modes)
        normals = jax.random.normal(kx, shape, dtype)
        noise = jax.random.normal(kn, shape[:2], dtype)
        return Pregenerated(init(params, None), normals, noise, jnp.zeros((), jnp.int32))

    def pre_step(params, state, key):
        del key  # unused: the draws come from the buffer
        lam = params.spectrum.eigenvalues()
        slot = state.t % BUFFER
        x = state.normals[slot] * jnp.sqrt(lam)[None]
        xi = jnp.sqrt(params.noise) * state.noise[slot]
        inner, obs = update(params, state.inner, x, xi)
        return state._replace(inner=inner, t=state.t + 1), obs

    return Simulator(pre_init, pre_step)


def _rf_update(params, state, x, xi):
    """random_features.step after its draws (copied from it: keep the two in step)."""
    y = x @ params.spectrum.target() + xi
    z = x @ state.features
    theta = state.theta - params.lr / params.batch * z.T @ (z @ state.theta - y)
    state = random_features.State(state.features, theta)
    return state, random_features.Obs(random_features.loss(params, state))


def _linear_update(params, state, x, xi):
    """linear.step after its draws (copied from linear.gradient and linear._sgd_step)."""
    grad = linear.trainable(params) * (x.T @ (x @ state.v - xi)) / params.batch
    v = state.v - params.lr * grad
    return linear.State(v, state.t + 1), linear.Obs(linear.loss(params, v))


RF_PREGENERATED = _pregenerated(random_features.init, _rf_update)
LINEAR_PREGENERATED = _pregenerated(linear.init, _linear_update)


def _peak_rss_reset() -> bool:
    """Reset this process's peak RSS (Linux: /proc/self/clear_refs), so getrusage reports the
    peak of what follows; False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


# --- W1: random-feature SGD ------------------------------------------------------------------


def _rf_make(s, lr):
    """W1's Params: lambda_k = k^-s, v_k^2 = k^-2, label noise 0.01, M = 1024, N = 256, B = 32."""
    spectrum = PowerLaw(s=s, a=2.0, n_modes=RF_MODES)
    return random_features.Params(
        spectrum, lr=lr, noise=0.01, n_features=RF_FEATURES, batch=RF_BATCH
    )


def _rf_flops(steps: int, n_records: int) -> float:
    """Flops of one W1 run (one config), counted from random_features.step with b, m, n =
    B, M, N. Per step: 2bmn (z = x @ F, the dominant term) + bm (x = g sqrt(lambda)) + 2bm
    (y = x @ w*) + b (+ xi) + 2bn (z @ theta) + b (- y) + 2bn (z^T @ r) + 2n (theta -= lr/B ...).
    Per record: 2mn (F @ theta) + 4m (- w*, square, x lambda, sum). Normal draws (bm + b per
    step) are not counted as flops; lambda and w* are loop invariants that XLA hoists."""
    b, m, n = RF_BATCH, RF_MODES, RF_FEATURES
    per_step = 2 * b * m * n + 3 * b * m + 4 * b * n + 2 * b + 2 * n
    return steps * per_step + n_records * (2 * m * n + 4 * m)


def _numpy_seconds(grid: sweep.Grid, steps: int, n_records: int, n_configs: int) -> float:
    """Seconds for n_configs configs of the same SGD in plain NumPy float32, one (s, lr, seed)
    at a time: F ~ N(0, 1/N); per step x = g sqrt(lambda), y = x w* + xi, z = x F,
    theta -= lr/B z^T (z theta - y); the loss at the record steps."""
    k = np.arange(1, RF_MODES + 1, dtype=np.float32)
    every = steps // n_records
    start = time.perf_counter()
    for index, point in enumerate(grid.points()[:n_configs]):
        rng = np.random.default_rng(index)
        s, lr = np.float32(point["s"]), np.float32(point["lr"])
        lam, target = k**-s, k ** ((s - 2) / 2)
        scale, noise = np.sqrt(lam), np.float32(0.1)  # sqrt(0.01)
        features = rng.standard_normal((RF_MODES, RF_FEATURES), np.float32) / np.sqrt(
            np.float32(RF_FEATURES)
        )
        theta = np.zeros(RF_FEATURES, np.float32)
        losses = []
        for t in range(1, steps + 1):
            x = rng.standard_normal((RF_BATCH, RF_MODES), np.float32) * scale
            y = x @ target + noise * rng.standard_normal(RF_BATCH, np.float32)
            z = x @ features
            theta -= lr / RF_BATCH * (z.T @ (z @ theta - y))
            if t % every == 0:
                losses.append(0.5 * (features @ theta - target) ** 2 @ lam)
    return time.perf_counter() - start


def _jit_loop_seconds(run: Callable, grid: sweep.Grid, n_configs: int) -> float:
    """Seconds for n_configs calls of one jitted trajectory, one (s, lr, seed) per call with
    the key the sweep derives (fold_in(key(0), seed)), after one untimed compiling call."""
    one = jax.jit(run)
    base = jax.random.key(0)
    configs = [(p, seed) for p in grid.points() for seed in range(grid.n_seeds)]
    chosen = [configs[i] for i in np.linspace(0, len(configs) - 1, n_configs).astype(int)]

    def call(point, seed):
        params = _rf_make(jnp.float32(point["s"]), jnp.float32(point["lr"]))
        jax.block_until_ready(one(params, jax.random.fold_in(base, seed)))

    call(*chosen[0])  # compile
    start = time.perf_counter()
    for point, seed in chosen:
        call(point, seed)
    return time.perf_counter() - start


def w1(sizes: Sizes, peaks: Peaks) -> dict:
    grid = _grid(sizes.w1_axis, sizes.w1_axis)
    configs = _n_configs(grid)
    steps, records, short = sizes.w1_steps, sizes.w1_records, sizes.w1_breakdown_steps
    peak = peaks.matmul_gflops
    print(f"W1 random-feature SGD: M={RF_MODES}, N={RF_FEATURES}, B={RF_BATCH}, {configs} configs")
    print(
        f"  peak float32 matmul (best jitted matmul of {sizes.matmul_shapes}): {peak:.1f} GFLOP/s"
    )

    # Where the time goes, at `short` steps (per-step costs; compile excluded).
    def gflops(seconds, n_steps=short, n_records=records, n=configs):
        return n * _rf_flops(n_steps, n_records) / seconds / 1e9

    repeats = sizes.breakdown_repeats
    t_pre = _time_sweep(_loss_run(RF_PREGENERATED, short, records), _rf_make, grid, repeats)[0]
    t_every = _time_sweep(_loss_run(random_features, short, short), _rf_make, grid, repeats)[0]
    t_once = _time_sweep(_loss_run(random_features, short, 1), _rf_make, grid, repeats)[0]
    per_record = max(t_every - t_once, 0.0) / (short - 1)
    rows = RF_BATCH * configs
    x = jax.random.normal(jax.random.key(1), (rows, RF_MODES), jnp.float32)
    f = jax.random.normal(jax.random.key(2), (RF_MODES, RF_FEATURES), jnp.float32)
    matmul = jax.jit(jnp.matmul)
    t_gemm = best_of(lambda: matmul(x, f).block_until_ready(), 10)
    print(f"  time breakdown at {short} steps (sweep.run, best of {repeats}):")
    print(
        f"    x @ F alone ({rows} x {RF_MODES} @ {RF_MODES} x {RF_FEATURES}): "
        f"{2 * rows * RF_MODES * RF_FEATURES / t_gemm / 1e9:.1f} GFLOP/s = "
        f"{2 * rows * RF_MODES * RF_FEATURES / t_gemm / 1e9 / peak:.0%} of peak"
    )
    print(f"    normals pregenerated (no RNG): {gflops(t_pre) / peak:.1%} of peak")
    print(f"    recording: {per_record * 1e3:.3f} ms per record (from {short} vs 1 records)")

    prng_fraction, faithful, breakdowns = {}, {}, {}
    for impl, partitionable in PRNGS:
        label = _prng_label(impl, partitionable)
        with _prng(impl, partitionable):
            faithful[label] = _vmap_faithful()
            run = _loss_run(random_features, short, records)
            seconds = _time_sweep(run, _rf_make, grid, repeats)[0]
        prng_fraction[label] = gflops(seconds) / peak
        breakdowns[label] = dict(
            rng=max(seconds - t_pre, 0.0) / seconds,
            matmul=short * t_gemm / seconds,
            recording=records * per_record / seconds,
        )
        breakdowns[label]["other"] = 1 - sum(breakdowns[label].values())
        shares = ", ".join(f"{k} {v:.0%}" for k, v in breakdowns[label].items())
        print(
            f"    {label:30s} {prng_fraction[label]:6.1%} of peak "
            f"(vmap-faithful: {faithful[label]}); time: {shares}"
        )
    print("    threefry4x32: not timed (its vmapped draws are pathologically slow, see PRNGS)")
    eligible = [label for label in prng_fraction if faithful[label]]
    best = max(eligible, key=prng_fraction.__getitem__)
    print(f"  picked {best}: the fastest PRNG whose draws do not depend on vmap/chunk layout")

    independent_run = _loss_run(random_features, short, records)
    t_independent = _time_sweep(independent_run, _rf_make, grid, 1, common_random_numbers=False)[0]
    independent = gflops(t_independent) / peak
    print(
        f"  independent streams per grid point (common_random_numbers=False, threefry2x32):"
        f" {independent:.1%} of peak"
    )

    # The headline: the full sweep with the picked PRNG.
    impl, partitionable = next(p for p in PRNGS if _prng_label(*p) == best)
    with _prng(impl, partitionable):
        run = _loss_run(random_features, steps, records)
        seconds, data = _time_sweep(run, _rf_make, grid, sizes.repeats)
        t_jit = _jit_loop_seconds(run, grid, sizes.w1_jit_loop_configs)
    t_jit *= configs / sizes.w1_jit_loop_configs
    t_numpy = _numpy_seconds(grid, steps, records, sizes.w1_numpy_configs)
    t_numpy *= configs / sizes.w1_numpy_configs
    achieved = gflops(seconds, steps)
    print(
        f"  sweep.run, {steps} steps, {records} records, {best}: {seconds:.2f} s, "
        f"{achieved:.1f} GFLOP/s = {achieved / peak:.1%} of peak"
    )
    print(
        f"  per-config jax.jit loop: {t_jit:.1f} s ({sizes.w1_jit_loop_configs} configs timed,"
        f" scaled to {configs}); speed-up {t_jit / seconds:.1f}x"
    )
    print(
        f"  NumPy loop: {t_numpy:.1f} s ({sizes.w1_numpy_configs} configs timed, scaled to "
        f"{configs}); speed-up {t_numpy / seconds:.1f}x"
    )
    return dict(
        benchmark="W1",
        workload="random-feature SGD via sweep.run(simulate.trajectory(random_features))",
        modes=RF_MODES,
        features=RF_FEATURES,
        batch=RF_BATCH,
        steps=steps,
        records=records,
        configs=configs,
        grid=f"{sizes.w1_axis} s x {sizes.w1_axis} lr x {N_SEEDS} seeds",
        seconds=seconds,
        gflops=achieved,
        peak_gflops=peak,
        fraction_of_peak=achieved / peak,
        prng=best,
        prng_fraction_of_peak=prng_fraction,
        prng_vmap_faithful=faithful,
        breakdown_steps=short,
        breakdown=breakdowns[best],
        fraction_of_peak_pregenerated_normals=gflops(t_pre) / peak,
        fraction_of_peak_independent_streams=independent,
        speedup_vs_jit_loop=t_jit / seconds,
        jit_loop_configs_timed=sizes.w1_jit_loop_configs,
        speedup_vs_numpy=t_numpy / seconds,
        numpy_configs_timed=sizes.w1_numpy_configs,
        nonfinite=int(data["nonfinite"].sum()),
    )


# --- W2: eigenbasis SGD ----------------------------------------------------------------------


def _linear_params(s, lr, *, n_modes: int):
    """W2's Params: lambda_k = k^-s, v_k^2 = k^-2, label noise 0.01, batch 1."""
    return linear.Params(PowerLaw(s=s, a=2.0, n_modes=n_modes), lr=lr, noise=0.01)


def _w2_bytes(configs: int, modes: int, steps: int, n_records: int) -> float:
    """Bytes W2 must move: per config and step the state v (M float32) read and written once,
    8M bytes, and per record one more read of v (4M). Everything else is shared by the grid
    (the normals: M per seed and step, not per config), recomputable from (k, s) (lambda_k),
    or scalar (x . v, xi). The program XLA CPU compiles (JAX 0.10.2) moves about 20M: it
    writes x * v, reads it back for the sum, then reads and writes v in the update. 8M is the
    floor the fraction is reported against."""
    return configs * (steps * 8 * modes + n_records * 4 * modes)


def w2(sizes: Sizes, peaks: Peaks) -> dict:
    modes, steps, records = sizes.w2_modes, sizes.w2_steps, sizes.w2_records
    grid = _grid(sizes.w2_axis, sizes.w2_axis, s=(1.5, 3.0), lr=(0.02, 0.3))
    configs = _n_configs(grid)
    make = functools.partial(_linear_params, n_modes=modes)
    state_bytes = configs * modes * 4
    dram, same_size = peaks.dram_gbps, peaks.copy_gbps(state_bytes)
    print(f"W2 eigenbasis SGD: M={modes}, B=1, {configs} configs, {steps} steps")
    print(
        f"  copy bandwidth (x <- c x, read + write): {dram:.1f} GB/s at "
        f"{sizes.copy_mib} MiB, {same_size:.1f} GB/s at the state's {state_bytes / 2**20:.1f} MiB"
    )
    run = _loss_run(linear, steps, records)
    seconds, data = _time_sweep(run, make, grid, sizes.repeats)
    t_pre = _time_sweep(_loss_run(LINEAR_PREGENERATED, steps, records), make, grid, 1)[0]
    rate = _w2_bytes(configs, modes, steps, records) / seconds / 1e9
    rate_pre = _w2_bytes(configs, modes, steps, records) / t_pre / 1e9
    # The chunk the engine would cut to the cache if the sweep were long enough to pay for a
    # second compile (sweep.planning.CUT_VOLUME): W2's state, 40 MiB, is just over this CPU's.
    t_cache = _time_sweep(run, make, grid, sizes.repeats, chunk_size=sizes.w2_cache_chunk)[0]
    rate_cache = _w2_bytes(configs, modes, steps, records) / t_cache / 1e9
    print(
        f"  sweep.run: {seconds:.2f} s, {rate:.1f} GB/s of state traffic = {rate / dram:.1%} of"
        f" the {sizes.copy_mib} MiB copy, {rate / same_size:.1%} of the same-size copy"
    )
    print(
        f"  normals pregenerated (no RNG): {rate_pre / dram:.1%} of the large copy; RNG share of "
        f"time {max(seconds - t_pre, 0) / seconds:.0%}"
    )
    print(
        f"  in chunks of {sizes.w2_cache_chunk} points (in the cache): {t_cache:.2f} s, "
        f"{rate_cache:.1f} GB/s = {rate_cache / dram:.1%} of copy"
    )
    # The roofline of the step as written: x . v needs all of v before the update can start, so
    # v is read twice per step, and lambda_k (per config: the grid sweeps s) is read by both
    # passes: 20 bytes per mode instead of 8. A single pass needs the next step's x during this
    # step's update (drawing one step ahead).
    two_pass = rate * 20 / 8
    print(
        f"  at the two-pass traffic (20 bytes per mode-step): {two_pass:.1f} GB/s = "
        f"{two_pass / dram:.1%} of copy; the 8-byte floor needs a one-pass step"
    )
    return dict(
        benchmark="W2",
        workload="eigenbasis SGD via sweep.run(simulate.trajectory(linear))",
        modes=modes,
        batch=1,
        steps=steps,
        records=records,
        configs=configs,
        grid=f"{sizes.w2_axis} s x {sizes.w2_axis} lr x {N_SEEDS} seeds",
        seconds=seconds,
        bound="memory bandwidth",
        bytes_per_config_step=8 * modes,
        gbps=rate,
        copy_gbps=dram,
        copy_bytes=sizes.copy_mib * 2**20,
        fraction_of_bandwidth=rate / dram,
        copy_gbps_same_size=same_size,
        fraction_of_bandwidth_same_size=rate / same_size,
        fraction_of_bandwidth_pregenerated_normals=rate_pre / dram,
        fraction_of_bandwidth_two_pass_traffic=rate * 20 / 8 / dram,
        cache_chunk_points=sizes.w2_cache_chunk,
        fraction_of_bandwidth_cache_chunk=rate_cache / dram,
        rng_share=max(seconds - t_pre, 0) / seconds,
        prng=jax.config.jax_default_prng_impl,  # pyright: ignore
        nonfinite=int(data["nonfinite"].sum()),
    )


# --- W3: predictors --------------------------------------------------------------------------


def _gf_params(s, a, *, n_modes: int):
    return linear.Params(PowerLaw(s=s, a=a, n_modes=n_modes))


def _sgd_params(s, lr, *, n_modes: int):
    return linear.Params(PowerLaw(s=s, a=2.0, n_modes=n_modes), lr=lr, noise=0.01)


def _chunk_memory(data, the_plan: sweep.Plan) -> dict:
    """The sweep's memory planning: its estimate for the initial chunk (outputs and Params x 4),
    the chunk it ran and the compiled bytes per device it fitted to the budget."""
    return dict(
        estimated_bytes_initial_chunk=the_plan.bytes_per_point * the_plan.chunk,
        initial_chunk=the_plan.chunk,
        chunk=int(data.attrs.get("chunk", -1)),
        compiled_bytes_per_device=float(data.attrs.get("bytes_per_device", -1.0)),
        budget_bytes=sweep.DEFAULT_BUDGET,
    )


def _measured(run, make, grid: sweep.Grid) -> tuple[float, Any, float, dict]:
    """One timed `sweep.run` (after its compiling run): seconds, the dataset, the peak RSS over
    it (MiB) and the plan's chunk memory (`_chunk_memory`)."""
    _peak_rss_reset()
    seconds, data = _time_sweep(run, make, grid, 1)
    rss = _peak_rss_mib()
    return seconds, data, rss, _chunk_memory(data, sweep.plan(make, grid, simulate=run))


def _memory_line(memory: dict) -> str:
    return (
        f"planned ~{memory['estimated_bytes_initial_chunk'] / 2**20:.2f} MiB for "
        f"{memory['initial_chunk']} points, ran chunks of {memory['chunk']} points at "
        f"{memory['compiled_bytes_per_device'] / 2**20:.0f} MiB compiled (budget "
        f"{memory['budget_bytes'] / 2**20:.0f} MiB)"
    )


def w3(sizes: Sizes, peaks: Peaks) -> dict:
    modes, records, axis, chunk = sizes.w3_modes, sizes.w3_records, sizes.w3_axis, sizes.w3_chunk
    configs = axis * axis
    times = jnp.asarray(np.geomspace(1.0, 1e4, records), jnp.float32)
    steps = np.arange(1, records + 1)  # the recursion's record steps: every step up to `records`
    exp_peak, dram = peaks.exp_per_second, peaks.dram_gbps
    print(f"W3 predictors: {configs} configs x {records} times x {modes} modes, sweep defaults")
    print(f"  peak exp rate (XLA's fused exp): {exp_peak / 1e9:.2f} Gexp/s; copy {dram:.1f} GB/s")

    # Exact GF loss, L(t) = 1/2 sum_k v_k^2 exp(-2 lambda_k t): R M exps per config and nothing
    # to read but (s, a), so the bound is compute (exp). XLA materialises exp(-2 t lambda)
    # (R x M floats per config) before the matvec with v^2 (a batched dot does not fuse its
    # producer): the planner's estimate (outputs and Params, x4) misses it; the sweep's
    # compiled-memory fit sees it and, on CPU, cuts the chunk to the cache. Summing
    # exp(...) * v^2 instead, which XLA fuses, ran 5x slower on CPU (0.22 vs 1.03 Gexp/s).
    gf_make = functools.partial(_gf_params, n_modes=modes)

    def gf(params, key):
        del key
        return theory.gf_loss(params.spectrum, times)

    gf_grid = sweep.Grid(
        product=dict(s=np.linspace(1.1, 3.0, axis).tolist(), a=np.linspace(1.5, 3.5, axis).tolist())
    )
    t_gf, data, gf_rss, gf_memory = _measured(gf, gf_make, gf_grid)
    exps = configs * records * modes
    moved = 2 * 4 * exps  # the materialised exp matrix, written then read
    print(f"  GF: {_memory_line(gf_memory)}; peak RSS {gf_rss:.0f} MiB")
    print(
        f"  GF: {t_gf:.2f} s, {exps / t_gf / 1e9:.2f} Gexp/s = {exps / t_gf / exp_peak:.1%} of "
        f"peak exp rate; the exp matrix's traffic {moved / t_gf / 1e9:.1f} GB/s = "
        f"{moved / t_gf / 1e9 / dram:.0%} of copy"
    )

    # Exact SGD recursion (theory.linear.loss), every step recorded: per mode and step it reads
    # and writes s_k (8 bytes) and does ~10 flops, so bandwidth bound (this CPU does more than
    # 10 flops in the time it streams 8 bytes at the measured copy rate). The sum
    # sum_j lambda_j s_j is carried from the previous step's pass (Moments.energy), so a step is
    # one pass over s; lambda_k is a loop invariant. 8 bytes per mode-step is the floor.
    sgd_make = functools.partial(_sgd_params, n_modes=modes)

    def recursion(params, key):
        del key
        return theory.linear.loss(params, steps)

    sgd_grid = sweep.Grid(
        product=dict(
            s=np.linspace(1.5, 3.0, axis).tolist(), lr=np.geomspace(0.02, 0.3, axis).tolist()
        )
    )
    t_sgd, data, sgd_rss, sgd_memory = _measured(recursion, sgd_make, sgd_grid)
    floor = configs * records * modes * 8
    print(f"  SGD recursion: {_memory_line(sgd_memory)}; peak RSS {sgd_rss:.0f} MiB")
    print(
        f"  SGD recursion: {t_sgd:.2f} s, {floor / t_sgd / 1e9:.1f} GB/s of state traffic = "
        f"{floor / t_sgd / 1e9 / dram:.1%} of copy; nonfinite {int(data['nonfinite'].sum())}"
    )
    # The same with cache-sized chunks: only the chunk differs. The warm-up compiles that chunk
    # on a grid of `chunk` points, so the timed run is not paid twice.
    side = max(2, math.isqrt(chunk))
    warm = sweep.Grid(
        product=dict(s=sgd_grid.product["s"][:side], lr=sgd_grid.product["lr"][:side])
    )
    _run_sweep(recursion, sgd_make, warm, chunk_size=chunk)
    t_small = best_of(
        lambda: _run_sweep(recursion, sgd_make, sgd_grid, chunk_size=chunk), 1, warmup=False
    )
    print(
        f"  SGD recursion, chunk_size={chunk} ({chunk * modes * 4 / 2**20:.1f} MiB of state): "
        f"{t_small:.2f} s, {floor / t_small / 1e9 / dram:.1%} of copy"
    )
    return dict(
        benchmark="W3",
        workload="theory.gf_loss and theory.linear.loss via sweep.run (defaults)",
        configs=configs,
        records=records,
        modes=modes,
        scaled_down=configs < 10**4,
        copy_gbps=dram,
        peak_exp_per_second=exp_peak,
        gf_bound="compute (exp)",
        gf_seconds=t_gf,
        gf_exp_per_second=exps / t_gf,
        gf_fraction_of_exp_peak=exps / t_gf / exp_peak,
        gf_fraction_of_bandwidth=moved / t_gf / 1e9 / dram,
        gf_memory=gf_memory,
        gf_peak_rss_mib=gf_rss,
        sgd_steps=f"1..{records}, every step recorded",
        sgd_bound="memory bandwidth",
        sgd_bytes_per_mode_step=8,
        sgd_seconds=t_sgd,
        sgd_fraction_of_bandwidth=floor / t_sgd / 1e9 / dram,
        sgd_memory=sgd_memory,
        sgd_peak_rss_mib=sgd_rss,
        sgd_fraction_of_bandwidth_chunk_size=floor / t_small / 1e9 / dram,
        sgd_chunk_size=chunk,
    )


# --- W4: the momentum recursion --------------------------------------------------------------


def _momentum_params(lr, beta, *, n_modes: int):
    return momentum.heavy_ball(PowerLaw(s=1.5, a=2.0, n_modes=n_modes), lr=lr, momentum=beta,
                               noise=0.01)  # fmt: skip


def w4(sizes: Sizes, peaks: Peaks) -> dict:
    """The exact Gen-Mom-SGD loss (theory.momentum.sgd) over a grid of heavy-ball (lr, beta) in
    one sweep call. Per mode and step it reads and writes P, Q, R (24 bytes in float32) and does
    ~40 flops: bandwidth bound like W3's recursion, at three times its bytes."""
    modes, steps = sizes.w4_modes, sizes.w4_steps
    n_lr, n_beta = sizes.w4_configs
    configs = n_lr * n_beta
    records = np.unique(np.geomspace(1, steps, 20).astype(int))
    dram = peaks.dram_gbps
    print(f"W4 momentum recursion: {configs} configs x {steps} steps x {modes} modes, "
          f"{records.size} records")  # fmt: skip
    make = functools.partial(_momentum_params, n_modes=modes)

    def recursion(params, key):
        del key
        return theory.momentum.sgd(params, records)

    grid = sweep.Grid(product=dict(lr=np.geomspace(0.002, 0.05, n_lr).tolist(),
                                   beta=np.linspace(0.0, 0.9, n_beta).tolist()))  # fmt: skip
    seconds, data, rss, memory = _measured(recursion, make, grid)
    floor = configs * steps * modes * 24
    print(f"  {_memory_line(memory)}; peak RSS {rss:.0f} MiB")
    print(
        f"  {seconds:.2f} s, {configs * steps * modes / seconds / 1e9:.2f} G mode-steps/s, "
        f"{floor / seconds / 1e9:.1f} GB/s of state traffic = {floor / seconds / 1e9 / dram:.1%} "
        f"of copy; nonfinite {int(data['nonfinite'].sum())}"
    )
    return dict(
        benchmark="W4",
        workload="theory.momentum.sgd (heavy ball) via sweep.run (defaults)",
        configs=configs,
        steps=steps,
        modes=modes,
        records=int(records.size),
        bound="memory bandwidth",
        bytes_per_mode_step=24,
        copy_gbps=dram,
        seconds=seconds,
        mode_steps_per_second=configs * steps * modes / seconds,
        fraction_of_bandwidth=floor / seconds / 1e9 / dram,
        nonfinite=int(data["nonfinite"].sum()),
        memory=memory,
        peak_rss_mib=rss,
    )


# --- scaling ---------------------------------------------------------------------------------


def scaling(sizes: Sizes, peaks: Peaks) -> dict:
    steps, records = sizes.scaling_steps, sizes.w1_records
    print(
        f"scaling: W1 at {steps} steps (cut from {sizes.w1_steps}) for "
        f"{', '.join(map(str, sizes.scaling_configs))} configs ({N_SEEDS} seeds per point)"
    )
    rows = []
    resettable = True
    for n in sizes.scaling_configs:
        side = math.isqrt(n // N_SEEDS)
        grid = _grid(side, side)
        run = _loss_run(random_features, steps, records)
        resettable &= _peak_rss_reset()
        before = _peak_rss_mib()  # right after a reset: the current RSS
        seconds, data = _time_sweep(run, _rf_make, grid, 1)
        configs = _n_configs(grid)
        rows.append(
            dict(
                configs=configs,
                seconds=seconds,
                seconds_per_config=seconds / configs,
                gflops=configs * _rf_flops(steps, records) / seconds / 1e9,
                peak_rss_mib=_peak_rss_mib(),
                rss_before_mib=before,
                **_chunk_memory(data, sweep.plan(_rf_make, grid, simulate=run)),
            )
        )
        row = rows[-1]
        print(
            f"  {configs:5d} configs: {seconds:7.2f} s, {row['seconds_per_config'] * 1e3:6.2f} "
            f"ms/config, {row['gflops'] / peaks.matmul_gflops:5.1%} of peak; "
            f"{_memory_line(row)}; peak RSS {row['peak_rss_mib']:.0f} MiB (from {before:.0f})"
        )
    if not resettable:
        print("  (peak RSS could not be reset between sizes: it is the process's peak so far)")
    by_n = {row["configs"]: row["seconds"] for row in rows}
    small, large = sizes.scaling_configs[-2:]
    growth = by_n[large] / by_n[small] / (large / small)
    print(f"  time({large}) / time({small}) / {large // small} = {growth:.2f} (1 = linear)")
    return dict(
        benchmark="scaling",
        workload="W1 (random-feature SGD) vs grid size",
        steps=steps,
        rows=rows,
        ratio_1024_over_256_per_config=(
            by_n[1024] / by_n[256] / 4 if {256, 1024} <= set(by_n) else None
        ),
        growth_ratio=dict(configs=[small, large], ratio=growth),
        peak_rss_resettable=resettable,
        peak_gflops=peaks.matmul_gflops,
    )


def main(argv: Sequence[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke-run sizes (< 1 minute)")
    parser.add_argument("--only", default=",".join(WORKLOADS), help="e.g. W1,W2")
    args = parser.parse_args(argv)
    names = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(names) - set(WORKLOADS))
    if unknown:
        parser.error(f"unknown workloads {unknown}; valid: {list(WORKLOADS)}")
    sizes = QUICK if args.quick else FULL
    peaks = Peaks(sizes)
    functions = dict(W1=w1, W2=w2, W3=w3, W4=w4, scaling=scaling)
    results = []
    for name in names:
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
        start = time.perf_counter()
        result = functions[name](sizes, peaks)
        result.update(
            quick=args.quick,
            wall_seconds=time.perf_counter() - start,
            load_average_1min=load,
            **environment(),
        )
        publish(result)
        results.append(result)
    finish(results, args.quick)
    return results


if __name__ == "__main__":
    # float32 sweeps as users run them; no compilation cache, so compile times are measured
    runtime.configure(x64=False, compilation_cache=False)
    main()
