"""Conformance checks of a model's likelihoods, each by its kind: an exact likelihood sums to 1 over every
image of a tiny shape (two-sided), a bound to at most 1 (one-sided), a stochastic estimate to 1 within its
standard errors; an importance-weighted bound tightens as k grows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from genbench.contract import (
    BOUND_KINDS,
    EXACT,
    IMPORTANCE_WEIGHTED,
    LIKELIHOOD_KINDS,
    STOCHASTIC_ESTIMATE,
    DataInfo,
    Likelihood,
    LikelihoodEstimate,
    likelihoods_of,
)
from genbench.testing.core import ConformanceError, Skipped, all_images, require
from genbench.testing.subject import ModelSubject, shape_text

#: A normalized exact likelihood sums to 1 up to float32 rounding over a few hundred images; the float error
#: every kind's sum is allowed.
EXACT_TOLERANCE = 1e-3


#: The settings of an importance-weighted bound (a ``k`` setting) in the normalization and other checks: with k = 2
#: the mean of two weights, so a bound that sums its weights instead overstates by log 2 and is caught; k = 1 would
#: not tell the two apart.
BOUND_K = 2


#: Independent draws of a bound over which its sum of exp(bound) is averaged: each image is repeated this many
#: times in a batch, so a model that draws its noise per image (from a generator seeded with a constant, as it
#: should) gives as many independent draws.
BOUND_DRAWS = 16


#: Rows per call of a likelihood in the normalization check (images times draws).
ROWS_PER_CALL = 256


#: Allowances for Monte-Carlo error, in standard errors: a correct model's mean exceeds four by chance once in
#: 30,000 with normal errors (one-sided), once in 1,700 for Student's t of the 15 degrees of freedom of 16 draws,
#: and less often for weights heavy-tailed to the right (a rare large one raises the mean and its error together).
STANDARD_ERRORS = 4


#: The larger k at which an importance-weighted bound that converges with k must be at least its k = 1 value.
CONVERGENCE_K = 16


NO_LIKELIHOOD = "no likelihood: neither 'log_likelihood', 'elbo' nor 'likelihoods'"


def label(likelihood: Likelihood) -> str:
    """How messages name a likelihood: its kind and name, ``importance-weighted bound 'iwae'``."""
    return f"{likelihood.kind} {likelihood.name!r}"


def kit_settings(likelihood: Likelihood, **overrides: Any) -> dict[str, Any]:
    """The settings the checks compute a likelihood with: its defaults, with k = ``BOUND_K`` for an
    importance-weighted bound (a cheap bound is as much a bound), and ``overrides``."""
    settings = dict(likelihood.settings)
    if likelihood.kind == IMPORTANCE_WEIGHTED and "k" in settings:
        settings["k"] = BOUND_K
    return {**settings, **overrides}


def settings_text(likelihood: Likelihood, **overrides: Any) -> str:
    settings = kit_settings(likelihood, **overrides)
    return "".join(f", {key}={value!r}" for key, value in settings.items())


def evaluate(likelihood: Likelihood, x: torch.Tensor, **overrides: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
    """log p(x) per image as float64 on the CPU, and the standard errors of a stochastic estimate (else None),
    checked for their shape: what ``compute(x, **settings)`` returned."""
    with torch.no_grad():
        returned = likelihood.compute(x, **kit_settings(likelihood, **overrides))
    result: Any = returned
    stderr: Any = None
    if isinstance(returned, LikelihoodEstimate):
        result, stderr = returned.log_p, returned.stderr
    else:
        require(
            likelihood.kind != STOCHASTIC_ESTIMATE,
            f"{label(likelihood)} returned {describe(result)}; a stochastic estimate returns a "
            f"genbench.LikelihoodEstimate(log_p, stderr)",
        )
    for what, values in (("log p", result), ("stderr", stderr)):
        if values is None:
            continue
        require(
            isinstance(values, torch.Tensor) and values.is_floating_point() and tuple(values.shape) == (len(x),),
            f"{label(likelihood)} returned {what} as {describe(values)}; expected a float tensor ({len(x)},)",
        )
    return result.detach().double().cpu(), None if stderr is None else stderr.detach().double().cpu()


def evaluate_all(
    likelihood: Likelihood, images: torch.Tensor, rows: int = 64, **overrides: Any
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``evaluate`` in batches of ``rows`` images."""
    parts = [evaluate(likelihood, part, **overrides) for part in torch.split(images, rows)]
    stderrs = [stderr for _, stderr in parts if stderr is not None]
    return torch.cat([log_p for log_p, _ in parts]), torch.cat(stderrs) if len(stderrs) == len(parts) else None


def describe(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"{value.dtype} {tuple(value.shape)}"
    return type(value).__name__


def model_likelihoods(subject: ModelSubject, info: DataInfo) -> list[Likelihood]:
    likelihoods = likelihoods_of(subject.fitted(info)[0])
    if not likelihoods:
        raise Skipped(NO_LIKELIHOOD)
    return likelihoods


def check_log_likelihood(subject: ModelSubject, info: DataInfo) -> str:
    """Every likelihood: (n,) float, finite, at most 0 nats; an exact one independent of the rest of the batch."""
    likelihoods = model_likelihoods(subject, info)
    x = subject.batch(info)
    for likelihood in likelihoods:
        name = label(likelihood) + settings_text(likelihood)
        values, stderr = evaluate(likelihood, x)
        require(bool(torch.isfinite(values).all()), f"{name} returned non-finite values {values.tolist()}")
        if stderr is not None:
            require(
                bool(torch.isfinite(stderr).all() and (stderr >= 0).all()),
                f"{name} returned standard errors {stderr.tolist()}; they must be finite and >= 0",
            )
        # A probability of a discrete value is at most 1, and so is every bound's (and an estimate's, within its
        # error).
        highest = float((values if stderr is None else values - STANDARD_ERRORS * stderr).max())
        require(highest <= 1e-4, f"{name} is positive ({highest:.4g}): log p(x) <= 0")
        if likelihood.kind == EXACT:  # a bound or an estimate may draw its noise per batch
            alone, _ = evaluate(likelihood, x[:1])
            require(
                torch.allclose(alone, values[:1], rtol=1e-4, atol=1e-3),
                f"{name} of an image depends on the rest of its batch ({float(alone[0]):.6g} alone, "
                f"{float(values[0]):.6g} in a batch of {len(x)}); the nll metric batches freely",
            )
    named = "; ".join(label(likelihood) for likelihood in likelihoods)
    exact = ", batch-independent where exact" if any(likelihood.kind == EXACT for likelihood in likelihoods) else ""
    return f"{named}: ({len(x)},) float, finite, <= 0 nats{exact}"


def check_normalized(subject: ModelSubject, shape: DataInfo, shapes: Sequence[DataInfo]) -> str:
    """Over every image of tiny shapes: an exact likelihood sums to 1, a bound to at most 1, a stochastic estimate to
    1 within its standard errors; a likelihood of discrete values is a distribution."""
    model_likelihoods(subject, shape)
    details = []
    for info in shapes:
        images = all_images(info).to(subject.device)
        over = f"over all {len(images)} images of {shape_text(info)}"
        for likelihood in likelihoods_of(subject.fitted(info)[0]):
            if likelihood.kind == EXACT:
                details.append(exact_sum(likelihood, images, over))
            elif likelihood.kind in BOUND_KINDS:
                details.append(bound_sum(likelihood, images, over))
            elif likelihood.kind == STOCHASTIC_ESTIMATE:
                details.append(estimate_sum(likelihood, images, over))
            else:
                raise ConformanceError(f"{label(likelihood)}: unknown kind; use one of {list(LIKELIHOOD_KINDS)}")
    return "; ".join(details)


def exact_sum(likelihood: Likelihood, images: torch.Tensor, over: str) -> str:
    """sum_x p(x) = 1, two-sided, within float32 rounding."""
    log_p, _ = evaluate_all(likelihood, images)
    total = float(log_p.logsumexp(0).exp())
    what = f"sum of exp({label(likelihood)}{settings_text(likelihood)}) {over}"
    require(abs(total - 1) <= EXACT_TOLERANCE, f"{what} is {total:.6f}, not 1 within {EXACT_TOLERANCE}: not normalized")
    return f"{label(likelihood)}: {total:.5f} {over}"


def bound_sum(likelihood: Likelihood, images: torch.Tensor, over: str) -> str:
    """sum_x exp(bound(x)) <= 1, one-sided, averaged over ``BOUND_DRAWS`` draws.

    A bound holds in expectation over its noise, and exp(bound) is at most p(x) in expectation (the importance
    weights' mean is an unbiased estimate of p(x) for any k), so the sum is at most 1 in expectation but one draw
    of it is a random variable: with heavy-tailed weights (a diffusion model's paths) a correct model's single sum
    can exceed 1 by far. So each image is repeated ``BOUND_DRAWS`` times in the batch, each copy an independent draw
    where the model draws noise per image, giving that many sums; their mean may exceed 1 by ``STANDARD_ERRORS``
    standard errors of the mean (estimated from the sums, 0 for a deterministic bound) and float rounding. With
    heavy tails the allowance errs towards passing: a rare huge weight raises the mean and its standard error alike.
    """
    per_call = max(1, ROWS_PER_CALL // BOUND_DRAWS)
    sums = torch.zeros(BOUND_DRAWS, dtype=torch.float64)
    for part in torch.split(images, per_call):
        # Draw-major rows (row r * len(part) + i is draw r of image i), so no two copies of an image share a row
        # position, and so a row's noise, in this call or another.
        rows = part.repeat(BOUND_DRAWS, *[1] * (part.dim() - 1))
        log_p, _ = evaluate(likelihood, rows)
        sums += log_p.view(BOUND_DRAWS, len(part)).exp().sum(1)
    total = float(sums.mean())
    stderr = float(sums.std()) / math.sqrt(BOUND_DRAWS)
    allowance = STANDARD_ERRORS * stderr + EXACT_TOLERANCE
    what = f"sum of exp({label(likelihood)}{settings_text(likelihood)}) {over}"
    drawn = f"mean of {BOUND_DRAWS} draws, standard error {stderr:.2g}"
    require(
        total <= 1 + allowance,
        f"{what} is {total:.5f} ({drawn}), above 1 + {allowance:.2g}: it overstates the likelihood, "
        f"not a bound (a bound's probabilities sum to at most 1)",
    )
    return f"{label(likelihood)}: {total:.5f} ({drawn}) {over}, at most 1"


def estimate_sum(likelihood: Likelihood, images: torch.Tensor, over: str) -> str:
    """sum_x exp(estimate(x)) = 1, two-sided, within ``STANDARD_ERRORS`` standard errors of the sum and rounding.

    Each term is exp(log_p - stderr^2 / 2), unbiased for p(x) when the error of log_p is normal with the reported
    standard error (exp of an unbiased log_p is biased up by that factor), and its standard error is
    p(x) * stderr (the delta method); the images' errors are independent, so they add in quadrature.
    """
    log_p, stderr = evaluate_all(likelihood, images)
    assert stderr is not None  # evaluate requires a LikelihoodEstimate of a stochastic estimate
    terms = (log_p - stderr.square() / 2).exp()
    total = float(terms.sum())
    error = float((terms * stderr).square().sum().sqrt())
    tolerance = STANDARD_ERRORS * error + EXACT_TOLERANCE
    what = f"sum of exp({label(likelihood)}{settings_text(likelihood)}) {over}"
    require(
        abs(total - 1) <= tolerance,
        f"{what} is {total:.5f}, not 1 within {tolerance:.2g} ({STANDARD_ERRORS} standard errors of the sum, "
        f"{error:.2g} from the reported ones, and rounding): not normalized, or the standard errors are too small",
    )
    return f"{label(likelihood)}: {total:.5f} (standard error {error:.2g}) {over}"


def check_convergence(subject: ModelSubject, shape: DataInfo, info: DataInfo) -> str:
    """A likelihood that converges with k tightens from k = 1 to ``CONVERGENCE_K``, and where the model has an exact
    likelihood it is below it at both, on average over every image of a tiny shape."""
    if not any(likelihood.converges_with_k for likelihood in model_likelihoods(subject, shape)):
        raise Skipped("no likelihood converges with k (an importance-weighted bound with converges_with_k)")
    likelihoods = likelihoods_of(subject.fitted(info)[0])
    images = all_images(info).to(subject.device)
    over = f"over all {len(images)} images of {shape_text(info)}"
    exact = next((likelihood for likelihood in likelihoods if likelihood.kind == EXACT), None)
    exact_values = None if exact is None else evaluate_all(exact, images)[0]
    details = []
    for likelihood in (likelihood for likelihood in likelihoods if likelihood.converges_with_k):
        name = label(likelihood)
        at = {k: evaluate_all(likelihood, images, k=k)[0] for k in (1, CONVERGENCE_K)}
        gain, allowance = mean_and_allowance(at[CONVERGENCE_K] - at[1])
        require(
            gain >= -allowance,
            f"{name} with k={CONVERGENCE_K} is {-gain:.4g} nats below k=1 on average {over}: an importance-weighted "
            f"bound tightens as k grows",
        )
        detail = f"{name}: k={CONVERGENCE_K} - k=1 = {gain:.4g} nats"
        if exact is not None and exact_values is not None:
            for k, values in at.items():
                gap, allowance = mean_and_allowance(values - exact_values)
                require(
                    gap <= allowance,
                    f"{name} with k={k} exceeds {label(exact)} by {gap:.4g} nats on average {over}: not a bound",
                )
            gap = float((at[CONVERGENCE_K] - exact_values).mean())
            detail += f", {gap:.4g} nats from {label(exact)} at k={CONVERGENCE_K}"
        details.append(detail)
    return f"{'; '.join(details)}, on average {over}"


def mean_and_allowance(differences: torch.Tensor) -> tuple[float, float]:
    """The mean of per-image differences, and what chance allows it: each value is one random draw of a bound
    that holds in expectation, so ``STANDARD_ERRORS`` standard errors of the mean, and rounding."""
    allowance = STANDARD_ERRORS * float(differences.std()) / math.sqrt(len(differences)) + 1e-4
    return float(differences.mean()), allowance
