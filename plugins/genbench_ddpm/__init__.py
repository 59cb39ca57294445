"""DDPM: a denoising diffusion model with epsilon prediction, ancestral and DDIM samplers, and two likelihoods.

Ho et al. (2020), "Denoising Diffusion Probabilistic Models". Data in {0..levels-1} are mapped to [-1, 1] (x ->
2x / (levels - 1) - 1, their Section 3.3), noised by the forward process of ``schedule.py``, and a U-Net
(``genbench.toolkit.unet``, their Appendix B) learns eps_theta(x_t, t) with the simple loss (eq. 14):

    L_simple = E_{t ~ U{1..T}, x_0, eps ~ N(0, I)} || eps - eps_theta(x_t, t) ||^2,
    x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps

The reverse process p_theta(x_{t-1} | x_t) = N(mu_theta(x_t, t), sigma_t^2 I) has the mean of eq. 11,
mu_theta = (x_t - beta_t / sqrt(1 - alpha_bar_t) eps_theta) / sqrt(alpha_t), and the posterior's variance
sigma_t^2 = beta~_t (eq. 7; Ho et al. find it and beta_t equally good for samples). With it, DDIM with eta = 1 on
every step is exactly this ancestral sampler (Song, Meng & Ermon 2021, eq. 16). The last step p_theta(x_0 | x_1)
is the discretized Gaussian decoder of eq. 13 with variance beta_1, since beta~_1 = 0.

Likelihoods (both in nats of the discrete images):

- ``vlb``: the variational bound of eq. 5, L_T + sum_{t>1} L_{t-1} + L_0, every KL in closed form; one draw of
  x_t ~ q(x_t | x_0) per term, so it is a bound in expectation, as a VAE's ELBO is;
- ``ode``: the probability-flow ODE of the same diffusion (``ode_likelihood.py``), a stochastic estimate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

import genbench
from genbench import DataInfo, FitContext, ImageData, LikelihoodEstimate
from genbench.toolkit.checks import require_at_least, require_positive
from genbench.toolkit.devices import to_device
from genbench.toolkit.nn import levels_to_unit, unit_to_levels
from genbench.toolkit.training import fit_by_minimizing
from genbench.toolkit.unet import UNet
from genbench_ddpm.ode_likelihood import ode_log_likelihood
from genbench_ddpm.schedule import (
    Schedule,
    discretized_gaussian_log_prob,
    gaussian_kl_equal_variance,
    prior_kl,
)

#: The bound draws x_t from a generator seeded with this, so that it is a fixed function of the weights and the
#: data: a checkpoint gives the same number whether it was just trained or loaded.
BOUND_NOISE_SEED = 0
#: Rows (an image at one step) per network call when the bound sums its T terms.
BOUND_CHUNK_ROWS = 512
SAMPLERS = ("ancestral", "ddim")


@dataclass
class DDPMConfig:
    # T, the number of diffusion steps. 100 keeps the default fit, the bound (T network calls per image) and ancestral
    # sampling affordable on one CPU thread; the schedule is the same diffusion at any T (schedule.py). Paper: 1000.
    timesteps: int = 100
    beta_start: float = 1e-4  # beta_1 of Ho et al.'s linear schedule at T = 1000; rescaled for other T (schedule.py)
    beta_end: float = 0.02  # beta_T at T = 1000
    # U-Net width; its depth comes from the image (toolkit.unet.default_channel_mults: (1, 2) on 8x8). CIFAR-10 in
    # the paper: 128 channels, mults (1, 2, 2, 2), 2 blocks per level, attention at 16x16, dropout 0.1.
    base_channels: int = 32
    blocks_per_level: int = 1
    attention: bool = False  # self-attention at the lowest resolution; pays on 16x16 and above
    dropout: float = 0.0  # 0.1 on CIFAR-10 in the paper; the small default model does not overfit in 40 s
    # ~40 s on one CPU thread for the 1,438 digits, as long as the PixelCNN's default. The paper: 800k steps of
    # batch 128 at lr 2e-4 (CIFAR-10) with an EMA of 0.9999, which over a run this short would keep mostly the
    # initial weights, so there is none here.
    epochs: int = 60
    batch_size: int = 64
    lr: float = 2e-3  # Adam's first step, decayed to zero on a cosine; 2e-4 in the paper, for 800k steps
    grad_clip: float = 1.0  # Ho et al. clip the gradient norm to 1

    def __post_init__(self) -> None:
        require_at_least(self, 1, "timesteps", "base_channels", "blocks_per_level", "epochs", "batch_size")
        require_positive(self, "beta_start", "beta_end", "lr", "grad_clip")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.beta_end < self.beta_start:
            raise ValueError(f"beta_end ({self.beta_end}) must be at least beta_start ({self.beta_start})")


@dataclass
class DDPMSampling:
    """How a trained DDPM draws samples: evaluation-time options, so a sweep reuses one checkpoint."""

    # "ancestral": Ho et al. Algorithm 2 (on a subsequence of the steps, Nichol & Dhariwal 2021's strided sampling);
    # "ddim": Song, Meng & Ermon (2021), eq. 12, deterministic for eta = 0.
    sampler: Literal["ancestral", "ddim"] = "ancestral"
    steps: int | None = None  # network evaluations per sample, evenly spaced over 1..T; None: all T
    eta: float = 0.0  # DDIM's noise scale (eq. 16): 0 deterministic, 1 the ancestral sampler's variance

    def __post_init__(self) -> None:
        if self.sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {', '.join(SAMPLERS)}, got {self.sampler!r}")
        if self.steps is not None and self.steps < 1:
            raise ValueError(f"steps must be at least 1, got {self.steps}")
        if self.eta < 0:
            raise ValueError(f"eta must be at least 0, got {self.eta}")


class DDPM(nn.Module):
    capabilities = frozenset({genbench.SAMPLE, genbench.LIKELIHOODS})

    def __init__(self, config: DDPMConfig, info: DataInfo) -> None:
        super().__init__()
        self.config, self.info = config, info
        self.schedule = Schedule(config.timesteps, config.beta_start, config.beta_end)
        self.net = UNet(
            *info.shape,
            base_channels=config.base_channels,
            blocks_per_level=config.blocks_per_level,
            attention=config.attention,
            dropout=config.dropout,
        )
        self.sample_options = DDPMSampling()
        self.likelihoods = [
            genbench.Likelihood(
                "vlb",
                genbench.VARIATIONAL_BOUND,
                self.variational_bound,
                {"terms": None},
                "variational bound of Ho et al. (2020), eq. 5 with the discretized decoder of eq. 13; all T terms "
                "(terms=k: an unbiased estimate of it from k steps drawn per image, with its standard error)",
            ),
            genbench.Likelihood(
                "ode",
                # A bound, not an estimate of log P(x) itself: the log of an importance-sampled bin integral is at
                # most log P(x) in expectation (Jensen), as the uniformly dequantized bound it tightens is.
                genbench.DEQUANTIZED,
                self.ode_likelihood,
                {"draws": 4, "probes": 1, "rtol": 1e-5, "atol": 1e-5},
                "probability-flow ODE (Song et al. 2021) with Hutchinson's trace, dopri5, the density integrated over "
                "each value's bin by importance sampling with `draws` points: a dequantized lower bound on log P(x) "
                "(draws=1: uniform dequantization) with the standard error of its draws and probes",
            ),
        ]

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def network_evaluations(self) -> int:
        return self.sample_options.steps or self.config.timesteps

    def predict_noise(self, x_t: torch.Tensor, step: torch.Tensor) -> torch.Tensor:
        """eps_theta(x_t, t) for integer steps t in 1..T (the network sees t / T in [0, 1])."""
        prediction: torch.Tensor = self.net(x_t, step.to(x_t.device).float() / self.config.timesteps)
        return prediction

    def table(self, values: torch.Tensor, step: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """Schedule values at each row's step, shaped to broadcast over an image batch like ``like``."""
        return values[step.cpu()].to(like.device, like.dtype).view(-1, *[1] * (like.dim() - 1))

    def noised(self, x0: torch.Tensor, step: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps, a draw of q(x_t | x_0) (Ho et al. eq. 4)."""
        alpha_bar = self.table(self.schedule.alpha_bar, step, x0)
        return alpha_bar.sqrt() * x0 + (1.0 - alpha_bar).sqrt() * noise

    # ------------------------------------------------------------------------------------------ training

    def fit(self, train: ImageData, ctx: FitContext) -> None:
        steps = self.config.timesteps

        def loss_of(batch: torch.Tensor) -> torch.Tensor:
            x0 = levels_to_unit(batch, self.info.levels)
            gen = ctx.generator
            step = torch.randint(1, steps + 1, (len(batch),), generator=gen, device=gen.device)
            noise = to_device(torch.randn(x0.shape, generator=gen, device=gen.device), x0.device)
            predicted = self.predict_noise(self.noised(x0, step, noise), step)
            return (noise - predicted.float()).square().flatten(1).sum(1).mean()  # eq. 14, per image

        fit_by_minimizing(
            self,
            loss_of,
            train,
            ctx,
            lr=self.config.lr,
            epochs=self.config.epochs,
            batch_size=self.config.batch_size,
            dims=self.info.dims,
            curve_name="simple_loss",
            grad_clip=self.config.grad_clip,
            desc="ddpm",
        )

    # ------------------------------------------------------------------------------------------ sampling

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """Images by the chosen sampler: the final x_0 clipped to [-1, 1] and rounded to the nearest level."""
        return unit_to_levels(self.sample_unit(n, generator).clamp(-1.0, 1.0), self.info.levels).cpu()

    @torch.no_grad()
    def sample_unit(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """The continuous x_0 (n, C, H, W) the sampler ends at, from x_T ~ N(0, I), on the model's device.

        Both samplers draw x_T and then one noise tensor per step except the last from ``generator``, in the same
        order, so DDIM with eta = 1 reproduces the ancestral sampler draw for draw on any subsequence.
        """
        options = self.sample_options
        device = self.device
        x = torch.randn(n, *self.info.shape, generator=generator).to(device)
        steps = self.schedule.subsequence(options.steps or self.config.timesteps)
        for current, previous in zip(reversed(steps), [*reversed(steps[:-1]), 0], strict=True):
            eps = self.predict_noise(x, torch.full((n,), current, dtype=torch.long)).float()
            noise = torch.randn(x.shape, generator=generator).to(device) if previous > 0 else None
            if options.sampler == "ancestral":
                x = self.ancestral_step(x, eps, current, previous, noise)
            else:
                x = self.ddim_step(x, eps, current, previous, noise, options.eta)
        return x

    def ancestral_step(
        self, x: torch.Tensor, eps: torch.Tensor, current: int, previous: int, noise: torch.Tensor | None
    ) -> torch.Tensor:
        """x_s ~ p_theta(x_s | x_t), s < t: Ho et al. Algorithm 2, line 4, with the betas of the step from t to s.

        For s = t - 1 these are the schedule's own; on a subsequence, beta' = 1 - alpha_bar_t / alpha_bar_s (Nichol &
        Dhariwal 2021, Section 4). The variance is the posterior's, (1 - alpha_bar_s) / (1 - alpha_bar_t) beta'; none
        at the last step (Algorithm 2: z = 0 for t = 1).
        """
        alpha_bar_t = float(self.schedule.alpha_bar[current])
        alpha_bar_s = float(self.schedule.alpha_bar[previous])
        beta = 1.0 - alpha_bar_t / alpha_bar_s
        mean = (x - beta / math.sqrt(1.0 - alpha_bar_t) * eps) / math.sqrt(1.0 - beta)  # eq. 11
        if noise is None:
            return mean
        variance = (1.0 - alpha_bar_s) / (1.0 - alpha_bar_t) * beta  # eq. 7
        return mean + math.sqrt(variance) * noise

    def ddim_step(
        self, x: torch.Tensor, eps: torch.Tensor, current: int, previous: int, noise: torch.Tensor | None, eta: float
    ) -> torch.Tensor:
        """Song, Meng & Ermon (2021), eq. 12, with sigma of eq. 16 scaled by eta:

        x_s = sqrt(alpha_bar_s) x0_hat + sqrt(1 - alpha_bar_s - sigma^2) eps + sigma z,
        x0_hat = (x_t - sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_bar_t).
        """
        alpha_bar_t = float(self.schedule.alpha_bar[current])
        alpha_bar_s = float(self.schedule.alpha_bar[previous])
        x0_hat = (x - math.sqrt(1.0 - alpha_bar_t) * eps) / math.sqrt(alpha_bar_t)
        sigma = eta * math.sqrt((1.0 - alpha_bar_s) / (1.0 - alpha_bar_t) * (1.0 - alpha_bar_t / alpha_bar_s))
        x = math.sqrt(alpha_bar_s) * x0_hat + math.sqrt(max(1.0 - alpha_bar_s - sigma**2, 0.0)) * eps
        return x if noise is None else x + sigma * noise

    # ---------------------------------------------------------------------------------------- likelihoods

    def log_likelihood(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError("a DDPM's log-likelihood is intractable; see its likelihoods: vlb (a bound), ode")

    def elbo(self, x: torch.Tensor, k: int = 1) -> torch.Tensor:
        raise NotImplementedError("a DDPM has no importance-weighted bound; its bound is the likelihood 'vlb'")

    def reverse_mean(self, x_t: torch.Tensor, eps: torch.Tensor, step: torch.Tensor) -> torch.Tensor:
        """mu_theta(x_t, t) = (x_t - beta_t / sqrt(1 - alpha_bar_t) eps_theta) / sqrt(alpha_t) (Ho et al. eq. 11)."""
        beta = self.table(self.schedule.beta, step, x_t)
        alpha_bar = self.table(self.schedule.alpha_bar, step, x_t)
        return (x_t - beta / (1.0 - alpha_bar).sqrt() * eps) / (1.0 - beta).sqrt()

    @torch.no_grad()
    def bound_terms(self, x: torch.Tensor, step: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """L_{t-1} in nats per row, for uint8 images x (n, C, H, W) each at its step t in 1..T, with x_t drawn by
        ``noise``: the KL of eq. 5 for t > 1 (the two variances equal, eq. 8), -log p_theta(x_0 | x_1) for t = 1."""
        x0 = levels_to_unit(x, self.info.levels).double()
        x_t = self.noised(x0, step, noise.double())
        eps = self.predict_noise(x_t.float(), step).double()
        mean_p = self.reverse_mean(x_t, eps, step)
        posterior_mean = (
            self.table(self.schedule.coef_x0, step, x0) * x0 + self.table(self.schedule.coef_xt, step, x0) * x_t
        )
        variance = self.table(self.schedule.posterior_variance, step, x0)
        kl = gaussian_kl_equal_variance(posterior_mean, mean_p, variance.clamp(min=1e-300))
        decoder_std = math.sqrt(float(self.schedule.beta[1]))
        decoder = -discretized_gaussian_log_prob(x0, mean_p, decoder_std, self.info.levels)
        return torch.where(step.to(x.device) == 1, decoder, kl)

    @torch.no_grad()
    def variational_bound(
        self, x: torch.Tensor, terms: int | None = None, generator: torch.Generator | None = None
    ) -> torch.Tensor | LikelihoodEstimate:
        """-(L_T + sum_{t=2}^T L_{t-1} + L_0) <= log p(x) in nats per image (Ho et al. eq. 5), each L_{t-1} at its own
        draw of x_t (improved-diffusion's calc_bpd_loop does the same), in batches of network calls.

        ``terms=k < T`` evaluates k steps drawn without replacement per image and scales their sum by T / k: an
        unbiased estimate of the bound, returned with its standard error (over the steps, finite-population
        corrected), not the bound itself.
        """
        steps = self.config.timesteps
        generator = generator or torch.Generator().manual_seed(BOUND_NOISE_SEED)
        n = len(x)
        count = steps if terms is None or terms >= steps else terms
        if count < min(2, steps):
            raise ValueError(f"terms must be at least 2 (a standard error needs two), got {terms}")
        if count == steps:
            chosen = torch.arange(1, steps + 1).repeat(n, 1)
        else:
            chosen = torch.rand(n, steps, generator=generator).argsort(dim=1)[:, :count] + 1
        rows_image = torch.arange(n).repeat_interleave(count)
        rows_step = chosen.flatten()
        values = []
        for start in range(0, len(rows_step), BOUND_CHUNK_ROWS):
            image = rows_image[start : start + BOUND_CHUNK_ROWS]
            step = rows_step[start : start + BOUND_CHUNK_ROWS]
            noise = torch.randn(len(step), *self.info.shape, generator=generator, dtype=torch.float64)
            values.append(self.bound_terms(x[image.to(x.device)], step, noise.to(x.device)))
        per_step = torch.cat(values).view(n, count)
        prior = prior_kl(levels_to_unit(x, self.info.levels).double(), float(self.schedule.alpha_bar[steps]))
        if count == steps:
            return (-(prior + per_step.sum(1))).float()
        scaled = steps * per_step.mean(1)
        correction = 1.0 - count / steps  # sampling without replacement from the T terms
        stderr = steps * (per_step.var(1) * correction / count).sqrt()
        return LikelihoodEstimate((-(prior + scaled)).float(), stderr.float().to(x.device))

    def ode_likelihood(
        self,
        x: torch.Tensor,
        draws: int = 4,
        probes: int = 1,
        rtol: float = 1e-5,
        atol: float = 1e-5,
        generator: torch.Generator | None = None,
    ) -> LikelihoodEstimate:
        return ode_log_likelihood(
            self,
            x,
            draws=draws,
            probes=probes,
            rtol=rtol,
            atol=atol,
            generator=generator or torch.Generator().manual_seed(BOUND_NOISE_SEED),
        )


@genbench.hookimpl
def genbench_models() -> list[genbench.ModelSpec]:
    return [
        genbench.ModelSpec(
            "ddpm",
            "denoising diffusion (Ho et al. 2020), U-Net eps-prediction; ancestral or DDIM sampling; variational bound",
            DDPMConfig,
            DDPM,
            sample_options_class=DDPMSampling,
        )
    ]
