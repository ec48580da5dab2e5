"""The sweep benchmark's code paths, at smoke size, run as `make bench` runs them (its own
process: float32, the machine's own devices): every workload reports finite ratios. No timing
is asserted; `make bench` measures."""

import json
import math
import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).parent.parent


def _quick(module: str) -> subprocess.CompletedProcess:
    """`python -m benchmarks.<module> --quick` in its own process, without conftest's 8 virtual
    devices."""
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    return subprocess.run(
        [sys.executable, "-m", f"benchmarks.{module}", "--quick"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=True,
    )  # fmt: skip


def test_quick_benchmarks_report_finite_ratios():
    done = _quick("sweep")
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    results = {r["benchmark"]: r for r in map(json.loads, lines)}
    assert set(results) == {"W1", "W2", "W3", "scaling"}
    ratios = [
        results["W1"]["fraction_of_peak"], results["W1"]["speedup_vs_numpy"],
        results["W1"]["speedup_vs_jit_loop"], results["W2"]["fraction_of_bandwidth"],
        results["W3"]["gf_fraction_of_exp_peak"], results["W3"]["sgd_fraction_of_bandwidth"],
    ]  # fmt: skip
    assert all(math.isfinite(r) and r > 0 for r in ratios)
    assert results["W1"]["nonfinite"] == 0
    assert "quick run: results file not updated" in done.stderr


def test_quick_attention_benchmark_reports_finite_ratios():
    done = _quick("attention")
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["benchmark"] == "attention_softmax" and result["nonfinite"] == 0
    assert all(math.isfinite(result[k]) and result[k] > 0 for k in ("fraction_of_peak",
               "speedup_vs_numpy"))  # fmt: skip
    assert "quick run: results file not updated" in done.stderr


def test_quick_self_improve_benchmark_reports_finite_ratios():
    done = _quick("self_improve")
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["benchmark"] == "self_improve_grid" and result["nonfinite"] == 0
    assert all(
        math.isfinite(result[k]) and result[k] > 0
        for k in ("speedup_vs_numpy", "speedup_vs_numpy_cold")
    )
    assert "quick run: results file not updated" in done.stderr


def test_quick_spectral_edge_benchmark_reports_finite_ratios():
    done = _quick("spectral_edge")
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["benchmark"] == "spectral_edge"
    assert all(math.isfinite(row["overhead"]) for row in result["overhead"])
    assert all(flow["network_steps_per_second"] > 0 for flow in result["throughput"])
    assert "quick run: results file not updated" in done.stderr


def test_quick_compression_benchmark_reports_finite_ratios():
    done = _quick("compression")
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    results = {r["benchmark"]: r for r in map(json.loads, lines)}
    assert set(results) == {"compression_heatmap", "compression_preconditioned"}
    assert all(math.isfinite(r["speedup_vs_numpy"]) and r["speedup_vs_numpy"] > 0
               for r in results.values())  # fmt: skip
    # the jitted heat map and the NumPy loop compute the same damage (float32 rounding)
    assert results["compression_heatmap"]["max_relative_difference"] < 1e-4
    assert "quick run: results file not updated" in done.stderr
