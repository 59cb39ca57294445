"""The contract between the core and its plugins: specs, data, contexts and the model protocol.

Plugins import these names from ``genbench`` (or ``genbench.types``); the core never imports a plugin.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import torch

if TYPE_CHECKING:
    from genbench.plugins import Registry

#: What a model can do; metrics declare which of these they need.
SAMPLE = "sample"
LOG_LIKELIHOOD = "log_likelihood"
ELBO = "elbo"
CAPABILITIES = frozenset({SAMPLE, LOG_LIKELIHOOD, ELBO})


class GenbenchError(Exception):
    """A user mistake: the CLI prints its message on one line and exits 2."""


class PluginError(GenbenchError):
    """A plugin misbehaved; the message names the plugin."""


class NotApplicable(Exception):
    """Raised by a metric's compute function when it cannot measure this model; the reason is recorded."""


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite; the cell is recorded as failed with this reason."""


# --------------------------------------------------------------------------------------------- data


@dataclass(frozen=True)
class ImageData:
    """Discrete images: a uint8 tensor (N, C, H, W) with values in [0, levels), and optional labels."""

    images: torch.Tensor
    levels: int
    labels: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.dim() != 4:
            raise ValueError(
                f"images must be a uint8 tensor (N, C, H, W), got {self.images.dtype} {tuple(self.images.shape)}"
            )
        if not 2 <= self.levels <= 256:
            raise ValueError(f"levels must be in [2, 256], got {self.levels}")
        if self.labels is not None and len(self.labels) != len(self.images):
            raise ValueError("labels and images differ in length")

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        c, h, w = self.images.shape[1:]
        return int(c), int(h), int(w)

    @property
    def dims(self) -> int:
        """Number of discrete values in one image (C * H * W), the D of bits/dim."""
        return math.prod(self.shape)

    def subset(self, index: torch.Tensor | slice) -> ImageData:
        labels = None if self.labels is None else self.labels[index]
        return ImageData(self.images[index], self.levels, labels)


@dataclass(frozen=True)
class DataInfo:
    """What a model factory needs to know about the data: the shape of one image and the number of levels."""

    shape: tuple[int, int, int]
    levels: int

    @property
    def dims(self) -> int:
        return math.prod(self.shape)


@dataclass(frozen=True)
class Dataset:
    """A loaded data set: its fixed train/test split and where it came from."""

    name: str
    train: ImageData
    test: ImageData
    #: Everything needed to say how the numbers were measured: source, split seed, sizes, levels, shape.
    provenance: Mapping[str, Any]

    @property
    def info(self) -> DataInfo:
        return DataInfo(self.train.shape, self.train.levels)


@dataclass(frozen=True)
class DatasetOptions:
    """What the user said about data: where it lives, whether it may be downloaded, binarization."""

    root: Path | None = None
    download: bool = False
    binarize: bool = False


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    description: str
    #: Loads the data set; raises GenbenchError with a helpful message when it cannot.
    load: Callable[[DatasetOptions], Dataset]


# -------------------------------------------------------------------------------------------- models


@dataclass
class FitContext:
    """Everything a model's ``fit`` gets from the runner besides the data."""

    device: torch.device
    seed: int
    #: The only source of randomness a model may use, so that a seed reproduces a run.
    generator: torch.Generator
    #: Show progress bars (the runner turns them off when the output is not a terminal).
    progress: bool = False
    #: Receives one point of the training curve: ``on_curve(epoch, {"nll": 78.6})``, losses per image (nats for
    #: a likelihood: ``nll``, ``negative_elbo``); see "Training curves" in docs/plugins.md.
    on_curve: Callable[[int, Mapping[str, float]], None] = lambda step, values: None

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        """Mixed precision where it pays (bfloat16 on CUDA); full precision on the CPU, where it would not."""
        if self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()


@runtime_checkable
class GenerativeModel(Protocol):
    """What a model factory returns. Methods outside ``capabilities`` may raise NotImplementedError.

    Optional attributes: ``origin``, a dict with ``file`` and ``sha256``, marks a model made elsewhere, which the
    runner never fits (see genbench.origins); ``stored_samples = True`` marks one that reads its images rather
    than generating them, so it has no sampling time.
    """

    #: A subset of {"sample", "log_likelihood", "elbo"}.
    capabilities: frozenset[str]

    def fit(self, train: ImageData, ctx: FitContext) -> None:
        """Train on ``train`` (uint8, on the CPU); the model is already on ``ctx.device``."""
        ...

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """n images as a uint8 tensor (n, C, H, W), values in [0, levels), on the CPU; ``generator`` is a CPU one."""
        ...

    def log_likelihood(self, x: torch.Tensor) -> torch.Tensor:
        """Exact log p(x) in nats for a uint8 batch (n, C, H, W) on the model's device; a float tensor (n,)."""
        ...

    def elbo(self, x: torch.Tensor, k: int = 1) -> torch.Tensor:
        """The importance-weighted lower bound on log p(x) with k samples (k=1 is the ELBO), in nats."""
        ...

    def to(self, device: torch.device) -> Any: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: Mapping[str, Any]) -> Any: ...


@dataclass(frozen=True)
class ModelSpec:
    name: str
    description: str
    #: A dataclass whose fields are the model's hyperparameters; every field needs a default. Options are
    #: checked against the field annotations; a ``__post_init__`` raising ValueError checks value ranges.
    config_class: type
    #: Builds an untrained model from a config instance and the data's shape and levels.
    factory: Callable[[Any, DataInfo], GenerativeModel]

    def default_config(self) -> Any:
        return self.config_class()


# ------------------------------------------------------------------------------------------- metrics


@dataclass(frozen=True)
class Column:
    """One number a metric writes into the results table."""

    name: str
    unit: str
    higher_is_better: bool
    description: str = ""


@dataclass
class MetricResult:
    """What a metric computed: values per column, and how they were measured."""

    values: dict[str, float]
    provenance: dict[str, Any] = field(default_factory=dict)


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
    #: Every installed plugin's specs, e.g. to find a feature extractor by name.
    registry: Registry
    #: A directory for caches that outlive the run (reference statistics, trained feature extractors).
    cache_dir: Path
    progress: bool = False
    #: Values of the command-line options that plugins added through ``genbench_addoption``.
    options: Mapping[str, Any] = field(default_factory=dict)
    #: Shared by every metric of one cell, so that e.g. ``bpd`` reuses what ``nll`` computed.
    memo: dict[str, Any] = field(default_factory=dict)

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


# ------------------------------------------------------------------------------------------ options


class ArgumentAdder(Protocol):
    """Anything with argparse's public ``add_argument``: a parser, or one of its argument groups."""

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action: ...


class OptionGroup:
    """Where plugins add options to ``genbench run`` (see the ``genbench_addoption`` hook).

    It wraps any ``ArgumentAdder`` (the CLI gives an argument group of ``genbench run``; ``genbench.run()`` a
    parser of its own, to learn which ``plugin_options`` keys exist), so plugins depend on no argparse internals.
    """

    def __init__(self, adder: ArgumentAdder) -> None:
        self._adder = adder
        #: Every option added, by dest: its type, choices and default check ``genbench.run(plugin_options=...)``.
        self.actions: dict[str, argparse.Action] = {}

    @property
    def dests(self) -> list[str]:
        """The dests of every option added, so the CLI can hand their values to metrics."""
        return list(self.actions)

    def addoption(self, *flags: str, **kwargs: Any) -> None:
        """Takes argparse's ``add_argument`` arguments; values reach metrics as ``EvalContext.options[dest]``."""
        action = self._adder.add_argument(*flags, **kwargs)
        self.actions[action.dest] = action


# ---------------------------------------------------------------------------------------------- trackers


@dataclass(frozen=True)
class TrackerSpec:
    """A tracker (TensorBoard, MLflow, ...) that ``--log NAME`` switches on.

    The spec only names it; the tracker's work is done by its plugin's event hooks (``genbench_training_curve``,
    ``genbench_cell_finished``), which act when ``NAME in run.trackers``.
    """

    name: str
    description: str
    #: Says before any cell runs whether the tracker can work (its library installed and importable), raising
    #: GenbenchError with what to install if not; it is called only when the tracker is asked for, and writes
    #: nothing.
    check: Callable[[], None] | None = None


@dataclass(frozen=True)
class RunContext:
    """What event hooks learn about the run a cell belongs to: where it is written and what was switched on."""

    #: The run folder (results/<run>); trackers write beneath it (e.g. ``tensorboard/``) unless told otherwise.
    root: Path
    #: The names given with ``--log`` (or ``log = [...]`` in a suite file): the trackers switched on.
    trackers: tuple[str, ...] = ()
    #: Values of the options that plugins added to the command line, by dest.
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.root.name

    def cell_file(self, cell_id: str) -> Path:
        """The cell's record, ``cells/<cell>.json`` (written before ``genbench_cell_finished`` is called)."""
        return self.root / "cells" / f"{cell_id}.json"

    def sample_grid(self, cell_id: str) -> Path | None:
        """The cell's grid of samples, ``samples/<cell>.png``, or None for a model that draws none."""
        path = self.root / "samples" / f"{cell_id}.png"
        return path if path.is_file() else None


@dataclass(frozen=True)
class CurvePoint:
    """One point of a cell's training curve, as the model's ``fit`` reported it (once per epoch in the
    built-ins, through ``FitContext.on_curve``)."""

    cell_id: str
    model: str
    dataset: str
    seed: int
    #: The step the model gave (the epoch, for ``genbench.training.train_epochs``).
    step: int
    #: Loss name -> value at this step, already plain floats (nothing waits for a GPU to produce them).
    values: Mapping[str, float]


# ----------------------------------------------------------------------------------------- records


@dataclass
class CellRecord:
    """One finished (or failed) cell: what was run, how, and what it measured."""

    cell_id: str
    model: str
    dataset: str
    seed: int
    status: str  # "ok" or "failed"
    config: dict[str, Any]
    checkpoint_key: str
    error: str | None = None
    traceback: str | None = None
    train_time: float | None = None
    #: Column -> value; a column that does not apply is absent here and present in ``not_applicable``.
    metrics: dict[str, float] = field(default_factory=dict)
    not_applicable: dict[str, str] = field(default_factory=dict)
    #: Metric name -> how it was measured (method, k, extractor, sample counts, ...).
    provenance: dict[str, dict[str, Any]] = field(default_factory=dict)
    dataset_provenance: dict[str, Any] = field(default_factory=dict)
    device: str = "cpu"
    curve: list[dict[str, float]] = field(default_factory=list)
    trained: bool = True
    started: str = ""
    finished: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CellRecord:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})
