"""``--log tensorboard``: each cell's training curve, metrics and grid of samples as TensorBoard event files.

Each cell gets a folder of its own under the run folder, ``RUN/tensorboard/<cell>/``, so that
``tensorboard --logdir results/<run>/tensorboard`` shows every cell of the run side by side. The training curve
is written point by point while the model trains (``curve/<loss>``, one point per epoch for the built-ins); when
the cell is finished, its metrics (``metrics/<column>``, at the curve's last step), its config and status (as
text) and its grid of samples (``samples``). A model loaded from a checkpoint trains nothing: its stored curve
is written when its cell is finished. A cell reused from an earlier run (``--log tensorboard`` added later) gets
its folder written afresh from its record, curve included, so that logging it again duplicates nothing. When a
run is interrupted, the writers of its unfinished cells are closed, so that what they wrote reaches the files.

The writer is PyTorch's ``torch.utils.tensorboard.SummaryWriter``, which needs the ``tensorboard`` package
(``pip install 'genbench[tensorboard]'``); it is imported only when a run logs to TensorBoard.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import genbench
from genbench import CellRecord, CurvePoint, RunContext, TrackerSpec
from genbench.toolkit.trackers import TrackerFailures, check_library

if TYPE_CHECKING:
    from torch.utils.tensorboard import SummaryWriter

NAME = "tensorboard"
#: The folder, under the run folder, that holds one folder of event files per cell.
FOLDER = "tensorboard"
#: A live curve reaches the files (and TensorBoard's view) at most this many seconds after its point.
FLUSH_SECONDS = 10
#: Open writers by cell folder: a cell's writer lives from its first curve point until its cell is finished.
_writers: dict[Path, SummaryWriter] = {}


#: Cells whose logging failed in this process: their later curve points are not tried again.
_failures = TrackerFailures(NAME)


def load_tensorboard() -> None:
    """Import the torch's TensorBoard writer, as the tracker will."""
    from torch.utils.tensorboard import SummaryWriter  # noqa: F401


def check() -> None:
    check_library(NAME, "tensorboard", load_tensorboard)


@genbench.hookimpl
def genbench_trackers() -> list[TrackerSpec]:
    return [TrackerSpec(NAME, f"TensorBoard event files under RUN/{FOLDER}/<cell>/", check)]


def cell_folder(run: RunContext, cell_id: str) -> Path:
    return run.root / FOLDER / cell_id


def open_writer(folder: Path, *, fresh: bool) -> SummaryWriter:
    """The cell's writer; ``fresh`` (a training that starts, or a curve read from a checkpoint) first removes the
    event files of an earlier attempt at the same cell (interrupted, or --rerun), whose curve this one replaces."""
    from torch.utils.tensorboard import SummaryWriter

    if folder not in _writers:
        if fresh and folder.is_dir():
            for stale in folder.glob("events.out.tfevents.*"):
                stale.unlink()
        _writers[folder] = SummaryWriter(log_dir=str(folder), flush_secs=FLUSH_SECONDS)
    return _writers[folder]


def write_curve_point(writer: SummaryWriter, step: int, values: dict[str, float]) -> None:
    for name, value in values.items():
        writer.add_scalar(f"curve/{name}", value, step)


@genbench.hookimpl
def genbench_training_curve(point: CurvePoint, run: RunContext) -> None:
    if NAME in run.trackers and point.cell_id not in _failures.cells:
        with _failures.warned(point.cell_id):
            writer = open_writer(cell_folder(run, point.cell_id), fresh=True)
            write_curve_point(writer, point.step, dict(point.values))


@genbench.hookimpl
def genbench_cell_finished(record: CellRecord, run: RunContext, reused: bool) -> None:
    if NAME in run.trackers:
        with _failures.warned(record.cell_id):
            write_cell(record, run, live=record.trained and not reused)
        _failures.cells.discard(record.cell_id)


@genbench.hookimpl
def genbench_run_interrupted(cell_ids: list[str], run: RunContext) -> None:
    if NAME in run.trackers:
        for cell_id in cell_ids:
            writer = _writers.pop(cell_folder(run, cell_id), None)
            if writer is not None:
                with _failures.warned(cell_id):
                    writer.close()
            _failures.cells.discard(cell_id)


def write_cell(record: CellRecord, run: RunContext, *, live: bool) -> None:
    """The finished cell's metrics, config, status and samples; and its curve, unless it came ``live`` (point by
    point while it trained in this run): a cell loaded from a checkpoint or reused gets its folder afresh."""
    folder = cell_folder(run, record.cell_id)
    writer = open_writer(folder, fresh=not live)
    try:
        if not live:  # loaded from a checkpoint, or reused: no point came while it trained
            for point in record.curve:
                write_curve_point(writer, int(point["step"]), {k: v for k, v in point.items() if k != "step"})
        last_step = int(record.curve[-1]["step"]) if record.curve else 0
        scalars = dict(record.metrics)
        if record.train_time is not None:
            scalars["train_time"] = record.train_time
        for column, value in scalars.items():
            writer.add_scalar(f"metrics/{column}", value, last_step)
        writer.add_text("config", "    " + json.dumps(record.config, indent=2).replace("\n", "\n    "))
        writer.add_text("status", record.status if record.error is None else f"{record.status}: {record.error}")
        grid = run.sample_grid(record.cell_id)
        if grid is not None:
            import numpy as np
            from PIL import Image

            with Image.open(grid) as image:
                pixels = np.asarray(image.convert("RGB"))
            writer.add_image("samples", pixels, last_step, dataformats="HWC")
    finally:
        writer.close()
        del _writers[folder]
