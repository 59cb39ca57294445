"""``precision_recall``: improved precision and recall of Kynkäänniemi, Karras, Laine, Lehtinen & Aila (2019),
"Improved Precision and Recall Metric for Assessing Generative Models".

Each set of features stands for its manifold: the union of balls around its points, each ball reaching to the
point's k-th nearest neighbour in its own set (k = 3 in the paper). Precision is the share of generated images
inside the real manifold (are samples realistic?); recall, the share of real images inside the generated
manifold (is the data covered?). A set compared with itself scores 1 and 1.

The distances and the ball test are torch-fidelity's ``calculate_precision_recall_part`` (blocks of
``distance_batch`` rows, so memory stays bounded on 50,000 reference images), on the same shared samples and
features as FID and KID.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from genbench import EvalContext, GenbenchError, GenerativeModel, MetricResult
from genbench.toolkit.checks import require_at_least
from genbench_fid.sample_features import (
    FeatureMetricConfig,
    evaluation_sets,
    evaluation_summaries,
    pairs,
    shared_extractor,
    validate,
)

KEY_METRIC_PRECISION = "precision"
KEY_METRIC_RECALL = "recall"


@dataclass
class PrecisionRecallConfig(FeatureMetricConfig):
    neighborhood: int = 3  # k of the k-th nearest neighbour that sets each ball's radius, as Kynkäänniemi et al.
    distance_batch: int = 2000  # rows of the distance matrix computed at once; bounds memory, not the result

    def __post_init__(self) -> None:
        super().__post_init__()
        require_at_least(self, 1, "neighborhood", "distance_batch")


def precision_recall(
    fake: torch.Tensor, real: torch.Tensor, neighborhood: int, distance_batch: int
) -> tuple[float, float]:
    """(precision, recall) of generated features ``fake`` (n, d) against real features ``real`` (m, d)."""
    from torch_fidelity.metric_prc import calculate_precision_recall_part

    precision, recall = calculate_precision_recall_part(fake, real, neighborhood, distance_batch)
    return float(precision), float(recall)


def compute_precision_recall(model: GenerativeModel, ctx: EvalContext) -> MetricResult:
    config = ctx.config if isinstance(ctx.config, PrecisionRecallConfig) else PrecisionRecallConfig()
    validate(config, "precision_recall")
    extractor = shared_extractor(config, ctx)
    sets = evaluation_sets(model, extractor, config, ctx)
    if min(len(sets.real[0]), len(sets.fake[0])) <= config.neighborhood:
        raise GenbenchError(
            f"precision_recall: needs more than neighborhood={config.neighborhood} images on each side, got "
            f"{len(sets.fake[0])} generated and {len(sets.real[0])} real"
        )

    def measured(fake: torch.Tensor, real: torch.Tensor) -> tuple[float, float]:
        return precision_recall(fake.to(ctx.device), real.to(ctx.device), config.neighborhood, config.distance_batch)

    results = [measured(fake, real) for fake, real in pairs(sets)]
    written, noise = evaluation_summaries(
        {KEY_METRIC_PRECISION: [p for p, _ in results], KEY_METRIC_RECALL: [r for _, r in results]}, kind=sets.kind
    )
    if config.bootstrap:
        written[KEY_METRIC_PRECISION], written[KEY_METRIC_RECALL] = measured(sets.fake[0], sets.unresampled_real)
    provenance = {
        "extractor": extractor.name,
        "extractor_identity": extractor.identity,
        **sets.provenance,
        "neighborhood": config.neighborhood,
        "implementation": "torch_fidelity.metric_prc.calculate_precision_recall_part",
        "batch_size": config.batch_size,
        **noise,
    }
    return MetricResult(written, provenance)
