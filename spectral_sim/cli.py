"""The `spectral-sim` command: list the experiments, run one (or all) into a report directory,
or print a saved report's verdict table.

A FAIL verdict is a scientific result, not an error: `run` exits 0 whatever the verdicts, and
non-zero only for usage errors (unknown experiment, bad config value), with a message.
"""

import contextlib
import dataclasses
import os
import pathlib
import re
import sys
import traceback
from collections.abc import Sequence
from types import ModuleType
from typing import TYPE_CHECKING

import experiments
from spectral_sim.report import Report, count_verdicts, counts_line, reproduction_summary

if TYPE_CHECKING:
    from spectral_sim import sweep

__all__ = ["compilation_cache_dir", "main"]

USAGE = """\
usage: spectral-sim [--debug] list [NAME ...]
       spectral-sim [--debug] run NAME [RUN OPTIONS] [--FIELD VALUE ...]
       spectral-sim [--debug] run all [RUN OPTIONS]
       spectral-sim show DIR

  list          the experiments, one line each, with the claims each one checks
                (NAME ...: only those experiments)
  run NAME      run one experiment and save its report to DIR (default results/NAME);
                every field of its Config, the sweep grid included, is a flag
                (`spectral-sim run NAME --help`)
  run all       run every experiment, each into DIR/<name> (default results/<name>), and
                write DIR/SUMMARY.md
  show DIR      print the verdict table of a saved report (also: report DIR)

  --debug       show the full traceback of an error instead of one line

run options:
  --quick               the CPU-minute version of the experiment (sets Config.quick; the
                        Config flags given keep their values)
  --out DIR             where the report goes; the sweeps keep their chunk files in DIR/sweeps
  --x64 | --no-x64      float64 for the predictors (the default: theory checks need it)
  --matmul-precision P  default | high | highest (the default): float32 matrix products on
                        GPU/TPU at full precision, or at the backend's faster default
  --devices N           run sweeps on the first N local devices (default: all)
  --chunk-budget SIZE   memory per device for one chunk of a sweep, e.g. 512M or 4G (default 2G)
  --resume              reuse the finished chunks in DIR/sweeps (the default); a sweep with
                        another config or code version there is refused
  --overwrite           discard whatever DIR/sweeps holds and compute everything
  --distributed         join a multi-process run (jax.distributed; SLURM, TPU pods and
                        Open MPI are detected), or give all three of:
  --coordinator HOST:PORT --num-processes N --process-id I
"""

RUN_OPTIONS = (
    "Run options, handled by spectral-sim itself: --quick, --out DIR (default results/NAME), "
    "--x64 | --no-x64 (default --x64), --matmul-precision default|high|highest (default highest), "
    "--devices N, --chunk-budget SIZE, --resume | --overwrite, "
    "--distributed | --coordinator HOST:PORT --num-processes N --process-id I."
)
_SIZE = re.compile(r"(\d+(?:\.\d*)?(?:e\d+)?)\s*([kmgt]?)(?:i?b)?", re.IGNORECASE)


class UsageError(Exception):
    """A mistake in the command line or the config: reported in one line, exit code 2."""


class _Exit(Exception):
    """tyro has already printed its help or error message; exit with this code."""

    def __init__(self, code: int):
        super().__init__(code)
        self.code = code


@dataclasses.dataclass
class _RunOptions:
    quick: bool = False
    out: pathlib.Path | None = None
    x64: bool = True
    matmul_precision: str = "highest"
    devices: int | None = None
    chunk_budget: float | None = None
    overwrite: bool = False
    distributed: bool = False
    coordinator: str | None = None
    num_processes: int | None = None
    process_id: int | None = None

    def sweep(self, out: pathlib.Path) -> "sweep.Options":
        from spectral_sim import sweep

        return sweep.Options(
            devices=self.devices, chunk_budget=self.chunk_budget, out=out / "sweeps",
            overwrite=self.overwrite,
        )  # fmt: skip


def _size(text: str) -> float:
    """Bytes from '2G', '512M', '1.5GiB', '1e9' (binary multiples)."""
    match = _SIZE.fullmatch(text.strip())
    if match is None or float(match[1]) <= 0:
        raise UsageError(f"--chunk-budget must be a positive size like 512M or 4G; got {text!r}")
    return float(match[1]) * 1024 ** "_kmgt".index(match[2].lower() or "_")


def _count(flag: str, text: str, low: int) -> int:
    try:
        value = int(text)
    except ValueError:
        value = low - 1
    if value < low:
        raise UsageError(f"{flag} must be an integer >= {low}; got {text!r}")
    return value


# Run options that take a value: flag -> (field, parse)
PRECISIONS = ("default", "high", "highest")


def _precision(value: str) -> str:
    if value not in PRECISIONS:
        raise UsageError(
            f"--matmul-precision must be one of {', '.join(PRECISIONS)}; got {value!r}"
        )
    return value


_VALUED = {
    "--out": ("out", pathlib.Path),
    "--matmul-precision": ("matmul_precision", _precision),
    "--devices": ("devices", lambda v: _count("--devices", v, 1)),
    "--chunk-budget": ("chunk_budget", _size),
    "--coordinator": ("coordinator", str),
    "--num-processes": ("num_processes", lambda v: _count("--num-processes", v, 1)),
    "--process-id": ("process_id", lambda v: _count("--process-id", v, 0)),
}


def compilation_cache_dir() -> pathlib.Path | None:
    """Where the CLI keeps JAX's persistent compilation cache: $SPECTRAL_SIM_CACHE, else
    $XDG_CACHE_HOME/spectral_sim/jax (~/.cache by default); None if SPECTRAL_SIM_CACHE is
    empty, "0" or "off"."""
    chosen = os.environ.get("SPECTRAL_SIM_CACHE")
    if chosen is not None:
        return None if chosen.strip().lower() in ("", "0", "off") else pathlib.Path(chosen)
    base = os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache"
    return pathlib.Path(base) / "spectral_sim" / "jax"


def _configure_jax(options: _RunOptions) -> None:
    """The entry point's numeric policy (the library never calls jax.config), jax.distributed
    for multi-process runs, and the persistent compilation cache so that a rerun does not
    recompile the same programs."""
    import jax

    jax.config.update("jax_enable_x64", options.x64)
    # float32 products at full float32 precision: GPUs (TF32) and TPUs (bfloat16 passes) round
    # them by default, well above the Monte Carlo tolerances the experiments argue for
    jax.config.update("jax_default_matmul_precision", options.matmul_precision)
    explicit = [v is not None for v in (options.coordinator, options.num_processes,
                                        options.process_id)]  # fmt: skip
    if options.distributed or any(explicit):
        if (options.distributed and any(explicit)) or not (options.distributed or all(explicit)):
            raise UsageError(
                "give either --distributed or all of --coordinator, --num-processes, --process-id"
            )
        jax.config.update("jax_cpu_collectives_implementation", "gloo")  # CPU-only clusters
        jax.distributed.initialize(
            options.coordinator, num_processes=options.num_processes,
            process_id=options.process_id,
        )  # fmt: skip
    # The user chose a cache already (e.g. JAX_COMPILATION_CACHE_DIR); flags are runtime attrs.
    if jax.config.jax_compilation_cache_dir:  # pyright: ignore[reportAttributeAccessIssue]
        return
    path = compilation_cache_dir()
    if path is None:
        return
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:  # a read-only home directory only costs compile time
        print(f"spectral-sim: compilation cache off ({error})", file=sys.stderr)
        return
    jax.config.update("jax_compilation_cache_dir", str(path))


def _headless_matplotlib() -> None:
    import matplotlib

    matplotlib.use("Agg")  # figures are only written to files; no display is needed


def _split_run_options(args: Sequence[str]) -> tuple[_RunOptions, list[str]]:
    """The options spectral-sim handles itself, and the rest (the experiment's Config flags)."""
    options, rest = _RunOptions(), []
    args = list(args)
    while args:
        arg = args.pop(0)
        flag, _, value = arg.partition("=")
        if arg == "--quick":
            options.quick = True
        elif arg in ("--x64", "--no-x64"):
            options.x64 = arg == "--x64"
        elif arg in ("--resume", "--overwrite"):
            options.overwrite = arg == "--overwrite"
        elif arg == "--distributed":
            options.distributed = True
        elif flag in _VALUED:
            if not value:
                if not args or args[0].startswith("--"):
                    raise UsageError(f"{flag} needs a value")
                value = args.pop(0)
            field, parse = _VALUED[flag]
            setattr(options, field, parse(value))
        else:
            rest.append(arg)
    return options, rest


def _where(error: BaseException) -> str:
    frame = traceback.extract_tb(error.__traceback__)[-1]
    return f"{pathlib.Path(frame.filename).name}:{frame.lineno}"


def _load(name: str) -> ModuleType:
    try:
        return experiments.load(name)
    except ValueError as error:
        raise UsageError(str(error)) from None


def _config(module: ModuleType, name: str, args: list[str], quick: bool):
    """The experiment's Config from its flags (tyro: `--field-name value`, tuples as
    space-separated values); `--quick` is applied on top."""
    import tyro

    description = f"{(module.__doc__ or name).strip()}\n\n{RUN_OPTIONS}"
    try:
        cfg = tyro.cli(
            module.Config, args=args, prog=f"spectral-sim run {name}", description=description
        )
        return dataclasses.replace(cfg, quick=True) if quick else cfg
    except SystemExit as exit_:  # tyro printed the help, or what was wrong with the flags
        raise _Exit(exit_.code if isinstance(exit_.code, int) else 2) from None
    except ValueError as error:  # raised by Config validation
        raise UsageError(f"{name}: {error}") from None


def _flagged_fields(cfg, args: list[str]) -> set[str]:
    """The Config fields named by flags on the command line (`--n-seeds 8`, `--n_seeds=8`)."""
    fields = {f.name for f in dataclasses.fields(cfg)} if dataclasses.is_dataclass(cfg) else set()
    named = {a[2:].split("=")[0].replace("-", "_") for a in args if a.startswith("--")}
    return fields & named


def _run_one(name: str, args: list[str], options: _RunOptions, out: pathlib.Path) -> Report:
    module = _load(name)
    cfg = _config(module, name, args, options.quick)
    print(f"running {name}{' (quick)' if getattr(cfg, 'quick', False) else ''} ...", flush=True)
    try:
        with experiments.explicit(_flagged_fields(cfg, args)):  # --quick keeps what was given
            report = module.run(cfg, options.sweep(out))
    except ValueError as error:  # invalid input is a ValueError naming the field
        raise UsageError(f"{name}: {error} (raised at {_where(error)})") from None
    if not isinstance(report, Report):
        raise TypeError(f"experiments.{name}.run returned {type(report).__name__}, not a Report")
    import jax

    if jax.process_index() != 0:  # a multi-process run: process 0 writes the report
        return report
    path = report.save(out)
    print(f"\n## {report.experiment}: {report.summary_line()}\n\n{report.table()}\n")
    print(f"report: {path / 'report.md'}", flush=True)
    return report


def _run(args: list[str]) -> int:
    if args and args[0] in ("-h", "--help"):
        print(USAGE)
        return 0
    if not args or args[0].startswith("-"):
        names = ", ".join(experiments.EXPERIMENTS)
        raise UsageError(f"run needs an experiment name (one of: {names}) or 'all'")
    name, (options, rest) = args[0], _split_run_options(args[1:])
    if name != "all":
        _load(name)  # an unknown name fails before jax is configured
        _configure_jax(options)
        _headless_matplotlib()
        _run_one(name, rest, options, options.out or pathlib.Path("results") / name)
        return 0
    if rest:
        raise UsageError(f"run all takes only run options (see --help); got {rest}")
    _configure_jax(options)
    _headless_matplotlib()
    root = options.out or pathlib.Path("results")
    failed, reports = [], []
    for name in experiments.EXPERIMENTS:
        try:
            reports.append(_run_one(name, [], options, root / name))
        except UsageError as error:  # report it and go on with the other experiments
            print(f"spectral-sim: error: {error}", file=sys.stderr)
            failed.append(name)
    total = counts_line(count_verdicts(c for r in reports for c in r.claims))
    ran = len(reports)
    import jax

    if jax.process_index() == 0:
        (root / "SUMMARY.md").write_text(reproduction_summary(reports), encoding="utf-8")
    print(f"\nall: {total} in {ran} experiment(s); reports under {root}")
    print(f"summary: {root / 'SUMMARY.md'}")
    if failed:
        print(f"spectral-sim: error: could not run {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def _list(args: list[str]) -> int:
    names = args or list(experiments.EXPERIMENTS)
    for name in names:
        if name not in experiments.EXPERIMENTS:
            raise UsageError(f"unknown experiment {name!r}; valid names: "
                             f"{', '.join(experiments.EXPERIMENTS)}")  # fmt: skip
    width = max(map(len, names), default=0)
    broken = 0
    for name in names:
        try:
            line, claims = experiments.describe(name), experiments.claims(name)
        except Exception as error:  # one broken module should not hide the others
            line, claims = f"(cannot import: {type(error).__name__}: {error})", {}
            broken += 1
        print(f"{name:<{width}}  {line}")
        pattern_width = max(map(len, claims), default=0)
        for pattern, what in claims.items():
            print(f"    {pattern:<{pattern_width}}  {what}")
    return 1 if broken else 0


def _report(args: list[str]) -> int:
    if len(args) != 1:
        raise UsageError("report needs exactly one directory")
    path = pathlib.Path(args[0])
    if not (path / "report.json").is_file():
        raise UsageError(f"no report.json in {path}")
    report = Report.load(path)
    print(f"## {report.experiment}: {report.summary_line()}\n\n{report.table()}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line `argv` (default: sys.argv[1:]); returns the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    args = [a for a in args if a != "--debug"]
    if not args or args[0] in ("-h", "--help", "help"):
        print(USAGE, file=sys.stdout if args else sys.stderr)
        return 0 if args else 2
    commands = {"list": _list, "run": _run, "show": _report, "report": _report}
    try:
        if args[0] not in commands:
            raise UsageError(f"unknown command {args[0]!r}; expected one of: {', '.join(commands)}")
        return commands[args[0]](args[1:])
    except UsageError as error:
        if debug:
            raise
        print(f"spectral-sim: error: {error}", file=sys.stderr)
        return 2
    except _Exit as exit_:
        return exit_.code
    except BrokenPipeError:  # the reader of stdout went away (`spectral-sim list | head`)
        with contextlib.suppress(OSError, ValueError):  # stdout may have no file descriptor
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no error at exit
        if args[0] in ("list", "show", "report"):  # it has read what it wanted: not an error
            return 0
        print("spectral-sim: error: the output pipe closed, so the run stopped; send its output "
              "to a file instead", file=sys.stderr)  # fmt: skip
        return 1
    except Exception as error:  # a bug or an environment problem: one line unless --debug
        if debug:
            raise
        print(f"spectral-sim: error: {type(error).__name__}: {error} (at {_where(error)}; rerun "
              "with --debug for the traceback)", file=sys.stderr)  # fmt: skip
        return 1


if __name__ == "__main__":
    sys.exit(main())
