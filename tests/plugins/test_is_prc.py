"""``is`` and ``precision_recall``: known answers of the math, agreement with torch-fidelity's functions, and one
shared set of samples with ``fid`` and ``kid`` in a cell."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch
from torch_fidelity.metric_isc import KEY_METRIC_ISC_MEAN, isc_features_to_metric
from torch_fidelity.metric_prc import calculate_precision_recall_full

import genbench
from conftest import Replay
from genbench import Dataset, EvalContext, GenbenchError
from genbench.registry import Registry
from genbench.toolkit.features import FeatureExtractor, load_extractor
from genbench_fid.metric_fid import FidConfig, compute_fid
from genbench_fid.metric_is import IsConfig, compute_is, inception_score
from genbench_fid.metric_kid import KidConfig, compute_kid
from genbench_fid.metric_prc import PrecisionRecallConfig, compute_precision_recall, precision_recall
from genbench_fid.sample_features import FeaturesWithLogits, shared_sample_outputs


class Blank:
    """Every sample the same black image: one class for every image, so IS is 1."""

    capabilities = frozenset({genbench.SAMPLE})

    def __init__(self, shape: tuple[int, int, int]) -> None:
        self.shape = shape

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return torch.zeros((n, *self.shape), dtype=torch.uint8)


def context(dataset: Dataset, registry: Registry, cache: Path, config: Any) -> EvalContext:
    return EvalContext(dataset, torch.device("cpu"), 0, torch.Generator().manual_seed(0), config, registry, cache)


# ----------------------------------------------------------------------------------------- inception score


def test_uniform_class_probabilities_score_one() -> None:
    logits = torch.zeros(100, 10, dtype=torch.float64)
    mean, std = inception_score(logits, splits=10)
    assert mean == pytest.approx(1.0, abs=1e-12) and std == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("classes", [2, 10, 1008])
def test_confident_evenly_spread_classes_score_the_number_of_classes(classes: int) -> None:
    splits = 4
    labels = torch.arange(classes).repeat(splits)  # every split holds each class once
    logits = 60.0 * torch.nn.functional.one_hot(labels, classes).double()  # softmax of 60 vs 0: certain
    mean, std = inception_score(logits, splits=splits, shuffle=False)
    assert mean == pytest.approx(classes, rel=1e-9) and std == pytest.approx(0.0, abs=1e-6)


def test_one_confident_class_for_every_image_scores_one() -> None:
    logits = torch.zeros(50, 10, dtype=torch.float64)
    logits[:, 3] = 60.0
    assert inception_score(logits, splits=5)[0] == pytest.approx(1.0, abs=1e-9)


def test_inception_score_is_torch_fidelitys_on_random_logits() -> None:
    logits = torch.randn(500, 1008, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 3
    mean, _ = inception_score(logits, splits=10)
    assert mean == isc_features_to_metric(logits, splits=10, shuffle=True, rng_seed=2020)[KEY_METRIC_ISC_MEAN]
    assert 1.0 < mean < 1008


# ------------------------------------------------------------------------------------- precision and recall


def test_a_set_compared_with_itself_has_precision_and_recall_one() -> None:
    features = torch.randn(300, 16, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert precision_recall(features, features, neighborhood=3, distance_batch=64) == (1.0, 1.0)


def test_far_apart_sets_have_precision_and_recall_zero() -> None:
    real = torch.randn(200, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert precision_recall(real + 1000.0, real, neighborhood=3, distance_batch=64) == (0.0, 0.0)


def test_a_collapsed_generator_is_precise_but_covers_little() -> None:
    real = torch.randn(400, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    collapsed = real[:20].repeat(10, 1)  # 200 samples, all copies of 20 real points
    precision, recall = precision_recall(collapsed, real, neighborhood=3, distance_batch=128)
    assert precision == 1.0
    assert recall < 0.5


def test_blocks_do_not_change_the_answer_and_it_is_torch_fidelitys() -> None:
    generator = torch.Generator().manual_seed(2)
    fake = torch.randn(150, 12, generator=generator, dtype=torch.float64)
    real = torch.randn(250, 12, generator=generator, dtype=torch.float64) * 1.3 + 0.2
    expected = calculate_precision_recall_full(fake, real, 3, 10_000)
    for distance_batch in (7, 64, 1000):
        assert precision_recall(fake, real, 3, distance_batch) == pytest.approx(expected, abs=1e-12)
    assert 0.0 < expected[0] < 1.0 and 0.0 < expected[1] < 1.0


# ------------------------------------------------------------------------------------------ the metrics


def test_is_on_the_digits_uses_the_classifiers_logits(digits: Dataset, registry: Registry, shared_cache: Path) -> None:
    real = compute_is(Replay(digits.test.images), context(digits, registry, shared_cache, IsConfig(n_samples=300)))
    blank = compute_is(Blank(digits.info.shape), context(digits, registry, shared_cache, IsConfig(n_samples=300)))
    assert 6.0 < real.values["is"] <= 10.0  # ten digits, recognised by a >90% accurate classifier
    assert blank.values["is"] < 1.5
    assert real.provenance["logits"] == "the classifier's own head (10 classes)"
    assert real.provenance["splits"] == 10 and real.provenance["n_fake"] == 300


def test_precision_recall_of_replayed_data_is_high(digits: Dataset, registry: Registry, shared_cache: Path) -> None:
    config = PrecisionRecallConfig(n_samples=300, reference_split="train")
    real = compute_precision_recall(Replay(digits.train.images), context(digits, registry, shared_cache, config))
    blank = compute_precision_recall(Blank(digits.info.shape), context(digits, registry, shared_cache, config))
    assert real.values["precision"] > 0.95 and real.values["recall"] > 0.1
    assert blank.values["recall"] < 0.01
    assert real.provenance["n_real"] == len(digits.train) and "train split" in real.provenance["reference"]


def test_fid_kid_is_and_precision_recall_of_one_cell_share_one_set_of_samples(
    digits: Dataset, registry: Registry, shared_cache: Path
) -> None:
    model = Replay(digits.train.images)
    ctx = context(digits, registry, shared_cache, FidConfig(n_samples=200))
    fid = compute_fid(model, ctx)
    ctx.config = KidConfig(n_samples=200, subset_size=50, subsets=5)
    compute_kid(model, ctx)
    ctx.config = IsConfig(n_samples=200)
    inception = compute_is(model, ctx)
    ctx.config = PrecisionRecallConfig(n_samples=200)
    compute_precision_recall(model, ctx)
    assert model.calls == 2  # 200 samples in batches of 100, once for all four metrics
    assert fid.provenance["n_fake"] == inception.provenance["n_fake"] == 200


def test_features_and_logits_come_from_one_pass(digits: Dataset, registry: Registry, shared_cache: Path) -> None:
    ctx = context(digits, registry, shared_cache, IsConfig(n_samples=120, batch_size=50))
    extractor = load_extractor("classifier", ctx)
    assert isinstance(extractor.features, FeaturesWithLogits)
    outputs = shared_sample_outputs(Replay(digits.test.images), extractor, ctx.config, ctx)
    assert outputs.features.shape == (120, 128) and outputs.logits is not None and outputs.logits.shape == (120, 10)
    images = digits.test.images[:5]
    features, logits = extractor.features.both(images)
    assert torch.equal(extractor.features(images), features)
    assert math.isclose(float(logits.softmax(1).sum()), 5.0, rel_tol=1e-9)


def test_an_extractor_without_logits_cannot_give_an_inception_score(
    digits: Dataset, registry: Registry, shared_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def features_only(name: str, ctx: EvalContext) -> FeatureExtractor:
        return FeatureExtractor(name, lambda images: images.flatten(1).double(), {"name": name})

    monkeypatch.setattr("genbench_fid.sample_features.load_extractor", features_only)
    ctx = context(digits, registry, shared_cache, IsConfig(n_samples=40, extractor="pixels"))
    with pytest.raises(GenbenchError, match="extractor 'pixels' gives no class logits"):
        compute_is(Replay(digits.test.images), ctx)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: IsConfig(splits=0), "splits must be at least 1, got 0"),
        (lambda: PrecisionRecallConfig(neighborhood=0), "neighborhood must be at least 1, got 0"),
        (lambda: PrecisionRecallConfig(distance_batch=0), "distance_batch must be at least 1, got 0"),
    ],
)
def test_bad_option_values_are_refused_when_the_config_is_made(make: Any, message: str) -> None:
    # Before any training: resolve_config builds the config, so its __post_init__ runs in prepare.
    with pytest.raises(GenbenchError, match=message):
        make()


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (IsConfig(n_samples=10, splits=10), "cannot fill 10 splits"),
        (PrecisionRecallConfig(reference_split="validation"), "reference_split must be 'train' or 'test'"),  # type: ignore[arg-type]
    ],
)
def test_bad_options_are_user_errors(
    config: Any, message: str, digits: Dataset, registry: Registry, shared_cache: Path
) -> None:
    compute = compute_is if isinstance(config, IsConfig) else compute_precision_recall
    with pytest.raises(GenbenchError, match=message):
        compute(Replay(digits.test.images), context(digits, registry, shared_cache, config))


# ------------------------------------------------------------------------------ inception, end to end (offline)


def test_inception_score_with_the_inception_extractor_uses_its_logits_unbiased(
    digits: Dataset, registry: Registry, tmp_path: Path, random_inception_weights: Path
) -> None:
    config = IsConfig(extractor="inception", n_samples=4, batch_size=4, splits=2)
    config.inception_weights = str(random_inception_weights)
    ctx = context(digits, registry, tmp_path, config)
    model = Replay(digits.test.images)
    result = compute_is(model, ctx)
    outputs = next(value for value in ctx.memo.values() if hasattr(value, "logits"))
    assert outputs.logits.shape == (4, 1008) and outputs.features.shape == (4, 2048)
    expected = isc_features_to_metric(outputs.logits, splits=2, shuffle=True, rng_seed=2020)[KEY_METRIC_ISC_MEAN]
    assert result.values["is"] == expected
    assert result.provenance["logits"] == "InceptionV3 logits_unbiased (1008 classes, torch-fidelity)"
