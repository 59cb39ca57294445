"""A metric that declares the column ``seed``, which the core writes into every results table."""

from __future__ import annotations

import genbench


def _compute(model: genbench.GenerativeModel, ctx: genbench.EvalContext) -> genbench.MetricResult:
    return genbench.MetricResult({"seed": 0.0})


@genbench.hookimpl
def genbench_metrics() -> list[genbench.MetricSpec]:
    column = genbench.Column("seed", "1", higher_is_better=True)
    return [genbench.MetricSpec("seedy", "overwrites the seed column", (column,), frozenset(), _compute)]
