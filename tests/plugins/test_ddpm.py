"""DDPM on tiny shapes: every term of the bound against a direct computation, the bound below the exact likelihood of
a linear-Gaussian chain, DDIM against the ancestral sampler, samples in range, the ODE estimate, a steps sweep."""

from __future__ import annotations

import itertools
import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from scipy.stats import norm
from torch import nn

import genbench
from genbench import DataInfo, FitContext, ImageData, LikelihoodEstimate
from genbench.testing import MODEL, load_plugins, model_checks
from genbench_ddpm import DDPM, DDPMConfig, DDPMSampling

TINY: dict[str, Any] = {"base_channels": 8, "timesteps": 6}


def tiny(**overrides: Any) -> DDPMConfig:
    return DDPMConfig(**{**TINY, **overrides})


class ZeroNoise(nn.Module):
    """eps_theta = 0 everywhere: the reverse process is then a linear-Gaussian chain with a closed-form marginal."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.zeros(()))  # a parameter, so the model has a device

    def forward(self, x: torch.Tensor, time: torch.Tensor) -> torch.Tensor:
        return self.scale * x


#: For T = 1 and 2, a schedule whose last noise level keeps most of the signal (alpha_bar_T = exp(-0.55)): the default
#: one destroys it (exp(-10.05)), and the zero predictor's reverse means then lie hundreds of standard deviations out.
GENTLE = {"beta_start": 1e-4, "beta_end": 1e-3}


def zero_model(timesteps: int, shape: tuple[int, int, int], levels: int) -> DDPM:
    model = DDPM(tiny(timesteps=timesteps, **GENTLE), DataInfo(shape, levels))
    model.net = ZeroNoise()  # type: ignore[assignment]
    return model


def randomized(model: DDPM, seed: int = 0) -> DDPM:
    """Every weight perturbed, so that an untrained network (its last convolution starts at 0) predicts something."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.2 * torch.randn_like(parameter))
    return model.eval()


def all_images(shape: tuple[int, int, int], levels: int) -> torch.Tensor:
    values = list(itertools.product(range(levels), repeat=math.prod(shape)))
    return torch.tensor(values, dtype=torch.uint8).view(-1, *shape)


# ------------------------------------------------------------------- the schedule, written out independently


def alpha_bars(timesteps: int, beta_start: float = 1e-4, beta_end: float = 0.02) -> np.ndarray:
    """alpha_bar_t for t = 0..T of the VP SDE with beta(s) = 0.1 + 19.9 s (for the defaults), seen at s = t / T."""
    b0, b1 = 1000 * beta_start, 1000 * beta_end
    s = np.arange(timesteps + 1) / timesteps
    return np.exp(-(b0 * s + 0.5 * (b1 - b0) * s**2))


def test_at_1000_steps_the_betas_are_ho_et_al_s_linear_schedule() -> None:
    model = DDPM(tiny(timesteps=1000), DataInfo((1, 2, 2), 4))
    ho = np.linspace(1e-4, 0.02, 1000)
    assert np.allclose(model.schedule.beta[1:].numpy(), ho, rtol=0.1, atol=2e-5)
    assert np.allclose(model.schedule.alpha_bar.numpy(), alpha_bars(1000))
    # the same diffusion at any T: the last noise level does not depend on T, and no beta reaches 1
    for steps in (1, 2, 10, 100):
        small = DDPM(tiny(timesteps=steps), DataInfo((1, 2, 2), 4)).schedule
        assert float(small.alpha_bar[-1]) == pytest.approx(math.exp(-10.05))
        assert float(small.beta.max()) < 1


# ------------------------------------------------------------- every term of the bound, computed directly


def gaussian_kl(m1: np.ndarray, v1: float, m2: np.ndarray, v2: float) -> Any:
    """KL(N(m1, v1 I) || N(m2, v2 I)), the textbook formula summed over the last axis (the dimensions)."""
    return np.sum(0.5 * np.log(v2 / v1) + (v1 + (m1 - m2) ** 2) / (2 * v2) - 0.5, axis=-1)


def bin_log_prob(x0: np.ndarray, mean: np.ndarray, std: float, levels: int) -> Any:
    """log of the normal's mass over each value's bin, open at both ends, by scipy's CDF."""
    h = 1 / (levels - 1)
    upper = np.where(x0 > 1 - 1e-9, np.inf, x0 + h)
    lower = np.where(x0 < -1 + 1e-9, -np.inf, x0 - h)
    above, below = (upper - mean) / std, (lower - mean) / std
    # right of the mean the upper tails are the small numbers: 1 - 1 would lose them
    mass = np.where(below > 0, norm.sf(below) - norm.sf(above), norm.cdf(above) - norm.cdf(below))
    return np.sum(np.log(mass), axis=-1)


def direct_term(x: torch.Tensor, t: int, noise: np.ndarray, timesteps: int, levels: int) -> Any:
    """L_{t-1} of Ho et al. eq. 5 for a zero noise predictor, written from the paper's equations 4, 6, 7, 11, 13;
    ``noise`` (..., D) gives x_t, one term per row."""
    ab = alpha_bars(timesteps, **GENTLE)
    beta = 1 - ab[1:] / ab[:-1]  # beta[t - 1] is beta_t
    x0 = x.double().numpy().ravel() * 2 / (levels - 1) - 1
    x_t = math.sqrt(ab[t]) * x0 + math.sqrt(1 - ab[t]) * noise
    model_mean = x_t / math.sqrt(1 - beta[t - 1])  # eq. 11 with eps_theta = 0
    if t == 1:
        return -bin_log_prob(x0, model_mean, math.sqrt(beta[0]), levels)
    posterior_var = (1 - ab[t - 1]) / (1 - ab[t]) * beta[t - 1]
    posterior_mean = (math.sqrt(ab[t - 1]) * beta[t - 1] * x0 + math.sqrt(1 - beta[t - 1]) * (1 - ab[t - 1]) * x_t) / (
        1 - ab[t]
    )
    return gaussian_kl(posterior_mean, posterior_var, model_mean, posterior_var)


@pytest.mark.parametrize("timesteps", [1, 2])
@pytest.mark.parametrize("levels", [2, 4])
def test_every_term_of_the_bound_equals_the_direct_computation(timesteps: int, levels: int) -> None:
    shape = (1, 2, 2)
    model = zero_model(timesteps, shape, levels)
    rng = np.random.default_rng(0)
    for x in all_images(shape, levels)[:: max(1, levels**4 // 12)]:
        for t in range(1, timesteps + 1):
            noise = rng.standard_normal(4)
            got = model.bound_terms(x[None], torch.tensor([t]), torch.from_numpy(noise).view(1, *shape))
            direct = float(direct_term(x, t, noise, timesteps, levels))
            assert float(got[0]) == pytest.approx(direct, rel=1e-9, abs=1e-9)
        x0 = x.double().numpy().ravel() * 2 / (levels - 1) - 1
        ab_last = alpha_bars(timesteps, **GENTLE)[-1]
        prior = float(gaussian_kl(math.sqrt(ab_last) * x0, 1 - ab_last, np.zeros(4), 1.0))
        got_prior = genbench_ddpm_prior(model, x)
        assert got_prior == pytest.approx(prior, rel=1e-9, abs=1e-12)


def genbench_ddpm_prior(model: DDPM, x: torch.Tensor) -> float:
    from genbench_ddpm.schedule import prior_kl

    x0 = x[None].double() * 2 / (model.info.levels - 1) - 1
    return float(prior_kl(x0, float(model.schedule.alpha_bar[-1]))[0])


def exact_log_prob(x: torch.Tensor, timesteps: int, levels: int) -> float:
    """log P(x) of the zero-predictor model: x_T ~ N(0, 1), x_{t-1} = x_t / sqrt(alpha_t) + sqrt(beta~_t) z for t > 1,
    x_0 = x_1 / sqrt(alpha_1) + sqrt(beta_1) z, binned: each dimension a centred normal of the variance so carried."""
    ab = alpha_bars(timesteps, **GENTLE)
    beta = 1 - ab[1:] / ab[:-1]
    variance = 1.0
    for t in range(timesteps, 1, -1):
        variance = variance / (1 - beta[t - 1]) + (1 - ab[t - 1]) / (1 - ab[t]) * beta[t - 1]
    variance = variance / (1 - beta[0]) + beta[0]
    x0 = x.double().numpy().ravel() * 2 / (levels - 1) - 1
    return float(bin_log_prob(x0, np.zeros_like(x0), math.sqrt(variance), levels))


def expected_bound(x: torch.Tensor, timesteps: int, levels: int) -> float:
    """E_q[-(L_T + sum_t L_{t-1})]: every term is a sum over dimensions of a function of one standard normal draw, so
    its expectation is a one-dimensional Gauss-Hermite quadrature per term (60 nodes: exact to rounding here)."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(60)
    weights = weights / weights.sum()
    x0 = x.double().numpy().ravel() * 2 / (levels - 1) - 1
    ab_last = alpha_bars(timesteps, **GENTLE)[-1]
    total = float(gaussian_kl(math.sqrt(ab_last) * x0, 1 - ab_last, np.zeros_like(x0), 1.0))
    noise = np.repeat(nodes[:, None], len(x0), axis=1)  # node k in every dimension: sums E over dimensions
    for t in range(1, timesteps + 1):
        total += float(weights @ direct_term(x, t, noise, timesteps, levels))
    return -total


@pytest.mark.parametrize("timesteps", [1, 2])
def test_the_bound_is_below_the_exact_likelihood_and_sums_to_at_most_one(timesteps: int) -> None:
    shape, levels, draws = (1, 2, 2), 3, 100
    model = zero_model(timesteps, shape, levels)
    images = all_images(shape, levels)
    exact = torch.tensor([exact_log_prob(x, timesteps, levels) for x in images], dtype=torch.float64)
    expected = torch.tensor([expected_bound(x, timesteps, levels) for x in images], dtype=torch.float64)
    assert float(exact.exp().sum()) == pytest.approx(1.0, abs=1e-9)  # the direct computation is a distribution
    assert bool((expected < exact - 1e-3).all())  # a strict bound: q(x_1 | x_0) is not the model's posterior
    assert float(expected.exp().sum()) < 1.0
    # The model's bound, one draw of x_t per term and per row, has that expectation.
    rows = images.repeat(draws, 1, 1, 1)
    bound = model.variational_bound(rows)
    assert isinstance(bound, torch.Tensor)
    bound = bound.double().view(draws, len(images))
    error = bound.std(0) / math.sqrt(draws)
    assert bool(((bound.mean(0) - expected).abs() <= 4 * error + 1e-4).all())


def test_sampled_terms_estimate_the_full_sum_without_bias() -> None:
    model = randomized(DDPM(tiny(timesteps=8), DataInfo((1, 4, 4), 5)))
    x = torch.randint(0, 5, (64, 1, 4, 4), dtype=torch.uint8)
    full = model.variational_bound(x)
    sampled = model.variational_bound(x, terms=3)
    assert isinstance(full, torch.Tensor) and isinstance(sampled, LikelihoodEstimate)
    assert bool((sampled.stderr > 0).all())
    difference = (sampled.log_p - full).double()
    # Each image's x_t draws differ between the two, so compare on average, against the sampling's own error.
    allowance = 4 * math.sqrt(float(sampled.stderr.double().square().sum())) / len(x) + 4 * float(
        difference.std()
    ) / math.sqrt(len(x))
    assert abs(float(difference.mean())) <= allowance
    assert isinstance(model.variational_bound(x, terms=8), torch.Tensor)  # all T terms: the bound itself
    with pytest.raises(ValueError, match="terms must be at least 2"):
        model.variational_bound(x, terms=1)


# ----------------------------------------------------------------------------------------------- sampling


def test_ddim_with_eta_one_is_the_ancestral_sampler_draw_for_draw() -> None:
    model = randomized(DDPM(tiny(timesteps=10), DataInfo((1, 4, 4), 17)))
    x0 = {}
    for name, options in {
        "ancestral": DDPMSampling("ancestral"),
        "ddim": DDPMSampling("ddim", eta=1.0),
        "ancestral5": DDPMSampling("ancestral", steps=5),
        "ddim5": DDPMSampling("ddim", steps=5, eta=1.0),
        "deterministic": DDPMSampling("ddim", steps=5, eta=0.0),
    }.items():
        model.sample_options = options
        x0[name] = model.sample_unit(16, torch.Generator().manual_seed(3))
    assert torch.allclose(x0["ancestral"], x0["ddim"], atol=1e-4)
    assert torch.allclose(x0["ancestral5"], x0["ddim5"], atol=1e-4)
    assert not torch.allclose(x0["ddim5"], x0["deterministic"], atol=1e-2)  # eta = 0 adds no noise
    assert (x0["ancestral"] - x0["ancestral5"]).abs().max() > 1e-2  # fewer steps: another sampler


@pytest.mark.parametrize(("shape", "levels"), [((1, 7, 7), 2), ((3, 8, 8), 256), ((1, 9, 5), 17)])
@pytest.mark.parametrize("sampler", ["ancestral", "ddim"])
def test_samples_are_uint8_images_in_range(shape: tuple[int, int, int], levels: int, sampler: str) -> None:
    model = randomized(DDPM(tiny(), DataInfo(shape, levels)))
    model.sample_options = DDPMSampling(sampler, steps=3)  # type: ignore[arg-type]
    images = model.sample(5, torch.Generator().manual_seed(0))
    assert images.dtype == torch.uint8 and images.shape == (5, *shape)
    assert int(images.max()) < levels
    assert int(images.max()) > int(images.min())


def test_network_evaluations_follow_the_steps() -> None:
    model = DDPM(tiny(timesteps=12), DataInfo((1, 4, 4), 4))
    assert model.network_evaluations == 12
    model.sample_options = DDPMSampling("ddim", steps=5)
    assert model.network_evaluations == 5
    assert model.schedule.subsequence(5) == [2, 5, 7, 10, 12]
    assert model.schedule.subsequence(12) == list(range(1, 13))
    with pytest.raises(ValueError, match="steps must be at least 1"):
        DDPMSampling(steps=0)
    with pytest.raises(ValueError, match="sampler must be one of"):
        DDPMSampling("euler")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------- training


@pytest.mark.slow  # eight epochs
def test_a_short_fit_lowers_the_loss_and_survives_a_checkpoint(tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    info = DataInfo((1, 4, 4), 5)
    torch.manual_seed(0)
    model = DDPM(tiny(epochs=8, lr=3e-3), info)
    images = torch.randint(0, 5, (4, 1, 4, 4), dtype=torch.uint8).repeat(16, 1, 1, 1)
    curve: list[float] = []
    ctx = FitContext(
        torch.device("cpu"), 0, torch.Generator().manual_seed(0), on_curve=lambda _, v: curve.append(v["simple_loss"])
    )
    model.fit(ImageData(images, 5), ctx)
    assert curve[-1] < curve[0]
    save_file(model.state_dict(), tmp_path / "ddpm.safetensors")
    loaded = DDPM(tiny(epochs=8, lr=3e-3), info)
    loaded.load_state_dict(load_file(tmp_path / "ddpm.safetensors"))
    loaded.eval()
    assert torch.equal(loaded.variational_bound(images[:4]), model.variational_bound(images[:4]))  # type: ignore[arg-type]


# --------------------------------------------------------------------------------- the ODE likelihood


def test_the_ode_estimate_matches_the_gaussian_flow_of_a_zero_predictor() -> None:
    # With eps_theta = 0 the flow is dy/ds = -beta(s) y / 2: it carries N(0, I) at s = 1 back to N(0, v I) at the data
    # end s = 1/T, v = exp(B(1) - B(1/T)), whose mass over each bin is known. Inner levels only: their bins are
    # finite, and the density is nearly flat over them, so a few uniform draws integrate it well.
    timesteps, levels = 4, 4
    model = zero_model(timesteps, (1, 2, 2), levels)
    (ode,) = [likelihood for likelihood in model.likelihoods if likelihood.name == "ode"]
    assert ode.kind == genbench.DEQUANTIZED == "dequantized bound"
    x = all_images((1, 2, 2), levels)
    x = x[((x == 1) | (x == 2)).flatten(1).all(1)]
    # 16 draws: the standard error comes from the spread of the draws, itself an estimate, too rough from 4
    estimate = ode.compute(x, **{**ode.settings, "draws": 16})
    assert isinstance(estimate, LikelihoodEstimate)
    assert bool(torch.isfinite(estimate.stderr).all() and (estimate.stderr >= 0).all())
    ab = alpha_bars(timesteps, **GENTLE)
    std = math.sqrt(ab[1] / ab[-1])  # exp(B(1) - B(1/T))
    for image, log_p, stderr in zip(x, estimate.log_p, estimate.stderr, strict=True):
        x0 = image.double().numpy().ravel() * 2 / (levels - 1) - 1
        exact = float(bin_log_prob(x0, np.zeros_like(x0), std, levels))
        assert float(log_p) == pytest.approx(exact, abs=4 * float(stderr) + 1e-3)


@pytest.mark.slow  # an adaptive solver through a network: hundreds of evaluations
def test_the_ode_estimate_of_a_network_is_finite_with_a_standard_error() -> None:
    model = DDPM(tiny(timesteps=4), DataInfo((1, 2, 2), 4))
    torch.manual_seed(0)
    with torch.no_grad():  # a small output: the untrained network's last convolution is 0
        model.net.output.weight.normal_(0, 0.01)
    (ode,) = [likelihood for likelihood in model.likelihoods if likelihood.name == "ode"]
    x = all_images((1, 2, 2), 4)[::51]
    for draws in (1, 3):
        estimate = ode.compute(x, **{**ode.settings, "draws": draws})
        assert isinstance(estimate, LikelihoodEstimate)
        assert bool(torch.isfinite(estimate.log_p).all() and (estimate.log_p < 0).all())
        assert bool(torch.isfinite(estimate.stderr).all() and (estimate.stderr >= 0).all())
        assert float(estimate.stderr.max()) > 0


# ------------------------------------------------------------------------------------------ conformance


def conformance_cases() -> list[Any]:
    spec = load_plugins().get(MODEL, "ddpm")
    gray = model_checks(spec, TINY, shape=DataInfo((1, 8, 8), 17))
    color = model_checks(spec, {**TINY, "attention": True}, shape=DataInfo((3, 4, 4), 5))
    return [pytest.param(check, id=f"1x8x8-{check.name}") for check in gray] + [
        pytest.param(check, id=f"3x4x4-{check.name}") for check in color
    ]


@pytest.mark.slow  # the normalization check solves the ODE for every image of two tiny shapes
@pytest.mark.parametrize("check", conformance_cases())
def test_ddpm_conforms_with_its_bound_and_its_ode_bound(check: Any) -> None:
    # The normalization check sums exp(likelihood) over every image: at most 1 for both, the variational bound and
    # the dequantized ODE bound. After one epoch the network still predicts eps ~ 0 and the ODE carries N(0, I) back
    # to N(0, e^10 I), so most of the mass lies far out in the end bins and the ODE bound is loose (about 1e-5 in
    # all): loose, but a bound, which is what its kind promises.
    check.run()


# ------------------------------------------------------------------------------- a sweep of the steps


@pytest.mark.slow  # a subprocess that trains on the digits
def test_a_steps_sweep_from_the_command_line_trains_once(tmp_path: Path) -> None:
    suite = tmp_path / "tiny.toml"
    suite.write_text("[model.ddpm]\nbase_channels = 8\ntimesteps = 10\nepochs = 1\n")
    command = [sys.executable, "-m", "genbench", "run", "--models", "ddpm", "--metrics", "sample_time",
               "--config", str(suite), "--sample-option", "ddpm.steps=2,5,10", "--sample-option", "ddpm.sampler=ddim",
               "--results-dir", str(tmp_path), "--name", "sweep", "--device", "cpu"]  # fmt: skip
    subprocess.run(command, check=True, capture_output=True, text=True)
    records = [json.loads(path.read_text()) for path in (tmp_path / "sweep" / "cells").glob("ddpm-*.json")]
    assert sorted(record["sample_options"]["steps"] for record in records) == [2, 5, 10]
    assert {record["status"] for record in records} == {"ok"}
    assert len({record["checkpoint_key"] for record in records}) == 1
    assert len(list((tmp_path / "sweep" / "checkpoints").glob("*.safetensors"))) == 1  # trained once
    assert sorted(record["provenance"]["sample_time"]["nfe"] for record in records) == [2, 5, 10]
