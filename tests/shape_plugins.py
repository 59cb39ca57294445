"""A third-party model that cannot take every shape, loaded with -p by the prepare tests; nothing is installed."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

import genbench
from fake_plugins import ConstantConfig, ConstantModel
from genbench import DataInfo


@dataclass
class AtLeastConfig:
    min_size: int = 16  # the smallest image side this model's architecture can take
    epochs: int = 1


class AtLeastModel(ConstantModel):
    """Refuses images smaller than its config allows, with an error that is not a GenbenchError (a plain bug)."""

    def __init__(self, config: AtLeastConfig, info: DataInfo) -> None:
        if min(info.shape[1:]) < config.min_size:
            raise ValueError(f"needs images of at least {config.min_size}x{config.min_size},\ngot {info.shape}")
        super().__init__(ConstantConfig(), info)


@genbench.hookimpl
def genbench_models() -> list[genbench.ModelSpec]:
    return [genbench.ModelSpec("at_least", "refuses images smaller than min_size", AtLeastConfig, AtLeastModel)]


class UniformModel(nn.Module):
    """A likelihood-only model (no samples): uniform over the levels, exactly log2(levels) bits/dim."""

    capabilities = frozenset({genbench.LOG_LIKELIHOOD})

    def __init__(self, config: AtLeastConfig, info: DataInfo) -> None:
        super().__init__()
        self.info = info

    def fit(self, train: genbench.ImageData, ctx: genbench.FitContext) -> None:
        ctx.on_curve(1, {"loss": 0.0})

    def log_likelihood(self, x: torch.Tensor) -> torch.Tensor:
        return torch.full((len(x),), -self.info.dims * math.log(self.info.levels))


@genbench.hookimpl(specname="genbench_models")
def likelihood_only_models() -> list[genbench.ModelSpec]:
    return [genbench.ModelSpec("uniform", "uniform over the levels; no samples", AtLeastConfig, UniformModel)]
