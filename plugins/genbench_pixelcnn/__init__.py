"""PixelCNN: an exact likelihood by the chain rule, log p(x) = sum_i log p(x_i | x_<i), one softmax per value.

van den Oord et al. (2016a), "Pixel Recurrent Neural Networks" (PixelRNN paper): masked convolutions keep the
order (rows, then columns, then the channels of one pixel), a softmax over the levels gives each conditional,
residual blocks (Figure 5). van den Oord et al. (2016b), "Conditional Image Generation with PixelCNN Decoders":
gated blocks with a vertical and a horizontal stack, which close the blind spot that a plain stack of masked
3x3 convolutions leaves to the upper right of every pixel.

Images with several channels are handled as in the PixelRNN paper, Section 3.4: within a pixel, channel c is
conditioned on channels < c (``genbench.toolkit.nn.MaskedConv2d`` with ``data_channels``).

Sampling takes one value at a time in that order. The default ``"cached"`` sampler (``sampler_cached.py``, after
Ramachandran et al. 2017, "Fast Generation for Convolutional Autoregressive Models") keeps every layer's
activations and computes per value only the few positions that value changes; ``"plain"`` reruns the whole
network per value and stays as the reference: on the CPU both draw exactly the same images.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

import genbench
from genbench import DataInfo, FitContext, GenbenchError, ImageData
from genbench.toolkit.checks import require_at_least, require_positive
from genbench.toolkit.nn import MaskedConv2d, categorical_log_prob, levels_to_unit, sample_categorical
from genbench.toolkit.training import fit_by_minimizing
from genbench_pixelcnn.sampler_cached import sample_cached

BLOCKS = ("gated", "residual")
SAMPLERS = ("cached", "plain")


@dataclass
class PixelCNNConfig:
    # "gated" (2016b, no blind spot) or "residual" (2016a, Figure 5; has the blind spot).
    block: Literal["gated", "residual"] = "gated"
    # Feature maps per layer; 128 on MNIST, 128-256 on 32x32 colour with a GPU. Rounded up to a multiple of 2 * C
    # for C-channel images (66 for RGB): the model's ``widths`` records the number used.
    channels: int = 64
    first_kernel: int = 5  # the mask-A convolution; the papers use 7 on 28x28 and 32x32, 5 already spans 8x8
    kernel: int = 3  # every later block; each block widens the context by kernel // 2 rows and columns
    layers: int = 4  # blocks after the first convolution; 8-15 on MNIST, so the context covers the image
    # Width of the two 1x1 layers that turn features into logits; 512-1024 for 256 levels. Rounded up to a multiple
    # of C (129 for RGB), recorded in the model's ``widths``.
    head_channels: int = 128
    epochs: int = 20  # ~40 s on one CPU core for the 1,438 digits (test NLL 78.6; 25 epochs: 77.8); 20-50 on MNIST
    batch_size: int = 64  # 64 keeps the digits at ~23 updates per epoch; 128 on MNIST with a GPU
    lr: float = 2e-3  # Adam's first step, decayed to zero on a cosine; 3e-4 to 1e-3 for the wider MNIST settings
    grad_clip: float = 1.0  # clip the gradient norm; a softmax over few levels spikes early in training
    # "cached" (Ramachandran et al. 2017: the same draws for about one forward pass of work) or "plain" (the
    # reference: a forward pass per value). Hashed with the rest of the config, so switching it retrains, but a
    # cell's key then covers its sample_time (and, on a GPU, the rounding of its samples), which depend on it.
    sampler: Literal["cached", "plain"] = "cached"
    # On CUDA, the cached sampler replays one row of steps as a CUDA graph (one launch instead of thousands per
    # row, which is what a batch of 1 costs); False runs the same steps eagerly, to compare or debug.
    cuda_graph: bool = True

    def __post_init__(self) -> None:
        require_at_least(self, 1, "channels", "first_kernel", "kernel", "head_channels", "epochs")
        require_at_least(self, 0, "layers")  # no blocks: the mask-A convolution and the head alone
        require_at_least(self, 1, "batch_size")
        require_positive(self, "lr", "grad_clip")


class VerticalConv(nn.Module):
    """A convolution over the rows up to and including the current one, within the kernel's width.

    It sees pixels after the current one, so its output may reach the horizontal stack only shifted down by a
    row (``shift_down``); then row r holds exactly what rows < r contain.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel: int) -> None:
        super().__init__()
        # Not ``self.half``: that would shadow nn.Module.half(), the cast to float16.
        self.half_kernel = kernel // 2
        self.conv = nn.Conv2d(in_channels, out_channels, (self.half_kernel + 1, kernel))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.conv(F.pad(x, (self.half_kernel, self.half_kernel, self.half_kernel, 0)))
        return out


def shift_down(x: torch.Tensor) -> torch.Tensor:
    return F.pad(x, (0, 0, 1, 0))[:, :, :-1]


class GatedBlock(nn.Module):
    """One gated layer of both stacks (2016b, Figure 2): y = tanh(W_f * x) * sigmoid(W_g * x).

    The horizontal stack sees the pixels left of the current one through its masked 1 x k convolution, and the
    rows above through the vertical stack shifted down: together, everything before the pixel, no blind spot.
    """

    def __init__(self, channels: int, kernel: int, data_channels: int) -> None:
        super().__init__()
        self.vertical = VerticalConv(channels, 2 * channels, kernel)
        self.vertical_to_horizontal = nn.Conv2d(2 * channels, 2 * channels, 1)
        self.horizontal = MaskedConv2d(channels, 2 * channels, (1, kernel), "B", data_channels)
        self.horizontal_out = MaskedConv2d(channels, channels, 1, "B", data_channels)

    def forward(self, v: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        v_pre = self.vertical(v)
        h_pre = self.horizontal(h) + self.vertical_to_horizontal(shift_down(v_pre))
        return gate(v_pre), h + self.horizontal_out(gate(h_pre))


class ResidualBlock(nn.Module):
    """The PixelCNN residual block of the PixelRNN paper (Figure 5): 1x1 down, k x k mask B, 1x1 up, plus input."""

    def __init__(self, channels: int, kernel: int, data_channels: int) -> None:
        super().__init__()
        inner = channels // 2
        self.body = nn.Sequential(
            nn.ReLU(),
            MaskedConv2d(channels, inner, 1, "B", data_channels),
            nn.ReLU(),
            MaskedConv2d(inner, inner, kernel, "B", data_channels),
            nn.ReLU(),
            MaskedConv2d(inner, channels, 1, "B", data_channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        body: torch.Tensor = self.body(x)
        return x + body


def gate(pre: torch.Tensor) -> torch.Tensor:
    filters, gates = pre.chunk(2, dim=1)
    return torch.tanh(filters) * torch.sigmoid(gates)


class PixelCNN(nn.Module):
    capabilities = frozenset({genbench.SAMPLE, genbench.LOG_LIKELIHOOD})

    def __init__(self, config: PixelCNNConfig, info: DataInfo) -> None:
        super().__init__()
        check_config(config, info)
        self.config, self.info = config, info
        #: The widths actually built, after rounding the config's up to what the channel masks need.
        self.widths = mask_compatible_widths(config, info)
        c, channels = info.shape[0], self.widths["channels"]
        self.first = MaskedConv2d(c, channels, config.first_kernel, "A", c)
        if config.block == "gated":
            # The vertical stack starts from the image, not from the mask-A output: that output never holds the
            # last pixel of a row, so the rows below would never see it, a blind spot of its own.
            self.first_vertical = VerticalConv(c, channels, config.first_kernel)
            self.blocks = nn.ModuleList(GatedBlock(channels, config.kernel, c) for _ in range(config.layers))
        else:
            self.blocks = nn.ModuleList(ResidualBlock(channels, config.kernel, c) for _ in range(config.layers))
        # Output channel l * C + c holds the logit of level l for data channel c (group c of the masks).
        self.head = nn.Sequential(
            nn.ReLU(),
            MaskedConv2d(channels, self.widths["head_channels"], 1, "B", c),
            nn.ReLU(),
            MaskedConv2d(self.widths["head_channels"], info.levels * c, 1, "B", c),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (n, levels, C, H, W) of every conditional, from images rescaled to [-1, 1] (float, any grad)."""
        features = self.first(x)
        if self.config.block == "gated":
            v, h = self.first_vertical(x), features
            for block in self.blocks:
                v, h = block(v, h)
            features = h
        else:
            for block in self.blocks:
                features = block(features)
        n, (c, height, width) = len(x), self.info.shape
        logits: torch.Tensor = self.head(features)
        return logits.view(n, self.info.levels, c, height, width)

    def log_likelihood(self, x: torch.Tensor) -> torch.Tensor:
        logits = self(levels_to_unit(x, self.info.levels))
        return categorical_log_prob(logits, x, dim=1).flatten(1).sum(1)

    # ------------------------------------------------------------------------------------------ training

    def fit(self, train: ImageData, ctx: FitContext) -> None:
        config = self.config
        fit_by_minimizing(
            self,
            lambda batch: -self.log_likelihood(batch).mean(),  # the softmax and the sum are float32 inside
            train,
            ctx,
            lr=config.lr,
            epochs=config.epochs,
            batch_size=config.batch_size,
            dims=self.info.dims,
            curve_name="nll",
            grad_clip=config.grad_clip,
            desc="pixelcnn",
        )

    # ------------------------------------------------------------------------------------------ sampling

    @property
    def sampler_name(self) -> str:
        """Which sampler ``sample`` runs; ``sample_time`` records it in its provenance."""
        on_cuda = next(self.parameters()).device.type == "cuda"
        if self.config.sampler == "cached" and on_cuda:
            return "cached, CUDA graph" if self.config.cuda_graph else "cached, eager"
        return self.config.sampler

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """n images drawn value by value in the chain rule's order, by the sampler the config names.

        On the CPU both samplers draw from the same logits with the same generator calls, so they return the same
        images. On a GPU the cached sampler draws by inverse transform from uniforms taken from ``generator`` up
        front (``sampler_cached.sample_on_device``): the same distribution, other images.
        """
        if self.config.sampler == "plain":
            return self.sample_plain(n, generator)
        return sample_cached(self, n, generator, cuda_graph=self.config.cuda_graph)

    @torch.no_grad()
    def sample_plain(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """The plain sampler: the whole network once per value (H * W * C forward passes), the reference."""
        c, height, width = self.info.shape
        device = next(self.parameters()).device
        canvas = torch.zeros(n, c, height, width, dtype=torch.uint8, device=device)
        for row in range(height):
            for col in range(width):
                for channel in range(c):
                    logits = self(levels_to_unit(canvas, self.info.levels))[:, :, channel, row, col]
                    canvas[:, channel, row, col] = sample_categorical(logits, generator, dim=1)
        return canvas.cpu()

    def elbo(self, x: torch.Tensor, k: int = 1) -> torch.Tensor:
        raise NotImplementedError("pixelcnn has an exact log_likelihood; it needs no bound")


def check_config(config: PixelCNNConfig, info: DataInfo) -> None:
    if config.block not in BLOCKS:
        raise GenbenchError(f"pixelcnn: block must be one of {', '.join(BLOCKS)}, got {config.block!r}")
    if config.sampler not in SAMPLERS:
        raise GenbenchError(f"pixelcnn: sampler must be one of {', '.join(SAMPLERS)}, got {config.sampler!r}")
    if config.first_kernel % 2 == 0 or config.kernel % 2 == 0 or min(config.first_kernel, config.kernel) < 1:
        raise GenbenchError(
            "pixelcnn: kernels must be odd and positive, "
            f"got first_kernel={config.first_kernel}, kernel={config.kernel}"
        )


def mask_compatible_widths(config: PixelCNNConfig, info: DataInfo) -> dict[str, int]:
    """The config's widths rounded up to what the masks need for C-channel images.

    Masks group channels by index modulo C, which survives halving (a gate, the residual bottleneck) only when the
    halves are multiples of C: ``channels`` becomes a multiple of 2 * C and ``head_channels`` one of C (64 and 128
    become 66 and 129 for RGB; gray images keep them as they are).
    """
    c = info.shape[0]
    return {"channels": round_up(config.channels, 2 * c), "head_channels": round_up(config.head_channels, c)}


def round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


@genbench.hookimpl
def genbench_models() -> list[genbench.ModelSpec]:
    return [
        genbench.ModelSpec(
            "pixelcnn",
            "autoregressive PixelCNN (gated or residual masked convolutions), exact log-likelihood",
            PixelCNNConfig,
            PixelCNN,
            default_rank=2,  # run when no --models are given: vae, gan, pixelcnn
        )
    ]
