"""Softmax residual attention through the sweep engine: n = 32 tokens, d = 16, L = 200 layers,
4,096 configs (64 eps x 64 beta) in one call, as GFLOP/s over the peak of its own products (a
jitted batched (n x d) . (d x n) matmul of one chunk's configs, the layer's scores; and the
batched (n x n) . (n x d) mix) and over this machine's large float32 matmul peak, against a
per-config NumPy loop of the same update (the form most published simulations take; a subset is
timed and scaled, and the output says so).

`python -m benchmarks.attention [--quick]`: readable lines, then one JSON object as the last
line; a full run merges it into benchmarks/results/<machine>.json.
"""

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks._common import best_of, environment, finish, publish
from benchmarks.sweep import QUICK, Peaks, Sizes
from spectral_sim import runtime, simulate, sweep
from spectral_sim.models import attention

N_TOKENS, DIM = 32, 16


def _flops_per_layer() -> int:
    """Scores X X^T (2 n^2 d) and the mix A X (2 n^2 d); softmax, residual and records are
    lower order."""
    return 4 * N_TOKENS**2 * DIM


def _numpy_seconds(eps: np.ndarray, beta: np.ndarray, layers: int, timed: int) -> float:
    """The same update per config in NumPy (float32), `timed` configs."""
    x0 = np.random.default_rng(0).standard_normal((N_TOKENS, DIM)).astype(np.float32)
    start = time.perf_counter()
    for e, b in zip(eps[:timed].astype(np.float32), beta[:timed].astype(np.float32), strict=True):
        x = x0.copy()
        for _ in range(layers):
            scores = b * (x @ x.T)
            scores -= scores.max(-1, keepdims=True)
            a = np.exp(scores)
            a /= a.sum(-1, keepdims=True)
            x = x + e * (a @ x - x)
    return time.perf_counter() - start


def _batched_matmul_gflops(configs: int, rows: int, inner: int, columns: int) -> float:
    """Best float32 GFLOP/s of a jitted batched (rows x inner) . (inner x columns) product over
    `configs` pairs of contiguous operands, best of 10."""
    a = jax.random.normal(jax.random.key(1), (configs, rows, inner), jnp.float32)
    b = jax.random.normal(jax.random.key(2), (configs, inner, columns), jnp.float32)
    matmul = jax.jit(jnp.matmul)
    seconds = best_of(lambda: matmul(a, b).block_until_ready(), 10)
    return 2 * configs * rows * inner * columns / seconds / 1e9


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="256 configs x 50 layers")
    args = parser.parse_args(argv)
    side, layers = (16, 50) if args.quick else (64, 200)
    eps_axis, beta_axis = np.geomspace(0.01, 0.5, side), np.geomspace(0.1, 4.0, side)

    def make(eps, beta):
        return attention.Params(n_tokens=N_TOKENS, dim=DIM, eps=eps, beta=beta)

    def run_layers(params, key):
        return simulate.trajectory(attention, params, key, n_records=1, every=layers)[1]

    grid = sweep.Grid(product=dict(eps=list(eps_axis), beta=list(beta_axis)))
    configs = side * side

    def call():
        return sweep.run(run_layers, make, grid, progress=False)

    seconds = best_of(call, repeats=3)
    data = call()
    gflops = configs * layers * _flops_per_layer() / seconds / 1e9
    peak = Peaks(QUICK if args.quick else Sizes()).matmul_gflops
    chunk = int(data.attrs["chunk"])  # the configs of one compiled call
    scores_peak = _batched_matmul_gflops(chunk, N_TOKENS, DIM, N_TOKENS)
    mix_peak = _batched_matmul_gflops(chunk, N_TOKENS, N_TOKENS, DIM)
    eps_grid, beta_grid = (g.ravel() for g in np.meshgrid(eps_axis, beta_axis, indexing="ij"))
    timed = 16 if args.quick else 64
    t_numpy = _numpy_seconds(eps_grid, beta_grid, layers, timed) * configs / timed
    nonfinite = int(data.nonfinite.sum())
    print(f"softmax attention: {configs} configs x {layers} layers, n = {N_TOKENS}, d = {DIM}")
    print(f"  one sweep call: {seconds:.2f} s, {gflops:.1f} GFLOP/s; non-finite runs: {nonfinite}")
    print(
        f"  = {gflops / scores_peak:.1%} of the batched ({N_TOKENS} x {DIM}) . ({DIM} x "
        f"{N_TOKENS}) product alone ({scores_peak:.1f} GFLOP/s over {chunk} configs, the sweep's "
        f"chunk); {gflops / mix_peak:.1%} of the batched ({N_TOKENS} x {N_TOKENS}) . ({N_TOKENS}"
        f" x {DIM}) mix ({mix_peak:.1f} GFLOP/s)"
    )
    print(f"  = {gflops / peak:.1%} of the large float32 matmul peak ({peak:.1f} GFLOP/s)")
    print(
        f"  per-config NumPy loop: {t_numpy:.1f} s ({timed} configs timed, scaled to {configs});"
        f" speed-up {t_numpy / seconds:.1f}x"
    )
    out = dict(
        benchmark="attention_softmax", configs=configs, layers=layers, n_tokens=N_TOKENS,
        dim=DIM, seconds=seconds, gflops=gflops, chunk=chunk,
        batched_scores_gflops=scores_peak, fraction_of_batched_scores_peak=gflops / scores_peak,
        batched_mix_gflops=mix_peak, fraction_of_batched_mix_peak=gflops / mix_peak,
        peak_gflops=peak, fraction_of_peak=gflops / peak, numpy_seconds=t_numpy,
        numpy_configs_timed=timed, speedup_vs_numpy=t_numpy / seconds, nonfinite=nonfinite,
        quick=args.quick,
        **environment(),
    )  # fmt: skip
    publish(out)
    finish([out], args.quick)
    return out


if __name__ == "__main__":
    # float32 sweeps as users run them; no compilation cache, so compile times are measured
    runtime.configure(x64=False, compilation_cache=False)
    main()
