"""``genbench show``: print the results table of a run directory."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from genbench.cli.common import EXIT_OK, Subcommands
from genbench.registry import Registry
from genbench.store.frame import format_table, load_results
from genbench.toolkit.text import terminal_safe

if TYPE_CHECKING:
    import pandas as pd


def add_parser(commands: Subcommands, registry: Registry | None) -> argparse.ArgumentParser:
    show = commands.add_parser("show", help="print the results table of a run directory")
    show.add_argument("path", type=Path, help="a run directory (results/<run>) or its results.csv")
    show.set_defaults(handler=command_show)
    return show


def command_show(args: argparse.Namespace, argv: Sequence[str], registry: Registry) -> int:
    print(format_table(terminal_safe_frame(load_results(args.path))))
    return EXIT_OK


def terminal_safe_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with every text cell escaped: names and errors come from files anyone could have written."""
    safe = frame.copy()
    for column in safe.columns:
        if safe[column].dtype.kind not in "biuf":
            safe[column] = [terminal_safe(value) if isinstance(value, str) else value for value in safe[column]]
    return safe
