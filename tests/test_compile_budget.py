"""The compile counter behind the experiments' compile budgets (tests/conftest.py's
COMPILE_BUDGETS, checked in each experiment's test file) and the benchmark that reports the
counts of every experiment's --quick run."""

import json
import math

import jax
import numpy as np
import pytest
from conftest import quick_benchmark

from benchmarks.compiles import MAX_COMPILES, QUICK_SUBSET, counting


def test_counter_counts_each_new_program_once():
    double = jax.jit(lambda x: 2 * x)
    jax.clear_caches()
    with counting() as compiles:
        for n in (3, 4, 5, 5, 4):  # three shapes: three programs, two cache hits
            double(np.ones(n))
    assert compiles.count == 3 and compiles.names == {"jit(<lambda>)": 3}
    assert compiles.seconds > 0
    double(np.ones(6))  # after the block: not counted
    assert compiles.count == 3


@pytest.mark.slow
def test_quick_compile_benchmark_reports_finite_ratios():
    done = quick_benchmark("compiles")
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["benchmark"] == "compiles"
    rows = result["experiments"]
    assert [row["experiment"] for row in rows] == list(QUICK_SUBSET)
    for row in rows:
        assert 0 < row["compile_share"] < 1 and math.isfinite(row["compile_share"])
        assert row["compiles_per_budget"] == row["compiles"] / MAX_COMPILES > 0
    assert "quick run: results file not updated" in done.stderr
