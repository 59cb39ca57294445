"""scikit-learn's 8x8 digits: 1,797 images with 17 gray levels (0-16), shipped inside scikit-learn."""

from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path

import numpy as np
import torch

from genbench import Dataset, DatasetOptions, ImageData
from genbench.toolkit.data import SPLIT_SEED, binarize, make_dataset, split_train_test

TEST_FRACTION = 0.2


def load_digits(options: DatasetOptions) -> Dataset:
    pixels, labels = digits_arrays()
    images = torch.from_numpy(pixels).to(torch.uint8).unsqueeze(1)
    data = ImageData(images, levels=17, labels=torch.from_numpy(labels).long())
    if options.binarize:
        data = binarize(data)
    train, test = split_train_test(data, TEST_FRACTION)
    return make_dataset(
        "digits",
        train,
        test,
        source="sklearn.datasets.load_digits",
        split=f"random {1 - TEST_FRACTION:.0%}/{TEST_FRACTION:.0%}, seed {SPLIT_SEED}",
        binarized=options.binarize,
    )


def digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """The digits as float64 images (1797, 8, 8) and int64 labels, exactly as ``sklearn.datasets.load_digits``.

    Importing scikit-learn takes seconds, more than the rest of a rerun. Its digits are one gzipped CSV inside
    the package (64 pixel columns, then the label), so the file is read here the way load_digits reads it,
    without importing scikit-learn; where the file is not found (a scikit-learn that keeps it elsewhere),
    scikit-learn's own loader is used.
    """
    spec = importlib.util.find_spec("sklearn")  # locates the package without importing it
    path = Path(spec.origin).parent / "datasets" / "data" / "digits.csv.gz" if spec and spec.origin else None
    if path is None or not path.is_file():
        from sklearn.datasets import load_digits as sklearn_digits

        bunch = sklearn_digits()
        return bunch.images, bunch.target
    with gzip.open(path, mode="rt", encoding="utf-8") as csv:
        table = np.loadtxt(csv, delimiter=",")
    return table[:, :-1].reshape(-1, 8, 8), table[:, -1].astype(np.int64)
