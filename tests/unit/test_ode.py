"""genbench.toolkit.ode against closed forms: a linear ODE, a Gaussian carried to a Gaussian, the exact trace."""

from __future__ import annotations

import math

import pytest
import torch

from genbench.toolkit.ode import EVALUATIONS_PER_STEP, log_density, solve

# Steps (or tolerance) per method and the error each must reach on dx/dt = -2x over [0, 1]: the global error of
# a scheme of order p is O(h^p), so a first-order Euler needs many more steps than RK4 for the same accuracy.
LINEAR_CASES = [("euler", 1000, 5e-3), ("midpoint", 300, 1e-4), ("rk4", 20, 1e-5), ("dopri5", None, 1e-6)]


@pytest.mark.parametrize(("method", "steps", "tolerance"), LINEAR_CASES)
@pytest.mark.parametrize(("t0", "t1"), [(0.0, 1.0), (1.0, 0.0)])
def test_solve_matches_the_exponential_of_a_linear_ode(
    method: str, steps: int | None, tolerance: float, t0: float, t1: float
) -> None:
    x0 = torch.linspace(-2, 2, 6, dtype=torch.float64).reshape(3, 2)
    solution = solve(lambda t, x: -2.0 * x, x0, t0, t1, method=method, steps=steps, rtol=1e-9, atol=1e-9)
    expected = x0 * math.exp(-2.0 * (t1 - t0))
    assert torch.allclose(solution.x, expected, rtol=tolerance, atol=tolerance)


@pytest.mark.parametrize("method", ["euler", "midpoint", "rk4"])
def test_fixed_step_methods_count_their_network_evaluations(method: str) -> None:
    calls = []

    def velocity(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        calls.append(float(t))
        return -x

    solution = solve(velocity, torch.ones(2, 3), 0.0, 1.0, method=method, steps=7)
    assert solution.nfe == len(calls) == 7 * EVALUATIONS_PER_STEP[method]
    assert min(calls) == 0.0 and max(calls) <= 1.0  # the schemes evaluate within each step, not at its end


def test_dopri5_counts_every_evaluation_and_spends_more_at_tighter_tolerances() -> None:
    def velocity(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return torch.sin(3 * t) * x + torch.cos(x)

    x0 = torch.randn(4, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    loose = solve(velocity, x0, 0.0, 1.0, rtol=1e-3, atol=1e-3)
    tight = solve(velocity, x0, 0.0, 1.0, rtol=1e-8, atol=1e-8)
    assert 0 < loose.nfe < tight.nfe
    assert torch.allclose(loose.x, tight.x, atol=5e-2)


def test_unknown_methods_and_missing_steps_are_refused() -> None:
    with pytest.raises(ValueError, match="choose one of dopri5, euler"):
        solve(lambda t, x: x, torch.zeros(1, 1), 0.0, 1.0, method="heun")
    with pytest.raises(ValueError, match="needs steps"):
        solve(lambda t, x: x, torch.zeros(1, 1), 0.0, 1.0, method="euler")
    with pytest.raises(ValueError, match="unknown trace"):
        log_density(lambda t, x: x, torch.zeros(1, 1), 1.0, 0.0, lambda z: z.sum(1), trace="diagonal")


# ------------------------------------------------------------------ a Gaussian carried to a Gaussian

MU = torch.tensor([1.5, -0.5, 0.25], dtype=torch.float64)
SCALE = 0.4


def optimal_transport_velocity(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """The flow x_t = (1 - t + t s) z + t mu carrying N(0, I) at t = 0 to N(mu, s^2 I) at t = 1 (the OT path of
    Lipman et al. 2023, eq. 20, with sigma_min = s): v = (s - 1) / sigma_t (x - m_t) + mu."""
    sigma = 1 - t + t * SCALE
    return (SCALE - 1) / sigma * (x - t * MU) + MU


def standard_normal_log_prob(z: torch.Tensor) -> torch.Tensor:
    return -0.5 * (z**2).sum(1) - 0.5 * z.shape[1] * math.log(2 * math.pi)


def target_log_prob(x: torch.Tensor) -> torch.Tensor:
    return standard_normal_log_prob((x - MU) / SCALE) - x.shape[1] * math.log(SCALE)


def points() -> torch.Tensor:
    return MU + SCALE * torch.randn(5, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)


@pytest.mark.parametrize("trace", ["exact", "hutchinson"])
def test_log_density_of_the_noise_to_data_flow_is_the_target_gaussian(trace: str) -> None:
    # Flow matching's direction: noise at t = 0, data at t = 1. The divergence, 3 (s - 1) / sigma_t, is the same
    # for every probe (the Jacobian is a multiple of I), so even Hutchinson's estimate is exact here.
    x = points()
    result = log_density(
        optimal_transport_velocity, x, 1.0, 0.0, standard_normal_log_prob, trace=trace, rtol=1e-8, atol=1e-8
    )
    assert torch.allclose(result.log_prob, target_log_prob(x), atol=1e-5)
    assert result.nfe > 0


def test_log_density_of_the_data_to_noise_flow_is_the_target_gaussian() -> None:
    # A diffusion's direction: data at t = 0, noise at t = 1; the same flow run backwards in time.
    def reversed_velocity(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return -optimal_transport_velocity(1 - t, x)

    x = points()
    result = log_density(reversed_velocity, x, 0.0, 1.0, standard_normal_log_prob, trace="exact", rtol=1e-8, atol=1e-8)
    assert torch.allclose(result.log_prob, target_log_prob(x), atol=1e-5)
    assert result.stderr is None


def test_log_density_with_fixed_steps_converges_to_the_closed_form() -> None:
    x = points()
    errors = [
        (
            log_density(
                optimal_transport_velocity, x, 1.0, 0.0, standard_normal_log_prob, method="rk4", steps=steps
            ).log_prob
            - target_log_prob(x)
        )
        .abs()
        .max()
        for steps in (2, 16)
    ]
    assert errors[1] < errors[0] / 100 and errors[1] < 1e-5


# ------------------------------------------------------------------ Hutchinson against the exact trace


class TinyField(torch.nn.Module):
    """A nonlinear, time-dependent velocity whose Jacobian is far from a multiple of I, so that Hutchinson's
    estimate has a real spread."""

    def __init__(self, dims: int) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(2)
        self.weight = torch.nn.Parameter(torch.randn(dims, dims, generator=generator, dtype=torch.float64))
        self.bias = torch.nn.Parameter(torch.randn(dims, generator=generator, dtype=torch.float64))

    def forward(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        flat = x.flatten(1)
        return torch.tanh(flat @ self.weight.T * (1 + t) + self.bias).reshape(x.shape)


def test_hutchinson_estimate_agrees_with_the_exact_trace_within_its_standard_error() -> None:
    field = TinyField(6)
    x = torch.randn(64, 1, 2, 3, generator=torch.Generator().manual_seed(3), dtype=torch.float64)

    def base(z: torch.Tensor) -> torch.Tensor:
        return standard_normal_log_prob(z.flatten(1))

    with torch.no_grad():  # as an evaluation calls it: log_density turns gradients on where it needs them
        exact = log_density(field, x, 1.0, 0.0, base, trace="exact", rtol=1e-7, atol=1e-7)
        estimate = log_density(
            field, x, 1.0, 0.0, base, generator=torch.Generator().manual_seed(4), probes=8, rtol=1e-7, atol=1e-7
        )
    assert estimate.stderr is not None and bool((estimate.stderr > 0).all())
    z = (estimate.log_prob - exact.log_prob) / estimate.stderr
    # With 8 probes the t-statistic has heavier tails than a normal one: allow a few beyond 3 of 64, and check
    # that the estimates are centred on the exact value (unbiased) rather than merely noisy.
    assert int((z.abs() > 3).sum()) <= 4
    assert abs(float((estimate.log_prob - exact.log_prob).mean())) < 3 * float(estimate.stderr.pow(2).mean().sqrt()) / 8
    assert not exact.log_prob.requires_grad and not estimate.log_prob.requires_grad


def test_one_probe_still_reports_a_standard_error_from_two() -> None:
    field = TinyField(2)
    x = torch.randn(4, 2, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    one = log_density(field, x, 1.0, 0.0, standard_normal_log_prob, generator=torch.Generator().manual_seed(6))
    two = log_density(
        field, x, 1.0, 0.0, standard_normal_log_prob, generator=torch.Generator().manual_seed(6), probes=2
    )
    assert one.stderr is not None and two.stderr is not None
    assert torch.equal(one.log_prob, two.log_prob) and torch.equal(one.stderr, two.stderr)
