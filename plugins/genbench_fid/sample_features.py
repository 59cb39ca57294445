"""What FID and KID share: their options, the choice of extractor, and the features of the model's samples.

Within one cell both metrics use one loaded extractor and one set of generated samples (through the cell's
memo), so asking for ``fid,kid`` samples and extracts once, and both numbers describe the same images.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from genbench import EvalContext, GenbenchError, GenerativeModel
from genbench.devices import eval_batch_size
from genbench.features import FeatureExtractor, generated_features, load_extractor
from genbench.validation import require_at_least

#: Generated images by default: as many as the test split has, up to this. FID is biased upward by a term that
#: shrinks like 1/n (Chong & Forsyth 2020), so models are comparable only at one n; matching the real count
#: gives both Gaussians the same estimation noise, and the cap bounds the cost on large test splits.
MAX_DEFAULT_SAMPLES = 10_000
#: A generous estimate of the device bytes one image needs in a feature extractor: InceptionV3 resizes it to
#: 3x299x299 and keeps float32 activations of that order per layer. Only sizes real-image batches on CUDA.
FEATURE_BYTES_PER_IMAGE = 32 * 2**20


@dataclass
class FeatureMetricConfig:
    extractor: str | None = None  # None: "classifier" where the data set has labels, "inception" otherwise
    n_samples: int | None = None  # generated images; None: min(len(test split), 10,000)
    batch_size: int = 100  # images per call to model.sample() and per extractor pass
    inception_weights: str | None = None  # local InceptionV3 weights (--inception-weights); else see the extractor

    def __post_init__(self) -> None:
        require_at_least(self, 2, "n_samples")  # a covariance needs two samples
        require_at_least(self, 1, "batch_size")


def extractor_name(config: FeatureMetricConfig, ctx: EvalContext) -> str:
    if config.extractor is not None:
        return config.extractor
    return "classifier" if ctx.dataset.train.labels is not None else "inception"


def sample_count(config: FeatureMetricConfig, ctx: EvalContext) -> int:
    return config.n_samples if config.n_samples is not None else min(len(ctx.dataset.test), MAX_DEFAULT_SAMPLES)


def validate(config: FeatureMetricConfig, metric: str) -> None:
    if config.extractor is not None and not isinstance(config.extractor, str):
        raise GenbenchError(f"{metric}: extractor must be a name like 'inception', got {config.extractor!r}")
    if config.n_samples is not None and (not isinstance(config.n_samples, int) or config.n_samples < 2):
        raise GenbenchError(f"{metric}: n_samples must be an integer of at least 2, got {config.n_samples!r}")
    if config.batch_size < 1:
        raise GenbenchError(f"{metric}: batch_size must be at least 1, got {config.batch_size}")
    if config.inception_weights is not None and not isinstance(config.inception_weights, str):
        raise GenbenchError(f"{metric}: inception_weights must be a path, got {config.inception_weights!r}")


def reference_batch_size(config: FeatureMetricConfig, ctx: EvalContext) -> int:
    """Real images per extractor pass: ``config.batch_size`` on the CPU, sized from free memory on CUDA.

    Only the real images' batches grow: their features do not depend on how they are batched, while generated
    images come from one generator whose draws follow the batches, so their batch stays ``config.batch_size``.
    """
    return eval_batch_size(ctx.device, FEATURE_BYTES_PER_IMAGE, config.batch_size)


def check_extractor(config: FeatureMetricConfig, ctx: EvalContext, metric: str) -> None:
    """Before any cell runs: the options are valid, the extractor exists and says it can load for this data."""
    validate(config, metric)
    spec = ctx.registry.extractor(extractor_name(config, ctx))
    if spec.check is not None:
        spec.check(ctx.dataset, ctx)


def shared_extractor(config: FeatureMetricConfig, ctx: EvalContext) -> FeatureExtractor:
    """The extractor for this cell, loaded once however many metrics use it."""
    name = extractor_name(config, ctx)
    extractor: FeatureExtractor = ctx.remember(
        f"genbench_fid extractor {name} {config.inception_weights!r}", lambda: load_extractor(name, ctx)
    )
    return extractor


def shared_sample_features(
    model: GenerativeModel, extractor: FeatureExtractor, config: FeatureMetricConfig, ctx: EvalContext
) -> torch.Tensor:
    """Features of ``n_samples`` generated images, sampled once per cell for every metric that asks alike."""
    n = sample_count(config, ctx)
    key = f"genbench_fid sample features {extractor.identity} n={n} batch={config.batch_size}"
    features: torch.Tensor = ctx.remember(
        key,
        lambda: generated_features(
            model, extractor, n, config.batch_size, ctx.generator, ctx.dataset.test.shape, progress=ctx.progress
        ),
    )
    return features
