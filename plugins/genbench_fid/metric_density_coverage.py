"""``density_coverage``: density and coverage of Naeem, Oh, Uh, Choi & Yoo (2020), "Reliable Fidelity and
Diversity Metrics for Generative Models".

They mend what precision and recall get wrong with outliers: both are measured against balls around the real
features only (each reaching to the k-th nearest real neighbour, k = 5 as the authors use), so a few far-off
samples cannot blow up the generated manifold. Density (fidelity) counts how many real balls hold each sample,
divided by k: about 1 when samples are distributed like the data, above 1 when they crowd into its dense regions,
below when they fall outside. Coverage (diversity) is the share of real balls that hold at least one sample: 1 when
every real neighbourhood is reached. A set compared with itself has density 1 and coverage 1.

The neighbour arithmetic is ``genbench.toolkit.neighbours`` (float64, in blocks), checked against the authors'
package ``prdc`` in the tests, on the same shared samples and features as FID, KID and precision/recall.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from genbench import EvalContext, GenbenchError, GenerativeModel, MetricResult
from genbench.toolkit.checks import require_at_least
from genbench.toolkit.neighbours import density_and_coverage
from genbench_fid.sample_features import (
    FeatureMetricConfig,
    evaluation_sets,
    evaluation_summaries,
    pairs,
    shared_extractor,
    validate,
)

KEY_METRIC_DENSITY_COVERAGE = "density_coverage"
KEY_METRIC_DENSITY = "density"
KEY_METRIC_COVERAGE = "coverage"


@dataclass
class DensityCoverageConfig(FeatureMetricConfig):
    neighborhood: int = 5  # k of the real balls' radii: 5, as Naeem et al. (2020) and their prdc package use
    distance_batch: int = 2000  # rows of the distance matrix computed at once; bounds memory, not the result

    def __post_init__(self) -> None:
        super().__post_init__()
        require_at_least(self, 1, "neighborhood", "distance_batch")


def compute_density_coverage(model: GenerativeModel, ctx: EvalContext) -> MetricResult:
    config = ctx.config if isinstance(ctx.config, DensityCoverageConfig) else DensityCoverageConfig()
    validate(config, KEY_METRIC_DENSITY_COVERAGE)
    extractor = shared_extractor(config, ctx)
    sets = evaluation_sets(model, extractor, config, ctx)
    if len(sets.real[0]) <= config.neighborhood:
        raise GenbenchError(
            f"density_coverage: needs more than neighborhood={config.neighborhood} real images, got {len(sets.real[0])}"
        )

    def measured(fake: torch.Tensor, real: torch.Tensor) -> tuple[float, float]:
        return density_and_coverage(
            real.to(ctx.device), fake.to(ctx.device), config.neighborhood, config.distance_batch
        )

    results = [measured(fake, real) for fake, real in pairs(sets)]
    written, noise = evaluation_summaries(
        {KEY_METRIC_DENSITY: [d for d, _ in results], KEY_METRIC_COVERAGE: [c for _, c in results]}, kind=sets.kind
    )
    if config.bootstrap:
        written[KEY_METRIC_DENSITY], written[KEY_METRIC_COVERAGE] = measured(sets.fake[0], sets.unresampled_real)
    provenance = {
        "extractor": extractor.name,
        "extractor_identity": extractor.identity,
        **sets.provenance,
        "neighborhood": config.neighborhood,
        "implementation": "genbench.toolkit.neighbours.density_and_coverage (equal to prdc 0.2's compute_prdc)",
        "batch_size": config.batch_size,
        **noise,
    }
    return MetricResult(written, provenance)
