"""genbench: benchmark generative models on equal terms, with every number saying how it was measured.

Plugin authors need only this package: ``genbench.hookimpl`` and the spec types below.
"""

from __future__ import annotations

import pluggy

from genbench.types import (
    CAPABILITIES,
    ELBO,
    LOG_LIKELIHOOD,
    SAMPLE,
    ArgumentAdder,
    CellRecord,
    Column,
    CurvePoint,
    DataInfo,
    Dataset,
    DatasetOptions,
    DatasetSpec,
    EvalContext,
    ExtractorSpec,
    FitContext,
    GenbenchError,
    GenerativeModel,
    ImageData,
    MetricResult,
    MetricSpec,
    ModelSpec,
    NotApplicable,
    OptionGroup,
    PluginError,
    RunContext,
    TrackerSpec,
    TrainingDiverged,
)

__version__ = "0.1.0"

#: Mark a plugin's hook functions with this, as pytest plugins use ``pytest.hookimpl``.
hookimpl = pluggy.HookimplMarker("genbench")

# Imported after hookimpl exists: plugins loaded while the API runs use it.
from genbench.api import load_results, run  # noqa: E402
from genbench.executors import CellOutcome, CellTask, ExecutorContext, ExecutorSpec  # noqa: E402

__all__ = [
    "CAPABILITIES",
    "ELBO",
    "LOG_LIKELIHOOD",
    "SAMPLE",
    "ArgumentAdder",
    "CellOutcome",
    "CellRecord",
    "CellTask",
    "Column",
    "CurvePoint",
    "DataInfo",
    "Dataset",
    "DatasetOptions",
    "DatasetSpec",
    "EvalContext",
    "ExecutorContext",
    "ExecutorSpec",
    "ExtractorSpec",
    "FitContext",
    "GenbenchError",
    "GenerativeModel",
    "ImageData",
    "MetricResult",
    "MetricSpec",
    "ModelSpec",
    "NotApplicable",
    "OptionGroup",
    "PluginError",
    "RunContext",
    "TrackerSpec",
    "TrainingDiverged",
    "hookimpl",
    "load_results",
    "run",
]
