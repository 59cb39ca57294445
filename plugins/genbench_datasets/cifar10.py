"""CIFAR-10 (Krizhevsky 2009, "Learning Multiple Layers of Features from Tiny Images") from its binary version.

Only the binary version is read (https://www.cs.toronto.edu/~kriz/cifar.html, "binary version (suitable for C
programs)"): fixed-length records of 3,073 bytes, one label byte (0-9) then the 32x32 image as 1,024 red, 1,024
green and 1,024 blue bytes, each channel row-major. The Python version is a set of pickles, and unpickling a file
runs whatever code it holds, so it is refused with a pointer to the binary one. The official split is kept:
train = data_batch_1.bin .. data_batch_5.bin (50,000 images), test = test_batch.bin (10,000).

The data is read from ``cifar-10-batches-bin/`` (or the six files directly under --data-root) or straight out of
``cifar-10-binary.tar.gz`` without unpacking it. --download fetches that archive, checks the MD5 the page
publishes, and unpacks the six files by writing them under names of our own, so no path inside the tar (an
absolute path, "../") can place a file anywhere else.
"""

from __future__ import annotations

import hashlib
import os
import tarfile
from pathlib import Path

import numpy as np
import torch

from genbench import Dataset, DatasetOptions, GenbenchError, ImageData
from genbench.toolkit.data import INCOMPLETE, SPLIT_SEED, binarize, make_dataset

URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
#: The md5sum that https://www.cs.toronto.edu/~kriz/cifar.html publishes for the binary version. (torchvision's
#: CIFAR10 carries only the Python version's, c58f30108f718f92721af3b95e74349a.)
ARCHIVE_MD5 = "c32a1d4ab5d03f1284b67883e8d87530"
ARCHIVE = "cifar-10-binary.tar.gz"
FOLDER = "cifar-10-batches-bin"
TRAIN_FILES = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
TEST_FILE = "test_batch.bin"
SIZE = 32
RECORD_BYTES = 1 + 3 * SIZE * SIZE
CLASSES = 10
#: What the pickled Python version leaves on disk: its archive, its folder, its batch files (no .bin).
PYTHON_VERSION = ("cifar-10-python.tar.gz", "cifar-10-batches-py", "data_batch_1")
DEFAULT_ROOT = Path.home() / ".cache" / "genbench" / "data"


def parse_batch(raw: bytes, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """One batch file's bytes -> uint8 images (n, 3, 32, 32) and int64 labels (n,); ``name`` is for the errors."""
    if not raw or len(raw) % RECORD_BYTES:
        raise GenbenchError(
            f"{name} holds {len(raw)} bytes, not a whole number of {RECORD_BYTES}-byte CIFAR-10 records; "
            f"the file is damaged or not from {ARCHIVE}: fetch it again"
        )
    records = np.frombuffer(raw, dtype=np.uint8).reshape(-1, RECORD_BYTES)
    labels = records[:, 0]
    if int(labels.max()) >= CLASSES:
        raise GenbenchError(
            f"{name} has label {int(labels.max())} where CIFAR-10 has 0-{CLASSES - 1}; the file is damaged or not "
            f"CIFAR-10 (CIFAR-100's binary records are laid out differently): fetch {ARCHIVE} again"
        )
    images = torch.from_numpy(records[:, 1:].reshape(-1, 3, SIZE, SIZE).copy())
    return images, torch.from_numpy(labels.astype(np.int64))


def batches_folder(root: Path) -> Path | None:
    """Where the six .bin files are: root/cifar-10-batches-bin/ or root itself."""
    for folder in (root / FOLDER, root):
        if (folder / TEST_FILE).is_file() or (folder / TRAIN_FILES[0]).is_file():
            return folder
    return None


def read_folder(folder: Path) -> dict[str, bytes]:
    contents = {}
    for name in (*TRAIN_FILES, TEST_FILE):
        path = folder / name
        if not path.is_file():
            raise GenbenchError(f"{path} is missing; {folder} must hold {', '.join(TRAIN_FILES)} and {TEST_FILE}")
        contents[str(path)] = path.read_bytes()
    return contents


def read_archive(archive: Path) -> dict[str, bytes]:
    """The six batch files' bytes, read from the archive's regular files without unpacking anything to disk."""
    wanted = {f"{FOLDER}/{name}": name for name in (*TRAIN_FILES, TEST_FILE)}
    found: dict[str, bytes] = {}
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                if member.isfile() and member.name in wanted:
                    stream = tar.extractfile(member)
                    assert stream is not None  # a regular file always has one
                    found[wanted[member.name]] = stream.read()
    except (tarfile.TarError, OSError, EOFError) as error:
        raise GenbenchError(f"{archive} is not a readable .tar.gz ({error}); fetch {ARCHIVE} again") from error
    missing = [name for name in wanted.values() if name not in found]
    if missing:
        raise GenbenchError(f"{archive} lacks {FOLDER}/{missing[0]}; is it the CIFAR-10 binary version, complete?")
    return {f"{archive}:{name}": found[name] for name in (*TRAIN_FILES, TEST_FILE)}


def file_md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch(url: str, target: Path) -> None:
    """Download ``url`` to ``target`` (tests replace this function: nothing downloads in the test suite)."""
    torch.hub.download_url_to_file(url, str(target), progress=False)


def download(root: Path) -> None:
    """Fetch the archive into ``root``, check its MD5, and unpack the six batch files into root/FOLDER."""
    root.mkdir(parents=True, exist_ok=True)
    archive, partial = root / ARCHIVE, root / (ARCHIVE + ".part")
    if not archive.is_file():
        try:
            fetch(URL, partial)
        except Exception as error:  # offline, proxy, disk full: say what to do instead
            partial.unlink(missing_ok=True)
            raise GenbenchError(
                f"could not download {URL} ({type(error).__name__}: {error}); fetch it yourself and put it in {root}"
            ) from error
        checksum = file_md5(partial)
        if checksum != ARCHIVE_MD5:
            partial.unlink()
            raise GenbenchError(f"the download of {URL} has MD5 {checksum}, not the published {ARCHIVE_MD5}; try again")
        partial.replace(archive)
    folder = root / FOLDER
    folder.mkdir(exist_ok=True)
    for source, raw in read_archive(archive).items():
        target = folder / source.rsplit(":", 1)[1]  # one of our six names, never a path taken from the tar
        temporary = target.with_name(target.name + ".tmp")
        temporary.write_bytes(raw)
        os.replace(temporary, target)


def refuse_python_version(root: Path) -> None:
    for name in PYTHON_VERSION:
        if (root / name).exists():
            raise GenbenchError(
                f"{root / name} is CIFAR-10's pickled Python version, which genbench does not read (unpickling a file "
                f"runs whatever code it holds); get the binary version {URL} into {root}, or pass --download"
            )


def load_cifar10(options: DatasetOptions) -> Dataset:
    root = options.root or DEFAULT_ROOT
    if options.root is not None and not root.is_dir():
        raise GenbenchError(f"--data-root {root} does not exist or is not a directory")
    folder = batches_folder(root)
    if folder is None and not (root / ARCHIVE).is_file():
        if not options.download:
            refuse_python_version(root)
            raise GenbenchError(
                f"no CIFAR-10 binary files under {root} (looked for {FOLDER}/ and {ARCHIVE}); pass --download to "
                f"fetch {URL}, or --data-root pointing at a folder that has them"
            )
        download(root)
        folder = batches_folder(root)
    contents = read_folder(folder) if folder is not None else read_archive(root / ARCHIVE)
    batches = [parse_batch(raw, name) for name, raw in contents.items()]
    train_images, train_labels = (torch.cat(parts) for parts in zip(*batches[:-1], strict=True))
    train = ImageData(train_images, 256, train_labels)
    test = ImageData(batches[-1][0], 256, batches[-1][1])
    if options.binarize:
        train, test = binarize(train, SPLIT_SEED), binarize(test, SPLIT_SEED + 1)
    source = f"CIFAR-10 binary version ({f'{FOLDER}/' if folder is not None else ARCHIVE})"
    split = (
        f"official: {'+'.join(name.removesuffix('.bin') for name in TRAIN_FILES)} / {TEST_FILE.removesuffix('.bin')}"
    )
    short = [
        f"{name}: {len(data):,} of {count:,} images"
        for name, data, count in (("data_batch_1..5", train, 50_000), (TEST_FILE, test, 10_000))
        if len(data) != count
    ]
    extra = {INCOMPLETE: short} if short else {}
    return make_dataset(
        "cifar10", train, test, source=source, split=split, binarized=options.binarize, classes=CLASSES, **extra
    )
