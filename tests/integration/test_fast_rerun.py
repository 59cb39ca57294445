"""A rerun reads what it needs to check its cells' keys and nothing more: the digits without scikit-learn."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from sklearn.datasets import load_digits as sklearn_digits

from genbench_datasets import digits


def test_digits_read_directly_equal_scikit_learns_loader() -> None:
    pixels, labels = digits.digits_arrays()
    bunch = sklearn_digits()
    assert pixels.dtype == bunch.images.dtype and labels.dtype == bunch.target.dtype
    np.testing.assert_array_equal(pixels, bunch.images)
    np.testing.assert_array_equal(labels, bunch.target)


def test_digits_fall_back_to_scikit_learn_when_the_file_is_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    pixels, labels = digits.digits_arrays()
    np.testing.assert_array_equal(pixels, sklearn_digits().images)
    assert len(labels) == 1797
