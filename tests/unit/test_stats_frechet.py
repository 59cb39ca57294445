"""genbench.toolkit.stats.frechet_distance and feature_statistics on synthetic inputs with known answers."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
import scipy.linalg

from genbench.toolkit.stats import feature_statistics, frechet_distance

Array = npt.NDArray[np.float64]


def random_spd(d: int, rng: np.random.Generator) -> Array:
    """A well-conditioned symmetric positive definite matrix with a spread of eigenvalues, like a covariance."""
    a = rng.standard_normal((d, d))
    spd: Array = a @ a.T / d + 0.1 * np.eye(d)
    return spd


def sqrtm_formula(mu1: Array, sigma1: Array, mu2: Array, sigma2: Array) -> float:
    """The formula of the original FID code and pytorch-fid: the real part of scipy's sqrtm of S1 S2."""
    trace_sqrt = np.trace(scipy.linalg.sqrtm(sigma1 @ sigma2).real)
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(sigma1) + np.trace(sigma2) - 2 * trace_sqrt)


def low_rank_reference(x: Array, y: Array) -> float:
    """FID of two sample sets with n < d, exactly: with S = Xcᵀ Xc / (n - 1), tr sqrt(S1^½ S2 S1^½) is the sum of
    the singular values of Xc Ycᵀ / (n - 1), a small SVD that needs no square root of a singular matrix."""
    xc, yc = x - x.mean(0), y - y.mean(0)
    nuclear = np.linalg.svd(xc @ yc.T / (len(x) - 1), compute_uv=False).sum()
    mean_term = np.sum((x.mean(0) - y.mean(0)) ** 2)
    return float(mean_term + (xc**2).sum() / (len(x) - 1) + (yc**2).sum() / (len(y) - 1) - 2 * nuclear)


def test_feature_statistics_are_the_mean_and_unbiased_covariance() -> None:
    x = np.random.default_rng(0).standard_normal((50, 6))
    mu, sigma = feature_statistics(x)
    assert mu.dtype == sigma.dtype == np.float64
    np.testing.assert_allclose(mu, x.mean(0))
    np.testing.assert_allclose(sigma, np.cov(x, rowvar=False))


@pytest.mark.parametrize(("n", "d"), [(500, 64), (40, 64)], ids=["full-rank", "fewer-samples-than-dims"])
def test_distance_of_a_set_to_itself_is_zero(n: int, d: int) -> None:
    x = np.random.default_rng(1).standard_normal((n, d)) * 3 + 1
    mu, sigma = feature_statistics(x)
    assert frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0.0, abs=1e-9 * np.trace(sigma))


def test_equal_covariances_leave_the_squared_distance_of_the_means() -> None:
    rng = np.random.default_rng(2)
    sigma = random_spd(32, rng)
    mu1, mu2 = rng.standard_normal(32), rng.standard_normal(32)
    assert frechet_distance(mu1, sigma, mu2, sigma) == pytest.approx(np.sum((mu1 - mu2) ** 2), rel=1e-9)


def test_diagonal_covariances_have_the_closed_form() -> None:
    """For commuting (diagonal) covariances the trace term is sum (sqrt a_i - sqrt b_i)²."""
    a, b = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 0.25])
    expected = float(np.sum((np.sqrt(a) - np.sqrt(b)) ** 2))
    assert frechet_distance(np.zeros(3), np.diag(a), np.zeros(3), np.diag(b)) == pytest.approx(expected, rel=1e-12)


# d = 2048 is the size of FID's Inception features; scipy's sqrtm takes about 12 s there, so it runs once.
@pytest.mark.parametrize("d", [64, 256, pytest.param(2048, marks=pytest.mark.slow)])
def test_agrees_with_the_sqrtm_formula(d: int) -> None:
    rng = np.random.default_rng(d)
    sigma1, sigma2 = random_spd(d, rng), random_spd(d, rng)
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
    ours = frechet_distance(mu1, sigma1, mu2, sigma2)
    assert ours == pytest.approx(sqrtm_formula(mu1, sigma1, mu2, sigma2), rel=1e-9)
    assert frechet_distance(mu2, sigma2, mu1, sigma1) == pytest.approx(ours, rel=1e-12)


@pytest.mark.parametrize("n_second", [30, 300], ids=["both-singular", "first-singular"])
def test_singular_covariances_match_the_exact_low_rank_value(n_second: int) -> None:
    """Fewer samples than dimensions (FID on a small test split) gives singular covariances of known rank."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((30, 100))
    y = rng.standard_normal((n_second, 100)) * 1.5 + 0.2
    (mu1, sigma1), (mu2, sigma2) = feature_statistics(x), feature_statistics(y)
    expected = low_rank_reference(x, y) if n_second == 30 else sqrtm_formula(mu1, sigma1, mu2, sigma2)
    assert frechet_distance(mu1, sigma1, mu2, sigma2) == pytest.approx(expected, rel=1e-7)


def test_dead_features_with_zero_variance_are_handled() -> None:
    """A ReLU unit that never fires is a zero row and column in the covariance."""
    rng = np.random.default_rng(4)
    x, y = rng.standard_normal((200, 8)), rng.standard_normal((200, 8)) + 0.5
    x[:, 3] = y[:, 3] = 0.0
    (mu1, sigma1), (mu2, sigma2) = feature_statistics(x), feature_statistics(y)
    keep = [i for i in range(8) if i != 3]
    reduced = sqrtm_formula(mu1[keep], sigma1[np.ix_(keep, keep)], mu2[keep], sigma2[np.ix_(keep, keep)])
    assert frechet_distance(mu1, sigma1, mu2, sigma2) == pytest.approx(reduced, rel=1e-9)


@pytest.mark.parametrize(
    ("mu1", "sigma1", "mu2", "sigma2"),
    [
        (np.zeros(3), np.eye(3), np.zeros(4), np.eye(4)),
        (np.zeros(3), np.eye(4), np.zeros(3), np.eye(3)),
        (np.zeros((3, 1)), np.eye(3), np.zeros(3), np.eye(3)),
        (np.zeros(3), np.ones(3), np.zeros(3), np.eye(3)),
    ],
    ids=["mean-lengths-differ", "sigma-does-not-match-mu", "mu-not-a-vector", "sigma-not-a-matrix"],
)
def test_mismatched_shapes_are_rejected_with_every_shape_named(
    mu1: Array, sigma1: Array, mu2: Array, sigma2: Array
) -> None:
    with pytest.raises(ValueError, match=r"frechet_distance expects .* got mu1 \(.*\), sigma1 \(.*\), mu2"):
        frechet_distance(mu1, sigma1, mu2, sigma2)


def test_non_finite_input_is_rejected() -> None:
    sigma = np.eye(3)
    sigma[0, 1] = np.nan
    with pytest.raises(ValueError, match="sigma2 contains NaN"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(3), sigma)


def test_a_collapsed_set_with_zero_covariance_is_handled() -> None:
    """A model that always draws the same image (mode collapse) has covariance 0: the distance is exact."""
    rng = np.random.default_rng(5)
    sigma = random_spd(16, rng)
    mu1, mu2 = rng.standard_normal(16), rng.standard_normal(16)
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(sigma)
    assert frechet_distance(mu1, np.zeros((16, 16)), mu2, sigma) == pytest.approx(expected, rel=1e-12)
    assert frechet_distance(mu2, sigma, mu1, np.zeros((16, 16))) == pytest.approx(expected, rel=1e-12)
