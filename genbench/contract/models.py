"""The model contract: what a model can do (capabilities), what ``fit`` receives, and the model spec."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import torch

from genbench.contract.data import DataInfo, ImageData

#: What a model can do; metrics declare which of these they need.
SAMPLE = "sample"
LOG_LIKELIHOOD = "log_likelihood"
ELBO = "elbo"
#: The model declares its likelihoods, each with its kind (a ``likelihoods`` list of ``Likelihood``).
LIKELIHOODS = "likelihoods"
CAPABILITIES = frozenset({SAMPLE, LOG_LIKELIHOOD, ELBO, LIKELIHOODS})


@dataclass
class FitContext:
    """Everything a model's ``fit`` gets from the runner besides the data."""

    device: torch.device
    seed: int
    #: The only source of randomness a model may use, so that a seed reproduces a run.
    generator: torch.Generator
    #: Show progress bars (the runner turns them off when the output is not a terminal).
    progress: bool = False
    #: Receives one point of the training curve: ``on_curve(epoch, {"nll": 78.6})``, losses per image (nats for
    #: a likelihood: ``nll``, ``negative_elbo``); see "Training curves" in docs/plugins.md.
    on_curve: Callable[[int, Mapping[str, float]], None] = lambda step, values: None

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        """Mixed precision where it pays (bfloat16 on CUDA); full precision on the CPU, where it would not."""
        if self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()


@runtime_checkable
class GenerativeModel(Protocol):
    """What a model factory returns. Methods outside ``capabilities`` may raise NotImplementedError.

    Optional attributes: ``origin``, a dict with ``file`` and ``sha256``, marks a model made elsewhere, which the
    runner never fits (see genbench.runner.external); ``stored_samples = True`` marks one that reads its images rather
    than generating them, so it has no sampling time.

    Likelihoods: ``log_likelihood`` is exact and ``elbo(x, k)`` an importance-weighted bound (the two that earlier
    releases knew). A model whose likelihood is of another kind (a variational bound of analytic terms, a
    dequantized density, an ODE estimate with a standard error) declares the capability "likelihoods" and a
    ``likelihoods`` attribute: a list of ``Likelihood``, best first, each with its kind and settings
    (docs/plugins.md, "Likelihoods").
    """

    #: A subset of {"sample", "log_likelihood", "elbo", "likelihoods"}.
    capabilities: frozenset[str]

    def fit(self, train: ImageData, ctx: FitContext) -> None:
        """Train on ``train`` (uint8, on the CPU); the model is already on ``ctx.device``."""
        ...

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """n images as a uint8 tensor (n, C, H, W), values in [0, levels), on the CPU; ``generator`` is a CPU one."""
        ...

    def log_likelihood(self, x: torch.Tensor) -> torch.Tensor:
        """Exact log p(x) in nats for a uint8 batch (n, C, H, W) on the model's device; a float tensor (n,)."""
        ...

    def elbo(self, x: torch.Tensor, k: int = 1) -> torch.Tensor:
        """The importance-weighted lower bound on log p(x) with k samples (k=1 is the ELBO), in nats."""
        ...

    def to(self, device: torch.device) -> Any: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: Mapping[str, Any]) -> Any: ...


@dataclass(frozen=True)
class ModelSpec:
    name: str
    description: str
    #: A dataclass whose fields are the model's hyperparameters; every field needs a default. Options are
    #: checked against the field annotations; a ``__post_init__`` raising ValueError checks value ranges.
    config_class: type
    #: Builds an untrained model from a config instance and the data's shape and levels.
    factory: Callable[[Any, DataInfo], GenerativeModel]
    #: Benchmarked by a run that names no models (``genbench run`` without ``--models``), in the order of this
    #: rank; None: only when named.
    default_rank: int | None = None
    #: ``--sample-set NAME=PATH`` makes a copy of this model called NAME for each file (images made elsewhere);
    #: at most one installed model says so.
    serves_sample_sets: bool = False
    #: A dataclass of the model's evaluation-time options (sampler, steps, ODE tolerance, temperature, guidance):
    #: how a trained model is evaluated, not what was trained, so they name the cell but not the checkpoint, and
    #: a sweep (``--sample-option ddpm.steps=10,50,100``) evaluates one checkpoint once per value. Before each
    #: evaluation the runner sets ``model.sample_options`` to an instance. A model may then report
    #: ``model.network_evaluations``, the network evaluations (NFE) one sample costs with those options.
    sample_options_class: type | None = None

    def default_config(self) -> Any:
        return self.config_class()


# ------------------------------------------------------------------------------------------ likelihoods

#: What a likelihood number is. Every likelihood is of the discrete data: log p(x) in nats of an image whose
#: values are in {0, ..., levels-1}; a bound is below it (so its NLL is above the model's true NLL).
EXACT = "exact"
#: A continuous density turned into a lower bound on the discrete data by uniform or variational dequantization
#: (Theis et al. 2016; Ho et al. 2019, "Flow++"): normalizing flows, ODE densities with dequantization.
DEQUANTIZED = "dequantized bound"
#: A variational bound made of analytic terms, with one sample of the latent path: a VAE's ELBO, DDPM's L
#: (Ho et al. 2020, eq. 5, with the discretized decoder of eq. 13).
VARIATIONAL_BOUND = "variational bound"
#: The importance-weighted bound with k samples (Burda et al. 2016): tightens towards log p(x) as k grows.
IMPORTANCE_WEIGHTED = "importance-weighted bound"
#: A stochastic estimate of log p(x) with a standard error, neither exact nor a bound: the probability-flow
#: ODE's change of variables with Hutchinson's trace estimator (Grathwohl et al. 2019; Song et al. 2021).
STOCHASTIC_ESTIMATE = "stochastic estimate"
LIKELIHOOD_KINDS = (EXACT, DEQUANTIZED, VARIATIONAL_BOUND, IMPORTANCE_WEIGHTED, STOCHASTIC_ESTIMATE)
#: The kinds whose number is a lower bound on log p(x): never ranked beside an exact one without saying so.
BOUND_KINDS = frozenset({DEQUANTIZED, VARIATIONAL_BOUND, IMPORTANCE_WEIGHTED})


@dataclass(frozen=True)
class LikelihoodEstimate:
    """What a stochastic likelihood returns: per-image log p(x) in nats and the standard error of each."""

    log_p: torch.Tensor
    stderr: torch.Tensor


@dataclass(frozen=True)
class Likelihood:
    """One likelihood a model offers: how its log p(x) of discrete images is computed, and what kind it is.

    ``compute(x, **settings)`` takes uint8 images (n, C, H, W) on the model's device and returns log p(x) in nats
    per image, shape (n,), or a ``LikelihoodEstimate`` for a stochastic estimate. ``settings`` are the estimator's
    options with their defaults (``{"k": 100}``, ``{"rtol": 1e-5, "atol": 1e-5}``): a run may change them per model
    and metric, and they are recorded with every number.
    """

    name: str
    kind: str
    compute: Callable[..., torch.Tensor | LikelihoodEstimate]
    settings: Mapping[str, Any] = field(default_factory=dict)
    #: How it is computed, with its source ("importance-weighted bound (Burda et al. 2016)").
    description: str = ""
    #: An importance-weighted bound that tends to log p(x) as k grows; the conformance kit checks that it does.
    converges_with_k: bool = False

    @property
    def is_bound(self) -> bool:
        return self.kind in BOUND_KINDS


def likelihoods_of(model: GenerativeModel) -> list[Likelihood]:
    """The likelihoods ``model`` offers, best first: those it declares (a ``likelihoods`` attribute, a list of
    ``Likelihood``), else those its capabilities imply, as earlier releases read them: ``log_likelihood`` is exact;
    ``elbo(x, k)`` is the importance-weighted bound with k = 100 unless a run sets k."""
    declared = getattr(model, "likelihoods", None)
    if declared is not None:
        return list(declared)
    implied = []
    if LOG_LIKELIHOOD in model.capabilities:
        implied.append(Likelihood("exact", EXACT, lambda x: model.log_likelihood(x), {}, "exact log-likelihood"))
    if ELBO in model.capabilities:
        implied.append(
            Likelihood(
                "iwae",
                IMPORTANCE_WEIGHTED,
                lambda x, k: model.elbo(x, k=k),
                {"k": 100},
                "importance-weighted bound (Burda et al. 2016); NLL is an upper bound",
                converges_with_k=True,
            )
        )
    return implied
