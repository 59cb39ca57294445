"""A metric that declares the column ``bpd``, which the built-in likelihood plugin already writes."""

from __future__ import annotations

import genbench


def _compute(model: genbench.GenerativeModel, ctx: genbench.EvalContext) -> genbench.MetricResult:
    return genbench.MetricResult({"bpd": 0.0})


@genbench.hookimpl
def genbench_metrics() -> list[genbench.MetricSpec]:
    column = genbench.Column("bpd", "bits/dim", higher_is_better=False)
    return [genbench.MetricSpec("other_bpd", "a second bits/dim", (column,), frozenset(), _compute)]
