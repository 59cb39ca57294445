"""The feature extractors: inception loads its weights from a file (never the network here); classifier trains
once per data set and is then read from its cache."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import pytest
import torch
from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3

import genbench_fid.feature_extractor_classifier as classifier_module
from genbench import Dataset, EvalContext, GenbenchError, ImageData
from genbench.registry import Registry
from genbench.toolkit.features import load_extractor
from genbench_fid.feature_extractor_classifier import ClassifierConfig
from genbench_fid.feature_extractor_inception import WEIGHTS_VARIABLE, as_rgb_255
from genbench_fid.metric_fid import FidConfig


def context(dataset: Dataset, registry: Registry, cache: Path, **options: Any) -> EvalContext:
    generator = torch.Generator().manual_seed(0)
    return EvalContext(dataset, torch.device("cpu"), 0, generator, FidConfig(**options), registry, cache)


def test_both_extractors_are_registered(registry: Registry) -> None:
    assert {"inception", "classifier"} <= set(registry.specs["feature extractor"])


# --------------------------------------------------------------------------------------------- inception


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No weights in torch.hub's cache, no environment variable, and a download that fails as it does offline."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.delenv(WEIGHTS_VARIABLE, raising=False)

    def no_network(target: Path) -> None:
        raise OSError("network is unreachable")

    monkeypatch.setattr("genbench_fid.feature_extractor_inception.download_weights", no_network)


@pytest.mark.usefixtures("offline")
@pytest.mark.parametrize("via", ["option", "environment"])
def test_inception_loads_weights_from_a_file_and_extracts_pool3(
    via: str,
    random_inception_weights: Path,
    digits: Dataset,
    registry: Registry,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if via == "environment":
        monkeypatch.setenv(WEIGHTS_VARIABLE, str(random_inception_weights))
        ctx = context(digits, registry, tmp_path, extractor="inception")
    else:
        ctx = context(
            digits, registry, tmp_path, extractor="inception", inception_weights=str(random_inception_weights)
        )
    extractor = load_extractor("inception", ctx)
    features = extractor.features(digits.test.images[:2])
    assert features.shape == (2, 2048)
    assert features.dtype == torch.float64
    assert torch.isfinite(features).all()
    assert extractor.identity["weights_file"] == "random-inception.pth"
    assert len(extractor.identity["weights_sha256"]) == 16


@pytest.mark.usefixtures("offline")
def test_inception_offline_without_weights_says_how_to_get_them(
    digits: Dataset, registry: Registry, tmp_path: Path
) -> None:
    with pytest.raises(GenbenchError) as error:
        load_extractor("inception", context(digits, registry, tmp_path, extractor="inception"))
    message = str(error.value)
    assert URL_INCEPTION_V3 in message
    assert "--inception-weights" in message and WEIGHTS_VARIABLE in message
    assert str(tmp_path / "torch-home") in message  # where torch.hub would find a copy


@pytest.mark.usefixtures("offline")
def test_inception_finds_weights_in_torch_hubs_cache(
    random_inception_weights: Path, digits: Dataset, registry: Registry, tmp_path: Path
) -> None:
    checkpoints = tmp_path / "torch-home" / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    (checkpoints / URL_INCEPTION_V3.rsplit("/", 1)[1]).symlink_to(random_inception_weights)
    extractor = load_extractor("inception", context(digits, registry, tmp_path, extractor="inception"))
    assert extractor.identity["weights_file"] == URL_INCEPTION_V3.rsplit("/", 1)[1]


class Payload:
    """A pickle that would create a file when unpickled, as a malicious "weights" file could run any code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.marker,))


@pytest.mark.usefixtures("offline")
def test_inception_weights_are_loaded_without_running_pickled_code(
    digits: Dataset, registry: Registry, tmp_path: Path
) -> None:
    marker, weights = tmp_path / "code-ran", tmp_path / "evil.pth"
    with weights.open("wb") as stream:
        pickle.dump(Payload(marker), stream)
    ctx = context(digits, registry, tmp_path, extractor="inception", inception_weights=str(weights))
    with pytest.raises(GenbenchError, match="not a usable InceptionV3 weights file"):
        load_extractor("inception", ctx)
    assert not marker.exists()


@pytest.mark.usefixtures("offline")
def test_inception_rejects_the_weights_of_another_network(digits: Dataset, registry: Registry, tmp_path: Path) -> None:
    torch.save(torch.nn.Linear(2, 2).state_dict(), tmp_path / "linear.pth")
    ctx = context(digits, registry, tmp_path, extractor="inception", inception_weights=str(tmp_path / "linear.pth"))
    with pytest.raises(GenbenchError, match="Missing key"):
        load_extractor("inception", ctx)


@pytest.mark.usefixtures("offline")
def test_inception_weights_path_must_exist(digits: Dataset, registry: Registry, tmp_path: Path) -> None:
    ctx = context(digits, registry, tmp_path, extractor="inception", inception_weights=str(tmp_path / "missing.pth"))
    with pytest.raises(GenbenchError, match=r"inception_weights=.*missing\.pth.* is not a file"):
        load_extractor("inception", ctx)


def test_images_become_three_channels_of_0_to_255() -> None:
    gray = torch.tensor([0, 8, 16], dtype=torch.uint8).reshape(1, 1, 1, 3)
    rgb = as_rgb_255(gray, levels=17)
    assert rgb.shape == (1, 3, 1, 3) and rgb.dtype == torch.uint8
    assert rgb[0, :, 0].tolist() == [[0, 128, 255]] * 3
    assert torch.equal(as_rgb_255(rgb, levels=256), rgb)


# -------------------------------------------------------------------------------------------- classifier


def test_classifier_features_come_from_a_network_that_classifies_well(
    digits: Dataset, registry: Registry, shared_cache: Path
) -> None:
    extractor = load_extractor("classifier", context(digits, registry, shared_cache))
    assert extractor.identity["test_accuracy"] > 0.95
    features = extractor.features(digits.test.images[:5])
    assert features.shape == (5, ClassifierConfig().features)
    assert features.dtype == torch.float64


def test_the_classifier_is_trained_once_and_then_read_from_its_cache(
    digits: Dataset, registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        classifier_module, "ClassifierConfig", lambda: ClassifierConfig(steps=5)
    )  # caching, not quality
    trainings = []
    train = classifier_module.train_classifier
    monkeypatch.setattr(classifier_module, "train_classifier", lambda *args: trainings.append(1) or train(*args))
    first = load_extractor("classifier", context(digits, registry, tmp_path))
    (weights,) = (tmp_path / "feature_extractors" / "classifier").glob("*.safetensors")
    written = weights.stat().st_mtime_ns
    second = load_extractor("classifier", context(digits, registry, tmp_path))
    assert len(trainings) == 1
    assert weights.stat().st_mtime_ns == written
    assert first.identity == second.identity
    assert torch.equal(first.features(digits.test.images[:4]), second.features(digits.test.images[:4]))
    # Other training settings are another classifier: trained afresh, cached beside the first.
    monkeypatch.setattr(classifier_module, "ClassifierConfig", lambda: ClassifierConfig(steps=6))
    third = load_extractor("classifier", context(digits, registry, tmp_path))
    assert len(trainings) == 2
    assert third.identity["classifier_cache_key"] != first.identity["classifier_cache_key"]


def test_the_classifier_trains_where_metrics_run_under_no_grad(
    digits: Dataset, registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(classifier_module, "ClassifierConfig", lambda: ClassifierConfig(steps=2))
    with torch.no_grad():
        extractor = load_extractor("classifier", context(digits, registry, tmp_path))
    assert extractor.features(digits.test.images[:3]).shape == (3, ClassifierConfig().features)


def test_the_classifier_needs_labels(digits: Dataset, registry: Registry, tmp_path: Path) -> None:
    unlabelled = Dataset(
        "unlabelled",
        ImageData(digits.train.images, digits.train.levels),
        ImageData(digits.test.images, digits.test.levels),
        {},
    )
    with pytest.raises(GenbenchError, match="has none; use extractor 'inception'"):
        load_extractor("classifier", context(unlabelled, registry, tmp_path))
