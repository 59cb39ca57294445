"""``fid``: the Fréchet distance between Gaussians fitted to features of generated and of held-out test images.

Heusel, Ramsauer, Unterthiner, Nessler & Hochreiter (2017), "GANs Trained by a Two Time-Scale Update Rule
Converge to a Local Nash Equilibrium". The chain is torch-fidelity's: images -> features -> (mean, covariance)
-> number, each step a function of its own; the test split's statistics are cached, keyed by the extractor's
identity and the data's fingerprint. The provenance names the extractor, both sample counts and the cache key,
since an FID is comparable only to FIDs computed alike.
"""

from __future__ import annotations

from dataclasses import dataclass

from genbench import EvalContext, GenerativeModel, MetricResult
from genbench.features import reference_statistics
from genbench.stats import feature_statistics, frechet_distance
from genbench_fid.sample_features import (
    FeatureMetricConfig,
    check_extractor,
    reference_batch_size,
    shared_extractor,
    shared_sample_features,
    validate,
)

KEY_METRIC_FID = "fid"
REFERENCE_SPLIT = "test"


@dataclass
class FidConfig(FeatureMetricConfig):
    """FID needs only the options every feature metric has."""


def check_fid(ctx: EvalContext) -> None:
    check_extractor(ctx.config if isinstance(ctx.config, FeatureMetricConfig) else FidConfig(), ctx, KEY_METRIC_FID)


def compute_fid(model: GenerativeModel, ctx: EvalContext) -> MetricResult:
    config = ctx.config if isinstance(ctx.config, FeatureMetricConfig) else FidConfig()
    validate(config, KEY_METRIC_FID)
    extractor = shared_extractor(config, ctx)
    mu_real, sigma_real, reference = reference_statistics(
        extractor, ctx.dataset, REFERENCE_SPLIT, reference_batch_size(config, ctx), ctx.cache_dir, progress=ctx.progress
    )
    fake = shared_sample_features(model, extractor, config, ctx)
    mu_fake, sigma_fake = feature_statistics(fake)
    value = frechet_distance(mu_fake, sigma_fake, mu_real.numpy(), sigma_real.numpy())
    provenance = {
        "extractor": extractor.name,
        "extractor_identity": extractor.identity,
        "n_real": reference["count"],
        "n_fake": len(fake),
        "reference": f"{ctx.dataset.name} {REFERENCE_SPLIT} split, fingerprint {reference['fingerprint']}",
        "reference_statistics_key": reference["cache_key"],
        "batch_size": config.batch_size,
    }
    return MetricResult({KEY_METRIC_FID: value}, provenance)
