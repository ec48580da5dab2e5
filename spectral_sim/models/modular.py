"""Modular arithmetic a o b mod p (o in +, -, x) learned by a small flax NNX network, trained
full-batch with optax (AdamW, SGD or Muon, weight decay on or off), one optimiser step per step of
`simulate.trajectory`, with the update-Gram diagnostics of `diagnostics.gram` kept alongside
(THEORY.md §5). A fraction `train_fraction` of the p^2 pairs, drawn from the run's key, is the
training set; the rest is the test set. Everything is a pure function of (Params, State), so
seeds and traced hyperparameters vmap and sweep like every other model.

model="mlp": embed a and b (p -> width each), concatenate, one ReLU hidden layer, p logits.
model="transformer": the sequence (a, b, =) embedded (width) with learned positions, `layers`
(1 or 2) residual blocks of `heads`-head causal self-attention and a ReLU MLP (hidden), no
LayerNorm (as in the grokking transformers of Power et al. 2022 and Nanda et al. 2023), logits
read at "=". Every weight matrix is 2-d (the attention's Q, K, V and output maps are nnx.Linear),
so Muon orthogonalises all of them.

The window tracks the parameter updates (track="updates") or the gradients ("gradients"; the two
coincide up to scale only for plain SGD at a constant learning rate), of the whole model and of
each parameter group (the top-level modules: embed, hidden, out); k* and R* are read from the raw
window and from the row-centred one, which removes the common drift direction (THEORY.md §5.1).
"""

import dataclasses
import functools
from typing import Literal, NamedTuple, cast

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from spectral_sim._types import Array, Float, Key, Swept
from spectral_sim.checks import all_of
from spectral_sim.diagnostics import gram

__all__ = ["MLP", "Obs", "Params", "State", "Transformer", "data", "init", "step"]

OPS = ("+", "-", "*")
OPTIMIZERS = ("adamw", "sgd", "muon")
MODELS = ("mlp", "transformer")


def _static(default):
    return dataclasses.field(default=default, metadata=dict(static=True))


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Params:
    """p (the modulus), the operation, the network (its kind and sizes), the optimiser and the
    Gram window W are static; train_fraction, lr and weight_decay are traced. `layers` and
    `heads` are the transformer's (width must be a multiple of heads); `b2` is AdamW's
    second-moment decay (optax's default 0.999; the canonical grokking setup uses 0.98)."""

    p: int = _static(23)
    op: Literal["+", "-", "*"] = _static("+")
    model: Literal["mlp", "transformer"] = _static("mlp")
    width: int = _static(32)
    hidden: int = _static(128)
    layers: int = _static(1)
    heads: int = _static(4)
    optimizer: Literal["adamw", "sgd", "muon"] = _static("adamw")
    b2: float = _static(0.999)
    window: int = _static(10)
    track: Literal["updates", "gradients"] = _static("updates")
    train_fraction: Swept = 0.5
    lr: Swept = 1e-3
    weight_decay: Swept = 1.0

    def __post_init__(self):
        with all_of() as check:
            check.count("p", self.p, low=3)
            width = check.count("width", self.width)
            check.count("hidden", self.hidden)
            if check.one_of("model", self.model, MODELS) and self.model == "transformer":
                if check.count("layers", self.layers):
                    check.that(self.layers <= 2, f"layers must be 1 or 2; got {self.layers}")
                if check.count("heads", self.heads) and width:
                    check.that(self.width % self.heads == 0, f"width must be a multiple of heads "
                               f"({self.heads}); got {self.width}")  # fmt: skip
            check.count("window", self.window, low=3)  # the centred window has rank W - 1
            check.range("train_fraction", self.train_fraction, gt=0, lt=1)
            check.range("lr", self.lr, gt=0)
            check.range("weight_decay", self.weight_decay, ge=0)
            check.range("b2", self.b2, ge=0, lt=1)
            check.one_of("op", self.op, OPS)
            check.one_of("track", self.track, ("updates", "gradients"))
            check.one_of("optimizer", self.optimizer, OPTIMIZERS)


class MLP(nnx.Module):
    """Embeddings of a and b, concatenated, one ReLU hidden layer, p logits."""

    def __init__(self, p: int, width: int, hidden: int, *, rngs: nnx.Rngs):
        self.embed = nnx.Embed(p, width, rngs=rngs)
        self.hidden = nnx.Linear(2 * width, hidden, rngs=rngs)
        self.out = nnx.Linear(hidden, p, rngs=rngs)

    def __call__(self, a, b):
        x = jnp.concatenate([self.embed(a), self.embed(b)], axis=-1)
        return self.out(jax.nn.relu(self.hidden(x)))


class Block(nnx.Module):
    """x + attention(x), then x + MLP(x): causal multi-head self-attention with 2-d Q, K, V and
    output maps, and a ReLU MLP."""

    def __init__(self, width: int, hidden: int, heads: int, *, rngs: nnx.Rngs):
        self.heads = heads
        self.query = nnx.Linear(width, width, use_bias=False, rngs=rngs)
        self.key = nnx.Linear(width, width, use_bias=False, rngs=rngs)
        self.value = nnx.Linear(width, width, use_bias=False, rngs=rngs)
        self.mix = nnx.Linear(width, width, use_bias=False, rngs=rngs)
        self.up = nnx.Linear(width, hidden, rngs=rngs)
        self.down = nnx.Linear(hidden, width, rngs=rngs)

    def __call__(self, x):
        *batch, n, width = x.shape

        def split(y):  # (..., n, width) -> (..., heads, n, width / heads)
            return jnp.swapaxes(y.reshape(*batch, n, self.heads, width // self.heads), -2, -3)

        q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
        scores = q @ jnp.swapaxes(k, -1, -2) / jnp.sqrt(width // self.heads)
        causal = jnp.tril(jnp.ones((n, n), bool))
        attention = jax.nn.softmax(jnp.where(causal, scores, -jnp.inf), axis=-1)
        heads = jnp.swapaxes(attention @ v, -2, -3).reshape(*batch, n, width)
        x = x + self.mix(heads)
        return x + self.down(jax.nn.relu(self.up(x)))


class Transformer(nnx.Module):
    """Tokens (a, b, =) (vocabulary p + 1) with learned positions, 1-2 Blocks, p logits read at
    the last position; a and b are 1-d arrays of pairs."""

    def __init__(self, p: int, width: int, hidden: int, layers: int, heads: int, *, rngs):
        self.embed = nnx.Embed(p + 1, width, rngs=rngs)
        self.position = nnx.Param(0.02 * jax.random.normal(rngs.params(), (3, width), jnp.float32))
        self.layer1 = Block(width, hidden, heads, rngs=rngs)
        self.layer2 = Block(width, hidden, heads, rngs=rngs) if layers == 2 else None
        self.out = nnx.Linear(width, p, rngs=rngs)
        self.p = p

    def __call__(self, a, b):
        tokens = jnp.stack([a, b, jnp.full_like(a, self.p)], axis=-1)
        x = self.embed(tokens) + self.position[...][None]
        x = self.layer1(x)
        if self.layer2 is not None:
            x = self.layer2(x)
        return self.out(x[..., -1, :])


def _network(params: "Params", rngs: nnx.Rngs) -> nnx.Module:
    if params.model == "mlp":
        return MLP(params.p, params.width, params.hidden, rngs=rngs)
    sizes = (params.p, params.width, params.hidden, params.layers, params.heads)
    return Transformer(*sizes, rngs=rngs)


class State(NamedTuple):
    """weights: the network's nnx.State; opt: the optimiser state; train: 1 for training pairs;
    window: the update-Gram window of the whole model; groups: one per parameter group; t: steps
    done."""

    weights: nnx.State
    opt: optax.OptState
    train: Float[Array, " pairs"]
    window: gram.Window
    groups: dict[str, gram.Window]
    t: Array


class Obs(NamedTuple):
    """Train and test loss and accuracy after the step; the window's k* (1-based), gap ratio R*
    and Marchenko-Pastur significance, raw and row-centred; the paper's A, A_rel and A_rot of
    the step (THEORY.md §5.4; NaN until the window is full); the update norm; k* and R* of each
    parameter group, raw and centred."""

    train_loss: Float[Array, ""]
    test_loss: Float[Array, ""]
    train_accuracy: Float[Array, ""]
    test_accuracy: Float[Array, ""]
    k_star: Array
    gap_ratio: Float[Array, ""]
    significant: Array
    centred_k_star: Array
    centred_gap_ratio: Float[Array, ""]
    centred_significant: Array
    adiabatic: Float[Array, ""]
    adiabatic_rel: Float[Array, ""]
    adiabatic_rot: Float[Array, ""]
    update_norm: Float[Array, ""]
    group_k_star: dict[str, Array]
    group_gap_ratio: dict[str, Float[Array, ""]]
    group_centred_k_star: dict[str, Array]
    group_centred_gap_ratio: dict[str, Float[Array, ""]]


def data(params: Params) -> tuple[Array, Array, Array]:
    """All p^2 pairs (a, b) and their labels a o b mod p."""
    a, b = (x.ravel() for x in jnp.meshgrid(jnp.arange(params.p), jnp.arange(params.p),
                                            indexing="ij"))  # fmt: skip
    labels = {"+": a + b, "-": a - b, "*": a * b}[params.op] % params.p
    return a, b, labels


@functools.cache
def _graphdef(architecture: tuple):
    params = Params(**dict(architecture))
    return nnx.split(nnx.eval_shape(lambda: _network(params, nnx.Rngs(0))))[0]


def _architecture(params: Params) -> tuple:
    """The static fields that shape the network (hashable: the graphdef cache's key)."""
    names = ("p", "model", "width", "hidden", "layers", "heads")
    return tuple((name, getattr(params, name)) for name in names)


def _optimizer(params: Params) -> optax.GradientTransformation:
    # float32 like the network: a float64 lr (traced, under x64) would change the rounding.
    lr, decay = (jnp.asarray(x, jnp.float32) for x in (params.lr, params.weight_decay))
    if params.optimizer == "adamw":
        return optax.adamw(lr, b2=params.b2, weight_decay=decay)
    if params.optimizer == "sgd":
        return optax.chain(optax.add_decayed_weights(decay), optax.sgd(lr))
    return optax.contrib.muon(lr, weight_decay=decay, adam_weight_decay=decay)


def _losses(params: Params, weights, train):
    """(mean train loss, (train loss, test loss, train accuracy, test accuracy))."""
    a, b, labels = data(params)
    logits = nnx.merge(_graphdef(_architecture(params)), weights)(a, b)
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
    right = (jnp.argmax(logits, -1) == labels).astype(loss.dtype)
    test = 1 - train

    def mean(x, mask):
        return jnp.sum(x * mask) / jnp.sum(mask)

    stats = (mean(loss, train), mean(loss, test), mean(right, train), mean(right, test))
    return stats[0], stats


def _size(weights) -> int:
    return sum(x.size for x in jax.tree.leaves(weights))


def _groups(tree) -> dict[str, object]:
    """The parameter groups: the top-level modules (and parameters) of the network."""
    return {str(name): tree[name] for name in tree}


def init(params: Params, key: Key[Array, ""]) -> State:
    """Weights from the key, a train split of round(train_fraction p^2) pairs, an empty window."""
    k_model, k_split = jax.random.split(key)
    weights = nnx.split(_network(params, nnx.Rngs(k_model)))[1]
    pairs = params.p**2
    rank = jnp.argsort(jax.random.uniform(k_split, (pairs,), jnp.float32))
    train = (rank < jnp.round(params.train_fraction * pairs)).astype(jnp.float32)
    window = gram.init(params.window, _size(weights), jnp.float32)
    groups = {
        k: gram.init(params.window, _size(v), jnp.float32) for k, v in _groups(weights).items()
    }
    opt = _optimizer(params).init(weights)
    return State(weights, opt, train, window, groups, jnp.zeros((), jnp.int32))


def step(params: Params, state: State, key: Key[Array, ""] | None) -> tuple[State, Obs]:
    """One full-batch optimiser step; its update enters the Gram window."""
    del key
    grads = jax.grad(lambda w: _losses(params, w, state.train)[0])(state.weights)
    updates, opt = _optimizer(params).update(grads, state.opt, state.weights)
    weights = cast(nnx.State, optax.apply_updates(state.weights, updates))
    flat_updates, flat_grads = gram.ravel(updates), gram.ravel(grads)
    tracked, flat = (updates, flat_updates) if params.track == "updates" else (grads, flat_grads)
    window = gram.push(state.window, flat)
    groups = {k: gram.push(state.groups[k], gram.ravel(v)) for k, v in _groups(tracked).items()}

    def edges(w: gram.Window) -> tuple[gram.Edge, gram.Edge]:
        size = w.updates.shape[1]
        P = size if size > params.window else None
        raw = gram.spectral_edge_from_gram(w.gram, P=P)
        return raw, gram.spectral_edge_from_gram(gram.centred(w.gram), P=P, centred=True)

    edge, centred = edges(window)
    group_edges = {k: edges(w) for k, w in groups.items()}
    full = window.count > params.window
    change = gram.adiabatic(window, lr=params.lr, grad_norm2=flat_grads @ flat_grads)
    _, (train_loss, test_loss, train_acc, test_acc) = _losses(params, weights, state.train)
    nan = jnp.asarray(jnp.nan, train_loss.dtype)
    obs = Obs(
        train_loss, test_loss, train_acc, test_acc, edge.k_star, edge.gap_ratio,
        edge.significant, centred.k_star, centred.gap_ratio, centred.significant,
        jnp.where(full, change["paper"], nan), jnp.where(full, change["rel"], nan),
        jnp.where(full, change["rot"], nan), jnp.linalg.norm(flat_updates),
        {k: e[0].k_star for k, e in group_edges.items()},
        {k: e[0].gap_ratio for k, e in group_edges.items()},
        {k: e[1].k_star for k, e in group_edges.items()},
        {k: e[1].gap_ratio for k, e in group_edges.items()},
    )  # fmt: skip
    return State(weights, opt, state.train, window, groups, state.t + 1), obs
