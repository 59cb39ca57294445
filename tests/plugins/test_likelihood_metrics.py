"""nll, bpd and sample_time against cases with known answers."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import pytest
import torch

from genbench import DataInfo, EvalContext, FitContext, ImageData, NotApplicable
from genbench.toolkit.data import make_dataset
from genbench.toolkit.stats import bits_per_dim, log_mean_exp
from genbench_independent import IndependentConfig, IndependentPixels
from genbench_likelihood import NllConfig, bpd_metric, nll_metric
from genbench_sample_time import SampleTimeConfig, seconds_per_image


def eval_context(test: ImageData, registry, tmp_path: Path, config: object = None) -> EvalContext:  # type: ignore[no-untyped-def]
    dataset = make_dataset("toy", test, test, source="test", split="none")
    return EvalContext(dataset, torch.device("cpu"), 0, torch.Generator().manual_seed(0), config, registry, tmp_path)


def random_images(n: int, levels: int, shape: tuple[int, int, int] = (1, 4, 4)) -> ImageData:
    images = torch.randint(0, levels, (n, *shape), generator=torch.Generator().manual_seed(1), dtype=torch.uint8)
    return ImageData(images, levels)


@pytest.mark.parametrize("levels", [2, 17, 256])
def test_uniform_model_scores_exactly_log2_levels_bits_per_dim(levels: int, registry, tmp_path: Path) -> None:
    test = random_images(50, levels)
    uniform = IndependentPixels(IndependentConfig(), DataInfo(test.shape, levels))  # untrained: uniform
    result = bpd_metric(uniform, eval_context(test, registry, tmp_path, NllConfig()))
    assert result.values["bpd"] == pytest.approx(math.log2(levels), rel=1e-6)
    assert result.provenance["method"] == "exact log-likelihood"


def test_independent_is_normalized_over_every_image_of_a_tiny_space() -> None:
    levels, shape = 3, (1, 2, 2)
    train = random_images(20, levels, shape)
    model = IndependentPixels(IndependentConfig(), DataInfo(shape, levels))
    model.fit(train, FitContext(torch.device("cpu"), 0, torch.Generator().manual_seed(0)))
    every_image = torch.tensor(list(itertools.product(range(levels), repeat=4)), dtype=torch.uint8).reshape(-1, *shape)
    assert model.log_likelihood(every_image).double().exp().sum().item() == pytest.approx(1.0, abs=1e-6)


def test_add_one_smoothing_matches_counting_by_hand() -> None:
    images = torch.tensor([0, 0, 1], dtype=torch.uint8).reshape(3, 1, 1, 1)
    model = IndependentPixels(IndependentConfig(), DataInfo((1, 1, 1), 2))
    model.fit(ImageData(images, 2), FitContext(torch.device("cpu"), 0, torch.Generator()))
    # Counts (2, 1) plus one each over 3 + 2 observations: p = (3/5, 2/5).
    expected = torch.tensor([math.log(3 / 5), math.log(2 / 5)])
    assert torch.allclose(model.log_likelihood(torch.tensor([0, 1], dtype=torch.uint8).reshape(2, 1, 1, 1)), expected)


def test_samples_follow_the_fitted_probabilities() -> None:
    images = torch.tensor([0, 1, 1, 1], dtype=torch.uint8).reshape(4, 1, 1, 1)
    # A vanishing pseudocount: the maximum-likelihood fit (0 itself is refused, it gives unseen values log 0).
    model = IndependentPixels(IndependentConfig(pseudocount=1e-9), DataInfo((1, 1, 1), 2))
    model.fit(ImageData(images, 2), FitContext(torch.device("cpu"), 0, torch.Generator()))
    samples = model.sample(20000, torch.Generator().manual_seed(0))
    assert samples.dtype == torch.uint8 and samples.shape == (20000, 1, 1, 1)
    assert samples.double().mean().item() == pytest.approx(0.75, abs=0.01)


def test_nll_and_bpd_agree(registry, tmp_path: Path) -> None:
    test = random_images(30, 17)
    model = IndependentPixels(IndependentConfig(), DataInfo(test.shape, 17))
    model.fit(test, FitContext(torch.device("cpu"), 0, torch.Generator()))
    ctx = eval_context(test, registry, tmp_path, NllConfig(batch_size=7))
    nll = nll_metric(model, ctx).values["nll"]
    assert nll == pytest.approx(-model.log_likelihood(test.images).double().mean().item(), rel=1e-6)
    assert bpd_metric(model, ctx).values["bpd"] == pytest.approx(nll / (16 * math.log(2)))


class OnlyElbo(torch.nn.Module):
    capabilities = frozenset({"elbo"})

    def elbo(self, x: torch.Tensor, k: int = 1) -> torch.Tensor:
        return torch.full((len(x),), -float(k))


def test_elbo_models_use_the_importance_weighted_bound_with_k(registry, tmp_path: Path) -> None:
    result = nll_metric(OnlyElbo(), eval_context(random_images(4, 2), registry, tmp_path, NllConfig(k=7)))
    assert result.values["nll"] == 7.0 and result.provenance["settings"]["k"] == 7
    assert "upper bound" in result.provenance["method"]


def test_nll_without_likelihood_is_not_applicable(registry, tmp_path: Path) -> None:
    class SamplerOnly(torch.nn.Module):
        capabilities = frozenset({"sample"})

    with pytest.raises(NotApplicable, match="offers no likelihood"):
        nll_metric(SamplerOnly(), eval_context(random_images(4, 2), registry, tmp_path, NllConfig()))


def test_sample_time_is_positive_and_says_how(registry, tmp_path: Path) -> None:
    test = random_images(10, 2)
    model = IndependentPixels(IndependentConfig(), DataInfo(test.shape, 2))
    ctx = eval_context(test, registry, tmp_path, SampleTimeConfig(batch_size=8, repeats=3))
    result = seconds_per_image(model, ctx)
    assert result.values["sample_time"] > 0
    assert result.provenance == {"batch_size": 8, "warmup": 1, "repeats": 3, "statistic": "median", "device": "cpu"}


def test_stats_helpers() -> None:
    assert bits_per_dim(64 * math.log(2), 64) == pytest.approx(1.0)
    values = torch.tensor([[1000.0, 1000.0], [-5.0, -5.0 + math.log(3)]])
    assert torch.allclose(log_mean_exp(values, dim=1), torch.tensor([1000.0, -5.0 + math.log(2)]))
