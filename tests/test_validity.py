"""validity.search on synthetic claims whose boundaries are known in closed form."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from spectral_sim import claims, validity
from spectral_sim.claims import Claim
from spectral_sim.report import Report

NOISE = 0.01  # the simulated value's spread per seed


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Bend:
    """A value that leaves its prediction 1 as 1 + x y: the relative error is x y."""

    x: float = 0.5
    y: float = 1.0
    noisy: bool = dataclasses.field(default=True, metadata=dict(static=True))


def bent(params: Bend, key):
    """1 + x y per record (two records), plus N(0, NOISE^2) noise when `noisy`."""
    value = 1 + params.x * params.y * jnp.ones(2)
    if params.noisy:
        value = value + NOISE * jax.random.normal(key, (2,))
    return dict(value=value)


def flat(params: Bend):
    return jnp.ones(2)


def crossing_holds(found: validity.ValidityMap, axis: str, truth: float) -> float:
    """The search's one crossing along `axis` brackets `truth`; its resolution."""
    boundary, resolution = found.boundary(axis), found.resolution(axis)
    assert len(boundary) == 1, boundary
    assert abs(boundary[0] - truth) <= resolution[0], (boundary, resolution)
    return resolution[0]


def test_a_noisy_1d_boundary_is_located_within_its_resolution():
    """Error x against tolerance 0.3: PASS below x = 0.3, FAIL above. With 16 seeds the SE of
    the relative error is NOISE / 4, so points within about 3.5 SE of 0.3 stay INCONCLUSIVE and
    the crossing is the midpoint between the last PASS and the first FAIL."""
    found = validity.search(bent, Bend(), {"x": (0.0, 1.0)}, flat, observable="value",
                            tolerance=0.3, n_seeds=16, budget=64)  # fmt: skip
    assert found.samples.sizes["sample"] >= 56  # re-evaluations (pooled seeds) count too
    resolution = crossing_holds(found, "x", 0.3)
    assert resolution < 0.05  # the refinement halves the gaps around the crossing
    x, verdict = found.samples.x.values, found.samples.verdict.values
    assert np.all(x[verdict == "FAIL"] > 0.3) and np.all(x[verdict == "PASS"] < 0.3)
    assert found.worst["x"] > 0.9  # the largest error: the box's far end
    assert found.box.verdict == "FAIL"


def test_the_outputs_decide_the_box_again_through_the_claim_engine():
    """`outputs` holds every seed of every point (pooled ones included, NaN-padded) and
    `prediction` every entry: `claims.seed_mean` over them gives the box's verdict, and on the
    PASS points alone a PASS."""
    found = validity.search(bent, Bend(), {"x": (0.0, 1.0)}, flat, observable="value",
                            tolerance=0.3, n_seeds=16, budget=32)  # fmt: skip
    s = found.samples
    assert s.outputs.dims == ("sample", "seed", "entry0") and s.prediction.dims[0] == "sample"
    counted = s.outputs.notnull().all("entry0").sum("seed")
    assert np.array_equal(counted.values, s.seeds.values)
    assert s.seeds.max() > 16  # an INCONCLUSIVE point was pooled

    def decide(part):
        return claims.seed_mean(part.outputs, predicted=part.prediction, tolerance=0.3,
                                relative=True, observed=part.outputs.notnull()).verdict  # fmt: skip

    assert decide(s) == found.box.verdict == "FAIL"
    assert decide(s.isel(sample=np.flatnonzero(s.verdict.values == "PASS"))) == "PASS"


def test_a_deterministic_simulator_is_decided_exactly_and_bisected():
    """Without noise every point is decided (claims.exact): the crossing at x = 0.3 is bracketed
    by a PASS and a FAIL whose gap the refinement rounds keep halving."""
    found = validity.search(bent, Bend(noisy=False), {"x": (0.01, 1.0, "log")}, flat,
                            observable="value", tolerance=0.3, n_seeds=1, budget=64)  # fmt: skip
    assert set(found.samples.verdict.values) == {"PASS", "FAIL"}
    assert crossing_holds(found, "x", 0.3) < 0.02
    assert np.all(found.samples.stderr.values == 0)


def test_a_scalar_observable_is_searched_as_a_record_is():
    """An observable of shape () (one number per run) goes through the same decisions."""

    def first(params: Bend, key):
        return dict(value=bent(params, key)["value"][0])

    found = validity.search(first, Bend(noisy=False), {"x": (0.0, 1.0)}, lambda p: 1.0,
                            observable="value", tolerance=0.3, n_seeds=1, budget=32)  # fmt: skip
    crossing_holds(found, "x", 0.3)


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Spot:
    x: float = 0.5


def bump(params: Spot, key):
    """Relative error 0.5 exp(-((x - 0.73) / 0.005)^2): above 0.3 only where |x - 0.73| < 0.0036,
    a window that the 32 sampled points of seed 0 all miss."""
    return dict(value=1 + 0.5 * jnp.exp(-(((params.x - 0.73) / 0.005) ** 2)) * jnp.ones(2))


def test_a_deterministic_search_climbs_to_a_counterexample_the_samples_missed():
    """Every design and bisection point PASSes; the gradient ascent from the worst of them
    climbs into the narrow failure window, so the box FAILs there."""
    found = validity.search(bump, Spot(), {"x": (0.0, 1.0)}, flat, observable="value",
                            tolerance=0.3, n_seeds=1, budget=32)  # fmt: skip
    origin, verdict = found.samples.origin.values, found.samples.verdict.values
    assert set(verdict[origin != "ascent"]) == {"PASS"}
    assert "FAIL" in set(verdict[origin == "ascent"])
    assert found.box.verdict == "FAIL" and abs(found.worst["x"] - 0.73) < 1e-3
    assert "climbed" in " ".join(found.report().notes)


def test_a_2d_map_separates_the_hyperbola_and_reports_the_counterexample():
    """Error x y against tolerance 0.25 on [0, 1]^2: FAIL points lie above x y = 0.25, PASS
    points below (up to a few SE), the worst point is near (1, 1), and the report's one claim
    FAILs at it."""
    found = validity.search(bent, Bend(), {"x": (0.0, 1.0), "y": (0.0, 1.0)}, flat,
                            observable="value", tolerance=0.25, n_seeds=16, budget=96)  # fmt: skip
    product = found.samples.x.values * found.samples.y.values
    verdict = found.samples.verdict.values
    slack = 4 * NOISE / 4  # a few standard errors of the relative error
    assert np.all(product[verdict == "FAIL"] > 0.25 - slack)
    assert np.all(product[verdict == "PASS"] < 0.25 + slack)
    assert (verdict == "FAIL").sum() > 10 and (verdict == "PASS").sum() > 10
    assert found.worst["x"] * found.worst["y"] > 0.8
    crossings = found.crossings()  # the hyperbola passes within each one's resolution
    assert crossings.sizes["crossing"] >= 5
    gap = np.abs(crossings.x.values * crossings.y.values - 0.25)
    steepest = np.sqrt(2)  # |grad (x y)| on the unit box: x y moves at most this per unit
    assert np.all(gap <= steepest * crossings.resolution.values + slack), gap
    report = found.report(id="bend.box", statement="1 + x y stays within 0.25 of 1")
    assert isinstance(report, Report) and isinstance(report.claims[0], Claim)
    (claim,) = report.claims
    assert claim.verdict == "FAIL" and claim.id == "bend.box"
    assert claim.entries == found.samples.sizes["sample"]
    assert "validity" in report.figures
    with pytest.raises(ValueError, match="1-D search"):
        found.boundary("x")


def test_a_claim_that_holds_everywhere_passes_the_box():
    """Error x y <= 0.05 on the box, tolerance 0.3: every point PASSes, so does the box, and no
    boundary is found."""
    found = validity.search(bent, Bend(y=0.05), {"x": (0.0, 1.0)}, flat, observable="value",
                            tolerance=0.3, n_seeds=8, budget=32)  # fmt: skip
    assert set(found.samples.verdict.values) == {"PASS"}
    assert found.box.verdict == "PASS" and found.boundary("x") == []
    assert "none found" in " ".join(found.report().notes)
    import matplotlib.figure

    ax = matplotlib.figure.Figure().subplots()  # a figure of one's own: the map is drawn there
    assert found.figure(ax=ax) is ax.figure and ax.get_ylabel() == "(error + z SE) / tolerance"


def test_every_round_runs_one_compiled_program(monkeypatch):
    """The rounds change the points, not the shapes: the sweep compiles its chunk program once
    and the predictor's vmap once, however many rounds run."""
    from benchmarks.compiles import counting

    jax.clear_caches()
    with counting() as compiles:
        validity.search(bent, Bend(), {"x": (0.0, 1.0)}, flat, observable="value",
                        tolerance=0.3, n_seeds=4, budget=32)  # fmt: skip
    assert compiles.names["jit(one_point)"] == 1, compiles.names
    assert compiles.names["jit(one)"] == 1, compiles.names


def test_searches_of_one_template_share_their_program():
    """A second search of an equal template (another box, another tolerance) compiles nothing
    for its rounds: the make, and so the sweep's chunk program, is shared."""
    from benchmarks.compiles import counting

    validity.search(bent, Bend(y=0.5), {"x": (0.0, 1.0)}, flat, observable="value",
                    tolerance=0.3, n_seeds=4, budget=16)  # fmt: skip
    with counting() as compiles:
        validity.search(bent, Bend(y=0.5), {"x": (0.5, 2.0)}, flat, observable="value",
                        tolerance=0.1, n_seeds=4, budget=16)  # fmt: skip
    assert compiles.names["jit(one_point)"] == 0, compiles.names


@pytest.mark.parametrize(
    ("space", "kwargs", "words"),
    [
        ({"z": (0, 1)}, {}, ["'z'", "not a field"]),
        ({"x": (1, 0)}, {}, ["'x'", "low < high"]),
        ({"x": (0, 1, "log")}, {}, ["'x'", "log axis", "> 0"]),
        ({"x": (0, 1, "cubic")}, {}, ["'x'", "'linear' or 'log'"]),
        ({}, {}, ["space"]),
        ({"x": (0, 1)}, {"budget": 8}, ["budget", ">= 16"]),
        ({"x": (0, 1)}, {"tolerance": 0.0}, ["tolerance", "> 0"]),
        ({"x": (0, 1)}, {"n_seeds": 0}, ["n_seeds", ">= 1"]),
        ({"x": (0, 1)}, {"observable": "loss"}, ["observable", "value"]),
    ],
)
def test_bad_arguments_are_refused_before_anything_compiles(space, kwargs, words):
    arguments = dict(observable="value", tolerance=0.3) | kwargs
    from benchmarks.compiles import counting

    with counting() as compiles, pytest.raises(ValueError) as raised:
        validity.search(bent, Bend(), space, flat, **arguments)
    assert compiles.count == 0
    for word in words:
        assert word in str(raised.value), (word, str(raised.value))
