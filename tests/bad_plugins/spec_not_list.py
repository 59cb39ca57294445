"""A hook that returns one ModelSpec where a list of them is expected."""

from __future__ import annotations

from dataclasses import dataclass

import genbench


@dataclass
class LoneConfig:
    epochs: int = 1  # unused: the model is never built


@genbench.hookimpl
def genbench_models() -> object:
    return genbench.ModelSpec("lone", "returned bare, not in a list", LoneConfig, lambda config, info: None)
