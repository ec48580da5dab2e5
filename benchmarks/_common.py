"""Shared by the benchmark scripts: best-of-n timing, the machine's name and device, and the
results file benchmarks/results/<machine>.json (one JSON object per benchmark name)."""

import json
import os
import pathlib
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Iterable

import jax

RESULTS = pathlib.Path(__file__).parent / "results"


def best_of(fn: Callable[[], object], repeats: int = 3, warmup: bool = True) -> float:
    """Seconds of the fastest of `repeats` calls of `fn` (after one untimed call that compiles
    and warms caches, unless warmup=False). The minimum is the least noisy estimate of the cost
    on a machine that other processes share."""
    if warmup:
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def one_blas_thread(module: str, call: str) -> float:
    """The float that `call` (a call of a function of benchmarks.<module>, as text) returns,
    evaluated in a fresh process whose BLAS runs on one thread (set before NumPy loads): a
    NumPy or SciPy baseline at its best on a shared 2-core machine, where the default BLAS
    threads contend with the other load (a fixed-design OLS run took 0.03 to 0.4 s with 2
    threads and 0.026 s with one; SciPy's L-BFGS-B loop on the Chinchilla file 7x longer)."""
    names = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
    env = os.environ | dict.fromkeys(names, "1")
    code = f"import benchmarks.{module} as m; print(float(m.{call}))"
    done = subprocess.run([sys.executable, "-c", code], cwd=pathlib.Path(__file__).parent.parent,
                          env=env, capture_output=True, text=True, check=True)  # fmt: skip
    return float(done.stdout.split()[-1])


def machine() -> str:
    """The host name: results files are per machine."""
    return platform.node() or "unknown"


def device() -> str:
    """The JAX devices in words, with the CPU model and core count (the peaks depend on both)."""
    devices = jax.devices()
    model = platform.processor()
    cpuinfo = pathlib.Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [
            line.split(":", 1)[1].strip()
            for line in cpuinfo.read_text().splitlines()
            if line.startswith("model name")
        ]
        model = names[0] if names else model
    cpu = f"{model or 'unknown CPU'}, {os.cpu_count()} cores"
    return f"{len(devices)} x {devices[0].device_kind} ({cpu})"


def write_results(results: Iterable[dict]) -> pathlib.Path:
    """Merge `results` into benchmarks/results/<machine>.json, replacing entries with the same
    "benchmark" name and keeping the others (so each script updates only its own rows)."""
    results = list(results)
    path = RESULTS / f"{machine()}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    entries = json.loads(path.read_text()) if path.exists() else []
    names = [entry.get("benchmark") for entry in entries]
    for result in results:
        if result["benchmark"] in names:
            entries[names.index(result["benchmark"])] = result
        else:
            entries.append(result)
            names.append(result["benchmark"])
    path.write_text(json.dumps(entries, indent=2) + "\n")
    return path


def environment() -> dict:
    """The fields every result carries: machine, device and JAX version."""
    return dict(machine=machine(), device=device(), jax_version=jax.__version__)


def publish(result: dict) -> None:
    """Print one result as a JSON line (the last line of its workload)."""
    print(json.dumps(result), flush=True)


def finish(results: list[dict], quick: bool) -> None:
    """Merge a full run's results into the results file; a quick run writes nothing."""
    if quick:
        print("quick run: results file not updated", file=sys.stderr)
    else:
        print(f"wrote {write_results(results)}", file=sys.stderr)
