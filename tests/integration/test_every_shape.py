"""Every built-in model on every shape: 1 or 3 channels, 2 to 256 levels, 7x7 to 64x64 (odd and non-powers of two).

Two tests per model. The default config of each model is built for the full grid and run forward (likelihood or
bound, and samples where they are cheap): what a user gets without options must work on any data. A small config
of each model then trains one epoch on a few random images of a smaller grid, samples, and evaluates its
likelihood, so the training step is shown to run on every kind of shape too.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from typing import Any

import pytest
import torch

from conftest import cpu_context
from genbench import DataInfo, GenerativeModel, ImageData
from genbench.registry import MODEL, Registry

MODELS = ("vae", "gan", "pixelcnn", "independent")
SIZES = (7, 8, 9, 16, 28, 32, 64)
CHANNELS = (1, 3)
#: Two levels (binarized), a few (the VAE's per-pixel softmax), 256 (8-bit images: a discretized logistic).
LEVELS = (2, 7, 256)
FULL_GRID = [DataInfo((c, s, s), levels) for c, s, levels in itertools.product(CHANNELS, SIZES, LEVELS)]
#: The plain PixelCNN sampler runs the whole network once per value: C*H*W passes, 12,288 at 3x64x64, which took
#: 235 s on one core of the shared test machine even for the small config of the training test (a softmax over
#: 256 levels at every pixel, each pass). PixelCNN samples only images of at most these many values: the sampling
#: loop is the same code at every size, and its result is checked where it is affordable.
DEFAULT_PIXELCNN_SAMPLE_VALUES = 3 * 7 * 7
SMALL_PIXELCNN_SAMPLE_VALUES = 32 * 32
#: Small widths for the training test, chosen so that PixelCNN's must still be rounded up for RGB (4 -> 6, 4 -> 6).
SMALL = {
    "vae": {"latent_dim": 2, "hidden": 8},
    "gan": {"latent_dim": 4, "width": 4},
    "pixelcnn": {"channels": 4, "head_channels": 4, "layers": 1, "first_kernel": 3},
    "independent": {},
}
TRAIN_GRID = [
    DataInfo((c, s, s), levels)
    for c, s, levels in [
        (1, 7, 2),
        (3, 7, 256),
        (1, 8, 17),
        (3, 9, 2),
        (1, 16, 256),
        (3, 28, 7),
        (1, 28, 2),
        (3, 32, 256),
        (1, 32, 17),
        (1, 64, 2),
        (3, 64, 256),
    ]
]


def shape_id(info: DataInfo) -> str:
    c, h, w = info.shape
    return f"{c}x{h}x{w}-{info.levels}levels"


def random_images(info: DataInfo, n: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, info.levels, (n, *info.shape), generator=generator, dtype=torch.uint8)


def check_samples(model: GenerativeModel, info: DataInfo) -> None:
    samples = model.sample(2, torch.Generator().manual_seed(0))
    assert samples.dtype == torch.uint8 and tuple(samples.shape) == (2, *info.shape)
    assert int(samples.max()) < info.levels


def check_likelihood(model: GenerativeModel, info: DataInfo, x: torch.Tensor) -> None:
    """The exact log-likelihood or the ELBO of a batch: one finite, negative number per image."""
    with torch.no_grad():
        if "log_likelihood" in model.capabilities:
            values = model.log_likelihood(x)
        elif "elbo" in model.capabilities:
            values = model.elbo(x, k=1)
        else:
            return
    assert values.shape == (len(x),) and torch.isfinite(values).all()
    assert (values <= 1e-4).all(), "the log-probability of discrete values cannot exceed 0"


def build(registry: Registry, name: str, info: DataInfo, **options: Any) -> GenerativeModel:
    spec = registry.get(MODEL, name)
    config = dataclasses.replace(spec.default_config(), **options)
    torch.manual_seed(0)
    return spec.factory(config, info)


@pytest.mark.parametrize("info", FULL_GRID, ids=shape_id)
@pytest.mark.parametrize("name", MODELS)
def test_default_config_builds_and_runs_forward_on_every_shape(registry: Registry, name: str, info: DataInfo) -> None:
    model = build(registry, name, info)
    model.to(torch.device("cpu"))
    check_likelihood(model, info, random_images(info, 2))
    if name != "pixelcnn" or info.dims <= DEFAULT_PIXELCNN_SAMPLE_VALUES:
        check_samples(model, info)


@pytest.mark.parametrize("info", TRAIN_GRID, ids=shape_id)
@pytest.mark.parametrize("name", MODELS)
def test_one_epoch_then_samples_and_likelihood_on_every_shape(registry: Registry, name: str, info: DataInfo) -> None:
    options = {**SMALL[name], **({"epochs": 1, "batch_size": 2} if name != "independent" else {})}
    model = build(registry, name, info, **options)
    train = ImageData(random_images(info, 4, seed=1), info.levels)
    model.fit(train, cpu_context())
    if name != "pixelcnn" or info.dims <= SMALL_PIXELCNN_SAMPLE_VALUES:
        check_samples(model, info)
    check_likelihood(model, info, random_images(info, 2, seed=2))


@pytest.mark.parametrize("channels", [1, 3])
def test_pixelcnn_rounds_its_widths_up_to_what_the_masks_need(registry: Registry, channels: int) -> None:
    spec = registry.get(MODEL, "pixelcnn")
    default = spec.default_config()
    model: Any = spec.factory(default, DataInfo((channels, 8, 8), 256))
    expected = {
        "channels": math.ceil(default.channels / (2 * channels)) * 2 * channels,
        "head_channels": math.ceil(default.head_channels / channels) * channels,
    }
    assert model.widths == expected
    assert (expected["channels"], expected["head_channels"]) == ((64, 128) if channels == 1 else (66, 129))
    assert model.first.out_channels == expected["channels"]
    assert model.head[1].out_channels == expected["head_channels"]
    assert (default.channels, default.head_channels) == (64, 128), "the config itself is left as the user gave it"


def test_rounded_pixelcnn_still_sees_only_earlier_values(registry: Registry) -> None:
    """With widths that need rounding for RGB (20 -> 24 and 21), each logit depends on exactly the values before it."""
    shape = (3, 3, 3)
    options = {**SMALL["pixelcnn"], "channels": 20, "head_channels": 20, "layers": 2}
    model: Any = build(registry, "pixelcnn", DataInfo(shape, 4), **options)
    assert model.widths == {"channels": 24, "head_channels": 21}
    x = torch.randn(1, *shape, requires_grad=True)
    logits = model(x)
    order = list(itertools.product(range(shape[1]), range(shape[2]), range(shape[0])))  # rows, columns, channels
    for index, (row, col, channel) in enumerate(order):
        (grad,) = torch.autograd.grad(logits[0, :, channel, row, col].sum(), x, retain_graph=True)
        seen = grad[0].permute(1, 2, 0).flatten() != 0
        assert not seen[index:].any(), f"value {index} sees itself or a later value"
        assert index == 0 or seen[:index].any()
