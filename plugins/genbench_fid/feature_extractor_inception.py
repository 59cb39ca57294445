"""``inception``: the 2048-d pool3 features of the InceptionV3 that FID is defined with (Heusel et al. 2017).

The network is torch-fidelity's ``FeatureExtractorInceptionV3``: the weights converted from the TensorFlow graph
of the original FID code, and its TensorFlow-1-exact bilinear resize to 299x299, so that numbers are comparable
with the literature's. It takes uint8 RGB images in 0..255; gray images are repeated to three channels and
images with fewer than 256 levels are stretched to 0..255 first.

Weights come from, in order: the metric option ``inception_weights`` (the CLI's --inception-weights), the
environment variable GENBENCH_INCEPTION_WEIGHTS, torch.hub's cache, or a download into that cache. They are
loaded with ``torch.load(weights_only=True)``, so a weights file cannot run code, and their SHA-256 is recorded
with every number.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from genbench import Dataset, EvalContext, GenbenchError
from genbench_fid.sample_features import FeaturesWithLogits

WEIGHTS_VARIABLE = "GENBENCH_INCEPTION_WEIGHTS"
FEATURES = "2048"  # pool3, the layer of FID
#: The 1008 class logits without the bias, which torch-fidelity uses for the Inception Score.
LOGITS = "logits_unbiased"


def weights_url() -> str:
    """Where torch-fidelity publishes the weights (imported late: torch-fidelity takes seconds to import)."""
    from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3

    return str(URL_INCEPTION_V3)


def hub_weights_path() -> Path:
    """Where torch.hub keeps downloaded weights; a file placed there is found without a download."""
    return Path(torch.hub.get_dir()) / "checkpoints" / weights_url().rsplit("/", 1)[1]


def download_weights(target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    torch.hub.download_url_to_file(weights_url(), str(target), progress=False)


def weights_path(option: str | None) -> Path:
    """The weights file to use: the metric option, the environment variable, torch.hub's cache, a download."""
    for source, value in (("inception_weights", option), (WEIGHTS_VARIABLE, os.environ.get(WEIGHTS_VARIABLE))):
        if value:
            path = Path(value).expanduser()
            if not path.is_file():
                raise GenbenchError(
                    f"{source}={value!r} is not a file; it must be the InceptionV3 weights {weights_url()}"
                )
            return path
    cached = hub_weights_path()
    if not cached.is_file():
        try:
            download_weights(cached)
        except Exception as error:  # offline, proxy, disk full: the message says how to do without
            raise GenbenchError(
                f"cannot download the InceptionV3 FID weights ({type(error).__name__}: {error}). Download "
                f"{weights_url()} elsewhere and pass --inception-weights PATH (or set {WEIGHTS_VARIABLE}=PATH), or put "
                f"it at {cached}; or use extractor 'classifier' on a labelled data set"
            ) from error
    return cached


@functools.lru_cache(maxsize=8)
def file_sha256(path: Path, size: int, modified_ns: int) -> str:
    """SHA-256 of a file; size and modification time are part of the cache key, so an edited file is hashed anew."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@contextlib.contextmanager
def weights_only_loading() -> Iterator[None]:
    """Make every torch.load inside weights-only, torch's documented switch TORCH_FORCE_WEIGHTS_ONLY_LOAD.

    torch-fidelity loads a weights file with ``torch.load(path, weights_only=False)``, which would unpickle
    (and so run) whatever the file holds; under this switch it can only build tensors and plain containers.
    """
    previous = os.environ.get("TORCH_FORCE_WEIGHTS_ONLY_LOAD")
    os.environ["TORCH_FORCE_WEIGHTS_ONLY_LOAD"] = "1"
    try:
        yield
    finally:
        if previous is None:
            del os.environ["TORCH_FORCE_WEIGHTS_ONLY_LOAD"]
        else:
            os.environ["TORCH_FORCE_WEIGHTS_ONLY_LOAD"] = previous


def inception_network(path: Path) -> torch.nn.Module:
    """torch-fidelity's InceptionV3 with the weights in ``path``; a GenbenchError if they do not fit."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    try:
        with weights_only_loading():
            network: torch.nn.Module = FeatureExtractorInceptionV3("inception-v3-compat", [FEATURES, LOGITS], str(path))
    except Exception as error:  # an unpicklable object, a truncated file, the wrong network's keys
        raise GenbenchError(
            f"{path} is not a usable InceptionV3 weights file ({type(error).__name__}: {str(error)[:300]}); "
            f"it must be a state dict saved with torch.save, like {weights_url()}"
        ) from error
    return network


def as_rgb_255(images: torch.Tensor, levels: int) -> torch.Tensor:
    """uint8 (n, 3, H, W) in 0..255, as the network expects, from images with ``levels`` levels and 1 or 3 channels."""
    if images.shape[1] not in (1, 3):
        raise GenbenchError(f"the inception extractor takes gray or RGB images, got {images.shape[1]} channels")
    if levels != 256:
        images = (images.float() * (255 / (levels - 1))).round().to(torch.uint8)
    return images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images


def check_inception(dataset: Dataset, ctx: EvalContext) -> None:
    """Before any cell runs: gray or RGB images, and a weights file (found, or downloaded now rather than later)."""
    channels = dataset.train.shape[0]
    if channels not in (1, 3):
        raise GenbenchError(
            f"the inception extractor takes gray or RGB images, {dataset.name!r} has {channels} channels"
        )
    weights_path(getattr(ctx.config, "inception_weights", None) or ctx.options.get("inception_weights"))


def load_inception(dataset: Dataset, ctx: EvalContext) -> tuple[FeaturesWithLogits, dict[str, Any]]:
    """The extractor; the metric option ``inception_weights`` or the CLI's --inception-weights names a weights file."""
    import torch_fidelity

    path = weights_path(getattr(ctx.config, "inception_weights", None) or ctx.options.get("inception_weights"))
    stat = path.stat()
    sha256 = file_sha256(path.resolve(), stat.st_size, stat.st_mtime_ns)
    network = inception_network(path).to(ctx.device)
    levels = dataset.train.levels

    @torch.inference_mode()
    def features_and_logits(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pool3, logits = network(as_rgb_255(images, levels).to(ctx.device))
        return pool3.double().cpu(), logits.double().cpu()

    identity = {
        "network": f"InceptionV3 pool3 ({FEATURES}-d), torch-fidelity {torch_fidelity.__version__}",
        "resize": "torch-fidelity's TensorFlow-1 bilinear to 299x299",
        "weights_file": path.name,
        "weights_sha256": sha256[:16],
    }
    features = FeaturesWithLogits(features_and_logits, f"InceptionV3 {LOGITS} (1008 classes, torch-fidelity)")
    return features, identity
