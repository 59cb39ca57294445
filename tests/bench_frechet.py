"""Benchmark: genbench's frechet_distance beside pytorch-fid's and torchmetrics' formulas at d = 2048 (Inception).

    .venv/bin/pytest tests/bench_frechet.py --benchmark-enable --benchmark-only

All three run on the same pair of sample covariances (3,000 correlated Gaussian samples each, like pool3
features) and must agree to 1e-8 relative. A second group times singular covariances
(1,000 samples < 2,048 dimensions, as on a small test split), where the pivoted Cholesky factor has rank 999
and the eigenvalue problem shrinks. Thread counts follow OMP_NUM_THREADS / OPENBLAS_NUM_THREADS / MKL_NUM_THREADS.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import scipy.linalg
import torch
from torchmetrics.image.fid import _compute_fid as torchmetrics_compute_fid

from genbench.toolkit.stats import feature_statistics, frechet_distance

Array = npt.NDArray[np.float64]
Statistics = tuple[Array, Array, Array, Array]
D = 2048


def sample_statistics(n: int) -> Statistics:
    rng = np.random.default_rng(0)
    mixing = rng.standard_normal((D, D)) / np.sqrt(D)
    mu1, sigma1 = feature_statistics(rng.standard_normal((n, D)) @ mixing)
    mu2, sigma2 = feature_statistics(rng.standard_normal((n, D)) @ (mixing * 1.1) + 0.05)
    return mu1, sigma1, mu2, sigma2


@pytest.fixture(scope="module")
def statistics() -> Statistics:
    return sample_statistics(3000)


@pytest.fixture(scope="module")
def singular_statistics() -> Statistics:
    return sample_statistics(1000)


def pytorch_fid_formula(mu1: Array, sigma1: Array, mu2: Array, sigma2: Array) -> float:
    """pytorch-fid's calculate_frechet_distance (src/pytorch_fid/fid_score.py): the real part of scipy's sqrtm of
    the non-symmetric product S1 S2 (its ``disp=False`` argument is gone from scipy, so it is left out)."""
    covmean = scipy.linalg.sqrtm(sigma1 @ sigma2).real
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def torchmetrics_formula(mu1: Array, sigma1: Array, mu2: Array, sigma2: Array) -> float:
    """torchmetrics' own _compute_fid (torchmetrics/image/fid.py): eigvals of S1 S2, in float64 here."""
    tensors = (torch.from_numpy(a) for a in (mu1, sigma1, mu2, sigma2))
    return float(torchmetrics_compute_fid(*tensors))


IMPLEMENTATIONS: dict[str, tuple[Callable[..., float], int]] = {
    # name: (function, rounds); sqrtm takes seconds per call, so it gets fewer rounds
    "genbench": (frechet_distance, 5),
    "torchmetrics-eigvals": (torchmetrics_formula, 3),
    "pytorch-fid-sqrtm": (pytorch_fid_formula, 3),
}


@pytest.mark.benchmark(group="frechet_distance d=2048")
@pytest.mark.parametrize("name", list(IMPLEMENTATIONS))
def test_bench_frechet_distance(benchmark: Any, name: str, statistics: Statistics) -> None:
    function, rounds = IMPLEMENTATIONS[name]
    value = benchmark.pedantic(function, args=statistics, rounds=rounds, iterations=1, warmup_rounds=0)
    reference = frechet_distance(*statistics)
    assert value == pytest.approx(reference, rel=1e-8)
    benchmark.extra_info["fid"] = value


@pytest.mark.benchmark(group="frechet_distance d=2048, singular covariances")
@pytest.mark.parametrize("name", ["genbench", "torchmetrics-eigvals"])
def test_bench_frechet_distance_singular(benchmark: Any, name: str, singular_statistics: Statistics) -> None:
    function = frechet_distance if name == "genbench" else torchmetrics_formula
    value = benchmark.pedantic(function, args=singular_statistics, rounds=3, iterations=1, warmup_rounds=0)
    benchmark.extra_info["fid"] = value
    # eigvals of a singular non-symmetric product has round-off of the order sqrt(eps) in the trace term
    assert value == pytest.approx(frechet_distance(*singular_statistics), rel=1e-6)
