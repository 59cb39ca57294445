"""Plugins that break one rule of the contract each, so the conformance checks are seen to fail (and correct models
no built-in is: one with both an exact likelihood and a bound, and ones that declare a variational bound or a
stochastic estimate). Registered with -p or a fresh manager."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

import genbench
from genbench import DataInfo, FitContext, ImageData
from genbench.toolkit.stats import log_mean_exp


@dataclass
class MixtureConfig:
    components: int = 2  # independent-pixel categoricals mixed with equal weights


class Mixture(nn.Module):
    """Exact log-likelihood (a log-sum-exp over components) and the IWAE bound with the prior as proposal."""

    capabilities = frozenset({genbench.SAMPLE, genbench.LOG_LIKELIHOOD, genbench.ELBO})

    def __init__(self, config: MixtureConfig, info: DataInfo) -> None:
        super().__init__()
        self.info = info
        self.logits = nn.Parameter(torch.randn(config.components, info.dims, info.levels))

    def fit(self, train: ImageData, ctx: FitContext) -> None:
        with torch.no_grad():
            self.logits.add_(0.1 * torch.randn(self.logits.shape, generator=ctx.generator))
        ctx.on_curve(1, {"nll": 1.0})

    def per_component(self, x: torch.Tensor) -> torch.Tensor:
        log_probs = self.logits.log_softmax(-1)
        flat = x.reshape(len(x), -1).long()
        return log_probs[:, torch.arange(self.info.dims), flat].sum(-1)  # (components, n)

    def log_likelihood(self, x: torch.Tensor) -> torch.Tensor:
        return self.log_p(x)

    def log_p(self, x: torch.Tensor) -> torch.Tensor:
        return self.per_component(x).logsumexp(0) - math.log(len(self.logits))

    def elbo(self, x: torch.Tensor, k: int = 1) -> torch.Tensor:
        choices = torch.randint(0, len(self.logits), (k, len(x)), generator=torch.Generator().manual_seed(0))
        return log_mean_exp(self.per_component(x).gather(0, choices), dim=0)

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        z = torch.randint(0, len(self.logits), (n,), generator=generator)
        probs = self.logits.detach().softmax(-1)[z].reshape(-1, self.info.levels)
        return torch.multinomial(probs, 1, generator=generator).reshape(n, *self.info.shape).to(torch.uint8)


class Unnormalized(Mixture):
    """Forgets the softmax: its 'probabilities' do not sum to one."""

    def per_component(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(len(x), -1).long()
        return -self.logits.abs()[:, torch.arange(self.info.dims), flat].sum(-1)


class BoundAbove(Mixture):
    def elbo(self, x: torch.Tensor, k: int = 1) -> torch.Tensor:
        return self.log_likelihood(x) + 0.5


class WideSamples(Mixture):
    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return super().sample(n, generator).long()  # int64, not uint8


class ForgetsWeights(Mixture):
    """Learns a temperature but keeps it outside its state_dict, so a loaded checkpoint differs."""

    def __init__(self, config: MixtureConfig, info: DataInfo) -> None:
        super().__init__(config, info)
        self.temperature = torch.ones(())  # a plain attribute: not a parameter or buffer, so never saved

    def fit(self, train: ImageData, ctx: FitContext) -> None:
        self.temperature = 1 + torch.rand((), generator=ctx.generator)

    def per_component(self, x: torch.Tensor) -> torch.Tensor:
        log_probs = (self.logits / self.temperature).log_softmax(-1)
        flat = x.reshape(len(x), -1).long()
        return log_probs[:, torch.arange(self.info.dims), flat].sum(-1)


class Unseeded(Mixture):
    def fit(self, train: ImageData, ctx: FitContext) -> None:
        with torch.no_grad():
            self.logits.add_(torch.from_numpy(np.random.default_rng().normal(size=self.logits.shape)).float())


class Undeclared(Mixture):
    capabilities = frozenset({genbench.SAMPLE, genbench.LOG_LIKELIHOOD})  # but elbo works


class Declared(Mixture):
    """Declares its likelihoods, each with its kind (the capability "likelihoods"), instead of log_likelihood and
    elbo; the mixture's exact log p(x) underlies each. Noise is drawn per image from a generator seeded with a
    constant, as a model's bound should be."""

    capabilities = frozenset({genbench.SAMPLE, genbench.LIKELIHOODS})
    likelihood_name, kind = "vlb", genbench.VARIATIONAL_BOUND

    @property
    def likelihoods(self) -> list[genbench.Likelihood]:
        return [genbench.Likelihood(self.likelihood_name, self.kind, self.compute, description=self.__doc__ or "")]

    def compute(self, x: torch.Tensor) -> torch.Tensor | genbench.LikelihoodEstimate:
        raise NotImplementedError

    def noise(self, x: torch.Tensor) -> torch.Tensor:
        return torch.randn(len(x), generator=torch.Generator().manual_seed(0))

    def log_likelihood(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError("declared in likelihoods")

    def elbo(self, x: torch.Tensor, k: int = 1) -> torch.Tensor:
        raise NotImplementedError("declared in likelihoods")


class Variational(Declared):
    """A correct variational bound: log p(x) - 0.1, plus the noise of one draw (sigma * eps - sigma^2 / 2, so that
    exp(bound) is p(x) e^-0.1 in expectation), like a one-sample ELBO."""

    def compute(self, x: torch.Tensor) -> torch.Tensor:
        return self.log_p(x) - 0.1 + 0.3 * self.noise(x) - 0.3**2 / 2

    def log_likelihood(self, x: torch.Tensor) -> torch.Tensor:
        return self.log_p(x)  # works, undeclared: a model that lists its likelihoods may keep such a helper


class HeavyTailedBound(Declared):
    """A correct bound whose exp has heavy tails: log-normal weights of sigma 2 (mean exactly p(x)), like a diffusion
    model's path weights; one sum of exp(bound) over every image is far from 1 either way."""

    def compute(self, x: torch.Tensor) -> torch.Tensor:
        return self.log_p(x) + 2 * self.noise(x) - 2**2 / 2


class OverstatedBound(Declared):
    """A 'bound' above log p(x): its probabilities sum to e^0.5."""

    def compute(self, x: torch.Tensor) -> torch.Tensor:
        return self.log_p(x) + 0.5


class Estimated(Declared):
    """A stochastic estimate with honest standard errors: log p(x) + normal noise of 0.05, reported as 0.05."""

    likelihood_name, kind = "ode", genbench.STOCHASTIC_ESTIMATE

    def compute(self, x: torch.Tensor) -> genbench.LikelihoodEstimate:
        return genbench.LikelihoodEstimate(self.log_p(x) + 0.05 * self.noise(x), torch.full((len(x),), 0.05))


class BiasedEstimate(Declared):
    """An estimate 0.2 nats low with standard errors of 0.01: its sum is 0.82, below 1 (a bound would pass)."""

    likelihood_name, kind = "ode", genbench.STOCHASTIC_ESTIMATE

    def compute(self, x: torch.Tensor) -> genbench.LikelihoodEstimate:
        return genbench.LikelihoodEstimate(self.log_p(x) - 0.2, torch.full((len(x),), 0.01))


class ExactHalved(Declared):
    """An 'exact' likelihood of half of p(x): its probabilities sum to 1/2, below 1 (a bound would pass)."""

    likelihood_name, kind = "exact", genbench.EXACT

    def compute(self, x: torch.Tensor) -> torch.Tensor:
        return self.log_p(x) - math.log(2)


class UnknownKind(Declared):
    """Declares a kind the contract does not know."""

    kind = "approximate"

    def compute(self, x: torch.Tensor) -> torch.Tensor:
        return self.log_p(x)


@genbench.hookimpl
def genbench_models() -> list[genbench.ModelSpec]:
    kinds = {
        "mixture": Mixture,
        "unnormalized": Unnormalized,
        "bound_above": BoundAbove,
        "wide_samples": WideSamples,
        "forgets_weights": ForgetsWeights,
        "unseeded": Unseeded,
        "undeclared": Undeclared,
        "variational": Variational,
        "heavy_tailed_bound": HeavyTailedBound,
        "overstated_bound": OverstatedBound,
        "estimated": Estimated,
        "biased_estimate": BiasedEstimate,
        "exact_halved": ExactHalved,
        "unknown_kind": UnknownKind,
    }
    return [genbench.ModelSpec(name, cls.__doc__ or name, MixtureConfig, cls) for name, cls in kinds.items()]


def extra_column(model: genbench.GenerativeModel, ctx: genbench.EvalContext) -> genbench.MetricResult:
    model.sample(2, ctx.generator)
    return genbench.MetricResult({"declared": 1.0, "surprise": 2.0})


def swallowed(model: genbench.GenerativeModel, ctx: genbench.EvalContext) -> genbench.MetricResult:
    try:
        model.sample(2, ctx.generator)
    except genbench.NotApplicable:
        return genbench.MetricResult({"swallowed": 0.0})  # a silent 0 where N/A belongs
    return genbench.MetricResult({"swallowed": 1.0})


@genbench.hookimpl
def genbench_metrics() -> list[genbench.MetricSpec]:
    sample = frozenset({genbench.SAMPLE})
    return [
        genbench.MetricSpec(
            "extra_column",
            "returns a column it did not declare",
            (genbench.Column("declared", "1", higher_is_better=True),),
            sample,
            extra_column,
        ),
        genbench.MetricSpec(
            "swallowed",
            "turns N/A into 0",
            (genbench.Column("swallowed", "1", higher_is_better=True),),
            sample,
            swallowed,
        ),
    ]


def reshuffled(options: genbench.DatasetOptions) -> genbench.Dataset:
    """A split drawn from the global random state: it changes from run to run."""
    images = torch.arange(40, dtype=torch.uint8).reshape(10, 1, 2, 2) % 3
    order = torch.randperm(10)
    data = ImageData(images[order], 3)
    return genbench.Dataset("reshuffled", data.subset(slice(0, 8)), data.subset(slice(8, 10)), {"source": "test"})


@genbench.hookimpl
def genbench_datasets() -> list[genbench.DatasetSpec]:
    return [genbench.DatasetSpec("reshuffled", "a split that depends on the global random state", reshuffled)]


def load_batch_normalized(dataset: genbench.Dataset, ctx: genbench.EvalContext):  # type: ignore[no-untyped-def]
    def features(images: torch.Tensor) -> torch.Tensor:
        flat = images.flatten(1).double()
        return flat - flat.mean(0)  # depends on the rest of the batch

    return features, {"name": "batch_normalized"}


@genbench.hookimpl
def genbench_feature_extractors() -> list[genbench.ExtractorSpec]:
    return [genbench.ExtractorSpec("batch_normalized", "centred on its batch", load_batch_normalized)]
