"""Compile counts of the experiments: per experiment, the wall time of its `--quick` run, how
many XLA programs it compiles and the seconds spent compiling them, each run in a fresh process
from an empty persistent compilation cache (cold), as `spectral-sim run NAME --quick` runs it,
then again with the cache it filled (warm, the rerun of `make run`).

`python -m benchmarks.compiles [--quick] [NAME ...]`: readable lines, then one JSON object (the
last line); a full run merges it into benchmarks/results/<machine>.json. --quick counts only
QUICK_SUBSET. Ratios: compile seconds / wall (target <= MAX_COMPILE_SHARE) and compiles /
MAX_COMPILES, and the warm rerun's compile seconds / wall (target < MAX_WARM_SHARE).

`counting()` is the counter itself, shared with the experiments' compile budgets in the test
suite (tests/conftest.py):

    with counting() as compiles:
        run(cfg)
    compiles.count, compiles.seconds, compiles.names  # XLA programs, seconds, per function
"""

import argparse
import collections
import contextlib
import dataclasses
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator

import jax

from benchmarks._common import environment, finish, publish

# JAX reports each XLA compilation (a program built from HLO, not one found in an in-memory
# cache) as one duration event of this name, with the jitted function's name.
BACKEND_COMPILE = "/jax/core/compile/backend_compile_duration"
# Tracing to a jaxpr and lowering it to StableHLO: Python time before XLA sees the program.
TRACE_EVENTS = (
    "/jax/core/compile/jaxpr_trace_duration", "/jax/core/compile/jaxpr_to_mlir_module_duration",
)  # fmt: skip
# The targets for every experiment's --quick run (issue 23), cold, on 2 CPU cores: compiling
# takes at most this share of the wall time, and at most this many programs are compiled.
MAX_COMPILE_SHARE = 0.25
MAX_COMPILES = 40
# A rerun with the persistent compilation cache warm (`make run` twice) compiles for less than
# this share of its wall time, summed over the experiments.
MAX_WARM_SHARE = 0.10
# The smoke run (--quick): two experiments of well under a minute each.
QUICK_SUBSET = ("learning_curves", "compression")
TOP = 10  # functions listed per experiment in the JSON (most programs first)


@dataclasses.dataclass
class Compiles:
    """What was compiled inside a `counting()` block."""

    count: int = 0  # XLA compilations
    seconds: float = 0.0  # in XLA's compiler
    trace_seconds: float = 0.0  # tracing and lowering (Python)
    names: collections.Counter = dataclasses.field(default_factory=collections.Counter)


@contextlib.contextmanager
def counting() -> Iterator[Compiles]:
    """Count the XLA compilations in the block (jax.monitoring's duration events). A program
    found in JAX's in-memory caches is not compiled again and not counted; one read from the
    persistent compilation cache is still counted (turn the cache off to measure cold)."""
    compiles = Compiles()

    def listen(event: str, seconds: float, **kwargs) -> None:
        if event == BACKEND_COMPILE:
            compiles.count += 1
            compiles.seconds += seconds
            compiles.names[str(kwargs.get("fun_name", "?"))] += 1
        elif event in TRACE_EVENTS:
            compiles.trace_seconds += seconds

    jax.monitoring.register_event_duration_secs_listener(listen)
    try:
        yield compiles
    finally:
        jax.monitoring.unregister_event_duration_listener(listen)


def _one(name: str) -> dict:
    """`spectral-sim run NAME --quick` in this process, counted (the child of `_measure`)."""
    from spectral_sim import cli

    with tempfile.TemporaryDirectory() as out, counting() as compiles:
        start = time.perf_counter()
        code = cli.main(["run", name, "--quick", "--out", out])
        wall = time.perf_counter() - start
    if code != 0:
        raise SystemExit(f"spectral-sim run {name} --quick exited with {code}")
    return dict(experiment=name, wall_seconds=wall, compiles=compiles.count,
                compile_seconds=compiles.seconds, trace_seconds=compiles.trace_seconds,
                by_function=dict(compiles.names.most_common(TOP)))  # fmt: skip


def _measure(name: str, cache: str) -> dict:
    """One experiment's counts from a fresh process: nothing compiled in it before; `cache` is
    the persistent compilation cache directory it uses (as the CLI does by default)."""
    dropped = (
        "XLA_FLAGS",
        "JAX_COMPILATION_CACHE_DIR",
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS",
    )
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    env.update(SPECTRAL_SIM_CACHE=cache)
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.compiles", "--child", name],
        cwd=pathlib.Path(__file__).parent.parent, env=env, capture_output=True, text=True,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"counting {name} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.splitlines()[-1])


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"only {', '.join(QUICK_SUBSET)}")
    parser.add_argument("--child", metavar="NAME", help=argparse.SUPPRESS)
    parser.add_argument("names", nargs="*", help="experiments (default: all)")
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(_one(args.child)), flush=True)
        return []
    from spectral_sim import registry

    names = args.names or (QUICK_SUBSET if args.quick else registry.names())
    rows = []
    print(f"{'experiment':<20} {'wall s':>7} {'compiles':>8} {'compile s':>9} {'share':>6}"
          f" {'rerun s':>7} {'share':>6}")  # fmt: skip
    for name in names:
        with tempfile.TemporaryDirectory() as cache:
            row = _measure(name, cache)  # cold: an empty cache, filled as it goes
            rerun = _measure(name, cache)  # warm: the same run again, as `make run` twice
        row.update(compile_share=row["compile_seconds"] / row["wall_seconds"],
                   compiles_per_budget=row["compiles"] / MAX_COMPILES,
                   warm_wall_seconds=rerun["wall_seconds"],
                   warm_compile_seconds=rerun["compile_seconds"],
                   warm_compile_share=rerun["compile_seconds"] / rerun["wall_seconds"])  # fmt: skip
        print(f"{name:<20} {row['wall_seconds']:7.1f} {row['compiles']:8d} "
              f"{row['compile_seconds']:9.1f} {row['compile_share']:6.0%} "
              f"{rerun['wall_seconds']:7.1f} {row['warm_compile_share']:6.0%}",
              flush=True)  # fmt: skip
        rows.append(row)
    worst = max(rows, key=lambda r: r["compile_share"])
    most = max(rows, key=lambda r: r["compiles"])
    warm = sum(r["warm_compile_seconds"] for r in rows) / sum(r["warm_wall_seconds"] for r in rows)
    print(f"largest compile share {worst['compile_share']:.0%} ({worst['experiment']}; target "
          f"<= {MAX_COMPILE_SHARE:.0%}); most compiles {most['compiles']} "
          f"({most['experiment']}; target <= {MAX_COMPILES}); rerun with a warm cache: "
          f"{warm:.0%} compiling (target < {MAX_WARM_SHARE:.0%})")  # fmt: skip
    result = dict(
        benchmark="compiles", experiments=rows,
        max_compile_share=worst["compile_share"], max_compile_share_target=MAX_COMPILE_SHARE,
        max_compiles_per_budget=most["compiles"] / MAX_COMPILES, max_compiles_target=MAX_COMPILES,
        warm_compile_share=warm, warm_compile_share_target=MAX_WARM_SHARE,
        quick=args.quick, **environment(),
    )  # fmt: skip
    publish(result)
    if args.names and not args.quick:
        print("a subset of the experiments: results file not updated", file=sys.stderr)
    else:
        finish([result], args.quick)
    return [result]


if __name__ == "__main__":
    main()
