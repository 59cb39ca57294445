"""Conformance checks for genbench plugins: what the runner, the metrics and the store rely on, in seconds.

Run them in a plugin's own tests, one pytest test per check::

    import pytest
    from genbench.testing import MODEL, load_plugins, model_checks

    @pytest.mark.parametrize("check", model_checks(load_plugins().get(MODEL, "made"), {"hidden": 32}), ids=str)
    def test_made_conforms(check):
        check.run()  # raises ConformanceError on a failure; skips a check that does not apply

or from the command line: ``genbench plugins check NAME``. What each check verifies is in docs/plugins.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from genbench.contract import DatasetOptions, GenbenchError
from genbench.registry import DATASET, EXTRACTOR, KINDS, METRIC, MODEL, Registry, load_plugins, unknown_name_message
from genbench.testing.core import (
    FAIL,
    PASS,
    SKIP,
    Check,
    ConformanceError,
    Outcome,
    Skipped,
    all_images,
    synthetic_dataset,
    synthetic_images,
)
from genbench.testing.data import dataset_checks, extractor_checks
from genbench.testing.metrics import metric_checks
from genbench.testing.models import model_checks
from genbench.testing.probe import ProbeModel

__all__ = [
    "DATASET",
    "EXTRACTOR",
    "FAIL",
    "METRIC",
    "MODEL",
    "PASS",
    "SKIP",
    "Check",
    "ConformanceError",
    "Outcome",
    "ProbeModel",
    "Skipped",
    "all_images",
    "checks_for",
    "dataset_checks",
    "extractor_checks",
    "load_plugins",
    "metric_checks",
    "model_checks",
    "synthetic_dataset",
    "synthetic_images",
]


def checks_for(
    name: str,
    registry: Registry,
    *,
    model_options: dict[str, Any] | None = None,
    metric_options: dict[str, Any] | None = None,
    plugin_options: dict[str, Any] | None = None,
    dataset_options: DatasetOptions | None = None,
    device: str = "cpu",
    cache_dir: Path | None = None,
) -> list[Check]:
    """Every check of whatever ``name`` is (a model, a metric, a data set, a feature extractor, or several);
    a GenbenchError with "did you mean" when no installed plugin provides it."""
    checks: list[Check] = []
    if name in registry.names(MODEL):
        checks += model_checks(registry.get(MODEL, name), model_options, device=device)
    if name in registry.names(METRIC):
        checks += metric_checks(
            registry.get(METRIC, name),
            registry,
            metric_options,
            plugin_options=plugin_options,
            device=device,
            cache_dir=cache_dir,
        )
    if name in registry.names(DATASET):
        checks += dataset_checks(registry.get(DATASET, name), dataset_options)
    if name in registry.names(EXTRACTOR):
        checks += extractor_checks(
            registry.extractor(name), registry, plugin_options=plugin_options, device=device, cache_dir=cache_dir
        )
    if not checks:
        every = sorted({n for kind in KINDS for n in registry.names(kind)})
        raise GenbenchError(unknown_name_message("plugin name (model, metric, data set or extractor)", name, every))
    return checks
