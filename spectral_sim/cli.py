"""The `spectral-sim` command: list the experiments, run one (or all) into a report directory,
or print a saved report's verdict table.

A FAIL verdict is a scientific result, not an error: `run` exits 0 whatever the verdicts, and
non-zero only for usage errors (unknown experiment, bad flag or config value: one line,
`spectral-sim: error: ...`, exit code 2; `--debug` shows the traceback and tyro's full message)
or a failure of the run itself (exit code 1).
"""

import contextlib
import dataclasses
import io
import os
import pathlib
import re
import runpy
import sys
import traceback
from collections.abc import Mapping, Sequence
from types import ModuleType
from typing import Annotated, Literal

import tyro

from spectral_sim import registry, runtime, sweep, validity
from spectral_sim.checks import all_of
from spectral_sim.report import Report, count_verdicts, counts_line, reproduction_summary
from spectral_sim.runtime import compilation_cache_dir

__all__ = ["MapOptions", "RunOptions", "compilation_cache_dir", "main"]

USAGE = """\
usage: spectral-sim [--debug] list [NAME ...]
       spectral-sim [--debug] run NAME [RUN OPTIONS] [--FIELD VALUE ...]
       spectral-sim [--debug] run all [RUN OPTIONS]
       spectral-sim [--debug] map FILE [RUN OPTIONS] [--budget N] [--n-seeds N] [--seed N]
                                       [--tolerance T]
       spectral-sim show DIR

  list          the experiments, one line each, with the claims each one checks
                (NAME ...: only those experiments)
  run NAME      run one experiment and save its report to DIR (default results/NAME);
                every field of its Config, the sweep grid included, is a flag
                (`spectral-sim run NAME --help`)
  run all       run every experiment, each into DIR/<name> (default results/<name>), and
                write DIR/SUMMARY.md
  map FILE      search where a claim holds (spectral_sim.validity.search): FILE is a Python
                file defining SEARCH, a dict of the search's arguments (simulator,
                template, space, predict, observable, tolerance, ...; optional id, source,
                statement for the report); the report goes to DIR (default
                results/<FILE's stem>), each round a resumable sweep in DIR/sweeps
  show DIR      print the verdict table of a saved report (also: report DIR)

  --debug       show the full traceback of an error instead of one line

The run options (--quick, --scale paper, --out DIR, --devices N, ...): `spectral-sim run --help`.
The experiments are the modules registered in the entry-point group spectral_sim.experiments;
a package of one's own adds its experiments there.
"""

_SIZE = re.compile(r"(\d+(?:\.\d*)?(?:e\d+)?)\s*([kmgt]?)(?:i?b)?", re.IGNORECASE)
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class UsageError(Exception):
    """A mistake in the command line or the config: reported in one line, exit code 2; `detail`
    (tyro's whole message) is shown with --debug."""

    def __init__(self, message: str, detail: str = ""):
        super().__init__(message)
        self.detail = detail


class _Exit(Exception):
    """tyro has already printed its help; exit with this code."""

    def __init__(self, code: int):
        super().__init__(code)
        self.code = code


@dataclasses.dataclass
class RunOptions:
    """Run options, handled by spectral-sim itself; every other flag of `run NAME` is a field
    of the experiment's Config (`spectral-sim run NAME --help`)."""

    quick: bool = False
    """the CPU-minute version of the experiment: --scale quick"""
    scale: Literal["quick", "full", "paper"] = "full"
    """quick: CPU minutes (sets Config.quick); full: the Config's defaults, at most 30 minutes
    on 2 CPU cores; paper: the sizes of the papers the experiment tests, meant for a GPU (sets
    Config.paper). The Config flags given keep their values at every scale"""
    out: Annotated[
        pathlib.Path | None,
        tyro.conf.arg(
            metavar="DIR", help_behavior_hint="(default: results/NAME; results/ for all)"
        ),
    ] = None
    """where the report goes; the sweeps keep their chunk files in DIR/sweeps"""
    x64: bool = True
    """float64 for the predictors (the theory checks need it)"""
    matmul_precision: Annotated[str, tyro.conf.arg(metavar="|".join(runtime.PRECISIONS))] = (
        "highest"
    )
    """float32 matrix products on GPU/TPU at full precision (highest), or at the backend's
    faster default"""
    devices: Annotated[
        int | None, tyro.conf.arg(metavar="N", help_behavior_hint="(default: all)")
    ] = None
    """run sweeps on the first N local devices"""
    chunk_budget: Annotated[
        str | None, tyro.conf.arg(metavar="SIZE", help_behavior_hint="(default: 2G)")
    ] = None
    """memory per device for one chunk of a sweep, e.g. 512M or 4G"""
    overwrite: bool = False
    """discard whatever DIR/sweeps holds and compute everything; --no-overwrite (or --resume,
    the default) reuses the finished chunks, and a sweep with another config or code version
    there is refused"""
    compile: Literal["auto", "fast", "optimized"] = "auto"
    """how XLA compiles the sweeps: fast (on CPU, a fraction of the compile time, loops up to
    1.75x slower) or optimized (XLA's defaults); auto: fast at --scale quick, where compiling
    is most of the run (unless the experiment's QUICK_COMPILE says otherwise), optimized at
    full and paper scale"""
    distributed: bool = False
    """join a multi-process run (jax.distributed; SLURM, TPU pods and Open MPI are detected),
    or give all three of --coordinator, --num-processes, --process-id"""
    coordinator: Annotated[
        str | None, tyro.conf.arg(metavar="HOST:PORT", help_behavior_hint="")
    ] = None
    """the multi-process run's coordinator (with --num-processes and --process-id)"""
    num_processes: Annotated[int | None, tyro.conf.arg(metavar="N", help_behavior_hint="")] = None
    """how many processes the run has"""
    process_id: Annotated[int | None, tyro.conf.arg(metavar="I", help_behavior_hint="")] = None
    """this process's index, 0 to N - 1"""

    def check(self) -> None:
        """UsageError naming every bad option and its valid values, on one line."""
        try:
            with all_of() as check:
                check.that(not (self.quick and self.scale == "paper"), "--quick is --scale "
                           "quick; give one scale")  # fmt: skip
                check.that(self.matmul_precision in runtime.PRECISIONS, f"--matmul-precision "
                           f"must be one of {', '.join(runtime.PRECISIONS)}; got "
                           f"{self.matmul_precision!r}")  # fmt: skip
                for flag, value, low in (("--devices", self.devices, 1),
                                         ("--num-processes", self.num_processes, 1),
                                         ("--process-id", self.process_id, 0)):  # fmt: skip
                    if value is not None:
                        check.count(flag, value, low=low)
                if self.chunk_budget is not None:
                    _size(self.chunk_budget)
                given = [v is not None for v in (self.coordinator, self.num_processes,
                                                 self.process_id)]  # fmt: skip
                check.that(not (self.distributed and any(given)) and all(given) == any(given),
                           "give either --distributed or all of --coordinator, --num-processes, "
                           "--process-id")  # fmt: skip
        except ValueError as error:
            raise UsageError(str(error)) from None

    def sweep(self, out: pathlib.Path, quick_compile: sweep.Compile = "fast") -> sweep.Options:
        """The sweep options; `quick_compile` is what --compile auto means at quick scale."""
        budget = None if self.chunk_budget is None else _size(self.chunk_budget)
        quick = self.quick or self.scale == "quick"
        compile: sweep.Compile = quick_compile if quick else "optimized"
        if self.compile != "auto":
            compile = self.compile
        return sweep.Options(
            devices=self.devices, chunk_budget=budget, out=out / "sweeps",
            overwrite=self.overwrite, compile=compile,
        )  # fmt: skip

    def configure(self) -> None:
        """The numeric policy (`spectral_sim.runtime`), and jax.distributed for a multi-process
        run."""
        runtime.configure(x64=self.x64, matmul_precision=self.matmul_precision)  # pyright: ignore
        if self.distributed or self.coordinator is not None:
            import jax

            jax.config.update("jax_cpu_collectives_implementation", "gloo")  # CPU-only clusters
            jax.distributed.initialize(
                self.coordinator, num_processes=self.num_processes, process_id=self.process_id
            )


@dataclasses.dataclass
class MapOptions:
    """What `spectral-sim map FILE` may change in the file's SEARCH (the file's values
    otherwise)."""

    budget: Annotated[int | None, tyro.conf.arg(metavar="N", help_behavior_hint="")] = None
    """evaluated points (re-runs with fresh seeds count)"""
    n_seeds: Annotated[int | None, tyro.conf.arg(metavar="N", help_behavior_hint="")] = None
    """seeds per evaluation"""
    seed: Annotated[int | None, tyro.conf.arg(metavar="N", help_behavior_hint="")] = None
    """the design's and the sweeps' seed"""
    tolerance: Annotated[float | None, tyro.conf.arg(metavar="T", help_behavior_hint="")] = None
    """the claim's margin (relative unless SEARCH says relative=False)"""


def _size(text: str) -> float:
    """Bytes from '2G', '512M', '1.5GiB', '1e9' (binary multiples); ValueError otherwise."""
    match = _SIZE.fullmatch(text.strip())
    if match is None or float(match[1]) <= 0:
        raise ValueError(f"--chunk-budget must be a positive size like 512M or 4G; got {text!r}")
    return float(match[1]) * 1024 ** "_kmgt".index(match[2].lower() or "_")


def _headless_matplotlib() -> None:
    import matplotlib

    matplotlib.use("Agg")  # figures are only written to files; no display is needed


@contextlib.contextmanager
def _unwrapped(wide: bool):
    """tyro wraps its messages at the terminal width, which shutil.get_terminal_size reads from
    COLUMNS first: a wide one keeps each paragraph of an error on one line (help keeps the
    real width)."""
    before = os.environ.get("COLUMNS")
    if wide:
        os.environ["COLUMNS"] = "100000"
    try:
        yield
    finally:
        if wide:
            if before is None:
                del os.environ["COLUMNS"]
            else:
                os.environ["COLUMNS"] = before


def _one_line(box: str) -> str:
    """The message of a tyro error box on one line: its first paragraph (a prefix "Error parsing
    Config: " dropped), with the argument's usage or tyro's suggestion if it gives one."""
    text = _ANSI.sub("", box)
    rows = [line.strip().strip("│").strip() for line in text.splitlines()
            if not line.strip().startswith(("╭", "╰"))]  # fmt: skip
    if "│" not in text:  # a plain box (no UTF-8): its first row is the title
        rows = rows[next((i for i, row in enumerate(rows) if row), 0) + 1 :]
    sections: list[list[str]] = [[]]
    for row in rows:
        if len(row) >= 3 and set(row) <= set("─-"):  # a rule between sections
            sections.append([])
        elif row or sections[-1]:  # blank rows end a paragraph, except at the start
            sections[-1].append(row)
    sections = [section for section in sections if section]
    if not sections:
        return " ".join(text.split()) or "invalid arguments"
    first = sections[0]
    message = " ".join(first[: first.index("")] if "" in first else first)
    message = re.sub(r"^Error parsing [^-\s][^:]*: ", "", message)
    for section in sections[1:]:
        if section[0] == "Argument helptext:" and len(section) > 1:
            message += f" (usage: {section[1]})"
        elif section[0] == "Perhaps you meant:" and len(section) > 1:
            message += f" (perhaps you meant {section[1]})"
    return message


def _tyro(parse, *, what: str, args: Sequence[str]):
    """Run a tyro parse. Help is printed by tyro itself; an error is a UsageError of one line
    (`_one_line`), with tyro's whole message kept for --debug."""
    captured = io.StringIO()
    try:
        with contextlib.redirect_stderr(captured), _unwrapped("--help" not in args):
            result = parse()
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 2
        if code == 0:  # --help
            sys.stderr.write(captured.getvalue())
            raise _Exit(0) from None
        box = captured.getvalue()
        raise UsageError(f"{what}: {_one_line(box)}", detail=box) from None
    except ValueError as error:  # raised by a Config's own validation
        raise UsageError(f"{what}: {error}") from None
    sys.stderr.write(captured.getvalue())  # anything else tyro said (warnings)
    return result


def _split_run_options(args: Sequence[str]) -> tuple[RunOptions, list[str]]:
    """The options spectral-sim handles itself (parsed by tyro from RunOptions), and the rest
    (the experiment's Config flags)."""
    args = ["--no-overwrite" if a == "--resume" else a for a in args if a not in ("-h", "--help")]
    options, rest = _tyro(
        lambda: tyro.cli(RunOptions, args=args, return_unknown_args=True,
                         prog="spectral-sim run NAME"),
        what="run options", args=args,
    )  # fmt: skip
    options.check()
    return options, rest


def _first_line(error: BaseException) -> str:
    """An error's message on one line: its first line, and a pointer to --debug for the rest
    (a message of several lines comes from a library below spectral_sim)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    if len(lines) <= 1:
        return lines[0] if lines else type(error).__name__
    return f"{lines[0]} (more with --debug)"


def _where(error: BaseException) -> str:
    frame = traceback.extract_tb(error.__traceback__)[-1]
    return f"{pathlib.Path(frame.filename).name}:{frame.lineno}"


def _load(name: str) -> ModuleType:
    try:
        return registry.load(name)
    except ValueError as error:
        raise UsageError(str(error)) from None


def _config(module: ModuleType, name: str, args: list[str], scale: str):
    """The experiment's Config from its flags (tyro: `--field-name value`, tuples as
    space-separated values), at `scale` (sets Config.quick or Config.paper)."""
    flags = ", ".join(f"--{f.name.replace('_', '-')}" for f in dataclasses.fields(RunOptions))
    description = (f"{(module.__doc__ or name).strip()}\n\nRun options (spectral-sim run "
                   f"--help): {flags}.")  # fmt: skip
    cfg = _tyro(
        lambda: tyro.cli(
            module.Config, args=args, prog=f"spectral-sim run {name}", description=description
        ),
        what=name,
        args=args,
    )
    if scale == "full":
        return cfg
    if scale == "paper" and "paper" not in {f.name for f in dataclasses.fields(cfg)}:
        raise UsageError(f"{name} has no paper scale (its Config has no `paper` field); valid "
                         f"scales: quick, full")  # fmt: skip
    return dataclasses.replace(cfg, **{scale: True})


def _flagged_fields(cfg, args: list[str]) -> set[str]:
    """The Config fields named by flags on the command line (`--n-seeds 8`, `--n_seeds=8`)."""
    fields = {f.name for f in dataclasses.fields(cfg)} if dataclasses.is_dataclass(cfg) else set()
    named = {a[2:].split("=")[0].replace("-", "_") for a in args if a.startswith("--")}
    return fields & named


def _run_one(name: str, args: list[str], options: RunOptions, out: pathlib.Path) -> Report:
    module = _load(name)
    cfg = _config(module, name, args, "quick" if options.quick else options.scale)
    try:
        at = registry.scale(cfg)
        print(f"running {name}{'' if at == 'full' else f' ({at})'} ...", flush=True)
        with registry.explicit(_flagged_fields(cfg, args)):  # a scale keeps what was given
            quick_compile = str(getattr(module, "QUICK_COMPILE", "fast"))
            if quick_compile not in sweep.COMPILE:
                raise TypeError(f"{name}.QUICK_COMPILE must be one of {sweep.COMPILE}; got "
                                f"{quick_compile!r}")  # fmt: skip
            report = module.run(cfg, options.sweep(out, quick_compile))
    except (ValueError, TypeError) as error:  # bad input: a ValueError naming the field
        raise UsageError(f"{name}: {error}") from error  # where it was raised: --debug
    if not isinstance(report, Report):
        raise TypeError(f"experiment {name}: run returned {type(report).__name__}, not a Report")
    _publish(report, out)
    return report


def _publish(report: Report, out: pathlib.Path, notes: bool = False) -> None:
    """Save the report to `out` and print its verdict table (and its notes); in a
    multi-process run only process 0 does."""
    import jax

    if jax.process_index() != 0:
        return
    path = report.save(out)
    print(f"\n## {report.experiment}: {report.summary_line()}\n\n{report.table()}\n")
    if notes:
        print("\n".join(report.notes))
    print(f"report: {path / 'report.md'}", flush=True)


def _run(args: list[str]) -> int:
    if args and args[0] in ("-h", "--help"):
        _tyro(lambda: tyro.cli(RunOptions, args=["--help"], prog="spectral-sim run NAME"),
              what="run options", args=["--help"])  # fmt: skip
    if not args or args[0].startswith("-"):
        names = ", ".join(registry.names())
        raise UsageError(f"run needs an experiment name (one of: {names}) or 'all'")
    name = args[0]
    if name != "all":
        _load(name)  # an unknown name fails before the flags are parsed and jax is configured
    options, rest = _split_run_options(args[1:])
    if name != "all":
        if {"-h", "--help"} & set(args):
            rest.append("--help")  # the Config's help, which names the run options
        options.configure()
        _headless_matplotlib()
        _run_one(name, rest, options, options.out or pathlib.Path("results") / name)
        return 0
    if rest:
        raise UsageError(f"run all takes only run options (see --help); got {rest}")
    options.configure()
    _headless_matplotlib()
    root = options.out or pathlib.Path("results")
    failed, reports = [], []
    for name in registry.names():
        try:
            reports.append(_run_one(name, [], options, root / name))
        except UsageError as error:  # report it and go on with the other experiments
            print(f"spectral-sim: error: {_first_line(error)}", file=sys.stderr)
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


REPORT_KEYS = ("id", "source", "statement")  # SEARCH keys for the report, not the search


MAP_HELP = """Search where a claim holds (spectral_sim.validity.search) and save its report.

FILE is a Python file defining SEARCH, a dict of validity.search's arguments (simulator,
template, space, predict, observable, tolerance, and optionally steps, n_seeds, budget,
relative, seed), plus optional id, source and statement for the report's claim. The report
goes to --out DIR (default results/<FILE's stem>); each round of the search is a sweep in
DIR/sweeps, so a rerun reads the finished rounds back. The run options of `spectral-sim run`
(--out, --devices, --chunk-budget, --overwrite, --compile, --x64, ...) apply; the flags below
change SEARCH's values."""


def _map(args: list[str]) -> int:
    if args and args[0] in ("-h", "--help"):
        _tyro(lambda: tyro.cli(MapOptions, args=["--help"], prog="spectral-sim map FILE",
                               description=MAP_HELP),
              what="map options", args=["--help"])  # fmt: skip
    if not args or args[0].startswith("-"):
        raise UsageError("map needs a search file: a Python file defining SEARCH, a dict of "
                         "validity.search's arguments")  # fmt: skip
    file = pathlib.Path(args[0])
    if not file.is_file():
        raise UsageError(f"no search file {file}")
    options, rest = _split_run_options(args[1:])
    flags = _tyro(lambda: tyro.cli(MapOptions, args=rest, prog="spectral-sim map FILE"),
                  what="map options", args=rest)  # fmt: skip
    options.configure()
    _headless_matplotlib()
    search = runpy.run_path(str(file), run_name="spectral_sim_map").get("SEARCH")
    if not isinstance(search, Mapping):
        raise UsageError(f"{file} must define SEARCH, a dict of validity.search's arguments")
    given = {k: v for k, v in dataclasses.asdict(flags).items() if v is not None}
    arguments = {k: v for k, v in {**search, **given}.items() if k not in REPORT_KEYS}
    about = {k: search[k] for k in REPORT_KEYS if k in search}
    out = options.out or pathlib.Path("results") / file.stem
    try:
        found = validity.search(**arguments, options=options.sweep(out, "optimized"))
        report = found.report(**about)
    except (ValueError, TypeError) as error:  # bad SEARCH values: a ValueError naming them
        raise UsageError(f"{file.name}: {error}") from error
    _publish(report, out, notes=True)
    return 0


def _list(args: list[str]) -> int:
    registered = registry.names()
    names = args or list(registered)
    for name in names:
        if name not in registered:
            raise UsageError(f"unknown experiment {name!r}; valid names: "
                             f"{', '.join(registered)}")  # fmt: skip
    width = max(map(len, names), default=0)
    broken = 0
    for name in names:
        try:
            line, claims = registry.describe(name), registry.claims(name)
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
    commands = {"list": _list, "run": _run, "map": _map, "show": _report, "report": _report}
    try:
        if args[0] not in commands:
            raise UsageError(f"unknown command {args[0]!r}; expected one of: {', '.join(commands)}")
        return commands[args[0]](args[1:])
    except UsageError as error:
        if debug:
            if error.detail:
                print(error.detail, file=sys.stderr)
            raise
        print(f"spectral-sim: error: {_first_line(error)}", file=sys.stderr)
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
        print(f"spectral-sim: error: {type(error).__name__}: {_first_line(error)} (at "
              f"{_where(error)}; rerun with --debug for the traceback)",
              file=sys.stderr)  # fmt: skip
        return 1


if __name__ == "__main__":
    sys.exit(main())
