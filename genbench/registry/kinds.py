"""The kinds of spec a plugin provides, each with the hook that collects it and the type its answers must have."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from genbench.contract import (
    DatasetSpec,
    ExtractorSpec,
    MetricSpec,
    ModelSpec,
    TrackerSpec,
)
from genbench.contract.executors import ExecutorSpec

S = TypeVar("S", ModelSpec, MetricSpec, DatasetSpec, ExtractorSpec, ExecutorSpec, TrackerSpec)


@dataclass(frozen=True)
class Kind(Generic[S]):
    """One kind of spec: the hook that collects it, its type, and how errors name it."""

    label: str
    hook: str
    spec_type: type[S]


MODEL: Kind[ModelSpec] = Kind("model", "genbench_models", ModelSpec)


METRIC: Kind[MetricSpec] = Kind("metric", "genbench_metrics", MetricSpec)


DATASET: Kind[DatasetSpec] = Kind("data set", "genbench_datasets", DatasetSpec)


EXTRACTOR: Kind[ExtractorSpec] = Kind("feature extractor", "genbench_feature_extractors", ExtractorSpec)


EXECUTOR: Kind[ExecutorSpec] = Kind("executor", "genbench_executors", ExecutorSpec)


TRACKER: Kind[TrackerSpec] = Kind("tracker", "genbench_trackers", TrackerSpec)


KINDS = (MODEL, METRIC, DATASET, EXTRACTOR, EXECUTOR, TRACKER)
