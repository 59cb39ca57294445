"""The grid of cells (model x seed on one data set): train or load, evaluate, record.

``prepare`` checks everything the user gave and loads the data before anything is written; ``execute`` then
runs each cell that has no finished record yet, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import dataclasses
import datetime
import importlib.metadata
import math
import platform
import random
import subprocess
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from genbench.config import RunRequest, cell_id, checkpoint_key, resolve_config
from genbench.plugins import METRIC, Registry, load_plugins
from genbench.report import write_run_leaderboard
from genbench.store import RunDirectory, records_frame, write_atomic
from genbench.types import (
    SAMPLE,
    CellRecord,
    Dataset,
    DatasetOptions,
    EvalContext,
    FitContext,
    GenbenchError,
    GenerativeModel,
    MetricSpec,
    ModelSpec,
    NotApplicable,
)

if TYPE_CHECKING:
    import pandas as pd

SAMPLE_GRID_SIZE = 64
#: Packages whose versions go into run.json, as far as they are installed.
RECORDED_PACKAGES = ("genbench", "torch", "torchvision", "torchmetrics", "numpy", "scipy", "pandas", "pluggy")


@dataclass
class PreparedRun:
    """A request checked against the installed plugins, with its data loaded; nothing written yet."""

    request: RunRequest
    registry: Registry
    models: list[ModelSpec]
    model_configs: dict[str, Any]
    metrics: list[MetricSpec]
    metric_configs: dict[str, Any]
    dataset: Dataset
    device: torch.device
    directory: RunDirectory

    @property
    def metric_columns(self) -> list[str]:
        return [column.name for metric in self.metrics for column in metric.columns]


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda":
        if not torch.cuda.is_available():
            raise GenbenchError("--device cuda was asked for, but PyTorch sees no CUDA GPU; use --device cpu or auto")
        return torch.device("cuda")
    raise GenbenchError(f"--device {name!r} is not one of auto, cpu, cuda")


def prepare(request: RunRequest, registry: Registry | None = None) -> PreparedRun:
    """Check the request and load the data; raise GenbenchError on the first mistake, before any write."""
    registry = registry or load_plugins(request.plugins)
    if not request.models:
        raise GenbenchError("no models given; name some with --models, e.g. --models vae,gan,pixelcnn")
    if not request.seeds:
        raise GenbenchError("no seeds given; e.g. --seeds 0,1,2")
    if request.epochs is not None and request.epochs < 1:
        raise GenbenchError(f"--epochs must be at least 1, got {request.epochs}")
    models = [registry.model(name) for name in request.models]
    metric_names = request.metrics if request.metrics is not None else registry.names(METRIC)
    metrics = [registry.metric(name) for name in metric_names]
    dataset_spec = registry.dataset(request.dataset)
    for label, options, known in (
        ("model", request.model_options, request.models),
        ("metric", request.metric_options, metric_names),
    ):
        stray = sorted(set(options) - set(known))
        if stray:
            raise GenbenchError(f"options given for {label}s {stray} that this run does not use ({', '.join(known)})")
    model_configs = {
        spec.name: resolve_config(
            spec.config_class, request.model_options.get(spec.name, {}), f"model {spec.name!r}", request.epochs
        )
        for spec in models
    }
    metric_configs = {
        spec.name: resolve_config(spec.config_class, request.metric_options.get(spec.name, {}), f"metric {spec.name!r}")
        if spec.config_class is not None
        else None
        for spec in metrics
    }
    device = resolve_device(request.device)
    if request.data_root is not None and not request.data_root.is_dir():
        raise GenbenchError(f"--data-root {request.data_root} does not exist or is not a directory")
    dataset = dataset_spec.load(
        DatasetOptions(root=request.data_root, download=request.download, binarize=request.binarize)
    )
    directory = RunDirectory(request.results_dir / request.run_name())
    return PreparedRun(request, registry, models, model_configs, metrics, metric_configs, dataset, device, directory)


def execute(
    run: PreparedRun,
    *,
    progress: bool = False,
    command: list[str] | None = None,
    echo: Callable[[str], None] = lambda line: None,
) -> pd.DataFrame:
    """Run every cell of a prepared run, resuming finished ones, and return the results table."""
    from tqdm.auto import tqdm

    directory = run.directory
    directory.create()
    started = _now()
    cells = [(spec, seed) for spec in run.models for seed in run.request.seeds]
    metric_settings = {spec.name: _as_dict(run.metric_configs[spec.name]) for spec in run.metrics}
    # Options that plugins added (a weights file, say) change what metrics measure: they name the cell too.
    evaluation = {"metrics": metric_settings, "plugin_options": _as_dict(run.request.plugin_options)}
    ids = {
        (spec.name, seed): cell_id(
            spec.name,
            run.dataset.name,
            seed,
            checkpoint_key(spec.name, run.model_configs[spec.name], dict(run.dataset.provenance), seed),
            evaluation,
        )
        for spec, seed in cells
    }
    run_info = {
        "command": command if command is not None else ["genbench.run"],
        "request": _as_dict(run.request),
        "models": {name: _as_dict(config) for name, config in run.model_configs.items()},
        "metrics": metric_settings,
        "columns": run.metric_columns,
        "column_specs": {c.name: dataclasses.asdict(c) for m in run.metrics for c in m.columns},
        "column_metrics": {c.name: m.name for m in run.metrics for c in m.columns},
        "dataset": dict(run.dataset.provenance),
        "device": _device_description(run.device),
        "packages": _package_versions(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "git_revision": _git_revision(),
        "plugins": [dataclasses.asdict(p) for p in run.registry.plugins],
        "cells": [ids[(spec.name, seed)] for spec, seed in cells],
        "started": started,
        "status": "running",
    }
    directory.write_run(run_info)
    _save_real_grid(run)
    records = []
    for spec, seed in tqdm(cells, desc="cells", disable=not progress):
        identifier = ids[(spec.name, seed)]
        record = directory.read_cell(identifier)
        if record is not None and record.status == "ok":
            echo(f"{spec.name} seed {seed}: finished before, reusing {directory.cell_path(identifier)}")
        else:
            echo(f"{spec.name} seed {seed}: running")
            record = run_cell(run, spec, seed, identifier, progress=progress)
            directory.write_cell(record)
            run.registry.pm.hook.genbench_cell_finished(record=record)
        records.append(record)
    frame = records_frame(records, run.metric_columns)
    directory.write_csv(frame)
    failed = int((frame["status"] != "ok").sum())
    directory.write_run({**run_info, "finished": _now(), "status": "failed cells" if failed else "ok"})
    write_run_leaderboard(directory.root)
    frame.attrs["run_dir"] = str(directory.root)
    return frame


def run_cell(run: PreparedRun, spec: ModelSpec, seed: int, identifier: str, *, progress: bool) -> CellRecord:
    """Train or load one model, evaluate every metric, and describe the outcome; failures are recorded."""
    config = run.model_configs[spec.name]
    key = checkpoint_key(spec.name, config, dict(run.dataset.provenance), seed)
    record = CellRecord(
        cell_id=identifier,
        model=spec.name,
        dataset=run.dataset.name,
        seed=seed,
        status="running",
        config=_as_dict(config),
        checkpoint_key=key,
        dataset_provenance=dict(run.dataset.provenance),
        device=str(run.device),
        started=_now(),
    )
    try:
        model = obtain_model(run, spec, config, seed, key, record, progress=progress)
        evaluate(run, model, seed, record, progress=progress)
        save_sample_grid(run, model, seed, identifier)
    except GenbenchError:
        raise  # a user mistake (a missing weights file, say) would fail every cell: stop and say so
    except Exception as error:  # the run goes on; the cell says why it failed
        record.status = "failed"
        record.error = f"{type(error).__name__}: {error}"
        record.traceback = traceback.format_exc()
    else:
        record.status = "ok" if record.error is None else "failed"
    record.finished = _now()
    return record


def seed_everything(seed: int) -> torch.Generator:
    """Seed every global generator a model might touch, and return a generator of its own for it."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def obtain_model(
    run: PreparedRun, spec: ModelSpec, config: Any, seed: int, key: str, record: CellRecord, *, progress: bool
) -> GenerativeModel:
    """Load the checkpoint with this key, or fit the model (seeded) and save one."""
    generator = seed_everything(seed)
    model = spec.factory(config, run.dataset.info)
    saved = run.directory.load_checkpoint(key)
    if saved is not None:
        tensors, meta = saved
        model.load_state_dict(tensors)
        model.to(run.device)
        record.train_time, record.curve, record.trained = meta.get("train_time"), meta.get("curve", []), False
        return model
    model.to(run.device)
    curve: list[dict[str, float]] = []
    ctx = FitContext(
        device=run.device,
        seed=seed,
        generator=generator,
        progress=progress,
        on_curve=lambda step, values: curve.append({"step": float(step), **{k: float(v) for k, v in values.items()}}),
    )
    _synchronize(run.device)
    start = time.perf_counter()
    model.fit(run.dataset.train, ctx)
    _synchronize(run.device)
    record.train_time = time.perf_counter() - start
    record.curve = curve
    meta = {
        "model": spec.name,
        "config": _as_dict(config),
        "seed": seed,
        "dataset": dict(run.dataset.provenance),
        "train_time": record.train_time,
        "device": str(run.device),
        "curve": curve,
        "saved": _now(),
    }
    run.directory.save_checkpoint(key, model.state_dict(), meta)
    return model


def evaluate(run: PreparedRun, model: GenerativeModel, seed: int, record: CellRecord, *, progress: bool) -> None:
    """Every metric that applies writes its columns; one that does not says why; one that crashes fails the cell."""
    memo: dict[str, Any] = {}
    for metric in run.metrics:
        columns = [column.name for column in metric.columns]
        if metric.requires_any and not metric.requires_any & model.capabilities:
            needs = " or ".join(sorted(metric.requires_any))
            for column in columns:
                record.not_applicable[column] = f"{record.model} has no {needs}"
            continue
        ctx = EvalContext(
            dataset=run.dataset,
            device=run.device,
            seed=seed,
            generator=torch.Generator().manual_seed(seed),
            config=run.metric_configs[metric.name],
            registry=run.registry,
            cache_dir=cache_dir(run.request.results_dir),
            progress=progress,
            options=run.request.plugin_options,
            memo=memo,
        )
        try:
            with torch.no_grad():
                result = metric.compute(model, ctx)
        except NotApplicable as reason:
            for column in columns:
                record.not_applicable[column] = str(reason)
            continue
        except GenbenchError:
            raise
        except Exception as error:
            record.error = record.error or f"metric {metric.name}: {type(error).__name__}: {error}"
            continue
        for column in columns:
            value = result.values.get(column)
            if value is None or not math.isfinite(value):
                record.error = record.error or f"metric {metric.name} gave {value!r} for {column}"
                continue
            record.metrics[column] = float(value)
        record.provenance[metric.name] = result.provenance


def cache_dir(results_dir: Path) -> Path:
    """Caches that outlive a run (reference statistics, trained feature extractors) live beside the runs."""
    return results_dir / ".cache"


def save_sample_grid(run: PreparedRun, model: GenerativeModel, seed: int, identifier: str) -> None:
    if SAMPLE not in model.capabilities:
        return
    with torch.no_grad():
        images = model.sample(SAMPLE_GRID_SIZE, torch.Generator().manual_seed(seed))
    _write_grid(images, run.dataset.test.levels, run.directory.samples / f"{identifier}.png")


def _save_real_grid(run: PreparedRun) -> None:
    path = run.directory.samples / f"real-{run.dataset.name}.png"
    if not path.exists():
        _write_grid(run.dataset.test.images[:SAMPLE_GRID_SIZE], run.dataset.test.levels, path)


def _write_grid(images: torch.Tensor, levels: int, path: Path) -> None:
    from torchvision.utils import save_image

    scaled = images.float() / (levels - 1)
    # Small images (8x8 digits) are enlarged so that the grid is legible in a report.
    if scaled.shape[-1] < 32:
        scaled = torch.nn.functional.interpolate(scaled, scale_factor=32 // scaled.shape[-1], mode="nearest")
    write_atomic(path, lambda temporary: save_image(scaled, str(temporary), nrow=8, padding=2, format="png"))


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def _as_dict(value: Any) -> Any:
    if value is None:
        return None
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {k: _as_dict(v) for k, v in dataclasses.asdict(value).items()}
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {k: _as_dict(v) for k, v in value.items()}
    return value


def _device_description(device: torch.device) -> dict[str, Any]:
    description: dict[str, Any] = {"type": device.type, "torch_threads": torch.get_num_threads()}
    if device.type == "cuda":
        description["name"] = torch.cuda.get_device_name(device)
        description["cuda"] = torch.version.cuda
    else:
        description["name"] = platform.processor() or platform.machine()
    return description


def _package_versions() -> dict[str, str]:
    versions = {}
    for package in RECORDED_PACKAGES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def _git_revision() -> str | None:
    """The revision of the genbench source tree, with "-dirty" when it has uncommitted changes."""
    source = Path(__file__).resolve().parent
    try:
        revision = subprocess.run(
            ["git", "-C", str(source), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(source), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return revision + ("-dirty" if dirty else "")
