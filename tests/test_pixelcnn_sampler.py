"""The cached PixelCNN sampler against the plain one: the same logits at every position, the same images drawn."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from genbench import DataInfo, EvalContext, GenbenchError, ImageData
from genbench.data import make_dataset
from genbench.nn import levels_to_unit
from genbench_pixelcnn import PixelCNN, PixelCNNConfig
from genbench_pixelcnn.sampler_cached import cached_logits
from genbench_sample_time import SampleTimeConfig, seconds_per_image


def lively(block: str, shape: tuple[int, int, int], levels: int, seed: int = 0, **overrides: Any) -> PixelCNN:
    """A tiny seeded PixelCNN whose weights are pushed away from their initialization.

    Freshly initialized, the conditionals are close to uniform and barely depend on the context, so a sampler that
    read a stale or wrong activation could still draw the same values; large random weights make every logit
    depend strongly on what the layers cached.
    """
    torch.manual_seed(seed)
    settings: dict[str, Any] = {"channels": 12, "head_channels": 6, "layers": 2, **overrides}
    model = PixelCNN(PixelCNNConfig(block=block, **settings), DataInfo(shape, levels))
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.5 * torch.randn_like(parameter))
    return model.eval()


CASES = [
    # block, (C, H, W), levels, first_kernel, kernel, batch
    ("gated", (1, 8, 8), 17, 5, 3, 16),
    ("residual", (1, 8, 8), 17, 5, 3, 16),
    ("gated", (1, 7, 5), 17, 3, 5, 1),
    ("residual", (1, 7, 5), 17, 7, 5, 1),
    ("gated", (3, 6, 6), 4, 7, 3, 16),
    ("residual", (3, 6, 6), 4, 3, 5, 1),
    ("gated", (2, 4, 5), 3, 3, 3, 1),
    ("gated", (1, 6, 6), 2, 3, 5, 16),
    ("residual", (1, 6, 6), 2, 5, 3, 16),
]


@pytest.mark.parametrize(("block", "shape", "levels", "first_kernel", "kernel", "batch"), CASES)
def test_cached_sampler_draws_exactly_the_plain_samplers_images(
    block: str, shape: tuple[int, int, int], levels: int, first_kernel: int, kernel: int, batch: int
) -> None:
    model = lively(block, shape, levels, first_kernel=first_kernel, kernel=kernel)
    assert model.sampler_name == "cached"
    cached = model.sample(batch, torch.Generator().manual_seed(7))
    plain = model.sample_plain(batch, torch.Generator().manual_seed(7))
    assert cached.shape == (batch, *shape) and cached.dtype == torch.uint8 and cached.device.type == "cpu"
    assert torch.equal(cached, plain)
    assert len(cached.unique()) > 1, "the draws should not be constant, or the comparison proves little"


@pytest.mark.parametrize("block", ["gated", "residual"])
def test_cached_sampler_follows_the_widths_rounded_for_colour(block: str) -> None:
    # channels=10 and head_channels=7 do not fit three channel groups: the model builds 12 and 9, and the cached
    # sampler must size its caches from what was built, not from the config.
    model = lively(block, (3, 5, 5), 4, channels=10, head_channels=7)
    assert model.widths == {"channels": 12, "head_channels": 9}
    cached = model.sample(4, torch.Generator().manual_seed(3))
    assert torch.equal(cached, model.sample_plain(4, torch.Generator().manual_seed(3)))


DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU"))]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("block", ["gated", "residual"])
@pytest.mark.parametrize(
    ("shape", "levels", "first_kernel", "kernel"),
    [((1, 8, 8), 17, 5, 3), ((1, 7, 5), 5, 7, 5), ((3, 5, 6), 4, 3, 3), ((1, 4, 6), 3, 1, 1), ((1, 3, 9), 4, 3, 7)],
)
def test_cached_logits_equal_the_full_forward_pass(
    block: str,
    shape: tuple[int, int, int],
    levels: int,
    first_kernel: int,
    kernel: int,
    device: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Fed given images, the caches must reproduce every conditional of the network, independently of sampling.
    # On a GPU, TF32 (on by default for cuDNN convolutions, off for matrix products) would round the forward pass
    # to 10-bit mantissas; float32 noise is what is compared.
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    model = lively(block, shape, levels, first_kernel=first_kernel, kernel=kernel).to(device)
    x = torch.randint(0, levels, (5, *shape), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    x = x.to(device)
    with torch.no_grad():
        expected = model(levels_to_unit(x, levels))
    scale = expected.abs().max().item()
    assert expected.std() > 0.5, "the logits should be far from constant"
    # Float32 noise: the convolutions and the cached matrix products sum the same terms in other orders.
    torch.testing.assert_close(cached_logits(model, x), expected, rtol=0.0, atol=1e-5 * scale)


def test_sampler_choice_and_unknown_sampler() -> None:
    info = DataInfo((1, 4, 4), 5)
    assert PixelCNNConfig().sampler == "cached"
    model = PixelCNN(PixelCNNConfig(channels=8, head_channels=8, layers=1, sampler="plain"), info)
    assert model.sampler_name == "plain"
    with pytest.raises(GenbenchError, match=r"^pixelcnn: sampler must be one of cached, plain, got 'fast'$"):
        PixelCNN(PixelCNNConfig(sampler="fast"), info)


@pytest.mark.parametrize("sampler", ["cached", "plain"])
def test_sample_time_names_the_sampler_that_ran(sampler: str, registry: Any, tmp_path: Path) -> None:
    images = torch.zeros(4, 1, 3, 3, dtype=torch.uint8)
    dataset = make_dataset("toy", ImageData(images, 3), ImageData(images, 3), source="test", split="none")
    config = SampleTimeConfig(batch_size=2, warmup=0, repeats=1)
    ctx = EvalContext(dataset, torch.device("cpu"), 0, torch.Generator().manual_seed(0), config, registry, tmp_path)
    model = PixelCNN(PixelCNNConfig(channels=8, head_channels=8, layers=1, sampler=sampler), DataInfo((1, 3, 3), 3))
    assert seconds_per_image(model, ctx).provenance["sampler"] == sampler
