"""A directory of PNG/JPEG images of one size; images in sub-directories get the sub-directory as their label."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from genbench import Dataset, DatasetOptions, GenbenchError, ImageData
from genbench.toolkit.data import SPLIT_SEED, binarize, make_dataset, split_train_test

SUFFIXES = {".png", ".jpg", ".jpeg"}
TEST_FRACTION = 0.2


def unreadable_image_errors() -> tuple[type[Exception], ...]:
    """What PIL raises for a file that is not a readable image: unidentified or truncated (OSError), a header
    that makes no sense (ValueError, SyntaxError), or a decompression bomb."""
    from PIL import Image

    return (OSError, ValueError, SyntaxError, Image.DecompressionBombError)


def read_image(path: Path, mode: str) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as picture:
            return np.asarray(picture.convert(mode))
    except unreadable_image_errors() as error:
        raise GenbenchError(f"cannot read image {path}: {error}; remove or replace it") from None


def image_mode(path: Path) -> str:
    from PIL import Image

    try:
        with Image.open(path) as picture:
            return str(picture.mode)
    except unreadable_image_errors() as error:
        raise GenbenchError(f"cannot read image {path}: {error}; remove or replace it") from None


def load_folder(options: DatasetOptions) -> Dataset:
    if options.root is None:
        raise GenbenchError("the folder data set needs --data-root pointing at a directory of PNG/JPEG images")
    root = options.root
    if not root.is_dir():
        raise GenbenchError(f"--data-root {root} does not exist or is not a directory")
    paths = sorted(p for p in root.rglob("*") if p.suffix.lower() in SUFFIXES and p.is_file())
    if len(paths) < 2:
        raise GenbenchError(f"found {len(paths)} PNG/JPEG images under {root}; the folder data set needs at least 2")
    modes = [image_mode(path) for path in paths]
    gray = all(mode in ("L", "1") for mode in modes)
    arrays = [read_image(path, "L" if gray else "RGB") for path in paths]
    sizes = {array.shape for array in arrays}
    if len(sizes) > 1:
        raise GenbenchError(f"images under {root} differ in size ({sorted(sizes)[:3]}...); resize them to one size")
    stacked = torch.from_numpy(np.stack(arrays))
    images = stacked.unsqueeze(1) if gray else stacked.permute(0, 3, 1, 2)
    classes = sorted({str(p.parent.relative_to(root)) for p in paths})
    labels = torch.tensor([classes.index(str(p.parent.relative_to(root))) for p in paths])
    data = ImageData(images.contiguous(), 256, labels if len(classes) > 1 else None)
    if options.binarize:
        data = binarize(data)
    train, test = split_train_test(data, TEST_FRACTION)
    return make_dataset(
        "folder",
        train,
        test,
        source=f"images under {root.name}/",
        split=f"random {1 - TEST_FRACTION:.0%}/{TEST_FRACTION:.0%}, seed {SPLIT_SEED}",
        binarized=options.binarize,
        classes=len(classes),
    )
