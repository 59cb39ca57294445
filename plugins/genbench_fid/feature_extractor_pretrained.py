"""What the extractors built on published networks (``dinov2``, ``clip``) share: finding their weights, loading
them without unpickling anything, and turning a data set's images into the network's input.

Weights are a safetensors file, found in this order: the option the extractor adds to ``genbench run`` (e.g.
--dinov2-weights), its environment variable (e.g. GENBENCH_DINOV2_WEIGHTS), or the Hugging Face hub cache, where
``hf download REPO FILE`` puts the file that timm and open_clip themselves would fetch. genbench only looks the
cache up (as with HF_HUB_OFFLINE=1): it never downloads these files, which are about a gigabyte each, behind the
user's back. Where none is found, the run stops before anything trains, in one line giving the command and the
URL. safetensors holds tensors only, so a weights file cannot run code; its SHA-256 travels with every number.

Images: gray is repeated to three channels and images of fewer than 256 levels are stretched to 0..255 (as the
inception extractor does, so that an 8-bit PNG of them would give the same input); then they are resized with
PIL's bicubic filter (torch's antialiased bicubic is the same filter, a = -0.5), rounded to 8 bits after each
of PIL's two passes (rows, then columns) as PIL stores them, scaled to [0, 1] and normalised with the network's
mean and standard deviation. This is what dgm-eval (for DINOv2) and the CMMD reference code (for CLIP) do to a
PNG they read; PIL's fixed-point arithmetic differs by at most 2 of 255 levels, on a few pixels in 10,000.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from genbench import Dataset, EvalContext, GenbenchError
from genbench_fid.feature_extractor_inception import as_rgb_255, file_sha256


@dataclass(frozen=True)
class PublishedWeights:
    """Where one network's weights are published, and the settings that name a local copy."""

    extractor: str  # the extractor's name, e.g. "dinov2"
    network: str  # what the weights are, for messages, e.g. "DINOv2 ViT-L/14"
    option: str  # the metric option and ``genbench run`` option's dest, e.g. "dinov2_weights"
    variable: str  # the environment variable, e.g. "GENBENCH_DINOV2_WEIGHTS"
    repo: str  # the Hugging Face hub repository timm or open_clip downloads from
    filename: str  # the safetensors file in it

    @property
    def flag(self) -> str:
        return "--" + self.option.replace("_", "-")

    @property
    def url(self) -> str:
        return f"https://huggingface.co/{self.repo}/resolve/main/{self.filename}"


def hub_cache_dir() -> Path:
    """The Hugging Face hub cache (HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub)."""
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def cached_weights(weights: PublishedWeights) -> Path | None:
    """The file in the Hugging Face hub cache, looked up without any network access; None if it is not there."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(weights.repo, weights.filename, cache_dir=hub_cache_dir())
    return Path(found) if isinstance(found, str) else None


def weights_path(weights: PublishedWeights, ctx: EvalContext) -> Path:
    """The weights file to use: the option, the environment variable, or the Hugging Face cache; else one line
    saying how to get it."""
    option = getattr(ctx.config, weights.option, None) or ctx.options.get(weights.option)
    for source, value in ((weights.option, option), (weights.variable, os.environ.get(weights.variable))):
        if value:
            path = Path(str(value)).expanduser()
            if not path.is_file():
                raise GenbenchError(
                    f"{source}={value!r} is not a file; it must be the {weights.network} weights {weights.url}"
                )
            return path
    cached = cached_weights(weights)
    if cached is None:
        raise GenbenchError(
            f"the {weights.extractor} feature extractor needs the {weights.network} weights, and they are not in the "
            f"Hugging Face cache ({hub_cache_dir()}): run `hf download {weights.repo} {weights.filename}` where "
            f"there is a network, or download {weights.url} and pass {weights.flag} PATH (or set "
            f"{weights.variable}=PATH)"
        )
    return cached


def weights_identity(path: Path) -> dict[str, Any]:
    """The file's name and the start of its SHA-256 (hashed once per process and file version)."""
    stat = path.stat()
    sha256 = file_sha256(path.resolve(), stat.st_size, stat.st_mtime_ns)
    return {"weights_file": path.name, "weights_sha256": sha256[:16]}


def read_weights(path: Path, weights: PublishedWeights) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file; a GenbenchError naming the file if it is anything else (a pickle)."""
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except Exception as error:  # a pickle (.pth, .bin), a truncated download, another format
        raise GenbenchError(
            f"{path} is not a usable {weights.network} weights file ({type(error).__name__}: {str(error)[:200]}); "
            f"it must be safetensors, like {weights.url}"
        ) from error


def load_into(
    build: Callable[[], torch.nn.Module], state: dict[str, torch.Tensor], path: Path, weights: PublishedWeights
) -> torch.nn.Module:
    """The network ``build`` makes, with exactly the tensors of ``state``.

    It is built on the meta device (no memory, no random initialisation of 300 million weights) and the file's
    tensors take the place of its parameters; a file with missing or extra keys or other shapes is refused."""
    with torch.device("meta"):
        network = build()
    try:
        network.load_state_dict(state, strict=True, assign=True)
    except RuntimeError as error:
        first = str(error).replace("\n", " ")[:300]
        raise GenbenchError(f"{path} does not hold the {weights.network} weights ({first})") from error
    left = [name for name, tensor in [*network.named_parameters(), *network.named_buffers()] if tensor.is_meta]
    if left:
        raise GenbenchError(f"{path} leaves {weights.network} tensors without values: {', '.join(left[:5])}")
    return network.eval()


def library(module: str, extractor: str) -> Any:
    """An optional library (timm, open_clip), or a one-line GenbenchError saying how to install it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise GenbenchError(
            f"the {extractor} feature extractor needs {module}: pip install 'genbench[extractors]' ({error})"
        ) from error


def check_images(dataset: Dataset, extractor: str) -> None:
    channels = dataset.train.shape[0]
    if channels not in (1, 3):
        raise GenbenchError(
            f"the {extractor} extractor takes gray or RGB images, {dataset.name!r} has {channels} channels"
        )


@dataclass(frozen=True)
class Preprocessing:
    """How images become a network's input: a square side, a centre crop or not, a channel mean and deviation."""

    size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    center_crop: bool  # crop the largest centred square first (CMMD); else resize the whole image (dgm-eval)

    def __call__(self, images: torch.Tensor, levels: int, device: torch.device) -> torch.Tensor:
        """float32 (n, 3, size, size) on ``device`` from uint8 images (n, 1 or 3, H, W) of ``levels`` levels."""
        x = as_rgb_255(images, levels).to(device).float()
        if self.center_crop:
            height, width = x.shape[-2:]
            side = min(height, width)
            top, left = (height - side) // 2, (width - side) // 2
            x = x[..., top : top + side, left : left + side]
        if x.shape[-1] != self.size:  # PIL resizes rows first, into an 8-bit image, then columns
            x = _bicubic(x, (x.shape[-2], self.size))
        if x.shape[-2] != self.size:
            x = _bicubic(x, (self.size, self.size))
        mean = torch.tensor(self.mean, device=device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, device=device).view(1, 3, 1, 1)
        return (x / 255 - mean) / std

    def describe(self) -> str:
        crop = "centre crop to a square, " if self.center_crop else ""
        return f"{crop}PIL-bicubic resize to {self.size}x{self.size}, 8-bit, mean {self.mean}, std {self.std}"


def _bicubic(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """PIL's bicubic resize of one axis: torch's antialiased bicubic is PIL's filter (a = -0.5, support widened
    when shrinking); PIL stores each pass's result as 8-bit pixels, so it is clamped and rounded."""
    resized = torch.nn.functional.interpolate(x, size=size, mode="bicubic", antialias=True, align_corners=False)
    return resized.clamp(0, 255).round()
