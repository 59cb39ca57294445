"""``kid``: the Kernel Inception Distance of Binkowski, Sutherland, Arbel & Gretton (2018), "Demystifying MMD GANs".

The unbiased estimate of MMD² with the kernel k(x, y) = (xᵀy / d + 1)³ between features of generated and of
real images (the ``reference_split``), averaged over random subsets (``kid``) with its spread over them
(``kid_std``). Unlike FID it has no bias that depends on the sample count, so it is the fairer number when the
reference split is small.
"""

from __future__ import annotations

from dataclasses import dataclass

from genbench import EvalContext, GenerativeModel, MetricResult
from genbench.toolkit.checks import require_at_least
from genbench.toolkit.stats import kernel_inception_distance
from genbench_fid.sample_features import (
    FeatureMetricConfig,
    check_extractor,
    evaluation_sets,
    evaluation_summary,
    pairs,
    shared_extractor,
    validate,
)

KEY_METRIC_KID_MEAN = "kid"
KEY_METRIC_KID_STD = "kid_std"


@dataclass
class KidConfig(FeatureMetricConfig):
    subset_size: int = 1000  # images per subset, as Binkowski et al.; at most half the smaller set
    subsets: int = 100  # random subsets averaged over

    def __post_init__(self) -> None:
        super().__post_init__()
        require_at_least(self, 2, "subset_size")  # the unbiased MMD estimate needs pairs within a subset
        require_at_least(self, 1, "subsets")


def check_kid(ctx: EvalContext) -> None:
    config = ctx.config if isinstance(ctx.config, KidConfig) else KidConfig()
    check_extractor(config, ctx, KEY_METRIC_KID_MEAN)


def compute_kid(model: GenerativeModel, ctx: EvalContext) -> MetricResult:
    config = ctx.config if isinstance(ctx.config, KidConfig) else KidConfig()
    validate(config, KEY_METRIC_KID_MEAN)
    extractor = shared_extractor(config, ctx)
    sets = evaluation_sets(model, extractor, config, ctx)
    # At most half of the smaller set: subsets of everything would all be alike, and kid_std a meaningless 0.
    subset_size = min(config.subset_size, len(sets.real[0]) // 2, len(sets.fake[0]) // 2)
    results = [
        kernel_inception_distance(fake.numpy(), real.numpy(), subset_size, config.subsets, seed=ctx.seed)
        for fake, real in pairs(sets)
    ]
    written, noise = evaluation_summary(KEY_METRIC_KID_MEAN, [mean for mean, _ in results], kind=sets.kind)
    # kid_std keeps its meaning, the spread over subsets within one evaluation (averaged over evaluations).
    written[KEY_METRIC_KID_STD] = sum(std for _, std in results) / len(results)
    if config.bootstrap:
        fake, real = sets.fake[0], sets.unresampled_real
        written[KEY_METRIC_KID_MEAN] = kernel_inception_distance(
            fake.numpy(), real.numpy(), subset_size, config.subsets, seed=ctx.seed
        )[0]
    provenance = {
        "extractor": extractor.name,
        "extractor_identity": extractor.identity,
        **sets.provenance,
        "subset_size": subset_size,
        "subsets": config.subsets,
        "kernel": "(x.y / d + 1)^3",
        "batch_size": config.batch_size,
        **noise,
    }
    return MetricResult(written, provenance)
