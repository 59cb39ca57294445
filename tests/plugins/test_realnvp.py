"""RealNVP on tiny shapes: log-determinants against brute-force Jacobians, invertibility, the dequantized bound
summed over every image, the multi-scale layout on odd sizes, sampling in range, actnorm through a checkpoint."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from typing import Any

import numpy
import pytest
import torch

from conftest import cpu_context
from genbench import DataInfo, ImageData
from genbench.testing import MODEL, load_plugins, model_checks
from genbench_realnvp import RealNVP, RealNVPConfig
from genbench_realnvp.layers import (
    ActNorm,
    AffineCoupling,
    InvertibleConv1x1,
    InvertibleLayer,
    LogitTransform,
    Squeeze,
    channel_mask,
    checkerboard_mask,
)

TINY: dict[str, Any] = {"features": 8, "couplings": 1}


def tiny(**overrides: Any) -> RealNVPConfig:
    return RealNVPConfig(**{**TINY, **overrides})


def randomized(module: torch.nn.Module, std: float = 0.3, seed: int = 0) -> torch.nn.Module:
    """Every parameter perturbed (the last layer of each s, t network starts at zero: the identity), in float64."""
    torch.manual_seed(seed)
    module.double()
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.add_(std * torch.randn_like(parameter))
    return module.eval()


def brute_force_log_det(function: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> float:
    """log |det J| of ``function`` at one image x (1, C, H, W), from the full D x D Jacobian by autograd."""
    shape = x.shape
    jacobian = torch.autograd.functional.jacobian(  # type: ignore[no-untyped-call]
        lambda flat: function(flat.view(shape)).flatten(), x.flatten(), vectorize=True
    )
    sign, log_abs_det = torch.linalg.slogdet(jacobian)
    assert sign != 0, "the Jacobian is singular: not invertible"
    return float(log_abs_det)


# ------------------------------------------------------------------------------------ conformance


def conformance_cases() -> list[Any]:
    spec = load_plugins().get(MODEL, "realnvp")
    gray = model_checks(spec, TINY, shape=DataInfo((1, 8, 8), 17))
    # Three channels with Glow's options: actnorm (the default) and the LU-decomposed 1x1 convolution.
    color = model_checks(spec, {**TINY, "conv1x1": "lu"}, shape=DataInfo((3, 4, 4), 5))
    return [pytest.param(check, id=f"1x8x8-{check.name}") for check in gray] + [
        pytest.param(check, id=f"3x4x4-lu-{check.name}") for check in color
    ]


@pytest.mark.parametrize("check", conformance_cases())
def test_realnvp_conforms_with_its_dequantized_bound(check: Any) -> None:
    check.run()  # raises ConformanceError on a failure; the dequantized bound and its importance-weighted form


# ------------------------------------------------------------------------- log-determinants, per layer


def layers_under_test() -> list[tuple[str, InvertibleLayer, tuple[int, int, int]]]:
    torch.manual_seed(0)
    actnorm = ActNorm(3)
    actnorm.train()
    actnorm(torch.randn(8, 3, 2, 3) * 2 + 1)  # the data-dependent initialization, then random parameters on top
    return [
        ("coupling-checkerboard-0", AffineCoupling(checkerboard_mask((2, 3, 3), 0), 4, 1), (2, 3, 3)),
        ("coupling-checkerboard-1", AffineCoupling(checkerboard_mask((1, 2, 3), 1), 4, 1), (1, 2, 3)),
        ("coupling-channel-0", AffineCoupling(channel_mask((4, 2, 1), 0), 4, 1), (4, 2, 1)),
        ("coupling-channel-1", AffineCoupling(channel_mask((3, 1, 2), 1), 4, 0), (3, 1, 2)),
        ("actnorm", actnorm, (3, 2, 3)),
        ("conv1x1-lu", InvertibleConv1x1(3, lu=True), (3, 2, 2)),
        ("conv1x1-plain", InvertibleConv1x1(3, lu=False), (3, 2, 2)),
        ("squeeze", Squeeze(), (2, 2, 4)),
    ]


LAYERS = layers_under_test()


@pytest.mark.parametrize(("name", "layer", "shape"), LAYERS, ids=[name for name, _, _ in LAYERS])
def test_each_layers_log_det_is_its_jacobians(name: str, layer: InvertibleLayer, shape: tuple[int, int, int]) -> None:
    randomized(layer)
    x = torch.randn(3, *shape, dtype=torch.float64)
    with torch.no_grad():
        _, log_det = layer(x)
    for i in range(len(x)):
        expected = brute_force_log_det(lambda v: layer(v)[0], x[i : i + 1])
        assert float(log_det[i]) == pytest.approx(expected, abs=1e-8)
    if name.startswith("coupling"):
        assert log_det.abs().max() > 1e-3, "a coupling whose log-det is 0 tests nothing: perturb it more"


def test_the_logit_preprocessings_log_det_is_its_jacobians() -> None:
    logit = LogitTransform(0.05)
    s = torch.rand(2, 1, 2, 3, dtype=torch.float64)
    _, log_det = logit(s)
    for i in range(len(s)):
        assert float(log_det[i]) == pytest.approx(brute_force_log_det(lambda v: logit(v)[0], s[i : i + 1]), abs=1e-9)


@pytest.mark.parametrize(
    ("shape", "overrides"),
    [((1, 4, 4), {"conv1x1": "lu"}), ((3, 2, 2), {"conv1x1": "plain"}), ((1, 3, 3), {"norm": "none"})],
    ids=["1x4x4-two-scales-lu", "3x2x2-two-scales-plain", "1x3x3-one-scale"],
)
def test_the_whole_flows_log_det_is_its_jacobians(shape: tuple[int, int, int], overrides: dict[str, Any]) -> None:
    model = randomized(RealNVP(tiny(scales=2, **overrides), DataInfo(shape, 4)))
    assert isinstance(model, RealNVP)

    def preprocess_and_flow(s: torch.Tensor) -> torch.Tensor:
        z: torch.Tensor = model.flow(model.logit(s)[0])[0]
        return z

    s = torch.rand(2, *shape, dtype=torch.float64)
    with torch.no_grad():
        y, logit_log_det = model.logit(s)
        z, flow_log_det = model.flow(y)
    for i in range(len(s)):
        expected = brute_force_log_det(preprocess_and_flow, s[i : i + 1])
        assert float(logit_log_det[i] + flow_log_det[i]) == pytest.approx(expected, abs=1e-7)
    # log p_S(s) is the standard normal's log-density of z plus those log-determinants (Dinh et al. 2017, eq. 3).
    gaussian = -0.5 * (z.square() + math.log(2 * math.pi)).sum(1)
    with torch.no_grad():
        torch.testing.assert_close(model.log_density(s), gaussian + logit_log_det + flow_log_det)


# ---------------------------------------------------------------------------------------- inverses


@pytest.mark.parametrize(("name", "layer", "shape"), LAYERS, ids=[name for name, _, _ in LAYERS])
def test_each_layer_inverts(name: str, layer: InvertibleLayer, shape: tuple[int, int, int]) -> None:
    randomized(layer)
    x = torch.randn(4, *shape, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(layer.inverse(layer(x)[0]), x)


@pytest.mark.parametrize(
    ("shape", "overrides"),
    [((1, 8, 8), {"scales": 3, "conv1x1": "lu"}), ((3, 5, 5), {}), ((1, 4, 6), {"conv1x1": "plain"}), ((3, 1, 2), {})],
    ids=["1x8x8-three-scales", "3x5x5-odd", "1x4x6", "3x1x2"],
)
def test_the_whole_flow_inverts(shape: tuple[int, int, int], overrides: dict[str, Any]) -> None:
    model = randomized(RealNVP(tiny(**overrides), DataInfo(shape, 256)))
    assert isinstance(model, RealNVP)
    s = torch.rand(3, *shape, dtype=torch.float64)
    with torch.no_grad():
        z, _ = model.flow(model.logit(s)[0])
        assert z.shape == (3, math.prod(shape))
        torch.testing.assert_close(model.logit.inverse(model.flow.inverse(z)), s)


# --------------------------------------------------------------------- the bound over every image


def all_images(shape: tuple[int, int, int], levels: int) -> torch.Tensor:
    values = list(itertools.product(range(levels), repeat=math.prod(shape)))
    return torch.tensor(values, dtype=torch.uint8).view(-1, *shape)


@pytest.mark.slow  # about 3 s on one idle thread
def test_the_dequantized_bound_sums_to_at_most_one_over_every_image() -> None:
    """Every image of 1x2x2 with 3 levels, u integrated by Gauss-Legendre quadrature, 4^4 nodes per image.

    With the quadrature's weights w (positive, summing to 1), sum w log p is the bound and sum w p the probability
    P(x) (the integral of p_V over x's unit cube). exp(sum w log p) <= sum w p is Jensen's inequality, exactly, for
    the weighted average as for the expectation: so sum_x exp(bound) <= sum_x P(x). And sum_x P(x) is the integral
    of p_V over [0, L)^4, which is the mass the flow puts inside the logit's box, at most 1: it is checked against
    the share of the flow's own samples that fall inside the box, which tests the constants (D log L, the logit's
    log-det) independently. (The midpoint rule needed 8^4 nodes for 1%; Gauss-Legendre's 4^4 are well within it.)
    """
    shape, levels = (1, 2, 2), 3
    model = RealNVP(tiny(), DataInfo(shape, levels))
    fit_briefly(model, shape, levels)
    model.double()
    images = all_images(shape, levels)  # 81
    nodes, weights = numpy.polynomial.legendre.leggauss(4)  # on [-1, 1], weights summing to 2
    u = torch.cartesian_prod(*[torch.from_numpy((nodes + 1) / 2)] * 4).view(-1, *shape)  # (256, 1, 2, 2)
    w = torch.cartesian_prod(*[torch.from_numpy(weights / 2)] * 4).prod(1)  # (256,), summing to 1
    rows = images.repeat_interleave(len(u), 0)
    with torch.no_grad():
        log_p = model.discrete_bound(rows, u.repeat(len(images), 1, 1, 1)).view(len(images), len(u))
    bound = (log_p * w).sum(1)
    probability = (log_p.exp() * w).sum(1)
    assert (bound.exp() <= probability).all()
    bound_total, total = float(bound.exp().sum()), float(probability.sum())
    inside = share_of_samples_inside_the_box(model, shape)
    assert bound_total <= total <= 1.0
    assert total == pytest.approx(inside, abs=0.01), "the density's integral is not the mass inside the box"
    assert bound_total > 0.5, "a bound far below 1 everywhere tests little: fit the model more"
    # The model's own estimator, with many draws, estimates the same expectation: within four standard errors.
    draws = 64
    estimate = model.dequantized_bound(images, samples=draws)
    standard_error = ((log_p - bound[:, None]).square() * w).sum(1).sqrt() / math.sqrt(draws)
    assert ((estimate - bound).abs() <= 4 * standard_error + 0.01).all()
    # The importance-weighted form tends to log P(x) itself as k grows: with k = 256 it closes most of the gap, and
    # it stays below log P(x) on average over the images, within four standard errors (each image's is one draw).
    excess = model.importance_weighted_bound(images, k=256) - probability.log()
    assert float(-excess.mean()) < 0.2 * float((probability.log() - bound).mean())
    assert float(excess.mean()) <= 4 * float(excess.std()) / math.sqrt(len(excess))


def fit_briefly(model: RealNVP, shape: tuple[int, int, int], levels: int) -> None:
    """A few epochs on images skewed towards low values, so the flow is not the identity it starts as."""
    generator = torch.Generator().manual_seed(0)
    draws = torch.randint(0, levels, (2, 256, *shape), generator=generator)
    images = draws.min(0).values
    model.config.epochs = 5
    model.fit(ImageData(images.to(torch.uint8), levels), cpu_context())


def share_of_samples_inside_the_box(model: RealNVP, shape: tuple[int, int, int]) -> float:
    z = torch.randn(50_000, math.prod(shape), generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    with torch.no_grad():
        s = model.logit.inverse(model.flow.inverse(z))
    return float(((s >= 0) & (s < 1)).flatten(1).all(1).double().mean())


# ----------------------------------------------------------------------------------- architecture


@pytest.mark.parametrize(
    ("shape", "scales", "latents"),
    [
        ((1, 8, 8), 2, [(2, 4, 4), (2, 4, 4)]),
        ((1, 8, 8), 3, [(2, 4, 4), (4, 2, 2), (4, 2, 2)]),
        ((1, 28, 28), 4, [(2, 14, 14), (4, 7, 7), (4, 7, 7)]),  # 7 is odd: the third scale is the last
        ((3, 7, 7), 3, [(3, 7, 7)]),  # odd from the start: one scale, checkerboard couplings, no padding
        ((1, 2, 2), 2, [(2, 1, 1), (2, 1, 1)]),  # one pixel left: the last scale's couplings are channel-wise
    ],
)
def test_scales_stop_where_squeezing_meets_an_odd_size(
    shape: tuple[int, int, int], scales: int, latents: list[tuple[int, int, int]]
) -> None:
    model = RealNVP(tiny(scales=scales), DataInfo(shape, 2))
    assert model.flow.latent_shapes == latents
    assert sum(math.prod(latent) for latent in latents) == math.prod(shape)
    couplings = [layer for layer in model.flow.layers if isinstance(layer, AffineCoupling)]
    last = couplings[-1].mask[0]
    one_pixel = shape[1] * shape[2] == 4 ** (len(latents) - 1)
    assert bool((last == last[:, :1, :1]).all()) == one_pixel, "channel masks only where one pixel is left"


# -------------------------------------------------------------------------------------------- sampling


@pytest.mark.parametrize(("shape", "levels"), [((1, 7, 7), 2), ((3, 6, 5), 256), ((1, 8, 8), 17)])
def test_samples_are_in_range_even_from_a_wild_flow(shape: tuple[int, int, int], levels: int) -> None:
    # Large random parameters send many draws far outside the logit's box: they must clamp to the end levels.
    model = RealNVP(tiny(), DataInfo(shape, levels))
    randomized(model, std=2.0).float()
    images = model.sample(64, torch.Generator().manual_seed(0))
    assert images.dtype == torch.uint8 and images.shape == (64, *shape)
    assert int(images.max()) <= levels - 1
    assert {0, levels - 1} <= set(torch.unique(images).tolist()), "a wild flow should reach both end levels"


def test_samples_follow_the_flow_inside_the_box() -> None:
    # The level of a sample is floor(L * s) of the flow's s: draw s the same way and bin it by hand.
    shape, levels = (1, 2, 2), 3
    model = RealNVP(tiny(), DataInfo(shape, levels))
    fit_briefly(model, shape, levels)
    images = model.sample(500, torch.Generator().manual_seed(3))
    z = torch.randn(500, 4, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        s = model.logit.inverse(model.flow.inverse(z)).view(500, *shape)
    torch.testing.assert_close(images, (s * levels).floor().clamp(0, levels - 1).to(torch.uint8))


# ------------------------------------------------------------------------------------- checkpoints


def test_actnorm_stays_initialized_through_a_checkpoint() -> None:
    shape, levels = (1, 4, 4), 5
    torch.manual_seed(0)
    model = RealNVP(tiny(epochs=1), DataInfo(shape, levels))
    fit_briefly(model, shape, levels)
    state = model.state_dict()
    flags = [name for name in state if name.endswith("initialized")]
    assert flags and all(bool(state[name]) for name in flags)
    torch.manual_seed(1)
    loaded = RealNVP(tiny(epochs=1), DataInfo(shape, levels))
    loaded.load_state_dict(state)
    loaded.train()  # a training-mode pass on other data would reinitialize an actnorm that forgot
    loaded.discrete_bound(torch.full((4, *shape), levels - 1, dtype=torch.uint8), torch.rand(4, *shape))
    for name, value in loaded.state_dict().items():
        torch.testing.assert_close(value, state[name], msg=name)


def test_a_fresh_model_is_in_evaluation_mode_and_training_lowers_the_bound() -> None:
    shape, levels = (1, 4, 4), 5
    torch.manual_seed(0)
    model = RealNVP(tiny(), DataInfo(shape, levels))
    assert not model.training  # a loaded model is never fitted, and actnorm must not initialize on its first batch
    images = torch.randint(0, 2, (128, *shape), generator=torch.Generator().manual_seed(0)).to(torch.uint8)
    before = float(model.dequantized_bound(images).mean())
    model.config.epochs = 5
    model.fit(ImageData(images, levels), cpu_context())
    after = float(model.dequantized_bound(images).mean())
    assert not model.training
    assert after > before + 5.0, f"five epochs on two of five levels should raise the bound ({before} -> {after})"
