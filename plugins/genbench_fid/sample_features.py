"""What FID, KID, IS and precision/recall share: their options, the choice of extractor, and the features (and
class logits) of the model's samples.

Within one cell every such metric uses one loaded extractor and one set of generated samples (through the cell's
memo), so asking for ``fid,kid,is,precision_recall`` samples and extracts once, and all numbers describe the same
images. An extractor whose feature function is a ``FeaturesWithLogits`` gives the class logits that IS needs from
the same forward pass.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import torch

import genbench
from genbench import EvalContext, GenbenchError, GenerativeModel
from genbench.toolkit.checks import require_at_least
from genbench.toolkit.devices import eval_batch_size
from genbench.toolkit.features import FeatureExtractor, generated_features, load_extractor, reference_features

#: Generated images by default: as many as the test split has, up to this. FID is biased upward by a term that
#: shrinks like 1/n (Chong & Forsyth 2020), so models are comparable only at one n; matching the real count
#: gives both Gaussians the same estimation noise, and the cap bounds the cost on large test splits.
MAX_DEFAULT_SAMPLES = 10_000
#: A generous estimate of the device bytes one image needs in a feature extractor: InceptionV3 resizes it to
#: 3x299x299 and keeps float32 activations of that order per layer. Only sizes real-image batches on CUDA.
FEATURE_BYTES_PER_IMAGE = 32 * 2**20


REFERENCE_SPLITS = ("train", "test")


@dataclass
class SampleFeatureConfig:
    extractor: str | None = None  # None: "classifier" where the data set has labels, "inception" otherwise
    n_samples: int | None = None  # generated images (n_fake) per evaluation; None: min(len(test split), 10,000)
    batch_size: int = 100  # images per call to model.sample() and per extractor pass
    inception_weights: str | None = None  # local InceptionV3 weights (--inception-weights); else see the extractor
    repeats: int = 1  # independent evaluations of one model (fresh samples each): the value is their mean, and
    # X_eval_std / X_eval_n record the evaluation noise (Mimicry's "± over 3 evaluations" is repeats = 3)

    def __post_init__(self) -> None:
        require_at_least(self, 2, "n_samples")  # a covariance needs two samples
        require_at_least(self, 1, "batch_size", "repeats")


@dataclass
class FeatureMetricConfig(SampleFeatureConfig):
    reference_split: Literal["test", "train"] = (
        "test"  # real images compared with: "test" (held out) or "train" (as CIFAR-10 FIDs are)
    )
    n_real: int | None = None  # real images per evaluation: a seeded random subset of the split; None: all of it
    bootstrap: int = 0  # resample the real features B times (with replacement) for the real side's noise

    def __post_init__(self) -> None:
        super().__post_init__()
        require_at_least(self, 2, "n_real")
        require_at_least(self, 0, "bootstrap")
        if self.bootstrap and self.repeats > 1:
            raise GenbenchError("repeats and bootstrap are two measures of evaluation noise: set one of them")


@dataclass(frozen=True)
class FeaturesWithLogits:
    """An extractor's feature function that also gives class logits from the same forward pass (for IS)."""

    #: uint8 images (n, C, H, W) -> (features (n, d), logits (n, classes)), both float64 on the CPU.
    both: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
    #: Which logits these are, for the provenance of every Inception Score.
    logits_description: str

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return self.both(images)[0]


@dataclass(frozen=True)
class SampleOutputs:
    """The features of one cell's generated images, and their class logits where the extractor gives them."""

    features: torch.Tensor
    logits: torch.Tensor | None
    logits_description: str | None


def extractor_name(config: SampleFeatureConfig, ctx: EvalContext) -> str:
    if config.extractor is not None:
        return config.extractor
    return ctx.registry.default_extractor(ctx.dataset)


def sample_count(config: SampleFeatureConfig, ctx: EvalContext) -> int:
    """Generated images per evaluation (n_fake)."""
    return config.n_samples if config.n_samples is not None else min(len(ctx.dataset.test), MAX_DEFAULT_SAMPLES)


#: Real subsets are drawn with seeds REAL_SUBSET_SEED, +1, ... (one per repeat), whatever the cell's seed: every
#: model and training seed is compared with the same real images.
REAL_SUBSET_SEED = 0
#: Bootstrap resamplings of the real features are drawn with this seed.
BOOTSTRAP_SEED = 0
EVAL_STD_SUFFIX, EVAL_N_SUFFIX = "_eval_std", "_eval_n"


def real_subset_indices(size: int, n_real: int | None, repeat: int) -> torch.Tensor | None:
    """Which images of a split of ``size`` the ``repeat``-th evaluation compares with: the first ``n_real`` of a
    permutation seeded REAL_SUBSET_SEED + repeat; None: all of them (``n_real`` None)."""
    if n_real is None:
        return None
    if n_real > size:
        raise GenbenchError(f"n_real = {n_real} but the reference split has {size} images; lower n_real")
    permutation = torch.randperm(size, generator=torch.Generator().manual_seed(REAL_SUBSET_SEED + repeat))
    return permutation[:n_real]


def bootstrap_indices(size: int, resamples: int) -> list[torch.Tensor]:
    """``resamples`` draws of ``size`` indices with replacement, seeded BOOTSTRAP_SEED."""
    generator = torch.Generator().manual_seed(BOOTSTRAP_SEED)
    return [torch.randint(0, size, (size,), generator=generator) for _ in range(resamples)]


def evaluation_summary(column: str, values: list[float], *, kind: str) -> tuple[dict[str, float], dict[str, Any]]:
    """A column evaluated several times: its mean (the column), the sample standard deviation (``_eval_std``)
    and the number of evaluations (``_eval_n``); one value is written as it is. ``kind`` says what varied."""
    if len(values) == 1:
        return {column: values[0]}, {}
    mean = sum(values) / len(values)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
    written = {column: mean, column + EVAL_STD_SUFFIX: std, column + EVAL_N_SUFFIX: float(len(values))}
    # "evaluations" holds what was measured (not how): the report's protocol check leaves it out.
    return written, {"evaluation_noise": kind, "evaluations": {column: values}}


def evaluation_summaries(values: dict[str, list[float]], *, kind: str) -> tuple[dict[str, float], dict[str, Any]]:
    """``evaluation_summary`` for a metric of several columns measured together (precision and recall, density and
    coverage): every column's values, with one ``evaluations`` entry holding each column's list."""
    written: dict[str, float] = {}
    noise: dict[str, Any] = {}
    for column, measured in values.items():
        column_written, column_noise = evaluation_summary(column, measured, kind=kind)
        written.update(column_written)
        if column_noise:
            noise = {**column_noise, "evaluations": {**noise.get("evaluations", {}), **column_noise["evaluations"]}}
    return written, noise


def evaluation_columns(column: str, unit: str) -> tuple[genbench.Column, genbench.Column]:
    """The two columns a repeated evaluation adds beside ``column``: never ranked, written only when repeated."""
    return (
        genbench.Column(column + EVAL_STD_SUFFIX, unit, False, "spread over repeated evaluations", optional=True),
        genbench.Column(column + EVAL_N_SUFFIX, "count", True, "repeated evaluations", optional=True),
    )


def validate(config: SampleFeatureConfig, metric: str) -> None:
    if config.extractor is not None and not isinstance(config.extractor, str):
        raise GenbenchError(f"{metric}: extractor must be a name like 'inception', got {config.extractor!r}")
    if config.n_samples is not None and (not isinstance(config.n_samples, int) or config.n_samples < 2):
        raise GenbenchError(f"{metric}: n_samples must be an integer of at least 2, got {config.n_samples!r}")
    if config.batch_size < 1:
        raise GenbenchError(f"{metric}: batch_size must be at least 1, got {config.batch_size}")
    if config.inception_weights is not None and not isinstance(config.inception_weights, str):
        raise GenbenchError(f"{metric}: inception_weights must be a path, got {config.inception_weights!r}")
    if not isinstance(config.repeats, int) or config.repeats < 1:
        raise GenbenchError(f"{metric}: repeats must be an integer of at least 1, got {config.repeats!r}")
    split = getattr(config, "reference_split", "test")
    if split not in REFERENCE_SPLITS:
        raise GenbenchError(f"{metric}: reference_split must be 'train' or 'test', got {split!r}")


def reference_batch_size(config: FeatureMetricConfig, ctx: EvalContext) -> int:
    """Real images per extractor pass: ``config.batch_size`` on the CPU, sized from free memory on CUDA.

    Only the real images' batches grow: their features do not depend on how they are batched, while generated
    images come from one generator whose draws follow the batches, so their batch stays ``config.batch_size``.
    """
    return eval_batch_size(ctx.device, FEATURE_BYTES_PER_IMAGE, config.batch_size)


def real_features(
    extractor: FeatureExtractor, config: FeatureMetricConfig, ctx: EvalContext
) -> tuple[torch.Tensor, dict[str, Any]]:
    """The cached features of the reference split (``config.reference_split``), and how they were obtained."""
    return reference_features(
        extractor,
        ctx.dataset,
        config.reference_split,
        reference_batch_size(config, ctx),
        ctx.cache_dir,
        progress=ctx.progress,
    )


def check_extractor(config: SampleFeatureConfig, ctx: EvalContext, metric: str) -> None:
    """Before any cell runs: the options are valid, the extractor exists and says it can load for this data."""
    validate(config, metric)
    spec = ctx.registry.extractor(extractor_name(config, ctx))
    if spec.check is not None:
        spec.check(ctx.dataset, ctx)


def extractor_check(default: Callable[[], SampleFeatureConfig], metric: str) -> Callable[[EvalContext], None]:
    """A sample-feature metric's prepare-time check (``MetricSpec.check``): its options, and that its extractor
    exists and can load for the data, before any cell trains."""

    def check(ctx: EvalContext) -> None:
        config = ctx.config if isinstance(ctx.config, SampleFeatureConfig) else default()
        check_extractor(config, ctx, metric)

    return check


def shared_extractor(config: SampleFeatureConfig, ctx: EvalContext) -> FeatureExtractor:
    """The extractor for this cell, loaded once however many metrics use it."""
    name = extractor_name(config, ctx)
    extractor: FeatureExtractor = ctx.remember(
        f"genbench_fid extractor {name} {config.inception_weights!r}", lambda: load_extractor(name, ctx)
    )
    check_above_chance(extractor, ctx)
    return extractor


def chance_level(labels: torch.Tensor) -> float:
    """The accuracy of always answering the most frequent label: what a classifier that learned nothing scores."""
    return float(torch.bincount(labels.long()).max()) / len(labels)


def check_above_chance(extractor: FeatureExtractor, ctx: EvalContext) -> None:
    """An extractor trained on the data's labels whose test accuracy is not clearly above chance (within three
    binomial standard errors of it) has features that say nothing about the images: its metrics are N/A."""
    accuracy = extractor.identity.get("test_accuracy")
    labels = ctx.dataset.test.labels
    if not isinstance(accuracy, float) or labels is None or len(labels) == 0:
        return
    chance = chance_level(labels)
    margin = 3 * math.sqrt(chance * (1 - chance) / len(labels))
    if accuracy <= chance + margin:
        raise genbench.NotApplicable(
            f"extractor {extractor.name!r} classifies the test split at {accuracy:.1%}, not above chance "
            f"({chance:.1%} + {margin:.1%}): its features carry no information about the images"
        )


def shared_sample_features(
    model: GenerativeModel, extractor: FeatureExtractor, config: SampleFeatureConfig, ctx: EvalContext
) -> torch.Tensor:
    """Features of ``n_samples`` generated images, sampled once per cell for every metric that asks alike."""
    return shared_sample_outputs(model, extractor, config, ctx).features


def shared_sample_outputs(
    model: GenerativeModel, extractor: FeatureExtractor, config: SampleFeatureConfig, ctx: EvalContext
) -> SampleOutputs:
    """Features and logits of ``n_samples`` x ``repeats`` generated images (the repeats' sets one after another),
    computed once per cell for every metric that asks alike."""
    n = sample_count(config, ctx) * config.repeats
    key = f"genbench_fid sample features {extractor.identity} n={n} batch={config.batch_size}"
    outputs: SampleOutputs = ctx.remember(key, lambda: _sample_outputs(model, extractor, n, config.batch_size, ctx))
    return outputs


def _sample_outputs(
    model: GenerativeModel, extractor: FeatureExtractor, n: int, batch_size: int, ctx: EvalContext
) -> SampleOutputs:
    shape = ctx.dataset.test.shape
    joint = extractor.features
    if not isinstance(joint, FeaturesWithLogits):
        features = generated_features(model, extractor, n, batch_size, ctx.generator, shape, progress=ctx.progress)
        return SampleOutputs(features, None, None)
    widths: list[int] = []

    def concatenated(images: torch.Tensor) -> torch.Tensor:
        # One tensor per batch through the core's sampling loop (which checks every sample), split after.
        features, logits = joint.both(images)
        widths.append(features.shape[1])
        return torch.cat([features, logits], dim=1)

    combined = FeatureExtractor(extractor.name, concatenated, extractor.identity)
    both = generated_features(model, combined, n, batch_size, ctx.generator, shape, progress=ctx.progress)
    d = widths[0]
    return SampleOutputs(both[:, :d].contiguous(), both[:, d:].contiguous(), joint.logits_description)


@dataclass(frozen=True)
class EvaluationSets:
    """The feature sets of a metric's evaluations: per evaluation its generated and its real features, the real
    features before any bootstrap resampling, and how the real ones were chosen (for the provenance)."""

    fake: list[torch.Tensor]
    real: list[torch.Tensor]
    unresampled_real: torch.Tensor
    provenance: dict[str, Any]

    @property
    def kind(self) -> str:
        """What varies between the evaluations, for the record."""
        if len(self.real) > len(self.fake):
            return f"bootstrap: {len(self.real)} resamplings of the real features with replacement"
        fresh_real = ", a fresh real subset" if self.provenance["real_subset"] != "all" else ""
        return f"repeats: fresh generated images{fresh_real} per evaluation"


def evaluation_sets(
    model: GenerativeModel, extractor: FeatureExtractor, config: FeatureMetricConfig, ctx: EvalContext
) -> EvaluationSets:
    """The generated features split into ``repeats`` sets, and the real features of each evaluation: all of the
    reference split, the repeat's seeded subset of ``n_real`` images, or ``bootstrap`` resamplings."""
    fake_all = shared_sample_features(model, extractor, config, ctx)
    n_fake = len(fake_all) // config.repeats
    fakes = [fake_all[i * n_fake : (i + 1) * n_fake] for i in range(config.repeats)]
    real, info = real_features(extractor, config, ctx)
    chosen = [real_subset_indices(len(real), config.n_real, repeat) for repeat in range(config.repeats)]
    reals = [real if index is None else real[index] for index in chosen]
    unresampled = reals[0]
    if config.bootstrap:
        reals = [unresampled[index] for index in bootstrap_indices(len(unresampled), config.bootstrap)]
    provenance = {
        "n_real": len(unresampled),
        "n_fake": n_fake,
        "reference": f"{ctx.dataset.name} {config.reference_split} split, fingerprint {info['fingerprint']}",
        "reference_split": config.reference_split,
        "real_subset": "all"
        if config.n_real is None
        else f"first {config.n_real} of torch.randperm seeded {REAL_SUBSET_SEED} + repeat",
        "reference_features_key": info["cache_key"],
        "repeats": config.repeats,
    }
    if config.bootstrap:
        provenance["bootstrap"] = config.bootstrap
    return EvaluationSets(fakes, reals, unresampled, provenance)


def pairs(sets: EvaluationSets) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(generated, real) features of each evaluation: one generated set against every bootstrap resampling."""
    if len(sets.real) > len(sets.fake):
        return [(sets.fake[0], real) for real in sets.real]
    return list(zip(sets.fake, sets.real, strict=True))
