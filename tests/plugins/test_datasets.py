"""The built-in data sets: shapes, levels, fixed splits, binarization, and clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import SHARED_DATA
from data_files import write_idx
from genbench import DatasetOptions, GenbenchError, ImageData
from genbench.toolkit.data import binarize, split_train_test
from genbench_datasets.digits import load_digits
from genbench_datasets.folder import load_folder
from genbench_datasets.mnist import load_mnist, read_idx


def test_digits_is_17_levels_8x8_with_a_fixed_split() -> None:
    first, second = load_digits(DatasetOptions()), load_digits(DatasetOptions())
    assert first.train.shape == (1, 8, 8) and first.train.levels == 17
    assert len(first.train) + len(first.test) == 1797 and len(first.test) == 359
    assert int(first.train.images.max()) == 16 and first.train.images.dtype == torch.uint8
    assert torch.equal(first.test.images, second.test.images)
    assert first.provenance["fingerprint"] == second.provenance["fingerprint"]
    assert first.train.labels is not None


def test_split_is_disjoint_and_complete() -> None:
    data = ImageData(torch.arange(100, dtype=torch.uint8).reshape(100, 1, 1, 1), 256)
    train, test = split_train_test(data, 0.2)
    values = sorted(train.images.flatten().tolist() + test.images.flatten().tolist())
    assert values == list(range(100)) and len(test) == 20


def test_binarize_keeps_the_mean_intensity() -> None:
    data = ImageData(torch.full((2000, 1, 4, 4), 64, dtype=torch.uint8), 256)
    binary = binarize(data)
    assert binary.levels == 2 and set(binary.images.unique().tolist()) == {0, 1}
    assert abs(binary.images.double().mean().item() - 64 / 255) < 0.01


def test_mnist_reads_the_shared_test_split_alone() -> None:
    if not (SHARED_DATA / "MNIST").is_dir():
        pytest.skip("../shared/data is not beside the repository")
    data = load_mnist(DatasetOptions(root=SHARED_DATA))
    assert data.train.shape == (1, 28, 28) and data.train.levels == 256
    assert (len(data.train), len(data.test)) == (8000, 2000)
    assert "official test split only" in data.provenance["split"]
    binary = load_mnist(DatasetOptions(root=SHARED_DATA, binarize=True))
    assert binary.train.levels == 2 and binary.provenance["binarized"] is True


def test_mnist_uses_the_official_split_when_both_are_there(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 30), ("t10k", 10)):
        write_idx(tmp_path / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)))
        write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte", rng.integers(0, 10, (n,)))
    data = load_mnist(DatasetOptions(root=tmp_path))
    assert (len(data.train), len(data.test)) == (30, 10) and data.provenance["split"].startswith("official")
    assert read_idx(tmp_path / "t10k-labels-idx1-ubyte").shape == (10,)


def test_mnist_without_files_says_how_to_get_them(tmp_path: Path) -> None:
    with pytest.raises(GenbenchError, match="pass --download to fetch them"):
        load_mnist(DatasetOptions(root=tmp_path))
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(b"junk")
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(b"junk")
    with pytest.raises(GenbenchError, match="is not an IDX file"):
        load_mnist(DatasetOptions(root=tmp_path))


def test_folder_of_images_with_classes(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for label in ("cats", "dogs"):
        (tmp_path / label).mkdir()
        for i in range(5):
            Image.fromarray(rng.integers(0, 256, (6, 6), dtype=np.uint8), mode="L").save(tmp_path / label / f"{i}.png")
    data = load_folder(DatasetOptions(root=tmp_path))
    assert data.train.shape == (1, 6, 6) and data.train.levels == 256
    assert len(data.train) + len(data.test) == 10 and data.provenance["classes"] == 2


def test_folder_errors(tmp_path: Path) -> None:
    with pytest.raises(GenbenchError, match="needs --data-root"):
        load_folder(DatasetOptions())
    with pytest.raises(GenbenchError, match="found 0 PNG/JPEG images"):
        load_folder(DatasetOptions(root=tmp_path))
    Image.new("RGB", (4, 4)).save(tmp_path / "a.png")
    Image.new("RGB", (5, 4)).save(tmp_path / "b.png")
    with pytest.raises(GenbenchError, match="differ in size"):
        load_folder(DatasetOptions(root=tmp_path))
