"""MADE: a masked autoencoder whose outputs are the conditionals of an autoregressive model.

Germain, Gregor, Murray & Larochelle (2015), "MADE: Masked Autoencoder for Distribution Estimation". Number the
D values of an image 1..D (here: channels, then rows, then columns, in raster order). Every hidden unit gets a
degree m in [1, D - 1]; a connection from a unit of degree m to one of degree m' is kept when m' >= m, and from
a hidden unit to the output of value d when d > m (the paper's two mask rules). The output of value d then depends
only on values 1..d-1, so p(x) = prod_d p(x_d | x_<d) is a normalized distribution whose log-likelihood is one
forward pass, and sampling takes D passes, one value at a time.

The paper models binary pixels with a sigmoid per value. Here each output is a softmax over the data's levels
(a categorical per value, as PixelCNN's), so the model works on the digits' 17 levels as on binarized data. The
hidden degrees are assigned cyclically (1, 2, ..., D-1, 1, 2, ...) rather than at random: one fixed ordering
and connectivity, so the model is a deterministic function of its config (the paper's order-agnostic training
over many masks is left out).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import genbench
import torch
import torch.nn.functional as F
from genbench import DataInfo, FitContext, ImageData
from genbench.toolkit.checks import require_at_least, require_positive
from genbench.toolkit.nn import categorical_log_prob, sample_categorical
from genbench.toolkit.training import fit_by_minimizing
from torch import nn


@dataclass
class MADEConfig:
    hidden: int = 512  # units per hidden layer; the paper uses 500 on binarized MNIST
    layers: int = 2  # hidden layers; the paper's best MNIST results use one or two
    epochs: int = 40  # ~20 s on one CPU core for the 1,438 digits
    batch_size: int = 64  # small batches, many updates, for the small digits set
    lr: float = 2e-3  # Adam's first step, decayed to zero on a cosine over all updates

    def __post_init__(self) -> None:
        require_at_least(self, 1, "hidden", "layers", "epochs", "batch_size")
        require_positive(self, "lr")


class MaskedLinear(nn.Linear):
    """A linear layer whose weight is multiplied by a fixed 0/1 mask (a buffer, saved with the checkpoint)."""

    def __init__(self, mask: torch.Tensor) -> None:
        super().__init__(mask.shape[1], mask.shape[0])
        self.mask: torch.Tensor
        self.register_buffer("mask", mask.float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.mask, self.bias)


def hidden_degrees(units: int, dims: int) -> torch.Tensor:
    """Degrees 1..D-1 assigned in turn (a single value, D = 1, has no predecessors: degree 1, cut from the output)."""
    return torch.arange(units) % max(dims - 1, 1) + 1


def made_masks(dims: int, hidden: int, layers: int) -> list[torch.Tensor]:
    """The masks (out, in) of every layer; the last maps to D outputs, repeated over the levels by the caller."""
    degrees = [torch.arange(1, dims + 1)]  # the inputs: value d has degree d
    degrees += [hidden_degrees(hidden, dims) for _ in range(layers)]
    masks = [(later[:, None] >= earlier[None, :]) for earlier, later in itertools.pairwise(degrees)]
    output = torch.arange(1, dims + 1)
    masks.append(output[:, None] > degrees[-1][None, :])  # strictly greater: value d never sees itself
    return masks


class MADE(nn.Module):
    capabilities = frozenset({genbench.SAMPLE, genbench.LOG_LIKELIHOOD})

    def __init__(self, config: MADEConfig, info: DataInfo) -> None:
        super().__init__()
        self.config, self.info = config, info
        masks = made_masks(info.dims, config.hidden, config.layers)
        # The output layer has `levels` logits per value, each with that value's mask row.
        masks[-1] = masks[-1].repeat_interleave(info.levels, dim=0)
        layers: list[nn.Module] = []
        for mask in masks[:-1]:
            layers += [MaskedLinear(mask), nn.ReLU()]
        self.net = nn.Sequential(*layers, MaskedLinear(masks[-1]))

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """(n, D, levels) logits of every conditional, from uint8 images (n, C, H, W) scaled to [0, 1]."""
        scaled = x.flatten(1).float() / (self.info.levels - 1)
        logits: torch.Tensor = self.net(scaled)
        return logits.view(len(x), self.info.dims, self.info.levels)

    def log_likelihood(self, x: torch.Tensor) -> torch.Tensor:
        return categorical_log_prob(self.logits(x), x.flatten(1), dim=-1).sum(-1)

    def fit(self, train: ImageData, ctx: FitContext) -> None:
        config = self.config
        fit_by_minimizing(
            self,
            lambda batch: -self.log_likelihood(batch).mean(),
            train,
            ctx,
            lr=config.lr,
            epochs=config.epochs,
            batch_size=config.batch_size,
            dims=self.info.dims,
            curve_name="nll",  # nats per image: the curve name every likelihood model uses
            desc="made",
        )

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """D forward passes: value d is drawn from p(x_d | x_<d) once the values before it are drawn."""
        device = next(self.parameters()).device
        canvas = torch.zeros(n, *self.info.shape, dtype=torch.uint8, device=device)
        flat = canvas.view(n, -1)
        for d in range(self.info.dims):
            # Drawn on the caller's generator's device (the CPU): the same images on every device.
            flat[:, d] = sample_categorical(self.logits(canvas)[:, d], generator, dim=-1)
        return canvas.cpu()

    def elbo(self, x: torch.Tensor, k: int = 1) -> torch.Tensor:
        raise NotImplementedError("MADE has an exact log_likelihood; it needs no bound")


@genbench.hookimpl
def genbench_models() -> list[genbench.ModelSpec]:
    return [
        genbench.ModelSpec("made", "MADE (Germain et al. 2015): masked autoencoder, exact likelihood", MADEConfig, MADE)
    ]
