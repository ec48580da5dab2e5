"""Input checks that run on concrete values before anything is traced: the ones every Params class,
spectrum and predictor of the package runs, public for the models and predictors of one's own.

Each check raises `ValueError` naming the field, its valid range and the bad value, in one line
(`TypeError` for a string where a number belongs), and does nothing on tracers: JAX rebuilds a
Params with tracers inside `jit` and `vmap`, and its checks ran on the concrete values already.
`all_of` collects the failures of several checks into one error, so a Params reports every bad
field at once:

    def __post_init__(self):
        with checks.all_of() as check:
            check.range("lr", self.lr, gt=0)
            check.count("batch", self.batch)

`warn_unstable` is the one warning: a concrete learning rate past a stability limit.
"""

import contextlib
import warnings
from collections.abc import Callable, Collection, Iterator

import jax
import numpy as np

__all__ = [
    "Checks",
    "all_of",
    "check_count",
    "check_leaf",
    "check_one_of",
    "check_range",
    "check_spectrum",
    "concrete",
    "warn_unstable",
]


def concrete(value: object) -> np.ndarray | None:
    """`value` as a NumPy array if it is a concrete number or a list of them, else None
    (tracers, placeholders, non-numbers).

    Params dataclasses are rebuilt by JAX on every unflatten, with tracers under jit/vmap and
    sometimes with non-array placeholders; validation only applies to concrete numbers.
    """
    if isinstance(value, int | float | np.ndarray | np.generic | jax.Array | list | tuple):
        try:  # tracers refuse conversion (TracerArrayConversionError is a TypeError)
            array = np.asarray(value)
        except (TypeError, ValueError, jax.errors.ConcretizationTypeError):
            return None  # a tracer, or a ragged list
        return array if array.dtype.kind in "biufc" else None
    return None


def _refuse_text(name: str, value: object) -> None:
    if isinstance(value, str | bytes):
        raise TypeError(f"{name} must be a number; got the string {_shown(value)}")


def _shown(value: object) -> str:
    """repr(value) if it fits in a short line, else its type (an array's repr spans lines)."""
    text = repr(value)
    return text if len(text) <= 60 and "\n" not in text else f"a {type(value).__name__}"


def check_leaf(name: str, value: object) -> None:
    """Raise TypeError naming `name` if `value` is text, a list, a dict or a set where a Params
    field holds a number or an array (a list of values to sweep goes in a `sweep.Grid`). Anything
    else passes, as JAX's placeholders must (tuples too: `jax.tree.map(jnp.shape, params)`)."""
    _refuse_text(name, value)
    if isinstance(value, list | dict | set):
        kind = type(value).__name__
        raise TypeError(f"{name} must be a number or an array (a list of values to sweep goes "
                        f"in a sweep.Grid); got the {kind} {_shown(value)}")  # fmt: skip


def check_count(name: str, value: object, *, low: int = 1) -> None:
    """Raise ValueError naming `name` unless `value` is a Python (or NumPy) integer >= low: the
    static, shape-setting fields (n_modes, batch, n_samples, ...). A string is a TypeError."""
    _refuse_text(name, value)
    if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}; got {_shown(value)}")


def check_range(
    name: str,
    value: object,
    *,
    gt: float | None = None,
    ge: float | None = None,
    lt: float | None = None,
    le: float | None = None,
    finite: bool = True,
    integer: bool = False,
) -> None:
    """Raise ValueError naming `name`, its bad value and the valid range, if `value` is concrete
    and any element lies outside the range (NaN always, +-inf unless finite=False, a fraction
    with integer=True: a count of steps); a no-op on tracers. A string (`PowerLaw(s="2")`) is a
    TypeError naming `name`."""
    _refuse_text(name, value)
    array = concrete(value)
    if array is None:
        return
    ok = ~np.isnan(array) if array.dtype.kind in "fc" else np.ones(array.shape, bool)
    if (finite or integer) and array.dtype.kind in "fc":
        ok &= np.isfinite(array)
    if integer:
        ok &= array == np.round(np.where(ok, array, 0))
    bounds = []
    for word, bound, within in ((">", gt, np.greater), (">=", ge, np.greater_equal),
                                ("<", lt, np.less), ("<=", le, np.less_equal)):  # fmt: skip
        if bound is not None:
            ok &= within(array, bound)
            bounds.append(f"{word} {bound:g}")
    if not np.all(ok):
        bad = array[~ok] if array.ndim else array
        shown = np.asarray(bad).ravel()[:3].tolist()
        what = " and ".join(bounds)
        if integer:
            what = f"integers {what}".strip()
        elif finite:
            what = f"finite and {what}" if what else "finite"
        what = what or "a number"
        raise ValueError(f"{name} must be {what}; got {shown if array.ndim else bad}")


def check_one_of(name: str, value: object, allowed: Collection) -> None:
    """Raise ValueError naming `name` unless `value` is one of `allowed` (a static choice such
    as a model's variant)."""
    if value not in allowed:
        raise ValueError(f"{name} must be one of {tuple(allowed)}; got {_shown(value)}")


def check_spectrum(name: str, value: object) -> None:
    """Raise TypeError naming `name` unless `value` is a spectrum: anything with the methods
    `eigenvalues()` and `target_power()` (`PowerLaw`, `Geometric`, `Empirical` or one's own)."""
    if not all(callable(getattr(value, m, None)) for m in ("eigenvalues", "target_power")):
        raise TypeError(f"{name} must be a spectrum (PowerLaw, Geometric, Empirical or one with "
                        f"eigenvalues() and target_power()); got {_shown(value)}")  # fmt: skip


class Checks:
    """The checks of `all_of`, collecting instead of raising: each returns whether its value
    passed (so a check that needs another field can run only once that field is good)."""

    def __init__(self):
        self.failures: list[str] = []

    def _run(self, check: Callable[[], None]) -> bool:
        try:
            check()
        except ValueError as error:
            self.failures.append(str(error))
            return False
        return True

    def range(self, name: str, value: object, **bounds) -> bool:
        """`check_range(name, value, **bounds)`."""
        return self._run(lambda: check_range(name, value, **bounds))

    def count(self, name: str, value: object, *, low: int = 1) -> bool:
        """`check_count(name, value, low=low)`."""
        return self._run(lambda: check_count(name, value, low=low))

    def one_of(self, name: str, value: object, allowed: Collection) -> bool:
        """`check_one_of(name, value, allowed)`."""
        return self._run(lambda: check_one_of(name, value, allowed))

    def that(self, ok: object, message: str) -> bool:
        """A check of one's own: `message` (naming the field, the rule and the value) unless
        `ok`."""
        if not ok:
            self.failures.append(message)
        return bool(ok)

    def message(self) -> str:
        """Every failure on one line: "a must be ...; got x; and b must be ...; got y"."""
        *first, last = self.failures or [""]
        return "; ".join(first) + "; and " + last if first else last


@contextlib.contextmanager
def all_of() -> Iterator[Checks]:
    """Run the checks of the block and raise one ValueError naming every field that failed
    (`Checks.message`). A ValueError raised inside the block joins them; other errors (a TypeError
    for a string) go through at once."""
    checks = Checks()
    try:
        yield checks
    except ValueError as error:
        if not checks.failures:
            raise
        checks.failures.append(str(error))
        raise ValueError(checks.message()) from error
    if checks.failures:
        raise ValueError(checks.message())


def warn_unstable(what: str, lr: object, measure: object, limit: float, name: str) -> bool:
    """One RuntimeWarning naming lr and the stability limit when a concrete `measure` of the run
    (e.g. lr lambda_max for GD) is at or past `limit`, where the loss grows without bound;
    silent on tracers. Returns whether it warned."""
    value, rate = concrete(measure), concrete(lr)
    if value is None or rate is None or not np.any(value >= limit):
        return False
    value, rate = np.ravel(value), np.ravel(rate)
    first = int(np.argmax(value >= limit))  # the first point past it, of a grid of them
    warnings.warn(
        f"{what}: lr = {rate[first if rate.size == value.size else 0]:g} is past the stability "
        f"limit ({name} = {value[first]:g} >= {limit:g}); the loss grows without bound",
        RuntimeWarning,
        stacklevel=3,
    )
    return True
