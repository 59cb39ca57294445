"""Model plugins written from the docs with one mistake each in what they return; loaded with -p or plugins=[...].

Each is a uniform model over the data's levels (valid samples, the exact log p of -D ln(levels)) but for the one
output it gets wrong, so that a run can show that the runner fails that cell with one sentence and nothing it
measured reaches the table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

import genbench
from genbench import DataInfo, FitContext, ImageData

#: Model name -> the sentence its cell fails with (a fragment of it).
EXPECTED_ERRORS = {
    "bytes": "model 'bytes' sample(64) returned values up to 255 on data with 17 levels; expected uint8 in 0..16",
    "floats": "model 'floats' sample(64) returned torch.float32 (64, 1, 8, 8) on cpu; expected a uint8 tensor",
    "positive": "model 'positive' log_likelihood(128 images) returned log p up to 373.9 nats; expected log p <= 0",
    "nan": "model 'nan' log_likelihood(128 images) returned NaN or infinite log p for 1 of 128 images; expected finite",
    "summed": "model 'summed' elbo(128 images, k=100) returned torch.float32 (); expected a float tensor (128,)",
}


@dataclass
class UniformConfig:
    epochs: int = 1  # nothing is trained; a field so that the config is a config


class Uniform(nn.Module):
    """Every value uniform over the levels: a correct model, which the subclasses below break in one place."""

    capabilities = frozenset({genbench.SAMPLE, genbench.LOG_LIKELIHOOD})

    def __init__(self, config: UniformConfig, info: DataInfo) -> None:
        super().__init__()
        self.info = info
        self.register_buffer("levels", torch.tensor(info.levels))

    def fit(self, train: ImageData, ctx: FitContext) -> None:
        ctx.on_curve(1, {"nll": self.info.dims * math.log(self.info.levels)})

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return torch.randint(0, self.info.levels, (n, *self.info.shape), generator=generator, dtype=torch.uint8)

    def log_likelihood(self, x: torch.Tensor) -> torch.Tensor:
        return torch.full((len(x),), -self.info.dims * math.log(self.info.levels), device=x.device)


class Bytes(Uniform):
    """Samples scaled to 0..255 as for 8-bit images, on data of fewer levels."""

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        scaled = super().sample(n, generator).float() * 255 / (self.info.levels - 1)
        return scaled.round().to(torch.uint8)


class Floats(Uniform):
    """Samples as floats in [0, 1], as a model of continuous images gives them."""

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return super().sample(n, generator).float() / (self.info.levels - 1)


class Positive(Uniform):
    """log p with its sign flipped: the negative log-likelihood returned in its place."""

    def log_likelihood(self, x: torch.Tensor) -> torch.Tensor:
        return -super().log_likelihood(x) + 192.58  # 373.9 nats: a density of 0..255 values, far above 1


class NotANumber(Uniform):
    """A NaN for one image of each batch."""

    def log_likelihood(self, x: torch.Tensor) -> torch.Tensor:
        values = super().log_likelihood(x)
        values[0] = math.nan
        return values


class Summed(Uniform):
    """A bound summed over the batch (a training loss) where one value per image is due."""

    capabilities = frozenset({genbench.SAMPLE, genbench.ELBO})

    def elbo(self, x: torch.Tensor, k: int = 1) -> torch.Tensor:
        return super().log_likelihood(x).sum()


@genbench.hookimpl
def genbench_models() -> list[genbench.ModelSpec]:
    made = [
        ("bytes", Bytes),
        ("floats", Floats),
        ("positive", Positive),
        ("nan", NotANumber),
        ("summed", Summed),
    ]
    return [genbench.ModelSpec(name, model.__doc__ or name, UniformConfig, model) for name, model in made]
