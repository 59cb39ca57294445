"""``is``: the Inception Score of Salimans, Goodfellow, Zaremba, Cheung, Radford & Chen (2016), "Improved
Techniques for Training GANs".

    IS = exp( E_x KL( p(y|x) || p(y) ) ),  p(y) the mean of p(y|x) over the generated images,

computed on each of ``splits`` equal parts of the samples (10 in the paper) and reported as the mean over parts,
with their standard deviation beside it. It lies between 1 (every image gets the same class distribution) and the
number of classes (each image confidently one class, all classes equally often). It looks at generated images
only, so it rewards confident, varied classes, not likeness to the data.

The arithmetic is torch-fidelity's ``isc_features_to_metric`` (softmax of the logits in float64, the samples
shuffled with its fixed seed 2020 before splitting), so the numbers match torch-fidelity's on the same logits.
With the ``inception`` extractor the logits are torch-fidelity's ``logits_unbiased`` of InceptionV3 (1008
classes), the variant of the original code; with ``classifier`` they are the domain classifier's own head.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from genbench import EvalContext, GenbenchError, GenerativeModel, MetricResult
from genbench.toolkit.checks import require_at_least
from genbench_fid.sample_features import (
    SampleFeatureConfig,
    evaluation_summary,
    shared_extractor,
    shared_sample_outputs,
    validate,
)

KEY_METRIC_IS_MEAN = "is"
KEY_METRIC_IS_STD = "is_std"
#: torch-fidelity's default seed for the shuffle before splitting; fixed, so a cell's score is reproducible.
SHUFFLE_SEED = 2020


@dataclass
class IsConfig(SampleFeatureConfig):
    splits: int = 10  # parts the samples are scored in, as Salimans et al.; the spread over them is is_std

    def __post_init__(self) -> None:
        super().__post_init__()
        require_at_least(self, 1, "splits")


def inception_score(logits: torch.Tensor, splits: int, *, shuffle: bool = True) -> tuple[float, float]:
    """Mean and standard deviation over ``splits`` parts of exp(E KL(p(y|x) || p(y))), from logits (n, classes)."""
    from torch_fidelity.metric_isc import KEY_METRIC_ISC_MEAN, KEY_METRIC_ISC_STD, isc_features_to_metric

    result = isc_features_to_metric(logits, splits=splits, shuffle=shuffle, rng_seed=SHUFFLE_SEED)
    return float(result[KEY_METRIC_ISC_MEAN]), float(result[KEY_METRIC_ISC_STD])


def compute_is(model: GenerativeModel, ctx: EvalContext) -> MetricResult:
    config = ctx.config if isinstance(ctx.config, IsConfig) else IsConfig()
    validate(config, KEY_METRIC_IS_MEAN)
    extractor = shared_extractor(config, ctx)
    outputs = shared_sample_outputs(model, extractor, config, ctx)
    if outputs.logits is None:
        raise GenbenchError(
            f"is: feature extractor {extractor.name!r} gives no class logits; use extractor 'inception' or 'classifier'"
        )
    if len(outputs.logits) < 2 * config.splits * config.repeats:
        raise GenbenchError(
            f"is: {len(outputs.logits)} samples cannot fill {config.splits} splits of at least 2; raise n_samples"
        )
    n_fake = len(outputs.logits) // config.repeats
    scores = [
        inception_score(outputs.logits[i * n_fake : (i + 1) * n_fake], config.splits) for i in range(config.repeats)
    ]
    kind = "repeats: fresh generated images per evaluation"
    written, noise = evaluation_summary(KEY_METRIC_IS_MEAN, [mean for mean, _ in scores], kind=kind)
    # is_std keeps its meaning, the spread over splits within one evaluation (averaged over evaluations).
    written[KEY_METRIC_IS_STD] = sum(std for _, std in scores) / len(scores)
    provenance = {
        "extractor": extractor.name,
        "extractor_identity": extractor.identity,
        "logits": outputs.logits_description,
        "n_fake": n_fake,
        "splits": config.splits,
        "repeats": config.repeats,
        "shuffle_seed": SHUFFLE_SEED,
        "implementation": "torch_fidelity.metric_isc.isc_features_to_metric",
        "batch_size": config.batch_size,
        **noise,
    }
    return MetricResult(written, provenance)
