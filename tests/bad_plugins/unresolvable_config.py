"""A model whose config annotation names a type that only exists for type checkers, so it cannot be resolved."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import genbench

if TYPE_CHECKING:
    from decimal import Decimal


@dataclass
class GhostConfig:
    scale: Decimal | None = None  # resolvable by mypy, not at run time


@genbench.hookimpl
def genbench_models() -> list[genbench.ModelSpec]:
    return [genbench.ModelSpec("ghost", "config annotations that do not resolve", GhostConfig, lambda c, i: None)]
