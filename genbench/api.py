"""The Python API that the CLI calls: ``run(...)`` returns the results table, ``load_results(path)`` reads one."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from genbench.config import DEFAULT_DATASET, DEFAULT_MODELS, RunRequest
from genbench.executors import SERIAL, ExecutionOptions
from genbench.plugins import Registry
from genbench.runner import execute, prepare
from genbench.store import load_results

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["load_results", "run"]


def run(
    models: Sequence[str] = DEFAULT_MODELS,
    *,
    dataset: str = DEFAULT_DATASET,
    metrics: Sequence[str] | None = None,
    seeds: Sequence[int] = (0,),
    epochs: int | None = None,
    device: str = "auto",
    data_root: str | Path | None = None,
    download: bool = False,
    binarize: bool = False,
    results_dir: str | Path = "results",
    name: str | None = None,
    model_options: dict[str, dict[str, Any]] | None = None,
    metric_options: dict[str, dict[str, Any]] | None = None,
    plugins: Sequence[str] = (),
    checkpoints: Mapping[str, str | Path] | None = None,
    sample_sets: Mapping[str, str | Path] | None = None,
    progress: bool = False,
    echo: Callable[[str], None] = lambda line: None,
    executor: str = SERIAL,
    executor_options: Mapping[str, Any] | None = None,
    retries: int = 1,
    worker_storage: str = "auto",
) -> pd.DataFrame:
    """Benchmark ``models`` on ``dataset`` for every seed and return one row per cell.

    Cells that finished in an earlier call with the same settings are read back, not run again. The returned
    frame's ``attrs["run_dir"]`` is the run directory; ``status`` says which cells failed and ``error`` why.
    ``checkpoints`` maps a model to a safetensors file to evaluate instead of training it; ``sample_sets`` maps
    a new model name to an .npz or image folder served by the ``samples`` model.

    ``executor`` runs the cells (``serial`` in this process, ``local``, ``ray``, or a plugin's), with its own
    options by dest (``{"jobs": 2}``), ``retries`` runs of a cell whose worker died, and ``worker_storage``
    saying how workers reach the results (see docs/executors.md); none of them changes a cell's numbers.
    """
    request = RunRequest(
        models=list(models),
        metrics=None if metrics is None else list(metrics),
        dataset=dataset,
        data_root=None if data_root is None else Path(data_root).expanduser(),
        download=download,
        binarize=binarize,
        seeds=list(seeds),
        epochs=epochs,
        device=device,
        results_dir=Path(results_dir),
        name=name,
        model_options=dict(model_options or {}),
        metric_options=dict(metric_options or {}),
        plugins=list(plugins),
        checkpoints={name: Path(path).expanduser() for name, path in (checkpoints or {}).items()},
        sample_sets={name: Path(path).expanduser() for name, path in (sample_sets or {}).items()},
    )
    execution = ExecutionOptions(executor, dict(executor_options or {}), retries, worker_storage)
    return run_request(request, progress=progress, echo=echo, execution=execution)


def run_request(
    request: RunRequest,
    *,
    registry: Registry | None = None,
    progress: bool = False,
    command: list[str] | None = None,
    echo: Callable[[str], None] = lambda line: None,
    execution: ExecutionOptions | None = None,
) -> pd.DataFrame:
    """Check a request fully (writing nothing if it is wrong), then run it."""
    prepared = prepare(request, registry)
    return execute(prepared, progress=progress, command=command, echo=echo, execution=execution)
