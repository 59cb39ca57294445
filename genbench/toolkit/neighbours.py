"""k-nearest-neighbour balls around feature vectors: what manifold metrics of samples are built of.

Improved precision and recall (Kynkäänniemi et al. 2019) and density and coverage (Naeem, Oh, Uh, Choi & Yoo
2020, "Reliable Fidelity and Diversity Metrics for Generative Models") all stand a set of features for its
manifold: a ball around every point reaching to the point's k-th nearest neighbour in its own set. These
functions give the radii, how many balls hold each point, and each point's distance to the nearest point of
another set. Distances are Euclidean, in float64, computed ``block`` rows at a time so that memory stays
bounded (a block of rows by the other set) however many reference images there are.
"""

from __future__ import annotations

import torch

#: Rows of a distance matrix computed at once: 2000 x 50,000 float64 distances take 800 MB.
DEFAULT_BLOCK = 2000


def kth_neighbour_distances(features: torch.Tensor, k: int, block: int = DEFAULT_BLOCK) -> torch.Tensor:
    """The distance (n,) from each of ``features`` (n, d) to its k-th nearest neighbour among the others.

    The point itself, at distance 0, is the nearest of its own set, so this is the (k + 1)-th smallest
    distance of its row, as in Naeem et al.'s reference code (``prdc``) and torch-fidelity; a duplicate of the
    point counts as a neighbour at distance 0.
    """
    x = _as_float64(features)
    if not 1 <= k < len(x):
        raise ValueError(f"k must be in [1, {len(x) - 1}] (fewer than the {len(x)} points), got {k}")
    parts = [torch.cdist(rows, x).kthvalue(k + 1, dim=1).values for rows in torch.split(x, block)]
    return torch.cat(parts)


def ball_membership(
    points: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor, block: int = DEFAULT_BLOCK
) -> torch.Tensor:
    """For each of ``points`` (m, d), how many balls hold it: centres (n, d) with radii (n,), strictly inside."""
    p, c = _as_float64(points), _as_float64(centres)
    r = radii.to(c.device, torch.float64)
    counts = torch.zeros(len(p), dtype=torch.int64, device=c.device)
    for start in range(0, len(c), block):
        distances = torch.cdist(c[start : start + block], p)
        counts += (distances < r[start : start + block, None]).sum(dim=0)
    return counts


def nearest_distances(points: torch.Tensor, others: torch.Tensor, block: int = DEFAULT_BLOCK) -> torch.Tensor:
    """The distance (m,) from each of ``points`` (m, d) to the nearest of ``others`` (n, d)."""
    p, o = _as_float64(points), _as_float64(others)
    return torch.cat([torch.cdist(rows, o).min(dim=1).values for rows in torch.split(p, block)])


def density_and_coverage(
    real: torch.Tensor, fake: torch.Tensor, k: int = 5, block: int = DEFAULT_BLOCK
) -> tuple[float, float]:
    """Density and coverage (Naeem et al. 2020) of ``fake`` (m, d) against ``real`` (n, d), as their ``prdc``.

    density = 1 / (k m) * sum over fake j of the number of real balls holding j: how crowded the real
    neighbourhoods of the samples are (about 1 where the two distributions agree; above 1 where samples
    bunch where real data is dense). coverage = the share of real balls holding at least one sample: the
    share of the real manifold the samples reach. Unlike recall it uses real balls only, whose radii outliers
    among the samples cannot inflate.
    """
    if real.dim() != 2 or fake.dim() != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(f"density_and_coverage needs features (n, d) and (m, d), got {real.shape} and {fake.shape}")
    radii = kth_neighbour_distances(real, k, block)
    density = float(ball_membership(fake, real, radii, block).sum()) / (k * len(fake))
    coverage = float((nearest_distances(real, fake, block) < radii).double().mean())
    return density, coverage


def _as_float64(features: torch.Tensor) -> torch.Tensor:
    if features.dim() != 2:
        raise ValueError(f"features must be (n, d), got shape {tuple(features.shape)}")
    return features.detach().to(torch.float64)
