from __future__ import annotations

import importlib.metadata
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from genbench.plugins import Registry, load_plugins

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
TESTS = Path(__file__).resolve().parent


@pytest.fixture
def registry() -> Registry:
    """A fresh plugin manager with every installed plugin, as `genbench` itself would load them."""
    return load_plugins()


@dataclass
class FakeDistribution:
    """Enough of importlib.metadata.Distribution for the plugin manager: a name, a version, entry points."""

    name: str
    version: str
    entry_points: list[importlib.metadata.EntryPoint] = field(default_factory=list)

    @property
    def metadata(self) -> dict[str, str]:
        return {"name": self.name}


def make_distribution(name: str, version: str, **points: str) -> FakeDistribution:
    return FakeDistribution(name, version, [importlib.metadata.EntryPoint(k, v, "genbench") for k, v in points.items()])


@pytest.fixture
def fake_distributions(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    """Add fake installed distributions beside the real ones, as pytest's own tests fake entry points."""
    real = list(importlib.metadata.distributions())
    extra: list[FakeDistribution] = []
    monkeypatch.setattr(importlib.metadata, "distributions", lambda: [*real, *extra])

    def add(name: str, version: str, **points: str) -> None:
        extra.append(make_distribution(name, version, **points))

    yield add


@pytest.fixture(autouse=True)
def _tests_importable(monkeypatch: pytest.MonkeyPatch) -> None:
    """fake_plugins lives beside the tests; entry points and -p import it by name."""
    monkeypatch.syspath_prepend(str(TESTS))
