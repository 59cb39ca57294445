"""Likelihood metrics: ``nll`` (nats per image) and ``bpd`` (bits per dimension) on the held-out test split.

One estimate serves both columns: ``bpd`` is the same cell's ``nll`` divided by D ln 2, and the two metrics share
their options (``MetricSpec.shares_options_with``), so a row can never show an nll and a bpd of two estimates.

Each model says what its likelihood is (``genbench.likelihoods_of``): exact (autoregressive models), a bound
(a VAE's importance-weighted bound of Burda, Grosse & Salakhutdinov 2016, with k samples; a diffusion model's
variational bound; a flow's dequantized density), or a stochastic estimate with a standard error (the
probability-flow ODE). The metric uses the model's first likelihood unless told which, with the estimator's
settings from the likelihood's defaults, then the metric's ``k``, then the options given for that model; the kind,
the settings and, for a stochastic estimate, the standard error travel with every number. A bound's NLL is an
upper bound on the model's true NLL.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import genbench
from genbench import EvalContext, GenerativeModel, Likelihood, LikelihoodEstimate, MetricResult, NotApplicable
from genbench.toolkit.checks import require_at_least
from genbench.toolkit.devices import eval_batch_size
from genbench.toolkit.stats import bits_per_dim

#: Rough device bytes per test image and likelihood evaluation: float32 logits over the levels of every value,
#: with the few copies that softmax, gather and autograd-free activations make (sizes batches on CUDA only).
BYTES_PER_LOGIT = 4 * 8


@dataclass
class NllConfig:
    k: int = 100  # importance samples for a likelihood with a k setting (an IWAE bound); more is tighter, slower
    batch_size: int = 128  # test images per forward pass
    #: Which of a model's likelihoods to use, by name ("exact", "iwae", "vlb", "ode"); None: the model's first.
    likelihood: str | None = None
    #: Estimator settings per model, over the defaults: [metric.nll.models.vae] k = 1000.
    models: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        require_at_least(self, 1, "k", "batch_size")


def chosen_likelihood(model: GenerativeModel, config: NllConfig, ctx: EvalContext) -> Likelihood:
    offered = genbench.likelihoods_of(model)
    if not offered:
        raise NotApplicable("the model offers no likelihood (no log_likelihood, elbo or likelihoods)")
    if config.likelihood is None:
        return offered[0]
    for likelihood in offered:
        if likelihood.name == config.likelihood:
            return likelihood
    names = ", ".join(likelihood.name for likelihood in offered)
    raise NotApplicable(f"{ctx.model_name or 'the model'} has no likelihood {config.likelihood!r} (it has {names})")


def estimator_settings(likelihood: Likelihood, config: NllConfig, model_name: str) -> dict[str, Any]:
    """The likelihood's defaults < the metric's k (where the likelihood has a k) < the options for this model."""
    settings = dict(likelihood.settings)
    if "k" in settings:
        settings["k"] = config.k
    given = config.models.get(model_name, {})
    unknown = sorted(set(given) - set(settings))
    if unknown:
        known = ", ".join(sorted(settings)) or "none"
        raise ValueError(
            f"options {unknown} for {model_name}'s likelihood {likelihood.name!r} are not its settings (it has {known})"
        )
    return {**settings, **given}


def test_nll(model: GenerativeModel, ctx: EvalContext) -> MetricResult:
    """Mean negative log-likelihood of the test split in nats per image, with how it was obtained."""
    from tqdm.auto import tqdm

    config: NllConfig = ctx.config if isinstance(ctx.config, NllConfig) else NllConfig()
    likelihood = chosen_likelihood(model, config, ctx)
    settings = estimator_settings(likelihood, config, ctx.model_name)
    images = ctx.dataset.test.images
    batch_size = config.batch_size
    if likelihood.kind == genbench.EXACT:
        # Exact likelihoods do not depend on the batching: on CUDA, batches as large as memory allows. A bound's
        # or an estimate's noise follows the batches, so it keeps config.batch_size (and its numbers) everywhere.
        per_image = ctx.dataset.test.dims * ctx.dataset.test.levels * BYTES_PER_LOGIT
        batch_size = eval_batch_size(ctx.device, per_image, config.batch_size)
    total, variance, estimated = 0.0, 0.0, False
    batches = range(0, len(images), batch_size)
    for start in tqdm(batches, desc="nll", disable=not ctx.progress, leave=False):
        batch = images[start : start + batch_size].to(ctx.device)
        answer = likelihood.compute(batch, **settings)
        if isinstance(answer, LikelihoodEstimate):
            total += float(answer.log_p.double().sum())
            variance += float(answer.stderr.double().square().sum())
            estimated = True
        else:
            total += float(answer.double().sum())
    nll = -total / len(images)
    provenance: dict[str, Any] = {
        "method": likelihood.description or likelihood.name,
        "kind": likelihood.kind,
        "likelihood": likelihood.name,
        "settings": settings,
        "split": "test",
        "n_images": len(images),
    }
    # Any likelihood that comes with standard errors (a stochastic estimate, or a bound estimated by Monte Carlo such
    # as an ODE's dequantized bound) records the standard error of the mean.
    if estimated:
        provenance["nll_stderr"] = math.sqrt(variance) / len(images)
    return MetricResult({"nll": nll}, provenance)


def shared_test_nll(model: GenerativeModel, ctx: EvalContext) -> MetricResult:
    """``nll`` and ``bpd`` share their options, so they compute the likelihood once per cell."""
    result: MetricResult = ctx.remember(f"nll {ctx.config!r}", lambda: test_nll(model, ctx))
    return result


def nll_metric(model: GenerativeModel, ctx: EvalContext) -> MetricResult:
    return shared_test_nll(model, ctx)


def bpd_metric(model: GenerativeModel, ctx: EvalContext) -> MetricResult:
    nll = shared_test_nll(model, ctx)
    dims = ctx.dataset.test.dims
    return MetricResult({"bpd": bits_per_dim(nll.values["nll"], dims)}, {**nll.provenance, "dims": dims})


LIKELIHOOD = frozenset({genbench.LOG_LIKELIHOOD, genbench.ELBO, genbench.LIKELIHOODS})


@genbench.hookimpl
def genbench_metrics() -> list[genbench.MetricSpec]:
    return [
        genbench.MetricSpec(
            "nll",
            "negative log-likelihood of the test split: exact, a bound or an estimate, as the model's likelihood is",
            (genbench.Column("nll", "nats/image", higher_is_better=False, rank=2),),
            LIKELIHOOD,
            nll_metric,
            NllConfig,
        ),
        genbench.MetricSpec(
            "bpd",
            "bits per dimension: the same cell's nll / (D ln 2); a uniform model scores log2(levels)",
            (genbench.Column("bpd", "bits/dim", higher_is_better=False, rank=1),),
            LIKELIHOOD,
            bpd_metric,
            NllConfig,
            shares_options_with="nll",
        ),
    ]
