"""What every conformance check shares: the check object, its outcome, and the tiny data the checks run on."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import torch

from genbench.contract import DataInfo, Dataset, GenbenchError, ImageData
from genbench.toolkit.data import make_dataset

PASS, FAIL, SKIP = "pass", "fail", "skip"
Status = Literal["pass", "fail", "skip"]


class ConformanceError(AssertionError):
    """A plugin broke a rule of the contract; the message says which and how."""


class Skipped(Exception):
    """A check that does not apply to this plugin (an ELBO check for a model without one), with the reason."""


@dataclass(frozen=True)
class Outcome:
    """One check's result, as ``genbench plugins check`` prints it."""

    kind: str
    plugin: str
    check: str
    status: Status
    detail: str

    def line(self) -> str:
        return f"{self.status.upper():4}  {self.kind} {self.plugin}: {self.check} - {self.detail}"


@dataclass(frozen=True)
class Check:
    """One named rule for one plugin. ``run()`` passes silently (returning what it saw), raises ConformanceError,
    or, under pytest, skips with the reason; ``outcome()`` never raises, for reports."""

    kind: str
    plugin: str
    name: str
    function: Callable[[], str]

    def __str__(self) -> str:  # the test id under pytest.mark.parametrize(..., ids=str)
        return f"{self.plugin}-{self.name}"

    def run(self) -> str:
        try:
            return self.function()
        except (Skipped, GenbenchError) as reason:
            import pytest

            pytest.skip(skip_reason(reason))

    def outcome(self) -> Outcome:
        try:
            detail, status = self.function(), PASS
        except (Skipped, GenbenchError) as reason:
            detail, status = skip_reason(reason), SKIP
        except ConformanceError as error:
            detail, status = str(error), FAIL
        except Exception as error:  # a crash is a failure too, named by its type
            detail, status = f"raised {type(error).__name__}: {error}", FAIL
        return Outcome(self.kind, self.plugin, self.name, status, " ".join(detail.split()))  # type: ignore[arg-type]


def skip_reason(reason: Exception) -> str:
    """A GenbenchError is a setting the plugin needs (a file, weights, options): the check cannot run without it."""
    return str(reason) if isinstance(reason, Skipped) else f"needs a setting: {reason}"


def require(condition: bool, message: str) -> None:
    if not condition:
        raise ConformanceError(message)


def json_problem(value: Any) -> str | None:
    """Why ``value`` cannot go into a record (JSON, no NaN or infinity), or None."""
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as error:
        return str(error)
    return None


def finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


# ------------------------------------------------------------------------------------------------ tiny data


def synthetic_images(info: DataInfo, n: int, seed: int = 0, prototypes: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` uint8 images with structure a model can learn: each is one of a few random prototypes with a fifth of
    its values redrawn at random; and the prototype's index as a label. Seeded, so every call gives the same."""
    generator = torch.Generator().manual_seed(seed)
    shape = (n, *info.shape)
    patterns = torch.randint(0, info.levels, (prototypes, *info.shape), generator=generator)
    labels = torch.randint(0, prototypes, (n,), generator=generator)
    noise = torch.randint(0, info.levels, shape, generator=generator)
    redrawn = torch.rand(shape, generator=generator) < 0.2
    images = torch.where(redrawn, noise, patterns[labels])
    return images.to(torch.uint8), labels


#: The metric checks' data: small enough for seconds, labelled so that the classifier extractor can train on it.
METRIC_SHAPE = DataInfo((1, 8, 8), 5)


def synthetic_dataset(info: DataInfo = METRIC_SHAPE, n_train: int = 200, n_test: int = 100) -> Dataset:
    """A labelled data set of ``synthetic_images``, with a fixed split, for checking metrics and extractors."""
    images, labels = synthetic_images(info, n_train + n_test, seed=1)
    train = ImageData(images[:n_train], info.levels, labels[:n_train])
    test = ImageData(images[n_train:], info.levels, labels[n_train:])
    return make_dataset("conformance", train, test, source="genbench.testing.synthetic_dataset", split="first/last")


def all_images(info: DataInfo) -> torch.Tensor:
    """Every image of a tiny shape, uint8 (levels ** dims, C, H, W): a normalized model's probabilities sum to 1."""
    grids = torch.cartesian_prod(*[torch.arange(info.levels)] * info.dims)
    return grids.reshape(-1, *info.shape).to(torch.uint8)


def options_text(options: Mapping[str, Any]) -> str:
    return ", ".join(f"{key}={value!r}" for key, value in options.items()) or "defaults"
