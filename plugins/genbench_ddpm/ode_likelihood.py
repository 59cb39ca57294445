"""The probability-flow ODE's likelihood of a DDPM, of the discrete images: a dequantized bound, estimated.

Song et al. (2021), "Score-Based Generative Modeling through Stochastic Differential Equations", Section 4.3 and
Appendix D.2: the diffusion of ``schedule.py`` is the variance-preserving SDE dx = -1/2 beta(s) x ds +
sqrt(beta(s)) dw, whose marginals are also those of the deterministic flow (their eq. 13)

    dx/ds = -1/2 beta(s) [x + grad_x log p_s(x)] = -1/2 beta(s) [x - eps_theta(x, s) / sqrt(1 - alpha_bar(s))],

with the score from the noise prediction, grad log p_s = -eps / sqrt(1 - alpha_bar(s)) (their Appendix B). The flow
carries a density from s = 1, where it is N(0, I) (alpha_bar(1) = exp(-10.05)), to the data end; its log-density
at a point is ``genbench.toolkit.ode.log_density`` (the instantaneous change of variables with Hutchinson's trace).
The data end is s = 1 / T, the smallest noise level the network was trained at, rather than s = 0 where it would
extrapolate: p_{1/T} is a density of slightly noised images, as valid as any for the bound below.

A density p(y) of continuous y defines a distribution of the discrete values, P(x) = integral of p over x's bin
(Theis, van den Oord & Bethge 2016). This integral is estimated by importance sampling with ``draws`` points y_k
from a proposal q over the bin: P(x) ~= (1/K) sum_k p(y_k) / q(y_k). For an inner level q is uniform on the bin of
width 2 / (levels - 1), so one draw gives the uniform-dequantization bound E[log p(y)] + D log(width); more draws
tighten it towards log P(x) (Burda et al. 2016). Either way it is a lower bound on log P(x) in expectation (the log
of an unbiased estimate of P(x), Jensen), so its kind is "dequantized bound" with a standard error, as flow matching's
ODE likelihood is: Song et al. (2021, Table 2) report the same quantity for their uniformly dequantized ODE.
The lowest and highest levels own everything beyond them, as the
decoder of the variational bound does (Ho et al. eq. 13), so there q is an exponential tail beyond the bin's inner
edge, and the probabilities of all images sum to one rather than losing the density's mass outside [-1, 1].

The standard error of log P(x) is the spread of the K weights (delta method: their standard deviation over
sqrt(K) times their mean); each draw has its own Hutchinson probes, so it covers the probe noise as well as the
dequantization's. With one draw it is the probes' standard error alone.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch

from genbench import LikelihoodEstimate
from genbench.toolkit.nn import levels_to_unit
from genbench.toolkit.ode import log_density

if TYPE_CHECKING:
    from genbench_ddpm import DDPM


def standard_normal_log_prob(z: torch.Tensor) -> torch.Tensor:
    return -0.5 * (z.square() + math.log(2 * math.pi)).flatten(1).sum(1)


def bin_proposal(
    x: torch.Tensor, levels: int, draws: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """``draws`` points in each image's bins, draw-major (draws * n, C, H, W), and log q of each, per row.

    Inner levels: uniform on [c - h, c + h], h = 1 / (levels - 1). The lowest level: c + h - 2h E with E ~ Exp(1) on
    its open bin (-inf, c + h], density exp(-E) / (2h); the highest level mirrored.
    """
    half = 1.0 / (levels - 1)
    centre = levels_to_unit(x, levels).repeat(draws, *[1] * (x.dim() - 1))
    uniform = torch.rand(centre.shape, generator=generator).to(x.device)
    tail = -torch.log1p(-uniform)  # Exp(1) from the same uniform draw
    level = x.repeat(draws, *[1] * (x.dim() - 1)).long()
    lowest, highest = level == 0, level == levels - 1
    y = centre + half * (2.0 * uniform - 1.0)
    y = torch.where(lowest, centre + half - 2.0 * half * tail, y)
    y = torch.where(highest, centre - half + 2.0 * half * tail, y)
    log_q = torch.full_like(y, -math.log(2.0 * half)) - torch.where(lowest | highest, tail, torch.zeros_like(tail))
    return y, log_q.flatten(1).sum(1)


def ode_log_likelihood(
    model: DDPM,
    x: torch.Tensor,
    *,
    draws: int,
    probes: int,
    rtol: float,
    atol: float,
    generator: torch.Generator,
) -> LikelihoodEstimate:
    """log P(x) in nats per image of uint8 images x, with its standard error (see the module's docstring)."""
    if draws < 1:
        raise ValueError(f"draws must be at least 1, got {draws}")
    schedule = model.schedule

    def velocity(s: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        time = s.detach().double()
        rate = float(schedule.rate(time))
        noise_std = math.sqrt(-math.expm1(-float(schedule.integrated_rate(time))))
        eps = model.net(y, s.to(y.dtype))
        flow: torch.Tensor = -0.5 * rate * (y - eps / noise_std)
        return flow

    y, log_q = bin_proposal(x, model.info.levels, draws, generator)
    density = log_density(
        velocity,
        y,
        1.0 / schedule.steps,
        1.0,
        standard_normal_log_prob,
        trace="hutchinson",
        generator=generator,
        probes=probes,
        rtol=rtol,
        atol=atol,
    )
    log_weights = (density.log_prob.double() - log_q.double()).view(draws, len(x))
    log_p = torch.logsumexp(log_weights, dim=0) - math.log(draws)
    if draws > 1:
        weights = torch.exp(log_weights - log_weights.max(dim=0).values)
        stderr = weights.std(dim=0) / (math.sqrt(draws) * weights.mean(dim=0))
    else:
        assert density.stderr is not None  # Hutchinson's trace always reports one
        stderr = density.stderr.double()
    return LikelihoodEstimate(log_p.float(), stderr.float())
