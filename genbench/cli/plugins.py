"""``genbench plugins``: list installed plugins; ``genbench plugins check NAME``: run a plugin's conformance checks."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from genbench.cli.common import EXIT_FAILED_CELLS, EXIT_OK, OneLineParser, Subcommands
from genbench.contract import GenbenchError
from genbench.contract.request import DEVICES
from genbench.registry import KINDS, METRIC, Registry
from genbench.toolkit.text import terminal_safe


def add_parser(commands: Subcommands, registry: Registry | None) -> argparse.ArgumentParser:
    plugins = commands.add_parser("plugins", help="list installed plugins and what they provide")
    plugins.add_argument(
        "-p", dest="plugins", action="append", default=[], metavar="MODULE", help="load a plugin module"
    )
    _add_check_parser(plugins)
    plugins.set_defaults(handler=command_plugins)
    return plugins


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


def command_plugins(args: argparse.Namespace, argv: Sequence[str], registry: Registry) -> int:
    """``plugins check``, or else the table of what the installed plugins provide, and the broken plugins."""
    if args.plugins_action == "check":
        return command_check(args, registry)
    rows: list[tuple[str, ...]] = [("name", "kind", "description", "plugin", "distribution")]
    clashing = {name for collision in registry.collisions for name in collision.metrics}
    for kind in KINDS:
        for name in registry.names(kind):
            entry = registry.specs[kind.label][name]
            label = f"{kind.label} (column clash)" if kind is METRIC and name in clashing else kind.label
            cells = (name, label, entry.spec.description, entry.plugin.name, entry.plugin.origin)
            rows.append(tuple(terminal_safe(cell) for cell in cells))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + "  " + row[-1])
    for plugin in registry.broken:
        print(terminal_safe(f"BROKEN plugin {plugin.name!r} from {plugin.origin}: {plugin.error}"))
    for collision in registry.collisions:  # either metric runs alone; a run of both is refused
        print(terminal_safe(f"COLUMN CLASH: {collision.describe()}; a run cannot use both"))
    return EXIT_OK


def command_check(args: argparse.Namespace, registry: Registry) -> int:
    """Every check of the plugin called NAME: PASS, FAIL or SKIP and what was seen; exit 1 on a failure."""
    import tempfile

    from genbench.contract import DatasetOptions
    from genbench.runner.prepare import resolve_device
    from genbench.testing import FAIL, checks_for

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
