"""One cell: train the model (or load its checkpoint, or take it as made elsewhere), evaluate every metric, and
record the outcome; a failure is the cell's, never the run's.
"""

from __future__ import annotations

import math
import random
import time
import traceback
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from genbench.contract import (
    CellRecord,
    CurvePoint,
    EvalContext,
    FitContext,
    GenbenchError,
    GenerativeModel,
    ModelSpec,
    NotApplicable,
    TrainingDiverged,
)
from genbench.errors import PluginOutputError
from genbench.runner.external import (
    use_origin,
)
from genbench.runner.grids import save_sample_grid
from genbench.runner.guard import checked_model
from genbench.runner.identity import model_key
from genbench.runner.prepare import PreparedRun, sample_options_instance
from genbench.runner.provenance import now, plain_data
from genbench.store.layout import cache_dir
from genbench.toolkit.checks import non_finite_paths

if TYPE_CHECKING:
    pass


def run_cell(
    run: PreparedRun,
    spec: ModelSpec,
    seed: int,
    identifier: str,
    *,
    progress: bool,
    retrain: bool = False,
    sample_options: Mapping[str, Any] | None = None,
) -> CellRecord:
    """Train (or load) one model, evaluate every metric, and describe the outcome; failures are recorded.

    ``retrain`` fits the model even where a checkpoint exists (--rerun), and replaces that checkpoint.
    ``sample_options`` are the model's evaluation-time options for this cell (one point of a sweep): they change
    how the trained model is evaluated, never which checkpoint it is."""
    config = run.model_configs[spec.name]
    key = model_key(run, spec, seed)
    record = CellRecord(
        cell_id=identifier,
        model=spec.name,
        dataset=run.dataset.name,
        seed=seed,
        status="running",
        config=plain_data(config),
        checkpoint_key=key,
        dataset_provenance=dict(run.dataset.provenance),
        device=str(run.device),
        started=now(),
        sample_options=dict(sample_options or {}),
    )
    try:
        model = obtain_model(run, spec, config, seed, key, record, progress=progress, retrain=retrain)
        if spec.sample_options_class is not None:
            model.sample_options = sample_options_instance(spec, record.sample_options)  # type: ignore[attr-defined]
        model = checked_model(model, spec.name, run.dataset.info)  # metrics and the grid see only checked outputs
        evaluate(run, model, seed, record, progress=progress)
        save_sample_grid(run, model, seed, identifier)
    except GenbenchError:
        raise  # a user mistake (a missing weights file, say) would fail every cell: stop and say so
    except Exception as error:  # the run goes on; the cell says why it failed
        record.status = "failed"
        # A plugin's output that breaks the contract is described by one sentence that names the model already.
        record.error = str(error) if isinstance(error, PluginOutputError) else f"{type(error).__name__}: {error}"
        record.traceback = traceback.format_exc()
    else:
        record.status = "ok" if record.error is None else "failed"
    record.finished = now()
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
        run.registry.call_hook("genbench_training_curve", point=point, run=events)
        tracking[0] += time.perf_counter() - began

    ctx = FitContext(device=run.device, seed=seed, generator=generator, progress=progress, on_curve=on_curve)
    synchronize(run.device)
    start = time.perf_counter()
    model.fit(run.dataset.train, ctx)
    synchronize(run.device)
    # A curve point arrives after the losses were read back, with the device idle: time a tracker spends on it
    # would be waiting that training does not cause, and is taken out.
    record.train_time = time.perf_counter() - start - tracking[0]
    record.curve = curve
    meta = {
        "model": spec.name,
        "config": plain_data(config),
        "seed": seed,
        "dataset": dict(run.dataset.provenance),
        "train_time": record.train_time,
        "device": str(run.device),
        "curve": curve,
        "saved": now(),
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
    """Every metric that applies writes its columns and its seconds; one that does not says why; one that crashes
    fails the cell, and a model output that breaks the contract (PluginOutputError) ends the cell's evaluation."""
    memo: dict[str, Any] = {}
    for metric in run.metrics:
        columns = [column.name for column in metric.columns]
        if metric.requires_any and not metric.requires_any & model.capabilities:
            *others, last = sorted(metric.requires_any)
            needs = f"{', '.join(others)} or {last}" if others else last
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
            model_name=record.model,
        )
        try:
            with torch.no_grad():
                synchronize(run.device)
                began = time.perf_counter()
                result = metric.compute(model, ctx)
                synchronize(run.device)
                seconds = time.perf_counter() - began
        except NotApplicable as reason:
            for column in columns:
                record.not_applicable[column] = str(reason)
            continue
        except (GenbenchError, PluginOutputError):
            raise  # a user mistake stops the run; a model's broken output fails the whole cell, with its sentence
        except Exception as error:
            record.error = record.error or f"metric {metric.name}: {type(error).__name__}: {error}"
            continue
        record.metric_times[metric.name] = seconds
        optional = {column.name for column in metric.columns if column.optional}
        for column in columns:
            value = result.values.get(column)
            if value is None and column in optional:
                continue
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


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
