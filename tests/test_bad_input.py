"""No input accepted silently: across the public API, a bad input is refused before anything is
traced, with one error of one line that names the field (every bad field of a Params at once),
and a learning rate past a stability limit gets one RuntimeWarning naming lr. The command line
prints a user's mistake as one line, `spectral-sim: error: ...`, exit code 2.

The cases run with the jaxtyping checks off (`conftest.unchecked`): they are what a caller
without them, a user's script or notebook, gets from the library itself."""

import dataclasses
import re
import sys
import types
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import unchecked

from spectral_sim import (
    Empirical,
    Geometric,
    PowerLaw,
    checks,
    cli,
    compare,
    data,
    diagnostics,
    fit,
    registry,
    simulate,
    spectra,
    sweep,
    theory,
)
from spectral_sim.models import (
    attention,
    evolution,
    linear,
    modular,
    pool,
    random_features,
    ridge,
    self_improve,
    update_stream,
)

SPEC = PowerLaw(s=2.0, a=2.0, n_modes=8)  # lambda_max = 1
NAN, INF = float("nan"), float("inf")
KEY = jax.random.key(0)
OPTIONS = sweep.Options(progress=False)
TEMPLATE = linear.Params(SPEC, lr=0.1, batch=2)
STEPS = [10, 100, 300]
GRID = sweep.Grid(product={"lr": [0.1, 0.2]}, n_seeds=4)


def _records(params, key):
    """A simulator of one's own with three records per seed."""
    return dict(value=params.lr + jax.random.normal(key, (3,)))


def _pool() -> pool.Pool:
    x = jnp.ones((4, 2))
    return pool.Pool(x, x @ x.T, jnp.ones(4))


def _compare(grid=GRID, predict=None, **kwargs):
    """compare(linear, TEMPLATE, ...) with a right-shaped predictor unless one is given."""
    predict = predict or (lambda p: theory.linear.sgd(p, STEPS))
    kwargs = dict(observable="loss", tolerance=0.1, steps=STEPS, options=OPTIONS) | kwargs
    return compare.compare(linear, TEMPLATE, grid, predict, **kwargs)


def _sweep(**kwargs):
    return sweep.run(_records, sweep.make_from(TEMPLATE), GRID, progress=False, **kwargs)


# (id, call, error type, the names the message must contain). The first seven are cases a user
# reported (issue 22); the others they reported are the two stability edges marked in
# STABILITY_EDGES and, in the command-line tests, tyro's box and "(raised at sweep.py:311)".
CASES = [
    # reported by a user
    ("gd_loss-negative-steps", lambda: theory.gd_loss(SPEC, lr=0.5, steps=-3), ValueError,
     ["steps"]),
    ("gd_loss-fractional-steps", lambda: theory.gd_loss(SPEC, lr=0.5, steps=2.5), ValueError,
     ["steps"]),
    ("gf_loss-negative-t", lambda: theory.gf_loss(SPEC, t=-1.0), ValueError, ["t"]),
    ("PowerLaw-string-s", lambda: PowerLaw(s="2", a=2, n_modes=10), TypeError, ["PowerLaw.s"]),
    ("compare-axis-s-for-spectrum.s",
     lambda: _compare(sweep.Grid(product={"s": [1.5, 2.0]}, n_seeds=4)), ValueError,
     ["s", "spectrum.s"]),
    ("compare-predictor-of-the-wrong-length",
     lambda: _compare(predict=lambda p: theory.linear.sgd(p, [10, 100])), ValueError,
     ["predict", r"\(3,\)", r"\(2,\)"]),
    ("linear.Params-two-bad-fields", lambda: linear.Params(SPEC, lr=-0.1, batch=0), ValueError,
     ["lr", "batch"]),
    # theory.linear
    ("gd_loss-nan-steps", lambda: theory.gd_loss(SPEC, lr=0.5, steps=[1, NAN]), ValueError,
     ["steps"]),
    ("gf_loss-infinite-t", lambda: theory.gf_loss(SPEC, t=[0.0, INF]), ValueError, ["t"]),
    ("gf_loss-string-t", lambda: theory.gf_loss(SPEC, t="1"), TypeError, ["t"]),
    ("gf_loss-tail-geometric", lambda: theory.gf_loss(Geometric(2.0), 1.0, tail=True), TypeError,
     ["PowerLaw"]),
    ("sgd_loss-negative-steps", lambda: theory.sgd_loss(SPEC, lr=0.1, batch=1, steps=[-1]),
     ValueError, ["steps"]),
    ("sgd_loss-fractional-steps", lambda: theory.sgd_loss(SPEC, lr=0.1, batch=1, steps=[1.5]),
     ValueError, ["steps"]),
    ("sgd-2d-steps", lambda: theory.linear.sgd(TEMPLATE, [[1, 2]]), ValueError, ["steps"]),
    ("sgd-no-steps", lambda: theory.linear.sgd(TEMPLATE, []), ValueError, ["steps"]),
    ("sgd_loss-zero-lr", lambda: theory.sgd_loss(SPEC, lr=0.0, batch=1, steps=[1]), ValueError,
     ["lr"]),
    ("sgd_loss-every-bad-field",
     lambda: theory.sgd_loss(SPEC, lr=NAN, batch=0, noise=-1.0, steps=[1]), ValueError,
     ["lr", "batch", "noise"]),
    ("truncation_tail-negative-t", lambda: theory.truncation_tail(SPEC, -1.0), ValueError, ["t"]),
    ("gf_loss_asymptote-zero-t", lambda: theory.gf_loss_asymptote(SPEC, 0.0), ValueError, ["t"]),
    ("gf_loss_asymptote-a-at-one",
     lambda: theory.gf_loss_asymptote(PowerLaw(s=2.0, a=1.0), 1.0), ValueError, ["PowerLaw.a"]),
    ("gf_exponent-geometric", lambda: theory.gf_exponent(Geometric(2.0)), TypeError,
     ["PowerLaw"]),
    ("learning_frontier-zero-t", lambda: theory.learning_frontier(SPEC, 0.0), ValueError, ["t"]),
    ("tail_loss-negative-t", lambda: theory.tail_loss(SPEC, -2.0), ValueError, ["t"]),
    ("sgd_stability-n_trainable-zero",
     lambda: theory.sgd_stability(SPEC, lr=0.1, batch=1, n_trainable=0.0), ValueError,
     ["n_trainable"]),
    ("models.linear.gf-negative-t", lambda: linear.gf(TEMPLATE, -1.0), ValueError, ["t"]),
    # theory.evolution and models.evolution
    ("preconditioned-fractional-steps",
     lambda: theory.evolution.preconditioned_gd_loss(SPEC, rho=1.0, lr=0.1, steps=2.5),
     ValueError, ["steps"]),
    ("evolution_loss-negative-t", lambda: theory.evolution_loss(SPEC, t=-1.0, rho=1.0),
     ValueError, ["t"]),
    ("evolution_loss-zero-rho", lambda: theory.evolution_loss(SPEC, t=1.0, rho=0.0), ValueError,
     ["rho"]),
    ("diagonal_loss-negative-t", lambda: theory.diagonal_loss(SPEC, t=-1.0, init=0.1),
     ValueError, ["t"]),
    ("evolution.Params-every-bad-field",
     lambda: evolution.Params(SPEC, rho=0.0, init=-1.0, lr=0.0), ValueError,
     ["rho", "init", "lr"]),
    ("evolution.flow-negative-t", lambda: evolution.flow(evolution.Params(SPEC), -1.0),
     ValueError, ["t"]),
    # theory.ridge and models.ridge
    ("ridge_risk-zero-n", lambda: theory.ridge_risk(SPEC, n=0.0), ValueError, ["n"]),
    ("ridge_risk-negative-ridge", lambda: theory.ridge_risk(SPEC, n=10.0, ridge=-1.0),
     ValueError, ["ridge"]),
    ("ridge_risk-negative-noise", lambda: theory.ridge_risk(SPEC, n=10.0, noise=-1.0),
     ValueError, ["noise"]),
    ("ols_risk-negative-n", lambda: theory.ols_risk(n=-1.0, d=4), ValueError, ["n"]),
    ("gd_weights-lr-and-steps",
     lambda: theory.ridge.gd_weights(jnp.ones((4, 2)), jnp.ones(4), lr=0.0, steps=[1.5]),
     ValueError, ["lr", "steps"]),
    ("ridge.Params-two-bad-fields", lambda: ridge.Params(SPEC, ridge=-1.0, n_samples=0),
     ValueError, ["ridge", "n_samples"]),
    ("ridge.Params-not-a-spectrum", lambda: ridge.Params("power law"), TypeError, ["spectrum"]),
    # random features
    ("rf_approx_error-zero-width", lambda: theory.rf_approx_error(SPEC, n_features=0.0),
     ValueError, ["n_features"]),
    ("gf_loss_given_features-negative-times",
     lambda: theory.random_features.gf_loss_given_features(SPEC, jnp.ones((8, 2)), -1.0),
     ValueError, ["times"]),
    ("random_features.Params-fractional-seed",
     lambda: random_features.Params(SPEC, feature_seed=1.5), ValueError, ["feature_seed"]),
    ("random_features.Params-two-counts",
     lambda: random_features.Params(SPEC, n_features=0, batch=0), ValueError,
     ["n_features", "batch"]),
    # scaling, compression, self-improvement, attention, update streams
    ("continuum_loss-zero-n", lambda: theory.continuum_loss(0.0, 1.0, 2.0, 2.0), ValueError,
     ["n"]),
    ("chinchilla_from_sa-negative-s", lambda: theory.chinchilla_from_sa(-1.0, 2.0), ValueError,
     ["s"]),
    ("prune_loss-negative-t", lambda: theory.prune_loss(SPEC, t=-1.0, K=2), ValueError, ["t"]),
    ("prune_loss-K-past-n_modes", lambda: theory.prune_loss(SPEC, t=1.0, K=9), ValueError,
     ["K"]),
    ("dithered_quantization-zero-step", lambda: theory.dithered_quantization_loss(SPEC, step=0.0),
     ValueError, ["step"]),
    ("collapse_error-zero-d",
     lambda: theory.collapse_error(regime="replace", d=0, noise=1.0, generations=3, T=10),
     ValueError, ["d"]),
    ("self_improve.Params-every-bad-field",
     lambda: self_improve.Params(dim=0, samples=0, noise=-1.0, regime="bogus"), ValueError,
     ["dim", "samples", "noise", "regime"]),
    ("attention_rate-zero-eps",
     lambda: theory.attention_rate(jnp.full((3, 3), 1 / 3), eps=0.0), ValueError, ["eps"]),
    ("attention.Params-three-bad-fields",
     lambda: attention.Params(n_tokens=1, dim=0, eps=0.0), ValueError,
     ["n_tokens", "dim", "eps"]),
    ("attention.Params-two-bad-variants",
     lambda: attention.Params(attention="bogus", norm="rms"), ValueError, ["attention", "norm"]),
    ("rank_collapse_bound-negative-layers",
     lambda: theory.attention.rank_collapse_bound(1.0, layers=-1, weight_norm=1.0), ValueError,
     ["layers"]),
    ("update_stream.Params-small-window", lambda: update_stream.Params(jnp.ones(1), W=1),
     ValueError, ["W"]),
    ("update_stream.Params-s-and-noise",
     lambda: update_stream.Params(jnp.array([-1.0]), W=4, P=10, noise=-1.0), ValueError,
     ["s", "noise"]),
    ("wedin_bound-zero-k",
     lambda: theory.update_stream.wedin_bound(jnp.ones(3), jnp.ones(1), 0.1, 0), ValueError,
     ["k"]),
    ("modular.Params-p-and-lr", lambda: modular.Params(p=2, lr=0.0), ValueError, ["p", "lr"]),
    ("modular.Params-width-and-heads",
     lambda: modular.Params(model="transformer", width=30, heads=4), ValueError,
     ["width", "heads"]),
    ("pool.Params-unknown-model", lambda: pool.Params(_pool(), model="svm"), ValueError,
     ["model"]),
    # spectra
    ("PowerLaw-string-n_modes", lambda: PowerLaw(s=2.0, a=2.0, n_modes="10"), TypeError,
     ["PowerLaw.n_modes"]),
    ("PowerLaw-every-bad-field", lambda: PowerLaw(s=-1.0, a=NAN, n_modes=0), ValueError,
     ["PowerLaw.s", "PowerLaw.a", "PowerLaw.n_modes"]),
    ("Geometric-two-bad-fields", lambda: Geometric(rho=0.0, n_modes=2.5), ValueError,
     ["Geometric.rho", "Geometric.n_modes"]),
    ("Geometric-string-rho", lambda: Geometric(rho="2"), TypeError, ["Geometric.rho"]),
    ("PowerLaw-list-s", lambda: PowerLaw(s=[1.5, 2.0], a=2.0), TypeError, ["PowerLaw.s"]),
    ("Empirical-sign-and-shape",
     lambda: Empirical(jnp.array([1.0, -1.0]), jnp.array([1.0])), ValueError,
     ["Empirical.eigenvalues", "Empirical.target_power"]),
    ("Empirical.from_data-nan", lambda: Empirical.from_data(np.full((4, 2), NAN)), ValueError,
     ["x"]),
    ("signal_modes-zero-noise",
     lambda: spectra.signal_modes(jnp.ones(4), noise=0.0, n_samples=10), ValueError, ["noise"]),
    # linear.Params
    ("linear.Params-n_trainable-below-one", lambda: linear.Params(SPEC, n_trainable=0.5),
     ValueError, ["n_trainable"]),
    ("linear.Params-not-a-spectrum", lambda: linear.Params(2.0), TypeError, ["spectrum"]),
    ("linear.Params-string-lr", lambda: linear.Params(SPEC, lr="0.1"), TypeError, ["lr"]),
    ("linear.Params-list-lr", lambda: linear.Params(SPEC, lr=[0.1, 0.2]), TypeError, ["lr"]),
    # simulate
    ("record_steps-decreasing", lambda: simulate.record_steps(steps=[3, 2]), ValueError,
     ["steps"]),
    ("trajectory-zero-records",
     lambda: simulate.trajectory(linear, TEMPLATE, KEY, n_records=0), ValueError,
     ["n_records"]),
    # sweep
    ("Grid-empty-axis", lambda: sweep.Grid(product=dict(lr=[])), ValueError, ["lr"]),
    ("Grid-scalar-axis-and-seeds", lambda: sweep.Grid(product=dict(lr=0.1), n_seeds=0),
     ValueError, ["lr", "n_seeds"]),
    ("Grid-unequal-zipped", lambda: sweep.Grid(zipped=dict(a=[1, 2], b=[1])), ValueError,
     ["zipped"]),
    ("Options-two-bad-fields", lambda: sweep.Options(devices=0, chunk_budget=-1.0), ValueError,
     ["devices", "chunk_budget"]),
    ("Options-string-budget", lambda: sweep.Options(chunk_budget="2G"), TypeError,
     ["chunk_budget"]),
    ("Options-compile", lambda: sweep.Options(compile="fastest"), ValueError,
     ["compile", "optimized", "fast"]),
    ("plan-unknown-axis",
     lambda: sweep.plan(sweep.make_from(TEMPLATE), sweep.Grid(product={"eta": [0.1]})),
     ValueError, ["eta"]),
    ("plan-bad-axis-value",
     lambda: sweep.plan(sweep.make_from(TEMPLATE), sweep.Grid(product={"lr": [0.1, -1.0]})),
     ValueError, ["lr"]),
    ("make_from-not-a-dataclass", lambda: sweep.make_from(3.0), TypeError, ["template"]),
    ("run-dims-of-the-wrong-rank", lambda: _sweep(dims={"value": ("a", "b")}), ValueError,
     ["dims", "value"]),
    ("run-coords-of-the-wrong-length",
     lambda: _sweep(dims={"value": ("record",)}, coords={"record": [0, 1]}), ValueError,
     ["coords", "record"]),
    # compare
    ("compare-negative-tolerance", lambda: _compare(tolerance=-0.1), ValueError, ["tolerance"]),
    ("compare-one-seed", lambda: _compare(sweep.Grid(product={"lr": [0.1]}, n_seeds=1)),
     ValueError, ["grid.n_seeds"]),
    ("compare-unknown-observable", lambda: _compare(observable="risk"), ValueError,
     ["observable"]),
    ("compare-grid-not-a-Grid", lambda: _compare(dict(lr=[0.1])), TypeError, ["grid"]),
    ("compare-coords-of-the-wrong-length",
     lambda: compare.compare(_records, sweep.make_from(TEMPLATE), GRID,
                             lambda p: p.lr * jnp.ones(3), observable="value", tolerance=0.1,
                             dims={"value": ("record",)}, coords={"record": [0, 1]},
                             options=OPTIONS),
     ValueError, ["coords", "record"]),
    # fit, data, diagnostics
    ("power_law-nonpositive-y", lambda: fit.power_law([1.0, 2.0, 3.0], [1.0, 0.0, 1.0]),
     ValueError, ["y"]),
    ("power_law-negative-n_boot",
     lambda: fit.power_law([1.0, 2.0, 3.0], [3.0, 2.0, 1.0], n_boot=-1), ValueError, ["n_boot"]),
    ("ngram_counts-zero-n", lambda: data.ngram_counts("abc" * 100, n=0), ValueError, ["n"]),
    ("ngram_counts-zero-block", lambda: data.ngram_counts("abc" * 100, block=0), ValueError,
     ["block"]),
    ("grokking-threshold-above-one",
     lambda: diagnostics.grokking.event(jnp.ones(3), jnp.ones(3), jnp.arange(3), threshold=1.5),
     ValueError, ["threshold"]),
]  # fmt: skip


def _named(message: str, name: str) -> bool:
    """Whether `message` names `name` as a word of its own (not inside another name: the field
    `t` is not the t of "got")."""
    return re.search(rf"(?<![\w.]){name}(?![\w])", message) is not None


@pytest.mark.parametrize(
    "call, error, names", [pytest.param(*case[1:], id=case[0]) for case in CASES]
)
def test_bad_input_is_one_line_naming_the_field(call, error, names):
    with unchecked(), warnings.catch_warnings(), pytest.raises(error) as caught:
        warnings.simplefilter("error")  # refused, not warned about
        call()
    message = str(caught.value)
    assert message.strip() and "\n" not in message, message
    for name in names:
        assert _named(message, name), f"{name!r} is not named in: {message}"


def test_there_are_at_least_sixty_distinct_bad_inputs():
    cli_inputs = len(CLI_CASES) + 1  # and --debug
    ids = [case[0] for case in CASES] + [name for name, _ in STABILITY_EDGES]
    assert len(set(ids)) == len(ids)
    assert len(CASES) + len(STABILITY_EDGES) + cli_inputs >= 60


# --- stability edges: one warning naming lr and the limit ----------------------------------

STABILITY_EDGES = [
    ("gd_loss-lr-1e9", lambda: theory.gd_loss(SPEC, lr=1e9, steps=10)),  # reported
    ("sgd_loss-lr-100", lambda: theory.sgd_loss(SPEC, lr=100.0, batch=1, steps=[10])),  # reported
    ("sgd-at-chi-one", lambda: theory.linear.sgd(
        dataclasses.replace(TEMPLATE, lr=float(theory.linear.critical_lr(TEMPLATE)) * 1.01),
        [10])),
    ("gd-simulator", lambda: simulate.trajectory(
        linear.gd, linear.Params(SPEC, lr=2.0), None, steps=[10])),
    ("sgd-simulator", lambda: simulate.trajectory(
        linear, linear.Params(SPEC, lr=3.0), KEY, steps=[10])),
    ("preconditioned-gd-loss",
     lambda: theory.evolution.preconditioned_gd_loss(SPEC, rho=2.0, lr=2.5, steps=[3])),
    ("preconditioned-simulator", lambda: simulate.trajectory(
        evolution.preconditioned, evolution.Params(SPEC, lr=2.5), None, steps=[3])),
    ("ridge-gd_weights", lambda: theory.ridge.gd_weights(
        2 * jnp.eye(3), jnp.ones(3), lr=2.0, steps=[5])),  # mu = 4/3: the edge is lr = 1.5
    ("random-features-sgd", lambda: theory.random_features.sgd(
        random_features.Params(SPEC, lr=50.0, n_features=4), [5])),
]  # fmt: skip


@pytest.mark.parametrize("call", [pytest.param(c, id=i) for i, c in STABILITY_EDGES])
def test_past_the_stability_edge_warns_once_naming_lr(call):
    with unchecked(), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        call()
    messages = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert len(messages) == 1 and len(caught) == 1, messages
    assert re.search(r"lr = \S+ is past the stability limit \(.+ >= \S+\)", messages[0])


def test_below_the_edge_or_traced_nothing_warns():
    with unchecked(), warnings.catch_warnings():
        warnings.simplefilter("error")
        theory.gd_loss(SPEC, lr=1.9, steps=[10])
        simulate.trajectory(linear.gd, linear.Params(SPEC, lr=1.9), None, steps=[10])
        simulate.trajectory(linear, linear.Params(SPEC, lr=0.1), KEY, steps=[10])
        theory.evolution.preconditioned_gd_loss(SPEC, rho=2.0, lr=1.9, steps=[3])
        # A scheduled SGD's lr is a scale, not a rate: no limit to hold it to.
        simulate.trajectory(linear.sgd(lambda t: 0.01), linear.Params(SPEC, lr=3.0), KEY,
                            steps=[10])  # fmt: skip
        jax.jit(lambda p: simulate.trajectory(linear.gd, p, None, steps=[10]))(
            linear.Params(SPEC, lr=5.0)
        )


# --- the collector ---------------------------------------------------------------------------


def test_all_of_names_every_failure_on_one_line():
    with pytest.raises(ValueError) as caught, checks.all_of() as check:
        assert check.range("lr", -1.0, gt=0) is False
        assert check.count("batch", 2) is True
        check.count("n", 0)
        check.one_of("model", "svm", ("kernel", "rf"))
        check.that(False, "width must be even; got 3")
    assert str(caught.value) == (
        "lr must be finite and > 0; got -1.0; n must be an integer >= 1; got 0; model must be "
        "one of ('kernel', 'rf'); got 'svm'; and width must be even; got 3"
    )


def test_all_of_joins_a_raised_value_error_and_passes_type_errors():
    with pytest.raises(ValueError, match=r"^lr must .*; and P must be square$"):
        with checks.all_of() as check:
            check.range("lr", NAN)
            raise ValueError("P must be square")
    with pytest.raises(ValueError, match=r"^P must be square$"):  # alone: the error itself
        with checks.all_of():
            raise ValueError("P must be square")
    with pytest.raises(TypeError, match="lr must be a number; got the string 'x'"):
        with checks.all_of() as check:
            check.range("noise", -1.0, ge=0)
            check.range("lr", "x")
    with checks.all_of() as check:  # nothing wrong: nothing raised
        check.range("lr", [0.1, 0.2], gt=0)
        check.range("steps", np.arange(3), ge=0, integer=True)


def test_checks_do_nothing_on_tracers():
    def build(lr):
        checks.check_range("lr", lr, gt=0, integer=True)
        return linear.Params(SPEC, lr=lr).lr

    assert float(jax.jit(build)(-1.0)) == -1.0  # refused only when concrete


# --- the command line ------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Config:
    lr: float = 0.1
    n_modes: int = 8
    s: float | str = 2.0  # a loosely typed field: a string reaches the library
    quick: bool = False


def _run(cfg: Config, options: sweep.Options | None = None):
    params = linear.Params(PowerLaw(s=cfg.s, a=2.0, n_modes=cfg.n_modes), lr=cfg.lr)
    grid = sweep.Grid(product={"lr": [cfg.lr, 2 * cfg.lr]}, n_seeds=2)
    options = options or sweep.Options()
    options.run("bad", lambda p, key: dict(x=p.lr), sweep.make_from(params), grid)
    raise AssertionError("the tests give only bad input")


@pytest.fixture
def fake(monkeypatch):
    """Registers an experiment `fake` whose run builds Params from its Config."""
    module = types.ModuleType("fake_bad_input")
    module.__doc__ = "An experiment for bad input."
    module.Config, module.run = Config, _run  # type: ignore[attr-defined]
    monkeypatch.setattr(registry, "_entry_points", lambda: {"fake": "fake_bad_input"})
    monkeypatch.setitem(sys.modules, "fake_bad_input", module)


# main() sets the numeric policy globally: the suite's is put back after each test.
pytestmark = pytest.mark.usefixtures("jax_policy")


CLI_CASES = [
    (["run", "fake", "--out"], ["--out"]),  # tyro: a flag without its value
    (["run", "fake", "--lr", "x"], ["--lr"]),  # tyro: not a number
    (["run", "fake", "--lr-rate", "0.1"], ["--lr-rate"]),  # tyro: no such flag
    (["run", "fake", "--devices", "0", "--chunk-budget", "lots"], ["--devices", "--chunk-budget"]),
    (["run", "fake", "--matmul-precision", "fast"], ["--matmul-precision"]),
    (["run", "fake", "--lr", "-1"], ["lr"]),  # the library's ValueError, raised inside run
    (["run", "fake", "--s", "-1", "--n-modes", "0"], ["PowerLaw.s", "PowerLaw.n_modes"]),
    (["run", "fake", "--s", "abc"], ["PowerLaw.s"]),  # the library's TypeError
    (["run", "fake", "--devices", "99"], ["devices"]),  # sweep.plan, inside run
    (["run", "nope"], ["nope"]),
]


@pytest.mark.parametrize("argv, names", CLI_CASES, ids=[" ".join(a) for a, _ in CLI_CASES])
def test_command_line_errors_are_one_line(fake, capsys, tmp_path, argv, names):
    with unchecked():  # as the command runs outside the test suite
        assert cli.main([*argv, f"--out={tmp_path}"] if argv[-1] != "--out" else argv) == 2
    out = capsys.readouterr()
    lines = out.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("spectral-sim: error: "), out.err
    assert "raised at" not in lines[0] and ".py:" not in lines[0] and "─" not in lines[0]
    for name in names:
        assert _named(lines[0], re.escape(name)), f"{name!r} is not named in: {lines[0]}"


def test_the_reported_missing_value_of_a_real_experiment(capsys):
    """`spectral-sim run learning_curves --out`: a 10-line box from tyro, now one line."""
    assert cli.main(["run", "learning_curves", "--out"]) == 2
    assert capsys.readouterr().err == (
        "spectral-sim: error: run options: Missing value for argument '--out'. Expected 1 values.\n"
    )


def test_debug_keeps_the_traceback_and_tyros_message(fake, capsys, tmp_path):
    with pytest.raises(cli.UsageError, match="fake: lr must be finite and > 0") as caught:
        cli.main(["--debug", "run", "fake", "--lr", "-1", f"--out={tmp_path}"])
    assert isinstance(caught.value.__cause__, ValueError)  # where it was raised
    with pytest.raises(cli.UsageError, match="Missing value for argument '--out'"):
        cli.main(["--debug", "run", "fake", "--out"])
    err = capsys.readouterr().err  # tyro's own message, whole (in ASCII: capsys is not UTF-8)
    assert "Missing argument" in err and "For full helptext" in err
