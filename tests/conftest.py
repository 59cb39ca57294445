from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch
from threadpoolctl import threadpool_limits

from genbench import Dataset, DatasetOptions, FitContext
from genbench.registry import DATASET, Registry, load_plugins

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
TESTS = Path(__file__).resolve().parent
#: Libraries that only training, evaluation, data loading or page rendering need. tqdm is not here: importing
#: torch itself imports it.
HEAVY = ("torchvision", "pandas", "matplotlib", "scipy", "sklearn", "torch_fidelity", "PIL", "safetensors", "jinja2")


def genbench_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``python -m genbench.cli ARGS`` in a fresh process that can load the helper plugins beside the tests."""
    env = {**os.environ, "PYTHONPATH": str(TESTS)}
    return subprocess.run(
        [sys.executable, "-m", "genbench.cli", *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=300
    )


@pytest.fixture(scope="session")
def registry() -> Registry:
    """Every installed plugin, loaded as `genbench` itself loads them (tests that fake plugins load their own)."""
    return load_plugins()


@pytest.fixture(scope="session")
def digits(registry: Registry) -> Dataset:
    return registry.get(DATASET, "digits").load(DatasetOptions())


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache directory for the whole session, so each data set's feature classifier is trained once."""
    path = tmp_path_factory.getbasetemp() / "genbench-fid-cache"
    path.mkdir(exist_ok=True)
    return path


@dataclass
class FakeDistribution:
    """Enough of importlib.metadata.Distribution for the plugin manager: a name, a version, entry points."""

    name: str
    version: str
    entry_points: list[importlib.metadata.EntryPoint] = field(default_factory=list)

    @property
    def metadata(self) -> dict[str, str]:
        return {"name": self.name}

    @property
    def _normalized_name(self) -> str:
        """What ``importlib.metadata.entry_points()`` tells distributions apart by: a library that calls it while
        these fakes are installed (triton does, when torchvision is first imported inside a test) must not fail."""
        return self.name.lower().replace("-", "_")


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


@pytest.fixture(scope="session", autouse=True)
def one_thread() -> Iterator[None]:
    """One torch and BLAS thread for the whole suite.

    On a shared two-core machine, spinning thread pools run many times slower than one thread whenever another
    process wants the cores (measured here: scipy's sqrtm at d=1024 took 44 s on two threads and 1.8 s on one;
    PixelCNN training 610 s against 44 s). One thread also makes results independent of the core count.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(1):
            yield
    finally:
        torch.set_num_threads(threads)


def cpu_context(seed: int = 0) -> FitContext:
    """What the runner gives a model's fit on the CPU, seeded."""
    return FitContext(device=torch.device("cpu"), seed=seed, generator=torch.Generator().manual_seed(seed))


class Replay:
    """A "perfect" model: it samples (with replacement) from a fixed set of real images, counting its calls."""

    capabilities = frozenset({"sample"})

    def __init__(self, images: torch.Tensor) -> None:
        self.images = images
        self.calls = 0

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        self.calls += 1
        return self.images[torch.randint(len(self.images), (n,), generator=generator)]


@pytest.fixture(scope="session")
def random_inception_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """torch-fidelity's InceptionV3 with random weights, saved as its weights file is: a state dict, torch.save.

    The Inception path then runs end to end offline; one file serves every test of the session."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    with pytest.MonkeyPatch.context() as patch:  # build the architecture without fetching the real weights
        patch.setattr("torch_fidelity.feature_extractor_inceptionv3.load_state_dict_from_url", lambda *a, **k: {})
        patch.setattr(FeatureExtractorInceptionV3, "load_state_dict", lambda self, state: None)
        network = FeatureExtractorInceptionV3("random", ["2048"])
    path = tmp_path_factory.mktemp("inception") / "random-inception.pth"
    torch.save(network.state_dict(), path)
    return path
