"""A plugin (loaded with -p) that records every training-curve event, and can be told to be slow."""

from __future__ import annotations

import time

import genbench
from genbench import CellRecord, CurvePoint, RunContext

#: (point, run) for every genbench_training_curve call, and every finished record, in the order they came.
points: list[tuple[CurvePoint, RunContext]] = []
finished: list[CellRecord] = []


@genbench.hookimpl
def genbench_addoption(options: genbench.OptionGroup) -> None:
    options.addoption("--recorder-sleep", dest="recorder_sleep", type=float, help="seconds to sleep per curve point")


@genbench.hookimpl
def genbench_training_curve(point: CurvePoint, run: RunContext) -> None:
    points.append((point, run))
    time.sleep(float(run.options.get("recorder_sleep", 0.0)))


@genbench.hookimpl
def genbench_cell_finished(record: CellRecord) -> None:  # the older form, without ``run``, still works
    finished.append(record)
