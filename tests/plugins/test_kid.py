"""KID: the estimator against its definition, its unbiasedness, and the ``kid`` metric end to end.

The metric tests use a ``pixels`` extractor that this module provides as a plugin (loaded with -p, as a third
party's would be), so they need no trained network.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import torch

import genbench
from genbench import Dataset, EvalContext, FitContext, GenbenchError
from genbench.registry import Registry, load_plugins
from genbench.toolkit.stats import kernel_inception_distance
from genbench_fid.metric_kid import KidConfig, compute_kid
from genbench_independent import IndependentConfig, IndependentPixels

Array = npt.NDArray[np.float64]


def polynomial_kernel(x: Array, y: Array) -> float:
    return float((x @ y / len(x) + 1.0) ** 3)


def mmd2_by_definition(x: Array, y: Array) -> float:
    """Binkowski et al. (2018), eq. (4), written as the double sums over distinct pairs."""
    m = len(x)
    within_x = sum(polynomial_kernel(x[i], x[j]) for i, j in itertools.permutations(range(m), 2))
    within_y = sum(polynomial_kernel(y[i], y[j]) for i, j in itertools.permutations(range(m), 2))
    between = sum(polynomial_kernel(x[i], y[j]) for i, j in itertools.product(range(m), repeat=2))
    return (within_x + within_y) / (m * (m - 1)) - 2 * between / (m * m)


def test_one_subset_of_everything_is_the_estimator_by_definition() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((12, 5)), rng.standard_normal((12, 5)) + 0.3
    mean, std = kernel_inception_distance(x, y, subset_size=12, subsets=1)
    assert mean == pytest.approx(mmd2_by_definition(x, y), rel=1e-10)
    assert std == 0.0


def test_kid_is_unbiased_for_one_distribution() -> None:
    """Averaged over many independent pairs of sets from one distribution, KID is 0 within its standard error;
    the biased estimator (keeping the kernel's diagonal) is clearly positive on the same pairs, so this test
    would see a bias of that size."""
    rng = np.random.default_rng(1)
    unbiased, biased = [], []
    for _ in range(300):
        x, y = rng.standard_normal((20, 4)), rng.standard_normal((20, 4))
        unbiased.append(kernel_inception_distance(x, y, subset_size=20, subsets=1, seed=rng)[0])
        kxx, kyy, kxy = ((a @ b.T / 4 + 1) ** 3 for a, b in ((x, x), (y, y), (x, y)))
        biased.append(kxx.mean() + kyy.mean() - 2 * kxy.mean())
    standard_error = np.std(unbiased) / np.sqrt(len(unbiased))
    assert abs(np.mean(unbiased)) < 3 * standard_error
    assert np.mean(biased) > 10 * standard_error


def test_kid_is_positive_between_different_distributions() -> None:
    rng = np.random.default_rng(2)
    x, y, z = rng.standard_normal((400, 16)), rng.standard_normal((400, 16)), rng.standard_normal((400, 16))
    different, spread = kernel_inception_distance(x, y * 1.5 + 0.5, subset_size=100, subsets=50)
    same, _ = kernel_inception_distance(x, z, subset_size=100, subsets=50)
    assert different > 5 * spread > 0
    assert different > 20 * abs(same)


def test_the_seed_makes_kid_reproducible() -> None:
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((100, 8)), rng.standard_normal((100, 8))
    assert kernel_inception_distance(x, y, 30, 10, seed=7) == kernel_inception_distance(x, y, 30, 10, seed=7)


@pytest.mark.parametrize(
    ("shapes", "subset_size", "subsets", "message"),
    [
        (((10, 3), (10, 4)), 5, 1, "features"),
        (((10, 3), (8, 3)), 9, 1, r"subset_size must be in \[2, 8\]"),
        (((10, 3), (10, 3)), 5, 0, "subsets must be at least 1"),
    ],
)
def test_bad_arguments_are_rejected(
    shapes: tuple[tuple[int, int], tuple[int, int]], subset_size: int, subsets: int, message: str
) -> None:
    x, y = (np.zeros(shape) for shape in shapes)
    with pytest.raises(ValueError, match=message):
        kernel_inception_distance(x, y, subset_size, subsets)


# ------------------------------------------------------------------------------------------- the metric


def pixel_features(dataset: Dataset, ctx: EvalContext) -> tuple[Callable[[torch.Tensor], torch.Tensor], dict[str, Any]]:
    levels = dataset.train.levels
    return lambda images: images.flatten(1).double() / (levels - 1), {"network": "raw pixels in [0, 1]"}


@genbench.hookimpl
def genbench_feature_extractors() -> list[genbench.ExtractorSpec]:
    return [genbench.ExtractorSpec("pixels", "raw pixels, for tests", pixel_features)]


@pytest.fixture
def registry_with_pixels() -> Registry:
    return load_plugins([__name__])


def kid_of(model: Any, dataset: Dataset, registry: Registry, cache: Path, **options: Any) -> genbench.MetricResult:
    config = KidConfig(extractor="pixels", **options)
    generator = torch.Generator().manual_seed(0)
    return compute_kid(model, EvalContext(dataset, torch.device("cpu"), 0, generator, config, registry, cache))


def test_a_fitted_model_has_a_lower_kid_than_an_untrained_one(
    digits: Dataset, registry_with_pixels: Registry, tmp_path: Path
) -> None:
    fitted, untrained = (
        IndependentPixels(IndependentConfig(), digits.info),
        IndependentPixels(IndependentConfig(), digits.info),
    )
    fitted.fit(digits.train, FitContext(torch.device("cpu"), 0, torch.Generator().manual_seed(0)))
    good = kid_of(fitted, digits, registry_with_pixels, tmp_path, subset_size=100, subsets=20)
    bad = kid_of(untrained, digits, registry_with_pixels, tmp_path, subset_size=100, subsets=20)
    assert 0 < good.values["kid"] < bad.values["kid"] / 5
    assert good.provenance["n_real"] == len(digits.test)
    assert good.provenance["n_fake"] == len(digits.test)  # the default: as many as the test split has
    assert good.provenance["subset_size"] == 100
    assert good.provenance["extractor"] == "pixels"
    assert good.provenance["reference_features_key"] == bad.provenance["reference_features_key"]


def test_subsets_take_at_most_half_the_smaller_set(
    digits: Dataset, registry_with_pixels: Registry, tmp_path: Path
) -> None:
    model = IndependentPixels(IndependentConfig(), digits.info)
    result = kid_of(model, digits, registry_with_pixels, tmp_path, n_samples=50, subsets=5)
    assert result.provenance["subset_size"] == 25
    assert result.values["kid_std"] > 0


def test_bad_subset_options_are_a_user_error(digits: Dataset, registry_with_pixels: Registry, tmp_path: Path) -> None:
    model = IndependentPixels(IndependentConfig(), digits.info)
    with pytest.raises(GenbenchError, match="subset_size must be at least 2"):
        kid_of(model, digits, registry_with_pixels, tmp_path, subset_size=1)
