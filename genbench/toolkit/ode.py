"""ODE integration for continuous-time models, and the log-density of a sample by the change of variables.

``solve`` integrates dx/dt = v(t, x) with an adaptive Dormand-Prince solver (torchdiffeq's dopri5, Dormand &
Prince 1980) or a fixed-step Euler, midpoint or Runge-Kutta 4 scheme, and counts the network evaluations (NFE)
it spent. ``log_density`` integrates the same ODE jointly with the divergence of v (the instantaneous change of
variables, Chen et al. 2018, "Neural Ordinary Differential Equations", Theorem 1), with the divergence computed
exactly or by Hutchinson's estimator with Rademacher probes (Grathwohl et al. 2019, "FFJORD", Section 3.1).

Time runs either way: flow matching (Lipman et al. 2023) carries noise at t = 0 to data at t = 1, the
probability-flow ODE of a diffusion (Song et al. 2021) data at t = 0 to noise at t = 1. The caller names which
end is the data and which the noise; the signs below hold for both.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

#: Velocity field v(t, x): ``t`` a 0-dim float tensor, ``x`` a batch (N, ...); returns dx/dt of x's shape.
Velocity = Callable[[Tensor, Tensor], Tensor]

ADAPTIVE_METHODS = ("dopri5",)
#: torchdiffeq's fixed-grid schemes; network evaluations per step: euler 1, midpoint 2, rk4 4 (its "rk4" is
#: Kutta's 3/8 rule, fourth order like the classical scheme).
FIXED_STEP_METHODS = ("euler", "midpoint", "rk4")
METHODS = ADAPTIVE_METHODS + FIXED_STEP_METHODS
EVALUATIONS_PER_STEP = {"euler": 1, "midpoint": 2, "rk4": 4}
TRACES = ("exact", "hutchinson")


@dataclass(frozen=True)
class ODESolution:
    """x at the end time, and the velocity evaluations (NFE) the solver spent: per sample, since every
    evaluation is one batched call of the network."""

    x: Tensor
    nfe: int


@dataclass(frozen=True)
class ODELogDensity:
    """log p(x) at the data end, per sample (N,); its standard error over Hutchinson probes (None for the exact
    trace); the velocity evaluations spent."""

    log_prob: Tensor
    stderr: Tensor | None
    nfe: int


class CountedVelocity:
    """A velocity field that counts its calls: an honest NFE for adaptive solvers, whose step count is known only
    afterwards (torchdiffeq's dopri5 also spends evaluations on choosing its first step and on rejected steps)."""

    def __init__(self, velocity: Velocity) -> None:
        self.velocity = velocity
        self.calls = 0

    def __call__(self, t: Tensor, x: Tensor) -> Tensor:
        self.calls += 1
        return self.velocity(t, x)


def check_method(method: str, steps: int | None) -> None:
    """A ValueError naming the choices for an unknown method, or a fixed-step method without a positive ``steps``."""
    if method not in METHODS:
        raise ValueError(f"unknown ODE method {method!r}; choose one of {', '.join(METHODS)}")
    if method in FIXED_STEP_METHODS and (steps is None or steps < 1):
        raise ValueError(f"the fixed-step method {method!r} needs steps >= 1, got {steps}")


def integrate(
    function: Callable[[Tensor, tuple[Tensor, ...]], tuple[Tensor, ...]],
    state: tuple[Tensor, ...],
    t0: float,
    t1: float,
    *,
    method: str,
    steps: int | None,
    rtol: float,
    atol: float,
) -> tuple[Tensor, ...]:
    """The state at t1 of d state/dt = function(t, state) from t0, by torchdiffeq (which runs backwards in time
    when t1 < t0). A fixed-step method takes ``steps`` equal steps on the grid from t0 to t1."""
    from torchdiffeq import odeint  # imported here: a plugin that never solves an ODE does not load it

    check_method(method, steps)
    reference = state[0]
    if method in FIXED_STEP_METHODS:
        assert steps is not None
        times = torch.linspace(t0, t1, steps + 1, dtype=reference.dtype, device=reference.device)
        path = odeint(function, state, times, method=method)
    else:
        times = torch.tensor([t0, t1], dtype=reference.dtype, device=reference.device)
        path = odeint(function, state, times, method=method, rtol=rtol, atol=atol)
    return tuple(values[-1] for values in path)


def solve(
    velocity: Velocity,
    x: Tensor,
    t0: float,
    t1: float,
    *,
    method: str = "dopri5",
    steps: int | None = None,
    rtol: float = 1e-5,
    atol: float = 1e-5,
) -> ODESolution:
    """Integrate dx/dt = velocity(t, x) from x at t0 to t1 (either order); ``steps`` for euler, midpoint, rk4,
    ``rtol``/``atol`` for dopri5. Runs without building a graph: for sampling, not for training."""
    counted = CountedVelocity(velocity)
    with torch.no_grad():
        (end,) = integrate(
            lambda t, state: (counted(t, state[0]),),
            (x,),
            t0,
            t1,
            method=method,
            steps=steps,
            rtol=rtol,
            atol=atol,
        )
    return ODESolution(end, counted.calls)


def rademacher(
    shape: torch.Size, generator: torch.Generator | None, device: torch.device, dtype: torch.dtype
) -> Tensor:
    """Values +-1 with equal chance, drawn on the CPU by ``generator`` so that a seed gives the same probes on any
    device."""
    signs = torch.randint(0, 2, shape, generator=generator).to(device=device, dtype=dtype)
    return 2 * signs - 1


def exact_divergence(v: Tensor, x: Tensor) -> Tensor:
    """sum_i d v_i / d x_i per sample, one backward pass per dimension: for small dimensions and for tests."""
    flat_v = v.flatten(1)
    divergence = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
    for i in range(flat_v.shape[1]):
        (gradient,) = torch.autograd.grad(flat_v[:, i].sum(), x, retain_graph=True)
        divergence = divergence + gradient.flatten(1)[:, i]
    return divergence


def hutchinson_divergences(v: Tensor, x: Tensor, probes: Tensor) -> Tensor:
    """e^T (dv/dx) e for each probe e (Hutchinson 1989; FFJORD, eq. 7): (N, P), unbiased for the divergence since
    E[e e^T] = I. One vector-Jacobian product per probe, all on one forward pass."""
    estimates = []
    for k in range(probes.shape[0]):
        (e_jacobian,) = torch.autograd.grad(v, x, probes[k], retain_graph=True)
        estimates.append((e_jacobian * probes[k]).flatten(1).sum(1))
    return torch.stack(estimates, dim=1)


def log_density(
    velocity: Velocity,
    x: Tensor,
    t_data: float,
    t_noise: float,
    base_log_prob: Callable[[Tensor], Tensor],
    *,
    trace: str = "hutchinson",
    generator: torch.Generator | None = None,
    probes: int = 1,
    method: str = "dopri5",
    rtol: float = 1e-5,
    atol: float = 1e-5,
    steps: int | None = None,
) -> ODELogDensity:
    """log p(x) at t_data of the density that the flow dx/dt = velocity(t, x) carries from base_log_prob at t_noise.

    Along a solution, d log p_t(x(t)) / dt = -div v(t, x(t)) (Chen et al. 2018, Theorem 1). Integrating from
    t_data to t_noise, with z = x(t_noise):

        log p_data(x) = base_log_prob(z) + integral_{t_data}^{t_noise} div v(t, x(t)) dt

    The integral is signed, so the formula holds whether t_data < t_noise (diffusions) or t_data > t_noise (flow
    matching); x and the integral are solved as one state, so dopri5's error control covers both.

    ``trace="exact"`` sums d v_i / d x_i by autograd (D backward passes per evaluation; stderr is None).
    ``"hutchinson"`` replaces the divergence by e^T (dv/dx) e with Rademacher probes e drawn once by
    ``generator`` and held fixed over the integration (FFJORD, Section 3.1: a fixed probe makes the integrand a
    smooth function of t that an adaptive solver can follow). Each probe gives one unbiased estimate of the
    integral; log_prob is their mean and stderr the standard deviation over probes / sqrt(probes), per sample.
    A spread needs two draws at least, so ``probes=1`` integrates two: stderr is None only for the exact trace.

    The result carries no graph: for evaluation, not training. The velocity is called with gradients enabled
    (the divergence needs them) even inside ``torch.no_grad()``.
    """
    if trace not in TRACES:
        raise ValueError(f"unknown trace {trace!r}; choose one of {', '.join(TRACES)}")
    if probes < 1:
        raise ValueError(f"probes must be at least 1, got {probes}")
    counted = CountedVelocity(velocity)
    if trace == "hutchinson":
        drawn = max(probes, 2)
        fixed_probes = rademacher(torch.Size((drawn, *x.shape)), generator, x.device, x.dtype)
        integrals = torch.zeros(x.shape[0], drawn, dtype=x.dtype, device=x.device)
    else:
        integrals = torch.zeros(x.shape[0], 1, dtype=x.dtype, device=x.device)

    def augmented(t: Tensor, state: tuple[Tensor, ...]) -> tuple[Tensor, Tensor]:
        with torch.enable_grad():
            point = state[0].detach().requires_grad_(True)
            v = counted(t, point)
            if trace == "hutchinson":
                divergences = hutchinson_divergences(v, point, fixed_probes)
            else:
                divergences = exact_divergence(v, point)[:, None]
        return v.detach(), divergences.detach()

    end, integral = integrate(
        augmented, (x.detach(), integrals), t_data, t_noise, method=method, steps=steps, rtol=rtol, atol=atol
    )
    with torch.no_grad():
        estimates = base_log_prob(end)[:, None] + integral  # (N, probes)
    if trace == "exact":
        return ODELogDensity(estimates[:, 0], None, counted.calls)
    stderr = estimates.std(dim=1) / estimates.shape[1] ** 0.5
    return ODELogDensity(estimates.mean(dim=1), stderr, counted.calls)
