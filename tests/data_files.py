"""Files in the formats data set plugins read, written by tests: MNIST's IDX files and CIFAR-10's binary batches."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from genbench_datasets.cifar10 import RECORD_BYTES, TEST_FILE, TRAIN_FILES

#: Records per CIFAR-10 batch file: 100 training images, 20 test images.
RECORDS = 20


def write_idx(path: Path, array: np.ndarray) -> None:
    """An IDX file (MNIST's format) of uint8 values: the magic number, the dimensions, the bytes."""
    header = bytes([0, 0, 8, array.ndim]) + np.array(array.shape, dtype=">i4").tobytes()
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def batch_bytes(seed: int, n: int = RECORDS) -> bytes:
    """One CIFAR-10 batch file's records: a label byte, then 3x32x32 pixel bytes each."""
    rng = np.random.default_rng(seed)
    records = rng.integers(0, 256, (n, RECORD_BYTES), dtype=np.uint8)
    records[:, 0] = rng.integers(0, 10, n)
    return records.tobytes()


def batch_files() -> dict[str, bytes]:
    return {name: batch_bytes(seed) for seed, name in enumerate((*TRAIN_FILES, TEST_FILE))}


def write_folder(folder: Path, files: dict[str, bytes] | None = None) -> Path:
    """The batch files in ``folder``, as the official archive unpacks them."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, raw in (files or batch_files()).items():
        (folder / name).write_bytes(raw)
    return folder


AMAT_COUNTS = {"train": 7, "valid": 3, "test": 5}


def write_amat(folder: Path, counts: dict[str, int] = AMAT_COUNTS) -> dict[str, np.ndarray]:
    """The three files in Larochelle & Murray's format: one image a line, 784 space-separated 0/1 values."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    arrays = {}
    for split, n in counts.items():
        arrays[split] = rng.integers(0, 2, (n, 784))
        lines = [" ".join(str(v) for v in row) for row in arrays[split]]
        (folder / f"binarized_mnist_{split}.amat").write_text("\n".join(lines) + "\n")
    return arrays
