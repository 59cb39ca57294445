# mypy: disable-error-code="empty-body"
"""Every hook genbench calls. A plugin implements any of them with ``@genbench.hookimpl``.

Collection hooks return a list of specs; the plugin manager gathers them into one registry per kind, keyed
by name, and checks that every answer has the right type.
"""

from __future__ import annotations

import pluggy

from genbench.executors import ExecutorSpec
from genbench.types import CellRecord, DatasetSpec, ExtractorSpec, MetricSpec, ModelSpec, OptionGroup

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
def genbench_addoption(options: OptionGroup) -> None:
    """Add command-line options to ``genbench run`` with ``options.addoption(...)``, as pytest_addoption does.

    The parsed values reach metrics as ``EvalContext.options[dest]``.
    """


@hookspec
def genbench_cell_finished(record: CellRecord) -> None:
    """Called after each cell's record is written, finished or failed: an event for reporters and trackers."""
