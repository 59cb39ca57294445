"""Likelihood metrics: ``nll`` (nats per image) and ``bpd`` (bits per dimension) on the held-out test split.

Exact where the model has ``log_likelihood``; otherwise the importance-weighted bound of Burda, Grosse &
Salakhutdinov (2016), "Importance Weighted Autoencoders", with k samples: log p(x) >= E[log mean_k w_k], so the
reported NLL is an upper bound that tightens as k grows. The method and k travel with every number.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

import genbench
from genbench import EvalContext, GenerativeModel, MetricResult, NotApplicable
from genbench.toolkit.checks import require_at_least
from genbench.toolkit.devices import eval_batch_size
from genbench.toolkit.stats import bits_per_dim

#: Rough device bytes per test image and likelihood evaluation: float32 logits over the levels of every value,
#: with the few copies that softmax, gather and autograd-free activations make (sizes batches on CUDA only).
BYTES_PER_LOGIT = 4 * 8


@dataclass
class NllConfig:
    k: int = 100  # importance samples for models that only have an ELBO; more is tighter and slower
    batch_size: int = 128  # test images per forward pass

    def __post_init__(self) -> None:
        require_at_least(self, 1, "k", "batch_size")


def test_nll(model: GenerativeModel, ctx: EvalContext) -> MetricResult:
    """Mean negative log-likelihood of the test split in nats per image, with how it was obtained."""
    config: NllConfig = ctx.config if isinstance(ctx.config, NllConfig) else NllConfig()
    if genbench.LOG_LIKELIHOOD in model.capabilities:
        method: dict[str, object] = {"method": "exact log-likelihood"}

        def log_p(batch: torch.Tensor) -> torch.Tensor:
            return model.log_likelihood(batch)
    elif genbench.ELBO in model.capabilities:
        method = {"method": "importance-weighted bound (Burda et al. 2016); NLL is an upper bound", "k": config.k}

        def log_p(batch: torch.Tensor) -> torch.Tensor:
            return model.elbo(batch, k=config.k)
    else:
        raise NotApplicable("the model has neither log_likelihood nor elbo")
    images = ctx.dataset.test.images
    batch_size = config.batch_size
    if genbench.LOG_LIKELIHOOD in model.capabilities:
        # Exact likelihoods do not depend on the batching: on CUDA, batches as large as memory allows. The
        # bound's noise follows the batches, so it keeps config.batch_size (and its numbers) everywhere.
        per_image = ctx.dataset.test.dims * ctx.dataset.test.levels * BYTES_PER_LOGIT
        batch_size = eval_batch_size(ctx.device, per_image, config.batch_size)
    total = 0.0
    for start in range(0, len(images), batch_size):
        batch = images[start : start + batch_size].to(ctx.device)
        total += float(log_p(batch).double().sum())
    nll = -total / len(images)
    return MetricResult({"nll": nll}, {**method, "split": "test", "n_images": len(images)})


def shared_test_nll(model: GenerativeModel, ctx: EvalContext) -> MetricResult:
    """``nll`` and ``bpd`` with the same options compute the likelihood once per cell."""
    result: MetricResult = ctx.remember(f"nll {ctx.config!r}", lambda: test_nll(model, ctx))
    return result


def nll_metric(model: GenerativeModel, ctx: EvalContext) -> MetricResult:
    return shared_test_nll(model, ctx)


def bpd_metric(model: GenerativeModel, ctx: EvalContext) -> MetricResult:
    nll = shared_test_nll(model, ctx)
    dims = ctx.dataset.test.dims
    return MetricResult({"bpd": bits_per_dim(nll.values["nll"], dims)}, {**nll.provenance, "dims": dims})


LIKELIHOOD = frozenset({genbench.LOG_LIKELIHOOD, genbench.ELBO})


@genbench.hookimpl
def genbench_metrics() -> list[genbench.MetricSpec]:
    return [
        genbench.MetricSpec(
            "nll",
            "negative log-likelihood of the test split (exact, or the IWAE bound with k samples)",
            (genbench.Column("nll", "nats/image", higher_is_better=False, rank=2),),
            LIKELIHOOD,
            nll_metric,
            NllConfig,
        ),
        genbench.MetricSpec(
            "bpd",
            "bits per dimension: nll / (D ln 2); a uniform model scores log2(levels)",
            (genbench.Column("bpd", "bits/dim", higher_is_better=False, rank=1),),
            LIKELIHOOD,
            bpd_metric,
            NllConfig,
        ),
    ]
