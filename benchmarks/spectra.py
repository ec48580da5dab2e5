"""Spectrum estimation: `fit.spectrum_exponent`'s parametric bootstrap (n_boot sample covariances
of n rows: Wishart scatter matrices drawn by Bartlett's decomposition, decomposed on CPU by
NumPy's LAPACK one at a time, on accelerators in one compiled `lax.map` of eigvalsh; the binned
refits included) against the same resamples drawn and decomposed by a NumPy loop, the form most
analyses take.

`python -m benchmarks.spectra [--quick]`: readable lines, then one JSON object as the last line;
a full run merges it into benchmarks/results/<machine>.json.
"""

import argparse
import time

import numpy as np

from benchmarks._common import best_of, environment, finish, publish
from spectral_sim import fit, runtime


def _numpy_seconds(lam: np.ndarray, n: int, n_boot: int) -> float:
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    for _ in range(n_boot):
        x = rng.standard_normal((n, lam.size)) * np.sqrt(lam)
        x -= x.mean(axis=0)
        np.linalg.eigvalsh(x.T @ x / n if lam.size <= n else x @ x.T / n)
    return time.perf_counter() - start


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="n = 200, d = 100, 20 resamples")
    args = parser.parse_args(argv)
    n, d, n_boot = (200, 100, 20) if args.quick else (2000, 500, 200)
    lam = np.arange(1, d + 1, dtype=float) ** -1.5
    rng = np.random.default_rng(1)
    x = rng.standard_normal((n, d)) * np.sqrt(lam)
    x -= x.mean(axis=0)
    eigenvalues = np.linalg.eigvalsh(x.T @ x / n)

    def call():
        return fit.spectrum_exponent(eigenvalues, n_samples=n, n_boot=n_boot)

    seconds = best_of(call, repeats=3)
    result = call()
    t_numpy = _numpy_seconds(lam, n, n_boot)
    print(f"spectrum_exponent: n = {n}, d = {d}, {n_boot} bootstrap resamples")
    print(f"  {seconds:.2f} s per call (s = {result.exponent:.4f}, CI {result.ci[0]:.4f} to "
          f"{result.ci[1]:.4f}); NumPy resample loop alone: {t_numpy:.2f} s; "
          f"ratio {t_numpy / seconds:.2f}x")  # fmt: skip
    out = dict(
        benchmark="spectrum_bootstrap", n=n, d=d, n_boot=n_boot, seconds=seconds,
        numpy_seconds=t_numpy, speedup_vs_numpy=t_numpy / seconds,
        exponent=result.exponent, quick=args.quick, **environment(),
    )  # fmt: skip
    publish(out)
    finish([out], args.quick)
    return out


if __name__ == "__main__":
    # float64 as the tests run it; no compilation cache, so compile times are measured
    runtime.configure(x64=True, compilation_cache=False)
    main()
