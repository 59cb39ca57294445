"""A spec whose field has the wrong type: a column's higher_is_better given as the string "yes"."""

from __future__ import annotations

import genbench


def _compute(model: genbench.GenerativeModel, ctx: genbench.EvalContext) -> genbench.MetricResult:
    return genbench.MetricResult({"sharpness": 1.0})


@genbench.hookimpl
def genbench_metrics() -> list[genbench.MetricSpec]:
    column = genbench.Column("sharpness", "1", higher_is_better="yes")  # type: ignore[arg-type]
    return [genbench.MetricSpec("sharpness", "a typo in its column", (column,), frozenset(), _compute)]
