"""The grid of a model's samples (and of real test images beside it) that each cell leaves as a PNG."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch

from genbench.contract import (
    SAMPLE,
    GenerativeModel,
    NotApplicable,
)
from genbench.runner.prepare import PreparedRun
from genbench.toolkit.files import write_atomic

if TYPE_CHECKING:
    pass


SAMPLE_GRID_SIZE = 64


def save_sample_grid(run: PreparedRun, model: GenerativeModel, seed: int, identifier: str) -> None:
    if SAMPLE not in model.capabilities:
        return
    try:
        with torch.no_grad():
            images = model.sample(SAMPLE_GRID_SIZE, torch.Generator().manual_seed(seed))
    except NotApplicable:  # a file of fewer images than a grid: no grid rather than repeated images
        return
    write_grid(images, run.dataset.test.levels, run.directory.sample_grid_path(identifier))


def save_real_grid(run: PreparedRun) -> None:
    path = run.directory.real_grid_path(run.dataset.name)
    if not path.exists():
        write_grid(run.dataset.test.images[:SAMPLE_GRID_SIZE], run.dataset.test.levels, path)


def write_grid(images: torch.Tensor, levels: int, path: Path) -> None:
    from torchvision.utils import save_image

    scaled = images.float() / (levels - 1)
    # Small images (8x8 digits) are enlarged so that the grid is legible in a report.
    if scaled.shape[-1] < 32:
        scaled = torch.nn.functional.interpolate(scaled, scale_factor=32 // scaled.shape[-1], mode="nearest")
    write_atomic(path, lambda temporary: save_image(scaled, str(temporary), nrow=8, padding=2, format="png"))
