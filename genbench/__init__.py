"""genbench: benchmark generative models on equal terms, with every number saying how it was measured.

This module is the public API, as ``pytest`` is over ``_pytest``: a plugin imports ``genbench`` (the contract
below and ``genbench.hookimpl``) and the documented helpers of ``genbench.toolkit``; tests of a plugin import
``genbench.testing``. Every other module is internal and may move. ``import genbench`` loads the contract
only; the runner loads when ``genbench.run`` (or ``load_results``, ``run_task``) is first used.

The layers, each importing only those below it (README, "How the code is organised"):

    errors                     GenbenchError, PluginError, NotApplicable, TrainingDiverged
    contract/                  what plugins implement and receive; the hookspecs
    toolkit/                   helpers for plugin authors: nn, training, devices, checks, files, stats, features
    registry, store            the loaded plugins, one registry per kind; the run folder's layout
    config, suites, report, testing
                               request layering (defaults < suite < file < flags); leaderboards; the plugin kit
    runner/                    prepare, identity, cell, grids, dispatch (driver's side), driver, workers
    cli/, api                  a module per subcommand; genbench.run() and load_results()
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from genbench import _moved
from genbench.contract import (
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
    ArgumentAdder,
    CellOutcome,
    CellRecord,
    CellTask,
    Column,
    CurvePoint,
    DataInfo,
    Dataset,
    DatasetOptions,
    DatasetSpec,
    EvalContext,
    ExecutorContext,
    ExecutorSpec,
    ExtractorLookup,
    ExtractorSpec,
    FitContext,
    GenbenchError,
    GenerativeModel,
    ImageData,
    Likelihood,
    LikelihoodEstimate,
    MetricResult,
    MetricSpec,
    ModelSpec,
    NotApplicable,
    OptionGroup,
    PluginError,
    RunContext,
    TrackerSpec,
    TrainingDiverged,
    hookimpl,
    likelihoods_of,
)
from genbench.contract.executors import exit_reason, failed_outcome, worker_died

if TYPE_CHECKING:
    from genbench.api import load_results, run
    from genbench.runner.workers import remove_scratch, run_task

__version__ = "0.1.0"

_moved.install()

#: Public names that live above the contract, loaded on first use so that ``import genbench`` stays light.
_LAZY = {
    "run": "genbench.api",
    "load_results": "genbench.api",
    "run_task": "genbench.runner.workers",
    "remove_scratch": "genbench.runner.workers",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'genbench' has no attribute {name!r}")


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
    "TrackerSpec",
    "TrainingDiverged",
    "exit_reason",
    "failed_outcome",
    "hookimpl",
    "likelihoods_of",
    "load_results",
    "remove_scratch",
    "run",
    "run_task",
    "worker_died",
]
