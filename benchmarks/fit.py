"""Bootstrap of the Chinchilla L(N, D) fit (Approach 3) on the published data points:
`fit.chinchilla` with 4,000 resamples x 100 restarts as one compiled, vmapped call, against the
serial SciPy loop researchers use today (scipy.optimize.minimize, L-BFGS-B, one resample and one
start at a time, one BLAS thread; a subset is timed and scaled, and the output says so).

`python -m benchmarks.fit [--quick]`: readable lines, then one JSON object as the last line;
a full run merges it into benchmarks/results/<machine>.json.
"""

import argparse
import time

import jax
import numpy as np

from benchmarks._common import environment, finish, one_blas_thread, publish
from spectral_sim import data, fit, runtime

STEPS = 100  # the most L-BFGS steps per optimisation; each stops once it has converged


def _points():
    runs = data.chinchilla()
    return runs["N"].to_numpy(), runs["D"].to_numpy(), runs["loss"].to_numpy()


def _scipy_seconds(fitted: list[float], resamples: int, restarts: int) -> float:
    """The same estimator, serially: for each resample, L-BFGS-B from the full-data optimum
    `fitted` and restarts - 1 grid points, NumPy objective (the summed Huber loss of log L)."""
    from scipy.optimize import minimize
    from scipy.special import logsumexp

    n, d, loss = _points()
    log_n, log_d, log_l = np.log(n), np.log(d), np.log(loss)

    def objective(theta, weight):
        a, b, e, alpha, beta = theta
        predicted = logsumexp([a - alpha * log_n, b - beta * log_d, np.full_like(log_n, e)], axis=0)
        r = np.abs(predicted - log_l)
        huber = np.where(
            r <= fit.HUBER_DELTA, 0.5 * r**2, fit.HUBER_DELTA * (r - 0.5 * fit.HUBER_DELTA)
        )
        return weight @ huber

    grid = np.stack(np.meshgrid(*fit.CHINCHILLA_GRID.values(), indexing="ij"), -1).reshape(-1, 5)
    starts = np.concatenate([[fitted], grid[:: grid.shape[0] // restarts][: restarts - 1]])
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    for _ in range(resamples):
        weight = np.bincount(rng.integers(0, n.size, n.size), minlength=n.size).astype(float)
        for x0 in starts:
            minimize(objective, x0, args=(weight,), method="L-BFGS-B", options=dict(maxiter=STEPS))
    return time.perf_counter() - start


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 resamples x 20 restarts")
    args = parser.parse_args(argv)
    resamples, restarts = (200, 20) if args.quick else (4000, 100)
    n, d, loss = _points()

    start = time.perf_counter()
    point = fit.chinchilla(n, d, loss, steps=STEPS)
    jax.block_until_ready(point)
    t_point = time.perf_counter() - start
    start = time.perf_counter()
    result = fit.chinchilla(
        n, d, loss, n_boot=resamples, boot_restarts=restarts, steps=STEPS, grid=None
    )
    jax.block_until_ready(result)
    t_boot = time.perf_counter() - start  # includes the full-data fit and one compile
    fitted = np.array(
        [np.log(result.A), np.log(result.B), np.log(result.E), result.alpha, result.beta]
    )
    timed = 2 if args.quick else 4
    # SciPy with one BLAS thread (`one_blas_thread`): on 2 shared cores its default threads made
    # the same loop 7x slower (134,221 s against 18,576 s, scaled to 4,000 resamples)
    call = f"_scipy_seconds({fitted.tolist()}, {timed}, {restarts})"
    t_scipy = one_blas_thread("fit", call) * resamples / timed
    estimates = {
        k: [float(getattr(result, k)), *map(float, getattr(result, f"{k}_ci"))]
        for k in ("E", "A", "B", "alpha", "beta")
    }
    print(f"Chinchilla file: {n.size} points; full-data fit from 4500 starts: {t_point:.1f} s")
    for name, (value, lo, hi) in estimates.items():
        print(f"  {name:5s} = {value:10.4f}  95% CI [{lo:.4f}, {hi:.4f}]")
    print(f"  bootstrap {resamples} resamples x {restarts} restarts, one call: {t_boot:.1f} s")
    print(
        f"  serial SciPy L-BFGS-B loop, one BLAS thread: {t_scipy:.0f} s ({timed} resamples "
        f"timed, scaled to {resamples}); speed-up {t_scipy / t_boot:.0f}x"
    )
    out = dict(
        benchmark="chinchilla_bootstrap", points=int(n.size), resamples=resamples,
        restarts=restarts, lbfgs_steps=STEPS, seconds=t_boot, full_fit_seconds=t_point,
        scipy_seconds=t_scipy, scipy_resamples_timed=timed, speedup_vs_scipy=t_scipy / t_boot,
        estimates=estimates, converged=bool(result.converged), quick=args.quick,
        **environment(),
    )  # fmt: skip
    publish(out)
    finish([out], args.quick)
    return out


if __name__ == "__main__":
    # float64 as the tests run it; no compilation cache, so compile times are measured
    runtime.configure(x64=True, compilation_cache=False)
    main()
