"""The benchmarks' code paths, at smoke size, run as `make bench` runs them (their own process:
float32, the machine's own devices): every workload reports finite ratios. No timing is asserted;
`make bench` measures. (Split over two files so that two pytest-xdist workers share them.)"""

import json
import math

import pytest
from conftest import quick_benchmark as _quick


@pytest.mark.slow  # the sweep benchmark's smoke run (46 s)
def test_quick_benchmarks_report_finite_ratios():
    done = _quick("sweep")
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    results = {r["benchmark"]: r for r in map(json.loads, lines)}
    assert set(results) == {"W1", "W2", "W3", "W4", "scaling"}
    ratios = [
        results["W1"]["fraction_of_peak"], results["W1"]["speedup_vs_numpy"],
        results["W1"]["speedup_vs_jit_loop"], results["W2"]["fraction_of_bandwidth"],
        results["W2"]["fraction_of_bandwidth_cache_chunk"],
        results["W3"]["gf_fraction_of_exp_peak"], results["W3"]["sgd_fraction_of_bandwidth"],
        results["W4"]["fraction_of_bandwidth"],
    ]  # fmt: skip
    assert results["W4"]["nonfinite"] == 0
    assert all(math.isfinite(r) and r > 0 for r in ratios)
    assert results["W1"]["nonfinite"] == 0
    assert "quick run: results file not updated" in done.stderr


@pytest.mark.slow
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


@pytest.mark.slow
def test_quick_spectra_benchmark_reports_finite_ratios():
    done = _quick("spectra")
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["benchmark"] == "spectrum_bootstrap"
    assert math.isfinite(result["speedup_vs_numpy"]) and result["speedup_vs_numpy"] > 0
    assert "quick run: results file not updated" in done.stderr
