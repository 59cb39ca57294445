"""``intra_fid``: the mean over classes of the FID within each class; generated images take the class the
``classifier`` extractor predicts, real images keep their labels; N/A without labels."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from conftest import Replay
from genbench import Dataset, EvalContext, GenbenchError, ImageData, NotApplicable
from genbench.registry import Registry
from genbench.toolkit.features import FeatureExtractor
from genbench_fid.metric_fid_intra import (
    IntraFidConfig,
    check_intra_fid,
    compute_intra_fid,
    generated_features_and_classes,
    intra_class_distances,
)
from genbench_fid.sample_features import shared_extractor


def context(dataset: Dataset, registry: Registry, cache: Path, **options: Any) -> EvalContext:
    generator = torch.Generator().manual_seed(0)
    return EvalContext(dataset, torch.device("cpu"), 0, generator, IntraFidConfig(**options), registry, cache)


def blobs(labels: torch.Tensor, seed: int) -> torch.Tensor:
    """2-d features around (10 c, 0) for class c."""
    noise = torch.randn(len(labels), 2, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return noise + torch.stack([10.0 * labels.double(), torch.zeros(len(labels), dtype=torch.float64)], dim=1)


def test_each_class_is_compared_with_its_own_real_images() -> None:
    labels = torch.arange(3).repeat_interleave(100)
    real, fake = blobs(labels, 0), blobs(labels, 1)
    right = intra_class_distances(fake, labels, real, labels, min_fake=2)
    assert set(right) == {"0", "1", "2"} and all(entry["fid"] < 0.2 for entry in right.values())
    assert right["1"]["n_fake"] == right["1"]["n_real"] == 100
    swapped = intra_class_distances(fake, (labels + 1) % 3, real, labels, min_fake=2)  # classes mislabelled
    assert all(entry["fid"] > 90 for entry in swapped.values())


def test_a_class_compared_with_its_own_features_scores_zero() -> None:
    labels = torch.arange(2).repeat_interleave(50)
    features = blobs(labels, 2)
    assert all(
        entry["fid"] == pytest.approx(0.0, abs=1e-9)
        for entry in intra_class_distances(features, labels, features, labels, min_fake=2).values()
    )


def test_a_class_with_too_few_generated_images_is_missed() -> None:
    labels = torch.arange(3).repeat_interleave(40)
    fake_labels = torch.cat([torch.zeros(118, dtype=torch.long), torch.tensor([1, 1])])  # class 2 never drawn
    per_class = intra_class_distances(blobs(fake_labels, 3), fake_labels, blobs(labels, 4), labels, min_fake=3)
    assert per_class["1"]["fid"] is None and per_class["1"]["n_fake"] == 2
    assert per_class["2"]["fid"] is None and per_class["2"]["n_fake"] == 0
    assert per_class["0"]["fid"] is not None


# --------------------------------------------------------------------------------------------- the metric


def test_replayed_test_images_score_low_and_one_digit_misses_nine_classes(
    digits: Dataset, registry: Registry, shared_cache: Path
) -> None:
    assert digits.test.labels is not None
    replay = compute_intra_fid(Replay(digits.test.images), context(digits, registry, shared_cache))
    zeros = Replay(digits.test.images[digits.test.labels == 0])
    one_digit = compute_intra_fid(zeros, context(digits, registry, shared_cache))
    noise_images = torch.randint(17, (360, 1, 8, 8), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    noise = compute_intra_fid(Replay(noise_images), context(digits, registry, shared_cache))
    assert replay.values["intra_fid_classes_missed"] == 0
    assert one_digit.values["intra_fid_classes_missed"] >= 8  # the classifier sees zeros (and the odd mistake)
    assert replay.values["intra_fid"] < noise.values["intra_fid"] / 3
    provenance = replay.provenance
    assert provenance["extractor"] == "classifier"
    assert provenance["classifier_identity"]["test_accuracy"] > 0.9
    assert sum(entry["n_fake"] for entry in provenance["per_class"].values()) == len(digits.test)
    assert provenance["worst_class"] in provenance["per_class"]
    assert "argmax of the 'classifier' extractor's head" in provenance["classes_from"]
    # What differs between two models' records is what was found, never how: the leaderboard can rank them.
    from genbench.report import MEASUREMENT_FIELDS

    differing = {key for key in provenance if provenance[key] != noise.provenance.get(key)}
    assert differing and differing <= MEASUREMENT_FIELDS


def test_classes_belong_to_the_images_whose_features_are_compared(
    digits: Dataset, registry: Registry, shared_cache: Path
) -> None:
    """With an extractor other than the classifier, each batch goes through both networks before the next draw."""
    ctx = context(digits, registry, shared_cache, n_samples=150, batch_size=40)
    labeller = shared_extractor(IntraFidConfig(extractor="classifier"), ctx)

    def pixels(images: torch.Tensor) -> torch.Tensor:
        return images.flatten(1).double()

    extractor = FeatureExtractor("pixels", pixels, {"name": "pixels"})
    model = Replay(digits.test.images)
    features, classes = generated_features_and_classes(model, extractor, labeller, 64, ctx.config, ctx)
    images = features.reshape(-1, 1, 8, 8).to(torch.uint8)
    assert len(features) == 150 and model.calls == 4
    assert torch.equal(classes, labeller.features.both(images)[1].argmax(dim=1))  # type: ignore[attr-defined]


def test_unlabelled_data_has_no_intra_class_fid(digits: Dataset, registry: Registry, tmp_path: Path) -> None:
    unlabelled = Dataset("unlabelled", ImageData(digits.train.images, 17), ImageData(digits.test.images, 17), {})
    ctx = context(unlabelled, registry, tmp_path)
    check_intra_fid(ctx)  # nothing to check: the metric will say N/A, the run goes on
    with pytest.raises(NotApplicable, match="'unlabelled' has no labels"):
        compute_intra_fid(Replay(digits.test.images), ctx)


def test_repeats_are_refused(digits: Dataset, registry: Registry, tmp_path: Path) -> None:
    with pytest.raises(GenbenchError, match="intra_fid: repeats, n_real and bootstrap are not supported"):
        check_intra_fid(context(digits, registry, tmp_path, repeats=2))
