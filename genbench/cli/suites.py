"""``genbench suites``: list the packaged suites, or print one suite's file."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from genbench.cli.common import EXIT_OK, Subcommands
from genbench.registry import Registry
from genbench.suites import load_suite, suites_table


def add_parser(commands: Subcommands, registry: Registry | None) -> argparse.ArgumentParser:
    suites = commands.add_parser("suites", help="list the packaged suites, or print one suite's file")
    suites.add_argument("name", nargs="?", metavar="NAME", help="print this suite's TOML file")
    suites.set_defaults(handler=command_suites)
    return suites


def command_suites(args: argparse.Namespace, argv: Sequence[str], registry: Registry) -> int:
    if args.name is not None:
        print(load_suite(args.name).text, end="")
        return EXIT_OK
    rows = [("name", "version", "description"), *suites_table()]
    widths = [max(len(row[i]) for row in rows) for i in range(2)]
    for name, version, description in rows:
        print(f"{name.ljust(widths[0])}  {version.ljust(widths[1])}  {description}")
    return EXIT_OK
