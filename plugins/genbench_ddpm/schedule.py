"""The noise schedule of a DDPM, and the closed-form pieces of its variational bound.

Ho et al. (2020), "Denoising Diffusion Probabilistic Models": the forward process q(x_t | x_{t-1}) =
N(sqrt(1 - beta_t) x_{t-1}, beta_t I) for t = 1..T, with alpha_t = 1 - beta_t and alpha_bar_t = prod_{s<=t} alpha_s,
so q(x_t | x_0) = N(sqrt(alpha_bar_t) x_0, (1 - alpha_bar_t) I) (their eq. 4).

The schedule is Ho et al.'s linear one (beta_1 = 1e-4 to beta_T = 0.02 at T = 1000) written as the variance-
preserving SDE it discretizes, Song et al. (2021), "Score-Based Generative Modeling through SDEs", Appendix B:
beta(s) = b0 + s (b1 - b0) for s in [0, 1], b0 = 1000 beta_1 = 0.1 and b1 = 1000 beta_T = 20, and step t of T is the
exact transition from s = (t-1)/T to t/T of that SDE:

    alpha_bar_t = exp(-B(t/T)),  B(s) = b0 s + (b1 - b0) s^2 / 2,  beta_t = 1 - alpha_bar_t / alpha_bar_{t-1}.

At T = 1000 these betas are Ho et al.'s to within 1% (the rate at the middle of each step); at any other T they
are the same diffusion seen at T points, so alpha_bar_T = exp(-10.05) for every T (the usual rescaling by 1000 / T,
improved-diffusion's, gives betas above 1 below T = 20; this one never does), and the probability-flow ODE of the
same SDE agrees with the discrete model at every step t / T.
"""

from __future__ import annotations

import math

import torch

#: Ho et al.'s betas are per step of T = 1000; the SDE's rates are those times 1000 (Song et al. 2021, Appendix B).
REFERENCE_STEPS = 1000


class Schedule:
    """alpha_bar_t, beta_t and the posterior q(x_{t-1} | x_t, x_0) for t = 0..T, as float64 tables (index t)."""

    def __init__(self, steps: int, beta_start: float, beta_end: float) -> None:
        self.steps = steps
        self.rate_start = REFERENCE_STEPS * beta_start  # b0
        self.rate_end = REFERENCE_STEPS * beta_end  # b1
        times = torch.arange(steps + 1, dtype=torch.float64) / steps
        self.alpha_bar = torch.exp(-self.integrated_rate(times))  # alpha_bar_0 = 1: no noise at t = 0
        self.beta = torch.zeros(steps + 1, dtype=torch.float64)
        self.beta[1:] = 1.0 - self.alpha_bar[1:] / self.alpha_bar[:-1]
        self.alpha = 1.0 - self.beta
        # q(x_{t-1} | x_t, x_0) = N(coef_x0 x_0 + coef_xt x_t, posterior_variance) (Ho et al. eq. 6-7); t >= 1.
        previous = torch.cat([torch.ones(1, dtype=torch.float64), self.alpha_bar[:-1]])
        self.alpha_bar_previous = previous
        self.posterior_variance = self.beta * (1.0 - previous) / (1.0 - self.alpha_bar).clamp(min=1e-300)
        self.coef_x0 = previous.sqrt() * self.beta / (1.0 - self.alpha_bar).clamp(min=1e-300)
        self.coef_xt = self.alpha.sqrt() * (1.0 - previous) / (1.0 - self.alpha_bar).clamp(min=1e-300)

    def integrated_rate(self, s: torch.Tensor) -> torch.Tensor:
        """B(s) = integral_0^s beta(u) du of the SDE's linear rate beta(u) = b0 + u (b1 - b0)."""
        return self.rate_start * s + 0.5 * (self.rate_end - self.rate_start) * s.square()

    def rate(self, s: torch.Tensor) -> torch.Tensor:
        """beta(s), the SDE's rate at continuous time s in [0, 1]."""
        return self.rate_start + s * (self.rate_end - self.rate_start)

    def continuous_alpha_bar(self, s: torch.Tensor) -> torch.Tensor:
        return torch.exp(-self.integrated_rate(s))

    def subsequence(self, count: int) -> list[int]:
        """``count`` steps evenly spaced in 1..T and ending at T: round(i T / count) for i = 1..count.

        Distinct whenever count <= T; count = T gives every step. Song et al. (2021a, DDIM), Section 4.2, and Nichol &
        Dhariwal (2021), Section 4, sample on such a subsequence.
        """
        return [round(i * self.steps / count) for i in range(1, count + 1)]


# ------------------------------------------------------------------------------ closed-form likelihood terms


def gaussian_kl_equal_variance(mean_q: torch.Tensor, mean_p: torch.Tensor, variance: torch.Tensor) -> torch.Tensor:
    """KL(N(mean_q, v I) || N(mean_p, v I)) summed over all but the first dimension: |mean_q - mean_p|^2 / (2 v).

    The KL of two Gaussians of one variance is the squared distance of the means over twice it (Ho et al. eq. 8:
    the model's variance is fixed to the posterior's, so only the means differ).
    """
    return ((mean_q - mean_p).square() / (2.0 * variance)).flatten(1).sum(1)


def prior_kl(x0: torch.Tensor, alpha_bar_last: float) -> torch.Tensor:
    """L_T = KL(q(x_T | x_0) || N(0, I)) per image, with q(x_T | x_0) = N(sqrt(a) x_0, (1 - a) I), a = alpha_bar_T.

    Per dimension: 1/2 (a x_0^2 + (1 - a) - 1 - log(1 - a)); no parameters, so Ho et al. drop it from training.
    """
    a = alpha_bar_last
    per_dim = 0.5 * (a * x0.square() + (1.0 - a) - 1.0 - math.log1p(-a))
    return per_dim.flatten(1).sum(1)


def log_normal_cdf_difference(upper: torch.Tensor, lower: torch.Tensor) -> torch.Tensor:
    """log(Phi(upper) - Phi(lower)) for upper > lower, accurate in both tails and for narrow intervals.

    Where the interval lies right of 0 the mirrored form Phi(-lower) - Phi(-upper) is used, so the difference is
    taken between the smaller tail probabilities; log1p-style via expm1 when the two are close.
    """
    mirrored = (upper + lower) > 0
    high = torch.where(mirrored, -lower, upper)
    low = torch.where(mirrored, -upper, lower)
    log_high, log_low = torch.special.log_ndtr(high), torch.special.log_ndtr(low)
    difference: torch.Tensor = log_high + torch.log(-torch.expm1(log_low - log_high))
    return difference


def discretized_gaussian_log_prob(x0: torch.Tensor, mean: torch.Tensor, std: float, levels: int) -> torch.Tensor:
    """log p(x_0 | x_1) summed per image: the Gaussian N(mean, std^2) integrated over each value's bin.

    Ho et al. eq. 13 for 256 levels, with bins generalised to ``levels``: value x (in [-1, 1], the level's centre)
    owns [x - h, x + h] with h = 1 / (levels - 1), and the lowest and highest values own everything below and above,
    so the probabilities of the levels sum to one.
    """
    half_width = 1.0 / (levels - 1)
    upper = torch.where(x0 >= 1.0 - 1e-6, torch.inf, (x0 + half_width - mean) / std)
    lower = torch.where(x0 <= -1.0 + 1e-6, -torch.inf, (x0 - half_width - mean) / std)
    return log_normal_cdf_difference(upper, lower).flatten(1).sum(1)
