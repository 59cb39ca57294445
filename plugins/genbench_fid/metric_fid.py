"""``fid``: the Fréchet distance between Gaussians fitted to features of generated and of real images.

Heusel, Ramsauer, Unterthiner, Nessler & Hochreiter (2017), "GANs Trained by a Two Time-Scale Update Rule
Converge to a Local Nash Equilibrium". The chain is torch-fidelity's: images -> features -> (mean, covariance)
-> number, each step a function of its own. The real side is a split of the data set (``reference_split``: the
held-out test split by default; CIFAR-10 papers use the 50,000 training images), whose statistics are cached,
keyed by the extractor's identity and the data's fingerprint; or a precomputed statistics file in pytorch-fid's
.npz layout (``reference_statistics``, or --fid-reference). The provenance names the extractor, both sample
counts and where the reference came from, since an FID is comparable only to FIDs computed alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from genbench import EvalContext, GenbenchError, GenerativeModel, MetricResult
from genbench.toolkit.features import FeatureExtractor, reference_statistics
from genbench.toolkit.reference import extractor_mismatch, read_reference_statistics
from genbench.toolkit.stats import feature_statistics, frechet_distance
from genbench_fid.sample_features import (
    FeatureMetricConfig,
    check_extractor,
    reference_batch_size,
    shared_extractor,
    shared_sample_features,
    validate,
)

KEY_METRIC_FID = "fid"
#: The option that plugins add to ``genbench run`` for a statistics file (its dest).
REFERENCE_OPTION = "fid_reference"


@dataclass
class FidConfig(FeatureMetricConfig):
    reference_statistics: str | None = None  # an .npz of mu and sigma (pytorch-fid layout); replaces reference_split


def check_fid(ctx: EvalContext) -> None:
    check_extractor(ctx.config if isinstance(ctx.config, FeatureMetricConfig) else FidConfig(), ctx, KEY_METRIC_FID)


def compute_fid(model: GenerativeModel, ctx: EvalContext) -> MetricResult:
    config = ctx.config if isinstance(ctx.config, FeatureMetricConfig) else FidConfig()
    validate(config, KEY_METRIC_FID)
    extractor = shared_extractor(config, ctx)
    file = getattr(config, "reference_statistics", None) or ctx.options.get(REFERENCE_OPTION)
    if file:
        mu_real, sigma_real, reference = statistics_from_file(Path(file).expanduser(), extractor)
    else:
        mu_real, sigma_real, reference = statistics_of_split(extractor, config, ctx)
    fake = shared_sample_features(model, extractor, config, ctx)
    if fake.shape[1] != mu_real.shape[0]:
        raise GenbenchError(
            f"fid: the reference statistics are {mu_real.shape[0]}-d but extractor {extractor.name!r} gives "
            f"{fake.shape[1]}-d features; use statistics computed with the same extractor"
        )
    mu_fake, sigma_fake = feature_statistics(fake)
    value = frechet_distance(mu_fake, sigma_fake, mu_real, sigma_real)
    provenance = {
        "extractor": extractor.name,
        "extractor_identity": extractor.identity,
        "n_fake": len(fake),
        **reference,
        "batch_size": config.batch_size,
    }
    return MetricResult({KEY_METRIC_FID: value}, provenance)


Statistics = tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], dict[str, Any]]


def statistics_of_split(extractor: FeatureExtractor, config: FeatureMetricConfig, ctx: EvalContext) -> Statistics:
    """The cached mean and covariance of the reference split's features, and how they were obtained."""
    split = config.reference_split
    mu, sigma, info = reference_statistics(
        extractor, ctx.dataset, split, reference_batch_size(config, ctx), ctx.cache_dir, progress=ctx.progress
    )
    provenance = {
        "n_real": info["count"],
        "reference": f"{ctx.dataset.name} {split} split, fingerprint {info['fingerprint']}",
        "reference_split": split,
        "reference_statistics_key": info["cache_key"],
    }
    return mu.numpy(), sigma.numpy(), provenance


def statistics_from_file(path: Path, extractor: FeatureExtractor) -> Statistics:
    """Statistics from an .npz file; refused if genbench wrote it with another extractor, flagged if no one says."""
    stats = read_reference_statistics(path)
    provenance: dict[str, Any] = {"reference": f"file {path.name}, sha256 {stats.sha256}"}
    if stats.meta is None:
        provenance["extractor_match"] = (
            "unchecked: the file does not say which network made it; the FID is meaningful only if it holds "
            f"statistics of the same features as extractor {extractor.name!r} (e.g. InceptionV3 pool3 for 'inception')"
        )
        return stats.mu, stats.sigma, provenance
    file_identity = stats.meta.get("extractor", {})
    differing = extractor_mismatch(file_identity, extractor.identity)
    if differing:
        raise GenbenchError(
            f"fid: {path} holds statistics of extractor {file_identity.get('name')!r} "
            f"(weights {file_identity.get('weights_sha256')}), this FID uses {extractor.name!r} "
            f"(weights {extractor.identity.get('weights_sha256')}); they must match: rewrite the file with genbench "
            "stats --extractor NAME, or set the metric's extractor"
        )
    provenance["extractor_match"] = "checked: the file was written with this extractor and weights"
    provenance["n_real"] = stats.meta.get("count")
    provenance["reference_file_record"] = {k: stats.meta.get(k) for k in ("dataset", "split", "count", "fingerprint")}
    return stats.mu, stats.sigma, provenance
