import dataclasses

import numpy as np
import pytest
from conftest import assert_within_budget, run_counted

from spectral_sim import theory
from spectral_sim.experiments import validity_maps

# Two P matrices (one bandwidth, two draws), one pruning search (s = 1.5), two SGD searches
# (s = 1.5, 512 seeds, 16 points each) and one softmax search (eps = 0.2), 32 points per other
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
                           "validity.magnitude_pruning_boundary", "validity.sgd_recursion_safe",
                           "validity.sgd_recursion_critical", "validity.softmax_additive_box",
                           "validity.softmax_additive_boundary"}  # fmt: skip
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


def test_sgd_agrees_below_half_the_critical_lr_and_falls_short_past_it(report):
    """THEORY.md §8's rule holds on [0.05, 0.5] x the critical lr; past it every point's seed
    mean is significantly more than 5 % below E L; the agreement ends in between."""
    claims = {c.id: c for c in report.claims}
    assert claims["validity.sgd_recursion_safe"].verdict == "PASS"
    assert claims["validity.sgd_recursion_critical"].verdict == "PASS"
    beyond = report.data.sel(sgd_box="beyond")
    lr, verdict = beyond.sgd_lr.values.ravel(), beyond.sgd_verdict.values.ravel()
    assert np.all(verdict[lr >= 1] == "FAIL")
    assert 0.5 < lr[verdict == "PASS"].max() < lr[verdict == "FAIL"].min() < 1
    safe = report.data.sel(sgd_box="safe")
    assert np.nanmax(safe.sgd_lr) <= 0.5 and set(safe.sgd_verdict.values.ravel()) <= {"PASS"}
    assert any(note.startswith("SGD, s = 1.5") for note in report.notes)


def test_softmax_substitution_fails_on_the_box_and_breaks_at_first_order(report, tmp_path):
    """The substitution holds at small beta and fails on the box; the crossing brackets the
    first-order beta_tol = soft_tol (1 + eps) / (eps E q)."""
    claims = {c.id: c for c in report.claims}
    assert claims["validity.softmax_additive_box"].verdict == "FAIL"
    assert claims["validity.softmax_additive_boundary"].verdict == "PASS"
    data = report.data
    assert np.all(np.abs(data.soft_located - data.soft_boundary) <= data.soft_resolution)
    assert np.all(data.soft_crossings == 1)
    report.save(tmp_path / "out")
    for name in ("sgd", "softmax"):
        assert (tmp_path / "out" / f"{name}.png").is_file()


def test_the_rate_moves_at_first_order_in_beta_as_derived():
    """At beta = 1e-4 the growth-divided rate exceeds 1 / (1 + eps) by eps beta E q / (1 + eps)
    (the second order is below 1e-3 of it there; 256 draws: within 4 SE)."""
    import jax

    with jax.enable_x64(True):
        for eps in (0.1, 0.2):
            params = validity_maps.attention.Params(n_tokens=16, dim=8, eps=eps, beta=1e-4,
                                                    residual="additive")  # fmt: skip
            keys = jax.random.split(jax.random.key(5), 256)
            rates = jax.vmap(validity_maps.growth_divided_rate, in_axes=(None, 0, None))
            excess = np.asarray(rates(params, keys, 40)["rate"]) - 1 / (1 + eps)
            spread, spread_se = validity_maps.token_spread(params, 2**14, 1)
            first_order = eps * 1e-4 * spread / (1 + eps)
            se = np.hypot(excess.std(ddof=1) / np.sqrt(excess.size), first_order * spread_se)
            assert abs(excess.mean() - first_order) < 4 * se, (eps, excess.mean(), first_order)


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
        (dict(sgd_s=(1.0,)), ["sgd_s", "> 1"]),
        (dict(sgd_safe=1.2), ["sgd_safe", "(0.05, 1)"]),
        (dict(sgd_tol=0.0), ["sgd_tol"]),
        (dict(soft_eps=(0.0,)), ["soft_eps", "> 0"]),
        (dict(beta_low=0.0), ["beta_low", "beta_high"]),
        (dict(sgd_seeds=1), ["sgd_seeds", ">= 2"]),
    ],
)
def test_bad_configs_are_refused_before_anything_runs(change, words):
    with pytest.raises(ValueError) as raised:
        validity_maps.check(dataclasses.replace(validity_maps.Config(), **change))
    for word in words:
        assert word in str(raised.value)
