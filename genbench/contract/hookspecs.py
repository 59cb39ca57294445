# mypy: disable-error-code="empty-body"
"""Every hook genbench calls. A plugin implements any of them with ``@genbench.hookimpl``.

Collection hooks return a list of specs; the plugin manager gathers them into one registry per kind, keyed
by name, and checks that every answer has the right type. docs/plugins.md carries a reference generated from
these docstrings (``python scripts/hook_reference.py --write``).
"""

from __future__ import annotations

import pluggy

from genbench.contract.data import DatasetSpec
from genbench.contract.events import CellRecord, CurvePoint, RunContext, TrackerSpec
from genbench.contract.executors import ExecutorSpec
from genbench.contract.metrics import ExtractorSpec, MetricSpec
from genbench.contract.models import ModelSpec
from genbench.contract.options import OptionGroup

hookspec = pluggy.HookspecMarker("genbench")
#: Mark a plugin's hook functions with this (``@genbench.hookimpl``), as pytest plugins use ``pytest.hookimpl``.
hookimpl = pluggy.HookimplMarker("genbench")


@hookspec
def genbench_models() -> list[ModelSpec]:
    """Return the generative models this plugin provides, as ``ModelSpec(name, description, config_class, factory)``.

    Called once when plugins load, by every command (``genbench --help`` too): describe the models, do not build
    them, and import heavy libraries inside the factory, not at the module's top. Names are one word of letters,
    digits, ``.``, ``_`` and ``-``; a name another plugin also provides is an error naming both. The config class
    is a dataclass whose every field has a default; ``factory(config, DataInfo)`` builds an untrained model
    (see "The model contract" in docs/plugins.md). A wrong answer marks the plugin broken; the others still load.
    """


@hookspec
def genbench_metrics() -> list[MetricSpec]:
    """Return the metrics this plugin provides, as ``MetricSpec``s.

    Called once when plugins load. Each spec declares its columns (name, unit, higher-is-better; the core's own
    columns such as ``train_time`` are reserved; a column that another metric also declares is a clash, listed by
    ``genbench plugins``, and a run that would use both metrics stops before anything trains), the capabilities
    of which a model needs at least one (``requires_any``; a model with none of them gets N/A with the reason,
    and ``compute`` is not called), ``compute(model, EvalContext) -> MetricResult``, an optional config dataclass
    and an optional ``check(EvalContext)`` that runs before any cell trains.
    """


@hookspec
def genbench_datasets() -> list[DatasetSpec]:
    """Return the data sets this plugin provides, as ``DatasetSpec(name, description, load)``.

    Called once when plugins load; ``load(DatasetOptions)`` runs only when a run uses the data set. It returns a
    ``Dataset`` of uint8 images with a fixed train/test split (the same on every call, whatever the global random
    state) and a provenance dict; when files are missing it raises GenbenchError saying how to get them.
    """


@hookspec
def genbench_feature_extractors() -> list[ExtractorSpec]:
    """Return the feature extractors (for FID, KID and the like) this plugin provides, as ``ExtractorSpec``s.

    Called once when plugins load. Metrics find an extractor by name (``ctx.registry.extractor(name)``) and call
    its ``load(dataset, ctx)``, which returns ``(function, identity)``: the function maps a CPU uint8 batch
    (n, C, H, W) to features (n, d), moving the batch to ``ctx.device`` itself; the identity is a JSON-able dict
    naming the network and its weights, the key of cached reference statistics.
    """


@hookspec
def genbench_executors() -> list[ExecutorSpec]:
    """Return the executors this plugin provides: ways to run a grid's cells (``genbench run --executor NAME``).

    An executor gets the cells still to run as ``CellTask`` objects in an ``ExecutorContext`` and yields one
    ``CellOutcome`` per cell as each finishes, in any order (see ``genbench.ExecutorSpec``). It may run a cell in
    the driver's process (``ctx.run_here``) or anywhere ``genbench.run_task`` can run: worker processes,
    Ray tasks, a batch system. Its command-line options (``ExecutorSpec.add_options``) say how cells run, never
    what they compute, and are no part of any cell id. The built-ins are ``serial`` (the default), ``local``
    (``--jobs``, ``--cells-per-gpu``) and ``ray`` (the extra ``genbench[ray]``); docs/executors.md has the
    contract and a worked example.
    """


@hookspec
def genbench_trackers() -> list[TrackerSpec]:
    """Return the trackers this plugin provides: the names ``--log`` (or ``log = [...]`` in a suite file) accepts.

    A tracker does its work in the event hooks ``genbench_training_curve``, ``genbench_cell_finished`` and
    ``genbench_run_interrupted``, and only for runs whose ``run.trackers`` name it. Its spec's ``check`` runs
    before any training, so that a missing library is a one-line error that says what to install.
    """


@hookspec
def genbench_addoption(options: OptionGroup) -> None:
    """Add command-line options to ``genbench run`` (and ``genbench stats``) with ``options.addoption(...)``.

    Takes argparse's ``add_argument`` arguments, as pytest_addoption does; give every option an explicit
    ``dest``. The parsed values reach metrics and extractors as ``EvalContext.options[dest]`` (an option left
    unset is absent) and event hooks as ``run.options[dest]``; they count in the cell id, so changing one
    evaluates again. In Python, ``genbench.run(plugin_options={dest: value})`` gives them.
    """


@hookspec
def genbench_training_curve(point: CurvePoint, run: RunContext) -> None:
    """Called for each point of a training curve while a model trains: an event for live trackers.

    ``point`` is what the model passed to ``FitContext.on_curve`` (once per epoch for models that train with
    ``genbench.toolkit.training.train_epochs``), with the cell it belongs to; its values are plain floats, so a tracker
    never makes the training loop wait for a GPU. It is called in the process that trains the cell (a worker,
    under the ``local`` or ``ray`` executors). It is not called for a model loaded from a checkpoint (its
    curve, from the checkpoint, is in the record that ``genbench_cell_finished`` receives; ``record.trained`` is
    False). A point whose loss is NaN or infinite ends training and is not sent. An exception raised here
    fails the cell, with the error in its record.
    """


@hookspec
def genbench_cell_finished(record: CellRecord, run: RunContext, reused: bool) -> None:
    """Called after each cell's record is written, finished or failed: an event for reporters and trackers.

    ``record.status`` is ``"ok"`` or ``"failed"`` (``record.error`` says why); ``record.metrics`` holds the
    values, ``record.not_applicable`` the reasons for N/A. ``run`` says where the run is written (the record is
    ``run.cell_file(record.cell_id)``) and which trackers are on; an implementation may take ``record`` alone.
    Called in the driver, the process that writes the run's files, whichever executor ran the cell; an exception
    here stops the run.

    ``reused`` is True for a finished cell read back from an earlier run rather than run now. Those are announced
    only when trackers are on (``run.trackers`` is not empty), before the cells that run, so that ``--log`` added
    to a run that is done logs what it computed: nothing trained now and no curve point came, so a tracker logs
    the whole record, curve included (``record.trained`` says whether it trained back then). An earlier run may
    have logged the same cell already: a tracker should not log it twice (the built-in MLflow tracker keeps a
    cell's FINISHED run; the TensorBoard tracker writes the cell's folder afresh).
    """


@hookspec
def genbench_run_interrupted(cell_ids: list[str], run: RunContext) -> None:
    """Called when a run stops before its cells are done: Ctrl-C (KeyboardInterrupt), SIGTERM, or an error that
    stops the run; an event for trackers to close what they opened for the cells that did not finish.

    ``cell_ids`` are the cells that were to run and have no record from this run: the one (or, under the
    ``local`` and ``ray`` executors, the several) training when the run stopped, and those not started. A tracker
    ends what it opened for them (the built-in MLflow tracker sets their runs KILLED rather than leaving them
    RUNNING; the TensorBoard tracker flushes their event files). Called in the driver, after the executor has
    stopped; the run then stops as it would have (after Ctrl-C or SIGTERM, exit 130 on the command line), and
    its finished cells are kept for a new run to resume from. While cells run in the driver's main thread,
    SIGTERM stops the run as Ctrl-C does, so that this event comes (a handler already set for SIGTERM is left in
    place). An exception raised here is printed as a warning and does not hide the interruption.
    """
