"""The cached PixelCNN sampler against the plain one: the same logits at every position, the same images drawn."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from genbench import DataInfo, EvalContext, GenbenchError, ImageData
from genbench.toolkit.data import make_dataset
from genbench.toolkit.nn import levels_to_unit
from genbench_pixelcnn import PixelCNN, PixelCNNConfig
from genbench_pixelcnn.sampler_cached import RowSampler, cached_logits, draw_by_inverse_cdf, sample_on_device
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


# ---------------------------------------------------------------------------------------- the on-device sampler


def test_inverse_cdf_draws_follow_the_probabilities() -> None:
    probs = torch.tensor([0.0, 0.1, 0.6, 0.0, 0.3])
    logits = probs.log().expand(200_000, -1)  # log 0 = -inf: a level the draw must never pick
    uniforms = torch.rand(200_000, generator=torch.Generator().manual_seed(0))
    drawn = draw_by_inverse_cdf(logits, uniforms)
    assert drawn.dtype == torch.uint8
    frequencies = torch.bincount(drawn.long(), minlength=5).double() / len(drawn)
    assert frequencies[0] == 0 and frequencies[3] == 0
    # Binomial standard error at 200,000 draws is at most 0.0011: 0.005 is over four of them.
    torch.testing.assert_close(frequencies, probs.double(), rtol=0.0, atol=0.005)
    # The ends of [0, 1): u = 0 is the first level of positive probability, u just below 1 the last one.
    edges = draw_by_inverse_cdf(probs.log().expand(2, -1), torch.tensor([0.0, 1.0 - 2**-24]))
    assert edges.tolist() == [1, 4]


def exact_image_probabilities(model: PixelCNN) -> tuple[torch.Tensor, torch.Tensor]:
    """Every image of the model's tiny shape, and its probability under the model."""
    (c, h, w), levels = model.info.shape, model.info.levels
    codes = torch.arange(levels ** (c * h * w))
    digits = torch.stack([(codes // levels**i) % levels for i in range(c * h * w)], dim=1)
    images = digits.view(-1, c, h, w).to(torch.uint8)
    with torch.no_grad():
        probs = model.log_likelihood(images).exp()
    return images, probs


def empirical_distance(samples: torch.Tensor, images: torch.Tensor, probs: torch.Tensor) -> float:
    """Total variation between the samples' image frequencies and the exact probabilities."""
    index = {tuple(image.flatten().tolist()): i for i, image in enumerate(images)}
    counts = torch.zeros(len(images), dtype=torch.float64)
    for sample in samples:
        counts[index[tuple(sample.flatten().tolist())]] += 1
    return 0.5 * (counts / len(samples) - probs.double()).abs().sum().item()


@pytest.mark.parametrize("block", ["gated", "residual"])
def test_the_on_device_sampler_draws_from_the_models_distribution(block: str) -> None:
    # 1x2x2 with 3 levels: 81 images whose exact probabilities the model gives; 6,000 draws of each sampler.
    # The sampling noise of a total variation over 81 cells at 6,000 draws is about 0.04; a wrong conditional
    # (a stale cache, a shifted uniform) moves it far more.
    model = lively(block, (1, 2, 2), 3, first_kernel=3, kernel=3)
    images, probs = exact_image_probabilities(model)
    assert probs.sum().item() == pytest.approx(1.0, abs=1e-5)
    on_device = sample_on_device(model, 6000, torch.Generator().manual_seed(0), cuda_graph=False)
    plain = model.sample_plain(6000, torch.Generator().manual_seed(0))
    assert empirical_distance(on_device, images, probs) < 0.06
    assert empirical_distance(plain, images, probs) < 0.06


def test_reset_restores_the_blank_image_state() -> None:
    # A CUDA graph is captured after a warm-up row that dirties every cache; reset must undo it in place.
    model = lively("gated", (3, 5, 6), 4, first_kernel=3, kernel=3)
    used, fresh = RowSampler(model, 4), RowSampler(model, 4)
    used.uniforms.uniform_(generator=torch.Generator().manual_seed(0))
    used.run()
    used.run()
    used.cache.reset()
    for name in ("image", "first_from_above"):
        a, b = getattr(used.cache, name), getattr(fresh.cache, name)
        assert torch.equal(a.rows if name == "image" else a, b.rows if name == "image" else b)
    for a, b in zip(used.cache.gated_layers, fresh.cache.gated_layers, strict=True):
        assert torch.equal(a.v_band.rows, b.v_band.rows) and torch.equal(a.h_row.rows, b.h_row.rows)
        assert torch.equal(a.from_vertical, b.from_vertical)


def test_residual_reset_restores_the_blank_image_state() -> None:
    model = lively("residual", (1, 5, 6), 4, first_kernel=3, kernel=3)
    used, fresh = RowSampler(model, 2), RowSampler(model, 2)
    used.uniforms.uniform_(generator=torch.Generator().manual_seed(0))
    used.run()
    used.cache.reset()
    for a, b in zip(used.cache.residual_layers, fresh.cache.residual_layers, strict=True):
        assert torch.equal(a.inner.rows, b.inner.rows) and torch.equal(a.from_above, b.from_above)


needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU")


@needs_cuda
@pytest.mark.parametrize("block", ["gated", "residual"])
@pytest.mark.parametrize(("shape", "batch"), [((1, 7, 5), 1), ((3, 6, 6), 16)])
def test_cuda_graph_replays_draw_the_eager_steps_images(block: str, shape: tuple[int, int, int], batch: int) -> None:
    model = lively(block, shape, 5, first_kernel=5, kernel=3).cuda()
    graphed = sample_on_device(model, batch, torch.Generator().manual_seed(4), cuda_graph=True)
    eager = sample_on_device(model, batch, torch.Generator().manual_seed(4), cuda_graph=False)
    assert graphed.device.type == "cpu" and graphed.shape == (batch, *shape)
    assert torch.equal(graphed, eager)
    assert len(graphed.unique()) > 1


@needs_cuda
@pytest.mark.parametrize("cuda_graph", [True, False])
def test_cuda_sampler_draws_from_the_models_distribution(cuda_graph: bool) -> None:
    model = lively("gated", (1, 2, 2), 3, first_kernel=3, kernel=3)
    images, probs = exact_image_probabilities(model)
    model = model.cuda()
    samples = sample_on_device(model, 6000, torch.Generator().manual_seed(0), cuda_graph=cuda_graph)
    assert empirical_distance(samples, images, probs) < 0.06


@needs_cuda
def test_cuda_sampler_name_says_whether_a_graph_ran() -> None:
    info = DataInfo((1, 4, 4), 5)
    graphed = PixelCNN(PixelCNNConfig(channels=8, head_channels=8, layers=1), info).cuda()
    eager = PixelCNN(PixelCNNConfig(channels=8, head_channels=8, layers=1, cuda_graph=False), info).cuda()
    assert (graphed.sampler_name, eager.sampler_name) == ("cached, CUDA graph", "cached, eager")
