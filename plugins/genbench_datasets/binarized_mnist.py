"""The fixed binarization of MNIST of Larochelle & Murray (2011), "The Neural Autoregressive Distribution
Estimator" (AISTATS): three text files, ``binarized_mnist_{train,valid,test}.amat``, of 50,000 / 10,000 / 10,000
images, one image per line as 784 space-separated values 0 or 1 (row-major 28x28).

This is the data of the PixelCNN/PixelRNN MNIST table (van den Oord et al. 2016a) and of Burda et al.'s
fixed-binarization experiments. The train file is the training split and the test file the test split; the
validation file is read and checked but not used for training (the papers select models on it).

The files are served from Hugo Larochelle's page at the University of Toronto (the URLs that yburda/iwae's
``download_mnist.py`` and its datasets/BinaryMNIST/README name). No checksum is published there: --download
checks each file's image count and values, and the SHA-256 of every file read is recorded in the provenance, so
that two runs on different copies can be told apart.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import torch

from genbench import Dataset, DatasetOptions, GenbenchError, ImageData
from genbench.toolkit.data import INCOMPLETE, make_dataset

URL = "http://www.cs.toronto.edu/~larocheh/public/datasets/binarized_mnist/binarized_mnist_{split}.amat"
#: Images per file, as Larochelle & Murray (2011) split them.
COUNTS = {"train": 50_000, "valid": 10_000, "test": 10_000}
PIXELS = 28 * 28
FOLDER = "binarized_mnist"
DEFAULT_ROOT = Path.home() / ".cache" / "genbench" / "data"


def file_name(split: str) -> str:
    return f"binarized_mnist_{split}.amat"


def parse_amat(text: str, name: str) -> torch.Tensor:
    """The lines of one .amat file -> uint8 images (n, 1, 28, 28) of 0 and 1; a malformed line is named."""
    rows = [line.split() for line in text.splitlines() if line.strip()]
    if not rows:
        raise GenbenchError(f"{name} holds no images; fetch it again ({URL.format(split='...')})")
    for number, row in enumerate(rows, start=1):
        if len(row) != PIXELS:
            raise GenbenchError(f"{name} line {number} has {len(row)} values, not {PIXELS}; the file is damaged")
    try:
        values = np.array(rows, dtype=np.float64)
    except ValueError as error:
        raise GenbenchError(f"{name} holds a value that is not a number ({error}); the file is damaged") from None
    if not np.isin(values, (0.0, 1.0)).all():
        raise GenbenchError(f"{name} holds values other than 0 and 1; it is not the binarized MNIST of this format")
    return torch.from_numpy(values.astype(np.uint8).reshape(-1, 1, 28, 28))


def find_folder(root: Path) -> Path | None:
    for folder in (root / FOLDER, root / "BinaryMNIST", root):
        if any((folder / file_name(split)).is_file() for split in COUNTS):
            return folder
    return None


def fetch(url: str, target: Path) -> None:
    """Download ``url`` to ``target`` (tests replace this function: nothing downloads in the test suite)."""
    torch.hub.download_url_to_file(url, str(target), progress=False)


def download(root: Path) -> None:
    """Fetch the three files into root/binarized_mnist/, each checked (count, values) before it is kept."""
    folder = root / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    for split, count in COUNTS.items():
        target = folder / file_name(split)
        if target.is_file():
            continue
        partial = target.with_name(target.name + ".part")
        url = URL.format(split=split)
        try:
            fetch(url, partial)
        except Exception as error:  # offline, proxy, disk full: say what to do instead
            partial.unlink(missing_ok=True)
            raise GenbenchError(
                f"could not download {url} ({type(error).__name__}: {error}); fetch it yourself into {folder}"
            ) from error
        found = len(parse_amat(partial.read_text(encoding="ascii"), str(partial)))
        if found != count:
            partial.unlink()
            raise GenbenchError(f"the download of {url} holds {found} images, not {count}; try again")
        os.replace(partial, target)


def load_binarized_mnist(options: DatasetOptions) -> Dataset:
    root = options.root or DEFAULT_ROOT
    if options.root is not None and not root.is_dir():
        raise GenbenchError(f"--data-root {root} does not exist or is not a directory")
    folder = find_folder(root)
    if folder is None and options.download:
        download(root)
        folder = find_folder(root)
    missing = [file_name(split) for split in COUNTS if folder is None or not (folder / file_name(split)).is_file()]
    if missing:
        raise GenbenchError(
            f"binarized_mnist needs {', '.join(missing)} (Larochelle & Murray's files) under {root} or "
            f"{root / FOLDER}; pass --download to fetch them from {URL.format(split='{train,valid,test}')}"
        )
    assert folder is not None
    splits, digests = {}, {}
    for split in COUNTS:
        raw = (folder / file_name(split)).read_bytes()
        digests[file_name(split)] = hashlib.sha256(raw).hexdigest()[:16]
        splits[split] = parse_amat(raw.decode("ascii", errors="replace"), str(folder / file_name(split)))
    counts = {split: len(images) for split, images in splits.items()}
    extra = {
        "binarization": "fixed file: Larochelle & Murray (2011)",
        "n_valid": counts["valid"],
        "files_sha256": digests,
    }
    if counts != COUNTS:
        # Smaller files (a stand-in, a truncated copy) load, but are never taken for the published data.
        extra[INCOMPLETE] = [
            f"{file_name(s)}: {counts[s]:,} of {COUNTS[s]:,} images" for s in COUNTS if counts[s] != COUNTS[s]
        ]
    return make_dataset(
        "binarized_mnist",
        ImageData(splits["train"], 2),
        ImageData(splits["test"], 2),
        source=f"Larochelle & Murray's .amat files ({folder.name}/)",
        split="fixed: binarized_mnist_train (50,000) / binarized_mnist_test (10,000); valid (10,000) unused",
        binarized=True,
        **extra,
    )
