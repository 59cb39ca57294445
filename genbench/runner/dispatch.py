"""The driver's side of running cells: check the executor, lock the run folder, hand out the tasks, and write
what comes back.

The driver is the one process that writes run.json, results.csv and the leaderboard. It holds a lock on the
run folder (``.genbench.lock``) from before it reads the first record until the leaderboard is written, so a
second driver started on the same folder is refused rather than interleaving its writes with the first's.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from genbench.contract import CellRecord, GenbenchError, OptionGroup
from genbench.contract.executors import (
    SERIAL,
    STORAGE_MODES,
    CellOutcome,
    CellTask,
    ExecutionOptions,
    ExecutorContext,
    ExecutorSpec,
    failed_outcome,
    safe_relative,
)
from genbench.registry import EXECUTOR, Registry
from genbench.toolkit.files import write_atomic
from genbench.toolkit.text import warn

if TYPE_CHECKING:
    from genbench.runner.prepare import PreparedRun

#: The lock a driver holds on its run folder while it runs.
LOCK_NAME = ".genbench.lock"
#: A file with a random token per driver: a worker that reads this token there shares the driver's folder.
MARKER_NAME = ".genbench-driver"


def check_execution(registry: Registry, execution: ExecutionOptions) -> tuple[ExecutorSpec, dict[str, Any]]:
    """The executor and its options (defaults filled in), checked before anything is written."""
    spec = registry.get(EXECUTOR, execution.executor)
    if isinstance(execution.retries, bool) or not isinstance(execution.retries, int) or execution.retries < 0:
        raise GenbenchError(f"--retries must be an integer of at least 0, got {execution.retries!r}")
    if execution.storage not in STORAGE_MODES:
        raise GenbenchError(f"--worker-storage {execution.storage!r} is not one of {', '.join(STORAGE_MODES)}")
    options = executor_options(registry, spec, execution.options)
    if spec.check is not None:
        spec.check(options)
    return spec, options


def option_defaults(spec: ExecutorSpec) -> dict[str, Any]:
    """The executor's option dests with their defaults, read from a parser of its own."""
    parser = argparse.ArgumentParser(add_help=False)
    group = OptionGroup(parser.add_argument_group())
    if spec.add_options is not None:
        spec.add_options(group)
    return {dest: parser.get_default(dest) for dest in group.dests}


def executor_options(registry: Registry, spec: ExecutorSpec, given: Mapping[str, Any]) -> dict[str, Any]:
    """The chosen executor's defaults with the given values over them; an option of another executor is the
    user's mistake (``--jobs`` without ``--executor local``), named with the executor that has it."""
    defaults = option_defaults(spec)
    stray = sorted(set(given) - set(defaults))
    if stray:
        owners = {
            name: other
            for other in registry.names(EXECUTOR)
            for name in option_defaults(registry.get(EXECUTOR, other))
            if name in stray
        }
        owned = [
            f"--{name.replace('_', '-')} is an option of executor {owners[name]!r}; add --executor {owners[name]}"
            for name in stray
            if name in owners
        ]
        if len(owned) == len(stray):  # the command line's mistake: a flag of an executor that was not chosen
            raise GenbenchError("; ".join(owned))
        unowned = [f"{name} is no executor's option" for name in stray if name not in owners]
        hint = "; ".join([*owned, *unowned])
        raise GenbenchError(f"executor {spec.name!r} takes no option {', '.join(stray)} ({hint})")
    return {**defaults, **given}


@contextlib.contextmanager
def run_folder_lock(root: Path) -> Iterator[None]:
    """Hold the run folder's lock, or refuse in one line if another driver holds it."""
    from filelock import FileLock, Timeout

    root.mkdir(parents=True, exist_ok=True)
    lock = FileLock(root / LOCK_NAME)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise GenbenchError(
            f"the run folder {root} is in use by another genbench run (it holds {root / LOCK_NAME}); wait for "
            "that run to finish, or give this one another --name"
        ) from None
    try:
        yield
    finally:
        lock.release()


def run_cells(
    run: PreparedRun,
    tasks: list[CellTask],
    execution: ExecutionOptions,
    *,
    total: int,
    progress: bool,
    echo: Callable[[str], None],
    run_here: Callable[[CellTask], CellOutcome],
) -> list[CellRecord]:
    """Hand ``tasks`` to the executor, write each outcome that comes back, and return the records in grid order.

    ``total`` counts every cell of the grid, finished ones included, for the progress bar."""
    from tqdm.auto import tqdm

    spec, options = check_execution(run.registry, execution)
    tasks = addressed(run, tasks, execution, spec)
    results_dir = run.request.results_dir
    attach = spec.name != SERIAL and attaches(execution, spec)
    bar = tqdm(total=total, initial=total - len(tasks), desc="cells", unit="cell", disable=not progress)

    def say(line: str) -> None:
        if progress:
            with tqdm.external_write_mode(file=sys.stderr):
                echo(line)
        else:
            echo(line)

    context = ExecutorContext(
        tasks=tasks,
        options=options,
        retries=execution.retries,
        device=run.device,
        run_here=run_here,
        started=lambda task: say(started_line(run, task)),
        echo=say,
        cache_files=folder_files(results_dir, results_dir / ".cache") if attach else {},
    )
    records: dict[str, CellRecord] = {}
    outcomes: Iterator[CellOutcome] = iter(())
    try:
        outcomes = iter(spec.run(context))
        with sigterm_interrupts():
            for outcome in outcomes:
                records[outcome.task.cell_id] = finish(run, outcome)
                say(finished_line(outcome))
                bar.update(1)
            for task in tasks:  # an executor that lost a task must not lose its cell's row
                if task.cell_id not in records:
                    lost = failed_outcome(task, f"ExecutorLostCell: executor {spec.name!r} gave no outcome for it")
                    records[task.cell_id] = finish(run, lost)
    except BaseException:  # Ctrl-C, SIGTERM, an error that stops the run: trackers close what they opened
        close = getattr(outcomes, "close", None)  # the executor stops its workers first (a generator's finally)
        if callable(close):
            with contextlib.suppress(Exception):
                close()
        interrupted(run, [task.cell_id for task in tasks if task.cell_id not in records])
        raise
    finally:
        bar.close()
    return [records[task.cell_id] for task in tasks]


class Terminated(KeyboardInterrupt):
    """SIGTERM reached the driver while its cells ran: it stops as Ctrl-C stops it."""


@contextlib.contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """While cells run, SIGTERM (a batch system's stop, ``kill``) raises ``Terminated`` in the driver instead of
    ending it at once, so that trackers hear of the interruption (``genbench_run_interrupted``). Only in the main
    thread (the only one signals reach) and only where SIGTERM has its default action: a handler that the
    program embedding genbench set stays."""
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGTERM) != signal.SIG_DFL:
        yield
        return

    def terminate(signum: int, frame: object) -> None:
        raise Terminated(f"signal {signal.Signals(signum).name}")

    signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def interrupted(run: PreparedRun, cell_ids: list[str]) -> None:
    """Tell the plugins which cells a stopping run leaves unfinished; a failing listener warns, and the reason the
    run stops is what the user sees."""
    try:
        run.registry.call_hook("genbench_run_interrupted", cell_ids=cell_ids, run=run.events())
    except Exception as error:
        warn(f"a plugin failed while the run stopped: {type(error).__name__}: {error}")


def announce_reused(run: PreparedRun, record: CellRecord) -> None:
    """A cell reused from an earlier run, announced to the trackers when some are on: ``--log`` added to a run that
    is done logs what it computed."""
    if run.request.log:
        run.registry.call_hook("genbench_cell_finished", record=record, run=run.events(), reused=True)


def addressed(
    run: PreparedRun, tasks: list[CellTask], execution: ExecutionOptions, spec: ExecutorSpec
) -> list[CellTask]:
    """The tasks with how their workers reach the results: the driver's marker, and for workers that may not
    share --results-dir the cell's checkpoint."""
    if spec.name == SERIAL:
        return tasks
    token = uuid.uuid4().hex
    marker = run.directory.root.resolve() / MARKER_NAME
    write_bytes_atomic(marker, token.encode())
    attach = attaches(execution, spec)
    return [
        replace(
            task,
            storage=execution.storage,
            marker=marker,
            token=token,
            files=checkpoint_files(run, task) if attach else {},
        )
        for task in tasks
    ]


def attaches(execution: ExecutionOptions, spec: ExecutorSpec) -> bool:
    """Whether tasks carry their checkpoints and the caches: for workers that may not share --results-dir."""
    return execution.storage == "copy" or (execution.storage == "auto" and not spec.same_machine)


def checkpoint_files(run: PreparedRun, task: CellTask) -> dict[str, bytes]:
    """The cell's checkpoint (tensors and sidecar) if there is one and it is to be reused."""
    if task.retrain:
        return {}
    key = str(task.identity.get("checkpoint_key", ""))
    paths = run.directory.checkpoint_paths(key) if key else ()
    return {path.relative_to(run.request.results_dir).as_posix(): path.read_bytes() for path in paths if path.is_file()}


def folder_files(base: Path, folder: Path) -> dict[str, bytes]:
    """Every finished file under ``folder``, by path relative to ``base``."""
    if not folder.is_dir():
        return {}
    return {
        path.relative_to(base).as_posix(): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and not path.name.endswith(".tmp")
    }


def finish(run: PreparedRun, outcome: CellOutcome) -> CellRecord:
    """Write what the worker could not (its files, its record), and tell the plugins the cell is done."""
    if not outcome.written:
        for relative, content in outcome.files.items():
            path = run.request.results_dir / safe_relative(relative)
            write_bytes_atomic(path, content)
        run.directory.write_cell(outcome.record)
    run.registry.call_hook("genbench_cell_finished", record=outcome.record, run=run.events(), reused=False)
    return outcome.record


def write_bytes_atomic(path: Path, content: bytes) -> None:
    def write(temporary: Path) -> None:
        temporary.write_bytes(content)

    write_atomic(path, write)


def started_line(run: PreparedRun, task: CellTask) -> str:
    origin = run.origins.get(task.model)
    note = "--rerun: training and evaluating again" if task.retrain else "running"
    return f"{task.label}: {note}" + (f" ({origin.note})" if origin else "")


def finished_line(outcome: CellOutcome) -> str:
    record = outcome.record
    return f"{outcome.task.label}: {record.status}" + (f" ({record.error})" if record.error else "")
