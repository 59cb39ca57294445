"""``genbench report``: aggregate runs over seeds into leaderboard.md and leaderboard.html."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from genbench.cli.common import Subcommands
from genbench.registry import Registry
from genbench.report import report_command


def add_parser(commands: Subcommands, registry: Registry | None) -> argparse.ArgumentParser:
    report = commands.add_parser("report", help="aggregate runs over seeds into leaderboard.md and leaderboard.html")
    report.add_argument(
        "paths", nargs="+", type=Path, metavar="PATH", help="run directories (results/<run>) or folders of them"
    )
    report.add_argument(
        "--out", type=Path, help="where to write leaderboard.md|html (default: the one PATH, else their common folder)"
    )
    report.set_defaults(handler=command_report)
    return report


def command_report(args: argparse.Namespace, argv: Sequence[str], registry: Registry) -> int:
    return report_command(args.paths, args.out)
