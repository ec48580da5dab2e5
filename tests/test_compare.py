"""spectral_sim.compare: a right predictor passes, one 30 % off fails, divergence is reported and
never passes, and the claim has power (a predictor off by twice the tolerance fails)."""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from spectral_sim import Empirical, PowerLaw, compare, sweep, theory
from spectral_sim.models import linear, ridge

N_SAMPLES = 40


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Design:
    noise: jax.Array
    n_features: int = dataclasses.field(metadata=dict(static=True))


def make(n_features, noise=0.5):
    return Design(jnp.asarray(noise), int(n_features))


def simulate(design: Design, key):
    """OLS on an isotropic Gaussian design, |w*|^2 = 1: risk sigma^2 N / (n - N - 1) exactly."""
    n = design.n_features
    spectrum = Empirical(jnp.ones(n), jnp.full(n, 1.0 / n))
    params = ridge.Params(spectrum, ridge=0.0, noise=design.noise, n_samples=N_SAMPLES)
    return dict(risk=ridge.fit(params, key).risk)


def exact(design: Design):
    return theory.ols_risk(n=N_SAMPLES, d=design.n_features, noise=design.noise, w_norm2=1.0)


# Grid points with N <= n/4: the risk's inverse-Wishart tail has finite variance, and 2048 draws
# give a relative SEM of ~1.5 %. The 10 % margin is 3x the simultaneous band (z = 2.5 for 4
# entries at alpha 0.05 times 1.5 %): a right predictor passes except with probability ~alpha.
GRID = sweep.Grid(product=dict(n_features=[4, 8], noise=[0.25, 1.0]), n_seeds=2048)
OPTIONS = sweep.Options(progress=False)


def test_right_predictor_passes_and_reports_every_point():
    report = compare.compare(simulate, make, GRID, exact, observable="risk", tolerance=0.1,
                             name="ols", options=OPTIONS)  # fmt: skip
    (claim,) = report.claims
    assert claim.id == "ols.risk" and claim.verdict == "PASS", report.table()
    data = report.data
    assert data["mean"].dims == ("n_features", "noise")
    np.testing.assert_allclose(data.predicted.sel(n_features=8, noise=1.0), 8 / 31)
    assert float(np.abs(data.z).max()) < 5
    assert "compare" in report.figures


@pytest.mark.parametrize("factor", [1 / 1.2, 1 / 0.8])
def test_predictor_off_by_twice_the_tolerance_fails(factor):
    """mean / (exact / (1 +- 0.2)) - 1 = +-0.2: two tolerances off at every grid point."""
    report = compare.compare(simulate, make, GRID, lambda d: factor * exact(d),
                             observable="risk", tolerance=0.1, options=OPTIONS)  # fmt: skip
    (claim,) = report.claims
    assert claim.verdict == "FAIL", report.table()
    assert claim.entries == 4 and claim.tolerance_kind == "judgement"


def test_predictor_off_by_30_percent_fails():
    report = compare.compare(simulate, make, GRID, lambda d: 1.3 * exact(d), observable="risk",
                             tolerance=0.1, options=OPTIONS)  # fmt: skip
    assert report.claims[0].verdict == "FAIL"
    assert float(report.data.relative_error.max()) < -0.2


def test_divergence_is_reported_not_crashed():
    def blows_up(design: Design, key):
        out = simulate(design, key)
        return dict(risk=jnp.where(design.noise > 0.5, jnp.inf, out["risk"]))

    report = compare.compare(blows_up, make, GRID, exact, observable="risk", tolerance=0.1,
                             options=OPTIONS)  # fmt: skip
    assert int(report.data.diverged.sum()) == 2
    assert "2 of 4 entries had a diverged seed" in report.notes[0]
    (claim,) = report.claims
    # The finite half is right, but a diverged entry never supports a PASS.
    assert claim.verdict == "INCONCLUSIVE" and claim.diverged == 2 and claim.holds == 2


def test_bad_input_is_refused_before_compiling():
    with pytest.raises(ValueError, match="observable"):
        compare.compare(simulate, make, GRID, exact, observable="loss", tolerance=0.1,
                        options=OPTIONS)  # fmt: skip
    with pytest.raises(ValueError, match="tolerance"):
        compare.compare(simulate, make, GRID, exact, observable="risk", tolerance=-1)
    with pytest.raises(ValueError, match="n_seeds"):
        compare.compare(simulate, make, sweep.Grid(product=dict(n_features=[4])), exact,
                        observable="risk", tolerance=0.1)  # fmt: skip


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Mean:
    """The sample mean of n N(0, sigma^2) draws: E (mean)^2 = sigma^2 / n exactly."""

    sigma: jax.Array
    n: int = dataclasses.field(metadata=dict(static=True))


def squared_mean(params: Mean, key):
    return dict(error=jnp.mean(params.sigma * jax.random.normal(key, (params.n,))) ** 2)


# (mean)^2 is sigma^2/n chi^2_1: a relative SD of sqrt(2) per seed, so 4.4 % SEM per point with
# 1024 seeds, and a slope SE of about 0.015 over 1.8 decades of n (measured: 0.0149). The 0.1
# margin is 3x the simultaneous band (z = 2.24 for 2 curves), and 1.5 is 0.5 off.
MEAN_GRID = sweep.Grid(product=dict(n=[4, 16, 64, 256], sigma=[0.5, 2.0]), n_seeds=1024)


def _mean(n, sigma):
    return Mean(jnp.asarray(sigma), int(n))


@pytest.mark.parametrize(("exponent", "verdict"), [(1.0, "PASS"), (1.5, "FAIL")])
def test_exponents_are_compared_with_a_seed_bootstrap_error(exponent, verdict):
    report = compare.compare(squared_mean, _mean, MEAN_GRID, lambda p: exponent,
                             observable="error", tolerance=0.1, exponent_of="n",
                             options=OPTIONS)  # fmt: skip
    (claim,) = report.claims
    assert claim.id == "compare.error_exponent" and claim.verdict == verdict, report.table()
    assert report.data.exponent.dims == ("sigma",)
    assert 0 < float(report.data.exponent_stderr.max()) < 0.05


def test_exponent_axis_must_be_a_positive_product_axis():
    with pytest.raises(ValueError, match="exponent_of"):
        compare.compare(squared_mean, _mean, MEAN_GRID, lambda p: 1.0, observable="error",
                        tolerance=0.1, exponent_of="sigma")  # fmt: skip


STEPS = [10, 100, 300]


def sgd_exact(p: linear.Params):
    return theory.sgd_loss(p.spectrum, lr=p.lr, batch=p.batch, noise=p.noise, steps=STEPS)


@pytest.mark.slow
def test_a_model_module_and_a_params_template():
    """compare(model, template, ...): the model runs through simulate.trajectory at `steps`, the
    grid's axes are the template's fields. One-pass SGD against its exact recursion: the
    relative SEM per entry was 0.1-0.9 % at 512 seeds, so at most 1.8 % at 128; the 10 % margin
    exceeds the simultaneous band (z = 2.87 over 12 entries, times 1.8 % = 5.2 %) plus Monte
    Carlo error, so a right predictor passes except with probability ~alpha; half of it fails."""
    template = linear.Params(PowerLaw(s=2.0, a=2.0, n_modes=128), lr=0.1, batch=4, noise=0.01)
    grid = sweep.Grid(product={"lr": [0.1, 0.3], "spectrum.s": [1.5, 2.0]}, n_seeds=128)
    kwargs = dict(observable="loss", tolerance=0.1, steps=STEPS, options=OPTIONS)
    report = compare.compare(linear, template, grid, sgd_exact, **kwargs)
    assert report.claims[0].verdict == "PASS", report.table()
    assert report.data["mean"].dims == ("lr", "spectrum.s", "step")
    assert report.data.step.values.tolist() == STEPS
    half = compare.compare(linear, template, grid, lambda p: 0.5 * sgd_exact(p), **kwargs)
    assert half.claims[0].verdict == "FAIL", half.table()
    with pytest.raises(ValueError, match="steps must list the record steps"):
        compare.compare(linear, template, grid, sgd_exact, observable="loss", tolerance=0.1)


# --- how the predictor is evaluated ----------------------------------------------------------


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Shift:
    """A cheap simulator: offset + N(0, 1) per record."""

    offset: jax.Array
    records: int = dataclasses.field(default=3, metadata=dict(static=True))


def _shifted(params: Shift, key):
    return dict(value=params.offset + jax.random.normal(key, (params.records,)))


# One tree structure (offset is traced); an axis over `records` would split the grid.
SHIFT_GRID = sweep.Grid(product=dict(offset=[1.0, 2.0, 4.0]), n_seeds=8)


def _shift(offset, records=3):
    return Shift(jnp.asarray(offset), int(records))


def test_a_traceable_predictor_is_vmapped_once_an_untraceable_one_point_by_point():
    calls = []

    def traced(p: Shift):
        calls.append("jax")
        return p.offset * jnp.ones(p.records)

    def numpy(p: Shift):
        calls.append("numpy")
        return np.full(p.records, float(p.offset))  # float() needs a concrete value

    kwargs = dict(observable="value", tolerance=1.0, options=OPTIONS,
                  dims=dict(value=("record",)))  # fmt: skip
    by_vmap = compare.compare(_shifted, _shift, SHIFT_GRID, traced, **kwargs)
    assert calls == ["jax"]  # traced once: one vmap over the three points
    by_loop = compare.compare(_shifted, _shift, SHIFT_GRID, numpy, **kwargs)
    assert calls == ["jax", "numpy"] + ["numpy"] * 3  # the failed trace, then each point
    np.testing.assert_array_equal(by_vmap.data.predicted, by_loop.data.predicted)
    np.testing.assert_array_equal(by_loop.data.predicted.sel(record=0), [1.0, 2.0, 4.0])


def test_static_fields_split_the_vmap_into_groups():
    calls = []

    def traced(p: Shift):
        calls.append(p.records)
        return p.offset * jnp.ones(3)

    grid = sweep.Grid(product=dict(offset=[1.0, 2.0], records=[3, 4]), n_seeds=2)

    def first_three(params: Shift, key):
        return dict(value=_shifted(params, key)["value"][:3])

    report = compare.compare(first_three, _shift, grid, traced, observable="value",
                             tolerance=1.0, options=OPTIONS)  # fmt: skip
    assert sorted(calls) == [3, 4]  # one trace per tree structure
    np.testing.assert_array_equal(report.data.predicted.isel(value_dim0=0), [[1, 1], [2, 2]])


@pytest.mark.parametrize("kind", ["traced", "numpy"])
def test_a_predictor_of_the_wrong_shape_is_named(kind):
    def scalar_predictor(p: Shift):
        return p.offset if kind == "traced" else float(p.offset)

    with pytest.raises(ValueError, match=r"predict \(scalar_predictor\) must return the "
                                         r"observable's shape \(3,\)"):  # fmt: skip
        compare.compare(_shifted, _shift, SHIFT_GRID, scalar_predictor, observable="value",
                        tolerance=1.0, options=OPTIONS)  # fmt: skip


@pytest.mark.slow
def test_a_simulator_and_a_params_form_predictor():
    """compare(linear.sgd(), template, ...) with the Params form theory.linear.sgd as predictor:
    its vmapped predictions are the point-by-point ones (float64: 1e-10 relative, as
    identities). linear.gd, a Simulator that is also callable, still runs as a model."""
    steps = [5, 50]
    template = linear.Params(PowerLaw(s=2.0, a=2.0, n_modes=16), lr=0.2, batch=2, noise=0.01)
    grid = sweep.Grid(product={"lr": [0.1, 0.2], "spectrum.s": [1.5, 2.0]}, n_seeds=4)
    predict = functools.partial(theory.linear.sgd, steps=steps)
    report = compare.compare(linear.sgd(), template, grid, predict, observable="loss",
                             tolerance=0.5, steps=steps, options=OPTIONS)  # fmt: skip
    make = sweep.make_from(template)
    points = [[make(lr=lr, **{"spectrum.s": s}) for s in (1.5, 2.0)] for lr in (0.1, 0.2)]
    expected = [[predict(point) for point in row] for row in points]
    np.testing.assert_allclose(report.data.predicted, expected, rtol=1e-10)
    with pytest.raises(ValueError, match="steps must list the record steps"):
        compare.compare(linear.gd, template, grid, predict, observable="loss", tolerance=0.1)
    with pytest.raises(TypeError, match="is not a model"):
        compare.compare(3.0, template, grid, predict, observable="loss", tolerance=0.1, steps=steps)
