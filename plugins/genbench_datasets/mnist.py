"""MNIST from its original IDX files (LeCun, Cortes & Burges), read directly so one split alone suffices."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import torch

from genbench import Dataset, DatasetOptions, GenbenchError, ImageData
from genbench.toolkit.data import INCOMPLETE, SPLIT_SEED, binarize, dynamic_binarization, make_dataset, split_train_test

FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
#: Where only the test split is present (as in the project's shared data), this share of it is held out.
TEST_FRACTION_OF_TEST_SPLIT = 0.2
DEFAULT_ROOT = Path.home() / ".cache" / "genbench" / "data"
#: Images in the official train and test files.
OFFICIAL_COUNTS = (60_000, 10_000)
#: The training images Burda et al. held out for validation (github.com/yburda/iwae, README: 59,600 + 400).
BURDA_VALIDATION = 400


def read_idx(path: Path, rank: int | None = None) -> np.ndarray:
    """An IDX file (optionally gzipped): magic (2 zero bytes, type, rank), big-endian int32 sizes, then uint8."""
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, zlib.error) as error:
        raise GenbenchError(f"cannot read {path} ({error}); is it a complete MNIST download?") from None
    if raw[:3] != b"\x00\x00\x08" or len(raw) < 4:
        raise GenbenchError(f"{path} is not an IDX file of unsigned bytes; is it a complete MNIST download?")
    rank = raw[3] if rank is None else rank
    if raw[3] != rank or len(raw) < 4 + 4 * rank:
        raise GenbenchError(
            f"{path} has a damaged header (rank {raw[3]}, {len(raw)} bytes); is it a complete download?"
        )
    sizes = np.frombuffer(raw, dtype=">i4", count=rank, offset=4)
    body = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * rank)
    if body.size != int(np.prod(sizes)):
        raise GenbenchError(f"{path} is truncated: expected {int(np.prod(sizes))} bytes of data, found {body.size}")
    return body.reshape(tuple(int(s) for s in sizes))


def find_file(root: Path, stem: str) -> Path | None:
    """torchvision's layout (root/MNIST/raw/) or the files directly under root, gzipped or not."""
    for folder in (root / "MNIST" / "raw", root / "raw", root):
        for name in (stem, stem + ".gz"):
            if (folder / name).is_file():
                return folder / name
    return None


def read_split(root: Path, split: str) -> ImageData | None:
    images_path, labels_path = (find_file(root, stem) for stem in FILES[split])
    if images_path is None or labels_path is None:
        return None
    images = torch.from_numpy(read_idx(images_path, rank=3).copy()).unsqueeze(1)
    labels = torch.from_numpy(read_idx(labels_path, rank=1).astype(np.int64))
    if len(labels) != len(images):
        raise GenbenchError(
            f"{labels_path} has {len(labels)} labels but {images_path} has {len(images)} images; "
            "are both from the same, complete MNIST download?"
        )
    return ImageData(images, 256, labels)


def download(root: Path) -> None:
    from torchvision.datasets import MNIST

    try:
        MNIST(str(root), train=True, download=True)
        MNIST(str(root), train=False, download=True)
    except Exception as error:  # offline, mirror down, disk full: say what to do instead
        raise GenbenchError(
            f"could not download MNIST to {root} ({error}); put the IDX files in {root}/MNIST/raw/ yourself"
        ) from error


def load_mnist(options: DatasetOptions) -> Dataset:
    root = options.root or DEFAULT_ROOT
    if options.root is not None and not root.is_dir():
        raise GenbenchError(f"--data-root {root} does not exist or is not a directory")
    train, test = read_split(root, "train"), read_split(root, "test")
    if train is None and test is None and options.download:
        download(root)
        train, test = read_split(root, "train"), read_split(root, "test")
    if test is None:
        raise GenbenchError(
            f"no MNIST IDX files under {root} (looked for {FILES['test'][0]}[.gz] in {root}/MNIST/raw/ and {root}); "
            "pass --download to fetch them, or --data-root pointing at a folder that has them"
        )
    extra: dict[str, Any] = {}
    if train is None:
        # Only the official test split is here: hold out a fixed part of it as our test set. No published table
        # used such a split, so the provenance says which files are missing (a suite refuses such data).
        train, test = split_train_test(test, TEST_FRACTION_OF_TEST_SPLIT)
        split = f"official test split only, random {1 - TEST_FRACTION_OF_TEST_SPLIT:.0%}/"
        split += f"{TEST_FRACTION_OF_TEST_SPLIT:.0%}, seed {SPLIT_SEED}"
        extra[INCOMPLETE] = [f"{stem}[.gz]" for stem in FILES["train"]]
    else:
        split = "official 60,000/10,000"
        extra.update(short_files(train, test))
    if options.binarize:
        train, test = binarize(train, SPLIT_SEED), binarize(test, SPLIT_SEED + 1)
        extra["binarization"] = f"static: each image drawn once (train seed {SPLIT_SEED}, test seed {SPLIT_SEED + 1})"
    return make_dataset(
        "mnist", train, test, source="MNIST IDX files", split=split, binarized=options.binarize, **extra
    )


def read_both_splits(root: Path, options: DatasetOptions, name: str) -> tuple[ImageData, ImageData]:
    """The official train and test splits; both are needed (a published protocol has no fallback split)."""
    if options.root is not None and not root.is_dir():
        raise GenbenchError(f"--data-root {root} does not exist or is not a directory")
    train, test = read_split(root, "train"), read_split(root, "test")
    if (train is None or test is None) and options.download:
        download(root)
        train, test = read_split(root, "train"), read_split(root, "test")
    missing = [
        f"{stem}[.gz]" for split, got in (("train", train), ("test", test)) if got is None for stem in FILES[split]
    ]
    if train is None or test is None:
        raise GenbenchError(
            f"{name} needs both MNIST splits; missing under {root}: {', '.join(missing)}; pass --download, or "
            "--data-root pointing at a folder that has all four IDX files"
        )
    return train, test


def load_mnist_dynamic(options: DatasetOptions) -> Dataset:
    """MNIST as Burda, Grosse & Salakhutdinov (2016) trained their IWAE on it (github.com/yburda/iwae, README and
    datasets.py): the first 59,600 training images (the last 400 are their validation set, unused here),
    binarized afresh for every minibatch (pixel ~ Bernoulli(grey / 255)); the 10,000 test images binarized once,
    with a recorded seed, so that every model is scored on the same binary images."""
    root = options.root or DEFAULT_ROOT
    train, test = read_both_splits(root, options, "mnist_dynamic")
    extra = short_files(train, test)
    kept = train.subset(slice(0, len(train) - BURDA_VALIDATION)) if len(train) > BURDA_VALIDATION else train
    return make_dataset(
        "mnist_dynamic",
        dynamic_binarization(kept, SPLIT_SEED),
        binarize(test, SPLIT_SEED + 1),
        source="MNIST IDX files",
        split=f"official train split less its last {BURDA_VALIDATION} images (Burda et al.'s validation) / test",
        binarized=True,
        binarization=f"dynamic: every training minibatch redrawn; test drawn once, seed {SPLIT_SEED + 1}",
        **extra,
    )


def short_files(train: ImageData, test: ImageData) -> dict[str, list[str]]:
    """The incompleteness mark for files with fewer images than MNIST's (a stand-in, a truncated copy)."""
    short = [
        f"{FILES[split][0]}: {len(data):,} of {count:,} images"
        for split, data, count in (("train", train, OFFICIAL_COUNTS[0]), ("test", test, OFFICIAL_COUNTS[1]))
        if len(data) != count
    ]
    return {INCOMPLETE: short} if short else {}
