"""The invertible layers of RealNVP and Glow, each mapping x to y and returning log |det dy/dx| per image.

Every layer has ``forward(x) -> (y, log_det)`` with ``log_det`` of shape (n,), float32, and ``inverse(y) -> x``.
The change of variables (Dinh et al. 2017, eq. 3) adds the layers' log-determinants:
log p_X(x) = log p_Z(f(x)) + sum_layers log |det df_i/dh_{i-1}|.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def at_least_float32(x: torch.Tensor) -> torch.Tensor:
    """bfloat16 (a network's output under autocast) as float32, for log-scales and log-determinants; float32 and
    float64 as they are."""
    return x if x.dtype in (torch.float32, torch.float64) else x.float()


class InvertibleLayer(nn.Module):
    """What every layer of the flow is: ``forward(x) -> (y, log_det)`` and ``inverse(y) -> x``."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


# ------------------------------------------------------------------------------- preprocessing: logit


class LogitTransform(InvertibleLayer):
    """s in [0, 1] -> y = logit(alpha + (1 - 2 alpha) s): Dinh et al. (2017), Section 4.1.

    The logit makes the bounded data unbounded, as a density on R^D needs; alpha keeps the ends of [0, 1] away
    from logit(0) = -inf. Its log-determinant per dimension is log(1 - 2 alpha) - log p - log(1 - p) with
    p = alpha + (1 - 2 alpha) s, since d logit(p)/dp = 1 / (p (1 - p)).
    """

    def __init__(self, alpha: float) -> None:
        super().__init__()
        self.alpha = alpha

    def forward(self, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        p = self.alpha + (1.0 - 2.0 * self.alpha) * s
        y = torch.log(p) - torch.log1p(-p)
        per_value = math.log(1.0 - 2.0 * self.alpha) - torch.log(p) - torch.log1p(-p)
        return y, per_value.flatten(1).sum(1)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        """sigmoid(y) back to [0, 1]; y outside the image of [0, 1] lands outside it (the caller clamps)."""
        return (torch.sigmoid(y) - self.alpha) / (1.0 - 2.0 * self.alpha)


# ------------------------------------------------------------------------------------------ squeeze


class Squeeze(InvertibleLayer):
    """(C, H, W) -> (4C, H/2, W/2): each 2x2 block of a channel becomes four channels (Dinh et al. 2017, Section
    3.6, Figure 3). A permutation of the values: log-determinant 0. Needs an even height and width."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n, c, h, w = x.shape
        y = x.view(n, c, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4).reshape(n, 4 * c, h // 2, w // 2)
        return y, x.new_zeros(n)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        n, c4, h, w = y.shape
        c = c4 // 4
        return y.view(n, c, 2, 2, h, w).permute(0, 1, 4, 2, 5, 3).reshape(n, c, 2 * h, 2 * w)


# ------------------------------------------------------------------------------------------ actnorm


class ActNorm(InvertibleLayer):
    """y = (x + bias) * exp(log_scale) per channel: Kingma & Dhariwal (2018), "Glow", Section 3.1, Table 1.

    Data-dependent initialization: the first forward pass in training mode sets bias and scale so that that batch's
    output has zero mean and unit variance per channel, then sets ``initialized``. The flag is a persistent buffer,
    so a model loaded from a checkpoint does not initialize again from whatever batch it sees next. Unlike the batch
    norm of RealNVP (Section 3.7), the transform never depends on the rest of a batch once initialized, so an
    image's likelihood does not either. log |det| = H * W * sum(log_scale).
    """

    initialized: torch.Tensor

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.log_scale = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.register_buffer("initialized", torch.tensor(False))

    @torch.no_grad()
    def initialize(self, x: torch.Tensor) -> None:
        values = at_least_float32(x).transpose(0, 1).flatten(1)  # (C, n * H * W)
        self.bias.copy_(-values.mean(1).view_as(self.bias))
        std = values.std(1, unbiased=False) if values.shape[1] > 1 else torch.ones(len(values), device=x.device)
        self.log_scale.copy_(-torch.log(std + 1e-6).view_as(self.log_scale))
        self.initialized.fill_(True)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.training and not bool(self.initialized):
            self.initialize(x)
        y = (x + self.bias) * torch.exp(self.log_scale)
        h, w = x.shape[2:]
        return y, (h * w * self.log_scale.sum()).expand(len(x))

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return y * torch.exp(-self.log_scale) - self.bias


# --------------------------------------------------------------------------- invertible 1x1 convolution


class InvertibleConv1x1(InvertibleLayer):
    """A learned linear map W of the channels at every position: Glow, Section 3.2 (eq. 9 and 10).

    Initialized as a random rotation (log-determinant 0). ``lu=False`` learns W itself and takes
    log |det| = H * W * log |det W| by slogdet (eq. 9); ``lu=True`` learns W = P L (U + diag(sign(s) exp(log|s|)))
    with P fixed, L unit lower- and U strictly upper-triangular (eq. 10), so log |det| = H * W * sum(log|s|), which
    costs O(C) instead of O(C^3). P and sign(s) come from the random initialization and are persistent buffers: a
    checkpoint must hold them, since a model rebuilt with another seed would draw others.
    """

    permutation: torch.Tensor
    sign_s: torch.Tensor
    lower_mask: torch.Tensor

    def __init__(self, channels: int, lu: bool) -> None:
        super().__init__()
        self.lu = lu
        rotation, _ = torch.linalg.qr(torch.randn(channels, channels))
        if not lu:
            self.weight = nn.Parameter(rotation)
            return
        permutation, lower, upper = torch.linalg.lu(rotation)
        s = torch.diagonal(upper)
        self.register_buffer("permutation", permutation)
        self.register_buffer("sign_s", torch.sign(s))
        self.register_buffer("lower_mask", torch.tril(torch.ones(channels, channels), -1), persistent=False)
        self.lower = nn.Parameter(lower * self.lower_mask)
        self.upper = nn.Parameter(torch.triu(upper, 1))
        self.log_s = nn.Parameter(torch.log(torch.abs(s)))

    def matrix(self) -> torch.Tensor:
        if not self.lu:
            return self.weight
        eye = torch.eye(len(self.log_s), device=self.log_s.device)
        lower = self.lower * self.lower_mask + eye
        upper = self.upper * self.lower_mask.T + torch.diag(self.sign_s * torch.exp(self.log_s))
        return self.permutation @ lower @ upper

    def log_abs_det(self) -> torch.Tensor:
        if self.lu:
            return self.log_s.sum()
        log_abs_det: torch.Tensor = torch.linalg.slogdet(at_least_float32(self.weight))[1]
        return log_abs_det

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        weight = self.matrix()
        y = F.conv2d(x, weight[:, :, None, None])
        h, w = x.shape[2:]
        return y, (h * w * self.log_abs_det()).expand(len(x))

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        inverse = torch.linalg.inv(self.matrix().double()).to(y.dtype)
        return F.conv2d(y, inverse[:, :, None, None])


# ------------------------------------------------------------------------------------- affine coupling


def checkerboard_mask(shape: tuple[int, int, int], parity: int) -> torch.Tensor:
    """1 where (row + column) % 2 == parity, on every channel: Dinh et al. (2017), Figure 3 (left)."""
    _, h, w = shape
    rows, cols = torch.arange(h)[:, None], torch.arange(w)[None, :]
    board = ((rows + cols) % 2 == parity).float()
    return board.expand(shape).clone()


def channel_mask(shape: tuple[int, int, int], parity: int) -> torch.Tensor:
    """1 on the first half of the channels (parity 0) or on the second (parity 1): Figure 3 (right)."""
    c = shape[0]
    first = (torch.arange(c) < c // 2).float()
    half = first if parity == 0 else 1.0 - first
    return half[:, None, None].expand(shape).clone()


class ResidualNet(nn.Module):
    """The s and t functions: a small rectified ResNet (Dinh et al. 2017, Section 4.1), 3x3 convolutions with zero
    padding. The last layer starts at zero (as Glow does, Section 3.3), so every coupling starts as the identity."""

    def __init__(self, in_channels: int, out_channels: int, features: int, blocks: int) -> None:
        super().__init__()
        self.first = nn.Conv2d(in_channels, features, 3, padding=1)
        self.blocks = nn.ModuleList(
            nn.Sequential(
                nn.ReLU(),
                nn.Conv2d(features, features, 3, padding=1),
                nn.ReLU(),
                nn.Conv2d(features, features, 3, padding=1),
            )
            for _ in range(blocks)
        )
        self.last = nn.Conv2d(features, out_channels, 3, padding=1)
        nn.init.zeros_(self.last.weight)
        nn.init.zeros_(self.last.bias)  # type: ignore[arg-type]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.first(x)
        for block in self.blocks:
            h = h + block(h)
        out: torch.Tensor = self.last(F.relu(h))
        return out


class AffineCoupling(InvertibleLayer):
    """Dinh et al. (2017), eq. (9): y = b * x + (1 - b) * (x * exp(s(b * x)) + t(b * x)), b a binary mask.

    The values where b = 1 pass unchanged and condition the others (eq. 6 and 7), so the Jacobian is triangular
    and log |det| = sum over b = 0 of s (eq. 8). s = scale * tanh(raw), with ``scale`` learned per channel, keeps
    the log-scales bounded early in training (their stabilization, Section 4.1). The mask is also an input of the
    network, which then knows which zeros are masked values.
    """

    mask: torch.Tensor

    def __init__(self, mask: torch.Tensor, features: int, blocks: int) -> None:
        super().__init__()
        c = mask.shape[0]
        self.register_buffer("mask", mask[None], persistent=False)  # follows from the shape and the config
        self.net = ResidualNet(c + 1, 2 * c, features, blocks)
        self.scale = nn.Parameter(torch.ones(1, c, 1, 1))

    def scale_and_shift(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        kept = x * self.mask
        raw = at_least_float32(self.net(torch.cat([kept, self.mask[:, :1].expand(len(x), -1, -1, -1)], 1)))
        raw_s, t = raw.chunk(2, dim=1)
        free = 1.0 - self.mask
        return self.scale * torch.tanh(raw_s) * free, t * free

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s, t = self.scale_and_shift(x)
        return x * torch.exp(s) + t, s.flatten(1).sum(1)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        s, t = self.scale_and_shift(y)  # b * y = b * x: the network sees the same input
        return (y - t) * torch.exp(-s)
