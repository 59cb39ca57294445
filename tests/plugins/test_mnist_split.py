"""MNIST's official split from the four IDX files (written here, small), and the static binarization."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
import torch

from genbench import DatasetOptions
from genbench_datasets.mnist import load_mnist

SIZES = {"train": 30, "t10k": 10}


def idx_bytes(array: np.ndarray) -> bytes:
    """The IDX format: two zero bytes, 0x08 (unsigned bytes), the rank, big-endian int32 sizes, the data."""
    return (
        bytes([0, 0, 8, array.ndim]) + np.array(array.shape, dtype=">i4").tobytes() + array.astype(np.uint8).tobytes()
    )


def write_mnist(folder: Path, *, gzipped: bool) -> dict[str, np.ndarray]:
    """The four files, as torchvision lays them out (folder/MNIST/raw/), gzipped or not; returns the arrays."""
    raw = folder / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    arrays = {}
    for prefix, n in SIZES.items():
        arrays[f"{prefix}-images"] = rng.integers(0, 256, (n, 28, 28))
        arrays[f"{prefix}-labels"] = rng.integers(0, 10, (n,))
    for name, array in arrays.items():
        content = idx_bytes(array)
        stem = f"{name}-idx{array.ndim}-ubyte"
        if gzipped:
            (raw / f"{stem}.gz").write_bytes(gzip.compress(content))
        else:
            (raw / stem).write_bytes(content)
    return arrays


@pytest.mark.parametrize("gzipped", [False, True])
def test_the_four_files_give_the_official_split_in_file_order(tmp_path: Path, gzipped: bool) -> None:
    arrays = write_mnist(tmp_path, gzipped=gzipped)
    data = load_mnist(DatasetOptions(root=tmp_path))
    assert data.provenance["split"] == "official 60,000/10,000"
    assert (data.provenance["n_train"], data.provenance["n_test"]) == (30, 10)
    # The official split is the files' own: the training file is the train split, in order, nothing shuffled.
    assert np.array_equal(data.train.images[:, 0].numpy(), arrays["train-images"])
    assert np.array_equal(data.test.images[:, 0].numpy(), arrays["t10k-images"])
    assert data.train.labels is not None and np.array_equal(data.train.labels.numpy(), arrays["train-labels"])
    assert data.train.levels == 256 and data.train.shape == (1, 28, 28)


def test_binarize_is_static_seeded_and_recorded(tmp_path: Path) -> None:
    write_mnist(tmp_path, gzipped=False)
    gray = load_mnist(DatasetOptions(root=tmp_path))
    first, second = (load_mnist(DatasetOptions(root=tmp_path, binarize=True)) for _ in range(2))
    assert first.train.levels == 2 and set(first.train.images.unique().tolist()) <= {0, 1}
    assert torch.equal(first.train.images, second.train.images), "the same draws every time: a fixed data set"
    assert first.provenance["binarized"] is True and gray.provenance["binarized"] is False
    assert first.provenance["fingerprint"] != gray.provenance["fingerprint"]
    # Bernoulli(intensity / 255): black pixels stay 0, white ones 1.
    assert (first.train.images[gray.train.images == 0] == 0).all()
    assert (first.train.images[gray.train.images == 255] == 1).all()
