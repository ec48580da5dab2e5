"""Exact and asymptotic losses of gradient flow, gradient descent and one-pass SGD on linear
regression (THEORY.md §2.2-2.5, §2.10), with L = 1/2 sum_k lambda_k (w_k - w*_k)^2 from w = 0.

Params forms: each predictor of `models.linear` takes the simulator's own Params first and the
record axis second, and is named after the simulator it predicts: `gf(params, t)` (the loss of
`models.linear.gf`), `gd(params, steps)` (of `gd()`) and `sgd(params, steps, schedule)` (of
`sgd(schedule)`; also called `loss`), with SGD's `stability(params)`, `sgd_limit(params)` and
`critical_lr(params)`. Each is jax.vmap-able over a stacked grid of Params (every leaf with a
leading grid axis). The keyword forms (`gf_loss(spectrum, t)`, `gd_loss(spectrum, lr=, steps=)`,
`sgd_loss(spectrum, lr=, batch=, noise=, steps=)`, `sgd_stability`, `sgd_loss_limit`,
`sgd_critical_lr`) build those Params and call them. What no simulator records stays a function
of the spectrum: the truncation tail beyond M, the infinite-spectrum asymptote and its exponent
`gf_exponent`, the learning frontier, the hard tail and the tail-dominance ratio and limit.

All functions are jittable and vmappable over the spectrum's traced fields and the scalars;
`steps` of the SGD recursion must be concrete (they set the loop's record schedule).
"""

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import gamma, gammainc

from spectral_sim import simulate
from spectral_sim._types import Array, ArrayLike, Float, Int, Scalar, Simulator
from spectral_sim.checks import check_range, concrete, warn_unstable
from spectral_sim.models.linear import Params, stability, trainable
from spectral_sim.spectra import PowerLaw, Spectrum

__all__ = [
    "critical_lr",
    "gd",
    "gd_loss",
    "gf",
    "gf_exponent",
    "gf_loss",
    "gf_loss_asymptote",
    "learning_frontier",
    "loss",
    "recorded",
    "sgd",
    "sgd_critical_lr",
    "sgd_limit",
    "sgd_loss",
    "sgd_loss_limit",
    "sgd_stability",
    "stability",
    "tail_dominance_limit",
    "tail_dominance_ratio",
    "tail_loss",
    "truncation_tail",
]


def gf_exponent(spectrum: PowerLaw) -> float | Float[Array, "*grid"]:
    """c = (a - 1)/s, the exponent of L(t) ~ t^-c for gradient flow on an infinite power law
    ([A], THEORY.md §2.2). TypeError unless `spectrum` is a PowerLaw, ValueError unless a > 1
    (finite signal energy): every infinite-spectrum predictor needs both."""
    if not isinstance(spectrum, PowerLaw):
        raise TypeError(f"this predictor needs a PowerLaw spectrum; got {type(spectrum).__name__}")
    check_range("PowerLaw.a", spectrum.a, gt=1)
    return (spectrum.a - 1) / spectrum.s


# --- gradient flow ---------------------------------------------------------------------------


def gf(params: Params, t: Float[ArrayLike, " records"]) -> Float[Array, " records"]:
    """Exact GF loss L(t) = 1/2 sum_k v_k^2 exp(-2 lambda_k t) on the trained modes, plus
    1/2 v_k^2 for each frozen one (THEORY.md §2.2, [E]): the loss of `models.linear.gf` with the
    same Params (lr, noise and batch do not enter). ValueError unless t >= 0 (finite)."""
    check_range("t", t, ge=0)
    lam, power = params.spectrum.eigenvalues(), params.spectrum.target_power()
    t = jnp.asarray(t, lam.dtype)
    return 0.5 * jnp.exp(-2.0 * jnp.multiply.outer(t, lam * trainable(params))) @ power


def gf_loss(
    spectrum: Spectrum, t: Float[ArrayLike, " records"], *, tail: bool = False
) -> Float[Array, " records"]:
    """Exact GF loss L(t) = 1/2 sum_{k<=M} v_k^2 exp(-2 lambda_k t) (THEORY.md §2.2, [E]):
    `gf(Params(spectrum), t)`.

    With `tail=True` (PowerLaw, a > 1) the modes k > M are added by `truncation_tail`, giving
    the loss of the infinite spectrum that the M-mode model approximates.
    """
    out = gf(Params(spectrum), t)
    if not tail:
        return out
    if not isinstance(spectrum, PowerLaw):
        raise TypeError(f"tail=True needs a PowerLaw spectrum; got {type(spectrum).__name__}")
    return out + truncation_tail(spectrum, t)


def truncation_tail(
    spectrum: PowerLaw, t: Float[ArrayLike, " records"]
) -> Float[Array, " records"]:
    """GF loss of the modes beyond the truncation, 1/2 sum_{k>M} k^-a exp(-2 k^-s t).

    Euler-Maclaurin from m = M + 1: the integral (1/2s) m^(1-a) u^-c gamma(c, u) with
    u = 2 t m^-s (lower incomplete gamma; -> m^(1-a)/(2(a-1)) = the Hurwitz-zeta leading term
    at t = 0), plus f(m)/2 - f'(m)/12 + f'''(m)/720. The next term is O(f^(5)(m)) ~ m^-5 f(m).
    ValueError unless t >= 0 (finite).
    """
    c = gf_exponent(spectrum)
    check_range("t", t, ge=0)
    s, a = spectrum.s, spectrum.a
    m = jnp.asarray(spectrum.n_modes + 1, jnp.result_type(s, a, float))
    t = jnp.asarray(t, m.dtype)

    def integral(t):
        u = 2.0 * t * m**-s
        safe = jnp.where(u > 0, u, 1.0)
        ratio = jnp.where(u > 0, gamma(c) * gammainc(c, safe) * safe**-c, 1.0 / c)
        return m ** (1 - a) * ratio / (2 * s)

    def f(x, t):
        return 0.5 * x**-a * jnp.exp(-2.0 * t * x**-s)

    def correction(t):
        d1 = jax.grad(f)
        d3 = jax.grad(jax.grad(d1))
        return f(m, t) / 2 - d1(m, t) / 12 + d3(m, t) / 720

    flat = t.reshape(-1)
    total = jax.vmap(integral)(flat) + jax.vmap(correction)(flat)
    return total.reshape(t.shape)


def gf_loss_asymptote(
    spectrum: PowerLaw, t: Float[ArrayLike, " records"]
) -> Float[Array, " records"]:
    """L(t) ~ Gamma(c) (2t)^-c / (2s), c = (a - 1)/s: infinite spectrum, k*(t) >> 1 ([A]).
    ValueError unless t > 0 (finite)."""
    c = gf_exponent(spectrum)
    check_range("t", t, gt=0)
    return gamma(c) * (2.0 * jnp.asarray(t, jnp.result_type(c, float))) ** -c / (2 * spectrum.s)


# --- gradient descent ------------------------------------------------------------------------


def gd(
    params: Params, steps: Int[ArrayLike, " records"] | Sequence[int]
) -> Float[Array, " records"]:
    """L_t = 1/2 sum_k v_k^2 (1 - lr lambda_k)^(2t) on trained modes ([E], THEORY.md §2.3): the
    loss of `models.linear.gd()` with the same Params after `steps` updates (noise and batch do
    not enter).

    Stable iff lr < 2 / lambda_max; above it the loss grows geometrically (not clipped), with a
    RuntimeWarning naming lr. ValueError unless steps are integers >= 0.
    """
    check_range("steps", steps, ge=0, integer=True)
    lam, power = params.spectrum.eigenvalues(), params.spectrum.target_power()
    trained = jnp.where(trainable(params) > 0, lam, 0.0)
    warn_unstable("GD", params.lr, params.lr * jnp.max(trained), 2.0, "lr lambda_max")
    steps = jnp.atleast_1d(jnp.asarray(steps, lam.dtype))
    decay = jnp.power(((1 - params.lr * lam) ** 2)[None], steps[:, None])  # records, modes
    return 0.5 * jnp.where(trainable(params) > 0, decay, 1.0) @ power


def gd_loss(
    spectrum: Spectrum,
    *,
    lr: Scalar,
    steps: Int[ArrayLike, " records"] | Sequence[int],
    n_trainable: Scalar = math.inf,
) -> Float[Array, " records"]:
    """Exact full-batch GD loss ([E], THEORY.md §2.3):
    `gd(Params(spectrum, lr=lr, n_trainable=n_trainable), steps)`."""
    return gd(Params(spectrum, lr=lr, n_trainable=n_trainable), steps)


# --- one-pass SGD: the exact second-moment recursion ----------------------------------------


class Moments(NamedTuple):
    """second: s_k = E (w_k - w*_k)^2; energy: sum_k lam_k s_k (twice the loss); t: updates
    done."""

    second: Float[Array, " modes"]
    energy: Float[Array, ""]
    t: Int[Array, ""]


def _recursion(schedule: Callable | None) -> Simulator:
    """The exact SGD recursion (THEORY.md §2.4) as a deterministic Simulator for
    simulate.trajectory:
    s_k <- (1 - eta lam_k)^2 s_k + (eta^2/B) [lam_k^2 s_k + lam_k (sum_j lam_j s_j + sigma^2)]
    on trained modes; frozen modes keep s_k = w*_k^2 and still feed the sum."""

    def init(params: Params, key) -> Moments:
        del key
        sec = params.spectrum.target() ** 2
        energy = jnp.sum(params.spectrum.eigenvalues() * sec)
        return Moments(sec, energy, jnp.zeros((), jnp.int32))

    def step(params: Params, state: Moments, key):
        # The energy sum_j lam_j s_j is carried: the step's one pass over the modes updates s
        # and sums the next energy together (the sum it records), instead of a second pass to
        # sum s before the update (bandwidth bound: benchmarks/sweep.py W3).
        del key
        lam, sec = params.spectrum.eigenvalues(), state.second
        eta = params.lr if schedule is None else params.lr * schedule(state.t)
        total = state.energy + params.noise
        new = (1 - eta * lam) ** 2 * sec + eta**2 / params.batch * (lam**2 * sec + lam * total)
        sec = jnp.where(trainable(params) > 0, new, sec)
        energy = jnp.sum(lam * sec)
        return Moments(sec, energy, state.t + 1), 0.5 * energy

    return Simulator(init, step)


def sgd(
    params: Params,
    steps: Int[ArrayLike, " records"] | Sequence[int],
    schedule: Callable | None = None,
) -> Float[Array, " records"]:
    """Exact expected one-pass SGD loss E L after `steps` updates (concrete integers >= 0, any
    order, repeats allowed; [E] for Gaussian features, THEORY.md §2.4) of the simulator
    `models.linear.sgd(schedule)` with the same Params. At constant lr past the mean-square
    stability limit (`stability(params)` >= 1) the loss grows without bound, with a
    RuntimeWarning naming lr."""
    if schedule is None and concrete(params.lr) is not None:
        warn_unstable("SGD", params.lr, stability(params), 1.0, "chi")
    return recorded(_recursion(schedule), params, steps)


def recorded(
    recursion: Simulator, params, steps: Int[ArrayLike, " records"] | Sequence[int]
) -> Float[Array, " records"]:
    """A deterministic loss recursion from w = 0 (its step returns the loss) read at `steps`:
    concrete integers >= 0, any order, repeats allowed, step 0 the initial loss 1/2 sum of the
    target power. The SGD and the momentum recursions are read this way. ValueError unless the
    steps are concrete."""
    check_range("steps", steps, ge=0, integer=True)
    requested = concrete(steps)
    if requested is None or requested.ndim > 1 or requested.size == 0:
        got = "a tracer" if requested is None else f"shape {requested.shape}"
        raise ValueError(f"steps must be concrete integers >= 0 in a non-empty 1-d sequence (they "
                         f"set the recursion's records); got {got}")  # fmt: skip
    unique, inverse = np.unique(np.atleast_1d(requested).astype(np.int64), return_inverse=True)
    positive = unique[unique > 0]
    start = 0.5 * jnp.sum(params.spectrum.target_power())
    parts = [start[None]] if unique[0] == 0 else []
    if positive.size:
        parts.append(simulate.trajectory(recursion, params, None, steps=positive)[1])
    return jnp.concatenate(parts)[inverse]


loss = sgd
"""`sgd(params, steps, schedule)` under its older name: the loss of the module's own simulator,
`models.linear` (`init`, `step`)."""


def sgd_loss(
    spectrum: Spectrum,
    *,
    lr: Scalar,
    batch: int,
    noise: Scalar = 0.0,
    steps: Int[ArrayLike, " records"] | Sequence[int],
    n_trainable: Scalar = math.inf,
    schedule: Callable | None = None,
) -> Float[Array, " records"]:
    """Exact expected one-pass SGD loss from w = 0 at `steps` ([E], Gaussian features):
    `sgd(Params(spectrum, lr=, noise=, n_trainable=, batch=), steps, schedule)`."""
    params = Params(spectrum, lr=lr, noise=noise, n_trainable=n_trainable, batch=batch)
    return sgd(params, steps, schedule)


def sgd_stability(
    spectrum: Spectrum, *, lr: Scalar, batch: int, n_trainable=math.inf
) -> Float[Array, ""]:
    """chi, SGD stable iff chi < 1 (THEORY.md §2.4):
    `stability(Params(spectrum, lr=lr, batch=batch, n_trainable=n_trainable))`."""
    return stability(Params(spectrum, lr=lr, batch=batch, n_trainable=n_trainable))


def sgd_limit(params: Params) -> Float[Array, ""]:
    """L_inf = L_frozen + chi (2 L_frozen + sigma^2) / (2 (1 - chi)), inf if unstable: the limit
    of `sgd(params, steps)` as steps -> inf; with all modes trained this is
    sigma^2 chi / (2 (1 - chi)) (THEORY.md §2.4)."""
    chi = stability(params)
    frozen = 0.5 * jnp.sum((1 - trainable(params)) * params.spectrum.target_power())
    limit = frozen + chi * (2 * frozen + params.noise) / (2 * (1 - chi))
    return jnp.where(chi < 1, limit, jnp.inf)


def sgd_loss_limit(
    spectrum: Spectrum,
    *,
    lr: Scalar,
    batch: int,
    noise: Scalar = 0.0,
    n_trainable=math.inf,
) -> Float[Array, ""]:
    """The limiting SGD loss, inf if unstable (THEORY.md §2.4):
    `sgd_limit(Params(spectrum, lr=, noise=, batch=, n_trainable=))`."""
    return sgd_limit(Params(spectrum, lr=lr, noise=noise, batch=batch, n_trainable=n_trainable))


def critical_lr(params: Params, *, iterations: int = 200) -> Float[Array, ""]:
    """The learning rate at which `stability` reaches 1 for the Params' spectrum, batch and
    trained modes (SGD is stable below it; params.lr does not enter), by bisection on
    lr in (0, 2 / (lambda_max (1 + 1/B))), where chi is increasing."""
    lam_max = jnp.max(params.spectrum.eigenvalues() * trainable(params))
    hi = 2 / (lam_max * (1 + 1 / params.batch))

    def bisect(_, bracket):
        lo, hi = bracket
        mid = (lo + hi) / 2
        stable = stability(dataclasses.replace(params, lr=mid)) < 1
        return jnp.where(stable, mid, lo), jnp.where(stable, hi, mid)

    lo, hi = jax.lax.fori_loop(0, iterations, bisect, (jnp.zeros_like(hi), hi))
    return lo


def sgd_critical_lr(
    spectrum: Spectrum, *, batch: int, n_trainable=math.inf, iterations: int = 200
) -> Float[Array, ""]:
    """The learning rate at which chi = 1 (SGD stable below it):
    `critical_lr(Params(spectrum, batch=batch, n_trainable=n_trainable))`."""
    params = Params(spectrum, batch=batch, n_trainable=n_trainable)
    return critical_lr(params, iterations=iterations)


# --- learning frontier and tail dominance ---------------------------------------------------


def learning_frontier(
    spectrum: Spectrum, t: Float[ArrayLike, " records"]
) -> tuple[Float[Array, " records"], Float[Array, " records"]]:
    """lambda*(t) = 1/t and k*(t) = #{k : lambda_k t >= 1}, the hard-truncation frontier of GF
    (for a power law k* = floor(t^(1/s)) until it reaches M). For GD at step n use t = lr n.
    ValueError unless t > 0 (finite)."""
    check_range("t", t, gt=0)
    lam = spectrum.eigenvalues()
    t = jnp.asarray(t, lam.dtype)
    k_star = (jnp.multiply.outer(t, lam) >= 1).astype(lam.dtype).sum(axis=-1)
    return 1 / t, k_star


def tail_loss(spectrum: Spectrum, t: Float[ArrayLike, " records"]) -> Float[Array, " records"]:
    """The hard-truncation loss 1/2 sum_{k : lambda_k t < 1} v_k^2: the energy beyond k*(t).
    ValueError unless t >= 0 (finite)."""
    check_range("t", t, ge=0)
    lam, power = spectrum.eigenvalues(), spectrum.target_power()
    t = jnp.asarray(t, lam.dtype)
    return 0.5 * (jnp.multiply.outer(t, lam) < 1).astype(lam.dtype) @ power


def tail_dominance_ratio(spectrum: Spectrum, t: Float[ArrayLike, " records"]):
    """L(t) / tail_loss(t) for GF: [P3] Prop. 2 claims it tends to a constant."""
    return gf_loss(spectrum, t) / tail_loss(spectrum, t)


def tail_dominance_limit(spectrum: PowerLaw, rho: float = 1.0) -> Float[Array, "*grid"]:
    """Gamma(1 + c) 2^-c with c = (a - 1)/(s rho): the limit of the tail-dominance ratio for
    g = lambda^rho t, k*(t) -> inf, M = inf (THEORY.md §2.5, §2.10)."""
    c = gf_exponent(spectrum) / rho
    return gamma(1 + c) * 2.0**-c
