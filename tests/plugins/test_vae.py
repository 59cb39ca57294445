"""VAE on tiny image spaces, where log p(x) can be computed exactly by integrating over a 1-D latent."""

from __future__ import annotations

import contextlib
import itertools
import math
from typing import Any

import pytest
import torch
from safetensors.torch import load_file, save_file

from conftest import cpu_context
from genbench import DataInfo, FitContext, GenbenchError, ImageData
from genbench_vae import VAE, VAEConfig, genbench_models

TINY = {"hidden": 32, "epochs": 30, "batch_size": 32, "lr": 3e-3}
#: (levels, config overrides, the decoder's likelihood): each decoder on a 2x2 image space small enough to list.
DECODERS = [
    (2, {}, "bernoulli"),
    (3, {}, "categorical"),
    (3, {"categorical_max_levels": 2}, "discretized_logistic"),
]
SHAPE = (1, 2, 2)


def all_images(shape: tuple[int, int, int], levels: int) -> torch.Tensor:
    values = list(itertools.product(range(levels), repeat=math.prod(shape)))
    return torch.tensor(values, dtype=torch.uint8).view(-1, *shape)


def structured_data(levels: int, n: int = 256, seed: int = 0) -> ImageData:
    """Images that are mostly one level throughout, so that the latent has something to encode."""
    generator = torch.Generator().manual_seed(seed)
    base = torch.randint(0, levels, (n, 1, 1, 1), generator=generator).expand(n, *SHAPE)
    noise = torch.randint(0, levels, (n, *SHAPE), generator=generator)
    flip = torch.rand(n, *SHAPE, generator=generator) < 0.15
    return ImageData(torch.where(flip, noise, base).to(torch.uint8), levels)


def trained_tiny_vae(levels: int, latent_dim: int, **overrides: Any) -> VAE:
    torch.manual_seed(0)
    model = VAE(VAEConfig(latent_dim=latent_dim, **{**TINY, **overrides}), DataInfo(SHAPE, levels))
    model.fit(structured_data(levels), cpu_context())
    return model


@torch.no_grad()
def exact_log_likelihood(model: VAE, images: torch.Tensor) -> torch.Tensor:
    """log p(x) = log of the integral of N(z; 0, 1) p(x|z) over a 1-D latent, by a Riemann sum on a fine grid."""
    z = torch.linspace(-12.0, 12.0, 8001)
    step = float(z[1] - z[0])
    grid = z[:, None, None].expand(len(z), len(images), 1)
    log_joint = model.log_p_x_given_z(grid, images).double() - 0.5 * (z[:, None].double() ** 2 + math.log(2 * math.pi))
    return torch.logsumexp(log_joint, 0) + math.log(step)


@pytest.mark.slow
@pytest.mark.parametrize(("levels", "overrides", "likelihood"), DECODERS)
def test_exact_likelihood_is_normalized_and_bounds_the_iwae_estimates(
    levels: int, overrides: dict[str, Any], likelihood: str
) -> None:
    model = trained_tiny_vae(levels, latent_dim=1, **overrides)
    assert model.likelihood == likelihood
    images = all_images(SHAPE, levels)
    exact = exact_log_likelihood(model, images)
    assert abs(exact.exp().sum().item() - 1.0) < 1e-4

    # The k-sample bound, averaged over independent repeats: its expectation grows with k towards log p(x)
    # (Burda et al. 2016, Theorem 1) and never exceeds it, here up to four standard errors of the average.
    repeats = 50
    means, gaps = [], []
    for k in (1, 10, 100, 1000):
        estimates = model.elbo(images.repeat(repeats, 1, 1, 1), k=k, generator=torch.Generator().manual_seed(k))
        estimates = estimates.double().view(repeats, len(images))
        standard_error = estimates.std(0) / math.sqrt(repeats)
        assert (estimates.mean(0) <= exact + 4 * standard_error + 1e-4).all(), f"k={k}: above log p(x)"
        means.append(estimates.mean().item())
        gaps.append((exact - estimates.mean(0)).abs().max().item())
    assert means == sorted(means) and means[-1] > means[0] + 0.01
    assert gaps[-1] < min(0.05, gaps[0] / 10)  # with 1,000 samples, within a few hundredths of a nat


@pytest.mark.parametrize(("levels", "overrides", "likelihood"), DECODERS)
def test_iwae_probabilities_of_all_images_sum_to_about_one(
    levels: int, overrides: dict[str, Any], likelihood: str
) -> None:
    model = trained_tiny_vae(levels, latent_dim=2, **overrides)
    assert model.likelihood == likelihood
    total = model.elbo(all_images(SHAPE, levels), k=2000).double().exp().sum().item()
    assert 0.97 < total < 1.01  # below one on average: exp of a lower bound in expectation


def test_closed_form_kl_agrees_with_the_monte_carlo_bound() -> None:
    # E[-ELBO] with the KL of Appendix B equals E[-log w] with k = 1, where the KL is estimated by sampling.
    model = trained_tiny_vae(3, latent_dim=2)
    images = all_images(SHAPE, 3).repeat(200, 1, 1, 1)
    eps = torch.randn(len(images), 2, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        closed_form = model.negative_elbo(images, eps).double().mean()
    sampled = -model.elbo(images, k=1, generator=torch.Generator().manual_seed(1)).double().mean()
    assert abs(closed_form.item() - sampled.item()) < 0.05


def test_elbo_is_chunked_and_deterministic_without_a_generator(monkeypatch: pytest.MonkeyPatch) -> None:
    model = VAE(VAEConfig(**TINY), DataInfo(SHAPE, 3))
    images = all_images(SHAPE, 3)[:10]
    whole = model.elbo(images, k=64)
    monkeypatch.setattr("genbench_vae.ELBO_CHUNK_VALUES", 1)  # one importance sample per chunk
    assert torch.allclose(model.elbo(images, k=64), whole, atol=1e-5)
    assert torch.equal(model.elbo(images, k=64), model.elbo(images, k=64))
    with pytest.raises(ValueError, match="k must be"):
        model.elbo(images, k=0)


@pytest.mark.parametrize("levels", [2, 17, 256])
def test_samples_have_the_datas_shape_type_and_range(levels: int) -> None:
    model = VAE(VAEConfig(**TINY), DataInfo((1, 5, 3), levels))
    samples = model.sample(40, torch.Generator().manual_seed(0))
    assert samples.shape == (40, 1, 5, 3) and samples.dtype == torch.uint8 and samples.device.type == "cpu"
    assert int(samples.max()) < levels
    assert torch.equal(samples, model.sample(40, torch.Generator().manual_seed(0)))


@pytest.mark.parametrize("levels", [2, 17, 256])
def test_checkpoint_round_trip_keeps_bound_and_samples(levels: int, tmp_path: Any) -> None:
    info = DataInfo((1, 3, 3), levels)
    torch.manual_seed(0)
    model = VAE(VAEConfig(**TINY), info)
    x = torch.randint(0, levels, (6, 1, 3, 3), dtype=torch.uint8)
    save_file(model.state_dict(), tmp_path / "model.safetensors")
    torch.manual_seed(1)
    loaded = VAE(VAEConfig(**TINY), info)
    loaded.load_state_dict(load_file(tmp_path / "model.safetensors"))
    assert torch.equal(model.elbo(x, k=10), loaded.elbo(x, k=10))
    assert torch.equal(
        model.sample(4, torch.Generator().manual_seed(2)), loaded.sample(4, torch.Generator().manual_seed(2))
    )


def fitted(seed: int, context: FitContext | None = None) -> VAE:
    torch.manual_seed(seed)
    model = VAE(VAEConfig(**{**TINY, "epochs": 3}), DataInfo(SHAPE, 3))
    model.fit(structured_data(3, n=64), context or cpu_context(seed))
    return model


def test_same_seed_gives_identical_training() -> None:
    images = all_images(SHAPE, 3)
    first, second, other = fitted(0), fitted(0), fitted(1)
    assert torch.equal(first.elbo(images, k=5), second.elbo(images, k=5))
    assert not torch.equal(first.elbo(images, k=5), other.elbo(images, k=5))


class BFloat16Context(FitContext):
    """The CUDA mixed-precision path (bfloat16 autocast) exercised on the CPU."""

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        return torch.autocast("cpu", dtype=torch.bfloat16)


def test_training_under_bfloat16_autocast_keeps_the_loss_in_float32() -> None:
    curve: list[dict[str, float]] = []
    context = BFloat16Context(
        torch.device("cpu"), 0, torch.Generator().manual_seed(0), on_curve=lambda s, v: curve.append(dict(v))
    )
    model = fitted(0, context)
    images = all_images(SHAPE, 3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert model.elbo(images, k=3).dtype == torch.float32
        assert model.negative_elbo(images, torch.zeros(len(images), model.config.latent_dim)).dtype == torch.float32
    assert len(curve) == 3 and curve[-1]["negative_elbo"] < curve[0]["negative_elbo"]


def test_bad_config_is_a_user_error() -> None:
    with pytest.raises(GenbenchError, match="latent_dim"):
        VAE(VAEConfig(latent_dim=0), DataInfo(SHAPE, 3))


def test_spec_and_capabilities() -> None:
    (spec,) = genbench_models()
    assert spec.name == "vae" and spec.config_class is VAEConfig
    model = spec.factory(spec.default_config(), DataInfo((1, 8, 8), 17))
    assert model.capabilities == {"sample", "elbo"}
    with pytest.raises(NotImplementedError):
        model.log_likelihood(torch.zeros(1, 1, 8, 8, dtype=torch.uint8))
