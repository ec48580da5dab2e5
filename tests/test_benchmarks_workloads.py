"""The benchmarks' code paths, at smoke size, run as `make bench` runs them (their own process:
float32, the machine's own devices): every workload reports finite ratios. No timing is asserted;
`make bench` measures. (Split over two files so that two pytest-xdist workers share them.)"""

import json
import math

import pytest
from conftest import quick_benchmark as _quick


@pytest.mark.slow
def test_quick_attention_benchmark_reports_finite_ratios():
    done = _quick("attention")
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["benchmark"] == "attention_softmax" and result["nonfinite"] == 0
    assert all(math.isfinite(result[k]) and result[k] > 0 for k in (
        "fraction_of_peak", "fraction_of_batched_scores_peak", "fraction_of_batched_mix_peak",
        "speedup_vs_numpy"))  # fmt: skip
    assert "quick run: results file not updated" in done.stderr


@pytest.mark.slow  # both collapse protocols and their NumPy loops (38 s)
def test_quick_self_improve_benchmark_reports_finite_ratios():
    done = _quick("self_improve")
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["benchmark"] == "self_improve_grid" and result["nonfinite"] == 0
    assert all(
        math.isfinite(result[k]) and result[k] > 0
        for k in ("speedup_vs_numpy", "speedup_vs_numpy_cold")
    )
    assert "quick run: results file not updated" in done.stderr


@pytest.mark.slow  # a process of its own (8 s)
def test_quick_spectral_edge_benchmark_reports_finite_ratios():
    done = _quick("spectral_edge")
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["benchmark"] == "spectral_edge"
    assert all(math.isfinite(row["overhead"]) for row in result["overhead"])
    assert all(flow["network_steps_per_second"] > 0 for flow in result["throughput"])
    assert "quick run: results file not updated" in done.stderr
