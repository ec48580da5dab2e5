"""Where does a theorem break? `search` maps where a predictor agrees with a simulator over a box
of Params axes, within a budget of evaluated points, and returns a `ValidityMap`: every sampled
point with its verdict, the worst point found (the counterexample), the boundary between the
points where the claim holds and those where it fails, a figure, and a one-claim report
("holds on the whole box").

    template = linear.Params(PowerLaw(s=2.0, a=2.0, n_modes=64), noise=0.01)
    found = validity.search(linear, template, {"lr": (0.05, 1.5, "log")}, my_predictor,
                            observable="loss", tolerance=0.05, steps=[100, 300])
    found.boundary("lr"), found.worst, print(found.report().table())

The search, as `compare` runs a grid (the same simulators, templates and predictors):

1. a scrambled Halton design over the box (each axis linear or logarithmic), evaluated through
   the sweep engine in rounds of one size, so that every round runs the same compiled program
   (the points change, the shapes do not);
2. each point decided by the claim engine over its seeds and output entries (`claims.seed_mean`,
   or `claims.exact` for a deterministic simulator);
3. refinement rounds until the budget is spent: the midpoint of each pair of neighbouring points
   whose verdicts differ (a bisection towards the boundary, widest gaps first), the INCONCLUSIVE
   points again with fresh seeds (pooled with their earlier ones), and the rest of the round
   from the design's next points;
4. for a deterministic simulator (every seed equal), half of the last round climbs error /
   tolerance by gradient ascent (forward mode, inside the box) from the worst points sampled so
   far, so that a failure between the samples is still found: the box can PASS only if no
   direction it climbed leads out of the tolerance.

The map's verdicts and the whole-box claim are decided at one family level over every sampled
point and output entry (Bonferroni, as every claim of the engine): the box claim is FAIL as soon
as one point FAILs, PASS only if every point PASSes, else INCONCLUSIVE. While it refines, the
search reads the verdicts at the level of a map of `budget` points, the strictest it can end at.
"""

import dataclasses
import functools
import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, cast

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr
from scipy.stats import qmc

from spectral_sim import claims, sweep
from spectral_sim._types import Simulator
from spectral_sim.claims import Claim
from spectral_sim.compare import model_runner, output_shapes, predictions
from spectral_sim.report import Report

if TYPE_CHECKING:  # matplotlib is imported when a figure is drawn
    from matplotlib.figure import Figure

__all__ = ["ValidityMap", "search"]

ROUNDS = 8
"""The budget is spent in ROUNDS rounds of equal size: the first half of them on the design."""
MAX_POOLED = 4
"""A point is evaluated at most this many times (its seeds pooled) while it stays INCONCLUSIVE."""
ALPHA = claims.FAMILY_ALPHA
SAME = 1e-3
"""A midpoint closer than this share of its pair's gap to a sampled point is not sampled again."""
ASCENT_STEPS = 16
"""Steps of the gradient ascent that a deterministic search makes from its worst points."""


@dataclasses.dataclass(frozen=True)
class _Axis:
    """One axis of the box: a Params field (dotted for nested ones), its range, its scale."""

    name: str
    low: float
    high: float
    log: bool

    def values(self, unit: np.ndarray) -> np.ndarray:
        """Axis values at unit coordinates in [0, 1]."""
        if self.log:
            return np.exp(np.log(self.low) + unit * (np.log(self.high) - np.log(self.low)))
        return self.low + unit * (self.high - self.low)

    def unit(self, values: np.ndarray) -> np.ndarray:
        """The unit coordinates of axis values (the inverse of `values`)."""
        if self.log:
            return (np.log(values) - np.log(self.low)) / (np.log(self.high) - np.log(self.low))
        return (values - self.low) / (self.high - self.low)

    def traced(self, unit: jax.Array) -> jax.Array:
        """`values` of a traced unit coordinate (for the gradient ascent)."""
        if self.log:
            return jnp.exp(jnp.log(self.low) + unit * (jnp.log(self.high) - jnp.log(self.low)))
        return self.low + unit * (self.high - self.low)


def _axes(space: Mapping[str, Any], fields: list[str]) -> list[_Axis]:
    """The box's axes, each checked: a field of the template, low < high (finite), and low > 0
    on a log axis. ValueError naming the axis otherwise."""
    if not isinstance(space, Mapping) or not space:
        raise ValueError(f"space must map at least one Params field to (low, high) or (low, "
                         f"high, 'log'); got {space!r}")  # fmt: skip
    axes = []
    for name, spec in space.items():
        if name not in fields:
            raise ValueError(f"space axis {name!r} is not a field of the template; valid names: "
                             f"{fields}")  # fmt: skip
        if not isinstance(spec, tuple | list) or len(spec) not in (2, 3):
            raise ValueError(f"space[{name!r}] must be (low, high) or (low, high, 'log'); got "
                             f"{spec!r}")  # fmt: skip
        scale = spec[2] if len(spec) == 3 else "linear"
        if scale not in ("linear", "log"):
            raise ValueError(f"space[{name!r}]'s scale must be 'linear' or 'log'; got {scale!r}")
        low, high = float(spec[0]), float(spec[1])
        if not (math.isfinite(low) and math.isfinite(high) and low < high):
            raise ValueError(f"space[{name!r}] needs finite low < high; got ({low}, {high})")
        if scale == "log" and low <= 0:
            raise ValueError(f"space[{name!r}] is a log axis: low must be > 0; got {low}")
        axes.append(_Axis(name, low, high, scale == "log"))
    return axes


@dataclasses.dataclass
class _Point:
    """A sampled point: its unit coordinates, its samples (seeds first, pooled over its
    evaluations) and its prediction."""

    unit: np.ndarray
    samples: np.ndarray
    predicted: np.ndarray
    origin: str = "design"  # "design", "bisection" or "ascent"
    evaluations: int = 1

    @property
    def deterministic(self) -> bool:
        """Every seed gave the same value (or there is one seed)."""
        return bool(np.all(self.samples == self.samples[:1]))


def _decide(point: _Point, tolerance: float, relative: bool, level: float, dims) -> Claim:
    """The point's claim over its output entries at family level `level`: `claims.exact` for a
    deterministic simulator (every seed equal), else `claims.seed_mean` over its seeds."""
    predicted = xr.DataArray(point.predicted, dims=dims)
    samples = point.samples
    if point.deterministic:
        return claims.exact(
            xr.DataArray(samples[0], dims=dims),
            predicted=predicted,
            tolerance=tolerance,
            relative=relative,
            tolerance_kind="judgement",
        )
    return claims.seed_mean(
        xr.DataArray(samples, dims=("seed", *dims)),
        predicted=predicted,
        tolerance=tolerance,
        relative=relative,
        family_alpha=level,
    )


def _ratio(claim: Claim, side: int = 1) -> float:
    """(error + z stderr) / tolerance at the claim's deciding entry: above 1, the claim cannot
    hold there; with side=-1, (error - z stderr) / tolerance: how far its interval lies outside
    the band. inf for a diverged entry."""
    if claim.diverged or not math.isfinite(claim.measured):
        return math.inf
    spread = claim.z * claim.stderr if math.isfinite(claim.stderr) else 0.0
    error = abs(claim.measured - claim.predicted)
    return (error + side * spread) / max(claim.tolerance, 1e-300)


@dataclasses.dataclass(frozen=True)
class ValidityMap:
    """The result of `search`. `samples` has dim `sample`: a coordinate per axis and the
    variables `verdict`, `ratio` ((error + z stderr) / tolerance at the point's deciding entry),
    `measured`, `predicted`, `stderr` (there), `seeds` (pooled), `origin` ("design",
    "bisection" or "ascent": how the point was chosen), and every entry of the observable:
    `outputs` (dims sample, seed and the entries; NaN past a point's `seeds`) and `prediction`
    (sample and the entries), from which any claim over a part of the box can be decided again
    (`claims.seed_mean` with `observed=outputs.notnull()`). `worst` is the counterexample:
    the FAILing point farthest outside its band ((error - z stderr) / tolerance), or without a
    FAIL the point with the largest ratio. `box` is the whole-box claim (see `report`)."""

    samples: xr.Dataset
    worst: dict[str, float]
    box: Claim
    axes: tuple[_Axis, ...]
    config: dict[str, Any]

    def boundary(self, axis: str) -> list[float]:
        """The axis values where PASS turns into FAIL (or back) along the axis of a 1-D search:
        the midpoints (geometric on a log axis) between the last point of one verdict and the
        first of the other, INCONCLUSIVE points between them skipped. Each is known to within
        half the gap it splits (`resolution`)."""
        return [value for value, _ in self._crossings(axis)]

    def resolution(self, axis: str) -> list[float]:
        """Per boundary value, half the width of the gap it splits (in axis units)."""
        return [half for _, half in self._crossings(axis)]

    def _crossings(self, axis: str) -> list[tuple[float, float]]:
        names = [a.name for a in self.axes]
        if axis not in names:
            raise ValueError(f"axis must be one of the searched axes {names}; got {axis!r}")
        if len(self.axes) != 1:
            raise ValueError(f"boundary needs a 1-D search; this one has axes {names}")
        log = self.axes[0].log
        order = np.argsort(self.samples[axis].values)
        x = self.samples[axis].values[order]
        verdict = self.samples.verdict.values[order]
        decided = [(float(v), str(d)) for v, d in zip(x, verdict, strict=True)
                   if d != "INCONCLUSIVE"]  # fmt: skip
        out = []
        for (left, a), (right, b) in zip(decided, decided[1:], strict=False):
            if a != b:
                mid = math.sqrt(left * right) if log else (left + right) / 2
                out.append((mid, max(mid - left, right - mid)))
        return out

    def crossings(self) -> xr.Dataset:
        """The estimated boundary in any number of axes: the midpoint of every pair of
        neighbouring points where one PASSes and the other FAILs (each point's 2 d nearest, in
        the box's unit coordinates: every axis scaled to [0, 1], log axes in log). Dim
        `crossing`: a coordinate per axis, and `resolution`, half the pair's distance in unit
        coordinates (the boundary crosses the segment between them, so it passes within that
        distance of the midpoint)."""
        units = np.stack([a.unit(self.samples[a.name].values) for a in self.axes], axis=-1)
        verdict = self.samples.verdict.values
        pairs, distance = _neighbours(
            units, lambda i, j: verdict[i] == "PASS" and verdict[j] == "FAIL"
        )
        pairs = sorted(pairs)
        mids = np.array([(units[i] + units[j]) / 2 for i, j in pairs]).reshape(-1, units.shape[1])
        coords = {a.name: ("crossing", a.values(mids[:, k])) for k, a in enumerate(self.axes)}
        half = [distance[i, j] / 2 for i, j in pairs]
        return xr.Dataset(dict(resolution=("crossing", np.asarray(half, float))), coords=coords)

    def report(self, *, id: str = "validity.box", source: str = "user predictor",
               statement: str | None = None) -> Report:  # fmt: skip
        """A Report with one claim, "holds on the whole box" (FAIL with the counterexample as
        soon as one point FAILs; PASS only if every sampled point PASSes), the samples as its
        data and the map as its figure; the notes give the worst point and, for a 1-D search,
        the boundary with its resolution."""
        box = dataclasses.replace(self.box, id=id, source=source,
                                  statement=statement or self.box.statement)  # fmt: skip
        at = self.samples.isel(sample=self._worst_index())
        notes = [f"worst point: {_label(self.worst)}: {at.verdict.item()}, measured "
                 f"{at.measured.item():.6g} ± {at.stderr.item():.3g} against predicted "
                 f"{at.predicted.item():.6g} (ratio {at.ratio.item():.3g}, {at.seeds.item()} "
                 "seeds)"]  # fmt: skip
        if len(self.axes) > 1:
            found = self.crossings()
            widest = float(np.max(found.resolution.values, initial=0.0))
            notes.append(f"boundary: {found.sizes['crossing']} PASS | FAIL midpoints "
                         f"(`crossings()`), each within {widest:.2g} of it in unit "
                         "coordinates")  # fmt: skip
        if len(self.axes) == 1:
            name = self.axes[0].name
            found = ", ".join(
                f"{v:.4g} ± {r:.2g}"
                for v, r in zip(self.boundary(name), self.resolution(name), strict=True)
            )
            notes.append(f"boundary along {name}: {found or 'none found'}")
        counts = {
            v: int((self.samples.verdict == v).sum()) for v in ("PASS", "FAIL", "INCONCLUSIVE")
        }
        notes.append(f"gradient ascent: {self.config['ascent']}")
        notes.append(f"{self.samples.sizes['sample']} points: " +
                     ", ".join(f"{n} {v}" for v, n in counts.items()))  # fmt: skip
        return Report(experiment=id.split(".")[0], claims=[box], data=self.samples,
                      figures=dict(validity=self.figure()), config=self.config,
                      seed=self.config.get("seed", 0), notes=notes)  # fmt: skip

    def _worst_index(self) -> int:
        match = np.ones(self.samples.sizes["sample"], bool)
        for name, value in self.worst.items():
            match &= self.samples[name].values == value
        return int(np.argmax(match))

    def figure(self, ax=None) -> "Figure":
        """1-D: the ratio against the axis, coloured by verdict, with the line ratio = 1 and the
        boundary; 2-D or more: the verdicts over the first two axes, the boundary's midpoints
        (`crossings`) crossed and the worst point starred.
        Drawn on `ax` (a matplotlib Axes) if given, else on a new Figure; returns the Figure."""
        import matplotlib.figure

        if ax is None:
            figure = matplotlib.figure.Figure(figsize=(6, 4), layout="constrained")
            ax = figure.subplots()
        else:
            figure = cast("Figure", ax.figure)
        colours = dict(PASS="tab:green", FAIL="tab:red", INCONCLUSIVE="tab:gray")
        first = self.axes[0]
        x = self.samples[first.name].values
        for verdict, colour in colours.items():
            on = self.samples.verdict.values == verdict
            if len(self.axes) == 1:
                ratio = np.minimum(self.samples.ratio.values[on], 1e6)
                ax.scatter(x[on], ratio, s=12, c=colour, label=verdict)
            else:
                ax.scatter(x[on], self.samples[self.axes[1].name].values[on], s=12, c=colour,
                           label=verdict)  # fmt: skip
        if len(self.axes) == 1:
            ax.axhline(1.0, color="k", lw=1)
            for value in self.boundary(first.name):
                ax.axvline(value, color="k", ls="--", lw=1)
            ax.set(ylabel="(error + z SE) / tolerance", yscale="log")
        else:
            found = self.crossings()
            ax.scatter(found[first.name].values, found[self.axes[1].name].values, marker="x",
                       s=14, c="k", lw=1, label="boundary (PASS | FAIL midpoints)")  # fmt: skip
            ax.scatter([self.worst[first.name]], [self.worst[self.axes[1].name]], marker="*",
                       s=150, c="k", label="worst")  # fmt: skip
            ax.set(ylabel=self.axes[1].name, yscale="log" if self.axes[1].log else "linear")
        ax.set(xlabel=first.name, xscale="log" if first.log else "linear",
               title="where the claim holds")  # fmt: skip
        ax.legend(fontsize=7)
        return figure


def _label(point: Mapping[str, float]) -> str:
    return ", ".join(f"{k} = {v:.4g}" for k, v in point.items())


def search(
    simulator: Callable | Any,
    template: Any,
    space: Mapping[str, Any],
    predict: Callable,
    *,
    observable: str,
    tolerance: float,
    steps=None,
    n_seeds: int = 32,
    budget: int = 256,
    relative: bool = True,
    seed: int = 0,
    options: sweep.Options | None = None,
) -> ValidityMap:
    """Find where `predict(params)` matches the simulator's seed mean of `observable` within
    `tolerance` (relative to the prediction unless `relative=False`) over the box `space`:
    {field: (low, high)} or {field: (low, high, "log")}, fields of the Params `template` (dotted
    for nested ones). `simulator` is a model (run by `simulate.trajectory`, recorded at `steps`)
    or a function `(params, key) -> outputs`, as in `compare`. `budget` counts evaluated points
    (a re-evaluation with fresh seeds counts), spent in ROUNDS rounds of equal size; each
    evaluation runs `n_seeds` seeds. With `options.out` every round is a resumable sweep.
    Bad arguments raise ValueError naming them before anything compiles."""
    if not dataclasses.is_dataclass(template) or isinstance(template, type):
        raise TypeError(f"template must be a Params instance; got {type(template).__name__}")
    if not callable(predict):
        raise TypeError(f"predict must be a function of the Params; got {type(predict).__name__}")
    make = _shared(sweep.make_from, template)
    axes = _axes(space, make.fields)  # pyright: ignore[reportFunctionMemberAccess]
    if not tolerance > 0:
        raise ValueError(f"tolerance must be > 0; got {tolerance!r}")
    if not isinstance(budget, int) or budget < 2 * ROUNDS:
        raise ValueError(f"budget must be an integer >= {2 * ROUNDS} points; got {budget!r}")
    if not isinstance(n_seeds, int) or n_seeds < 1:
        raise ValueError(f"n_seeds must be an integer >= 1; got {n_seeds!r}")
    run = simulator
    if isinstance(simulator, Simulator) or not callable(simulator):  # a model (module)
        steps = None if steps is None else tuple(np.ravel(steps).tolist())
        run = _shared(model_runner, simulator, steps)[0]
    options = options or sweep.Options(progress=False)
    size = budget // ROUNDS
    if options.devices is None:  # a round's `size` points fill these devices without padding
        fill = max(1, size // sweep.MIN_PER_DEVICE)
        options = dataclasses.replace(options, devices=min(len(jax.local_devices()), fill))
    design = qmc.Halton(d=len(axes), scramble=True, rng=seed)

    def grid(units: np.ndarray) -> sweep.Grid:
        values = {a.name: a.values(units[:, i]).tolist() for i, a in enumerate(axes)}
        return sweep.Grid(zipped=values, n_seeds=n_seeds)

    middle = make(**{a.name: float(a.values(np.array([0.5]))[0]) for a in axes})
    shapes = output_shapes(run, middle, observable)
    index, shape = list(shapes).index(observable), shapes[observable]
    dims = tuple(f"entry{i}" for i in range(len(shape)))

    def evaluate(units: np.ndarray, round_: int) -> tuple[np.ndarray, np.ndarray]:
        the_grid = grid(units)
        data = options.run(f"validity{round_:02d}", run, make, the_grid, seed=seed + round_,
                           chunk_size=size, dims={observable: dims})  # fmt: skip
        samples = data[observable].transpose("zip", "seed", *dims).values
        return samples, predictions(make, the_grid, predict, shape)

    def ratio(unit: jax.Array) -> jax.Array:  # the largest error / tolerance at one point
        params = make(**{a.name: a.traced(unit[i]) for i, a in enumerate(axes)})
        measured = jnp.asarray(jax.tree.leaves(run(params, jax.random.key(seed)))[index])
        wanted = jnp.asarray(predict(params))
        error = jnp.abs(measured / wanted - 1) if relative else jnp.abs(measured - wanted)
        return jnp.max(jnp.nan_to_num(error, nan=jnp.inf)) / tolerance

    points: list[_Point] = []
    ascent = "not tried: the simulator is stochastic"
    for round_ in range(ROUNDS):
        climbed = np.empty((0, len(axes)))
        if round_ < ROUNDS // 2:
            units = design.random(size)
            fresh, again, origins = units, [], ["design"] * size
        else:
            if round_ == ROUNDS - 1 and all(p.deterministic for p in points):
                climbed, ascent = _ascend(ratio, points, tolerance, relative, dims, size // 2)
            fresh, again = _refine(points, tolerance, relative, dims, size - len(climbed),
                                   ALPHA / budget)  # fmt: skip
            filled = design.random(size - len(climbed) - len(fresh) - len(again))
            origins = ["ascent"] * len(climbed) + ["bisection"] * len(fresh)
            origins += ["design"] * len(filled)
            fresh = np.concatenate([climbed, fresh, filled])
            repeated = np.array([points[i].unit for i in again]).reshape(-1, len(axes))
            units = np.concatenate([repeated, fresh])
        samples, predicted = evaluate(units, round_)
        for j, i in enumerate(again):
            points[i].samples = np.concatenate([points[i].samples, samples[j]])
            points[i].evaluations += 1
        for j, origin in zip(range(len(again), size), origins, strict=True):
            points.append(_Point(units[j], samples[j], np.asarray(predicted[j]), origin))
    return _result(points, axes, tolerance, relative, dims, dict(
        observable=observable, tolerance=tolerance, relative=relative, n_seeds=n_seeds,
        budget=budget, seed=seed, ascent=ascent,
        space={a.name: [a.low, a.high, "log" if a.log else "linear"] for a in axes}))  # fmt: skip


def _shared(build: Callable, *key: Any) -> Any:
    """`build(*key)`, one per equal key where the key is hashable (a template without array
    leaves, a model and its record steps): searches of one template share their make and their
    runner, and so the compiled programs the sweep engine caches per (make, runner)."""
    try:
        return _built(build, *key)
    except TypeError:  # unhashable: one of its own
        return build(*key)


_built = functools.lru_cache(maxsize=64)(lambda build, *key: build(*key))


def _ascend(ratio: Callable, points: list[_Point], tolerance: float, relative: bool, dims,
            count: int) -> tuple[np.ndarray, str]:  # fmt: skip
    """Up to `count` points found by climbing error / tolerance (`ratio`, of unit coordinates)
    from the worst sampled points of a deterministic search: sign-gradient steps inside the
    box, from 1/8 of it, halved at each step that does not climb, ASCENT_STEPS in all. The
    gradient is forward mode (few axes; the simulators' loops are while loops, which reverse
    mode cannot differentiate). Only end points that climbed past their start are returned;
    with what happened, in words, for the report."""
    decided = [_decide(p, tolerance, relative, ALPHA, dims) for p in points]
    worst = np.argsort([-_ratio(c) for c in decided])[:count]
    start = np.stack([points[i].unit for i in worst])
    climb = jax.jit(jax.vmap(lambda u: (ratio(u), jax.jacfwd(ratio)(u))))
    try:
        value, slope = map(np.asarray, climb(jnp.asarray(start)))
    except (TypeError, ValueError, jax.errors.JAXTypeError) as error:  # not differentiable
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
        return np.empty((0, start.shape[1])), f"skipped: {type(error).__name__}: {first_line}"
    first, best, step = value.copy(), start.copy(), np.full(len(start), 1 / 8)
    for _ in range(ASCENT_STEPS):
        trial = np.clip(best + step[:, None] * np.sign(slope), 0, 1)
        new, new_slope = map(np.asarray, climb(jnp.asarray(trial)))
        better = new > value
        best, value = np.where(better[:, None], trial, best), np.where(better, new, value)
        slope = np.where(better[:, None], new_slope, slope)
        step = np.where(better, step, step / 2)
    moved = value > first
    return best[moved], (f"{int(moved.sum())} of the {len(start)} worst points climbed (error / "
                         f"tolerance up to {np.max(value, initial=0):.3g} from "
                         f"{np.max(first, initial=0):.3g})")  # fmt: skip


def _refine(points: list[_Point], tolerance: float, relative: bool, dims, size: int,
            level: float):  # fmt: skip
    """A refinement round's points: the INCONCLUSIVE points to evaluate again (indices, at most
    a quarter of the round, the least evaluated first) and the midpoints of neighbouring pairs
    whose verdicts differ (unit coordinates, widest pairs first), together at most `size`.
    Verdicts at family level `level` (that of the final map at its largest: alpha / budget)."""
    verdicts = [_decide(p, tolerance, relative, level, dims).verdict for p in points]
    undecided = [i for i, v in enumerate(verdicts)
                 if v == "INCONCLUSIVE" and points[i].evaluations < MAX_POOLED]  # fmt: skip
    again = sorted(undecided, key=lambda i: points[i].evaluations)[: size // 4]
    units = np.stack([p.unit for p in points])
    found, distance = _neighbours(units, lambda i, j: verdicts[i] != verdicts[j])
    pairs = {(min(i, j), max(i, j)) for i, j in found}
    mids: list[np.ndarray] = []
    for i, j in sorted(pairs, key=lambda ij: -distance[ij]):  # the widest gaps first
        if len(mids) == size - len(again):
            break
        mid = (units[i] + units[j]) / 2
        taken = np.concatenate([units, np.reshape(mids, (-1, units.shape[1]))])
        if np.min(np.linalg.norm(taken - mid, axis=-1)) > SAME * distance[i, j]:
            mids.append(mid)
    return np.reshape(mids, (-1, units.shape[1])), again


def _neighbours(units: np.ndarray, keep: Callable[[int, int], bool]):
    """The pairs (i, j) with j among point i's 2 d nearest (d axes; unit coordinates) for which
    keep(i, j), and the points' distance matrix: how the refinement and `crossings` pair up
    neighbours whose verdicts differ."""
    distance = np.linalg.norm(units[:, None] - units[None], axis=-1)
    pairs = set()
    for i in range(len(units)):
        for j in np.argsort(distance[i])[1 : 2 * units.shape[1] + 1]:
            if keep(i, int(j)):
                pairs.add((i, int(j)))
    return pairs, distance


def _result(points, axes, tolerance, relative, dims, config) -> ValidityMap:
    """The map: every point decided at the family level over all of them, the worst point and
    the whole-box claim."""
    level = ALPHA / len(points)
    decided = [_decide(p, tolerance, relative, level, dims) for p in points]
    units = np.stack([p.unit for p in points])
    coords = {a.name: ("sample", a.values(units[:, i])) for i, a in enumerate(axes)}
    samples = xr.Dataset(
        dict(
            verdict=("sample", [c.verdict for c in decided]),
            ratio=("sample", [_ratio(c) for c in decided]),
            measured=("sample", [c.measured for c in decided]),
            predicted=("sample", [c.predicted for c in decided]),
            stderr=("sample", [c.stderr for c in decided]),
            seeds=("sample", [p.samples.shape[0] for p in points]),
            origin=("sample", [p.origin for p in points]),
            outputs=(("sample", "seed", *dims), _padded([p.samples for p in points])),
            prediction=(("sample", *dims), np.stack([p.predicted for p in points])),
        ),
        coords=coords,
    )
    worst_index = _worst(decided, samples.ratio.values)
    worst = {a.name: float(samples[a.name].values[worst_index]) for a in axes}
    box = _box(decided, samples, worst_index, config)
    return ValidityMap(samples, worst, box, tuple(axes), config)


def _padded(runs: list[np.ndarray]) -> np.ndarray:
    """Each point's seeds (pooled over its evaluations) in one array, NaN past a point's own
    count."""
    out = np.full((len(runs), max(len(r) for r in runs), *runs[0].shape[1:]), np.nan)
    for i, r in enumerate(runs):
        out[i, : len(r)] = r
    return out


def _worst(decided: list[Claim], ratio: np.ndarray) -> int:
    """The counterexample: of the FAILing points the one farthest outside its band, (error -
    z stderr) / tolerance; without a FAIL, the point with the largest ratio."""
    failing = [i for i, c in enumerate(decided) if c.verdict == "FAIL"]
    if not failing:
        return int(np.argmax(ratio))
    return max(failing, key=lambda i: _ratio(decided[i], side=-1))


def _box(decided: list[Claim], samples: xr.Dataset, worst: int, config) -> Claim:
    """The whole-box claim from the points' claims at the family level: FAIL if any FAILs
    (shown at the counterexample, `worst`), PASS if all PASS (shown at the closest to failing), else
    INCONCLUSIVE (shown at the worst undecided point)."""
    verdicts = [c.verdict for c in decided]
    if "FAIL" in verdicts:
        verdict, shown = "FAIL", worst
    elif all(v == "PASS" for v in verdicts):
        verdict, shown = "PASS", worst
    else:
        verdict = "INCONCLUSIVE"
        ratios = np.where(np.array(verdicts) != "PASS", samples.ratio.values, -np.inf)
        shown = int(np.argmax(ratios))
    c = decided[shown]
    axes = [name for name in samples.coords if name != "sample"]
    where = ", ".join(f"{name} = {float(samples[name].values[shown]):.4g}" for name in axes)
    kind = "relative" if config["relative"] else "absolute"
    statement = (
        f"the simulated mean of {config['observable']} equals the prediction within "
        f"{config['tolerance']:.3g} ({kind}) at every point of the box"
    )
    return dataclasses.replace(
        c, id="validity.box", statement=statement, entries=len(decided),
        holds=sum(v == "PASS" for v in verdicts), where=where, diverged=sum(
            x.diverged > 0 for x in decided), verdict=verdict, seeds_needed=None,
        at_half=None, at_twice=None,
    )  # fmt: skip
