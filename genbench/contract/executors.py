"""Executors run a grid's cells: in the driver's process, in worker processes, or as tasks on a cluster.

This module is the contract between the driver (the process that runs ``genbench run``) and an executor
plugin. The driver checks the request, reads the records of finished cells, and hands the cells still to run
to one executor as ``CellTask`` objects; the executor yields one ``CellOutcome`` per task as each finishes, in
any order. The driver alone writes run.json, results.csv and the leaderboard; a worker writes only its own
cell's record, checkpoint and sample grid (atomically, under the shared ``--results-dir``), or, when it does
not share that folder, sends them back in its outcome for the driver to write (see ``storage`` below).

A worker rebuilds the run from ``CellTask.request`` with ``genbench.runner.workers.run_task``, which runs the same
``runner.run_cell`` as the serial executor: the same seeds and the same code give the same numbers.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from genbench.contract.events import CellRecord
from genbench.contract.options import OptionGroup
from genbench.contract.request import RunRequest

SERIAL = "serial"
#: How workers reach the results: "shared" (they read and write the driver's --results-dir), "copy" (each
#: task carries its checkpoint and the caches, and the files a worker writes come back with its outcome) or
#: "auto" (shared where the worker sees the driver's folder, found by a marker file; copy elsewhere).
STORAGE_MODES = ("auto", "shared", "copy")


@dataclass(frozen=True)
class CellTask:
    """One cell to run, as plain data that pickles: a worker rebuilds the run from ``request``."""

    #: The driver's request, with absolute paths: a worker may start in another folder or on another machine.
    request: RunRequest
    model: str
    seed: int
    #: The id the driver gave the cell (its record's file name); a worker never computes another one.
    cell_id: str
    #: --rerun: fit the model even where a checkpoint exists, and replace that checkpoint.
    retrain: bool
    #: What the cell id stands for, as the driver computed it: the checkpoint key (model, config, data
    #: fingerprint, seed, code) and the metrics' code. A worker whose installed code or data differ fails the
    #: cell rather than record other numbers under this id.
    identity: Mapping[str, Any]
    #: "shared", "copy" or "auto" (see STORAGE_MODES).
    storage: str = "auto"
    #: A file in the driver's run folder that holds ``token``: a worker that reads the token there shares it.
    marker: Path | None = None
    token: str = ""
    #: For a worker that does not share --results-dir: the cell's checkpoint, if there is one to reuse, by path
    #: relative to --results-dir. (The caches every cell may need are ``ExecutorContext.cache_files``.)
    files: Mapping[str, bytes] = field(default_factory=dict)
    #: The model's evaluation-time options for this cell (one combination of a sweep); {} where it has none.
    sample_options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """How progress lines name the cell: "vae seed 0", "ddpm seed 0 (steps=10)"."""
        return cell_label(self.model, self.seed, self.sample_options)


@dataclass
class CellOutcome:
    """What an executor yields for each task: the cell's record, and whether the driver still has to write it."""

    task: CellTask
    record: CellRecord
    #: True when the worker wrote the record (and the checkpoint) under the shared --results-dir itself.
    written: bool = False
    #: Files the worker wrote outside a shared --results-dir (checkpoint, sample grid, caches), by path
    #: relative to --results-dir, for the driver to write.
    files: Mapping[str, bytes] = field(default_factory=dict)


@dataclass
class ExecutorContext:
    """Everything an executor's ``run`` gets from the driver."""

    #: The cells to run, in grid order (models x seeds); finished cells are not among them.
    tasks: list[CellTask]
    #: The values of the options this executor added (``ExecutorSpec.add_options``), by dest.
    options: Mapping[str, Any]
    #: --retries: how many times a cell whose worker died (killed, out of memory, a lost node) is run again
    #: before it is recorded as failed. A cell that raises is not retried: it is recorded as failed at once.
    retries: int
    #: The device the driver resolved from --device (cpu or cuda): where the workers are to run.
    device: torch.device
    #: Runs one task in the driver's own process (what the serial executor does) and returns its outcome.
    run_here: Callable[[CellTask], CellOutcome]
    #: Tell the driver that a task has started on a worker: it prints the cell's "running" line.
    started: Callable[[CellTask], None]
    #: One line of news for the user (a retry, where the workers run).
    echo: Callable[[str], None]
    #: For workers that may not share --results-dir: the driver's caches (reference statistics, trained feature
    #: extractors), by path relative to --results-dir, to hand to ``run_task`` with each task; empty otherwise.
    #: The same for every task: an executor that can send them once per machine should (``ray`` puts them in
    #: its object store once).
    cache_files: Mapping[str, bytes] = field(default_factory=dict)


@dataclass(frozen=True)
class ExecutorSpec:
    """How to run cells; ``genbench run --executor NAME`` picks one (``serial`` by default)."""

    name: str
    description: str
    #: Runs ``ctx.tasks`` and yields one CellOutcome per task as each finishes, in any order. It raises
    #: GenbenchError for a user mistake (a bad option, an unreachable cluster), which stops the run; a cell that
    #: fails or whose worker dies is an outcome with a failed record (see ``worker_died``), and the others go on.
    run: Callable[[ExecutorContext], Iterator[CellOutcome]]
    #: Adds this executor's command-line options to ``genbench run`` with ``options.addoption(...)``; their
    #: values reach ``run`` as ``ctx.options[dest]``. They say how cells run, never what they compute, so
    #: they are not part of any cell id: a grid run by one executor resumes under another.
    add_options: Callable[[OptionGroup], None] | None = None
    #: Checks the options (by dest) before anything is written, raising GenbenchError if they cannot work
    #: (a missing package, a bad number); cheap: it starts no worker.
    check: Callable[[Mapping[str, Any]], None] | None = None
    #: Whether every worker runs on the driver's machine and so sees its --results-dir. False (a cluster):
    #: with --worker-storage auto, each task carries its checkpoint and the caches, for workers that do not.
    same_machine: bool = True


@dataclass
class ExecutionOptions:
    """How to run a grid (never what it computes): the executor and its options. Not part of any cell id."""

    #: The executor's name (see ``genbench plugins``).
    executor: str = SERIAL
    #: Values of the executors' own options, by dest; the chosen executor's are handed to it.
    options: dict[str, Any] = field(default_factory=dict)
    #: Runs of a cell whose worker died, after the first (Ray's max_retries; a resubmission for local).
    retries: int = 1
    #: "auto", "shared" or "copy": how workers reach the results (see STORAGE_MODES).
    storage: str = "auto"


def cell_label(model: str, seed: int, sample_options: Mapping[str, Any]) -> str:
    """ "vae seed 0", or "ddpm seed 0 (steps=10)" for one evaluation of a sweep."""
    options = ", ".join(f"{key}={value}" for key, value in sample_options.items())
    return f"{model} seed {seed}" + (f" ({options})" if options else "")


def failed_outcome(task: CellTask, error: str, traceback: str | None = None) -> CellOutcome:
    """An outcome for a task whose worker could not give a record: a failed cell with the reason."""
    record = CellRecord(
        cell_id=task.cell_id,
        model=task.model,
        dataset=task.request.dataset,
        seed=task.seed,
        status="failed",
        config={},
        checkpoint_key="",
        error=error,
        traceback=traceback,
    )
    return CellOutcome(task, record)


def worker_died(task: CellTask, reason: str, runs: int) -> CellOutcome:
    """The failed outcome of a cell whose worker died on each of its ``runs`` runs."""
    tries = "once" if runs == 1 else f"{runs} times"
    return failed_outcome(task, f"WorkerDied: the worker running this cell died ({reason}); tried {tries}")


def exit_reason(exitcode: int | None) -> str:
    """A dead process's exit code in words: "killed by SIGKILL (out of memory or kill -9)"."""
    if exitcode is None:
        return "lost without an exit code"
    if exitcode < 0:
        name = signal.Signals(-exitcode).name if -exitcode in signal.valid_signals() else f"signal {-exitcode}"
        hint = " (out of memory, or kill -9)" if -exitcode == signal.SIGKILL else ""
        return f"killed by {name}{hint}"
    return f"exited with code {exitcode}"


def absolute_request(request: RunRequest) -> RunRequest:
    """``request`` with its folders absolute, as a worker that starts elsewhere needs them."""
    return replace(
        request,
        results_dir=request.results_dir.expanduser().resolve(),
        data_root=None if request.data_root is None else request.data_root.expanduser().resolve(),
        checkpoints={name: path.expanduser().resolve() for name, path in request.checkpoints.items()},
        sample_sets={name: path.expanduser().resolve() for name, path in request.sample_sets.items()},
    )


def safe_relative(relative: str) -> Path:
    """A path inside --results-dir as a worker or driver names it: relative, and never leading out."""
    path = Path(relative)
    if path.is_absolute() or ".." in path.parts or not path.parts:
        raise ValueError(f"{relative!r} is not a path inside the results folder")
    return path
