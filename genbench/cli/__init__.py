"""The ``genbench`` command: run, plugins, report, compare, show, suites, stats, export.

Exit codes: 0 every cell finished, 1 some cell failed, 2 a user error (one line on stderr, no traceback
unless --debug).

One module per subcommand, each with ``add_parser(commands, registry)``, which adds the subcommand and sets its
``command_*`` function as the ``handler`` that ``main`` calls:

- ``__init__``: ``main`` and ``build_parser``, which puts the subcommands together; one-line warnings.
- ``common``: what the subcommand modules share: exit codes, ``OneLineParser``, plugins' options, ``echo``.
- ``run``: ``genbench run``, its options, and the ``RunRequest`` and ``ExecutionOptions`` they make.
- ``plugins``: ``genbench plugins`` lists installed plugins; ``genbench plugins check`` runs conformance checks.
- ``report``: ``genbench report`` writes leaderboard.md and leaderboard.html.
- ``compare``: ``genbench compare`` says whether A is better than B: per metric a test over seeds, Holm-corrected.
- ``show``: ``genbench show`` prints a run's results table; ``terminal_safe_frame``.
- ``suites``: ``genbench suites`` lists the packaged suites or prints one.
- ``stats``: ``genbench stats`` writes FID reference statistics.
- ``export``: ``genbench export`` writes a trained cell's weights as safetensors.
- ``__main__``: ``python -m genbench.cli``.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import warnings
from collections.abc import Sequence
from typing import Any

from genbench.cli import compare, export, plugins, report, run, show, stats, suites
from genbench.cli.common import (
    EXIT_FAILED_CELLS,
    EXIT_OK,
    EXIT_USER_ERROR,
    AddParser,
    Command,
    OneLineParser,
    add_plugin_options,
)
from genbench.cli.common import echo as _echo
from genbench.cli.export import command_export
from genbench.cli.plugins import check_options, command_check, command_plugins
from genbench.cli.report import command_report
from genbench.cli.run import (
    add_bring_your_own_options,
    add_execution_options,
    command_run,
    execution_from_args,
    prescan_plugins,
    request_from_args,
)
from genbench.cli.show import command_show, terminal_safe_frame
from genbench.cli.stats import command_stats
from genbench.cli.suites import command_suites
from genbench.contract import GenbenchError
from genbench.errors import PluginOutputError
from genbench.registry import Registry, load_plugins
from genbench.toolkit.files import DamagedFileWarning
from genbench.toolkit.text import terminal_safe

__all__ = [
    "EXIT_FAILED_CELLS",
    "EXIT_OK",
    "EXIT_USER_ERROR",
    "OneLineParser",
    "_echo",
    "add_bring_your_own_options",
    "add_execution_options",
    "add_plugin_options",
    "build_parser",
    "check_options",
    "command_check",
    "command_export",
    "command_plugins",
    "command_report",
    "command_run",
    "command_show",
    "command_stats",
    "command_suites",
    "execution_from_args",
    "main",
    "prescan_plugins",
    "request_from_args",
    "terminal_safe_frame",
]

#: Each subcommand module's ``add_parser``, in the order ``genbench --help`` lists the subcommands.
SUBCOMMANDS: tuple[AddParser, ...] = (
    run.add_parser,
    plugins.add_parser,
    report.add_parser,
    compare.add_parser,
    show.add_parser,
    suites.add_parser,
    stats.add_parser,
    export.add_parser,
)


def build_parser(registry: Registry | None = None) -> tuple[argparse.ArgumentParser, list[str]]:
    """The parser, and the dests of the options that the registry's plugins add to ``genbench run``."""
    parser = OneLineParser(prog="genbench", description="Benchmark generative models on equal terms.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    for add_parser in SUBCOMMANDS:
        add_parser(commands, registry)
    run_plugin_dests: list[str] = commands.choices["run"].get_default("run_plugin_dests")
    return parser, run_plugin_dests


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
        parser, _ = build_parser(registry)
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return EXIT_USER_ERROR
        command: Command = args.handler
        return command(args, argv, registry)
    except (GenbenchError, PluginOutputError) as error:  # the latter outside a run's cells: genbench stats, say
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
