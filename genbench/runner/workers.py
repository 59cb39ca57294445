"""The worker's side of an executor: rebuild the run from a CellTask and run its one cell.

Worker processes (the ``local`` executor) and Ray tasks call ``run_task``. It prepares the run once per process
(plugins and data loaded once, however many cells the worker runs), checks that the worker's code and data
give the cell the identity the driver gave it, and runs ``cell.run_cell``: the code path of the serial
executor, with the same seed.

Where the worker sees the driver's --results-dir (one machine, or a cluster with a shared file system) it
writes its cell's record, checkpoint and sample grid there itself, each atomically. Where it does not, it
works in a scratch folder of its own that starts with the files the task carries (the cell's checkpoint, the
caches) and returns every file the cell wrote, for the driver to write.
"""

from __future__ import annotations

import atexit
import json
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from genbench.contract.executors import CellOutcome, CellTask, failed_outcome, safe_relative
from genbench.runner import cell
from genbench.runner.identity import cell_identity
from genbench.runner.prepare import PreparedRun, prepare

#: One prepared run per request in this process: a worker that runs many cells loads plugins and data once.
_prepared: dict[str, PreparedRun] = {}
#: This process's scratch --results-dir for tasks that do not share the driver's (removed when it exits).
_scratch: list[Path] = []


def run_task(task: CellTask, cache_files: Mapping[str, bytes] | None = None) -> CellOutcome:
    """Run one cell where the worker is, and return its outcome (GenbenchError for a user mistake).

    ``cache_files`` (the executor context's) seed the scratch folder of a worker that does not share the
    driver's --results-dir, beside the task's own checkpoint."""
    shared = sees_driver_folder(task)
    if task.storage == "shared" and not shared:
        return failed_outcome(
            task,
            f"WorkerStorage: this worker does not see the driver's --results-dir {task.request.results_dir}; "
            "put it on a file system every worker mounts at that path, or use --worker-storage copy",
        )
    results_dir = task.request.results_dir if shared else scratch_results_dir()
    if not shared:
        place_files(results_dir, {**(cache_files or {}), **task.files})
    run = prepared_run(replace(task.request, results_dir=results_dir))
    spec = next(spec for spec in run.models if spec.name == task.model)
    differs = identity_differences(run, task)
    if differs:
        return failed_outcome(
            task,
            f"WorkerDiffers: the worker's {differs} differ from the driver's; install the same genbench, plugins "
            "and data on every worker",
        )
    before = {} if shared else file_states(results_dir)
    record = cell.run_cell(
        run,
        spec,
        task.seed,
        task.cell_id,
        progress=False,
        retrain=task.retrain,
        sample_options=task.sample_options,
    )
    if shared:
        run.directory.write_cell(record)
        return CellOutcome(task, record, written=True)
    files = changed_files(results_dir, before)
    empty_folder(results_dir)  # the files travel back; a worker killed later leaves an empty folder at most
    return CellOutcome(task, record, files=files)


def identity_differences(run: PreparedRun, task: CellTask) -> str:
    """Which parts of the cell's identity differ between this worker and the driver ("" when none)."""
    spec = next(spec for spec in run.models if spec.name == task.model)
    mine = cell_identity(run, spec, task.seed)
    names = {"checkpoint_key": "model code, config or data", "evaluation_code": "metric code"}
    return " and ".join(names[key] for key in names if mine[key] != task.identity.get(key))


def sees_driver_folder(task: CellTask) -> bool:
    """Whether the driver's marker file is here with its token: then this worker shares --results-dir."""
    if task.storage == "copy" or task.marker is None:
        return False
    try:
        return task.marker.read_text(encoding="utf-8") == task.token
    except (OSError, UnicodeDecodeError):
        return False


def prepared_run(request: Any) -> PreparedRun:
    """The request prepared once per process (the driver checked it already; this cannot fail differently)."""
    key = json.dumps(asdict(request), sort_keys=True, default=str)
    if key not in _prepared:
        _prepared[key] = prepare(request)
    return _prepared[key]


def scratch_results_dir() -> Path:
    """A --results-dir of this process's own, for tasks whose worker does not share the driver's: empty at the
    start of each task (what a task needs travels with it), and removed when the process exits."""
    if not _scratch:
        _scratch.append(Path(tempfile.mkdtemp(prefix="genbench-worker-")))
        atexit.register(remove_scratch)
    folder = _scratch[0]
    empty_folder(folder)
    return folder


def empty_folder(folder: Path) -> None:
    for child in folder.iterdir():
        if child.is_dir():
            shutil.rmtree(child)
        else:
            child.unlink()


def remove_scratch() -> None:
    """Remove this process's scratch folder (a worker process calls it on its way out, where atexit may not run)."""
    while _scratch:
        shutil.rmtree(_scratch.pop(), ignore_errors=True)


def place_files(results_dir: Path, files: Mapping[str, bytes]) -> None:
    """Write the files a task carries into the scratch folder (those already there as they are stay)."""
    for relative, content in files.items():
        path = results_dir / safe_relative(relative)
        if path.is_file() and path.stat().st_size == len(content) and path.read_bytes() == content:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)


def file_states(folder: Path) -> dict[str, tuple[int, int]]:
    """Relative path -> (size, modification time) of every finished file under ``folder``."""
    states = {}
    for path in folder.rglob("*"):
        if path.is_file() and not path.name.endswith(".tmp"):
            stat = path.stat()
            states[path.relative_to(folder).as_posix()] = (stat.st_size, stat.st_mtime_ns)
    return states


def changed_files(folder: Path, before: dict[str, tuple[int, int]]) -> dict[str, bytes]:
    """The files under ``folder`` that are new or changed since ``before``, but cell records, which travel as
    the outcome's record."""
    return {
        relative: (folder / relative).read_bytes()
        for relative, state in file_states(folder).items()
        if before.get(relative) != state and Path(relative).parent.name != "cells"
    }
