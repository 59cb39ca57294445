"""confidence_interval against scipy.stats on known inputs, and the single-seed case that has no interval."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats

from genbench.toolkit.stats import confidence_interval


@pytest.mark.parametrize(
    ("values", "confidence"),
    [
        ([1.0, 2.0, 3.5], 0.95),
        ([2.42, 2.44, 2.41, 2.47, 2.40], 0.95),
        ([10.0, 12.0], 0.95),
        ([0.1, -0.3, 0.25, 0.05], 0.9),
        ([1e-6, 1.3e-6, 0.9e-6], 0.99),
    ],
)
def test_matches_scipy_t_interval(values: list[float], confidence: float) -> None:
    mean, std, n, half_width = confidence_interval(values, confidence)
    low, high = scipy.stats.t.interval(confidence, len(values) - 1, loc=np.mean(values), scale=scipy.stats.sem(values))
    assert n == len(values)
    assert mean == pytest.approx(np.mean(values))
    assert std == pytest.approx(np.std(values, ddof=1))
    assert mean - half_width == pytest.approx(low)
    assert mean + half_width == pytest.approx(high)


def test_known_value_for_three_seeds() -> None:
    # t_{0.975, 2} = 4.302652729911275; std of (1, 2, 3) is 1, so half-width = 4.3027 / sqrt(3).
    assert confidence_interval([1.0, 2.0, 3.0])[3] == pytest.approx(4.302652729911275 / math.sqrt(3))


def test_identical_values_give_zero_width() -> None:
    assert confidence_interval([5.0, 5.0, 5.0]) == (5.0, 0.0, 3, 0.0)


def test_one_value_has_no_interval() -> None:
    mean, std, n, half_width = confidence_interval([1.23])
    assert (mean, n) == (1.23, 1)
    assert math.isnan(std) and math.isnan(half_width)


@pytest.mark.parametrize(("values", "confidence"), [([], 0.95), ([1.0, 2.0], 0.0), ([1.0, 2.0], 1.0)])
def test_rejects_what_has_no_interval(values: list[float], confidence: float) -> None:
    with pytest.raises(ValueError):
        confidence_interval(values, confidence)
