"""``classifier``: the penultimate layer of a small CNN trained on the data set's own labels.

InceptionV3 learned ImageNet photographs; on 8x8 or 28x28 gray digits its features say more about the
upsampling than about the digits. The MNIST literature therefore computes FID with a domain classifier's
features (Lucic et al. 2018, "Are GANs Created Equal?"), as this extractor does. The classifier is trained once
per data set with a fixed seed and cached under the cache directory, keyed by a hash of everything that shapes
it: the data's fingerprint and labels, the architecture version and the training settings. Its test accuracy
travels with every number computed from it, as an honest check that its features mean something.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from genbench import Dataset, EvalContext, GenbenchError, ImageData
from genbench.toolkit.checks import require_at_least, require_positive
from genbench.toolkit.features import cached_tensors, dataset_fingerprint
from genbench_fid.sample_features import FeaturesWithLogits

#: Bump when the network or the training loop changes: every cached classifier is then trained again.
ARCHITECTURE_VERSION = 1


@dataclass(frozen=True)
class ClassifierConfig:
    """Fixed, not a user option: FID numbers are comparable only under one extractor."""

    width: int = 16  # channels of the first strided convolution; the second has twice as many
    features: int = 128  # the penultimate layer, whose activations are the features
    steps: int = 1500  # Adam steps: 133 epochs of the digits, 3 of full MNIST; seconds on a CPU
    batch_size: int = 128
    lr: float = 3e-3
    seed: int = 0  # one seed for everyone, so every run on the same data gets the same extractor

    def __post_init__(self) -> None:
        require_at_least(self, 1, "width", "features", "steps", "batch_size")
        require_positive(self, "lr")


class Classifier(nn.Module):
    """Two convolutions, a fixed 4x4 pooled grid (any image size), a ReLU feature layer, a linear head."""

    def __init__(self, channels: int, classes: int, config: ClassifierConfig) -> None:
        super().__init__()
        width = config.width
        self.body = nn.Sequential(
            nn.Conv2d(channels, width, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(4),
            nn.Flatten(),
            nn.Linear(2 * width * 16, config.features),
            nn.ReLU(),
        )
        self.head = nn.Linear(config.features, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits for images already scaled to [0, 1]."""
        logits: torch.Tensor = self.head(self.body(x))
        return logits


def scaled(images: torch.Tensor, levels: int) -> torch.Tensor:
    return images.float() / (levels - 1)


def shuffled_batches(n: int, batch_size: int, steps: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
    """``steps`` index batches that walk through seeded permutations of range(n), epoch after epoch."""
    order = torch.empty(0, dtype=torch.long)
    for _ in range(steps):
        while len(order) < batch_size:
            order = torch.cat([order, torch.randperm(n, generator=generator)])
        batch, order = order[:batch_size], order[batch_size:]
        yield batch


def train_classifier(
    train: ImageData, classes: int, config: ClassifierConfig, device: torch.device
) -> tuple[Classifier, float]:
    """A classifier fitted to ``train`` by Adam on the cross-entropy; and the training time in seconds.

    Gradients are switched back on, since metrics (and so this first use of the extractor) run under no_grad.
    """
    with torch.inference_mode(False), torch.enable_grad():
        return _train(train, classes, config, device)


def _train(train: ImageData, classes: int, config: ClassifierConfig, device: torch.device) -> tuple[Classifier, float]:
    assert train.labels is not None
    start = time.perf_counter()
    with torch.random.fork_rng(devices=[]):  # seeded initialization without touching the caller's global RNG
        torch.manual_seed(config.seed)
        model = Classifier(train.shape[0], classes, config).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    generator = torch.Generator().manual_seed(config.seed)
    model.train()
    for index in shuffled_batches(len(train), config.batch_size, config.steps, generator):
        x = scaled(train.images[index], train.levels).to(device)
        loss = nn.functional.cross_entropy(model(x), train.labels[index].to(device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()
    model.eval()
    return model, time.perf_counter() - start


@torch.inference_mode()
def accuracy(model: Classifier, data: ImageData, device: torch.device, batch_size: int = 1000) -> float:
    assert data.labels is not None
    correct = 0
    for start in range(0, len(data), batch_size):
        x = scaled(data.images[start : start + batch_size], data.levels).to(device)
        correct += int((model(x).argmax(1).cpu() == data.labels[start : start + batch_size]).sum())
    return correct / len(data)


def weights_sha256(state: dict[str, torch.Tensor]) -> str:
    digest = hashlib.sha256()
    for name in sorted(state):
        digest.update(name.encode())
        digest.update(state[name].detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def check_classifier(dataset: Dataset, ctx: EvalContext) -> None:
    """The classifier trains on labels: a data set without them cannot have this extractor."""
    if dataset.train.labels is None or dataset.test.labels is None:
        raise GenbenchError(
            f"the classifier feature extractor trains on labels, and data set {dataset.name!r} has none; "
            "use extractor 'inception' (metric option extractor='inception')"
        )


def load_classifier(dataset: Dataset, ctx: EvalContext) -> tuple[FeaturesWithLogits, dict[str, Any]]:
    """The cached classifier for ``dataset`` (trained on its train split first if there is none yet)."""
    check_classifier(dataset, ctx)
    train, test = dataset.train, dataset.test
    assert train.labels is not None and test.labels is not None
    config = ClassifierConfig()
    classes = int(max(train.labels.max(), test.labels.max())) + 1
    description = {
        "architecture": f"genbench Classifier v{ARCHITECTURE_VERSION}",
        "config": dataclasses.asdict(config),
        "dataset": dataset.name,
        "fingerprint": dataset_fingerprint(dataset),
        "labels_sha256": hashlib.sha256(train.labels.numpy().tobytes()).hexdigest()[:16],
        "shape": list(train.shape),
        "levels": train.levels,
        "classes": classes,
        # The plugin's own code: an edited training loop trains the classifier again, version bump or not.
        "plugin_source": ctx.registry.extractor_source("classifier"),
    }

    def train_and_measure() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        model, seconds = train_classifier(train, classes, config, ctx.device)
        state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        facts = {
            "test_accuracy": accuracy(model, test, ctx.device),
            "train_seconds": round(seconds, 2),
            "trained_on": f"train split, {len(train)} images, device {ctx.device.type}",
        }
        return state, facts

    state, info = cached_tensors(ctx.cache_dir / "feature_extractors" / "classifier", description, train_and_measure)
    model = Classifier(train.shape[0], classes, config)
    model.load_state_dict(state)
    model.to(ctx.device).eval()
    levels = train.levels

    @torch.inference_mode()
    def features_and_logits(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        penultimate = model.body(scaled(images, levels).to(ctx.device))
        return penultimate.double().cpu(), model.head(penultimate).double().cpu()

    identity = {
        "network": description["architecture"],
        "layer": f"penultimate ReLU, {config.features}-d",
        "weights_sha256": weights_sha256(state),
        "test_accuracy": info["test_accuracy"],
        "classifier_cache_key": info["cache_key"],
    }
    features = FeaturesWithLogits(features_and_logits, f"the classifier's own head ({classes} classes)")
    return features, identity
