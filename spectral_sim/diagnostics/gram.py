"""Spectral-edge diagnostics of parameter updates (THEORY.md §5): a rolling window of the last W
update vectors u_t in R^P, kept with its W x W Gram matrix G = U U^T updated incrementally (one
row of inner products per step: memory O(W P), cost O(W P); never a P x P matrix), and the
quantities read from it:

- the singular values sigma_j of U (sigma_j^2 = eig_j G), k* = argmax sigma_j / sigma_(j+1) over
  j with sigma_(j+1) > tau sigma_1, and the gap ratio R* = sigma_k* / sigma_(k*+1);
- significance against the noise-only Marchenko-Pastur edge (1 + sqrt(W/P)) / (1 - sqrt(W/P));
- raw or row-centred windows (centring removes the common drift direction);
- the window covariance's change Sigma_(t+1) - Sigma_t = a a^T - b b^T (a enters, b leaves):
  the paper's A = ||dSigma||_F / (eta ||g||^2), the dimensionless A_rel = ||dSigma||_F /
  ||Sigma_t||_F, and A_rot, the largest principal angle's sine between consecutive top-k*
  subspaces (THEORY.md §5.4).

Everything is a pure function of arrays: `push` goes inside any jitted training step (vmap it
over seeds), on a flat update or, with `ravel`, on any parameter pytree or one group of it.
"""

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp

from spectral_sim._types import Array, ArrayLike, Bool, Float, Int
from spectral_sim.checks import check_count, check_range, concrete

__all__ = [
    "Edge",
    "Window",
    "adiabatic",
    "centred",
    "chronological",
    "init",
    "mp_edge",
    "push",
    "ravel",
    "spectral_edge",
    "spectral_edge_from_gram",
]

# tau defaults: the floor below which sigma_(j+1) / sigma_1 is rank deficiency, not a gap.
TAU = {jnp.dtype("float64"): 1e-6, jnp.dtype("float32"): 1e-3}


class Edge(NamedTuple):
    """k_star (1-based), gap_ratio R* = sigma_k* / sigma_(k*+1), singular_values (descending),
    and whether R* exceeds the noise-only Marchenko-Pastur edge `null_ratio`."""

    k_star: Int[Array, "*batch"]
    gap_ratio: Float[Array, "*batch"]
    singular_values: Float[Array, "*batch W"]
    null_ratio: Float[Array, "*batch"]
    significant: Bool[Array, "*batch"]


class Window(NamedTuple):
    """The last W updates (a ring buffer: row `head` is the next to be replaced, the oldest once
    `count` >= W) and their Gram matrix in buffer order; `before` and `products` keep G_t and
    U_t a from the last push (a the update that entered), for the change of the window;
    `leaving` is a copy of row `head`, read after the previous write, so that a push never reads
    the buffer before writing it (which would make XLA copy all W x P floats every step)."""

    updates: Float[Array, "W P"]
    gram: Float[Array, "W W"]
    head: Int[Array, ""]
    count: Int[Array, ""]
    before: Float[Array, "W W"]
    products: Float[Array, " W"]
    leaving: Float[Array, " P"]


def _one_at_a_time(f):
    """f on (..., W, W) matrices, called with one matrix per LAPACK call on CPU.

    jaxlib < 0.11.2 splits a batched CPU LAPACK call (eigh, SVD) over the intra-op thread pool
    and blocks until it is done; when XLA runs several such calls at once (a training step reads
    out several windows) the pool is exhausted and the program hangs (reproduced: 48 vmapped
    p = 31 modular networks). On CPU the matrices therefore go through `lax.map`, under any
    number of vmaps (custom_vmap hands each batch to the same mapped call); other platforms get
    the batched call. The matrices are W x W with W ~ 10: the loop costs microseconds.
    """

    def mapped(x):
        flat = x.reshape(-1, *x.shape[-2:])
        out = jax.lax.map(f, flat)
        return jax.tree.map(lambda y: y.reshape(*x.shape[:-2], *y.shape[1:]), out)

    @jax.custom_batching.custom_vmap
    def call(x):
        return jax.lax.platform_dependent(x, cpu=mapped, default=f)

    @call.def_vmap
    def _rule(axis_size, in_batched, x):
        del axis_size
        out = call(x)
        return out, jax.tree.map(lambda _: in_batched[0], out)

    return call


_eigvalsh = _one_at_a_time(jnp.linalg.eigvalsh)
_eigh = _one_at_a_time(jnp.linalg.eigh)
_svdvals = _one_at_a_time(lambda x: jnp.linalg.svd(x, compute_uv=False))


def _tau(dtype, tau: float | None) -> float:
    if tau is None:
        return TAU.get(jnp.dtype(dtype), 1e-6)
    check_range("tau", tau, gt=0, lt=1)
    return tau


def mp_edge(W: int, P: int) -> float:
    """(1 + sqrt(W/P)) / (1 - sqrt(W/P)): the ratio sigma_1 / sigma_W of a W x P window of iid
    noise as P -> inf at fixed W/P (Marchenko-Pastur; THEORY.md §5.2). A gap is meaningful only
    well above it."""
    check_count("W", W, low=2)
    check_count("P", P, low=W + 1)
    q = math.sqrt(W / P)
    return (1 + q) / (1 - q)


def spectral_edge_from_gram(
    gram: Float[ArrayLike, "*batch W W"],
    *,
    tau: float | None = None,
    P: int | None = None,
    centred: bool = False,
) -> Edge:
    """The edge of a window from its Gram matrix G = U U^T (any row order). `centred` says G is
    that of a row-centred window (`centred(G)`), whose rank is at most W - 1: its last singular
    value is zero by construction (float rounding makes it ~sqrt(eps) sigma_1, which can pass
    tau), so k* is sought over the first W - 1, and the null edge is that of W - 1 rows."""
    gram = jnp.asarray(gram)
    W = gram.shape[-1]
    check_count("W", W, low=3 if centred else 2)
    tau = _tau(gram.dtype, tau)
    eig = _eigvalsh(0.5 * (gram + jnp.swapaxes(gram, -1, -2)))[..., ::-1]
    sigma = jnp.sqrt(jnp.maximum(eig, 0.0))
    rank = W - 1 if centred else W
    upper, lower = sigma[..., : rank - 1], sigma[..., 1:rank]
    valid = lower > tau * sigma[..., :1]
    ratios = jnp.where(valid, upper / jnp.where(valid, lower, 1.0), -jnp.inf)
    j = jnp.argmax(ratios, axis=-1)
    gap = jnp.where(valid.any(-1), jnp.take_along_axis(ratios, j[..., None], -1)[..., 0], jnp.nan)
    null = jnp.asarray(mp_edge(rank, P) if P is not None else jnp.nan, sigma.dtype)
    return Edge(j + 1, gap, sigma, jnp.broadcast_to(null, gap.shape), gap > null)


def spectral_edge(
    U: Float[ArrayLike, "*batch W P"], *, tau: float | None = None, centre: bool = False
) -> Edge:
    """k*, R* and the singular values of a W x P window of updates (rows in any order);
    `centre` removes the mean row first (rank W - 1: needs W >= 3). `null_ratio` is the
    Marchenko-Pastur edge for W x P (W - 1 x P centred)."""
    array = concrete(U)
    low = 3 if centre else 2
    if array is not None and (array.ndim < 2 or array.shape[-2] < low):
        raise ValueError(
            f"U must be (..., W, P) with W >= {low} updates{' (centre=True)' if centre else ''}; "
            f"got shape {array.shape}"
        )
    U = jnp.asarray(U)
    if centre:
        U = U - U.mean(-2, keepdims=True)
    W, P = U.shape[-2], U.shape[-1]
    return spectral_edge_from_gram(
        U @ jnp.swapaxes(U, -1, -2), tau=tau, P=P if P > W else None, centred=centre
    )


def init(W: int, P: int, dtype=jnp.float32) -> Window:
    """An empty window of W updates of size P."""
    check_count("W", W, low=2)
    check_count("P", P)
    zeros = jnp.zeros((W, W), dtype)
    return Window(
        jnp.zeros((W, P), dtype), zeros, jnp.zeros((), jnp.int32), jnp.zeros((), jnp.int32),
        zeros, jnp.zeros(W, dtype), jnp.zeros(P, dtype),
    )  # fmt: skip


def push(window: Window, update: Float[Array, " P"]) -> Window:
    """Add u_t in place of the oldest row: one row of inner products U u_t (O(W P)) refreshes
    the Gram matrix."""
    update = jnp.asarray(update, window.updates.dtype)
    slot = window.head
    updates = jax.lax.dynamic_update_index_in_dim(window.updates, update, slot, 0)
    row = updates @ update  # <u_i, a> for the new rows, <a, a> at slot
    products = row.at[slot].set(window.leaving @ update)  # U_t a: the leaving row b at slot
    gram = window.gram.at[slot, :].set(row).at[:, slot].set(row)
    head = (slot + 1) % window.gram.shape[0]
    leaving = jax.lax.dynamic_index_in_dim(updates, head, keepdims=False)
    return Window(updates, gram, head, window.count + 1, window.gram, products, leaving)


def chronological(window: Window) -> Float[Array, "W W"]:
    """The Gram matrix with rows oldest first (the buffer rotated by `head`)."""
    order = (jnp.arange(window.gram.shape[0]) + window.head) % window.gram.shape[0]
    return window.gram[order][:, order]


def centred(gram: Float[Array, "*batch W W"]) -> Float[Array, "*batch W W"]:
    """H G H, H = I - 11^T / W: the Gram matrix of the row-centred window. Centring after the
    fact cancels the drift's energy: in float32 the centred entries carry an absolute error of
    about eps ||drift||^2 W, so a drift 100x the signal leaves ~3 significant digits."""
    gram = jnp.asarray(gram)
    mean_row = gram.mean(-1, keepdims=True)
    mean_col = gram.mean(-2, keepdims=True)
    return gram - mean_row - mean_col + gram.mean((-2, -1), keepdims=True)


def _top_subspace(gram, k, tau):
    """Q S^-1 (W x W) with the columns beyond k zeroed: V = U^T Q S^-1 spans the top-k right
    singular subspace of U, so V_t^T V_(t+1) = (Q S^-1)_t^T U_t U_(t+1)^T (Q S^-1)_(t+1)."""
    eig, vectors = _eigh(0.5 * (gram + gram.T))
    eig, vectors = eig[::-1], vectors[:, ::-1]
    sigma = jnp.sqrt(jnp.maximum(eig, 0.0))
    keep = (jnp.arange(gram.shape[0]) < k) & (sigma > tau * sigma[0])
    return vectors * jnp.where(keep, 1 / jnp.where(keep, sigma, 1.0), 0.0)[None, :], keep


def adiabatic(
    window: Window, *, lr, grad_norm2, tau: float | None = None
) -> dict[str, Float[Array, ""]]:
    """THEORY.md §5.4 for the last push (a entered, b left; needs a full window):

    - `change`: ||Sigma_(t+1) - Sigma_t||_F = sqrt(||a||^4 + ||b||^4 - 2 (a.b)^2);
    - `paper`: change / (eta ||g||^2), the paper's A (scales with eta for SGD);
    - `rel`: change / ||Sigma_t||_F (= ||G_t||_F), dimensionless;
    - `rot`: the sine of the largest principal angle between the top-k* right singular
      subspaces of U_t and U_(t+1), k* that of U_t.
    """
    slot = (window.head - 1) % window.gram.shape[0]
    a2, b2, ab = window.gram[slot, slot], window.before[slot, slot], window.products[slot]
    change = jnp.sqrt(jnp.maximum(a2**2 + b2**2 - 2 * ab**2, 0.0))
    before = jnp.linalg.norm(window.before)
    tau = _tau(window.gram.dtype, tau)
    k = spectral_edge_from_gram(window.before, tau=tau).k_star
    cross = window.before.at[:, slot].set(window.products)  # U_t U_(t+1)^T
    q_old, keep_old = _top_subspace(window.before, k, tau)
    q_new, keep_new = _top_subspace(window.gram, k, tau)
    overlap = q_old.T @ cross @ q_new
    both = keep_old[:, None] & keep_new[None, :]
    square = jnp.where(both, overlap, jnp.eye(overlap.shape[0], dtype=overlap.dtype))
    cosine = _svdvals(square)[-1]
    return dict(
        change=change,
        paper=change / (jnp.asarray(lr) * jnp.asarray(grad_norm2)),
        rel=change / jnp.where(before > 0, before, jnp.nan),
        rot=jnp.sqrt(jnp.maximum(1 - jnp.minimum(cosine, 1.0) ** 2, 0.0)),
    )


def ravel(tree) -> Float[Array, " P"]:
    """A parameter (or update) pytree as one flat vector, leaves in tree order."""
    return jnp.concatenate([jnp.ravel(x) for x in jax.tree.leaves(tree)])
