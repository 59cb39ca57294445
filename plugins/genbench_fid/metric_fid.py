"""``fid``: the Fréchet distance between Gaussians fitted to features of generated and of real images.

Heusel, Ramsauer, Unterthiner, Nessler & Hochreiter (2017), "GANs Trained by a Two Time-Scale Update Rule
Converge to a Local Nash Equilibrium". The chain is torch-fidelity's: images -> features -> (mean, covariance)
-> number, each step a function of its own. The real side is a split of the data set (``reference_split``: the
held-out test split by default; CIFAR-10 papers use the 50,000 training images), whose statistics are cached,
keyed by the extractor's identity and the data's fingerprint; or a precomputed statistics file in pytorch-fid's
.npz layout (``reference_statistics``, or --fid-reference). The provenance names the extractor, both sample
counts and where the reference came from, since an FID is comparable only to FIDs computed alike.

FID is defined on InceptionV3 features, so only that number is written as ``fid``; with any other extractor the
same distance is written as ``fd_<extractor>`` (``fd_classifier``, ``fd_dinov2``: dgm-eval's FD_DINOv2), so that it
is never read beside published FIDs. The metric keeps its name, ``fid``, and its options, ``[metric.fid]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from genbench import Column, EvalContext, GenbenchError, GenerativeModel, MetricResult
from genbench.toolkit.features import FeatureExtractor, reference_statistics
from genbench.toolkit.reference import extractor_mismatch, read_reference_statistics
from genbench.toolkit.stats import feature_statistics, frechet_distance
from genbench_fid.sample_features import (
    FeatureMetricConfig,
    check_extractor,
    evaluation_columns,
    evaluation_sets,
    evaluation_summary,
    extractor_name,
    pairs,
    reference_batch_size,
    shared_extractor,
    shared_sample_features,
    validate,
)

KEY_METRIC_FID = "fid"
#: The one extractor whose Fréchet distance is an FID (Heusel et al. 2017 define it on InceptionV3 pool3).
FID_EXTRACTOR = "inception"
#: The option that plugins add to ``genbench run`` for a statistics file (its dest).
REFERENCE_OPTION = "fid_reference"


KEY_METRIC_FD_INFINITY = "fid_infinity"
#: FD-infinity's sample sizes, as dgm-eval's compute_FD_infinity (Stein et al. 2023, after Chong & Forsyth 2020).
FD_INFINITY_POINTS = 15
FD_INFINITY_SMALLEST = 5000
FD_INFINITY_SEED = 0


@dataclass
class FidConfig(FeatureMetricConfig):
    reference_statistics: str | None = None  # an .npz of mu and sigma (pytorch-fid layout); replaces reference_split
    fd_infinity: bool = False  # also fid_infinity: FID extrapolated to infinitely many samples (Chong & Forsyth)


def fd_infinity(
    fake: npt.NDArray[np.float64],
    mu_real: npt.NDArray[np.float64],
    sigma_real: npt.NDArray[np.float64],
    seed: int = FD_INFINITY_SEED,
) -> tuple[float, list[int], list[float]]:
    """FD-infinity of Chong & Forsyth (2020), "Effectively Unbiased FID and Inception Score and where to find
    them", as dgm-eval computes it: FID of seeded random subsets (without replacement) of the generated
    features at 15 sizes evenly spaced from min(5000, max(n // 10, 2)) to n, against the full real statistics; a
    least-squares line in 1/N; its value at 1/N = 0. Returns the value, the sizes and their FIDs."""
    n = len(fake)
    sizes = [int(s) for s in np.linspace(min(FD_INFINITY_SMALLEST, max(n // 10, 2)), n, FD_INFINITY_POINTS)]
    rng = np.random.default_rng(seed)
    values = []
    for size in sizes:
        subset = fake[rng.choice(n, size, replace=False)]
        mu, sigma = feature_statistics(subset)
        values.append(frechet_distance(mu, sigma, mu_real, sigma_real))
    slope_and_intercept = np.polyfit(1.0 / np.array(sizes, dtype=np.float64), np.array(values), deg=1)
    return float(slope_and_intercept[1]), sizes, values


def distance_column(extractor: str) -> str:
    """The column of the Fréchet distance of ``extractor``'s features: ``fid`` for InceptionV3's, ``fd_<extractor>``
    for any other's (``fd_classifier``)."""
    return KEY_METRIC_FID if extractor == FID_EXTRACTOR else f"fd_{extractor}"


def infinity_column(column: str) -> str:
    """FD-infinity's column beside ``column``: ``fid_infinity``, ``fd_classifier_infinity``."""
    return KEY_METRIC_FD_INFINITY if column == KEY_METRIC_FID else f"{column}_infinity"


def distance_columns(extractor: str) -> tuple[Column, ...]:
    """The columns the metric writes with ``extractor``: the distance (ranked first among quality columns), its
    spread over repeated evaluations, and FD-infinity where asked for."""
    column = distance_column(extractor)
    label = "FID (InceptionV3 features)" if column == KEY_METRIC_FID else f"FD ({extractor} features)"
    return (
        Column(column, "distance²", higher_is_better=False, description=label, rank=0),
        *evaluation_columns(column, "distance²"),
        Column(infinity_column(column), "distance²", False, f"{label} extrapolated to 1/N = 0", optional=True),
    )


def fid_columns(ctx: EvalContext) -> tuple[Column, ...]:
    """The metric's columns in a run (``MetricSpec.columns_for``): named from the extractor it will use."""
    config = ctx.config if isinstance(ctx.config, FeatureMetricConfig) else FidConfig()
    return distance_columns(extractor_name(config, ctx))


def check_fid(ctx: EvalContext) -> None:
    check_extractor(ctx.config if isinstance(ctx.config, FeatureMetricConfig) else FidConfig(), ctx, KEY_METRIC_FID)


def compute_fid(model: GenerativeModel, ctx: EvalContext) -> MetricResult:
    """FID of ``repeats`` sets of ``n_samples`` generated images, each against the reference (all of the split,
    a statistics file, or the repeat's seeded subset of ``n_real`` images); or of one set against ``bootstrap``
    resamplings of the real features. Several evaluations give their mean and ``fid_eval_std``/``fid_eval_n``."""
    config = ctx.config if isinstance(ctx.config, FidConfig) else FidConfig()
    validate(config, KEY_METRIC_FID)
    extractor = shared_extractor(config, ctx)
    column = distance_column(extractor.name)
    file = config.reference_statistics or ctx.options.get(REFERENCE_OPTION)
    if file and (config.n_real is not None or config.bootstrap):
        raise GenbenchError("fid: n_real and bootstrap need the real images' features, not a statistics file")
    if file or (config.n_real is None and not config.bootstrap):
        # The whole reference each time: its statistics (cached, or from the file) serve every evaluation.
        mu_real, sigma_real, reference = (
            statistics_from_file(Path(file).expanduser(), extractor)
            if file
            else statistics_of_split(extractor, config, ctx)
        )
        fake_all = shared_sample_features(model, extractor, config, ctx)
        n_fake = len(fake_all) // config.repeats
        fakes = [fake_all[i * n_fake : (i + 1) * n_fake].numpy() for i in range(config.repeats)]
        check_width(fakes[0], mu_real, extractor.name)
        values = [frechet_distance(*feature_statistics(fake), mu_real, sigma_real) for fake in fakes]
        kind = "repeats: fresh generated images per evaluation"
        provenance = {"n_fake": n_fake, **reference, "repeats": config.repeats}
        written, noise = evaluation_summary(column, values, kind=kind)
        first: tuple[npt.NDArray[np.float64], Gaussian] = (fakes[0], (mu_real, sigma_real))
    else:
        sets = evaluation_sets(model, extractor, config, ctx)
        check_width(sets.fake[0].numpy(), sets.real[0][0].numpy(), extractor.name)
        values = [
            frechet_distance(*feature_statistics(f.numpy()), *feature_statistics(r.numpy())) for f, r in pairs(sets)
        ]
        written, noise = evaluation_summary(column, values, kind=sets.kind)
        provenance = dict(sets.provenance)
        unresampled = feature_statistics(sets.unresampled_real.numpy())
        if config.bootstrap:  # the value is that on the real images themselves; the resamplings give its noise
            written[column] = frechet_distance(*feature_statistics(sets.fake[0].numpy()), *unresampled)
        first = (sets.fake[0].numpy(), unresampled)
    if config.fd_infinity:
        value, sizes, fids = fd_infinity(first[0], *first[1])
        written[infinity_column(column)] = value
        noise["fd_infinity"] = {"sizes": sizes, "fit": "least squares in 1/N, value at 1/N = 0"}
        noise["fd_infinity_fids"] = fids  # measured, not protocol
    provenance = {
        "extractor": extractor.name,
        "extractor_identity": extractor.identity,
        "distance": distance_name(extractor.name),
        **provenance,
        "batch_size": config.batch_size,
        **noise,
    }
    return MetricResult(written, provenance)


def distance_name(extractor: str) -> str:
    """What the distance's column holds, named honestly: the FID of the literature is a Fréchet distance of
    InceptionV3 features; with any other extractor it is another number, FD_<extractor>."""
    if extractor == "inception":
        return "FID: Fréchet distance of InceptionV3 pool3 features"
    if extractor == "dinov2":  # Stein et al. (2023) name it so; dgm-eval computes it with the same features
        return "FD_DINOv2: Fréchet distance of DINOv2 ViT-L/14 features (Stein et al. 2023, as dgm-eval)"
    return f"FD_{extractor}: Fréchet distance of {extractor} features, not comparable with any published FID"


def check_width(fake: npt.NDArray[np.float64], mu_real: npt.NDArray[np.float64], extractor: str) -> None:
    if fake.shape[1] != mu_real.shape[-1]:
        raise GenbenchError(
            f"fid: the reference statistics are {mu_real.shape[-1]}-d but extractor {extractor!r} gives "
            f"{fake.shape[1]}-d features; use statistics computed with the same extractor"
        )


Statistics = tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], dict[str, Any]]
Gaussian = tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]


def statistics_of_split(extractor: FeatureExtractor, config: FeatureMetricConfig, ctx: EvalContext) -> Statistics:
    """The cached mean and covariance of the reference split's features, and how they were obtained."""
    split = config.reference_split
    mu, sigma, info = reference_statistics(
        extractor, ctx.dataset, split, reference_batch_size(config, ctx), ctx.cache_dir, progress=ctx.progress
    )
    provenance = {
        "n_real": info["count"],
        "reference": f"{ctx.dataset.name} {split} split, fingerprint {info['fingerprint']}",
        "reference_split": split,
        "reference_statistics_key": info["cache_key"],
    }
    return mu.numpy(), sigma.numpy(), provenance


def statistics_from_file(path: Path, extractor: FeatureExtractor) -> Statistics:
    """Statistics from an .npz file; refused if genbench wrote it with another extractor, flagged if no one says."""
    stats = read_reference_statistics(path)
    provenance: dict[str, Any] = {"reference": f"file {path.name}, sha256 {stats.sha256}"}
    if stats.meta is None:
        provenance["extractor_match"] = (
            "unchecked: the file does not say which network made it; the FID is meaningful only if it holds "
            f"statistics of the same features as extractor {extractor.name!r} (e.g. InceptionV3 pool3 for 'inception')"
        )
        return stats.mu, stats.sigma, provenance
    file_identity = stats.meta.get("extractor", {})
    differing = extractor_mismatch(file_identity, extractor.identity)
    if differing:
        raise GenbenchError(
            f"fid: {path} holds statistics of extractor {file_identity.get('name')!r} "
            f"(weights {file_identity.get('weights_sha256')}), this FID uses {extractor.name!r} "
            f"(weights {extractor.identity.get('weights_sha256')}); they must match: rewrite the file with genbench "
            "stats --extractor NAME, or set the metric's extractor"
        )
    provenance["extractor_match"] = "checked: the file was written with this extractor and weights"
    provenance["n_real"] = stats.meta.get("count")
    provenance["reference_file_record"] = {k: stats.meta.get(k) for k in ("dataset", "split", "count", "fingerprint")}
    return stats.mu, stats.sigma, provenance
