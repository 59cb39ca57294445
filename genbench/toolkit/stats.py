"""Pure math shared by metrics and reports: no plugins, no I/O, every function testable on its own."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import torch


def bits_per_dim(nll_nats: float, dims: int) -> float:
    """Negative log-likelihood per image in nats -> bits per dimension: NLL / (D ln 2)."""
    return nll_nats / (dims * math.log(2.0))


def log_mean_exp(values: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """log(mean(exp(values))) along ``dim``, stable for large magnitudes (the IWAE estimator's last step)."""
    return torch.logsumexp(values, dim=dim) - math.log(values.shape[dim])


# ------------------------------------------------------------------------------ distances between feature sets


def feature_statistics(features: npt.ArrayLike) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Mean (d,) and unbiased covariance (d, d) of features (n, d), in float64: the Gaussian that FID fits."""
    x = _as_float64(features)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"feature_statistics needs features of shape (n, d) with n >= 2, got {x.shape}")
    mu = x.mean(axis=0)
    centered = x - mu
    sigma = centered.T @ centered / (x.shape[0] - 1)
    return mu, sigma


def frechet_distance(mu1: npt.ArrayLike, sigma1: npt.ArrayLike, mu2: npt.ArrayLike, sigma2: npt.ArrayLike) -> float:
    """The Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2) (Dowson & Landau 1982; FID, Heusel et al. 2017).

        d² = ||mu1 - mu2||² + tr(S1) + tr(S2) - 2 tr sqrt(S1^½ S2 S1^½)

    The last trace is the sum of the square roots of the eigenvalues of the symmetric PSD matrix S1^½ S2 S1^½.
    Any factor B with S1 = B Bᵀ gives Bᵀ S2 B with the same nonzero eigenvalues (B = S1^½ Q with Q orthonormal),
    so the symmetric square root, an eigendecomposition with vectors, is not needed: a pivoted Cholesky factor
    (LAPACK pstrf) costs a tenth of that. Pivoting makes it rank-revealing, so a singular covariance (fewer
    samples than dimensions, dead features) is handled too: B keeps the r columns above round-off (the rank
    tolerance of numpy's matrix_rank), and the eigenvalue problem shrinks to r x r. Only a symmetric eigenvalue
    problem is solved, so the result is real and stable where sqrtm(S1 S2) (pytorch-fid) and eigvals(S1 S2)
    (torchmetrics) work on a non-symmetric product (compare pytorch-fid issues 100 and 103).
    """
    m1, s1, m2, s2 = (_as_float64(a) for a in (mu1, sigma1, mu2, sigma2))
    d = m1.shape[0] if m1.ndim == 1 else -1
    if m1.ndim != 1 or m2.shape != (d,) or s1.shape != (d, d) or s2.shape != (d, d):
        raise ValueError(
            f"frechet_distance expects mu1, mu2 of shape (d,) and sigma1, sigma2 of shape (d, d) with one d; got "
            f"mu1 {m1.shape}, sigma1 {s1.shape}, mu2 {m2.shape}, sigma2 {s2.shape}"
        )
    for name, value in (("mu1", m1), ("sigma1", s1), ("mu2", m2), ("sigma2", s2)):
        if not np.isfinite(value).all():
            raise ValueError(f"frechet_distance: {name} contains NaN or infinite values")
    factor = torch.from_numpy(_psd_factor(s1))
    product = factor.T @ torch.from_numpy(s2) @ factor  # torch: its LAPACK is MKL's, often faster than numpy's
    eigenvalues = torch.linalg.eigvalsh((product + product.T) / 2)
    trace_sqrt = float(eigenvalues.clamp_min(0.0).sqrt().sum())  # negative eigenvalues are round-off
    distance = float(np.sum((m1 - m2) ** 2)) + float(np.trace(s1)) + float(np.trace(s2)) - 2.0 * trace_sqrt
    return max(distance, 0.0)  # a negative value is only the round-off of two near-identical Gaussians


def _as_float64(values: npt.ArrayLike) -> npt.NDArray[np.float64]:
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu()
    return np.ascontiguousarray(values, dtype=np.float64)


def _psd_factor(sigma: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """B (d, r) with sigma = B Bᵀ up to round-off, r the numerical rank: a pivoted Cholesky factor.

    LAPACK's dpstrf gives P L Lᵀ Pᵀ = sigma and stops at the first pivot below d * eps * max(diag(sigma)).
    """
    from scipy.linalg.lapack import dpstrf  # imported here: this module loads fast for the plugins that need little

    lower, pivots, rank, info = dpstrf(sigma, lower=1)
    if info < 0:
        raise ValueError(f"LAPACK dpstrf rejected argument {-info}")
    factor = np.empty((len(sigma), rank))
    factor[pivots - 1] = np.tril(lower)[:, :rank]  # undo the pivoting: row k of L is row pivots[k] of B
    return factor


def kernel_inception_distance(
    features1: npt.ArrayLike,
    features2: npt.ArrayLike,
    subset_size: int = 1000,
    subsets: int = 100,
    seed: int | np.random.Generator = 0,
) -> tuple[float, float]:
    """KID: mean and standard deviation over random subsets of the unbiased MMD² estimate.

    Binkowski, Sutherland, Arbel & Gretton (2018), "Demystifying MMD GANs", eq. (4) with the polynomial kernel
    k(x, y) = (xᵀy / d + 1)³. Each of ``subsets`` rounds draws ``subset_size`` rows from each set without
    replacement; the estimate drops the kernel's diagonal, so its expectation is exactly MMD² (0 for one
    distribution, and it may come out negative).
    """
    x, y = _as_float64(features1), _as_float64(features2)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"kernel_inception_distance needs features (n, d) and (m, d), got {x.shape} and {y.shape}")
    if not 2 <= subset_size <= min(len(x), len(y)):
        raise ValueError(f"subset_size must be in [2, {min(len(x), len(y))}] (the smaller set), got {subset_size}")
    if subsets < 1:
        raise ValueError(f"subsets must be at least 1, got {subsets}")
    rng = np.random.default_rng(seed)
    estimates = np.empty(subsets)
    for i in range(subsets):
        xs = x[rng.choice(len(x), subset_size, replace=False)]
        ys = y[rng.choice(len(y), subset_size, replace=False)]
        estimates[i] = _unbiased_mmd2(xs, ys)
    return float(estimates.mean()), float(estimates.std())


def _unbiased_mmd2(x: npt.NDArray[np.float64], y: npt.NDArray[np.float64]) -> float:
    m, d = x.shape

    def kernel(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        linear = a @ b.T / d + 1.0
        values: npt.NDArray[np.float64] = linear * linear * linear  # faster than ** 3, which calls pow
        return values

    kxx, kyy, kxy = kernel(x, x), kernel(y, y), kernel(x, y)
    within = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1))
    return float(within - 2.0 * kxy.mean())


def confidence_interval(values: npt.ArrayLike, confidence: float = 0.95) -> tuple[float, float, int, float]:
    """(mean, standard deviation with ddof=1, n, half-width) of the Student t interval for the mean of ``values``.

    The interval is mean ± half-width with half-width = t_{(1+confidence)/2, n-1} * std / sqrt(n). One value has
    no spread to estimate, so for n = 1 the standard deviation and the half-width are NaN: callers show "no
    interval" rather than a misleading ± 0.
    """
    # Imported here, not at the top: scipy.stats takes a noticeable time to import, and the plugins that import
    # this module for bits_per_dim never need it.
    import scipy.stats

    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    sample = np.asarray(values, dtype=np.float64).ravel()
    n = int(sample.size)
    if n == 0:
        raise ValueError("a confidence interval needs at least one value")
    mean = float(sample.mean())
    if n == 1:
        return mean, math.nan, 1, math.nan
    std = float(sample.std(ddof=1))
    half_width = float(scipy.stats.t.ppf((1 + confidence) / 2, df=n - 1)) * std / math.sqrt(n)
    return mean, std, n, half_width
