"""Prototype a theorem: run a simulator over a grid of Params (seeds included) through the sweep
engine and test a predictor of the same Params against it, point by point, as a verdict table.

    template = linear.Params(PowerLaw(s=2.0, a=2.0, n_modes=256), batch=4, noise=0.01)
    report = compare(linear, template, sweep.Grid(product={"lr": [0.1, 0.2]}, n_seeds=256),
                     my_predictor, observable="loss", tolerance=0.02, steps=[10, 100, 300])
    print(report.table())

The simulator is a model (a Simulator such as `linear.sgd()`, or a model module such as
`linear`, run by `simulate.trajectory` and recorded at `steps`) or any function
`(params, key) -> outputs`; the Params come from a template whose fields are the grid's axes
("spectrum.s", "lr") or from a `make(**point)`.

The predictor is any function of the Params (a notebook's own, jitted or not; a Params form of
`spectral_sim.theory`) returning the observable's shape. It is evaluated by one jax.vmap over
the stacked grid of Params, or point by point if it cannot be traced (NumPy, float() or an `if`
on a field). The claim is decided by `spectral_sim.claims` over the whole grid: PASS if
every point's relative error is significantly within `tolerance` (the margin the user argues
the theorem must meet), FAIL if any point is significantly outside it.
"""

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from spectral_sim import claims, sweep
from spectral_sim._types import Simulator
from spectral_sim.report import Report
from spectral_sim.simulate import as_simulator, record_steps, trajectory

__all__ = ["compare", "model_runner", "output_shapes", "predictions"]


def predictions(
    make: Callable, grid: sweep.Grid, predict: Callable, shape: tuple[int, ...]
) -> np.ndarray:
    """predict(make(**point)) at every grid point, stacked in grid order and shaped (*grid dims,
    *shape), `shape` the simulated observable's per-point shape.

    One jax.vmap per stacked group of Params (points whose Params share a tree structure and leaf
    shapes: static fields split the grid, as in the sweep); a predictor that cannot be traced
    (NumPy on the fields, float() or an `if` on a traced value) is called point by point."""
    params = [make(**point) for point in grid.points()]
    try:
        values = _vmapped(params, predict)
    except _UNTRACEABLE:
        values = [np.asarray(predict(p), dtype=float) for p in params]
    name = getattr(predict, "__name__", type(predict).__name__)
    shapes = {v.shape for v in values}
    if len(shapes) != 1:
        raise ValueError(f"predict ({name}) must return one shape at every grid point; got "
                         f"{shapes}")  # fmt: skip
    if values[0].shape != shape:
        raise ValueError(f"predict ({name}) must return the observable's shape {shape} at every "
                         f"grid point; got {values[0].shape}")  # fmt: skip
    return np.stack(values).reshape(*grid.dims.values(), *shape)


# Errors of tracing a function that needs concrete values (jax.errors' tracer errors).
_UNTRACEABLE = (jax.errors.JAXTypeError, jax.errors.NonConcreteBooleanIndexError)


def _vmapped(params: list, predict: Callable) -> list[np.ndarray | np.generic]:
    """predict(p) for every p in `params`, by one jitted vmap over each group of Params that share
    a tree structure and leaf shapes, their leaves stacked along a leading grid axis (the Params
    are rebuilt inside the vmap, so their checks see one point's shapes)."""
    groups: dict[Any, list[int]] = {}
    for index, point in enumerate(params):
        leaves, treedef = jax.tree.flatten(point)
        groups.setdefault((treedef, tuple(map(np.shape, leaves))), []).append(index)
    values: list[np.ndarray | np.generic] = [np.empty(0)] * len(params)  # 1-d rows: scalars
    for (treedef, _), indices in groups.items():
        rows = [jax.tree.leaves(params[i]) for i in indices]
        # stacked on the host: jnp.stack would compile a program per leaf shape
        stacked = [np.stack([np.asarray(row[j]) for row in rows]) for j in range(len(rows[0]))]
        out = np.asarray(_stacked(predict, treedef)(stacked), dtype=float)
        for i, value in zip(indices, out, strict=True):
            values[i] = value
    return values


@functools.lru_cache(maxsize=64)
def _stacked(predict: Callable, treedef) -> Callable:
    """jit(vmap(predict)) over stacked Params leaves of one tree structure: one program per
    predictor and structure, reused by every call (a search's rounds, a repeated compare)."""

    def one(leaves):
        return jnp.asarray(predict(jax.tree.unflatten(treedef, leaves)))

    return jax.jit(jax.vmap(one))


def output_shapes(simulate: Callable, params: Any, observable: str) -> dict[str, tuple]:
    """The shape of each of `simulate(params, key)`'s outputs, by name (`sweep.leaf_names`, in
    leaf order), from jax.eval_shape: it traces, it does not compile. ValueError naming the
    outputs unless `observable` is one of them."""
    shapes = jax.eval_shape(simulate, params, jax.random.key(0))
    names = sweep.leaf_names(jax.tree.structure(shapes))
    if observable not in names:
        raise ValueError(f"observable must be one of the simulator's outputs {names}; got "
                         f"{observable!r}")  # fmt: skip
    return {n: leaf.shape for n, leaf in zip(names, jax.tree.leaves(shapes), strict=True)}


def model_runner(model: Any, steps: Sequence[int] | None) -> tuple[Callable, np.ndarray]:
    """`(params, key) -> observables at steps` for a model (a Simulator or a model module), and
    the record steps."""
    name = getattr(model, "__name__", type(model).__name__)
    model = as_simulator(model)
    if steps is None:
        raise ValueError(f"steps must list the record steps when the simulator is a model "
                         f"({name}); e.g. steps=[10, 100, 1000]")  # fmt: skip
    schedule = record_steps(steps=steps)

    def run(params, key):
        return trajectory(model, params, key, steps=schedule)[1]

    run.__qualname__ = f"trajectory({name})"
    return run, schedule


def compare(
    simulate: Callable | Any,
    make: Callable | Any,
    grid: sweep.Grid,
    predict: Callable,
    *,
    observable: str,
    tolerance: float,
    name: str = "compare",
    source: str = "user predictor",
    alpha: float = 0.05,
    options: sweep.Options | None = None,
    seed: int = 0,
    dims: Mapping[str, Sequence[str]] | None = None,
    coords: Mapping[str, Sequence] | None = None,
    exponent_of: str | None = None,
    n_boot: int = 200,
    steps: Sequence[int] | None = None,
    tolerance_kind: claims.ToleranceKind = "judgement",
) -> Report:
    """Simulate `simulate(make(**point), key)` at every grid point and seed (the sweep engine:
    chunked, sharded, resumable with `options.out`), take its `observable` output and compare
    the seed mean with `predict(make(**point))`.

    `simulate` may be a model (a Simulator or a model module; `simulate.as_simulator`): it is
    then run by `simulate.trajectory` and recorded at `steps` (its outputs get the output dim
    `step`). `predict` is evaluated by one jax.vmap over the grid's stacked Params (one per
    group of points whose static fields and shapes agree), or point by point if it cannot be
    traced; it must return the observable's shape at every point.
    `make` may be a Params instance: the grid's axes are then its fields, nested ones dotted
    (`sweep.make_from`).

    Returns a Report named `name` with one claim, `name.<observable>`, decided by
    `spectral_sim.claims.seed_mean` over every grid point and output entry: |mean / predicted
    - 1| must be significantly within `tolerance` everywhere for a PASS (family-wise
    false-alarm rate `alpha`); one entry significantly outside is a FAIL. `tolerance_kind`
    says where the margin comes from ("derived", "paper" or "judgement", the default). Its data
    holds every seed (`simulated`), `mean`, `sem`, `predicted`, `z` and `relative_error`; a
    figure plots measured against predicted. An entry where a seed diverged (NaN / inf) is
    counted in `diverged` and the notes, and cannot support a PASS.

    With `exponent_of` (a product axis of the grid with >= 3 positive values, e.g. a sample
    size), the claim is about exponents instead: at every other grid point and output entry
    the seed mean is fitted as C x^-alpha along that axis (least squares on logs), and alpha is
    compared with `predict` (which then returns the predicted exponent; its value at the axis'
    first point is used), within `tolerance` (absolute), by `claims.seed_statistic`: the
    standard error of alpha is the spread over `n_boot` resamples of the seeds, which keeps the
    correlation that common random
    numbers put between the points of a curve.
    """
    if not isinstance(grid, sweep.Grid):
        raise TypeError(f"grid must be a sweep.Grid; got {type(grid).__name__}")
    if not callable(predict):
        raise TypeError(f"predict must be a function of the Params; got {type(predict).__name__}")
    if not callable(make):  # a Params template: the axes are its fields
        make = sweep.make_from(make)
    sweep.check_axes(make, grid)  # before any Params is built from them
    schedule = None
    if isinstance(simulate, Simulator) or not callable(simulate):  # a model (module)
        simulate, schedule = model_runner(simulate, steps)
    if not tolerance >= 0:
        raise ValueError(f"tolerance must be >= 0 (a relative margin); got {tolerance!r}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1); got {alpha!r}")
    if grid.n_seeds < 2:
        raise ValueError(f"grid.n_seeds must be >= 2 for a standard error; got {grid.n_seeds}")
    if exponent_of is not None:
        values = np.asarray(grid.product.get(exponent_of, []), dtype=float)
        if values.size < 3 or not np.all(values > 0):
            raise ValueError(f"exponent_of must name a product axis of >= 3 positive values; got "
                             f"{exponent_of!r} with {values.tolist()}")  # fmt: skip
        if n_boot < 50:
            raise ValueError(f"n_boot must be >= 50; got {n_boot}")
    shapes = output_shapes(simulate, make(**grid.points()[0]), observable)
    if schedule is not None:  # a model's observables: the records axis is `step`
        dims = dims or {n: ("step",) for n, shape in shapes.items() if len(shape) == 1}
        coords = coords or dict(step=schedule.tolist())
    if dims or coords:
        sweep.check_outputs(simulate, make, grid, dims or {}, coords or {})
    observed = shapes[observable]
    predicted = predictions(make, grid, predict, observed)
    data = (options or sweep.Options()).run(
        name, simulate, make, grid, seed=seed, dims=dims, coords=coords,
        config=dict(observable=observable, tolerance=tolerance, alpha=alpha,
                    steps=None if schedule is None else schedule.tolist()),
    )  # fmt: skip
    simulated = data[observable]
    grid_dims = list(grid.dims)
    output_dims = [d for d in simulated.dims if d not in (*grid_dims, "seed")]
    predicted = xr.DataArray(predicted, dims=[*grid_dims, *output_dims],
                             coords={d: simulated[d] for d in [*grid_dims, *output_dims]
                                     if d in simulated.coords})  # fmt: skip
    finite = xr.apply_ufunc(np.isfinite, simulated)
    diverged = (~finite).any("seed")
    clean = simulated.where(finite)
    mean = clean.mean("seed")
    sem = clean.std("seed", ddof=1) / np.sqrt(finite.sum("seed"))
    out = xr.Dataset(dict(simulated=simulated, mean=mean, sem=sem, predicted=predicted,
                          z=(mean - predicted) / sem, relative_error=mean / predicted - 1,
                          diverged=diverged))  # fmt: skip
    common: dict[str, Any] = dict(tolerance=tolerance, family_alpha=alpha, source=source,
                                  tolerance_kind=tolerance_kind)  # fmt: skip
    if exponent_of is None:
        claim = claims.seed_mean(
            simulated, predicted=predicted, relative=True, id=f"{name}.{observable}",
            statement=f"the simulated mean of {observable} equals the prediction within "
            f"{tolerance:.3g} (relative) at every grid point and output entry", **common,
        )  # fmt: skip
    else:
        statistic = functools.partial(_exponent, axis=exponent_of)
        alpha_pred = predicted.isel({exponent_of: 0}, drop=True)
        claim = claims.seed_statistic(
            simulated, statistic, predicted=alpha_pred, n_boot=n_boot, boot_seed=seed,
            id=f"{name}.{observable}_exponent",
            statement=f"the simulated mean of {observable} decays as {exponent_of}^-alpha with "
            f"the predicted alpha (within {tolerance:.3g}) on every curve", **common,
        )  # fmt: skip
        exponent, exponent_se = claims.bootstrap(simulated, statistic, n_boot=n_boot,
                                                 boot_seed=seed)  # fmt: skip
        out = out.assign(exponent=exponent, exponent_stderr=exponent_se,
                         exponent_predicted=alpha_pred)  # fmt: skip
    notes = [f"{int(diverged.sum())} of {diverged.size} entries had a diverged seed (none can "
             f"support a PASS)"]  # fmt: skip
    return Report(experiment=name, claims=[claim], data=out, figures=dict(compare=_figure(out)),
                  config=dict(observable=observable, tolerance=tolerance, alpha=alpha,
                              grid=grid.describe()), seed=seed, notes=notes)  # fmt: skip


def _exponent(mean: xr.DataArray, axis: str) -> xr.DataArray:
    """alpha of mean ~ C axis^-alpha on every curve along `axis` (least squares on logs)."""
    x = xr.apply_ufunc(np.log, mean[axis].astype(float))
    log_mean = xr.apply_ufunc(np.log, mean)
    dx = x - x.mean()
    return -((log_mean - log_mean.mean(axis)) * dx).sum(axis) / (dx**2).sum()


def _figure(data: xr.Dataset):
    import matplotlib.figure

    figure = matplotlib.figure.Figure(figsize=(10, 4), layout="constrained")
    ax_values, ax_error = figure.subplots(1, 2)
    predicted = data.predicted.values.ravel()
    mean, sem = data["mean"].values.ravel(), data.sem.values.ravel()
    ax_values.errorbar(predicted, mean, yerr=sem, fmt="o", ms=3, label="simulated mean ± SEM")
    finite = predicted[np.isfinite(predicted)]
    if finite.size:
        line = np.array([finite.min(), finite.max()])
        ax_values.plot(line, line, "k-", lw=1, label="measured = predicted")
    ax_values.set(xlabel="predicted", ylabel="simulated", title="prediction against simulation")
    ax_values.legend(fontsize=7)
    index = np.arange(predicted.size)
    relative = data.relative_error.values.ravel()
    ax_error.errorbar(index, relative, yerr=sem / np.abs(predicted), fmt="o", ms=3)
    ax_error.axhline(0, color="k", lw=1)
    ax_error.set(xlabel="grid entry (row-major)", ylabel="mean / predicted - 1",
                 title="relative error per entry")  # fmt: skip
    return figure
