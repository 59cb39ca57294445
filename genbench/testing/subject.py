"""The model under a conformance check: built and fitted as the runner does it, on tiny synthetic data, once
per shape and seed.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import torch

from genbench.config import resolve_config
from genbench.contract import (
    DataInfo,
    FitContext,
    GenerativeModel,
    ImageData,
    ModelSpec,
)
from genbench.runner.cell import curve_point, seed_everything
from genbench.testing.core import synthetic_images

DEFAULT_SHAPE = DataInfo((1, 8, 8), 17)


#: Shapes small enough to enumerate every image: 256 gray images of 4 levels, 64 RGB images of 2 levels (the
#: channels of one pixel exercise an autoregressive model's order within a pixel; two levels, a VAE's Bernoulli
#: decoder).
ENUMERATION_SHAPES = (DataInfo((1, 2, 2), 4), DataInfo((3, 1, 2), 2))


#: Images to fit on: one or two minibatches, so that fitting is a few steps.
TRAIN_IMAGES = 64


class ModelSubject:
    """The model under test: its config, and fitted instances, built once per shape and seed and shared."""

    def __init__(self, spec: ModelSpec, options: Mapping[str, Any], device: torch.device) -> None:
        self.spec, self.options, self.device = spec, dict(options), device
        self._fitted: dict[tuple[DataInfo, int], tuple[GenerativeModel, list[dict[str, float]]]] = {}

    @functools.cached_property
    def config(self) -> Any:
        """The default config with the author's options, and one epoch unless the options say otherwise."""
        epochs = None if "epochs" in self.options else 1
        return resolve_config(self.spec.config_class, self.options, f"model {self.spec.name!r}", epochs=epochs)

    def build(self, info: DataInfo, seed: int) -> tuple[GenerativeModel, torch.Generator]:
        generator = seed_everything(seed)  # as the runner does, before the factory, so initialization is seeded
        model = self.spec.factory(self.config, info)  # a GenbenchError (a file it needs) skips the check
        model.to(self.device)
        return model, generator

    def fit(self, info: DataInfo, seed: int) -> tuple[GenerativeModel, list[dict[str, float]]]:
        """A freshly built model fitted on ``TRAIN_IMAGES`` synthetic images, and its curve."""
        model, generator = self.build(info, seed)
        curve: list[dict[str, float]] = []
        ctx = FitContext(
            self.device, seed, generator, on_curve=lambda step, values: curve.append(curve_point(step, values))
        )
        images, _ = synthetic_images(info, TRAIN_IMAGES, seed=seed)
        model.fit(ImageData(images, info.levels), ctx)
        return model, curve

    def fitted(self, info: DataInfo = DEFAULT_SHAPE, seed: int = 0) -> tuple[GenerativeModel, list[dict[str, float]]]:
        if (info, seed) not in self._fitted:
            self._fitted[(info, seed)] = self.fit(info, seed)
        return self._fitted[(info, seed)]

    def batch(self, info: DataInfo = DEFAULT_SHAPE, n: int = 6) -> torch.Tensor:
        """Held-out images of the training distribution, on the device, as the likelihood metrics pass them."""
        return synthetic_images(info, n, seed=99)[0].to(self.device)


def shape_text(info: DataInfo) -> str:
    c, h, w = info.shape
    return f"{c}x{h}x{w}, {info.levels} levels"
