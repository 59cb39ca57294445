"""Plugins that tests register through faked entry points or -p; nothing here is installed."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

import genbench
from genbench import DataInfo, FitContext, ImageData


@dataclass
class ConstantConfig:
    value: int = 0  # the one image every sample repeats
    epochs: int = 1


class ConstantModel(nn.Module):
    """A third-party model in the smallest form: it samples one fixed image and has no likelihood."""

    capabilities = frozenset({genbench.SAMPLE})

    def __init__(self, config: ConstantConfig, info: DataInfo) -> None:
        super().__init__()
        self.info = info
        self.register_buffer("image", torch.full(info.shape, config.value, dtype=torch.uint8))

    def fit(self, train: ImageData, ctx: FitContext) -> None:
        self.image = train.images[0].clone()
        ctx.on_curve(1, {"loss": 0.0})

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return self.image.cpu().expand(n, *self.info.shape).clone()


class FailingModel(ConstantModel):
    def fit(self, train: ImageData, ctx: FitContext) -> None:
        raise RuntimeError("this model always fails")


@genbench.hookimpl
def genbench_models() -> list[genbench.ModelSpec]:
    return [
        genbench.ModelSpec("constant", "samples the first training image", ConstantConfig, ConstantModel),
        genbench.ModelSpec("failing", "raises during fit", ConstantConfig, FailingModel),
    ]


@genbench.hookimpl
def genbench_addoption(options: genbench.OptionGroup) -> None:
    options.addoption("--fake-scale", dest="fake_scale", type=float, help="what the option_echo metric reports")


def echo_option(model: genbench.GenerativeModel, ctx: genbench.EvalContext) -> genbench.MetricResult:
    return genbench.MetricResult({"option_echo": float(ctx.options.get("fake_scale", -1.0))})


@genbench.hookimpl
def genbench_metrics() -> list[genbench.MetricSpec]:
    column = genbench.Column("option_echo", "1", higher_is_better=True)
    return [genbench.MetricSpec("option_echo", "reports --fake-scale", (column,), frozenset(), echo_option)]


class Tracker:
    """An event listener, as an experiment tracker would be."""

    def __init__(self) -> None:
        self.finished: list[genbench.CellRecord] = []

    @genbench.hookimpl
    def genbench_cell_finished(self, record: genbench.CellRecord) -> None:
        self.finished.append(record)


class WrongAnswer:
    """A plugin that answers a hook with the wrong type."""

    @genbench.hookimpl
    def genbench_models(self) -> object:
        return "not a list"


class ImpostorIndependent:
    """A plugin that claims a name the built-ins already use."""

    @genbench.hookimpl
    def genbench_models(self) -> list[genbench.ModelSpec]:
        return [genbench.ModelSpec("independent", "impostor", ConstantConfig, ConstantModel)]


tracker = Tracker()
wrong_answer = WrongAnswer()
impostor = ImpostorIndependent()
