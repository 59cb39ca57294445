"""The ResNet generator and discriminator of Mimicry's CIFAR-10 DCGAN and SNGAN (Lee & Town 2020,
github.com/kwotsin/mimicry: torch_mimicry/nets/dcgan/dcgan_cifar.py, modules/resblocks.py), after Miyato et al.
(2018), "Spectral Normalization for GANs", Appendix B; written here from that description.

G: z (128) -> linear to a 4x4 grid of ``width`` channels -> three up-sampling residual blocks of ``width``
channels -> batch norm, ReLU, a 3x3 convolution to the image, tanh. D: an "optimized" first residual block and a
second one, both halving the size, then two residual blocks that keep it, all of ``d_width`` channels; ReLU, the
sum over positions, one linear logit. Mimicry's CIFAR DCGAN has width 256 and d_width 128 and no spectral norm
(4,276,739 and 1,053,825 parameters on 32x32x3). Its generator ends in a sigmoid on images in [0, 1]; genbench's
GANs work in [-1, 1], so here it is a tanh (no parameters either way).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class UpBlock(nn.Module):
    """BN, ReLU, 2x nearest up-sampling, 3x3 conv, BN, ReLU, 3x3 conv; shortcut: up-sampling and a 1x1 conv."""

    def __init__(self, channels_in: int, channels_out: int) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.BatchNorm2d(channels_in), nn.BatchNorm2d(channels_out)
        self.conv1 = nn.Conv2d(channels_in, channels_out, 3, padding=1)
        self.conv2 = nn.Conv2d(channels_out, channels_out, 3, padding=1)
        self.shortcut = nn.Conv2d(channels_in, channels_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h: torch.Tensor = F.interpolate(F.relu(self.norm1(x)), scale_factor=2, mode="nearest")
        h = F.relu(self.norm2(self.conv1(h)))
        h = self.conv2(h)
        skip: torch.Tensor = self.shortcut(F.interpolate(x, scale_factor=2, mode="nearest"))
        return h + skip


class DownBlock(nn.Module):
    """ReLU, 3x3 conv, ReLU, 3x3 conv, optional 2x average pooling; a 1x1 conv shortcut where the shape changes.
    ``first``: the block that sees the image (no ReLU before its first conv, and pooling before its shortcut)."""

    def __init__(self, channels_in: int, channels_out: int, *, downsample: bool, first: bool = False) -> None:
        super().__init__()
        hidden = channels_out if first else channels_in
        self.conv1 = nn.Conv2d(channels_in, hidden, 3, padding=1)
        self.conv2 = nn.Conv2d(hidden, channels_out, 3, padding=1)
        self.downsample, self.first = downsample, first
        learnable = first or downsample or channels_in != channels_out
        self.shortcut = nn.Conv2d(channels_in, channels_out, 1) if learnable else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h: torch.Tensor = self.conv2(F.relu(self.conv1(x if self.first else F.relu(x))))
        if self.downsample:
            h = F.avg_pool2d(h, 2)
        skip: torch.Tensor = x
        if self.first:  # pool, then project: cheaper on the image, as in Miyato et al.'s optimized block
            skip = self.shortcut(F.avg_pool2d(x, 2)) if self.shortcut is not None else x
        elif self.shortcut is not None:
            skip = self.shortcut(x)
            skip = F.avg_pool2d(skip, 2) if self.downsample else skip
        return h + skip


class ResNetGenerator(nn.Module):
    """z -> 4x4 grid -> up-sampling residual blocks until the grid holds ``size`` -> tanh image in [-1, 1]."""

    def __init__(self, latent_dim: int, width: int, channels: int, size: int) -> None:
        super().__init__()
        self.width = width
        self.project = nn.Linear(latent_dim, 4 * 4 * width)
        self.blocks = nn.Sequential(*(UpBlock(width, width) for _ in range((size // 4).bit_length() - 1)))
        self.norm = nn.BatchNorm2d(width)
        self.to_image = nn.Conv2d(width, channels, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.blocks(self.project(z).view(len(z), self.width, 4, 4))
        return torch.tanh(self.to_image(F.relu(self.norm(h))))


class ResNetDiscriminator(nn.Module):
    """Image -> two halving residual blocks, two that keep the size -> ReLU, sum over positions -> one logit."""

    def __init__(self, width: int, channels: int) -> None:
        super().__init__()
        self.blocks = nn.Sequential(
            DownBlock(channels, width, downsample=True, first=True),
            DownBlock(width, width, downsample=True),
            DownBlock(width, width, downsample=False),
            DownBlock(width, width, downsample=False),
        )
        self.logit = nn.Linear(width, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = F.relu(self.blocks(x)).sum(dim=(2, 3))
        logits: torch.Tensor = self.logit(features)
        return logits
