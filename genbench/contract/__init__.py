"""The contract between the core and its plugins: what a plugin implements and what it receives.

Plain data and protocols only: nothing here imports the registry, the store or the runner, so a plugin (and
``import genbench``) loads this and nothing above it. The modules, in the order a run meets them:

    request     RunRequest: what the user asked for, as plain data
    data        ImageData, DataInfo, Dataset, DatasetOptions, DatasetSpec
    models      capabilities, FitContext, GenerativeModel (the protocol a model implements), ModelSpec
    metrics     Column, EvalContext, MetricResult, MetricSpec, ExtractorSpec, ExtractorLookup
    options     OptionGroup: command-line options that plugins add
    executors   CellTask, CellOutcome, ExecutorContext, ExecutorSpec: how cells are handed to an executor
    events      TrackerSpec, RunContext, CurvePoint, CellRecord: what trackers and reporters receive
    hookspecs   the hooks a plugin implements, each documented; ``hookimpl`` marks an implementation
"""

from __future__ import annotations

from genbench.contract.data import DataInfo, Dataset, DatasetOptions, DatasetSpec, ImageData
from genbench.contract.events import CellRecord, CurvePoint, RunContext, TrackerSpec
from genbench.contract.executors import CellOutcome, CellTask, ExecutionOptions, ExecutorContext, ExecutorSpec
from genbench.contract.hookspecs import hookimpl
from genbench.contract.metrics import Column, EvalContext, ExtractorLookup, ExtractorSpec, MetricResult, MetricSpec
from genbench.contract.models import (
    BOUND_KINDS,
    CAPABILITIES,
    DEQUANTIZED,
    ELBO,
    EXACT,
    IMPORTANCE_WEIGHTED,
    LIKELIHOOD_KINDS,
    LIKELIHOODS,
    LOG_LIKELIHOOD,
    SAMPLE,
    STOCHASTIC_ESTIMATE,
    VARIATIONAL_BOUND,
    FitContext,
    GenerativeModel,
    Likelihood,
    LikelihoodEstimate,
    ModelSpec,
    likelihoods_of,
)
from genbench.contract.options import ArgumentAdder, OptionGroup
from genbench.contract.request import RunRequest
from genbench.errors import GenbenchError, NotApplicable, PluginError, TrainingDiverged

__all__ = [
    "BOUND_KINDS",
    "CAPABILITIES",
    "DEQUANTIZED",
    "ELBO",
    "EXACT",
    "IMPORTANCE_WEIGHTED",
    "LIKELIHOODS",
    "LIKELIHOOD_KINDS",
    "LOG_LIKELIHOOD",
    "SAMPLE",
    "STOCHASTIC_ESTIMATE",
    "VARIATIONAL_BOUND",
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
    "ExecutionOptions",
    "ExecutorContext",
    "ExecutorSpec",
    "ExtractorLookup",
    "ExtractorSpec",
    "FitContext",
    "GenbenchError",
    "GenerativeModel",
    "ImageData",
    "Likelihood",
    "LikelihoodEstimate",
    "MetricResult",
    "MetricSpec",
    "ModelSpec",
    "NotApplicable",
    "OptionGroup",
    "PluginError",
    "RunContext",
    "RunRequest",
    "TrackerSpec",
    "TrainingDiverged",
    "hookimpl",
    "likelihoods_of",
]
