"""The metric and feature-extractor contracts: columns, what a compute function receives, and the specs."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch

from genbench.contract.data import Dataset
from genbench.contract.models import GenerativeModel


@dataclass(frozen=True)
class Column:
    """One number a metric writes into the results table."""

    name: str
    unit: str
    higher_is_better: bool
    description: str = ""
    #: Where this column stands among the quality columns that a leaderboard orders rows by and plots against
    #: sample time: the lowest rank measured wins. None: never used to rank (a spread, a time, a count).
    rank: int | None = None
    #: Written only by some evaluations (``fid_eval_std`` where fid was evaluated repeatedly): a cell may lack it.
    optional: bool = False


@dataclass
class MetricResult:
    """What a metric computed: values per column, and how they were measured."""

    values: dict[str, float]
    provenance: dict[str, Any] = field(default_factory=dict)


class ExtractorLookup(Protocol):
    """What a metric may ask of the installed plugins: a feature extractor by name. (The registry is one.)"""

    def extractor(self, name: str) -> ExtractorSpec:
        """The extractor spec called ``name``; an unknown name raises GenbenchError with the installed ones."""
        ...

    def extractor_source(self, name: str) -> str | None:
        """A hash of the source of the plugin that provides extractor ``name`` (part of every cache key)."""
        ...

    def default_extractor(self, dataset: Dataset) -> str:
        """The extractor to use on ``dataset`` where none is named (``ExtractorSpec.default_rank``)."""
        ...


@dataclass
class EvalContext:
    """Everything a metric's compute function gets besides the model."""

    dataset: Dataset
    device: torch.device
    seed: int
    #: Seeded randomness for sampling during evaluation.
    generator: torch.Generator
    #: This metric's resolved config (an instance of its spec's config_class, or None).
    config: Any
    #: The installed feature extractors, found by name: ``ctx.registry.extractor("inception")``.
    registry: ExtractorLookup
    #: A directory for caches that outlive the run (reference statistics, trained feature extractors).
    cache_dir: Path
    progress: bool = False
    #: Values of the command-line options that plugins added through ``genbench_addoption``.
    options: Mapping[str, Any] = field(default_factory=dict)
    #: Shared by every metric of one cell, so that e.g. ``bpd`` reuses what ``nll`` computed.
    memo: dict[str, Any] = field(default_factory=dict)
    #: The name of the model under evaluation (a row of the table), for settings given per model.
    model_name: str = ""

    def remember(self, key: str, compute: Callable[[], Any]) -> Any:
        """Compute once per cell, then reuse."""
        if key not in self.memo:
            self.memo[key] = compute()
        return self.memo[key]


@dataclass(frozen=True)
class MetricSpec:
    name: str
    description: str
    columns: tuple[Column, ...]
    #: A model must have at least one of these capabilities, or every column is N/A.
    requires_any: frozenset[str]
    compute: Callable[[GenerativeModel, EvalContext], MetricResult]
    #: A dataclass of the metric's options (e.g. the number of importance samples), or None.
    config_class: type | None = None
    #: Checks the resolved options (``ctx.config``) against the loaded data before any cell runs, and raises
    #: GenbenchError if they cannot work (a bad option, a feature extractor that cannot load); cheap, no training.
    check: Callable[[EvalContext], None] | None = None
    #: Another metric whose options this one shares, so that the two report one estimate (``bpd`` shares
    #: ``nll``'s): a run resolves one config from the options given under either name, and refuses two values
    #: for one option. Both metrics must have the same ``config_class``.
    shares_options_with: str | None = None
    #: Whether a run that names no metrics (no --metrics) evaluates it. False for a metric that such a run must
    #: not pay for unasked: weights that are fetched by hand (cmmd's CLIP ViT-L/14), hours of CPU per cell.
    in_default_run: bool = True
    #: The columns this metric writes with the run's options on the run's data, where they depend on them, e.g.
    #: ``fid`` (a Fréchet distance of InceptionV3 features, as Heusel et al. define FID) or ``fd_classifier`` where
    #: the extractor is another: called once per run with the context ``check`` gets, before any cell, and used
    #: for that run in place of ``columns``. None: always ``columns``. ``columns`` stays the default declaration.
    columns_for: Callable[[EvalContext], tuple[Column, ...]] | None = None

    def default_config(self) -> Any:
        return None if self.config_class is None else self.config_class()


# ---------------------------------------------------------------------------------- feature extractors


@dataclass(frozen=True)
class ExtractorSpec:
    name: str
    description: str
    #: Builds the extractor for a data set: returns a function from uint8 images to float64 features
    #: (n, d), and a dict that identifies it (weights hash, training data) for caching reference statistics.
    load: Callable[[Dataset, EvalContext], tuple[Callable[[torch.Tensor], torch.Tensor], dict[str, Any]]]
    #: Says before any cell runs whether ``load`` can work for this data and these options (a weights file that is
    #: there, labels to train on), raising GenbenchError if not; it builds no network and trains nothing (it may
    #: fetch a missing weights file, as ``load`` would, so that being offline shows before the first cell).
    check: Callable[[Dataset, EvalContext], None] | None = None
    #: Whether this extractor is a default choice, and how strongly: where a metric or ``genbench stats`` is
    #: given no extractor, the one with the lowest rank that can serve the data set is used. None: only by name.
    default_rank: int | None = None
    #: It can serve only data sets with labels (it trains on them).
    needs_labels: bool = False
