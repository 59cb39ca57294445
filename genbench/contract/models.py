"""The model contract: what a model can do (capabilities), what ``fit`` receives, and the model spec."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import torch

from genbench.contract.data import DataInfo, ImageData

#: What a model can do; metrics declare which of these they need.
SAMPLE = "sample"
LOG_LIKELIHOOD = "log_likelihood"
ELBO = "elbo"
CAPABILITIES = frozenset({SAMPLE, LOG_LIKELIHOOD, ELBO})


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
    runner never fits (see genbench.runner.external); ``stored_samples = True`` marks one that reads its images rather
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
    #: Benchmarked by a run that names no models (``genbench run`` without ``--models``), in the order of this
    #: rank; None: only when named.
    default_rank: int | None = None
    #: ``--sample-set NAME=PATH`` makes a copy of this model called NAME for each file (images made elsewhere);
    #: at most one installed model says so.
    serves_sample_sets: bool = False

    def default_config(self) -> Any:
        return self.config_class()
