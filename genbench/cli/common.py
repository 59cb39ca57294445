"""What the subcommand modules share: the exit codes, the parser class, plugins' options and the echo line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn, TypeAlias

from genbench.contract import GenbenchError, OptionGroup
from genbench.registry import Registry
from genbench.toolkit.text import terminal_safe

EXIT_OK, EXIT_FAILED_CELLS, EXIT_USER_ERROR = 0, 1, 2


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line and exit 2, like every other user error."""

    def error(self, message: str) -> NoReturn:
        raise GenbenchError(f"{message} (see {self.prog} --help)")


#: What each subcommand module's ``add_parser`` adds its subcommand to.
Subcommands: TypeAlias = "argparse._SubParsersAction[OneLineParser]"

#: What each subcommand module has: ``add_parser(commands, registry)`` adds the subcommand and returns its parser.
AddParser: TypeAlias = Callable[[Subcommands, Registry | None], argparse.ArgumentParser]

#: A subcommand, which ``add_parser`` sets as the ``handler`` default: it is called with the parsed arguments, the
#: command line as given and the registry of loaded plugins, and returns the exit code.
Command: TypeAlias = Callable[[argparse.Namespace, Sequence[str], Registry], int]


def add_plugin_options(parser: argparse.ArgumentParser, registry: Registry | None) -> list[str]:
    """Lets the registry's plugins add options to ``parser``, in a group of their own; the dests of those options."""
    added = OptionGroup(parser.add_argument_group("options added by plugins"))
    if registry is not None:
        registry.add_options(added)
    return added.dests


def echo(line: str) -> None:
    print(f"genbench: {terminal_safe(line)}", file=sys.stderr)
