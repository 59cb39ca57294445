"""SLOW: each built-in model, trained with its default config on the 8x8 digits, against its untrained self.

Every model must get better by training; a model with a likelihood must beat the independent-pixels baseline
on the test split. The GAN has no likelihood: its samples must come closer to the test images than the
untrained generator's and the baseline's, by the Fréchet distance between Gaussians fitted to raw pixels.
Each test trains one model with its defaults: PixelCNN ~45 s, GAN ~30 s, VAE ~5 s on one CPU core.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

from conftest import cpu_context
from genbench import Dataset
from genbench.toolkit.stats import feature_statistics, frechet_distance
from genbench_gan import GAN, GANConfig
from genbench_independent import IndependentConfig, IndependentPixels
from genbench_pixelcnn import PixelCNN, PixelCNNConfig
from genbench_vae import VAE, VAEConfig

pytestmark = pytest.mark.slow

#: Importance samples for the VAE's bound on the test set, as the ``nll`` metric's default.
K = 100
SAMPLES = 1000


def untrained(model_class: Any, config: Any, digits: Dataset) -> Any:
    torch.manual_seed(0)
    return model_class(config, digits.info)


@torch.no_grad()
def nll_of(model: Any, digits: Dataset) -> float:
    """Mean negative log-likelihood of the test split in nats per image: exact, or the IWAE bound."""
    if "log_likelihood" in model.capabilities:
        return float(-model.log_likelihood(digits.test.images).double().mean())
    if "elbo" in model.capabilities:
        return float(-model.elbo(digits.test.images, k=K).double().mean())
    return float("nan")


def raw_pixel_frechet_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """The Fréchet distance of Gaussians fitted to the raw pixels of two sets of images."""
    return frechet_distance(*feature_statistics(a.flatten(1).double()), *feature_statistics(b.flatten(1).double()))


def check_samples(samples: torch.Tensor, digits: Dataset) -> None:
    assert samples.shape[1:] == digits.info.shape and samples.dtype == torch.uint8
    assert samples.device.type == "cpu" and int(samples.max()) < digits.info.levels


@pytest.fixture(scope="module")
def independent(digits: Dataset) -> IndependentPixels:
    model = IndependentPixels(IndependentConfig(), digits.info)
    model.fit(digits.train, cpu_context())
    return model


def test_pixelcnn_beats_its_untrained_self_and_the_baseline(digits: Dataset, independent: IndependentPixels) -> None:
    model = untrained(PixelCNN, PixelCNNConfig(), digits)
    before = nll_of(model, digits)
    model.fit(digits.train, cpu_context())
    after = nll_of(model, digits)
    assert after < before and after < nll_of(independent, digits) - 10.0
    check_samples(model.sample(SAMPLES, torch.Generator().manual_seed(1)), digits)
    # Trained conditionals are peaked, unlike the random weights of test_pixelcnn_sampler.py: the same draws still.
    cached = model.sample(16, torch.Generator().manual_seed(2))
    assert torch.equal(cached, model.sample_plain(16, torch.Generator().manual_seed(2)))


def test_vae_beats_its_untrained_self_and_the_baseline(digits: Dataset, independent: IndependentPixels) -> None:
    model = untrained(VAE, VAEConfig(), digits)
    before = nll_of(model, digits)
    model.fit(digits.train, cpu_context())
    after = nll_of(model, digits)  # an upper bound on the VAE's true NLL
    assert after < before and after < nll_of(independent, digits) - 5.0
    check_samples(model.sample(SAMPLES, torch.Generator().manual_seed(1)), digits)


def test_gan_samples_come_closer_to_the_test_set(digits: Dataset, independent: IndependentPixels) -> None:
    model = untrained(GAN, GANConfig(), digits)
    before = raw_pixel_frechet_distance(model.sample(SAMPLES, torch.Generator().manual_seed(1)), digits.test.images)
    model.fit(digits.train, cpu_context())
    samples = model.sample(SAMPLES, torch.Generator().manual_seed(1))
    check_samples(samples, digits)
    after = raw_pixel_frechet_distance(samples, digits.test.images)
    baseline = independent.sample(SAMPLES, torch.Generator().manual_seed(1))
    assert after < before and after < raw_pixel_frechet_distance(baseline, digits.test.images)
