"""The ``ray`` executor: each cell is a Ray task, on this machine or anywhere on a Ray cluster.

    genbench run --executor ray                                   # a local Ray instance, started for this run
    genbench run --executor ray --ray-address auto                # the cluster this machine belongs to
    genbench run --executor ray --ray-address HOST:6379 --gpus-per-cell 0.25

Ray (https://docs.ray.io) schedules each task where its resources are free: ``--cpus-per-cell`` CPUs and
``--gpus-per-cell`` GPUs, fractions allowed, so four cells may share one GPU with 0.25. A task whose worker
dies (out of memory, kill -9, a lost node) is run again by Ray up to --retries times (its ``max_retries``) and
then recorded as failed; a cell that raises is recorded as failed at once, as everywhere.

Ray is an optional dependency (``pip install 'genbench[ray]'``) and is imported only when this executor runs.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Iterator, Mapping
from typing import Any

import torch

from genbench import (
    CellOutcome,
    CellTask,
    ExecutorContext,
    ExecutorSpec,
    GenbenchError,
    OptionGroup,
    failed_outcome,
    run_task,
    worker_died,
)


def add_options(options: OptionGroup) -> None:
    options.addoption(
        "--ray-address",
        metavar="ADDRESS",
        help="a running Ray cluster: 'auto' (the one this machine belongs to) or HOST:PORT (default: start a "
        "local Ray instance for this run, or use the one this Python process has already started)",
    )
    options.addoption(
        "--gpus-per-cell",
        type=float,
        metavar="X",
        help="GPUs each cell asks Ray for, fractions allowed (default: 1 if the cluster has GPUs and --device is "
        "not cpu, else 0)",
    )
    options.addoption(
        "--cpus-per-cell",
        type=float,
        default=1.0,
        metavar="X",
        help="CPUs each cell asks Ray for; its torch threads (default: 1)",
    )


def check_options(options: Mapping[str, Any]) -> None:
    if importlib.util.find_spec("ray") is None:
        raise GenbenchError("--executor ray needs Ray, which is not installed: pip install 'genbench[ray]'")
    for flag, dest, least in (("--gpus-per-cell", "gpus_per_cell", 0.0), ("--cpus-per-cell", "cpus_per_cell", 0.0)):
        value = options[dest]
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or not value >= least:
            raise GenbenchError(f"{flag} must be a number of at least {least:g}, got {value!r}")
    if options["cpus_per_cell"] is None or options["cpus_per_cell"] <= 0:
        raise GenbenchError(f"--cpus-per-cell must be more than 0, got {options['cpus_per_cell']!r}")
    address = options["ray_address"]
    if address is not None and not isinstance(address, str):
        raise GenbenchError(f"--ray-address must be 'auto' or HOST:PORT, got {address!r}")


def run_cell_task(task: CellTask, threads: int, cache_files: Mapping[str, bytes]) -> CellOutcome:
    """The body of each Ray task: the worker's torch threads match the CPUs Ray gave it."""
    torch.set_num_threads(threads)
    return run_task(task, cache_files)


def run_on_ray(ctx: ExecutorContext) -> Iterator[CellOutcome]:
    import ray
    import ray.exceptions

    started_here = connect(ctx.options["ray_address"])
    cpus = float(ctx.options["cpus_per_cell"])
    gpus = gpus_per_cell(ctx, ray.cluster_resources())  # type: ignore[no-untyped-call]
    ctx.echo(f"ray: {len(ctx.tasks)} tasks of {cpus:g} CPU and {gpus:g} GPU each on {describe_cluster()}")
    remote = ray.remote(run_cell_task).options(
        num_cpus=cpus, num_gpus=gpus, max_retries=ctx.retries, retry_exceptions=False
    )
    cache_files: Mapping[str, bytes] = dict(ctx.cache_files)
    caches = ray.put(cache_files)  # in the object store once, fetched once per node
    pending = {}
    try:
        for task in ctx.tasks:
            pending[remote.remote(task, max(1, int(cpus)), caches)] = task
            ctx.started(task)
        while pending:
            [done], _ = ray.wait(list(pending), num_returns=1)
            task = pending.pop(done)
            try:
                outcome: CellOutcome = ray.get(done)
            except ray.exceptions.RayTaskError as error:  # raised in run_task: not the cell's (it records those)
                cause = error.cause
                if isinstance(cause, GenbenchError):
                    raise GenbenchError(str(cause)) from None
                yield failed_outcome(task, f"WorkerError: {type(cause).__name__}: {cause}")
            except ray.exceptions.RayError as error:  # the worker or its node died on every run
                yield worker_died(task, f"{type(error).__name__}: {first_line(str(error))}", ctx.retries + 1)
            else:
                yield outcome
    finally:
        for reference in pending:
            ray.cancel(reference, force=True)
        if started_here:
            ray.shutdown()


def connect(address: str | None) -> bool:
    """Join the cluster at ``address`` (or start a local instance); False if this process had joined one."""
    import ray

    if ray.is_initialized():
        return False
    # No address: a new instance for this run ("local"), never a cluster that `ray start` left on this machine
    # (that is --ray-address auto); it needs no dashboard. A cluster's own settings are its own.
    local = {"address": "local", "include_dashboard": False} if address is None else {"address": address}
    try:
        ray.init(logging_level=logging.WARNING, log_to_driver=True, **local)
    except (ConnectionError, ValueError, RuntimeError) as error:
        raise GenbenchError(
            f"--ray-address {address}: cannot join the Ray cluster ({first_line(str(error))}); start one with "
            "'ray start --head' and give its HOST:PORT (a cluster with token authentication also needs "
            "RAY_AUTH_MODE=token and its token here), or leave --ray-address out for a local one"
        ) from None
    return True


def gpus_per_cell(ctx: ExecutorContext, resources: Mapping[str, float]) -> float:
    """--gpus-per-cell, or by default one GPU per cell where the cluster has GPUs and --device allows them."""
    given = ctx.options["gpus_per_cell"]
    if given is not None:
        return float(given)
    wants_gpu = ctx.tasks[0].request.device != "cpu" if ctx.tasks else False
    return 1.0 if wants_gpu and resources.get("GPU", 0) > 0 else 0.0


def describe_cluster() -> str:
    import ray

    resources = ray.cluster_resources()  # type: ignore[no-untyped-call]
    nodes = len([node for node in ray.nodes() if node.get("Alive")])  # type: ignore[no-untyped-call]
    return f"{nodes} node(s), {resources.get('CPU', 0):g} CPUs, {resources.get('GPU', 0):g} GPUs"


def first_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else "no message"


RAY = ExecutorSpec(
    "ray",
    "each cell a Ray task, on a local Ray instance or a cluster (--ray-address); needs genbench[ray]",
    run_on_ray,
    add_options=add_options,
    check=check_options,
    same_machine=False,
)
