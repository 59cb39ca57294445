"""``samples``: a model that serves images generated elsewhere, from an ``.npz`` file or a folder of PNG/JPEG files.

Whatever made the images (any framework, any machine), FID, KID and every other sample metric then measure them
under the same protocol as the models genbench trains. Its only capability is ``sample``; ``fit`` does nothing,
so its record says ``trained: false`` and ``train_time`` is N/A.

Files. An ``.npz`` holds one uint8 array, (N, C, H, W) or (N, H, W, C), read with ``allow_pickle=False`` (an
object array cannot be loaded, so the file cannot run code). A folder's ``.png``/``.jpg``/``.jpeg`` files, under
it at any depth, are taken in the order of their sorted relative paths; gray (mode L or 1) for one-channel data,
RGB for three. Every image must have the data set's shape; anything else is an error before the run starts.

Levels. A data set has ``levels`` gray values (17 for the digits, 256 for 8-bit images, 2 binarized). An
``.npz`` holds a model's own output, so by default its values are the data's levels and a value >= levels is an
error. A PNG or JPEG is a picture, 0 black and 255 white, so by default its values are 8-bit (256 levels) and
are mapped to the data's L levels by rounding half up: v -> floor(v (L - 1) / 255 + 1/2), which recovers every
value exactly when images were stored as round(v 255 / (L - 1)). The option ``file_levels`` overrides either
default (e.g. ``file_levels = 17`` for PNGs that hold raw digit values 0..16).

Order. Images are served in the file's order and never repeated within one stream of draws: successive calls
with the same ``torch.Generator`` continue where that generator's last call stopped; a generator not seen
before starts at the first image (only the generator's identity is used, not its random state). The runner
gives each metric, and the sample grid, a generator of its own, so every metric sees the first n images,
whatever its batch size: the test split saved as a file has an FID of zero against the test split. A stream
that asks for more images than the file holds raises NotApplicable with both counts, so the metric is N/A
rather than measured on repeated images.

Seeds do not change the images served; several seeds give the same numbers (a spread of zero), as they should.
"""

from __future__ import annotations

import hashlib
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

import genbench
from genbench import DataInfo, FitContext, GenbenchError, ImageData, NotApplicable
from genbench.toolkit.files import file_sha256

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg"})
EIGHT_BIT = 256
#: Image modes accepted for one and for three channels; others (RGBA, 16-bit, palette) are refused, not guessed.
MODES = {1: ("L", "1"), 3: ("RGB",)}


@dataclass
class SamplesConfig:
    path: str = ""  # an .npz of one uint8 array, or a folder of PNG/JPEG images; required
    file_levels: int = 0  # levels of the stored values; 0: 256 for PNG/JPEG, the data set's levels for .npz


class StoredSamples:
    """The images of a file, served in order, without replacement, per stream of draws."""

    capabilities = frozenset({genbench.SAMPLE})
    #: Nothing is generated while serving, so sample_time has nothing to measure (it reads this attribute).
    stored_samples = True

    def __init__(self, config: SamplesConfig, info: DataInfo) -> None:
        if not config.path:
            raise GenbenchError(
                "model 'samples' needs a file: path = \"x.npz\" under [model.samples], or --sample-set NAME=PATH"
            )
        path = Path(config.path).expanduser()
        stored, sha256, default_levels = read_samples(path, info)
        file_levels = config.file_levels or default_levels
        self.images = to_levels(stored, file_levels, info.levels, path)
        #: Where the images came from; the runner records it and makes the SHA-256 part of the cell's key.
        self.origin: dict[str, Any] = {
            "kind": "samples",
            "plugin": "samples",
            "file": path.name,
            "path": str(path.resolve()),
            "sha256": sha256,
            "images": len(self.images),
            "file_levels": file_levels,
            "levels": info.levels,
        }
        #: How many images each stream of draws (one generator) has had; forgotten with the generator.
        self._served: weakref.WeakKeyDictionary[torch.Generator, int] = weakref.WeakKeyDictionary()

    def fit(self, train: ImageData, ctx: FitContext) -> None:
        """Nothing to learn: the images are given (the runner does not call this for a model with an origin)."""

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        served = self._served.get(generator, 0)
        end = served + n
        if end > len(self.images):
            raise NotApplicable(
                f"{self.origin['file']} holds {len(self.images)} images, fewer than this draw asks for ({end} so "
                "far); stored images are never repeated: store more, or ask the metric for fewer"
            )
        self._served[generator] = end
        return self.images[served:end].clone()

    def log_likelihood(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError("stored samples have no likelihood")

    def elbo(self, x: torch.Tensor, k: int = 1) -> torch.Tensor:
        raise NotImplementedError("stored samples have no likelihood")

    def to(self, device: torch.device) -> StoredSamples:
        return self  # images stay on the CPU, where sample() returns them

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: Any) -> None:
        if state:
            raise ValueError("the samples model has no weights to load")


def read_samples(path: Path, info: DataInfo) -> tuple[torch.Tensor, str, int]:
    """(uint8 images (N, C, H, W) as stored, SHA-256 of the file or folder, the default levels of the format)."""
    if path.is_dir():
        images, sha256 = read_image_folder(path, info)
        return images, sha256, EIGHT_BIT
    if path.is_file() and path.suffix.lower() == ".npz":
        return read_npz(path, info), file_sha256(path), info.levels
    raise GenbenchError(f"samples path {path} is neither an .npz file nor a folder of PNG/JPEG images")


def read_npz(path: Path, info: DataInfo) -> torch.Tensor:
    try:
        with np.load(path, allow_pickle=False) as archive:
            names = list(archive.files)
            if len(names) != 1:
                raise GenbenchError(f"{path} holds {len(names)} arrays {names[:5]}; save exactly one (N, C, H, W)")
            array = archive[names[0]]
    except GenbenchError:
        raise
    except Exception as error:  # not a zip, an object array (which would need pickle), a truncated file
        raise GenbenchError(f"cannot read {path} as .npz without pickle: {type(error).__name__}: {error}") from error
    if array.dtype != np.uint8 or array.ndim != 4:
        raise GenbenchError(
            f"{path} holds {array.dtype} {array.shape}; save one uint8 array (N, C, H, W) or (N, H, W, C)"
        )
    c, h, w = info.shape
    if array.shape[1:] == (c, h, w):
        return torch.from_numpy(np.ascontiguousarray(array))
    if array.shape[1:] == (h, w, c):
        return torch.from_numpy(np.ascontiguousarray(array.transpose(0, 3, 1, 2)))
    raise GenbenchError(
        f"{path} holds images of shape {array.shape[1:]}; the data set's are (C, H, W) = {info.shape} "
        f"or (H, W, C) = {(h, w, c)}"
    )


def read_image_folder(root: Path, info: DataInfo) -> tuple[torch.Tensor, str]:
    """Every PNG/JPEG under ``root`` in sorted order, checked against the data's shape; and their SHA-256."""
    from PIL import Image

    paths = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not paths:
        raise GenbenchError(f"found no PNG/JPEG images under {root}")
    channels, height, width = info.shape
    if channels not in MODES:
        raise GenbenchError(f"image folders hold 1 or 3 channels; the data set has {channels}: use an .npz")
    arrays, digest = [], hashlib.sha256()
    for path in paths:
        # The name and the bytes both decide what is served (the order comes from the names).
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
        try:
            with Image.open(path) as picture:
                if picture.mode not in MODES[channels]:
                    raise GenbenchError(
                        f"{path} has mode {picture.mode}; the data set has {channels} channel(s): save "
                        f"{' or '.join(MODES[channels])} images"
                    )
                array = np.asarray(picture.convert(MODES[channels][0]), dtype=np.uint8)
        except OSError as error:
            raise GenbenchError(f"cannot read image {path}: {error}") from error
        if array.shape[:2] != (height, width):
            raise GenbenchError(
                f"{path} is {array.shape[1]}x{array.shape[0]}; the data set's images are {width}x{height}"
            )
        arrays.append(array.reshape(height, width, channels))
    images = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()
    return images, digest.hexdigest()


def to_levels(images: torch.Tensor, file_levels: int, levels: int, path: Path) -> torch.Tensor:
    """Stored values in [0, file_levels) mapped to [0, levels) by rounding half up; a value out of range is an error."""
    if not 2 <= file_levels <= EIGHT_BIT:
        raise GenbenchError(f"samples option file_levels must be in [2, 256], got {file_levels}")
    highest = int(images.max())
    if highest >= file_levels:
        raise GenbenchError(
            f"{path} holds values up to {highest}, above the {file_levels} levels (0..{file_levels - 1}) it is read "
            f"with; the data set has {levels} levels: store values in 0..{levels - 1}, or set the samples option "
            f"file_levels = 256 to map 8-bit values to them"
        )
    if file_levels == levels:
        return images
    # floor(v (L-1) / (F-1) + 1/2) in integers: (2 v (L-1) + (F-1)) // (2 (F-1)).
    values = images.long()
    mapped = (2 * values * (levels - 1) + (file_levels - 1)) // (2 * (file_levels - 1))
    return mapped.to(torch.uint8)


@genbench.hookimpl
def genbench_models() -> list[genbench.ModelSpec]:
    return [
        genbench.ModelSpec(
            "samples",
            "images generated elsewhere, from an .npz or a folder of PNG/JPEG (option path; or --sample-set NAME=PATH)",
            SamplesConfig,
            StoredSamples,
            serves_sample_sets=True,
        )
    ]
