"""The update-Gram diagnostics' cost inside a training step, and vmapped training throughput.

1. Overhead: a full-batch SGD step of a two-layer MLP with P parameters (hidden = input width
   h = sqrt(P / 2), batch 64, float32), 20 steps in one lax.scan with and without
   `diagnostics.gram.push` of each update into a W = 10 window (plus the k* read-out), for P
   from 1e4 to 1e7; reported as the extra time per step over the plain step.
2. Throughput: `models.modular` (p = 23, AdamW, W = 10 window with every read-out), the MLP and
   the 1-layer transformer, vmapped over 16 networks: networks x steps per second.

`python -m benchmarks.spectral_edge [--quick]`: readable lines, then one JSON object as the last
line; a full run merges it into benchmarks/results/<machine>.json.
"""

import argparse
import math

import jax
import jax.numpy as jnp

from benchmarks._common import best_of, environment, finish, publish
from spectral_sim import runtime, simulate
from spectral_sim.diagnostics import gram
from spectral_sim.models import modular

W, BATCH, LR, STEPS = 10, 64, 1e-3, 20


def _overhead(P: int, repeats: int) -> dict:
    """Seconds per step of the plain and the diagnosed step, for an MLP of about P parameters."""
    h = max(4, round(math.sqrt(P / 2)))
    k1, k2, k3 = jax.random.split(jax.random.key(0), 3)
    weights = dict(
        w1=jax.random.normal(k1, (h, h)) / h**0.5, w2=jax.random.normal(k2, (h, h)) / h**0.5
    )
    x = jax.random.normal(k3, (BATCH, h))
    y = jnp.zeros((BATCH, h))
    n_params = 2 * h * h

    def loss(w):
        return jnp.mean((jnp.tanh(x @ w["w1"]) @ w["w2"] - y) ** 2)

    def plain(w):
        g = jax.grad(loss)(w)
        return jax.tree.map(lambda a, b: a - LR * b, w, g)

    def diagnosed(w, window):
        new = plain(w)
        window = gram.push(window, gram.ravel(jax.tree.map(jnp.subtract, new, w)))
        return new, window, gram.spectral_edge_from_gram(window.gram).k_star

    # A training loop: STEPS steps in one lax.scan, so the window is updated in place.
    plain_loop = jax.jit(lambda w: jax.lax.scan(lambda c, _: (plain(c), None), w, length=STEPS)[0])

    def diagnosed_body(carry, _):
        w, window = carry
        w, window, k_star = diagnosed(w, window)
        return (w, window), k_star

    diagnosed_loop = jax.jit(
        lambda w, window: jax.lax.scan(diagnosed_body, (w, window), None, length=STEPS)
    )
    window = gram.init(W, n_params)
    t_plain = best_of(lambda: jax.block_until_ready(plain_loop(weights)), repeats=repeats) / STEPS
    t_diag = (
        best_of(lambda: jax.block_until_ready(diagnosed_loop(weights, window)), repeats=repeats)
        / STEPS
    )
    return dict(P=n_params, hidden=h, step_seconds=t_plain, diagnosed_seconds=t_diag,
                overhead=t_diag / t_plain - 1)  # fmt: skip


def _throughput(networks: int, steps: int, model: str = "mlp") -> dict:
    params = modular.Params(p=23, model=model, width=32, hidden=128, window=W, lr=1e-3,
                            weight_decay=1.0)  # pyright: ignore[reportArgumentType]  # fmt: skip

    def train(key):
        return simulate.trajectory(modular, params, key, n_records=1, every=steps)[1].test_accuracy

    call = jax.jit(jax.vmap(train))
    keys = jax.random.split(jax.random.key(1), networks)
    seconds = best_of(lambda: jax.block_until_ready(call(keys)), repeats=2)
    return dict(model=model, networks=networks, steps=steps, seconds=seconds,
                network_steps_per_second=networks * steps / seconds)  # fmt: skip


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="P up to 1e5, 4 networks x 20 steps")
    args = parser.parse_args(argv)
    sizes = (10**4, 10**5) if args.quick else (10**4, 10**5, 10**6, 10**7)
    rows = [_overhead(P, repeats=3 if args.quick else 5) for P in sizes]
    print(f"update-Gram diagnostics (W = {W}) on a full-batch MLP step (batch {BATCH}, float32):")
    for r in rows:
        print(f"  P = {r['P']:>9,}: step {1e3 * r['step_seconds']:8.2f} ms, with push + k* "
              f"{1e3 * r['diagnosed_seconds']:8.2f} ms: overhead {r['overhead']:+.1%}")  # fmt: skip
    models = ("mlp",) if args.quick else ("mlp", "transformer")
    flows = [_throughput(*((4, 20) if args.quick else (16, 500)), model) for model in models]
    for flow in flows:
        rate = flow["network_steps_per_second"]
        print(
            f"models.modular ({flow['model']}) vmapped: {flow['networks']} networks x "
            f"{flow['steps']} steps in {flow['seconds']:.2f} s = {rate:.0f} network-steps/s"
        )
    out = dict(
        benchmark="spectral_edge", window=W, overhead=rows, throughput=flows, quick=args.quick,
        **environment(),
    )  # fmt: skip
    publish(out)
    finish([out], args.quick)
    return out


if __name__ == "__main__":
    # float32 sweeps as users run them; no compilation cache, so compile times are measured
    runtime.configure(x64=False, compilation_cache=False)
    main()
