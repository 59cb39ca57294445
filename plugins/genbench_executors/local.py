"""The ``local`` executor: cells in worker processes on this machine, placed on its GPUs round-robin.

    genbench run --executor local --jobs 4                 # four workers, the CPU cores shared among them
    genbench run --executor local --cells-per-gpu 4        # four cells at a time on each GPU

Each worker is a process of its own, started with the 'spawn' method (a forked process cannot use CUDA once
its parent has) and kept for the next cell, so plugins and data are loaded once per worker. A worker is given
one cell at a time; when it dies (killed, out of memory) its cell is given to a fresh worker, up to --retries
times, and then recorded as failed with the reason.

With GPUs (--device cuda, or auto on a machine that has one) worker w runs on GPU w mod G, through its own
CUDA_VISIBLE_DEVICES; there are G x --cells-per-gpu workers unless --jobs asks for fewer. Without, --jobs
workers (default: one per core) share the cores: each runs torch with cores / jobs threads, so that together
they do not oversubscribe the machine.
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing
import multiprocessing.connection
import os
import shutil
import signal
import tempfile
import traceback
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, cast

import torch

from genbench import (
    CellOutcome,
    CellTask,
    ExecutorContext,
    ExecutorSpec,
    GenbenchError,
    OptionGroup,
    exit_reason,
    failed_outcome,
    remove_scratch,
    run_task,
    worker_died,
)
from genbench.toolkit.devices import available_cores, worker_threads


def add_options(options: OptionGroup) -> None:
    options.addoption(
        "--jobs",
        type=int,
        metavar="N",
        help="worker processes (default: GPUs x --cells-per-gpu with GPUs, else one per CPU core)",
    )
    options.addoption(
        "--cells-per-gpu",
        type=int,
        default=1,
        metavar="K",
        help="cells that share one GPU at a time, for cells too small to keep a GPU busy (default: 1)",
    )


def check_options(options: Mapping[str, Any]) -> None:
    for flag, dest, allow_none in (("--jobs", "jobs", True), ("--cells-per-gpu", "cells_per_gpu", False)):
        value = options[dest]
        if value is None and allow_none:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise GenbenchError(f"{flag} must be an integer of at least 1, got {value!r}")


@dataclass(frozen=True)
class Placement:
    """Where one worker runs: its GPU (a CUDA_VISIBLE_DEVICES entry; None on the CPU) and its torch threads."""

    gpu: str | None
    threads: int


def placements(ctx: ExecutorContext) -> list[Placement]:
    """One placement per worker: GPUs round-robin, or the CPU cores divided among the workers."""
    jobs: int | None = ctx.options["jobs"]
    per_gpu: int = ctx.options["cells_per_gpu"]
    if ctx.device.type == "cuda":
        gpus = visible_gpus()
        slots = len(gpus) * per_gpu
        if jobs is not None and jobs > slots:
            raise GenbenchError(
                f"--jobs {jobs} is more than {len(gpus)} GPU(s) x --cells-per-gpu {per_gpu} can hold; give "
                f"--cells-per-gpu {math.ceil(jobs / len(gpus))}, or fewer --jobs"
            )
        count = min(jobs or slots, len(ctx.tasks))
        threads = worker_threads(count)
        return [Placement(gpus[worker % len(gpus)], threads) for worker in range(count)]
    count = min(jobs or available_cores(), len(ctx.tasks))
    return [Placement(None, worker_threads(count)) for _ in range(count)]


def visible_gpus() -> list[str]:
    """The GPUs this process may use, as CUDA_VISIBLE_DEVICES entries (honouring the one it was given)."""
    count = torch.cuda.device_count()
    given = os.environ.get("CUDA_VISIBLE_DEVICES")
    if given is not None:
        return [entry.strip() for entry in given.split(",")][:count]
    return [str(index) for index in range(count)]


def worker_main(connection: multiprocessing.connection.Connection, placement: Placement, scratch: str) -> None:
    """A worker process: run the cells the driver sends, one at a time, until it sends None or goes away."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's to handle: it stops the workers
    tempfile.tempdir = scratch  # in the driver's folder, which the driver removes even if this worker is killed
    if placement.gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = placement.gpu  # before CUDA starts in this process
    torch.set_num_threads(placement.threads)
    try:
        serve(connection)
    finally:
        remove_scratch()  # a multiprocessing child leaves by os._exit, without atexit


def serve(connection: multiprocessing.connection.Connection) -> None:
    while True:
        try:
            task = connection.recv()
        except EOFError:  # the driver is gone
            return
        if task is None:
            return
        try:
            message: tuple[str, Any] = ("outcome", run_task(*task))
        except GenbenchError as error:
            message = ("user error", str(error))
        except Exception as error:  # not the cell's failure (run_cell records those): the worker's own
            message = ("error", (f"{type(error).__name__}: {error}", traceback.format_exc()))
        connection.send(message)


class Worker:
    """One worker process and the pipe to it: started when first needed, and again after it died."""

    def __init__(self, placement: Placement, scratch: str) -> None:
        self.placement = placement
        self.scratch = scratch
        self.process: Any = None
        self.connection: multiprocessing.connection.Connection | None = None
        #: The task it runs and which run of that task this is (1, then 2 after a death, ...); None when idle.
        self.task: CellTask | None = None
        self.run_number = 0

    def give(self, task: CellTask, run_number: int, cache_files: Mapping[str, bytes]) -> None:
        if self.process is None:
            context = multiprocessing.get_context("spawn")  # CUDA cannot be used in a forked child
            parent, child = context.Pipe()
            arguments = (child, self.placement, self.scratch)
            self.process = context.Process(target=worker_main, args=arguments, name="genbench-worker")
            self.process.start()
            child.close()
            self.connection = parent
        assert self.connection is not None
        self.connection.send((task, cache_files))
        self.task, self.run_number = task, run_number

    def waitables(self) -> list[Any]:
        return [self.connection, self.process.sentinel] if self.task is not None else []

    def result(self) -> tuple[str, Any] | None:
        """The message of its finished task, ("died", reason) if the process died, or None while it runs."""
        assert self.connection is not None
        if self.connection.poll():
            try:
                message: tuple[str, Any] = self.connection.recv()
                return message
            except (EOFError, OSError):
                pass
        elif self.process.is_alive():
            return None
        self.process.join()
        reason = exit_reason(self.process.exitcode)
        self.close()
        return ("died", reason)

    def stop(self) -> None:
        """Let an idle worker exit; end a busy one (the driver is stopping: an error or Ctrl-C)."""
        if self.process is None:
            return
        if self.task is None and self.connection is not None:
            with contextlib.suppress(OSError):  # it died meanwhile: nothing to tell
                self.connection.send(None)
            self.process.join(timeout=10)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.close()

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
        self.process, self.connection = None, None


def run_locally(ctx: ExecutorContext) -> Iterator[CellOutcome]:
    scratch = tempfile.mkdtemp(prefix="genbench-local-")
    workers = [Worker(placement, scratch) for placement in placements(ctx)]
    if workers:
        # Every worker has a GPU when the first has one (placements): no None among them.
        gpus = {cast(str, w.placement.gpu) for w in workers}
        where = f"GPUs {sorted(gpus)}" if workers[0].placement.gpu else "the CPU"
        ctx.echo(f"local: {len(workers)} workers on {where}, {workers[0].placement.threads} torch threads each")
    waiting = deque((task, 1) for task in ctx.tasks)
    try:
        while waiting or any(worker.task for worker in workers):
            for worker in workers:
                if worker.task is None and waiting:
                    task, run_number = waiting.popleft()
                    worker.give(task, run_number, ctx.cache_files)
                    ctx.started(task)
            multiprocessing.connection.wait([item for worker in workers for item in worker.waitables()])
            for worker in workers:
                if worker.task is None:
                    continue
                message = worker.result()
                if message is None:
                    continue
                task, run_number = worker.task, worker.run_number
                worker.task = None
                kind, payload = message
                if kind == "user error":
                    raise GenbenchError(payload)
                if kind == "outcome":
                    yield payload
                elif kind == "error":
                    summary, trace = payload
                    yield failed_outcome(task, f"WorkerError: {summary}", trace)
                elif run_number <= ctx.retries:
                    ctx.echo(f"{task.label}: its worker died ({payload}); retry {run_number} of {ctx.retries}")
                    waiting.appendleft((task, run_number + 1))
                else:
                    yield worker_died(task, payload, run_number)
    finally:
        for worker in workers:
            worker.stop()
        shutil.rmtree(scratch, ignore_errors=True)


LOCAL = ExecutorSpec(
    "local",
    "worker processes on this machine (--jobs N), placed on its GPUs round-robin (--cells-per-gpu K)",
    run_locally,
    add_options=add_options,
    check=check_options,
)
