"""Features of images for sample-quality metrics (FID, KID and the like), and the on-disk cache they share.

A feature extractor (an ``ExtractorSpec`` plugin) turns uint8 images into float64 vectors. The features of a
data set's split, and their mean and covariance, are the same for every model and seed, so they are computed
once and cached under the run's cache directory: safetensors for the tensors, JSON beside them saying what
they are. The cache key is a hash of everything that determines the tensors (the extractor's identity, which
includes its weights' hash; the data's fingerprint; the split; the image count), so changing any of these
computes afresh, never reuses a stale file. Trained extractors cache their weights the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from genbench.contract import Dataset, EvalContext, GenerativeModel, NotApplicable
from genbench.errors import PluginOutputError
from genbench.toolkit.data import fingerprint
from genbench.toolkit.files import load_checked_tensors, save_checked_tensors, stable_hash
from genbench.toolkit.stats import feature_statistics

#: Bump when the layout of cached files changes, so that old caches are recomputed rather than misread.
CACHE_FORMAT = 2

FeatureFunction = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class FeatureExtractor:
    """A loaded extractor: uint8 images (n, C, H, W) -> float64 features (n, d), and what identifies it."""

    name: str
    features: FeatureFunction
    #: JSON-able; names the network and its weights (a hash), so cached statistics are never mixed up.
    identity: dict[str, Any]


def load_extractor(name: str, ctx: EvalContext) -> FeatureExtractor:
    """The registered extractor ``name``, built for ``ctx.dataset`` (this may train or download it).

    Its identity names its plugin's source hash too, so that cached features of an edited extractor are not
    reused."""
    features, identity = ctx.registry.extractor(name).load(ctx.dataset, ctx)
    source = ctx.registry.extractor_source(name)
    return FeatureExtractor(name, features, {"name": name, **identity, "plugin_source": source})


def extract_features(
    extractor: FeatureExtractor, images: torch.Tensor, batch_size: int, *, progress: bool = False
) -> torch.Tensor:
    """Features (n, d) in float64 on the CPU of uint8 images (n, C, H, W), computed ``batch_size`` at a time."""
    from tqdm.auto import tqdm

    batches = range(0, len(images), batch_size)
    parts = [_checked_features(extractor, images[i : i + batch_size]) for i in tqdm(batches, disable=not progress)]
    return torch.cat(parts)


def generated_features(
    model: GenerativeModel,
    extractor: FeatureExtractor,
    n: int,
    batch_size: int,
    generator: torch.Generator,
    shape: tuple[int, int, int],
    *,
    progress: bool = False,
) -> torch.Tensor:
    """Features of ``n`` samples of ``model``, drawn ``batch_size`` at a time with ``generator`` and not kept."""
    from tqdm.auto import tqdm

    parts = []
    for start in tqdm(range(0, n, batch_size), desc="sample", disable=not progress):
        count = min(batch_size, n - start)
        try:
            images = model.sample(count, generator)
        except NotApplicable as short:  # e.g. stored samples run out: the reason says how many were asked for
            raise NotApplicable(f"asked for {n} images; {short}") from None
        if images.dtype != torch.uint8 or tuple(images.shape) != (count, *shape) or images.device.type != "cpu":
            where = "" if images.device.type == "cpu" else f" on {images.device}"
            raise PluginOutputError(
                f"model.sample({count}) returned {images.dtype} {tuple(images.shape)}{where}; expected a uint8 tensor "
                f"{(count, *shape)} on the CPU like the data set's images"
            )
        parts.append(_checked_features(extractor, images))
    return torch.cat(parts)


def _checked_features(extractor: FeatureExtractor, images: torch.Tensor) -> torch.Tensor:
    """Features of ``images``, float64 on the CPU; a wrong shape or a NaN fails the cell, not the run."""
    features: Any = extractor.features(images)
    if not isinstance(features, torch.Tensor) or features.dim() != 2 or len(features) != len(images):
        kind = type(features).__name__
        what = f"shape {tuple(features.shape)}" if isinstance(features, torch.Tensor) else f"a {kind}"
        raise PluginOutputError(
            f"feature extractor {extractor.name!r} returned {what} for {len(images)} images; it must return (n, d)"
        )
    values: torch.Tensor = features.detach().to("cpu", torch.float64)
    if not bool(torch.isfinite(values).all()):
        bad = int((~torch.isfinite(values).all(dim=1)).sum())
        raise PluginOutputError(
            f"feature extractor {extractor.name!r} returned NaN or infinite features for {bad} of {len(images)} "
            "images; it must return finite numbers"
        )
    return values


# ------------------------------------------------------------------------------- reference features of a split


def dataset_fingerprint(dataset: Dataset) -> str:
    """The content hash from the data set's provenance, or one computed from its pixels when it has none."""
    return str(dataset.provenance.get("fingerprint") or fingerprint(dataset.train, dataset.test))


def reference_description(extractor: FeatureExtractor, dataset: Dataset, split: str) -> dict[str, Any]:
    """Everything that determines a split's features: the cache key hashes it, the provenance records it."""
    return {
        "extractor": extractor.identity,
        "dataset": dataset.name,
        "fingerprint": dataset_fingerprint(dataset),
        "split": split,
        "count": len(_split(dataset, split)),
    }


def reference_features(
    extractor: FeatureExtractor,
    dataset: Dataset,
    split: str,
    batch_size: int,
    cache_dir: Path,
    *,
    progress: bool = False,
) -> tuple[torch.Tensor, dict[str, Any]]:
    """Features (n, d) of every image of ``dataset``'s ``split``, cached; and their provenance with the cache key."""

    def compute() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        return {
            "features": extract_features(extractor, _split(dataset, split).images, batch_size, progress=progress)
        }, {}

    description = reference_description(extractor, dataset, split)
    tensors, info = cached_tensors(cache_dir / "reference_features", description, compute)
    return tensors["features"], info


def reference_statistics(
    extractor: FeatureExtractor,
    dataset: Dataset,
    split: str,
    batch_size: int,
    cache_dir: Path,
    *,
    progress: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
    """Mean (d,) and covariance (d, d) of ``split``'s features, cached; and their provenance with the cache key."""

    def compute() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        # Through the features' cache, so that FID and KID of one cell extract the reference features once.
        features, _ = reference_features(extractor, dataset, split, batch_size, cache_dir, progress=progress)
        mu, sigma = feature_statistics(features)
        return {"mu": torch.from_numpy(mu), "sigma": torch.from_numpy(sigma)}, {}

    description = reference_description(extractor, dataset, split)
    tensors, info = cached_tensors(cache_dir / "reference_statistics", description, compute)
    return tensors["mu"], tensors["sigma"], info


def _split(dataset: Dataset, split: str) -> Any:
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    return getattr(dataset, split)


# ------------------------------------------------------------------------------------------------ the cache


def cache_key(description: Mapping[str, Any]) -> str:
    """A short hash of JSON-able data, independent of dict order, with the cache's format version in it."""
    return stable_hash({"format": CACHE_FORMAT, **description})


def cached_tensors(
    folder: Path,
    description: Mapping[str, Any],
    compute: Callable[[], tuple[dict[str, torch.Tensor], dict[str, Any]]],
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Tensors stored as ``folder/KEY.safetensors`` with ``folder/KEY.json``, KEY a hash of ``description``.

    On a miss ``compute()`` gives the tensors and extra JSON-able facts (a training time, an accuracy); the
    tensors are written atomically, then the JSON with their SHA-256, so that a JSON file on disk means a
    complete entry. A damaged entry (checksum, parse or schema) is set aside as ``.corrupt`` with a warning and
    computed again. Returns the tensors and the JSON record: the description, the extra facts and the key.
    """

    key = cache_key(description)
    tensors_path, info_path = folder / f"{key}.safetensors", folder / f"{key}.json"
    loaded = load_checked_tensors(tensors_path, info_path, schema=lambda info: _cache_problem(info, key))
    if loaded is not None:
        return loaded
    tensors, extra = compute()
    info = {**description, **extra, "cache_key": key}
    save_checked_tensors(tensors_path, info_path, tensors, info)
    return tensors, info


def _cache_problem(info: Mapping[str, Any], key: str) -> str | None:
    return None if info.get("cache_key") == key else f"the entry of cache key {info.get('cache_key')!r}, not {key!r}"
