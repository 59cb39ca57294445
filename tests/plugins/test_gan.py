"""DCGAN on tiny networks: shapes for any image size, losses, the update schedule, checkpoints, seeds."""

from __future__ import annotations

import contextlib
import math
from typing import Any

import pytest
import torch
from safetensors.torch import load_file, save_file

from conftest import cpu_context
from genbench import DataInfo, FitContext, GenbenchError, ImageData
from genbench_gan import GAN, GANConfig, genbench_models, padded_size

TINY = {"latent_dim": 8, "width": 8, "batch_size": 16}


def random_data(n: int = 64, shape: tuple[int, int, int] = (1, 8, 8), levels: int = 17) -> ImageData:
    generator = torch.Generator().manual_seed(123)
    return ImageData(torch.randint(0, levels, (n, *shape), generator=generator).to(torch.uint8), levels)


@pytest.mark.parametrize(("size", "padded"), [(3, 4), (4, 4), (5, 8), (8, 8), (28, 32), (32, 32)])
def test_padded_size_is_the_smallest_power_of_two_grid_that_holds_the_image(size: int, padded: int) -> None:
    assert padded_size(DataInfo((1, size, size), 2)) == padded
    assert padded_size(DataInfo((1, 3, size), 2)) == padded


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 5, 7), (3, 32, 32)])
@pytest.mark.parametrize("levels", [2, 17, 256])
def test_generator_discriminator_and_samples_fit_the_data_shape(shape: tuple[int, int, int], levels: int) -> None:
    model = GAN(GANConfig(**TINY), DataInfo(shape, levels))
    z = torch.randn(4, TINY["latent_dim"])
    fake = model.generator(z)
    assert fake.shape == (4, *shape) and fake.min() >= -1.0 and fake.max() <= 1.0
    assert model.discriminator(fake).shape == (4,)
    samples = model.sample(6, torch.Generator().manual_seed(0))
    assert samples.shape == (6, *shape) and samples.dtype == torch.uint8 and samples.device.type == "cpu"
    assert int(samples.max()) < levels
    assert torch.equal(samples, model.sample(6, torch.Generator().manual_seed(0)))


def test_losses_at_an_undecided_discriminator() -> None:
    zero = torch.zeros(5)
    non_saturating = GAN(GANConfig(**TINY), DataInfo((1, 8, 8), 2))
    hinge = GAN(GANConfig(**TINY, loss="hinge"), DataInfo((1, 8, 8), 2))
    # D(x) = 1/2 everywhere: -log(1/2) for the real and for the generated half, -log(1/2) for the generator.
    assert math.isclose(non_saturating.discriminator_loss(zero, zero).item(), 2 * math.log(2), rel_tol=1e-6)
    assert math.isclose(non_saturating.generator_loss(zero).item(), math.log(2), rel_tol=1e-6)
    assert hinge.discriminator_loss(zero, zero).item() == 2.0 and hinge.generator_loss(zero).item() == 0.0
    # Hinge: no loss once the real logits are above 1 and the generated ones below -1.
    assert hinge.discriminator_loss(torch.full((5,), 1.5), torch.full((5,), -1.5)).item() == 0.0
    assert non_saturating.generator_loss(torch.full((5,), -10.0)).item() > 9.9  # no saturation when D wins


@pytest.mark.parametrize("d_steps", [1, 2, 3])
def test_generator_updates_once_per_d_steps_batches(d_steps: int) -> None:
    torch.manual_seed(0)
    model = GAN(GANConfig(**TINY, d_steps=d_steps, epochs=1), DataInfo((1, 8, 8), 17))
    generator_backward_passes = []
    model.generator.body[-2].weight.register_hook(lambda grad: generator_backward_passes.append(1))
    model.fit(random_data(n=96), cpu_context())  # six batches of 16
    assert len(generator_backward_passes) == math.ceil(6 / d_steps)


def test_separate_learning_rates_reach_the_two_players() -> None:
    # With no generator learning rate, only the discriminator moves (TTUR's two time scales, taken to the limit).
    torch.manual_seed(0)
    model = GAN(GANConfig(**TINY, lr_g=0.0, epochs=1), DataInfo((1, 8, 8), 17))
    generator_before = [p.detach().clone() for p in model.generator.parameters()]
    discriminator_before = [p.detach().clone() for p in model.discriminator.parameters()]
    model.fit(random_data(), cpu_context())
    assert all(torch.equal(a, b) for a, b in zip(generator_before, model.generator.parameters(), strict=True))
    assert not all(
        torch.equal(a, b) for a, b in zip(discriminator_before, model.discriminator.parameters(), strict=True)
    )


def fitted(seed: int, loss: str = "non_saturating", context: FitContext | None = None) -> GAN:
    torch.manual_seed(seed)
    model = GAN(GANConfig(**TINY, loss=loss, epochs=2), DataInfo((1, 8, 8), 17))
    model.fit(random_data(), context or cpu_context(seed))
    return model


@pytest.mark.parametrize("loss", ["non_saturating", "hinge"])
def test_same_seed_gives_identical_training(loss: str) -> None:
    first, second, other = fitted(0, loss), fitted(0, loss), fitted(1, loss)
    sample = lambda model: model.sample(8, torch.Generator().manual_seed(5))  # noqa: E731
    assert torch.equal(sample(first), sample(second))
    assert not torch.equal(sample(first), sample(other))


def test_checkpoint_round_trip_keeps_the_samples(tmp_path: Any) -> None:
    model = fitted(0)  # trained, so that the batch-norm statistics in the checkpoint matter
    save_file(model.state_dict(), tmp_path / "model.safetensors")
    torch.manual_seed(1)
    loaded = GAN(GANConfig(**TINY, epochs=2), DataInfo((1, 8, 8), 17))
    loaded.load_state_dict(load_file(tmp_path / "model.safetensors"))
    assert torch.equal(
        model.sample(8, torch.Generator().manual_seed(2)), loaded.sample(8, torch.Generator().manual_seed(2))
    )


class BFloat16Context(FitContext):
    """The CUDA mixed-precision path (bfloat16 autocast) exercised on the CPU."""

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        return torch.autocast("cpu", dtype=torch.bfloat16)


def test_training_under_bfloat16_autocast() -> None:
    curve: list[dict[str, float]] = []
    context = BFloat16Context(
        torch.device("cpu"), 0, torch.Generator().manual_seed(0), on_curve=lambda s, v: curve.append(dict(v))
    )
    model = fitted(0, context=context)
    assert len(curve) == 2 and all(math.isfinite(value) for point in curve for value in point.values())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model.discriminator(model.generator(torch.randn(4, TINY["latent_dim"])))
        assert model.discriminator_loss(logits, logits).dtype == torch.float32


def test_bad_configs_are_user_errors() -> None:
    with pytest.raises(GenbenchError, match="loss"):
        GAN(GANConfig(loss="wasserstein"), DataInfo((1, 8, 8), 17))
    with pytest.raises(GenbenchError, match="d_steps"):
        GAN(GANConfig(d_steps=0), DataInfo((1, 8, 8), 17))


def test_spec_and_capabilities() -> None:
    (spec,) = genbench_models()
    assert spec.name == "gan" and spec.config_class is GANConfig
    model = spec.factory(spec.default_config(), DataInfo((1, 8, 8), 17))
    assert model.capabilities == {"sample"}
    x = torch.zeros(1, 1, 8, 8, dtype=torch.uint8)
    with pytest.raises(NotImplementedError):
        model.log_likelihood(x)
    with pytest.raises(NotImplementedError):
        model.elbo(x)
