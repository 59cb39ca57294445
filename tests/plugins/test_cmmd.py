"""``cmmd`` (Jayasumana et al. 2024): the biased RBF-kernel MMD² of the reference code, x 1000 with sigma = 10; zero
for a set against itself, growing with a shift of the features; by default on the ``clip`` extractor."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest
import torch

import genbench
from conftest import Replay
from genbench import Dataset, EvalContext, GenbenchError
from genbench.registry import METRIC, Registry
from genbench_fid.metric_cmmd import SCALE, SIGMA, CmmdConfig, clip_mmd, compute_cmmd


def unit_vectors(n: int, d: int, seed: int) -> torch.Tensor:
    """Random directions, as CLIP's L2-normalised embeddings are."""
    x = torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return x / x.norm(dim=1, keepdim=True)


def test_the_constants_are_the_papers() -> None:
    assert (SIGMA, SCALE) == (10.0, 1000.0)


def test_two_points_give_the_kernel_by_hand() -> None:
    a = 3.0  # one point in each set, a apart: MMD² = k(x,x) + k(y,y) - 2 k(x,y) = 2 - 2 exp(-a² / (2 sigma²))
    expected = 1000 * (2 - 2 * math.exp(-(a**2) / (2 * 10.0**2)))
    assert clip_mmd(torch.tensor([[0.0]]), torch.tensor([[a]])) == pytest.approx(expected, rel=1e-12)


def test_it_is_the_reference_codes_estimator_written_out() -> None:
    """Every kernel matrix averaged with its diagonal (the biased estimate), as google-research's cmmd computes it."""
    x, y = unit_vectors(40, 12, 0).numpy(), unit_vectors(30, 12, 1).numpy()

    def mean_kernel(a: np.ndarray, b: np.ndarray) -> float:
        squared = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T
        return float(np.exp(-squared / (2 * 10.0**2)).mean())

    expected = 1000 * (mean_kernel(x, x) + mean_kernel(y, y) - 2 * mean_kernel(x, y))
    assert clip_mmd(torch.from_numpy(x), torch.from_numpy(y)) == pytest.approx(expected, rel=1e-9)


def test_a_set_against_itself_scores_zero() -> None:
    x = unit_vectors(200, 64, 2)
    assert clip_mmd(x, x.clone()) == 0.0
    shuffled = x[torch.randperm(len(x), generator=torch.Generator().manual_seed(0))]
    assert abs(clip_mmd(x, shuffled)) < 1e-9  # the same set in another order: equal up to the sums' rounding


def test_it_grows_with_a_shift_of_the_features() -> None:
    x = unit_vectors(300, 32, 3)
    direction = unit_vectors(1, 32, 4)
    values = [clip_mmd(x + shift * direction, x) for shift in (0.0, 0.05, 0.1, 0.2, 0.4, 0.8, 1.6)]
    assert values[0] == 0.0
    assert all(a < b for a, b in itertools.pairwise(values)), values


def test_two_samples_of_one_distribution_score_far_below_two_distributions() -> None:
    same = clip_mmd(unit_vectors(300, 32, 5), unit_vectors(300, 32, 6))
    other = clip_mmd(unit_vectors(300, 32, 5), unit_vectors(300, 32, 7) + 0.3 * unit_vectors(1, 32, 8))
    assert 0 < same < other / 10


def test_blocks_do_not_change_the_answer() -> None:
    x, y = unit_vectors(70, 16, 9), unit_vectors(50, 16, 10)
    assert clip_mmd(x, y, block=7) == pytest.approx(clip_mmd(x, y, block=1000), rel=1e-12)


def test_features_of_different_widths_are_refused() -> None:
    with pytest.raises(ValueError, match="needs features"):
        clip_mmd(torch.zeros(3, 4), torch.zeros(3, 5))


# --------------------------------------------------------------------------------------------- the metric


def test_the_default_extractor_is_clip(registry: Registry) -> None:
    assert CmmdConfig().extractor == "clip"
    spec = registry.get(METRIC, "cmmd")
    assert [column.name for column in spec.columns if not column.optional] == ["cmmd"]
    assert not spec.columns[0].higher_is_better
    assert spec.requires_any == frozenset({genbench.SAMPLE})


def test_on_any_extractor_replayed_data_scores_below_noise(
    digits: Dataset, registry: Registry, shared_cache: Path
) -> None:
    def cmmd(images: torch.Tensor) -> genbench.MetricResult:
        config = CmmdConfig(extractor="classifier", n_samples=200)
        generator = torch.Generator().manual_seed(0)
        ctx = EvalContext(digits, torch.device("cpu"), 0, generator, config, registry, shared_cache)
        return compute_cmmd(Replay(images), ctx)

    noise = torch.randint(17, (200, 1, 8, 8), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    real, random = cmmd(digits.test.images), cmmd(noise)
    assert 0 <= real.values["cmmd"] < random.values["cmmd"] / 5
    assert real.provenance["extractor"] == "classifier"
    assert real.provenance["n_fake"] == 200 and real.provenance["n_real"] == len(digits.test)
    assert real.provenance["kernel"] == "Gaussian RBF, sigma 10" and real.provenance["scale"] == 1000


@pytest.mark.slow
def test_a_run_that_names_no_metrics_leaves_cmmd_out_and_naming_it_needs_clips_weights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The default run stays offline and cheap; asking for cmmd without CLIP's weights stops before training."""
    from genbench.contract.request import RunRequest
    from genbench.runner.prepare import prepare

    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "empty-hf-cache"))
    monkeypatch.delenv("GENBENCH_CLIP_WEIGHTS", raising=False)
    prepared = prepare(RunRequest(["independent"], results_dir=tmp_path / "results"))
    names = {spec.name for spec in prepared.metrics}
    assert "cmmd" not in names and {"fid", "density_coverage", "intra_fid"} <= names
    with pytest.raises(GenbenchError, match="the clip feature extractor needs the CLIP ViT-L/14-336"):
        prepare(RunRequest(["independent"], metrics=["cmmd"], results_dir=tmp_path / "results"))
    assert not (tmp_path / "results").exists()
