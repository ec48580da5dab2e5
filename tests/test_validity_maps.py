import dataclasses

import numpy as np
import pytest
from conftest import assert_within_budget, run_counted

from spectral_sim import theory
from spectral_sim.experiments import validity_maps

# Two P matrices (one bandwidth, two draws) and one pruning search (s = 1.5), 32 points per
# search: the quick scale.
CONFIG = validity_maps.Config(quick=True)


@pytest.fixture(scope="module")
def report():
    return run_counted(validity_maps, CONFIG)


def test_compiles_within_its_budget(report):
    assert_within_budget("validity_maps")


def test_the_search_finds_theory_s_boundary_and_the_gap_rate_fails_past_it(report, tmp_path):
    """The located crossing brackets eps_tol = (2 + rate_tol) / (2 - mu_2 - mu_n) for each P
    (PASS, derived tolerance: the resolution), and [P0]'s gap rate FAILs on the box."""
    claims = {c.id: c for c in report.claims}
    assert set(claims) == {"validity.gap_rate_box", "validity.gap_rate_boundary",
                           "validity.magnitude_pruning_boundary"}  # fmt: skip
    assert claims["validity.gap_rate_boundary"].verdict == "PASS"
    assert claims["validity.magnitude_pruning_boundary"].verdict == "PASS"
    assert claims["validity.gap_rate_box"].verdict == "FAIL"
    data = report.data
    assert np.all(np.abs(data.located - data.eps_tol) <= data.resolution)
    assert np.all(data.crossings == 1) and np.all(data.resolution < 0.01)
    flip = np.abs(data.prune_located - data.prune_s)  # THEORY.md §6.1: at a = s
    assert np.all(flip <= data.prune_resolution) and np.all(data.prune_resolution < 0.01)
    assert np.all(np.abs(data.prune_exact - data.prune_s) < 1e-9)
    report.save(tmp_path / "out")
    assert (tmp_path / "out" / "gap_rate.png").is_file()


def test_the_worst_case_rate_is_the_exact_rate():
    """The simulated pi-norm of the L-layer map gives attention_rate(P, eps) to rounding, on
    both sides of eps* (so the searches measure the exact rate, with no transient)."""
    import jax

    with jax.enable_x64(True):
        P = validity_maps.kernel_p(12, 1.0, 0)
        star = float(theory.attention.gap_rate_limit(P))
        for eps in (0.5, star - 0.05, star + 0.05, 1.9):
            params = validity_maps.attention.Params(n_tokens=12, dim=12, attention="fixed",
                                                    P=P, eps=eps, deviation=True)  # fmt: skip
            measured = float(validity_maps.worst_case_rate(params, layers=20)["rate"])
            exact = float(theory.attention_rate(P, eps=eps))
            assert measured == pytest.approx(exact, rel=1e-12), eps


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (dict(eps_low=1.5, eps_high=1.0), ["eps_low", "eps_high"]),
        (dict(eps_high=2.5), ["eps_high", "< 2"]),
        (dict(rate_tol=0.0), ["rate_tol", "> 0"]),
        (dict(budget=8), ["budget", ">= 16"]),
        (dict(bandwidth=()), ["bandwidth"]),
        (dict(prune_s=(0.3,)), ["prune_s", "prune_span"]),
        (dict(prune_keep=5000), ["prune_keep"]),
    ],
)
def test_bad_configs_are_refused_before_anything_runs(change, words):
    with pytest.raises(ValueError) as raised:
        validity_maps.check(dataclasses.replace(validity_maps.Config(), **change))
    for word in words:
        assert word in str(raised.value)
