"""PixelCNN: an exact likelihood by the chain rule, log p(x) = sum_i log p(x_i | x_<i), one softmax per value.

van den Oord et al. (2016a), "Pixel Recurrent Neural Networks" (PixelRNN paper): masked convolutions keep the
order (rows, then columns, then the channels of one pixel), a softmax over the levels gives each conditional,
residual blocks (Figure 5). van den Oord et al. (2016b), "Conditional Image Generation with PixelCNN Decoders":
gated blocks with a vertical and a horizontal stack, which close the blind spot that a plain stack of masked
3x3 convolutions leaves to the upper right of every pixel.

Images with several channels are handled as in the PixelRNN paper, Section 3.4: within a pixel, channel c is
conditioned on channels < c (``genbench.nn.MaskedConv2d`` with ``data_channels``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

import genbench
from genbench import DataInfo, FitContext, GenbenchError, ImageData
from genbench.nn import MaskedConv2d, categorical_log_prob, levels_to_unit, sample_categorical
from genbench.training import adam_with_cosine_decay, train_epochs

BLOCKS = ("gated", "residual")


@dataclass
class PixelCNNConfig:
    block: str = "gated"  # "gated" (2016b, no blind spot) or "residual" (2016a, Figure 5; has the blind spot)
    channels: int = 64  # feature maps per layer; 128 on MNIST, 128-256 on 32x32 colour with a GPU
    first_kernel: int = 5  # the mask-A convolution; the papers use 7 on 28x28 and 32x32, 5 already spans 8x8
    kernel: int = 3  # every later block; each block widens the context by kernel // 2 rows and columns
    layers: int = 4  # blocks after the first convolution; 8-15 on MNIST, so the context covers the image
    head_channels: int = 128  # width of the two 1x1 layers that turn features into logits; 512-1024 for 256 levels
    epochs: int = 20  # ~40 s on one CPU core for the 1,438 digits (test NLL 78.6; 25 epochs: 77.8); 20-50 on MNIST
    batch_size: int = 64  # 64 keeps the digits at ~23 updates per epoch; 128 on MNIST with a GPU
    lr: float = 2e-3  # Adam's first step, decayed to zero on a cosine; 3e-4 to 1e-3 for the wider MNIST settings
    grad_clip: float = 1.0  # clip the gradient norm; a softmax over few levels spikes early in training


class VerticalConv(nn.Module):
    """A convolution over the rows up to and including the current one, within the kernel's width.

    It sees pixels after the current one, so its output may reach the horizontal stack only shifted down by a
    row (``shift_down``); then row r holds exactly what rows < r contain.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel: int) -> None:
        super().__init__()
        self.half = kernel // 2
        self.conv = nn.Conv2d(in_channels, out_channels, (self.half + 1, kernel))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (self.half, self.half, self.half, 0)))


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
        return x + self.body(x)


def gate(pre: torch.Tensor) -> torch.Tensor:
    filters, gates = pre.chunk(2, dim=1)
    return torch.tanh(filters) * torch.sigmoid(gates)


class PixelCNN(nn.Module):
    capabilities = frozenset({genbench.SAMPLE, genbench.LOG_LIKELIHOOD})

    def __init__(self, config: PixelCNNConfig, info: DataInfo) -> None:
        super().__init__()
        check_config(config, info)
        self.config, self.info = config, info
        c = info.shape[0]
        self.first = MaskedConv2d(c, config.channels, config.first_kernel, "A", c)
        if config.block == "gated":
            # The vertical stack starts from the image, not from the mask-A output: that output never holds the
            # last pixel of a row, so the rows below would never see it, a blind spot of its own.
            self.first_vertical = VerticalConv(c, config.channels, config.first_kernel)
            self.blocks = nn.ModuleList(GatedBlock(config.channels, config.kernel, c) for _ in range(config.layers))
        else:
            self.blocks = nn.ModuleList(ResidualBlock(config.channels, config.kernel, c) for _ in range(config.layers))
        # Output channel l * C + c holds the logit of level l for data channel c (group c of the masks).
        self.head = nn.Sequential(
            nn.ReLU(),
            MaskedConv2d(config.channels, config.head_channels, 1, "B", c),
            nn.ReLU(),
            MaskedConv2d(config.head_channels, info.levels * c, 1, "B", c),
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
        return self.head(features).view(n, self.info.levels, c, height, width)

    def log_likelihood(self, x: torch.Tensor) -> torch.Tensor:
        logits = self(levels_to_unit(x, self.info.levels))
        return categorical_log_prob(logits, x, dim=1).flatten(1).sum(1)

    # ------------------------------------------------------------------------------------------ training

    def fit(self, train: ImageData, ctx: FitContext) -> None:
        config = self.config
        optimizer, schedule = adam_with_cosine_decay(
            self.parameters(), config.lr, epochs=config.epochs, examples=len(train), batch_size=config.batch_size
        )
        self.train()

        def step(batch: torch.Tensor) -> dict[str, torch.Tensor]:
            with ctx.autocast():
                nll = -self.log_likelihood(batch).mean()  # the softmax and the sum are float32 inside
            optimizer.zero_grad(set_to_none=True)
            (nll / self.info.dims).backward()  # per dimension, so lr and clipping do not depend on image size
            nn.utils.clip_grad_norm_(self.parameters(), config.grad_clip)
            optimizer.step()
            schedule.step()
            return {"nll": nll.detach()}  # a tensor: train_epochs sums it without waiting for a GPU

        train_epochs(step, train, ctx, epochs=config.epochs, batch_size=config.batch_size, desc="pixelcnn")
        self.eval()

    # ------------------------------------------------------------------------------------------ sampling

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """The plain sampler: the whole network once per value, in the order of the chain rule.

        A fast sampler would cache each layer's activations and recompute only the receptive field of the next
        value; it can replace ``forward`` in this loop without changing the order or the draws.
        """
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
    c = info.shape[0]
    if config.block not in BLOCKS:
        raise GenbenchError(f"pixelcnn: block must be one of {', '.join(BLOCKS)}, got {config.block!r}")
    if config.first_kernel % 2 == 0 or config.kernel % 2 == 0:
        raise GenbenchError(
            f"pixelcnn: kernels must be odd, got first_kernel={config.first_kernel}, kernel={config.kernel}"
        )
    # Masks group channels by index modulo C, which survives halving (a gate, the residual bottleneck) only when
    # the halves are multiples of C.
    if config.channels % (2 * c) or config.head_channels % c:
        raise GenbenchError(
            f"pixelcnn: channels must be a multiple of {2 * c} and head_channels of {c} for {c}-channel images, "
            f"got channels={config.channels}, head_channels={config.head_channels}"
        )


@genbench.hookimpl
def genbench_models() -> list[genbench.ModelSpec]:
    return [
        genbench.ModelSpec(
            "pixelcnn",
            "autoregressive PixelCNN (gated or residual masked convolutions), exact log-likelihood",
            PixelCNNConfig,
            PixelCNN,
        )
    ]
