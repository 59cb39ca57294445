"""Command-line options that plugins add to ``genbench run`` (``genbench_addoption``)."""

from __future__ import annotations

import argparse
from typing import Any, Protocol


class ArgumentAdder(Protocol):
    """Anything with argparse's public ``add_argument``: a parser, or one of its argument groups."""

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action: ...


class OptionGroup:
    """Where plugins add options to ``genbench run`` (see the ``genbench_addoption`` hook).

    It wraps any ``ArgumentAdder`` (the CLI gives an argument group of ``genbench run``; ``genbench.run()`` a
    parser of its own, to learn which ``plugin_options`` keys exist), so plugins depend on no argparse internals.
    """

    def __init__(self, adder: ArgumentAdder) -> None:
        self._adder = adder
        #: Every option added, by dest: its type, choices and default check ``genbench.run(plugin_options=...)``.
        self.actions: dict[str, argparse.Action] = {}

    @property
    def dests(self) -> list[str]:
        """The dests of every option added, so the CLI can hand their values to metrics."""
        return list(self.actions)

    def addoption(self, *flags: str, **kwargs: Any) -> None:
        """Takes argparse's ``add_argument`` arguments; values reach metrics as ``EvalContext.options[dest]``."""
        action = self._adder.add_argument(*flags, **kwargs)
        self.actions[action.dest] = action
