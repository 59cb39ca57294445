"""The shared building blocks: rescaling, masked convolutions, discrete likelihoods and their samplers."""

from __future__ import annotations

import pytest
import torch

from genbench.toolkit.nn import (
    MaskedConv2d,
    bernoulli_log_prob,
    categorical_log_prob,
    dequantize,
    discretized_logistic_log_prob,
    levels_to_unit,
    sample_bernoulli,
    sample_categorical,
    sample_discretized_logistic,
    unit_to_levels,
)


@pytest.mark.parametrize("levels", [2, 17, 256])
def test_levels_round_trip_through_unit_interval(levels: int) -> None:
    x = torch.arange(levels, dtype=torch.uint8)
    unit = levels_to_unit(x, levels)
    assert unit[0] == -1.0 and unit[-1] == 1.0
    assert torch.equal(unit_to_levels(unit, levels), x)
    assert torch.equal(
        unit_to_levels(torch.tensor([-5.0, 5.0]), levels), torch.tensor([0, levels - 1], dtype=torch.uint8)
    )


@pytest.mark.parametrize("levels", [2, 17, 256])
def test_dequantized_values_stay_in_their_levels_bin(levels: int) -> None:
    x = torch.randint(0, levels, (1000,), generator=torch.Generator().manual_seed(0)).to(torch.uint8)
    y = dequantize(x, levels, torch.Generator().manual_seed(1))
    assert y.min() >= -1.0 and y.max() <= 1.0
    assert torch.equal(unit_to_levels(y, levels), x)


def all_levels_and_params(levels: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Every level against a grid of means and log-scales, extreme ones included: (levels, params) each."""
    means = torch.tensor([-3.0, -1.0, -0.3, 0.0, 0.01, 0.5, 1.0, 4.0])
    log_scales = torch.tensor([-7.0, -4.0, -1.0, 0.0, 2.0])
    mean, log_scale = (t.flatten() for t in torch.meshgrid(means, log_scales, indexing="ij"))
    x = torch.arange(levels)[:, None].expand(levels, len(mean))
    return x, mean.expand_as(x), log_scale.expand_as(x)


@pytest.mark.parametrize("levels", [2, 3, 17, 256])
def test_discretized_logistic_sums_to_one_over_the_levels(levels: int) -> None:
    x, mean, log_scale = all_levels_and_params(levels)
    log_p = discretized_logistic_log_prob(x, mean, log_scale, levels)
    assert torch.isfinite(log_p).all()
    assert torch.allclose(log_p.double().exp().sum(0), torch.ones(log_p.shape[1], dtype=torch.float64), atol=1e-5)


def test_discretized_logistic_matches_the_difference_of_sigmoids() -> None:
    levels = 17
    x, mean, log_scale = all_levels_and_params(levels)
    centre, half_width, scale = levels_to_unit(x, levels).double(), 1.0 / (levels - 1), log_scale.double().exp()
    upper = torch.where(x == levels - 1, 1.0, torch.sigmoid((centre + half_width - mean) / scale))
    lower = torch.where(x == 0, 0.0, torch.sigmoid((centre - half_width - mean) / scale))
    naive = upper - lower
    ours = discretized_logistic_log_prob(x, mean, log_scale, levels).double().exp()
    assert torch.allclose(ours, naive, atol=1e-6)


def test_discretized_logistic_has_finite_gradients_far_from_the_bin() -> None:
    mean = torch.tensor([0.99, -0.99, 0.0], requires_grad=True)
    log_scale = torch.tensor([-7.0, -7.0, -7.0], requires_grad=True)
    x = torch.tensor([0, 255, 200])
    log_p = discretized_logistic_log_prob(x, mean, log_scale, 256)
    log_p.sum().backward()
    assert torch.isfinite(log_p).all() and log_p.max() < -100
    assert mean.grad is not None and torch.isfinite(mean.grad).all()
    assert log_scale.grad is not None and torch.isfinite(log_scale.grad).all()


def test_categorical_and_bernoulli_log_probs() -> None:
    logits = torch.randn(5, 4, 3, generator=torch.Generator().manual_seed(0))
    x = torch.randint(0, 4, (5, 3), generator=torch.Generator().manual_seed(1))
    expected = torch.log_softmax(logits, 1).gather(1, x[:, None]).squeeze(1)
    assert torch.allclose(categorical_log_prob(logits, x, dim=1), expected)
    assert categorical_log_prob(logits.bfloat16(), x, dim=1).dtype == torch.float32
    bits = torch.tensor([0, 1, 1])
    assert torch.allclose(
        bernoulli_log_prob(torch.tensor([0.3, -2.0, 5.0]), bits),
        torch.nn.functional.logsigmoid(torch.tensor([-0.3, -2.0, 5.0])),  # log(1 - sigmoid(a)) = log sigmoid(-a)
    )


def empirical_frequencies(draws: torch.Tensor, levels: int) -> torch.Tensor:
    return torch.bincount(draws.long().flatten(), minlength=levels).double() / draws.numel()


def test_samplers_draw_from_their_distributions() -> None:
    n, levels = 200_000, 5
    # A discretized logistic with its mass spread over several levels, both end bins included.
    mean, log_scale = torch.full((n,), 0.2), torch.full((n,), -1.0)
    draws = sample_discretized_logistic(mean, log_scale, levels, torch.Generator().manual_seed(0))
    probs = discretized_logistic_log_prob(torch.arange(levels), mean[:levels], log_scale[:levels], levels).exp()
    assert draws.dtype == torch.uint8
    assert torch.allclose(empirical_frequencies(draws, levels), probs.double(), atol=5e-3)

    logits = torch.tensor([0.0, 1.0, -1.0, 2.0, 0.5])
    draws = sample_categorical(logits[None].expand(n, levels), torch.Generator().manual_seed(0), dim=1)
    assert draws.shape == (n,)
    assert torch.allclose(empirical_frequencies(draws, levels), torch.softmax(logits, 0).double(), atol=5e-3)

    draws = sample_bernoulli(torch.full((n,), 0.7), torch.Generator().manual_seed(0))
    assert abs(draws.double().mean().item() - torch.sigmoid(torch.tensor(0.7)).item()) < 5e-3


def test_samplers_are_reproducible_with_a_seeded_generator() -> None:
    logits = torch.randn(7, 5, 3)
    first = sample_categorical(logits, torch.Generator().manual_seed(3), dim=1)
    assert torch.equal(first, sample_categorical(logits, torch.Generator().manual_seed(3), dim=1))


def test_masked_conv_masks_for_one_channel() -> None:
    a = MaskedConv2d(1, 2, 3, "A").mask[0, 0]
    b = MaskedConv2d(1, 2, 3, "B").mask[0, 0]
    assert torch.equal(a, torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]]))
    assert torch.equal(b, torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0], [0.0, 0.0, 0.0]]))
    horizontal = MaskedConv2d(1, 1, (1, 5), "B").mask[0, 0]
    assert torch.equal(horizontal, torch.tensor([[1.0, 1.0, 1.0, 0.0, 0.0]]))


def test_masked_conv_groups_channels_at_the_centre() -> None:
    # Three data channels: output group g sees input groups < g (A) or <= g (B) at the centre pixel.
    a = MaskedConv2d(3, 6, 3, "A", data_channels=3).mask[:, :, 1, 1]
    b = MaskedConv2d(6, 3, 1, "B", data_channels=3).mask[:, :, 0, 0]
    groups_out, groups_in = torch.arange(6) % 3, torch.arange(3)
    assert torch.equal(a, (groups_out[:, None] > groups_in[None, :]).float())
    assert torch.equal(b, (torch.arange(3)[:, None] >= torch.arange(6)[None, :] % 3).float())


@pytest.mark.parametrize("mask_type", ["A", "B"])
def test_masked_conv_output_depends_only_on_earlier_pixels(mask_type: str) -> None:
    conv = MaskedConv2d(1, 4, 5, mask_type)  # type: ignore[arg-type]
    x = torch.randn(1, 1, 6, 6, requires_grad=True)
    row, col = 3, 2
    conv(x)[0, :, row, col].sum().backward()
    assert x.grad is not None
    seen = x.grad[0, 0] != 0
    order = torch.arange(36).view(6, 6)
    current = int(order[row, col])
    assert not seen[order > current].any()
    assert bool(seen[row, col]) == (mask_type == "B")
    assert seen[order < current].any()


def test_masked_conv_rejects_even_kernels() -> None:
    with pytest.raises(ValueError, match="odd"):
        MaskedConv2d(1, 1, 4, "A")
