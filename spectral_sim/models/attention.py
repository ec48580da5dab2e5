"""Tokens X in R^{n x d} through residual attention layers (THEORY.md §3), one layer per step of
`simulate.trajectory`:

    Y = A(X) X V,  X <- X + eps (Y - X)  ("mean_shift"),  X + eps Y  ("additive"),  Y  ("none"),

then an optional normalisation of each token: "sphere" (projection onto the unit sphere, the
Geshkovski-Letrouit-Polyanskiy-Rigollet dynamics) or "layernorm" (zero mean, unit variance over
the d coordinates). A(X) is a fixed row-stochastic `P` (attention="fixed") or
softmax_row(beta (X Q)(X K)^T) (attention="softmax"; Q = K = I unless `query` and `keys` are
given). V = I unless `value` is given. With h heads (`query` and `keys` of shape (h, d, k),
`value` (h, d, d)) the layer mixes Y = (1/h) sum_h A_h(X) X V_h.

draw="qk" (or "qkv") draws Q and K (and V) per run in `init`, from the run's key, with iid
N(0, 1/dim) entries and shapes (heads, dim, key_dim) (V: (heads, dim, dim)); they ride in the
State, so a sweep's seeds are independent Q/K/V draws and one compile serves them all.

integrator="euler" or "rk4" (with norm="sphere") instead steps the continuous-time sphere
dynamics dx_i/dt = P_i^perp (A(X) X V)_i, P_i^perp = I - x_i x_i^T the tangent projection at
x_i (Geshkovski et al.), by a fixed step dt = eps, renormalising after each step.

With a fixed P and `deviation=True` the state is the deviation D = X - 1 pi^T X from the
consensus, projected back onto pi^T D = 0 after every layer (THEORY.md §3.4): the linear
dynamics are the same, and round-off no longer floors the distance at ~1e-16. The additive
form's (1 + eps)^L growth is then divided out every layer (THEORY.md §3.2).

`stationary` (pi of a fixed P), `dobrushin` (the Obs' tau) and `check_attention` (the check of
P) are the matrix functions the simulator needs; `theory.attention` re-exports them.
"""

import dataclasses
from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from spectral_sim._types import Array, ArrayLike, Float, Key, Leaf, Swept
from spectral_sim.checks import all_of, concrete

__all__ = [
    "Obs", "Params", "State", "check_attention", "dobrushin", "init", "stationary", "step",
    "weights",
]  # fmt: skip

ATTENTION = ("softmax", "fixed")
RESIDUAL = ("mean_shift", "additive", "none")
NORM = ("none", "sphere", "layernorm")
DRAW = ("none", "qk", "qkv")
INTEGRATOR = ("layer", "euler", "rk4")
LAYERNORM_EPS = 1e-12  # variance floor of "layernorm" (keeps a collapsed token finite)

# Row sums of a row-stochastic P may differ from 1 by rounding only.
STOCHASTIC_RTOL = 1e-6


def check_attention(P: object, *, reversible: bool = True) -> None:
    """ValueError naming P unless it is square n x n with n >= 2, positive and row-stochastic
    (and, for the spectral functions, reversible). A no-op on tracers."""
    array = concrete(P)
    if array is None:
        return
    if array.ndim < 2 or array.shape[-1] != array.shape[-2] or array.shape[-1] < 2:
        raise ValueError(f"P must be (..., n, n) with n >= 2 tokens; got shape {array.shape}")
    if not np.all(np.isfinite(array)) or np.any(array <= 0):
        raise ValueError("P must have finite, positive entries (softmax or a positive kernel)")
    sums = array.sum(-1)
    if np.max(np.abs(sums - 1)) > STOCHASTIC_RTOL:
        raise ValueError(
            f"P must be row-stochastic (row sums 1 within {STOCHASTIC_RTOL:g}); got row sums "
            f"from {sums.min():.6g} to {sums.max():.6g}"
        )
    if reversible:
        with jax.ensure_compile_time_eval():  # a concrete P inside a jit trace: still concrete
            pi = np.asarray(_stationary(jnp.asarray(array)))  # one program, not one per op
        flow = pi[..., :, None] * array
        if np.max(np.abs(flow - np.swapaxes(flow, -1, -2))) > STOCHASTIC_RTOL * np.max(flow):
            raise ValueError(
                "P must be reversible (pi_i P_ij = pi_j P_ji, e.g. P = D^-1 K with K symmetric)"
            )


def stationary(P: Float[ArrayLike, "*batch n n"]) -> Float[Array, "*batch n"]:
    """pi with pi^T P = pi^T and sum pi = 1: the left Perron vector of a positive row-stochastic
    P, by the Grassmann-Taksar-Heyman state reduction. It adds and divides positive numbers only
    (never the diagonal, never 1 - p), so every pi_i comes out to relative rounding however
    small: a linear solve of pi^T (P - I) = 0 loses the small pi_i of a nearly reducible P (a
    softmax A(X_0) at beta = 2, d = 8 has pi_i from 1e-27 to 1, 1 - mu_2 ~ 1e-16) and returned
    negative ones (-1e-2 where pi_i = 0.2), whose square roots in `attention_spectrum` were NaN."""
    return jnp.vectorize(_reduce_states, signature="(n,n)->(n)")(jnp.asarray(P))


_stationary = jax.jit(stationary)


def _reduce_states(P: Array) -> Array:
    """GTH on one n x n P: censor the chain on states 0..k-1 for k = n-1, ..., 1 (the exits of
    state k rerouted through it), then pi_k = sum_(i<k) pi_i a_ik from pi_0 = 1."""
    n = P.shape[-1]
    index = jnp.arange(n)

    def censor(i, a):
        k = n - 1 - i
        row = jnp.where(index < k, a[k], 0)
        column = jnp.where(index < k, a[:, k], 0) / row.sum()  # a_ik / P(leave k to states < k)
        return (a + jnp.outer(column, row)).at[:, k].set(column)

    a = jax.lax.fori_loop(0, n - 1, censor, P)
    first = jnp.zeros(n, P.dtype).at[0].set(1)
    pi = jax.lax.fori_loop(1, n, lambda k, pi: pi.at[k].set(pi @ a[:, k]), first)
    return pi / pi.sum()


def dobrushin(M: Float[ArrayLike, "*batch n n"]) -> Float[Array, "*batch"]:
    """tau(M) = 1/2 max_{i,j} ||M_i. - M_j.||_1, the Dobrushin ergodicity coefficient of a
    row-stochastic M: diam(M X) <= tau(M) diam(X) in any norm on the rows, layer by layer
    (THEORY.md §3.1)."""
    M = jnp.asarray(M)
    differences = jnp.abs(M[..., :, None, :] - M[..., None, :, :]).sum(-1)
    return 0.5 * jnp.max(differences, axis=(-2, -1))


def _static(default):
    return dataclasses.field(default=default, metadata=dict(static=True))


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Params:
    """n_tokens tokens of dimension dim; eps (residual step) and beta (softmax inverse
    temperature) are traced, so sweeps over them share one compile; the variants are static."""

    n_tokens: int = _static(16)
    dim: int = _static(4)
    eps: Swept = 0.1
    beta: Swept = 1.0
    attention: Literal["softmax", "fixed"] = _static("softmax")
    residual: Literal["mean_shift", "additive", "none"] = _static("mean_shift")
    norm: Literal["none", "sphere", "layernorm"] = _static("none")
    deviation: bool = _static(False)
    integrator: Literal["layer", "euler", "rk4"] = _static("layer")
    draw: Literal["none", "qk", "qkv"] = _static("none")
    heads: int = _static(1)
    key_dim: int | None = _static(None)
    P: Float[Leaf, "*grid n n"] | None = None
    value: Float[Leaf, "*heads d d"] | None = None  # leading axes: grid, then heads if any
    query: Float[Leaf, "*heads d k"] | None = None
    keys: Float[Leaf, "*heads d k"] | None = None

    def __post_init__(self):
        with all_of() as check:  # the fields one by one, then how they fit together
            check.count("n_tokens", self.n_tokens, low=2)
            check.count("dim", self.dim)
            check.range("eps", self.eps, gt=0)
            check.range("beta", self.beta, ge=0)
            for name, allowed in (("attention", ATTENTION), ("residual", RESIDUAL), ("norm", NORM),
                                  ("integrator", INTEGRATOR), ("draw", DRAW)):  # fmt: skip
                check.one_of(name, getattr(self, name), allowed)
            check.count("heads", self.heads)
            if self.key_dim is not None:
                check.count("key_dim", self.key_dim)
            self._check_shapes()

    def _check_shapes(self) -> None:
        n, d = self.n_tokens, self.dim
        if self.attention == "fixed":
            if self.P is None:
                raise ValueError("attention='fixed' needs P, a row-stochastic n_tokens x n_tokens")
            shape = getattr(self.P, "shape", None)  # leading axes: a stacked grid of Params
            if shape is not None and tuple(shape[-2:]) != (n, n):
                raise ValueError(f"P must have shape (n_tokens, n_tokens) = {(n, n)}; got {shape}")
            if concrete(self.P) is not None:
                check_attention(self.P, reversible=False)
        shapes = {k: getattr(getattr(self, k), "shape", None) for k in ("query", "keys", "value")}
        if (self.query is None) != (self.keys is None):
            raise ValueError("query and keys must be given together (or neither: Q = K = I)")
        if shapes["query"] is not None and shapes["query"] != shapes["keys"]:
            raise ValueError(
                f"query and keys must have one shape (heads, dim, k); got {shapes['query']} and "
                f"{shapes['keys']}"
            )
        for name in ("query", "value"):
            shape = shapes[name]
            if shape is not None and (len(shape) not in (2, 3) or shape[-2] != d):
                raise ValueError(f"{name} must be (dim, k) or (heads, dim, k) with dim = {d}")
        if shapes["value"] is not None and shapes["value"][-1] != d:
            raise ValueError(f"value must be (dim, dim) or (heads, dim, dim) with dim = {d}")
        if shapes["query"] is not None and shapes["value"] is not None:
            heads = (shapes["query"][:-2] or (1,))[0], (shapes["value"][:-2] or (1,))[0]
            if heads[0] != heads[1]:
                raise ValueError(f"query/keys and value must have one head count; got {heads}")
        if self.integrator != "layer" and self.norm != "sphere":
            raise ValueError("integrator='euler' or 'rk4' steps the sphere dynamics: norm='sphere'")
        if self.deviation and (self.attention != "fixed" or self.norm != "none"):
            raise ValueError("deviation=True needs attention='fixed' and norm='none' (linear)")
        if self.draw != "none":
            if self.attention != "softmax":
                raise ValueError("draw='qk' or 'qkv' draws softmax weights: attention='softmax'")
            drawn = ("query", "keys", "value") if self.draw == "qkv" else ("query", "keys")
            given = [name for name in drawn if getattr(self, name) is not None]
            if given:
                raise ValueError(f"draw={self.draw!r} draws {drawn}; do not also give {given}")


class State(NamedTuple):
    """x: the tokens (or their deviation from consensus with `deviation`); t: layers done;
    query, keys, value: this run's drawn weights (None unless `draw` draws them)."""

    x: Float[Array, "n d"]
    t: Array
    query: Float[Array, "heads d k"] | None = None
    keys: Float[Array, "heads d k"] | None = None
    value: Float[Array, "heads d d"] | None = None


class Obs(NamedTuple):
    """After the layer: the weighted distance to consensus ||X - 1 pi^T X||_pi (pi uniform for
    softmax attention) and the diameter max_ij ||x_i - x_j||; `tau`, the Dobrushin coefficient
    of the layer's row-stochastic mixing matrix M ((1 - eps) I + eps A, (I + eps A)/(1 + eps) or
    A, with A the head-averaged attention of the layer's input; THEORY.md §3.1). With V = I and
    no normalisation the layer is X <- M X (times 1 + eps, additive), so diameter_l <= tau_l
    diameter_(l-1) (up to that scale)."""

    distance: Float[Array, ""]
    diameter: Float[Array, ""]
    tau: Float[Array, ""]


def _heads(matrix, dtype) -> Float[Array, "heads a b"] | None:
    if matrix is None:
        return None
    matrix = jnp.asarray(matrix, dtype)
    return matrix if matrix.ndim == 3 else matrix[None]


def _qkv(params: Params, state: State | None) -> tuple:
    """(Q, K, V): the run's drawn matrices where `draw` drew them, else the Params' ones."""
    drawn = state if state is not None and params.draw != "none" else None
    return tuple(
        getattr(drawn, name) if drawn is not None and getattr(drawn, name) is not None
        else getattr(params, name)
        for name in ("query", "keys", "value")
    )  # fmt: skip


def weights(
    params: Params, x: Float[Array, "n d"], state: State | None = None
) -> Float[Array, "heads n n"]:
    """A_h(X) per head: the fixed P, or softmax_row(beta (X Q_h)(X K_h)^T) (Q, K drawn into
    `state` when params.draw draws them)."""
    if params.attention == "fixed":
        return jnp.asarray(params.P, x.dtype)[None]
    query, keys, _ = _qkv(params, state)
    query, keys = _heads(query, x.dtype), _heads(keys, x.dtype)
    if query is None or keys is None:
        scores = (x @ x.T)[None]
    else:
        q, k = jnp.einsum("nd,hdk->hnk", x, query), jnp.einsum("nd,hdk->hnk", x, keys)
        scores = jnp.einsum("hnk,hmk->hnm", q, k)
    return jax.nn.softmax(params.beta * scores, axis=-1)


def _mix(
    params: Params, x: Float[Array, "n d"], state: State | None, a: Array | None = None
) -> Float[Array, "n d"]:
    """Y = (1/h) sum_h A_h X V_h (V_h = I without `value`); `a` the heads' A_h(X) if already
    computed."""
    a = weights(params, x, state) if a is None else a
    mixed = jnp.einsum("hnm,md->hnd", a, x)
    value = _heads(_qkv(params, state)[2], x.dtype)
    if value is not None:
        mixed = jnp.einsum("hnd,hde->hne", mixed, value)
    return mixed.mean(0)


def _pi(params: Params, dtype) -> Float[Array, " n"]:
    if params.attention == "fixed":
        return stationary(jnp.asarray(params.P, dtype))
    return jnp.full((params.n_tokens,), 1 / params.n_tokens, dtype)


def _normalise(params: Params, x: Float[Array, "n d"]) -> Float[Array, "n d"]:
    if params.norm == "sphere":
        return x / jnp.linalg.norm(x, axis=-1, keepdims=True)
    if params.norm == "layernorm":
        centred = x - x.mean(-1, keepdims=True)
        return centred / jnp.sqrt((centred**2).mean(-1, keepdims=True) + LAYERNORM_EPS)
    return x


def _mixing(params: Params, heads: Float[Array, "heads n n"]) -> Float[Array, "n n"]:
    """The layer's row-stochastic mixing matrix, from its heads' attention (see Obs)."""
    a = heads.mean(0)
    eye = jnp.eye(a.shape[0], dtype=a.dtype)
    eps = jnp.asarray(params.eps, a.dtype)
    if params.integrator != "layer" or params.residual == "mean_shift":
        return (1 - eps) * eye + eps * a
    if params.residual == "additive":
        return (eye + eps * a) / (1 + eps)
    return a


def _observe(params: Params, x: Float[Array, "n d"], tau: Float[Array, ""], pi) -> Obs:
    deviation = x - (pi @ x)[None]
    distance = jnp.sqrt(pi @ (deviation**2).sum(-1))
    diameter = jnp.max(jnp.linalg.norm(x[:, None] - x[None], axis=-1))
    return Obs(distance, diameter, tau)


def init(params: Params, key: Key[Array, ""]) -> State:
    """X_0 with iid N(0, 1) entries (normalised as the layers normalise; with `deviation`, the
    deviation X_0 - 1 pi^T X_0), and the drawn Q, K (V) with iid N(0, 1/dim) entries."""
    x = jax.random.normal(key, (params.n_tokens, params.dim))
    x = _normalise(params, x)
    if params.deviation:
        x = x - (_pi(params, x.dtype) @ x)[None]
    state = State(x, jnp.zeros((), jnp.int32))
    if params.draw == "none":
        return state
    d, h = params.dim, params.heads
    query_key, keys_key, value_key = jax.random.split(jax.random.fold_in(key, 1), 3)
    shape = (h, d, params.key_dim or d)
    scale = 1 / jnp.sqrt(jnp.asarray(d, x.dtype))
    query = scale * jax.random.normal(query_key, shape, x.dtype)
    keys = scale * jax.random.normal(keys_key, shape, x.dtype)
    value = None
    if params.draw == "qkv":
        value = scale * jax.random.normal(value_key, (h, d, d), x.dtype)
    return state._replace(query=query, keys=keys, value=value)


def _tangent(params: Params, x: Float[Array, "n d"], state: State) -> Float[Array, "n d"]:
    """dx/dt of the sphere dynamics: the attention output projected on each token's tangent."""
    y = _mix(params, x, state)
    return y - (y * x).sum(-1, keepdims=True) * x


def _flow_step(params: Params, state: State) -> Float[Array, "n d"]:
    x = state.x
    dt = jnp.asarray(params.eps, x.dtype)
    if params.integrator == "euler":
        return _normalise(params, x + dt * _tangent(params, x, state))
    k1 = _tangent(params, x, state)
    k2 = _tangent(params, x + 0.5 * dt * k1, state)
    k3 = _tangent(params, x + 0.5 * dt * k2, state)
    k4 = _tangent(params, x + dt * k3, state)
    return _normalise(params, x + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4))


def step(params: Params, state: State, key: Key[Array, ""] | None) -> tuple[State, Obs]:
    """One layer, or one time step dt = eps of the sphere flow (deterministic: the key is
    unused)."""
    del key
    x = state.x
    pi = _pi(params, x.dtype)  # one stationary solve per layer, for the projection and the Obs
    a = weights(params, x, state)
    tau = dobrushin(_mixing(params, a))
    if params.integrator != "layer":
        x = _flow_step(params, state)
        return state._replace(x=x, t=state.t + 1), _observe(params, x, tau, pi)
    y = _mix(params, x, state, a)
    eps = jnp.asarray(params.eps, x.dtype)
    if params.residual == "mean_shift":
        x = x + eps * (y - x)
    elif params.residual == "additive":
        x = x + eps * y
    else:
        x = y
    x = _normalise(params, x)
    if params.deviation:
        x = x - (pi @ x)[None]
        if params.residual == "additive":  # linear dynamics: the (1 + eps)^L growth is a scale
            x = x / (1 + eps)
    return state._replace(x=x, t=state.t + 1), _observe(params, x, tau, pi)
