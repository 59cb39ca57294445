"""``genbench run``: train or load models, evaluate metrics, write a results table."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from genbench.api import run_request
from genbench.cli.common import EXIT_FAILED_CELLS, EXIT_OK, Subcommands, add_plugin_options, echo
from genbench.cli.show import terminal_safe_frame
from genbench.config import check_run_name, parse_assignments, parse_names, parse_sample_options, parse_seeds
from genbench.contract import GenbenchError, OptionGroup, PluginError
from genbench.contract.executors import SERIAL, STORAGE_MODES, ExecutionOptions
from genbench.contract.request import DEVICES, RunRequest
from genbench.registry import EXECUTOR, Registry, load_plugins
from genbench.store.frame import format_table
from genbench.suites import layered_request
from genbench.toolkit.text import terminal_safe


def add_parser(commands: Subcommands, registry: Registry | None) -> argparse.ArgumentParser:
    run = commands.add_parser("run", help="train or load models, evaluate metrics, write a results table")
    run.add_argument(
        "--models", help="comma-separated model names (default: those the plugins offer: vae,gan,pixelcnn)"
    )
    run.add_argument("--metrics", help="comma-separated metric names (default: every installed metric)")
    run.add_argument("--dataset", help="data set name (default: digits, shipped with scikit-learn)")
    run.add_argument("--data-root", type=Path, help="folder holding the data set's files")
    run.add_argument("--download", action="store_true", default=None, help="download the data set if missing")
    run.add_argument("--binarize", action="store_true", default=None, help="use the 2-level version of the data")
    run.add_argument(
        "--allow-incomplete-data",
        action="store_true",
        default=None,
        help="run a suite on incomplete data files anyway; its numbers are then marked not comparable",
    )
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
    run.add_argument(
        "--sample-option",
        action="append",
        default=[],
        metavar="MODEL.OPTION=V[,V...]",
        help="an evaluation-time option of a model (sampler, steps, temperature): one evaluation of one trained "
        "model per value, e.g. ddpm.steps=10,50,100 (repeatable)",
    )
    add_bring_your_own_options(run)
    add_execution_options(run, registry)
    run.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    run.set_defaults(handler=command_run, run_plugin_dests=add_plugin_options(run, registry))
    return run


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
        spec = registry.get(EXECUTOR, name) if registry is not None else None
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


#: Flags that give a RunRequest field as argparse parsed it (None: not given).
SIMPLE_FLAGS = (
    "dataset",
    "data_root",
    "download",
    "binarize",
    "allow_incomplete_data",
    "epochs",
    "device",
    "results_dir",
    "name",
)


def request_from_args(args: argparse.Namespace, plugin_dests: Sequence[str] = ()) -> RunRequest:
    """Defaults < packaged suite < suite file < command line (``layered_request``, as genbench.run uses it)."""
    if args.name is not None:
        check_run_name(args.name)
    given = {flag: getattr(args, flag) for flag in SIMPLE_FLAGS}
    given.update(
        models=None if args.models is None else parse_names(args.models, "--models"),
        metrics=None if args.metrics is None else parse_names(args.metrics, "--metrics"),
        seeds=None if args.seeds is None else parse_seeds(args.seeds),
        rerun=None if args.rerun is None else parse_names(args.rerun, "--rerun") if args.rerun else [],
        log=None if args.log is None else parse_names(args.log, "--log", "tensorboard,mlflow"),
        plugins=args.plugins,
        sample_options=parse_sample_options(args.sample_option),
        checkpoints=parse_assignments(args.checkpoint, "--checkpoint", "vae=vae.safetensors"),
        sample_sets=parse_assignments(args.sample_set, "--sample-set", "mygan=samples.npz"),
    )
    request = layered_request(args.suite, args.config, given)
    request.plugin_options = {dest: getattr(args, dest) for dest in plugin_dests if getattr(args, dest) is not None}
    return request


def command_run(args: argparse.Namespace, argv: Sequence[str], registry: Registry) -> int:
    request = request_from_args(args, args.run_plugin_dests)
    if set(request.plugins) - set(prescan_plugins(argv)):
        registry = load_plugins(request.plugins)  # the suite file names plugins of its own
    frame = run_request(
        request,
        registry=registry,
        progress=sys.stderr.isatty(),
        command=["genbench", *argv],
        echo=echo,
        execution=execution_from_args(args),
    )
    print(format_table(terminal_safe_frame(frame)))
    print(f"\nresults: {terminal_safe(frame.attrs['run_dir'])}")
    return EXIT_OK if (frame["status"] == "ok").all() else EXIT_FAILED_CELLS
