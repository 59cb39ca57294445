"""The cached PixelCNN sampler: every layer keeps its activations, and each new value costs only what it changes.

Ramachandran et al. (2017), "Fast Generation for Convolutional Autoregressive Models" (ICLR workshop track):
the plain sampler runs the whole network once per value, although a new value changes only the activations at
the positions that see it. This sampler walks the image in the plain sampler's order (rows, columns, the
channels of a pixel) and computes each layer once per position, at the moment its inputs are complete.

The invariant that makes the caches exact. In raster order, every activation at position p depends only on the
values before p (masks A and B; the horizontal stack sees the vertical stack only shifted down a row), so once it
is computed from complete inputs it is final and never recomputed. Each convolution is split at the current row:

- the part that reads the rows above (the upper rows of a masked k x k kernel, and in the gated blocks the whole
  vertical stack and its 1x1 link into the horizontal stack, which reach row r only from rows < r) is computed
  for a whole row at once, by ``start_row``, as soon as the rows above are finished;
- the part that reads the current row (the left half and the centre of the kernel's middle row, and every 1x1
  layer) is computed per value by ``logits_at``, on a window of (k // 2 + 1) positions whose activations are
  already final, plus the current position.

The first layer (mask A) reads the image itself; the later ones read the cached activations of the layer below.
For colour images channel c of a pixel is conditioned on channels < c of that pixel (PixelRNN paper, Section
3.4), so the activations at the current pixel are recomputed once per channel; the pass for the last channel,
made with every earlier channel drawn, leaves them final (nothing at a pixel depends on its last channel).

The per-value work (``CachedPixelCNN.logits_at``) is one function whose tensors all have static shapes; only the
positions it slices at change. The draws use ``genbench.nn.sample_categorical`` with the same generator, in the
same order and on the same (n, levels) logits as the plain sampler, so on the CPU both return the same images.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, cast

import torch
import torch.nn.functional as F
from torch import nn

from genbench.nn import levels_to_unit, sample_categorical

if TYPE_CHECKING:
    from genbench_pixelcnn import GatedBlock, PixelCNN, ResidualBlock

#: Picks the values of channel ``channel`` at (row, col) from their logits (n, levels): a draw, or given data.
Chooser = Callable[[torch.Tensor, int, int, int], torch.Tensor]


def masked_weight(conv: nn.Conv2d) -> torch.Tensor:
    """The weight as the convolution applies it: a MaskedConv2d multiplies by its mask, a plain one has none."""
    mask = getattr(conv, "mask", None)
    return conv.weight if mask is None else conv.weight * mask


def current_row_matrix(weight: torch.Tensor) -> torch.Tensor:
    """The middle row's left half and centre of a (out, in, kh, kw) kernel as a ((kw // 2 + 1) * in, out) matrix.

    Rows are ordered (column, input channel), the layout of a channel-last window of the current row, so one
    matrix product applies that part of the convolution at one position. A 1x1 kernel gives its (in, out) matrix.
    """
    out_channels, _, kh, kw = weight.shape
    centre_row = weight[:, :, kh // 2, : kw // 2 + 1]  # right of the centre is masked out, so left out
    return centre_row.permute(2, 1, 0).reshape(-1, out_channels).contiguous()


def rows_above(weight: torch.Tensor) -> torch.Tensor:
    """The kernel rows above the centre, (out, in, kh // 2, kw): the part that reads only finished rows."""
    return weight[:, :, : weight.shape[2] // 2].contiguous()


def conv_rows(rows: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """A valid convolution over a channel-last band of padded rows (n, kh, W + kw - 1, C) -> channel-last (n, W, out).

    The band holds exactly the kernel's height, so the result is one output row.
    """
    if weight.shape[2] == 0:  # a kernel without rows above the centre (height 1): only its bias remains
        n, width = rows.shape[0], rows.shape[2] - weight.shape[3] + 1
        return torch.zeros(n, width, weight.shape[0], device=rows.device) + (0.0 if bias is None else bias)
    out = F.conv2d(rows.permute(0, 3, 1, 2), weight, bias)  # (n, out, 1, W)
    return out[:, :, 0].transpose(1, 2).contiguous()


def gate(pre: torch.Tensor) -> torch.Tensor:
    """tanh(filters) * sigmoid(gates) over the last dimension (the model's ``gate`` on channel-last features)."""
    filters, gates = pre.chunk(2, dim=-1)
    return torch.tanh(filters) * torch.sigmoid(gates)


class CachedPixelCNN:
    """A PixelCNN's activations for a batch of n images being generated, and the steps that extend them.

    Every buffer is channel-last, (n, rows, columns, features), zero-padded as the model's convolutions pad:
    image row i, column j lives at [i + pad, j + pad], so a window left of and at column j is a contiguous slice.
    """

    def __init__(self, model: PixelCNN, n: int) -> None:
        self.model, self.n = model, n
        self.levels = model.info.levels
        self.data_channels, self.height, self.width = model.info.shape
        self.device = next(model.parameters()).device
        self.gated = model.config.block == "gated"

        first = masked_weight(model.first)
        self.first_pad = model.config.first_kernel // 2
        self.first_above, self.first_row, self.first_bias = (
            rows_above(first),
            current_row_matrix(first),
            model.first.bias,
        )
        self.image = self.zeros(self.height + self.first_pad, self.width + 2 * self.first_pad, self.data_channels)
        self.first_from_above = self.zeros(self.width, model.config.channels)  # the first layer's rows-above part

        self.pad = model.config.kernel // 2
        if self.gated:
            self.init_gated(cast("list[GatedBlock]", list(model.blocks)))
        else:
            self.init_residual(cast("list[ResidualBlock]", list(model.blocks)))

        hidden, logits = cast("list[nn.Conv2d]", [model.head[1], model.head[3]])
        self.head_hidden, self.head_hidden_bias = current_row_matrix(masked_weight(hidden)), hidden.bias
        self.head_logits, self.head_logits_bias = current_row_matrix(masked_weight(logits)), logits.bias

    def zeros(self, *shape: int) -> torch.Tensor:
        return torch.zeros(self.n, *shape, device=self.device)

    # ------------------------------------------------------------------------------------------ gated blocks

    def init_gated(self, blocks: list[GatedBlock]) -> None:
        channels = self.model.config.channels
        self.blocks_gated = blocks
        self.horizontal_row = [current_row_matrix(masked_weight(b.horizontal)) for b in blocks]
        self.horizontal_out = [current_row_matrix(masked_weight(b.horizontal_out)) for b in blocks]
        # The horizontal stack's input of each block, on the current row only: its 1 x k window never leaves it.
        self.h_rows = [self.zeros(self.width + self.pad, channels) for _ in blocks]
        # The vertical stack's output of each layer for every row so far (layer 0 is the first vertical conv).
        self.v_rows = [self.zeros(self.height + self.pad, self.width + 2 * self.pad, channels) for _ in blocks]
        # What the horizontal stack of row r receives from the vertical stack (its row r - 1, through the 1x1
        # link), plus the horizontal conv's bias: row 0 receives the link's bias alone (shift_down pads a zero).
        self.from_vertical = [
            (b.vertical_to_horizontal.bias + b.horizontal.bias).expand(self.n, self.width, -1).clone() for b in blocks
        ]

    def finish_vertical_row(self, row: int) -> None:
        """Run the vertical stacks on a finished row: they reach the horizontal stacks of the next row only."""
        model, first_pad, pad = self.model, self.first_pad, self.pad
        first_vertical = model.first_vertical.conv
        v = conv_rows(self.image[:, row : row + first_pad + 1], first_vertical.weight, first_vertical.bias)
        for layer, block in enumerate(self.blocks_gated):
            self.v_rows[layer][:, row + pad, pad : pad + self.width] = v
            band = self.v_rows[layer][:, row : row + pad + 1]  # rows row - k // 2 .. row
            v_pre = conv_rows(band, block.vertical.conv.weight, block.vertical.conv.bias)
            link = block.vertical_to_horizontal
            self.from_vertical[layer] = v_pre @ link.weight[:, :, 0, 0].T + (link.bias + block.horizontal.bias)
            v = gate(v_pre)

    def gated_step(self, x: torch.Tensor, col: int) -> torch.Tensor:
        """The horizontal stacks at (row, col) from the first layer's output x there; returns the last one's output."""
        window = slice(col, col + self.pad + 1)  # columns col - k // 2 .. col of the padded row
        for layer, block in enumerate(self.blocks_gated):
            h_row = self.h_rows[layer]
            h_row[:, col + self.pad] = x
            pre = torch.addmm(
                self.from_vertical[layer][:, col], h_row[:, window].reshape(self.n, -1), self.horizontal_row[layer]
            )
            x = torch.addmm(x, gate(pre), self.horizontal_out[layer]).add_(block.horizontal_out.bias)
        return x

    # ------------------------------------------------------------------------------------------ residual blocks

    def init_residual(self, blocks: list[ResidualBlock]) -> None:
        inner = self.model.config.channels // 2
        self.residual_convs = [cast("list[nn.Conv2d]", [b.body[1], b.body[3], b.body[5]]) for b in blocks]
        self.residual_down = [current_row_matrix(masked_weight(convs[0])) for convs in self.residual_convs]
        self.residual_above = [rows_above(masked_weight(convs[1])) for convs in self.residual_convs]
        self.residual_row = [current_row_matrix(masked_weight(convs[1])) for convs in self.residual_convs]
        self.residual_up = [current_row_matrix(masked_weight(convs[2])) for convs in self.residual_convs]
        # The input of each k x k conv (after the 1x1 down and its ReLU), for every row so far.
        self.inner_rows = [self.zeros(self.height + self.pad, self.width + 2 * self.pad, inner) for _ in blocks]
        self.inner_from_above = [self.zeros(self.width, inner) for _ in blocks]

    def start_residual_row(self, row: int) -> None:
        for layer, convs in enumerate(self.residual_convs):
            band = self.inner_rows[layer][:, row : row + self.pad]  # rows row - k // 2 .. row - 1
            self.inner_from_above[layer] = conv_rows(band, self.residual_above[layer], convs[1].bias)

    def residual_step(self, x: torch.Tensor, row: int, col: int) -> torch.Tensor:
        """The residual blocks at (row, col) from the first layer's output x there; returns the last one's output."""
        window = slice(col, col + self.pad + 1)
        for layer, convs in enumerate(self.residual_convs):
            inner = torch.addmm(convs[0].bias, x.relu(), self.residual_down[layer]).relu_()
            current_row = self.inner_rows[layer][:, row + self.pad]
            current_row[:, col + self.pad] = inner
            pre = torch.addmm(
                self.inner_from_above[layer][:, col],
                current_row[:, window].reshape(self.n, -1),
                self.residual_row[layer],
            )
            x = torch.addmm(x, pre.relu_(), self.residual_up[layer]).add_(convs[2].bias)
        return x

    # ------------------------------------------------------------------------------------------ the walk

    def start_row(self, row: int) -> None:
        """Everything that reads only rows < ``row``, for the whole row at once."""
        if self.gated and row > 0:
            self.finish_vertical_row(row - 1)
        band = self.image[:, row : row + self.first_pad]  # image rows row - first_kernel // 2 .. row - 1
        self.first_from_above = conv_rows(band, self.first_above, self.first_bias)
        if not self.gated:
            self.start_residual_row(row)

    def logits_at(self, row: int, col: int) -> torch.Tensor:
        """Logits (n, levels, C) at (row, col), given the image before it and ``start_row(row)``; caches its layers.

        Valid for channel c once channels < c of this pixel are set; every tensor here has a static shape.
        """
        image_window = self.image[:, row + self.first_pad, col : col + self.first_pad + 1].reshape(self.n, -1)
        x = torch.addmm(self.first_from_above[:, col], image_window, self.first_row)
        x = self.gated_step(x, col) if self.gated else self.residual_step(x, row, col)
        hidden = torch.addmm(self.head_hidden_bias, x.relu(), self.head_hidden).relu_()
        logits = torch.addmm(self.head_logits_bias, hidden, self.head_logits)
        # Output channel l * C + c holds the logit of level l for data channel c, as in PixelCNN.forward.
        return logits.view(self.n, self.levels, self.data_channels)

    def set_value(self, row: int, col: int, channel: int, values: torch.Tensor) -> None:
        unit = levels_to_unit(values, self.levels)
        self.image[:, row + self.first_pad, col + self.first_pad, channel] = unit


def generate(model: PixelCNN, n: int, choose: Chooser) -> torch.Tensor:
    """Walk the image in the chain rule's order, choosing each value from its logits; uint8 (n, C, H, W)."""
    cache = CachedPixelCNN(model, n)
    c, height, width = model.info.shape
    canvas = torch.zeros(n, c, height, width, dtype=torch.uint8, device=cache.device)
    for row in range(height):
        cache.start_row(row)
        for col in range(width):
            for channel in range(c):
                values = choose(cache.logits_at(row, col)[:, :, channel], row, col, channel)
                canvas[:, channel, row, col] = values
                cache.set_value(row, col, channel, values)
    return canvas


@torch.no_grad()
def sample_cached(model: PixelCNN, n: int, generator: torch.Generator) -> torch.Tensor:
    """n images, drawn as the plain sampler draws them (same order, same generator calls), on the CPU."""
    return generate(model, n, lambda logits, row, col, channel: sample_categorical(logits, generator, dim=1)).cpu()


@torch.no_grad()
def cached_logits(model: PixelCNN, x: torch.Tensor) -> torch.Tensor:
    """The logits (n, levels, C, H, W) the cached sampler computes when it is fed the images x (uint8).

    Equal to ``model(levels_to_unit(x))`` up to float rounding: the check that the caches are exact.
    """
    logits = torch.zeros(len(x), model.info.levels, *model.info.shape, device=x.device)

    def teacher(step_logits: torch.Tensor, row: int, col: int, channel: int) -> torch.Tensor:
        logits[:, :, channel, row, col] = step_logits
        return x[:, channel, row, col]

    generate(model, len(x), teacher)
    return logits
