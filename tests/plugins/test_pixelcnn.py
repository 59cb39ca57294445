"""PixelCNN on tiny networks: the autoregressive property, exact normalization, sampler, checkpoints, seeds."""

from __future__ import annotations

import contextlib
import itertools
from typing import Any

import pytest
import torch
from safetensors.torch import load_file, save_file

from conftest import cpu_context
from genbench import DataInfo, FitContext, GenbenchError, ImageData
from genbench_pixelcnn import PixelCNN, PixelCNNConfig, genbench_models


def tiny(block: str = "gated", channels: int = 1, **overrides: Any) -> PixelCNNConfig:
    settings: dict[str, Any] = {"channels": 8 * channels, "head_channels": 8 * channels, "first_kernel": 3, "layers": 3}
    return PixelCNNConfig(block=block, **{**settings, **overrides})


def all_images(shape: tuple[int, int, int], levels: int) -> torch.Tensor:
    """Every image of the given shape, as uint8 (levels^D, C, H, W)."""
    values = list(itertools.product(range(levels), repeat=shape[0] * shape[1] * shape[2]))
    return torch.tensor(values, dtype=torch.uint8).view(-1, *shape)


def dependencies(model: PixelCNN, shape: tuple[int, int, int]) -> torch.Tensor:
    """D x D booleans, raster order with the channels of a pixel innermost: does value i's logit depend on j?"""
    c, height, width = shape
    x = torch.randn(1, *shape, requires_grad=True)
    logits = model(x)
    rows = []
    for row, col, channel in itertools.product(range(height), range(width), range(c)):
        (grad,) = torch.autograd.grad(logits[0, :, channel, row, col].sum(), x, retain_graph=True)
        rows.append(grad[0].permute(1, 2, 0).flatten() != 0)  # (H, W, C): the same raster order
    return torch.stack(rows)


@pytest.mark.parametrize("block", ["gated", "residual"])
@pytest.mark.parametrize("shape", [(1, 5, 5), (3, 3, 4)])
def test_each_value_depends_only_on_the_values_before_it(block: str, shape: tuple[int, int, int]) -> None:
    torch.manual_seed(0)
    model = PixelCNN(tiny(block, shape[0]), DataInfo(shape, 4))
    seen = dependencies(model, shape)
    later_or_self = torch.triu(torch.ones_like(seen))
    assert not (seen & later_or_self).any(), "a logit depends on its own value or a later one"
    assert seen[1:].any(1).all(), "every value after the first should depend on something before it"


def test_gated_stacks_have_no_blind_spot_and_the_residual_stack_has_one() -> None:
    # van den Oord et al. (2016b), Figure 1: a plain masked stack never sees the upper right of a pixel.
    torch.manual_seed(0)
    shape = (1, 5, 5)
    earlier = torch.tril(torch.ones(25, 25, dtype=torch.bool), diagonal=-1)
    gated = dependencies(PixelCNN(tiny("gated"), DataInfo(shape, 4)), shape)
    residual = dependencies(PixelCNN(tiny("residual", layers=6), DataInfo(shape, 4)), shape)
    assert gated[earlier].all()
    assert not residual[earlier].all()


@pytest.mark.parametrize("block", ["gated", "residual"])
@pytest.mark.parametrize(("shape", "levels"), [((1, 2, 2), 3), ((2, 2, 2), 2)])
def test_probabilities_of_all_images_sum_to_one(block: str, shape: tuple[int, int, int], levels: int) -> None:
    torch.manual_seed(0)
    model = PixelCNN(tiny(block, shape[0]), DataInfo(shape, levels))
    with torch.no_grad():
        total = model.log_likelihood(all_images(shape, levels)).double().exp().sum()
    assert abs(total.item() - 1.0) < 1e-5


@pytest.mark.parametrize("shape", [(1, 2, 2), (2, 1, 2)])
def test_sampler_follows_the_likelihood(shape: tuple[int, int, int]) -> None:
    # Sixteen possible images; the sampler's frequencies must match exp(log p), which checks its order too.
    torch.manual_seed(1)
    model = PixelCNN(tiny("gated", shape[0]), DataInfo(shape, 2))
    images = all_images(shape, 2)
    with torch.no_grad():
        probs = model.log_likelihood(images).double().exp()
    draws = model.sample(20_000, torch.Generator().manual_seed(0))
    index = (draws.flatten(1).long() * 2 ** torch.arange(3, -1, -1)).sum(1)  # images are in binary order
    frequencies = torch.bincount(index, minlength=16).double() / len(draws)
    assert 0.5 * (frequencies - probs).abs().sum() < 0.02  # total variation distance


@pytest.mark.parametrize("block", ["gated", "residual"])
def test_samples_have_the_datas_shape_type_and_range(block: str) -> None:
    model = PixelCNN(tiny(block), DataInfo((1, 4, 3), 17))
    samples = model.sample(5, torch.Generator().manual_seed(0))
    assert samples.shape == (5, 1, 4, 3) and samples.dtype == torch.uint8 and samples.device.type == "cpu"
    assert int(samples.max()) < 17
    assert torch.equal(samples, model.sample(5, torch.Generator().manual_seed(0)))


def test_checkpoint_round_trip_keeps_likelihood_and_samples(tmp_path: Any) -> None:
    info = DataInfo((1, 4, 4), 5)
    torch.manual_seed(0)
    model = PixelCNN(tiny(), info)
    x = torch.randint(0, 5, (6, 1, 4, 4), dtype=torch.uint8)
    save_file(model.state_dict(), tmp_path / "model.safetensors")
    torch.manual_seed(1)
    loaded = PixelCNN(tiny(), info)
    loaded.load_state_dict(load_file(tmp_path / "model.safetensors"))
    with torch.no_grad():
        assert torch.equal(model.log_likelihood(x), loaded.log_likelihood(x))
    assert torch.equal(
        model.sample(3, torch.Generator().manual_seed(2)), loaded.sample(3, torch.Generator().manual_seed(2))
    )


def fitted(seed: int, data: ImageData, context: FitContext | None = None) -> PixelCNN:
    torch.manual_seed(seed)
    model = PixelCNN(tiny(epochs=2, batch_size=16), DataInfo(data.shape, data.levels))
    model.fit(data, context or cpu_context(seed))
    return model


def random_data(n: int = 48, shape: tuple[int, int, int] = (1, 4, 4), levels: int = 5) -> ImageData:
    generator = torch.Generator().manual_seed(123)
    return ImageData(torch.randint(0, levels, (n, *shape), generator=generator).to(torch.uint8), levels)


def test_same_seed_gives_identical_training() -> None:
    data = random_data()
    first, second, other = fitted(0, data), fitted(0, data), fitted(1, data)
    with torch.no_grad():
        assert torch.equal(first.log_likelihood(data.images), second.log_likelihood(data.images))
        assert not torch.equal(first.log_likelihood(data.images), other.log_likelihood(data.images))


class BFloat16Context(FitContext):
    """The CUDA mixed-precision path (bfloat16 autocast) exercised on the CPU."""

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        return torch.autocast("cpu", dtype=torch.bfloat16)


def test_training_under_bfloat16_autocast_keeps_the_loss_in_float32() -> None:
    data = random_data()
    curve: list[dict[str, float]] = []
    context = BFloat16Context(
        torch.device("cpu"), 0, torch.Generator().manual_seed(0), on_curve=lambda s, v: curve.append(dict(v))
    )
    model = fitted(0, data, context)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert model.log_likelihood(data.images).dtype == torch.float32
    assert len(curve) == 2 and curve[-1]["nll"] < curve[0]["nll"] + 1.0


def test_bad_configs_are_user_errors() -> None:
    with pytest.raises(GenbenchError, match="block"):
        PixelCNN(PixelCNNConfig(block="lstm"), DataInfo((1, 8, 8), 17))
    with pytest.raises(GenbenchError, match="channels must be at least 1"):
        PixelCNN(PixelCNNConfig(channels=0), DataInfo((3, 8, 8), 17))
    with pytest.raises(GenbenchError, match="odd"):
        PixelCNN(PixelCNNConfig(kernel=4), DataInfo((1, 8, 8), 17))


def test_spec_and_capabilities() -> None:
    (spec,) = genbench_models()
    assert spec.name == "pixelcnn" and spec.config_class is PixelCNNConfig
    model = spec.factory(spec.default_config(), DataInfo((1, 8, 8), 17))
    assert model.capabilities == {"sample", "log_likelihood"}
    with pytest.raises(NotImplementedError):
        model.elbo(torch.zeros(1, 1, 8, 8, dtype=torch.uint8))
