"""Helpers for data set plugins: a fixed seeded split, binarization, and a fingerprint of the content."""

from __future__ import annotations

import hashlib
from typing import Any

import torch

from genbench.contract import Dataset, ImageData

#: The provenance key of a data set loaded from incomplete files: the list of files that are missing. No published
#: protocol ran on such data; a suite refuses it unless asked (--allow-incomplete-data).
INCOMPLETE = "incomplete_data_missing"
#: Every built-in data set splits with this seed, so that a split never changes between runs or machines.
SPLIT_SEED = 0


def split_train_test(data: ImageData, test_fraction: float, seed: int = SPLIT_SEED) -> tuple[ImageData, ImageData]:
    """A fixed random split: the same data and seed always give the same two halves."""
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))
    n_test = max(1, round(len(data) * test_fraction))
    return data.subset(order[n_test:]), data.subset(order[:n_test])


def binarize(data: ImageData, seed: int = SPLIT_SEED) -> ImageData:
    """Two levels by sampling each pixel once as Bernoulli(intensity), with a fixed seed.

    This is the stochastically binarized MNIST of Salakhutdinov & Murray (2008) that the likelihood literature
    reports on; sampling once (not per epoch) keeps the test set fixed.
    """
    intensity = data.images.double() / (data.levels - 1)
    draws = torch.rand(intensity.shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return ImageData((draws < intensity).to(torch.uint8), 2, data.labels)


def dynamic_binarization(data: ImageData, seed: int = SPLIT_SEED) -> ImageData:
    """Two levels redrawn at every use (Burda et al. 2016): ``binarize(data, seed)`` as the fixed pixels, with the
    grey-level images kept as ``binarize_from``, so that the training loop draws every minibatch afresh."""
    fixed = binarize(data, seed)
    return ImageData(fixed.images, 2, data.labels, binarize_from=data)


def fingerprint(*parts: ImageData) -> str:
    """A short hash of the pixels, so that a checkpoint is never reused on other data."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.images.contiguous().numpy().tobytes())
        digest.update(str(part.levels).encode())
    return digest.hexdigest()[:16]


def make_dataset(name: str, train: ImageData, test: ImageData, *, source: str, split: str, **extra: Any) -> Dataset:
    """A Dataset whose provenance says everything the results need: source, split, sizes, levels, content hash."""
    provenance = {
        "dataset": name,
        "source": source,
        "split": split,
        "n_train": len(train),
        "n_test": len(test),
        "levels": train.levels,
        "shape": list(train.shape),
        "fingerprint": fingerprint(train, test),
        **extra,
    }
    return Dataset(name, train, test, provenance)
