"""A third-party model that cannot take every shape, loaded with -p by the prepare tests; nothing is installed."""

from __future__ import annotations

from dataclasses import dataclass

import genbench
from fake_plugins import ConstantConfig, ConstantModel
from genbench import DataInfo


@dataclass
class AtLeastConfig:
    min_size: int = 16  # the smallest image side this model's architecture can take
    epochs: int = 1


class AtLeastModel(ConstantModel):
    """Refuses images smaller than its config allows, with an error that is not a GenbenchError (a plain bug)."""

    def __init__(self, config: AtLeastConfig, info: DataInfo) -> None:
        if min(info.shape[1:]) < config.min_size:
            raise ValueError(f"needs images of at least {config.min_size}x{config.min_size},\ngot {info.shape}")
        super().__init__(ConstantConfig(), info)


@genbench.hookimpl
def genbench_models() -> list[genbench.ModelSpec]:
    return [genbench.ModelSpec("at_least", "refuses images smaller than min_size", AtLeastConfig, AtLeastModel)]
