"""Conformance checks of a metric plugin: its columns, and N/A with a reason where it cannot measure.

A metric is evaluated as the runner does it (under ``torch.no_grad``, with a fresh memo, a seeded CPU generator
and a cache folder) on probe models (``genbench.testing.probe``) over a small labelled synthetic data set.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from genbench.config import resolve_config
from genbench.contract import CAPABILITIES, Dataset, EvalContext, MetricResult, MetricSpec, NotApplicable
from genbench.registry import Registry
from genbench.testing.core import (
    Check,
    ConformanceError,
    Skipped,
    finite,
    json_problem,
    options_text,
    require,
    synthetic_dataset,
)
from genbench.testing.probe import ProbeModel


class MetricSubject:
    def __init__(
        self,
        spec: MetricSpec,
        registry: Registry,
        options: Mapping[str, Any],
        plugin_options: Mapping[str, Any],
        dataset: Dataset,
        device: torch.device,
        cache_dir: Path | None,
    ) -> None:
        self.spec, self.registry, self.dataset, self.device = spec, registry, dataset, device
        self.options, self.plugin_options = dict(options), dict(plugin_options)
        self.cache_dir = cache_dir if cache_dir is not None else Path(tempfile.mkdtemp(prefix="genbench-check-"))
        self.config = (
            None
            if spec.config_class is None
            else resolve_config(spec.config_class, self.options, f"metric {spec.name!r}")
        )

    def context(self) -> EvalContext:
        return EvalContext(
            dataset=self.dataset,
            device=self.device,
            seed=0,
            generator=torch.Generator().manual_seed(0),
            config=self.config,
            registry=self.registry,
            cache_dir=self.cache_dir,
            options=self.plugin_options,
        )

    def compute(self, capabilities: frozenset[str], refuse: str | None = None) -> MetricResult:
        model = ProbeModel(self.dataset.train, capabilities, refuse).to(self.device)
        with torch.no_grad():
            return self.spec.compute(model, self.context())

    @property
    def applicable(self) -> list[str]:
        """The capabilities that make this metric apply; all of them when it requires none."""
        return sorted(self.spec.requires_any or CAPABILITIES)


def metric_checks(
    spec: MetricSpec,
    registry: Registry,
    options: Mapping[str, Any] | None = None,
    *,
    plugin_options: Mapping[str, Any] | None = None,
    dataset: Dataset | None = None,
    device: str | torch.device = "cpu",
    cache_dir: Path | None = None,
) -> list[Check]:
    """The checks of one metric. ``options`` are its config fields; ``plugin_options`` the values of command-line
    options plugins add (e.g. ``{"inception_weights": PATH}``); ``cache_dir`` may be shared to train extractors once."""
    subject = MetricSubject(
        spec,
        registry,
        options or {},
        plugin_options or {},
        dataset if dataset is not None else synthetic_dataset(),
        torch.device(device),
        cache_dir,
    )
    checks: dict[str, Callable[[], str]] = {
        "prepare_check": lambda: check_prepare(subject),
        "columns": lambda: check_columns(subject),
        "not_applicable": lambda: check_not_applicable(subject),
    }
    return [Check("metric", spec.name, name, function) for name, function in checks.items()]


def check_prepare(subject: MetricSubject) -> str:
    if subject.spec.check is None:
        raise Skipped("the metric has no prepare-time check")
    subject.spec.check(subject.context())
    return f"accepts {options_text(subject.options)} for the data before any cell runs"


def check_columns(subject: MetricSubject) -> str:
    """With each capability that makes it apply, alone: the declared columns (every one not ``optional``), finite;
    or N/A with a reason."""
    spec = subject.spec
    # A metric whose columns follow its options (fid's, its extractor) declares them for this data and options.
    columns = spec.columns if spec.columns_for is None else spec.columns_for(subject.context())
    declared = [column.name for column in columns]
    required = {column.name for column in columns if not column.optional}
    seen = []
    for capability in subject.applicable:
        try:
            result = subject.compute(frozenset({capability}))
        except NotApplicable as reason:
            require(bool(str(reason).strip()), f"raised NotApplicable without a reason for a model with {capability}")
            seen.append(f"{capability}: N/A ({reason})")
            continue
        require(isinstance(result, MetricResult), f"compute returned {type(result).__name__}, not a MetricResult")
        require(
            required <= set(result.values) <= set(declared),
            f"with {capability}: returned columns {sorted(result.values)}, declared {sorted(declared)}",
        )
        bad = {name: value for name, value in result.values.items() if not finite(value)}
        require(not bad, f"with {capability}: non-finite or non-numeric values {bad}; raise NotApplicable instead")
        problem = json_problem(result.provenance)
        require(problem is None, f"with {capability}: provenance cannot be written as JSON ({problem})")
        values = ", ".join(f"{name}={value:.4g}" for name, value in result.values.items())
        seen.append(f"{capability}: {values}")
    return "; ".join(seen)


def check_not_applicable(subject: MetricSubject) -> str:
    """A model that cannot do what the metric asks (its method raises NotApplicable) gets N/A with the reason,
    never a number."""
    if not subject.spec.requires_any:
        raise Skipped("the metric requires no capability")
    for capability in subject.applicable:
        try:
            result = subject.compute(frozenset({capability}), refuse=capability)
        except NotApplicable as reason:
            require(bool(str(reason).strip()), "raised NotApplicable without a reason")
            continue
        raise ConformanceError(
            f"returned {result.values} although the model's {capability} raised NotApplicable; let it propagate"
        )
    return f"N/A with a reason when the model's {' or '.join(subject.applicable)} raises NotApplicable"
