"""The ``fid`` metric end to end: replayed data scores near 0, noise far away, a fitted model below an untrained
one, on the digits and on MNIST; the reference statistics are cached; every number says how it was measured."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

import genbench
from conftest import SHARED_DATA, Replay
from genbench import Dataset, DatasetOptions, EvalContext, FitContext, GenbenchError, ImageData
from genbench.errors import PluginOutputError
from genbench.registry import DATASET, METRIC, Registry
from genbench_fid.metric_fid import FidConfig, compute_fid
from genbench_fid.metric_kid import KidConfig, compute_kid
from genbench_fid.sample_features import extractor_name
from genbench_independent import IndependentConfig, IndependentPixels


class Noise:
    """Every pixel uniform over the levels."""

    capabilities = frozenset({genbench.SAMPLE})

    def __init__(self, info: genbench.DataInfo) -> None:
        self.info = info

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        shape = (n, *self.info.shape)
        return torch.randint(self.info.levels, shape, generator=generator, dtype=torch.uint8)


def fitted_and_untrained(dataset: Dataset) -> tuple[IndependentPixels, IndependentPixels]:
    fitted = IndependentPixels(IndependentConfig(), dataset.info)
    fitted.fit(dataset.train, FitContext(torch.device("cpu"), 0, torch.Generator().manual_seed(0)))
    return fitted, IndependentPixels(IndependentConfig(), dataset.info)  # untrained: uniform over the levels


def context(dataset: Dataset, registry: Registry, cache: Path, config: Any = None) -> EvalContext:
    generator = torch.Generator().manual_seed(0)
    return EvalContext(dataset, torch.device("cpu"), 0, generator, config or FidConfig(), registry, cache)


def fid(model: Any, dataset: Dataset, registry: Registry, cache: Path, **options: Any) -> genbench.MetricResult:
    return compute_fid(model, context(dataset, registry, cache, FidConfig(**options)))


def test_fid_orders_real_data_a_fitted_model_an_untrained_one_and_noise(
    digits: Dataset, registry: Registry, shared_cache: Path
) -> None:
    fitted, untrained = fitted_and_untrained(digits)
    models = {
        "test": Replay(digits.test.images),
        "train": Replay(digits.train.images),
        "fitted": fitted,
        "untrained": untrained,
        "noise": Noise(digits.info),
    }
    scores = {
        name: fid(model, digits, registry, shared_cache).values["fd_classifier"] for name, model in models.items()
    }
    assert scores["test"] < scores["train"] < scores["fitted"] < scores["untrained"] < scores["noise"]
    assert scores["train"] < scores["untrained"] / 5
    assert scores["fitted"] < scores["untrained"] / 1.5


def test_fid_records_how_it_was_measured(digits: Dataset, registry: Registry, shared_cache: Path) -> None:
    result = fid(Replay(digits.train.images), digits, registry, shared_cache)
    provenance = result.provenance
    assert provenance["extractor"] == "classifier"  # the default on a labelled data set
    assert provenance["extractor_identity"]["test_accuracy"] > 0.9
    assert len(provenance["extractor_identity"]["weights_sha256"]) == 16
    assert provenance["n_real"] == len(digits.test)
    assert provenance["n_fake"] == len(digits.test)
    assert digits.provenance["fingerprint"] in provenance["reference"]
    key = provenance["reference_statistics_key"]
    assert (shared_cache / "reference_statistics" / f"{key}.safetensors").is_file()


def test_reference_statistics_are_computed_once(
    digits: Dataset, registry: Registry, shared_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = fid(Replay(digits.train.images), digits, registry, shared_cache, n_samples=100)
    computed = []
    monkeypatch.setattr("genbench.toolkit.features.feature_statistics", lambda *args: computed.append(1))
    second = fid(Replay(digits.train.images), digits, registry, shared_cache, n_samples=100, batch_size=33)
    assert not computed  # the reference came from the cache; only the 100 samples' statistics are computed here
    assert second.provenance["reference_statistics_key"] == first.provenance["reference_statistics_key"]


def test_n_samples_and_batch_size_decide_the_sampling(digits: Dataset, registry: Registry, shared_cache: Path) -> None:
    model = Replay(digits.train.images)
    result = fid(model, digits, registry, shared_cache, n_samples=250, batch_size=100)
    assert result.provenance["n_fake"] == 250
    assert model.calls == 3


def test_fid_and_kid_of_one_cell_share_one_set_of_samples(
    digits: Dataset, registry: Registry, shared_cache: Path
) -> None:
    model = Replay(digits.train.images)
    ctx = context(digits, registry, shared_cache, FidConfig(n_samples=200))
    compute_fid(model, ctx)
    ctx.config = KidConfig(n_samples=200, subset_size=100, subsets=10)
    kid = compute_kid(model, ctx)
    assert model.calls == 2  # 200 samples in batches of 100, once
    assert kid.provenance["n_fake"] == 200


def test_a_sample_of_the_wrong_shape_is_reported(digits: Dataset, registry: Registry, shared_cache: Path) -> None:
    wrong = Replay(torch.zeros(10, 1, 4, 4, dtype=torch.uint8))
    with pytest.raises(PluginOutputError, match=r"returned torch.uint8 \(100, 1, 4, 4\); expected .*\(100, 1, 8, 8\)"):
        fid(wrong, digits, registry, shared_cache)


@pytest.mark.parametrize(
    ("options", "message"),
    [({"n_samples": 1}, "n_samples must be at least 2"), ({"batch_size": 0}, "batch_size")],
)
def test_bad_options_are_user_errors(
    options: dict[str, Any], message: str, digits: Dataset, registry: Registry, tmp_path: Path
) -> None:
    with pytest.raises(GenbenchError, match=message):
        fid(Replay(digits.train.images), digits, registry, tmp_path, **options)


def test_an_unknown_extractor_is_named_with_the_choices(digits: Dataset, registry: Registry, tmp_path: Path) -> None:
    with pytest.raises(GenbenchError, match=r"unknown feature extractor 'inceptoin'\. Did you mean 'inception'"):
        fid(Replay(digits.train.images), digits, registry, tmp_path, extractor="inceptoin")


def test_the_default_extractor_is_inception_without_labels(digits: Dataset, registry: Registry, tmp_path: Path) -> None:
    unlabelled = Dataset("unlabelled", ImageData(digits.train.images, 17), ImageData(digits.test.images, 17), {})
    assert extractor_name(FidConfig(), context(digits, registry, tmp_path)) == "classifier"
    assert extractor_name(FidConfig(), context(unlabelled, registry, tmp_path)) == "inception"


def test_metric_specs_require_sampling(registry: Registry) -> None:
    for name in ("fid", "kid"):
        assert registry.get(METRIC, name).requires_any == frozenset({genbench.SAMPLE})


@pytest.mark.slow
@pytest.mark.skipif(not (SHARED_DATA / "MNIST").is_dir(), reason=f"no MNIST files under {SHARED_DATA}")
def test_on_mnist_a_fitted_model_scores_far_below_an_untrained_one(registry: Registry, shared_cache: Path) -> None:
    mnist = registry.get(DATASET, "mnist").load(DatasetOptions(root=SHARED_DATA))
    fitted, untrained = fitted_and_untrained(mnist)
    good = fid(fitted, mnist, registry, shared_cache, n_samples=300)
    bad = fid(untrained, mnist, registry, shared_cache, n_samples=300)
    real = fid(Replay(mnist.train.images), mnist, registry, shared_cache, n_samples=300)
    assert good.provenance["extractor_identity"]["test_accuracy"] > 0.95
    assert real.values["fd_classifier"] < good.values["fd_classifier"] < bad.values["fd_classifier"] / 2
