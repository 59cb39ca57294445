"""Data as plugins hand it over: discrete images, a data set's splits and shape, and the data-set spec."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch


@dataclass(frozen=True)
class ImageData:
    """Discrete images: a uint8 tensor (N, C, H, W) with values in [0, levels), and optional labels.

    ``binarize_from``, on 2-level data only, makes it dynamically binarized (Burda et al. 2016): the grey-level
    images whose pixels are the Bernoulli probabilities, so that training redraws every minibatch
    (``binary_draw``); ``images`` then holds one seeded draw, for whatever needs fixed pixels.
    """

    images: torch.Tensor
    levels: int
    labels: torch.Tensor | None = None
    binarize_from: ImageData | None = None

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.dim() != 4:
            raise ValueError(
                f"images must be a uint8 tensor (N, C, H, W), got {self.images.dtype} {tuple(self.images.shape)}"
            )
        if not 2 <= self.levels <= 256:
            raise ValueError(f"levels must be in [2, 256], got {self.levels}")
        if self.labels is not None and len(self.labels) != len(self.images):
            raise ValueError("labels and images differ in length")
        source = self.binarize_from
        if source is not None and (self.levels != 2 or source.images.shape != self.images.shape):
            raise ValueError("binarize_from needs 2-level images and grey-level images of the same shape")

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
        source = None if self.binarize_from is None else self.binarize_from.subset(index)
        return ImageData(self.images[index], self.levels, labels, source)

    def binary_draw(self, index: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Images ``index`` binarized afresh: pixel ~ Bernoulli(grey / (levels - 1)) of ``binarize_from``,
        drawn by ``generator`` (on the CPU, so the draws are the same on every device)."""
        if self.binarize_from is None:
            raise ValueError("binary_draw needs binarize_from (dynamically binarized data)")
        grey = self.binarize_from
        intensity = grey.images[index].double() / (grey.levels - 1)
        draws = torch.rand(intensity.shape, generator=generator, dtype=torch.float64)
        return (draws < intensity).to(torch.uint8)


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
