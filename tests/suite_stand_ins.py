"""A plugin for the suite tests: ``pixels``, a feature extractor that costs nothing, with class logits.

The suites name InceptionV3, which takes seconds per image on one CPU core; the suite tests swap in this extractor
(through a --config override) so that a whole suite runs in seconds. Features: each channel average-pooled to
4x4; logits: a fixed random projection of them onto 10 classes.
"""

from __future__ import annotations

from typing import Any

import torch

import genbench
from genbench_fid.sample_features import FeaturesWithLogits

CLASSES = 10


def load_pixels(dataset: genbench.Dataset, ctx: genbench.EvalContext) -> tuple[FeaturesWithLogits, dict[str, Any]]:
    levels = dataset.train.levels
    channels = dataset.train.shape[0]
    projection = torch.randn(channels * 16, CLASSES, generator=torch.Generator().manual_seed(0), dtype=torch.float64)

    def both(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pooled = torch.nn.functional.adaptive_avg_pool2d(images.double() / (levels - 1), 4).flatten(1)
        return pooled, pooled @ projection

    return FeaturesWithLogits(both, f"a random projection ({CLASSES} classes)"), {"network": "4x4 average pool"}


@genbench.hookimpl
def genbench_feature_extractors() -> list[genbench.ExtractorSpec]:
    return [genbench.ExtractorSpec("pixels", "each channel average-pooled to 4x4 (tests only)", load_pixels)]
