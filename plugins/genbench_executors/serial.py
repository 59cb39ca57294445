"""The ``serial`` executor: one cell after another in the driver's own process, as genbench always ran them."""

from __future__ import annotations

from collections.abc import Iterator

from genbench import CellOutcome, ExecutorContext, ExecutorSpec

NAME = "serial"


def run_serially(ctx: ExecutorContext) -> Iterator[CellOutcome]:
    # A crash here is the driver's own: there is no worker to lose, so --retries does not apply.
    for task in ctx.tasks:
        ctx.started(task)
        yield ctx.run_here(task)


SERIAL = ExecutorSpec(NAME, "one cell after another in this process (the default)", run_serially)
