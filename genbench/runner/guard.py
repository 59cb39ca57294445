"""The model as metrics see it: every sample and likelihood a model plugin returns is checked against the contract
before a metric uses it, so that a unit mistake fails the cell with one sentence rather than reaching the table.

The contract (``genbench.contract.models``): ``sample(n, generator)`` gives a uint8 tensor (n, C, H, W) of the data's
shape, on the CPU, with values in 0..levels-1; ``log_likelihood(x)``, ``elbo(x, k)`` and the ``compute`` of each
declared ``Likelihood`` give log p(x) of the discrete images in nats, a float tensor (n,) (or a
``LikelihoodEstimate`` holding one). A probability of discrete data is at most 1, so log p <= 0; and a
model whose bits per dimension are several times a uniform model's has its units wrong (a density of 0..255
values not integrated over bins, log p in another base), not merely poor training. Each check is one pass over
what came back; everything else about the model is the model's own.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any, cast

import torch

from genbench.contract import (
    ELBO,
    LIKELIHOODS,
    LOG_LIKELIHOOD,
    SAMPLE,
    DataInfo,
    GenerativeModel,
    Likelihood,
    LikelihoodEstimate,
)
from genbench.errors import PluginOutputError

#: log p of discrete data is at most 0; float rounding of a sum over D values may leave it this far above, per value.
LOG_P_TOLERANCE_PER_DIM = 1e-4
#: A batch's mean bits/dim above this multiple of a uniform model's log2(levels) is taken for a unit mistake.
WORST_BPD_FACTOR = 4.0


def checked_model(model: GenerativeModel, name: str, info: DataInfo) -> GenerativeModel:
    """``model`` with every return of ``sample``, ``log_likelihood``, ``elbo`` and its declared likelihoods checked;
    a broken one raises PluginOutputError naming model ``name``. Every other attribute is the model's own."""
    return cast(GenerativeModel, CheckedModel(model, name, info))


class CheckedModel:
    """A model plugin seen through the contract's checks; attributes are read from and written to the model itself,
    so a metric finds exactly what the model has (a model without ``elbo`` has none here either)."""

    __slots__ = ("_info", "_model", "_name")

    def __init__(self, model: GenerativeModel, name: str, info: DataInfo) -> None:
        object.__setattr__(self, "_model", model)
        object.__setattr__(self, "_name", name)
        object.__setattr__(self, "_info", info)

    def __getattr__(self, attribute: str) -> Any:
        if attribute in CheckedModel.__slots__:  # not yet set (a copy being made): never ask the model for it
            raise AttributeError(attribute)
        found = getattr(self._model, attribute)
        if attribute == SAMPLE:
            return self._checked(attribute, found, self._sample_problem, _sample_arguments)
        if attribute in (LOG_LIKELIHOOD, ELBO):
            return self._checked(attribute, found, self._log_p_problem, _likelihood_arguments)
        if attribute == LIKELIHOODS and isinstance(found, list | tuple):
            return type(found)(self._checked_likelihood(likelihood) for likelihood in found)
        return found

    def __setattr__(self, attribute: str, value: Any) -> None:
        setattr(self._model, attribute, value)

    def __repr__(self) -> str:
        return f"checked {self._model!r}"

    def _checked(
        self,
        method: str,
        call: Callable[..., Any],
        problem: Callable[[Any, Any], str | None],
        arguments: Callable[..., str],
    ) -> Callable[..., Any]:
        """``call`` whose every result ``problem(result, first argument)`` finds nothing wrong with; else the
        sentence names the model, the call (``arguments`` describes its arguments) and the problem."""

        def checked_call(first: Any, *args: Any, **kwargs: Any) -> Any:
            result = call(first, *args, **kwargs)
            wrong = problem(result, first)
            if wrong is not None:
                called = f"{method}({arguments(first, *args, **kwargs)})"
                raise PluginOutputError(f"model {self._name!r} {called} {wrong}")
            return result

        return checked_call

    def _checked_likelihood(self, likelihood: Any) -> Any:
        if not isinstance(likelihood, Likelihood):
            return likelihood
        method = f"likelihoods[{likelihood.name!r}].compute"
        checked = self._checked(method, likelihood.compute, self._log_p_problem, _likelihood_arguments)
        return dataclasses.replace(likelihood, compute=checked)

    def _sample_problem(self, images: Any, n: Any) -> str | None:
        info, top_level = self._info, self._info.levels - 1
        expected = f"a uint8 tensor {(n, *info.shape)} on the CPU in 0..{top_level}"
        if not isinstance(images, torch.Tensor):
            return f"returned a {type(images).__name__}; expected {expected}"
        if images.dtype != torch.uint8 or tuple(images.shape) != (n, *info.shape) or images.device.type != "cpu":
            return f"returned {images.dtype} {tuple(images.shape)} on {images.device}; expected {expected}"
        top = int(images.max()) if images.numel() else 0
        if top >= info.levels:
            return f"returned values up to {top} on data with {info.levels} levels; expected uint8 in 0..{top_level}"
        return None

    def _log_p_problem(self, log_p: Any, x: Any) -> str | None:
        if isinstance(log_p, LikelihoodEstimate):  # a stochastic estimate: its log p is checked like any other
            log_p = log_p.log_p
        n, dims, levels = len(x), self._info.dims, self._info.levels
        expected = f"expected a float tensor ({n},) of log p(x) in nats"
        if not isinstance(log_p, torch.Tensor):
            return f"returned a {type(log_p).__name__}; {expected}"
        if tuple(log_p.shape) != (n,) or not log_p.is_floating_point():
            return f"returned {log_p.dtype} {tuple(log_p.shape)}; {expected}"
        if n == 0:
            return None
        values = log_p.detach().double()
        low, high, total = torch.stack([values.min(), values.max(), values.sum()]).tolist()
        if not (math.isfinite(low) and math.isfinite(high)):
            bad = int((~torch.isfinite(values)).sum())
            return f"returned NaN or infinite log p for {bad} of {n} images; expected finite log p(x) in nats"
        if high > LOG_P_TOLERANCE_PER_DIM * dims:
            return (
                f"returned log p up to {high:.4g} nats; expected log p <= 0, as the probability of discrete data "
                "is at most 1"
            )
        bpd, uniform = -total / n / (dims * math.log(2.0)), math.log2(levels)
        if bpd > WORST_BPD_FACTOR * uniform:
            return (
                f"returned {bpd:.4g} bits/dim on average, over {WORST_BPD_FACTOR:g} times a uniform model's "
                f"{uniform:.4g}; expected log p of the {levels} levels in nats (are the units right?)"
            )
        return None


def _sample_arguments(n: Any, *rest: Any, **options: Any) -> str:
    """sample(64): the generator says nothing a reader of the sentence needs."""
    return str(n)


def _likelihood_arguments(x: Any, *rest: Any, **options: Any) -> str:
    """elbo(128 images, k=100): the batch by its size, the estimator's settings as given."""
    return ", ".join([f"{len(x)} images", *map(repr, rest), *(f"{key}={value!r}" for key, value in options.items())])
