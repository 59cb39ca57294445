"""A small U-Net that maps an image and a time in [0, 1] to an image of the same size: diffusion and flow models.

The network of Ho et al. (2020), "Denoising Diffusion Probabilistic Models", Appendix B, which follows the
PixelCNN++ backbone: a U-Net of residual blocks with group normalization (Wu & He 2018), the time given to every
block as a sinusoidal embedding (Vaswani et al. 2017, Section 3.5) passed through a two-layer MLP and added to
the feature maps, self-attention at the lowest resolution (optional here), and a skip connection from every
block on the way down to one on the way up.

It is sized from the data by default, so one model serves 7x7 to 64x64 images: it halves the resolution while
the smaller side stays at least 4 pixels. A side that the total downsampling does not divide (28 with three
halvings, any odd side) is padded with zeros at the bottom and right, and the output cropped back.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

MIN_SIDE = 4  # the lowest resolution keeps at least 4x4 pixels, so its 3x3 convolutions still see a neighbourhood
MAX_DOWNSAMPLINGS = 4  # 64x64 -> 4x4; Ho et al. use 4 halvings for 32x32 (down to 4x4) and 5 for 256x256
TIME_SCALE = 1000.0  # Ho et al. embed the integer step t in {1, ..., 1000}; t in [0, 1] is scaled to that range


def default_channel_mults(height: int, width: int) -> tuple[int, ...]:
    """One multiplier per resolution: (1,) for 7x7, (1, 2) for 8x8, (1, 2, 2) for 28x28, (1, 2, 2, 2) for 32x32.

    Ho et al. use (1, 2, 2, 2) on CIFAR-10's 32x32; widening only once keeps the small models cheap.
    """
    downsamplings = 0
    while downsamplings < MAX_DOWNSAMPLINGS and min(height, width) / 2 ** (downsamplings + 1) >= MIN_SIDE:
        downsamplings += 1
    return (1,) + (2,) * downsamplings


def group_count(channels: int) -> int:
    """The groups of a GroupNorm over ``channels``: at most 32, and at least 4 channels in each where possible.

    Ho et al. normalize 128 channels in 32 groups of 4; a narrow model keeps 4 channels a group rather than
    normalizing each channel alone. The count always divides ``channels``.
    """
    most = max(1, min(32, channels // 4))
    return max(g for g in range(1, most + 1) if channels % g == 0)


def normalization(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(group_count(channels), channels)


def zero_initialized(conv: nn.Conv2d) -> nn.Conv2d:
    """A convolution whose weights and bias start at zero: the block it ends starts as the identity (or as 0)."""
    nn.init.zeros_(conv.weight)
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)
    return conv


def sinusoidal_embedding(time: Tensor, dim: int) -> Tensor:
    """(N,) times -> (N, dim): sines and cosines at geometrically spaced frequencies (Vaswani et al. 2017, 3.5)."""
    half = dim // 2
    frequencies = torch.exp(-math.log(10000.0) * torch.arange(half, device=time.device, dtype=torch.float32) / half)
    angles = (time.float() * TIME_SCALE)[:, None] * frequencies[None, :]
    embedding = torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)
    return F.pad(embedding, (0, dim - 2 * half))  # an odd dim gets one zero column


class ResidualBlock(nn.Module):
    """GroupNorm, SiLU, 3x3 conv, + time embedding, GroupNorm, SiLU, dropout, 3x3 conv; plus the input.

    The second convolution starts at zero (as in Ho et al.'s code), so every block starts as the identity on its
    skip path and a deep untrained network still passes its input through unchanged in scale.
    """

    def __init__(self, in_channels: int, out_channels: int, time_channels: int, dropout: float) -> None:
        super().__init__()
        self.norm1 = normalization(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.time = nn.Linear(time_channels, out_channels)
        self.norm2 = normalization(out_channels)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = zero_initialized(nn.Conv2d(out_channels, out_channels, 3, padding=1))
        self.skip: nn.Module = nn.Identity() if in_channels == out_channels else nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: Tensor, time_embedding: Tensor) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.time(F.silu(time_embedding))[:, :, None, None]
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        out: Tensor = self.skip(x) + h
        return out


class SelfAttention(nn.Module):
    """Single-head self-attention over all positions of the feature map, as a residual (Ho et al., Appendix B)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = normalization(channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.out = zero_initialized(nn.Conv2d(channels, channels, 1))  # starts as the identity, like the blocks

    def forward(self, x: Tensor) -> Tensor:
        n, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(n, 3, c, h * w).unbind(dim=1)
        weights = torch.softmax(torch.einsum("ncq,nck->nqk", q, k) / math.sqrt(c), dim=-1)
        attended = torch.einsum("nqk,nck->ncq", weights, v).reshape(n, c, h, w)
        out: Tensor = x + self.out(attended)
        return out


class Level(nn.Module):
    """The residual blocks of one resolution, each followed by attention where the level has it.

    On the way down every block's output is pushed onto ``skips``; on the way up every block first takes the
    latest one back and concatenates it to its input.
    """

    def __init__(self, blocks: list[ResidualBlock], attention: bool) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.attentions = nn.ModuleList(
            SelfAttention(block.conv2.out_channels) if attention else nn.Identity() for block in blocks
        )

    def forward(self, h: Tensor, time_embedding: Tensor, skips: list[Tensor], *, upward: bool) -> Tensor:
        for block, attention in zip(self.blocks, self.attentions, strict=True):
            if upward:
                h = torch.cat([h, skips.pop()], dim=1)
            h = attention(block(h, time_embedding))
            if not upward:
                skips.append(h)
        return h


class UNet(nn.Module):
    """eps_theta(x, t) or v_theta(x, t): (N, C, H, W) images and (N,) times in [0, 1] -> (N, C_out, H, W).

    ``channel_mults`` gives the width of each resolution as a multiple of ``base_channels``; one entry per
    resolution, so ``len(channel_mults) - 1`` halvings (None: sized from the image, ``default_channel_mults``).
    ``attention`` adds self-attention at the lowest resolution and in the middle. The last convolution starts
    at zero, so an untrained network predicts 0 everywhere.
    """

    def __init__(
        self,
        channels: int,
        height: int,
        width: int,
        *,
        base_channels: int = 32,
        channel_mults: tuple[int, ...] | None = None,
        blocks_per_level: int = 1,
        attention: bool = False,
        dropout: float = 0.0,
        out_channels: int | None = None,
    ) -> None:
        super().__init__()
        mults = default_channel_mults(height, width) if channel_mults is None else tuple(channel_mults)
        if not mults or min(mults) < 1 or base_channels < 1 or blocks_per_level < 1:
            raise ValueError(
                f"UNet needs base_channels >= 1, blocks_per_level >= 1 and channel_mults of positive integers; got "
                f"base_channels={base_channels}, blocks_per_level={blocks_per_level}, channel_mults={mults}"
            )
        self.channel_mults = mults
        self.multiple = 2 ** (len(mults) - 1)  # each side is padded up to a multiple of the total downsampling
        self.base_channels = base_channels
        time_channels = 4 * base_channels  # Ho et al.: the embedding's MLP is 4 times the base width
        self.time_mlp = nn.Sequential(
            nn.Linear(base_channels, time_channels), nn.SiLU(), nn.Linear(time_channels, time_channels)
        )
        self.input = nn.Conv2d(channels, base_channels, 3, padding=1)

        lowest = len(mults) - 1
        widths = [base_channels]  # the width of every feature map the way down keeps for a skip connection
        width_now = base_channels
        self.down = nn.ModuleList()
        self.downsample = nn.ModuleList()
        for level, mult in enumerate(mults):
            blocks = []
            for _ in range(blocks_per_level):
                blocks.append(ResidualBlock(width_now, base_channels * mult, time_channels, dropout))
                width_now = base_channels * mult
                widths.append(width_now)
            self.down.append(Level(blocks, attention and level == lowest))
            if level != lowest:
                self.downsample.append(nn.Conv2d(width_now, width_now, 3, stride=2, padding=1))
                widths.append(width_now)

        self.middle_in = ResidualBlock(width_now, width_now, time_channels, dropout)
        self.middle_attention: nn.Module = SelfAttention(width_now) if attention else nn.Identity()
        self.middle_out = ResidualBlock(width_now, width_now, time_channels, dropout)

        self.up = nn.ModuleList()
        self.upsample = nn.ModuleList()
        for level in reversed(range(len(mults))):
            blocks = []
            for _ in range(blocks_per_level + 1):  # one more than on the way down: it takes the downsampler's skip
                blocks.append(
                    ResidualBlock(width_now + widths.pop(), base_channels * mults[level], time_channels, dropout)
                )
                width_now = base_channels * mults[level]
            self.up.append(Level(blocks, attention and level == lowest))
            if level != 0:
                self.upsample.append(nn.Conv2d(width_now, width_now, 3, padding=1))

        self.output_norm = normalization(width_now)
        self.output = zero_initialized(
            nn.Conv2d(width_now, channels if out_channels is None else out_channels, 3, padding=1)
        )

    def forward(self, x: Tensor, time: Tensor) -> Tensor:
        height, width = x.shape[-2:]
        time = time.to(x.device).float().reshape(-1).expand(x.shape[0])  # a single time serves the whole batch
        embedding = self.time_mlp(sinusoidal_embedding(time, self.base_channels))
        h = F.pad(x, (0, -width % self.multiple, 0, -height % self.multiple))

        h = self.input(h)
        skips = [h]
        for level, down in enumerate(self.down):
            h = down(h, embedding, skips, upward=False)
            if level < len(self.downsample):
                h = self.downsample[level](h)
                skips.append(h)

        h = self.middle_attention(self.middle_in(h, embedding))
        h = self.middle_out(h, embedding)

        for level, up in enumerate(self.up):
            h = up(h, embedding, skips, upward=True)
            if level < len(self.upsample):
                h = self.upsample[level](F.interpolate(h, scale_factor=2.0, mode="nearest"))

        out: Tensor = self.output(F.silu(self.output_norm(h)))
        return out[:, :, :height, :width]
