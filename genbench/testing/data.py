"""Conformance checks of data set and feature-extractor plugins."""

from __future__ import annotations

import random
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from genbench.contract import (
    Dataset,
    DatasetOptions,
    DatasetSpec,
    EvalContext,
    ExtractorSpec,
    ImageData,
)
from genbench.registry import Registry
from genbench.testing.core import Check, Skipped, json_problem, require, synthetic_dataset, synthetic_images

# ------------------------------------------------------------------------------------------------ data sets


def dataset_checks(spec: DatasetSpec, options: DatasetOptions | None = None) -> list[Check]:
    """The checks of one data set, loaded with ``options`` (where its files are)."""
    options = options or DatasetOptions()
    loads: dict[int, Dataset] = {}

    def load(seed: int) -> Dataset:
        """Loaded under a global random state of its own: a fixed split must not depend on it."""
        if seed not in loads:
            random.seed(seed)
            np.random.seed(seed)
            torch.manual_seed(seed)
            loads[seed] = spec.load(options)  # a GenbenchError (no files) skips the check: a setting it needs
        return loads[seed]

    checks: dict[str, Callable[[], str]] = {
        "images": lambda: check_images(spec, load(1)),
        "fixed_split": lambda: check_fixed_split(load(1), load(2)),
    }
    return [Check("data set", spec.name, name, function) for name, function in checks.items()]


def check_images(spec: DatasetSpec, dataset: Dataset) -> str:
    require(isinstance(dataset, Dataset), f"load returned {type(dataset).__name__}, not a genbench.Dataset")
    require(dataset.name == spec.name, f"the Dataset is named {dataset.name!r}, its spec {spec.name!r}")
    for split in ("train", "test"):
        data: ImageData = getattr(dataset, split)
        require(len(data) > 0, f"the {split} split is empty")
        require(data.images.dtype == torch.uint8, f"{split} images are {data.images.dtype}, not uint8")
        require(data.images.device.type == "cpu", f"{split} images are on {data.images.device}; keep data on the CPU")
        top = int(data.images.max())
        require(top < data.levels, f"{split} has value {top}, not below its {data.levels} levels")
        if data.labels is not None:
            require(not data.labels.is_floating_point(), f"{split} labels are {data.labels.dtype}, not integers")
    train, test = dataset.train, dataset.test
    require(train.levels == test.levels, f"train has {train.levels} levels, test {test.levels}")
    require(train.shape == test.shape, f"train images are {train.shape}, test {test.shape}")
    problem = json_problem(dict(dataset.provenance))
    require(problem is None, f"provenance cannot be written as JSON ({problem})")
    require(bool(dataset.provenance), "provenance is empty; say where the data came from and how it was split")
    return f"{len(train)} train + {len(test)} test uint8 images {train.shape}, {train.levels} levels, JSON provenance"


def check_fixed_split(first: Dataset, second: Dataset) -> str:
    for split in ("train", "test"):
        a, b = getattr(first, split), getattr(second, split)
        require(torch.equal(a.images, b.images), f"the {split} split changes with the global random state")
        same_labels = (a.labels is None) == (b.labels is None) and (a.labels is None or torch.equal(a.labels, b.labels))
        require(same_labels, f"the {split} labels change with the global random state")
    return "two loads under different global seeds give identical train and test splits"


# --------------------------------------------------------------------------------------- feature extractors


def extractor_checks(
    spec: ExtractorSpec,
    registry: Registry,
    *,
    plugin_options: dict[str, Any] | None = None,
    dataset: Dataset | None = None,
    device: str | torch.device = "cpu",
    cache_dir: Path | None = None,
) -> list[Check]:
    """The checks of one feature extractor, on a labelled synthetic data set unless ``dataset`` is given."""
    data = dataset if dataset is not None else synthetic_dataset()
    ctx = EvalContext(
        dataset=data,
        device=torch.device(device),
        seed=0,
        generator=torch.Generator().manual_seed(0),
        config=None,
        registry=registry,
        cache_dir=cache_dir if cache_dir is not None else Path(tempfile.mkdtemp(prefix="genbench-check-")),
        options=dict(plugin_options or {}),
    )
    loaded: list[tuple[Callable[[torch.Tensor], torch.Tensor], dict[str, Any]]] = []

    def load() -> tuple[Callable[[torch.Tensor], torch.Tensor], dict[str, Any]]:
        if not loaded:
            loaded.append(spec.load(data, ctx))
        return loaded[0]

    checks: dict[str, Callable[[], str]] = {
        "prepare_check": lambda: check_extractor_prepare(spec, data, ctx),
        "features": lambda: check_features(load, data),
    }
    return [Check("feature extractor", spec.name, name, function) for name, function in checks.items()]


def check_extractor_prepare(spec: ExtractorSpec, data: Dataset, ctx: EvalContext) -> str:
    if spec.check is None:
        raise Skipped("the extractor has no prepare-time check")
    spec.check(data, ctx)
    return "its check accepts the data before any cell runs"


def check_features(
    load: Callable[[], tuple[Callable[[torch.Tensor], torch.Tensor], dict[str, Any]]], data: Dataset
) -> str:
    """uint8 CPU images in, (n, d) finite features out; deterministic and independent of the batch."""
    features, identity = load()
    problem = json_problem(identity)
    require(isinstance(identity, dict) and problem is None, f"its identity is not a JSON-able dict ({problem})")
    images, _ = synthetic_images(data.info, 6, seed=5)
    with torch.no_grad():
        batch = features(images)
        again = features(images)
        halves = torch.cat([features(images[:3]), features(images[3:])])
    require(
        isinstance(batch, torch.Tensor) and batch.dim() == 2 and len(batch) == len(images),
        f"returned {getattr(batch, 'shape', type(batch).__name__)} for {len(images)} images; expected (n, d)",
    )
    batch, again, halves = (t.detach().cpu().double() for t in (batch, again, halves))
    require(bool(torch.isfinite(batch).all()), "features hold NaN or infinity")
    require(torch.equal(batch, again), "the same images give different features twice")
    require(
        torch.allclose(batch, halves, rtol=1e-4, atol=1e-5),
        "features depend on the batch an image is in (batch norm in training mode?); the core batches freely",
    )
    return f"({len(images)}, {batch.shape[1]}) finite features of uint8 CPU images, deterministic, batch-independent"
