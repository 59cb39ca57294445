"""FID protocols as settings: a seeded subset of ``n_real`` images of a split, ``repeats`` independent
evaluations recorded as evaluation noise (``fid_eval_std``, ``fid_eval_n``), the bootstrap over the real
features, and FD-infinity, checked against the exact Fréchet distance of a known Gaussian pair."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from conftest import Replay
from genbench import Dataset, EvalContext, GenbenchError, NotApplicable
from genbench.registry import METRIC, Registry
from genbench_fid import sample_features
from genbench_fid.metric_fid import FidConfig, compute_fid, fd_infinity
from genbench_fid.metric_is import IsConfig, compute_is
from genbench_fid.metric_kid import KidConfig, compute_kid
from genbench_fid.metric_prc import PrecisionRecallConfig, compute_precision_recall
from genbench_fid.sample_features import REAL_SUBSET_SEED, evaluation_sets


def context(dataset: Dataset, registry: Registry, cache: Path, config: Any) -> EvalContext:
    return EvalContext(dataset, torch.device("cpu"), 0, torch.Generator().manual_seed(0), config, registry, cache)


def test_n_real_picks_the_documented_seeded_subset_for_each_repeat(
    digits: Dataset, registry: Registry, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    real = torch.arange(500, dtype=torch.float64).unsqueeze(1).repeat(1, 3)  # feature row i is image i
    fake = torch.randn(3 * 40, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    monkeypatch.setattr(sample_features, "real_features", lambda *_: (real, {"fingerprint": "f", "cache_key": "k"}))
    monkeypatch.setattr(sample_features, "shared_sample_features", lambda *_: fake)
    config = FidConfig(n_samples=40, n_real=100, repeats=3, reference_split="train")
    sets = evaluation_sets(None, None, config, context(digits, registry, tmp_path, config))  # type: ignore[arg-type]
    for repeat in range(3):
        # As documented: the first n_real of torch.randperm(len(split)) seeded REAL_SUBSET_SEED + repeat.
        chosen = torch.randperm(500, generator=torch.Generator().manual_seed(REAL_SUBSET_SEED + repeat))[:100]
        assert torch.equal(sets.real[repeat][:, 0].long(), chosen)
        assert torch.equal(sets.fake[repeat], fake[40 * repeat : 40 * (repeat + 1)])
    assert not torch.equal(sets.real[0], sets.real[1])
    assert sets.provenance["n_real"] == 100 and sets.provenance["n_fake"] == 40
    assert sets.provenance["reference_split"] == "train" and sets.provenance["repeats"] == 3


def test_repeats_give_three_values_their_mean_and_std_in_the_record(
    digits: Dataset, registry: Registry, shared_cache: Path
) -> None:
    config = FidConfig(n_samples=100, n_real=200, repeats=3, reference_split="train")
    model = Replay(digits.train.images)
    result = compute_fid(model, context(digits, registry, shared_cache, config))
    values = result.provenance["evaluations"]["fd_classifier"]
    assert len(values) == 3 and len(set(values)) == 3
    assert result.values["fd_classifier"] == pytest.approx(statistics.mean(values))
    assert result.values["fd_classifier_eval_std"] == pytest.approx(statistics.stdev(values))
    assert result.values["fd_classifier_eval_n"] == 3
    assert result.provenance["evaluation_noise"].startswith("repeats")
    assert model.calls == 3  # 300 samples in batches of 100: three independent sets


def test_one_evaluation_writes_no_evaluation_noise(digits: Dataset, registry: Registry, shared_cache: Path) -> None:
    result = compute_fid(Replay(digits.train.images), context(digits, registry, shared_cache, FidConfig(n_samples=50)))
    assert set(result.values) == {"fd_classifier"} and result.provenance["repeats"] == 1


def test_kid_is_and_precision_recall_repeat_alike(digits: Dataset, registry: Registry, shared_cache: Path) -> None:
    model = Replay(digits.train.images)
    ctx = context(digits, registry, shared_cache, None)
    shared = {"n_samples": 60, "repeats": 3}
    ctx.config = KidConfig(**shared, subset_size=20, subsets=5)
    kid = compute_kid(model, ctx).values
    ctx.config = IsConfig(**shared, splits=2)
    inception = compute_is(model, ctx).values
    ctx.config = PrecisionRecallConfig(**shared)
    prc = compute_precision_recall(model, ctx).values
    for values, column in ((kid, "kid"), (inception, "is"), (prc, "precision"), (prc, "recall")):
        assert values[f"{column}_eval_n"] == 3 and values[f"{column}_eval_std"] >= 0
    assert "kid_std" in kid and "is_std" in inception  # the spreads within one evaluation keep their meaning
    assert model.calls == 2  # 180 samples once, shared by the three metrics


def test_bootstrap_resamples_the_real_features(digits: Dataset, registry: Registry, shared_cache: Path) -> None:
    config = FidConfig(n_samples=100, bootstrap=4)
    result = compute_fid(Replay(digits.train.images), context(digits, registry, shared_cache, config))
    assert result.values["fd_classifier_eval_n"] == 4 and result.values["fd_classifier_eval_std"] > 0
    plain = compute_fid(Replay(digits.train.images), context(digits, registry, shared_cache, FidConfig(n_samples=100)))
    # The value itself is not resampled.
    assert result.values["fd_classifier"] == pytest.approx(plain.values["fd_classifier"])
    with pytest.raises(GenbenchError, match="set one of them"):
        FidConfig(repeats=2, bootstrap=4)


def test_fd_infinity_converges_to_the_exact_frechet_distance() -> None:
    d = 32
    mu, scale = np.full(d, 0.1), np.linspace(0.8, 1.2, d)
    exact = float((mu**2).sum() + ((scale - 1) ** 2).sum())  # N(mu, diag(scale²)) against N(0, I)

    def errors(n: int, seeds: range) -> tuple[float, float]:
        """Mean |FD-infinity - exact| and mean (FID at N = n) - exact over ``seeds``."""
        found, plain = [], []
        for seed in seeds:
            fake = np.random.default_rng(seed).standard_normal((n, d)) * scale + mu
            value, sizes, fids = fd_infinity(fake, np.zeros(d), np.eye(d))
            assert len(sizes) == 15 and sizes[-1] == n and sizes[0] == min(5000, n // 10)
            found.append(abs(value - exact))
            plain.append(fids[-1] - exact)
        return float(np.mean(found)), float(np.mean(plain))

    small, small_plain = errors(1000, range(4))
    large, large_plain = errors(16000, range(2))
    assert large < small / 2 and large < 0.03  # converges as N grows
    assert small < small_plain / 2  # the FID itself is biased upward by about d/N; FD-infinity removes most of it
    assert large_plain > 0


def test_the_evaluation_noise_columns_are_never_ranked(registry: Registry) -> None:
    columns = {
        c.name: c for name in ("fid", "kid", "is", "precision_recall") for c in registry.get(METRIC, name).columns
    }
    for name in ("fid_eval_std", "fid_eval_n", "kid_eval_std", "is_eval_n", "recall_eval_std", "fid_infinity"):
        assert columns[name].rank is None and columns[name].optional


def test_an_extractor_at_chance_accuracy_makes_the_metrics_not_applicable(
    digits: Dataset, registry: Registry, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from genbench.toolkit.features import FeatureExtractor

    def at(accuracy: float) -> FeatureExtractor:
        return FeatureExtractor("classifier", lambda x: x.flatten(1).double(), {"test_accuracy": accuracy})

    chance = sample_features.chance_level(digits.test.labels)  # type: ignore[arg-type]
    assert 0.1 <= chance < 0.2  # ten digits, about equally frequent
    for accuracy in (chance, chance + 0.03):
        monkeypatch.setattr(sample_features, "load_extractor", lambda *_, a=accuracy: at(a))
        for config, compute in ((FidConfig(n_samples=20), compute_fid), (IsConfig(n_samples=20), compute_is)):
            with pytest.raises(NotApplicable, match="not above chance"):
                compute(Replay(digits.train.images), context(digits, registry, tmp_path, config))
    monkeypatch.setattr(sample_features, "load_extractor", lambda *_: at(0.9))
    result = compute_fid(Replay(digits.train.images), context(digits, registry, tmp_path, FidConfig(n_samples=20)))
    assert result.provenance["distance"].startswith("FD_classifier:")  # not reported as the literature's FID


def test_a_metric_of_two_columns_keeps_both_columns_evaluations() -> None:
    from genbench_fid.sample_features import evaluation_summaries

    written, noise = evaluation_summaries({"density": [1.0, 3.0], "coverage": [0.5, 0.7]}, kind="sample sets")
    assert written["density"] == 2.0 and written["coverage_eval_n"] == 2.0
    assert noise["evaluations"] == {"density": [1.0, 3.0], "coverage": [0.5, 0.7]}
    assert evaluation_summaries({"density": [1.0], "coverage": [0.5]}, kind="sample sets") == (
        {"density": 1.0, "coverage": 0.5},
        {},
    )
