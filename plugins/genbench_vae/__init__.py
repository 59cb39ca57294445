"""Variational autoencoder: a Gaussian latent, a decoder with a normalized distribution over the pixel levels.

Kingma & Welling (2014), "Auto-Encoding Variational Bayes": an encoder q(z|x) = N(mean, diag(exp(logvar))), the
reparameterization z = mean + exp(logvar / 2) * eps, and the evidence lower bound
ELBO = E_q[log p(x|z)] - KL(q(z|x) || N(0, I)) <= log p(x) with the KL in closed form (their Appendix B).
Evaluation uses the importance-weighted bound of Burda, Grosse & Salakhutdinov (2016), "Importance Weighted
Autoencoders", which is the ELBO for k = 1 and tightens towards log p(x) as k grows.

The decoder's p(x|z) is a distribution over the data's discrete levels, so the bound is on a probability, not
a density: Bernoulli for two levels, a softmax per pixel for few levels, a discretized logistic (Salimans et
al. 2017) for many.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

import genbench
from genbench import DataInfo, FitContext, GenbenchError, ImageData
from genbench.toolkit.checks import require_at_least, require_positive
from genbench.toolkit.devices import to_device
from genbench.toolkit.nn import (
    bernoulli_log_prob,
    categorical_log_prob,
    discretized_logistic_log_prob,
    levels_to_unit,
    sample_bernoulli,
    sample_categorical,
    sample_discretized_logistic,
)
from genbench.toolkit.stats import log_mean_exp
from genbench.toolkit.training import fit_by_minimizing

#: ``elbo`` draws its noise from a generator seeded with this, so that the bound is a fixed function of the
#: weights and the data: a checkpoint gives the same number whether it was just trained or loaded.
ELBO_NOISE_SEED = 0
#: ``elbo`` decodes at most about this many output values at once, whatever k is (64 MiB of float32).
ELBO_CHUNK_VALUES = 2**24
#: The discretized logistic's log-scale is kept above this (PixelCNN++ does the same), so a scale never
#: collapses onto one bin and its gradients stay finite.
MIN_LOG_SCALE = -7.0


@dataclass
class VAEConfig:
    latent_dim: int = 16  # dimensions of z; 16 encodes the 8x8 digits well, 32-50 on MNIST
    hidden: int = 256  # width of the two hidden layers of encoder and decoder; 512 on MNIST (Kingma & Welling: 500)
    categorical_max_levels: int = 32  # up to this many levels a softmax per pixel, above it a discretized logistic
    epochs: int = 60  # ~5 s of CPU for the 1,438 digits; longer overfits them (test bound 92 -> 107 at 150 epochs)
    batch_size: int = 64  # small batches, many updates, for the small digits set; 128 on MNIST with a GPU
    lr: float = 3e-3  # Adam's first step, decayed to zero on a cosine over all epochs; 1e-3 and 100 epochs on MNIST

    def __post_init__(self) -> None:
        require_at_least(self, 1, "latent_dim", "hidden", "epochs", "batch_size")
        require_at_least(self, 2, "categorical_max_levels")
        require_positive(self, "lr")


class VAE(nn.Module):
    capabilities = frozenset({genbench.SAMPLE, genbench.ELBO})

    def __init__(self, config: VAEConfig, info: DataInfo) -> None:
        super().__init__()
        if config.latent_dim < 1 or config.hidden < 1:
            raise GenbenchError(
                f"vae: latent_dim and hidden must be positive, got {config.latent_dim}, {config.hidden}"
            )
        self.config, self.info = config, info
        if info.levels == 2:
            self.likelihood, outputs = "bernoulli", info.dims
        elif info.levels <= config.categorical_max_levels:
            self.likelihood, outputs = "categorical", info.dims * info.levels
        else:
            self.likelihood, outputs = "discretized_logistic", 2 * info.dims
        self.decoder_outputs = outputs
        self.encoder = nn.Sequential(
            nn.Flatten(),
            nn.Linear(info.dims, config.hidden),
            nn.ReLU(),
            nn.Linear(config.hidden, config.hidden),
            nn.ReLU(),
            nn.Linear(config.hidden, 2 * config.latent_dim),
        )
        self.decoder = nn.Sequential(
            nn.Linear(config.latent_dim, config.hidden),
            nn.ReLU(),
            nn.Linear(config.hidden, config.hidden),
            nn.ReLU(),
            nn.Linear(config.hidden, outputs),
        )

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """q(z|x): the mean and the log-variance of a diagonal Gaussian, from uint8 images."""
        mean, logvar = self.encoder(levels_to_unit(x, self.info.levels)).float().chunk(2, dim=-1)
        return mean, logvar

    def log_p_x_given_z(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """log p(x|z) summed over the pixels, in float32; z is (..., n, latent_dim), x is (n, C, H, W)."""
        out = self.decoder(z).float()
        flat = x.flatten(1).expand(*out.shape[:-1], -1)  # (..., n, D): the same images for every sample of z
        if self.likelihood == "bernoulli":
            return bernoulli_log_prob(out, flat).sum(-1)
        if self.likelihood == "categorical":
            logits = out.unflatten(-1, (self.info.dims, self.info.levels))
            return categorical_log_prob(logits, flat, dim=-1).sum(-1)
        mean, log_scale = out.chunk(2, dim=-1)
        return discretized_logistic_log_prob(flat, mean, log_scale.clamp(min=MIN_LOG_SCALE), self.info.levels).sum(-1)

    def sample_x_given_z(self, z: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """One image per row of z, drawn from p(x|z), as uint8 (n, C, H, W)."""
        out = self.decoder(z).float()
        if self.likelihood == "bernoulli":
            flat = sample_bernoulli(out, generator)
        elif self.likelihood == "categorical":
            flat = sample_categorical(out.unflatten(-1, (self.info.dims, self.info.levels)), generator, dim=-1)
        else:
            mean, log_scale = out.chunk(2, dim=-1)
            flat = sample_discretized_logistic(mean, log_scale.clamp(min=MIN_LOG_SCALE), self.info.levels, generator)
        return flat.view(len(z), *self.info.shape)

    def negative_elbo(self, x: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """-ELBO per image with one reparameterized sample z = mean + sigma * eps and the KL in closed form."""
        mean, logvar = self.encode(x)
        z = mean + torch.exp(0.5 * logvar) * eps  # reparameterization (Kingma & Welling 2014, Section 2.4)
        # KL(N(mean, sigma^2) || N(0, 1)) = -1/2 sum(1 + log sigma^2 - mean^2 - sigma^2)  (Appendix B)
        kl = -0.5 * (1.0 + logvar - mean.square() - logvar.exp()).sum(-1)
        return kl - self.log_p_x_given_z(z, x)

    # ------------------------------------------------------------------------------------------ training

    def fit(self, train: ImageData, ctx: FitContext) -> None:
        config = self.config

        def loss_of(batch: torch.Tensor) -> torch.Tensor:
            eps = torch.randn(len(batch), config.latent_dim, generator=ctx.generator, device=ctx.generator.device)
            return self.negative_elbo(batch, to_device(eps, batch.device)).mean()  # float32: see log_p_x_given_z

        fit_by_minimizing(
            self,
            loss_of,
            train,
            ctx,
            lr=config.lr,
            epochs=config.epochs,
            batch_size=config.batch_size,
            dims=self.info.dims,
            curve_name="negative_elbo",
            desc="vae",
        )

    # ---------------------------------------------------------------------------------------- evaluation

    @torch.no_grad()
    def elbo(self, x: torch.Tensor, k: int = 1, generator: torch.Generator | None = None) -> torch.Tensor:
        """The importance-weighted bound log (1/k) sum_i p(x, z_i) / q(z_i|x), z_i ~ q(z|x) (Burda et al. 2016).

        Its expectation is the ELBO for k = 1, grows with k and tends to log p(x). The k samples are decoded in
        chunks, so memory does not grow with k beyond the (k, n) weights. Without a generator, the noise comes
        from one seeded with ELBO_NOISE_SEED.
        """
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        generator = generator or torch.Generator().manual_seed(ELBO_NOISE_SEED)
        mean, logvar = self.encode(x)
        std = torch.exp(0.5 * logvar)
        chunk = max(1, ELBO_CHUNK_VALUES // (len(x) * self.decoder_outputs))
        log_weights = []
        for start in range(0, k, chunk):
            shape = (min(chunk, k - start), *mean.shape)
            eps = torch.randn(shape, generator=generator, device=generator.device).to(x.device)
            z = mean + std * eps
            log_prior = standard_normal_log_density(z)
            log_posterior = standard_normal_log_density(eps) - 0.5 * logvar.sum(-1)  # N(z; mean, std^2)
            log_weights.append(self.log_p_x_given_z(z, x) + log_prior - log_posterior)
        return log_mean_exp(torch.cat(log_weights), dim=0)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        z = torch.randn(n, self.config.latent_dim, generator=generator, device=generator.device)
        return self.sample_x_given_z(z.to(next(self.parameters()).device), generator).cpu()

    def log_likelihood(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError("a VAE's log-likelihood is intractable; use elbo(x, k), the IWAE bound")


def standard_normal_log_density(eps: torch.Tensor) -> torch.Tensor:
    """log N(eps; 0, I) summed over the last dimension."""
    return -0.5 * (eps.square() + math.log(2 * math.pi)).sum(-1)


@genbench.hookimpl
def genbench_models() -> list[genbench.ModelSpec]:
    return [
        genbench.ModelSpec(
            "vae",
            "variational autoencoder (MLP), discrete decoder; evaluated with the importance-weighted bound",
            VAEConfig,
            VAE,
            default_rank=0,  # run when no --models are given: vae, gan, pixelcnn
        )
    ]
