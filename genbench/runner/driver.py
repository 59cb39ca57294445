"""The driver: the one process that owns a run folder while a run goes on.

It holds the folder's lock, removes what an interrupted run left half-written, gives every cell its id,
writes run.json, reuses finished cells, hands the others to the executor (``dispatch``), and writes
results.csv and the leaderboard at the end.
"""

from __future__ import annotations

import dataclasses
import platform
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from genbench.contract import (
    CellRecord,
)
from genbench.contract.executors import CellOutcome, CellTask, ExecutionOptions, absolute_request, cell_label
from genbench.contract.request import RunRequest
from genbench.report import write_run_leaderboard
from genbench.runner import cell
from genbench.runner.dispatch import announce_reused, check_execution, run_cells, run_folder_lock
from genbench.runner.grids import save_real_grid
from genbench.runner.identity import cell_id, cell_identity, evaluation_code, files_named_by, model_key
from genbench.runner.prepare import PreparedRun
from genbench.runner.provenance import device_description, git_revision, now, package_versions, plain_data
from genbench.store.frame import records_frame
from genbench.store.layout import cache_dir
from genbench.toolkit.files import remove_stale_temporaries

if TYPE_CHECKING:
    import pandas as pd


def execute(
    run: PreparedRun,
    *,
    progress: bool = False,
    command: list[str] | None = None,
    echo: Callable[[str], None] = lambda line: None,
    execution: ExecutionOptions | None = None,
) -> pd.DataFrame:
    """Run every cell of a prepared run, resuming finished ones, and return the results table.

    ``execution`` picks the executor that runs the cells (serial, in this process, by default); this process
    stays the driver, the one that writes run.json, results.csv and the leaderboard, holding the run folder's
    lock while it runs."""
    execution = execution or ExecutionOptions()
    check_execution(run.registry, execution)  # before anything is written
    with run_folder_lock(run.directory.root):
        return _execute_locked(run, progress=progress, command=command, echo=echo, execution=execution)


def _execute_locked(
    run: PreparedRun,
    *,
    progress: bool,
    command: list[str] | None,
    echo: Callable[[str], None],
    execution: ExecutionOptions,
) -> pd.DataFrame:
    directory = run.directory
    directory.create()
    stale = remove_stale_temporaries([directory.root, cache_dir(run.request.results_dir)])
    if stale:
        echo(f"removed {len(stale)} half-written temporary files that an interrupted run left behind")
    started = now()
    # One cell per model, seed and combination of evaluation-time options (one, {}, where none were given).
    cells = [
        (spec, seed, index)
        for spec in run.models
        for seed in run.request.seeds
        for index in range(len(run.sample_options_of(spec.name)))
    ]
    metric_settings = {spec.name: plain_data(run.metric_configs[spec.name]) for spec in run.metrics}
    # Options that plugins added (a weights file, say) change what metrics measure: they name the cell too; so
    # does the code of the metrics and of the extractors they use.
    evaluation = {
        "metrics": metric_settings,
        "plugin_options": plain_data(run.request.plugin_options),
        "code": evaluation_code(run),
        "files": files_named_by([metric_settings, plain_data(run.request.plugin_options)]),
    }
    ids = {
        (spec.name, seed, index): cell_id(
            spec.name,
            run.dataset.name,
            seed,
            model_key(run, spec, seed),
            evaluation_of_cell(evaluation, run.sample_options_of(spec.name)[index]),
        )
        for spec, seed, index in cells
    }
    run_info = {
        "command": command if command is not None else ["genbench.run"],
        "request": plain_data(run.request),
        "models": {name: plain_data(config) for name, config in run.model_configs.items()},
        "metrics": metric_settings,
        "columns": run.metric_columns,
        "column_specs": {c.name: dataclasses.asdict(c) for m in run.metrics for c in m.columns},
        "column_metrics": {c.name: m.name for m in run.metrics for c in m.columns},
        "dataset": dict(run.dataset.provenance),
        "origins": {name: origin.description for name, origin in run.origins.items()},
        "device": device_description(run.device),
        "packages": package_versions(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "git_revision": git_revision(),
        "plugins": [dataclasses.asdict(p) for p in run.registry.plugins],
        "cells": [ids[cell] for cell in ids],
        # How the cells ran (never what they computed): the executor and its options.
        "execution": dataclasses.asdict(execution),
        "started": started,
        "status": "running",
    }
    directory.write_run(run_info)
    save_real_grid(run)
    finished: dict[str, CellRecord] = {}
    tasks = []
    worker_request = absolute_request(run.request)
    for spec, seed, index in cells:
        identifier = ids[(spec.name, seed, index)]
        options = run.sample_options_of(spec.name)[index]
        rerun = rerun_requested(run.request, spec.name)
        record = None if rerun else directory.read_cell(identifier)
        if record is not None and record.status == "ok":
            label = cell_label(spec.name, seed, options)
            echo(f"{label}: finished before, reusing {directory.cell_path(identifier)}")
            finished[identifier] = record
            announce_reused(run, record)  # to the trackers, if some are on: --log added later logs it
        else:
            identity = cell_identity(run, spec, seed)
            tasks.append(CellTask(worker_request, spec.name, seed, identifier, rerun, identity, sample_options=options))

    def run_here(task: CellTask) -> CellOutcome:
        spec = next(spec for spec in run.models if spec.name == task.model)
        record = cell.run_cell(
            run,
            spec,
            task.seed,
            task.cell_id,
            progress=progress,
            retrain=task.retrain,
            sample_options=task.sample_options,
        )
        return CellOutcome(task, record)

    ran = run_cells(run, tasks, execution, total=len(cells), progress=progress, echo=echo, run_here=run_here)
    finished.update((record.cell_id, record) for record in ran)
    records = [finished[identifier] for identifier in ids.values()]
    frame = records_frame(records, run.metric_columns)
    directory.write_csv(frame)
    failed = int((frame["status"] != "ok").sum())
    directory.write_run({**run_info, "finished": now(), "status": "failed cells" if failed else "ok"})
    write_run_leaderboard(directory.root)
    frame.attrs["run_dir"] = str(directory.root)
    return frame


def rerun_requested(request: RunRequest, model: str) -> bool:
    """--rerun (every model) or --rerun MODEL,...: retrain the model and evaluate its cells again."""
    return request.rerun is not None and (not request.rerun or model in request.rerun)


def evaluation_of_cell(evaluation: dict[str, Any], sample_options: Mapping[str, Any]) -> dict[str, Any]:
    """What names a cell beyond its checkpoint: the run's evaluation settings, and the model's evaluation-time
    options where it has some (none: the cell ids of runs before such options existed)."""
    return {**evaluation, "sample_options": dict(sample_options)} if sample_options else evaluation
