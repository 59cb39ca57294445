"""``--log mlflow``: each cell as an MLflow run, with its config, training curve, metrics and files.

Where: the tracking URI in ``MLFLOW_TRACKING_URI`` if it is set (a server, a database, a folder), else the
folder ``mlruns/`` inside the run folder (``results/<run>/mlruns``), given to MLflow explicitly as a file store;
``mlflow ui --backend-store-uri results/<run>/mlruns`` shows it. Each genbench run is an MLflow experiment named
after its run folder; each cell is an MLflow run named after its cell id, tagged ``genbench.cell_id``,
``genbench.model``, ``genbench.dataset``, ``genbench.seed``.

What: the cell's model config as params; its training curve as ``curve/<loss>`` metrics, logged point by point
while the model trains (a model loaded from a checkpoint gets its stored curve when its cell is finished); its
metrics under their column names, and ``train_time``; its grid of samples and its record ``cells/<cell>.json``
as artifacts. A failed cell ends as a FAILED run with its error in the tag ``genbench.error``; a cell whose run was
interrupted (Ctrl-C, SIGTERM) ends as KILLED. A cell reused from an earlier run is logged when ``--log mlflow`` is
added later, once: a cell that has a FINISHED run already is not logged again.

Needs the ``mlflow`` package (``pip install 'genbench[mlflow]'``, which installs ``mlflow-skinny``: the client
alone, enough to log to a file store or a server); it is imported only when a run logs to MLflow.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import genbench
from genbench import CellRecord, CurvePoint, RunContext, TrackerSpec
from genbench.toolkit.text import warn
from genbench.toolkit.trackers import TrackerFailures, check_library

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

NAME = "mlflow"
#: The tracking store inside the run folder when MLFLOW_TRACKING_URI is not set.
FOLDER = "mlruns"
CELL_TAG = "genbench.cell_id"
ALLOW_FILE_STORE = "MLFLOW_ALLOW_FILE_STORE"
#: MLflow keeps a param's value to this many characters.
PARAM_LENGTH = 6000
#: MLflow run ids of the cells being trained in this process, by cell id.
_active: dict[str, str] = {}


#: Cells whose logging failed in this process: their later curve points are not tried again.
_failures = TrackerFailures(NAME)


def load_mlflow() -> None:
    """Import the MLflow client, as the tracker will."""
    from mlflow.tracking import MlflowClient  # noqa: F401


def check() -> None:
    check_library(NAME, "mlflow", load_mlflow)


@genbench.hookimpl
def genbench_trackers() -> list[TrackerSpec]:
    return [TrackerSpec(NAME, f"an MLflow run per cell in RUN/{FOLDER} or MLFLOW_TRACKING_URI", check)]


def tracking_uri(run: RunContext) -> str:
    """MLFLOW_TRACKING_URI, or the run folder's own file store (MLflow's default store is not relied on: it
    has changed between versions, and it is relative to the current directory)."""
    return os.environ.get("MLFLOW_TRACKING_URI") or (run.root / FOLDER).resolve().as_uri()


def client_for(run: RunContext) -> MlflowClient:
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri(run))


@contextlib.contextmanager
def file_store_allowed(run: RunContext) -> Iterator[None]:
    """MLflow 3 keeps its folder store (``mlruns/``) in maintenance mode and refuses it unless
    MLFLOW_ALLOW_FILE_STORE is true; genbench chose that store (the client alone, mlflow-skinny, has no database
    store), so it opts in, for its own calls only, when the store is a folder."""
    if urlparse(tracking_uri(run)).scheme not in ("", "file"):
        yield
        return
    earlier = os.environ.get(ALLOW_FILE_STORE)
    os.environ[ALLOW_FILE_STORE] = "true"
    try:
        yield
    finally:
        if earlier is None:
            del os.environ[ALLOW_FILE_STORE]
        else:
            os.environ[ALLOW_FILE_STORE] = earlier


def experiment_id(client: MlflowClient, name: str) -> str:
    experiment = client.get_experiment_by_name(name)
    return str(experiment.experiment_id) if experiment is not None else str(client.create_experiment(name))


def start_run(client: MlflowClient, run: RunContext, cell_id: str, tags: dict[str, str]) -> str:
    created = client.create_run(
        experiment_id(client, run.name), run_name=cell_id, tags={CELL_TAG: cell_id, "genbench.run": run.name, **tags}
    )
    return str(created.info.run_id)


def running_run(client: MlflowClient, run: RunContext, cell_id: str) -> str | None:
    """The run that this cell's training opened, also when it trained in another process (an executor's worker)."""
    if cell_id in _active:
        return _active.pop(cell_id)
    experiment = client.get_experiment_by_name(run.name)
    if experiment is None:
        return None
    found = client.search_runs(
        [experiment.experiment_id], filter_string=f"tags.`{CELL_TAG}` = '{cell_id}' and attributes.status = 'RUNNING'"
    )
    return str(found[0].info.run_id) if found else None


def finished_run(client: MlflowClient, run: RunContext, cell_id: str) -> str | None:
    """A FINISHED run of this cell (logged by an earlier run of the same folder), if there is one."""
    experiment = client.get_experiment_by_name(run.name)
    if experiment is None:
        return None
    found = client.search_runs(
        [experiment.experiment_id],
        filter_string=f"tags.`{CELL_TAG}` = '{cell_id}' and attributes.status = 'FINISHED'",
        max_results=1,
    )
    return str(found[0].info.run_id) if found else None


def cell_tags(model: str, dataset: str, seed: int) -> dict[str, str]:
    return {"genbench.model": model, "genbench.dataset": dataset, "genbench.seed": str(seed)}


@genbench.hookimpl
def genbench_training_curve(point: CurvePoint, run: RunContext) -> None:
    if NAME in run.trackers and point.cell_id not in _failures.cells:
        with _failures.warned(point.cell_id), file_store_allowed(run):
            log_curve_point(client_for(run), point, run)


def log_curve_point(client: MlflowClient, point: CurvePoint, run: RunContext) -> None:
    if point.cell_id not in _active:
        tags = cell_tags(point.model, point.dataset, point.seed)
        _active[point.cell_id] = start_run(client, run, point.cell_id, tags)
    run_id = _active[point.cell_id]
    for name, value in point.values.items():
        client.log_metric(run_id, f"curve/{name}", value, step=point.step)


@genbench.hookimpl
def genbench_cell_finished(record: CellRecord, run: RunContext, reused: bool) -> None:
    if NAME in run.trackers:
        with _failures.warned(record.cell_id), file_store_allowed(run):
            client = client_for(run)
            if not (reused and finished_run(client, run, record.cell_id) is not None):  # logged before: once
                log_cell(client, record, run, live=record.trained and not reused)
        _failures.cells.discard(record.cell_id)


def log_cell(client: MlflowClient, record: CellRecord, run: RunContext, *, live: bool) -> None:
    """The finished cell in its MLflow run: the one its training opened if it trained ``live`` (in this run, curve
    point by curve point), else a new run with the curve stored in its record."""
    from mlflow.entities import Metric, Param

    run_id = running_run(client, run, record.cell_id) if live else None
    if run_id is None:
        run_id = start_run(client, run, record.cell_id, cell_tags(record.model, record.dataset, record.seed))
    stamp = int(time.time() * 1000)  # MLflow's timestamps are in milliseconds
    metrics = []
    if not live:  # loaded from a checkpoint, or reused from an earlier run: no point came while it trained
        for point in record.curve:
            step = int(point["step"])
            metrics += [Metric(f"curve/{k}", v, stamp, step) for k, v in point.items() if k != "step"]
    last_step = int(record.curve[-1]["step"]) if record.curve else 0
    scalars = dict(record.metrics)
    if record.train_time is not None:
        scalars["train_time"] = record.train_time
    metrics += [Metric(column, value, stamp, last_step) for column, value in scalars.items()]
    params = [Param(key, str(value)[:PARAM_LENGTH]) for key, value in flattened(record.config).items()]
    # MLflow takes at most 1000 metrics and 100 params in one batch.
    for start in range(0, max(len(metrics), 1), 1000):
        client.log_batch(run_id, metrics=metrics[start : start + 1000])
    for start in range(0, len(params), 100):
        client.log_batch(run_id, params=params[start : start + 100])
    if record.error is not None:
        client.set_tag(run_id, "genbench.error", record.error[:PARAM_LENGTH])
    for artifact in (run.sample_grid(record.cell_id), run.cell_file(record.cell_id)):
        if artifact is not None:
            client.log_artifact(run_id, str(artifact))
    client.set_terminated(run_id, status="FINISHED" if record.status == "ok" else "FAILED")


@genbench.hookimpl
def genbench_run_interrupted(cell_ids: list[str], run: RunContext) -> None:
    if NAME in run.trackers:
        try:
            with file_store_allowed(run):
                end_interrupted(client_for(run), run, cell_ids)
        except Exception as error:  # the interruption is the news: a tracker that cannot say so only warns
            warn(f"--log {NAME} could not end the runs of interrupted cells: {type(error).__name__}: {error}")


def end_interrupted(client: MlflowClient, run: RunContext, cell_ids: list[str]) -> None:
    """The runs opened for cells that did not finish end as KILLED, not RUNNING: those opened here and those a
    worker opened (found by their cell's tag)."""
    unfinished = set(cell_ids)
    run_ids = {_active.pop(cell_id) for cell_id in cell_ids if cell_id in _active}
    experiment = client.get_experiment_by_name(run.name)
    if experiment is not None:
        running = client.search_runs([experiment.experiment_id], filter_string="attributes.status = 'RUNNING'")
        run_ids |= {str(found.info.run_id) for found in running if found.data.tags.get(CELL_TAG) in unfinished}
    for run_id in sorted(run_ids):
        client.set_terminated(run_id, status="KILLED")
    _failures.cells -= unfinished


def flattened(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested config tables as dotted param names: {"a": {"b": 1}} -> {"a.b": 1}."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict):
            flat.update(flattened(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat
