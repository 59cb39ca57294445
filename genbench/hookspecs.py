# mypy: disable-error-code="empty-body"
"""Every hook genbench calls. A plugin implements any of them with ``@genbench.hookimpl``.

Collection hooks return a list of specs; the plugin manager gathers them into one registry per kind, keyed
by name, and checks that every answer has the right type.
"""

from __future__ import annotations

import pluggy

from genbench.executors import ExecutorSpec
from genbench.types import (
    CellRecord,
    CurvePoint,
    DatasetSpec,
    ExtractorSpec,
    MetricSpec,
    ModelSpec,
    OptionGroup,
    RunContext,
    TrackerSpec,
)

hookspec = pluggy.HookspecMarker("genbench")


@hookspec
def genbench_models() -> list[ModelSpec]:
    """Return the generative models this plugin provides."""


@hookspec
def genbench_metrics() -> list[MetricSpec]:
    """Return the metrics this plugin provides."""


@hookspec
def genbench_datasets() -> list[DatasetSpec]:
    """Return the data sets this plugin provides."""


@hookspec
def genbench_feature_extractors() -> list[ExtractorSpec]:
    """Return the feature extractors (for FID, KID and the like) this plugin provides."""


@hookspec
def genbench_executors() -> list[ExecutorSpec]:
    """Return the executors this plugin provides: ways to run a grid's cells (``genbench run --executor NAME``).

    An executor gets the cells still to run as ``CellTask`` objects in an ``ExecutorContext`` and yields one
    ``CellOutcome`` per cell as each finishes, in any order (see ``genbench.executors``). It may run a cell in
    the driver's process (``ctx.run_here``) or anywhere ``genbench.workers.run_task`` can run: worker processes,
    Ray tasks, a batch system. Its command-line options (``ExecutorSpec.add_options``) say how cells run, never
    what they compute, and are no part of any cell id. The built-ins are ``serial`` (the default), ``local``
    (``--jobs``, ``--cells-per-gpu``) and ``ray`` (the extra ``genbench[ray]``).
    """


@hookspec
def genbench_trackers() -> list[TrackerSpec]:
    """Return the trackers this plugin provides: the names ``--log`` (or ``log = [...]`` in a suite file) accepts.

    A tracker does its work in the event hooks ``genbench_training_curve`` and ``genbench_cell_finished``, and
    only for runs whose ``run.trackers`` name it. Its spec's ``check`` runs before any training, so that a
    missing library is a one-line error that says what to install.
    """


@hookspec
def genbench_addoption(options: OptionGroup) -> None:
    """Add command-line options to ``genbench run`` with ``options.addoption(...)``, as pytest_addoption does.

    The parsed values reach metrics as ``EvalContext.options[dest]`` and event hooks as ``run.options[dest]``;
    in Python, ``genbench.run(plugin_options={dest: value})`` gives them.
    """


@hookspec
def genbench_training_curve(point: CurvePoint, run: RunContext) -> None:
    """Called for each point of a training curve while a model trains: an event for live trackers.

    ``point`` is what the model passed to ``FitContext.on_curve`` (once per epoch for models that train with
    ``genbench.training.train_epochs``), with the cell it belongs to; its values are plain floats, so a tracker
    never makes the training loop wait for a GPU. It is not called for a model loaded from a checkpoint (its
    curve, from the checkpoint, is in the record that ``genbench_cell_finished`` receives; ``record.trained`` is
    False). A point whose loss is NaN or infinite ends training and is not sent. An exception raised here
    fails the cell, with the error in its record.
    """


@hookspec
def genbench_cell_finished(record: CellRecord, run: RunContext) -> None:
    """Called after each cell's record is written, finished or failed: an event for reporters and trackers.

    ``record`` is the cell's record, as in ``run.cell_file(record.cell_id)``; ``run`` says where the run is
    written and which trackers are on (an implementation may take ``record`` alone). Cells reused from an
    earlier run of the same command are not sent again.
    """
