"""DCGAN: a generator and a discriminator trained against each other; samples only, no likelihood.

Goodfellow et al. (2014), "Generative Adversarial Nets": the discriminator D learns to tell data from samples,
the generator G learns to fool it; the non-saturating generator loss -log D(G(z)) of their Section 3 gives
strong gradients early on. Radford, Metz & Chintala (2016), "Unsupervised Representation Learning with Deep
Convolutional GANs" (DCGAN): strided (transposed) convolutions, batch normalization in G, LeakyReLU in D,
Adam with beta1 = 0.5. Heusel et al. (2017), "GANs Trained by a Two Time-Scale Update Rule": D and G may learn
at different speeds (separate learning rates). The hinge loss (Lim & Ye 2017; Miyato et al. 2018) is an option.

G works at the smallest power-of-two size that holds the image (8 for 8x8, 32 for 28x28) and its output is
cropped to the image; D sees images padded back to that size with the background value, real and generated
alike. Real images are dequantized (spread over their level's bin) so that D cannot win by discreteness
alone, and samples are rounded to the nearest level.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

import genbench
from genbench import DataInfo, FitContext, GenbenchError, ImageData
from genbench.toolkit.checks import require_at_least
from genbench.toolkit.devices import to_device
from genbench.toolkit.nn import dequantize, unit_to_levels
from genbench.toolkit.training import adam, train_epochs
from genbench_gan.resnet import ResNetDiscriminator, ResNetGenerator

LOSSES = ("non_saturating", "hinge")
ARCHITECTURES = ("dcgan", "resnet_mimicry")
#: G starts from a 4x4 grid and doubles it until it holds the image.
START_SIZE = 4


@dataclass
class GANConfig:
    loss: Literal["non_saturating", "hinge"] = (
        "non_saturating"  # "non_saturating" (Goodfellow et al. 2014) or "hinge" (Miyato et al. 2018)
    )
    architecture: Literal["dcgan", "resnet_mimicry"] = (
        "dcgan"  # "resnet_mimicry": the ResNet G and D of Mimicry's CIFAR-10 DCGAN/SNGAN (resnet.py)
    )
    latent_dim: int = 32  # noise dimensions; DCGAN uses 100, plenty for MNIST too
    width: int = 32  # dcgan: channels at the finest resolution, doubled at every coarser one; resnet: G's channels
    d_width: int | None = None  # resnet_mimicry: D's channels (Mimicry's CIFAR DCGAN: 128); None: width
    d_steps: int = 1  # discriminator updates per generator update; 1 with these losses, 5 for WGAN-style critics
    lr_g: float = 2e-4  # TTUR (Heusel et al. 2017): the generator learns slower ...
    lr_d: float = 4e-4  # ... than the discriminator, so D tracks the current G
    beta1: float = 0.5  # Adam's momentum, lowered as in DCGAN so the two players do not overshoot
    beta2: float = 0.999  # Adam's second moment; SNGAN-style ResNet GANs use 0.9
    epochs: int = 100  # ~30 s on one CPU core for the 1,438 digits; 20-30 on MNIST with a GPU
    batch_size: int = 64  # DCGAN uses 128 on MNIST-sized data

    def __post_init__(self) -> None:
        require_at_least(self, 1, "latent_dim", "width", "d_width", "d_steps", "epochs", "batch_size")
        if self.architecture not in ARCHITECTURES:
            raise GenbenchError(
                f"gan: architecture must be one of {', '.join(ARCHITECTURES)}, got {self.architecture!r}"
            )
        if not 0 <= self.beta2 < 1:
            raise GenbenchError(f"beta2 must be in [0, 1), got {self.beta2}")
        require_at_least(self, 0, "lr_g", "lr_d")  # 0 freezes a player: TTUR's two time scales at their limit
        if not 0 <= self.beta1 < 1:
            raise GenbenchError(f"beta1 must be in [0, 1), got {self.beta1}")


def padded_size(info: DataInfo) -> int:
    """The smallest START_SIZE * 2^k that holds the image."""
    size = START_SIZE
    while size < max(info.shape[1:]):
        size *= 2
    return size


class Generator(nn.Module):
    """z -> a 4x4 grid of features -> transposed convolutions that double it -> tanh image in [-1, 1]."""

    def __init__(self, config: GANConfig, info: DataInfo) -> None:
        super().__init__()
        doublings = (padded_size(info) // START_SIZE).bit_length() - 1
        channels = [config.width * 2**i for i in range(doublings, -1, -1)]  # coarse to fine
        self.start_channels = channels[0]
        self.project = nn.Sequential(
            nn.Linear(config.latent_dim, channels[0] * START_SIZE**2, bias=False),
            nn.BatchNorm1d(channels[0] * START_SIZE**2),
            nn.ReLU(),
        )
        layers: list[nn.Module] = []
        for c_in, c_out in itertools.pairwise(channels):
            layers += [nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1, bias=False), nn.BatchNorm2d(c_out)]
            layers.append(nn.ReLU())
        layers += [nn.Conv2d(channels[-1], info.shape[0], 3, padding=1), nn.Tanh()]
        self.body = nn.Sequential(*layers)
        self.shape = info.shape

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        grid = self.project(z).view(len(z), self.start_channels, START_SIZE, START_SIZE)
        out: torch.Tensor = self.body(grid)
        _, height, width = self.shape
        top, left = (out.shape[2] - height) // 2, (out.shape[3] - width) // 2
        return out[:, :, top : top + height, left : left + width]


class Discriminator(nn.Module):
    """Image padded to the power-of-two size -> strided convolutions down to 4x4 -> one logit."""

    def __init__(self, config: GANConfig, info: DataInfo) -> None:
        super().__init__()
        size = padded_size(info)
        doublings = (size // START_SIZE).bit_length() - 1
        channels = [config.width * 2**i for i in range(doublings + 1)]  # fine to coarse
        layers: list[nn.Module] = [nn.Conv2d(info.shape[0], channels[0], 3, padding=1), nn.LeakyReLU(0.2)]
        for c_in, c_out in itertools.pairwise(channels):
            layers += [nn.Conv2d(c_in, c_out, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
        layers += [nn.Flatten(), nn.Linear(channels[-1] * START_SIZE**2, 1)]
        self.body = nn.Sequential(*layers)
        _, height, width = info.shape
        top, left = (size - height) // 2, (size - width) // 2
        self.padding = (left, size - width - left, top, size - height - top)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Pad with -1, the lowest level: real and generated images get the same constant border.
        logits: torch.Tensor = self.body(F.pad(x, self.padding, value=-1.0))
        return logits.squeeze(-1)


class Cropped(nn.Module):
    """A generator of padded_size images, cropped to the data's size."""

    def __init__(self, body: nn.Module, info: DataInfo) -> None:
        super().__init__()
        self.body, self.shape = body, info.shape

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.body(z)
        _, height, width = self.shape
        top, left = (out.shape[2] - height) // 2, (out.shape[3] - width) // 2
        return out[:, :, top : top + height, left : left + width]


class Padded(nn.Module):
    """A discriminator of padded_size images, given the data's images padded with -1 (the lowest level)."""

    def __init__(self, body: nn.Module, info: DataInfo) -> None:
        super().__init__()
        size = padded_size(info)
        _, height, width = info.shape
        top, left = (size - height) // 2, (size - width) // 2
        self.body, self.padding = body, (left, size - width - left, top, size - height - top)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.body(F.pad(x, self.padding, value=-1.0))
        return logits.squeeze(-1)


class GAN(nn.Module):
    capabilities = frozenset({genbench.SAMPLE})

    def __init__(self, config: GANConfig, info: DataInfo) -> None:
        super().__init__()
        if config.loss not in LOSSES:
            raise GenbenchError(f"gan: loss must be one of {', '.join(LOSSES)}, got {config.loss!r}")
        if config.d_steps < 1:
            raise GenbenchError(f"gan: d_steps must be at least 1, got {config.d_steps}")
        self.config, self.info = config, info
        self.generator: nn.Module
        self.discriminator: nn.Module
        if config.architecture == "resnet_mimicry":
            size, channels = padded_size(info), info.shape[0]
            self.generator = Cropped(ResNetGenerator(config.latent_dim, config.width, channels, size), info)
            self.discriminator = Padded(ResNetDiscriminator(config.d_width or config.width, channels), info)
        else:
            self.generator = Generator(config, info)
            self.discriminator = Discriminator(config, info)
        self.eval()  # batch norm uses its stored statistics unless fitting: a loaded checkpoint samples as saved

    def discriminator_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        real_logits, fake_logits = real_logits.float(), fake_logits.float()
        if self.config.loss == "hinge":
            return F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()
        # -log D(x) - log(1 - D(G(z))) with D = sigmoid(logit): softplus(-l) = -log sigmoid(l)
        return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()

    def generator_loss(self, fake_logits: torch.Tensor) -> torch.Tensor:
        fake_logits = fake_logits.float()
        if self.config.loss == "hinge":
            return -fake_logits.mean()
        return F.softplus(-fake_logits).mean()  # non-saturating: -log D(G(z)) (Goodfellow et al. 2014, Section 3)

    # ------------------------------------------------------------------------------------------ training

    def fit(self, train: ImageData, ctx: FitContext) -> None:
        config, levels = self.config, self.info.levels
        opt_g = adam(self.generator.parameters(), lr=config.lr_g, betas=(config.beta1, config.beta2))
        opt_d = adam(self.discriminator.parameters(), lr=config.lr_d, betas=(config.beta1, config.beta2))
        updates = itertools.count()
        g_loss = torch.zeros(())
        self.train()

        def noise(n: int) -> torch.Tensor:
            z = torch.randn(n, config.latent_dim, generator=ctx.generator, device=ctx.generator.device)
            return to_device(z, ctx.device)  # queued, not waited for, on CUDA

        def step(batch: torch.Tensor) -> dict[str, torch.Tensor]:
            nonlocal g_loss
            real = dequantize(batch, levels, ctx.generator)
            # ---- discriminator: real images up, generated ones down
            with ctx.autocast():
                with torch.no_grad():
                    fake = self.generator(noise(config.batch_size))  # a full batch even when the data's is short
                d_loss = self.discriminator_loss(self.discriminator(real), self.discriminator(fake))
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()  # type: ignore[no-untyped-call]
            opt_d.step()
            # ---- generator: once per d_steps batches, make D call its samples real
            if next(updates) % config.d_steps == 0:
                with ctx.autocast():
                    g_loss = self.generator_loss(self.discriminator(self.generator(noise(config.batch_size))))
                opt_g.zero_grad(set_to_none=True)
                g_loss.backward()  # type: ignore[no-untyped-call]
                opt_g.step()
            # With d_steps > 1 the generator's loss is that of its latest update.
            return {"d_loss": d_loss.detach(), "g_loss": g_loss.detach()}  # tensors: no wait for the GPU

        train_epochs(step, train, ctx, epochs=config.epochs, batch_size=config.batch_size, desc="gan")
        self.eval()

    # ------------------------------------------------------------------------------------------ sampling

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        z = torch.randn(n, self.config.latent_dim, generator=generator, device=generator.device)
        images = self.generator(z.to(next(self.parameters()).device))
        return unit_to_levels(images, self.info.levels).cpu()

    def log_likelihood(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError("a GAN defines no likelihood")

    def elbo(self, x: torch.Tensor, k: int = 1) -> torch.Tensor:
        raise NotImplementedError("a GAN defines no likelihood")


@genbench.hookimpl
def genbench_models() -> list[genbench.ModelSpec]:
    return [
        genbench.ModelSpec(
            "gan",
            "DCGAN (non-saturating or hinge loss, separate learning rates); samples only",
            GANConfig,
            GAN,
            default_rank=1,  # run when no --models are given: vae, gan, pixelcnn
        )
    ]
