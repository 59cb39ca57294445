"""genbench.toolkit.unet: the shared noise or velocity network keeps every image shape the built-ins train on."""

from __future__ import annotations

import pytest
import torch

from genbench.toolkit.unet import UNet, default_channel_mults, group_count


@pytest.mark.parametrize(
    ("shape", "mults"),
    [((1, 7, 7), (1,)), ((3, 8, 8), (1, 2)), ((1, 28, 28), (1, 2, 2)), ((3, 32, 32), (1, 2, 2, 2))],
)
def test_output_has_the_input_shape(shape: tuple[int, int, int], mults: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    net = UNet(*shape, base_channels=8)
    assert net.channel_mults == mults
    x = torch.randn(2, *shape)
    assert net(x, torch.rand(2)).shape == (2, *shape)


@pytest.mark.parametrize("shape", [(1, 7, 7), (3, 9, 5), (1, 11, 13)])
def test_odd_sides_are_padded_and_cropped_back(shape: tuple[int, int, int]) -> None:
    torch.manual_seed(0)
    net = UNet(*shape, base_channels=8, channel_mults=(1, 2, 2), out_channels=2, attention=True)
    assert net(torch.randn(3, *shape), torch.rand(3)).shape == (3, 2, *shape[1:])


def test_default_depth_grows_with_the_image() -> None:
    assert default_channel_mults(7, 7) == (1,)
    assert default_channel_mults(64, 64) == (1, 2, 2, 2, 2)
    assert default_channel_mults(8, 64) == (1, 2)  # the smaller side decides


@pytest.mark.parametrize("channels", [1, 3, 8, 12, 24, 32, 48, 64, 96, 128, 256])
def test_group_count_divides_the_channels(channels: int) -> None:
    groups = group_count(channels)
    assert channels % groups == 0 and 1 <= groups <= 32
    assert channels < 4 or channels // groups >= 4


def trained_a_little(net: UNet, x: torch.Tensor, time: torch.Tensor) -> None:
    """A few SGD steps: the zero-initialised output convolution must first grow before the rest receives gradient."""
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    for _ in range(3):
        optimizer.zero_grad()
        (net(x, time) - x).square().mean().backward()
        optimizer.step()


def test_output_depends_on_time_and_gradients_reach_every_parameter() -> None:
    torch.manual_seed(0)
    net = UNet(1, 8, 8, base_channels=8, attention=True)
    x = torch.randn(4, 1, 8, 8)
    assert torch.equal(net(x, torch.rand(4)), torch.zeros_like(x))  # the output convolution starts at zero
    trained_a_little(net, x, torch.rand(4))

    early, late = net(x, torch.full((4,), 0.1)), net(x, torch.full((4,), 0.9))
    assert (early - late).abs().max() > 1e-4
    net.zero_grad()
    net(x, torch.rand(4)).square().sum().backward()
    starved = [name for name, p in net.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert starved == []


def test_a_single_time_serves_the_whole_batch() -> None:
    torch.manual_seed(0)
    net = UNet(3, 8, 8, base_channels=8)
    x = torch.randn(2, 3, 8, 8)
    trained_a_little(net, x, torch.rand(2))
    assert torch.allclose(net(x, torch.tensor(0.3)), net(x, torch.full((2,), 0.3)))
