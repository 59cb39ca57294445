"""The floor every real model must beat: each pixel an independent categorical, fitted by counting.

With add-one (Laplace) smoothing the fit is the posterior mean under a uniform Dirichlet prior, so an unseen
value keeps a small probability and no test image gets log-likelihood -inf. Likelihood and sampling are exact.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

import genbench
from genbench import DataInfo, FitContext, ImageData
from genbench.toolkit.checks import require_positive


@dataclass
class IndependentConfig:
    pseudocount: float = 1.0  # added to every count; 1 is Laplace's add-one rule

    def __post_init__(self) -> None:
        # A zero or negative count makes some probabilities 0 or negative: log-likelihoods of -inf or NaN.
        require_positive(self, "pseudocount")


class IndependentPixels(nn.Module):
    capabilities = frozenset({genbench.SAMPLE, genbench.LOG_LIKELIHOOD})

    def __init__(self, config: IndependentConfig, info: DataInfo) -> None:
        super().__init__()
        self.config, self.info = config, info
        # Untrained, the model is uniform over the levels: exactly log2(levels) bits/dim.
        uniform = torch.full((info.dims, info.levels), -torch.log(torch.tensor(float(info.levels))).item())
        self.register_buffer("log_probs", uniform)

    def fit(self, train: ImageData, ctx: FitContext) -> None:
        flat = train.images.reshape(len(train), -1).long()
        counts = torch.zeros(self.info.dims, self.info.levels, dtype=torch.float64)
        counts.scatter_add_(1, flat.T, torch.ones(flat.T.shape, dtype=torch.float64))
        smoothed = counts + self.config.pseudocount
        self.log_probs = (smoothed / smoothed.sum(1, keepdim=True)).log().float().to(ctx.device)
        ctx.on_curve(1, {"nll": self.train_nll(train)})  # the curve name every likelihood model uses

    def train_nll(self, train: ImageData) -> float:
        return float(-self.log_likelihood(train.images.to(self.log_probs.device)).mean())

    def log_likelihood(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(len(x), -1).long().to(self.log_probs.device)
        per_pixel = self.log_probs.gather(1, flat.T)  # (dims, n)
        return per_pixel.sum(0)

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        probs = self.log_probs.exp().cpu()
        draws = torch.multinomial(probs, n, replacement=True, generator=generator)  # (dims, n)
        return draws.T.reshape(n, *self.info.shape).to(torch.uint8)

    def elbo(self, x: torch.Tensor, k: int = 1) -> torch.Tensor:
        raise NotImplementedError("the independent model has an exact log_likelihood; it needs no bound")


@genbench.hookimpl
def genbench_models() -> list[genbench.ModelSpec]:
    return [
        genbench.ModelSpec(
            "independent",
            "baseline: independent per-pixel categoricals, fitted by counting with add-one smoothing",
            IndependentConfig,
            IndependentPixels,
        )
    ]
