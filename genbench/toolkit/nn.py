"""Building blocks that model plugins share: level rescaling, masked convolutions, discrete likelihoods.

Every likelihood here is of the data's discrete values {0, ..., levels-1} (see ARCHITECTURE.md, "Data and
likelihood conventions"): each function returns log-probabilities that sum to one over the levels, so the
numbers of any model built from them are comparable with every other model's.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from genbench.toolkit.devices import to_device

# ------------------------------------------------------------------------------------------ rescaling


def levels_to_unit(x: torch.Tensor, levels: int) -> torch.Tensor:
    """uint8 levels {0, ..., levels-1} -> float32 bin centres evenly spaced in [-1, 1] (0 -> -1, top -> 1)."""
    return x.float() * (2.0 / (levels - 1)) - 1.0


def unit_to_levels(y: torch.Tensor, levels: int) -> torch.Tensor:
    """Float values in [-1, 1] -> the nearest level as uint8; values outside are clamped to the end levels.

    The inverse of ``levels_to_unit`` on bin centres, and the quantizer that turns a continuous sample (a GAN's
    output) into data: level k owns the interval of half-width 1/(levels-1) around its centre.
    """
    scaled = (y.float() + 1.0) * ((levels - 1) / 2.0)
    return scaled.round().clamp(0, levels - 1).to(torch.uint8)


def dequantize(x: torch.Tensor, levels: int, generator: torch.Generator) -> torch.Tensor:
    """uint8 levels -> float in [-1, 1], spread uniformly over each level's bin (clamped at the two ends).

    A continuous model (a GAN's discriminator) then cannot tell real data from generated data by discreteness
    alone; ``unit_to_levels`` maps every point of a bin back to its level.
    """
    half_width = 1.0 / (levels - 1)
    noise = to_device(torch.rand(x.shape, generator=generator, device=generator.device), x.device)
    return (levels_to_unit(x, levels) + (2.0 * noise - 1.0) * half_width).clamp(-1.0, 1.0)


# ------------------------------------------------------------------------------------- masked convolution


class MaskedConv2d(nn.Conv2d):
    """A convolution that sees only the pixels before the current one in raster order (PixelCNN).

    van den Oord et al. (2016), "Pixel Recurrent Neural Networks", Section 3.4 and Figure 2: every row above the
    centre, and the pixels left of the centre in its row. At the centre pixel, an image with ``data_channels``
    channels (R, G, B) is generated channel by channel, so the feature maps are split into that many groups and
    group g may see the centre's groups < g (mask "A", the first layer: a value never sees itself) or <= g (mask
    "B", every later layer). Channel o belongs to group ``o % data_channels``; the grouping survives splitting
    the channels into equal halves (a gate) as long as every half is a multiple of ``data_channels`` wide.
    """

    mask: torch.Tensor

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        mask_type: Literal["A", "B"],
        data_channels: int = 1,
        bias: bool = True,
    ) -> None:
        kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
        if kh % 2 == 0 or kw % 2 == 0:
            raise ValueError(f"MaskedConv2d needs an odd kernel size, got {(kh, kw)}")
        if mask_type not in ("A", "B"):
            raise ValueError(f"mask_type must be 'A' or 'B', got {mask_type!r}")
        super().__init__(in_channels, out_channels, (kh, kw), padding=(kh // 2, kw // 2), bias=bias)
        self.mask_type = mask_type
        self.data_channels = data_channels
        # Not a persistent buffer: the mask follows from the constructor's arguments, not from training.
        self.register_buffer("mask", self.build_mask(), persistent=False)

    def build_mask(self) -> torch.Tensor:
        out_channels, in_channels, kh, kw = self.weight.shape
        mask = torch.zeros(out_channels, in_channels, kh, kw)
        mask[:, :, : kh // 2] = 1.0  # every row above the centre
        mask[:, :, kh // 2, : kw // 2] = 1.0  # left of the centre in its row
        out_group = torch.arange(out_channels) % self.data_channels
        in_group = torch.arange(in_channels) % self.data_channels
        if self.mask_type == "A":
            allowed = out_group[:, None] > in_group[None, :]
        else:
            allowed = out_group[:, None] >= in_group[None, :]
        mask[:, :, kh // 2, kw // 2] = allowed.float()
        return mask

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.mask, self.bias, self.stride, self.padding, self.dilation, self.groups)


# ---------------------------------------------------------------------------------- discrete likelihoods


def categorical_log_prob(logits: torch.Tensor, x: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """log p(x) per element of a categorical over ``logits.shape[dim]`` levels; x holds the levels (any int type).

    The result has x's shape (the levels dimension removed). Computed in float32 even under autocast.
    """
    log_probs = F.log_softmax(logits.float(), dim=dim)
    return log_probs.gather(dim, x.long().unsqueeze(dim)).squeeze(dim)


def bernoulli_log_prob(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """log p(x) per element of a Bernoulli with P(x=1) = sigmoid(logits); x holds 0 or 1."""
    return -F.binary_cross_entropy_with_logits(logits.float(), x.float(), reduction="none")


def discretized_logistic_log_prob(
    x: torch.Tensor, mean: torch.Tensor, log_scale: torch.Tensor, levels: int
) -> torch.Tensor:
    """log P(x) per element under a logistic(mean, exp(log_scale)) on [-1, 1] integrated over each level's bin.

    Salimans et al. (2017), "PixelCNN++", eq. (2): level k's bin is [c_k - h, c_k + h] around its centre c_k
    (``levels_to_unit``) with h = 1/(levels-1); the lowest bin extends to -inf and the highest to +inf, so the
    probabilities of all levels sum to one. With a = (c_k + h - mean)/s and b = (c_k - h - mean)/s,

        P = sigmoid(a) - sigmoid(b) = sigmoid(a) * sigmoid(-b) * (1 - exp(b - a))

    (multiply out the fractions), whose logarithm is a sum of stable terms for every a > b: no cancellation even
    for a narrow logistic far from the bin, where the plain difference of sigmoids rounds to zero.
    """
    centre = levels_to_unit(x, levels)
    half_width = 1.0 / (levels - 1)
    mean, log_scale = mean.float(), log_scale.float()
    inv_scale = torch.exp(-log_scale)
    a = (centre + half_width - mean) * inv_scale
    b = (centre - half_width - mean) * inv_scale
    log_below_top = F.logsigmoid(a)  # log P(value <= upper edge)
    log_above_bottom = F.logsigmoid(-b)  # log P(value >= lower edge)
    log_both = torch.log(-torch.expm1(-(2.0 * half_width) * inv_scale))  # log(1 - exp(b - a))
    is_bottom, is_top = x == 0, x == levels - 1
    zero = torch.zeros_like(a)
    return (
        torch.where(is_top, zero, log_below_top)
        + torch.where(is_bottom, zero, log_above_bottom)
        + torch.where(is_bottom | is_top, zero, log_both)
    )


# --------------------------------------------------------------------------------------------- sampling


def sample_categorical(logits: torch.Tensor, generator: torch.Generator, dim: int = 1) -> torch.Tensor:
    """One draw per position from the categorical over ``dim``, as uint8 levels on the logits' device.

    The draw happens on the generator's device, so a CPU generator reproduces the same samples on any device.
    """
    moved = logits.float().movedim(dim, -1)
    probs = F.softmax(moved, dim=-1).reshape(-1, moved.shape[-1]).to(generator.device)
    draws = torch.multinomial(probs, 1, generator=generator).reshape(moved.shape[:-1])
    return draws.to(device=logits.device, dtype=torch.uint8)


def sample_bernoulli(logits: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One 0/1 draw per element with P(1) = sigmoid(logits), as uint8 on the logits' device."""
    probs = torch.sigmoid(logits.float()).to(generator.device)
    return torch.bernoulli(probs, generator=generator).to(device=logits.device, dtype=torch.uint8)


def sample_discretized_logistic(
    mean: torch.Tensor, log_scale: torch.Tensor, levels: int, generator: torch.Generator
) -> torch.Tensor:
    """One draw per element from ``discretized_logistic_log_prob``'s distribution, as uint8 levels.

    A logistic draw is mean + s * log(u / (1 - u)) for u ~ Uniform(0, 1) (the inverse CDF); rounding it to the
    nearest level, with the ends clamped, puts it in exactly the bin whose probability that function computes
    (u = 0 gives -inf, which clamps to level 0).
    """
    u = torch.rand(mean.shape, generator=generator, device=generator.device).to(mean.device)
    draw = mean.float() + torch.exp(log_scale.float()) * (torch.log(u) - torch.log1p(-u))
    return unit_to_levels(draw, levels)
