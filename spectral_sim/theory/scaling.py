"""Compute-optimal scaling of the one-pass linear model, and the exponent maps between notations
(THEORY.md §1 rows 1-5, §2.5-2.8). With the first N eigen-directions trained by gradient flow
for a time t = D (THEORY.md §2.6), in the continuum limit

    L(N, t) = N^(1-a) Phi(t N^-s),  Phi(tau) = 1/2 int_0^1 u^-a exp(-2 tau u^-s) du + 1/(2(a-1)),

and at fixed compute C = N t the optimum is L* = K_L C^-(a-1)/(s+1), N* = K_N C^(1/(s+1)).

Everything is elementwise in s and a (arrays of one shape, or a vmap over a grid), jittable, and
differentiable: tau* carries its implicit-function derivative. These are formulas of the
exponents (and of N, t in the continuum limit), not of a simulator's Params, so they take s and
a directly; the finite-M losses they approximate are `theory.linear`'s Params forms.
"""

import functools
import math
from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp
from jax.scipy.special import gammaincc, gammaln

from spectral_sim._types import Array, ArrayLike, Float
from spectral_sim.checks import check_range
from spectral_sim.spectra import PowerLaw
from spectral_sim.theory.linear import tail_dominance_limit

__all__ = [
    "ITERATIONS",
    "ChinchillaExponents",
    "ComputeOptimal",
    "PLRFExponents",
    "PLRFPhase",
    "SpectrumExponents",
    "chinchilla_from_sa",
    "compute_optimal",
    "continuum_loss",
    "paper_loss_exponent",
    "phi",
    "plrf_compute_optimal",
    "plrf_from_sa",
    "rf_saturation_exponent",
    "ridge_data_exponent",
    "sa_from_chinchilla",
    "sa_from_plrf",
    "soft_hard_loss_ratio",
]

# An exponent (s, a, alpha, beta): a number, or an array of the grid's shape; everything here is
# elementwise, so the arguments broadcast against each other.
Exponent = float | Float[ArrayLike, "*#grid"]

# Bisection steps in u = log(2 tau). `_bracket`'s interval is narrower than 20 for
# 1e-6 <= s <= 1e6 and 1e-10 <= c = (a - 1)/s <= 1e6 (measured: 3.0 to 18.2), so 64 halvings
# leave 20 * 2^-64 = 1.1e-18 in u = log(2 tau): tau* to machine precision.
ITERATIONS = 64


def _check(s, a) -> None:
    """The §2.6 model needs s > 0 (a decaying spectrum) and a > 1 (finite signal energy)."""
    check_range("s", s, gt=0)
    check_range("a", a, gt=1)


def _as_float(*values):
    dtype = jnp.result_type(*values, float)
    return tuple(jnp.asarray(v, dtype) for v in values)


# --- the scaling function Phi ----------------------------------------------------------------


def _train_over_tail(c, z):
    """r(c, z) = c z^-c Gamma(c, z) = Gamma(1 + c) z^-c Q(c, z), with Q the regularised upper
    incomplete gamma function: the ratio of the kept-but-unlearned loss
    1/2 int_0^1 u^-a exp(-z u^-s) du to the dropped tail 1/(2(a-1)) (substitute x = u^-s).

    Closed form instead of a quadrature: JAX's igammac loses log10(1/c) digits of Q as c -> 0,
    but then r = O(c), so 1 + r, the only way r enters, stays within 2e-14 of SciPy's value
    for c in [1e-10, 1e3], z in [1e-6, 600] (measured). Overflows to inf only where Phi itself
    exceeds the float range (z << c).
    """
    return jnp.exp(gammaln(1 + c) - c * jnp.log(z)) * gammaincc(c, z)


def phi(tau: Float[ArrayLike, "*#grid"], s: Exponent, a: Exponent) -> Float[Array, "*#grid"]:
    """Phi(tau) = 1/2 int_0^1 u^-a exp(-2 tau u^-s) du + 1/(2(a-1)) = (1 + r(c, 2 tau))/(2(a-1)),
    c = (a - 1)/s (THEORY.md §2.6, [A]); decreasing from inf at tau = 0 to 1/(2(a-1))."""
    _check(s, a)
    check_range("tau", tau, ge=0)
    tau, s, a = _as_float(tau, s, a)
    return (1 + _train_over_tail((a - 1) / s, 2 * tau)) / (2 * (a - 1))


def continuum_loss(
    n: Float[ArrayLike, "*#grid"], t: Float[ArrayLike, "*#grid"], s: Exponent, a: Exponent
) -> Float[Array, "*#grid"]:
    """L(N, t) = N^(1-a) Phi(t N^-s): the continuum limit of the loss of N ideal features
    trained by GF for a time t, 1/2 sum_{k<=N} k^-a e^(-2 k^-s t) + 1/2 sum_{k>N} k^-a
    (THEORY.md §2.6, [A]). Valid for N >> 1 and t >> 1 (modes near k = 1 learned): the
    relative discreteness error is -(1 - e^(-2 tau))/(4 N Phi(tau)) to first order in 1/N
    (Euler-Maclaurin at k = N), and Phi(0) = inf where the sum is finite."""
    _check(s, a)
    check_range("n", n, gt=0)
    check_range("t", t, gt=0)
    n, t, s, a = _as_float(n, t, s, a)
    return n ** (1 - a) * phi(t * n**-s, s, a)


# --- the compute-optimal frontier ----------------------------------------------------------


class ComputeOptimal(NamedTuple):
    """The compute-optimal frontier at C = N D (THEORY.md §2.6, §1 rows 1 and 5):
    L* = k_loss C^-loss_exponent, N* = k_n C^n_exponent, D* = C / N* = C^d_exponent / k_n.
    Fields have the broadcast shape of s and a."""

    loss_exponent: Float[Array, "*#grid"]  # (a - 1)/(s + 1)
    n_exponent: Float[Array, "*#grid"]  # 1/(s + 1)
    d_exponent: Float[Array, "*#grid"]  # s/(s + 1)
    tau_star: Float[Array, "*#grid"]  # tau* = t* N*^-s = C N*^-(s+1): lambda_N* D* at the optimum
    k_loss: Float[Array, "*#grid"]  # K_L = tau*^((a-1)/(s+1)) Phi(tau*)
    k_n: Float[Array, "*#grid"]  # K_N = tau*^(-1/(s+1))

    def loss(self, compute: Float[ArrayLike, "*#grid"]) -> Float[Array, "*#grid"]:
        """L*(C) = K_L C^-(a-1)/(s+1) (shapes broadcast; give C an axis per grid axis)."""
        return self.k_loss * jnp.asarray(compute) ** -self.loss_exponent

    def n_star(self, compute: Float[ArrayLike, "*#grid"]) -> Float[Array, "*#grid"]:
        """N*(C) = K_N C^(1/(s+1)), the optimal number of modes (parameters)."""
        return self.k_n * jnp.asarray(compute) ** self.n_exponent

    def d_star(self, compute: Float[ArrayLike, "*#grid"]) -> Float[Array, "*#grid"]:
        """D*(C) = t* = C / N* = C^(s/(s+1)) / K_N, the optimal number of one-pass samples."""
        return jnp.asarray(compute) ** self.d_exponent / self.k_n


def _stationarity(u, s, c):
    """(s + 1)(1 - e^-z)/(1 + r(c, z)) - 1 at z = e^u = 2 tau. Its root is tau*: with
    tau Phi'(tau) = -(1/(2s)) z^-c Gamma(c + 1, z) and Gamma(c + 1, z) = c Gamma(c, z) + z^c e^-z,
    d log L / d log tau = (a-1)/(s+1) + tau Phi'/Phi = (a-1) [1/(s+1) - R/s] with
    1 - R = (1 - e^-z)/(1 + r). Strictly increasing in u (1 - e^-z increases, r decreases), so
    at fixed C the loss has a single minimum in tau."""
    z = jnp.exp(u)
    return (s + 1) * -jnp.expm1(-z) / (1 + _train_over_tail(c, z)) - 1


def _bracket(s, c):
    """u = log z with the stationarity function < 0 at `lower` and > 0 at `upper`.

    Lower: Q(c, z) >= 1 - z^c/Gamma(1+c) gives 1 + r >= Gamma(1+c) z^-c, so
    1 - R <= z^(c+1)/Gamma(1+c), which is < 1/(s+1) at the bound's u and below.
    Upper: for z >= 2 max(c - 1, 0), Gamma(c, z) <= 2 z^(c-1) e^-z, so r <= 2c/z and
    R <= 2c/z + e^-z, each at most s/(2(s+1)) at the bound's u and above.
    """
    lower = (gammaln(1 + c) - jnp.log1p(s)) / (1 + c) - 1
    upper = jnp.log(jnp.maximum(4 * c * (s + 1) / s, jnp.log(2 * (s + 1) / s))) + 1
    return lower, upper


def _tau_star(s, c, iterations: int):
    """tau* by `iterations` bisection steps in u = log(2 tau) inside `_bracket`; the derivative
    with respect to s and c comes from the implicit function theorem (lax.custom_root)."""

    def stationarity(u):
        return _stationarity(u, s, c)

    def bisect(function, start):
        del start

        def step(_, bracket):
            lo, hi = bracket
            mid = (lo + hi) / 2
            below = function(mid) < 0
            return jnp.where(below, mid, lo), jnp.where(below, hi, mid)

        lo, hi = jax.lax.fori_loop(0, iterations, step, _bracket(s, c))
        return (lo + hi) / 2

    def tangent_solve(linear, rhs):  # elementwise: the Jacobian in u is diagonal
        return rhs / linear(jnp.ones_like(rhs))

    start = jnp.zeros(jnp.broadcast_shapes(jnp.shape(s), jnp.shape(c)), c.dtype)
    u = jax.lax.custom_root(stationarity, start, bisect, tangent_solve)
    return jnp.exp(u) / 2


def compute_optimal(
    s: Exponent,
    a: Exponent,
    *,
    rule: Literal["soft", "hard"] = "soft",
    iterations: int = ITERATIONS,
) -> ComputeOptimal:
    """Exponents and constants of the one-pass compute-optimal frontier (THEORY.md §2.6, [A]).

    rule="soft": GF learning, mode k at time t retains e^(-2 k^-s t) of its loss. At fixed C,
    L = (C/tau)^-(a-1)/(s+1) Phi(tau) with tau = t N^-s = C N^-(s+1); tau* minimises it
    (bisection on d log L / d log tau = 0, see `_stationarity`), K_N = tau*^(-1/(s+1)),
    K_L = tau*^((a-1)/(s+1)) Phi(tau*).
    rule="hard": mode k is learned iff k^-s t >= 1, L = 1/2 zeta(a, min(N, t^(1/s)) + 1)
    ~ min(N, t^(1/s))^(1-a) / (2(a-1)); the optimum spends C where N = t^(1/s), i.e. at the
    frontier lambda_N t = 1, so tau* = 1, K_N = 1 and K_L = 1/(2(a-1)).

    The exponents are the same for both rules (§1 rows 1 and 5: only the constants move).
    """
    if rule not in ("soft", "hard"):
        raise ValueError(f"rule must be 'soft' or 'hard'; got {rule!r}")
    _check(s, a)
    s, a = _as_float(s, a)
    loss_exponent = (a - 1) / (s + 1)
    n_exponent = jnp.broadcast_to(1 / (s + 1), loss_exponent.shape)
    d_exponent = jnp.broadcast_to(s / (s + 1), loss_exponent.shape)
    if rule == "hard":
        one = jnp.ones_like(loss_exponent)
        return ComputeOptimal(
            loss_exponent, n_exponent, d_exponent, one, 1 / (2 * (a - 1)) * one, one
        )
    tau, k_loss, k_n = _soft_constants(s, a, iterations)
    return ComputeOptimal(loss_exponent, n_exponent, d_exponent, tau, k_loss, k_n)


@functools.partial(jax.jit, static_argnames="iterations")
def _soft_constants(s, a, iterations: int):
    """tau*, K_L, K_N of the soft rule. Jitted so that eager calls reuse one compiled root
    finder per shape and dtype (inside an outer jit it is inlined)."""
    tau = _tau_star(s, (a - 1) / s, iterations)
    k_loss = tau ** ((a - 1) / (s + 1)) * phi(tau, s, a)
    return tau, k_loss, tau ** (-1 / (s + 1))


def soft_hard_loss_ratio(s: Exponent, a: Exponent) -> Float[Array, "*#grid"]:
    """L_soft(t) / L_hard(t) -> Gamma(1 + c) 2^-c, c = (a - 1)/s, as t -> inf (THEORY.md §2.5):
    the prefactor that soft truncation changes while the exponent (a-1)/s stays.

    The hard loss is the energy beyond the frontier k*(t) = t^(1/s), so this is the
    tail-dominance limit of [P3] Prop. 2 at rho = 1 (§2.10) and is computed by
    `theory.linear.tail_dominance_limit` (the mode count plays no role in it).
    """
    _check(s, a)
    s, a = _as_float(s, a)
    return tail_dominance_limit(PowerLaw(s=s, a=a, n_modes=1))


# --- exponents of other training regimes ---------------------------------------------------


def rf_saturation_exponent(s: Exponent, a: Exponent) -> Float[Array, "*#grid"]:
    """Random-feature approximation error ~ d^-min(a - 1, s) at width d, infinite data
    (THEORY.md §2.8, [DE]): it saturates at d^-s when a - 1 > s (PLRF 2 beta > 1), where ideal
    truncation would give d^-(a - 1)."""
    _check(s, a)
    s, a = _as_float(s, a)
    return jnp.minimum(a - 1, s)


def ridge_data_exponent(s: Exponent, a: Exponent) -> Float[Array, "*#grid"]:
    """Ridgeless / small-ridge bias ~ n^-min(a - 1, 2s) in the sample count n (THEORY.md §2.7,
    [DE]); the 2s cap is the saturation of Tikhonov regularisation."""
    _check(s, a)
    s, a = _as_float(s, a)
    return jnp.minimum(a - 1, 2 * s)


def paper_loss_exponent(s: Exponent) -> Float[Array, "*#grid"]:
    """[P0]'s compute-optimal loss exponent (s - 1)/(s + 1) (THEORY.md §1 row 1): the s = a
    special case of `compute_optimal(s, a).loss_exponent` = (a - 1)/(s + 1)."""
    check_range("s", s, gt=0)
    (s,) = _as_float(s)
    return (s - 1) / (s + 1)


class PLRFPhase(NamedTuple):
    """A compute-optimal phase of one-pass SGD on random features: width d* ~ f^d_exponent,
    loss ~ f^-loss_exponent in the flops f ~ d r (THEORY.md §2.6.1)."""

    phase: str
    d_exponent: float
    loss_exponent: float


def plrf_compute_optimal(s: float, a: float) -> PLRFPhase:
    """The PLRF phase of (s, a) and its exponents (Paquette, Paquette, Xiao, Pennington 2024;
    THEORY.md §2.6.1, in the (s, a) notation: s = 2 alpha, a = 2 alpha + 2 beta). Ia, II and III
    (s > 1) are confirmed numerically to about 0.03 at d <= 3e3 (THEORY.md); Ib is consistent;
    Ic, IVa and IVb are derived from the component asymptotics only. Points on a boundary take
    the phase listed first in the table. Plain floats (the phase is a label, not traceable)."""
    s, a = float(s), float(a)
    if not s > 0 or not a > 1:
        raise ValueError(f"need s > 0 and a > 1; got s={s}, a={a}")
    if s > 1:
        if a <= s + 1:
            return PLRFPhase("Ia", 1 / (s + 1), (a - 1) / (s + 1))
        if a <= 2 * s:
            return PLRFPhase("II", (a - s) / a, (a - 1) / a)
        return PLRFPhase("III", 0.5, 1 - 1 / (2 * s))
    if a <= s + 1:
        return PLRFPhase("Ib", 0.5, (a - 1) / 2)
    if s < 0.5:
        xi = (a - 1) / (s**2 - s * a + s + 2 * a - 2)
        return PLRFPhase("Ic", xi, s * xi)
    if s < 2 - math.sqrt(2):
        denominator = s**2 - s * a - 3 * s + 2 * a
        return PLRFPhase("IVa", (a - 2 * s) / denominator, (1 - s) * (a - 1) / denominator)
    return PLRFPhase("IVb", 0.5, s / 2)


# --- notation maps (THEORY.md §0, §1 row 3) ------------------------------------------------


class SpectrumExponents(NamedTuple):
    """lambda_k = k^-s, v_k^2 = lambda_k w*_k^2 = k^-a (THEORY.md §0)."""

    s: Float[Array, "*#grid"]
    a: Float[Array, "*#grid"]


class PLRFExponents(NamedTuple):
    """Paquette et al. 2024: lambda_j = j^-2 alpha, b_j = j^-beta."""

    alpha: Float[Array, "*#grid"]
    beta: Float[Array, "*#grid"]


class ChinchillaExponents(NamedTuple):
    """Hoffmann et al. 2022: L(N, D) = E + A N^-alpha + B D^-beta."""

    alpha: Float[Array, "*#grid"]
    beta: Float[Array, "*#grid"]


def plrf_from_sa(s: Exponent, a: Exponent) -> PLRFExponents:
    """(alpha, beta) = (s/2, (a - s)/2), from s = 2 alpha, a = 2 alpha + 2 beta (THEORY.md §0,
    §2.6.1)."""
    _check(s, a)
    s, a = _as_float(s, a)
    return PLRFExponents(s / 2, (a - s) / 2)


def sa_from_plrf(alpha: Exponent, beta: Exponent) -> SpectrumExponents:
    """(s, a) = (2 alpha, 2 alpha + 2 beta) (THEORY.md §0); a > 1 needs alpha + beta > 1/2."""
    check_range("alpha", alpha, gt=0)
    check_range("alpha + beta", alpha + beta, gt=0.5)
    alpha, beta = _as_float(alpha, beta)
    return SpectrumExponents(2 * alpha, 2 * alpha + 2 * beta)


def chinchilla_from_sa(s: Exponent, a: Exponent) -> ChinchillaExponents:
    """(alpha, beta) = (a - 1, (a - 1)/s) (THEORY.md §1 row 3): in L(N, t) of §2.6 the
    finite-N term is N^(1-a)/(2(a-1)) and the finite-data term the GF decay ~ t^-(a-1)/s."""
    _check(s, a)
    s, a = _as_float(s, a)
    return ChinchillaExponents(a - 1, (a - 1) / s)


def sa_from_chinchilla(alpha: Exponent, beta: Exponent) -> SpectrumExponents:
    """(s, a) = (alpha/beta, 1 + alpha), the inverse of `chinchilla_from_sa` (THEORY.md §1
    row 3: Hoffmann et al.'s (0.34, 0.28) gives (s, a) = (1.21, 1.34), so N* ~ C^0.45 and
    L - E ~ C^-0.154). Chinchilla's own optimum, N* ~ C^(beta/(alpha+beta)) and
    L - E ~ C^-(alpha beta/(alpha+beta)), is the same as `compute_optimal`'s under this map."""
    check_range("alpha", alpha, gt=0)
    check_range("beta", beta, gt=0)
    alpha, beta = _as_float(alpha, beta)
    return SpectrumExponents(alpha / beta, 1 + alpha)
