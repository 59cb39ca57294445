"""``density_coverage`` (Naeem et al. 2020): the authors' package ``prdc`` gives the same numbers on the same
features; a set against itself has density 1 and coverage 1; the k-NN balls are the ones precision/recall uses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

import genbench
from conftest import Replay
from genbench import Dataset, EvalContext
from genbench.registry import METRIC, Registry
from genbench.toolkit.neighbours import (
    ball_membership,
    density_and_coverage,
    kth_neighbour_distances,
    nearest_distances,
)
from genbench_fid.metric_density_coverage import DensityCoverageConfig, compute_density_coverage


def gaussian(n: int, d: int, seed: int, shift: float = 0.0, scale: float = 1.0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=generator, dtype=torch.float64) * scale + shift


def reference_prdc(real: torch.Tensor, fake: torch.Tensor, k: int) -> dict[str, float]:
    from prdc import compute_prdc

    return {key: float(value) for key, value in compute_prdc(real.numpy(), fake.numpy(), k).items()}


@pytest.mark.parametrize(
    ("n_real", "n_fake", "shift", "scale", "k"),
    [(300, 200, 0.0, 1.0, 5), (250, 300, 0.5, 1.0, 5), (200, 150, 0.0, 0.6, 3), (150, 250, 1.0, 1.5, 10)],
)
def test_density_and_coverage_equal_prdcs_on_the_same_features(
    n_real: int, n_fake: int, shift: float, scale: float, k: int
) -> None:
    real, fake = gaussian(n_real, 16, 0), gaussian(n_fake, 16, 1, shift, scale)
    expected = reference_prdc(real, fake, k)
    density, coverage = density_and_coverage(real, fake, k, block=64)
    assert density == pytest.approx(expected["density"], abs=1e-6)
    assert coverage == pytest.approx(expected["coverage"], abs=1e-6)
    assert expected["density"] > 0 and 0 < expected["coverage"] < 1  # no case is trivially 0 or 1


def test_the_same_balls_give_prdcs_precision_and_recall() -> None:
    """One piece of code for the k-NN balls: precision and recall of Kynkäänniemi et al. come out of them too."""
    real, fake, k = gaussian(200, 8, 2), gaussian(180, 8, 3, shift=0.4), 5
    expected = reference_prdc(real, fake, k)
    precision = float((ball_membership(fake, real, kth_neighbour_distances(real, k)) > 0).double().mean())
    recall = float((ball_membership(real, fake, kth_neighbour_distances(fake, k)) > 0).double().mean())
    assert precision == pytest.approx(expected["precision"], abs=1e-6)
    assert recall == pytest.approx(expected["recall"], abs=1e-6)


def test_a_set_against_itself_has_density_one_and_coverage_one() -> None:
    features = gaussian(400, 32, 4)
    density, coverage = density_and_coverage(features, features.clone(), k=5)
    assert density == pytest.approx(1.0, abs=1e-12)
    assert coverage == 1.0


def test_samples_crowded_into_one_mode_are_dense_but_cover_little() -> None:
    real = gaussian(400, 4, 5)
    collapsed = gaussian(400, 4, 6, scale=0.1)  # everything near the real data's densest point
    density, coverage = density_and_coverage(real, collapsed, k=5)
    assert density > 1.1 and coverage < 0.2


def test_far_samples_have_density_and_coverage_zero() -> None:
    assert density_and_coverage(gaussian(100, 4, 7), gaussian(100, 4, 8, shift=50.0), k=5) == (0.0, 0.0)


def test_blocks_do_not_change_the_answer() -> None:
    real, fake = gaussian(130, 8, 9), gaussian(90, 8, 10, shift=0.3)
    assert density_and_coverage(real, fake, 5, block=7) == density_and_coverage(real, fake, 5, block=1000)
    # Distances round differently with the block's shape (BLAS), in the last bits only.
    radii = kth_neighbour_distances(real, 3, block=11), kth_neighbour_distances(real, 3, block=500)
    assert torch.allclose(*radii, rtol=1e-12, atol=0)
    nearest = nearest_distances(fake, real, block=5), nearest_distances(fake, real, block=500)
    assert torch.allclose(*nearest, rtol=1e-12, atol=0)


def test_k_must_leave_neighbours() -> None:
    with pytest.raises(ValueError, match=r"k must be in \[1, 9\]"):
        kth_neighbour_distances(gaussian(10, 2, 0), 10)


# --------------------------------------------------------------------------------------------- the metric


def context(dataset: Dataset, registry: Registry, cache: Path, **options: Any) -> EvalContext:
    generator = torch.Generator().manual_seed(0)
    config = DensityCoverageConfig(**options)
    return EvalContext(dataset, torch.device("cpu"), 0, generator, config, registry, cache)


def test_replayed_test_images_score_near_one_and_noise_near_zero(
    digits: Dataset, registry: Registry, shared_cache: Path
) -> None:
    real = compute_density_coverage(Replay(digits.test.images), context(digits, registry, shared_cache))
    noise_images = torch.randint(17, (400, 1, 8, 8), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    noise = compute_density_coverage(Replay(noise_images), context(digits, registry, shared_cache))
    assert real.values["density"] == pytest.approx(1.0, abs=0.25)
    # Drawn with replacement, about 1 - 1/e of the real images are replayed, but a ball also holds neighbours.
    assert real.values["coverage"] > 0.9
    assert noise.values["density"] < real.values["density"] / 3
    assert noise.values["coverage"] < real.values["coverage"] / 3
    provenance = real.provenance
    assert provenance["extractor"] == "classifier" and provenance["neighborhood"] == 5
    assert provenance["n_real"] == len(digits.test) and provenance["n_fake"] == len(digits.test)


def test_the_metric_equals_prdc_on_the_features_it_used(
    digits: Dataset, registry: Registry, shared_cache: Path
) -> None:
    from genbench_fid.sample_features import real_features, shared_extractor, shared_sample_features

    model = Replay(digits.train.images)
    ctx = context(digits, registry, shared_cache, n_samples=200)
    result = compute_density_coverage(model, ctx)
    extractor = shared_extractor(ctx.config, ctx)
    real, _ = real_features(extractor, ctx.config, ctx)
    fake = shared_sample_features(model, extractor, ctx.config, ctx)  # the cell's memo: the same samples
    expected = reference_prdc(real, fake, 5)
    assert result.values["density"] == pytest.approx(expected["density"], abs=1e-6)
    assert result.values["coverage"] == pytest.approx(expected["coverage"], abs=1e-6)


def test_the_metric_is_registered_with_its_columns(registry: Registry) -> None:
    spec = registry.get(METRIC, "density_coverage")
    columns = {column.name: column for column in spec.columns}
    assert columns["density"].higher_is_better and columns["coverage"].higher_is_better
    assert spec.requires_any == frozenset({genbench.SAMPLE})
    assert DensityCoverageConfig().neighborhood == 5
