"""Flow matching: a continuous normalizing flow trained without simulation, by regressing a velocity field.

Lipman et al. (2023), "Flow Matching for Generative Modeling". Noise x0 ~ N(0, I) sits at t = 0 and data x1 at
t = 1. The conditional optimal-transport path (their eq. 20-22) moves x0 along a straight line,

    x_t = (1 - (1 - sigma_min) t) x0 + t x1,        u_t = d x_t / dt = x1 - (1 - sigma_min) x0,

and the conditional flow matching loss (eq. 23) regresses a network v(t, x_t) onto u_t, with t ~ U[0, 1]. Its
gradient is that of matching the marginal velocity field (Theorem 2), so dx/dt = v(t, x) carries N(0, I) to the
data. With ``coupling = "ot"`` the pairs (x0, x1) of a minibatch are matched by exact optimal transport instead of
at random (Tong et al. 2024, "Improving and generalizing flow-based generative models with minibatch optimal
transport", OT-CFM, Algorithm 1): straighter paths, which a few solver steps follow better.

Sampling solves the ODE from t = 0 to 1 (genbench.toolkit.ode) with an evaluation-time solver: Euler, midpoint
or RK4 with a number of steps, or adaptive dopri5 with tolerances. The likelihood is the change of variables
along the same ODE (Chen et al. 2018; Grathwohl et al. 2019, Hutchinson's trace) applied to uniformly dequantized
data (Theis et al. 2016; Song et al. 2021, Appendix D.2 of "Score-Based Generative Modeling through SDEs"), so it
is a lower bound on log P(x) of the discrete images, estimated by Monte Carlo.

Discrete data and the continuous model meet on one grid: level k of L owns the interval
[-1 + 2k/L, -1 + 2(k+1)/L) of [-1, 1]. Training sees every value spread uniformly over its interval, samples are
quantized by the interval they fall in (outside [-1, 1]: the end levels), and the likelihood integrates the
density over the same intervals.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

import genbench
from genbench import DataInfo, FitContext, ImageData, LikelihoodEstimate
from genbench.toolkit.checks import require_at_least, require_positive
from genbench.toolkit.devices import eval_batch_size, to_device
from genbench.toolkit.ode import EVALUATIONS_PER_STEP, FIXED_STEP_METHODS, METHODS, log_density, solve
from genbench.toolkit.training import fit_by_minimizing
from genbench.toolkit.unet import UNet

COUPLINGS = ("independent", "ot")
#: The likelihood draws its dequantization noise and its probes from a generator seeded with this, so that the
#: bound is a fixed function of the weights and the data: a checkpoint gives the same number trained or loaded.
LIKELIHOOD_NOISE_SEED = 0
#: Images per ODE solve when sampling on the CPU (on CUDA as many as fit): the memory of one batch of activations.
SAMPLE_BATCH = 256
#: The network sees t * TIME_INPUT_SCALE. genbench.toolkit.unet embeds its time in [0, 1] as DDPM's step, t * 1000,
#: so its fastest sinusoid turns 1000 radians along the path; a velocity that wiggles that fast in t makes dopri5
#: take tiny steps (at 1e-5 on the digits after 3 epochs: 344 evaluations per sample; with this scale, 38). Flow
#: matching's own code feeds the same kind of embedding t in [0, 1] unscaled; 10 radians keeps it expressive.
TIME_INPUT_SCALE = 0.01


@dataclass
class FlowMatchingConfig:
    # The U-Net of genbench.toolkit.unet (Ho et al. 2020, Appendix B). Lipman et al. (2023, Appendix E, Table 3, read
    # through a summary that reproduces it) use 256 channels, 2 blocks per level, multipliers (1, 2, 2, 2), attention
    # at 16x16 and no dropout on CIFAR-10, lr 5e-4 with polynomial decay and 45k warm-up steps, batch 256, 1000
    # epochs (the summary also says 391k iterations, which 1000 epochs at batch 256 are not: see docs/suites.md).
    # 16 channels, one block, (1, 2) trains on the 8x8 digits in about the PixelCNN's time.
    base_channels: int = 16
    channel_mults: tuple[int, ...] | None = None  # None: sized from the image (toolkit.unet.default_channel_mults)
    blocks_per_level: int = 1
    attention: bool = False  # self-attention at the lowest resolution; pays off from 32x32 on
    dropout: float = 0.0  # 0.1 on CIFAR-10 in Ho et al.; the small digits model does not overfit in this budget
    # The width of the path's end at the data (eq. 20); small, so that the flow ends on the (dequantized) data.
    # Dequantization already spreads each value over a bin of width 2 / levels, far wider than this.
    sigma_min: float = 1e-4
    # "independent": x0 and x1 paired at random (Lipman et al.); "ot": the minibatch's exact OT assignment under
    # squared distance (Tong et al. 2024), one Hungarian solve per batch (scipy), straighter paths.
    coupling: Literal["independent", "ot"] = "independent"
    epochs: int = 60  # as long as the PixelCNN's 20: 2.7 against its 8.9 CPU s an epoch on the digits, timed together
    batch_size: int = 64  # ~23 updates per epoch on the digits; 128-256 on MNIST or CIFAR-10 with a GPU
    lr: float = 2e-3  # Adam's first step, decayed to zero on a cosine; 1e-4 to 5e-4 for the paper-sized U-Net
    grad_clip: float = 1.0  # a maximal gradient norm: early velocity targets are large where t is near 0

    def __post_init__(self) -> None:
        require_at_least(self, 1, "base_channels", "blocks_per_level", "epochs", "batch_size")
        require_positive(self, "lr", "grad_clip")
        if not 0.0 <= self.sigma_min < 1.0:
            raise ValueError(f"sigma_min must be in [0, 1), got {self.sigma_min}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.coupling not in COUPLINGS:
            raise ValueError(f"coupling must be one of {', '.join(COUPLINGS)}, got {self.coupling!r}")


@dataclass
class FlowMatchingSampling:
    # How the ODE is solved when sampling: not what was trained, so a sweep (--sample-option
    # flow_matching.steps=4,8,16) evaluates one checkpoint several times. Euler with few steps is cheapest and
    # coarsest; dopri5 adapts its steps to the tolerances below (Lipman et al. sample with dopri5 at 1e-5).
    solver: Literal["euler", "midpoint", "rk4", "dopri5"] = "midpoint"
    steps: int = 16  # fixed-step solvers only: euler spends 1 network evaluation a step, midpoint 2, rk4 4
    rtol: float = 1e-5  # dopri5 only
    atol: float = 1e-5  # dopri5 only

    def __post_init__(self) -> None:
        if self.solver not in METHODS:
            raise ValueError(f"solver must be one of {', '.join(METHODS)}, got {self.solver!r}")
        require_at_least(self, 1, "steps")
        require_positive(self, "rtol", "atol")


class FlowMatching(nn.Module):
    capabilities = frozenset({genbench.SAMPLE, genbench.LIKELIHOODS})

    def __init__(self, config: FlowMatchingConfig, info: DataInfo) -> None:
        super().__init__()
        self.config, self.info = config, info
        channels, height, width = info.shape
        self.net = UNet(
            channels,
            height,
            width,
            base_channels=config.base_channels,
            channel_mults=config.channel_mults,
            blocks_per_level=config.blocks_per_level,
            attention=config.attention,
            dropout=config.dropout,
        )
        self.sample_options = FlowMatchingSampling()  # the runner sets this before each evaluation
        self.last_sampling_nfe: int | None = None
        self.likelihoods = [
            genbench.Likelihood(
                "ode",
                genbench.DEQUANTIZED,
                self.dequantized_log_likelihood,
                {"draws": 2, "rtol": 1e-5, "atol": 1e-5},
                description=(
                    "uniformly dequantized change of variables along the flow's ODE (dopri5; Chen et al. 2018), "
                    "Hutchinson trace with Rademacher probes (Grathwohl et al. 2019): a Monte-Carlo estimate, over "
                    "the dequantization noise and the probes, of a lower bound on log P(x); standard error over draws"
                ),
            )
        ]

    @property
    def network_evaluations(self) -> int | None:
        """Network evaluations per sample: steps times the solver's stages, or dopri5's count in the last
        ``sample`` call (None before one)."""
        options = self.sample_options
        if options.solver in FIXED_STEP_METHODS:
            return options.steps * EVALUATIONS_PER_STEP[options.solver]
        return self.last_sampling_nfe

    # ---------------------------------------------------------------------------- the grid of levels

    @property
    def bin_width(self) -> float:
        return 2.0 / self.info.levels

    def dequantized(self, x: Tensor, u: Tensor) -> Tensor:
        """Level k with u in [0, 1) -> -1 + (k + u) * 2 / levels: uniform over level k's bin in [-1, 1)."""
        return (x.float() + u) * self.bin_width - 1.0

    def quantized(self, y: Tensor) -> Tensor:
        """The level whose bin holds y; values outside [-1, 1] belong to the end levels."""
        levels = ((y.float() + 1.0) / self.bin_width).floor()
        return levels.clamp(0, self.info.levels - 1).to(torch.uint8)

    def network(self, x: Tensor, t: Tensor) -> Tensor:
        """v(t, x) for times t of shape (N,) in [0, 1]."""
        velocity: Tensor = self.net(x, t * TIME_INPUT_SCALE)
        return velocity

    def velocity(self, t: Tensor, x: Tensor) -> Tensor:
        """v(t, x) with one time for the batch, as the ODE solvers call it."""
        return self.network(x, t.reshape(1).expand(len(x)))

    # ------------------------------------------------------------------------------------ training

    def conditional_flow_matching_loss(self, batch: Tensor, generator: torch.Generator) -> Tensor:
        """Lipman et al. (2023), eq. 23 on the OT path (eq. 20-22): sum over values of the squared error of
        v(t, x_t) against u_t, mean over the batch. The data are dequantized (u ~ U[0, 1) per value), so that the
        flow carries noise to a density over [-1, 1]^D whose mass on each bin is that level's probability."""
        sigma_min = self.config.sigma_min
        noise = torch.randn(batch.shape, generator=generator, device=generator.device)
        u = torch.rand(batch.shape, generator=generator, device=generator.device)
        t = torch.rand(len(batch), generator=generator, device=generator.device)
        x1 = self.dequantized(batch, to_device(u, batch.device))
        x0 = to_device(noise, batch.device)
        if self.config.coupling == "ot":
            x0 = x0[optimal_transport_order(x0, x1)]
        t = to_device(t, batch.device)
        t_ = t.view(-1, *[1] * (batch.dim() - 1))
        x_t = (1 - (1 - sigma_min) * t_) * x0 + t_ * x1
        target = x1 - (1 - sigma_min) * x0
        error = self.network(x_t, t).float() - target
        return error.square().flatten(1).sum(1).mean()

    def fit(self, train: ImageData, ctx: FitContext) -> None:
        config = self.config
        fit_by_minimizing(
            self,
            lambda batch: self.conditional_flow_matching_loss(batch, ctx.generator),
            train,
            ctx,
            lr=config.lr,
            epochs=config.epochs,
            batch_size=config.batch_size,
            dims=self.info.dims,
            curve_name="cfm_loss",  # squared velocity error per image, not nats
            grad_clip=config.grad_clip,
            desc="flow_matching",
        )

    # ---------------------------------------------------------------------------------- evaluation

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        """Noise drawn by the CPU generator, carried from t = 0 to 1 by the evaluation-time solver, quantized."""
        self.eval()  # dropout off, whatever mode a loaded model was left in
        options = self.sample_options
        device = next(self.parameters()).device
        noise = torch.randn(n, *self.info.shape, generator=generator, device=generator.device)
        per_image = 4 * self.info.dims * self.config.base_channels * 64  # rough bytes of activations per image
        batch = eval_batch_size(device, per_image, SAMPLE_BATCH)
        images, evaluations = [], []
        for start in range(0, n, batch):
            solution = solve(
                self.velocity,
                to_device(noise[start : start + batch], device),
                0.0,
                1.0,
                method=options.solver,
                steps=options.steps,
                rtol=options.rtol,
                atol=options.atol,
            )
            images.append(self.quantized(solution.x).cpu())
            evaluations.append(solution.nfe)
        if evaluations:
            self.last_sampling_nfe = round(sum(evaluations) / len(evaluations))
        return torch.cat(images) if images else torch.zeros(0, *self.info.shape, dtype=torch.uint8)

    def dequantized_log_likelihood(
        self, x: Tensor, draws: int = 2, rtol: float = 1e-5, atol: float = 1e-5
    ) -> LikelihoodEstimate:
        """log P(x) >= E_u[log p(y)] + D log(2 / levels), y = -1 + (x + u) 2 / levels, u ~ U[0, 1)^D.

        P(x) is the integral of the flow's density p over x's bin, of volume (2 / levels)^D; Jensen's inequality
        gives the bound (Theis et al. 2016, eq. 10; the uniform dequantization of Song et al. 2021). The end bins
        are the sampler's too, which maps all values beyond [-1, 1] to the end levels, so the integral over the
        bins inside [-1, 1] is a lower bound on the sampler's probability as well.

        log p(y) comes from the ODE from t = 1 (data) to t = 0 (noise, N(0, I)) with dopri5 at rtol/atol and one
        fixed Hutchinson probe pair per draw. Each image gets ``draws`` independent draws of u and of the probes
        (at least 2): the estimate is their mean and its standard error their standard deviation / sqrt(draws).
        """
        if draws < 2:
            raise ValueError(f"draws must be at least 2 (a standard error needs two), got {draws}")
        self.eval()
        generator = torch.Generator().manual_seed(LIKELIHOOD_NOISE_SEED)
        rows = x.repeat(draws, *[1] * (x.dim() - 1))  # draw-major: row r * n + i is draw r of image i
        u = torch.rand(rows.shape, generator=generator)
        y = self.dequantized(rows, to_device(u, x.device))
        density = log_density(
            self.velocity,
            y,
            1.0,
            0.0,
            standard_normal_log_prob,
            trace="hutchinson",
            generator=generator,
            rtol=rtol,
            atol=atol,
        )
        per_draw = (density.log_prob + self.info.dims * math.log(self.bin_width)).view(draws, len(x))
        return LikelihoodEstimate(per_draw.mean(0), per_draw.std(0) / math.sqrt(draws))

    def log_likelihood(self, x: Tensor) -> Tensor:
        raise NotImplementedError("a flow's probability of a discrete image is an integral; see `likelihoods`")

    def elbo(self, x: Tensor, k: int = 1) -> Tensor:
        raise NotImplementedError("flow matching's bound is the dequantized one; see `likelihoods`")


def standard_normal_log_prob(z: Tensor) -> Tensor:
    """log N(z; 0, I) per sample, summed over every value."""
    flat = z.flatten(1)
    return -0.5 * (flat.square().sum(1) + flat.shape[1] * math.log(2 * math.pi))


def optimal_transport_order(x0: Tensor, x1: Tensor) -> Tensor:
    """The permutation of x0 that pairs it with x1 at the least total squared distance: the exact OT plan
    between two empirical measures of equal size and uniform weights is a permutation (Birkhoff), found by the
    Hungarian algorithm (Tong et al. 2024, Section 3.2, OT-CFM; scipy's linear_sum_assignment)."""
    from scipy.optimize import linear_sum_assignment  # imported here: plugins load without scipy at the top

    cost = torch.cdist(x1.flatten(1).double(), x0.flatten(1).double()).square()
    _, columns = linear_sum_assignment(cost.cpu().numpy())
    return torch.as_tensor(columns, device=x0.device)


@genbench.hookimpl
def genbench_models() -> list[genbench.ModelSpec]:
    return [
        genbench.ModelSpec(
            "flow_matching",
            "conditional flow matching on the OT path (U-Net velocity), ODE sampling; dequantized ODE likelihood",
            FlowMatchingConfig,
            FlowMatching,
            sample_options_class=FlowMatchingSampling,
        )
    ]
