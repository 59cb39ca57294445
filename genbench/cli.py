"""The ``genbench`` command: run, plugins, show, report, suites, stats, export.

Exit codes: 0 every cell finished, 1 some cell failed, 2 a user error (one line on stderr, no traceback
unless --debug).
"""

from __future__ import annotations

import argparse
import shlex
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from genbench.api import run_request
from genbench.checkpoints import export_cell
from genbench.config import (
    DEVICES,
    TRACKER_EXAMPLE,
    RunRequest,
    check_run_name,
    parse_assignments,
    parse_names,
    parse_seeds,
)
from genbench.executors import SERIAL, STORAGE_MODES, ExecutionOptions
from genbench.plugins import EXECUTOR, KINDS, Registry, load_plugins
from genbench.report import report_command
from genbench.store import DamagedFileWarning, format_table, load_results
from genbench.suites import drop_unused_suite_options, layered_request, layers_set, load_suite, suites_table
from genbench.text import terminal_safe
from genbench.types import GenbenchError, OptionGroup, PluginError

if TYPE_CHECKING:
    import pandas as pd

EXIT_OK, EXIT_FAILED_CELLS, EXIT_USER_ERROR = 0, 1, 2


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line and exit 2, like every other user error."""

    def error(self, message: str) -> NoReturn:
        raise GenbenchError(f"{message} (see {self.prog} --help)")


def build_parser(registry: Registry | None = None) -> tuple[argparse.ArgumentParser, list[str]]:
    """The parser, and the dests of the options that the registry's plugins add to ``genbench run``."""
    parser = OneLineParser(prog="genbench", description="Benchmark generative models on equal terms.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)

    run = commands.add_parser("run", help="train or load models, evaluate metrics, write a results table")
    run.add_argument("--models", help="comma-separated model names (default: vae,gan,pixelcnn)")
    run.add_argument("--metrics", help="comma-separated metric names (default: every installed metric)")
    run.add_argument("--dataset", help="data set name (default: digits, shipped with scikit-learn)")
    run.add_argument("--data-root", type=Path, help="folder holding the data set's files")
    run.add_argument("--download", action="store_true", default=None, help="download the data set if missing")
    run.add_argument("--binarize", action="store_true", default=None, help="use the 2-level version of the data")
    run.add_argument("--seeds", help="comma-separated seeds (default: 0)")
    run.add_argument("--epochs", type=_positive_int, help="override every model's number of epochs")
    run.add_argument("--device", choices=DEVICES, help="where to train and evaluate (default: auto)")
    run.add_argument("--results-dir", type=Path, help="where runs are written (default: ./results)")
    run.add_argument("--name", help="run directory name (default: from data set and models, so reruns resume)")
    run.add_argument("--config", type=Path, help="a suite file (TOML); command-line flags override it")
    run.add_argument(
        "--suite", metavar="NAME", help="a packaged suite (see genbench suites); --config and flags override it"
    )
    run.add_argument(
        "--rerun",
        nargs="?",
        const="",
        metavar="MODELS",
        help="retrain and evaluate again, replacing the run's earlier records and checkpoints: every cell, or "
        "only the cells of the comma-separated MODELS (default: reuse finished cells)",
    )
    run.add_argument("-p", dest="plugins", action="append", default=[], metavar="MODULE", help="load a plugin module")
    run.add_argument(
        "--log", metavar="TRACKERS", help="comma-separated trackers to log to, e.g. tensorboard,mlflow (see README)"
    )
    add_bring_your_own_options(run)
    add_execution_options(run, registry)
    run.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    added = OptionGroup(run.add_argument_group("options added by plugins"))
    if registry is not None:
        registry.pm.hook.genbench_addoption(options=added)

    plugins = commands.add_parser("plugins", help="list installed plugins and what they provide")
    plugins.add_argument(
        "-p", dest="plugins", action="append", default=[], metavar="MODULE", help="load a plugin module"
    )
    _add_check_parser(plugins)

    report = commands.add_parser("report", help="aggregate runs over seeds into leaderboard.md and leaderboard.html")
    report.add_argument(
        "paths", nargs="+", type=Path, metavar="PATH", help="run directories (results/<run>) or folders of them"
    )
    report.add_argument(
        "--out", type=Path, help="where to write leaderboard.md|html (default: the one PATH, else their common folder)"
    )

    show = commands.add_parser("show", help="print the results table of a run directory")
    show.add_argument("path", type=Path, help="a run directory (results/<run>) or its results.csv")

    suites = commands.add_parser("suites", help="list the packaged suites, or print one suite's file")
    suites.add_argument("name", nargs="?", metavar="NAME", help="print this suite's TOML file")
    _add_stats_parser(commands, registry)

    export = commands.add_parser("export", help="write a trained cell's weights as safetensors + a JSON sidecar")
    export.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a run directory (results/<run>)")
    export.add_argument("--cell", required=True, metavar="ID", help="the cell id (its file name under cells/)")
    export.add_argument(
        "--out", required=True, type=Path, metavar="PATH", help="where to write, ending in .safetensors"
    )
    export.add_argument("--force", action="store_true", help="overwrite --out and its sidecar if they exist")
    return parser, added.dests


def _add_check_parser(plugins: argparse.ArgumentParser) -> None:
    """``genbench plugins check NAME``: the conformance checks of genbench.testing, one line each."""
    actions = plugins.add_subparsers(dest="plugins_action", metavar="check", parser_class=OneLineParser)
    check = actions.add_parser("check", help="run the conformance checks (genbench.testing) on an installed plugin")
    check.add_argument("name", metavar="NAME", help="a model, metric, data set or feature extractor")
    check.add_argument("--data-root", type=Path, help="folder holding a data set's files")
    check.add_argument("--device", choices=DEVICES, default="cpu", help="where to check (default: cpu)")
    check.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an option of the plugin's config or one a plugin adds to run (a TOML value, else text); repeatable",
    )
    check.add_argument(
        "-p", dest="check_plugins", action="append", default=[], metavar="MODULE", help=argparse.SUPPRESS
    )


def command_check(args: argparse.Namespace, registry: Registry) -> int:
    """Every check of the plugin called NAME: PASS, FAIL or SKIP and what was seen; exit 1 on a failure."""
    import tempfile

    from genbench.runner import resolve_device
    from genbench.testing import FAIL, checks_for
    from genbench.types import DatasetOptions

    device = str(resolve_device(args.device))
    options = check_options(args.option)
    with tempfile.TemporaryDirectory(prefix="genbench-check-") as cache:
        checks = checks_for(
            args.name,
            registry,
            model_options=options,
            metric_options=options,
            plugin_options=options,
            dataset_options=DatasetOptions(root=args.data_root),
            device=device,
            cache_dir=Path(cache),
        )
        outcomes = []
        for check in checks:
            outcomes.append(check.outcome())
            print(terminal_safe(outcomes[-1].line()), flush=True)
    failed = sum(outcome.status == FAIL for outcome in outcomes)
    print(f"{len(outcomes)} checks: {failed} failed, {sum(o.status == 'skip' for o in outcomes)} skipped")
    return EXIT_FAILED_CELLS if failed else EXIT_OK


def check_options(assignments: Sequence[str]) -> dict[str, Any]:
    """``--option KEY=VALUE`` pairs; a value is read as TOML (``32``, ``true``, ``"x"``) and otherwise as text."""
    import tomllib

    options: dict[str, Any] = {}
    for assignment in assignments:
        key, equals, text = assignment.partition("=")
        if not equals or not key.strip():
            raise GenbenchError(f"--option {assignment!r} is malformed; write KEY=VALUE, e.g. --option hidden=32")
        try:
            options[key.strip()] = tomllib.loads(f"value = {text}")["value"]
        except tomllib.TOMLDecodeError:
            options[key.strip()] = text
    return options


def _add_stats_parser(commands: argparse._SubParsersAction[OneLineParser], registry: Registry | None) -> None:
    stats = commands.add_parser(
        "stats", help="write FID reference statistics (mu, sigma) of a data set's split in pytorch-fid's .npz layout"
    )
    stats.add_argument("--dataset", required=True, help="data set name, e.g. cifar10")
    stats.add_argument("--split", choices=("train", "test"), default="train", help="which split (default: train)")
    stats.add_argument("--out", type=Path, required=True, help="the .npz file to write (never overwritten)")
    stats.add_argument("--extractor", help="feature extractor (default: fid's: classifier if labelled, else inception)")
    stats.add_argument("--data-root", type=Path, help="folder holding the data set's files")
    stats.add_argument("--download", action="store_true", help="download the data set if missing")
    stats.add_argument("--binarize", action="store_true", help="use the 2-level version of the data")
    stats.add_argument("--device", choices=DEVICES, default="auto", help="where to extract features (default: auto)")
    stats.add_argument("--results-dir", type=Path, default=Path("results"), help="its .cache holds the features")
    stats.add_argument("-p", dest="plugins", action="append", default=[], metavar="MODULE", help="load a plugin module")
    added = OptionGroup(stats.add_argument_group("options added by plugins"))
    if registry is not None:
        registry.pm.hook.genbench_addoption(options=added)
    stats.set_defaults(stats_plugin_dests=added.dests)


def add_bring_your_own_options(run: argparse.ArgumentParser) -> None:
    """Models made elsewhere: weights to load instead of training, images to evaluate as a model."""
    run.add_argument(
        "--checkpoint",
        action="append",
        default=[],
        metavar="MODEL=PATH",
        help="evaluate MODEL with the weights in a safetensors file instead of training it (repeatable)",
    )
    run.add_argument(
        "--sample-set",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="evaluate the images in an .npz or a PNG/JPEG folder as a model called NAME (repeatable)",
    )


def add_execution_options(run: argparse.ArgumentParser, registry: Registry | None) -> None:
    """How the cells run (never what they compute): the executor, and each installed executor's own options."""
    run.add_argument(
        "--executor", default=SERIAL, metavar="NAME", help="what runs the cells: serial (default), local, ray, ..."
    )
    run.add_argument(
        "--retries",
        type=int,
        default=1,
        metavar="N",
        help="runs again a cell whose worker died (killed, out of memory, a lost node) up to N times (default: 1)",
    )
    run.add_argument(
        "--worker-storage",
        choices=STORAGE_MODES,
        default="auto",
        help="how workers reach the results: shared (they write under --results-dir), copy (checkpoints and caches "
        "travel with each task and back) or auto (shared where a worker sees --results-dir; default)",
    )
    owners: dict[str, dict[str, Any]] = {}
    for name in registry.names(EXECUTOR) if registry is not None else []:
        spec = registry.executor(name) if registry is not None else None
        if spec is None or spec.add_options is None:
            continue
        group = OptionGroup(run.add_argument_group(f"options of executor {name}"))
        try:
            spec.add_options(group)
        except argparse.ArgumentError as error:
            raise PluginError(f"executor {name!r} adds an option another one has: {error}") from None
        owners[name] = {dest: run.get_default(dest) for dest in group.dests}
    run.set_defaults(executor_option_defaults=owners)


def execution_from_args(args: argparse.Namespace) -> ExecutionOptions:
    """The executor and the values of its options; an option of another executor is refused by name."""
    owners: dict[str, dict[str, Any]] = getattr(args, "executor_option_defaults", {})
    options = {}
    for name, defaults in owners.items():
        for dest, default in defaults.items():
            value = getattr(args, dest)
            if name == args.executor:
                options[dest] = value
            elif value != default:
                flag = "--" + dest.replace("_", "-")
                raise GenbenchError(f"{flag} is an option of executor {name!r}; add --executor {name}")
    return ExecutionOptions(args.executor, options, args.retries, args.worker_storage)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def prescan_plugins(argv: Sequence[str]) -> list[str]:
    """The -p modules, found before parsing, because plugins may add options to the parser."""
    modules = [argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg == "-p"]
    return modules + [arg[2:] for arg in argv if arg.startswith("-p") and len(arg) > 2]


def request_from_args(args: argparse.Namespace, plugin_dests: Sequence[str] = ()) -> RunRequest:
    """Defaults < packaged suite < suite file < command line."""
    request = layered_request(args.suite, args.config)
    if args.models is not None:
        request.models = parse_names(args.models, "--models")
    if args.metrics is not None:
        request.metrics = parse_names(args.metrics, "--metrics")
    if args.seeds is not None:
        request.seeds = parse_seeds(args.seeds)
    if args.name is not None:
        check_run_name(args.name)
    for flag in ("dataset", "data_root", "download", "binarize", "epochs", "device", "results_dir", "name"):
        value = getattr(args, flag)
        if value is not None:
            setattr(request, flag, value)
    if args.rerun is not None:
        request.rerun = parse_names(args.rerun, "--rerun") if args.rerun else []
    request.plugins = list(dict.fromkeys([*request.plugins, *args.plugins]))
    if args.log is not None:
        request.log = parse_names(args.log, "--log", TRACKER_EXAMPLE)
    request.checkpoints.update(parse_assignments(args.checkpoint, "--checkpoint", "vae=vae.safetensors"))
    request.sample_sets.update(parse_assignments(args.sample_set, "--sample-set", "mygan=samples.npz"))
    if request.sample_sets and args.models is None and not layers_set("models", args.suite, args.config):
        request.models = []  # sample sets alone, unless models are named too
    drop_unused_suite_options(request, args.suite, args.config)
    request.plugin_options = {dest: getattr(args, dest) for dest in plugin_dests if getattr(args, dest) is not None}
    return request


def command_run(args: argparse.Namespace, argv: Sequence[str], registry: Registry, dests: Sequence[str]) -> int:
    request = request_from_args(args, dests)
    if set(request.plugins) - set(prescan_plugins(argv)):
        registry = load_plugins(request.plugins)  # the suite file names plugins of its own
    frame = run_request(
        request,
        registry=registry,
        progress=sys.stderr.isatty(),
        command=["genbench", *argv],
        echo=_echo,
        execution=execution_from_args(args),
    )
    print(format_table(terminal_safe_frame(frame)))
    print(f"\nresults: {terminal_safe(frame.attrs['run_dir'])}")
    return EXIT_OK if (frame["status"] == "ok").all() else EXIT_FAILED_CELLS


def command_plugins(registry: Registry) -> int:
    rows: list[tuple[str, ...]] = [("name", "kind", "description", "plugin", "distribution")]
    for kind in KINDS:
        for name in registry.names(kind):
            entry = registry.specs[kind.label][name]
            cells = (name, kind.label, entry.spec.description, entry.plugin.name, entry.plugin.origin)
            rows.append(tuple(terminal_safe(cell) for cell in cells))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + "  " + row[-1])
    for plugin in registry.broken:
        print(terminal_safe(f"BROKEN plugin {plugin.name!r} from {plugin.origin}: {plugin.error}"))
    return EXIT_OK


def command_show(args: argparse.Namespace) -> int:
    print(format_table(terminal_safe_frame(load_results(args.path))))
    return EXIT_OK


def command_suites(args: argparse.Namespace) -> int:
    if args.name is not None:
        print(load_suite(args.name).text, end="")
        return EXIT_OK
    rows = [("name", "version", "description"), *suites_table()]
    widths = [max(len(row[i]) for row in rows) for i in range(2)]
    for name, version, description in rows:
        print(f"{name.ljust(widths[0])}  {version.ljust(widths[1])}  {description}")
    return EXIT_OK


def command_stats(args: argparse.Namespace, registry: Registry) -> int:
    from genbench.reference_file import StatsRequest, write_stats

    options = {dest: getattr(args, dest) for dest in args.stats_plugin_dests if getattr(args, dest) is not None}
    request = StatsRequest(
        dataset=args.dataset,
        split=args.split,
        out=args.out,
        extractor=args.extractor,
        data_root=args.data_root,
        download=args.download,
        binarize=args.binarize,
        device=args.device,
        results_dir=args.results_dir,
        plugin_options=options,
    )
    meta = write_stats(request, registry)
    extractor = meta["extractor"]["name"]
    print(f"wrote {args.out}: mu, sigma of {meta['count']} {meta['dataset']} {meta['split']} images ({extractor})")
    return EXIT_OK


def command_export(args: argparse.Namespace) -> int:
    weights, sidecar = export_cell(args.run_dir, args.cell, args.out, force=args.force)
    print(f"wrote {weights} and {sidecar}")
    return EXIT_OK


def terminal_safe_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with every text cell escaped: names and errors come from files anyone could have written."""
    safe = frame.copy()
    for column in safe.columns:
        if safe[column].dtype.kind not in "biuf":
            safe[column] = [terminal_safe(value) if isinstance(value, str) else value for value in safe[column]]
    return safe


def _echo(line: str) -> None:
    print(f"genbench: {terminal_safe(line)}", file=sys.stderr)


def _one_line_warning(message: Warning | str, category: type[Warning], *args: Any, **kwargs: Any) -> str:
    """A damaged file is news for the user, not for a developer: one line, without the code location."""
    if issubclass(category, DamagedFileWarning):
        return f"genbench: warning: {message}\n"
    return _python_formatwarning(message, category, *args, **kwargs)


_python_formatwarning = warnings.formatwarning


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    warnings.formatwarning = _one_line_warning
    try:
        registry = load_plugins(prescan_plugins(argv))
        parser, plugin_dests = build_parser(registry)
        args = parser.parse_args(argv)
        if args.command == "run":
            return command_run(args, argv, registry, plugin_dests)
        if args.command == "plugins":
            return command_check(args, registry) if args.plugins_action == "check" else command_plugins(registry)
        if args.command == "report":
            return report_command(args.paths, args.out)
        if args.command == "show":
            return command_show(args)
        if args.command == "suites":
            return command_suites(args)
        if args.command == "stats":
            return command_stats(args, registry)
        if args.command == "export":
            return command_export(args)
        parser.print_help()
        return EXIT_USER_ERROR
    except GenbenchError as error:
        if debug:
            raise
        print(f"genbench: error: {terminal_safe(str(error))}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print(
            "genbench: interrupted; finished cells are kept. To resume, run the same command again: "
            + shlex.join(["genbench", *argv]),
            file=sys.stderr,
        )
        return 130


if __name__ == "__main__":
    sys.exit(main())
