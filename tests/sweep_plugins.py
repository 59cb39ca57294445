"""A model with evaluation-time options and a declared variational bound, for the sweep and likelihood-kind tests.

``swept`` is an independent-pixel categorical fitted by counting. Its ``steps`` option changes how many times it
draws before returning (and so its network evaluations), never what was trained; its likelihood is declared as
a variational bound: the exact log-likelihood minus a constant of half a nat, a valid lower bound.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

import genbench

BOUND_GAP = 0.5


@dataclass
class SweptConfig:
    smoothing: float = 1.0  # add-one counts: part of what is trained


@dataclass
class SweptSampling:
    steps: int = 1  # draws per sample; only the last is kept

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ValueError(f"steps must be at least 1, got {self.steps}")


class Swept(nn.Module):
    capabilities = frozenset({genbench.SAMPLE, genbench.LIKELIHOODS})

    def __init__(self, config: SweptConfig, info: genbench.DataInfo) -> None:
        super().__init__()
        self.config, self.info = config, info
        self.register_buffer("log_probs", torch.full((info.dims, info.levels), -float(torch.tensor(info.levels).log())))
        self.sample_options = SweptSampling()
        self.likelihoods = [
            genbench.Likelihood("vlb", genbench.VARIATIONAL_BOUND, self.bound, description="exact minus half a nat")
        ]

    @property
    def network_evaluations(self) -> int:
        return self.sample_options.steps

    def fit(self, train: genbench.ImageData, ctx: genbench.FitContext) -> None:
        flat = train.images.flatten(1).long()
        counts = torch.zeros(self.info.dims, self.info.levels).scatter_add_(
            1, flat.T, torch.ones(flat.shape[1], flat.shape[0])
        )
        smoothed = counts + self.config.smoothing
        self.log_probs.copy_((smoothed / smoothed.sum(-1, keepdim=True)).log())
        ctx.on_curve(1, {"nll": 0.0})

    def bound(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.flatten(1).long()
        exact = self.log_probs[torch.arange(self.info.dims, device=x.device), flat].sum(-1)
        return exact - BOUND_GAP

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        probs = self.log_probs.exp().cpu().repeat(n, 1)
        for _ in range(self.sample_options.steps):
            draws = torch.multinomial(probs, 1, generator=generator)
        return draws.reshape(n, *self.info.shape).to(torch.uint8)


@genbench.hookimpl
def genbench_models() -> list[genbench.ModelSpec]:
    return [
        genbench.ModelSpec(
            "swept", "counts, a declared bound, steps", SweptConfig, Swept, sample_options_class=SweptSampling
        )
    ]
