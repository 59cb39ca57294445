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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from genbench.config import (
    SAMPLES_MODEL,
    RunRequest,
    cell_id,
    check_request,
    checkpoint_key,
    resolve_config,
    stable_hash,
)
from genbench.dispatch import check_execution, run_cells, run_folder_lock
from genbench.executors import CellOutcome, CellTask, ExecutionOptions, absolute_request
from genbench.identity import genbench_version
from genbench.origins import (
    Origin,
    apply_sidecar_configs,
    find_origins,
    model_options,
    read_checkpoints,
    sample_set_specs,
    use_origin,
)
from genbench.plugins import DATASET, EXTRACTOR, METRIC, MODEL, Registry, load_plugins
from genbench.report import write_run_leaderboard
from genbench.store import (
    RunDirectory,
    check_writable_folder,
    file_sha256,
    records_frame,
    remove_stale_temporaries,
    write_atomic,
)
from genbench.text import warn
from genbench.types import (
    SAMPLE,
    CellRecord,
    CurvePoint,
    Dataset,
    DatasetOptions,
    EvalContext,
    FitContext,
    GenbenchError,
    GenerativeModel,
    MetricSpec,
    ModelSpec,
    NotApplicable,
    RunContext,
    TrainingDiverged,
)
from genbench.validation import non_finite_paths

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
    #: Models made elsewhere (--checkpoint, --sample-set, the samples plugin), built once; they are never fitted.
    origins: dict[str, Origin] = field(default_factory=dict)

    @property
    def metric_columns(self) -> list[str]:
        return [column.name for metric in self.metrics for column in metric.columns]

    def events(self) -> RunContext:
        """What the event hooks (training curve, cell finished) learn about this run."""
        return RunContext(self.directory.root, tuple(self.request.log), dict(self.request.plugin_options))


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
    check_request(request)
    registry = registry or load_plugins(request.plugins)
    if not request.models and not request.sample_sets:
        raise GenbenchError("no models given; name some with --models, e.g. --models vae,gan,pixelcnn")
    if not request.seeds:
        raise GenbenchError("no seeds given; e.g. --seeds 0,1,2")
    if request.epochs is not None and request.epochs < 1:
        raise GenbenchError(f"--epochs must be at least 1, got {request.epochs}")
    models = [registry.model(name) for name in request.models] + sample_set_specs(request, registry)
    model_names = [spec.name for spec in models]
    stray_reruns = sorted(set(request.rerun or []) - set(model_names))
    if stray_reruns:
        raise GenbenchError(
            f"--rerun {','.join(stray_reruns)}: not a model of this run ({', '.join(model_names)}); "
            "give --rerun alone to rerun every cell"
        )
    check_trackers(request, registry)
    metric_names = request.metrics if request.metrics is not None else registry.names(METRIC)
    metrics = [registry.metric(name) for name in metric_names]
    dataset_spec = registry.dataset(request.dataset)
    for label, options, known in (
        ("model", request.model_options, model_names),
        ("metric", request.metric_options, metric_names),
    ):
        stray = sorted(set(options) - set(known))
        if stray:
            raise GenbenchError(f"options given for {label}s {stray} that this run does not use ({', '.join(known)})")
    model_configs = {
        spec.name: resolve_config(
            spec.config_class, model_options(request, spec.name), f"model {spec.name!r}", request.epochs
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
    check_writable_folder(request.results_dir, "--results-dir")
    check_writable_folder(request.results_dir / request.run_name(), "the run folder")
    weights = read_checkpoints(request, model_names)
    if request.data_root is not None and not request.data_root.is_dir():
        raise GenbenchError(f"--data-root {request.data_root} does not exist or is not a directory")
    dataset = dataset_spec.load(
        DatasetOptions(root=request.data_root, download=request.download, binarize=request.binarize)
    )
    apply_sidecar_configs(request, models, model_configs, weights)
    built = {spec.name: build_untrained(spec, model_configs[spec.name], dataset) for spec in models}
    origins = find_origins(built, dataset, weights)
    capabilities = frozenset().union(*(model.capabilities for model in built.values()))
    check_metrics(request, registry, capabilities, metrics, metric_configs, dataset, device)
    directory = RunDirectory(request.results_dir / request.run_name())
    for plugin in registry.broken:  # what it provides is missing from "every installed metric", say so
        warn(f"plugin {plugin.name!r} from {plugin.origin} is broken and not used: {plugin.error}")
    return PreparedRun(
        request, registry, models, model_configs, metrics, metric_configs, dataset, device, directory, origins
    )


def check_trackers(request: RunRequest, registry: Registry) -> None:
    """Every --log name is an installed tracker whose library is there: found before anything trains."""
    for name in request.log:
        tracker = registry.tracker(name)
        if tracker.check is not None:
            tracker.check()


def check_metrics(
    request: RunRequest,
    registry: Registry,
    capabilities: frozenset[str],
    metrics: list[MetricSpec],
    metric_configs: dict[str, Any],
    dataset: Dataset,
    device: torch.device,
) -> None:
    """Check every metric's options and extractor (a weights file missing offline) before any cell runs, rather
    than when its cell comes, after the cells before it have trained."""
    for metric in metrics:
        # A metric that applies to none of the models gives N/A everywhere: nothing of it needs to work.
        applies = not metric.requires_any or bool(metric.requires_any & capabilities)
        if metric.check is not None and applies:
            metric.check(
                EvalContext(
                    dataset=dataset,
                    device=device,
                    seed=request.seeds[0],
                    generator=torch.Generator().manual_seed(request.seeds[0]),
                    config=metric_configs[metric.name],
                    registry=registry,
                    cache_dir=cache_dir(request.results_dir),
                    options=request.plugin_options,
                )
            )


def build_untrained(spec: ModelSpec, config: Any, dataset: Dataset) -> GenerativeModel:
    """The model's factory on the data's shape and levels, before any cell runs: a config that does not fit the
    data is the user's one-line error, not a failure found after the cells before it have trained."""
    info = dataset.info
    try:
        return spec.factory(config, info)
    except GenbenchError:
        raise
    except Exception as error:  # a config the architecture cannot take (the plugin did not check it itself)
        raise GenbenchError(
            f"model {spec.name!r} cannot be built for data set {dataset.name!r} ({'x'.join(map(str, info.shape))}, "
            f"{info.levels} levels) with its config: {type(error).__name__}: {' '.join(str(error).split())}"
        ) from error


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
    started = _now()
    cells = [(spec, seed) for spec in run.models for seed in run.request.seeds]
    metric_settings = {spec.name: _as_dict(run.metric_configs[spec.name]) for spec in run.metrics}
    # Options that plugins added (a weights file, say) change what metrics measure: they name the cell too; so
    # does the code of the metrics and of the extractors they use.
    evaluation = {
        "metrics": metric_settings,
        "plugin_options": _as_dict(run.request.plugin_options),
        "code": evaluation_code(run),
        "files": files_named_by([metric_settings, _as_dict(run.request.plugin_options)]),
    }
    ids = {
        (spec.name, seed): cell_id(spec.name, run.dataset.name, seed, model_key(run, spec, seed), evaluation)
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
        "origins": {name: origin.description for name, origin in run.origins.items()},
        "device": _device_description(run.device),
        "packages": _package_versions(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "git_revision": _git_revision(),
        "plugins": [dataclasses.asdict(p) for p in run.registry.plugins],
        "cells": [ids[(spec.name, seed)] for spec, seed in cells],
        # How the cells ran (never what they computed): the executor and its options.
        "execution": dataclasses.asdict(execution),
        "started": started,
        "status": "running",
    }
    directory.write_run(run_info)
    _save_real_grid(run)
    finished: dict[str, CellRecord] = {}
    tasks = []
    worker_request = absolute_request(run.request)
    for spec, seed in cells:
        identifier = ids[(spec.name, seed)]
        rerun = rerun_requested(run.request, spec.name)
        record = None if rerun else directory.read_cell(identifier)
        if record is not None and record.status == "ok":
            echo(f"{spec.name} seed {seed}: finished before, reusing {directory.cell_path(identifier)}")
            finished[identifier] = record
        else:
            identity = cell_identity(run, spec, seed)
            tasks.append(CellTask(worker_request, spec.name, seed, identifier, rerun, identity))

    def run_here(task: CellTask) -> CellOutcome:
        spec = next(spec for spec in run.models if spec.name == task.model)
        record = run_cell(run, spec, task.seed, task.cell_id, progress=progress, retrain=task.retrain)
        return CellOutcome(task, record)

    ran = run_cells(run, tasks, execution, total=len(cells), progress=progress, echo=echo, run_here=run_here)
    finished.update((record.cell_id, record) for record in ran)
    records = [finished[ids[(spec.name, seed)]] for spec, seed in cells]
    frame = records_frame(records, run.metric_columns)
    directory.write_csv(frame)
    failed = int((frame["status"] != "ok").sum())
    directory.write_run({**run_info, "finished": _now(), "status": "failed cells" if failed else "ok"})
    write_run_leaderboard(directory.root)
    frame.attrs["run_dir"] = str(directory.root)
    return frame


def rerun_requested(request: RunRequest, model: str) -> bool:
    """--rerun (every model) or --rerun MODEL,...: retrain the model and evaluate its cells again."""
    return request.rerun is not None and (not request.rerun or model in request.rerun)


def model_key(run: PreparedRun, spec: ModelSpec, seed: int) -> str:
    """What determines a cell's model: its checkpoint key (model, config, data, seed and the code of the model's
    and the data set's plugins), and the SHA-256 of the file it came from, if any."""
    config = run.model_configs[spec.name]
    key = checkpoint_key(spec.name, config, dict(run.dataset.provenance), seed, code=model_code(run, spec))
    origin = run.origins.get(spec.name)
    return key if origin is None else stable_hash({"checkpoint": key, "origin_sha256": origin.sha256})


def cell_identity(run: PreparedRun, spec: ModelSpec, seed: int) -> dict[str, Any]:
    """What a cell id stands for beyond the settings in it: the checkpoint key (which holds the model's and the
    data set's code and the data's fingerprint) and the metrics' code. A worker compares its own with the
    driver's before it runs the cell."""
    return {"checkpoint_key": model_key(run, spec, seed), "evaluation_code": evaluation_code(run)}


def model_code(run: PreparedRun, spec: ModelSpec) -> dict[str, Any]:
    """The code a checkpoint depends on: genbench, the model's plugin and the data set's plugin."""
    # A sample set is a named instance of the samples model: its code is that plugin's.
    plugin_model = SAMPLES_MODEL if spec.name in run.request.sample_sets else spec.name
    return {
        "genbench": genbench_version(),
        "model": run.registry.plugin_of(MODEL, plugin_model).code,
        "dataset": run.registry.plugin_of(DATASET, run.request.dataset).code,
    }


def evaluation_code(run: PreparedRun) -> dict[str, Any]:
    """The code evaluation depends on beyond the checkpoint: each metric's plugin, and the plugins of the feature
    extractors that metric options name (a metric's default extractor is its own plugin's code)."""
    options = [value for config in run.metric_configs.values() for value in (_as_dict(config) or {}).values()]
    named = sorted({value for value in options if isinstance(value, str)} & set(run.registry.names(EXTRACTOR)))
    return {
        "genbench": genbench_version(),
        "metrics": {spec.name: run.registry.plugin_of(METRIC, spec.name).code for spec in run.metrics},
        "extractors": {name: run.registry.plugin_of(EXTRACTOR, name).code for name in named},
    }


def files_named_by(options: Any) -> dict[str, str]:
    """Path -> SHA-256 of every existing file that an option names (reference statistics, weights): a file
    replaced in place changes what is measured, so it must change the cell's id, as its path alone would not."""
    found: dict[str, str] = {}
    if isinstance(options, dict):
        options = list(options.values())
    if isinstance(options, list | tuple):
        for item in options:
            found.update(files_named_by(item))
    elif isinstance(options, str) and options:
        path = Path(options).expanduser()
        if path.is_file():
            found[options] = file_sha256(path)
    return found


def run_cell(
    run: PreparedRun, spec: ModelSpec, seed: int, identifier: str, *, progress: bool, retrain: bool = False
) -> CellRecord:
    """Train (or load) one model, evaluate every metric, and describe the outcome; failures are recorded.

    ``retrain`` fits the model even where a checkpoint exists (--rerun), and replaces that checkpoint."""
    config = run.model_configs[spec.name]
    key = model_key(run, spec, seed)
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
        model = obtain_model(run, spec, config, seed, key, record, progress=progress, retrain=retrain)
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
    run: PreparedRun,
    spec: ModelSpec,
    config: Any,
    seed: int,
    key: str,
    record: CellRecord,
    *,
    progress: bool,
    retrain: bool = False,
) -> GenerativeModel:
    """Load the checkpoint with this key (unless ``retrain``), or fit the model (seeded) and save one; a model
    made elsewhere as is."""
    generator = seed_everything(seed)
    if spec.name in run.origins:
        made_elsewhere = use_origin(run.origins[spec.name], record)
        made_elsewhere.to(run.device)
        return made_elsewhere
    model = spec.factory(config, run.dataset.info)
    saved = None if retrain else run.directory.load_checkpoint(key)
    if saved is not None:
        tensors, meta = saved
        model.load_state_dict(tensors)
        model.to(run.device)
        record.train_time, record.curve, record.trained = meta.get("train_time"), meta.get("curve", []), False
        return model
    model.to(run.device)
    curve: list[dict[str, float]] = []
    events = run.events()
    tracking = [0.0]  # seconds spent in trackers' hooks, which train_time leaves out

    def on_curve(step: int, values: Mapping[str, float]) -> None:
        curve.append(curve_point(step, values))
        losses = {name: float(value) for name, value in values.items()}
        point = CurvePoint(record.cell_id, spec.name, run.dataset.name, seed, step, losses)
        began = time.perf_counter()
        run.registry.pm.hook.genbench_training_curve(point=point, run=events)
        tracking[0] += time.perf_counter() - began

    ctx = FitContext(device=run.device, seed=seed, generator=generator, progress=progress, on_curve=on_curve)
    _synchronize(run.device)
    start = time.perf_counter()
    model.fit(run.dataset.train, ctx)
    _synchronize(run.device)
    # A curve point arrives after the losses were read back, with the device idle: time a tracker spends on it
    # would be waiting that training does not cause, and is taken out.
    record.train_time = time.perf_counter() - start - tracking[0]
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


def curve_point(step: int, values: Mapping[str, float]) -> dict[str, float]:
    """One point of a training curve; a NaN or infinite loss ends the fit here, where it arose."""
    point = {"step": float(step), **{name: float(value) for name, value in values.items()}}
    diverged = sorted(name for name, value in point.items() if not math.isfinite(value))
    if diverged:
        raise TrainingDiverged(f"{', '.join(diverged)} became {point[diverged[0]]} at step {step}")
    return point


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
        unwritable = non_finite_paths(result.provenance)
        if unwritable:
            record.error = (
                record.error or f"metric {metric.name} gave a NaN or infinity in its provenance: {unwritable}"
            )
            continue
        record.provenance[metric.name] = result.provenance


def cache_dir(results_dir: Path) -> Path:
    """Caches that outlive a run (reference statistics, trained feature extractors) live beside the runs."""
    return results_dir / ".cache"


def save_sample_grid(run: PreparedRun, model: GenerativeModel, seed: int, identifier: str) -> None:
    if SAMPLE not in model.capabilities:
        return
    try:
        with torch.no_grad():
            images = model.sample(SAMPLE_GRID_SIZE, torch.Generator().manual_seed(seed))
    except NotApplicable:  # a file of fewer images than a grid: no grid rather than repeated images
        return
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
